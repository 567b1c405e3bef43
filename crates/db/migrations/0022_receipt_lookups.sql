-- A consent receipt finds the audit records of a contact's consent events by the events' ids.
-- Without this index that lookup reads every record of the organization (through
-- audit_logs_org_created_idx) and filters them.
create index audit_logs_resource_idx on app.audit_logs (organization_id, resource_type, resource_id);
