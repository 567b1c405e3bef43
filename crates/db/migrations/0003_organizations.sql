-- Organizations become usable: a two-factor policy per tenant, invitations, and the lookups
-- that route a request to a tenant and list a user's organizations and a tenant's members.

alter table app.organizations add column require_two_factor boolean not null default false;

create table app.invitations (
    organization_id uuid not null
                    constraint invitations_organization_fkey references app.organizations (id) on delete cascade,
    id              uuid not null constraint invitations_id_v7 check (app.is_uuid_v7(id)),
    email           text not null
                    constraint invitations_email_format
                        check (length(email) between 3 and 254 and email = lower(btrim(email))
                               and email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'),
    role            app.role not null,
    -- SHA-256 of the emailed token; unique within the tenant, so distributable by tenant.
    token_hash      bytea not null
                    constraint invitations_token_hash_length check (length(token_hash) = 32),
    invited_by      uuid,
    created_at      timestamptz not null,
    expires_at      timestamptz not null,
    accepted_at     timestamptz,
    accepted_by     uuid,
    revoked_at      timestamptz,
    primary key (organization_id, id),
    constraint invitations_token_hash_key unique (organization_id, token_hash),
    constraint invitations_expiry check (expires_at > created_at),
    constraint invitations_settled_once check (accepted_at is null or revoked_at is null)
);
create index invitations_token_idx on app.invitations (token_hash);

alter table app.invitations enable row level security;
alter table app.invitations force row level security;
create policy tenant_isolation on app.invitations
    using (organization_id = app.current_tenant_id())
    with check (organization_id = app.current_tenant_id());
create policy definer_lookup on app.invitations for select to mos_definer using (true);
revoke all on app.invitations from public;
grant select, insert, update on app.invitations to app_user;
grant select (organization_id, id, email, role, token_hash, expires_at, accepted_at, revoked_at)
    on app.invitations to mos_definer;
grant select (name, require_two_factor) on app.organizations to mos_definer;
grant select (created_at) on app.user_organizations to mos_definer;

-- Routing a request: the organization behind a slug, the role in it of the user named in the
-- request context, the tenant's two-factor policy and whether this user has two-factor on.
-- Nothing for a non-member, so slugs of other tenants cannot be probed.
drop function app.my_membership(text);
create function app.org_access(p_slug text)
    returns table (organization_id uuid, role app.role, require_two_factor boolean, two_factor_enabled boolean)
    language sql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
        select o.id, m.role, o.require_two_factor, u.totp_enabled_at is not null
          from app.organizations o
          join app.user_organizations m on m.organization_id = o.id
          join app.users u on u.id = m.user_id
         where o.slug = p_slug and m.user_id = app.current_user_id()
    $$;

-- The organizations of the user named in the request context.
create function app.my_organizations()
    returns table (organization_id uuid, slug text, name text, role app.role, joined_at timestamptz)
    language sql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
        select o.id, o.slug, o.name, m.role, m.created_at
          from app.user_organizations m
          join app.organizations o on o.id = m.organization_id
         where m.user_id = app.current_user_id()
         order by o.slug
    $$;

-- The members of the tenant named in the request context, with their addresses, which
-- users' own RLS would hide from each other.
create function app.member_directory()
    returns table (user_id uuid, email text, role app.role, joined_at timestamptz, two_factor_enabled boolean)
    language sql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
        select u.id, u.email, m.role, m.created_at, u.totp_enabled_at is not null
          from app.user_organizations m
          join app.users u on u.id = m.user_id
         where m.organization_id = app.current_tenant_id()
         order by m.created_at, u.id
    $$;

-- The pending invitation behind a token, before the invitee's tenant context exists.
create function app.invitation_for_token(p_token_hash bytea, p_now timestamptz)
    returns table (organization_id uuid, invitation_id uuid, email text, role app.role)
    language sql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
        select i.organization_id, i.id, i.email, i.role
          from app.invitations i
         where i.token_hash = p_token_hash
           and i.accepted_at is null and i.revoked_at is null and i.expires_at > p_now
    $$;

revoke all on function app.org_access(text), app.my_organizations(), app.member_directory(),
    app.invitation_for_token(bytea, timestamptz) from public;
grant execute on function app.org_access(text), app.my_organizations(), app.member_directory(),
    app.invitation_for_token(bytea, timestamptz) to app_user;
grant create on schema app to mos_definer;
alter function app.org_access(text) owner to mos_definer;
alter function app.my_organizations() owner to mos_definer;
alter function app.member_directory() owner to mos_definer;
alter function app.invitation_for_token(bytea, timestamptz) owner to mos_definer;
revoke create on schema app from mos_definer;
