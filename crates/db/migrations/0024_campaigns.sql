-- Migration 24: campaigns and their send ledger (docs/campaigns.md).
--
-- A campaign is reviewed as content is: it is a content item of the channel `campaign`, so the
-- one review (its state machine in `content_items_guard`, the separation of duties in
-- `content_events`, the organization's required approvals, the audit records) serves it
-- unchanged. A campaign version's body is the campaign's definition in its canonical JSON form
-- (`mos_domain::campaigns::Definition`), and the version's SHA-256 is the campaign's hash, so an
-- approval names exactly the definition it approves. `campaign_versions` holds the same
-- definition as columns, for the foreign keys that tie it to the content version it sends, the
-- template, the segment version, the sender and the purpose; its trigger refuses a row whose
-- columns say anything else than the body that was reviewed.
--
-- An email template is content of the channel `email_template`: written, reviewed and
-- approved like any piece.
--
-- The send ledger, `campaign_messages`, has one row per campaign and contact. Its statement
-- triggers refuse, whatever the application does:
-- - a row for a campaign version that is not the approved one of a launched campaign, or whose
--   content or template is no longer at its approved version (withdrawn, edited, archived);
-- - a row that is to be sent (`queued`) or handed to the transport (`sending`) for an erased
--   contact, a contact without a live consent for the campaign's purpose, or an address whose
--   suppression is in force.
-- A row moves forward only (the row trigger): queued to sending (a claim) or skipped; sending
-- to sent, bounced, failed, skipped, or back to queued (a retry after a temporary failure);
-- the final states never change.
--
-- `organization_id` leads every key: the tables are distributed by it and colocated with the
-- contacts, the consent ledger and the content, so the triggers' reads stay on one shard.

alter type app.content_channel add value 'email_template';
alter type app.content_channel add value 'campaign';

create type app.campaign_schedule as enum ('now', 'at', 'local_hour');
create type app.campaign_run_state as enum ('sending', 'paused', 'cancelled', 'finished');
create type app.campaign_message_state as enum ('queued', 'sending', 'sent', 'bounced', 'failed', 'skipped');
create type app.campaign_skip_reason as enum
    ('no_consent', 'suppressed', 'erased', 'withdrawn', 'cancelled');

create table app.campaign_versions (
    organization_id   uuid not null,
    campaign_id       uuid not null,
    version           integer not null,
    sha256            bytea not null,
    content_id        uuid not null,
    content_version   integer not null,
    content_sha256    bytea not null,
    template_id       uuid not null,
    template_version  integer not null,
    template_sha256   bytea not null,
    segment_id        uuid not null,
    segment_version   integer not null,
    segment_sha256    bytea not null,
    sender_id         uuid not null,
    purpose_id        uuid not null,
    schedule          app.campaign_schedule not null,
    send_at           timestamptz,
    local_date        date,
    local_hour        smallint constraint campaign_versions_local_hour check (local_hour between 0 and 23),
    -- The personalisation fields, as the definition lists them: `{"name", "kind", "max"}`.
    fields            jsonb not null constraint campaign_versions_fields check (
                          jsonb_typeof(fields) = 'array' and jsonb_array_length(fields) <= 20),
    primary key (organization_id, campaign_id, version),
    constraint campaign_versions_schedule check (
        case schedule
          when 'now' then send_at is null and local_date is null and local_hour is null
          when 'at' then send_at is not null and local_date is null and local_hour is null
          else send_at is null and local_date is not null and local_hour is not null
        end),
    constraint campaign_versions_version_fkey foreign key (organization_id, campaign_id, version, sha256)
        references app.content_versions (organization_id, item_id, number, sha256),
    constraint campaign_versions_content_fkey foreign key (organization_id, content_id, content_version, content_sha256)
        references app.content_versions (organization_id, item_id, number, sha256),
    constraint campaign_versions_template_fkey foreign key (organization_id, template_id, template_version, template_sha256)
        references app.content_versions (organization_id, item_id, number, sha256),
    constraint campaign_versions_sender_fkey foreign key (organization_id, sender_id)
        references app.senders (organization_id, id),
    constraint campaign_versions_purpose_fkey foreign key (organization_id, purpose_id)
        references app.purposes (organization_id, id)
);

-- The columns are the reviewed body, the content and template are of their channels, and the
-- segment version exists and is the one its hash names (checked here, not by a foreign key: the
-- key's check locks the referenced row FOR KEY SHARE as its owner, who has lost UPDATE on the
-- append-only segment versions). Reads only rows of the same organization.
create function app.campaign_versions_check() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_body text;
    v_channels text[];
    v_segment bytea;
begin
    select v.body into v_body from app.content_versions v
     where v.organization_id = new.organization_id and v.item_id = new.campaign_id and v.number = new.version
       and v.channel = 'campaign';
    select array[(select v.channel::text from app.content_versions v
                   where v.organization_id = new.organization_id and v.item_id = new.content_id
                     and v.number = new.content_version),
                 (select v.channel::text from app.content_versions v
                   where v.organization_id = new.organization_id and v.item_id = new.template_id
                     and v.number = new.template_version)]
      into v_channels;
    select s.sha256 into v_segment from app.segment_versions s
     where s.organization_id = new.organization_id and s.segment_id = new.segment_id and s.version = new.segment_version;
    if v_body is null or v_body::jsonb is distinct from jsonb_build_object(
           'channel', 'email',
           'content', jsonb_build_object('item', new.content_id, 'version', new.content_version,
                                         'sha256', encode(new.content_sha256, 'hex')),
           'fields', new.fields,
           'purpose', new.purpose_id,
           'schedule', case new.schedule
                         when 'now' then jsonb_build_object('kind', 'now')
                         when 'at' then jsonb_build_object('kind', 'at', 'at',
                             to_char(new.send_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                         else jsonb_build_object('kind', 'local_hour', 'date', to_char(new.local_date, 'YYYY-MM-DD'),
                                                 'hour', new.local_hour)
                       end,
           'segment', jsonb_build_object('id', new.segment_id, 'version', new.segment_version,
                                         'sha256', encode(new.segment_sha256, 'hex')),
           'sender', new.sender_id,
           'template', jsonb_build_object('item', new.template_id, 'version', new.template_version,
                                          'sha256', encode(new.template_sha256, 'hex'))) then
        raise exception 'a campaign version is the definition its reviewed body states, refused by constraint "campaign_versions_body"'
            using errcode = '23514', constraint = 'campaign_versions_body';
    end if;
    if v_channels is distinct from array['email', 'email_template'] then
        raise exception 'a campaign sends email content in an email template, refused by constraint "campaign_versions_channels"'
            using errcode = '23514', constraint = 'campaign_versions_channels';
    end if;
    if v_segment is distinct from new.segment_sha256 then
        raise exception 'the segment version is the one its hash names, refused by constraint "campaign_versions_segment_hash"'
            using errcode = '23514', constraint = 'campaign_versions_segment_hash';
    end if;
    return new;
end
$$;
create trigger campaign_versions_check before insert on app.campaign_versions
    for each row execute function app.campaign_versions_check();
create trigger campaign_versions_append_only_rows
    before update or delete on app.campaign_versions
    for each statement execute function app.append_only();
create trigger campaign_versions_append_only_truncate
    before truncate on app.campaign_versions
    for each statement execute function app.append_only();
alter table app.campaign_versions enable always trigger campaign_versions_append_only_rows;
alter table app.campaign_versions enable always trigger campaign_versions_append_only_truncate;

-- A launched campaign: the version that was launched and how its sending stands.
create table app.campaign_runs (
    organization_id uuid not null,
    campaign_id     uuid not null,
    version         integer not null,
    state           app.campaign_run_state not null,
    launched_by     uuid not null,
    launched_at     timestamptz not null,
    -- The audience snapshot's size: every row the launch wrote, queued or skipped.
    recipients      bigint not null constraint campaign_runs_recipients check (recipients >= 0),
    finished_at     timestamptz,
    primary key (organization_id, campaign_id),
    constraint campaign_runs_finished check ((state in ('finished', 'cancelled')) = (finished_at is not null)),
    constraint campaign_runs_version_fkey foreign key (organization_id, campaign_id, version)
        references app.campaign_versions (organization_id, campaign_id, version)
);
create index campaign_runs_sending_idx on app.campaign_runs (organization_id, launched_at) where state = 'sending';

create table app.campaign_messages (
    organization_id uuid not null,
    campaign_id     uuid not null,
    contact_id      uuid not null,
    version         integer not null,
    state           app.campaign_message_state not null,
    skip_reason     app.campaign_skip_reason,
    attempts        smallint not null default 0 constraint campaign_messages_attempts check (attempts >= 0),
    -- Not handed over before this: the schedule, or the backoff after a temporary failure.
    not_before      timestamptz not null,
    -- A claim holds the row until then; after it, another worker may claim it again.
    lease_until     timestamptz,
    -- The SMTP reply of the last attempt (code and text), bounded.
    reply           text constraint campaign_messages_reply check (length(reply) <= 1000),
    updated_at      timestamptz not null,
    -- A sent message: the batch it was recorded in (one audit record with the Merkle root of
    -- its messages' hashes), its hash (mos_domain::campaigns::message_hash), and the
    -- commitment to the personalisation values it was rendered with: SHA-256 of a salt and the
    -- values, which are kept beside it until the contact is erased, so that a message can be
    -- rendered again and proven, and an erasure leaves every hash standing.
    -- When the message was last handed to the transport (claimed).
    claimed_at      timestamptz,
    batch           uuid,
    sent_at         timestamptz,
    message_sha256  bytea constraint campaign_messages_message_sha256 check (length(message_sha256) = 32),
    values_commitment bytea constraint campaign_messages_values_commitment check (length(values_commitment) = 32),
    personalisation jsonb constraint campaign_messages_personalisation check (jsonb_typeof(personalisation) = 'object'),
    personalisation_salt bytea constraint campaign_messages_personalisation_salt check (length(personalisation_salt) = 16),
    primary key (organization_id, campaign_id, contact_id),
    constraint campaign_messages_sent check (
        (state = 'sent') = (batch is not null and sent_at is not null and message_sha256 is not null
                            and values_commitment is not null)
        and (state <> 'sent' or claimed_at is not null)),
    constraint campaign_messages_erasable check ((personalisation is null) = (personalisation_salt is null)),
    constraint campaign_messages_skip check ((state = 'skipped') = (skip_reason is not null)),
    constraint campaign_messages_lease check ((state = 'sending') = (lease_until is not null)),
    constraint campaign_messages_run_fkey foreign key (organization_id, campaign_id)
        references app.campaign_runs (organization_id, campaign_id),
    constraint campaign_messages_contact_fkey foreign key (organization_id, contact_id)
        references app.contacts (organization_id, id)
);
-- What a claim looks for: the rows of a campaign that are due, in a stable order.
create index campaign_messages_due_idx on app.campaign_messages (organization_id, campaign_id, not_before, contact_id)
    where state = 'queued';
create index campaign_messages_leased_idx on app.campaign_messages (organization_id, campaign_id, lease_until)
    where state = 'sending';
create index campaign_messages_state_idx on app.campaign_messages (organization_id, campaign_id, state, contact_id);
create index campaign_messages_batch_idx on app.campaign_messages (organization_id, campaign_id, batch, contact_id)
    where batch is not null;
create index campaign_messages_contact_idx on app.campaign_messages (organization_id, contact_id);

-- A run moves forward only: sending and paused alternate; cancelled and finished are final.
create function app.campaign_runs_forward() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
begin
    if (new.organization_id, new.campaign_id, new.version, new.launched_by, new.launched_at)
       is distinct from (old.organization_id, old.campaign_id, old.version, old.launched_by, old.launched_at) then
        raise exception 'a campaign run keeps its campaign, version and launch, refused by constraint "campaign_runs_identity"'
            using errcode = '23514', constraint = 'campaign_runs_identity';
    end if;
    if old.state in ('cancelled', 'finished')
       or (new.state <> old.state and (old.state::text, new.state::text) not in (
           ('sending', 'paused'), ('paused', 'sending'), ('sending', 'cancelled'), ('paused', 'cancelled'),
           ('sending', 'finished'))) then
        raise exception 'a campaign run cannot go from % to %, refused by constraint "campaign_runs_transition"', old.state, new.state
            using errcode = '23514', constraint = 'campaign_runs_transition';
    end if;
    return new;
end
$$;
create trigger campaign_runs_forward before update on app.campaign_runs
    for each row execute function app.campaign_runs_forward();

-- A message row moves forward only, and keeps what it is about.
create function app.campaign_messages_forward() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
begin
    if (new.organization_id, new.campaign_id, new.contact_id, new.version)
       is distinct from (old.organization_id, old.campaign_id, old.contact_id, old.version) then
        raise exception 'a campaign message keeps its campaign, contact and version, refused by constraint "campaign_messages_identity"'
            using errcode = '23514', constraint = 'campaign_messages_identity';
    end if;
    if new.state <> old.state and (old.state::text, new.state::text) not in (
        ('queued', 'sending'), ('queued', 'skipped'),
        ('sending', 'sent'), ('sending', 'bounced'), ('sending', 'failed'), ('sending', 'skipped'),
        ('sending', 'queued')) then
        raise exception 'a campaign message cannot go from % to %, refused by constraint "campaign_messages_transition"', old.state, new.state
            using errcode = '23514', constraint = 'campaign_messages_transition';
    end if;
    -- A final row changes only by an erasure of its personalisation values.
    if old.state not in ('queued', 'sending')
       and (row(new.*) is distinct from row(old.*))
       and (new.personalisation is not null
            or (new.state, new.skip_reason, new.attempts, new.not_before, new.lease_until, new.reply, new.updated_at,
                new.claimed_at, new.batch, new.sent_at, new.message_sha256, new.values_commitment)
               is distinct from
               (old.state, old.skip_reason, old.attempts, old.not_before, old.lease_until, old.reply, old.updated_at,
                old.claimed_at, old.batch, old.sent_at, old.message_sha256, old.values_commitment)) then
        raise exception 'a campaign message in a final state does not change, refused by constraint "campaign_messages_transition"'
            using errcode = '23514', constraint = 'campaign_messages_transition';
    end if;
    if new.attempts < old.attempts then
        raise exception 'a campaign message''s attempts only grow, refused by constraint "campaign_messages_attempts"'
            using errcode = '23514', constraint = 'campaign_messages_attempts';
    end if;
    return new;
end
$$;
create trigger campaign_messages_forward before update on app.campaign_messages
    for each row execute function app.campaign_messages_forward();

-- The rules that read other rows, once per statement over the rows it wrote (`changed`), for
-- the rows that are to be sent (queued) or are being handed over (sending): the launch's
-- INSERT .. SELECT of a million rows costs a few set-based queries. On Citus the trigger runs
-- on the shard and reads colocated tables of one organization at a time.
create function app.campaign_messages_check() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    v_campaigns uuid[];
    v_versions integer[];
    v_states text[];
    v_contacts uuid[];
    v_row_campaigns uuid[];
    v_row_versions integer[];
    v_purposes uuid[];
    v_now timestamptz := now();
begin
    for v_org in select distinct c.organization_id from changed c loop
        select array_agg(c.campaign_id), array_agg(c.version), array_agg(c.state::text)
          into v_campaigns, v_versions, v_states
          from (select distinct c.campaign_id, c.version, c.state from changed c
                 where c.organization_id = v_org and c.state in ('queued', 'sending')) c;
        if v_campaigns is null then
            continue;
        end if;

        -- The campaign stands on the version being sent and is launched (a paused one keeps its
        -- queue but hands nothing over); its content and template stand on the versions the
        -- campaign names.
        if exists (select from unnest(v_campaigns, v_versions, v_states) w(campaign_id, version, state)
                    where not exists (
                        select from app.campaign_versions cv
                          join app.content_items ci on ci.organization_id = v_org and ci.id = cv.campaign_id
                          join app.content_items co on co.organization_id = v_org and co.id = cv.content_id
                          join app.content_items te on te.organization_id = v_org and te.id = cv.template_id
                          join app.campaign_runs r on r.organization_id = v_org and r.campaign_id = cv.campaign_id
                         where cv.organization_id = v_org and cv.campaign_id = w.campaign_id and cv.version = w.version
                           and ci.state = 'published' and ci.published_version = cv.version
                           and co.state in ('approved', 'published') and co.approved_version = cv.content_version
                           and te.state in ('approved', 'published') and te.approved_version = cv.template_version
                           and r.version = cv.version
                           and (r.state = 'sending' or (r.state = 'paused' and w.state = 'queued')))) then
            raise exception 'a message is sent only for a launched campaign whose approved content and template still stand, refused by constraint "campaign_messages_approved"'
                using errcode = '23514', constraint = 'campaign_messages_approved';
        end if;

        -- The statement's rows are gathered into arrays before any distributed table is read:
        -- Citus cannot join a transition table with one.
        select array_agg(c.contact_id), array_agg(c.campaign_id), array_agg(c.version)
          into v_contacts, v_row_campaigns, v_row_versions
          from changed c
         where c.organization_id = v_org and c.state in ('queued', 'sending');
        select array_agg(w.contact_id), array_agg(cv.purpose_id)
          into v_contacts, v_purposes
          from unnest(v_contacts, v_row_campaigns, v_row_versions) w(contact_id, campaign_id, version)
          join app.campaign_versions cv
            on cv.organization_id = v_org and cv.campaign_id = w.campaign_id and cv.version = w.version;

        if exists (select from app.contacts k
                    where k.organization_id = v_org and k.id = any(v_contacts) and k.erased_at is not null) then
            raise exception 'the contact is erased, refused by constraint "campaign_messages_erased"'
                using errcode = '23514', constraint = 'campaign_messages_erased';
        end if;

        -- The latest event of each contact and purpose is a grant in force: not a sign-up
        -- awaiting its confirmation, not past its expiry (app.consent_current's rule).
        if exists (select from unnest(v_contacts, v_purposes) w(contact_id, purpose_id)
                    where not exists (
                        select from (select e.kind, e.source, e.expires_at from app.consent_events e
                                      where e.organization_id = v_org and e.contact_id = w.contact_id
                                        and e.purpose_id = w.purpose_id
                                      order by e.seq desc limit 1) l
                         where l.kind in ('grant', 'confirm')
                           and not (l.kind = 'grant' and l.source = 'signup_form')
                           and (l.expires_at is null or l.expires_at > v_now))) then
            raise exception 'the contact has no live consent for the campaign''s purpose, refused by constraint "campaign_messages_consent"'
                using errcode = '23514', constraint = 'campaign_messages_consent';
        end if;

        -- audiences::suppression::in_force! states the same rule.
        if exists (select from app.contacts k
                     join app.suppressions s on s.organization_id = v_org and s.address_key = k.address_key
                    where k.organization_id = v_org and k.id = any(v_contacts)
                      and (s.reason = 'manual'
                           or not exists (select from app.consent_events l
                                           where l.organization_id = v_org and l.contact_id = k.id
                                             and l.kind = 'confirm' and l.created_at > s.created_at))) then
            raise exception 'the address is suppressed, refused by constraint "campaign_messages_suppressed"'
                using errcode = '23514', constraint = 'campaign_messages_suppressed';
        end if;
    end loop;
    return null;
end
$$;
create trigger campaign_messages_added
    after insert on app.campaign_messages
    referencing new table as changed
    for each statement execute function app.campaign_messages_check();
create trigger campaign_messages_changed
    after update on app.campaign_messages
    referencing new table as changed
    for each statement execute function app.campaign_messages_check();

-- The rules are switched off by nothing but dropping them: ENABLE ALWAYS, and `mos db check`
-- reports one that is missing or not (catalog::RULE_TRIGGERS).
alter table app.campaign_versions enable always trigger campaign_versions_check;
alter table app.campaign_runs enable always trigger campaign_runs_forward;
alter table app.campaign_messages enable always trigger campaign_messages_forward;
alter table app.campaign_messages enable always trigger campaign_messages_added;
alter table app.campaign_messages enable always trigger campaign_messages_changed;

alter table app.campaign_versions enable row level security;
alter table app.campaign_versions force row level security;
create policy tenant_isolation on app.campaign_versions
    using (organization_id = app.current_tenant_id())
    with check (organization_id = app.current_tenant_id());
alter table app.campaign_runs enable row level security;
alter table app.campaign_runs force row level security;
create policy tenant_isolation on app.campaign_runs
    using (organization_id = app.current_tenant_id())
    with check (organization_id = app.current_tenant_id());
alter table app.campaign_messages enable row level security;
alter table app.campaign_messages force row level security;
create policy tenant_isolation on app.campaign_messages
    using (organization_id = app.current_tenant_id())
    with check (organization_id = app.current_tenant_id());

revoke all on app.campaign_versions, app.campaign_runs, app.campaign_messages from public;
grant select, insert on app.campaign_versions to app_user;
grant select, insert on app.campaign_runs to app_user;
grant update (state, recipients, finished_at) on app.campaign_runs to app_user;
grant select, insert on app.campaign_messages to app_user;
grant update (state, skip_reason, attempts, not_before, lease_until, reply, updated_at, claimed_at, batch, sent_at, message_sha256,
              values_commitment, personalisation, personalisation_salt) on app.campaign_messages to app_user;
-- Unlike the consent ledger, the owner keeps UPDATE on the versions (the ENABLE ALWAYS trigger
-- refuses every change anyway): the runs' foreign key locks a version FOR KEY SHARE as its owner.
revoke all on function app.campaign_versions_check(), app.campaign_runs_forward(), app.campaign_messages_forward(),
    app.campaign_messages_check() from public;
