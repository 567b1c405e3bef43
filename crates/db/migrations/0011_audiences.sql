-- Audiences and consent: contacts with typed custom attributes, purposes with their notice
-- versions, an append-only consent ledger with erasable evidence beside it, and a suppression
-- list keyed by a keyed hash of the address. docs/consent.md describes the model.
--
-- Every table carries `organization_id` first in every key and foreign key, so that Citus keeps
-- a tenant's contacts, their attribute values, their consent and its suppressions on one shard.
-- The rules that read more than one row (a grant for a suppressed address, a confirmation
-- without a pending sign-up, erasure) live in SECURITY DEFINER functions that run on the
-- coordinator and name the tenant in every statement, not in row triggers: a trigger runs on a
-- shard, where reading another table is not safe. app_user cannot write the ledger, the
-- evidence or the suppressions except through those functions.

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
    name            text constraint contacts_name check (length(name) between 1 and 200),
    locale          text constraint contacts_locale check (locale ~ '^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
    time_zone       text constraint contacts_time_zone check (length(time_zone) between 1 and 64),
    tags            text[] not null default '{}'
                    constraint contacts_tags check (cardinality(tags) <= 50 and array_position(tags, null) is null),
    created_at      timestamptz not null,
    erased_at       timestamptz,
    primary key (organization_id, id),
    constraint contacts_address_key unique (organization_id, address),
    constraint contacts_erased check (
        (erased_at is null and address is not null)
        or (erased_at is not null and address is null and name is null and locale is null
            and time_zone is null and tags = '{}'))
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
        raise exception 'a contact keeps its identity'
            using errcode = '23514', constraint = 'contacts_identity';
    end if;
    if old.erased_at is not null then
        raise exception 'an erased contact does not change'
            using errcode = '23514', constraint = 'contacts_erased_stays';
    end if;
    if new.erased_at is null and new.address is distinct from old.address then
        raise exception 'a contact keeps its address; another address is another contact'
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
-- is the current state (app.consent_current), and the unique key refuses two events that both
-- claim to follow the same one.
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
-- ledger's owner, which has lost UPDATE on the ledger. Only app.consent_append writes here,
-- in the statement after the event it belongs to.
create table app.consent_evidence (
    organization_id uuid not null,
    event_id        uuid not null,
    salt            bytea not null constraint consent_evidence_salt check (length(salt) = 16),
    ip              inet,
    user_agent      text constraint consent_evidence_user_agent check (length(user_agent) <= 1000),
    primary key (organization_id, event_id)
);

-- Suppressions, keyed by HMAC-SHA-256 of the normalised address under the organization's key
-- (app.audience_keys): the same address gives the same key on a re-import, the entry names no
-- address and no contact, so it outlives the contact's erasure, and one tenant's entries say
-- nothing about another's.
create table app.suppressions (
    organization_id uuid not null
                    constraint suppressions_organization_fkey references app.organizations (id) on delete cascade,
    address_key     bytea not null constraint suppressions_address_key check (length(address_key) = 32),
    reason          app.suppression_reason not null,
    recorded_by     uuid,
    created_at      timestamptz not null,
    primary key (organization_id, address_key, reason)
);

-- The organization's suppression key. Only the definer functions read it; app_user cannot.
create table app.audience_keys (
    organization_id uuid not null
                    constraint audience_keys_organization_fkey references app.organizations (id) on delete cascade,
    hmac_key        bytea not null constraint audience_keys_hmac_key check (length(hmac_key) = 32),
    primary key (organization_id)
);

-- The current state of each contact and purpose: the latest event, read from the ledger itself,
-- so there is no second copy to drift from it. A grant through a sign-up form is pending until
-- its confirmation; an authorization past its expiry is expired.
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

-- HMAC-SHA-256 (RFC 2104) over the built-in sha256(), so that no extension is needed.
create function app.hmac_sha256(p_key bytea, p_message bytea) returns bytea
    language plpgsql immutable strict
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_key bytea := p_key;
    v_inner bytea;
    v_outer bytea;
begin
    if length(v_key) > 64 then
        v_key := sha256(v_key);
    end if;
    v_key := v_key || decode(repeat('00', 64 - length(v_key)), 'hex');
    v_inner := v_key;
    v_outer := v_key;
    for i in 0..63 loop
        v_inner := set_byte(v_inner, i, get_byte(v_key, i) # 54);
        v_outer := set_byte(v_outer, i, get_byte(v_key, i) # 92);
    end loop;
    return sha256(v_outer || sha256(v_inner || p_message));
end
$$;

create function app.require_tenant(p_org uuid) returns void
    language plpgsql stable
    set search_path = pg_catalog, pg_temp
    as $$
begin
    if p_org is null or p_org is distinct from app.current_tenant_id() then
        raise exception 'the organization named is not the transaction''s tenant'
            using errcode = 'insufficient_privilege';
    end if;
end
$$;

-- The suppression key of a normalised address in the tenant, making the tenant's secret on
-- first use (256 bits from two random UUIDs' 244 random bits, hashed).
create function app.address_key(p_org uuid, p_address text) returns bytea
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_key bytea;
begin
    perform app.require_tenant(p_org);
    select k.hmac_key into v_key from app.audience_keys k where k.organization_id = p_org;
    if v_key is null then
        insert into app.audience_keys (organization_id, hmac_key)
        values (p_org, sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())))
        on conflict (organization_id) do nothing;
        select k.hmac_key into v_key from app.audience_keys k where k.organization_id = p_org;
    end if;
    return app.hmac_sha256(v_key, convert_to(p_address, 'UTF8'));
end
$$;

-- Suppresses a normalised address for a reason; the same address and reason again changes
-- nothing. Returns the address's key.
create function app.suppress(p_org uuid, p_address text, p_reason app.suppression_reason, p_recorded_by uuid,
                             p_now timestamptz) returns bytea
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_key bytea := app.address_key(p_org, p_address);
begin
    insert into app.suppressions (organization_id, address_key, reason, recorded_by, created_at)
    values (p_org, v_key, p_reason, p_recorded_by, p_now)
    on conflict (organization_id, address_key, reason) do nothing;
    return v_key;
end
$$;

-- Appends one consent event for a contact and purpose, with its evidence, and returns its
-- sequence number. The contact's row is locked, so the events of one contact follow each other.
-- Refused: anything for an erased contact; a purpose that needs a HIPAA authorization granted
-- on another basis; a grant for a suppressed address unless it comes from the person through
-- the sign-up form (it stays pending until they confirm it); a confirmation that does not
-- follow a pending sign-up, which it then confirms with the sign-up's basis and notice.
create function app.consent_append(
    p_org uuid, p_id uuid, p_contact uuid, p_purpose uuid, p_kind app.consent_kind, p_basis app.lawful_basis,
    p_notice bytea, p_hipaa jsonb, p_expires_at timestamptz, p_exemption text, p_source app.consent_source,
    p_import_job uuid, p_import_row bigint, p_ip inet, p_user_agent text, p_recorded_by uuid, p_now timestamptz)
    returns integer
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_address text;
    v_erased timestamptz;
    v_channel app.consent_channel;
    v_needs_hipaa boolean;
    v_last app.consent_events;
    v_basis app.lawful_basis := p_basis;
    v_notice bytea := p_notice;
    v_hipaa jsonb := p_hipaa;
    v_expires timestamptz := p_expires_at;
    v_exemption text := p_exemption;
    v_salt bytea;
    v_evidence bytea;
begin
    perform app.require_tenant(p_org);
    select c.address, c.erased_at into v_address, v_erased
      from app.contacts c where c.organization_id = p_org and c.id = p_contact for update;
    if not found then
        raise exception 'no such contact' using errcode = '23503', constraint = 'consent_events_contact_fkey';
    end if;
    if v_erased is not null then
        raise exception 'the contact is erased' using errcode = '23514', constraint = 'consent_events_contact_erased';
    end if;
    select p.channel, p.needs_hipaa_authorization into v_channel, v_needs_hipaa
      from app.purposes p where p.organization_id = p_org and p.id = p_purpose;
    if not found then
        raise exception 'no such purpose' using errcode = '23503', constraint = 'consent_events_purpose_fkey';
    end if;
    select e.* into v_last from app.consent_events e
     where e.organization_id = p_org and e.contact_id = p_contact and e.purpose_id = p_purpose
     order by e.seq desc limit 1;
    if p_kind = 'grant' then
        if v_needs_hipaa and p_basis is distinct from 'hipaa_authorization' then
            raise exception 'this purpose needs a HIPAA authorization'
                using errcode = '23514', constraint = 'consent_events_hipaa_required';
        end if;
        if p_source <> 'signup_form' and exists (
            select from app.suppressions s
             where s.organization_id = p_org and s.address_key = app.address_key(p_org, v_address)) then
            raise exception 'the address is suppressed; only the person can consent again, by a confirmed double opt-in'
                using errcode = '23514', constraint = 'consent_events_suppressed';
        end if;
    elsif p_kind = 'confirm' then
        if v_last.seq is null or v_last.kind <> 'grant' or v_last.source <> 'signup_form' then
            raise exception 'a confirmation follows a pending sign-up'
                using errcode = '23514', constraint = 'consent_events_confirm_pending';
        end if;
        v_basis := v_last.basis;
        v_notice := v_last.notice_sha256;
        v_hipaa := v_last.hipaa;
        v_expires := v_last.expires_at;
        v_exemption := v_last.exemption;
    end if;
    if p_ip is not null or p_user_agent is not null then
        v_salt := uuid_send(gen_random_uuid());
        v_evidence := sha256(v_salt || convert_to(coalesce(host(p_ip), '') || E'\n' || coalesce(p_user_agent, ''), 'UTF8'));
    end if;
    insert into app.consent_events (organization_id, contact_id, purpose_id, seq, id, channel, kind, basis,
                                    notice_sha256, hipaa, expires_at, exemption, source, import_job, import_row,
                                    evidence_sha256, recorded_by, created_at)
    values (p_org, p_contact, p_purpose, coalesce(v_last.seq, 0) + 1, p_id, v_channel, p_kind, v_basis,
            v_notice, v_hipaa, v_expires, v_exemption, p_source, p_import_job, p_import_row,
            v_evidence, p_recorded_by, p_now);
    if v_salt is not null then
        insert into app.consent_evidence (organization_id, event_id, salt, ip, user_agent)
        values (p_org, p_id, v_salt, p_ip, p_user_agent);
    end if;
    return coalesce(v_last.seq, 0) + 1;
end
$$;

-- Erases a contact: its personal data, its attribute values and the evidence of its consent
-- go; the tombstone, the consent events (which name it by id only) and the suppressions (keyed
-- by the address's hash) stay. Answers whether there was a contact to erase.
create function app.contact_erase(p_org uuid, p_contact uuid, p_now timestamptz) returns boolean
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
begin
    perform app.require_tenant(p_org);
    update app.contacts
       set address = null, name = null, locale = null, time_zone = null, tags = '{}', erased_at = p_now
     where organization_id = p_org and id = p_contact and erased_at is null;
    if not found then
        return false;
    end if;
    delete from app.contact_attribute_values where organization_id = p_org and contact_id = p_contact;
    delete from app.consent_evidence v
     using app.consent_events e
     where v.organization_id = p_org and e.organization_id = p_org and e.contact_id = p_contact
       and v.event_id = e.id;
    return true;
end
$$;

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
alter table app.audience_keys enable row level security;
alter table app.audience_keys force row level security;
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
create policy tenant_isolation on app.audience_keys
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());

revoke all on app.contacts, app.contact_attributes, app.contact_attribute_choices, app.contact_attribute_values,
    app.purposes, app.notices, app.consent_events, app.consent_evidence, app.suppressions, app.audience_keys,
    app.consent_current from public;
grant select, insert, update on app.contacts to app_user;
-- Definitions do not change under the values that follow them: a new rule is a new attribute.
grant select, insert on app.contact_attributes, app.contact_attribute_choices to app_user;
grant select, insert, update, delete on app.contact_attribute_values to app_user;
grant select, insert on app.purposes, app.notices to app_user;
-- The ledger, its evidence and the suppressions are written only by the functions below.
grant select on app.consent_events, app.consent_evidence, app.suppressions, app.consent_current to app_user;
grant select, update on app.contacts to mos_definer;
grant select on app.purposes to mos_definer;
grant select, delete on app.contact_attribute_values to mos_definer;
grant select, insert on app.consent_events, app.suppressions, app.audience_keys to mos_definer;
grant select, insert, delete on app.consent_evidence to mos_definer;

revoke all on function app.contacts_guard(), app.append_only(), app.hmac_sha256(bytea, bytea),
    app.require_tenant(uuid), app.address_key(uuid, text),
    app.suppress(uuid, text, app.suppression_reason, uuid, timestamptz),
    app.consent_append(uuid, uuid, uuid, uuid, app.consent_kind, app.lawful_basis, bytea, jsonb, timestamptz, text,
                       app.consent_source, uuid, bigint, inet, text, uuid, timestamptz),
    app.contact_erase(uuid, uuid, timestamptz) from public;
grant execute on function app.hmac_sha256(bytea, bytea), app.require_tenant(uuid) to app_user, mos_definer;
grant execute on function app.address_key(uuid, text) to app_user, mos_definer;
grant execute on function app.suppress(uuid, text, app.suppression_reason, uuid, timestamptz),
    app.consent_append(uuid, uuid, uuid, uuid, app.consent_kind, app.lawful_basis, bytea, jsonb, timestamptz, text,
                       app.consent_source, uuid, bigint, inet, text, uuid, timestamptz),
    app.contact_erase(uuid, uuid, timestamptz) to app_user;
grant create on schema app to mos_definer;
alter function app.address_key(uuid, text) owner to mos_definer;
alter function app.suppress(uuid, text, app.suppression_reason, uuid, timestamptz) owner to mos_definer;
alter function app.consent_append(uuid, uuid, uuid, uuid, app.consent_kind, app.lawful_basis, bytea, jsonb,
                                  timestamptz, text, app.consent_source, uuid, bigint, inet, text, uuid, timestamptz)
    owner to mos_definer;
alter function app.contact_erase(uuid, uuid, timestamptz) owner to mos_definer;
revoke create on schema app from mos_definer;
