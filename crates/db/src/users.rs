//! Users and their private rows. Lookups that must happen before any request context exists go
//! through the narrow SECURITY DEFINER functions of the schema, never through open table access.

use chrono::{DateTime, Utc};

use crate::error::stored;
use crate::{AppPool, LookupTx, Result, UserTx};
use mos_domain::{Email, TokenHash, UserId};

/// What login needs to know about an account.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoginRecord {
    #[sqlx(rename = "user_id", try_from = "uuid::Uuid")]
    pub user: UserId,
    pub password_hash: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub totp_enabled: bool,
}

/// What a user sees of their own account.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Profile {
    #[sqlx(try_from = "uuid::Uuid")]
    pub id: UserId,
    pub email: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub totp_enabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Creates the user `tx` is scoped to. `verified_at` marks the address verified (seeding,
/// invitations that proved the mailbox); everyone else verifies by token.
pub async fn insert(
    tx: &mut UserTx,
    email: &Email,
    password_hash: &str,
    verified_at: Option<DateTime<Utc>>,
) -> Result<()> {
    sqlx::query("insert into app.users (id, email, password_hash, email_verified_at) values ($1, $2, $3, $4)")
        .bind(tx.user().as_uuid())
        .bind(email.as_str())
        .bind(password_hash)
        .bind(verified_at)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The account behind an email address, for checking a password.
pub async fn find_login(pool: &AppPool, email: &Email) -> Result<Option<LoginRecord>> {
    let mut tx = pool.bare().await?;
    let record =
        sqlx::query_as("select user_id, password_hash, email_verified_at, totp_enabled from app.find_login($1)")
            .bind(email.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(record)
}

pub async fn profile(tx: &mut UserTx) -> Result<Option<Profile>> {
    Ok(sqlx::query_as("select id, email, email_verified_at, totp_enabled_at, created_at from app.users where id = $1")
        .bind(tx.user().as_uuid())
        .fetch_optional(tx.conn())
        .await?)
}

/// The stored hash of the user's password, for confirming it again.
pub async fn password_hash(tx: &mut UserTx) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("select password_hash from app.users where id = $1")
        .bind(tx.user().as_uuid())
        .fetch_optional(tx.conn())
        .await?)
}

pub async fn set_password_hash(tx: &mut UserTx, password_hash: &str, now: DateTime<Utc>) -> Result<()> {
    sqlx::query("update app.users set password_hash = $2, updated_at = $3 where id = $1")
        .bind(tx.user().as_uuid())
        .bind(password_hash)
        .bind(now)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The emailed single-use tokens, which share one shape.
#[derive(Debug, Clone, Copy)]
pub enum EmailToken {
    Verification,
    PasswordReset,
}

impl EmailToken {
    fn table(self) -> &'static str {
        match self {
            EmailToken::Verification => "app.email_verification_tokens",
            EmailToken::PasswordReset => "app.password_reset_tokens",
        }
    }

    fn redeem_function(self) -> &'static str {
        match self {
            EmailToken::Verification => "app.redeem_email_verification",
            EmailToken::PasswordReset => "app.redeem_password_reset",
        }
    }
}

/// Stores a fresh token of `kind` for the user of `tx`, replacing every unspent one: a resend
/// makes the older links useless.
pub async fn replace_email_token(
    tx: &mut UserTx,
    kind: EmailToken,
    token_hash: &TokenHash,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    let table = kind.table();
    sqlx::query(&format!("delete from {table} where user_id = $1 and used_at is null"))
        .bind(tx.user().as_uuid())
        .execute(tx.conn())
        .await?;
    insert_token(tx, table, token_hash, now, expires_at).await
}

/// A row of one of the token tables, which share their shape: the SHA-256 of a random token
/// for the user of `tx`, with its lifetime.
pub(crate) async fn insert_token(
    tx: &mut UserTx,
    table: &str,
    token_hash: &TokenHash,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(&format!(
        "insert into {table} (id, user_id, token_hash, created_at, expires_at) values ($1, $2, $3, $4, $5)"
    ))
    .bind(uuid::Uuid::now_v7())
    .bind(tx.user().as_uuid())
    .bind(token_hash.as_bytes())
    .bind(now)
    .bind(expires_at)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Spends a token once; the user it was for, or `None` for an unknown, spent or expired token
/// (deliberately indistinguishable). For verification, the address is marked verified too.
pub async fn redeem_email_token(
    tx: &mut LookupTx,
    kind: EmailToken,
    token_hash: &TokenHash,
    now: DateTime<Utc>,
) -> Result<Option<UserId>> {
    let user: Option<uuid::Uuid> = sqlx::query_scalar(&format!("select {}($1, $2)", kind.redeem_function()))
        .bind(token_hash.as_bytes())
        .bind(now)
        .fetch_one(tx.conn())
        .await?;
    user.map(|id| UserId::from_uuid(id).map_err(|_| stored("users_id_v7"))).transpose()
}

/// The sealed TOTP secret and the last step accepted, when two-factor is on.
pub async fn totp(tx: &mut UserTx) -> Result<Option<(Vec<u8>, Option<i64>)>> {
    let row: Option<TotpRow> = sqlx::query_as(
        "select totp_secret_encrypted as secret, totp_last_used_step as last_step from app.users
          where id = $1 and totp_enabled_at is not null",
    )
    .bind(tx.user().as_uuid())
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.and_then(|r| r.secret.map(|s| (s, r.last_step))))
}

#[derive(sqlx::FromRow)]
struct TotpRow {
    secret: Option<Vec<u8>>,
    last_step: Option<i64>,
}

/// Accepts a TOTP step only if it is later than every step accepted before: a compare-and-set,
/// so a code is good once even when two requests race with it (RFC 6238 §5.2).
pub async fn advance_totp_step(tx: &mut UserTx, step: i64) -> Result<bool> {
    let done = sqlx::query(
        "update app.users set totp_last_used_step = $2
          where id = $1 and totp_enabled_at is not null and coalesce(totp_last_used_step, -1) < $2",
    )
    .bind(tx.user().as_uuid())
    .bind(step)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Parks a sealed secret until the user proves their authenticator has it.
pub async fn put_totp_setup(
    tx: &mut UserTx,
    sealed: &[u8],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "insert into app.totp_setups (user_id, secret_encrypted, created_at, expires_at) values ($1, $2, $3, $4)
         on conflict (user_id) do update set secret_encrypted = excluded.secret_encrypted,
                                             created_at = excluded.created_at, expires_at = excluded.expires_at",
    )
    .bind(tx.user().as_uuid())
    .bind(sealed)
    .bind(now)
    .bind(expires_at)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The pending enrollment, if it has not expired.
pub async fn totp_setup(tx: &mut UserTx, now: DateTime<Utc>) -> Result<Option<Vec<u8>>> {
    Ok(sqlx::query_scalar("select secret_encrypted from app.totp_setups where user_id = $1 and expires_at > $2")
        .bind(tx.user().as_uuid())
        .bind(now)
        .fetch_optional(tx.conn())
        .await?)
}

/// Turns two-factor on with the confirmed secret, which must be sealed for this user, and
/// replaces the recovery codes.
pub async fn enable_totp(
    tx: &mut UserTx,
    sealed: &[u8],
    step: i64,
    recovery: &[TokenHash],
    now: DateTime<Utc>,
) -> Result<()> {
    let user = tx.user().as_uuid();
    sqlx::query("delete from app.totp_setups where user_id = $1").bind(user).execute(tx.conn()).await?;
    sqlx::query(
        "update app.users set totp_secret_encrypted = $2, totp_enabled_at = $3, totp_last_used_step = $4, updated_at = $3 where id = $1",
    )
    .bind(user)
    .bind(sealed)
    .bind(now)
    .bind(step)
    .execute(tx.conn())
    .await?;
    sqlx::query("delete from app.recovery_codes where user_id = $1").bind(user).execute(tx.conn()).await?;
    let hashes: Vec<Vec<u8>> = recovery.iter().map(|h| h.as_bytes().to_vec()).collect();
    sqlx::query(
        "insert into app.recovery_codes (user_id, code_hash, created_at) select $1, h, $3 from unnest($2::bytea[]) h",
    )
    .bind(user)
    .bind(&hashes)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn disable_totp(tx: &mut UserTx, now: DateTime<Utc>) -> Result<()> {
    let user = tx.user().as_uuid();
    sqlx::query(
        "update app.users set totp_secret_encrypted = null, totp_enabled_at = null, totp_last_used_step = null, updated_at = $2 where id = $1",
    )
    .bind(user)
    .bind(now)
    .execute(tx.conn())
    .await?;
    sqlx::query("delete from app.recovery_codes where user_id = $1").bind(user).execute(tx.conn()).await?;
    Ok(())
}

/// Spends a recovery code once; false for an unknown or spent one.
pub async fn use_recovery_code(tx: &mut UserTx, code_hash: &TokenHash, now: DateTime<Utc>) -> Result<bool> {
    let done = sqlx::query(
        "update app.recovery_codes set used_at = $3 where user_id = $1 and code_hash = $2 and used_at is null",
    )
    .bind(tx.user().as_uuid())
    .bind(code_hash.as_bytes())
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn recovery_codes_left(tx: &mut UserTx) -> Result<i64> {
    Ok(sqlx::query_scalar("select count(*) from app.recovery_codes where user_id = $1 and used_at is null")
        .bind(tx.user().as_uuid())
        .fetch_one(tx.conn())
        .await?)
}
