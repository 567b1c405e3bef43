-- What came back about a sent message (docs/sending.md, "Delivery feedback"): a bounce or a
-- delay reported by a delivery status notification, a delivery report, or a recipient's
-- complaint. One row per message and kind, so the same report received twice counts once; the
-- foreign key ties each row to a message of the send ledger, and the ingestion accepts only a
-- message that was handed over. Append-only, like the consent ledger and the suppressions.
--
-- Nothing personal is kept: the enhanced status code (RFC 3463) of a DSN, or the complaint's
-- feedback type (RFC 5965), not the remote server's words, which often name the address.

create type app.feedback_kind as enum ('hard_bounce', 'soft_bounce', 'delayed', 'delivered', 'complaint');

create table app.delivery_feedback (
    organization_id uuid not null,
    campaign_id     uuid not null,
    contact_id      uuid not null,
    kind            app.feedback_kind not null,
    -- `5.1.1` for a DSN's recipient, `abuse` for a complaint.
    code            text not null constraint delivery_feedback_code
        check (code ~ '^[245]\.[0-9]{1,3}\.[0-9]{1,3}$'
               or (kind = 'complaint' and code in ('abuse', 'fraud', 'virus', 'auth-failure', 'not-spam', 'other'))),
    received_at     timestamptz not null,
    primary key (organization_id, campaign_id, contact_id, kind),
    constraint delivery_feedback_message_fkey foreign key (organization_id, campaign_id, contact_id)
        references app.campaign_messages (organization_id, campaign_id, contact_id)
);

create trigger delivery_feedback_append_only_rows
    before update or delete on app.delivery_feedback
    for each statement execute function app.append_only();
create trigger delivery_feedback_append_only_truncate
    before truncate on app.delivery_feedback
    for each statement execute function app.append_only();
alter table app.delivery_feedback enable always trigger delivery_feedback_append_only_rows;
alter table app.delivery_feedback enable always trigger delivery_feedback_append_only_truncate;
revoke update, delete, truncate on app.delivery_feedback from mos_owner;

alter table app.delivery_feedback enable row level security;
alter table app.delivery_feedback force row level security;
create policy tenant_isolation on app.delivery_feedback
    using (organization_id = app.current_tenant_id()) with check (organization_id = app.current_tenant_id());

revoke all on app.delivery_feedback from public;
grant select, insert on app.delivery_feedback to app_user;
