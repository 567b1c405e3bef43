-- Identity: sessions, two-factor login challenges, recovery codes, password resets, the
-- throttling of guesses, and the platform-scope audit log for events outside any organization.
-- Every time comparison takes the application's clock as a parameter (`p_now`).

create table app.sessions (
    id               uuid primary key constraint sessions_id_v7 check (app.is_uuid_v7(id)),
    user_id          uuid not null constraint sessions_user_fkey references app.users (id) on delete cascade,
    -- SHA-256 of the opaque bearer token; the token itself only ever travels to the client.
    token_hash       bytea not null
                     constraint sessions_token_hash_key unique
                     constraint sessions_token_hash_length check (length(token_hash) = 32),
    created_at       timestamptz not null,
    last_seen_at     timestamptz not null,
    -- When the user last proved who they are (password, and TOTP when enabled): sensitive
    -- changes need this to be recent.
    authenticated_at timestamptz not null,
    expires_at       timestamptz not null,
    revoked_at       timestamptz,
    ip               inet,
    user_agent       text constraint sessions_user_agent_length check (length(user_agent) <= 1024),
    constraint sessions_expiry check (expires_at > created_at)
);
create index sessions_user_idx on app.sessions (user_id) where revoked_at is null;

-- The second step of a login with TOTP enabled: issued after the password, spent by a code.
create table app.login_challenges (
    id          uuid primary key constraint login_challenges_id_v7 check (app.is_uuid_v7(id)),
    user_id     uuid not null constraint login_challenges_user_fkey references app.users (id) on delete cascade,
    token_hash  bytea not null
                constraint login_challenges_token_hash_key unique
                constraint login_challenges_token_hash_length check (length(token_hash) = 32),
    created_at  timestamptz not null,
    expires_at  timestamptz not null,
    attempts    integer not null default 0 constraint login_challenges_attempts_nonnegative check (attempts >= 0),
    consumed_at timestamptz,
    constraint login_challenges_expiry check (expires_at > created_at)
);
create index login_challenges_user_idx on app.login_challenges (user_id);

-- Single-use recovery codes of 120 random bits each, so a plain SHA-256 is as strong as a slow hash.
create table app.recovery_codes (
    user_id    uuid not null constraint recovery_codes_user_fkey references app.users (id) on delete cascade,
    code_hash  bytea not null constraint recovery_codes_code_hash_length check (length(code_hash) = 32),
    created_at timestamptz not null,
    used_at    timestamptz,
    primary key (user_id, code_hash)
);

create table app.password_reset_tokens (
    id         uuid primary key constraint password_reset_tokens_id_v7 check (app.is_uuid_v7(id)),
    user_id    uuid not null constraint password_reset_tokens_user_fkey references app.users (id) on delete cascade,
    token_hash bytea not null
               constraint password_reset_tokens_token_hash_key unique
               constraint password_reset_tokens_token_hash_length check (length(token_hash) = 32),
    created_at timestamptz not null,
    expires_at timestamptz not null,
    used_at    timestamptz,
    constraint password_reset_tokens_expiry check (expires_at > created_at)
);
create index password_reset_tokens_user_idx on app.password_reset_tokens (user_id);

-- Failure counters for guessing (per account and per client address), kept in the database so
-- that parallel attempts are counted atomically and a restart forgets nothing.
create table app.auth_throttles (
    key          text primary key constraint auth_throttles_key_length check (length(key) between 1 and 200),
    failures     integer not null constraint auth_throttles_failures_nonnegative check (failures >= 0),
    locked_until timestamptz,
    updated_at   timestamptz not null
);

-- Events outside any organization (registration, login, two-factor changes). The user they are
-- about can read them; operators read them as the database owner; no tenant ever sees them.
create table app.platform_audit_logs (
    like app.audit_logs including defaults including constraints,
    -- Whose trail this is; NULL when no account matched (a login for an unknown email).
    subject_user_id uuid
);
alter table app.platform_audit_logs drop column organization_id, add primary key (id);
create index platform_audit_logs_subject_idx on app.platform_audit_logs (subject_user_id, created_at desc, id desc);

alter table app.sessions enable row level security;
alter table app.sessions force row level security;
alter table app.login_challenges enable row level security;
alter table app.login_challenges force row level security;
alter table app.recovery_codes enable row level security;
alter table app.recovery_codes force row level security;
alter table app.password_reset_tokens enable row level security;
alter table app.password_reset_tokens force row level security;
alter table app.auth_throttles enable row level security;
alter table app.auth_throttles force row level security;
alter table app.platform_audit_logs enable row level security;
alter table app.platform_audit_logs force row level security;

create policy self_only on app.sessions
    using (user_id = app.current_user_id()) with check (user_id = app.current_user_id());
create policy self_only on app.login_challenges
    using (user_id = app.current_user_id()) with check (user_id = app.current_user_id());
create policy self_only on app.recovery_codes
    using (user_id = app.current_user_id()) with check (user_id = app.current_user_id());
create policy self_only on app.password_reset_tokens
    using (user_id = app.current_user_id()) with check (user_id = app.current_user_id());
create policy subject_read on app.platform_audit_logs for select
    using (subject_user_id = app.current_user_id());
create policy subject_append on app.platform_audit_logs for insert
    with check (subject_user_id is null or subject_user_id = app.current_user_id());

create trigger platform_audit_logs_append_only_rows
    before update or delete on app.platform_audit_logs
    for each statement execute function app.audit_logs_append_only();
create trigger platform_audit_logs_append_only_truncate
    before truncate on app.platform_audit_logs
    for each statement execute function app.audit_logs_append_only();
alter table app.platform_audit_logs enable always trigger platform_audit_logs_append_only_rows;
alter table app.platform_audit_logs enable always trigger platform_audit_logs_append_only_truncate;

revoke all on app.sessions, app.login_challenges, app.recovery_codes, app.password_reset_tokens,
    app.auth_throttles, app.platform_audit_logs from public;
grant select, insert, update, delete
    on app.sessions, app.login_challenges, app.recovery_codes, app.password_reset_tokens
    to app_user;
grant select, insert on app.platform_audit_logs to app_user;
revoke update, delete, truncate on app.platform_audit_logs from mos_owner;

-- What the lookups below may touch, and nothing more.
create policy definer_lookup on app.sessions for select to mos_definer using (true);
create policy definer_touch on app.sessions for update to mos_definer using (true) with check (true);
create policy definer_lookup on app.login_challenges for select to mos_definer using (true);
create policy definer_attempt on app.login_challenges for update to mos_definer using (true) with check (true);
create policy definer_lookup on app.password_reset_tokens for select to mos_definer using (true);
create policy definer_redeem on app.password_reset_tokens for update to mos_definer using (true) with check (true);
create policy definer_only on app.auth_throttles to mos_definer using (true) with check (true);
grant select (id, user_id, token_hash, last_seen_at, authenticated_at, expires_at, revoked_at) on app.sessions to mos_definer;
grant update (last_seen_at) on app.sessions to mos_definer;
grant select (id, user_id, token_hash, expires_at, attempts, consumed_at) on app.login_challenges to mos_definer;
grant update (attempts) on app.login_challenges to mos_definer;
grant select (user_id, token_hash, expires_at, used_at) on app.password_reset_tokens to mos_definer;
grant update (used_at) on app.password_reset_tokens to mos_definer;
grant select, insert, update, delete on app.auth_throttles to mos_definer;

-- A request's session, if its token is live: not revoked, within its absolute lifetime and
-- used within the idle timeout. Using it moves the idle deadline.
create function app.session_touch(p_token_hash bytea, p_now timestamptz, p_idle interval)
    returns table (session_id uuid, user_id uuid, authenticated_at timestamptz, expires_at timestamptz)
    language sql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
        update app.sessions s
           set last_seen_at = p_now
         where s.token_hash = p_token_hash
           and s.revoked_at is null
           and s.expires_at > p_now
           and s.last_seen_at + p_idle > p_now
        returning s.id, s.user_id, s.authenticated_at, s.expires_at
    $$;

-- Spends one of a challenge's attempts; the user behind it while attempts remain.
create function app.login_challenge_attempt(p_token_hash bytea, p_now timestamptz, p_max_attempts integer)
    returns table (challenge_id uuid, user_id uuid)
    language sql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
        update app.login_challenges c
           set attempts = c.attempts + 1
         where c.token_hash = p_token_hash
           and c.consumed_at is null
           and c.expires_at > p_now
           and c.attempts < p_max_attempts
        returning c.id, c.user_id
    $$;

-- Spends a password-reset token once, if unexpired; the user it resets.
create function app.redeem_password_reset(p_token_hash bytea, p_now timestamptz) returns uuid
    language sql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
        update app.password_reset_tokens t
           set used_at = p_now
         where t.token_hash = p_token_hash and t.used_at is null and t.expires_at > p_now
        returning t.user_id
    $$;

-- Progressive delay after the free failures: 1 s, 2 s, 4 s ... up to the cap; from the hard
-- limit on, locked until cleared (a password reset clears an account's counter).
create function app.throttle_lock(p_failures integer, p_now timestamptz, p_free integer, p_cap_secs integer, p_hard integer)
    returns timestamptz
    language sql immutable parallel safe
    set search_path = pg_catalog, pg_temp
    as $$
        select case
            when p_hard is not null and p_failures >= p_hard then 'infinity'::timestamptz
            when p_failures > p_free
                then p_now + make_interval(secs => least(p_cap_secs, power(2, least(p_failures - p_free - 1, 30))::integer))
        end
    $$;

-- Counts an attempt as a failure before it is judged (a success clears the counter again), in
-- one statement under the row lock, so that parallel attempts cannot all pass a stale check.
-- `allowed` is false while the key is locked; the attempt is then not counted. `retry_after`
-- is how many seconds until the next attempt is allowed: NULL when it is allowed now, and also
-- when the key is locked until cleared (`failures` then says it reached the hard limit). A key
-- last touched longer ago than `p_window` starts over (NULL: never, for consecutive failures).
create function app.throttle_hit(p_key text, p_now timestamptz, p_free integer, p_cap_secs integer,
                                 p_hard integer, p_window interval)
    returns table (allowed boolean, failures integer, retry_after integer)
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
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

create function app.throttle_clear(p_key text) returns void
    language sql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$ delete from app.auth_throttles t where t.key = p_key $$;

revoke all on function app.session_touch(bytea, timestamptz, interval),
    app.login_challenge_attempt(bytea, timestamptz, integer),
    app.redeem_password_reset(bytea, timestamptz),
    app.throttle_lock(integer, timestamptz, integer, integer, integer),
    app.throttle_hit(text, timestamptz, integer, integer, integer, interval),
    app.throttle_clear(text) from public;
grant execute on function app.session_touch(bytea, timestamptz, interval),
    app.login_challenge_attempt(bytea, timestamptz, integer),
    app.redeem_password_reset(bytea, timestamptz),
    app.throttle_hit(text, timestamptz, integer, integer, integer, interval),
    app.throttle_clear(text) to app_user;
grant execute on function app.throttle_lock(integer, timestamptz, integer, integer, integer) to mos_definer;
grant create on schema app to mos_definer;
alter function app.session_touch(bytea, timestamptz, interval) owner to mos_definer;
alter function app.login_challenge_attempt(bytea, timestamptz, integer) owner to mos_definer;
alter function app.redeem_password_reset(bytea, timestamptz) owner to mos_definer;
alter function app.throttle_hit(text, timestamptz, integer, integer, integer, interval) owner to mos_definer;
alter function app.throttle_clear(text) owner to mos_definer;
revoke create on schema app from mos_definer;
