-- Migration 26: the sources of what a person does from a message's links (docs/consent.md).
--
-- `unsubscribe`: the one-click unsubscribe of RFC 8058, or the "unsubscribe from everything"
-- button of the preference centre; it records a revocation, and the address's `unsubscribe`
-- suppression beside it. `preference_centre`: a purpose turned on or off on the preference
-- centre the same link opens. Both are the person's own acts, so their events have no
-- `recorded_by`. A grant from the preference centre is live at once, as any grant that is not
-- a pending sign-up is (`audiences::consent::LIVE_UNTIL`), and the ledger's trigger refuses it
-- for a suppressed address as it refuses every such grant: only a confirmed double opt-in lifts
-- a suppression.
--
-- The rule of who records what (migration 12's `consent_events_source`) names the new sources
-- as the person's own: no member, no import. It compares the source as text, because a value
-- added by `add value` cannot be used as a value of the type in the transaction that adds it.
-- Every stored row meets the new rule, as it met the old one, which it only widens.
--
-- Nothing else changes: the token of a link is signed by the server and stored nowhere, and
-- the events, suppressions and audit records go where every other one goes. `add value` may run
-- in the migration's transaction because nothing in it uses the new values as such; Citus propagates
-- it to the workers' copy of the type.

alter type app.consent_source add value 'unsubscribe';
alter type app.consent_source add value 'preference_centre';

alter table app.consent_events drop constraint consent_events_source;
alter table app.consent_events add constraint consent_events_source check (
    case source::text
      when 'import' then import_job is not null and import_row is not null and recorded_by is not null
      when 'signup_form' then import_job is null and import_row is null and recorded_by is null
      when 'unsubscribe' then import_job is null and import_row is null and recorded_by is null
      when 'preference_centre' then import_job is null and import_row is null and recorded_by is null
      else import_job is null and import_row is null and recorded_by is not null
    end);
