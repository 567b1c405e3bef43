//! The audit writer. A record describing a change is written in the same transaction as the
//! change, so both commit or neither does; a refused request commits its record of the refusal
//! and nothing else, and a failed attempt whose work is rolled back is recorded in a
//! transaction of its own, after the rollback.
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
use mos_domain::AuditEvent;

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

fn insert_sql(scope: Scope) -> String {
    format!(
        "insert into {} ({}, id, actor_user_id, action, resource_type, resource_id, outcome,
                         ip, user_agent, request_id, changes, metadata)
         values ($1, $2, $3, $4, $5, $6, $7::app.audit_outcome, $8, $9, $10, $11, $12)",
        scope.table(),
        scope.column()
    )
}

/// The statement that appends to a tenant's log, public so that `mos bench` can replay it.
pub fn tenant_insert_sql() -> String {
    insert_sql(Scope::Tenant)
}

async fn insert(conn: &mut PgConnection, scope: Scope, scope_id: Option<Uuid>, event: &AuditEvent) -> Result<Uuid> {
    let id = Uuid::now_v7();
    let sql = insert_sql(scope);
    // The client's own id for the request is a claim, not a fact: metadata, not the column.
    let metadata = match &event.source.client_request_id {
        Some(client) => {
            let mut with_client = event.metadata.clone();
            with_client.insert("client_request_id".into(), client.as_str().into());
            std::borrow::Cow::Owned(with_client)
        }
        None => std::borrow::Cow::Borrowed(&event.metadata),
    };
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
        .bind(Json(metadata.as_ref()))
        .execute(conn)
        .await?;
    Ok(id)
}

fn record_of(row: &sqlx::postgres::PgRow) -> Result<AuditRecord> {
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
    rows.iter().map(record_of).collect()
}

/// Appends `event` to the tenant's audit log inside `tx`.
pub async fn record(tx: &mut TenantTx, event: &AuditEvent) -> Result<Uuid> {
    let org = tx.org().as_uuid();
    insert(tx.conn(), Scope::Tenant, Some(org), event).await
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
    let mut tx = pool.bare().await?;
    let id = insert(&mut tx, Scope::Platform, None, event).await?;
    tx.commit().await?;
    Ok(id)
}

/// The user's own platform events, newest first.
pub async fn platform_recent(tx: &mut UserTx, limit: i64) -> Result<Vec<AuditRecord>> {
    let subject = tx.user().as_uuid();
    recent_in(tx.conn(), Scope::Platform, subject, limit).await
}

/// What to look for in a tenant's audit log; every field narrows the search.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor: Option<Uuid>,
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    /// Keyset pagination: only records strictly older than this (created_at, id).
    pub before: Option<(DateTime<Utc>, Uuid)>,
}

const SEARCH_COLUMNS: &str = "select organization_id as scope, id, actor_user_id, action, resource_type, resource_id,
        outcome::text as outcome, ip, user_agent, request_id, changes, metadata, created_at
   from app.audit_logs";

/// The list's statement for the filters that are set, and only those: `$1` is the tenant, then
/// each filter in the order of [`Filter`]'s fields, the limit last. One statement per
/// combination, each with a plan PostgreSQL can cache; a single statement with
/// `($n is null or ...)` for every filter was planned anew on every execution, since no cached
/// plan fits every combination (public for `mos bench`, which replays it).
pub fn search_sql(filter: &Filter) -> String {
    let mut conditions = vec!["organization_id = $1".to_owned()];
    let mut next = 2;
    let mut add = |condition: &str, params: usize| {
        let numbers: Vec<String> = (next..next + params).map(|n| format!("${n}")).collect();
        conditions.push(condition.replace("{}", &numbers.join(", ")));
        next += params;
    };
    let present = [
        (filter.actor.is_some(), "actor_user_id = {}", 1),
        (filter.action.is_some(), "action = {}", 1),
        (filter.resource_type.is_some(), "resource_type = {}", 1),
        (filter.resource_id.is_some(), "resource_id = {}", 1),
        (filter.from.is_some(), "created_at >= {}", 1),
        (filter.to.is_some(), "created_at < {}", 1),
        (filter.before.is_some(), "(created_at, id) < ({})", 2),
    ];
    for (set, condition, params) in present {
        if set {
            add(condition, params);
        }
    }
    format!(
        "{SEARCH_COLUMNS}\n  where {}\n  order by created_at desc, id desc\n  limit ${next}",
        conditions.join(" and ")
    )
}

fn search_query<'q>(
    sql: &'q str,
    org: Uuid,
    filter: &'q Filter,
    limit: i64,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let mut query = sqlx::query(sql).bind(org);
    if let Some(actor) = filter.actor {
        query = query.bind(actor);
    }
    for text in [&filter.action, &filter.resource_type, &filter.resource_id].into_iter().flatten() {
        query = query.bind(text.as_str());
    }
    for at in [filter.from, filter.to].into_iter().flatten() {
        query = query.bind(at);
    }
    if let Some((at, id)) = filter.before {
        query = query.bind(at).bind(id);
    }
    query.bind(limit)
}

/// One page of the tenant's records matching `filter`, newest first.
pub async fn search(tx: &mut TenantTx, filter: &Filter, limit: i64) -> Result<Vec<AuditRecord>> {
    let org = tx.org().as_uuid();
    let sql = search_sql(filter);
    let rows = search_query(&sql, org, filter, limit).fetch_all(tx.conn()).await?;
    rows.iter().map(record_of).collect()
}

/// Every record matching `filter`, newest first, handed to `each` one at a time as the
/// database sends them, so that an export of any size holds one record in memory; `each`
/// answers whether to go on (a reader that went away stops the export).
pub async fn for_each<F, Fut>(tx: &mut TenantTx, filter: &Filter, mut each: F) -> Result<()>
where
    F: FnMut(AuditRecord) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    use futures_core::Stream;
    use std::pin::Pin;
    let org = tx.org().as_uuid();
    let sql = search_sql(filter);
    let mut rows: Pin<Box<dyn Stream<Item = sqlx::Result<sqlx::postgres::PgRow>> + Send + '_>> =
        search_query(&sql, org, filter, i64::MAX).fetch(tx.conn());
    while let Some(row) = std::future::poll_fn(|cx| rows.as_mut().poll_next(cx)).await {
        if !each(record_of(&row?)?).await {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{search_sql, Filter};

    #[test]
    fn the_search_statement_numbers_only_the_filters_that_are_set() {
        assert!(search_sql(&Filter::default())
            .ends_with("where organization_id = $1\n  order by created_at desc, id desc\n  limit $2"));
        let every = Filter {
            actor: Some(uuid::Uuid::nil()),
            action: Some("a.b".into()),
            resource_type: Some("doc".into()),
            resource_id: Some("1".into()),
            from: Some(chrono::Utc::now()),
            to: Some(chrono::Utc::now()),
            before: Some((chrono::Utc::now(), uuid::Uuid::nil())),
        };
        let sql = search_sql(&every);
        assert!(
            sql.contains("actor_user_id = $2 and action = $3 and resource_type = $4 and resource_id = $5"),
            "{sql}"
        );
        assert!(sql.contains("created_at >= $6 and created_at < $7 and (created_at, id) < ($8, $9)"), "{sql}");
        assert!(sql.ends_with("limit $10"), "{sql}");
    }
}
