//! The audit writer. A record describing a change is written in the same [`TenantTx`] as the
//! change, so both commit or neither does; a denied or failed attempt, whose own transaction
//! is rolled back, is recorded in a transaction of its own with [`record_outcome`].

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::ipnetwork::IpNetwork;
use sqlx::{types::Json, Row};
use uuid::Uuid;

use crate::{AppPool, Result, TenantTx};
use mos_domain::{AuditEvent, OrgId, Outcome, UserId};

/// An audit record as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub organization_id: Uuid,
    pub id: Uuid,
    pub actor: Option<Uuid>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub outcome: String,
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub changes: Value,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
}

/// Appends `event` to the tenant's audit log inside `tx`.
pub async fn record(tx: &mut TenantTx, event: &AuditEvent) -> Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into app.audit_logs
           (organization_id, id, actor_user_id, action, resource_type, resource_id, outcome,
            ip, user_agent, request_id, changes, metadata)
         values ($1, $2, $3, $4, $5, $6, $7::app.audit_outcome, $8, $9, $10, $11, $12)",
    )
    .bind(tx.org().as_uuid())
    .bind(id)
    .bind(event.actor.map(|u| u.as_uuid()))
    .bind(event.action.as_str())
    .bind(event.resource_type.as_str())
    .bind(event.resource_id.as_deref())
    .bind(event.outcome.as_str())
    .bind(event.source.ip.map(IpNetwork::from))
    .bind(event.source.user_agent.as_deref())
    .bind(event.source.request_id.as_deref())
    .bind(Json(&event.changes))
    .bind(Json(&event.metadata))
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// Records a denied or failed attempt in its own transaction, so that the record survives the
/// rollback of the work it describes.
pub async fn record_outcome(
    pool: &AppPool,
    org: OrgId,
    actor: Option<UserId>,
    event: &AuditEvent,
) -> Result<Uuid> {
    debug_assert_ne!(
        event.outcome,
        Outcome::Success,
        "successes belong in the transaction of their change"
    );
    let mut tx = pool.begin_tenant(org, actor).await?;
    let id = record(&mut tx, event).await?;
    tx.commit().await?;
    Ok(id)
}

/// The tenant's most recent records, newest first.
pub async fn recent(tx: &mut TenantTx, limit: i64) -> Result<Vec<AuditRecord>> {
    let rows = sqlx::query(
        "select organization_id, id, actor_user_id, action, resource_type, resource_id, outcome::text as outcome,
                ip, user_agent, request_id, changes, metadata, created_at
           from app.audit_logs
          where organization_id = $1
          order by created_at desc, id desc
          limit $2",
    )
    .bind(tx.org().as_uuid())
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AuditRecord {
                organization_id: row.try_get("organization_id")?,
                id: row.try_get("id")?,
                actor: row.try_get("actor_user_id")?,
                action: row.try_get("action")?,
                resource_type: row.try_get("resource_type")?,
                resource_id: row.try_get("resource_id")?,
                outcome: row.try_get("outcome")?,
                ip: row.try_get::<Option<IpNetwork>, _>("ip")?.map(|n| n.ip()),
                user_agent: row.try_get("user_agent")?,
                request_id: row.try_get("request_id")?,
                changes: row.try_get::<Json<Value>, _>("changes")?.0,
                metadata: row.try_get::<Json<Value>, _>("metadata")?.0,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}
