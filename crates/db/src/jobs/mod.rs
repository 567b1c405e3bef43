//! Background jobs: one queue in PostgreSQL for all work that outlives a request.
//!
//! A job belongs to one organization. It is enqueued in that tenant's transaction, so it
//! commits with the change that asked for it; a runner claims it under a lease (a token only
//! that runner knows, valid until a deadline it keeps pushing back), and every later step
//! (progress, finishing) names the token: a runner that lost its lease, because it stalled
//! and another runner took the job over, can change nothing any more. Progress is written in
//! the same transaction as the work it counts, so a job resumed after a crash starts exactly
//! where the last committed step ended.
//!
//! The claim is the one query across tenants, a definer function; see `0013_jobs.sql` for
//! its fairness rule and `docs/jobs.md` for why the queue is shaped this way.

pub mod runner;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::stored;
use crate::{AppPool, Result, TenantTx};
use mos_domain::{JobId, OrgId};

/// What a job does; the runner has one handler per kind. The names are stored, so a kind is
/// never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobKind(&'static str);

impl JobKind {
    /// A kind name: lowercase letters and underscores, as the table's check demands.
    pub const fn new(name: &'static str) -> Self {
        Self(name)
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

impl TryFrom<String> for JobState {
    type Error = crate::DbError;
    fn try_from(s: String) -> Result<Self> {
        Ok(match s.as_str() {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return Err(stored("jobs_state")),
        })
    }
}

/// A job as its organization sees it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Job {
    #[sqlx(try_from = "Uuid")]
    pub id: JobId,
    pub kind: String,
    pub payload: serde_json::Value,
    #[sqlx(try_from = "String")]
    pub state: JobState,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_after: DateTime<Utc>,
    pub cancel_requested_at: Option<DateTime<Utc>>,
    pub total: Option<i64>,
    pub done: i64,
    pub errors: i64,
    pub busy_ms: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    /// Units of work per second of running time, over every attempt; none before the first
    /// step has committed.
    pub fn rate_per_second(&self) -> Option<f64> {
        (self.busy_ms > 0).then(|| self.done as f64 * 1000.0 / self.busy_ms as f64)
    }
}

const JOB_COLUMNS: &str = "id, kind, payload, state::text as state, attempts, max_attempts, run_after, \
     cancel_requested_at, total, done, errors, busy_ms, last_error, created_at, finished_at";

/// Queues a job of `kind` for the transaction's tenant; it can run once the transaction commits.
pub async fn enqueue(
    tx: &mut TenantTx,
    kind: JobKind,
    payload: &serde_json::Value,
    max_attempts: i32,
    now: DateTime<Utc>,
) -> Result<JobId> {
    enqueue_at(tx, kind, payload, max_attempts, now, now).await
}

/// [`enqueue`] for a job that is not due before `run_after`.
pub async fn enqueue_at(
    tx: &mut TenantTx,
    kind: JobKind,
    payload: &serde_json::Value,
    max_attempts: i32,
    now: DateTime<Utc>,
    run_after: DateTime<Utc>,
) -> Result<JobId> {
    let id = JobId::new();
    sqlx::query(
        "insert into app.jobs (organization_id, id, kind, payload, max_attempts, run_after, created_at)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(kind.as_str())
    .bind(payload)
    .bind(max_attempts)
    .bind(run_after)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// One job of the transaction's tenant.
pub async fn get(tx: &mut TenantTx, id: JobId) -> Result<Option<Job>> {
    Ok(sqlx::query_as(&format!("select {JOB_COLUMNS} from app.jobs where organization_id = $1 and id = $2"))
        .bind(tx.org().as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(tx.conn())
        .await?)
}

/// Asks a job to stop. A queued job is cancelled at once; a running one stops at its next
/// checkpoint, keeping what it committed before. Returns the job's state afterwards, or
/// nothing if the tenant has no such job.
pub async fn cancel(tx: &mut TenantTx, id: JobId, now: DateTime<Utc>) -> Result<Option<JobState>> {
    let state: Option<String> = sqlx::query_scalar(
        "update app.jobs
            set cancel_requested_at = coalesce(cancel_requested_at, $3),
                state = case when state = 'queued' then 'cancelled'::app.job_state else state end,
                finished_at = case when state = 'queued' then $3 else finished_at end
          where organization_id = $1 and id = $2
         returning state::text",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(now)
    .fetch_optional(tx.conn())
    .await?;
    state.map(JobState::try_from).transpose()
}

/// A job a runner holds: who it belongs to, what to do, and the lease token that proves the
/// runner still holds it.
#[derive(Debug, Clone)]
pub struct Claim {
    pub org: OrgId,
    pub id: JobId,
    pub kind: String,
    pub payload: serde_json::Value,
    /// This attempt's number, from 1.
    pub attempt: i32,
    token: Uuid,
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    #[sqlx(try_from = "Uuid")]
    organization_id: OrgId,
    #[sqlx(try_from = "Uuid")]
    id: JobId,
    kind: String,
    payload: serde_json::Value,
    attempts: i32,
}

/// Claims the next job of one of `kinds` until `now + lease`, if any is due: the fairest by
/// tenant (see `app.job_claim`), then the oldest. Its own transaction, with no tenant: the
/// claim is the one step that looks across tenants.
pub async fn claim(pool: &AppPool, kinds: &[JobKind], now: DateTime<Utc>, lease: Duration) -> Result<Option<Claim>> {
    let token = Uuid::new_v4();
    let kinds: Vec<&str> = kinds.iter().map(JobKind::as_str).collect();
    let mut tx = pool.bare().await?;
    let row: Option<ClaimRow> =
        sqlx::query_as("select organization_id, id, kind, payload, attempts from app.job_claim($1, $2, $3, $4)")
            .bind(token)
            .bind(&kinds)
            .bind(now)
            .bind(interval(lease))
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(row.map(|r| Claim {
        org: r.organization_id,
        id: r.id,
        kind: r.kind,
        payload: r.payload,
        attempt: r.attempts,
        token,
    }))
}

fn interval(d: Duration) -> sqlx::postgres::types::PgInterval {
    sqlx::postgres::types::PgInterval { months: 0, days: 0, microseconds: d.as_micros().min(i64::MAX as u128) as i64 }
}

/// What a checkpoint found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Still ours; `cancel` says whether someone asked the job to stop.
    Held { cancel: bool },
    /// Another runner holds the job now, or it is no longer running: whatever this transaction
    /// did must not commit.
    Lost,
}

/// Progress of one step, counted from the job's start; it never goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub total: Option<i64>,
    pub done: i64,
    pub errors: i64,
    /// Running time this step adds.
    pub busy: Duration,
}

/// Records `progress` and renews the lease until `now + lease`, in the tenant transaction that
/// holds the step's work, so both commit or neither does. The job's row stays locked until
/// then, so the lease cannot be taken over between this check and the commit. On
/// [`Lease::Lost`] the caller must roll back.
pub async fn checkpoint(
    tx: &mut TenantTx,
    claim: &Claim,
    progress: Progress,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<Lease> {
    let cancel: Option<bool> = sqlx::query_scalar(
        "update app.jobs
            set total = coalesce($4, total), done = greatest(done, $5), errors = greatest(errors, $6),
                busy_ms = busy_ms + $7,
                lease_expires_at = $8
          where organization_id = $1 and id = $2 and lease_token = $3 and state = 'running'
         returning cancel_requested_at is not null",
    )
    .bind(claim.org.as_uuid())
    .bind(claim.id.as_uuid())
    .bind(claim.token)
    .bind(progress.total)
    .bind(progress.done)
    .bind(progress.errors)
    .bind(progress.busy.as_millis().min(i64::MAX as u128) as i64)
    .bind(now + lease)
    .fetch_optional(tx.conn())
    .await?;
    Ok(match cancel {
        Some(cancel) => Lease::Held { cancel },
        None => Lease::Lost,
    })
}

/// Renews the lease on its own, for the runner's heartbeat between steps.
pub async fn heartbeat(pool: &AppPool, claim: &Claim, now: DateTime<Utc>, lease: Duration) -> Result<Lease> {
    let mut tx = pool.begin_tenant(claim.org, None).await?;
    let cancel: Option<bool> = sqlx::query_scalar(
        "update app.jobs set lease_expires_at = greatest(lease_expires_at, $4)
          where organization_id = $1 and id = $2 and lease_token = $3 and state = 'running'
         returning cancel_requested_at is not null",
    )
    .bind(claim.org.as_uuid())
    .bind(claim.id.as_uuid())
    .bind(claim.token)
    .bind(now + lease)
    .fetch_optional(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(match cancel {
        Some(cancel) => Lease::Held { cancel },
        None => Lease::Lost,
    })
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Succeeded,
    /// Stopped at a checkpoint because a cancel was asked for.
    Cancelled,
    /// The runner is shutting down: back to the queue at once, and this attempt does not count.
    Released,
    /// Back to the queue until `after` from now, the attempt not counted: a job that waits for
    /// work arriving (webhook deliveries) rather than one that failed.
    Later {
        after: Duration,
    },
    /// Failed; retried after `retry_after` while attempts remain, failed for good otherwise.
    Failed {
        error: String,
        retry_after: Duration,
    },
}

/// Ends the attempt `claim` holds. Returns the state the job is in afterwards, or nothing if
/// the lease was lost (the job is another runner's now, and this ending is ignored).
pub async fn finish(tx: &mut TenantTx, claim: &Claim, ending: &Ending, now: DateTime<Utc>) -> Result<Option<JobState>> {
    let (state, error, run_after): (&str, Option<String>, DateTime<Utc>) = match ending {
        Ending::Succeeded => ("succeeded", None, now),
        Ending::Cancelled => ("cancelled", None, now),
        Ending::Released => ("queued", None, now),
        Ending::Later { after } => ("queued", None, now + *after),
        Ending::Failed { error, retry_after } => {
            ("failed", Some(error.chars().take(1000).collect()), now + *retry_after)
        }
    };
    finish_conn(tx.conn(), claim, state, error, run_after, now).await
}

async fn finish_conn(
    conn: &mut PgConnection,
    claim: &Claim,
    state: &str,
    error: Option<String>,
    run_after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<JobState>> {
    // A failure with attempts left goes back to the queue; a release hands the attempt back.
    let state: Option<String> = sqlx::query_scalar(
        "update app.jobs
            set state = case when $4 = 'failed' and attempts < max_attempts then 'queued'::app.job_state
                             else $4::app.job_state end,
                attempts = case when $4 = 'queued' then attempts - 1 else attempts end,
                last_error = coalesce($5, last_error),
                run_after = $6,
                lease_token = null, lease_expires_at = null,
                finished_at = case when $4 in ('succeeded', 'cancelled')
                                     or ($4 = 'failed' and attempts >= max_attempts) then $7 end
          where organization_id = $1 and id = $2 and lease_token = $3 and state = 'running'
         returning state::text",
    )
    .bind(claim.org.as_uuid())
    .bind(claim.id.as_uuid())
    .bind(claim.token)
    .bind(state)
    .bind(error)
    .bind(run_after)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    state.map(JobState::try_from).transpose()
}

/// The wait before retry `attempt + 1`: doubling from `base`, at most `cap`.
pub fn backoff(attempt: i32, base: Duration, cap: Duration) -> Duration {
    let doublings = attempt.saturating_sub(1).clamp(0, 20) as u32;
    base.saturating_mul(1 << doublings).min(cap)
}
