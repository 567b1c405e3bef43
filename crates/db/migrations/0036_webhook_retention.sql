-- Migration 36: events delivered or given up leave the webhook outbox once they are older than
-- the server's retention (`MOS_WEBHOOK_KEEP_DAYS`, 30 days by default; docs/webhooks.md), so
-- that the outbox holds what is pending and the recent log an endpoint's page shows, not every
-- event ever sent. The organization's delivery job deletes them, as `app_user`, a batch at a
-- time, found by the index below. An event's id is derived from the change it reports, and no
-- change reports twice, so a deleted event is never written again.

create index webhook_outbox_finished on app.webhook_outbox (organization_id, finished_at) where state <> 'pending';
grant delete on app.webhook_outbox to app_user;
