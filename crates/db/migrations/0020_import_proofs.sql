-- A consent receipt proves an imported grant by its place in its import batch's Merkle tree
-- (docs/consent.md, "Imported consent"), which it rebuilds from the batch's events: the events
-- of one import job in a range of rows, read in row order from this index.
create index consent_events_import_idx on app.consent_events (organization_id, import_job, import_row)
    where import_job is not null;
