-- The rows of an import's file after its header, counted while it is uploaded: the total of
-- its job's progress. Null for a file uploaded before they were counted.
alter table app.contact_imports add column rows bigint constraint contact_imports_rows check (rows >= 0);
-- Set with the file's hash when the upload is sealed, in the same statement.
grant update (rows) on app.contact_imports to app_user;
