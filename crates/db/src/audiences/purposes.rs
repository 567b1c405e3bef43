//! Purposes, and the notice versions shown when consent for one is asked.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::{audit, Result, TenantTx};
use mos_domain::audiences::NoticeText;
use mos_domain::content::ContentHash;
use mos_domain::events::{NOTICE, NOTICE_PUBLISHED, PURPOSE, PURPOSE_CREATED};
use mos_domain::{AuditEvent, PurposeId, RequestSource, UserId};

/// Declares a purpose on the email channel; a name the organization already uses is a
/// conflict (`purposes_name_key`).
pub async fn create(
    tx: &mut TenantTx,
    name: &str,
    needs_hipaa_authorization: bool,
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<PurposeId> {
    let id = PurposeId::new();
    sqlx::query(
        "insert into app.purposes (organization_id, id, name, channel, needs_hipaa_authorization, created_at)
         values ($1, $2, $3, 'email', $4, $5)",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(name)
    .bind(needs_hipaa_authorization)
    .bind(now)
    .execute(tx.conn())
    .await?;
    let event = AuditEvent::new(PURPOSE_CREATED, PURPOSE)
        .actor(actor)
        .resource_id(id)
        .source(source.clone())
        .meta("name", json!(name))
        .meta("needs_hipaa_authorization", json!(needs_hipaa_authorization));
    audit::record(tx, &event).await?;
    Ok(id)
}

/// Publishes a notice version for a purpose and returns its hash. Publishing the same text
/// again changes nothing and answers the same hash: a version is identified by its text.
pub async fn publish_notice(
    tx: &mut TenantTx,
    purpose: PurposeId,
    text: &NoticeText,
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<ContentHash> {
    let hash = text.hash();
    let inserted = sqlx::query(
        "insert into app.notices (organization_id, purpose_id, sha256, body, created_by, created_at)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (organization_id, purpose_id, sha256) do nothing",
    )
    .bind(tx.org().as_uuid())
    .bind(purpose.as_uuid())
    .bind(hash.as_bytes())
    .bind(text.canonical())
    .bind(actor.as_uuid())
    .bind(now)
    .execute(tx.conn())
    .await?;
    if inserted.rows_affected() == 1 {
        let event = AuditEvent::new(NOTICE_PUBLISHED, NOTICE)
            .actor(actor)
            .resource_id(purpose)
            .source(source.clone())
            .meta("sha256", json!(hash.to_string()));
        audit::record(tx, &event).await?;
    }
    Ok(hash)
}

/// A notice version's canonical text, by its hash.
pub async fn notice(tx: &mut TenantTx, purpose: PurposeId, hash: &ContentHash) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "select body from app.notices where organization_id = $1 and purpose_id = $2 and sha256 = $3",
    )
    .bind(tx.org().as_uuid())
    .bind(purpose.as_uuid())
    .bind(hash.as_bytes())
    .fetch_optional(tx.conn())
    .await?)
}
