-- Tamper evidence: every tenant's audit records form a hash chain,
--   seq = previous seq + 1,  hash = SHA-256(previous hash ‖ canonical encoding of the record),
-- assigned at insert by a trigger that holds the tenant's chain head until commit. Writers of
-- one tenant queue on that one row; tenants never wait on each other; a rolled-back insert
-- rolls its link back too, so the chain has no gaps. The encoding is specified in
-- docs/audit-chain.md, and `mos audit verify` recomputes it independently.

create table app.audit_chain_heads (
    organization_id uuid primary key
                    constraint audit_chain_heads_organization_fkey references app.organizations (id) on delete restrict,
    seq             bigint not null constraint audit_chain_heads_seq_nonnegative check (seq >= 0),
    hash            bytea not null constraint audit_chain_heads_hash_length check (length(hash) = 32)
);
alter table app.audit_chain_heads enable row level security;
alter table app.audit_chain_heads force row level security;
create policy definer_chain on app.audit_chain_heads to mos_definer using (true) with check (true);
revoke all on app.audit_chain_heads from public;
grant select, insert, update on app.audit_chain_heads to mos_definer;

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

alter table app.audit_logs
    add column seq bigint,
    add column prev_hash bytea,
    add column hash bytea;

-- Chain what is there already, oldest first. The guard trigger stops every UPDATE, this one
-- included, so it steps aside inside this transaction only.
alter table app.audit_logs disable trigger audit_logs_append_only_rows;
do $backfill$
declare
    v_org uuid;
    v_row app.audit_logs;
    v_seq bigint;
    v_prev bytea;
    v_hash bytea;
begin
    for v_org in select distinct organization_id from app.audit_logs loop
        v_seq := 0;
        v_prev := decode(repeat('00', 32), 'hex');
        for v_row in select * from app.audit_logs where organization_id = v_org order by created_at, id loop
            v_seq := v_seq + 1;
            v_hash := app.audit_link_hash(v_prev, v_seq, v_row);
            update app.audit_logs set seq = v_seq, prev_hash = v_prev, hash = v_hash
             where organization_id = v_org and id = v_row.id;
            v_prev := v_hash;
        end loop;
        insert into app.audit_chain_heads (organization_id, seq, hash) values (v_org, v_seq, v_prev);
    end loop;
end
$backfill$;
alter table app.audit_logs enable always trigger audit_logs_append_only_rows;

alter table app.audit_logs
    alter column seq set not null,
    alter column prev_hash set not null,
    alter column hash set not null,
    add constraint audit_logs_seq_key unique (organization_id, seq),
    add constraint audit_logs_hash_length check (length(hash) = 32 and length(prev_hash) = 32);

create function app.audit_logs_chain() returns trigger
    language plpgsql security definer
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_seq bigint;
    v_prev bytea;
begin
    select h.seq, h.hash into v_seq, v_prev
      from app.audit_chain_heads h where h.organization_id = new.organization_id for update;
    if not found then
        insert into app.audit_chain_heads (organization_id, seq, hash)
        values (new.organization_id, 0, decode(repeat('00', 32), 'hex'))
        on conflict (organization_id) do nothing;
        select h.seq, h.hash into v_seq, v_prev
          from app.audit_chain_heads h where h.organization_id = new.organization_id for update;
    end if;
    new.seq := v_seq + 1;
    new.prev_hash := v_prev;
    new.hash := app.audit_link_hash(v_prev, new.seq, new);
    update app.audit_chain_heads set seq = new.seq, hash = new.hash where organization_id = new.organization_id;
    return new;
end
$$;
-- Named to fire after nothing else: BEFORE triggers run in name order, and the record must be
-- final before it is hashed.
create trigger zz_audit_logs_chain
    before insert on app.audit_logs
    for each row execute function app.audit_logs_chain();
alter table app.audit_logs enable always trigger zz_audit_logs_chain;

revoke all on function app.audit_field(text), app.audit_link_hash(bytea, bigint, app.audit_logs),
    app.audit_logs_chain() from public;
grant execute on function app.audit_field(text), app.audit_link_hash(bytea, bigint, app.audit_logs) to mos_definer;
grant create on schema app to mos_definer;
alter function app.audit_logs_chain() owner to mos_definer;
revoke create on schema app from mos_definer;
