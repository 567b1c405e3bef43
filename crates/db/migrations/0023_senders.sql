-- Migration 23: senders and their DKIM keys (docs/senders.md).
--
-- A sender is who an organization's messages come from: a display name and a from address, an
-- optional reply-to, the physical postal address that CAN-SPAM requires in every commercial
-- message, and the domain its DKIM signatures name. The from address must be that domain or a
-- subdomain of it (DMARC's relaxed alignment), so that a receiver counts the signature for the
-- address the reader sees. The rules are `mos_domain::senders`; the CHECKs here hold them for
-- any writer.
--
-- A DKIM key belongs to one sender and has its own selector, so that a rotated key and the one
-- it replaced are published side by side under two DNS names. The private key is stored only
-- sealed (AES-256-GCM under the server's key, bound to the organization and the key's id, so a
-- sealed key copied onto another row does not open); the public key as its DER
-- SubjectPublicKeyInfo. At most one key per sender is `active` (the partial unique index); a
-- key only moves forward, active to previous to retired (the trigger), and nothing is deleted.
--
-- `organization_id` leads every key: both tables are distributed by it and colocated. The
-- trigger reads nothing but the row it checks, and everything is written as `app_user`.

create type app.dkim_key_state as enum ('active', 'previous', 'retired');

create table app.senders (
    organization_id uuid not null
                    constraint senders_organization_fkey references app.organizations (id) on delete cascade,
    id              uuid not null constraint senders_id_v7 check (app.is_uuid_v7(id)),
    from_name       text not null constraint senders_from_name check (
                        length(from_name) between 1 and 100 and from_name !~ '[\x01-\x1f\x7f<>"]'),
    -- Normalised by `mos_domain::Email`, as contacts' and accounts' addresses are.
    from_address    text not null constraint senders_from_address check (
                        octet_length(from_address) between 3 and 254 and strpos(from_address, '@') > 1),
    reply_to        text constraint senders_reply_to check (
                        octet_length(reply_to) between 3 and 254 and strpos(reply_to, '@') > 1),
    postal_address  text not null constraint senders_postal_address check (
                        length(postal_address) between 1 and 500 and postal_address ~ '[^[:space:]]'
                        and postal_address !~ '[\x01-\x09\x0b-\x1f\x7f]'),
    dkim_domain     text not null constraint senders_dkim_domain check (
                        octet_length(dkim_domain) <= 253
                        and dkim_domain ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    created_at      timestamptz not null,
    updated_at      timestamptz not null,
    primary key (organization_id, id),
    -- The from address's domain is the DKIM domain or ends in `.` and the DKIM domain; the
    -- domain check above keeps `%` and `_` out of it.
    constraint senders_dkim_aligned check (
        right(from_address, length(dkim_domain) + 1) in ('@' || dkim_domain, '.' || dkim_domain))
);

create table app.dkim_keys (
    organization_id uuid not null,
    id              uuid not null constraint dkim_keys_id_v7 check (app.is_uuid_v7(id)),
    sender_id       uuid not null,
    selector        text not null constraint dkim_keys_selector check (
                        octet_length(selector) <= 63
                        and selector ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$'),
    -- RSA-2048 with exponent 65537 as DER SubjectPublicKeyInfo is 294 bytes.
    public_key      bytea not null constraint dkim_keys_public_key check (octet_length(public_key) = 294),
    -- nonce (12) || ciphertext of the PKCS#1 PEM || tag (16).
    sealed_private_key bytea not null constraint dkim_keys_sealed_private_key check (
                        octet_length(sealed_private_key) between 1000 and 4000),
    state           app.dkim_key_state not null,
    created_at      timestamptz not null,
    retired_at      timestamptz,
    primary key (organization_id, id),
    constraint dkim_keys_retired check ((state = 'retired') = (retired_at is not null)),
    -- A selector names one DNS record: never two keys of a sender, even after one is retired,
    -- because resolvers may still hold the old record.
    constraint dkim_keys_selector_key unique (organization_id, sender_id, selector),
    constraint dkim_keys_sender_fkey foreign key (organization_id, sender_id)
        references app.senders (organization_id, id) on delete cascade
);

create unique index dkim_keys_one_active on app.dkim_keys (organization_id, sender_id) where state = 'active';

-- A key moves forward only: active to previous (a rotation), previous to retired (an ADMIN's
-- act). Its material, sender and selector never change; the grants below allow updating only
-- the state and the retirement time, and this holds the order for the owner too.
create function app.dkim_keys_forward() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
begin
    if (new.organization_id, new.id, new.sender_id, new.selector, new.public_key, new.sealed_private_key, new.created_at)
       is distinct from
       (old.organization_id, old.id, old.sender_id, old.selector, old.public_key, old.sealed_private_key, old.created_at) then
        raise exception 'a DKIM key''s material, sender and selector never change, refused by constraint "dkim_keys_fixed"'
            using errcode = '23514', constraint = 'dkim_keys_fixed';
    end if;
    if new.state is distinct from old.state
       and not ((old.state = 'active' and new.state = 'previous') or (old.state = 'previous' and new.state = 'retired')) then
        raise exception 'a DKIM key goes from active to previous to retired, refused by constraint "dkim_keys_forward"'
            using errcode = '23514', constraint = 'dkim_keys_forward';
    end if;
    return new;
end
$$;
create trigger dkim_keys_forward
    before update on app.dkim_keys
    for each row execute function app.dkim_keys_forward();
alter table app.dkim_keys enable always trigger dkim_keys_forward;

alter table app.senders enable row level security;
alter table app.senders force row level security;
alter table app.dkim_keys enable row level security;
alter table app.dkim_keys force row level security;
create policy tenant_isolation on app.senders
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());
create policy tenant_isolation on app.dkim_keys
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());

revoke all on app.senders, app.dkim_keys from public;
-- Nothing is deleted: a campaign names its sender, and a retired key's record explains the
-- signatures it made.
grant select, insert on app.senders, app.dkim_keys to app_user;
grant update (from_name, reply_to, postal_address, updated_at) on app.senders to app_user;
grant update (state, retired_at) on app.dkim_keys to app_user;
revoke all on function app.dkim_keys_forward() from public;
