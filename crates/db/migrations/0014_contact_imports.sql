-- Imports of contacts from CSV: the uploaded file, kept in PostgreSQL in chunks so that an
-- import resumed after a restart reads the same bytes; the mapping of its columns and the
-- provenance of the consent it records; and the problems found in its rows. The import runs
-- as a job (migration 13); its progress is the job's, committed with each batch.
--
-- All three tables are tenant data like the contacts they feed, distributed by
-- `organization_id` and colocated with them, so a batch's writes stay on one shard.

create table app.contact_imports (
    organization_id uuid not null
                    constraint contact_imports_organization_fkey references app.organizations (id) on delete cascade,
    id              uuid not null constraint contact_imports_id_v7 check (app.is_uuid_v7(id)),
    file_name       text not null constraint contact_imports_file_name check (length(file_name) between 1 and 255),
    created_by      uuid not null,
    created_at      timestamptz not null,
    -- Set once the whole file is stored: its SHA-256 and size.
    file_sha256     bytea constraint contact_imports_file_sha256 check (length(file_sha256) = 32),
    size_bytes      bigint constraint contact_imports_size check (size_bytes >= 0),
    chunks          integer constraint contact_imports_chunks check (chunks >= 0),
    -- The column each header maps to, and where the list came from.
    mapping         jsonb,
    provenance      jsonb,
    -- The job that runs it, once started.
    job_id          uuid,
    imported        bigint not null default 0 constraint contact_imports_imported check (imported >= 0),
    existing        bigint not null default 0 constraint contact_imports_existing check (existing >= 0),
    suppressed      bigint not null default 0 constraint contact_imports_suppressed check (suppressed >= 0),
    invalid         bigint not null default 0 constraint contact_imports_invalid check (invalid >= 0),
    finished_at     timestamptz,
    primary key (organization_id, id),
    constraint contact_imports_sealed check ((file_sha256 is null) = (size_bytes is null) and (file_sha256 is null) = (chunks is null)),
    constraint contact_imports_started check (job_id is null or (file_sha256 is not null and mapping is not null))
);

create table app.contact_import_chunks (
    organization_id uuid not null,
    import_id       uuid not null,
    seq             integer not null constraint contact_import_chunks_seq check (seq >= 0),
    data            bytea not null constraint contact_import_chunks_data check (length(data) between 1 and 1048576),
    primary key (organization_id, import_id, seq),
    constraint contact_import_chunks_import_fkey foreign key (organization_id, import_id)
        references app.contact_imports (organization_id, id) on delete cascade
);

create table app.contact_import_problems (
    organization_id uuid not null,
    import_id       uuid not null,
    -- The row as a spreadsheet numbers it: the header is row 1.
    row_number      bigint not null constraint contact_import_problems_row check (row_number >= 2),
    column_name     text not null constraint contact_import_problems_column check (length(column_name) <= 200),
    reason          text not null constraint contact_import_problems_reason check (length(reason) between 1 and 200),
    primary key (organization_id, import_id, row_number, column_name),
    constraint contact_import_problems_import_fkey foreign key (organization_id, import_id)
        references app.contact_imports (organization_id, id) on delete cascade
);

alter table app.contact_imports enable row level security;
alter table app.contact_imports force row level security;
create policy tenant_isolation on app.contact_imports
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
alter table app.contact_import_chunks enable row level security;
alter table app.contact_import_chunks force row level security;
create policy tenant_isolation on app.contact_import_chunks
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
alter table app.contact_import_problems enable row level security;
alter table app.contact_import_problems force row level security;
create policy tenant_isolation on app.contact_import_problems
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());

revoke all on app.contact_imports, app.contact_import_chunks, app.contact_import_problems from public;
grant select, insert on app.contact_imports, app.contact_import_chunks, app.contact_import_problems to app_user;
grant update (file_sha256, size_bytes, chunks, mapping, provenance, job_id, imported, existing, suppressed, invalid,
              finished_at) on app.contact_imports to app_user;
