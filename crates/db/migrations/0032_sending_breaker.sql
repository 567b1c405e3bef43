-- Migration 32: each organization's sending counted per UTC day and month, and the breaker that
-- stops its sending when too many of its messages are reported as spam or bounce for good
-- (docs/sending.md, "Complaint-rate breaker").
--
-- `sending_counts` is kept by statement triggers on the send ledger and on the delivery
-- feedback, in the transaction of the change, and a guard refuses any other write, as
-- `campaign_tallies` is (migration 27). What it counts, on the UTC day (and month) of the event:
-- - `sent`: a ledger row reaching `sent` (the relay accepted it), on its `sent_at`;
-- - `refused`: a ledger row reaching `bounced` (the relay refused it with a 5xx at hand-over),
--   on its `updated_at`, and also as a hard or a soft bounce by its reply, as
--   `mos_http::sending::hard_bounce` judges it (5.1.x, or 550, 551, 553 without an enhanced
--   status);
-- - `hard_bounces`, `soft_bounces`, `delivered`, `complaints`: the feedback rows of those kinds,
--   on their `received_at`; a bounce reported about a message the ledger already records as
--   refused is not counted again; an ARF `not-spam` report is no complaint.
-- A ledger row reaches `sent` or `bounced` once and stays (migration 24), and feedback is
-- append-only, so every count only grows. A day or month row is a few integers per
-- organization: a month of reads is thirty rows, never the ledger.
--
-- `sending_breakers` holds each organization's breaker: its settings (the minimum volume before
-- a rate counts, the hard-bounce rate that halts), and where it stands (`clear`, `warned`,
-- `halted`). `mos_db::breaker` judges it in the transaction that records the feedback. While it
-- is `halted`, no campaign run of the organization may be `sending` (the trigger below), and
-- the ledger hands a message over only for a run that is sending (migration 24): nothing goes
-- out until an ADMIN resumes. A run the breaker paused is `held`, so that a resume restarts
-- exactly those, and a member's own pause stays.

create table app.sending_breakers (
    organization_id   uuid not null,
    -- A rate counts once the window holds this many messages handed over.
    min_sent          integer not null default 1000
        constraint sending_breakers_min_sent check (min_sent between 100 and 1000000),
    -- The hard-bounce rate that halts sending, in basis points (500 = 5%).
    hard_bounce_limit integer not null default 500
        constraint sending_breakers_hard_bounce_limit check (hard_bounce_limit between 50 and 2000),
    state             text not null default 'clear'
        constraint sending_breakers_state check (state in ('clear', 'warned', 'halted')),
    -- Why it halted: `complaints` or `hard_bounces`.
    reason            text,
    changed_at        timestamptz,
    primary key (organization_id),
    constraint sending_breakers_reason check (
        (state = 'halted') = (reason is not null) and (reason is null or reason in ('complaints', 'hard_bounces'))),
    constraint sending_breakers_org_fkey foreign key (organization_id) references app.organizations (id)
);

create table app.sending_counts (
    organization_id uuid not null,
    -- `day` or `month`; `starts` is the first day of it, in UTC.
    span            text not null constraint sending_counts_span check (span in ('day', 'month')),
    starts          date not null,
    sent            bigint not null default 0 constraint sending_counts_sent check (sent >= 0),
    refused         bigint not null default 0 constraint sending_counts_refused check (refused >= 0),
    hard_bounces    bigint not null default 0 constraint sending_counts_hard_bounces check (hard_bounces >= 0),
    soft_bounces    bigint not null default 0 constraint sending_counts_soft_bounces check (soft_bounces >= 0),
    delivered       bigint not null default 0 constraint sending_counts_delivered check (delivered >= 0),
    complaints      bigint not null default 0 constraint sending_counts_complaints check (complaints >= 0),
    primary key (organization_id, span, starts),
    constraint sending_counts_breaker_fkey foreign key (organization_id)
        references app.sending_breakers (organization_id)
);

-- Whether a relay's permanent refusal (`code text`, as the ledger keeps the reply) says the
-- mailbox does not exist: the rule of `mos_http::sending::hard_bounce`, which suppresses the
-- address at hand-over (5.1.x, or 550, 551 or 553 without an enhanced status).
create function app.hard_refusal(p_reply text) returns boolean
    language sql immutable
    set search_path = pg_catalog, pg_temp
    as $$
    select case when split_part(coalesce(p_reply, ''), ' ', 2) like '5.%'
                then split_part(p_reply, ' ', 2) like '5.1.%'
                else left(coalesce(p_reply, ''), 3) in ('550', '551', '553')
           end
$$;

-- The first day of a day's month.
create function app.month_of(p_day date) returns date
    language sql immutable
    set search_path = pg_catalog, pg_temp
    as $$ select make_date(extract(year from p_day)::int, extract(month from p_day)::int, 1) $$;

-- What the ledger and the feedback already hold, before the guard below refuses a write from
-- outside a trigger: the same rules as the triggers further down.
insert into app.sending_breakers (organization_id)
select distinct m.organization_id from app.campaign_messages m where m.state in ('sent', 'bounced');
insert into app.sending_counts
       (organization_id, span, starts, sent, refused, hard_bounces, soft_bounces, delivered, complaints)
select e.organization_id, s.span, case s.span when 'day' then e.day else app.month_of(e.day) end,
       sum(e.sent), sum(e.refused), sum(e.hard), sum(e.soft), sum(e.delivered), sum(e.complaints)
  from (select m.organization_id,
               ((case when m.state = 'sent' then m.sent_at else m.updated_at end) at time zone 'UTC')::date as day,
               (m.state = 'sent')::int as sent, (m.state = 'bounced')::int as refused,
               (m.state = 'bounced' and app.hard_refusal(m.reply))::int as hard,
               (m.state = 'bounced' and not app.hard_refusal(m.reply))::int as soft,
               0 as delivered, 0 as complaints
          from app.campaign_messages m where m.state in ('sent', 'bounced')
        union all
        select f.organization_id, (f.received_at at time zone 'UTC')::date,
               0, 0, (f.kind = 'hard_bounce' and m.state = 'sent')::int, (f.kind = 'soft_bounce' and m.state = 'sent')::int,
               (f.kind = 'delivered')::int, (f.kind = 'complaint' and f.code <> 'not-spam')::int
          from app.delivery_feedback f
          join app.campaign_messages m
            on m.organization_id = f.organization_id and m.campaign_id = f.campaign_id and m.contact_id = f.contact_id) e
 cross join (values ('day'), ('month')) s(span)
 group by 1, 2, 3;

create function app.sending_counts_guard() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
begin
    if pg_trigger_depth() < 2 then
        raise exception 'sending_counts is written only by the send ledger''s and the feedback''s triggers: % is not allowed, refused by constraint "sending_counts_derived"', tg_op
            using errcode = 'insufficient_privilege', constraint = 'sending_counts_derived',
                  hint = 'change the ledger or record feedback instead';
    end if;
    return null;
end
$$;
create trigger sending_counts_derived
    before insert or update or delete on app.sending_counts
    for each statement execute function app.sending_counts_guard();
create trigger sending_counts_derived_truncate
    before truncate on app.sending_counts
    for each statement execute function app.sending_counts_guard();
alter table app.sending_counts enable always trigger sending_counts_derived;
alter table app.sending_counts enable always trigger sending_counts_derived_truncate;

-- Adds one statement's counts of organization `p_org`, one row per UTC day (`w.day`), to its
-- day and month rows. Each upsert names the tenant as a value, so that on Citus it is routed to
-- the tenant's shard; the counts only grow, so the upsert's proposed row always passes its
-- checks. The breaker's row is made first, for the counts' foreign key.
create function app.sending_counts_add(p_org uuid, p_days date[], p_sent bigint[], p_refused bigint[],
                                       p_hard bigint[], p_soft bigint[], p_delivered bigint[], p_complaints bigint[])
    returns void
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    w record;
    v_span text;
    v_starts date;
begin
    insert into app.sending_breakers (organization_id) values (p_org) on conflict (organization_id) do nothing;
    for w in select * from unnest(p_days, p_sent, p_refused, p_hard, p_soft, p_delivered, p_complaints)
                       u(day, sent, refused, hard, soft, delivered, complaints) loop
        foreach v_span in array array['day', 'month'] loop
            -- Computed here rather than in the statement: Citus passes the statement's values
            -- to the shard as they are, with no expression over a variable left to misread.
            v_starts := case when v_span = 'day' then w.day else app.month_of(w.day) end;
            insert into app.sending_counts as t
                   (organization_id, span, starts, sent, refused, hard_bounces, soft_bounces, delivered, complaints)
            values (p_org, v_span, v_starts,
                    w.sent, w.refused, w.hard, w.soft, w.delivered, w.complaints)
            on conflict (organization_id, span, starts) do update
               set sent = t.sent + excluded.sent, refused = t.refused + excluded.refused,
                   hard_bounces = t.hard_bounces + excluded.hard_bounces,
                   soft_bounces = t.soft_bounces + excluded.soft_bounces,
                   delivered = t.delivered + excluded.delivered, complaints = t.complaints + excluded.complaints;
        end loop;
    end loop;
end
$$;

-- The ledger's rows that reached `sent` or `bounced`: the statement's new rows in those states
-- count in, its old rows in those states count out (an erasure of a sent row's values changes
-- nothing), grouped by day.
create function app.sending_counts_follow_ledger() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    d record;
begin
    for v_org in select distinct c.organization_id from counted c where c.state in ('sent', 'bounced') loop
        select array_agg(g.day) as days, array_agg(g.sent) as sent, array_agg(g.refused) as refused,
               array_agg(g.hard) as hard, array_agg(g.soft) as soft
          into d
          from (select r.day, sum(r.sent) as sent, sum(r.refused) as refused, sum(r.hard) as hard,
                       sum(r.soft) as soft
                  from (select x.day, x.n * (x.state = 'sent')::int as sent, x.n * (x.state = 'bounced')::int as refused,
                               x.n * (x.state = 'bounced' and x.hard)::int as hard,
                               x.n * (x.state = 'bounced' and not x.hard)::int as soft
                          from (select c.state::text as state, 1 as n,
                                       ((case when c.state = 'sent' then c.sent_at else c.updated_at end)
                                          at time zone 'UTC')::date as day,
                                       app.hard_refusal(c.reply) as hard
                                  from counted c
                                 where c.organization_id = v_org and c.state in ('sent', 'bounced')
                                union all
                                select u.state::text, -1,
                                       ((case when u.state = 'sent' then u.sent_at else u.updated_at end)
                                          at time zone 'UTC')::date,
                                       app.hard_refusal(u.reply)
                                  from uncounted u
                                 where u.organization_id = v_org and u.state in ('sent', 'bounced')) x) r
                 group by r.day
                having sum(r.sent) <> 0 or sum(r.refused) <> 0) g;
        if d.days is not null then
            perform app.sending_counts_add(v_org, d.days, d.sent, d.refused, d.hard, d.soft,
                                           array_fill(0::bigint, array[cardinality(d.days)]),
                                           array_fill(0::bigint, array[cardinality(d.days)]));
        end if;
    end loop;
    return null;
end
$$;
create trigger campaign_messages_counted
    after update on app.campaign_messages
    referencing old table as uncounted new table as counted
    for each statement execute function app.sending_counts_follow_ledger();
alter table app.campaign_messages enable always trigger campaign_messages_counted;

-- The feedback rows of the statement, by day and kind. A bounce about a message the ledger
-- already counted as refused is left out; the statement's rows are gathered into arrays before
-- the ledger is read (Citus cannot join a transition table with a distributed one).
create function app.sending_counts_follow_feedback() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    v_campaigns uuid[];
    v_contacts uuid[];
    v_kinds text[];
    v_codes text[];
    v_days date[];
    d record;
begin
    for v_org in select distinct a.organization_id from added a loop
        select array_agg(a.campaign_id), array_agg(a.contact_id), array_agg(a.kind::text), array_agg(a.code),
               array_agg((a.received_at at time zone 'UTC')::date)
          into v_campaigns, v_contacts, v_kinds, v_codes, v_days
          from added a
         where a.organization_id = v_org;
        select array_agg(g.day) as days, array_agg(g.hard) as hard, array_agg(g.soft) as soft,
               array_agg(g.delivered) as delivered, array_agg(g.complaints) as complaints
          into d
          from (select f.day,
                       count(*) filter (where f.kind = 'hard_bounce' and f.counts) as hard,
                       count(*) filter (where f.kind = 'soft_bounce' and f.counts) as soft,
                       count(*) filter (where f.kind = 'delivered') as delivered,
                       count(*) filter (where f.kind = 'complaint' and f.code <> 'not-spam') as complaints
                  from (select w.day, w.kind, w.code,
                               not exists (select 1 from app.campaign_messages m
                                            where m.organization_id = v_org and m.campaign_id = w.campaign_id
                                              and m.contact_id = w.contact_id and m.state = 'bounced') as counts
                          from unnest(v_campaigns, v_contacts, v_kinds, v_codes, v_days)
                               w(campaign_id, contact_id, kind, code, day)) f
                 group by f.day) g;
        if d.days is not null then
            perform app.sending_counts_add(v_org, d.days, array_fill(0::bigint, array[cardinality(d.days)]),
                                           array_fill(0::bigint, array[cardinality(d.days)]),
                                           d.hard, d.soft, d.delivered, d.complaints);
        end if;
    end loop;
    return null;
end
$$;
create trigger delivery_feedback_counted
    after insert on app.delivery_feedback
    referencing new table as added
    for each statement execute function app.sending_counts_follow_feedback();
alter table app.delivery_feedback enable always trigger delivery_feedback_counted;

-- A run the breaker paused, which its resume restarts; nothing else sets it.
alter table app.campaign_runs add column held boolean not null default false;
alter table app.campaign_runs add constraint campaign_runs_held check (not held or state = 'paused');

-- No run of an organization whose breaker is halted is sending: not launched as sending, not
-- resumed by a member. Reads one row of a colocated table by its key.
create function app.campaign_runs_halted() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
begin
    if new.state = 'sending' and exists (select 1 from app.sending_breakers b
                                          where b.organization_id = new.organization_id and b.state = 'halted') then
        raise exception 'the organization''s sending is halted by its complaint-rate breaker until an ADMIN resumes it, refused by constraint "campaign_runs_halted"'
            using errcode = '23514', constraint = 'campaign_runs_halted';
    end if;
    return new;
end
$$;
create trigger campaign_runs_halted before insert or update on app.campaign_runs
    for each row execute function app.campaign_runs_halted();
alter table app.campaign_runs enable always trigger campaign_runs_halted;

-- The triggers' statements name the tenant by a variable, which PostgreSQL binds as a parameter:
-- after five runs in one session it plans them once for any value, and Citus can no longer route
-- such a plan of an UPDATE .. FROM to the tenant's shard (the ledger's counts of migration 27
-- went to every shard from the sixth statement of a connection on). Planned for their values
-- each time, they stay on one shard.
alter function app.campaign_tallies_follow() set plan_cache_mode = force_custom_plan;
alter function app.sending_counts_add(uuid, date[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[])
    set plan_cache_mode = force_custom_plan;
alter function app.sending_counts_follow_ledger() set plan_cache_mode = force_custom_plan;
alter function app.sending_counts_follow_feedback() set plan_cache_mode = force_custom_plan;

alter table app.sending_breakers enable row level security;
alter table app.sending_breakers force row level security;
create policy tenant_isolation on app.sending_breakers
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
alter table app.sending_counts enable row level security;
alter table app.sending_counts force row level security;
create policy tenant_isolation on app.sending_counts
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());

revoke all on app.sending_breakers, app.sending_counts from public;
grant select, insert on app.sending_breakers to app_user;
grant update (min_sent, hard_bounce_limit, state, reason, changed_at) on app.sending_breakers to app_user;
-- INSERT and UPDATE for the triggers, which run as app_user; the guard refuses them to anything else.
grant select, insert, update on app.sending_counts to app_user;
grant update (held) on app.campaign_runs to app_user;
revoke all on function app.hard_refusal(text), app.month_of(date), app.sending_counts_guard(), app.sending_counts_follow_ledger(),
    app.sending_counts_follow_feedback(), app.campaign_runs_halted(),
    app.sending_counts_add(uuid, date[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[]) from public;
grant execute on function app.hard_refusal(text), app.month_of(date),
    app.sending_counts_add(uuid, date[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[]) to app_user;
