//! Passkeys and WebAuthn ceremonies. A user's passkeys are theirs alone ([`UserTx`]); a
//! ceremony's server-side state is kept until it is finished once, and found before the user
//! may be known, through SECURITY DEFINER functions like the login challenge.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{AppPool, Result, UserTx};
use mos_domain::{OrgId, OrgName, Slug, TokenHash, UserId};

/// A passkey as stored: the relying party's credential (JSON) and what people and checks read.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Stored {
    pub id: uuid::Uuid,
    pub credential_id: Vec<u8>,
    pub name: String,
    pub credential: sqlx::types::Json<Value>,
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub transports: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A new passkey of the user of the transaction.
pub struct New<'a> {
    pub credential_id: &'a [u8],
    pub name: &'a str,
    pub credential: Value,
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub transports: Vec<String>,
    pub now: DateTime<Utc>,
}

/// Why a ceremony exists; each is finished only by the step it was begun for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Register,
    SecondFactor,
    Passwordless,
    Reauthenticate,
}

impl Purpose {
    /// The label the database keeps, and the audit records name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::SecondFactor => "second_factor",
            Purpose::Passwordless => "passwordless",
            Purpose::Reauthenticate => "reauthenticate",
        }
    }
}

const COLUMNS: &str = "id, credential_id, name, credential, sign_count, backup_eligible, backup_state, transports,
    created_at, last_used_at";

/// The user's passkeys, oldest first.
pub async fn list(tx: &mut UserTx) -> Result<Vec<Stored>> {
    Ok(sqlx::query_as(&format!("select {COLUMNS} from app.passkeys where user_id = $1 order by created_at, id"))
        .bind(tx.user().as_uuid())
        .fetch_all(tx.conn())
        .await?)
}

/// Whether the user has a passkey at all.
pub async fn any(tx: &mut UserTx) -> Result<bool> {
    Ok(sqlx::query_scalar("select exists (select from app.passkeys where user_id = $1)")
        .bind(tx.user().as_uuid())
        .fetch_one(tx.conn())
        .await?)
}

/// Stores a new passkey; a credential id registered before (to anyone) is a
/// [`crate::DbError::Conflict`].
pub async fn add(tx: &mut UserTx, new: New<'_>) -> Result<Stored> {
    Ok(sqlx::query_as(&format!(
        "insert into app.passkeys (id, user_id, credential_id, name, credential, sign_count, backup_eligible,
                                   backup_state, transports, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         returning {COLUMNS}"
    ))
    .bind(uuid::Uuid::now_v7())
    .bind(tx.user().as_uuid())
    .bind(new.credential_id)
    .bind(new.name)
    .bind(sqlx::types::Json(&new.credential))
    .bind(new.sign_count)
    .bind(new.backup_eligible)
    .bind(new.backup_state)
    .bind(&new.transports)
    .bind(new.now)
    .fetch_one(tx.conn())
    .await?)
}

/// What a finished sign-in changes of a passkey: its counter, backup state and credential.
pub async fn used(
    tx: &mut UserTx,
    id: uuid::Uuid,
    credential: Value,
    sign_count: i64,
    backup_state: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "update app.passkeys
            set credential = $3, sign_count = $4, backup_state = $5, last_used_at = $6
          where user_id = $1 and id = $2",
    )
    .bind(tx.user().as_uuid())
    .bind(id)
    .bind(sqlx::types::Json(&credential))
    .bind(sign_count)
    .bind(backup_state)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Renames one of the user's passkeys; false when they have no such passkey.
pub async fn rename(tx: &mut UserTx, id: uuid::Uuid, name: &str) -> Result<bool> {
    let done = sqlx::query("update app.passkeys set name = $3 where user_id = $1 and id = $2")
        .bind(tx.user().as_uuid())
        .bind(id)
        .bind(name)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes one of the user's passkeys; its name, or `None` when they have no such passkey.
pub async fn remove(tx: &mut UserTx, id: uuid::Uuid) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("delete from app.passkeys where user_id = $1 and id = $2 returning name")
        .bind(tx.user().as_uuid())
        .bind(id)
        .fetch_optional(tx.conn())
        .await?)
}

/// The account a credential belongs to, before anyone is signed in.
pub async fn owner(pool: &AppPool, credential_id: &[u8]) -> Result<Option<UserId>> {
    let mut tx = pool.bare().await?;
    let owner: Option<uuid::Uuid> =
        sqlx::query_scalar("select app.passkey_owner($1)").bind(credential_id).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    owner.map(|u| UserId::from_uuid(u).map_err(|_| crate::error::stored("users_id_v7"))).transpose()
}

/// Keeps a ceremony's state until `expires_at`, under the hash of the handle the client holds.
pub async fn begin_ceremony(
    pool: &AppPool,
    handle: &TokenHash,
    purpose: Purpose,
    user: Option<UserId>,
    state: Value,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    let mut tx = pool.bare().await?;
    sqlx::query("select app.webauthn_begin($1, $2, $3, $4, $5, $6)")
        .bind(handle.as_bytes())
        .bind(purpose.as_str())
        .bind(user.map(|u| u.as_uuid()))
        .bind(sqlx::types::Json(&state))
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct SpentCeremony {
    user_id: Option<uuid::Uuid>,
    state: sqlx::types::Json<Value>,
}

/// Spends the live ceremony of `purpose` behind `handle`, once: its user (none for a
/// passwordless one) and state. Spent even when what follows fails, so a challenge is never
/// answered twice.
pub async fn spend_ceremony(
    pool: &AppPool,
    handle: &TokenHash,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> Result<Option<(Option<UserId>, Value)>> {
    let mut tx = pool.bare().await?;
    let spent: Option<SpentCeremony> = sqlx::query_as("select user_id, state from app.webauthn_take($1, $2, $3)")
        .bind(handle.as_bytes())
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    spent
        .map(|t| {
            let user = t.user_id.map(UserId::from_uuid).transpose().map_err(|_| crate::error::stored("users_id_v7"))?;
            Ok((user, t.state.0))
        })
        .transpose()
}

/// An organization of the user that requires phishing-resistant sign-in.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StrictOrganization {
    #[sqlx(rename = "organization_id", try_from = "uuid::Uuid")]
    pub org: OrgId,
    #[sqlx(try_from = "String")]
    pub slug: Slug,
    #[sqlx(try_from = "String")]
    pub name: OrgName,
}

/// The organizations of the user of `tx` that require phishing-resistant sign-in, by slug.
pub async fn strict_organizations(tx: &mut UserTx) -> Result<Vec<StrictOrganization>> {
    Ok(sqlx::query_as("select organization_id, slug, name from app.my_phishing_resistant_organizations()")
        .fetch_all(tx.conn())
        .await?)
}

/// Stores the hash of a fresh enrollment link for the user of `tx`, replacing every unspent
/// one: the latest mail is the only link that works.
pub async fn replace_enrollment(
    tx: &mut UserTx,
    token_hash: &TokenHash,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("delete from app.passkey_enrollments where user_id = $1 and used_at is null")
        .bind(tx.user().as_uuid())
        .execute(tx.conn())
        .await?;
    crate::users::insert_token(tx, "app.passkey_enrollments", token_hash, now, expires_at).await
}

/// Whether the enrollment link behind `token_hash` is the user's, unspent and unexpired.
pub async fn enrollment_open(tx: &mut UserTx, token_hash: &TokenHash, now: DateTime<Utc>) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "select exists (select from app.passkey_enrollments
                         where user_id = $1 and token_hash = $2 and used_at is null and expires_at > $3)",
    )
    .bind(tx.user().as_uuid())
    .bind(token_hash.as_bytes())
    .bind(now)
    .fetch_one(tx.conn())
    .await?)
}

/// Spends the user's enrollment link behind `token_hash`, once; false when it is not the
/// user's, spent or expired. Two requests with the same link queue on its row, and the second
/// finds it spent.
pub async fn spend_enrollment(tx: &mut UserTx, token_hash: &TokenHash, now: DateTime<Utc>) -> Result<bool> {
    let done = sqlx::query(
        "update app.passkey_enrollments set used_at = $3
          where user_id = $1 and token_hash = $2 and used_at is null and expires_at > $3",
    )
    .bind(tx.user().as_uuid())
    .bind(token_hash.as_bytes())
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}
