//! Failure counters against guessing, per account and per client address, kept in the database
//! so that parallel attempts are counted atomically and a restart resets nothing.

use chrono::{DateTime, Duration, Utc};
use sqlx::postgres::types::PgInterval;
use sqlx::postgres::{PgArguments, Postgres};
use sqlx::query::QueryAs;

use crate::{AppPool, DbError, Result, UserTx};

/// How a kind of key slows guessing down.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failures allowed before any delay.
    pub free: i32,
    /// The longest delay between attempts, in seconds; delays double from one second. Nothing
    /// locks for good: a lock that anyone can trigger is a way to shut the owner out.
    pub cap_secs: i32,
    /// Failures older than this are forgotten; `None` counts consecutive failures until a success.
    pub window: Option<Duration>,
}

/// The outcome of counting an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Hit {
    /// The attempt may go ahead; when false it was not counted.
    pub allowed: bool,
    pub failures: i32,
    /// Seconds until the next attempt is allowed, when it is not allowed now.
    pub retry_after: Option<i32>,
}

/// A plain rate: at most `limit` per `window`, the window starting at the first.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub limit: i32,
    pub window: Duration,
}

fn interval(duration: Duration) -> Result<PgInterval> {
    PgInterval::try_from(duration).map_err(|e| DbError::Sqlx(sqlx::Error::Encode(e)))
}

/// Runs one of the counting functions in a transaction of its own, so that its count commits
/// whatever becomes of the attempt.
async fn count(pool: &AppPool, query: QueryAs<'_, Postgres, Hit, PgArguments>) -> Result<Hit> {
    let mut tx = pool.bare().await?;
    let hit = query.fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(hit)
}

/// Counts an attempt under `key` as a failure before it is judged; [`clear`] undoes that on success.
pub async fn hit(pool: &AppPool, key: &str, now: DateTime<Utc>, policy: &Policy) -> Result<Hit> {
    let window = policy.window.map(interval).transpose()?;
    let query = sqlx::query_as("select allowed, failures, retry_after from app.throttle_hit($1, $2, $3, $4, $5, $6)")
        .bind(key)
        .bind(now)
        .bind(policy.free)
        .bind(policy.cap_secs)
        // The database function still takes a hard limit; nothing uses one any more.
        .bind(None::<i32>)
        .bind(window);
    count(pool, query).await
}

/// Forgets the failures under `key` (a success, or a password reset unlocking an account), in
/// the transaction of the success, so that both commit together on the request's connection.
pub async fn clear(tx: &mut UserTx, key: &str) -> Result<()> {
    sqlx::query("select app.throttle_clear($1)").bind(key).execute(tx.conn()).await?;
    Ok(())
}

/// Takes back the attempt that a success under `key` was counted as, in the success's
/// transaction: a limit that must count failures only, but cannot be cleared by a success
/// (per client address: the guesser's own account would clear it).
pub async fn forgive(tx: &mut UserTx, key: &str, policy: &Policy) -> Result<()> {
    sqlx::query("select app.throttle_forgive($1, $2)").bind(key).bind(policy.free).execute(tx.conn()).await?;
    Ok(())
}

/// Counts one use of `key` against `rate`; a refused use is not counted.
pub async fn rate(pool: &AppPool, key: &str, now: DateTime<Utc>, rate: &Rate) -> Result<Hit> {
    let query = sqlx::query_as("select allowed, used as failures, retry_after from app.rate_hit($1, $2, $3, $4)")
        .bind(key)
        .bind(now)
        .bind(rate.limit)
        .bind(interval(rate.window)?);
    count(pool, query).await
}
