-- The members of the tenant one page at a time, and the addresses of named members, each read
-- from the database by itself.
--
-- `member_directory()` returned the whole membership and the caller kept one page of it: a page
-- of fifty members of an organization of fifty thousand read fifty thousand rows. The page now
-- goes into the function as a keyset (after the membership that joined at `p_after_joined` with
-- id `p_after_user`, in the order of joining, then user id) and a limit, and an index in that
-- order per organization lets it stop after the page. The address look-up reads the memberships
-- of the ids asked by primary key. The old function is dropped: nothing calls it any more.
--
-- Like every definer function, they compare with the tenant held in a variable (Citus routes
-- that to one shard), pin `search_path`, belong to `mos_definer` and only `app_user` may run
-- them. On Citus they are created and the old function dropped with DDL propagation off, as
-- migration 5 explains: they run only on the coordinator.

create index user_organizations_directory_idx on app.user_organizations (organization_id, created_at, user_id);

set local citus.enable_ddl_propagation = off;
grant create on schema app to mos_definer;
set local role mos_definer;

-- A row comparison with the smallest possible key stands for "from the start", so the same
-- index range serves the first page and every later one. A null limit returns every member.
create function app.member_directory_page(p_after_joined timestamptz, p_after_user uuid, p_limit integer)
    returns table (user_id uuid, email text, role app.role, joined_at timestamptz, two_factor_enabled boolean)
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
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

create function app.member_addresses(p_users uuid[])
    returns table (user_id uuid, email text)
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid := app.current_tenant_id();
begin
    return query
        select m.user_id, (select u.email from app.users u where u.id = m.user_id)
          from app.user_organizations m
         where m.organization_id = v_org and m.user_id = any(p_users);
end
$$;

revoke all on function app.member_directory_page(timestamptz, uuid, integer), app.member_addresses(uuid[])
    from public;
grant execute on function app.member_directory_page(timestamptz, uuid, integer), app.member_addresses(uuid[])
    to app_user;

drop function app.member_directory();

set local role mos_owner;
revoke create on schema app from mos_definer;
