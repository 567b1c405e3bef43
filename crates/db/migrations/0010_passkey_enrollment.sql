-- The first passkey of a member of an organization that requires phishing-resistant sign-in is
-- added through a link mailed to the account's address, not with a password session alone: a
-- phisher who relays a password and a code does not have the mailbox.
--
-- `passkey_enrollments` holds the SHA-256 of each link's token, user-private like
-- `password_reset_tokens` (RLS on the user of the request); the token is redeemed by the signed-in
-- user it was mailed to, so no definer function is needed to find it.
--
-- `my_phishing_resistant_organizations` names the organizations of the current user that require
-- phishing-resistant sign-in, for the decision and for telling their ADMINs. A read only, like
-- `my_organizations_page`.

create table app.passkey_enrollments (
    id         uuid primary key constraint passkey_enrollments_id_v7 check (app.is_uuid_v7(id)),
    user_id    uuid not null constraint passkey_enrollments_user_fkey references app.users (id) on delete cascade,
    token_hash bytea not null
               constraint passkey_enrollments_token_hash_key unique
               constraint passkey_enrollments_token_hash_length check (length(token_hash) = 32),
    created_at timestamptz not null,
    expires_at timestamptz not null,
    used_at    timestamptz,
    constraint passkey_enrollments_expiry check (expires_at > created_at)
);
create index passkey_enrollments_user_idx on app.passkey_enrollments (user_id);

alter table app.passkey_enrollments enable row level security;
alter table app.passkey_enrollments force row level security;
create policy self_only on app.passkey_enrollments
    using (user_id = app.current_user_id()) with check (user_id = app.current_user_id());

revoke all on app.passkey_enrollments from public;
grant select, insert, update, delete on app.passkey_enrollments to app_user;

set local citus.enable_ddl_propagation = off;
grant create on schema app to mos_definer;
set local role mos_definer;

create function app.my_phishing_resistant_organizations()
    returns table (organization_id uuid, slug text, name text)
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
begin
    return query
        select o.id, o.slug, o.name
          from app.user_organizations m
          join app.organizations o on o.id = m.organization_id
         where m.user_id = app.current_user_id() and o.require_phishing_resistant
         order by o.slug;
end
$$;

revoke all on function app.my_phishing_resistant_organizations() from public;
grant execute on function app.my_phishing_resistant_organizations() to app_user;

set local role mos_owner;
revoke create on schema app from mos_definer;
