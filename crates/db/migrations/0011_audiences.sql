-- Audiences and consent: contacts with typed custom attributes, purposes with their notice
-- versions, an append-only consent ledger with erasable evidence beside it, and a suppression
-- list keyed by a keyed hash of the address. docs/consent.md describes the model.
--
-- Every table carries `organization_id` first in every key and foreign key, so that Citus keeps
-- a tenant's contacts, their attribute values, their consent and its suppressions on one shard
-- (all distributed and colocated with `audit_logs`). app_user writes every table itself, with
-- the narrowest grants; no SECURITY DEFINER function is on the write path, because Citus
-- refuses one (another role) on placements that app_user already changed in the transaction.
-- The rules that read other rows (a grant for a suppressed address, a confirmation without a
-- pending sign-up, anything for an erased contact, a gap in an event sequence, evidence that
-- does not match its event) are AFTER statement triggers over the inserted rows' transition
-- table. They run as the invoker and read only colocated tables for the same organization,
-- which Citus runs locally on the shard, with one set-based query per rule however many rows
-- the statement inserted.

create type app.attribute_kind as enum ('text', 'number', 'date', 'boolean', 'choice');
create type app.consent_channel as enum ('email');
create type app.consent_kind as enum ('grant', 'confirm', 'revoke', 'expire');
create type app.lawful_basis as enum ('consent', 'hipaa_authorization', 'exemption');
create type app.consent_source as enum ('signup_form', 'import', 'api', 'console');
create type app.suppression_reason as enum ('unsubscribe', 'hard_bounce', 'complaint', 'manual');

-- Contacts. An erased contact stays as a tombstone that names nothing but its id, so that the
-- ledger's foreign keys and the audit records that name it still hold.
create table app.contacts (
    organization_id uuid not null
                    constraint contacts_organization_fkey references app.organizations (id) on delete cascade,
    id              uuid not null constraint contacts_id_v7 check (app.is_uuid_v7(id)),
    -- Normalised as accounts' are (mos_domain::Email: NFC lower-case local part, IDNA domain).
    address         text constraint contacts_address check (length(address) between 3 and 254),
    -- HMAC-SHA-256 of the address under a key derived from the server's secret (computed by
    -- the server, which alone holds the key): what the suppressions are keyed by.
    address_key     bytea constraint contacts_address_key_length check (length(address_key) = 32),
    name            text constraint contacts_name check (length(name) between 1 and 200),
    locale          text constraint contacts_locale check (locale ~ '^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
    time_zone       text constraint contacts_time_zone check (length(time_zone) between 1 and 64),
    tags            text[] not null default '{}'
                    constraint contacts_tags check (cardinality(tags) <= 50 and array_position(tags, null) is null),
    created_at      timestamptz not null,
    erased_at       timestamptz,
    primary key (organization_id, id),
    constraint contacts_address_key unique (organization_id, address),
    constraint contacts_address_key_key unique (organization_id, address_key),
    constraint contacts_erased check (
        (erased_at is null and address is not null and address_key is not null)
        or (erased_at is not null and address is null and address_key is null and name is null
            and locale is null and time_zone is null and tags = '{}'))
);
create index contacts_tags_idx on app.contacts using gin (tags);
create index contacts_created_idx on app.contacts (organization_id, created_at, id);

-- A contact keeps its id and its address (consent was given for that address; another address
-- is another contact), and an erased contact is never filled in again. Reads only the row.
create function app.contacts_guard() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
begin
    if (new.organization_id, new.id, new.created_at) is distinct from (old.organization_id, old.id, old.created_at) then
        raise exception 'a contact keeps its identity, refused by constraint "contacts_identity"'
            using errcode = '23514', constraint = 'contacts_identity';
    end if;
    if old.erased_at is not null then
        raise exception 'an erased contact does not change, refused by constraint "contacts_erased_stays"'
            using errcode = '23514', constraint = 'contacts_erased_stays';
    end if;
    if new.erased_at is null and (new.address, new.address_key) is distinct from (old.address, old.address_key) then
        raise exception 'a contact keeps its address; another address is another contact, refused by constraint "contacts_address_fixed"'
            using errcode = '23514', constraint = 'contacts_address_fixed';
    end if;
    return new;
end
$$;
create trigger contacts_guard before update on app.contacts
    for each row execute function app.contacts_guard();

-- Custom attributes. Values are typed columns rather than JSONB: each kind compares with its
-- own btree order (numbers as numbers, dates as dates), a segment's condition is an index
-- range on (organization_id, attribute_id, value), and the definition is enforced by foreign
-- keys and CHECKs alone (the kind, a text's maximum length, the choices), which hold on every
-- Citus shard without a trigger reading the definitions. JSONB would need such a trigger.
create table app.contact_attributes (
    organization_id uuid not null
                    constraint contact_attributes_organization_fkey references app.organizations (id) on delete cascade,
    id              uuid not null constraint contact_attributes_id_v7 check (app.is_uuid_v7(id)),
    name            text not null constraint contact_attributes_name check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    kind            app.attribute_kind not null,
    max_length      integer constraint contact_attributes_max_length check (max_length between 1 and 10000),
    created_at      timestamptz not null,
    primary key (organization_id, id),
    constraint contact_attributes_name_key unique (organization_id, name),
    constraint contact_attributes_kind_key unique (organization_id, id, kind),
    constraint contact_attributes_length_key unique (organization_id, id, max_length),
    constraint contact_attributes_text_length check ((kind = 'text') = (max_length is not null))
);

create table app.contact_attribute_choices (
    organization_id uuid not null,
    attribute_id    uuid not null,
    value           text not null constraint contact_attribute_choices_value check (length(value) between 1 and 200),
    primary key (organization_id, attribute_id, value),
    constraint contact_attribute_choices_attribute_fkey foreign key (organization_id, attribute_id)
        references app.contact_attributes (organization_id, id) on delete cascade
);

create table app.contact_attribute_values (
    organization_id uuid not null,
    contact_id      uuid not null,
    attribute_id    uuid not null,
    kind            app.attribute_kind not null,
    -- The definition's length, copied so that a CHECK can compare; the foreign key below keeps
    -- it equal to the definition's.
    max_length      integer,
    text_value      text,
    number_value    numeric,
    date_value      date,
    boolean_value   boolean,
    choice_value    text,
    primary key (organization_id, contact_id, attribute_id),
    constraint contact_attribute_values_contact_fkey foreign key (organization_id, contact_id)
        references app.contacts (organization_id, id) on delete cascade,
    constraint contact_attribute_values_kind_fkey foreign key (organization_id, attribute_id, kind)
        references app.contact_attributes (organization_id, id, kind) on delete cascade,
    constraint contact_attribute_values_length_fkey foreign key (organization_id, attribute_id, max_length)
        references app.contact_attributes (organization_id, id, max_length) on delete cascade,
    constraint contact_attribute_values_choice_fkey foreign key (organization_id, attribute_id, choice_value)
        references app.contact_attribute_choices (organization_id, attribute_id, value) on delete cascade,
    -- Exactly the column of the attribute's kind holds the value.
    constraint contact_attribute_values_one_value check (
        num_nonnulls(text_value, number_value, date_value, boolean_value, choice_value) = 1
        and case kind
              when 'text' then text_value is not null
              when 'number' then number_value is not null
              when 'date' then date_value is not null
              when 'boolean' then boolean_value is not null
              when 'choice' then choice_value is not null
            end),
    constraint contact_attribute_values_text_length check (
        (kind = 'text') = (max_length is not null) and (text_value is null or length(text_value) <= max_length)),
    constraint contact_attribute_values_number check (number_value is null or number_value not in ('NaN', 'Infinity', '-Infinity'))
);
create index contact_attribute_values_text_idx on app.contact_attribute_values (organization_id, attribute_id, text_value)
    where text_value is not null;
create index contact_attribute_values_number_idx on app.contact_attribute_values (organization_id, attribute_id, number_value)
    where number_value is not null;
create index contact_attribute_values_date_idx on app.contact_attribute_values (organization_id, attribute_id, date_value)
    where date_value is not null;
create index contact_attribute_values_boolean_idx on app.contact_attribute_values (organization_id, attribute_id, boolean_value)
    where boolean_value is not null;
create index contact_attribute_values_choice_idx on app.contact_attribute_values (organization_id, attribute_id, choice_value)
    where choice_value is not null;

-- Purposes and the notice versions shown when consent is asked. A notice is identified by the
-- SHA-256 of its canonical text (mos_domain::audiences::NoticeText), which the CHECK recomputes:
-- the hash names exactly the stored text. Notices are only ever inserted.
create table app.purposes (
    organization_id uuid not null
                    constraint purposes_organization_fkey references app.organizations (id) on delete cascade,
    id              uuid not null constraint purposes_id_v7 check (app.is_uuid_v7(id)),
    name            text not null constraint purposes_name check (length(name) between 1 and 200),
    channel         app.consent_channel not null,
    needs_hipaa_authorization boolean not null,
    created_at      timestamptz not null,
    primary key (organization_id, id),
    constraint purposes_name_key unique (organization_id, name)
);

create table app.notices (
    organization_id uuid not null,
    purpose_id      uuid not null,
    sha256          bytea not null,
    body            text not null constraint notices_body check (octet_length(body) between 1 and 100000),
    created_by      uuid not null,
    created_at      timestamptz not null,
    primary key (organization_id, purpose_id, sha256),
    constraint notices_sha256 check (sha256 = sha256(convert_to(body, 'UTF8'))),
    constraint notices_purpose_fkey foreign key (organization_id, purpose_id)
        references app.purposes (organization_id, id) on delete cascade
);

-- The consent ledger. `seq` numbers the events of one contact and purpose from 1: the latest
-- is the current state (app.consent_current), the primary key refuses two events that both
-- claim to follow the same one, and app.consent_events_check() refuses a gap.
create table app.consent_events (
    organization_id uuid not null,
    contact_id      uuid not null,
    purpose_id      uuid not null,
    seq             integer not null constraint consent_events_seq check (seq >= 1),
    id              uuid not null constraint consent_events_id_v7 check (app.is_uuid_v7(id)),
    channel         app.consent_channel not null,
    kind            app.consent_kind not null,
    basis           app.lawful_basis,
    notice_sha256   bytea,
    -- For a HIPAA authorization, its 164.508(c) elements, as recorded.
    hipaa           jsonb,
    expires_at      timestamptz,
    exemption       text constraint consent_events_exemption check (length(exemption) between 1 and 2000),
    source          app.consent_source not null,
    import_job      uuid,
    import_row      bigint constraint consent_events_import_row check (import_row >= 1),
    -- SHA-256 of a salt and the evidence (app.consent_evidence): commits to evidence that can
    -- be erased without touching this row.
    evidence_sha256 bytea constraint consent_events_evidence_sha256 check (length(evidence_sha256) = 32),
    -- The member who recorded it; none when the person did it themselves.
    recorded_by     uuid,
    created_at      timestamptz not null,
    primary key (organization_id, contact_id, purpose_id, seq),
    constraint consent_events_id_key unique (organization_id, id),
    constraint consent_events_contact_fkey foreign key (organization_id, contact_id)
        references app.contacts (organization_id, id),
    constraint consent_events_purpose_fkey foreign key (organization_id, purpose_id)
        references app.purposes (organization_id, id),
    constraint consent_events_notice_fkey foreign key (organization_id, purpose_id, notice_sha256)
        references app.notices (organization_id, purpose_id, sha256),
    constraint consent_events_grant check (
        kind not in ('grant', 'confirm') or (basis is not null and notice_sha256 is not null)),
    constraint consent_events_hipaa check (
        (basis = 'hipaa_authorization') = (hipaa is not null)
        and (hipaa is null or (jsonb_typeof(hipaa) = 'object'
             and hipaa ?& array['information', 'disclosers', 'recipients', 'purpose', 'signature', 'signed_on',
                                'right_to_revoke', 'conditioning', 'redisclosure']
             and (expires_at is not null or hipaa ? 'expiry_event')))),
    constraint consent_events_exemption_basis check ((basis = 'exemption') = (exemption is not null)),
    constraint consent_events_source check (
        case source
          when 'import' then import_job is not null and import_row is not null and recorded_by is not null
          when 'signup_form' then import_job is null and import_row is null and recorded_by is null
          else import_job is null and import_row is null and recorded_by is not null
        end),
    constraint consent_events_confirm_source check (kind <> 'confirm' or source = 'signup_form')
);
create index consent_events_purpose_idx on app.consent_events (organization_id, purpose_id, contact_id, seq desc);

-- Evidence that is personal data, beside the event that commits to it. Erasure deletes it.
-- No foreign key to the event: checking one locks the event's row FOR KEY SHARE as the
-- ledger's owner, which has lost UPDATE on the ledger. app.consent_evidence_check() checks
-- instead that the event exists, names the same contact and committed to this evidence.
create table app.consent_evidence (
    organization_id uuid not null,
    event_id        uuid not null,
    contact_id      uuid not null,
    salt            bytea not null constraint consent_evidence_salt check (length(salt) = 16),
    ip              inet,
    user_agent      text constraint consent_evidence_user_agent check (length(user_agent) <= 1000),
    primary key (organization_id, event_id),
    constraint consent_evidence_contact_fkey foreign key (organization_id, contact_id)
        references app.contacts (organization_id, id)
);
create index consent_evidence_contact_idx on app.consent_evidence (organization_id, contact_id);

-- Suppressions, keyed by the address's HMAC-SHA-256 under the server's address key (as
-- `contacts.address_key`): the same address gives the same key on a re-import, the entry names
-- no address and no contact, so it outlives the contact's erasure, and without the server's
-- secret nobody can test a guessed address against it.
create table app.suppressions (
    organization_id uuid not null
                    constraint suppressions_organization_fkey references app.organizations (id) on delete cascade,
    address_key     bytea not null constraint suppressions_address_key check (length(address_key) = 32),
    reason          app.suppression_reason not null,
    recorded_by     uuid,
    created_at      timestamptz not null,
    primary key (organization_id, address_key, reason)
);

-- The current state of each contact and purpose: the latest event, read from the ledger itself,
-- so there is no second copy to drift from it. A grant through a sign-up form is pending until
-- its confirmation; an authorization past its expiry is expired. Asked for one contact and
-- purpose, it is one descent of an index ordered by seq within the contact and purpose.
create view app.consent_current with (security_invoker = true) as
select distinct on (e.organization_id, e.contact_id, e.purpose_id)
       e.organization_id, e.contact_id, e.purpose_id, e.seq, e.id as event_id, e.channel, e.kind, e.basis,
       e.notice_sha256, e.expires_at, e.source, e.created_at,
       case
           when e.kind = 'grant' and e.source = 'signup_form' then 'pending'
           when e.kind in ('grant', 'confirm') and e.expires_at <= now() then 'expired'
           when e.kind in ('grant', 'confirm') then 'granted'
           when e.kind = 'revoke' then 'revoked'
           else 'expired'
       end as state
  from app.consent_events e
 order by e.organization_id, e.contact_id, e.purpose_id, e.seq desc;

-- The ledger and the suppressions are append-only for everyone, like the audit records
-- (migration 1): a statement trigger that fires even when no row matches, ENABLE ALWAYS, and
-- the owner's own rights taken away.
create function app.append_only() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
begin
    raise exception '% is append-only: % is not allowed', tg_table_name, tg_op
        using errcode = 'insufficient_privilege',
              hint = 'record a new event instead';
end
$$;
create trigger consent_events_append_only_rows
    before update or delete on app.consent_events
    for each statement execute function app.append_only();
create trigger consent_events_append_only_truncate
    before truncate on app.consent_events
    for each statement execute function app.append_only();
alter table app.consent_events enable always trigger consent_events_append_only_rows;
alter table app.consent_events enable always trigger consent_events_append_only_truncate;
create trigger suppressions_append_only_rows
    before update or delete on app.suppressions
    for each statement execute function app.append_only();
create trigger suppressions_append_only_truncate
    before truncate on app.suppressions
    for each statement execute function app.append_only();
alter table app.suppressions enable always trigger suppressions_append_only_rows;
alter table app.suppressions enable always trigger suppressions_append_only_truncate;
revoke update, delete, truncate on app.consent_events, app.suppressions from mos_owner;

-- Each refusal names its rule in the message too: through Citus the error of a shard's trigger
-- reaches the client without its constraint field, and the message is where DbError finds it.
--
-- The ledger's rules that read other rows, checked once per INSERT statement over all the rows
-- it inserted (`added`), so that an import's INSERT .. SELECT of a million events costs a few
-- set-based queries, not a million. On Citus the trigger runs on the shard; every query here
-- reads colocated tables for one organization at a time (the statement's rows are gathered
-- into arrays first), which Citus runs locally there. Refused, each naming its rule:
-- - anything for an erased contact (consent_events_contact_erased);
-- - a grant on another basis for a purpose that needs a HIPAA authorization
--   (consent_events_hipaa_required);
-- - a grant other than the person's own through the sign-up form, for a contact whose address
--   key is suppressed (consent_events_suppressed); the sign-up's grant stays pending until the
--   person confirms it;
-- - an event whose seq is not its predecessor's + 1 (consent_events_seq);
-- - a confirmation that does not follow a pending sign-up, or names another basis, notice or
--   expiry than the sign-up did (consent_events_confirm_pending).
create function app.consent_events_check() returns trigger
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
                    where c.organization_id = v_org and s.organization_id = v_org and c.id = any(v_granted)) then
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
create trigger consent_events_rules
    after insert on app.consent_events
    referencing new table as added
    for each statement execute function app.consent_events_check();
alter table app.consent_events enable always trigger consent_events_rules;

-- Evidence is accepted only beside the event that committed to it: the event exists, names
-- the same contact, and its evidence_sha256 is SHA-256(salt || UTF-8(host(ip) || LF ||
-- user_agent)) of the evidence given (an absent part is the empty string). The repository
-- computes the event's hash with the same expression (audiences::consent::EVIDENCE_SHA256).
create function app.consent_evidence_check() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    v_events uuid[];
    v_contacts uuid[];
    v_hashes bytea[];
    v_found bigint;
begin
    for v_org in select distinct a.organization_id from added a loop
        select array_agg(a.event_id), array_agg(a.contact_id),
               array_agg(sha256(a.salt || convert_to(coalesce(host(a.ip), '') || E'\n' || coalesce(a.user_agent, ''), 'UTF8')))
          into v_events, v_contacts, v_hashes
          from added a where a.organization_id = v_org;
        select count(*) into v_found
          from app.consent_events e
          join unnest(v_events, v_contacts, v_hashes) w(id, contact_id, evidence_sha256)
            on e.id = w.id and e.contact_id = w.contact_id and e.evidence_sha256 = w.evidence_sha256
         where e.organization_id = v_org;
        if v_found <> cardinality(v_events) then
            raise exception 'evidence is stored only beside the event that committed to it, refused by constraint "consent_evidence_committed"'
                using errcode = '23514', constraint = 'consent_evidence_committed';
        end if;
    end loop;
    return null;
end
$$;
create trigger consent_evidence_committed
    after insert on app.consent_evidence
    referencing new table as added
    for each statement execute function app.consent_evidence_check();
alter table app.consent_evidence enable always trigger consent_evidence_committed;

-- Evidence goes only with its contact's erasure (the contact is erased first).
create function app.consent_evidence_erasable() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    v_contacts uuid[];
begin
    for v_org in select distinct r.organization_id from removed r loop
        select array_agg(distinct r.contact_id) into v_contacts from removed r where r.organization_id = v_org;
        if exists (select from app.contacts c
                    where c.organization_id = v_org and c.id = any(v_contacts) and c.erased_at is null) then
            raise exception 'evidence is deleted only when its contact is erased, refused by constraint "consent_evidence_erased_only"'
                using errcode = '23514', constraint = 'consent_evidence_erased_only';
        end if;
    end loop;
    return null;
end
$$;
create trigger consent_evidence_erased_only
    after delete on app.consent_evidence
    referencing old table as removed
    for each statement execute function app.consent_evidence_erasable();
alter table app.consent_evidence enable always trigger consent_evidence_erased_only;

alter table app.contacts enable row level security;
alter table app.contacts force row level security;
alter table app.contact_attributes enable row level security;
alter table app.contact_attributes force row level security;
alter table app.contact_attribute_choices enable row level security;
alter table app.contact_attribute_choices force row level security;
alter table app.contact_attribute_values enable row level security;
alter table app.contact_attribute_values force row level security;
alter table app.purposes enable row level security;
alter table app.purposes force row level security;
alter table app.notices enable row level security;
alter table app.notices force row level security;
alter table app.consent_events enable row level security;
alter table app.consent_events force row level security;
alter table app.consent_evidence enable row level security;
alter table app.consent_evidence force row level security;
alter table app.suppressions enable row level security;
alter table app.suppressions force row level security;
create policy tenant_isolation on app.contacts
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
create policy tenant_isolation on app.contact_attributes
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
create policy tenant_isolation on app.contact_attribute_choices
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
create policy tenant_isolation on app.contact_attribute_values
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
create policy tenant_isolation on app.purposes
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
create policy tenant_isolation on app.notices
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
create policy tenant_isolation on app.consent_events
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
create policy tenant_isolation on app.consent_evidence
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
create policy tenant_isolation on app.suppressions
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());

revoke all on app.contacts, app.contact_attributes, app.contact_attribute_choices, app.contact_attribute_values,
    app.purposes, app.notices, app.consent_events, app.consent_evidence, app.suppressions,
    app.consent_current from public;
grant select, insert, update on app.contacts to app_user;
-- Definitions do not change under the values that follow them: a new rule is a new attribute.
grant select, insert on app.contact_attributes, app.contact_attribute_choices to app_user;
grant select, insert, update, delete on app.contact_attribute_values to app_user;
grant select, insert on app.purposes, app.notices to app_user;
-- The ledger and the suppressions only grow; evidence is added, and deleted only by erasure
-- (app.consent_evidence_erasable).
grant select, insert on app.consent_events, app.suppressions to app_user;
grant select, insert, delete on app.consent_evidence to app_user;
grant select on app.consent_current to app_user;

revoke all on function app.contacts_guard(), app.append_only(), app.consent_events_check(),
    app.consent_evidence_check(), app.consent_evidence_erasable() from public;
