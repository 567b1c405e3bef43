-- Saved segments and their versions (docs/segments.md). A version holds a definition in its
-- canonical form (mos_domain::segments) and the SHA-256 of that text, which a CHECK recomputes:
-- the hash names exactly the stored definition, so a campaign that names a version by its hash
-- names what it was sent to. Versions are only ever inserted.
--
-- `organization_id` leads every key: both tables are distributed by it and colocated, so a
-- segment and its versions live on one shard.

create table app.segments (
    organization_id uuid not null
                    constraint segments_organization_fkey references app.organizations (id) on delete restrict,
    id              uuid not null constraint segments_id_v7 check (app.is_uuid_v7(id)),
    name            text not null constraint segments_name check (length(name) between 1 and 200),
    created_by      uuid not null,
    created_at      timestamptz not null,
    primary key (organization_id, id),
    constraint segments_name_key unique (organization_id, name)
);

create table app.segment_versions (
    organization_id uuid not null,
    segment_id      uuid not null,
    version         integer not null constraint segment_versions_version check (version >= 1),
    -- Text, not jsonb: the hash is over these exact bytes, which jsonb would not keep.
    definition      text not null constraint segment_versions_definition check (
                        octet_length(definition) between 2 and 65536 and jsonb_typeof(definition::jsonb) = 'object'),
    sha256          bytea not null,
    created_by      uuid not null,
    created_at      timestamptz not null,
    primary key (organization_id, segment_id, version),
    constraint segment_versions_sha256 check (sha256 = sha256(convert_to(definition, 'UTF8'))),
    constraint segment_versions_segment_fkey foreign key (organization_id, segment_id)
        references app.segments (organization_id, id)
);

-- Versions are append-only for everyone, like the audit records (migration 1): a statement
-- trigger that fires even when no row matches, ENABLE ALWAYS, and the owner's own rights taken
-- away. It reads no other table, which is safe on Citus shards.
create function app.segment_versions_append_only() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
begin
    raise exception 'segment_versions is append-only: % is not allowed', tg_op
        using errcode = 'insufficient_privilege',
              hint = 'save a new version instead';
end
$$;
create trigger segment_versions_append_only_rows
    before update or delete on app.segment_versions
    for each statement execute function app.segment_versions_append_only();
create trigger segment_versions_append_only_truncate
    before truncate on app.segment_versions
    for each statement execute function app.segment_versions_append_only();
alter table app.segment_versions enable always trigger segment_versions_append_only_rows;
alter table app.segment_versions enable always trigger segment_versions_append_only_truncate;
revoke update, delete, truncate on app.segment_versions from mos_owner;

alter table app.segments enable row level security;
alter table app.segments force row level security;
alter table app.segment_versions enable row level security;
alter table app.segment_versions force row level security;
create policy tenant_isolation on app.segments
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
create policy tenant_isolation on app.segment_versions
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());

revoke all on app.segments, app.segment_versions from public;
-- A segment's name is fixed and nothing is deleted: a change is a new version.
grant select, insert on app.segments, app.segment_versions to app_user;
revoke all on function app.segment_versions_append_only() from public;
