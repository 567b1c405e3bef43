-- Functions that Citus can plan, and the same on plain PostgreSQL.
--
-- Citus cannot plan a SQL-language function that has parameters and reads a distributed,
-- reference or Citus-local table ("could not create distributed plan ... parameters in SQL
-- functions"), and two statements crashed its coordinator: `session_touch` through the
-- fast-path planner, and the array subscript inside `audit_append_block`'s UPDATE through the
-- deparser. Every such function becomes PL/pgSQL here, with the same name, signature, result
-- columns, owner and grants, so the Rust callers do not change. `mos db check` keeps it so.
--
-- They are replaced by their owner, `mos_definer`, so that grants and ownership stay as they
-- are. They run only where the application calls them, on the coordinator, so on Citus the
-- replacement is not propagated: Citus would replace the workers' copies on a connection of
-- the definer's own, which cannot see this transaction's grant on the schema. The workers keep
-- copies of the old bodies that nothing calls.

set local citus.enable_ddl_propagation = off;
grant create on schema app to mos_definer;
set local role mos_definer;

create or replace function app.find_login(p_email text)
    returns table (user_id uuid, password_hash text, email_verified_at timestamptz, totp_enabled boolean)
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
begin
    return query
        select u.id, u.password_hash, u.email_verified_at, u.totp_enabled_at is not null
          from app.users u
         where lower(u.email) = lower(btrim(p_email));
end
$$;

-- The organization first (a reference table, read on the coordinator), then the membership by
-- `organization_id`, so that the membership lookup is a single-shard router query.
create or replace function app.org_access(p_slug text)
    returns table (organization_id uuid, role app.role, require_two_factor boolean, two_factor_enabled boolean)
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
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

-- The tenant is read into a variable first: compared with `app.current_tenant_id()` itself,
-- Citus cannot tell which shard is meant and asks every one of them.
create or replace function app.member_directory()
    returns table (user_id uuid, email text, role app.role, joined_at timestamptz, two_factor_enabled boolean)
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid := app.current_tenant_id();
begin
    return query
        select u.id, u.email, m.role, m.created_at, u.totp_enabled_at is not null
          from app.user_organizations m
          join app.users u on u.id = m.user_id
         where m.organization_id = v_org
         order by m.created_at, u.id;
end
$$;

create or replace function app.invitation_for_token(p_token_hash bytea, p_now timestamptz)
    returns table (organization_id uuid, invitation_id uuid, email text, role app.role)
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
begin
    return query
        select i.organization_id, i.id, i.email, i.role
          from app.invitations i
         where i.token_hash = p_token_hash
           and i.accepted_at is null and i.revoked_at is null and i.expires_at > p_now;
end
$$;

-- The idle cutoff is computed once: Citus refuses a STABLE expression over a column
-- (`last_seen_at + p_idle`) in an UPDATE.
create or replace function app.session_touch(p_token_hash bytea, p_now timestamptz, p_idle interval)
    returns table (session_id uuid, user_id uuid, authenticated_at timestamptz, expires_at timestamptz)
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
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

create or replace function app.login_challenge_attempt(p_token_hash bytea, p_now timestamptz, p_max_attempts integer)
    returns table (challenge_id uuid, user_id uuid)
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
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

create or replace function app.redeem_password_reset(p_token_hash bytea, p_now timestamptz) returns uuid
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
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

create or replace function app.throttle_clear(p_key text) returns void
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
begin
    delete from app.auth_throttles t where t.key = p_key;
end
$$;

create or replace function app.audit_recent_tenants(p_since timestamptz) returns setof uuid
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
begin
    if p_since is null then
        return query select o.id from app.organizations o;
    else
        return query select distinct a.organization_id from app.audit_logs a where a.created_at >= p_since;
    end if;
end
$$;

create or replace function app.audit_unsealed_since(p_org uuid, p_from timestamptz) returns setof app.audit_logs
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
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

-- The new head hash is copied out of the array before the UPDATE uses it.
create or replace function app.audit_append_block(p_org uuid, p_first_seq bigint, p_prev bytea, p_ids uuid[],
                                       p_hashes bytea[], p_last_created timestamptz) returns void
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
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

set local role mos_owner;
revoke create on schema app from mos_definer;
