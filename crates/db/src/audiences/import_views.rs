//! Reads of imports for the API and the console: one import or a page of them, each with its
//! job's state and progress, and the problems in pages for the
//! downloadable CSV. Kept beside `import.rs`, which holds the import's write path.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audiences::import::{Import, Problem};
use crate::{Result, TenantTx};
use mos_domain::ImportId;

/// An import with its job, as a person watching it needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub import: Import,
    /// The job's state (`queued`, `running`, ...); none before the import started.
    pub job_state: Option<String>,
    /// Data rows read so far.
    pub job_done: Option<i64>,
    pub job_total: Option<i64>,
    /// Milliseconds the job spent running, over every attempt.
    pub job_busy_ms: Option<i64>,
    pub job_attempts: Option<i32>,
    pub job_last_error: Option<String>,
    pub job_cancel_requested_at: Option<DateTime<Utc>>,
}

impl Status {
    /// Rows read per second of running time; none before the first batch committed.
    pub fn rows_per_second(&self) -> Option<f64> {
        match (self.job_done, self.job_busy_ms) {
            (Some(done), Some(ms)) if ms > 0 => Some(done as f64 * 1000.0 / ms as f64),
            _ => None,
        }
    }
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: Uuid,
    state: String,
    done: i64,
    total: Option<i64>,
    busy_ms: i64,
    attempts: i32,
    last_error: Option<String>,
    cancel_requested_at: Option<DateTime<Utc>>,
}

const IMPORTS: &str =
    "select id, file_name, created_by, created_at, file_sha256, size_bytes, chunks, rows, mapping, provenance,
        job_id, imported, existing, suppressed, invalid, finished_at
   from app.contact_imports where organization_id = $1";

/// The imports with their jobs, read by a second statement: Citus plans no outer join under
/// the row-level security policy's qualifier on PostgreSQL 15 and 16.
async fn with_jobs(tx: &mut TenantTx, imports: Vec<Import>) -> Result<Vec<Status>> {
    let ids: Vec<Uuid> = imports.iter().filter_map(|i| i.job_id).collect();
    let jobs: Vec<JobRow> = if ids.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            "select id, state::text as state, done, total, busy_ms, attempts, last_error, cancel_requested_at
               from app.jobs where organization_id = $1 and id = any($2)",
        )
        .bind(tx.org().as_uuid())
        .bind(&ids)
        .fetch_all(tx.conn())
        .await?
    };
    let mut jobs: HashMap<Uuid, JobRow> = jobs.into_iter().map(|j| (j.id, j)).collect();
    Ok(imports
        .into_iter()
        .map(|import| {
            let job = import.job_id.and_then(|id| jobs.remove(&id));
            Status {
                job_state: job.as_ref().map(|j| j.state.clone()),
                job_done: job.as_ref().map(|j| j.done),
                job_total: job.as_ref().and_then(|j| j.total),
                job_busy_ms: job.as_ref().map(|j| j.busy_ms),
                job_attempts: job.as_ref().map(|j| j.attempts),
                job_last_error: job.as_ref().and_then(|j| j.last_error.clone()),
                job_cancel_requested_at: job.as_ref().and_then(|j| j.cancel_requested_at),
                import,
            }
        })
        .collect())
}

/// One import of the transaction's tenant, with its job.
pub async fn status(tx: &mut TenantTx, id: ImportId) -> Result<Option<Status>> {
    let import: Option<Import> = sqlx::query_as(&format!("{IMPORTS} and id = $2"))
        .bind(tx.org().as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(tx.conn())
        .await?;
    Ok(with_jobs(tx, import.into_iter().collect()).await?.pop())
}

/// Up to `limit` imports, newest first, created before `before` (ids are time-ordered).
pub async fn list(tx: &mut TenantTx, before: Option<ImportId>, limit: i64) -> Result<Vec<Status>> {
    let imports: Vec<Import> =
        sqlx::query_as(&format!("{IMPORTS} and ($2::uuid is null or id < $2) order by id desc limit $3"))
            .bind(tx.org().as_uuid())
            .bind(before.map(|b| b.as_uuid()))
            .bind(limit)
            .fetch_all(tx.conn())
            .await?;
    with_jobs(tx, imports).await
}

/// Up to `limit` problems after `after` (row, column), in that order: a keyset that a row with
/// many problems cannot straddle.
pub async fn problems_after(
    tx: &mut TenantTx,
    import: ImportId,
    after: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<Problem>> {
    let (row, column) = after.unwrap_or((0, ""));
    Ok(sqlx::query_as(
        "select row_number, column_name, reason from app.contact_import_problems
          where organization_id = $1 and import_id = $2 and (row_number, column_name) > ($3, $4)
          order by row_number, column_name limit $5",
    )
    .bind(tx.org().as_uuid())
    .bind(import.as_uuid())
    .bind(row)
    .bind(column)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?)
}
