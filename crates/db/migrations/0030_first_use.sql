-- Migration 30: the first time each approved content version was sent, from the send ledger
-- (docs/campaigns.md, "First use"): the date of first dissemination that Form FDA 2253 asks
-- for, read from what was handed over rather than typed in. Each campaign's sent messages in the
-- order they were sent, so that the first of a campaign is one step of an index.

create index campaign_messages_sent_idx on app.campaign_messages (organization_id, campaign_id, version, sent_at)
    where state = 'sent';
