//! The installation's credentials for delivery feedback posted over HTTP (migration 33): made,
//! listed and revoked by the operator on the database's own connection (`mos feedback
//! credential`), and checked by the application only through a definer function that answers
//! with the live credential's name for a token's hash.

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection, Postgres, Transaction};

use crate::{DbError, LookupTx, Result};
use mos_domain::TokenHash;

/// A credential's name, as the operator chose it: lowercase letters, digits and `._-`, up to 63.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(input: &str) -> Option<Self> {
        let mut chars = input.chars();
        let first = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        (first && rest && input.len() <= 63).then(|| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A credential as the operator sees it; its token is never kept.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Credential {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A transaction on the operator's connection (one that may act as `mos_owner`), in which the
/// functions below may write: the table's policy lets only the owner at it.
pub async fn operator(conn: &mut PgConnection) -> Result<Transaction<'_, Postgres>> {
    let mut tx = conn.begin().await?;
    sqlx::raw_sql("set local role mos_owner").execute(&mut *tx).await?;
    Ok(tx)
}

/// Keeps a new credential's hash under `name`; false when a live credential has that name.
pub async fn create(conn: &mut PgConnection, name: &Name, hash: &TokenHash, now: DateTime<Utc>) -> Result<bool> {
    let inserted =
        sqlx::query("insert into app.feedback_credentials (id, name, token_hash, created_at) values ($1, $2, $3, $4)")
            .bind(uuid::Uuid::now_v7())
            .bind(name.as_str())
            .bind(hash.as_bytes())
            .bind(now)
            .execute(conn)
            .await
            .map_err(DbError::from);
    match inserted {
        Ok(_) => Ok(true),
        Err(DbError::Conflict { constraint }) if constraint == "feedback_credentials_live_name" => Ok(false),
        Err(e) => Err(e),
    }
}

/// Ends the live credential of that name at once; false when there is none.
pub async fn revoke(conn: &mut PgConnection, name: &Name, now: DateTime<Utc>) -> Result<bool> {
    let revoked =
        sqlx::query("update app.feedback_credentials set revoked_at = $2 where name = $1 and revoked_at is null")
            .bind(name.as_str())
            .bind(now)
            .execute(conn)
            .await?;
    Ok(revoked.rows_affected() > 0)
}

/// Every credential, live ones first, newest first.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Credential>> {
    Ok(sqlx::query_as(
        "select name, created_at, revoked_at from app.feedback_credentials
          order by revoked_at is not null, created_at desc",
    )
    .fetch_all(conn)
    .await?)
}

/// The live credential a presented token's hash belongs to, by name.
pub async fn authenticate(tx: &mut LookupTx, hash: &TokenHash) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("select app.feedback_credential($1)").bind(hash.as_bytes()).fetch_one(tx.conn()).await?)
}
