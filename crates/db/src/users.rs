//! Users and their private rows. Lookups that must happen before any request context exists go
//! through the narrow SECURITY DEFINER functions of the schema, never through open table access.

use chrono::{DateTime, Utc};

use crate::{AppPool, DbError, Result, UserTx};
use mos_domain::{Email, OrgId, Role, Slug, UserId};

/// What login needs to know about an account.
#[derive(Debug, Clone)]
pub struct LoginRecord {
    pub user: UserId,
    pub password_hash: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub totp_enabled: bool,
}

fn stored_user_id(id: uuid::Uuid) -> Result<UserId> {
    UserId::from_uuid(id).map_err(|_| DbError::Invalid {
        constraint: "users_id_v7".into(),
    })
}

/// Creates the user `tx` is scoped to. `verified` marks the address verified now (seeding,
/// invitations that proved the mailbox); everyone else verifies by token.
pub async fn insert(
    tx: &mut UserTx,
    email: &Email,
    password_hash: &str,
    verified: bool,
) -> Result<()> {
    sqlx::query(
        "insert into app.users (id, email, password_hash, email_verified_at)
         values ($1, $2, $3, case when $4 then now() end)",
    )
    .bind(tx.user().as_uuid())
    .bind(email.as_str())
    .bind(password_hash)
    .bind(verified)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The account behind an email address, for checking a password.
pub async fn find_login(pool: &AppPool, email: &Email) -> Result<Option<LoginRecord>> {
    let row: Option<(uuid::Uuid, String, Option<DateTime<Utc>>, bool)> = sqlx::query_as(
        "select user_id, password_hash, email_verified_at, totp_enabled from app.find_login($1)",
    )
    .bind(email.as_str())
    .fetch_optional(pool.definer_calls())
    .await?;
    row.map(|(id, password_hash, email_verified_at, totp_enabled)| {
        Ok(LoginRecord {
            user: stored_user_id(id)?,
            password_hash,
            email_verified_at,
            totp_enabled,
        })
    })
    .transpose()
}

/// Stores the SHA-256 of a fresh verification token for the user `tx` is scoped to.
pub async fn insert_email_verification(
    tx: &mut UserTx,
    token_hash: &[u8; 32],
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("insert into app.email_verification_tokens (id, user_id, token_hash, expires_at) values ($1, $2, $3, $4)")
        .bind(uuid::Uuid::now_v7())
        .bind(tx.user().as_uuid())
        .bind(&token_hash[..])
        .bind(expires_at)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Spends a verification token once; the user whose address it verified, or `None` for an
/// unknown, used or expired token (deliberately indistinguishable).
pub async fn redeem_email_verification(
    pool: &AppPool,
    token_hash: &[u8; 32],
) -> Result<Option<UserId>> {
    let user: Option<uuid::Uuid> = sqlx::query_scalar("select app.redeem_email_verification($1)")
        .bind(&token_hash[..])
        .fetch_one(pool.definer_calls())
        .await?;
    user.map(stored_user_id).transpose()
}

/// The organization behind `slug` and the role the user of `tx` holds in it; `None` both for
/// an unknown slug and for an organization the user does not belong to.
pub async fn membership(tx: &mut UserTx, slug: &Slug) -> Result<Option<(OrgId, Role)>> {
    let row: Option<(uuid::Uuid, String)> =
        sqlx::query_as("select organization_id, role::text from app.my_membership($1)")
            .bind(slug.as_str())
            .fetch_optional(tx.conn())
            .await?;
    row.map(|(org, role)| {
        let org = OrgId::from_uuid(org).map_err(|_| DbError::Invalid {
            constraint: "organizations_id_v7".into(),
        })?;
        let role = role.parse().map_err(|_| DbError::Invalid {
            constraint: "app.role".into(),
        })?;
        Ok((org, role))
    })
    .transpose()
}
