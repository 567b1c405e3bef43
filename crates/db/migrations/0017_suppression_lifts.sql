-- Migration 17: a person's own confirmed double opt-in lifts their suppression.
--
-- Until now an unsubscribe, a hard bounce or a complaint suppressed an address for good: the
-- person could consent again through a confirmed sign-up, but the entry stayed, so nothing would
-- ever be sent to them. Now an entry is in force unless a `confirm` event of the contact with
-- that address key came after it: the confirmation is the person's own act from their mailbox
-- (the ledger accepts it only after their pending sign-up), which both answers the unsubscribe
-- and shows that the address receives mail. A `manual` block is the organization's decision and
-- no confirmation lifts it. Nothing is stored for the lift: it is read from the ledger, so there
-- is no second record to drift from it. An erased contact has no address key, so its entries are
-- in force again, and a re-import of the address is refused consent as before. The repository
-- states the same rule in its queries (`audiences::suppression::in_force!`), each with the
-- organization named for every table, so that Citus routes it to one shard.
--
-- An address can be suppressed again for the same reason after a lift, so an entry is now keyed
-- by its time too.

alter table app.suppressions drop constraint suppressions_pkey;
alter table app.suppressions add constraint suppressions_pkey
    primary key (organization_id, address_key, reason, created_at);

-- The ledger's rules of migration 12, with the suppression rule reading only entries in force.
create or replace function app.consent_events_check() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    v_contacts uuid[];
    v_hipaa_purposes uuid[];
    v_granted uuid[];
    v_prev_contacts uuid[];
    v_prev_purposes uuid[];
    v_prev_seqs integer[];
    v_conf_contacts uuid[];
    v_conf_purposes uuid[];
    v_conf_seqs integer[];
    v_conf_bases app.lawful_basis[];
    v_conf_notices bytea[];
    v_conf_hipaa jsonb[];
    v_conf_expiries timestamptz[];
    v_conf_exemptions text[];
    v_found bigint;
begin
    for v_org in select distinct a.organization_id from added a loop
        -- One pass over the statement's rows (a large insert spills them to disk) gathers what
        -- every rule needs.
        select array_agg(distinct a.contact_id),
               array_agg(distinct a.purpose_id)
                   filter (where a.kind = 'grant' and a.basis is distinct from 'hipaa_authorization'),
               array_agg(distinct a.contact_id) filter (where a.kind = 'grant' and a.source <> 'signup_form'),
               array_agg(a.contact_id) filter (where a.seq > 1),
               array_agg(a.purpose_id) filter (where a.seq > 1),
               array_agg(a.seq - 1) filter (where a.seq > 1),
               array_agg(a.contact_id) filter (where a.kind = 'confirm'),
               array_agg(a.purpose_id) filter (where a.kind = 'confirm'),
               array_agg(a.seq - 1) filter (where a.kind = 'confirm'),
               array_agg(a.basis) filter (where a.kind = 'confirm'),
               array_agg(a.notice_sha256) filter (where a.kind = 'confirm'),
               array_agg(a.hipaa) filter (where a.kind = 'confirm'),
               array_agg(a.expires_at) filter (where a.kind = 'confirm'),
               array_agg(a.exemption) filter (where a.kind = 'confirm')
          into v_contacts, v_hipaa_purposes, v_granted, v_prev_contacts, v_prev_purposes, v_prev_seqs,
               v_conf_contacts, v_conf_purposes, v_conf_seqs, v_conf_bases, v_conf_notices, v_conf_hipaa,
               v_conf_expiries, v_conf_exemptions
          from added a where a.organization_id = v_org;

        if exists (select from app.contacts c
                    where c.organization_id = v_org and c.id = any(v_contacts) and c.erased_at is not null) then
            raise exception 'the contact is erased, refused by constraint "consent_events_contact_erased"'
                using errcode = '23514', constraint = 'consent_events_contact_erased';
        end if;

        if exists (select from app.purposes p
                    where p.organization_id = v_org and p.id = any(v_hipaa_purposes) and p.needs_hipaa_authorization) then
            raise exception 'this purpose needs a HIPAA authorization, refused by constraint "consent_events_hipaa_required"'
                using errcode = '23514', constraint = 'consent_events_hipaa_required';
        end if;

        if exists (select from app.contacts c
                     join app.suppressions s on s.organization_id = c.organization_id and s.address_key = c.address_key
                    where c.organization_id = v_org and s.organization_id = v_org and c.id = any(v_granted)
                      and (s.reason = 'manual'
                           or not exists (select from app.consent_events l
                                           where l.organization_id = v_org and l.contact_id = c.id
                                             and l.kind = 'confirm' and l.created_at > s.created_at))) then
            raise exception 'the address is suppressed; only the person can consent again, by a confirmed double opt-in, refused by constraint "consent_events_suppressed"'
                using errcode = '23514', constraint = 'consent_events_suppressed';
        end if;

        -- Each event after the first has its predecessor (in the ledger, or in this statement).
        if v_prev_seqs is not null then
            select count(*) into v_found
              from app.consent_events e
              join unnest(v_prev_contacts, v_prev_purposes, v_prev_seqs) w(contact_id, purpose_id, seq)
                on e.contact_id = w.contact_id and e.purpose_id = w.purpose_id and e.seq = w.seq
             where e.organization_id = v_org;
            if v_found <> cardinality(v_prev_seqs) then
                raise exception 'an event follows the previous event of its contact and purpose, refused by constraint "consent_events_seq"'
                    using errcode = '23514', constraint = 'consent_events_seq';
            end if;
        end if;

        -- A confirmation follows the pending sign-up it confirms, and carries its terms.
        if v_conf_seqs is not null then
            select count(*) into v_found
              from app.consent_events e
              join unnest(v_conf_contacts, v_conf_purposes, v_conf_seqs, v_conf_bases, v_conf_notices, v_conf_hipaa,
                          v_conf_expiries, v_conf_exemptions)
                   w(contact_id, purpose_id, seq, basis, notice_sha256, hipaa, expires_at, exemption)
                on e.contact_id = w.contact_id and e.purpose_id = w.purpose_id and e.seq = w.seq
             where e.organization_id = v_org and e.kind = 'grant' and e.source = 'signup_form'
               and (e.basis, e.notice_sha256, e.hipaa, e.expires_at, e.exemption)
                   is not distinct from (w.basis, w.notice_sha256, w.hipaa, w.expires_at, w.exemption);
            if v_found <> cardinality(v_conf_seqs) then
                raise exception 'a confirmation follows a pending sign-up and carries its terms, refused by constraint "consent_events_confirm_pending"'
                    using errcode = '23514', constraint = 'consent_events_confirm_pending';
            end if;
        end if;
    end loop;
    return null;
end
$$;
