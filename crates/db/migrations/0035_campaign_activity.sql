-- Migration 35: what each campaign's messages did, hour by hour (docs/sending.md, "Reports").
--
-- `campaign_activity` holds, per campaign and UTC hour: messages handed over (`sent`), reported
-- delivered, deferred (a DSN's delay), bounced for good or for now (refused at hand-over, by the
-- reply as `app.hard_refusal` judges it, or reported later by a DSN about a message the ledger
-- holds as sent), complaints (an ARF `not-spam` is none), recipients who unsubscribed through
-- the campaign's links, clicks, and recipients who clicked for the first time. A campaign's
-- report sums its hours: a few dozen rows for a campaign of a day, never the ledger, the
-- feedback or the clicks.
--
-- It is kept as `sending_counts` is (migration 32): by triggers of the ledger, the feedback, the
-- clicks and the consent ledger, in the transaction of the change, and a guard refuses any other
-- write. Every count only grows: a ledger row reaches `sent` or `bounced` once (counted on the
-- statement that moves it there), feedback and consent events are append-only, a click count
-- only grows.
--
-- The consent ledger now names the campaign whose link a person followed to unsubscribe or
-- change their choices, and whose message they reported as spam (`campaign_id`); it was in the
-- event's audit record only, from which the earlier events' counts are taken below. Their rows
-- stay as they were: the consent ledger is never updated. (No foreign key to the ledger row: on
-- Citus the consent ledger is distributed before the send ledger it would name.)

alter table app.consent_events add column campaign_id uuid;
alter table app.consent_events add constraint consent_events_campaign check (
    campaign_id is null or source::text in ('unsubscribe', 'preference_centre', 'complaint'));

create table app.campaign_activity (
    organization_id uuid not null,
    campaign_id     uuid not null,
    -- The first instant of the hour, in UTC.
    hour            timestamptz not null constraint campaign_activity_hour
        check (hour = date_trunc('hour', hour, 'UTC')),
    sent            bigint not null default 0 constraint campaign_activity_sent check (sent >= 0),
    delivered       bigint not null default 0 constraint campaign_activity_delivered check (delivered >= 0),
    deferred        bigint not null default 0 constraint campaign_activity_deferred check (deferred >= 0),
    hard_bounces    bigint not null default 0 constraint campaign_activity_hard_bounces check (hard_bounces >= 0),
    soft_bounces    bigint not null default 0 constraint campaign_activity_soft_bounces check (soft_bounces >= 0),
    complaints      bigint not null default 0 constraint campaign_activity_complaints check (complaints >= 0),
    unsubscribes    bigint not null default 0 constraint campaign_activity_unsubscribes check (unsubscribes >= 0),
    clicks          bigint not null default 0 constraint campaign_activity_clicks check (clicks >= 0),
    clickers        bigint not null default 0 constraint campaign_activity_clickers check (clickers >= 0),
    primary key (organization_id, campaign_id, hour),
    constraint campaign_activity_run_fkey foreign key (organization_id, campaign_id)
        references app.campaign_runs (organization_id, campaign_id)
);

-- Adds counts to organization `p_org`'s hours: one entry per (campaign, instant, measure, n),
-- summed per campaign and hour first (an upsert may touch a row once). Joined with the
-- organization's runs, a colocated table read by its key, so that on Citus the statement is
-- routed to the tenant's shard.
create function app.campaign_activity_add(p_org uuid, p_campaigns uuid[], p_at timestamptz[], p_measures text[],
                                          p_ns bigint[])
    returns void
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
begin
    insert into app.campaign_activity as t
           (organization_id, campaign_id, hour, sent, delivered, deferred, hard_bounces, soft_bounces, complaints,
            unsubscribes, clicks, clickers)
    select r.organization_id, w.campaign_id, w.hour,
           coalesce(sum(w.n) filter (where w.measure = 'sent'), 0),
           coalesce(sum(w.n) filter (where w.measure = 'delivered'), 0),
           coalesce(sum(w.n) filter (where w.measure = 'deferred'), 0),
           coalesce(sum(w.n) filter (where w.measure = 'hard_bounces'), 0),
           coalesce(sum(w.n) filter (where w.measure = 'soft_bounces'), 0),
           coalesce(sum(w.n) filter (where w.measure = 'complaints'), 0),
           coalesce(sum(w.n) filter (where w.measure = 'unsubscribes'), 0),
           coalesce(sum(w.n) filter (where w.measure = 'clicks'), 0),
           coalesce(sum(w.n) filter (where w.measure = 'clickers'), 0)
      from app.campaign_runs r
      join (select u.campaign_id, date_trunc('hour', u.at, 'UTC') as hour, u.measure, u.n
              from unnest(p_campaigns, p_at, p_measures, p_ns) u(campaign_id, at, measure, n)) w
        on w.campaign_id = r.campaign_id
     where r.organization_id = p_org
     group by r.organization_id, w.campaign_id, w.hour
    on conflict (organization_id, campaign_id, hour) do update
       set sent = t.sent + excluded.sent, delivered = t.delivered + excluded.delivered,
           deferred = t.deferred + excluded.deferred, hard_bounces = t.hard_bounces + excluded.hard_bounces,
           soft_bounces = t.soft_bounces + excluded.soft_bounces, complaints = t.complaints + excluded.complaints,
           unsubscribes = t.unsubscribes + excluded.unsubscribes, clicks = t.clicks + excluded.clicks,
           clickers = t.clickers + excluded.clickers;
end
$$;

-- What the ledger, the feedback, the clicks and the consent ledger already hold, before the
-- guard below refuses a write from outside a trigger: the same rules as the triggers further
-- down. Clicks before this migration are counted in the hour of their last click, the only time
-- a row keeps besides its first.
insert into app.campaign_activity
       (organization_id, campaign_id, hour, sent, delivered, deferred, hard_bounces, soft_bounces, complaints,
        unsubscribes, clicks, clickers)
select e.organization_id, e.campaign_id, date_trunc('hour', e.at, 'UTC'),
       sum(e.sent), sum(e.delivered), sum(e.deferred), sum(e.hard), sum(e.soft), sum(e.complaints),
       sum(e.unsubscribes), sum(e.clicks), sum(e.clickers)
  from (select m.organization_id, m.campaign_id, case when m.state = 'sent' then m.sent_at else m.updated_at end as at,
               (m.state = 'sent')::int as sent, 0 as delivered, 0 as deferred,
               (m.state = 'bounced' and app.hard_refusal(m.reply))::int as hard,
               (m.state = 'bounced' and not app.hard_refusal(m.reply))::int as soft,
               0 as complaints, 0 as unsubscribes, 0 as clicks, 0 as clickers
          from app.campaign_messages m where m.state in ('sent', 'bounced')
        union all
        select f.organization_id, f.campaign_id, f.received_at, 0, (f.kind = 'delivered')::int, (f.kind = 'delayed')::int,
               (f.kind = 'hard_bounce' and m.state = 'sent')::int, (f.kind = 'soft_bounce' and m.state = 'sent')::int,
               (f.kind = 'complaint' and f.code <> 'not-spam')::int, 0, 0, 0
          from app.delivery_feedback f
          join app.campaign_messages m
            on m.organization_id = f.organization_id and m.campaign_id = f.campaign_id and m.contact_id = f.contact_id
        union all
        select c.organization_id, c.campaign_id, c.last_at, 0, 0, 0, 0, 0, 0, 0, c.clicks, 0
          from app.campaign_clicks c
        union all
        select c.organization_id, c.campaign_id, min(c.first_at), 0, 0, 0, 0, 0, 0, 0, 0, 1
          from app.campaign_clicks c
         group by c.organization_id, c.campaign_id, c.contact_id
        union all
        select a.organization_id, (a.metadata ->> 'campaign')::uuid, min(a.created_at), 0, 0, 0, 0, 0, 0, 1, 0, 0
          from app.audit_logs a
         where a.action = 'consent.revoked' and a.metadata ->> 'source' in ('unsubscribe', 'preference_centre')
           and a.metadata ? 'campaign'
           and exists (select 1 from app.campaign_runs r
                        where r.organization_id = a.organization_id and r.campaign_id = (a.metadata ->> 'campaign')::uuid)
         group by a.organization_id, (a.metadata ->> 'campaign')::uuid, a.metadata ->> 'contact') e
 group by e.organization_id, e.campaign_id, date_trunc('hour', e.at, 'UTC');

create function app.campaign_activity_guard() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
begin
    if pg_trigger_depth() < 2 then
        raise exception 'campaign_activity is written only by the triggers of the send ledger, the feedback, the clicks and the consent ledger: % is not allowed, refused by constraint "campaign_activity_derived"', tg_op
            using errcode = 'insufficient_privilege', constraint = 'campaign_activity_derived',
                  hint = 'change the ledger, or record feedback, a click or a consent event instead';
    end if;
    return null;
end
$$;
create trigger campaign_activity_derived
    before insert or update or delete on app.campaign_activity
    for each statement execute function app.campaign_activity_guard();
create trigger campaign_activity_derived_truncate
    before truncate on app.campaign_activity
    for each statement execute function app.campaign_activity_guard();
alter table app.campaign_activity enable always trigger campaign_activity_derived;
alter table app.campaign_activity enable always trigger campaign_activity_derived_truncate;

-- Ledger rows the statement moved to `sent` (at `sent_at`) or `bounced` (at `updated_at`, hard
-- or soft by the relay's reply). A row already in its state before the statement (an erasure of
-- a sent row's values) is not counted again.
create function app.campaign_activity_follow_ledger() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    d record;
begin
    for v_org in select distinct c.organization_id from changed_to c where c.state in ('sent', 'bounced') loop
        select array_agg(n.campaign_id) as campaigns,
               array_agg(case when n.state = 'sent' then n.sent_at else n.updated_at end) as ats,
               array_agg(case when n.state = 'sent' then 'sent'
                              when app.hard_refusal(n.reply) then 'hard_bounces' else 'soft_bounces' end) as measures
          into d
          from changed_to n
          join changed_from o on o.campaign_id = n.campaign_id and o.contact_id = n.contact_id
         where n.organization_id = v_org and n.state in ('sent', 'bounced') and o.state is distinct from n.state;
        if d.campaigns is not null then
            perform app.campaign_activity_add(v_org, d.campaigns, d.ats, d.measures,
                                              array_fill(1::bigint, array[cardinality(d.campaigns)]));
        end if;
    end loop;
    return null;
end
$$;
create trigger campaign_messages_activity
    after update on app.campaign_messages
    referencing old table as changed_from new table as changed_to
    for each statement execute function app.campaign_activity_follow_ledger();
alter table app.campaign_messages enable always trigger campaign_messages_activity;

-- The statement's feedback, at its `received_at`. A bounce about a message the ledger already
-- counted as refused is left out, as `sending_counts` leaves it out; the statement's rows are
-- gathered into arrays before the ledger is read (Citus cannot join a transition table with a
-- distributed one).
create function app.campaign_activity_follow_feedback() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    v_campaigns uuid[];
    v_contacts uuid[];
    v_kinds text[];
    v_codes text[];
    v_ats timestamptz[];
    d record;
begin
    for v_org in select distinct a.organization_id from added a loop
        select array_agg(a.campaign_id), array_agg(a.contact_id), array_agg(a.kind::text), array_agg(a.code),
               array_agg(a.received_at)
          into v_campaigns, v_contacts, v_kinds, v_codes, v_ats
          from added a
         where a.organization_id = v_org;
        select array_agg(f.campaign_id) as campaigns, array_agg(f.at) as ats, array_agg(f.measure) as measures
          into d
          from (select w.campaign_id, w.at,
                       case w.kind when 'delivered' then 'delivered' when 'delayed' then 'deferred'
                                   when 'complaint' then 'complaints' when 'hard_bounce' then 'hard_bounces'
                                   else 'soft_bounces' end as measure
                  from unnest(v_campaigns, v_contacts, v_kinds, v_codes, v_ats) w(campaign_id, contact_id, kind, code, at)
                 where not (w.kind = 'complaint' and w.code = 'not-spam')
                   and not (w.kind in ('hard_bounce', 'soft_bounce')
                            and exists (select 1 from app.campaign_messages m
                                         where m.organization_id = v_org and m.campaign_id = w.campaign_id
                                           and m.contact_id = w.contact_id and m.state = 'bounced'))) f;
        if d.campaigns is not null then
            perform app.campaign_activity_add(v_org, d.campaigns, d.ats, d.measures,
                                              array_fill(1::bigint, array[cardinality(d.campaigns)]));
        end if;
    end loop;
    return null;
end
$$;
create trigger delivery_feedback_activity
    after insert on app.delivery_feedback
    referencing new table as added
    for each statement execute function app.campaign_activity_follow_feedback();
alter table app.delivery_feedback enable always trigger delivery_feedback_activity;

-- A click row: the clicks it added, at its last click; a new row of a contact with no other row
-- in the campaign is a recipient's first click. The link tallies' row trigger (migration 31)
-- does this too, so that a click runs one trigger, not two.
create or replace function app.campaign_link_tallies_follow() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_new bigint := case when tg_op = 'INSERT' then 1 else 0 end;
    v_clicks bigint := new.clicks - case when tg_op = 'INSERT' then 0 else old.clicks end;
    v_first boolean;
begin
    if tg_op = 'UPDATE' and (new.organization_id, new.campaign_id, new.contact_id, new.link)
                            is distinct from (old.organization_id, old.campaign_id, old.contact_id, old.link) then
        raise exception 'a click''s message and link never change, refused by constraint "campaign_clicks_counted"'
            using errcode = 'check_violation', constraint = 'campaign_clicks_counted';
    end if;
    if v_clicks < 0 then
        raise exception 'a click count only grows, refused by constraint "campaign_clicks_counted"'
            using errcode = 'check_violation', constraint = 'campaign_clicks_counted';
    end if;
    insert into app.campaign_link_tallies as t (organization_id, campaign_id, link, unique_clicks, clicks)
    values (new.organization_id, new.campaign_id, new.link, v_new, v_clicks)
    on conflict (organization_id, campaign_id, link)
    do update set unique_clicks = t.unique_clicks + excluded.unique_clicks, clicks = t.clicks + excluded.clicks;
    v_first := tg_op = 'INSERT'
               and not exists (select 1 from app.campaign_clicks c
                                where c.organization_id = new.organization_id and c.campaign_id = new.campaign_id
                                  and c.contact_id = new.contact_id and c.link <> new.link);
    perform app.campaign_activity_add(new.organization_id, array[new.campaign_id, new.campaign_id],
                                      array[new.last_at, new.last_at], array['clicks', 'clickers'],
                                      array[v_clicks, v_first::int::bigint]);
    return null;
end
$$;

-- A recipient who revoked consent through one of the campaign's links (one click, or the
-- preference centre it opens), at the revocation; a later revocation of theirs through the same
-- campaign's links (another purpose) is the same recipient, not counted again.
create function app.campaign_activity_follow_consent() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    v_ids uuid[];
    v_campaigns uuid[];
    v_contacts uuid[];
    v_ats timestamptz[];
    d record;
begin
    for v_org in select distinct a.organization_id from added a
                  where a.campaign_id is not null and a.kind::text = 'revoke'
                    and a.source::text in ('unsubscribe', 'preference_centre') loop
        select array_agg(a.id), array_agg(a.campaign_id), array_agg(a.contact_id), array_agg(a.created_at)
          into v_ids, v_campaigns, v_contacts, v_ats
          from added a
         where a.organization_id = v_org and a.campaign_id is not null and a.kind::text = 'revoke'
           and a.source::text in ('unsubscribe', 'preference_centre');
        select array_agg(p.campaign_id) as campaigns, array_agg(p.at) as ats
          into d
          from (select w.campaign_id, min(w.at) as at
                  from unnest(v_campaigns, v_contacts, v_ats) w(campaign_id, contact_id, at)
                 where not exists (select 1 from app.consent_events e
                                    where e.organization_id = v_org and e.contact_id = w.contact_id
                                      and e.campaign_id = w.campaign_id and e.kind = 'revoke'
                                      and e.source::text in ('unsubscribe', 'preference_centre')
                                      and e.id <> all (v_ids))
                 group by w.campaign_id, w.contact_id) p;
        if d.campaigns is not null then
            perform app.campaign_activity_add(v_org, d.campaigns, d.ats,
                                              array_fill('unsubscribes'::text, array[cardinality(d.campaigns)]),
                                              array_fill(1::bigint, array[cardinality(d.campaigns)]));
        end if;
    end loop;
    return null;
end
$$;
create trigger consent_events_activity
    after insert on app.consent_events
    referencing new table as added
    for each statement execute function app.campaign_activity_follow_consent();
alter table app.consent_events enable always trigger consent_events_activity;

-- Planned for their values each time: Citus routes a generic plan of a statement that names the
-- tenant by a variable to every shard (migrations 27, 31, 32).
alter function app.campaign_activity_add(uuid, uuid[], timestamptz[], text[], bigint[]) set plan_cache_mode = force_custom_plan;
alter function app.campaign_activity_follow_ledger() set plan_cache_mode = force_custom_plan;
alter function app.campaign_activity_follow_feedback() set plan_cache_mode = force_custom_plan;
alter function app.campaign_activity_follow_consent() set plan_cache_mode = force_custom_plan;

alter table app.campaign_activity enable row level security;
alter table app.campaign_activity force row level security;
create policy tenant_isolation on app.campaign_activity
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());

revoke all on app.campaign_activity from public;
-- INSERT and UPDATE for the triggers, which run as app_user; the guard refuses them to anything else.
grant select, insert, update on app.campaign_activity to app_user;
revoke all on function app.campaign_activity_add(uuid, uuid[], timestamptz[], text[], bigint[]),
    app.campaign_activity_guard(), app.campaign_activity_follow_ledger(), app.campaign_activity_follow_feedback(),
    app.campaign_activity_follow_consent() from public;
grant execute on function app.campaign_activity_add(uuid, uuid[], timestamptz[], text[], bigint[]) to app_user;
