-- Tamper evidence: every tenant's audit records form a hash chain,
--   seq = previous seq + 1,  hash = SHA-256(previous hash ‖ canonical encoding of the record),
-- kept in `app.audit_seals` beside the records, which stay exactly as written.
--
-- Records are not chained as they are inserted: chaining at insert holds the tenant's chain
-- head until commit, and measured at 0.20× the throughput of plain inserts for one tenant
-- with 16 writers (0.46× for 16 tenants). Instead a sealer (in every `mos serve`, and
-- `mos audit seal`) chains committed records shortly after, in the order they became visible,
-- one tenant at a time under that tenant's head lock, so concurrent sealers never fork a chain
-- and tenants never wait on each other. docs/audit-chain.md has the encoding and the trade-off.

create table app.audit_chain_heads (
    organization_id uuid primary key
                    constraint audit_chain_heads_organization_fkey references app.organizations (id) on delete restrict,
    seq             bigint not null constraint audit_chain_heads_seq_nonnegative check (seq >= 0),
    hash            bytea not null constraint audit_chain_heads_hash_length check (length(hash) = 32),
    -- created_at of the newest record sealed so far.
    sealed_through  timestamptz not null
);

create table app.audit_seals (
    organization_id uuid not null,
    seq             bigint not null constraint audit_seals_seq_positive check (seq > 0),
    audit_id        uuid not null,
    prev_hash       bytea not null constraint audit_seals_prev_hash_length check (length(prev_hash) = 32),
    hash            bytea not null constraint audit_seals_hash_length check (length(hash) = 32),
    sealed_at       timestamptz not null default clock_timestamp(),
    primary key (organization_id, seq),
    -- No foreign key to the record: its check would lock the record, which takes an UPDATE
    -- privilege that nobody holds on the audit log. A seal whose record is gone is what
    -- `mos audit verify` reports as deleted.
    constraint audit_seals_audit_key unique (organization_id, audit_id)
);

-- Finding what is recent, for the sealer's sweep.
create index audit_logs_created_idx on app.audit_logs (created_at);

alter table app.audit_chain_heads enable row level security;
alter table app.audit_chain_heads force row level security;
alter table app.audit_seals enable row level security;
alter table app.audit_seals force row level security;
create policy definer_chain on app.audit_chain_heads to mos_definer using (true) with check (true);
create policy tenant_read on app.audit_seals for select using (organization_id = app.current_tenant_id());
create policy definer_chain on app.audit_seals to mos_definer using (true) with check (true);
create policy definer_lookup on app.audit_logs for select to mos_definer using (true);
revoke all on app.audit_chain_heads, app.audit_seals from public;
grant select, insert, update on app.audit_chain_heads to mos_definer;
grant select, insert on app.audit_seals to mos_definer;
grant select on app.audit_seals to app_user;
grant select on app.audit_logs to mos_definer;

-- Seals are as append-only as the records they seal.
create trigger audit_seals_append_only_rows
    before update or delete on app.audit_seals
    for each statement execute function app.audit_logs_append_only();
create trigger audit_seals_append_only_truncate
    before truncate on app.audit_seals
    for each statement execute function app.audit_logs_append_only();
alter table app.audit_seals enable always trigger audit_seals_append_only_rows;
alter table app.audit_seals enable always trigger audit_seals_append_only_truncate;
revoke update, delete, truncate on app.audit_seals from mos_owner;

-- One field of the encoding: 4-byte big-endian length and the UTF-8 bytes, or ffffffff for NULL.
create function app.audit_field(p_text text) returns bytea
    language sql immutable parallel safe
    set search_path = pg_catalog, pg_temp
    as $$
        select case when p_text is null then '\xffffffff'::bytea
                    else int4send(octet_length(p_text)) || convert_to(p_text, 'UTF8') end
    $$;

create function app.audit_link_hash(p_prev bytea, p_seq bigint, p_row app.audit_logs) returns bytea
    language sql immutable parallel safe
    set search_path = pg_catalog, pg_temp
    as $$
        select sha256(p_prev
            || app.audit_field(p_row.organization_id::text)
            || app.audit_field(p_seq::text)
            || app.audit_field(p_row.id::text)
            || app.audit_field(p_row.actor_user_id::text)
            || app.audit_field(p_row.action)
            || app.audit_field(p_row.resource_type)
            || app.audit_field(p_row.resource_id)
            || app.audit_field(p_row.outcome::text)
            || app.audit_field(host(p_row.ip))
            || app.audit_field(p_row.user_agent)
            || app.audit_field(p_row.request_id)
            || app.audit_field(p_row.changes::text)
            || app.audit_field(p_row.metadata::text)
            || app.audit_field((extract(epoch from p_row.created_at) * 1000000)::bigint::text))
    $$;

-- The tenants with records created since `p_since` (the sealer's last sweep, less its window);
-- every tenant for NULL (a sealer's first sweep after it starts).
create function app.audit_recent_tenants(p_since timestamptz) returns setof uuid
    language sql stable security definer
    set search_path = pg_catalog, pg_temp
    as $$
        select o.id from app.organizations o where p_since is null
        union all
        select distinct a.organization_id from app.audit_logs a where p_since is not null and a.created_at >= p_since
    $$;

-- Seals up to `p_limit` of the tenant's unsealed records, oldest first, among those created no
-- earlier than `p_window` before the newest record sealed so far (a record whose transaction
-- stayed open longer than that is left for `mos audit verify` to report). Returns how many.
create function app.audit_seal_pending(p_org uuid, p_window interval, p_limit integer) returns integer
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_seq bigint;
    v_prev bytea;
    v_through timestamptz;
    v_row app.audit_logs;
    v_hash bytea;
    v_count integer := 0;
begin
    insert into app.audit_chain_heads (organization_id, seq, hash, sealed_through)
    values (p_org, 0, decode(repeat('00', 32), 'hex'), '-infinity')
    on conflict (organization_id) do nothing;
    select h.seq, h.hash, h.sealed_through into v_seq, v_prev, v_through
      from app.audit_chain_heads h where h.organization_id = p_org for update;
    for v_row in
        select a.* from app.audit_logs a
         where a.organization_id = p_org
           and a.created_at >= v_through - p_window
           and not exists (select from app.audit_seals s where s.organization_id = a.organization_id and s.audit_id = a.id)
         order by a.created_at, a.id
         limit p_limit
    loop
        v_seq := v_seq + 1;
        v_hash := app.audit_link_hash(v_prev, v_seq, v_row);
        insert into app.audit_seals (organization_id, seq, audit_id, prev_hash, hash)
        values (p_org, v_seq, v_row.id, v_prev, v_hash);
        v_prev := v_hash;
        v_through := greatest(v_through, v_row.created_at);
        v_count := v_count + 1;
    end loop;
    if v_count > 0 then
        update app.audit_chain_heads set seq = v_seq, hash = v_prev, sealed_through = v_through
         where organization_id = p_org;
    end if;
    return v_count;
end
$$;

revoke all on function app.audit_field(text), app.audit_link_hash(bytea, bigint, app.audit_logs),
    app.audit_recent_tenants(timestamptz), app.audit_seal_pending(uuid, interval, integer) from public;
grant execute on function app.audit_field(text), app.audit_link_hash(bytea, bigint, app.audit_logs) to mos_definer;
grant execute on function app.audit_recent_tenants(timestamptz), app.audit_seal_pending(uuid, interval, integer)
    to app_user;
grant create on schema app to mos_definer;
alter function app.audit_recent_tenants(timestamptz) owner to mos_definer;
alter function app.audit_seal_pending(uuid, interval, integer) owner to mos_definer;
revoke create on schema app from mos_definer;
