//! The suppression list, keyed by the address's [`AddressKey`] (HMAC-SHA-256 under a key only
//! the server holds): an entry names neither the address nor the contact, so it outlives the
//! contact's erasure and still matches the same address on a re-import. The ledger's trigger
//! refuses a grant for a contact whose key is here (docs/consent.md).

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::{audit, Result, TenantTx};
use mos_domain::audiences::{AddressKey, AddressKeyer, SuppressionReason};
use mos_domain::events::{ADDRESS_SUPPRESSED, SUPPRESSION};
use mos_domain::{AuditEvent, Email, RequestSource, UserId};

/// Suppresses `address` for `reason` (again for the same reason changes nothing) and records
/// it, naming the entry by its key only. Answers the key.
pub async fn suppress(
    tx: &mut TenantTx,
    keys: &dyn AddressKeyer,
    address: &Email,
    reason: SuppressionReason,
    actor: Option<UserId>,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<AddressKey> {
    let key = keys.key(address);
    // The contact with this address, if any, is locked as `consent::append` locks it, so a
    // grant being appended for it concurrently either commits first or sees this entry.
    sqlx::query("select from app.contacts where organization_id = $1 and address_key = $2 for update")
        .bind(tx.org().as_uuid())
        .bind(key.as_bytes().as_slice())
        .execute(tx.conn())
        .await?;
    sqlx::query(
        "insert into app.suppressions (organization_id, address_key, reason, recorded_by, created_at)
         values ($1, $2, $3::text::app.suppression_reason, $4, $5)
         on conflict (organization_id, address_key, reason) do nothing",
    )
    .bind(tx.org().as_uuid())
    .bind(key.as_bytes().as_slice())
    .bind(reason.as_str())
    .bind(actor.map(|a| a.as_uuid()))
    .bind(now)
    .execute(tx.conn())
    .await?;
    let mut event = AuditEvent::new(ADDRESS_SUPPRESSED, SUPPRESSION)
        .resource_id(key.to_hex())
        .source(source.clone())
        .meta("reason", json!(reason.as_str()));
    if let Some(actor) = actor {
        event = event.actor(actor);
    }
    audit::record(tx, &event).await?;
    Ok(key)
}

/// The reasons `address` is suppressed for, none when it is not.
pub async fn reasons(tx: &mut TenantTx, keys: &dyn AddressKeyer, address: &Email) -> Result<Vec<SuppressionReason>> {
    let reasons: Vec<String> = sqlx::query_scalar(
        "select reason::text from app.suppressions where organization_id = $1 and address_key = $2 order by reason",
    )
    .bind(tx.org().as_uuid())
    .bind(keys.key(address).as_bytes().as_slice())
    .fetch_all(tx.conn())
    .await?;
    reasons.into_iter().map(|r| r.parse().map_err(|_| crate::error::stored("suppressions_reason"))).collect()
}
