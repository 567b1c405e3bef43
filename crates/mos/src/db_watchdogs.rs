//! The watchdogs `mos serve` runs over its database: one restarts the embedded cluster it looks
//! after when it dies (with back-off), the other re-runs the catalog check periodically, so that
//! `/readyz` says not ready while protection is switched off at runtime.

use std::time::Duration;

use mos_db::ops::check;
use mos_db::ops::embedded::Cluster;
use mos_db::{AppPool, PgConnectOptions};
use sqlx::ConnectOptions;

/// How often the cluster's postmaster is looked for.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// The longest wait between two failed restarts.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// The wait before the next attempt after one that failed, given the wait before that one:
/// from the 1 s between looks, doubling, and never more than 30 s.
fn after_a_failure(previous: Duration) -> Duration {
    (previous * 2).min(BACKOFF_CAP)
}

/// Starts the cluster again whenever its postmaster is gone, waiting 1 s, 2 s, 4 s... up to
/// 30 s between failed attempts. Connections of the pool from before a restart are dropped
/// unused.
pub async fn restart_cluster_when_down(cluster: Cluster, pool: AppPool) {
    let mut backoff = LOOK_EVERY;
    loop {
        tokio::time::sleep(backoff).await;
        if cluster.running() {
            backoff = LOOK_EVERY;
            continue;
        }
        tracing::error!(pgdata = %cluster.pgdata().display(), "the embedded PostgreSQL is not running; starting it again");
        match cluster.start().await {
            Ok(_) => {
                pool.invalidate();
                tracing::warn!(pgdata = %cluster.pgdata().display(), "restarted the embedded PostgreSQL");
                backoff = LOOK_EVERY;
            }
            Err(e) => {
                backoff = after_a_failure(backoff);
                tracing::error!(error = %e, retry_in_secs = backoff.as_secs(), "restarting the embedded PostgreSQL failed");
            }
        }
    }
}

/// Runs `mos db check` every `interval` and records its findings for `/readyz`, logging each
/// problem when the findings change.
pub async fn recheck_catalog(admin: PgConnectOptions, readiness: mos_http::Readiness, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let found = async {
            let mut conn = admin.connect().await?;
            let problems = check::run(&mut conn).await?;
            let _ = sqlx::Connection::close(conn).await;
            anyhow::Ok(problems)
        };
        let problems = match found.await {
            Ok(problems) => problems,
            // The database away is what `/readyz`'s own ping reports.
            Err(e) => {
                tracing::debug!(error = %e, "the periodic database check could not run");
                continue;
            }
        };
        let codes = problems.iter().map(|p| p.code.to_owned()).collect();
        if readiness.record(codes) {
            if problems.is_empty() {
                tracing::info!("the database check passes again; ready");
            }
            for p in &problems {
                tracing::error!(code = p.code, "{}; not ready until it is fixed", p.detail);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_restarts_wait_one_second_then_doubling_up_to_thirty() {
        let waits: Vec<u64> = std::iter::successors(Some(LOOK_EVERY), |w| Some(after_a_failure(*w)))
            .take(8)
            .map(|w| w.as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
