-- One request, one transaction: the first statement of every authenticated request finds the
-- session, notes its activity at most once per interval, and (for a tenant route) finds the
-- organization by its slug and the user's membership in it. The caller then sets the request
-- context and does its work in the same transaction, so the check and the action cannot
-- disagree: a demotion committed before this statement is seen by it.
--
-- Reads do not write: `last_seen_at` moves only when it is older than `p_touch_every`, so the
-- idle timeout has that precision. The row is taken with SKIP LOCKED, so requests of one session
-- never queue behind each other's transactions to note the same activity.
--
-- Replaces `session_touch` (a write on every request) and `org_access` (a transaction of its
-- own), and makes the member directory's cost that of the organization's members alone. Those stay defined and unused: dropping them on Citus would need the definer's own
-- connection on every worker, as migration 5 explains.

set local citus.enable_ddl_propagation = off;
grant create on schema app to mos_definer;
set local role mos_definer;

create function app.request_context(p_token_hash bytea, p_slug text, p_now timestamptz, p_idle interval,
                                    p_touch_every interval)
    returns table (session_id uuid, user_id uuid, authenticated_at timestamptz, expires_at timestamptz,
                   two_factor_enabled boolean, organization_id uuid, role app.role, require_two_factor boolean)
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_seen_after timestamptz := p_now - p_idle;
    v_stale_before timestamptz := p_now - p_touch_every;
    v_session uuid;
    v_user uuid;
    v_authenticated timestamptz;
    v_expires timestamptz;
    v_seen timestamptz;
    v_two_factor boolean;
    v_org uuid;
    v_require boolean;
    v_role app.role;
begin
    select s.id, s.user_id, s.authenticated_at, s.expires_at, s.last_seen_at
      into v_session, v_user, v_authenticated, v_expires, v_seen
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
        select o.id, o.require_two_factor into v_org, v_require from app.organizations o where o.slug = p_slug;
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
    end if;
    return query select v_session, v_user, v_authenticated, v_expires, v_two_factor, v_org, v_role, v_require;
end
$$;

revoke all on function app.request_context(bytea, text, timestamptz, interval, interval) from public;
grant execute on function app.request_context(bytea, text, timestamptz, interval, interval) to app_user;

-- The member directory looks each member up by primary key. As a join, the planner hashed the
-- whole `users` table for every listing (a sequential scan of every user of every tenant, for
-- fifty members of one): the cost grew with the platform, not with the organization.
create or replace function app.member_directory()
    returns table (user_id uuid, email text, role app.role, joined_at timestamptz, two_factor_enabled boolean)
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid := app.current_tenant_id();
begin
    return query
        select m.user_id,
               (select u.email from app.users u where u.id = m.user_id),
               m.role,
               m.created_at,
               (select u.totp_enabled_at is not null from app.users u where u.id = m.user_id)
          from app.user_organizations m
         where m.organization_id = v_org
         order by m.created_at, m.user_id;
end
$$;

set local role mos_owner;
revoke create on schema app from mos_definer;
