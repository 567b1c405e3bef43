-- The schema after every migration of crates/db/migrations, as pg_dump --schema-only prints it
-- from a freshly migrated database: tables, indexes, policies, functions (each as the last
-- migration that replaced it left it), triggers, owners and grants. The roles it names are made
-- by the migrator's bootstrap (crates/db/src/ops/migrate.rs), and Citus placement is in
-- docs/scaling.md. Generated: do not edit. A test fails while a migrated database differs from
-- this file; after adding a migration, regenerate it by running
--   MOS_WRITE_SCHEMA=1 cargo test -p mos-db --test db schema::
-- Made by pg_dump of PostgreSQL 15.
--
-- Name: app; Type: SCHEMA; Schema: -; Owner: mos_owner
--

CREATE SCHEMA app;

ALTER SCHEMA app OWNER TO mos_owner;

--
-- Name: SCHEMA app; Type: COMMENT; Schema: -; Owner: mos_owner
--

COMMENT ON SCHEMA app IS 'Marketing OS application data; every table is under Row-Level Security';

--
-- Name: mos_migrations; Type: SCHEMA; Schema: -; Owner: mos_owner
--

CREATE SCHEMA mos_migrations;

ALTER SCHEMA mos_migrations OWNER TO mos_owner;

--
-- Name: attribute_kind; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.attribute_kind AS ENUM (
    'text',
    'number',
    'date',
    'boolean',
    'choice'
);

ALTER TYPE app.attribute_kind OWNER TO mos_owner;

--
-- Name: audit_outcome; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.audit_outcome AS ENUM (
    'success',
    'denied',
    'failure'
);

ALTER TYPE app.audit_outcome OWNER TO mos_owner;

--
-- Name: campaign_message_state; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.campaign_message_state AS ENUM (
    'queued',
    'sending',
    'sent',
    'bounced',
    'failed',
    'skipped'
);

ALTER TYPE app.campaign_message_state OWNER TO mos_owner;

--
-- Name: campaign_run_state; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.campaign_run_state AS ENUM (
    'sending',
    'paused',
    'cancelled',
    'finished'
);

ALTER TYPE app.campaign_run_state OWNER TO mos_owner;

--
-- Name: campaign_schedule; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.campaign_schedule AS ENUM (
    'now',
    'at',
    'local_hour'
);

ALTER TYPE app.campaign_schedule OWNER TO mos_owner;

--
-- Name: campaign_skip_reason; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.campaign_skip_reason AS ENUM (
    'no_consent',
    'suppressed',
    'erased',
    'withdrawn',
    'cancelled'
);

ALTER TYPE app.campaign_skip_reason OWNER TO mos_owner;

--
-- Name: consent_channel; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.consent_channel AS ENUM (
    'email'
);

ALTER TYPE app.consent_channel OWNER TO mos_owner;

--
-- Name: consent_kind; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.consent_kind AS ENUM (
    'grant',
    'confirm',
    'revoke',
    'expire'
);

ALTER TYPE app.consent_kind OWNER TO mos_owner;

--
-- Name: consent_source; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.consent_source AS ENUM (
    'signup_form',
    'import',
    'api',
    'console',
    'unsubscribe',
    'preference_centre',
    'complaint'
);

ALTER TYPE app.consent_source OWNER TO mos_owner;

--
-- Name: content_channel; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.content_channel AS ENUM (
    'email',
    'web_page',
    'social_post',
    'print',
    'other',
    'email_template',
    'campaign'
);

ALTER TYPE app.content_channel OWNER TO mos_owner;

--
-- Name: content_event_kind; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.content_event_kind AS ENUM (
    'created',
    'edited',
    'submitted',
    'withdrawn',
    'commented',
    'changes_requested',
    'approved',
    'published',
    'archived'
);

ALTER TYPE app.content_event_kind OWNER TO mos_owner;

--
-- Name: content_state; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.content_state AS ENUM (
    'draft',
    'in_review',
    'changes_requested',
    'approved',
    'published',
    'archived'
);

ALTER TYPE app.content_state OWNER TO mos_owner;

--
-- Name: dkim_key_state; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.dkim_key_state AS ENUM (
    'active',
    'previous',
    'retired'
);

ALTER TYPE app.dkim_key_state OWNER TO mos_owner;

--
-- Name: feedback_kind; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.feedback_kind AS ENUM (
    'hard_bounce',
    'soft_bounce',
    'delayed',
    'delivered',
    'complaint'
);

ALTER TYPE app.feedback_kind OWNER TO mos_owner;

--
-- Name: job_state; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.job_state AS ENUM (
    'queued',
    'running',
    'succeeded',
    'failed',
    'cancelled'
);

ALTER TYPE app.job_state OWNER TO mos_owner;

--
-- Name: lawful_basis; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.lawful_basis AS ENUM (
    'consent',
    'hipaa_authorization',
    'exemption'
);

ALTER TYPE app.lawful_basis OWNER TO mos_owner;

--
-- Name: role; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.role AS ENUM (
    'ADMIN',
    'REVIEWER',
    'CREATOR',
    'VIEWER'
);

ALTER TYPE app.role OWNER TO mos_owner;

--
-- Name: suppression_reason; Type: TYPE; Schema: app; Owner: mos_owner
--

CREATE TYPE app.suppression_reason AS ENUM (
    'unsubscribe',
    'hard_bounce',
    'complaint',
    'manual'
);

ALTER TYPE app.suppression_reason OWNER TO mos_owner;

--
-- Name: append_only(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    raise exception '% is append-only: % is not allowed', tg_table_name, tg_op
        using errcode = 'insufficient_privilege',
              hint = 'record a new event instead';
end
$$;

ALTER FUNCTION app.append_only() OWNER TO mos_owner;

--
-- Name: audit_append_block(uuid, bigint, bytea, uuid[], bytea[], timestamp with time zone); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.audit_append_block(p_org uuid, p_first_seq bigint, p_prev bytea, p_ids uuid[], p_hashes bytea[], p_last_created timestamp with time zone) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
    v_seq bigint;
    v_hash bytea;
    v_new_seq bigint := p_first_seq + cardinality(p_ids) - 1;
    v_new_hash bytea := p_hashes[cardinality(p_hashes)];
begin
    select h.seq, h.hash into v_seq, v_hash from app.audit_chain_heads h where h.organization_id = p_org for update;
    if v_seq is null or p_first_seq <> v_seq + 1 or p_prev <> v_hash then
        raise exception 'the block does not continue the chain of %: it starts at % after %, the head is at %',
            p_org, p_first_seq, encode(p_prev, 'hex'), v_seq
            using errcode = 'serialization_failure';
    end if;
    insert into app.audit_blocks (organization_id, first_seq, prev_hash, audit_ids, hashes, last_created_at)
    values (p_org, p_first_seq, p_prev, p_ids, p_hashes, p_last_created);
    update app.audit_chain_heads h
       set seq = v_new_seq, hash = v_new_hash, sealed_through = greatest(h.sealed_through, p_last_created)
     where h.organization_id = p_org;
end
$$;

ALTER FUNCTION app.audit_append_block(p_org uuid, p_first_seq bigint, p_prev bytea, p_ids uuid[], p_hashes bytea[], p_last_created timestamp with time zone) OWNER TO mos_definer;

--
-- Name: audit_head_seq(); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.audit_head_seq() RETURNS bigint
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    return (select h.seq from app.audit_chain_heads h where h.organization_id = app.current_tenant_id());
end
$$;

ALTER FUNCTION app.audit_head_seq() OWNER TO mos_definer;

--
-- Name: audit_lock_head(uuid); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.audit_lock_head(p_org uuid) RETURNS TABLE(seq bigint, hash bytea, sealed_through timestamp with time zone)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    insert into app.audit_chain_heads (organization_id, seq, hash, sealed_through)
    values (p_org, 0, decode(repeat('00', 32), 'hex'), '-infinity')
    on conflict (organization_id) do nothing;
    return query
        select h.seq, h.hash, nullif(h.sealed_through, '-infinity')
          from app.audit_chain_heads h where h.organization_id = p_org for update;
end
$$;

ALTER FUNCTION app.audit_lock_head(p_org uuid) OWNER TO mos_definer;

--
-- Name: audit_logs_append_only(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.audit_logs_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    raise exception 'audit_logs is append-only: % is not allowed', tg_op
        using errcode = 'insufficient_privilege',
              hint = 'audit records are never changed; record a new event instead';
end
$$;

ALTER FUNCTION app.audit_logs_append_only() OWNER TO mos_owner;

--
-- Name: audit_recent_tenants(timestamp with time zone); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.audit_recent_tenants(p_since timestamp with time zone) RETURNS SETOF uuid
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    if p_since is null then
        return query select o.id from app.organizations o;
    else
        return query select distinct a.organization_id from app.audit_logs a where a.created_at >= p_since;
    end if;
end
$$;

ALTER FUNCTION app.audit_recent_tenants(p_since timestamp with time zone) OWNER TO mos_definer;

--
-- Name: is_uuid_v7(uuid); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.is_uuid_v7(id uuid) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select substr(id::text, 15, 1) = '7' $$;

ALTER FUNCTION app.is_uuid_v7(id uuid) OWNER TO mos_owner;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: audit_logs; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.audit_logs (
    organization_id uuid NOT NULL,
    id uuid NOT NULL,
    actor_user_id uuid,
    action text NOT NULL,
    resource_type text NOT NULL,
    resource_id text,
    outcome app.audit_outcome NOT NULL,
    ip inet,
    user_agent text,
    request_id text,
    changes jsonb DEFAULT '{}'::jsonb NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    CONSTRAINT audit_logs_action_format CHECK (((length(action) <= 100) AND (action ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'::text))),
    CONSTRAINT audit_logs_changes_object CHECK ((jsonb_typeof(changes) = 'object'::text)),
    CONSTRAINT audit_logs_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT audit_logs_metadata_object CHECK ((jsonb_typeof(metadata) = 'object'::text)),
    CONSTRAINT audit_logs_request_id_length CHECK (((length(request_id) >= 1) AND (length(request_id) <= 200))),
    CONSTRAINT audit_logs_resource_id_length CHECK (((length(resource_id) >= 1) AND (length(resource_id) <= 200))),
    CONSTRAINT audit_logs_resource_type_format CHECK (((length(resource_type) <= 64) AND (resource_type ~ '^[a-z][a-z0-9_]*$'::text))),
    CONSTRAINT audit_logs_user_agent_length CHECK ((length(user_agent) <= 1024))
);

ALTER TABLE ONLY app.audit_logs FORCE ROW LEVEL SECURITY;

ALTER TABLE app.audit_logs OWNER TO mos_owner;

--
-- Name: audit_unsealed_since(uuid, timestamp with time zone); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.audit_unsealed_since(p_org uuid, p_from timestamp with time zone) RETURNS SETOF app.audit_logs
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
    v_from timestamptz := coalesce(p_from, '-infinity');
begin
    return query
        with sealed as (
            select unnest(b.audit_ids) as audit_id from app.audit_blocks b
             where b.organization_id = p_org and b.last_created_at >= v_from
        )
        select a.*
          from app.audit_logs a
          left join sealed s on s.audit_id = a.id
         where a.organization_id = p_org and a.created_at >= v_from and s.audit_id is null
         order by a.created_at, a.id;
end
$$;

ALTER FUNCTION app.audit_unsealed_since(p_org uuid, p_from timestamp with time zone) OWNER TO mos_definer;

--
-- Name: campaign_activity_add(uuid, uuid[], timestamp with time zone[], text[], bigint[]); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.campaign_activity_add(p_org uuid, p_campaigns uuid[], p_at timestamp with time zone[], p_measures text[], p_ns bigint[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
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

ALTER FUNCTION app.campaign_activity_add(p_org uuid, p_campaigns uuid[], p_at timestamp with time zone[], p_measures text[], p_ns bigint[]) OWNER TO mos_owner;

--
-- Name: campaign_activity_follow_consent(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.campaign_activity_follow_consent() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
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

ALTER FUNCTION app.campaign_activity_follow_consent() OWNER TO mos_owner;

--
-- Name: campaign_activity_follow_feedback(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.campaign_activity_follow_feedback() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
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

ALTER FUNCTION app.campaign_activity_follow_feedback() OWNER TO mos_owner;

--
-- Name: campaign_activity_follow_ledger(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.campaign_activity_follow_ledger() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
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

ALTER FUNCTION app.campaign_activity_follow_ledger() OWNER TO mos_owner;

--
-- Name: campaign_activity_guard(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.campaign_activity_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    if pg_trigger_depth() < 2 then
        raise exception 'campaign_activity is written only by the triggers of the send ledger, the feedback, the clicks and the consent ledger: % is not allowed, refused by constraint "campaign_activity_derived"', tg_op
            using errcode = 'insufficient_privilege', constraint = 'campaign_activity_derived',
                  hint = 'change the ledger, or record feedback, a click or a consent event instead';
    end if;
    return null;
end
$$;

ALTER FUNCTION app.campaign_activity_guard() OWNER TO mos_owner;

--
-- Name: campaign_clicks_follow(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.campaign_clicks_follow() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
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

ALTER FUNCTION app.campaign_clicks_follow() OWNER TO mos_owner;

--
-- Name: campaign_link_tallies_guard(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.campaign_link_tallies_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    if pg_trigger_depth() < 2 then
        raise exception 'campaign_link_tallies is written only by the clicks'' triggers: % is not allowed, refused by constraint "campaign_link_tallies_derived"', tg_op
            using errcode = 'insufficient_privilege', constraint = 'campaign_link_tallies_derived',
                  hint = 'record the click instead';
    end if;
    return null;
end
$$;

ALTER FUNCTION app.campaign_link_tallies_guard() OWNER TO mos_owner;

--
-- Name: campaign_messages_check(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.campaign_messages_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

ALTER FUNCTION app.campaign_messages_check() OWNER TO mos_owner;

--
-- Name: campaign_messages_forward(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.campaign_messages_forward() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

ALTER FUNCTION app.campaign_messages_forward() OWNER TO mos_owner;

--
-- Name: campaign_runs_forward(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.campaign_runs_forward() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

ALTER FUNCTION app.campaign_runs_forward() OWNER TO mos_owner;

--
-- Name: campaign_runs_halted(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.campaign_runs_halted() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    if new.state = 'sending' and exists (select 1 from app.sending_breakers b
                                          where b.organization_id = new.organization_id and b.state = 'halted') then
        raise exception 'the organization''s sending is halted by its complaint-rate breaker until an ADMIN resumes it, refused by constraint "campaign_runs_halted"'
            using errcode = '23514', constraint = 'campaign_runs_halted';
    end if;
    return new;
end
$$;

ALTER FUNCTION app.campaign_runs_halted() OWNER TO mos_owner;

--
-- Name: campaign_tallies_follow(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.campaign_tallies_follow() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
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

ALTER FUNCTION app.campaign_tallies_follow() OWNER TO mos_owner;

--
-- Name: campaign_tallies_guard(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.campaign_tallies_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    if pg_trigger_depth() < 2 then
        raise exception 'campaign_tallies is written only by the send ledger''s triggers: % is not allowed, refused by constraint "campaign_tallies_derived"', tg_op
            using errcode = 'insufficient_privilege', constraint = 'campaign_tallies_derived',
                  hint = 'change the ledger instead';
    end if;
    return null;
end
$$;

ALTER FUNCTION app.campaign_tallies_guard() OWNER TO mos_owner;

--
-- Name: campaign_versions_check(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.campaign_versions_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

ALTER FUNCTION app.campaign_versions_check() OWNER TO mos_owner;

--
-- Name: consent_events_check(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.consent_events_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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
                    where c.organization_id = v_org and s.organization_id = v_org and c.id = any(v_granted)
                      and (s.reason = 'manual'
                           or not exists (select from app.consent_events l
                                           where l.organization_id = v_org and l.contact_id = c.id
                                             and l.kind = 'confirm' and l.created_at > s.created_at))) then
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

ALTER FUNCTION app.consent_events_check() OWNER TO mos_owner;

--
-- Name: consent_evidence_check(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.consent_evidence_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

ALTER FUNCTION app.consent_evidence_check() OWNER TO mos_owner;

--
-- Name: consent_evidence_erasable(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.consent_evidence_erasable() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

ALTER FUNCTION app.consent_evidence_erasable() OWNER TO mos_owner;

--
-- Name: consent_state_follow(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.consent_state_follow() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

ALTER FUNCTION app.consent_state_follow() OWNER TO mos_owner;

--
-- Name: consent_state_guard(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.consent_state_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    if pg_trigger_depth() < 2 then
        raise exception 'consent_state is written only by the ledger''s trigger: % is not allowed, refused by constraint "consent_state_derived"', tg_op
            using errcode = 'insufficient_privilege', constraint = 'consent_state_derived',
                  hint = 'record a consent event instead';
    end if;
    return null;
end
$$;

ALTER FUNCTION app.consent_state_guard() OWNER TO mos_owner;

--
-- Name: contact_attribute_values_check(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.contact_attribute_values_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
    v_org uuid;
    v_contacts uuid[];
begin
    for v_org in select distinct w.organization_id from written w loop
        select array_agg(distinct w.contact_id) into v_contacts from written w where w.organization_id = v_org;
        if exists (select from (select c.erased_at from app.contacts c
                                 where c.organization_id = v_org and c.id = any(v_contacts)
                                   for share) locked
                    where locked.erased_at is not null) then
            raise exception 'the contact is erased, refused by constraint "contact_attribute_values_contact_erased"'
                using errcode = '23514', constraint = 'contact_attribute_values_contact_erased';
        end if;
    end loop;
    return null;
end
$$;

ALTER FUNCTION app.contact_attribute_values_check() OWNER TO mos_owner;

--
-- Name: contacts_guard(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.contacts_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

ALTER FUNCTION app.contacts_guard() OWNER TO mos_owner;

--
-- Name: content_items_guard(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.content_items_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    if tg_op = 'INSERT' then
        if new.state <> 'draft' or new.revision <> 1 or new.current_version <> 1
           or new.approved_version is not null or new.published_version is not null then
            raise exception 'a content item starts as a draft at its first version and revision'
                using errcode = '23514', constraint = 'content_items_start';
        end if;
        return new;
    end if;
    if (new.organization_id, new.id, new.created_by, new.created_at)
       is distinct from (old.organization_id, old.id, old.created_by, old.created_at) then
        raise exception 'a content item keeps its identity'
            using errcode = '23514', constraint = 'content_items_identity';
    end if;
    if new.revision <> old.revision + 1 or new.current_version not in (old.current_version, old.current_version + 1) then
        raise exception 'a change to a content item moves its revision on by one and its version by at most one'
            using errcode = '23514', constraint = 'content_items_revision';
    end if;
    if old.published_version is not null and new.published_version is distinct from old.published_version then
        raise exception 'a published version stays published'
            using errcode = '23514', constraint = 'content_items_published_once';
    end if;
    if new.state <> old.state and (old.state::text, new.state::text) not in (
        ('draft', 'in_review'), ('draft', 'archived'),
        ('in_review', 'draft'), ('in_review', 'changes_requested'), ('in_review', 'approved'),
        ('changes_requested', 'in_review'), ('changes_requested', 'archived'),
        ('approved', 'draft'), ('approved', 'published'), ('approved', 'archived'),
        ('published', 'archived')) then
        raise exception 'a content item cannot go from % to %', old.state, new.state
            using errcode = '23514', constraint = 'content_items_transition';
    end if;
    if old.state = 'archived' then
        raise exception 'an archived content item does not change'
            using errcode = '23514', constraint = 'content_items_transition';
    end if;
    return new;
end
$$;

ALTER FUNCTION app.content_items_guard() OWNER TO mos_owner;

--
-- Name: current_tenant_id(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.current_tenant_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ select nullif(current_setting('app.current_tenant_id', true), '')::uuid $$;

ALTER FUNCTION app.current_tenant_id() OWNER TO mos_owner;

--
-- Name: current_user_id(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.current_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ select nullif(current_setting('app.current_user_id', true), '')::uuid $$;

ALTER FUNCTION app.current_user_id() OWNER TO mos_owner;

--
-- Name: dkim_keys_forward(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.dkim_keys_forward() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    if (new.organization_id, new.id, new.sender_id, new.selector, new.public_key, new.sealed_private_key, new.created_at)
       is distinct from
       (old.organization_id, old.id, old.sender_id, old.selector, old.public_key, old.sealed_private_key, old.created_at) then
        raise exception 'a DKIM key''s material, sender and selector never change, refused by constraint "dkim_keys_fixed"'
            using errcode = '23514', constraint = 'dkim_keys_fixed';
    end if;
    if new.state is distinct from old.state
       and not ((old.state = 'active' and new.state = 'previous') or (old.state = 'previous' and new.state = 'retired')) then
        raise exception 'a DKIM key goes from active to previous to retired, refused by constraint "dkim_keys_forward"'
            using errcode = '23514', constraint = 'dkim_keys_forward';
    end if;
    return new;
end
$$;

ALTER FUNCTION app.dkim_keys_forward() OWNER TO mos_owner;

--
-- Name: feedback_credential(bytea); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.feedback_credential(p_token_hash bytea) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    return (select c.name from app.feedback_credentials c where c.token_hash = p_token_hash and c.revoked_at is null);
end
$$;

ALTER FUNCTION app.feedback_credential(p_token_hash bytea) OWNER TO mos_definer;

--
-- Name: find_login(text); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.find_login(p_email text) RETURNS TABLE(user_id uuid, password_hash text, email_verified_at timestamp with time zone, totp_enabled boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    return query
        select u.id, u.password_hash, u.email_verified_at, u.totp_enabled_at is not null
          from app.users u
         where lower(u.email) = lower(btrim(p_email));
end
$$;

ALTER FUNCTION app.find_login(p_email text) OWNER TO mos_definer;

--
-- Name: hard_refusal(text); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.hard_refusal(p_reply text) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    select case when split_part(coalesce(p_reply, ''), ' ', 2) like '5.%'
                then split_part(p_reply, ' ', 2) like '5.1.%'
                else left(coalesce(p_reply, ''), 3) in ('550', '551', '553')
           end
$$;

ALTER FUNCTION app.hard_refusal(p_reply text) OWNER TO mos_owner;

--
-- Name: invitation_for_token(bytea, timestamp with time zone); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.invitation_for_token(p_token_hash bytea, p_now timestamp with time zone) RETURNS TABLE(organization_id uuid, invitation_id uuid, email text, role app.role)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    return query
        select i.organization_id, i.id, i.email, i.role
          from app.invitations i
         where i.token_hash = p_token_hash
           and i.accepted_at is null and i.revoked_at is null and i.expires_at > p_now;
end
$$;

ALTER FUNCTION app.invitation_for_token(p_token_hash bytea, p_now timestamp with time zone) OWNER TO mos_definer;

--
-- Name: job_claim(uuid, text[], timestamp with time zone, interval); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.job_claim(p_token uuid, p_kinds text[], p_now timestamp with time zone, p_lease interval) RETURNS TABLE(organization_id uuid, id uuid, kind text, payload jsonb, attempts integer)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
    v_org uuid;
begin
    update app.jobs j
       set state = case when j.cancel_requested_at is not null then 'cancelled'::app.job_state
                        else 'failed'::app.job_state end,
           last_error = case when j.cancel_requested_at is not null then j.last_error
                             else 'the runner stopped answering during its last attempt' end,
           lease_token = null, lease_expires_at = null, finished_at = p_now
     where j.state = 'running' and j.lease_expires_at <= p_now
       and (j.cancel_requested_at is not null or j.attempts >= j.max_attempts);
    for v_org in
        select c.organization_id
          from (select q.organization_id,
                       count(*) filter (where q.state = 'running' and q.lease_expires_at > p_now) as running,
                       min(q.run_after) filter (where q.state = 'queued' or q.lease_expires_at <= p_now) as due
                  from app.jobs q
                 where q.state in ('queued', 'running')
                 group by q.organization_id) c
          -- When the tenant was last served, finished jobs included: one index probe each.
          left join lateral (select s.last_claimed_at as served from app.jobs s
                              where s.organization_id = c.organization_id and s.last_claimed_at is not null
                              order by s.last_claimed_at desc limit 1) l on true
         where c.due <= p_now
         order by c.running, l.served nulls first, c.due
    loop
        return query
            update app.jobs j
               set state = 'running', attempts = j.attempts + 1, lease_token = p_token,
                   lease_expires_at = p_now + p_lease, last_claimed_at = p_now
             where (j.organization_id, j.id) = (
                       select n.organization_id, n.id from app.jobs n
                        where n.organization_id = v_org and n.kind = any (p_kinds) and n.run_after <= p_now
                          and (n.state = 'queued' or (n.state = 'running' and n.lease_expires_at <= p_now))
                        order by n.run_after, n.id
                        limit 1
                          for update skip locked)
            returning j.organization_id, j.id, j.kind, j.payload, j.attempts;
        if found then
            return;
        end if;
    end loop;
end
$$;

ALTER FUNCTION app.job_claim(p_token uuid, p_kinds text[], p_now timestamp with time zone, p_lease interval) OWNER TO mos_definer;

--
-- Name: login_challenge_attempt(bytea, timestamp with time zone, integer); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.login_challenge_attempt(p_token_hash bytea, p_now timestamp with time zone, p_max_attempts integer) RETURNS TABLE(challenge_id uuid, user_id uuid)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    return query
        update app.login_challenges c
           set attempts = c.attempts + 1
         where c.token_hash = p_token_hash
           and c.consumed_at is null
           and c.expires_at > p_now
           and c.attempts < p_max_attempts
        returning c.id, c.user_id;
end
$$;

ALTER FUNCTION app.login_challenge_attempt(p_token_hash bytea, p_now timestamp with time zone, p_max_attempts integer) OWNER TO mos_definer;

--
-- Name: member_addresses(uuid[]); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.member_addresses(p_users uuid[]) RETURNS TABLE(user_id uuid, email text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
    v_org uuid := app.current_tenant_id();
begin
    return query
        select m.user_id, (select u.email from app.users u where u.id = m.user_id)
          from app.user_organizations m
         where m.organization_id = v_org and m.user_id = any(p_users);
end
$$;

ALTER FUNCTION app.member_addresses(p_users uuid[]) OWNER TO mos_definer;

--
-- Name: member_directory_page(timestamp with time zone, uuid, integer); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.member_directory_page(p_after_joined timestamp with time zone, p_after_user uuid, p_limit integer) RETURNS TABLE(user_id uuid, email text, role app.role, joined_at timestamp with time zone, two_factor_enabled boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
    v_org uuid := app.current_tenant_id();
    v_after_joined timestamptz := coalesce(p_after_joined, '-infinity');
    v_after_user uuid := coalesce(p_after_user, '00000000-0000-0000-0000-000000000000');
begin
    -- The page first, then the accounts of just its members: with the look-ups in the same
    -- query, their cost weighs on the choice between the index and reading everything.
    return query
        select p.user_id,
               (select u.email from app.users u where u.id = p.user_id),
               p.role,
               p.created_at,
               (select u.totp_enabled_at is not null from app.users u where u.id = p.user_id)
          from (select m.user_id, m.role, m.created_at
                  from app.user_organizations m
                 where m.organization_id = v_org
                   and (m.created_at, m.user_id) > (v_after_joined, v_after_user)
                 order by m.created_at, m.user_id
                 limit p_limit) p
         order by p.created_at, p.user_id;
end
$$;

ALTER FUNCTION app.member_directory_page(p_after_joined timestamp with time zone, p_after_user uuid, p_limit integer) OWNER TO mos_definer;

--
-- Name: month_of(date); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.month_of(p_day date) RETURNS date
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$ select make_date(extract(year from p_day)::int, extract(month from p_day)::int, 1) $$;

ALTER FUNCTION app.month_of(p_day date) OWNER TO mos_owner;

--
-- Name: my_organizations(); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.my_organizations() RETURNS TABLE(organization_id uuid, slug text, name text, role app.role, joined_at timestamp with time zone)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
        select o.id, o.slug, o.name, m.role, m.created_at
          from app.user_organizations m
          join app.organizations o on o.id = m.organization_id
         where m.user_id = app.current_user_id()
         order by o.slug
    $$;

ALTER FUNCTION app.my_organizations() OWNER TO mos_definer;

--
-- Name: my_organizations_page(text, integer); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.my_organizations_page(p_after text, p_limit integer) RETURNS TABLE(organization_id uuid, slug text, name text, role app.role, joined_at timestamp with time zone)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    return query
        select o.id, o.slug, o.name, m.role, m.created_at
          from app.user_organizations m
          join app.organizations o on o.id = m.organization_id
         where m.user_id = app.current_user_id() and (p_after is null or o.slug > p_after)
         order by o.slug
         limit p_limit;
end
$$;

ALTER FUNCTION app.my_organizations_page(p_after text, p_limit integer) OWNER TO mos_definer;

--
-- Name: my_phishing_resistant_organizations(); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.my_phishing_resistant_organizations() RETURNS TABLE(organization_id uuid, slug text, name text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    return query
        select o.id, o.slug, o.name
          from app.user_organizations m
          join app.organizations o on o.id = m.organization_id
         where m.user_id = app.current_user_id() and o.require_phishing_resistant
         order by o.slug;
end
$$;

ALTER FUNCTION app.my_phishing_resistant_organizations() OWNER TO mos_definer;

--
-- Name: org_access(text); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.org_access(p_slug text) RETURNS TABLE(organization_id uuid, role app.role, require_two_factor boolean, two_factor_enabled boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
    v_org uuid;
    v_require boolean;
begin
    select o.id, o.require_two_factor into v_org, v_require from app.organizations o where o.slug = p_slug;
    if v_org is null then
        return;
    end if;
    return query
        select v_org, m.role, v_require, u.totp_enabled_at is not null
          from app.user_organizations m
          join app.users u on u.id = m.user_id
         where m.organization_id = v_org and m.user_id = app.current_user_id();
end
$$;

ALTER FUNCTION app.org_access(p_slug text) OWNER TO mos_definer;

--
-- Name: passkey_owner(bytea); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.passkey_owner(p_credential_id bytea) RETURNS uuid
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    return (select p.user_id from app.passkeys p where p.credential_id = p_credential_id);
end
$$;

ALTER FUNCTION app.passkey_owner(p_credential_id bytea) OWNER TO mos_definer;

--
-- Name: rate_hit(text, timestamp with time zone, integer, interval); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.rate_hit(p_key text, p_now timestamp with time zone, p_limit integer, p_window interval) RETURNS TABLE(allowed boolean, used integer, retry_after integer)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
    v_used integer;
    v_since timestamptz;
begin
    insert into app.auth_throttles as t (key, failures, locked_until, updated_at)
    values (p_key, 1, null, p_now)
    on conflict (key) do update
       set failures = case when t.updated_at <= p_now - p_window then 1 else t.failures + 1 end,
           locked_until = null,
           updated_at = case when t.updated_at <= p_now - p_window then p_now else t.updated_at end
     where t.updated_at <= p_now - p_window or t.failures < p_limit
    returning t.failures into v_used;
    if found then
        return query select true, v_used, null::integer;
    else
        select t.failures, t.updated_at into v_used, v_since from app.auth_throttles t where t.key = p_key;
        return query select false, v_used, greatest(1, ceil(extract(epoch from v_since + p_window - p_now))::integer);
    end if;
end
$$;

ALTER FUNCTION app.rate_hit(p_key text, p_now timestamp with time zone, p_limit integer, p_window interval) OWNER TO mos_definer;

--
-- Name: redeem_email_verification(bytea, timestamp with time zone); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.redeem_email_verification(p_token_hash bytea, p_now timestamp with time zone) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
    v_user uuid;
begin
    update app.email_verification_tokens t
       set used_at = p_now
     where t.token_hash = p_token_hash and t.used_at is null and t.expires_at > p_now
    returning t.user_id into v_user;
    if v_user is not null then
        update app.users u
           set email_verified_at = coalesce(u.email_verified_at, p_now), updated_at = p_now
         where u.id = v_user;
    end if;
    return v_user;
end
$$;

ALTER FUNCTION app.redeem_email_verification(p_token_hash bytea, p_now timestamp with time zone) OWNER TO mos_definer;

--
-- Name: redeem_password_reset(bytea, timestamp with time zone); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.redeem_password_reset(p_token_hash bytea, p_now timestamp with time zone) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
    v_user uuid;
begin
    update app.password_reset_tokens t
       set used_at = p_now
     where t.token_hash = p_token_hash and t.used_at is null and t.expires_at > p_now
    returning t.user_id into v_user;
    return v_user;
end
$$;

ALTER FUNCTION app.redeem_password_reset(p_token_hash bytea, p_now timestamp with time zone) OWNER TO mos_definer;

--
-- Name: request_context(bytea, text, timestamp with time zone, interval, interval); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.request_context(p_token_hash bytea, p_slug text, p_now timestamp with time zone, p_idle interval, p_touch_every interval) RETURNS TABLE(session_id uuid, user_id uuid, authenticated_at timestamp with time zone, expires_at timestamp with time zone, two_factor_enabled boolean, phishing_resistant boolean, organization_id uuid, role app.role, require_two_factor boolean, require_phishing_resistant boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
    v_seen_after timestamptz := p_now - p_idle;
    v_stale_before timestamptz := p_now - p_touch_every;
    v_session uuid;
    v_user uuid;
    v_authenticated timestamptz;
    v_expires timestamptz;
    v_seen timestamptz;
    v_phishing_resistant boolean;
    v_two_factor boolean;
    v_org uuid;
    v_require boolean;
    v_require_passkey boolean;
    v_role app.role;
begin
    select s.id, s.user_id, s.authenticated_at, s.expires_at, s.last_seen_at, s.phishing_resistant
      into v_session, v_user, v_authenticated, v_expires, v_seen, v_phishing_resistant
      from app.sessions s
     where s.token_hash = p_token_hash
       and s.revoked_at is null
       and s.expires_at > p_now
       and s.last_seen_at > v_seen_after;
    if v_session is null then
        return;
    end if;
    if v_seen < v_stale_before then
        perform 1 from app.sessions s where s.id = v_session for update skip locked;
        if found then
            update app.sessions s set last_seen_at = p_now where s.id = v_session and s.last_seen_at < p_now;
        end if;
    end if;
    select u.totp_enabled_at is not null into v_two_factor from app.users u where u.id = v_user;
    if p_slug is not null then
        select o.id, o.require_two_factor, o.require_phishing_resistant into v_org, v_require, v_require_passkey
          from app.organizations o where o.slug = p_slug;
        if v_org is not null then
            select m.role into v_role
              from app.user_organizations m
             where m.organization_id = v_org and m.user_id = v_user;
        end if;
    end if;
    -- Nothing about an organization the user does not belong to.
    if v_role is null then
        v_org := null;
        v_require := null;
        v_require_passkey := null;
    end if;
    return query select v_session, v_user, v_authenticated, v_expires, v_two_factor, v_phishing_resistant,
                        v_org, v_role, v_require, v_require_passkey;
end
$$;

ALTER FUNCTION app.request_context(p_token_hash bytea, p_slug text, p_now timestamp with time zone, p_idle interval, p_touch_every interval) OWNER TO mos_definer;

--
-- Name: segment_versions_append_only(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.segment_versions_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    raise exception 'segment_versions is append-only: % is not allowed', tg_op
        using errcode = 'insufficient_privilege',
              hint = 'save a new version instead';
end
$$;

ALTER FUNCTION app.segment_versions_append_only() OWNER TO mos_owner;

--
-- Name: sending_counts_add(uuid, date[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[]); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.sending_counts_add(p_org uuid, p_days date[], p_sent bigint[], p_refused bigint[], p_hard bigint[], p_soft bigint[], p_delivered bigint[], p_complaints bigint[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
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

ALTER FUNCTION app.sending_counts_add(p_org uuid, p_days date[], p_sent bigint[], p_refused bigint[], p_hard bigint[], p_soft bigint[], p_delivered bigint[], p_complaints bigint[]) OWNER TO mos_owner;

--
-- Name: sending_counts_follow_feedback(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.sending_counts_follow_feedback() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
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

ALTER FUNCTION app.sending_counts_follow_feedback() OWNER TO mos_owner;

--
-- Name: sending_counts_follow_ledger(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.sending_counts_follow_ledger() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
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

ALTER FUNCTION app.sending_counts_follow_ledger() OWNER TO mos_owner;

--
-- Name: sending_counts_guard(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.sending_counts_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    if pg_trigger_depth() < 2 then
        raise exception 'sending_counts is written only by the send ledger''s and the feedback''s triggers: % is not allowed, refused by constraint "sending_counts_derived"', tg_op
            using errcode = 'insufficient_privilege', constraint = 'sending_counts_derived',
                  hint = 'change the ledger or record feedback instead';
    end if;
    return null;
end
$$;

ALTER FUNCTION app.sending_counts_guard() OWNER TO mos_owner;

--
-- Name: session_touch(bytea, timestamp with time zone, interval); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.session_touch(p_token_hash bytea, p_now timestamp with time zone, p_idle interval) RETURNS TABLE(session_id uuid, user_id uuid, authenticated_at timestamp with time zone, expires_at timestamp with time zone)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
    v_seen_after timestamptz := p_now - p_idle;
begin
    return query
        update app.sessions s
           set last_seen_at = p_now
         where s.token_hash = p_token_hash
           and s.revoked_at is null
           and s.expires_at > p_now
           and s.last_seen_at > v_seen_after
        returning s.id, s.user_id, s.authenticated_at, s.expires_at;
end
$$;

ALTER FUNCTION app.session_touch(p_token_hash bytea, p_now timestamp with time zone, p_idle interval) OWNER TO mos_definer;

--
-- Name: signup_confirmations_guard(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.signup_confirmations_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    if (new.organization_id, new.token_hash, new.contact_id, new.purpose_id, new.grant_event_id, new.created_at,
        new.expires_at) is distinct from
       (old.organization_id, old.token_hash, old.contact_id, old.purpose_id, old.grant_event_id, old.created_at,
        old.expires_at) then
        raise exception 'a confirmation link keeps what it was issued for'
            using errcode = '23514', constraint = 'signup_confirmations_identity';
    end if;
    if old.used_at is not null then
        raise exception 'a confirmation link is spent once'
            using errcode = '23514', constraint = 'signup_confirmations_spent';
    end if;
    return new;
end
$$;

ALTER FUNCTION app.signup_confirmations_guard() OWNER TO mos_owner;

--
-- Name: signup_organization(text); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.signup_organization(p_slug text) RETURNS TABLE(organization_id uuid, name text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    return query select o.id, o.name from app.organizations o where o.slug = p_slug;
end
$$;

ALTER FUNCTION app.signup_organization(p_slug text) OWNER TO mos_definer;

--
-- Name: throttle_clear(text); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.throttle_clear(p_key text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    delete from app.auth_throttles t where t.key = p_key;
end
$$;

ALTER FUNCTION app.throttle_clear(p_key text) OWNER TO mos_definer;

--
-- Name: throttle_forgive(text, integer); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.throttle_forgive(p_key text, p_free integer) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    update app.auth_throttles t
       set failures = greatest(t.failures - 1, 0),
           locked_until = case when t.failures - 1 <= p_free then null else t.locked_until end
     where t.key = p_key;
end
$$;

ALTER FUNCTION app.throttle_forgive(p_key text, p_free integer) OWNER TO mos_definer;

--
-- Name: throttle_hit(text, timestamp with time zone, integer, integer, integer, interval); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.throttle_hit(p_key text, p_now timestamp with time zone, p_free integer, p_cap_secs integer, p_hard integer, p_window interval) RETURNS TABLE(allowed boolean, failures integer, retry_after integer)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
    v_allowed boolean := true;
    v_failures integer;
    v_locked timestamptz;
begin
    insert into app.auth_throttles as t (key, failures, locked_until, updated_at)
    values (p_key, 1, app.throttle_lock(1, p_now, p_free, p_cap_secs, p_hard), p_now)
    on conflict (key) do update
       set failures = excluded.failures
                      + case when p_window is not null and t.updated_at < p_now - p_window then 0 else t.failures end,
           locked_until = app.throttle_lock(
               excluded.failures
               + case when p_window is not null and t.updated_at < p_now - p_window then 0 else t.failures end,
               p_now, p_free, p_cap_secs, p_hard),
           updated_at = p_now
     where t.locked_until is null or t.locked_until <= p_now
    returning t.failures, t.locked_until into v_failures, v_locked;
    if not found then
        v_allowed := false;
        select t.failures, t.locked_until into v_failures, v_locked from app.auth_throttles t where t.key = p_key;
    end if;
    return query select v_allowed, v_failures,
        case when v_locked is null or v_locked = 'infinity' or v_locked <= p_now then null
             else ceil(extract(epoch from v_locked - p_now))::integer end;
end
$$;

ALTER FUNCTION app.throttle_hit(p_key text, p_now timestamp with time zone, p_free integer, p_cap_secs integer, p_hard integer, p_window interval) OWNER TO mos_definer;

--
-- Name: throttle_lock(integer, timestamp with time zone, integer, integer, integer); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.throttle_lock(p_failures integer, p_now timestamp with time zone, p_free integer, p_cap_secs integer, p_hard integer) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
        select case
            when p_hard is not null and p_failures >= p_hard then 'infinity'::timestamptz
            when p_failures > p_free
                then p_now + make_interval(secs => least(p_cap_secs, power(2, least(p_failures - p_free - 1, 30))::integer))
        end
    $$;

ALTER FUNCTION app.throttle_lock(p_failures integer, p_now timestamp with time zone, p_free integer, p_cap_secs integer, p_hard integer) OWNER TO mos_owner;

--
-- Name: webauthn_begin(bytea, text, uuid, jsonb, timestamp with time zone, timestamp with time zone); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.webauthn_begin(p_handle_hash bytea, p_purpose text, p_user uuid, p_state jsonb, p_now timestamp with time zone, p_expires timestamp with time zone) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    delete from app.webauthn_ceremonies c where c.expires_at <= p_now;
    insert into app.webauthn_ceremonies (handle_hash, purpose, user_id, state, created_at, expires_at)
    values (p_handle_hash, p_purpose, p_user, p_state, p_now, p_expires);
end
$$;

ALTER FUNCTION app.webauthn_begin(p_handle_hash bytea, p_purpose text, p_user uuid, p_state jsonb, p_now timestamp with time zone, p_expires timestamp with time zone) OWNER TO mos_definer;

--
-- Name: webauthn_take(bytea, text, timestamp with time zone); Type: FUNCTION; Schema: app; Owner: mos_definer
--

CREATE FUNCTION app.webauthn_take(p_handle_hash bytea, p_purpose text, p_now timestamp with time zone) RETURNS TABLE(user_id uuid, state jsonb)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    return query
        update app.webauthn_ceremonies c
           set used_at = p_now
         where c.handle_hash = p_handle_hash and c.purpose = p_purpose
           and c.used_at is null and c.expires_at > p_now
        returning c.user_id, c.state;
end
$$;

ALTER FUNCTION app.webauthn_take(p_handle_hash bytea, p_purpose text, p_now timestamp with time zone) OWNER TO mos_definer;

--
-- Name: webhook_enqueue(uuid, text, text[], uuid[], jsonb[], timestamp with time zone[]); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.webhook_enqueue(p_org uuid, p_type text, p_keys text[], p_contacts uuid[], p_data jsonb[], p_at timestamp with time zone[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
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

ALTER FUNCTION app.webhook_enqueue(p_org uuid, p_type text, p_keys text[], p_contacts uuid[], p_data jsonb[], p_at timestamp with time zone[]) OWNER TO mos_owner;

--
-- Name: webhook_follow_consent(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.webhook_follow_consent() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
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

ALTER FUNCTION app.webhook_follow_consent() OWNER TO mos_owner;

--
-- Name: webhook_follow_feedback(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.webhook_follow_feedback() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
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

ALTER FUNCTION app.webhook_follow_feedback() OWNER TO mos_owner;

--
-- Name: webhook_follow_ledger(); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.webhook_follow_ledger() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
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

ALTER FUNCTION app.webhook_follow_ledger() OWNER TO mos_owner;

--
-- Name: webhook_wanted(uuid, text[]); Type: FUNCTION; Schema: app; Owner: mos_owner
--

CREATE FUNCTION app.webhook_wanted(p_org uuid, p_types text[]) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
begin
    return exists (select 1 from app.webhook_subscriptions s
                    where s.organization_id = p_org and s.enabled and s.events && p_types);
end
$$;

ALTER FUNCTION app.webhook_wanted(p_org uuid, p_types text[]) OWNER TO mos_owner;

--
-- Name: audit_blocks; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.audit_blocks (
    organization_id uuid NOT NULL,
    first_seq bigint NOT NULL,
    prev_hash bytea NOT NULL,
    audit_ids uuid[] NOT NULL,
    hashes bytea[] NOT NULL,
    last_created_at timestamp with time zone NOT NULL,
    sealed_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    CONSTRAINT audit_blocks_first_seq_positive CHECK ((first_seq > 0)),
    CONSTRAINT audit_blocks_prev_hash_length CHECK ((length(prev_hash) = 32)),
    CONSTRAINT audit_blocks_shape CHECK (((cardinality(audit_ids) > 0) AND (cardinality(audit_ids) = cardinality(hashes))))
);

ALTER TABLE ONLY app.audit_blocks FORCE ROW LEVEL SECURITY;

ALTER TABLE app.audit_blocks OWNER TO mos_owner;

--
-- Name: audit_chain_heads; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.audit_chain_heads (
    organization_id uuid NOT NULL,
    seq bigint NOT NULL,
    hash bytea NOT NULL,
    sealed_through timestamp with time zone NOT NULL,
    CONSTRAINT audit_chain_heads_hash_length CHECK ((length(hash) = 32)),
    CONSTRAINT audit_chain_heads_seq_nonnegative CHECK ((seq >= 0))
);

ALTER TABLE ONLY app.audit_chain_heads FORCE ROW LEVEL SECURITY;

ALTER TABLE app.audit_chain_heads OWNER TO mos_owner;

--
-- Name: auth_throttles; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.auth_throttles (
    key text NOT NULL,
    failures integer NOT NULL,
    locked_until timestamp with time zone,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT auth_throttles_failures_nonnegative CHECK ((failures >= 0)),
    CONSTRAINT auth_throttles_key_length CHECK (((length(key) >= 1) AND (length(key) <= 200)))
);

ALTER TABLE ONLY app.auth_throttles FORCE ROW LEVEL SECURITY;

ALTER TABLE app.auth_throttles OWNER TO mos_owner;

--
-- Name: campaign_activity; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.campaign_activity (
    organization_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    hour timestamp with time zone NOT NULL,
    sent bigint DEFAULT 0 NOT NULL,
    delivered bigint DEFAULT 0 NOT NULL,
    deferred bigint DEFAULT 0 NOT NULL,
    hard_bounces bigint DEFAULT 0 NOT NULL,
    soft_bounces bigint DEFAULT 0 NOT NULL,
    complaints bigint DEFAULT 0 NOT NULL,
    unsubscribes bigint DEFAULT 0 NOT NULL,
    clicks bigint DEFAULT 0 NOT NULL,
    clickers bigint DEFAULT 0 NOT NULL,
    CONSTRAINT campaign_activity_clickers CHECK ((clickers >= 0)),
    CONSTRAINT campaign_activity_clicks CHECK ((clicks >= 0)),
    CONSTRAINT campaign_activity_complaints CHECK ((complaints >= 0)),
    CONSTRAINT campaign_activity_deferred CHECK ((deferred >= 0)),
    CONSTRAINT campaign_activity_delivered CHECK ((delivered >= 0)),
    CONSTRAINT campaign_activity_hard_bounces CHECK ((hard_bounces >= 0)),
    CONSTRAINT campaign_activity_hour CHECK ((hour = date_trunc('hour'::text, hour, 'UTC'::text))),
    CONSTRAINT campaign_activity_sent CHECK ((sent >= 0)),
    CONSTRAINT campaign_activity_soft_bounces CHECK ((soft_bounces >= 0)),
    CONSTRAINT campaign_activity_unsubscribes CHECK ((unsubscribes >= 0))
);

ALTER TABLE ONLY app.campaign_activity FORCE ROW LEVEL SECURITY;

ALTER TABLE app.campaign_activity OWNER TO mos_owner;

--
-- Name: campaign_clicks; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.campaign_clicks (
    organization_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    contact_id uuid NOT NULL,
    link smallint NOT NULL,
    first_at timestamp with time zone NOT NULL,
    last_at timestamp with time zone NOT NULL,
    clicks integer NOT NULL,
    CONSTRAINT campaign_clicks_clicks CHECK ((clicks >= 1)),
    CONSTRAINT campaign_clicks_link CHECK ((link >= 0)),
    CONSTRAINT campaign_clicks_times CHECK ((last_at >= first_at))
);

ALTER TABLE ONLY app.campaign_clicks FORCE ROW LEVEL SECURITY;

ALTER TABLE app.campaign_clicks OWNER TO mos_owner;

--
-- Name: campaign_link_tallies; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.campaign_link_tallies (
    organization_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    link smallint NOT NULL,
    unique_clicks bigint NOT NULL,
    clicks bigint NOT NULL,
    CONSTRAINT campaign_link_tallies_clicks CHECK ((clicks >= unique_clicks)),
    CONSTRAINT campaign_link_tallies_unique CHECK ((unique_clicks >= 0))
);

ALTER TABLE ONLY app.campaign_link_tallies FORCE ROW LEVEL SECURITY;

ALTER TABLE app.campaign_link_tallies OWNER TO mos_owner;

--
-- Name: campaign_messages; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.campaign_messages (
    organization_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    contact_id uuid NOT NULL,
    version integer NOT NULL,
    state app.campaign_message_state NOT NULL,
    skip_reason app.campaign_skip_reason,
    attempts smallint DEFAULT 0 NOT NULL,
    not_before timestamp with time zone NOT NULL,
    lease_until timestamp with time zone,
    reply text,
    updated_at timestamp with time zone NOT NULL,
    claimed_at timestamp with time zone,
    batch uuid,
    sent_at timestamp with time zone,
    message_sha256 bytea,
    values_commitment bytea,
    personalisation jsonb,
    personalisation_salt bytea,
    CONSTRAINT campaign_messages_attempts CHECK ((attempts >= 0)),
    CONSTRAINT campaign_messages_erasable CHECK (((personalisation IS NULL) = (personalisation_salt IS NULL))),
    CONSTRAINT campaign_messages_lease CHECK (((state = 'sending'::app.campaign_message_state) = (lease_until IS NOT NULL))),
    CONSTRAINT campaign_messages_message_sha256 CHECK ((length(message_sha256) = 32)),
    CONSTRAINT campaign_messages_personalisation CHECK ((jsonb_typeof(personalisation) = 'object'::text)),
    CONSTRAINT campaign_messages_personalisation_salt CHECK ((length(personalisation_salt) = 16)),
    CONSTRAINT campaign_messages_reply CHECK ((length(reply) <= 1000)),
    CONSTRAINT campaign_messages_sent CHECK ((((state = 'sent'::app.campaign_message_state) = ((batch IS NOT NULL) AND (sent_at IS NOT NULL) AND (message_sha256 IS NOT NULL) AND (values_commitment IS NOT NULL))) AND ((state <> 'sent'::app.campaign_message_state) OR (claimed_at IS NOT NULL)))),
    CONSTRAINT campaign_messages_skip CHECK (((state = 'skipped'::app.campaign_message_state) = (skip_reason IS NOT NULL))),
    CONSTRAINT campaign_messages_values_commitment CHECK ((length(values_commitment) = 32))
);

ALTER TABLE ONLY app.campaign_messages FORCE ROW LEVEL SECURITY;

ALTER TABLE app.campaign_messages OWNER TO mos_owner;

--
-- Name: campaign_runs; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.campaign_runs (
    organization_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    version integer NOT NULL,
    state app.campaign_run_state NOT NULL,
    launched_by uuid NOT NULL,
    launched_at timestamp with time zone NOT NULL,
    recipients bigint NOT NULL,
    finished_at timestamp with time zone,
    held boolean DEFAULT false NOT NULL,
    CONSTRAINT campaign_runs_finished CHECK (((state = ANY (ARRAY['finished'::app.campaign_run_state, 'cancelled'::app.campaign_run_state])) = (finished_at IS NOT NULL))),
    CONSTRAINT campaign_runs_held CHECK (((NOT held) OR (state = 'paused'::app.campaign_run_state))),
    CONSTRAINT campaign_runs_recipients CHECK ((recipients >= 0))
);

ALTER TABLE ONLY app.campaign_runs FORCE ROW LEVEL SECURITY;

ALTER TABLE app.campaign_runs OWNER TO mos_owner;

--
-- Name: campaign_tallies; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.campaign_tallies (
    organization_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    outcome text NOT NULL,
    n bigint NOT NULL,
    CONSTRAINT campaign_tallies_n CHECK ((n >= 0))
);

ALTER TABLE ONLY app.campaign_tallies FORCE ROW LEVEL SECURITY;

ALTER TABLE app.campaign_tallies OWNER TO mos_owner;

--
-- Name: campaign_versions; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.campaign_versions (
    organization_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    version integer NOT NULL,
    sha256 bytea NOT NULL,
    content_id uuid NOT NULL,
    content_version integer NOT NULL,
    content_sha256 bytea NOT NULL,
    template_id uuid NOT NULL,
    template_version integer NOT NULL,
    template_sha256 bytea NOT NULL,
    segment_id uuid NOT NULL,
    segment_version integer NOT NULL,
    segment_sha256 bytea NOT NULL,
    sender_id uuid NOT NULL,
    purpose_id uuid NOT NULL,
    schedule app.campaign_schedule NOT NULL,
    send_at timestamp with time zone,
    local_date date,
    local_hour smallint,
    fields jsonb NOT NULL,
    CONSTRAINT campaign_versions_fields CHECK (((jsonb_typeof(fields) = 'array'::text) AND (jsonb_array_length(fields) <= 20))),
    CONSTRAINT campaign_versions_local_hour CHECK (((local_hour >= 0) AND (local_hour <= 23))),
    CONSTRAINT campaign_versions_schedule CHECK (
CASE schedule
    WHEN 'now'::app.campaign_schedule THEN ((send_at IS NULL) AND (local_date IS NULL) AND (local_hour IS NULL))
    WHEN 'at'::app.campaign_schedule THEN ((send_at IS NOT NULL) AND (local_date IS NULL) AND (local_hour IS NULL))
    ELSE ((send_at IS NULL) AND (local_date IS NOT NULL) AND (local_hour IS NOT NULL))
END)
);

ALTER TABLE ONLY app.campaign_versions FORCE ROW LEVEL SECURITY;

ALTER TABLE app.campaign_versions OWNER TO mos_owner;

--
-- Name: consent_events; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.consent_events (
    organization_id uuid NOT NULL,
    contact_id uuid NOT NULL,
    purpose_id uuid NOT NULL,
    seq integer NOT NULL,
    id uuid NOT NULL,
    channel app.consent_channel NOT NULL,
    kind app.consent_kind NOT NULL,
    basis app.lawful_basis,
    notice_sha256 bytea,
    hipaa jsonb,
    expires_at timestamp with time zone,
    exemption text,
    source app.consent_source NOT NULL,
    import_job uuid,
    import_row bigint,
    evidence_sha256 bytea,
    recorded_by uuid,
    created_at timestamp with time zone NOT NULL,
    campaign_id uuid,
    CONSTRAINT consent_events_campaign CHECK (((campaign_id IS NULL) OR ((source)::text = ANY (ARRAY['unsubscribe'::text, 'preference_centre'::text, 'complaint'::text])))),
    CONSTRAINT consent_events_confirm_source CHECK (((kind <> 'confirm'::app.consent_kind) OR (source = 'signup_form'::app.consent_source))),
    CONSTRAINT consent_events_evidence_sha256 CHECK ((length(evidence_sha256) = 32)),
    CONSTRAINT consent_events_exemption CHECK (((length(exemption) >= 1) AND (length(exemption) <= 2000))),
    CONSTRAINT consent_events_exemption_basis CHECK (((basis = 'exemption'::app.lawful_basis) = (exemption IS NOT NULL))),
    CONSTRAINT consent_events_grant CHECK (((kind <> ALL (ARRAY['grant'::app.consent_kind, 'confirm'::app.consent_kind])) OR ((basis IS NOT NULL) AND (notice_sha256 IS NOT NULL)))),
    CONSTRAINT consent_events_hipaa CHECK ((((basis = 'hipaa_authorization'::app.lawful_basis) = (hipaa IS NOT NULL)) AND ((hipaa IS NULL) OR ((jsonb_typeof(hipaa) = 'object'::text) AND (hipaa ?& ARRAY['information'::text, 'disclosers'::text, 'recipients'::text, 'purpose'::text, 'signature'::text, 'signed_on'::text, 'right_to_revoke'::text, 'conditioning'::text, 'redisclosure'::text]) AND ((expires_at IS NOT NULL) OR (hipaa ? 'expiry_event'::text)))))),
    CONSTRAINT consent_events_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT consent_events_import_row CHECK ((import_row >= 1)),
    CONSTRAINT consent_events_seq CHECK ((seq >= 1)),
    CONSTRAINT consent_events_source CHECK (
CASE (source)::text
    WHEN 'import'::text THEN ((import_job IS NOT NULL) AND (import_row IS NOT NULL) AND (recorded_by IS NOT NULL))
    WHEN 'signup_form'::text THEN ((import_job IS NULL) AND (import_row IS NULL) AND (recorded_by IS NULL))
    WHEN 'unsubscribe'::text THEN ((import_job IS NULL) AND (import_row IS NULL) AND (recorded_by IS NULL))
    WHEN 'preference_centre'::text THEN ((import_job IS NULL) AND (import_row IS NULL) AND (recorded_by IS NULL))
    WHEN 'complaint'::text THEN ((import_job IS NULL) AND (import_row IS NULL) AND (recorded_by IS NULL))
    ELSE ((import_job IS NULL) AND (import_row IS NULL) AND (recorded_by IS NOT NULL))
END)
);

ALTER TABLE ONLY app.consent_events FORCE ROW LEVEL SECURITY;

ALTER TABLE app.consent_events OWNER TO mos_owner;

--
-- Name: consent_current; Type: VIEW; Schema: app; Owner: mos_owner
--

CREATE VIEW app.consent_current WITH (security_invoker='true') AS
 SELECT DISTINCT ON (e.organization_id, e.contact_id, e.purpose_id) e.organization_id,
    e.contact_id,
    e.purpose_id,
    e.seq,
    e.id AS event_id,
    e.channel,
    e.kind,
    e.basis,
    e.notice_sha256,
    e.expires_at,
    e.source,
    e.created_at,
        CASE
            WHEN ((e.kind = 'grant'::app.consent_kind) AND (e.source = 'signup_form'::app.consent_source)) THEN 'pending'::text
            WHEN ((e.kind = ANY (ARRAY['grant'::app.consent_kind, 'confirm'::app.consent_kind])) AND (e.expires_at <= now())) THEN 'expired'::text
            WHEN (e.kind = ANY (ARRAY['grant'::app.consent_kind, 'confirm'::app.consent_kind])) THEN 'granted'::text
            WHEN (e.kind = 'revoke'::app.consent_kind) THEN 'revoked'::text
            ELSE 'expired'::text
        END AS state
   FROM app.consent_events e
  ORDER BY e.organization_id, e.contact_id, e.purpose_id, e.seq DESC;

ALTER TABLE app.consent_current OWNER TO mos_owner;

--
-- Name: consent_evidence; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.consent_evidence (
    organization_id uuid NOT NULL,
    event_id uuid NOT NULL,
    contact_id uuid NOT NULL,
    salt bytea NOT NULL,
    ip inet,
    user_agent text,
    CONSTRAINT consent_evidence_salt CHECK ((length(salt) = 16)),
    CONSTRAINT consent_evidence_user_agent CHECK ((length(user_agent) <= 1000))
);

ALTER TABLE ONLY app.consent_evidence FORCE ROW LEVEL SECURITY;

ALTER TABLE app.consent_evidence OWNER TO mos_owner;

--
-- Name: consent_state; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.consent_state (
    organization_id uuid NOT NULL,
    purpose_id uuid NOT NULL,
    contact_id uuid NOT NULL,
    seq integer NOT NULL,
    kind app.consent_kind NOT NULL,
    source app.consent_source NOT NULL,
    expires_at timestamp with time zone,
    CONSTRAINT consent_state_seq CHECK ((seq >= 1))
);

ALTER TABLE ONLY app.consent_state FORCE ROW LEVEL SECURITY;

ALTER TABLE app.consent_state OWNER TO mos_owner;

--
-- Name: contact_attribute_choices; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.contact_attribute_choices (
    organization_id uuid NOT NULL,
    attribute_id uuid NOT NULL,
    value text NOT NULL,
    CONSTRAINT contact_attribute_choices_value CHECK (((length(value) >= 1) AND (length(value) <= 200)))
);

ALTER TABLE ONLY app.contact_attribute_choices FORCE ROW LEVEL SECURITY;

ALTER TABLE app.contact_attribute_choices OWNER TO mos_owner;

--
-- Name: contact_attribute_values; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.contact_attribute_values (
    organization_id uuid NOT NULL,
    contact_id uuid NOT NULL,
    attribute_id uuid NOT NULL,
    kind app.attribute_kind NOT NULL,
    max_length integer,
    text_value text,
    number_value numeric,
    date_value date,
    boolean_value boolean,
    choice_value text,
    CONSTRAINT contact_attribute_values_number CHECK (((number_value IS NULL) OR (number_value <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric])))),
    CONSTRAINT contact_attribute_values_one_value CHECK (((num_nonnulls(text_value, number_value, date_value, boolean_value, choice_value) = 1) AND
CASE kind
    WHEN 'text'::app.attribute_kind THEN (text_value IS NOT NULL)
    WHEN 'number'::app.attribute_kind THEN (number_value IS NOT NULL)
    WHEN 'date'::app.attribute_kind THEN (date_value IS NOT NULL)
    WHEN 'boolean'::app.attribute_kind THEN (boolean_value IS NOT NULL)
    WHEN 'choice'::app.attribute_kind THEN (choice_value IS NOT NULL)
    ELSE NULL::boolean
END)),
    CONSTRAINT contact_attribute_values_text_length CHECK ((((kind = 'text'::app.attribute_kind) = (max_length IS NOT NULL)) AND ((text_value IS NULL) OR (length(text_value) <= max_length))))
);

ALTER TABLE ONLY app.contact_attribute_values FORCE ROW LEVEL SECURITY;

ALTER TABLE app.contact_attribute_values OWNER TO mos_owner;

--
-- Name: contact_attributes; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.contact_attributes (
    organization_id uuid NOT NULL,
    id uuid NOT NULL,
    name text NOT NULL,
    kind app.attribute_kind NOT NULL,
    max_length integer,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT contact_attributes_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT contact_attributes_max_length CHECK (((max_length >= 1) AND (max_length <= 10000))),
    CONSTRAINT contact_attributes_name CHECK ((name ~ '^[a-z][a-z0-9_]{0,62}$'::text)),
    CONSTRAINT contact_attributes_text_length CHECK (((kind = 'text'::app.attribute_kind) = (max_length IS NOT NULL)))
);

ALTER TABLE ONLY app.contact_attributes FORCE ROW LEVEL SECURITY;

ALTER TABLE app.contact_attributes OWNER TO mos_owner;

--
-- Name: contact_import_chunks; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.contact_import_chunks (
    organization_id uuid NOT NULL,
    import_id uuid NOT NULL,
    seq integer NOT NULL,
    data bytea NOT NULL,
    CONSTRAINT contact_import_chunks_data CHECK (((length(data) >= 1) AND (length(data) <= 1048576))),
    CONSTRAINT contact_import_chunks_seq CHECK ((seq >= 0))
);

ALTER TABLE ONLY app.contact_import_chunks FORCE ROW LEVEL SECURITY;

ALTER TABLE app.contact_import_chunks OWNER TO mos_owner;

--
-- Name: contact_import_problems; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.contact_import_problems (
    organization_id uuid NOT NULL,
    import_id uuid NOT NULL,
    row_number bigint NOT NULL,
    column_name text NOT NULL,
    reason text NOT NULL,
    CONSTRAINT contact_import_problems_column CHECK ((length(column_name) <= 200)),
    CONSTRAINT contact_import_problems_reason CHECK (((length(reason) >= 1) AND (length(reason) <= 200))),
    CONSTRAINT contact_import_problems_row CHECK ((row_number >= 2))
);

ALTER TABLE ONLY app.contact_import_problems FORCE ROW LEVEL SECURITY;

ALTER TABLE app.contact_import_problems OWNER TO mos_owner;

--
-- Name: contact_imports; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.contact_imports (
    organization_id uuid NOT NULL,
    id uuid NOT NULL,
    file_name text NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    file_sha256 bytea,
    size_bytes bigint,
    chunks integer,
    mapping jsonb,
    provenance jsonb,
    job_id uuid,
    imported bigint DEFAULT 0 NOT NULL,
    existing bigint DEFAULT 0 NOT NULL,
    suppressed bigint DEFAULT 0 NOT NULL,
    invalid bigint DEFAULT 0 NOT NULL,
    finished_at timestamp with time zone,
    rows bigint,
    CONSTRAINT contact_imports_chunks CHECK ((chunks >= 0)),
    CONSTRAINT contact_imports_existing CHECK ((existing >= 0)),
    CONSTRAINT contact_imports_file_name CHECK (((length(file_name) >= 1) AND (length(file_name) <= 255))),
    CONSTRAINT contact_imports_file_sha256 CHECK ((length(file_sha256) = 32)),
    CONSTRAINT contact_imports_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT contact_imports_imported CHECK ((imported >= 0)),
    CONSTRAINT contact_imports_invalid CHECK ((invalid >= 0)),
    CONSTRAINT contact_imports_rows CHECK ((rows >= 0)),
    CONSTRAINT contact_imports_sealed CHECK ((((file_sha256 IS NULL) = (size_bytes IS NULL)) AND ((file_sha256 IS NULL) = (chunks IS NULL)))),
    CONSTRAINT contact_imports_size CHECK ((size_bytes >= 0)),
    CONSTRAINT contact_imports_started CHECK (((job_id IS NULL) OR ((file_sha256 IS NOT NULL) AND (mapping IS NOT NULL)))),
    CONSTRAINT contact_imports_suppressed CHECK ((suppressed >= 0))
);

ALTER TABLE ONLY app.contact_imports FORCE ROW LEVEL SECURITY;

ALTER TABLE app.contact_imports OWNER TO mos_owner;

--
-- Name: contacts; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.contacts (
    organization_id uuid NOT NULL,
    id uuid NOT NULL,
    address text,
    address_key bytea,
    name text,
    locale text,
    time_zone text,
    tags text[] DEFAULT '{}'::text[] NOT NULL,
    created_at timestamp with time zone NOT NULL,
    erased_at timestamp with time zone,
    CONSTRAINT contacts_address CHECK (((length(address) >= 3) AND (length(address) <= 254))),
    CONSTRAINT contacts_address_key_length CHECK ((length(address_key) = 32)),
    CONSTRAINT contacts_erased CHECK ((((erased_at IS NULL) AND (address IS NOT NULL) AND (address_key IS NOT NULL)) OR ((erased_at IS NOT NULL) AND (address IS NULL) AND (address_key IS NULL) AND (name IS NULL) AND (locale IS NULL) AND (time_zone IS NULL) AND (tags = '{}'::text[])))),
    CONSTRAINT contacts_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT contacts_locale CHECK ((locale ~ '^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$'::text)),
    CONSTRAINT contacts_name CHECK (((length(name) >= 1) AND (length(name) <= 200))),
    CONSTRAINT contacts_tags CHECK (((cardinality(tags) <= 50) AND (array_position(tags, NULL::text) IS NULL))),
    CONSTRAINT contacts_time_zone CHECK (((length(time_zone) >= 1) AND (length(time_zone) <= 64)))
);

ALTER TABLE ONLY app.contacts FORCE ROW LEVEL SECURITY;

ALTER TABLE app.contacts OWNER TO mos_owner;

--
-- Name: content_events; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.content_events (
    organization_id uuid NOT NULL,
    item_id uuid NOT NULL,
    id uuid NOT NULL,
    kind app.content_event_kind NOT NULL,
    version integer NOT NULL,
    sha256 bytea NOT NULL,
    version_author uuid NOT NULL,
    actor_id uuid NOT NULL,
    from_state app.content_state,
    to_state app.content_state NOT NULL,
    note text,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT content_events_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT content_events_note CHECK (((length(note) >= 1) AND (length(note) <= 10000))),
    CONSTRAINT content_events_separation_of_duties CHECK (((kind <> 'approved'::app.content_event_kind) OR (actor_id <> version_author)))
);

ALTER TABLE ONLY app.content_events FORCE ROW LEVEL SECURITY;

ALTER TABLE app.content_events OWNER TO mos_owner;

--
-- Name: content_items; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.content_items (
    organization_id uuid NOT NULL,
    id uuid NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    state app.content_state NOT NULL,
    revision integer NOT NULL,
    current_version integer NOT NULL,
    approved_version integer,
    published_version integer,
    published_at timestamp with time zone,
    CONSTRAINT content_items_approved CHECK ((((state = ANY (ARRAY['approved'::app.content_state, 'published'::app.content_state])) AND (approved_version = current_version)) OR ((state <> ALL (ARRAY['approved'::app.content_state, 'published'::app.content_state])) AND ((state = 'archived'::app.content_state) OR (approved_version IS NULL))))),
    CONSTRAINT content_items_current_version CHECK ((current_version >= 1)),
    CONSTRAINT content_items_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT content_items_published CHECK ((((published_version IS NULL) = (published_at IS NULL)) AND ((published_version IS NULL) OR (published_version = approved_version)) AND ((state <> 'published'::app.content_state) OR (published_version IS NOT NULL))))
);

ALTER TABLE ONLY app.content_items FORCE ROW LEVEL SECURITY;

ALTER TABLE app.content_items OWNER TO mos_owner;

--
-- Name: content_versions; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.content_versions (
    organization_id uuid NOT NULL,
    item_id uuid NOT NULL,
    number integer NOT NULL,
    author_id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    title text NOT NULL,
    channel app.content_channel NOT NULL,
    audience text NOT NULL,
    body text NOT NULL,
    tags text[] NOT NULL,
    sha256 bytea NOT NULL,
    CONSTRAINT content_versions_audience CHECK ((length(audience) <= 2000)),
    CONSTRAINT content_versions_body CHECK ((octet_length(body) <= 100000)),
    CONSTRAINT content_versions_number CHECK ((number >= 1)),
    CONSTRAINT content_versions_sha256_length CHECK ((length(sha256) = 32)),
    CONSTRAINT content_versions_tags CHECK ((cardinality(tags) <= 20)),
    CONSTRAINT content_versions_title CHECK (((length(title) >= 1) AND (length(title) <= 800)))
);

ALTER TABLE ONLY app.content_versions FORCE ROW LEVEL SECURITY;

ALTER TABLE app.content_versions OWNER TO mos_owner;

--
-- Name: delivery_feedback; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.delivery_feedback (
    organization_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    contact_id uuid NOT NULL,
    kind app.feedback_kind NOT NULL,
    code text NOT NULL,
    received_at timestamp with time zone NOT NULL,
    CONSTRAINT delivery_feedback_code CHECK (((code ~ '^[245]\.[0-9]{1,3}\.[0-9]{1,3}$'::text) OR ((kind = 'complaint'::app.feedback_kind) AND (code = ANY (ARRAY['abuse'::text, 'fraud'::text, 'virus'::text, 'auth-failure'::text, 'not-spam'::text, 'other'::text])))))
);

ALTER TABLE ONLY app.delivery_feedback FORCE ROW LEVEL SECURITY;

ALTER TABLE app.delivery_feedback OWNER TO mos_owner;

--
-- Name: dkim_keys; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.dkim_keys (
    organization_id uuid NOT NULL,
    id uuid NOT NULL,
    sender_id uuid NOT NULL,
    selector text NOT NULL,
    public_key bytea NOT NULL,
    sealed_private_key bytea NOT NULL,
    state app.dkim_key_state NOT NULL,
    created_at timestamp with time zone NOT NULL,
    retired_at timestamp with time zone,
    CONSTRAINT dkim_keys_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT dkim_keys_public_key CHECK ((octet_length(public_key) = 294)),
    CONSTRAINT dkim_keys_retired CHECK (((state = 'retired'::app.dkim_key_state) = (retired_at IS NOT NULL))),
    CONSTRAINT dkim_keys_sealed_private_key CHECK (((octet_length(sealed_private_key) >= 1000) AND (octet_length(sealed_private_key) <= 4000))),
    CONSTRAINT dkim_keys_selector CHECK (((octet_length(selector) <= 63) AND (selector ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$'::text)))
);

ALTER TABLE ONLY app.dkim_keys FORCE ROW LEVEL SECURITY;

ALTER TABLE app.dkim_keys OWNER TO mos_owner;

--
-- Name: email_verification_tokens; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.email_verification_tokens (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    used_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT email_verification_tokens_expiry CHECK ((expires_at > created_at)),
    CONSTRAINT email_verification_tokens_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT email_verification_tokens_token_hash_length CHECK ((length(token_hash) = 32))
);

ALTER TABLE ONLY app.email_verification_tokens FORCE ROW LEVEL SECURITY;

ALTER TABLE app.email_verification_tokens OWNER TO mos_owner;

--
-- Name: feedback_credentials; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.feedback_credentials (
    id uuid NOT NULL,
    name text NOT NULL,
    token_hash bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    CONSTRAINT feedback_credentials_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT feedback_credentials_name_format CHECK ((name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'::text)),
    CONSTRAINT feedback_credentials_revoked CHECK (((revoked_at IS NULL) OR (revoked_at >= created_at))),
    CONSTRAINT feedback_credentials_token_hash_length CHECK ((length(token_hash) = 32))
);

ALTER TABLE ONLY app.feedback_credentials FORCE ROW LEVEL SECURITY;

ALTER TABLE app.feedback_credentials OWNER TO mos_owner;

--
-- Name: invitations; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.invitations (
    organization_id uuid NOT NULL,
    id uuid NOT NULL,
    email text NOT NULL,
    role app.role NOT NULL,
    token_hash bytea NOT NULL,
    invited_by uuid,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    accepted_at timestamp with time zone,
    accepted_by uuid,
    revoked_at timestamp with time zone,
    CONSTRAINT invitations_email_format CHECK ((((length(email) >= 3) AND (length(email) <= 254)) AND (email = lower(btrim(email))) AND (email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'::text))),
    CONSTRAINT invitations_expiry CHECK ((expires_at > created_at)),
    CONSTRAINT invitations_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT invitations_settled_once CHECK (((accepted_at IS NULL) OR (revoked_at IS NULL))),
    CONSTRAINT invitations_token_hash_length CHECK ((length(token_hash) = 32))
);

ALTER TABLE ONLY app.invitations FORCE ROW LEVEL SECURITY;

ALTER TABLE app.invitations OWNER TO mos_owner;

--
-- Name: jobs; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.jobs (
    organization_id uuid NOT NULL,
    id uuid NOT NULL,
    kind text NOT NULL,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    state app.job_state DEFAULT 'queued'::app.job_state NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer NOT NULL,
    run_after timestamp with time zone NOT NULL,
    lease_token uuid,
    lease_expires_at timestamp with time zone,
    last_claimed_at timestamp with time zone,
    cancel_requested_at timestamp with time zone,
    total bigint,
    done bigint DEFAULT 0 NOT NULL,
    errors bigint DEFAULT 0 NOT NULL,
    busy_ms bigint DEFAULT 0 NOT NULL,
    last_error text,
    created_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone,
    CONSTRAINT jobs_attempts CHECK (((attempts >= 0) AND (attempts <= max_attempts))),
    CONSTRAINT jobs_busy CHECK ((busy_ms >= 0)),
    CONSTRAINT jobs_done CHECK ((done >= 0)),
    CONSTRAINT jobs_errors CHECK ((errors >= 0)),
    CONSTRAINT jobs_finished CHECK (((state = ANY (ARRAY['succeeded'::app.job_state, 'failed'::app.job_state, 'cancelled'::app.job_state])) = (finished_at IS NOT NULL))),
    CONSTRAINT jobs_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT jobs_kind CHECK ((kind ~ '^[a-z][a-z_]{0,39}$'::text)),
    CONSTRAINT jobs_last_error_length CHECK ((length(last_error) <= 1000)),
    CONSTRAINT jobs_lease CHECK (((state = 'running'::app.job_state) = ((lease_token IS NOT NULL) AND (lease_expires_at IS NOT NULL)))),
    CONSTRAINT jobs_max_attempts CHECK (((max_attempts >= 1) AND (max_attempts <= 100))),
    CONSTRAINT jobs_total CHECK ((total >= 0))
);

ALTER TABLE ONLY app.jobs FORCE ROW LEVEL SECURITY;

ALTER TABLE app.jobs OWNER TO mos_owner;

--
-- Name: login_challenges; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.login_challenges (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    consumed_at timestamp with time zone,
    CONSTRAINT login_challenges_attempts_nonnegative CHECK ((attempts >= 0)),
    CONSTRAINT login_challenges_expiry CHECK ((expires_at > created_at)),
    CONSTRAINT login_challenges_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT login_challenges_token_hash_length CHECK ((length(token_hash) = 32))
);

ALTER TABLE ONLY app.login_challenges FORCE ROW LEVEL SECURITY;

ALTER TABLE app.login_challenges OWNER TO mos_owner;

--
-- Name: notices; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.notices (
    organization_id uuid NOT NULL,
    purpose_id uuid NOT NULL,
    sha256 bytea NOT NULL,
    body text NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT notices_body CHECK (((octet_length(body) >= 1) AND (octet_length(body) <= 100000))),
    CONSTRAINT notices_sha256 CHECK ((sha256 = sha256(convert_to(body, 'UTF8'::name))))
);

ALTER TABLE ONLY app.notices FORCE ROW LEVEL SECURITY;

ALTER TABLE app.notices OWNER TO mos_owner;

--
-- Name: organizations; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.organizations (
    id uuid NOT NULL,
    slug text NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    require_two_factor boolean DEFAULT false NOT NULL,
    required_approvals integer DEFAULT 1 NOT NULL,
    require_phishing_resistant boolean DEFAULT false NOT NULL,
    CONSTRAINT organizations_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT organizations_name_format CHECK ((((length(name) >= 1) AND (length(name) <= 200)) AND (name = btrim(name)) AND (name !~ '[[:cntrl:]]'::text))),
    CONSTRAINT organizations_required_approvals CHECK (((required_approvals >= 1) AND (required_approvals <= 5))),
    CONSTRAINT organizations_slug_format CHECK ((((length(slug) >= 3) AND (length(slug) <= 63)) AND (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'::text)))
);

ALTER TABLE ONLY app.organizations FORCE ROW LEVEL SECURITY;

ALTER TABLE app.organizations OWNER TO mos_owner;

--
-- Name: passkey_enrollments; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.passkey_enrollments (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    used_at timestamp with time zone,
    CONSTRAINT passkey_enrollments_expiry CHECK ((expires_at > created_at)),
    CONSTRAINT passkey_enrollments_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT passkey_enrollments_token_hash_length CHECK ((length(token_hash) = 32))
);

ALTER TABLE ONLY app.passkey_enrollments FORCE ROW LEVEL SECURITY;

ALTER TABLE app.passkey_enrollments OWNER TO mos_owner;

--
-- Name: passkeys; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.passkeys (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    credential_id bytea NOT NULL,
    name text NOT NULL,
    credential jsonb NOT NULL,
    sign_count bigint NOT NULL,
    backup_eligible boolean NOT NULL,
    backup_state boolean NOT NULL,
    transports text[] NOT NULL,
    created_at timestamp with time zone NOT NULL,
    last_used_at timestamp with time zone,
    CONSTRAINT passkeys_credential_id_length CHECK (((length(credential_id) >= 16) AND (length(credential_id) <= 1023))),
    CONSTRAINT passkeys_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT passkeys_name CHECK (((length(name) >= 1) AND (length(name) <= 100))),
    CONSTRAINT passkeys_sign_count CHECK ((sign_count >= 0))
);

ALTER TABLE ONLY app.passkeys FORCE ROW LEVEL SECURITY;

ALTER TABLE app.passkeys OWNER TO mos_owner;

--
-- Name: password_reset_tokens; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.password_reset_tokens (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    used_at timestamp with time zone,
    CONSTRAINT password_reset_tokens_expiry CHECK ((expires_at > created_at)),
    CONSTRAINT password_reset_tokens_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT password_reset_tokens_token_hash_length CHECK ((length(token_hash) = 32))
);

ALTER TABLE ONLY app.password_reset_tokens FORCE ROW LEVEL SECURITY;

ALTER TABLE app.password_reset_tokens OWNER TO mos_owner;

--
-- Name: platform_audit_logs; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.platform_audit_logs (
    id uuid NOT NULL,
    actor_user_id uuid,
    action text NOT NULL,
    resource_type text NOT NULL,
    resource_id text,
    outcome app.audit_outcome NOT NULL,
    ip inet,
    user_agent text,
    request_id text,
    changes jsonb DEFAULT '{}'::jsonb NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    subject_user_id uuid,
    CONSTRAINT audit_logs_action_format CHECK (((length(action) <= 100) AND (action ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'::text))),
    CONSTRAINT audit_logs_changes_object CHECK ((jsonb_typeof(changes) = 'object'::text)),
    CONSTRAINT audit_logs_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT audit_logs_metadata_object CHECK ((jsonb_typeof(metadata) = 'object'::text)),
    CONSTRAINT audit_logs_request_id_length CHECK (((length(request_id) >= 1) AND (length(request_id) <= 200))),
    CONSTRAINT audit_logs_resource_id_length CHECK (((length(resource_id) >= 1) AND (length(resource_id) <= 200))),
    CONSTRAINT audit_logs_resource_type_format CHECK (((length(resource_type) <= 64) AND (resource_type ~ '^[a-z][a-z0-9_]*$'::text))),
    CONSTRAINT audit_logs_user_agent_length CHECK ((length(user_agent) <= 1024))
);

ALTER TABLE ONLY app.platform_audit_logs FORCE ROW LEVEL SECURITY;

ALTER TABLE app.platform_audit_logs OWNER TO mos_owner;

--
-- Name: purposes; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.purposes (
    organization_id uuid NOT NULL,
    id uuid NOT NULL,
    name text NOT NULL,
    channel app.consent_channel NOT NULL,
    needs_hipaa_authorization boolean NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT purposes_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT purposes_name CHECK (((length(name) >= 1) AND (length(name) <= 200)))
);

ALTER TABLE ONLY app.purposes FORCE ROW LEVEL SECURITY;

ALTER TABLE app.purposes OWNER TO mos_owner;

--
-- Name: recovery_codes; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.recovery_codes (
    user_id uuid NOT NULL,
    code_hash bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    used_at timestamp with time zone,
    CONSTRAINT recovery_codes_code_hash_length CHECK ((length(code_hash) = 32))
);

ALTER TABLE ONLY app.recovery_codes FORCE ROW LEVEL SECURITY;

ALTER TABLE app.recovery_codes OWNER TO mos_owner;

--
-- Name: segment_versions; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.segment_versions (
    organization_id uuid NOT NULL,
    segment_id uuid NOT NULL,
    version integer NOT NULL,
    definition text NOT NULL,
    sha256 bytea NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT segment_versions_definition CHECK ((((octet_length(definition) >= 2) AND (octet_length(definition) <= 65536)) AND (jsonb_typeof((definition)::jsonb) = 'object'::text))),
    CONSTRAINT segment_versions_sha256 CHECK ((sha256 = sha256(convert_to(definition, 'UTF8'::name)))),
    CONSTRAINT segment_versions_version CHECK ((version >= 1))
);

ALTER TABLE ONLY app.segment_versions FORCE ROW LEVEL SECURITY;

ALTER TABLE app.segment_versions OWNER TO mos_owner;

--
-- Name: segments; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.segments (
    organization_id uuid NOT NULL,
    id uuid NOT NULL,
    name text NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT segments_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT segments_name CHECK (((length(name) >= 1) AND (length(name) <= 200)))
);

ALTER TABLE ONLY app.segments FORCE ROW LEVEL SECURITY;

ALTER TABLE app.segments OWNER TO mos_owner;

--
-- Name: senders; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.senders (
    organization_id uuid NOT NULL,
    id uuid NOT NULL,
    from_name text NOT NULL,
    from_address text NOT NULL,
    reply_to text,
    postal_address text NOT NULL,
    dkim_domain text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT senders_dkim_aligned CHECK ((("right"(from_address, (length(dkim_domain) + 1)) = ('@'::text || dkim_domain)) OR ("right"(from_address, (length(dkim_domain) + 1)) = ('.'::text || dkim_domain)))),
    CONSTRAINT senders_dkim_domain CHECK (((octet_length(dkim_domain) <= 253) AND (dkim_domain ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'::text))),
    CONSTRAINT senders_from_address CHECK ((((octet_length(from_address) >= 3) AND (octet_length(from_address) <= 254)) AND (strpos(from_address, '@'::text) > 1))),
    CONSTRAINT senders_from_name CHECK ((((length(from_name) >= 1) AND (length(from_name) <= 100)) AND (from_name !~ '[\x01-\x1f\x7f<>"]'::text))),
    CONSTRAINT senders_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT senders_postal_address CHECK ((((length(postal_address) >= 1) AND (length(postal_address) <= 500)) AND (postal_address ~ '[^[:space:]]'::text) AND (postal_address !~ '[\x01-\x09\x0b-\x1f\x7f]'::text))),
    CONSTRAINT senders_reply_to CHECK ((((octet_length(reply_to) >= 3) AND (octet_length(reply_to) <= 254)) AND (strpos(reply_to, '@'::text) > 1)))
);

ALTER TABLE ONLY app.senders FORCE ROW LEVEL SECURITY;

ALTER TABLE app.senders OWNER TO mos_owner;

--
-- Name: sending_breakers; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.sending_breakers (
    organization_id uuid NOT NULL,
    min_sent integer DEFAULT 1000 NOT NULL,
    hard_bounce_limit integer DEFAULT 500 NOT NULL,
    state text DEFAULT 'clear'::text NOT NULL,
    reason text,
    changed_at timestamp with time zone,
    CONSTRAINT sending_breakers_hard_bounce_limit CHECK (((hard_bounce_limit >= 50) AND (hard_bounce_limit <= 2000))),
    CONSTRAINT sending_breakers_min_sent CHECK (((min_sent >= 100) AND (min_sent <= 1000000))),
    CONSTRAINT sending_breakers_reason CHECK ((((state = 'halted'::text) = (reason IS NOT NULL)) AND ((reason IS NULL) OR (reason = ANY (ARRAY['complaints'::text, 'hard_bounces'::text]))))),
    CONSTRAINT sending_breakers_state CHECK ((state = ANY (ARRAY['clear'::text, 'warned'::text, 'halted'::text])))
);

ALTER TABLE ONLY app.sending_breakers FORCE ROW LEVEL SECURITY;

ALTER TABLE app.sending_breakers OWNER TO mos_owner;

--
-- Name: sending_counts; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.sending_counts (
    organization_id uuid NOT NULL,
    span text NOT NULL,
    starts date NOT NULL,
    sent bigint DEFAULT 0 NOT NULL,
    refused bigint DEFAULT 0 NOT NULL,
    hard_bounces bigint DEFAULT 0 NOT NULL,
    soft_bounces bigint DEFAULT 0 NOT NULL,
    delivered bigint DEFAULT 0 NOT NULL,
    complaints bigint DEFAULT 0 NOT NULL,
    CONSTRAINT sending_counts_complaints CHECK ((complaints >= 0)),
    CONSTRAINT sending_counts_delivered CHECK ((delivered >= 0)),
    CONSTRAINT sending_counts_hard_bounces CHECK ((hard_bounces >= 0)),
    CONSTRAINT sending_counts_refused CHECK ((refused >= 0)),
    CONSTRAINT sending_counts_sent CHECK ((sent >= 0)),
    CONSTRAINT sending_counts_soft_bounces CHECK ((soft_bounces >= 0)),
    CONSTRAINT sending_counts_span CHECK ((span = ANY (ARRAY['day'::text, 'month'::text])))
);

ALTER TABLE ONLY app.sending_counts FORCE ROW LEVEL SECURITY;

ALTER TABLE app.sending_counts OWNER TO mos_owner;

--
-- Name: sessions; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.sessions (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    last_seen_at timestamp with time zone NOT NULL,
    authenticated_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    ip inet,
    user_agent text,
    phishing_resistant boolean DEFAULT false NOT NULL,
    CONSTRAINT sessions_expiry CHECK ((expires_at > created_at)),
    CONSTRAINT sessions_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT sessions_token_hash_length CHECK ((length(token_hash) = 32)),
    CONSTRAINT sessions_user_agent_length CHECK ((length(user_agent) <= 1024))
);

ALTER TABLE ONLY app.sessions FORCE ROW LEVEL SECURITY;

ALTER TABLE app.sessions OWNER TO mos_owner;

--
-- Name: signup_confirmations; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.signup_confirmations (
    organization_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    contact_id uuid NOT NULL,
    purpose_id uuid NOT NULL,
    grant_event_id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    used_at timestamp with time zone,
    CONSTRAINT signup_confirmations_expiry CHECK ((expires_at > created_at)),
    CONSTRAINT signup_confirmations_token_hash CHECK ((length(token_hash) = 32)),
    CONSTRAINT signup_confirmations_used CHECK (((used_at IS NULL) OR (used_at >= created_at)))
);

ALTER TABLE ONLY app.signup_confirmations FORCE ROW LEVEL SECURITY;

ALTER TABLE app.signup_confirmations OWNER TO mos_owner;

--
-- Name: suppressions; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.suppressions (
    organization_id uuid NOT NULL,
    address_key bytea NOT NULL,
    reason app.suppression_reason NOT NULL,
    recorded_by uuid,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT suppressions_address_key CHECK ((length(address_key) = 32))
);

ALTER TABLE ONLY app.suppressions FORCE ROW LEVEL SECURITY;

ALTER TABLE app.suppressions OWNER TO mos_owner;

--
-- Name: totp_setups; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.totp_setups (
    user_id uuid NOT NULL,
    secret_encrypted bytea NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT totp_setups_expiry CHECK ((expires_at > created_at)),
    CONSTRAINT totp_setups_secret_nonempty CHECK ((length(secret_encrypted) > 0))
);

ALTER TABLE ONLY app.totp_setups FORCE ROW LEVEL SECURITY;

ALTER TABLE app.totp_setups OWNER TO mos_owner;

--
-- Name: user_organizations; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.user_organizations (
    organization_id uuid NOT NULL,
    user_id uuid NOT NULL,
    role app.role NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY app.user_organizations FORCE ROW LEVEL SECURITY;

ALTER TABLE app.user_organizations OWNER TO mos_owner;

--
-- Name: users; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.users (
    id uuid NOT NULL,
    email text NOT NULL,
    password_hash text NOT NULL,
    email_verified_at timestamp with time zone,
    totp_secret_encrypted bytea,
    totp_enabled_at timestamp with time zone,
    totp_last_used_step bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT users_email_format CHECK ((((length(email) >= 3) AND (length(email) <= 254)) AND (email = lower(btrim(email))) AND (email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'::text))),
    CONSTRAINT users_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT users_password_hash_format CHECK ((password_hash ~~ '$argon2id$%'::text)),
    CONSTRAINT users_totp_enabled_has_secret CHECK (((totp_enabled_at IS NULL) OR (totp_secret_encrypted IS NOT NULL)))
);

ALTER TABLE ONLY app.users FORCE ROW LEVEL SECURITY;

ALTER TABLE app.users OWNER TO mos_owner;

--
-- Name: webauthn_ceremonies; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.webauthn_ceremonies (
    handle_hash bytea NOT NULL,
    purpose text NOT NULL,
    user_id uuid,
    state jsonb NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    used_at timestamp with time zone,
    CONSTRAINT webauthn_ceremonies_expiry CHECK ((expires_at > created_at)),
    CONSTRAINT webauthn_ceremonies_handle_length CHECK ((length(handle_hash) = 32)),
    CONSTRAINT webauthn_ceremonies_purpose CHECK ((purpose = ANY (ARRAY['register'::text, 'second_factor'::text, 'passwordless'::text, 'reauthenticate'::text]))),
    CONSTRAINT webauthn_ceremonies_user CHECK (((purpose = 'passwordless'::text) = (user_id IS NULL)))
);

ALTER TABLE ONLY app.webauthn_ceremonies FORCE ROW LEVEL SECURITY;

ALTER TABLE app.webauthn_ceremonies OWNER TO mos_owner;

--
-- Name: webhook_outbox; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.webhook_outbox (
    organization_id uuid NOT NULL,
    subscription_id uuid NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    contact_id uuid,
    data jsonb NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    enqueued_at timestamp with time zone NOT NULL,
    ord bigint NOT NULL,
    state text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone NOT NULL,
    lease_token uuid,
    lease_expires_at timestamp with time zone,
    last_attempt_at timestamp with time zone,
    last_status smallint,
    last_error text,
    finished_at timestamp with time zone,
    CONSTRAINT webhook_outbox_attempts CHECK ((attempts >= 0)),
    CONSTRAINT webhook_outbox_data CHECK ((jsonb_typeof(data) = 'object'::text)),
    CONSTRAINT webhook_outbox_finished CHECK (((state = 'pending'::text) = (finished_at IS NULL))),
    CONSTRAINT webhook_outbox_last_error CHECK ((length(last_error) <= 300)),
    CONSTRAINT webhook_outbox_lease CHECK (((lease_token IS NULL) = (lease_expires_at IS NULL))),
    CONSTRAINT webhook_outbox_state CHECK ((state = ANY (ARRAY['pending'::text, 'delivered'::text, 'failed'::text])))
);

ALTER TABLE ONLY app.webhook_outbox FORCE ROW LEVEL SECURITY;

ALTER TABLE app.webhook_outbox OWNER TO mos_owner;

--
-- Name: webhook_subscriptions; Type: TABLE; Schema: app; Owner: mos_owner
--

CREATE TABLE app.webhook_subscriptions (
    organization_id uuid NOT NULL,
    id uuid NOT NULL,
    url text NOT NULL,
    events text[] NOT NULL,
    description text,
    sealed_secret bytea NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    disabled_reason text,
    consecutive_failures integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT webhook_subscriptions_description CHECK ((length(description) <= 200)),
    CONSTRAINT webhook_subscriptions_disabled CHECK (((enabled = (disabled_reason IS NULL)) AND ((disabled_reason IS NULL) OR (disabled_reason = ANY (ARRAY['member'::text, 'failures'::text]))))),
    CONSTRAINT webhook_subscriptions_events CHECK (((cardinality(events) >= 1) AND (events <@ ARRAY['message.sent'::text, 'message.delivered'::text, 'message.bounced'::text, 'message.complained'::text, 'message.clicked'::text, 'contact.unsubscribed'::text, 'consent.changed'::text]))),
    CONSTRAINT webhook_subscriptions_failures CHECK ((consecutive_failures >= 0)),
    CONSTRAINT webhook_subscriptions_id_v7 CHECK (app.is_uuid_v7(id)),
    CONSTRAINT webhook_subscriptions_url CHECK ((((length(url) >= 8) AND (length(url) <= 2000)) AND (url ~ '^https?://'::text)))
);

ALTER TABLE ONLY app.webhook_subscriptions FORCE ROW LEVEL SECURITY;

ALTER TABLE app.webhook_subscriptions OWNER TO mos_owner;

--
-- Name: applied; Type: TABLE; Schema: mos_migrations; Owner: mos_owner
--

CREATE TABLE mos_migrations.applied (
    version bigint NOT NULL,
    name text NOT NULL,
    checksum bytea NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL,
    duration_ms bigint NOT NULL
);

ALTER TABLE mos_migrations.applied OWNER TO mos_owner;

--
-- Name: audit_blocks audit_blocks_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.audit_blocks
    ADD CONSTRAINT audit_blocks_pkey PRIMARY KEY (organization_id, first_seq);

--
-- Name: audit_chain_heads audit_chain_heads_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.audit_chain_heads
    ADD CONSTRAINT audit_chain_heads_pkey PRIMARY KEY (organization_id);

--
-- Name: audit_logs audit_logs_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.audit_logs
    ADD CONSTRAINT audit_logs_pkey PRIMARY KEY (organization_id, id);

--
-- Name: auth_throttles auth_throttles_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.auth_throttles
    ADD CONSTRAINT auth_throttles_pkey PRIMARY KEY (key);

--
-- Name: campaign_activity campaign_activity_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_activity
    ADD CONSTRAINT campaign_activity_pkey PRIMARY KEY (organization_id, campaign_id, hour);

--
-- Name: campaign_clicks campaign_clicks_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_clicks
    ADD CONSTRAINT campaign_clicks_pkey PRIMARY KEY (organization_id, campaign_id, contact_id, link);

--
-- Name: campaign_link_tallies campaign_link_tallies_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_link_tallies
    ADD CONSTRAINT campaign_link_tallies_pkey PRIMARY KEY (organization_id, campaign_id, link);

--
-- Name: campaign_messages campaign_messages_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_messages
    ADD CONSTRAINT campaign_messages_pkey PRIMARY KEY (organization_id, campaign_id, contact_id);

--
-- Name: campaign_runs campaign_runs_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_runs
    ADD CONSTRAINT campaign_runs_pkey PRIMARY KEY (organization_id, campaign_id);

--
-- Name: campaign_tallies campaign_tallies_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_tallies
    ADD CONSTRAINT campaign_tallies_pkey PRIMARY KEY (organization_id, campaign_id, outcome);

--
-- Name: campaign_versions campaign_versions_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_versions
    ADD CONSTRAINT campaign_versions_pkey PRIMARY KEY (organization_id, campaign_id, version);

--
-- Name: consent_events consent_events_id_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.consent_events
    ADD CONSTRAINT consent_events_id_key UNIQUE (organization_id, id);

--
-- Name: consent_events consent_events_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.consent_events
    ADD CONSTRAINT consent_events_pkey PRIMARY KEY (organization_id, contact_id, purpose_id, seq);

--
-- Name: consent_evidence consent_evidence_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.consent_evidence
    ADD CONSTRAINT consent_evidence_pkey PRIMARY KEY (organization_id, event_id);

--
-- Name: consent_state consent_state_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.consent_state
    ADD CONSTRAINT consent_state_pkey PRIMARY KEY (organization_id, purpose_id, contact_id) INCLUDE (kind, source, expires_at);

--
-- Name: contact_attribute_choices contact_attribute_choices_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_attribute_choices
    ADD CONSTRAINT contact_attribute_choices_pkey PRIMARY KEY (organization_id, attribute_id, value);

--
-- Name: contact_attribute_values contact_attribute_values_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_attribute_values
    ADD CONSTRAINT contact_attribute_values_pkey PRIMARY KEY (organization_id, contact_id, attribute_id);

--
-- Name: contact_attributes contact_attributes_kind_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_attributes
    ADD CONSTRAINT contact_attributes_kind_key UNIQUE (organization_id, id, kind);

--
-- Name: contact_attributes contact_attributes_length_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_attributes
    ADD CONSTRAINT contact_attributes_length_key UNIQUE (organization_id, id, max_length);

--
-- Name: contact_attributes contact_attributes_name_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_attributes
    ADD CONSTRAINT contact_attributes_name_key UNIQUE (organization_id, name);

--
-- Name: contact_attributes contact_attributes_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_attributes
    ADD CONSTRAINT contact_attributes_pkey PRIMARY KEY (organization_id, id);

--
-- Name: contact_import_chunks contact_import_chunks_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_import_chunks
    ADD CONSTRAINT contact_import_chunks_pkey PRIMARY KEY (organization_id, import_id, seq);

--
-- Name: contact_import_problems contact_import_problems_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_import_problems
    ADD CONSTRAINT contact_import_problems_pkey PRIMARY KEY (organization_id, import_id, row_number, column_name);

--
-- Name: contact_imports contact_imports_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_imports
    ADD CONSTRAINT contact_imports_pkey PRIMARY KEY (organization_id, id);

--
-- Name: contacts contacts_address_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contacts
    ADD CONSTRAINT contacts_address_key UNIQUE (organization_id, address);

--
-- Name: contacts contacts_address_key_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contacts
    ADD CONSTRAINT contacts_address_key_key UNIQUE (organization_id, address_key);

--
-- Name: contacts contacts_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contacts
    ADD CONSTRAINT contacts_pkey PRIMARY KEY (organization_id, id);

--
-- Name: content_events content_events_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.content_events
    ADD CONSTRAINT content_events_pkey PRIMARY KEY (organization_id, item_id, id);

--
-- Name: content_items content_items_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.content_items
    ADD CONSTRAINT content_items_pkey PRIMARY KEY (organization_id, id);

--
-- Name: content_versions content_versions_author_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.content_versions
    ADD CONSTRAINT content_versions_author_key UNIQUE (organization_id, item_id, number, author_id);

--
-- Name: content_versions content_versions_hash_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.content_versions
    ADD CONSTRAINT content_versions_hash_key UNIQUE (organization_id, item_id, number, sha256);

--
-- Name: content_versions content_versions_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.content_versions
    ADD CONSTRAINT content_versions_pkey PRIMARY KEY (organization_id, item_id, number);

--
-- Name: delivery_feedback delivery_feedback_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.delivery_feedback
    ADD CONSTRAINT delivery_feedback_pkey PRIMARY KEY (organization_id, campaign_id, contact_id, kind);

--
-- Name: dkim_keys dkim_keys_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.dkim_keys
    ADD CONSTRAINT dkim_keys_pkey PRIMARY KEY (organization_id, id);

--
-- Name: dkim_keys dkim_keys_selector_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.dkim_keys
    ADD CONSTRAINT dkim_keys_selector_key UNIQUE (organization_id, sender_id, selector);

--
-- Name: email_verification_tokens email_verification_tokens_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.email_verification_tokens
    ADD CONSTRAINT email_verification_tokens_pkey PRIMARY KEY (id);

--
-- Name: email_verification_tokens email_verification_tokens_token_hash_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.email_verification_tokens
    ADD CONSTRAINT email_verification_tokens_token_hash_key UNIQUE (token_hash);

--
-- Name: feedback_credentials feedback_credentials_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.feedback_credentials
    ADD CONSTRAINT feedback_credentials_pkey PRIMARY KEY (id);

--
-- Name: feedback_credentials feedback_credentials_token_hash_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.feedback_credentials
    ADD CONSTRAINT feedback_credentials_token_hash_key UNIQUE (token_hash);

--
-- Name: invitations invitations_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.invitations
    ADD CONSTRAINT invitations_pkey PRIMARY KEY (organization_id, id);

--
-- Name: invitations invitations_token_hash_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.invitations
    ADD CONSTRAINT invitations_token_hash_key UNIQUE (organization_id, token_hash);

--
-- Name: jobs jobs_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (organization_id, id);

--
-- Name: login_challenges login_challenges_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.login_challenges
    ADD CONSTRAINT login_challenges_pkey PRIMARY KEY (id);

--
-- Name: login_challenges login_challenges_token_hash_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.login_challenges
    ADD CONSTRAINT login_challenges_token_hash_key UNIQUE (token_hash);

--
-- Name: notices notices_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.notices
    ADD CONSTRAINT notices_pkey PRIMARY KEY (organization_id, purpose_id, sha256);

--
-- Name: organizations organizations_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.organizations
    ADD CONSTRAINT organizations_pkey PRIMARY KEY (id);

--
-- Name: organizations organizations_slug_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.organizations
    ADD CONSTRAINT organizations_slug_key UNIQUE (slug);

--
-- Name: passkey_enrollments passkey_enrollments_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.passkey_enrollments
    ADD CONSTRAINT passkey_enrollments_pkey PRIMARY KEY (id);

--
-- Name: passkey_enrollments passkey_enrollments_token_hash_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.passkey_enrollments
    ADD CONSTRAINT passkey_enrollments_token_hash_key UNIQUE (token_hash);

--
-- Name: passkeys passkeys_credential_id_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.passkeys
    ADD CONSTRAINT passkeys_credential_id_key UNIQUE (credential_id);

--
-- Name: passkeys passkeys_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.passkeys
    ADD CONSTRAINT passkeys_pkey PRIMARY KEY (id);

--
-- Name: password_reset_tokens password_reset_tokens_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.password_reset_tokens
    ADD CONSTRAINT password_reset_tokens_pkey PRIMARY KEY (id);

--
-- Name: password_reset_tokens password_reset_tokens_token_hash_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.password_reset_tokens
    ADD CONSTRAINT password_reset_tokens_token_hash_key UNIQUE (token_hash);

--
-- Name: platform_audit_logs platform_audit_logs_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.platform_audit_logs
    ADD CONSTRAINT platform_audit_logs_pkey PRIMARY KEY (id);

--
-- Name: purposes purposes_name_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.purposes
    ADD CONSTRAINT purposes_name_key UNIQUE (organization_id, name);

--
-- Name: purposes purposes_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.purposes
    ADD CONSTRAINT purposes_pkey PRIMARY KEY (organization_id, id);

--
-- Name: recovery_codes recovery_codes_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.recovery_codes
    ADD CONSTRAINT recovery_codes_pkey PRIMARY KEY (user_id, code_hash);

--
-- Name: segment_versions segment_versions_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.segment_versions
    ADD CONSTRAINT segment_versions_pkey PRIMARY KEY (organization_id, segment_id, version);

--
-- Name: segments segments_name_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.segments
    ADD CONSTRAINT segments_name_key UNIQUE (organization_id, name);

--
-- Name: segments segments_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.segments
    ADD CONSTRAINT segments_pkey PRIMARY KEY (organization_id, id);

--
-- Name: senders senders_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.senders
    ADD CONSTRAINT senders_pkey PRIMARY KEY (organization_id, id);

--
-- Name: sending_breakers sending_breakers_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.sending_breakers
    ADD CONSTRAINT sending_breakers_pkey PRIMARY KEY (organization_id);

--
-- Name: sending_counts sending_counts_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.sending_counts
    ADD CONSTRAINT sending_counts_pkey PRIMARY KEY (organization_id, span, starts);

--
-- Name: sessions sessions_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (id);

--
-- Name: sessions sessions_token_hash_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.sessions
    ADD CONSTRAINT sessions_token_hash_key UNIQUE (token_hash);

--
-- Name: signup_confirmations signup_confirmations_grant_key; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.signup_confirmations
    ADD CONSTRAINT signup_confirmations_grant_key UNIQUE (organization_id, grant_event_id);

--
-- Name: signup_confirmations signup_confirmations_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.signup_confirmations
    ADD CONSTRAINT signup_confirmations_pkey PRIMARY KEY (organization_id, token_hash);

--
-- Name: suppressions suppressions_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.suppressions
    ADD CONSTRAINT suppressions_pkey PRIMARY KEY (organization_id, address_key, reason, created_at);

--
-- Name: totp_setups totp_setups_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.totp_setups
    ADD CONSTRAINT totp_setups_pkey PRIMARY KEY (user_id);

--
-- Name: user_organizations user_organizations_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.user_organizations
    ADD CONSTRAINT user_organizations_pkey PRIMARY KEY (organization_id, user_id);

--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);

--
-- Name: webauthn_ceremonies webauthn_ceremonies_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.webauthn_ceremonies
    ADD CONSTRAINT webauthn_ceremonies_pkey PRIMARY KEY (handle_hash);

--
-- Name: webhook_outbox webhook_outbox_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.webhook_outbox
    ADD CONSTRAINT webhook_outbox_pkey PRIMARY KEY (organization_id, subscription_id, event_id);

--
-- Name: webhook_subscriptions webhook_subscriptions_pkey; Type: CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.webhook_subscriptions
    ADD CONSTRAINT webhook_subscriptions_pkey PRIMARY KEY (organization_id, id);

--
-- Name: applied applied_pkey; Type: CONSTRAINT; Schema: mos_migrations; Owner: mos_owner
--

ALTER TABLE ONLY mos_migrations.applied
    ADD CONSTRAINT applied_pkey PRIMARY KEY (version);

--
-- Name: audit_blocks_recent_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX audit_blocks_recent_idx ON app.audit_blocks USING btree (organization_id, last_created_at);

--
-- Name: audit_logs_created_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX audit_logs_created_idx ON app.audit_logs USING btree (created_at);

--
-- Name: audit_logs_org_created_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX audit_logs_org_created_idx ON app.audit_logs USING btree (organization_id, created_at DESC, id DESC);

--
-- Name: audit_logs_resource_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX audit_logs_resource_idx ON app.audit_logs USING btree (organization_id, resource_type, resource_id);

--
-- Name: campaign_messages_batch_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX campaign_messages_batch_idx ON app.campaign_messages USING btree (organization_id, campaign_id, batch, contact_id) WHERE (batch IS NOT NULL);

--
-- Name: campaign_messages_contact_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX campaign_messages_contact_idx ON app.campaign_messages USING btree (organization_id, contact_id);

--
-- Name: campaign_messages_due_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX campaign_messages_due_idx ON app.campaign_messages USING btree (organization_id, campaign_id, not_before, contact_id) WHERE (state = 'queued'::app.campaign_message_state);

--
-- Name: campaign_messages_leased_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX campaign_messages_leased_idx ON app.campaign_messages USING btree (organization_id, campaign_id, lease_until) WHERE (state = 'sending'::app.campaign_message_state);

--
-- Name: campaign_messages_sent_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX campaign_messages_sent_idx ON app.campaign_messages USING btree (organization_id, campaign_id, version, sent_at) WHERE (state = 'sent'::app.campaign_message_state);

--
-- Name: campaign_messages_state_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX campaign_messages_state_idx ON app.campaign_messages USING btree (organization_id, campaign_id, state, contact_id);

--
-- Name: campaign_runs_sending_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX campaign_runs_sending_idx ON app.campaign_runs USING btree (organization_id, launched_at) WHERE (state = 'sending'::app.campaign_run_state);

--
-- Name: consent_events_current_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX consent_events_current_idx ON app.consent_events USING btree (organization_id, purpose_id, contact_id, seq DESC) INCLUDE (kind, source, expires_at);

--
-- Name: consent_events_import_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX consent_events_import_idx ON app.consent_events USING btree (organization_id, import_job, import_row) WHERE (import_job IS NOT NULL);

--
-- Name: consent_evidence_contact_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX consent_evidence_contact_idx ON app.consent_evidence USING btree (organization_id, contact_id);

--
-- Name: contact_attribute_values_boolean_cover_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX contact_attribute_values_boolean_cover_idx ON app.contact_attribute_values USING btree (organization_id, attribute_id, boolean_value) INCLUDE (contact_id) WHERE (boolean_value IS NOT NULL);

--
-- Name: contact_attribute_values_choice_cover_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX contact_attribute_values_choice_cover_idx ON app.contact_attribute_values USING btree (organization_id, attribute_id, choice_value) INCLUDE (contact_id) WHERE (choice_value IS NOT NULL);

--
-- Name: contact_attribute_values_date_cover_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX contact_attribute_values_date_cover_idx ON app.contact_attribute_values USING btree (organization_id, attribute_id, date_value) INCLUDE (contact_id) WHERE (date_value IS NOT NULL);

--
-- Name: contact_attribute_values_number_cover_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX contact_attribute_values_number_cover_idx ON app.contact_attribute_values USING btree (organization_id, attribute_id, number_value) INCLUDE (contact_id) WHERE (number_value IS NOT NULL);

--
-- Name: contact_attribute_values_text_cover_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX contact_attribute_values_text_cover_idx ON app.contact_attribute_values USING btree (organization_id, attribute_id, text_value) INCLUDE (contact_id) WHERE (text_value IS NOT NULL);

--
-- Name: contacts_created_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX contacts_created_idx ON app.contacts USING btree (organization_id, created_at, id);

--
-- Name: contacts_tags_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX contacts_tags_idx ON app.contacts USING gin (tags);

--
-- Name: content_events_one_approval; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE UNIQUE INDEX content_events_one_approval ON app.content_events USING btree (organization_id, item_id, version, actor_id) WHERE (kind = 'approved'::app.content_event_kind);

--
-- Name: content_items_creator_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX content_items_creator_idx ON app.content_items USING btree (organization_id, created_by, id DESC);

--
-- Name: content_items_state_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX content_items_state_idx ON app.content_items USING btree (organization_id, state, id DESC);

--
-- Name: content_versions_tags_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX content_versions_tags_idx ON app.content_versions USING gin (tags);

--
-- Name: content_versions_words_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX content_versions_words_idx ON app.content_versions USING gin (to_tsvector('simple'::regconfig, ((title || ' '::text) || body)));

--
-- Name: dkim_keys_one_active; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE UNIQUE INDEX dkim_keys_one_active ON app.dkim_keys USING btree (organization_id, sender_id) WHERE (state = 'active'::app.dkim_key_state);

--
-- Name: email_verification_tokens_user_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX email_verification_tokens_user_idx ON app.email_verification_tokens USING btree (user_id);

--
-- Name: feedback_credentials_live_name; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE UNIQUE INDEX feedback_credentials_live_name ON app.feedback_credentials USING btree (name) WHERE (revoked_at IS NULL);

--
-- Name: invitations_token_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX invitations_token_idx ON app.invitations USING btree (token_hash);

--
-- Name: jobs_claimable_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX jobs_claimable_idx ON app.jobs USING btree (run_after, organization_id) WHERE (state = ANY (ARRAY['queued'::app.job_state, 'running'::app.job_state]));

--
-- Name: jobs_tenant_recent_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX jobs_tenant_recent_idx ON app.jobs USING btree (organization_id, created_at DESC);

--
-- Name: jobs_tenant_served_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX jobs_tenant_served_idx ON app.jobs USING btree (organization_id, last_claimed_at DESC) WHERE (last_claimed_at IS NOT NULL);

--
-- Name: login_challenges_user_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX login_challenges_user_idx ON app.login_challenges USING btree (user_id);

--
-- Name: passkey_enrollments_user_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX passkey_enrollments_user_idx ON app.passkey_enrollments USING btree (user_id);

--
-- Name: passkeys_user_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX passkeys_user_idx ON app.passkeys USING btree (user_id);

--
-- Name: password_reset_tokens_user_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX password_reset_tokens_user_idx ON app.password_reset_tokens USING btree (user_id);

--
-- Name: platform_audit_logs_subject_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX platform_audit_logs_subject_idx ON app.platform_audit_logs USING btree (subject_user_id, created_at DESC, id DESC);

--
-- Name: sessions_user_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX sessions_user_idx ON app.sessions USING btree (user_id) WHERE (revoked_at IS NULL);

--
-- Name: user_organizations_directory_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX user_organizations_directory_idx ON app.user_organizations USING btree (organization_id, created_at, user_id);

--
-- Name: user_organizations_user_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX user_organizations_user_idx ON app.user_organizations USING btree (user_id);

--
-- Name: users_email_key; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE UNIQUE INDEX users_email_key ON app.users USING btree (lower(email));

--
-- Name: webauthn_ceremonies_expires_idx; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX webauthn_ceremonies_expires_idx ON app.webauthn_ceremonies USING btree (expires_at);

--
-- Name: webhook_outbox_due; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX webhook_outbox_due ON app.webhook_outbox USING btree (organization_id, next_attempt_at) WHERE (state = 'pending'::text);

--
-- Name: webhook_outbox_finished; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX webhook_outbox_finished ON app.webhook_outbox USING btree (organization_id, finished_at) WHERE (state <> 'pending'::text);

--
-- Name: webhook_outbox_log; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX webhook_outbox_log ON app.webhook_outbox USING btree (organization_id, subscription_id, enqueued_at DESC, ord DESC);

--
-- Name: webhook_outbox_order; Type: INDEX; Schema: app; Owner: mos_owner
--

CREATE INDEX webhook_outbox_order ON app.webhook_outbox USING btree (organization_id, subscription_id, contact_id, enqueued_at, ord) WHERE (state = 'pending'::text);

--
-- Name: audit_blocks audit_blocks_append_only_rows; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER audit_blocks_append_only_rows BEFORE DELETE OR UPDATE ON app.audit_blocks FOR EACH STATEMENT EXECUTE FUNCTION app.audit_logs_append_only();

ALTER TABLE app.audit_blocks ENABLE ALWAYS TRIGGER audit_blocks_append_only_rows;

--
-- Name: audit_blocks audit_blocks_append_only_truncate; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER audit_blocks_append_only_truncate BEFORE TRUNCATE ON app.audit_blocks FOR EACH STATEMENT EXECUTE FUNCTION app.audit_logs_append_only();

ALTER TABLE app.audit_blocks ENABLE ALWAYS TRIGGER audit_blocks_append_only_truncate;

--
-- Name: audit_logs audit_logs_append_only_rows; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER audit_logs_append_only_rows BEFORE DELETE OR UPDATE ON app.audit_logs FOR EACH STATEMENT EXECUTE FUNCTION app.audit_logs_append_only();

ALTER TABLE app.audit_logs ENABLE ALWAYS TRIGGER audit_logs_append_only_rows;

--
-- Name: audit_logs audit_logs_append_only_truncate; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER audit_logs_append_only_truncate BEFORE TRUNCATE ON app.audit_logs FOR EACH STATEMENT EXECUTE FUNCTION app.audit_logs_append_only();

ALTER TABLE app.audit_logs ENABLE ALWAYS TRIGGER audit_logs_append_only_truncate;

--
-- Name: campaign_activity campaign_activity_derived; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_activity_derived BEFORE INSERT OR DELETE OR UPDATE ON app.campaign_activity FOR EACH STATEMENT EXECUTE FUNCTION app.campaign_activity_guard();

ALTER TABLE app.campaign_activity ENABLE ALWAYS TRIGGER campaign_activity_derived;

--
-- Name: campaign_activity campaign_activity_derived_truncate; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_activity_derived_truncate BEFORE TRUNCATE ON app.campaign_activity FOR EACH STATEMENT EXECUTE FUNCTION app.campaign_activity_guard();

ALTER TABLE app.campaign_activity ENABLE ALWAYS TRIGGER campaign_activity_derived_truncate;

--
-- Name: campaign_clicks campaign_clicks_counted; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_clicks_counted AFTER INSERT ON app.campaign_clicks REFERENCING NEW TABLE AS after_rows FOR EACH STATEMENT EXECUTE FUNCTION app.campaign_clicks_follow();

ALTER TABLE app.campaign_clicks ENABLE ALWAYS TRIGGER campaign_clicks_counted;

--
-- Name: campaign_clicks campaign_clicks_recounted; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_clicks_recounted AFTER UPDATE ON app.campaign_clicks REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows FOR EACH STATEMENT EXECUTE FUNCTION app.campaign_clicks_follow();

ALTER TABLE app.campaign_clicks ENABLE ALWAYS TRIGGER campaign_clicks_recounted;

--
-- Name: campaign_link_tallies campaign_link_tallies_derived; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_link_tallies_derived BEFORE INSERT OR DELETE OR UPDATE ON app.campaign_link_tallies FOR EACH STATEMENT EXECUTE FUNCTION app.campaign_link_tallies_guard();

ALTER TABLE app.campaign_link_tallies ENABLE ALWAYS TRIGGER campaign_link_tallies_derived;

--
-- Name: campaign_link_tallies campaign_link_tallies_derived_truncate; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_link_tallies_derived_truncate BEFORE TRUNCATE ON app.campaign_link_tallies FOR EACH STATEMENT EXECUTE FUNCTION app.campaign_link_tallies_guard();

ALTER TABLE app.campaign_link_tallies ENABLE ALWAYS TRIGGER campaign_link_tallies_derived_truncate;

--
-- Name: campaign_messages campaign_messages_activity; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_messages_activity AFTER UPDATE ON app.campaign_messages REFERENCING OLD TABLE AS changed_from NEW TABLE AS changed_to FOR EACH STATEMENT EXECUTE FUNCTION app.campaign_activity_follow_ledger();

ALTER TABLE app.campaign_messages ENABLE ALWAYS TRIGGER campaign_messages_activity;

--
-- Name: campaign_messages campaign_messages_added; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_messages_added AFTER INSERT ON app.campaign_messages REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION app.campaign_messages_check();

ALTER TABLE app.campaign_messages ENABLE ALWAYS TRIGGER campaign_messages_added;

--
-- Name: campaign_messages campaign_messages_changed; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_messages_changed AFTER UPDATE ON app.campaign_messages REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION app.campaign_messages_check();

ALTER TABLE app.campaign_messages ENABLE ALWAYS TRIGGER campaign_messages_changed;

--
-- Name: campaign_messages campaign_messages_counted; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_messages_counted AFTER UPDATE ON app.campaign_messages REFERENCING OLD TABLE AS uncounted NEW TABLE AS counted FOR EACH STATEMENT EXECUTE FUNCTION app.sending_counts_follow_ledger();

ALTER TABLE app.campaign_messages ENABLE ALWAYS TRIGGER campaign_messages_counted;

--
-- Name: campaign_messages campaign_messages_forward; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_messages_forward BEFORE UPDATE ON app.campaign_messages FOR EACH ROW EXECUTE FUNCTION app.campaign_messages_forward();

ALTER TABLE app.campaign_messages ENABLE ALWAYS TRIGGER campaign_messages_forward;

--
-- Name: campaign_messages campaign_messages_retallied; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_messages_retallied AFTER UPDATE ON app.campaign_messages REFERENCING OLD TABLE AS uncounted NEW TABLE AS counted FOR EACH STATEMENT EXECUTE FUNCTION app.campaign_tallies_follow();

ALTER TABLE app.campaign_messages ENABLE ALWAYS TRIGGER campaign_messages_retallied;

--
-- Name: campaign_messages campaign_messages_tallied; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_messages_tallied AFTER INSERT ON app.campaign_messages REFERENCING NEW TABLE AS counted FOR EACH STATEMENT EXECUTE FUNCTION app.campaign_tallies_follow();

ALTER TABLE app.campaign_messages ENABLE ALWAYS TRIGGER campaign_messages_tallied;

--
-- Name: campaign_messages campaign_messages_webhooks; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_messages_webhooks AFTER UPDATE ON app.campaign_messages REFERENCING OLD TABLE AS changed_from NEW TABLE AS changed_to FOR EACH STATEMENT EXECUTE FUNCTION app.webhook_follow_ledger();

ALTER TABLE app.campaign_messages ENABLE ALWAYS TRIGGER campaign_messages_webhooks;

--
-- Name: campaign_runs campaign_runs_forward; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_runs_forward BEFORE UPDATE ON app.campaign_runs FOR EACH ROW EXECUTE FUNCTION app.campaign_runs_forward();

ALTER TABLE app.campaign_runs ENABLE ALWAYS TRIGGER campaign_runs_forward;

--
-- Name: campaign_runs campaign_runs_halted; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_runs_halted BEFORE INSERT OR UPDATE ON app.campaign_runs FOR EACH ROW EXECUTE FUNCTION app.campaign_runs_halted();

ALTER TABLE app.campaign_runs ENABLE ALWAYS TRIGGER campaign_runs_halted;

--
-- Name: campaign_tallies campaign_tallies_derived; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_tallies_derived BEFORE INSERT OR DELETE OR UPDATE ON app.campaign_tallies FOR EACH STATEMENT EXECUTE FUNCTION app.campaign_tallies_guard();

ALTER TABLE app.campaign_tallies ENABLE ALWAYS TRIGGER campaign_tallies_derived;

--
-- Name: campaign_tallies campaign_tallies_derived_truncate; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_tallies_derived_truncate BEFORE TRUNCATE ON app.campaign_tallies FOR EACH STATEMENT EXECUTE FUNCTION app.campaign_tallies_guard();

ALTER TABLE app.campaign_tallies ENABLE ALWAYS TRIGGER campaign_tallies_derived_truncate;

--
-- Name: campaign_versions campaign_versions_append_only_rows; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_versions_append_only_rows BEFORE DELETE OR UPDATE ON app.campaign_versions FOR EACH STATEMENT EXECUTE FUNCTION app.append_only();

ALTER TABLE app.campaign_versions ENABLE ALWAYS TRIGGER campaign_versions_append_only_rows;

--
-- Name: campaign_versions campaign_versions_append_only_truncate; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_versions_append_only_truncate BEFORE TRUNCATE ON app.campaign_versions FOR EACH STATEMENT EXECUTE FUNCTION app.append_only();

ALTER TABLE app.campaign_versions ENABLE ALWAYS TRIGGER campaign_versions_append_only_truncate;

--
-- Name: campaign_versions campaign_versions_check; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER campaign_versions_check BEFORE INSERT ON app.campaign_versions FOR EACH ROW EXECUTE FUNCTION app.campaign_versions_check();

ALTER TABLE app.campaign_versions ENABLE ALWAYS TRIGGER campaign_versions_check;

--
-- Name: consent_events consent_events_activity; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER consent_events_activity AFTER INSERT ON app.consent_events REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION app.campaign_activity_follow_consent();

ALTER TABLE app.consent_events ENABLE ALWAYS TRIGGER consent_events_activity;

--
-- Name: consent_events consent_events_append_only_rows; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER consent_events_append_only_rows BEFORE DELETE OR UPDATE ON app.consent_events FOR EACH STATEMENT EXECUTE FUNCTION app.append_only();

ALTER TABLE app.consent_events ENABLE ALWAYS TRIGGER consent_events_append_only_rows;

--
-- Name: consent_events consent_events_append_only_truncate; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER consent_events_append_only_truncate BEFORE TRUNCATE ON app.consent_events FOR EACH STATEMENT EXECUTE FUNCTION app.append_only();

ALTER TABLE app.consent_events ENABLE ALWAYS TRIGGER consent_events_append_only_truncate;

--
-- Name: consent_events consent_events_rules; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER consent_events_rules AFTER INSERT ON app.consent_events REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION app.consent_events_check();

ALTER TABLE app.consent_events ENABLE ALWAYS TRIGGER consent_events_rules;

--
-- Name: consent_events consent_events_state; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER consent_events_state AFTER INSERT ON app.consent_events REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION app.consent_state_follow();

ALTER TABLE app.consent_events ENABLE ALWAYS TRIGGER consent_events_state;

--
-- Name: consent_events consent_events_webhooks; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER consent_events_webhooks AFTER INSERT ON app.consent_events REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION app.webhook_follow_consent();

ALTER TABLE app.consent_events ENABLE ALWAYS TRIGGER consent_events_webhooks;

--
-- Name: consent_evidence consent_evidence_committed; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER consent_evidence_committed AFTER INSERT ON app.consent_evidence REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION app.consent_evidence_check();

ALTER TABLE app.consent_evidence ENABLE ALWAYS TRIGGER consent_evidence_committed;

--
-- Name: consent_evidence consent_evidence_erased_only; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER consent_evidence_erased_only AFTER DELETE ON app.consent_evidence REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION app.consent_evidence_erasable();

ALTER TABLE app.consent_evidence ENABLE ALWAYS TRIGGER consent_evidence_erased_only;

--
-- Name: consent_state consent_state_derived; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER consent_state_derived BEFORE INSERT OR DELETE OR UPDATE ON app.consent_state FOR EACH STATEMENT EXECUTE FUNCTION app.consent_state_guard();

ALTER TABLE app.consent_state ENABLE ALWAYS TRIGGER consent_state_derived;

--
-- Name: consent_state consent_state_derived_truncate; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER consent_state_derived_truncate BEFORE TRUNCATE ON app.consent_state FOR EACH STATEMENT EXECUTE FUNCTION app.consent_state_guard();

ALTER TABLE app.consent_state ENABLE ALWAYS TRIGGER consent_state_derived_truncate;

--
-- Name: contact_attribute_values contact_attribute_values_erased_added; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER contact_attribute_values_erased_added AFTER INSERT ON app.contact_attribute_values REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION app.contact_attribute_values_check();

ALTER TABLE app.contact_attribute_values ENABLE ALWAYS TRIGGER contact_attribute_values_erased_added;

--
-- Name: contact_attribute_values contact_attribute_values_erased_changed; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER contact_attribute_values_erased_changed AFTER UPDATE ON app.contact_attribute_values REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION app.contact_attribute_values_check();

ALTER TABLE app.contact_attribute_values ENABLE ALWAYS TRIGGER contact_attribute_values_erased_changed;

--
-- Name: contacts contacts_guard; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER contacts_guard BEFORE UPDATE ON app.contacts FOR EACH ROW EXECUTE FUNCTION app.contacts_guard();

--
-- Name: content_items content_items_guard; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER content_items_guard BEFORE INSERT OR UPDATE ON app.content_items FOR EACH ROW EXECUTE FUNCTION app.content_items_guard();

--
-- Name: delivery_feedback delivery_feedback_activity; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER delivery_feedback_activity AFTER INSERT ON app.delivery_feedback REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION app.campaign_activity_follow_feedback();

ALTER TABLE app.delivery_feedback ENABLE ALWAYS TRIGGER delivery_feedback_activity;

--
-- Name: delivery_feedback delivery_feedback_append_only_rows; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER delivery_feedback_append_only_rows BEFORE DELETE OR UPDATE ON app.delivery_feedback FOR EACH STATEMENT EXECUTE FUNCTION app.append_only();

ALTER TABLE app.delivery_feedback ENABLE ALWAYS TRIGGER delivery_feedback_append_only_rows;

--
-- Name: delivery_feedback delivery_feedback_append_only_truncate; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER delivery_feedback_append_only_truncate BEFORE TRUNCATE ON app.delivery_feedback FOR EACH STATEMENT EXECUTE FUNCTION app.append_only();

ALTER TABLE app.delivery_feedback ENABLE ALWAYS TRIGGER delivery_feedback_append_only_truncate;

--
-- Name: delivery_feedback delivery_feedback_counted; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER delivery_feedback_counted AFTER INSERT ON app.delivery_feedback REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION app.sending_counts_follow_feedback();

ALTER TABLE app.delivery_feedback ENABLE ALWAYS TRIGGER delivery_feedback_counted;

--
-- Name: delivery_feedback delivery_feedback_webhooks; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER delivery_feedback_webhooks AFTER INSERT ON app.delivery_feedback REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION app.webhook_follow_feedback();

ALTER TABLE app.delivery_feedback ENABLE ALWAYS TRIGGER delivery_feedback_webhooks;

--
-- Name: dkim_keys dkim_keys_forward; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER dkim_keys_forward BEFORE UPDATE ON app.dkim_keys FOR EACH ROW EXECUTE FUNCTION app.dkim_keys_forward();

ALTER TABLE app.dkim_keys ENABLE ALWAYS TRIGGER dkim_keys_forward;

--
-- Name: platform_audit_logs platform_audit_logs_append_only_rows; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER platform_audit_logs_append_only_rows BEFORE DELETE OR UPDATE ON app.platform_audit_logs FOR EACH STATEMENT EXECUTE FUNCTION app.audit_logs_append_only();

ALTER TABLE app.platform_audit_logs ENABLE ALWAYS TRIGGER platform_audit_logs_append_only_rows;

--
-- Name: platform_audit_logs platform_audit_logs_append_only_truncate; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER platform_audit_logs_append_only_truncate BEFORE TRUNCATE ON app.platform_audit_logs FOR EACH STATEMENT EXECUTE FUNCTION app.audit_logs_append_only();

ALTER TABLE app.platform_audit_logs ENABLE ALWAYS TRIGGER platform_audit_logs_append_only_truncate;

--
-- Name: segment_versions segment_versions_append_only_rows; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER segment_versions_append_only_rows BEFORE DELETE OR UPDATE ON app.segment_versions FOR EACH STATEMENT EXECUTE FUNCTION app.segment_versions_append_only();

ALTER TABLE app.segment_versions ENABLE ALWAYS TRIGGER segment_versions_append_only_rows;

--
-- Name: segment_versions segment_versions_append_only_truncate; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER segment_versions_append_only_truncate BEFORE TRUNCATE ON app.segment_versions FOR EACH STATEMENT EXECUTE FUNCTION app.segment_versions_append_only();

ALTER TABLE app.segment_versions ENABLE ALWAYS TRIGGER segment_versions_append_only_truncate;

--
-- Name: sending_counts sending_counts_derived; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER sending_counts_derived BEFORE INSERT OR DELETE OR UPDATE ON app.sending_counts FOR EACH STATEMENT EXECUTE FUNCTION app.sending_counts_guard();

ALTER TABLE app.sending_counts ENABLE ALWAYS TRIGGER sending_counts_derived;

--
-- Name: sending_counts sending_counts_derived_truncate; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER sending_counts_derived_truncate BEFORE TRUNCATE ON app.sending_counts FOR EACH STATEMENT EXECUTE FUNCTION app.sending_counts_guard();

ALTER TABLE app.sending_counts ENABLE ALWAYS TRIGGER sending_counts_derived_truncate;

--
-- Name: signup_confirmations signup_confirmations_guard; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER signup_confirmations_guard BEFORE UPDATE ON app.signup_confirmations FOR EACH ROW EXECUTE FUNCTION app.signup_confirmations_guard();

--
-- Name: suppressions suppressions_append_only_rows; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER suppressions_append_only_rows BEFORE DELETE OR UPDATE ON app.suppressions FOR EACH STATEMENT EXECUTE FUNCTION app.append_only();

ALTER TABLE app.suppressions ENABLE ALWAYS TRIGGER suppressions_append_only_rows;

--
-- Name: suppressions suppressions_append_only_truncate; Type: TRIGGER; Schema: app; Owner: mos_owner
--

CREATE TRIGGER suppressions_append_only_truncate BEFORE TRUNCATE ON app.suppressions FOR EACH STATEMENT EXECUTE FUNCTION app.append_only();

ALTER TABLE app.suppressions ENABLE ALWAYS TRIGGER suppressions_append_only_truncate;

--
-- Name: audit_chain_heads audit_chain_heads_organization_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.audit_chain_heads
    ADD CONSTRAINT audit_chain_heads_organization_fkey FOREIGN KEY (organization_id) REFERENCES app.organizations(id) ON DELETE RESTRICT;

--
-- Name: audit_logs audit_logs_organization_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.audit_logs
    ADD CONSTRAINT audit_logs_organization_fkey FOREIGN KEY (organization_id) REFERENCES app.organizations(id) ON DELETE RESTRICT;

--
-- Name: campaign_activity campaign_activity_run_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_activity
    ADD CONSTRAINT campaign_activity_run_fkey FOREIGN KEY (organization_id, campaign_id) REFERENCES app.campaign_runs(organization_id, campaign_id);

--
-- Name: campaign_clicks campaign_clicks_message_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_clicks
    ADD CONSTRAINT campaign_clicks_message_fkey FOREIGN KEY (organization_id, campaign_id, contact_id) REFERENCES app.campaign_messages(organization_id, campaign_id, contact_id);

--
-- Name: campaign_link_tallies campaign_link_tallies_run_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_link_tallies
    ADD CONSTRAINT campaign_link_tallies_run_fkey FOREIGN KEY (organization_id, campaign_id) REFERENCES app.campaign_runs(organization_id, campaign_id);

--
-- Name: campaign_messages campaign_messages_contact_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_messages
    ADD CONSTRAINT campaign_messages_contact_fkey FOREIGN KEY (organization_id, contact_id) REFERENCES app.contacts(organization_id, id);

--
-- Name: campaign_messages campaign_messages_run_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_messages
    ADD CONSTRAINT campaign_messages_run_fkey FOREIGN KEY (organization_id, campaign_id) REFERENCES app.campaign_runs(organization_id, campaign_id);

--
-- Name: campaign_runs campaign_runs_version_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_runs
    ADD CONSTRAINT campaign_runs_version_fkey FOREIGN KEY (organization_id, campaign_id, version) REFERENCES app.campaign_versions(organization_id, campaign_id, version);

--
-- Name: campaign_tallies campaign_tallies_run_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_tallies
    ADD CONSTRAINT campaign_tallies_run_fkey FOREIGN KEY (organization_id, campaign_id) REFERENCES app.campaign_runs(organization_id, campaign_id);

--
-- Name: campaign_versions campaign_versions_content_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_versions
    ADD CONSTRAINT campaign_versions_content_fkey FOREIGN KEY (organization_id, content_id, content_version, content_sha256) REFERENCES app.content_versions(organization_id, item_id, number, sha256);

--
-- Name: campaign_versions campaign_versions_purpose_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_versions
    ADD CONSTRAINT campaign_versions_purpose_fkey FOREIGN KEY (organization_id, purpose_id) REFERENCES app.purposes(organization_id, id);

--
-- Name: campaign_versions campaign_versions_sender_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_versions
    ADD CONSTRAINT campaign_versions_sender_fkey FOREIGN KEY (organization_id, sender_id) REFERENCES app.senders(organization_id, id);

--
-- Name: campaign_versions campaign_versions_template_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_versions
    ADD CONSTRAINT campaign_versions_template_fkey FOREIGN KEY (organization_id, template_id, template_version, template_sha256) REFERENCES app.content_versions(organization_id, item_id, number, sha256);

--
-- Name: campaign_versions campaign_versions_version_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.campaign_versions
    ADD CONSTRAINT campaign_versions_version_fkey FOREIGN KEY (organization_id, campaign_id, version, sha256) REFERENCES app.content_versions(organization_id, item_id, number, sha256);

--
-- Name: consent_events consent_events_contact_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.consent_events
    ADD CONSTRAINT consent_events_contact_fkey FOREIGN KEY (organization_id, contact_id) REFERENCES app.contacts(organization_id, id);

--
-- Name: consent_events consent_events_notice_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.consent_events
    ADD CONSTRAINT consent_events_notice_fkey FOREIGN KEY (organization_id, purpose_id, notice_sha256) REFERENCES app.notices(organization_id, purpose_id, sha256);

--
-- Name: consent_events consent_events_purpose_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.consent_events
    ADD CONSTRAINT consent_events_purpose_fkey FOREIGN KEY (organization_id, purpose_id) REFERENCES app.purposes(organization_id, id);

--
-- Name: consent_evidence consent_evidence_contact_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.consent_evidence
    ADD CONSTRAINT consent_evidence_contact_fkey FOREIGN KEY (organization_id, contact_id) REFERENCES app.contacts(organization_id, id);

--
-- Name: contact_attribute_choices contact_attribute_choices_attribute_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_attribute_choices
    ADD CONSTRAINT contact_attribute_choices_attribute_fkey FOREIGN KEY (organization_id, attribute_id) REFERENCES app.contact_attributes(organization_id, id) ON DELETE CASCADE;

--
-- Name: contact_attribute_values contact_attribute_values_choice_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_attribute_values
    ADD CONSTRAINT contact_attribute_values_choice_fkey FOREIGN KEY (organization_id, attribute_id, choice_value) REFERENCES app.contact_attribute_choices(organization_id, attribute_id, value) ON DELETE CASCADE;

--
-- Name: contact_attribute_values contact_attribute_values_contact_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_attribute_values
    ADD CONSTRAINT contact_attribute_values_contact_fkey FOREIGN KEY (organization_id, contact_id) REFERENCES app.contacts(organization_id, id) ON DELETE CASCADE;

--
-- Name: contact_attribute_values contact_attribute_values_kind_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_attribute_values
    ADD CONSTRAINT contact_attribute_values_kind_fkey FOREIGN KEY (organization_id, attribute_id, kind) REFERENCES app.contact_attributes(organization_id, id, kind) ON DELETE CASCADE;

--
-- Name: contact_attribute_values contact_attribute_values_length_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_attribute_values
    ADD CONSTRAINT contact_attribute_values_length_fkey FOREIGN KEY (organization_id, attribute_id, max_length) REFERENCES app.contact_attributes(organization_id, id, max_length) ON DELETE CASCADE;

--
-- Name: contact_attributes contact_attributes_organization_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_attributes
    ADD CONSTRAINT contact_attributes_organization_fkey FOREIGN KEY (organization_id) REFERENCES app.organizations(id) ON DELETE CASCADE;

--
-- Name: contact_import_chunks contact_import_chunks_import_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_import_chunks
    ADD CONSTRAINT contact_import_chunks_import_fkey FOREIGN KEY (organization_id, import_id) REFERENCES app.contact_imports(organization_id, id) ON DELETE CASCADE;

--
-- Name: contact_import_problems contact_import_problems_import_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_import_problems
    ADD CONSTRAINT contact_import_problems_import_fkey FOREIGN KEY (organization_id, import_id) REFERENCES app.contact_imports(organization_id, id) ON DELETE CASCADE;

--
-- Name: contact_imports contact_imports_organization_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contact_imports
    ADD CONSTRAINT contact_imports_organization_fkey FOREIGN KEY (organization_id) REFERENCES app.organizations(id) ON DELETE CASCADE;

--
-- Name: contacts contacts_organization_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.contacts
    ADD CONSTRAINT contacts_organization_fkey FOREIGN KEY (organization_id) REFERENCES app.organizations(id) ON DELETE CASCADE;

--
-- Name: content_events content_events_version_author_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.content_events
    ADD CONSTRAINT content_events_version_author_fkey FOREIGN KEY (organization_id, item_id, version, version_author) REFERENCES app.content_versions(organization_id, item_id, number, author_id) ON DELETE CASCADE;

--
-- Name: content_events content_events_version_hash_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.content_events
    ADD CONSTRAINT content_events_version_hash_fkey FOREIGN KEY (organization_id, item_id, version, sha256) REFERENCES app.content_versions(organization_id, item_id, number, sha256) ON DELETE CASCADE;

--
-- Name: content_items content_items_organization_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.content_items
    ADD CONSTRAINT content_items_organization_fkey FOREIGN KEY (organization_id) REFERENCES app.organizations(id) ON DELETE CASCADE;

--
-- Name: content_versions content_versions_item_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.content_versions
    ADD CONSTRAINT content_versions_item_fkey FOREIGN KEY (organization_id, item_id) REFERENCES app.content_items(organization_id, id) ON DELETE CASCADE;

--
-- Name: delivery_feedback delivery_feedback_message_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.delivery_feedback
    ADD CONSTRAINT delivery_feedback_message_fkey FOREIGN KEY (organization_id, campaign_id, contact_id) REFERENCES app.campaign_messages(organization_id, campaign_id, contact_id);

--
-- Name: dkim_keys dkim_keys_sender_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.dkim_keys
    ADD CONSTRAINT dkim_keys_sender_fkey FOREIGN KEY (organization_id, sender_id) REFERENCES app.senders(organization_id, id) ON DELETE CASCADE;

--
-- Name: email_verification_tokens email_verification_tokens_user_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.email_verification_tokens
    ADD CONSTRAINT email_verification_tokens_user_fkey FOREIGN KEY (user_id) REFERENCES app.users(id) ON DELETE CASCADE;

--
-- Name: invitations invitations_organization_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.invitations
    ADD CONSTRAINT invitations_organization_fkey FOREIGN KEY (organization_id) REFERENCES app.organizations(id) ON DELETE CASCADE;

--
-- Name: login_challenges login_challenges_user_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.login_challenges
    ADD CONSTRAINT login_challenges_user_fkey FOREIGN KEY (user_id) REFERENCES app.users(id) ON DELETE CASCADE;

--
-- Name: notices notices_purpose_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.notices
    ADD CONSTRAINT notices_purpose_fkey FOREIGN KEY (organization_id, purpose_id) REFERENCES app.purposes(organization_id, id) ON DELETE CASCADE;

--
-- Name: passkey_enrollments passkey_enrollments_user_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.passkey_enrollments
    ADD CONSTRAINT passkey_enrollments_user_fkey FOREIGN KEY (user_id) REFERENCES app.users(id) ON DELETE CASCADE;

--
-- Name: passkeys passkeys_user_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.passkeys
    ADD CONSTRAINT passkeys_user_fkey FOREIGN KEY (user_id) REFERENCES app.users(id) ON DELETE CASCADE;

--
-- Name: password_reset_tokens password_reset_tokens_user_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.password_reset_tokens
    ADD CONSTRAINT password_reset_tokens_user_fkey FOREIGN KEY (user_id) REFERENCES app.users(id) ON DELETE CASCADE;

--
-- Name: purposes purposes_organization_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.purposes
    ADD CONSTRAINT purposes_organization_fkey FOREIGN KEY (organization_id) REFERENCES app.organizations(id) ON DELETE CASCADE;

--
-- Name: recovery_codes recovery_codes_user_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.recovery_codes
    ADD CONSTRAINT recovery_codes_user_fkey FOREIGN KEY (user_id) REFERENCES app.users(id) ON DELETE CASCADE;

--
-- Name: segment_versions segment_versions_segment_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.segment_versions
    ADD CONSTRAINT segment_versions_segment_fkey FOREIGN KEY (organization_id, segment_id) REFERENCES app.segments(organization_id, id);

--
-- Name: segments segments_organization_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.segments
    ADD CONSTRAINT segments_organization_fkey FOREIGN KEY (organization_id) REFERENCES app.organizations(id) ON DELETE RESTRICT;

--
-- Name: senders senders_organization_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.senders
    ADD CONSTRAINT senders_organization_fkey FOREIGN KEY (organization_id) REFERENCES app.organizations(id) ON DELETE CASCADE;

--
-- Name: sending_breakers sending_breakers_org_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.sending_breakers
    ADD CONSTRAINT sending_breakers_org_fkey FOREIGN KEY (organization_id) REFERENCES app.organizations(id);

--
-- Name: sending_counts sending_counts_breaker_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.sending_counts
    ADD CONSTRAINT sending_counts_breaker_fkey FOREIGN KEY (organization_id) REFERENCES app.sending_breakers(organization_id);

--
-- Name: sessions sessions_user_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.sessions
    ADD CONSTRAINT sessions_user_fkey FOREIGN KEY (user_id) REFERENCES app.users(id) ON DELETE CASCADE;

--
-- Name: signup_confirmations signup_confirmations_organization_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.signup_confirmations
    ADD CONSTRAINT signup_confirmations_organization_fkey FOREIGN KEY (organization_id) REFERENCES app.organizations(id) ON DELETE CASCADE;

--
-- Name: suppressions suppressions_organization_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.suppressions
    ADD CONSTRAINT suppressions_organization_fkey FOREIGN KEY (organization_id) REFERENCES app.organizations(id) ON DELETE CASCADE;

--
-- Name: totp_setups totp_setups_user_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.totp_setups
    ADD CONSTRAINT totp_setups_user_fkey FOREIGN KEY (user_id) REFERENCES app.users(id) ON DELETE CASCADE;

--
-- Name: user_organizations user_organizations_organization_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.user_organizations
    ADD CONSTRAINT user_organizations_organization_fkey FOREIGN KEY (organization_id) REFERENCES app.organizations(id) ON DELETE CASCADE;

--
-- Name: user_organizations user_organizations_user_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.user_organizations
    ADD CONSTRAINT user_organizations_user_fkey FOREIGN KEY (user_id) REFERENCES app.users(id) ON DELETE CASCADE;

--
-- Name: webhook_outbox webhook_outbox_subscription_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.webhook_outbox
    ADD CONSTRAINT webhook_outbox_subscription_fkey FOREIGN KEY (organization_id, subscription_id) REFERENCES app.webhook_subscriptions(organization_id, id);

--
-- Name: webhook_subscriptions webhook_subscriptions_org_fkey; Type: FK CONSTRAINT; Schema: app; Owner: mos_owner
--

ALTER TABLE ONLY app.webhook_subscriptions
    ADD CONSTRAINT webhook_subscriptions_org_fkey FOREIGN KEY (organization_id) REFERENCES app.organizations(id);

--
-- Name: audit_blocks; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.audit_blocks ENABLE ROW LEVEL SECURITY;

--
-- Name: audit_chain_heads; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.audit_chain_heads ENABLE ROW LEVEL SECURITY;

--
-- Name: audit_logs; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.audit_logs ENABLE ROW LEVEL SECURITY;

--
-- Name: auth_throttles; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.auth_throttles ENABLE ROW LEVEL SECURITY;

--
-- Name: campaign_activity; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.campaign_activity ENABLE ROW LEVEL SECURITY;

--
-- Name: campaign_clicks; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.campaign_clicks ENABLE ROW LEVEL SECURITY;

--
-- Name: campaign_link_tallies; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.campaign_link_tallies ENABLE ROW LEVEL SECURITY;

--
-- Name: campaign_messages; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.campaign_messages ENABLE ROW LEVEL SECURITY;

--
-- Name: campaign_runs; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.campaign_runs ENABLE ROW LEVEL SECURITY;

--
-- Name: campaign_tallies; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.campaign_tallies ENABLE ROW LEVEL SECURITY;

--
-- Name: campaign_versions; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.campaign_versions ENABLE ROW LEVEL SECURITY;

--
-- Name: consent_events; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.consent_events ENABLE ROW LEVEL SECURITY;

--
-- Name: consent_evidence; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.consent_evidence ENABLE ROW LEVEL SECURITY;

--
-- Name: consent_state; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.consent_state ENABLE ROW LEVEL SECURITY;

--
-- Name: contact_attribute_choices; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.contact_attribute_choices ENABLE ROW LEVEL SECURITY;

--
-- Name: contact_attribute_values; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.contact_attribute_values ENABLE ROW LEVEL SECURITY;

--
-- Name: contact_attributes; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.contact_attributes ENABLE ROW LEVEL SECURITY;

--
-- Name: contact_import_chunks; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.contact_import_chunks ENABLE ROW LEVEL SECURITY;

--
-- Name: contact_import_problems; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.contact_import_problems ENABLE ROW LEVEL SECURITY;

--
-- Name: contact_imports; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.contact_imports ENABLE ROW LEVEL SECURITY;

--
-- Name: contacts; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.contacts ENABLE ROW LEVEL SECURITY;

--
-- Name: content_events; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.content_events ENABLE ROW LEVEL SECURITY;

--
-- Name: content_items; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.content_items ENABLE ROW LEVEL SECURITY;

--
-- Name: content_versions; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.content_versions ENABLE ROW LEVEL SECURITY;

--
-- Name: login_challenges definer_attempt; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_attempt ON app.login_challenges FOR UPDATE TO mos_definer USING (true) WITH CHECK (true);

--
-- Name: audit_blocks definer_chain; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_chain ON app.audit_blocks TO mos_definer USING (true) WITH CHECK (true);

--
-- Name: audit_chain_heads definer_chain; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_chain ON app.audit_chain_heads TO mos_definer USING (true) WITH CHECK (true);

--
-- Name: jobs definer_claim; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_claim ON app.jobs TO mos_definer USING (true) WITH CHECK (true);

--
-- Name: audit_logs definer_lookup; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_lookup ON app.audit_logs FOR SELECT TO mos_definer USING (true);

--
-- Name: email_verification_tokens definer_lookup; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_lookup ON app.email_verification_tokens FOR SELECT TO mos_definer USING (true);

--
-- Name: feedback_credentials definer_lookup; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_lookup ON app.feedback_credentials FOR SELECT TO mos_definer USING (true);

--
-- Name: invitations definer_lookup; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_lookup ON app.invitations FOR SELECT TO mos_definer USING (true);

--
-- Name: login_challenges definer_lookup; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_lookup ON app.login_challenges FOR SELECT TO mos_definer USING (true);

--
-- Name: organizations definer_lookup; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_lookup ON app.organizations FOR SELECT TO mos_definer USING (true);

--
-- Name: passkeys definer_lookup; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_lookup ON app.passkeys FOR SELECT TO mos_definer USING (true);

--
-- Name: password_reset_tokens definer_lookup; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_lookup ON app.password_reset_tokens FOR SELECT TO mos_definer USING (true);

--
-- Name: sessions definer_lookup; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_lookup ON app.sessions FOR SELECT TO mos_definer USING (true);

--
-- Name: user_organizations definer_lookup; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_lookup ON app.user_organizations FOR SELECT TO mos_definer USING (true);

--
-- Name: users definer_lookup; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_lookup ON app.users FOR SELECT TO mos_definer USING (true);

--
-- Name: auth_throttles definer_only; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_only ON app.auth_throttles TO mos_definer USING (true) WITH CHECK (true);

--
-- Name: webauthn_ceremonies definer_only; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_only ON app.webauthn_ceremonies TO mos_definer USING (true) WITH CHECK (true);

--
-- Name: email_verification_tokens definer_redeem; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_redeem ON app.email_verification_tokens FOR UPDATE TO mos_definer USING (true) WITH CHECK (true);

--
-- Name: password_reset_tokens definer_redeem; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_redeem ON app.password_reset_tokens FOR UPDATE TO mos_definer USING (true) WITH CHECK (true);

--
-- Name: sessions definer_touch; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_touch ON app.sessions FOR UPDATE TO mos_definer USING (true) WITH CHECK (true);

--
-- Name: users definer_verify; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY definer_verify ON app.users FOR UPDATE TO mos_definer USING (true) WITH CHECK (true);

--
-- Name: delivery_feedback; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.delivery_feedback ENABLE ROW LEVEL SECURITY;

--
-- Name: dkim_keys; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.dkim_keys ENABLE ROW LEVEL SECURITY;

--
-- Name: email_verification_tokens; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.email_verification_tokens ENABLE ROW LEVEL SECURITY;

--
-- Name: feedback_credentials; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.feedback_credentials ENABLE ROW LEVEL SECURITY;

--
-- Name: invitations; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.invitations ENABLE ROW LEVEL SECURITY;

--
-- Name: jobs; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.jobs ENABLE ROW LEVEL SECURITY;

--
-- Name: login_challenges; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.login_challenges ENABLE ROW LEVEL SECURITY;

--
-- Name: notices; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.notices ENABLE ROW LEVEL SECURITY;

--
-- Name: feedback_credentials operator; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY operator ON app.feedback_credentials TO mos_owner USING (true) WITH CHECK (true);

--
-- Name: organizations; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.organizations ENABLE ROW LEVEL SECURITY;

--
-- Name: passkey_enrollments; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.passkey_enrollments ENABLE ROW LEVEL SECURITY;

--
-- Name: passkeys; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.passkeys ENABLE ROW LEVEL SECURITY;

--
-- Name: password_reset_tokens; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.password_reset_tokens ENABLE ROW LEVEL SECURITY;

--
-- Name: platform_audit_logs; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.platform_audit_logs ENABLE ROW LEVEL SECURITY;

--
-- Name: purposes; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.purposes ENABLE ROW LEVEL SECURITY;

--
-- Name: recovery_codes; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.recovery_codes ENABLE ROW LEVEL SECURITY;

--
-- Name: segment_versions; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.segment_versions ENABLE ROW LEVEL SECURITY;

--
-- Name: segments; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.segments ENABLE ROW LEVEL SECURITY;

--
-- Name: email_verification_tokens self_only; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY self_only ON app.email_verification_tokens USING ((user_id = app.current_user_id())) WITH CHECK ((user_id = app.current_user_id()));

--
-- Name: login_challenges self_only; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY self_only ON app.login_challenges USING ((user_id = app.current_user_id())) WITH CHECK ((user_id = app.current_user_id()));

--
-- Name: passkey_enrollments self_only; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY self_only ON app.passkey_enrollments USING ((user_id = app.current_user_id())) WITH CHECK ((user_id = app.current_user_id()));

--
-- Name: passkeys self_only; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY self_only ON app.passkeys USING ((user_id = app.current_user_id())) WITH CHECK ((user_id = app.current_user_id()));

--
-- Name: password_reset_tokens self_only; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY self_only ON app.password_reset_tokens USING ((user_id = app.current_user_id())) WITH CHECK ((user_id = app.current_user_id()));

--
-- Name: recovery_codes self_only; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY self_only ON app.recovery_codes USING ((user_id = app.current_user_id())) WITH CHECK ((user_id = app.current_user_id()));

--
-- Name: sessions self_only; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY self_only ON app.sessions USING ((user_id = app.current_user_id())) WITH CHECK ((user_id = app.current_user_id()));

--
-- Name: totp_setups self_only; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY self_only ON app.totp_setups USING ((user_id = app.current_user_id())) WITH CHECK ((user_id = app.current_user_id()));

--
-- Name: users self_only; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY self_only ON app.users USING ((id = app.current_user_id())) WITH CHECK ((id = app.current_user_id()));

--
-- Name: senders; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.senders ENABLE ROW LEVEL SECURITY;

--
-- Name: sending_breakers; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.sending_breakers ENABLE ROW LEVEL SECURITY;

--
-- Name: sending_counts; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.sending_counts ENABLE ROW LEVEL SECURITY;

--
-- Name: sessions; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.sessions ENABLE ROW LEVEL SECURITY;

--
-- Name: signup_confirmations; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.signup_confirmations ENABLE ROW LEVEL SECURITY;

--
-- Name: platform_audit_logs subject_append; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY subject_append ON app.platform_audit_logs FOR INSERT WITH CHECK (((subject_user_id IS NULL) OR (subject_user_id = app.current_user_id())));

--
-- Name: platform_audit_logs subject_read; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY subject_read ON app.platform_audit_logs FOR SELECT USING ((subject_user_id = app.current_user_id()));

--
-- Name: suppressions; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.suppressions ENABLE ROW LEVEL SECURITY;

--
-- Name: audit_logs tenant_append; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_append ON app.audit_logs FOR INSERT WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: campaign_activity tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.campaign_activity USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: campaign_clicks tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.campaign_clicks USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: campaign_link_tallies tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.campaign_link_tallies USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: campaign_messages tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.campaign_messages USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: campaign_runs tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.campaign_runs USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: campaign_tallies tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.campaign_tallies USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: campaign_versions tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.campaign_versions USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: consent_events tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.consent_events USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: consent_evidence tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.consent_evidence USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: consent_state tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.consent_state USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: contact_attribute_choices tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.contact_attribute_choices USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: contact_attribute_values tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.contact_attribute_values USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: contact_attributes tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.contact_attributes USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: contact_import_chunks tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.contact_import_chunks USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: contact_import_problems tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.contact_import_problems USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: contact_imports tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.contact_imports USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: contacts tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.contacts USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: content_events tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.content_events USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: content_items tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.content_items USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: content_versions tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.content_versions USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: delivery_feedback tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.delivery_feedback USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: dkim_keys tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.dkim_keys USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: invitations tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.invitations USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: jobs tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.jobs USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: notices tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.notices USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: organizations tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.organizations USING ((id = app.current_tenant_id())) WITH CHECK ((id = app.current_tenant_id()));

--
-- Name: purposes tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.purposes USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: segment_versions tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.segment_versions USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: segments tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.segments USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: senders tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.senders USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: sending_breakers tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.sending_breakers USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: sending_counts tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.sending_counts USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: signup_confirmations tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.signup_confirmations USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: suppressions tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.suppressions USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: user_organizations tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.user_organizations USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: webhook_outbox tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.webhook_outbox USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: webhook_subscriptions tenant_isolation; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_isolation ON app.webhook_subscriptions USING ((organization_id = app.current_tenant_id())) WITH CHECK ((organization_id = app.current_tenant_id()));

--
-- Name: audit_blocks tenant_read; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_read ON app.audit_blocks FOR SELECT USING ((organization_id = app.current_tenant_id()));

--
-- Name: audit_logs tenant_read; Type: POLICY; Schema: app; Owner: mos_owner
--

CREATE POLICY tenant_read ON app.audit_logs FOR SELECT USING ((organization_id = app.current_tenant_id()));

--
-- Name: totp_setups; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.totp_setups ENABLE ROW LEVEL SECURITY;

--
-- Name: user_organizations; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.user_organizations ENABLE ROW LEVEL SECURITY;

--
-- Name: users; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.users ENABLE ROW LEVEL SECURITY;

--
-- Name: webauthn_ceremonies; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.webauthn_ceremonies ENABLE ROW LEVEL SECURITY;

--
-- Name: webhook_outbox; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.webhook_outbox ENABLE ROW LEVEL SECURITY;

--
-- Name: webhook_subscriptions; Type: ROW SECURITY; Schema: app; Owner: mos_owner
--

ALTER TABLE app.webhook_subscriptions ENABLE ROW LEVEL SECURITY;

--
-- Name: SCHEMA app; Type: ACL; Schema: -; Owner: mos_owner
--

GRANT USAGE ON SCHEMA app TO app_user;
GRANT USAGE ON SCHEMA app TO mos_definer;

--
-- Name: FUNCTION append_only(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.append_only() FROM PUBLIC;

--
-- Name: FUNCTION audit_append_block(p_org uuid, p_first_seq bigint, p_prev bytea, p_ids uuid[], p_hashes bytea[], p_last_created timestamp with time zone); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.audit_append_block(p_org uuid, p_first_seq bigint, p_prev bytea, p_ids uuid[], p_hashes bytea[], p_last_created timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION app.audit_append_block(p_org uuid, p_first_seq bigint, p_prev bytea, p_ids uuid[], p_hashes bytea[], p_last_created timestamp with time zone) TO app_user;

--
-- Name: FUNCTION audit_head_seq(); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.audit_head_seq() FROM PUBLIC;
GRANT ALL ON FUNCTION app.audit_head_seq() TO app_user;

--
-- Name: FUNCTION audit_lock_head(p_org uuid); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.audit_lock_head(p_org uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION app.audit_lock_head(p_org uuid) TO app_user;

--
-- Name: FUNCTION audit_logs_append_only(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.audit_logs_append_only() FROM PUBLIC;

--
-- Name: FUNCTION audit_recent_tenants(p_since timestamp with time zone); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.audit_recent_tenants(p_since timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION app.audit_recent_tenants(p_since timestamp with time zone) TO app_user;

--
-- Name: FUNCTION is_uuid_v7(id uuid); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.is_uuid_v7(id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION app.is_uuid_v7(id uuid) TO app_user;
GRANT ALL ON FUNCTION app.is_uuid_v7(id uuid) TO mos_definer;

--
-- Name: TABLE audit_logs; Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON TABLE app.audit_logs FROM mos_owner;
GRANT SELECT,INSERT,REFERENCES,TRIGGER ON TABLE app.audit_logs TO mos_owner;
GRANT SELECT,INSERT ON TABLE app.audit_logs TO app_user;
GRANT SELECT ON TABLE app.audit_logs TO mos_definer;

--
-- Name: FUNCTION audit_unsealed_since(p_org uuid, p_from timestamp with time zone); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.audit_unsealed_since(p_org uuid, p_from timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION app.audit_unsealed_since(p_org uuid, p_from timestamp with time zone) TO app_user;

--
-- Name: FUNCTION campaign_activity_add(p_org uuid, p_campaigns uuid[], p_at timestamp with time zone[], p_measures text[], p_ns bigint[]); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.campaign_activity_add(p_org uuid, p_campaigns uuid[], p_at timestamp with time zone[], p_measures text[], p_ns bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION app.campaign_activity_add(p_org uuid, p_campaigns uuid[], p_at timestamp with time zone[], p_measures text[], p_ns bigint[]) TO app_user;

--
-- Name: FUNCTION campaign_activity_follow_consent(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.campaign_activity_follow_consent() FROM PUBLIC;

--
-- Name: FUNCTION campaign_activity_follow_feedback(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.campaign_activity_follow_feedback() FROM PUBLIC;

--
-- Name: FUNCTION campaign_activity_follow_ledger(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.campaign_activity_follow_ledger() FROM PUBLIC;

--
-- Name: FUNCTION campaign_activity_guard(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.campaign_activity_guard() FROM PUBLIC;

--
-- Name: FUNCTION campaign_clicks_follow(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.campaign_clicks_follow() FROM PUBLIC;

--
-- Name: FUNCTION campaign_link_tallies_guard(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.campaign_link_tallies_guard() FROM PUBLIC;

--
-- Name: FUNCTION campaign_messages_check(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.campaign_messages_check() FROM PUBLIC;

--
-- Name: FUNCTION campaign_messages_forward(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.campaign_messages_forward() FROM PUBLIC;

--
-- Name: FUNCTION campaign_runs_forward(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.campaign_runs_forward() FROM PUBLIC;

--
-- Name: FUNCTION campaign_runs_halted(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.campaign_runs_halted() FROM PUBLIC;

--
-- Name: FUNCTION campaign_tallies_follow(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.campaign_tallies_follow() FROM PUBLIC;

--
-- Name: FUNCTION campaign_tallies_guard(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.campaign_tallies_guard() FROM PUBLIC;

--
-- Name: FUNCTION campaign_versions_check(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.campaign_versions_check() FROM PUBLIC;

--
-- Name: FUNCTION consent_events_check(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.consent_events_check() FROM PUBLIC;

--
-- Name: FUNCTION consent_evidence_check(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.consent_evidence_check() FROM PUBLIC;

--
-- Name: FUNCTION consent_evidence_erasable(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.consent_evidence_erasable() FROM PUBLIC;

--
-- Name: FUNCTION consent_state_follow(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.consent_state_follow() FROM PUBLIC;

--
-- Name: FUNCTION consent_state_guard(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.consent_state_guard() FROM PUBLIC;

--
-- Name: FUNCTION contact_attribute_values_check(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.contact_attribute_values_check() FROM PUBLIC;

--
-- Name: FUNCTION contacts_guard(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.contacts_guard() FROM PUBLIC;

--
-- Name: FUNCTION content_items_guard(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.content_items_guard() FROM PUBLIC;

--
-- Name: FUNCTION current_tenant_id(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.current_tenant_id() FROM PUBLIC;
GRANT ALL ON FUNCTION app.current_tenant_id() TO app_user;
GRANT ALL ON FUNCTION app.current_tenant_id() TO mos_definer;

--
-- Name: FUNCTION current_user_id(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.current_user_id() FROM PUBLIC;
GRANT ALL ON FUNCTION app.current_user_id() TO app_user;
GRANT ALL ON FUNCTION app.current_user_id() TO mos_definer;

--
-- Name: FUNCTION dkim_keys_forward(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.dkim_keys_forward() FROM PUBLIC;

--
-- Name: FUNCTION feedback_credential(p_token_hash bytea); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.feedback_credential(p_token_hash bytea) FROM PUBLIC;
GRANT ALL ON FUNCTION app.feedback_credential(p_token_hash bytea) TO app_user;

--
-- Name: FUNCTION find_login(p_email text); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.find_login(p_email text) FROM PUBLIC;
GRANT ALL ON FUNCTION app.find_login(p_email text) TO app_user;

--
-- Name: FUNCTION hard_refusal(p_reply text); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.hard_refusal(p_reply text) FROM PUBLIC;
GRANT ALL ON FUNCTION app.hard_refusal(p_reply text) TO app_user;

--
-- Name: FUNCTION invitation_for_token(p_token_hash bytea, p_now timestamp with time zone); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.invitation_for_token(p_token_hash bytea, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION app.invitation_for_token(p_token_hash bytea, p_now timestamp with time zone) TO app_user;

--
-- Name: FUNCTION job_claim(p_token uuid, p_kinds text[], p_now timestamp with time zone, p_lease interval); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.job_claim(p_token uuid, p_kinds text[], p_now timestamp with time zone, p_lease interval) FROM PUBLIC;
GRANT ALL ON FUNCTION app.job_claim(p_token uuid, p_kinds text[], p_now timestamp with time zone, p_lease interval) TO app_user;

--
-- Name: FUNCTION login_challenge_attempt(p_token_hash bytea, p_now timestamp with time zone, p_max_attempts integer); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.login_challenge_attempt(p_token_hash bytea, p_now timestamp with time zone, p_max_attempts integer) FROM PUBLIC;
GRANT ALL ON FUNCTION app.login_challenge_attempt(p_token_hash bytea, p_now timestamp with time zone, p_max_attempts integer) TO app_user;

--
-- Name: FUNCTION member_addresses(p_users uuid[]); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.member_addresses(p_users uuid[]) FROM PUBLIC;
GRANT ALL ON FUNCTION app.member_addresses(p_users uuid[]) TO app_user;

--
-- Name: FUNCTION member_directory_page(p_after_joined timestamp with time zone, p_after_user uuid, p_limit integer); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.member_directory_page(p_after_joined timestamp with time zone, p_after_user uuid, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION app.member_directory_page(p_after_joined timestamp with time zone, p_after_user uuid, p_limit integer) TO app_user;

--
-- Name: FUNCTION month_of(p_day date); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.month_of(p_day date) FROM PUBLIC;
GRANT ALL ON FUNCTION app.month_of(p_day date) TO app_user;

--
-- Name: FUNCTION my_organizations(); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.my_organizations() FROM PUBLIC;
GRANT ALL ON FUNCTION app.my_organizations() TO app_user;

--
-- Name: FUNCTION my_organizations_page(p_after text, p_limit integer); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.my_organizations_page(p_after text, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION app.my_organizations_page(p_after text, p_limit integer) TO app_user;

--
-- Name: FUNCTION my_phishing_resistant_organizations(); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.my_phishing_resistant_organizations() FROM PUBLIC;
GRANT ALL ON FUNCTION app.my_phishing_resistant_organizations() TO app_user;

--
-- Name: FUNCTION org_access(p_slug text); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.org_access(p_slug text) FROM PUBLIC;
GRANT ALL ON FUNCTION app.org_access(p_slug text) TO app_user;

--
-- Name: FUNCTION passkey_owner(p_credential_id bytea); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.passkey_owner(p_credential_id bytea) FROM PUBLIC;
GRANT ALL ON FUNCTION app.passkey_owner(p_credential_id bytea) TO app_user;

--
-- Name: FUNCTION rate_hit(p_key text, p_now timestamp with time zone, p_limit integer, p_window interval); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.rate_hit(p_key text, p_now timestamp with time zone, p_limit integer, p_window interval) FROM PUBLIC;
GRANT ALL ON FUNCTION app.rate_hit(p_key text, p_now timestamp with time zone, p_limit integer, p_window interval) TO app_user;

--
-- Name: FUNCTION redeem_email_verification(p_token_hash bytea, p_now timestamp with time zone); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.redeem_email_verification(p_token_hash bytea, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION app.redeem_email_verification(p_token_hash bytea, p_now timestamp with time zone) TO app_user;

--
-- Name: FUNCTION redeem_password_reset(p_token_hash bytea, p_now timestamp with time zone); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.redeem_password_reset(p_token_hash bytea, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION app.redeem_password_reset(p_token_hash bytea, p_now timestamp with time zone) TO app_user;

--
-- Name: FUNCTION request_context(p_token_hash bytea, p_slug text, p_now timestamp with time zone, p_idle interval, p_touch_every interval); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.request_context(p_token_hash bytea, p_slug text, p_now timestamp with time zone, p_idle interval, p_touch_every interval) FROM PUBLIC;
GRANT ALL ON FUNCTION app.request_context(p_token_hash bytea, p_slug text, p_now timestamp with time zone, p_idle interval, p_touch_every interval) TO app_user;

--
-- Name: FUNCTION segment_versions_append_only(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.segment_versions_append_only() FROM PUBLIC;

--
-- Name: FUNCTION sending_counts_add(p_org uuid, p_days date[], p_sent bigint[], p_refused bigint[], p_hard bigint[], p_soft bigint[], p_delivered bigint[], p_complaints bigint[]); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.sending_counts_add(p_org uuid, p_days date[], p_sent bigint[], p_refused bigint[], p_hard bigint[], p_soft bigint[], p_delivered bigint[], p_complaints bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION app.sending_counts_add(p_org uuid, p_days date[], p_sent bigint[], p_refused bigint[], p_hard bigint[], p_soft bigint[], p_delivered bigint[], p_complaints bigint[]) TO app_user;

--
-- Name: FUNCTION sending_counts_follow_feedback(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.sending_counts_follow_feedback() FROM PUBLIC;

--
-- Name: FUNCTION sending_counts_follow_ledger(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.sending_counts_follow_ledger() FROM PUBLIC;

--
-- Name: FUNCTION sending_counts_guard(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.sending_counts_guard() FROM PUBLIC;

--
-- Name: FUNCTION session_touch(p_token_hash bytea, p_now timestamp with time zone, p_idle interval); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.session_touch(p_token_hash bytea, p_now timestamp with time zone, p_idle interval) FROM PUBLIC;
GRANT ALL ON FUNCTION app.session_touch(p_token_hash bytea, p_now timestamp with time zone, p_idle interval) TO app_user;

--
-- Name: FUNCTION signup_confirmations_guard(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.signup_confirmations_guard() FROM PUBLIC;

--
-- Name: FUNCTION signup_organization(p_slug text); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.signup_organization(p_slug text) FROM PUBLIC;
GRANT ALL ON FUNCTION app.signup_organization(p_slug text) TO app_user;

--
-- Name: FUNCTION throttle_clear(p_key text); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.throttle_clear(p_key text) FROM PUBLIC;
GRANT ALL ON FUNCTION app.throttle_clear(p_key text) TO app_user;

--
-- Name: FUNCTION throttle_forgive(p_key text, p_free integer); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.throttle_forgive(p_key text, p_free integer) FROM PUBLIC;
GRANT ALL ON FUNCTION app.throttle_forgive(p_key text, p_free integer) TO app_user;

--
-- Name: FUNCTION throttle_hit(p_key text, p_now timestamp with time zone, p_free integer, p_cap_secs integer, p_hard integer, p_window interval); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.throttle_hit(p_key text, p_now timestamp with time zone, p_free integer, p_cap_secs integer, p_hard integer, p_window interval) FROM PUBLIC;
GRANT ALL ON FUNCTION app.throttle_hit(p_key text, p_now timestamp with time zone, p_free integer, p_cap_secs integer, p_hard integer, p_window interval) TO app_user;

--
-- Name: FUNCTION throttle_lock(p_failures integer, p_now timestamp with time zone, p_free integer, p_cap_secs integer, p_hard integer); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.throttle_lock(p_failures integer, p_now timestamp with time zone, p_free integer, p_cap_secs integer, p_hard integer) FROM PUBLIC;
GRANT ALL ON FUNCTION app.throttle_lock(p_failures integer, p_now timestamp with time zone, p_free integer, p_cap_secs integer, p_hard integer) TO mos_definer;

--
-- Name: FUNCTION webauthn_begin(p_handle_hash bytea, p_purpose text, p_user uuid, p_state jsonb, p_now timestamp with time zone, p_expires timestamp with time zone); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.webauthn_begin(p_handle_hash bytea, p_purpose text, p_user uuid, p_state jsonb, p_now timestamp with time zone, p_expires timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION app.webauthn_begin(p_handle_hash bytea, p_purpose text, p_user uuid, p_state jsonb, p_now timestamp with time zone, p_expires timestamp with time zone) TO app_user;

--
-- Name: FUNCTION webauthn_take(p_handle_hash bytea, p_purpose text, p_now timestamp with time zone); Type: ACL; Schema: app; Owner: mos_definer
--

REVOKE ALL ON FUNCTION app.webauthn_take(p_handle_hash bytea, p_purpose text, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION app.webauthn_take(p_handle_hash bytea, p_purpose text, p_now timestamp with time zone) TO app_user;

--
-- Name: FUNCTION webhook_enqueue(p_org uuid, p_type text, p_keys text[], p_contacts uuid[], p_data jsonb[], p_at timestamp with time zone[]); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.webhook_enqueue(p_org uuid, p_type text, p_keys text[], p_contacts uuid[], p_data jsonb[], p_at timestamp with time zone[]) FROM PUBLIC;
GRANT ALL ON FUNCTION app.webhook_enqueue(p_org uuid, p_type text, p_keys text[], p_contacts uuid[], p_data jsonb[], p_at timestamp with time zone[]) TO app_user;

--
-- Name: FUNCTION webhook_follow_consent(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.webhook_follow_consent() FROM PUBLIC;

--
-- Name: FUNCTION webhook_follow_feedback(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.webhook_follow_feedback() FROM PUBLIC;

--
-- Name: FUNCTION webhook_follow_ledger(); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.webhook_follow_ledger() FROM PUBLIC;

--
-- Name: FUNCTION webhook_wanted(p_org uuid, p_types text[]); Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON FUNCTION app.webhook_wanted(p_org uuid, p_types text[]) FROM PUBLIC;
GRANT ALL ON FUNCTION app.webhook_wanted(p_org uuid, p_types text[]) TO app_user;

--
-- Name: TABLE audit_blocks; Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON TABLE app.audit_blocks FROM mos_owner;
GRANT SELECT,INSERT,REFERENCES,TRIGGER ON TABLE app.audit_blocks TO mos_owner;
GRANT SELECT,INSERT ON TABLE app.audit_blocks TO mos_definer;
GRANT SELECT ON TABLE app.audit_blocks TO app_user;

--
-- Name: TABLE audit_chain_heads; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,UPDATE ON TABLE app.audit_chain_heads TO mos_definer;

--
-- Name: TABLE auth_throttles; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE app.auth_throttles TO mos_definer;

--
-- Name: TABLE campaign_activity; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,UPDATE ON TABLE app.campaign_activity TO app_user;

--
-- Name: TABLE campaign_clicks; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,UPDATE ON TABLE app.campaign_clicks TO app_user;

--
-- Name: TABLE campaign_link_tallies; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,UPDATE ON TABLE app.campaign_link_tallies TO app_user;

--
-- Name: TABLE campaign_messages; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.campaign_messages TO app_user;

--
-- Name: COLUMN campaign_messages.state; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(state) ON TABLE app.campaign_messages TO app_user;

--
-- Name: COLUMN campaign_messages.skip_reason; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(skip_reason) ON TABLE app.campaign_messages TO app_user;

--
-- Name: COLUMN campaign_messages.attempts; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(attempts) ON TABLE app.campaign_messages TO app_user;

--
-- Name: COLUMN campaign_messages.not_before; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(not_before) ON TABLE app.campaign_messages TO app_user;

--
-- Name: COLUMN campaign_messages.lease_until; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(lease_until) ON TABLE app.campaign_messages TO app_user;

--
-- Name: COLUMN campaign_messages.reply; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(reply) ON TABLE app.campaign_messages TO app_user;

--
-- Name: COLUMN campaign_messages.updated_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(updated_at) ON TABLE app.campaign_messages TO app_user;

--
-- Name: COLUMN campaign_messages.claimed_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(claimed_at) ON TABLE app.campaign_messages TO app_user;

--
-- Name: COLUMN campaign_messages.batch; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(batch) ON TABLE app.campaign_messages TO app_user;

--
-- Name: COLUMN campaign_messages.sent_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(sent_at) ON TABLE app.campaign_messages TO app_user;

--
-- Name: COLUMN campaign_messages.message_sha256; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(message_sha256) ON TABLE app.campaign_messages TO app_user;

--
-- Name: COLUMN campaign_messages.values_commitment; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(values_commitment) ON TABLE app.campaign_messages TO app_user;

--
-- Name: COLUMN campaign_messages.personalisation; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(personalisation) ON TABLE app.campaign_messages TO app_user;

--
-- Name: COLUMN campaign_messages.personalisation_salt; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(personalisation_salt) ON TABLE app.campaign_messages TO app_user;

--
-- Name: TABLE campaign_runs; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.campaign_runs TO app_user;

--
-- Name: COLUMN campaign_runs.state; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(state) ON TABLE app.campaign_runs TO app_user;

--
-- Name: COLUMN campaign_runs.recipients; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(recipients) ON TABLE app.campaign_runs TO app_user;

--
-- Name: COLUMN campaign_runs.finished_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(finished_at) ON TABLE app.campaign_runs TO app_user;

--
-- Name: COLUMN campaign_runs.held; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(held) ON TABLE app.campaign_runs TO app_user;

--
-- Name: TABLE campaign_tallies; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,UPDATE ON TABLE app.campaign_tallies TO app_user;

--
-- Name: TABLE campaign_versions; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.campaign_versions TO app_user;

--
-- Name: TABLE consent_events; Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON TABLE app.consent_events FROM mos_owner;
GRANT SELECT,INSERT,REFERENCES,TRIGGER ON TABLE app.consent_events TO mos_owner;
GRANT SELECT,INSERT ON TABLE app.consent_events TO app_user;

--
-- Name: TABLE consent_current; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT ON TABLE app.consent_current TO app_user;

--
-- Name: TABLE consent_evidence; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE ON TABLE app.consent_evidence TO app_user;

--
-- Name: TABLE consent_state; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,UPDATE ON TABLE app.consent_state TO app_user;

--
-- Name: TABLE contact_attribute_choices; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.contact_attribute_choices TO app_user;

--
-- Name: TABLE contact_attribute_values; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE app.contact_attribute_values TO app_user;

--
-- Name: TABLE contact_attributes; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.contact_attributes TO app_user;

--
-- Name: TABLE contact_import_chunks; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.contact_import_chunks TO app_user;

--
-- Name: TABLE contact_import_problems; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.contact_import_problems TO app_user;

--
-- Name: TABLE contact_imports; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.contact_imports TO app_user;

--
-- Name: COLUMN contact_imports.file_sha256; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(file_sha256) ON TABLE app.contact_imports TO app_user;

--
-- Name: COLUMN contact_imports.size_bytes; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(size_bytes) ON TABLE app.contact_imports TO app_user;

--
-- Name: COLUMN contact_imports.chunks; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(chunks) ON TABLE app.contact_imports TO app_user;

--
-- Name: COLUMN contact_imports.mapping; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(mapping) ON TABLE app.contact_imports TO app_user;

--
-- Name: COLUMN contact_imports.provenance; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(provenance) ON TABLE app.contact_imports TO app_user;

--
-- Name: COLUMN contact_imports.job_id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(job_id) ON TABLE app.contact_imports TO app_user;

--
-- Name: COLUMN contact_imports.imported; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(imported) ON TABLE app.contact_imports TO app_user;

--
-- Name: COLUMN contact_imports.existing; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(existing) ON TABLE app.contact_imports TO app_user;

--
-- Name: COLUMN contact_imports.suppressed; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(suppressed) ON TABLE app.contact_imports TO app_user;

--
-- Name: COLUMN contact_imports.invalid; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(invalid) ON TABLE app.contact_imports TO app_user;

--
-- Name: COLUMN contact_imports.finished_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(finished_at) ON TABLE app.contact_imports TO app_user;

--
-- Name: COLUMN contact_imports.rows; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(rows) ON TABLE app.contact_imports TO app_user;

--
-- Name: TABLE contacts; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,UPDATE ON TABLE app.contacts TO app_user;

--
-- Name: TABLE content_events; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.content_events TO app_user;

--
-- Name: TABLE content_items; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,UPDATE ON TABLE app.content_items TO app_user;

--
-- Name: TABLE content_versions; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.content_versions TO app_user;

--
-- Name: TABLE delivery_feedback; Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON TABLE app.delivery_feedback FROM mos_owner;
GRANT SELECT,INSERT,REFERENCES,TRIGGER ON TABLE app.delivery_feedback TO mos_owner;
GRANT SELECT,INSERT ON TABLE app.delivery_feedback TO app_user;

--
-- Name: TABLE dkim_keys; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.dkim_keys TO app_user;

--
-- Name: COLUMN dkim_keys.state; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(state) ON TABLE app.dkim_keys TO app_user;

--
-- Name: COLUMN dkim_keys.retired_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(retired_at) ON TABLE app.dkim_keys TO app_user;

--
-- Name: TABLE email_verification_tokens; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE app.email_verification_tokens TO app_user;

--
-- Name: COLUMN email_verification_tokens.user_id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(user_id) ON TABLE app.email_verification_tokens TO mos_definer;

--
-- Name: COLUMN email_verification_tokens.token_hash; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(token_hash) ON TABLE app.email_verification_tokens TO mos_definer;

--
-- Name: COLUMN email_verification_tokens.expires_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(expires_at) ON TABLE app.email_verification_tokens TO mos_definer;

--
-- Name: COLUMN email_verification_tokens.used_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(used_at),UPDATE(used_at) ON TABLE app.email_verification_tokens TO mos_definer;

--
-- Name: COLUMN feedback_credentials.name; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(name) ON TABLE app.feedback_credentials TO mos_definer;

--
-- Name: COLUMN feedback_credentials.token_hash; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(token_hash) ON TABLE app.feedback_credentials TO mos_definer;

--
-- Name: COLUMN feedback_credentials.revoked_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(revoked_at) ON TABLE app.feedback_credentials TO mos_definer;

--
-- Name: TABLE invitations; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,UPDATE ON TABLE app.invitations TO app_user;

--
-- Name: COLUMN invitations.organization_id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(organization_id) ON TABLE app.invitations TO mos_definer;

--
-- Name: COLUMN invitations.id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(id) ON TABLE app.invitations TO mos_definer;

--
-- Name: COLUMN invitations.email; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(email) ON TABLE app.invitations TO mos_definer;

--
-- Name: COLUMN invitations.role; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(role) ON TABLE app.invitations TO mos_definer;

--
-- Name: COLUMN invitations.token_hash; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(token_hash) ON TABLE app.invitations TO mos_definer;

--
-- Name: COLUMN invitations.expires_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(expires_at) ON TABLE app.invitations TO mos_definer;

--
-- Name: COLUMN invitations.accepted_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(accepted_at) ON TABLE app.invitations TO mos_definer;

--
-- Name: COLUMN invitations.revoked_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(revoked_at) ON TABLE app.invitations TO mos_definer;

--
-- Name: TABLE jobs; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.jobs TO app_user;
GRANT SELECT,UPDATE ON TABLE app.jobs TO mos_definer;

--
-- Name: COLUMN jobs.state; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(state) ON TABLE app.jobs TO app_user;

--
-- Name: COLUMN jobs.attempts; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(attempts) ON TABLE app.jobs TO app_user;

--
-- Name: COLUMN jobs.run_after; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(run_after) ON TABLE app.jobs TO app_user;

--
-- Name: COLUMN jobs.lease_token; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(lease_token) ON TABLE app.jobs TO app_user;

--
-- Name: COLUMN jobs.lease_expires_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(lease_expires_at) ON TABLE app.jobs TO app_user;

--
-- Name: COLUMN jobs.cancel_requested_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(cancel_requested_at) ON TABLE app.jobs TO app_user;

--
-- Name: COLUMN jobs.total; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(total) ON TABLE app.jobs TO app_user;

--
-- Name: COLUMN jobs.done; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(done) ON TABLE app.jobs TO app_user;

--
-- Name: COLUMN jobs.errors; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(errors) ON TABLE app.jobs TO app_user;

--
-- Name: COLUMN jobs.busy_ms; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(busy_ms) ON TABLE app.jobs TO app_user;

--
-- Name: COLUMN jobs.last_error; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(last_error) ON TABLE app.jobs TO app_user;

--
-- Name: COLUMN jobs.finished_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(finished_at) ON TABLE app.jobs TO app_user;

--
-- Name: TABLE login_challenges; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE app.login_challenges TO app_user;

--
-- Name: COLUMN login_challenges.id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(id) ON TABLE app.login_challenges TO mos_definer;

--
-- Name: COLUMN login_challenges.user_id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(user_id) ON TABLE app.login_challenges TO mos_definer;

--
-- Name: COLUMN login_challenges.token_hash; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(token_hash) ON TABLE app.login_challenges TO mos_definer;

--
-- Name: COLUMN login_challenges.expires_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(expires_at) ON TABLE app.login_challenges TO mos_definer;

--
-- Name: COLUMN login_challenges.attempts; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(attempts),UPDATE(attempts) ON TABLE app.login_challenges TO mos_definer;

--
-- Name: COLUMN login_challenges.consumed_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(consumed_at) ON TABLE app.login_challenges TO mos_definer;

--
-- Name: TABLE notices; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.notices TO app_user;

--
-- Name: TABLE organizations; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE app.organizations TO app_user;

--
-- Name: COLUMN organizations.id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(id) ON TABLE app.organizations TO mos_definer;

--
-- Name: COLUMN organizations.slug; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(slug) ON TABLE app.organizations TO mos_definer;

--
-- Name: COLUMN organizations.name; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(name) ON TABLE app.organizations TO mos_definer;

--
-- Name: COLUMN organizations.require_two_factor; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(require_two_factor) ON TABLE app.organizations TO mos_definer;

--
-- Name: COLUMN organizations.require_phishing_resistant; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(require_phishing_resistant) ON TABLE app.organizations TO mos_definer;

--
-- Name: TABLE passkey_enrollments; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE app.passkey_enrollments TO app_user;

--
-- Name: TABLE passkeys; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE app.passkeys TO app_user;

--
-- Name: COLUMN passkeys.id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(id) ON TABLE app.passkeys TO mos_definer;

--
-- Name: COLUMN passkeys.user_id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(user_id) ON TABLE app.passkeys TO mos_definer;

--
-- Name: COLUMN passkeys.credential_id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(credential_id) ON TABLE app.passkeys TO mos_definer;

--
-- Name: TABLE password_reset_tokens; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE app.password_reset_tokens TO app_user;

--
-- Name: COLUMN password_reset_tokens.user_id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(user_id) ON TABLE app.password_reset_tokens TO mos_definer;

--
-- Name: COLUMN password_reset_tokens.token_hash; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(token_hash) ON TABLE app.password_reset_tokens TO mos_definer;

--
-- Name: COLUMN password_reset_tokens.expires_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(expires_at) ON TABLE app.password_reset_tokens TO mos_definer;

--
-- Name: COLUMN password_reset_tokens.used_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(used_at),UPDATE(used_at) ON TABLE app.password_reset_tokens TO mos_definer;

--
-- Name: TABLE platform_audit_logs; Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON TABLE app.platform_audit_logs FROM mos_owner;
GRANT SELECT,INSERT,REFERENCES,TRIGGER ON TABLE app.platform_audit_logs TO mos_owner;
GRANT SELECT,INSERT ON TABLE app.platform_audit_logs TO app_user;

--
-- Name: TABLE purposes; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.purposes TO app_user;

--
-- Name: TABLE recovery_codes; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE app.recovery_codes TO app_user;

--
-- Name: TABLE segment_versions; Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON TABLE app.segment_versions FROM mos_owner;
GRANT SELECT,INSERT,REFERENCES,TRIGGER ON TABLE app.segment_versions TO mos_owner;
GRANT SELECT,INSERT ON TABLE app.segment_versions TO app_user;

--
-- Name: TABLE segments; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.segments TO app_user;

--
-- Name: TABLE senders; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.senders TO app_user;

--
-- Name: COLUMN senders.from_name; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(from_name) ON TABLE app.senders TO app_user;

--
-- Name: COLUMN senders.reply_to; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(reply_to) ON TABLE app.senders TO app_user;

--
-- Name: COLUMN senders.postal_address; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(postal_address) ON TABLE app.senders TO app_user;

--
-- Name: COLUMN senders.updated_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(updated_at) ON TABLE app.senders TO app_user;

--
-- Name: TABLE sending_breakers; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.sending_breakers TO app_user;

--
-- Name: COLUMN sending_breakers.min_sent; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(min_sent) ON TABLE app.sending_breakers TO app_user;

--
-- Name: COLUMN sending_breakers.hard_bounce_limit; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(hard_bounce_limit) ON TABLE app.sending_breakers TO app_user;

--
-- Name: COLUMN sending_breakers.state; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(state) ON TABLE app.sending_breakers TO app_user;

--
-- Name: COLUMN sending_breakers.reason; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(reason) ON TABLE app.sending_breakers TO app_user;

--
-- Name: COLUMN sending_breakers.changed_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(changed_at) ON TABLE app.sending_breakers TO app_user;

--
-- Name: TABLE sending_counts; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,UPDATE ON TABLE app.sending_counts TO app_user;

--
-- Name: TABLE sessions; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE app.sessions TO app_user;

--
-- Name: COLUMN sessions.id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(id) ON TABLE app.sessions TO mos_definer;

--
-- Name: COLUMN sessions.user_id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(user_id) ON TABLE app.sessions TO mos_definer;

--
-- Name: COLUMN sessions.token_hash; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(token_hash) ON TABLE app.sessions TO mos_definer;

--
-- Name: COLUMN sessions.last_seen_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(last_seen_at),UPDATE(last_seen_at) ON TABLE app.sessions TO mos_definer;

--
-- Name: COLUMN sessions.authenticated_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(authenticated_at) ON TABLE app.sessions TO mos_definer;

--
-- Name: COLUMN sessions.expires_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(expires_at) ON TABLE app.sessions TO mos_definer;

--
-- Name: COLUMN sessions.revoked_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(revoked_at) ON TABLE app.sessions TO mos_definer;

--
-- Name: COLUMN sessions.phishing_resistant; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(phishing_resistant) ON TABLE app.sessions TO mos_definer;

--
-- Name: TABLE signup_confirmations; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.signup_confirmations TO app_user;

--
-- Name: COLUMN signup_confirmations.used_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(used_at) ON TABLE app.signup_confirmations TO app_user;

--
-- Name: TABLE suppressions; Type: ACL; Schema: app; Owner: mos_owner
--

REVOKE ALL ON TABLE app.suppressions FROM mos_owner;
GRANT SELECT,INSERT,REFERENCES,TRIGGER ON TABLE app.suppressions TO mos_owner;
GRANT SELECT,INSERT ON TABLE app.suppressions TO app_user;

--
-- Name: TABLE totp_setups; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE app.totp_setups TO app_user;

--
-- Name: TABLE user_organizations; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE app.user_organizations TO app_user;

--
-- Name: COLUMN user_organizations.organization_id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(organization_id) ON TABLE app.user_organizations TO mos_definer;

--
-- Name: COLUMN user_organizations.user_id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(user_id) ON TABLE app.user_organizations TO mos_definer;

--
-- Name: COLUMN user_organizations.role; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(role) ON TABLE app.user_organizations TO mos_definer;

--
-- Name: COLUMN user_organizations.created_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(created_at) ON TABLE app.user_organizations TO mos_definer;

--
-- Name: TABLE users; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE app.users TO app_user;

--
-- Name: COLUMN users.id; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(id) ON TABLE app.users TO mos_definer;

--
-- Name: COLUMN users.email; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(email) ON TABLE app.users TO mos_definer;

--
-- Name: COLUMN users.password_hash; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(password_hash) ON TABLE app.users TO mos_definer;

--
-- Name: COLUMN users.email_verified_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(email_verified_at),UPDATE(email_verified_at) ON TABLE app.users TO mos_definer;

--
-- Name: COLUMN users.totp_enabled_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT(totp_enabled_at) ON TABLE app.users TO mos_definer;

--
-- Name: COLUMN users.updated_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(updated_at) ON TABLE app.users TO mos_definer;

--
-- Name: TABLE webauthn_ceremonies; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE app.webauthn_ceremonies TO mos_definer;

--
-- Name: TABLE webhook_outbox; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT,DELETE ON TABLE app.webhook_outbox TO app_user;

--
-- Name: COLUMN webhook_outbox.state; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(state) ON TABLE app.webhook_outbox TO app_user;

--
-- Name: COLUMN webhook_outbox.attempts; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(attempts) ON TABLE app.webhook_outbox TO app_user;

--
-- Name: COLUMN webhook_outbox.next_attempt_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(next_attempt_at) ON TABLE app.webhook_outbox TO app_user;

--
-- Name: COLUMN webhook_outbox.lease_token; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(lease_token) ON TABLE app.webhook_outbox TO app_user;

--
-- Name: COLUMN webhook_outbox.lease_expires_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(lease_expires_at) ON TABLE app.webhook_outbox TO app_user;

--
-- Name: COLUMN webhook_outbox.last_attempt_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(last_attempt_at) ON TABLE app.webhook_outbox TO app_user;

--
-- Name: COLUMN webhook_outbox.last_status; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(last_status) ON TABLE app.webhook_outbox TO app_user;

--
-- Name: COLUMN webhook_outbox.last_error; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(last_error) ON TABLE app.webhook_outbox TO app_user;

--
-- Name: COLUMN webhook_outbox.finished_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(finished_at) ON TABLE app.webhook_outbox TO app_user;

--
-- Name: TABLE webhook_subscriptions; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT SELECT,INSERT ON TABLE app.webhook_subscriptions TO app_user;

--
-- Name: COLUMN webhook_subscriptions.sealed_secret; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(sealed_secret) ON TABLE app.webhook_subscriptions TO app_user;

--
-- Name: COLUMN webhook_subscriptions.enabled; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(enabled) ON TABLE app.webhook_subscriptions TO app_user;

--
-- Name: COLUMN webhook_subscriptions.disabled_reason; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(disabled_reason) ON TABLE app.webhook_subscriptions TO app_user;

--
-- Name: COLUMN webhook_subscriptions.consecutive_failures; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(consecutive_failures) ON TABLE app.webhook_subscriptions TO app_user;

--
-- Name: COLUMN webhook_subscriptions.updated_at; Type: ACL; Schema: app; Owner: mos_owner
--

GRANT UPDATE(updated_at) ON TABLE app.webhook_subscriptions TO app_user;

--
-- PostgreSQL database dump complete
--

