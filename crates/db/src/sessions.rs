//! Sessions and login challenges. Both are found by the SHA-256 of an opaque token through a
//! SECURITY DEFINER function, before the user is known; everything else happens in the user's
//! own [`UserTx`].

use chrono::{DateTime, Duration, Utc};
use sqlx::postgres::types::PgInterval;
use sqlx::types::ipnetwork::IpNetwork;

use crate::error::stored;
use crate::{AppPool, DbError, Result, UserTx};
use mos_domain::{RequestSource, SessionId, TokenHash, UserId};

/// A live session, as a request presents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live {
    pub id: SessionId,
    pub user: UserId,
    pub authenticated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Whether the user has two-factor authentication on.
    pub two_factor_enabled: bool,
    /// Whether a passkey established the session (or confirmed it since).
    pub phishing_resistant: bool,
}

/// A session as its owner sees it in the list of their devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: SessionId,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ListedRow {
    id: uuid::Uuid,
    created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ip: Option<IpNetwork>,
    user_agent: Option<String>,
}

pub(crate) fn interval(d: Duration) -> Result<PgInterval> {
    PgInterval::try_from(d).map_err(|e| DbError::Sqlx(sqlx::Error::Encode(e)))
}

fn session_id(id: uuid::Uuid) -> Result<SessionId> {
    SessionId::from_uuid(id).map_err(|_| stored("sessions_id_v7"))
}

/// Starts a session for the user of `tx`, authenticated now; `phishing_resistant` when a
/// passkey proved the user.
pub async fn create(
    tx: &mut UserTx,
    token_hash: &TokenHash,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    source: &RequestSource,
    phishing_resistant: bool,
) -> Result<SessionId> {
    let id = SessionId::new();
    sqlx::query(
        "insert into app.sessions (id, user_id, token_hash, created_at, last_seen_at, authenticated_at, expires_at, ip,
                                   user_agent, phishing_resistant)
         values ($1, $2, $3, $4, $4, $4, $5, $6, $7, $8)",
    )
    .bind(id.as_uuid())
    .bind(tx.user().as_uuid())
    .bind(token_hash.as_bytes())
    .bind(now)
    .bind(expires_at)
    .bind(source.ip.map(IpNetwork::from))
    .bind(source.user_agent.as_deref())
    .bind(phishing_resistant)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// The user's sessions that are still usable, newest first.
pub async fn list_live(tx: &mut UserTx, now: DateTime<Utc>, idle: Duration) -> Result<Vec<Listed>> {
    let rows: Vec<ListedRow> = sqlx::query_as(
        "select id, created_at, last_seen_at, expires_at, ip, user_agent from app.sessions
          where user_id = $1 and revoked_at is null and expires_at > $2 and last_seen_at + $3 > $2
          order by created_at desc, id desc",
    )
    .bind(tx.user().as_uuid())
    .bind(now)
    .bind(interval(idle)?)
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|s| {
            Ok(Listed {
                id: session_id(s.id)?,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                ip: s.ip.map(|n| n.ip()),
                user_agent: s.user_agent,
            })
        })
        .collect()
}

/// Ends one of the user's sessions; false when there is no such live session of theirs.
pub async fn revoke(tx: &mut UserTx, id: SessionId, now: DateTime<Utc>) -> Result<bool> {
    let done =
        sqlx::query("update app.sessions set revoked_at = $3 where user_id = $1 and id = $2 and revoked_at is null")
            .bind(tx.user().as_uuid())
            .bind(id.as_uuid())
            .bind(now)
            .execute(tx.conn())
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends every session of the user; how many there were.
pub async fn revoke_all(tx: &mut UserTx, now: DateTime<Utc>) -> Result<u64> {
    let done = sqlx::query("update app.sessions set revoked_at = $2 where user_id = $1 and revoked_at is null")
        .bind(tx.user().as_uuid())
        .bind(now)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected())
}

/// Records that the user proved themselves again in this session; with a passkey, the
/// session counts as phishing-resistant from then on (a stolen token cannot do this step).
pub async fn reauthenticated(tx: &mut UserTx, id: SessionId, now: DateTime<Utc>, passkey: bool) -> Result<()> {
    sqlx::query(
        "update app.sessions set authenticated_at = $3, phishing_resistant = phishing_resistant or $4
          where user_id = $1 and id = $2",
    )
    .bind(tx.user().as_uuid())
    .bind(id.as_uuid())
    .bind(now)
    .bind(passkey)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Issues the second-step challenge of a login for the user of `tx`.
pub async fn create_challenge(
    tx: &mut UserTx,
    token_hash: &TokenHash,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    crate::users::insert_token(tx, "app.login_challenges", token_hash, now, expires_at).await
}

/// Spends one attempt of a challenge, committed at once so that a failed code still counts;
/// the challenge and its user while attempts remain.
pub async fn attempt_challenge(
    pool: &AppPool,
    token_hash: &TokenHash,
    now: DateTime<Utc>,
    max_attempts: i32,
) -> Result<Option<ChallengeAttempt>> {
    let mut tx = pool.bare().await?;
    let attempt = sqlx::query_as("select challenge_id, user_id from app.login_challenge_attempt($1, $2, $3)")
        .bind(token_hash.as_bytes())
        .bind(now)
        .bind(max_attempts)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(attempt)
}

/// A challenge with attempts left, and whose it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ChallengeAttempt {
    #[sqlx(rename = "challenge_id")]
    pub challenge: uuid::Uuid,
    #[sqlx(rename = "user_id", try_from = "uuid::Uuid")]
    pub user: UserId,
}

/// Marks a challenge spent; false if a concurrent request spent it first.
pub async fn consume_challenge(tx: &mut UserTx, challenge: uuid::Uuid, now: DateTime<Utc>) -> Result<bool> {
    let done = sqlx::query(
        "update app.login_challenges set consumed_at = $3 where user_id = $1 and id = $2 and consumed_at is null",
    )
    .bind(tx.user().as_uuid())
    .bind(challenge)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}
