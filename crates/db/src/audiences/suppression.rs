//! The suppression list, keyed by HMAC-SHA-256 of the normalised address under the
//! organization's own key, which only the schema's definer functions read: an entry names
//! neither the address nor the contact, so it outlives the contact's erasure and still matches
//! the same address on a re-import.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::{audit, Result, TenantTx};
use mos_domain::audiences::SuppressionReason;
use mos_domain::events::{ADDRESS_SUPPRESSED, SUPPRESSION};
use mos_domain::{AuditEvent, Email, RequestSource, UserId};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Suppresses `address` for `reason` (again for the same reason changes nothing) and records
/// it, naming the entry by its key only. Answers the key.
pub async fn suppress(
    tx: &mut TenantTx,
    address: &Email,
    reason: SuppressionReason,
    actor: Option<UserId>,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Vec<u8>> {
    let key: Vec<u8> = sqlx::query_scalar("select app.suppress($1, $2, $3::text::app.suppression_reason, $4, $5)")
        .bind(tx.org().as_uuid())
        .bind(address.as_str())
        .bind(reason.as_str())
        .bind(actor.map(|a| a.as_uuid()))
        .bind(now)
        .fetch_one(tx.conn())
        .await?;
    let mut event = AuditEvent::new(ADDRESS_SUPPRESSED, SUPPRESSION)
        .resource_id(hex(&key))
        .source(source.clone())
        .meta("reason", json!(reason.as_str()));
    if let Some(actor) = actor {
        event = event.actor(actor);
    }
    audit::record(tx, &event).await?;
    Ok(key)
}

/// The reasons `address` is suppressed for, none when it is not.
pub async fn reasons(tx: &mut TenantTx, address: &Email) -> Result<Vec<SuppressionReason>> {
    let reasons: Vec<String> = sqlx::query_scalar(
        "select reason::text from app.suppressions
          where organization_id = $1 and address_key = app.address_key($1, $2) order by reason",
    )
    .bind(tx.org().as_uuid())
    .bind(address.as_str())
    .fetch_all(tx.conn())
    .await?;
    reasons.into_iter().map(|r| r.parse().map_err(|_| crate::error::stored("suppressions_reason"))).collect()
}
