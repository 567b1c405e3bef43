-- Segment counts and the per-message consent check at the speed docs/performance.md states.
--
-- A segment's consent condition is the current state of each contact for the purpose: the
-- latest event of each (contact, purpose) in the ledger. Read from an index whose key is
-- (organization_id, purpose_id, contact_id, seq desc), the latest event of every contact is the
-- first entry of each contact's run, so a `distinct on (contact_id)` walks the index once in
-- order, with no sort and no anti-join of the ledger against itself. The columns the live
-- test reads (kind, source, expires_at) are included, so the walk is index-only and touches no
-- heap page. It replaces migration 12's index of the same key, which it makes redundant.
create index consent_events_current_idx on app.consent_events (organization_id, purpose_id, contact_id, seq desc)
    include (kind, source, expires_at);
drop index app.consent_events_purpose_idx;

-- An attribute condition is a range of one kind's column; with the contact's id included, the
-- range answers which contacts match without visiting the table (index-only). Each replaces
-- migration 12's partial index of the same key.
create index contact_attribute_values_text_cover_idx on app.contact_attribute_values (organization_id, attribute_id, text_value)
    include (contact_id) where text_value is not null;
create index contact_attribute_values_number_cover_idx on app.contact_attribute_values (organization_id, attribute_id, number_value)
    include (contact_id) where number_value is not null;
create index contact_attribute_values_date_cover_idx on app.contact_attribute_values (organization_id, attribute_id, date_value)
    include (contact_id) where date_value is not null;
create index contact_attribute_values_boolean_cover_idx on app.contact_attribute_values (organization_id, attribute_id, boolean_value)
    include (contact_id) where boolean_value is not null;
create index contact_attribute_values_choice_cover_idx on app.contact_attribute_values (organization_id, attribute_id, choice_value)
    include (contact_id) where choice_value is not null;
drop index app.contact_attribute_values_text_idx;
drop index app.contact_attribute_values_number_idx;
drop index app.contact_attribute_values_date_idx;
drop index app.contact_attribute_values_boolean_idx;
drop index app.contact_attribute_values_choice_idx;
