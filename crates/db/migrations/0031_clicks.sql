-- Clicks on the tracked links of sent messages (docs/sending.md, "Clicks"). A message's links
-- point at `mos` (`/c/<token>`, a signed token naming the organization, the campaign, the contact
-- and which link), which redirects to the address the approved content gives that link and
-- records the click here.
--
-- One row per message and link, with how often and when it was first and last followed: the
-- unique clicks are the rows, the total clicks their sum. A person who follows a link a hundred
-- times makes one row, not a hundred, so the table grows with the audience and the links, not
-- with the traffic (the events tables of other systems reach hundreds of millions of rows). The
-- foreign key ties each row to a message of the send ledger; the redirect records a click only
-- for a message that was handed over.
--
-- `campaign_link_tallies` counts them per campaign and link, kept by this table's own row
-- triggers in the transaction that records the click, and written by nothing else (the guard,
-- as for `campaign_tallies`), so that a report reads a row per link and never the clicks.

create table app.campaign_clicks (
    organization_id uuid not null,
    campaign_id     uuid not null,
    contact_id      uuid not null,
    -- The link's place among the message's tracked links, from 0.
    link            smallint not null constraint campaign_clicks_link check (link >= 0),
    first_at        timestamptz not null,
    last_at         timestamptz not null,
    clicks          integer not null constraint campaign_clicks_clicks check (clicks >= 1),
    primary key (organization_id, campaign_id, contact_id, link),
    constraint campaign_clicks_message_fkey foreign key (organization_id, campaign_id, contact_id)
        references app.campaign_messages (organization_id, campaign_id, contact_id),
    constraint campaign_clicks_times check (last_at >= first_at)
);

create table app.campaign_link_tallies (
    organization_id uuid not null,
    campaign_id     uuid not null,
    link            smallint not null,
    -- Recipients who followed the link, and how often it was followed in all.
    unique_clicks   bigint not null constraint campaign_link_tallies_unique check (unique_clicks >= 0),
    clicks          bigint not null constraint campaign_link_tallies_clicks check (clicks >= unique_clicks),
    primary key (organization_id, campaign_id, link),
    constraint campaign_link_tallies_run_fkey foreign key (organization_id, campaign_id)
        references app.campaign_runs (organization_id, campaign_id)
);

create function app.campaign_link_tallies_guard() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
begin
    if pg_trigger_depth() < 2 then
        raise exception 'campaign_link_tallies is written only by the clicks'' triggers: % is not allowed, refused by constraint "campaign_link_tallies_derived"', tg_op
            using errcode = 'insufficient_privilege', constraint = 'campaign_link_tallies_derived',
                  hint = 'record the click instead';
    end if;
    return null;
end
$$;
create trigger campaign_link_tallies_derived
    before insert or update or delete on app.campaign_link_tallies
    for each statement execute function app.campaign_link_tallies_guard();
create trigger campaign_link_tallies_derived_truncate
    before truncate on app.campaign_link_tallies
    for each statement execute function app.campaign_link_tallies_guard();
alter table app.campaign_link_tallies enable always trigger campaign_link_tallies_derived;
alter table app.campaign_link_tallies enable always trigger campaign_link_tallies_derived_truncate;

-- A new row is a new recipient on the link; an update adds the clicks it added. The tally is
-- named by the row's own key, so on Citus the upsert goes to the shard the click is on.
create function app.campaign_link_tallies_follow() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_new bigint := case when tg_op = 'INSERT' then 1 else 0 end;
    v_clicks bigint := new.clicks - case when tg_op = 'INSERT' then 0 else old.clicks end;
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
    return null;
end
$$;
create trigger campaign_clicks_counted
    after insert or update on app.campaign_clicks
    for each row execute function app.campaign_link_tallies_follow();
alter table app.campaign_clicks enable always trigger campaign_clicks_counted;
-- Planned for its values each time: from a connection's sixth click on, a generic plan would
-- leave Citus without the tenant's value to route the upsert by (as migration 32 found for the
-- ledger's counts).
alter function app.campaign_link_tallies_follow() set plan_cache_mode = force_custom_plan;

alter table app.campaign_clicks enable row level security;
alter table app.campaign_clicks force row level security;
create policy tenant_isolation on app.campaign_clicks
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
alter table app.campaign_link_tallies enable row level security;
alter table app.campaign_link_tallies force row level security;
create policy tenant_isolation on app.campaign_link_tallies
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());

revoke all on app.campaign_clicks, app.campaign_link_tallies from public;
-- A click is recorded and counted again, never taken back.
grant select, insert, update on app.campaign_clicks to app_user;
-- INSERT and UPDATE for the clicks' trigger, which runs as app_user; the guard refuses them to
-- anything else.
grant select, insert, update on app.campaign_link_tallies to app_user;
revoke all on function app.campaign_link_tallies_guard(), app.campaign_link_tallies_follow() from public;
