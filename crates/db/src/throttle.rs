//! Failure counters against guessing, per account and per client address, kept in the database
//! so that parallel attempts are counted atomically and a restart resets nothing.

use chrono::{DateTime, Duration, Utc};
use sqlx::postgres::types::PgInterval;

use crate::{AppPool, DbError, Result, UserTx};

/// How a kind of key slows guessing down.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failures allowed before any delay.
    pub free: i32,
    /// The longest delay between attempts, in seconds; delays double from one second.
    pub cap_secs: i32,
    /// From this many failures on, locked until cleared (NIST 800-63B: at most 100).
    pub hard: Option<i32>,
    /// Failures older than this are forgotten; `None` counts consecutive failures until a success.
    pub window: Option<Duration>,
}

/// The outcome of counting an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The attempt may go ahead; when false it was not counted.
    pub allowed: bool,
    pub failures: i32,
    /// Seconds until the next attempt is allowed, when it is not allowed now; `None` both when
    /// nothing is locked and when the key is locked until cleared.
    pub retry_after: Option<i32>,
}

impl Hit {
    pub fn hard_locked(&self, policy: &Policy) -> bool {
        policy.hard.is_some_and(|hard| self.failures >= hard)
    }
}

/// Counts an attempt under `key` as a failure before it is judged; [`clear`] undoes that on success.
pub async fn hit(pool: &AppPool, key: &str, now: DateTime<Utc>, policy: &Policy) -> Result<Hit> {
    let window =
        policy.window.map(PgInterval::try_from).transpose().map_err(|e| DbError::Sqlx(sqlx::Error::Encode(e)))?;
    let (allowed, failures, retry_after): (bool, i32, Option<i32>) =
        sqlx::query_as("select allowed, failures, retry_after from app.throttle_hit($1, $2, $3, $4, $5, $6)")
            .bind(key)
            .bind(now)
            .bind(policy.free)
            .bind(policy.cap_secs)
            .bind(policy.hard)
            .bind(window)
            .fetch_one(pool.without_context())
            .await?;
    Ok(Hit { allowed, failures, retry_after })
}

/// Forgets the failures under `key` (a success, or a password reset unlocking an account), in
/// the transaction of the success, so that both commit together on the request's connection.
pub async fn clear(tx: &mut UserTx, key: &str) -> Result<()> {
    sqlx::query("select app.throttle_clear($1)").bind(key).execute(tx.conn()).await?;
    Ok(())
}
