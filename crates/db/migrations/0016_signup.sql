-- The public double opt-in sign-up: the confirmation links mailed to people who signed up on an
-- organization's form, and the one lookup a page without a signed-in user needs (the
-- organization behind a slug). docs/consent.md describes the flow.
--
-- A link's token is stored only as the SHA-256 of what was mailed, so a copy of the database
-- confirms nobody. A row is bound to its organization, contact, purpose and the pending grant
-- it confirms; it is spent once (`used_at`) and dead after `expires_at`. The link names the
-- organization's slug, so redeeming it reads one tenant's rows (one shard on Citus).

create table app.signup_confirmations (
    organization_id uuid not null
                    constraint signup_confirmations_organization_fkey references app.organizations (id) on delete cascade,
    token_hash      bytea not null constraint signup_confirmations_token_hash check (length(token_hash) = 32),
    contact_id      uuid not null,
    purpose_id      uuid not null,
    -- The pending grant (`consent_events.id`, source `signup_form`) this link confirms.
    grant_event_id  uuid not null,
    created_at      timestamptz not null,
    expires_at      timestamptz not null,
    used_at         timestamptz,
    primary key (organization_id, token_hash),
    constraint signup_confirmations_grant_key unique (organization_id, grant_event_id),
    constraint signup_confirmations_expiry check (expires_at > created_at),
    constraint signup_confirmations_used check (used_at is null or used_at >= created_at)
);
-- No foreign keys to the contact, purpose or event: the confirmation itself is a consent event,
-- which the ledger's foreign keys and trigger check (a contact and purpose of the tenant, a
-- confirmation only after a pending sign-up).

-- A link is spent once and keeps what it was issued for. Reads only the row, so it holds on
-- every Citus shard.
create function app.signup_confirmations_guard() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
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
create trigger signup_confirmations_guard before update on app.signup_confirmations
    for each row execute function app.signup_confirmations_guard();

alter table app.signup_confirmations enable row level security;
alter table app.signup_confirmations force row level security;
create policy tenant_isolation on app.signup_confirmations
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
revoke all on app.signup_confirmations from public;
-- Issued and spent, never deleted by the application: an expired row is as dead as a missing one.
grant select, insert on app.signup_confirmations to app_user;
grant update (used_at) on app.signup_confirmations to app_user;

-- The organization behind a public sign-up page's slug, before any tenant is named: its id and
-- the name the page shows. Nothing else of it is public.
create function app.signup_organization(p_slug text)
    returns table (organization_id uuid, name text)
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
begin
    return query select o.id, o.name from app.organizations o where o.slug = p_slug;
end
$$;
revoke all on function app.signup_confirmations_guard(), app.signup_organization(text) from public;
grant execute on function app.signup_organization(text) to app_user;
grant create on schema app to mos_definer;
alter function app.signup_organization(text) owner to mos_definer;
revoke create on schema app from mos_definer;
