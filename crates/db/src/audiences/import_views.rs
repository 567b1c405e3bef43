//! Reads of imports for the API and the console: one import or a page of them, each with its
//! job's state and progress in the same statement, and the problems in pages for the
//! downloadable CSV. Kept beside `import.rs`, which holds the import's write path.

use chrono::{DateTime, Utc};

use crate::audiences::import::{Import, Problem};
use crate::{Result, TenantTx};
use mos_domain::ImportId;

/// An import with its job, as a person watching it needs them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Status {
    #[sqlx(flatten)]
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

const STATUS: &str = "select i.id, i.file_name, i.created_by, i.created_at, i.file_sha256, i.size_bytes, i.chunks,
        i.mapping, i.provenance, i.job_id, i.imported, i.existing, i.suppressed, i.invalid, i.finished_at,
        j.state::text as job_state, j.done as job_done, j.total as job_total, j.busy_ms as job_busy_ms,
        j.attempts as job_attempts, j.last_error as job_last_error, j.cancel_requested_at as job_cancel_requested_at
   from app.contact_imports i
   left join app.jobs j on j.organization_id = i.organization_id and j.id = i.job_id
  where i.organization_id = $1";

/// One import of the transaction's tenant, with its job.
pub async fn status(tx: &mut TenantTx, id: ImportId) -> Result<Option<Status>> {
    Ok(sqlx::query_as(&format!("{STATUS} and i.id = $2"))
        .bind(tx.org().as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(tx.conn())
        .await?)
}

/// Up to `limit` imports, newest first, created before `before` (ids are time-ordered).
pub async fn list(tx: &mut TenantTx, before: Option<ImportId>, limit: i64) -> Result<Vec<Status>> {
    Ok(sqlx::query_as(&format!("{STATUS} and ($2::uuid is null or i.id < $2) order by i.id desc limit $3"))
        .bind(tx.org().as_uuid())
        .bind(before.map(|b| b.as_uuid()))
        .bind(limit)
        .fetch_all(tx.conn())
        .await?)
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
