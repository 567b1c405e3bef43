-- Passkeys (WebAuthn): a user's credentials, the ceremonies in flight, sessions that know
-- whether a passkey established them, and an organization policy that requires one.
--
-- `passkeys` is user-private like `recovery_codes` (RLS on the user of the request); the
-- credential itself is the relying-party library's JSON (public key, sign counter, flags),
-- next to the columns people and checks read. A credential id is unique across the platform:
-- one authenticator credential belongs to one account.
--
-- `webauthn_ceremonies` holds the server side of each ceremony (its challenge) until it is
-- finished, at most once and before it expires; a passwordless sign-in has no user yet, so the
-- table is reached only through the two definer functions below.

alter table app.sessions add column phishing_resistant boolean not null default false;
alter table app.organizations add column require_phishing_resistant boolean not null default false;

create table app.passkeys (
    id                uuid primary key constraint passkeys_id_v7 check (app.is_uuid_v7(id)),
    user_id           uuid not null constraint passkeys_user_fkey references app.users (id) on delete cascade,
    credential_id     bytea not null
                      constraint passkeys_credential_id_key unique
                      constraint passkeys_credential_id_length check (length(credential_id) between 16 and 1023),
    name              text not null constraint passkeys_name check (length(name) between 1 and 100),
    credential        jsonb not null,
    sign_count        bigint not null constraint passkeys_sign_count check (sign_count >= 0),
    backup_eligible   boolean not null,
    backup_state      boolean not null,
    transports        text[] not null,
    created_at        timestamptz not null,
    last_used_at      timestamptz
);
create index passkeys_user_idx on app.passkeys (user_id);

create table app.webauthn_ceremonies (
    -- SHA-256 of the handle the client holds.
    handle_hash bytea primary key constraint webauthn_ceremonies_handle_length check (length(handle_hash) = 32),
    purpose     text not null
                constraint webauthn_ceremonies_purpose
                    check (purpose in ('register', 'second_factor', 'passwordless', 'reauthenticate')),
    user_id     uuid,
    state       jsonb not null,
    created_at  timestamptz not null,
    expires_at  timestamptz not null,
    used_at     timestamptz,
    constraint webauthn_ceremonies_expiry check (expires_at > created_at),
    constraint webauthn_ceremonies_user check ((purpose = 'passwordless') = (user_id is null))
);
create index webauthn_ceremonies_expires_idx on app.webauthn_ceremonies (expires_at);

alter table app.passkeys enable row level security;
alter table app.passkeys force row level security;
create policy self_only on app.passkeys
    using (user_id = app.current_user_id()) with check (user_id = app.current_user_id());
create policy definer_lookup on app.passkeys for select to mos_definer using (true);
alter table app.webauthn_ceremonies enable row level security;
alter table app.webauthn_ceremonies force row level security;
create policy definer_only on app.webauthn_ceremonies to mos_definer using (true) with check (true);

revoke all on app.passkeys, app.webauthn_ceremonies from public;
grant select, insert, update, delete on app.passkeys to app_user;
grant select (id, user_id, credential_id) on app.passkeys to mos_definer;
grant select, insert, update, delete on app.webauthn_ceremonies to mos_definer;
grant select (phishing_resistant) on app.sessions to mos_definer;
grant select (require_phishing_resistant) on app.organizations to mos_definer;

set local citus.enable_ddl_propagation = off;
grant create on schema app to mos_definer;
set local role mos_definer;

-- Begins a ceremony; expired ones are cleared on the way, so the table holds only live ones.
create function app.webauthn_begin(p_handle_hash bytea, p_purpose text, p_user uuid, p_state jsonb,
                                   p_now timestamptz, p_expires timestamptz) returns void
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
begin
    delete from app.webauthn_ceremonies c where c.expires_at <= p_now;
    insert into app.webauthn_ceremonies (handle_hash, purpose, user_id, state, created_at, expires_at)
    values (p_handle_hash, p_purpose, p_user, p_state, p_now, p_expires);
end
$$;

-- Spends a live ceremony of `p_purpose` once: its user and state, or nothing.
create function app.webauthn_take(p_handle_hash bytea, p_purpose text, p_now timestamptz)
    returns table (user_id uuid, state jsonb)
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
begin
    return query
        update app.webauthn_ceremonies c
           set used_at = p_now
         where c.handle_hash = p_handle_hash and c.purpose = p_purpose
           and c.used_at is null and c.expires_at > p_now
        returning c.user_id, c.state;
end
$$;

-- The account a credential id belongs to, for a passwordless sign-in.
create function app.passkey_owner(p_credential_id bytea) returns uuid
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
begin
    return (select p.user_id from app.passkeys p where p.credential_id = p_credential_id);
end
$$;

-- The request context learns whether the session was established with a passkey and whether
-- the organization requires that.
drop function app.request_context(bytea, text, timestamptz, interval, interval);
create function app.request_context(p_token_hash bytea, p_slug text, p_now timestamptz, p_idle interval,
                                    p_touch_every interval)
    returns table (session_id uuid, user_id uuid, authenticated_at timestamptz, expires_at timestamptz,
                   two_factor_enabled boolean, phishing_resistant boolean, organization_id uuid, role app.role,
                   require_two_factor boolean, require_phishing_resistant boolean)
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

revoke all on function app.webauthn_begin(bytea, text, uuid, jsonb, timestamptz, timestamptz),
    app.webauthn_take(bytea, text, timestamptz), app.passkey_owner(bytea),
    app.request_context(bytea, text, timestamptz, interval, interval) from public;
grant execute on function app.webauthn_begin(bytea, text, uuid, jsonb, timestamptz, timestamptz),
    app.webauthn_take(bytea, text, timestamptz), app.passkey_owner(bytea),
    app.request_context(bytea, text, timestamptz, interval, interval) to app_user;

set local role mos_owner;
revoke create on schema app from mos_definer;
