-- The current consent of each contact and purpose, kept beside the ledger (docs/consent.md,
-- "Current state"; docs/performance.md, "Segment counts").
--
-- A segment's consent condition asks which contacts of a purpose hold live consent. Derived
-- from the ledger (migration 19) that is a walk of every event of the purpose and a hash of
-- the latest ones, the largest part of a count at a million contacts. Here it is a range of
-- one narrow row per contact and purpose, in the key order of the purpose.
--
-- The row is the latest event's seq and what the live test reads (kind, source, expires_at).
-- Expiry is a matter of time, so the row keeps `expires_at` and the reader compares it with
-- the instant it asks about; nothing has to change when a grant expires.
--
-- Only the ledger writes it: its AFTER INSERT statement trigger (app.consent_state_follow),
-- in the transaction that appended the events, with one set-based upsert per organization
-- over the statement's rows, however many an import inserted. It runs as the invoker
-- (`app_user`), as the ledger's other rules do: on Citus a SECURITY DEFINER function of
-- another role may not touch placements that `app_user` changed in the same transaction. So
-- `app_user` holds INSERT and UPDATE, and a BEFORE statement trigger (ENABLE ALWAYS) refuses
-- every write that does not come from inside a trigger: a statement `app_user` sends itself
-- runs at trigger depth 0, so its guard fires at depth 1; the ledger's trigger writes at
-- depth 1, so the guard fires at depth 2. `app_user` can create no trigger or function of
-- its own to reach depth 2 another way.
--
-- No foreign keys: every row comes from an event that the ledger's foreign keys and rules
-- already checked in the same statement, and checking them again per row is what made imports
-- slow. The ledger is append-only and contacts are never deleted (erasure keeps a tombstone),
-- so a row never outlives its events.

create table app.consent_state (
    organization_id uuid not null,
    purpose_id      uuid not null,
    contact_id      uuid not null,
    seq             integer not null constraint consent_state_seq check (seq >= 1),
    kind            app.consent_kind not null,
    source          app.consent_source not null,
    expires_at      timestamptz,
    -- Purpose before contact: a segment reads every contact of one purpose as one range, and
    -- the included columns answer the live test without visiting the table.
    constraint consent_state_pkey primary key (organization_id, purpose_id, contact_id)
        include (kind, source, expires_at)
);

-- What the ledger already holds, before the guard below refuses a write from outside a trigger.
insert into app.consent_state (organization_id, purpose_id, contact_id, seq, kind, source, expires_at)
select distinct on (e.organization_id, e.purpose_id, e.contact_id)
       e.organization_id, e.purpose_id, e.contact_id, e.seq, e.kind, e.source, e.expires_at
  from app.consent_events e
 order by e.organization_id, e.purpose_id, e.contact_id, e.seq desc;

create function app.consent_state_guard() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
begin
    if pg_trigger_depth() < 2 then
        raise exception 'consent_state is written only by the ledger''s trigger: % is not allowed, refused by constraint "consent_state_derived"', tg_op
            using errcode = 'insufficient_privilege', constraint = 'consent_state_derived',
                  hint = 'record a consent event instead';
    end if;
    return null;
end
$$;
create trigger consent_state_derived
    before insert or update or delete on app.consent_state
    for each statement execute function app.consent_state_guard();
create trigger consent_state_derived_truncate
    before truncate on app.consent_state
    for each statement execute function app.consent_state_guard();
alter table app.consent_state enable always trigger consent_state_derived;
alter table app.consent_state enable always trigger consent_state_derived_truncate;

-- The latest of the statement's events for each contact and purpose replaces the state row
-- unless the row already holds a later one (the ledger's seq rule makes each event its
-- predecessor's + 1, so a later one cannot come first; the condition keeps the row from ever
-- moving back all the same). The rows are joined with the organization's purposes, a
-- colocated table read by its key for one organization, so that on Citus the upsert is one
-- statement routed to the tenant's shard, run there locally as the ledger's other rules are.
create function app.consent_state_follow() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    v_contacts uuid[];
    v_purposes uuid[];
    v_seqs integer[];
    v_kinds app.consent_kind[];
    v_sources app.consent_source[];
    v_expiries timestamptz[];
begin
    for v_org in select distinct a.organization_id from added a loop
        select array_agg(l.contact_id), array_agg(l.purpose_id), array_agg(l.seq), array_agg(l.kind),
               array_agg(l.source), array_agg(l.expires_at)
          into v_contacts, v_purposes, v_seqs, v_kinds, v_sources, v_expiries
          from (select distinct on (a.contact_id, a.purpose_id) a.contact_id, a.purpose_id, a.seq, a.kind, a.source,
                       a.expires_at
                  from added a
                 where a.organization_id = v_org
                 order by a.contact_id, a.purpose_id, a.seq desc) l;
        insert into app.consent_state as s (organization_id, purpose_id, contact_id, seq, kind, source, expires_at)
        select p.organization_id, w.purpose_id, w.contact_id, w.seq, w.kind, w.source, w.expires_at
          from app.purposes p
          join unnest(v_contacts, v_purposes, v_seqs, v_kinds, v_sources, v_expiries)
               w(contact_id, purpose_id, seq, kind, source, expires_at) on w.purpose_id = p.id
         where p.organization_id = v_org
        on conflict (organization_id, purpose_id, contact_id) do update
           set seq = excluded.seq, kind = excluded.kind, source = excluded.source, expires_at = excluded.expires_at
         where s.seq < excluded.seq;
    end loop;
    return null;
end
$$;
create trigger consent_events_state
    after insert on app.consent_events
    referencing new table as added
    for each statement execute function app.consent_state_follow();
alter table app.consent_events enable always trigger consent_events_state;

alter table app.consent_state enable row level security;
alter table app.consent_state force row level security;
create policy tenant_isolation on app.consent_state
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());

revoke all on app.consent_state from public;
-- INSERT and UPDATE for the ledger's trigger, which runs as app_user; the guard refuses them
-- to anything else.
grant select, insert, update on app.consent_state to app_user;
revoke all on function app.consent_state_guard(), app.consent_state_follow() from public;
