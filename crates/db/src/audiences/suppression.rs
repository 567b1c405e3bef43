//! The suppression list, keyed by the address's [`AddressKey`] (HMAC-SHA-256 under a key only
//! the server holds): an entry names neither the address nor the contact, so it outlives the
//! contact's erasure and still matches the same address on a re-import. The ledger's trigger
//! refuses a grant for a contact whose key is here (docs/consent.md).

use chrono::{DateTime, Utc};

/// The condition that the entry `s` of organization `$1` is in force: a manual block always;
/// any other entry until a `confirm` event of the contact with its address key comes after it
/// (the person's own confirmed sign-up; migration 17 states the same rule in the ledger's
/// trigger). Every table is named with `$1`, so that Citus routes the query to one shard.
macro_rules! in_force {
    () => {
        "(s.reason = 'manual'
          or not exists (select 1 from app.contacts c
                           join app.consent_events l on l.organization_id = $1 and l.contact_id = c.id
                          where c.organization_id = $1 and c.address_key = s.address_key
                            and l.kind = 'confirm' and l.created_at > s.created_at))"
    };
}
pub(crate) use in_force;
use serde_json::json;

use crate::{audit, Result, TenantTx};
use mos_domain::audiences::{AddressKey, AddressKeyer, SuppressionReason};
use mos_domain::events::{ADDRESS_SUPPRESSED, SUPPRESSION};
use mos_domain::{AuditEvent, Email, RequestSource, UserId};

/// Suppresses `address` for `reason` (again for the same reason while in force changes nothing;
/// after the person's confirmed sign-up lifted it, it is a new entry) and records it, naming the
/// entry by its key only. Answers the key.
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
    add(tx, &key, reason, actor, now).await?;
    record(tx, &key, reason, actor, source).await?;
    Ok(key)
}

/// Suppresses the address of `key` for `reason` unless an entry for that reason is in force;
/// answers whether it wrote one. The caller records it ([`record`]).
pub async fn add(
    tx: &mut TenantTx,
    key: &AddressKey,
    reason: SuppressionReason,
    actor: Option<UserId>,
    now: DateTime<Utc>,
) -> Result<bool> {
    // The contact with this address, if any, is locked as `consent::append` locks it, so a
    // grant being appended for it concurrently either commits first or sees this entry.
    sqlx::query("select from app.contacts where organization_id = $1 and address_key = $2 for update")
        .bind(tx.org().as_uuid())
        .bind(key.as_bytes().as_slice())
        .execute(tx.conn())
        .await?;
    // Two statements, not an INSERT .. SELECT, which Citus would plan through the coordinator.
    let in_force: bool = sqlx::query_scalar(concat!(
        "select exists (select 1 from app.suppressions s
                             where s.organization_id = $1 and s.address_key = $2
                               and s.reason = $3::text::app.suppression_reason and ",
        in_force!(),
        ")"
    ))
    .bind(tx.org().as_uuid())
    .bind(key.as_bytes().as_slice())
    .bind(reason.as_str())
    .fetch_one(tx.conn())
    .await?;
    if in_force {
        return Ok(false);
    }
    sqlx::query(
        "insert into app.suppressions (organization_id, address_key, reason, recorded_by, created_at)
         values ($1, $2, $3::text::app.suppression_reason, $4, $5)
         on conflict do nothing",
    )
    .bind(tx.org().as_uuid())
    .bind(key.as_bytes().as_slice())
    .bind(reason.as_str())
    .bind(actor.map(|a| a.as_uuid()))
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(true)
}

/// The audit record of a suppression of the address of `key`, naming it by its key only.
pub async fn record(
    tx: &mut TenantTx,
    key: &AddressKey,
    reason: SuppressionReason,
    actor: Option<UserId>,
    source: &RequestSource,
) -> Result<()> {
    let mut event = AuditEvent::new(ADDRESS_SUPPRESSED, SUPPRESSION)
        .resource_id(key.to_hex())
        .source(source.clone())
        .meta("reason", json!(reason.as_str()));
    if let Some(actor) = actor {
        event = event.actor(actor);
    }
    audit::record(tx, &event).await.map(|_| ())
}

/// The reasons `address` is suppressed for now, none when it is not: an entry that the person's
/// own confirmed sign-up came after is lifted, except a manual block (docs/consent.md).
pub async fn reasons(tx: &mut TenantTx, keys: &dyn AddressKeyer, address: &Email) -> Result<Vec<SuppressionReason>> {
    reasons_of(tx, &keys.key(address)).await
}

/// [`reasons`] for the address of `key`.
pub async fn reasons_of(tx: &mut TenantTx, key: &AddressKey) -> Result<Vec<SuppressionReason>> {
    let reasons: Vec<String> = sqlx::query_scalar(concat!(
        "select distinct s.reason::text from app.suppressions s
              where s.organization_id = $1 and s.address_key = $2 and ",
        in_force!(),
        " order by 1"
    ))
    .bind(tx.org().as_uuid())
    .bind(key.as_bytes().as_slice())
    .fetch_all(tx.conn())
    .await?;
    reasons.into_iter().map(|r| r.parse().map_err(|_| crate::error::stored("suppressions_reason"))).collect()
}
