//! Liveness says the process answers; readiness says it can do its job: the database answers,
//! and the last run of `db check` found nothing that weakens isolation or the audit log.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::Problem;
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// The longest `/readyz` waits for the database: orchestrators poll it with short timeouts.
const READY_WITHIN: Duration = Duration::from_secs(1);

/// What the last database check found, as its problem codes; shared between whoever runs the
/// check (`mos serve` does, periodically) and `/readyz`.
#[derive(Clone, Default)]
pub struct Readiness {
    problems: Arc<RwLock<Vec<String>>>,
    /// When the last scheduled backup failed, if it did; the log has the cause. A failed backup
    /// does not stop the server serving, so it is reported, not counted against readiness.
    backup_failed: Arc<RwLock<Option<String>>>,
}

impl Readiness {
    /// Records the outcome of a check; true when it differs from the one before.
    pub fn record(&self, problems: Vec<String>) -> bool {
        let mut current = self.problems.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = *current != problems;
        *current = problems;
        changed
    }

    /// Records the outcome of a scheduled backup: `None` when it succeeded, else its time.
    pub fn record_backup(&self, failed_at: Option<String>) {
        *self.backup_failed.write().unwrap_or_else(std::sync::PoisonError::into_inner) = failed_at;
    }

    fn backup_note(&self) -> Option<String> {
        let failed_at = self.backup_failed.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()?;
        Some(format!("the scheduled backup of {failed_at} failed; the server log names the cause"))
    }

    fn clear(&self) -> bool {
        self.problems.read().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty()
    }
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
    /// Present when the last scheduled backup failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    backup: Option<String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", backup: None })
}

/// Readiness: the database answers within a second, and the last database check found no
/// problem.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, body = Health),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "The database does not answer within a second, or the database check found a problem (the log names it)"),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    if !state.readiness.clear() {
        return Err(ApiError::NotReady);
    }
    state.pool.ping(READY_WITHIN).await.map_err(|e| ApiError::Unavailable(Box::new(e)))?;
    Ok(Json(Health { status: "ready", backup: state.readiness.backup_note() }))
}
