//! Liveness says the process answers; readiness says it can do its job: the database answers
//! and runs PL/pgSQL, the last run of `db check` found nothing that weakens isolation or the
//! audit log, and no request has failed because the database server cannot use its own files.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// The longest `/readyz` waits for the database: orchestrators poll it with short timeouts.
const READY_WITHIN: Duration = Duration::from_secs(1);

/// What the last database check found, as its problem codes; shared between whoever runs the
/// check (`mos serve` does, periodically) and `/readyz`. And whether a request met a database
/// server that cannot use its own files: that lasts until the process restarts, because the
/// server's other connections may still work and hide it from a probe.
#[derive(Clone, Default)]
pub struct Readiness {
    problems: Arc<RwLock<Vec<String>>>,
    /// When the last scheduled backup failed, if it did; the log has the cause. A failed backup
    /// does not stop the server serving, so it is reported, not counted against readiness.
    backup_failed: Arc<RwLock<Option<String>>>,
    server_broken: Arc<AtomicBool>,
}

/// Set on a response by the one error mapping when its request failed because the database
/// server cannot use its own files ([`mos_db::DbError::is_server_broken`]).
#[derive(Clone, Copy)]
pub struct ServerBroken;

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

    /// From now on until restart, `/readyz` says not ready.
    pub fn server_broken(&self) {
        if !self.server_broken.swap(true, Ordering::Relaxed) {
            tracing::error!(
                "the database server cannot use its own files (a library or data file is missing or does not \
                 match, as after a package upgrade under a running server): not ready until this process is \
                 restarted; restart PostgreSQL first"
            );
        }
    }

    fn clear(&self) -> bool {
        !self.server_broken.load(Ordering::Relaxed)
            && self.problems.read().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty()
    }
}

/// Watches every answer for a request that met a broken database server.
pub async fn watch(State(readiness): State<Readiness>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.extensions().get::<ServerBroken>().is_some() {
        readiness.server_broken();
    }
    response
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

/// Readiness: the database answers within a second and runs PL/pgSQL, the last database check
/// found no problem, and no request met a database server that cannot use its own files.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, body = Health),
        (status = 503, description = "The database does not answer within a second, the database check found a problem, or a request met a database server that cannot use its own files (the log names it)"),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    if !state.readiness.clear() {
        return Err(ApiError::NotReady);
    }
    state.pool.ping(READY_WITHIN).await.map_err(|e| {
        if e.is_server_broken() {
            state.readiness.server_broken();
        }
        ApiError::Unavailable(Box::new(e))
    })?;
    Ok(Json(Health { status: "ready", backup: state.readiness.backup_note() }))
}
