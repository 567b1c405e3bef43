-- Migration 33: the credentials that let a relay or a mail provider post delivery feedback over
-- HTTP (docs/sending.md, "Delivery feedback over HTTP"). A report names its organization itself
-- (by the returned message's Feedback-ID), so a credential belongs to the installation, not to
-- a tenant: the operator makes one per relay or provider with `mos feedback credential create`,
-- which prints the token once; only its SHA-256 is kept. Revoking one ends it at once; a
-- revoked name may be given again.
--
-- The application cannot read the table: one definer function answers whether a presented
-- token's hash belongs to a live credential, and with its name, as the session lookups do.
-- Only the operator writes it: the command acts as `mos_owner`, which nobody can log in as
-- (docs/security.md), so the application's role cannot.

create table app.feedback_credentials (
    id         uuid primary key constraint feedback_credentials_id_v7 check (app.is_uuid_v7(id)),
    name       text not null
        constraint feedback_credentials_name_format check (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    token_hash bytea not null
        constraint feedback_credentials_token_hash_key unique
        constraint feedback_credentials_token_hash_length check (length(token_hash) = 32),
    created_at timestamptz not null,
    revoked_at timestamptz,
    constraint feedback_credentials_revoked check (revoked_at is null or revoked_at >= created_at)
);
create unique index feedback_credentials_live_name on app.feedback_credentials (name) where revoked_at is null;

alter table app.feedback_credentials enable row level security;
alter table app.feedback_credentials force row level security;
create policy definer_lookup on app.feedback_credentials for select to mos_definer using (true);
create policy operator on app.feedback_credentials to mos_owner using (true) with check (true);
revoke all on app.feedback_credentials from public;
grant select (name, token_hash, revoked_at) on app.feedback_credentials to mos_definer;

-- The live credential's name for a presented token's hash, or NULL. Made by `mos_definer`,
-- which may create in the schema only for this.
set local citus.enable_ddl_propagation = off;
grant create on schema app to mos_definer;
set local role mos_definer;

create function app.feedback_credential(p_token_hash bytea) returns text
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
begin
    return (select c.name from app.feedback_credentials c where c.token_hash = p_token_hash and c.revoked_at is null);
end
$$;
revoke all on function app.feedback_credential(bytea) from public;
grant execute on function app.feedback_credential(bytea) to app_user;

set local role mos_owner;
revoke create on schema app from mos_definer;
