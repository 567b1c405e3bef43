//! The audit writer. A record describing a change is written in the same transaction as the
//! change, so both commit or neither does; a denied or failed attempt, whose own transaction
//! is rolled back, is recorded in a transaction of its own.
//!
//! Two scopes: a tenant's log (`app.audit_logs`), and the platform log
//! (`app.platform_audit_logs`) for events outside any organization, which the user they are
//! about can read and no tenant can.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::ipnetwork::IpNetwork;
use sqlx::{types::Json, PgConnection, Row};
use uuid::Uuid;

use crate::{AppPool, Result, TenantTx, UserTx};
use mos_domain::{AuditEvent, OrgId, Outcome, UserId};

/// An audit record as stored. `scope` is the organization for a tenant record and the subject
/// user (if any) for a platform record.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub scope: Option<Uuid>,
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

#[derive(Clone, Copy)]
enum Scope {
    Tenant,
    Platform,
}

impl Scope {
    fn table(self) -> &'static str {
        match self {
            Scope::Tenant => "app.audit_logs",
            Scope::Platform => "app.platform_audit_logs",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Scope::Tenant => "organization_id",
            Scope::Platform => "subject_user_id",
        }
    }
}

async fn insert(conn: &mut PgConnection, scope: Scope, scope_id: Option<Uuid>, event: &AuditEvent) -> Result<Uuid> {
    let id = Uuid::now_v7();
    let sql = format!(
        "insert into {} ({}, id, actor_user_id, action, resource_type, resource_id, outcome,
                         ip, user_agent, request_id, changes, metadata)
         values ($1, $2, $3, $4, $5, $6, $7::app.audit_outcome, $8, $9, $10, $11, $12)",
        scope.table(),
        scope.column()
    );
    sqlx::query(&sql)
        .bind(scope_id)
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
        .execute(conn)
        .await?;
    Ok(id)
}

async fn recent_in(conn: &mut PgConnection, scope: Scope, scope_id: Uuid, limit: i64) -> Result<Vec<AuditRecord>> {
    let sql = format!(
        "select {column} as scope, id, actor_user_id, action, resource_type, resource_id, outcome::text as outcome,
                ip, user_agent, request_id, changes, metadata, created_at
           from {table}
          where {column} = $1
          order by created_at desc, id desc
          limit $2",
        table = scope.table(),
        column = scope.column()
    );
    let rows = sqlx::query(&sql).bind(scope_id).bind(limit).fetch_all(conn).await?;
    rows.iter()
        .map(|row| {
            Ok(AuditRecord {
                scope: row.try_get("scope")?,
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

/// Appends `event` to the tenant's audit log inside `tx`.
pub async fn record(tx: &mut TenantTx, event: &AuditEvent) -> Result<Uuid> {
    let org = tx.org().as_uuid();
    insert(tx.conn(), Scope::Tenant, Some(org), event).await
}

/// Records a denied or failed attempt in its own transaction, so that the record survives the
/// rollback of the work it describes.
pub async fn record_outcome(pool: &AppPool, org: OrgId, actor: Option<UserId>, event: &AuditEvent) -> Result<Uuid> {
    debug_assert_ne!(event.outcome, Outcome::Success, "successes belong in the transaction of their change");
    let mut tx = pool.begin_tenant(org, actor).await?;
    let id = record(&mut tx, event).await?;
    tx.commit().await?;
    Ok(id)
}

/// The tenant's most recent records, newest first.
pub async fn recent(tx: &mut TenantTx, limit: i64) -> Result<Vec<AuditRecord>> {
    let org = tx.org().as_uuid();
    recent_in(tx.conn(), Scope::Tenant, org, limit).await
}

/// Appends `event` to the platform log, on the trail of the user of `tx`.
pub async fn record_platform(tx: &mut UserTx, event: &AuditEvent) -> Result<Uuid> {
    let subject = tx.user().as_uuid();
    insert(tx.conn(), Scope::Platform, Some(subject), event).await
}

/// Records an event about no known account (a login for an unknown email): on nobody's
/// trail, for operators only.
pub async fn record_platform_unattributed(pool: &AppPool, event: &AuditEvent) -> Result<Uuid> {
    let mut conn = pool.without_context().acquire().await?;
    insert(&mut conn, Scope::Platform, None, event).await
}

/// The user's own platform events, newest first.
pub async fn platform_recent(tx: &mut UserTx, limit: i64) -> Result<Vec<AuditRecord>> {
    let subject = tx.user().as_uuid();
    recent_in(tx.conn(), Scope::Platform, subject, limit).await
}
