//! Outgoing webhooks (docs/webhooks.md, migration 34): an organization's endpoints, and the
//! outbox its events wait in until they are delivered or given up.
//!
//! The events are written by the database's triggers in the transaction of the change they
//! report; nothing here writes one. The delivery job (`mos_http::webhooks`) claims due rows under
//! a lease with [`claim`], delivers them, and records each attempt with [`record`]. The signing
//! secret is stored only sealed with the server's [`Sealer`], bound by [`owner`] to the
//! organization and the endpoint; no function here returns it except [`claim`], to the job.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mos_auth::Sealer;
use mos_domain::events::{
    WEBHOOK, WEBHOOK_CREATED, WEBHOOK_DISABLED, WEBHOOK_ENABLED, WEBHOOK_FAILING_DISABLED, WEBHOOK_SECRET_ROTATED,
};
use mos_domain::webhooks::EventType;
use mos_domain::{AuditEvent, RequestSource, UserId, WebhookId};
use secrecy::SecretBox;
use serde_json::json;
use uuid::Uuid;

use crate::error::stored;
use crate::jobs::{self, JobKind};
use crate::{audit, DbError, Result, TenantTx};

/// The delivery job, one per organization with an enabled endpoint.
pub const WEBHOOK_JOB: JobKind = JobKind::new("webhook_delivery");
/// The job fails for good only after this many failed attempts (each one a database
/// error: an endpoint's failure is the outbox row's, not the job's).
const JOB_ATTEMPTS: i32 = 100;

/// The associated data a secret is sealed under: a sealed secret copied onto another endpoint's
/// row, or into another organization, does not open.
pub fn owner(org: mos_domain::OrgId, id: WebhookId) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(org.as_uuid().as_bytes());
    out[16..].copy_from_slice(id.as_uuid().as_bytes());
    out
}

/// An endpoint as its organization sees it: never its secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Webhook {
    #[sqlx(try_from = "Uuid")]
    pub id: WebhookId,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// `member` or `failures`, while disabled.
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Webhook {
    pub fn event_types(&self) -> Vec<EventType> {
        self.events.iter().filter_map(|e| EventType::parse(e)).collect()
    }
}

const WEBHOOK_COLUMNS: &str =
    "id, url, events, description, enabled, disabled_reason, consecutive_failures, created_at, updated_at";

/// One event for one endpoint, and how its delivery stands.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub event_id: Uuid,
    pub event_type: String,
    pub contact_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i16>,
    pub last_error: Option<String>,
}

/// A new endpoint, parsed by the caller.
pub struct NewWebhook<'a> {
    pub url: &'a str,
    pub events: &'a [EventType],
    pub description: Option<&'a str>,
}

fn names(events: &[EventType]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = events.iter().map(|e| e.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Adds an endpoint, enabled, with `secret` as its signing key, and makes sure the
/// organization's delivery job exists.
#[allow(clippy::too_many_arguments)]
pub async fn create(
    tx: &mut TenantTx,
    sealer: &Sealer,
    new: &NewWebhook<'_>,
    secret: &[u8],
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<WebhookId> {
    let id = WebhookId::new();
    let sealed = sealer.seal(secret, &owner(tx.org(), id), &mut rand::thread_rng());
    let events = names(new.events);
    sqlx::query(
        "insert into app.webhook_subscriptions (organization_id, id, url, events, description, sealed_secret,
                                                created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(new.url)
    .bind(&events)
    .bind(new.description)
    .bind(sealed)
    .bind(now)
    .execute(tx.conn())
    .await?;
    ensure_job(tx, now).await?;
    let event = AuditEvent::new(WEBHOOK_CREATED, WEBHOOK)
        .actor(actor)
        .resource_id(id)
        .source(source.clone())
        .meta("url", json!(new.url))
        .meta("events", json!(events));
    audit::record(tx, &event).await?;
    Ok(id)
}

/// Queues the organization's delivery job unless one is queued or running.
async fn ensure_job(tx: &mut TenantTx, now: DateTime<Utc>) -> Result<()> {
    let live: bool = sqlx::query_scalar(
        "select exists (select 1 from app.jobs
                         where organization_id = $1 and kind = $2 and state in ('queued', 'running'))",
    )
    .bind(tx.org().as_uuid())
    .bind(WEBHOOK_JOB.as_str())
    .fetch_one(tx.conn())
    .await?;
    if !live {
        jobs::enqueue(tx, WEBHOOK_JOB, &json!({}), JOB_ATTEMPTS, now).await?;
    }
    Ok(())
}

/// The organization's endpoints, oldest first (an organization has a handful).
pub async fn list(tx: &mut TenantTx) -> Result<Vec<Webhook>> {
    Ok(sqlx::query_as(&format!(
        "select {WEBHOOK_COLUMNS} from app.webhook_subscriptions where organization_id = $1 order by id limit 1000"
    ))
    .bind(tx.org().as_uuid())
    .fetch_all(tx.conn())
    .await?)
}

pub async fn get(tx: &mut TenantTx, id: WebhookId) -> Result<Option<Webhook>> {
    fetch(tx, id, "").await
}

/// The endpoint, locked for the change the caller makes.
async fn get_for_update(tx: &mut TenantTx, id: WebhookId) -> Result<Option<Webhook>> {
    fetch(tx, id, "for update").await
}

async fn fetch(tx: &mut TenantTx, id: WebhookId, lock: &str) -> Result<Option<Webhook>> {
    Ok(sqlx::query_as(&format!(
        "select {WEBHOOK_COLUMNS} from app.webhook_subscriptions where organization_id = $1 and id = $2 {lock}"
    ))
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_optional(tx.conn())
    .await?)
}

/// Enables or disables an endpoint for a member; `None` if there is no such endpoint. Enabling
/// starts from a clean count of failures. Audited only when it changed something.
pub async fn set_enabled(
    tx: &mut TenantTx,
    id: WebhookId,
    enabled: bool,
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Option<Webhook>> {
    let Some(before) = get_for_update(tx, id).await? else {
        return Ok(None);
    };
    if before.enabled != enabled {
        sqlx::query(
            "update app.webhook_subscriptions
                set enabled = $3, disabled_reason = case when $3 then null else 'member' end,
                    consecutive_failures = 0, updated_at = $4
              where organization_id = $1 and id = $2",
        )
        .bind(tx.org().as_uuid())
        .bind(id.as_uuid())
        .bind(enabled)
        .bind(now)
        .execute(tx.conn())
        .await?;
        if enabled {
            ensure_job(tx, now).await?;
        }
        let action = if enabled { WEBHOOK_ENABLED } else { WEBHOOK_DISABLED };
        let event = AuditEvent::new(action, WEBHOOK).actor(actor).resource_id(id).source(source.clone());
        audit::record(tx, &event).await?;
    }
    get(tx, id).await
}

/// Replaces an endpoint's secret with `secret`; the next attempt of every event is signed with
/// it. `false` if there is no such endpoint.
pub async fn rotate(
    tx: &mut TenantTx,
    sealer: &Sealer,
    id: WebhookId,
    secret: &[u8],
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<bool> {
    if get_for_update(tx, id).await?.is_none() {
        return Ok(false);
    }
    let sealed = sealer.seal(secret, &owner(tx.org(), id), &mut rand::thread_rng());
    sqlx::query(
        "update app.webhook_subscriptions set sealed_secret = $3, updated_at = $4 where organization_id = $1 and id = $2",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(sealed)
    .bind(now)
    .execute(tx.conn())
    .await?;
    let event = AuditEvent::new(WEBHOOK_SECRET_ROTATED, WEBHOOK).actor(actor).resource_id(id).source(source.clone());
    audit::record(tx, &event).await?;
    Ok(true)
}

/// An endpoint's most recent events, newest first.
pub async fn deliveries(tx: &mut TenantTx, id: WebhookId, limit: i64) -> Result<Vec<Delivery>> {
    Ok(sqlx::query_as(
        "select event_id, event_type, contact_id, occurred_at, state,
                attempts, case when state = 'pending' then next_attempt_at end as next_attempt_at,
                last_attempt_at, last_status, last_error
           from app.webhook_outbox
          where organization_id = $1 and subscription_id = $2
          order by enqueued_at desc, ord desc
          limit $3",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(limit)
    .fetch_all(tx.conn())
    .await?)
}

/// An event claimed for delivery, with what signs it.
pub struct Claimed {
    pub subscription: WebhookId,
    pub event_id: Uuid,
    pub event_type: String,
    pub contact_id: Option<Uuid>,
    pub data: serde_json::Value,
    pub occurred_at: DateTime<Utc>,
    pub attempts: i32,
    pub url: String,
    pub secret: SecretBox<Vec<u8>>,
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    subscription_id: Uuid,
    event_id: Uuid,
    event_type: String,
    contact_id: Option<Uuid>,
    data: serde_json::Value,
    occurred_at: DateTime<Utc>,
    attempts: i32,
    url: String,
    sealed_secret: Vec<u8>,
}

/// Claims at most `limit` due events of enabled endpoints under the lease `token` until
/// `now + lease`: each the earliest pending event of its endpoint and contact, so that a later
/// event waits until the one before it was delivered or given up. An event whose lease ran out
/// (its worker died) is due again. Rows another worker is claiming are skipped, not waited for.
pub async fn claim(
    tx: &mut TenantTx,
    sealer: &Sealer,
    token: Uuid,
    now: DateTime<Utc>,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Claimed>> {
    let org = tx.org();
    let rows: Vec<ClaimRow> = sqlx::query_as(
        "select o.subscription_id, o.event_id, o.event_type, o.contact_id, o.data, o.occurred_at, o.attempts,
                s.url, s.sealed_secret
           from app.webhook_outbox o
           join app.webhook_subscriptions s on s.organization_id = o.organization_id and s.id = o.subscription_id
          where o.organization_id = $1 and s.organization_id = $1 and s.enabled
            and o.state = 'pending' and o.next_attempt_at <= $2
            and (o.lease_expires_at is null or o.lease_expires_at <= $2)
            and not exists (select 1 from app.webhook_outbox p
                             where p.organization_id = $1 and p.subscription_id = o.subscription_id
                               and p.contact_id = o.contact_id and p.state = 'pending'
                               and (p.enqueued_at, p.ord) < (o.enqueued_at, o.ord))
          order by o.enqueued_at, o.ord
          limit $3
            for update of o skip locked",
    )
    .bind(org.as_uuid())
    .bind(now)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60));
    // The rows by their key as one text each: an UPDATE joined with `unnest` is no longer a
    // single-shard statement on Citus.
    let keys: Vec<String> = rows.iter().map(|r| format!("{}:{}", r.subscription_id, r.event_id)).collect();
    sqlx::query(
        "update app.webhook_outbox set lease_token = $3, lease_expires_at = $4
          where organization_id = $1 and state = 'pending'
            and (subscription_id::text || ':' || event_id::text) = any ($2::text[])",
    )
    .bind(org.as_uuid())
    .bind(&keys)
    .bind(token)
    .bind(until)
    .execute(tx.conn())
    .await?;
    rows.into_iter()
        .map(|r| {
            let subscription =
                WebhookId::from_uuid(r.subscription_id).map_err(|_| stored("webhook_subscriptions_id_v7"))?;
            let secret = sealer.open(&r.sealed_secret, &owner(org, subscription)).map_err(DbError::Unsealable)?;
            Ok(Claimed {
                subscription,
                event_id: r.event_id,
                event_type: r.event_type,
                contact_id: r.contact_id,
                data: r.data,
                occurred_at: r.occurred_at,
                attempts: r.attempts,
                url: r.url,
                secret,
            })
        })
        .collect()
}

/// How one attempt went.
pub struct Attempt {
    pub subscription: WebhookId,
    pub event_id: Uuid,
    /// The endpoint's HTTP status, if it answered.
    pub status: Option<u16>,
    /// Delivered: a 2xx answer.
    pub delivered: bool,
    /// Why it failed, without secrets or personal data.
    pub error: Option<String>,
    /// When to try again, or none to give up (the attempts are spent).
    pub retry_at: Option<DateTime<Utc>>,
}

/// Records attempts made under the lease `token`; an attempt whose lease was lost (another
/// worker took the event over) is not recorded. An endpoint's failures in a row are counted, and
/// at `disable_after` it is disabled, audited. Returns the endpoints disabled so.
pub async fn record(
    tx: &mut TenantTx,
    token: Uuid,
    attempts: &[Attempt],
    now: DateTime<Utc>,
    disable_after: i32,
) -> Result<Vec<WebhookId>> {
    let org = tx.org().as_uuid();
    let mut disabled = Vec::new();
    for a in attempts {
        let state = match (a.delivered, a.retry_at) {
            (true, _) => "delivered",
            (false, Some(_)) => "pending",
            (false, None) => "failed",
        };
        let error = a.error.as_deref().map(|e| e.chars().take(300).collect::<String>());
        let recorded = sqlx::query(
            "update app.webhook_outbox
                set state = $5, attempts = attempts + 1, last_attempt_at = $6, last_status = $7, last_error = $8,
                    next_attempt_at = coalesce($9, next_attempt_at), lease_token = null, lease_expires_at = null,
                    finished_at = case when $5 = 'pending' then null else $6 end
              where organization_id = $1 and subscription_id = $2 and event_id = $3 and lease_token = $4
                and state = 'pending'",
        )
        .bind(org)
        .bind(a.subscription.as_uuid())
        .bind(a.event_id)
        .bind(token)
        .bind(state)
        .bind(now)
        .bind(a.status.map(|s| s as i16))
        .bind(error)
        .bind(a.retry_at)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if recorded == 0 {
            continue;
        }
        let failures: Option<i32> = sqlx::query_scalar(
            "update app.webhook_subscriptions
                set consecutive_failures = case when $3 then 0 else consecutive_failures + 1 end
              where organization_id = $1 and id = $2
             returning consecutive_failures",
        )
        .bind(org)
        .bind(a.subscription.as_uuid())
        .bind(a.delivered)
        .fetch_optional(tx.conn())
        .await?;
        if failures.is_some_and(|f| f >= disable_after) {
            let changed = sqlx::query(
                "update app.webhook_subscriptions set enabled = false, disabled_reason = 'failures', updated_at = $3
                  where organization_id = $1 and id = $2 and enabled",
            )
            .bind(org)
            .bind(a.subscription.as_uuid())
            .bind(now)
            .execute(tx.conn())
            .await?
            .rows_affected();
            if changed == 1 {
                let event = AuditEvent::new(WEBHOOK_FAILING_DISABLED, WEBHOOK)
                    .resource_id(a.subscription)
                    .meta("consecutive_failures", json!(failures));
                audit::record(tx, &event).await?;
                disabled.push(a.subscription);
            }
        }
    }
    Ok(disabled)
}

/// Deletes at most `limit` of the organization's events delivered or given up before `before`,
/// oldest first (the log of an endpoint's deliveries reaches back that far): how many.
pub async fn prune(tx: &mut TenantTx, before: DateTime<Utc>, limit: i64) -> Result<u64> {
    let done = sqlx::query(
        "delete from app.webhook_outbox o
          where o.organization_id = $1
            and (o.subscription_id, o.event_id) in
                (select f.subscription_id, f.event_id from app.webhook_outbox f
                  where f.organization_id = $1 and f.state <> 'pending' and f.finished_at < $2
                  order by f.finished_at limit $3)",
    )
    .bind(tx.org().as_uuid())
    .bind(before)
    .bind(limit)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}

/// What the delivery job waits for: whether the organization has an enabled endpoint, and when
/// its next pending event of one is due.
pub async fn outlook(tx: &mut TenantTx) -> Result<(bool, Option<DateTime<Utc>>)> {
    let row: (bool, Option<DateTime<Utc>>) = sqlx::query_as(
        "select exists (select 1 from app.webhook_subscriptions s where s.organization_id = $1 and s.enabled),
                (select min(greatest(o.next_attempt_at, coalesce(o.lease_expires_at, o.next_attempt_at)))
                   from app.webhook_outbox o
                   join app.webhook_subscriptions s on s.organization_id = o.organization_id and s.id = o.subscription_id
                  where o.organization_id = $1 and s.organization_id = $1 and s.enabled and o.state = 'pending')",
    )
    .bind(tx.org().as_uuid())
    .fetch_one(tx.conn())
    .await?;
    Ok(row)
}
