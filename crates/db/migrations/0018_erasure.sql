-- Erasure: an erased contact takes no attribute values. Migration 12 refuses consent events for
-- an erased contact and lets its evidence go only with it, but a value could still be written
-- for the tombstone afterwards (an import or an API call racing the erasure, or a later write
-- naming its id), which would put personal data back beside a contact that names nobody.
--
-- As with the ledger's rules: AFTER statement triggers over the statement's transition table,
-- one set-based query per organization however many rows the statement wrote, reading only the
-- colocated app.contacts for the same organization (which Citus runs locally on the shard), as
-- the invoker. The contacts are read FOR SHARE: an erasure running at the same time holds its
-- contact's row until it commits, so a writer either waits for it and then sees the contact
-- erased, or goes first and has its value deleted by the erasure, which then waits for it.
-- PostgreSQL allows a transition table on a trigger of one event only, so inserts
-- and updates (an upsert's ON CONFLICT DO UPDATE among them) each have their trigger.
create function app.contact_attribute_values_check() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    v_contacts uuid[];
begin
    for v_org in select distinct w.organization_id from written w loop
        select array_agg(distinct w.contact_id) into v_contacts from written w where w.organization_id = v_org;
        if exists (select from (select c.erased_at from app.contacts c
                                 where c.organization_id = v_org and c.id = any(v_contacts)
                                   for share) locked
                    where locked.erased_at is not null) then
            raise exception 'the contact is erased, refused by constraint "contact_attribute_values_contact_erased"'
                using errcode = '23514', constraint = 'contact_attribute_values_contact_erased';
        end if;
    end loop;
    return null;
end
$$;
create trigger contact_attribute_values_erased_added
    after insert on app.contact_attribute_values
    referencing new table as written
    for each statement execute function app.contact_attribute_values_check();
create trigger contact_attribute_values_erased_changed
    after update on app.contact_attribute_values
    referencing new table as written
    for each statement execute function app.contact_attribute_values_check();
alter table app.contact_attribute_values enable always trigger contact_attribute_values_erased_added;
alter table app.contact_attribute_values enable always trigger contact_attribute_values_erased_changed;

revoke all on function app.contact_attribute_values_check() from public;
