-- Each launched campaign's ledger counted by outcome, kept by the ledger's own statement
-- triggers in the transaction that changes it (docs/campaigns.md, "Progress").
--
-- A campaign's progress is read while it sends, again and again; counted from the ledger it is
-- a walk of every row of the campaign, a million for a million recipients. Here it is a read of
-- a few rows. The outcome is the row's state, or `skipped:<reason>` for a skipped row, as
-- `campaigns::progress` names them.
--
-- Only the ledger writes it, as only the consent ledger writes `consent_state` (migration 25):
-- its AFTER statement triggers, as the invoker (`app_user`), one set-based upsert per
-- organization over the statement's rows; a BEFORE statement guard (ENABLE ALWAYS) refuses any
-- write that does not come from inside a trigger. An update counts the statement's old rows out
-- and its new rows in, so an erasure that changes no outcome changes no count.

create table app.campaign_tallies (
    organization_id uuid not null,
    campaign_id     uuid not null,
    outcome         text not null,
    n               bigint not null constraint campaign_tallies_n check (n >= 0),
    primary key (organization_id, campaign_id, outcome),
    constraint campaign_tallies_run_fkey foreign key (organization_id, campaign_id)
        references app.campaign_runs (organization_id, campaign_id)
);

-- What the ledger already holds, before the guard below refuses a write from outside a trigger.
insert into app.campaign_tallies (organization_id, campaign_id, outcome, n)
select m.organization_id, m.campaign_id, coalesce('skipped:' || m.skip_reason::text, m.state::text), count(*)
  from app.campaign_messages m
 group by 1, 2, 3;

create function app.campaign_tallies_guard() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
begin
    if pg_trigger_depth() < 2 then
        raise exception 'campaign_tallies is written only by the send ledger''s triggers: % is not allowed, refused by constraint "campaign_tallies_derived"', tg_op
            using errcode = 'insufficient_privilege', constraint = 'campaign_tallies_derived',
                  hint = 'change the ledger instead';
    end if;
    return null;
end
$$;
create trigger campaign_tallies_derived
    before insert or update or delete on app.campaign_tallies
    for each statement execute function app.campaign_tallies_guard();
create trigger campaign_tallies_derived_truncate
    before truncate on app.campaign_tallies
    for each statement execute function app.campaign_tallies_guard();
alter table app.campaign_tallies enable always trigger campaign_tallies_derived;
alter table app.campaign_tallies enable always trigger campaign_tallies_derived_truncate;

-- Adds the statement's rows (`counted`) and takes away its old ones (`uncounted`, on an update
-- only). New outcomes are joined with the organization's runs, a colocated table read by its
-- key for one organization, so that on Citus the upsert is one statement routed to the
-- tenant's shard, run there locally as the ledger's other rules are.
create function app.campaign_tallies_follow() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    v_campaigns uuid[];
    v_outcomes text[];
    v_deltas bigint[];
begin
    for v_org in select distinct c.organization_id from counted c loop
        if tg_op = 'INSERT' then
            select array_agg(d.campaign_id), array_agg(d.outcome), array_agg(d.n)
              into v_campaigns, v_outcomes, v_deltas
              from (select c.campaign_id, coalesce('skipped:' || c.skip_reason::text, c.state::text) as outcome,
                           count(*) as n
                      from counted c
                     where c.organization_id = v_org
                     group by 1, 2) d;
        else
            select array_agg(d.campaign_id), array_agg(d.outcome), array_agg(d.n)
              into v_campaigns, v_outcomes, v_deltas
              from (select r.campaign_id, r.outcome, sum(r.n) as n
                      from (select c.campaign_id, coalesce('skipped:' || c.skip_reason::text, c.state::text) as outcome,
                                   1 as n
                              from counted c
                             where c.organization_id = v_org
                            union all
                            select u.campaign_id, coalesce('skipped:' || u.skip_reason::text, u.state::text), -1
                              from uncounted u
                             where u.organization_id = v_org) r
                     group by 1, 2
                    having sum(r.n) <> 0) d;
        end if;
        if v_campaigns is not null then
            -- The counts there are changed in place (an insert's proposed row would be checked,
            -- and refused, before its conflict turned it into an update of a smaller count);
            -- an outcome the campaign has not had yet gets its row.
            update app.campaign_tallies t set n = t.n + w.n
              from unnest(v_campaigns, v_outcomes, v_deltas) w(campaign_id, outcome, n)
             where t.organization_id = v_org and t.campaign_id = w.campaign_id and t.outcome = w.outcome;
            insert into app.campaign_tallies as t (organization_id, campaign_id, outcome, n)
            select r.organization_id, w.campaign_id, w.outcome, w.n
              from app.campaign_runs r
              join unnest(v_campaigns, v_outcomes, v_deltas) w(campaign_id, outcome, n) on w.campaign_id = r.campaign_id
             where r.organization_id = v_org
               and not exists (select 1 from app.campaign_tallies e
                                where e.organization_id = v_org and e.campaign_id = w.campaign_id
                                  and e.outcome = w.outcome)
            on conflict (organization_id, campaign_id, outcome) do update set n = t.n + excluded.n;
        end if;
    end loop;
    return null;
end
$$;
create trigger campaign_messages_tallied
    after insert on app.campaign_messages
    referencing new table as counted
    for each statement execute function app.campaign_tallies_follow();
create trigger campaign_messages_retallied
    after update on app.campaign_messages
    referencing old table as uncounted new table as counted
    for each statement execute function app.campaign_tallies_follow();
alter table app.campaign_messages enable always trigger campaign_messages_tallied;
alter table app.campaign_messages enable always trigger campaign_messages_retallied;

alter table app.campaign_tallies enable row level security;
alter table app.campaign_tallies force row level security;
create policy tenant_isolation on app.campaign_tallies
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());

revoke all on app.campaign_tallies from public;
-- INSERT and UPDATE for the ledger's triggers, which run as app_user; the guard refuses them to
-- anything else.
grant select, insert, update on app.campaign_tallies to app_user;
revoke all on function app.campaign_tallies_guard(), app.campaign_tallies_follow() from public;
