-- Migration 34: signed outgoing webhooks (docs/webhooks.md).
--
-- An organization subscribes an endpoint to event types. The events are written to
-- `webhook_outbox` by statement and row triggers on the tables whose changes they report, in the
-- transaction of the change, so an event exists exactly when its change committed and no code
-- path that changes the ledger, the feedback, the clicks or the consent ledger can forget one.
-- Each trigger first asks whether the organization has an enabled subscription to the type: an
-- organization without webhooks pays one lookup of a small table per statement, nothing per row.
--
-- One outbox row per event and subscription. A delivery job per organization (the jobs queue,
-- `mos_http::webhooks`) claims due rows under a lease and records each attempt; a row is
-- claimable only when no earlier pending row of the same subscription and contact exists, which
-- is what keeps the order per contact. The order is the enqueue time (`clock_timestamp()` read
-- once per trigger call, so two statements of one transaction differ) and the place in the
-- statement (`ord`).
--
-- The event's id is derived from what it reports (type and the source row's key), so an event
-- written twice is one row, and every attempt carries it as `webhook-id`.
--
-- The signing secret is kept only sealed with the server's key, bound to the organization and the
-- subscription, as DKIM keys are (migration 23).

create table app.webhook_subscriptions (
    organization_id      uuid not null,
    id                   uuid not null constraint webhook_subscriptions_id_v7 check (app.is_uuid_v7(id)),
    url                  text not null
        constraint webhook_subscriptions_url check (length(url) between 8 and 2000 and url ~ '^https?://'),
    events               text[] not null
        constraint webhook_subscriptions_events check (
            cardinality(events) >= 1
            and events <@ array['message.sent', 'message.delivered', 'message.bounced', 'message.complained',
                                'message.clicked', 'contact.unsubscribed', 'consent.changed']),
    description          text constraint webhook_subscriptions_description check (length(description) <= 200),
    sealed_secret        bytea not null,
    enabled              boolean not null default true,
    -- Why it is disabled: a member did it, or too many attempts in a row failed.
    disabled_reason      text,
    consecutive_failures integer not null default 0
        constraint webhook_subscriptions_failures check (consecutive_failures >= 0),
    created_at           timestamptz not null,
    updated_at           timestamptz not null,
    primary key (organization_id, id),
    constraint webhook_subscriptions_disabled check (
        enabled = (disabled_reason is null) and (disabled_reason is null or disabled_reason in ('member', 'failures'))),
    constraint webhook_subscriptions_org_fkey foreign key (organization_id) references app.organizations (id)
);

create table app.webhook_outbox (
    organization_id uuid not null,
    subscription_id uuid not null,
    event_id        uuid not null,
    event_type      text not null,
    contact_id      uuid,
    -- Ids and kinds only: never an address, a name or a personalisation value.
    data            jsonb not null constraint webhook_outbox_data check (jsonb_typeof(data) = 'object'),
    occurred_at     timestamptz not null,
    enqueued_at     timestamptz not null,
    ord             bigint not null,
    state           text not null default 'pending'
        constraint webhook_outbox_state check (state in ('pending', 'delivered', 'failed')),
    attempts        integer not null default 0 constraint webhook_outbox_attempts check (attempts >= 0),
    next_attempt_at timestamptz not null,
    lease_token     uuid,
    lease_expires_at timestamptz,
    last_attempt_at timestamptz,
    -- The endpoint's HTTP status, or none when it did not answer (`last_error` says why).
    last_status     smallint,
    last_error      text constraint webhook_outbox_last_error check (length(last_error) <= 300),
    finished_at     timestamptz,
    primary key (organization_id, subscription_id, event_id),
    constraint webhook_outbox_lease check ((lease_token is null) = (lease_expires_at is null)),
    constraint webhook_outbox_finished check ((state = 'pending') = (finished_at is null)),
    constraint webhook_outbox_subscription_fkey foreign key (organization_id, subscription_id)
        references app.webhook_subscriptions (organization_id, id)
);
create index webhook_outbox_due on app.webhook_outbox (organization_id, next_attempt_at) where state = 'pending';
create index webhook_outbox_order on app.webhook_outbox (organization_id, subscription_id, contact_id, enqueued_at, ord)
    where state = 'pending';
create index webhook_outbox_log on app.webhook_outbox (organization_id, subscription_id, enqueued_at desc, ord desc);

-- Writes one statement's events of type `p_type` for organization `p_org` to every enabled
-- subscription to that type, or nothing without one. Runs as the invoker (app_user) in the
-- transaction of the change; the tenant is a value, so Citus routes the `INSERT ... SELECT` to its
-- shard (the subscriptions and the outbox are colocated).
create function app.webhook_enqueue(p_org uuid, p_type text, p_keys text[], p_contacts uuid[], p_data jsonb[],
                                    p_at timestamptz[])
    returns void
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_now timestamptz := clock_timestamp();
begin
    if p_keys is null or not exists (select 1 from app.webhook_subscriptions s
                                      where s.organization_id = p_org and s.enabled and p_type = any (s.events)) then
        return;
    end if;
    insert into app.webhook_outbox (organization_id, subscription_id, event_id, event_type, contact_id, data,
                                    occurred_at, enqueued_at, ord, next_attempt_at)
    select s.organization_id, s.id, md5(p_type || ':' || e.key)::uuid, p_type, e.contact, e.data, e.at, v_now, e.n, v_now
      from app.webhook_subscriptions s
     cross join lateral unnest(p_keys, p_contacts, p_data, p_at) with ordinality e(key, contact, data, at, n)
     where s.organization_id = p_org and s.enabled and p_type = any (s.events)
    on conflict (organization_id, subscription_id, event_id) do nothing;
end
$$;

-- Whether `p_org` has an enabled subscription to any of `p_types`: the triggers ask before they
-- gather a statement's rows.
create function app.webhook_wanted(p_org uuid, p_types text[]) returns boolean
    language plpgsql stable
    set search_path = pg_catalog, pg_temp
    as $$
begin
    return exists (select 1 from app.webhook_subscriptions s
                    where s.organization_id = p_org and s.enabled and s.events && p_types);
end
$$;

-- Ledger rows that reached `sent`, or `bounced` (refused at hand-over). Only the relay's status
-- code is passed on: its text may name the address.
create function app.webhook_follow_ledger() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    e record;
begin
    for v_org in select distinct c.organization_id from changed_to c where c.state in ('sent', 'bounced') loop
        continue when not app.webhook_wanted(v_org, array['message.sent', 'message.bounced']);
        for e in
            select t.type, array_agg(t.key order by t.at, t.key) as keys, array_agg(t.contact order by t.at, t.key) as contacts,
                   array_agg(t.data order by t.at, t.key) as data, array_agg(t.at order by t.at, t.key) as ats
              from (select case when n.state = 'sent' then 'message.sent' else 'message.bounced' end as type,
                           n.campaign_id::text || ':' || n.contact_id::text as key, n.contact_id as contact,
                           case when n.state = 'sent' then n.sent_at else n.updated_at end as at,
                           case when n.state = 'sent'
                                then jsonb_build_object('campaign_id', n.campaign_id, 'contact_id', n.contact_id)
                                else jsonb_build_object('campaign_id', n.campaign_id, 'contact_id', n.contact_id,
                                                        'bounce', case when app.hard_refusal(n.reply) then 'hard' else 'soft' end,
                                                        'stage', 'handover', 'status', left(coalesce(n.reply, ''), 3))
                           end as data
                      from changed_to n
                      join changed_from o on o.campaign_id = n.campaign_id and o.contact_id = n.contact_id
                     where n.organization_id = v_org and n.state in ('sent', 'bounced') and o.state is distinct from n.state) t
             group by t.type
        loop
            perform app.webhook_enqueue(v_org, e.type, e.keys, e.contacts, e.data, e.ats);
        end loop;
    end loop;
    return null;
end
$$;
create trigger campaign_messages_webhooks
    after update on app.campaign_messages
    referencing old table as changed_from new table as changed_to
    for each statement execute function app.webhook_follow_ledger();
alter table app.campaign_messages enable always trigger campaign_messages_webhooks;

-- Feedback: a delivery, a bounce reported later, a complaint (an ARF `not-spam` is none). A delay
-- is no event.
create function app.webhook_follow_feedback() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    e record;
begin
    for v_org in select distinct a.organization_id from added a loop
        continue when not app.webhook_wanted(v_org, array['message.delivered', 'message.bounced', 'message.complained']);
        for e in
            select t.type, array_agg(t.key) as keys, array_agg(t.contact) as contacts, array_agg(t.data) as data,
                   array_agg(t.at) as ats
              from (select case a.kind::text when 'delivered' then 'message.delivered'
                                             when 'complaint' then 'message.complained'
                                             else 'message.bounced' end as type,
                           a.campaign_id::text || ':' || a.contact_id::text || ':' || a.kind::text as key,
                           a.contact_id as contact, a.received_at as at,
                           case a.kind::text
                                when 'delivered' then jsonb_build_object('campaign_id', a.campaign_id, 'contact_id', a.contact_id)
                                when 'complaint' then jsonb_build_object('campaign_id', a.campaign_id, 'contact_id', a.contact_id,
                                                                         'complaint', a.code)
                                else jsonb_build_object('campaign_id', a.campaign_id, 'contact_id', a.contact_id,
                                                        'bounce', case when a.kind::text = 'hard_bounce' then 'hard' else 'soft' end,
                                                        'stage', 'report', 'status', a.code)
                           end as data
                      from added a
                     where a.organization_id = v_org and a.kind::text <> 'delayed'
                       and not (a.kind::text = 'complaint' and a.code = 'not-spam')) t
             group by t.type
        loop
            perform app.webhook_enqueue(v_org, e.type, e.keys, e.contacts, e.data, e.ats);
        end loop;
    end loop;
    return null;
end
$$;
create trigger delivery_feedback_webhooks
    after insert on app.delivery_feedback
    referencing new table as added
    for each statement execute function app.webhook_follow_feedback();
alter table app.delivery_feedback enable always trigger delivery_feedback_webhooks;

-- A click: each GET on a tracked link, one event per count (the row counts them).
create function app.webhook_follow_click() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
begin
    if app.webhook_wanted(new.organization_id, array['message.clicked']) then
        perform app.webhook_enqueue(
            new.organization_id, 'message.clicked',
            array[new.campaign_id::text || ':' || new.contact_id::text || ':' || new.link::text || ':' || new.clicks::text],
            array[new.contact_id],
            array[jsonb_build_object('campaign_id', new.campaign_id, 'contact_id', new.contact_id, 'link', new.link)],
            array[new.last_at]);
    end if;
    return null;
end
$$;
create trigger campaign_clicks_webhooks
    after insert or update on app.campaign_clicks
    for each row execute function app.webhook_follow_click();
alter table app.campaign_clicks enable always trigger campaign_clicks_webhooks;

-- The consent ledger: every event is a change of consent; a revocation by the person through an
-- unsubscribe link or the preference centre is also an unsubscribe.
create function app.webhook_follow_consent() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    e record;
begin
    for v_org in select distinct a.organization_id from added a loop
        continue when not app.webhook_wanted(v_org, array['consent.changed', 'contact.unsubscribed']);
        for e in
            select t.type, array_agg(t.key order by t.at, t.key) as keys, array_agg(t.contact order by t.at, t.key) as contacts,
                   array_agg(t.data order by t.at, t.key) as data, array_agg(t.at order by t.at, t.key) as ats
              from (select x.type, a.id::text as key, a.contact_id as contact, a.created_at as at,
                           jsonb_build_object('contact_id', a.contact_id, 'purpose_id', a.purpose_id,
                                              'consent_event_id', a.id, 'kind', a.kind::text, 'source', a.source::text) as data
                      from added a
                     cross join lateral (values ('consent.changed'), ('contact.unsubscribed')) x(type)
                     where a.organization_id = v_org
                       and (x.type = 'consent.changed'
                            or (a.kind::text = 'revoke' and a.source::text in ('unsubscribe', 'preference_centre')))) t
             group by t.type
        loop
            perform app.webhook_enqueue(v_org, e.type, e.keys, e.contacts, e.data, e.ats);
        end loop;
    end loop;
    return null;
end
$$;
create trigger consent_events_webhooks
    after insert on app.consent_events
    referencing new table as added
    for each statement execute function app.webhook_follow_consent();
alter table app.consent_events enable always trigger consent_events_webhooks;

-- Planned for their values each time: Citus routes a generic plan of a statement that names the
-- tenant by a variable to every shard (migrations 27, 31, 32).
alter function app.webhook_enqueue(uuid, text, text[], uuid[], jsonb[], timestamptz[]) set plan_cache_mode = force_custom_plan;
alter function app.webhook_wanted(uuid, text[]) set plan_cache_mode = force_custom_plan;
alter function app.webhook_follow_ledger() set plan_cache_mode = force_custom_plan;
alter function app.webhook_follow_feedback() set plan_cache_mode = force_custom_plan;
alter function app.webhook_follow_click() set plan_cache_mode = force_custom_plan;
alter function app.webhook_follow_consent() set plan_cache_mode = force_custom_plan;

alter table app.webhook_subscriptions enable row level security;
alter table app.webhook_subscriptions force row level security;
create policy tenant_isolation on app.webhook_subscriptions
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
alter table app.webhook_outbox enable row level security;
alter table app.webhook_outbox force row level security;
create policy tenant_isolation on app.webhook_outbox
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());

revoke all on app.webhook_subscriptions, app.webhook_outbox from public;
grant select, insert on app.webhook_subscriptions to app_user;
grant update (sealed_secret, enabled, disabled_reason, consecutive_failures, updated_at)
    on app.webhook_subscriptions to app_user;
-- INSERT for the triggers, which run as app_user; UPDATE of the delivery columns for the job.
grant select, insert on app.webhook_outbox to app_user;
grant update (state, attempts, next_attempt_at, lease_token, lease_expires_at, last_attempt_at, last_status,
              last_error, finished_at)
    on app.webhook_outbox to app_user;
revoke all on function app.webhook_enqueue(uuid, text, text[], uuid[], jsonb[], timestamptz[]),
    app.webhook_wanted(uuid, text[]), app.webhook_follow_ledger(), app.webhook_follow_feedback(),
    app.webhook_follow_click(), app.webhook_follow_consent() from public;
grant execute on function app.webhook_enqueue(uuid, text, text[], uuid[], jsonb[], timestamptz[]),
    app.webhook_wanted(uuid, text[]) to app_user;
