//! `mos seed`: a demo organization and its admin, made once through the same application path
//! (as `app_user`, audited) as anything a user does.

use anyhow::Context;
use mos_auth::PasswordHasher;
use mos_db::{orgs, users, AppPool, DbError};
use mos_domain::{Email, OrgId, OrgName, RequestSource, Slug, UserId};
use rand::distributions::{Alphanumeric, DistString};
use secrecy::SecretString;

use crate::database::Database;

const ORG_SLUG: &str = "demo";
const ORG_NAME: &str = "Demo Health";
const ADMIN_EMAIL: &str = "admin@demo.example.com";

pub async fn run(db: &Database) -> anyhow::Result<()> {
    db.prepare_schema().await?;
    let pool = db.app_pool().await?;
    let result = seed(&pool).await;
    pool.close().await;
    let outcome = result?;

    println!(
        "organization: {ORG_NAME} (slug `{ORG_SLUG}`){}",
        if outcome.org_created { "" } else { ", already there" }
    );
    println!("admin user:   {ADMIN_EMAIL} (ADMIN of `{ORG_SLUG}`)");
    match outcome.password {
        Some(password) => {
            println!("password:     {password}\n              shown once; it is stored only as an argon2id hash")
        }
        None => println!("password:     unchanged since the first `mos seed`"),
    }
    Ok(())
}

struct Outcome {
    org_created: bool,
    password: Option<String>,
}

fn parsed<T, E: std::error::Error + Send + Sync + 'static>(r: Result<T, E>) -> anyhow::Result<T> {
    r.context("built-in seed value")
}

async fn seed(pool: &AppPool) -> anyhow::Result<Outcome> {
    let email = parsed(Email::parse(ADMIN_EMAIL))?;
    let slug = parsed(Slug::parse(ORG_SLUG))?;

    let (admin, password) = match users::find_login(pool, &email).await? {
        Some(existing) => (existing.user, None),
        None => {
            let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 24);
            let hash = PasswordHasher::new(1).hash(SecretString::from(password.clone())).await?;
            let user = UserId::new();
            let mut tx = pool.begin_user(user).await?;
            users::insert(&mut tx, &email, &hash, Some(chrono::Utc::now())).await?;
            tx.commit().await?;
            (user, Some(password))
        }
    };

    let mut tx = pool.begin_user(admin).await?;
    let membership = orgs::access(&mut tx, &slug).await?;
    tx.commit().await?;
    if membership.is_some() {
        return Ok(Outcome { org_created: false, password });
    }

    let mut tx = pool.begin_tenant(OrgId::new(), Some(admin)).await?;
    // Where the request source of an API call names the client, the audit trail names the command.
    let source = RequestSource { user_agent: Some("mos seed".into()), ..RequestSource::default() };
    match orgs::create(&mut tx, &slug, &parsed(OrgName::parse(ORG_NAME))?, admin, &source).await {
        Err(DbError::Conflict { .. }) => {
            anyhow::bail!("the slug `{ORG_SLUG}` belongs to an organization that {ADMIN_EMAIL} is not a member of; seeding would not be idempotent, so nothing was changed")
        }
        other => other?,
    };
    tx.commit().await?;
    Ok(Outcome { org_created: true, password })
}
