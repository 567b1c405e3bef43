-- Content and its compliance review.
--
-- An item is a row that moves through the review; what it says lives in its versions, which
-- are only ever inserted (app_user has no UPDATE or DELETE on them), each with the SHA-256 of
-- its canonical text. Every step of the review is a row of `content_events` that names the
-- version and its hash; foreign keys make the hash and the author the version's own, so an
-- approval names exactly the text it approves and a CHECK keeps a version's author from
-- approving it, whatever the application does.
--
-- Every table carries `organization_id` first in every key and foreign key, so that Citus
-- keeps an item, its versions and its events on one shard. The guard on items is a row
-- trigger that reads nothing but the row, which is safe on shards.

alter table app.organizations add column required_approvals integer not null default 1
    constraint organizations_required_approvals check (required_approvals between 1 and 5);

create type app.content_state as enum
    ('draft', 'in_review', 'changes_requested', 'approved', 'published', 'archived');
create type app.content_channel as enum ('email', 'web_page', 'social_post', 'print', 'other');
create type app.content_event_kind as enum
    ('created', 'edited', 'submitted', 'withdrawn', 'commented', 'changes_requested', 'approved',
     'published', 'archived');

create table app.content_items (
    organization_id   uuid not null
                      constraint content_items_organization_fkey references app.organizations (id) on delete cascade,
    id                uuid not null constraint content_items_id_v7 check (app.is_uuid_v7(id)),
    created_by        uuid not null,
    created_at        timestamptz not null,
    updated_at        timestamptz not null,
    state             app.content_state not null,
    -- Goes up by one with every change, so that it can serve as the item's ETag.
    revision          integer not null,
    current_version   integer not null constraint content_items_current_version check (current_version >= 1),
    -- The version that reached approval, while the item stands on it.
    approved_version  integer,
    published_version integer,
    published_at      timestamptz,
    primary key (organization_id, id),
    constraint content_items_approved check (
        (state in ('approved', 'published') and approved_version = current_version)
        or (state not in ('approved', 'published') and (state = 'archived' or approved_version is null))),
    constraint content_items_published check (
        (published_version is null) = (published_at is null)
        and (published_version is null or published_version = approved_version)
        and (state <> 'published' or published_version is not null))
);
create index content_items_state_idx on app.content_items (organization_id, state, id desc);
create index content_items_creator_idx on app.content_items (organization_id, created_by, id desc);

create table app.content_versions (
    organization_id uuid not null,
    item_id         uuid not null,
    number          integer not null constraint content_versions_number check (number >= 1),
    author_id       uuid not null,
    created_at      timestamptz not null,
    title           text not null constraint content_versions_title check (length(title) between 1 and 800),
    channel         app.content_channel not null,
    audience        text not null constraint content_versions_audience check (length(audience) <= 2000),
    body            text not null constraint content_versions_body check (octet_length(body) <= 100000),
    tags            text[] not null constraint content_versions_tags check (cardinality(tags) <= 20),
    sha256          bytea not null constraint content_versions_sha256_length check (length(sha256) = 32),
    primary key (organization_id, item_id, number),
    constraint content_versions_hash_key unique (organization_id, item_id, number, sha256),
    constraint content_versions_author_key unique (organization_id, item_id, number, author_id),
    constraint content_versions_item_fkey foreign key (organization_id, item_id)
        references app.content_items (organization_id, id) on delete cascade
);
create index content_versions_tags_idx on app.content_versions using gin (tags);
-- The list's word search; the expression is the one the query filters on.
create index content_versions_words_idx on app.content_versions
    using gin (to_tsvector('simple', title || ' ' || body));

create table app.content_events (
    organization_id uuid not null,
    item_id         uuid not null,
    id              uuid not null constraint content_events_id_v7 check (app.is_uuid_v7(id)),
    kind            app.content_event_kind not null,
    version         integer not null,
    sha256          bytea not null,
    version_author  uuid not null,
    actor_id        uuid not null,
    from_state      app.content_state,
    to_state        app.content_state not null,
    note            text constraint content_events_note check (length(note) between 1 and 10000),
    created_at      timestamptz not null,
    primary key (organization_id, item_id, id),
    constraint content_events_version_hash_fkey foreign key (organization_id, item_id, version, sha256)
        references app.content_versions (organization_id, item_id, number, sha256) on delete cascade,
    constraint content_events_version_author_fkey foreign key (organization_id, item_id, version, version_author)
        references app.content_versions (organization_id, item_id, number, author_id) on delete cascade,
    -- Separation of duties: whoever wrote a version does not approve it.
    constraint content_events_separation_of_duties check (kind <> 'approved' or actor_id <> version_author)
);
-- One approval per reviewer and version.
create unique index content_events_one_approval on app.content_events (organization_id, item_id, version, actor_id)
    where kind = 'approved';

-- The review's transition table (mos_domain::content::State::edges, a test keeps them equal),
-- and the rest of what an item may not do: change its identity, skip a revision, be published
-- twice, start anywhere but as a fresh draft.
create function app.content_items_guard() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
begin
    if tg_op = 'INSERT' then
        if new.state <> 'draft' or new.revision <> 1 or new.current_version <> 1
           or new.approved_version is not null or new.published_version is not null then
            raise exception 'a content item starts as a draft at its first version and revision'
                using errcode = '23514', constraint = 'content_items_start';
        end if;
        return new;
    end if;
    if (new.organization_id, new.id, new.created_by, new.created_at)
       is distinct from (old.organization_id, old.id, old.created_by, old.created_at) then
        raise exception 'a content item keeps its identity'
            using errcode = '23514', constraint = 'content_items_identity';
    end if;
    if new.revision <> old.revision + 1 or new.current_version not in (old.current_version, old.current_version + 1) then
        raise exception 'a change to a content item moves its revision on by one and its version by at most one'
            using errcode = '23514', constraint = 'content_items_revision';
    end if;
    if old.published_version is not null and new.published_version is distinct from old.published_version then
        raise exception 'a published version stays published'
            using errcode = '23514', constraint = 'content_items_published_once';
    end if;
    if new.state <> old.state and (old.state::text, new.state::text) not in (
        ('draft', 'in_review'), ('draft', 'archived'),
        ('in_review', 'draft'), ('in_review', 'changes_requested'), ('in_review', 'approved'),
        ('changes_requested', 'in_review'), ('changes_requested', 'archived'),
        ('approved', 'draft'), ('approved', 'published'), ('approved', 'archived'),
        ('published', 'archived')) then
        raise exception 'a content item cannot go from % to %', old.state, new.state
            using errcode = '23514', constraint = 'content_items_transition';
    end if;
    if old.state = 'archived' then
        raise exception 'an archived content item does not change'
            using errcode = '23514', constraint = 'content_items_transition';
    end if;
    return new;
end
$$;
create trigger content_items_guard before insert or update on app.content_items
    for each row execute function app.content_items_guard();

alter table app.content_items enable row level security;
alter table app.content_items force row level security;
create policy tenant_isolation on app.content_items
    using (organization_id = app.current_tenant_id())
    with check (organization_id = app.current_tenant_id());
alter table app.content_versions enable row level security;
alter table app.content_versions force row level security;
create policy tenant_isolation on app.content_versions
    using (organization_id = app.current_tenant_id())
    with check (organization_id = app.current_tenant_id());
alter table app.content_events enable row level security;
alter table app.content_events force row level security;
create policy tenant_isolation on app.content_events
    using (organization_id = app.current_tenant_id())
    with check (organization_id = app.current_tenant_id());

revoke all on app.content_items, app.content_versions, app.content_events from public;
grant select, insert, update on app.content_items to app_user;
-- Versions and review events are history: inserted, never changed.
grant select, insert on app.content_versions, app.content_events to app_user;
revoke all on function app.content_items_guard() from public;
