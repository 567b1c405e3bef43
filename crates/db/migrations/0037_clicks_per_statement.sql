-- Migration 37: clicks are counted per statement, not per row (docs/performance.md, "Ingestion").
--
-- The server now writes the clicks that arrive together in one statement. Two row triggers ran
-- for each click row (the link tallies with the campaign's hours, migrations 31 and 35, and the
-- webhook events, migration 34), each planning its statements anew for the row's values, as
-- Citus needs them planned. One statement trigger
-- now reads the statement's rows once, gathered into arrays (Citus cannot join a transition
-- table with a distributed one), and writes each organization's link tallies, hours and webhook
-- events with a statement each. What is counted does not change:
--   - a new row is a new recipient on its link; a row's clicks are what its count grew by;
--   - a recipient's first click is a new row of a contact who has no row in the campaign for any
--     other link (a statement may hold several new rows of one contact: they count once, at the
--     earliest);
--   - a click's hour is its row's last click;
--   - one `message.clicked` event per row and count, as before.
drop trigger campaign_clicks_counted on app.campaign_clicks;
drop trigger campaign_clicks_webhooks on app.campaign_clicks;
drop function app.campaign_link_tallies_follow();
drop function app.webhook_follow_click();

create function app.campaign_clicks_follow() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
    v_campaigns uuid[];
    v_contacts uuid[];
    v_links smallint[];
    v_counts bigint[];
    v_added bigint[];
    v_ats timestamptz[];
    v_new boolean[];
    f record;
begin
    -- A row's message and link never change and its count only grows: each row after the
    -- statement has its own row before it, with no more clicks.
    -- (An insert's trigger has no `before_rows`: the query naming it runs only on an update.)
    if tg_op = 'UPDATE' then
        if exists (select 1 from after_rows n
                    where not exists (select 1 from before_rows o
                                       where o.organization_id = n.organization_id and o.campaign_id = n.campaign_id
                                         and o.contact_id = n.contact_id and o.link = n.link
                                         and o.clicks <= n.clicks)) then
            raise exception 'a click''s message and link never change and its count only grows, refused by constraint "campaign_clicks_counted"'
                using errcode = 'check_violation', constraint = 'campaign_clicks_counted';
        end if;
    end if;
    for v_org in select distinct n.organization_id from after_rows n loop
        if tg_op = 'INSERT' then
            select array_agg(n.campaign_id), array_agg(n.contact_id), array_agg(n.link), array_agg(n.clicks::bigint),
                   array_agg(n.clicks::bigint), array_agg(n.last_at), array_agg(true)
              into v_campaigns, v_contacts, v_links, v_counts, v_added, v_ats, v_new
              from after_rows n
             where n.organization_id = v_org;
        else
            select array_agg(n.campaign_id), array_agg(n.contact_id), array_agg(n.link), array_agg(n.clicks::bigint),
                   array_agg((n.clicks - o.clicks)::bigint), array_agg(n.last_at), array_agg(false)
              into v_campaigns, v_contacts, v_links, v_counts, v_added, v_ats, v_new
              from after_rows n
              join before_rows o on o.organization_id = n.organization_id and o.campaign_id = n.campaign_id
                                and o.contact_id = n.contact_id and o.link = n.link
             where n.organization_id = v_org;
        end if;
        -- Joined with the organization's runs, a colocated table read by its key, so that on
        -- Citus the upsert is routed to the tenant's shard.
        insert into app.campaign_link_tallies as t (organization_id, campaign_id, link, unique_clicks, clicks)
        select r.organization_id, w.campaign_id, w.link, count(*) filter (where w.new), sum(w.added)
          from app.campaign_runs r
          join unnest(v_campaigns, v_links, v_added, v_new) w(campaign_id, link, added, new)
            on w.campaign_id = r.campaign_id
         where r.organization_id = v_org
         group by r.organization_id, w.campaign_id, w.link
        on conflict (organization_id, campaign_id, link)
        do update set unique_clicks = t.unique_clicks + excluded.unique_clicks, clicks = t.clicks + excluded.clicks;
        -- The recipients who clicked for the first time: new rows whose contact has no row for
        -- another link than the statement's new ones.
        select array_agg(c.campaign_id) as campaigns, array_agg(c.at) as ats
          into f
          from (select w.campaign_id, w.contact_id, min(w.at) as at, array_agg(w.link) as links
                  from unnest(v_campaigns, v_contacts, v_links, v_ats, v_new) w(campaign_id, contact_id, link, at, new)
                 where w.new
                 group by w.campaign_id, w.contact_id) c
         where not exists (select 1 from app.campaign_clicks k
                            where k.organization_id = v_org and k.campaign_id = c.campaign_id
                              and k.contact_id = c.contact_id and k.link <> all (c.links));
        perform app.campaign_activity_add(
            v_org, v_campaigns || coalesce(f.campaigns, '{}'), v_ats || coalesce(f.ats, '{}'),
            array_fill('clicks'::text, array[cardinality(v_campaigns)])
                || array_fill('clickers'::text, array[coalesce(cardinality(f.campaigns), 0)]),
            v_added || array_fill(1::bigint, array[coalesce(cardinality(f.campaigns), 0)]));
        -- Each GET on a tracked link is an event: keyed by the row and its count.
        if app.webhook_wanted(v_org, array['message.clicked']) then
            perform app.webhook_enqueue(
                v_org, 'message.clicked',
                (select array_agg(w.campaign_id::text || ':' || w.contact_id::text || ':' || w.link::text || ':' || w.clicks::text)
                   from unnest(v_campaigns, v_contacts, v_links, v_counts) w(campaign_id, contact_id, link, clicks)),
                v_contacts,
                (select array_agg(jsonb_build_object('campaign_id', w.campaign_id, 'contact_id', w.contact_id, 'link', w.link))
                   from unnest(v_campaigns, v_contacts, v_links) w(campaign_id, contact_id, link)),
                v_ats);
        end if;
    end loop;
    return null;
end
$$;
create trigger campaign_clicks_counted
    after insert on app.campaign_clicks
    referencing new table as after_rows
    for each statement execute function app.campaign_clicks_follow();
create trigger campaign_clicks_recounted
    after update on app.campaign_clicks
    referencing old table as before_rows new table as after_rows
    for each statement execute function app.campaign_clicks_follow();
alter table app.campaign_clicks enable always trigger campaign_clicks_counted;
alter table app.campaign_clicks enable always trigger campaign_clicks_recounted;
-- Planned for its values each time, as the other counting triggers are (migrations 32 to 35).
alter function app.campaign_clicks_follow() set plan_cache_mode = force_custom_plan;
revoke all on function app.campaign_clicks_follow() from public;
