-- Hardening after an attack review.
--
-- Limits that slow the guesser down, not the owner.
--
-- `throttle_forgive` takes back the one attempt a success was counted as (attempts are counted
-- before they are judged, so that parallel guesses cannot pass a stale check): a limit per
-- client address then counts failures only, and an office behind one address can sign in all
-- day. Clearing the counter instead would let a guesser reset it with an account of their own.
--
-- `rate_hit` is a plain rate for things that are not guesses (mail to one address): at most
-- `p_limit` per window that starts at the first, the same answer whatever the key's history.
-- A refused attempt is not counted.
--
-- `audit_head_seq` tells the tenant of the request how far its own audit chain reaches, so that
-- an ADMIN can verify the chain through RLS (the head row is the definer's alone); a read only,
-- since on Citus a definer's write would keep app_user off the tenant's placements for the rest
-- of the transaction.
--
-- `my_organizations_page` lists a user's organizations a page at a time, after a slug, so that
-- the list costs the page and not every membership the user has.

set local citus.enable_ddl_propagation = off;
grant create on schema app to mos_definer;
set local role mos_definer;

create function app.throttle_forgive(p_key text, p_free integer) returns void
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
begin
    update app.auth_throttles t
       set failures = greatest(t.failures - 1, 0),
           locked_until = case when t.failures - 1 <= p_free then null else t.locked_until end
     where t.key = p_key;
end
$$;

create function app.rate_hit(p_key text, p_now timestamptz, p_limit integer, p_window interval)
    returns table (allowed boolean, used integer, retry_after integer)
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
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

create function app.my_organizations_page(p_after text, p_limit integer)
    returns table (organization_id uuid, slug text, name text, role app.role, joined_at timestamptz)
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
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

create function app.audit_head_seq() returns bigint
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
begin
    return (select h.seq from app.audit_chain_heads h where h.organization_id = app.current_tenant_id());
end
$$;

revoke all on function app.throttle_forgive(text, integer), app.rate_hit(text, timestamptz, integer, interval),
    app.my_organizations_page(text, integer), app.audit_head_seq() from public;
grant execute on function app.throttle_forgive(text, integer), app.rate_hit(text, timestamptz, integer, interval),
    app.my_organizations_page(text, integer), app.audit_head_seq() to app_user;

set local role mos_owner;
revoke create on schema app from mos_definer;
