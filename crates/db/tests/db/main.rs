//! Integration tests of the database foundation against a real PostgreSQL. Isolation is
//! attacked as `app_user`, the role the application runs as; the superuser only arranges data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audiences;
mod audit;
mod breaker;
mod campaigns;
mod chain;
mod check;
mod citus;
mod content;
mod embedded;
mod identity;
mod import;
mod jobs;
mod migrate;
mod passkeys;
mod pooler;
mod rls;
mod schema;
mod segments;
mod senders;
mod signup;
mod webhooks;

use mos_db::{orgs, users, AppPool};
use mos_domain::{Email, OrgId, OrgName, Role, Slug, UserId};

/// A well-formed argon2id PHC string; these tests never verify it.
pub const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

/// Creates a user through the application path, as `app_user`.
pub async fn new_user(pool: &AppPool, email: &str) -> UserId {
    let user = UserId::new();
    let mut tx = pool.begin_user(user).await.unwrap();
    users::insert(&mut tx, &Email::parse(email).unwrap(), HASH, Some(chrono::Utc::now())).await.unwrap();
    tx.commit().await.unwrap();
    user
}

/// Creates an organization with `admin` as its ADMIN, through the application path.
pub async fn new_org(pool: &AppPool, slug: &str, admin: UserId) -> OrgId {
    let org = OrgId::new();
    let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
    orgs::insert(&mut tx, &Slug::parse(slug).unwrap(), &OrgName::parse(slug).unwrap()).await.unwrap();
    orgs::add_member(&mut tx, admin, Role::Admin).await.unwrap();
    tx.commit().await.unwrap();
    org
}

/// Runs each statement on its own, as the application does: on Citus, a `SET LOCAL` batched
/// with other statements in one message does not reach the workers.
pub async fn each(conn: &mut sqlx::PgConnection, statements: &[&str]) {
    for sql in statements {
        sqlx::raw_sql(sql).execute(&mut *conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate<T: std::fmt::Debug>(result: Result<T, sqlx::Error>) -> String {
    let err = result.expect_err("the statement should have failed");
    err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned()).unwrap_or_else(|| format!("{err}"))
}

/// Whether a failed statement was refused for lack of privilege (`42501`, which the guard
/// triggers and RLS raise too). On Citus a worker may refuse first, which the coordinator relays
/// as an internal error (`XX000`) carrying the worker's message or only the failed connection;
/// any other internal error is no refusal. Callers also check that the rows are still there.
pub fn refused_for_privilege(err: &sqlx::Error) -> bool {
    let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
    code.as_deref() == Some("42501")
        || mos_db::testing::backend() == mos_db::testing::Backend::Citus
            && code.as_deref() == Some("XX000")
            && ["permission denied", "failure on connection marked as essential"]
                .iter()
                .any(|m| err.to_string().contains(m))
}
