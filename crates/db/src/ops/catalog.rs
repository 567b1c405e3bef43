//! Facts about the catalog that the migrator, the Citus tooling and the check all need: what a
//! finding looks like, which tables are append-only, which functions must exist, and whether
//! the server is a Citus coordinator. It depends on no other operator module.

use std::fmt;

use sqlx::PgConnection;

use crate::ops::Result;

/// One finding, with a stable code that scripts and tests can match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: &'static str,
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

/// The append-only tables; each has `<table>_append_only_rows` and `<table>_append_only_truncate`.
pub const AUDIT_TABLES: &[&str] = &[
    "audit_logs",
    "platform_audit_logs",
    "audit_blocks",
    "consent_events",
    "suppressions",
    "segment_versions",
    "delivery_feedback",
];

/// The triggers that enforce a rule (migrations 12, 17, 23 to 25), as (table, trigger): one
/// missing or not ENABLE ALWAYS switches its rule off (the consent ledger would take a grant for
/// a suppressed address), so the check reports it like a missing audit guard.
pub const RULE_TRIGGERS: &[(&str, &str)] = &[
    // Migration 24: a campaign's definition is its reviewed body; the send ledger's rules.
    ("campaign_versions", "campaign_versions_check"),
    ("campaign_runs", "campaign_runs_forward"),
    ("campaign_messages", "campaign_messages_forward"),
    ("campaign_messages", "campaign_messages_added"),
    ("campaign_messages", "campaign_messages_changed"),
    // Migration 27: the ledger counts itself by outcome, and only it writes the counts.
    ("campaign_messages", "campaign_messages_tallied"),
    ("campaign_messages", "campaign_messages_retallied"),
    ("campaign_tallies", "campaign_tallies_derived"),
    // Migration 31: clicks count themselves per link, and only they write the counts (per
    // statement since migration 37, which also writes their webhook events and hours).
    ("campaign_clicks", "campaign_clicks_counted"),
    ("campaign_clicks", "campaign_clicks_recounted"),
    ("campaign_link_tallies", "campaign_link_tallies_derived"),
    // Migration 32: the organization's sending counted by day and month, only by the ledger and
    // the feedback; no run sends while its breaker is halted.
    ("campaign_messages", "campaign_messages_counted"),
    ("delivery_feedback", "delivery_feedback_counted"),
    ("sending_counts", "sending_counts_derived"),
    ("campaign_runs", "campaign_runs_halted"),
    // Migration 34: the changes that webhooks report write their events to the outbox; one
    // switched off would drop events silently.
    ("campaign_messages", "campaign_messages_webhooks"),
    ("delivery_feedback", "delivery_feedback_webhooks"),
    ("consent_events", "consent_events_webhooks"),
    // Migration 35: each campaign's activity per hour, kept only by the changes it counts.
    ("campaign_messages", "campaign_messages_activity"),
    ("delivery_feedback", "delivery_feedback_activity"),
    ("consent_events", "consent_events_activity"),
    ("campaign_activity", "campaign_activity_derived"),
    ("consent_events", "consent_events_rules"),
    // Migration 25: the ledger keeps each contact's current state beside it, and only it writes there.
    ("consent_events", "consent_events_state"),
    ("consent_state", "consent_state_derived"),
    ("consent_evidence", "consent_evidence_committed"),
    ("consent_evidence", "consent_evidence_erased_only"),
    ("contact_attribute_values", "contact_attribute_values_erased_added"),
    ("contact_attribute_values", "contact_attribute_values_erased_changed"),
    // Migration 23: a DKIM key moves only forward and its material never changes.
    ("dkim_keys", "dkim_keys_forward"),
];

/// Every function of schema `app` that the migrations create, as `regprocedure` spells it. A
/// dropped one (Citus once dropped one while distributing a table) is reported; a test keeps
/// this list equal to what a migrated database has.
pub const EXPECTED_FUNCTIONS: &[&str] = &[
    "append_only()",
    "audit_append_block(uuid,bigint,bytea,uuid[],bytea[],timestamp with time zone)",
    "audit_head_seq()",
    "audit_lock_head(uuid)",
    "audit_logs_append_only()",
    "audit_recent_tenants(timestamp with time zone)",
    "audit_unsealed_since(uuid,timestamp with time zone)",
    "campaign_activity_add(uuid,uuid[],timestamp with time zone[],text[],bigint[])",
    "campaign_activity_follow_consent()",
    "campaign_activity_follow_feedback()",
    "campaign_activity_follow_ledger()",
    "campaign_activity_guard()",
    "campaign_clicks_follow()",
    "campaign_link_tallies_guard()",
    "campaign_messages_check()",
    "campaign_messages_forward()",
    "campaign_runs_forward()",
    "campaign_runs_halted()",
    "campaign_tallies_follow()",
    "campaign_tallies_guard()",
    "campaign_versions_check()",
    "consent_events_check()",
    "consent_evidence_check()",
    "consent_evidence_erasable()",
    "consent_state_follow()",
    "consent_state_guard()",
    "contact_attribute_values_check()",
    "contacts_guard()",
    "content_items_guard()",
    "current_tenant_id()",
    "current_user_id()",
    "dkim_keys_forward()",
    "feedback_credential(bytea)",
    "find_login(text)",
    "hard_refusal(text)",
    "invitation_for_token(bytea,timestamp with time zone)",
    "job_claim(uuid,text[],timestamp with time zone,interval)",
    "is_uuid_v7(uuid)",
    "login_challenge_attempt(bytea,timestamp with time zone,integer)",
    "member_addresses(uuid[])",
    "member_directory_page(timestamp with time zone,uuid,integer)",
    "month_of(date)",
    "my_organizations()",
    "my_organizations_page(text,integer)",
    "org_access(text)",
    "passkey_owner(bytea)",
    "rate_hit(text,timestamp with time zone,integer,interval)",
    "redeem_email_verification(bytea,timestamp with time zone)",
    "redeem_password_reset(bytea,timestamp with time zone)",
    "request_context(bytea,text,timestamp with time zone,interval,interval)",
    "segment_versions_append_only()",
    "sending_counts_add(uuid,date[],bigint[],bigint[],bigint[],bigint[],bigint[],bigint[])",
    "sending_counts_follow_feedback()",
    "sending_counts_follow_ledger()",
    "sending_counts_guard()",
    "session_touch(bytea,timestamp with time zone,interval)",
    "signup_confirmations_guard()",
    "signup_organization(text)",
    "throttle_clear(text)",
    "throttle_forgive(text,integer)",
    "throttle_hit(text,timestamp with time zone,integer,integer,integer,interval)",
    "throttle_lock(integer,timestamp with time zone,integer,integer,integer)",
    "webauthn_begin(bytea,text,uuid,jsonb,timestamp with time zone,timestamp with time zone)",
    "webauthn_take(bytea,text,timestamp with time zone)",
    "webhook_enqueue(uuid,text,text[],uuid[],jsonb[],timestamp with time zone[])",
    "webhook_follow_consent()",
    "webhook_follow_feedback()",
    "webhook_follow_ledger()",
    "webhook_wanted(uuid,text[])",
];

/// The [`EXPECTED_FUNCTIONS`] that the database lacks.
pub async fn missing_functions(conn: &mut PgConnection) -> Result<Vec<String>> {
    let functions: Vec<String> = EXPECTED_FUNCTIONS.iter().map(|s| s.to_string()).collect();
    Ok(sqlx::query_scalar(
        "select f.name from unnest($1::text[]) f(name) where to_regprocedure('app.' || f.name) is null",
    )
    .bind(&functions)
    .fetch_all(&mut *conn)
    .await?)
}

/// Whether this database has Citus (a coordinator, once nodes are added).
pub async fn is_coordinator(conn: &mut PgConnection) -> Result<bool> {
    Ok(sqlx::query_scalar("select exists (select from pg_extension where extname = 'citus')")
        .fetch_one(&mut *conn)
        .await?)
}
