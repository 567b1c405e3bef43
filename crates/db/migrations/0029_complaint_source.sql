-- Migration 29: a complaint is a consent event (docs/sending.md, "Delivery feedback").
--
-- `complaint`: the person marked a campaign's message as spam, and their mailbox provider
-- reported it (an abuse report, RFC 5965). It records a revocation of the campaign's purpose,
-- beside the address's `complaint` suppression, as a one-click unsubscribe does. It is the
-- person's own act, through their provider, so its events have no `recorded_by`; they name the
-- campaign whose message was reported. A hard bounce records no consent event: it says the
-- address does not take mail, not that the person withdrew anything, and the ledger is
-- evidence of what people agreed to.
--
-- As migration 26 did: the rule of who records what compares the source as text, because a
-- value added by `add value` cannot be used as a value of the type in the transaction that adds
-- it; every stored row meets the new rule, which only widens the old one.

alter type app.consent_source add value 'complaint';

alter table app.consent_events drop constraint consent_events_source;
alter table app.consent_events add constraint consent_events_source check (
    case source::text
      when 'import' then import_job is not null and import_row is not null and recorded_by is not null
      when 'signup_form' then import_job is null and import_row is null and recorded_by is null
      when 'unsubscribe' then import_job is null and import_row is null and recorded_by is null
      when 'preference_centre' then import_job is null and import_row is null and recorded_by is null
      when 'complaint' then import_job is null and import_row is null and recorded_by is null
      else import_job is null and import_row is null and recorded_by is not null
    end);
