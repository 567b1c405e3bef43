//! The sign-up's confirmation links (migration 16), attacked as `app_user`: spent once, dead
//! after their expiry, fixed to what they were issued for, and one tenant's invisible to
//! another's.

use chrono::{Duration, Utc};
use mos_db::audiences::consent::{self, Basis, Evidence, Provenance, Record};
use mos_db::audiences::purposes;
use mos_db::audiences::signup::{self, Pending};
use mos_db::testing::TestDb;
use mos_db::AppPool;
use mos_domain::audiences::{ConsentKind, NoticeText};
use mos_domain::{Email, OrgId, RequestSource, Slug, TokenHash};

use crate::{new_org, new_user, refused_for_privilege};

/// An organization with a pending sign-up and the hash of its link's token.
async fn pending_signup(pool: &AppPool, slug: &str) -> (OrgId, Pending) {
    let admin = new_user(pool, &format!("admin@{slug}.example")).await;
    let org = new_org(pool, slug, admin).await;
    let now = Utc::now();
    let source = RequestSource::default();
    let mut tx = pool.begin_tenant(org, None).await.unwrap();
    let purpose = purposes::create(&mut tx, "Newsletter", false, admin, now, &source).await.unwrap();
    let text = NoticeText::parse("Monthly news.").unwrap();
    let notice = purposes::publish_notice(&mut tx, purpose, &text, admin, now, &source).await.unwrap();
    let keys = mos_auth::AddressKeys::derive(b"the server's configured secret");
    let address = Email::parse("ada@patients.example").unwrap();
    let contact = signup::contact_for(&mut tx, &keys, &address, now, &source).await.unwrap();
    let evidence = Evidence { ip: Some("192.0.2.7".parse().unwrap()), user_agent: Some("Mozilla/5.0".into()) };
    let record = Record {
        contact,
        purpose,
        kind: ConsentKind::Grant,
        basis: Some(&Basis::Consent),
        notice: Some(notice),
        provenance: Provenance::SignupForm,
        evidence: Some(&evidence),
        now,
    };
    let (grant, _) = consent::append(&mut tx, &record, &source).await.unwrap();
    let pending = Pending { contact, purpose, grant };
    signup::issue(&mut tx, &TokenHash([7; 32]), &pending, now, now + Duration::hours(48)).await.unwrap();
    tx.commit().await.unwrap();
    (org, pending)
}

#[tokio::test]
async fn a_link_is_spent_once_and_the_spent_mark_cannot_be_taken_back() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let (org, pending) = pending_signup(&pool, "acme").await;
    let token = TokenHash([7; 32]);

    let mut tx = pool.begin_tenant(org, None).await.unwrap();
    assert_eq!(signup::peek(&mut tx, &token, Utc::now()).await.unwrap(), Some(pending), "looking spends nothing");
    assert_eq!(signup::peek(&mut tx, &token, Utc::now()).await.unwrap(), Some(pending));
    assert_eq!(signup::spend(&mut tx, &token, Utc::now()).await.unwrap(), Some(pending));
    assert_eq!(signup::spend(&mut tx, &token, Utc::now()).await.unwrap(), None);
    assert_eq!(signup::peek(&mut tx, &token, Utc::now()).await.unwrap(), None);
    tx.commit().await.unwrap();

    let mut tx = pool.begin_tenant(org, None).await.unwrap();
    let unspent = sqlx::query("update app.signup_confirmations set used_at = null where organization_id = $1")
        .bind(org.as_uuid())
        .execute(tx.conn())
        .await;
    let err = unspent.expect_err("a spent link stays spent");
    assert!(err.to_string().contains("a confirmation link is spent once"), "{err}");
}

#[tokio::test]
async fn app_user_can_neither_redirect_nor_extend_nor_delete_a_link() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let (org, _) = pending_signup(&pool, "acme").await;
    for sql in [
        "update app.signup_confirmations set token_hash = sha256('mine') where organization_id = $1",
        "update app.signup_confirmations set expires_at = '2100-01-01T00:00:00Z' where organization_id = $1",
        "update app.signup_confirmations set contact_id = '0190d6c2-0000-7000-8000-000000000000' where organization_id = $1",
        "delete from app.signup_confirmations where organization_id = $1",
    ] {
        let mut tx = pool.begin_tenant(org, None).await.unwrap();
        let err = sqlx::query(sql).bind(org.as_uuid()).execute(tx.conn()).await.expect_err(sql);
        assert!(refused_for_privilege(&err), "{sql}: {err}");
    }
    let mut tx = pool.begin_tenant(org, None).await.unwrap();
    assert!(signup::peek(&mut tx, &TokenHash([7; 32]), Utc::now()).await.unwrap().is_some(), "still as issued");
}

#[tokio::test]
async fn an_expired_link_is_dead_and_another_tenants_link_is_not_there() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let (acme, pending) = pending_signup(&pool, "acme").await;
    let (globex, _) = pending_signup(&pool, "globex").await;
    let token = TokenHash([7; 32]);

    // Both tenants hold a link of the same hash: each sees its own only.
    let mut tx = pool.begin_tenant(globex, None).await.unwrap();
    let seen: i64 =
        sqlx::query_scalar("select count(*) from app.signup_confirmations").fetch_one(tx.conn()).await.unwrap();
    assert_eq!(seen, 1);
    let other: i64 = sqlx::query_scalar("select count(*) from app.signup_confirmations where organization_id = $1")
        .bind(acme.as_uuid())
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(other, 0);
    let planted = sqlx::query(
        "insert into app.signup_confirmations
                (organization_id, token_hash, contact_id, purpose_id, grant_event_id, created_at, expires_at)
         values ($1, sha256('x'), $2, $3, $4, now(), now() + interval '1 hour')",
    )
    .bind(acme.as_uuid())
    .bind(pending.contact.as_uuid())
    .bind(pending.purpose.as_uuid())
    .bind(pending.grant.as_uuid())
    .execute(tx.conn())
    .await
    .expect_err("a row for another tenant");
    assert!(refused_for_privilege(&planted), "{planted}");
    drop(tx);

    let mut tx = pool.begin_tenant(acme, None).await.unwrap();
    let late = Utc::now() + Duration::hours(48);
    assert_eq!(signup::peek(&mut tx, &token, late).await.unwrap(), None);
    assert_eq!(signup::spend(&mut tx, &token, late).await.unwrap(), None);
    assert_eq!(signup::spend(&mut tx, &token, Utc::now()).await.unwrap(), Some(pending), "still good before");
}

#[tokio::test]
async fn the_public_lookup_names_an_organization_by_its_slug_and_nothing_else() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let (acme, _) = pending_signup(&pool, "acme").await;
    let found = signup::organization(&pool, &Slug::parse("acme").unwrap()).await.unwrap().unwrap();
    assert_eq!((found.id, found.name.as_str()), (acme, "acme"));
    assert_eq!(signup::organization(&pool, &Slug::parse("nobody").unwrap()).await.unwrap(), None);
    // app_user itself still reads no organization without a tenant.
    let mut conn = db.app_user().await;
    let seen: i64 = sqlx::query_scalar("select count(*) from app.organizations").fetch_one(&mut conn).await.unwrap();
    assert_eq!(seen, 0);
}

#[tokio::test]
async fn two_sign_ups_of_a_new_address_at_once_end_with_one_contact_and_no_error() {
    mos_db::testing::requires(
        mos_db::testing::Backend::Postgres,
        "the waiting insert is watched in the one server's pg_stat_activity",
    );
    let db = TestDb::new().await;
    let pool = db.app_pool(3).await;
    let admin = new_user(&pool, "admin@acme.example").await;
    let org = new_org(&pool, "acme", admin).await;
    let keys = std::sync::Arc::new(mos_auth::AddressKeys::derive(b"the server's configured secret"));
    let address = Email::parse("ada@patients.example").unwrap();
    let source = RequestSource::default();

    let mut first = pool.begin_tenant(org, None).await.unwrap();
    let made = signup::contact_for(&mut first, keys.as_ref(), &address, Utc::now(), &source).await.unwrap();
    let second = tokio::spawn({
        let (pool, keys, address, source) = (pool.clone(), keys.clone(), address.clone(), source.clone());
        async move {
            let mut tx = pool.begin_tenant(org, None).await?;
            let found = signup::contact_for(&mut tx, keys.as_ref(), &address, Utc::now(), &source).await?;
            tx.commit().await?;
            Ok::<_, mos_db::DbError>(found)
        }
    });
    // The second sign-up's insert waits for the first transaction's row.
    let mut su = db.superuser().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
              where datname = current_database() and wait_event_type = 'Lock' and query like 'insert into app.contacts%'",
        )
        .fetch_one(&mut su)
        .await
        .unwrap();
        if waiting == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the second sign-up never reached the insert");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    first.commit().await.unwrap();
    assert_eq!(second.await.unwrap().unwrap(), made, "the second finds the contact the first made");

    let mut tx = pool.begin_tenant(org, None).await.unwrap();
    let counts: (i64, i64) = sqlx::query_as(
        "select (select count(*) from app.contacts where organization_id = $1),
                (select count(*) from app.audit_logs where organization_id = $1 and action = 'contact.created')",
    )
    .bind(org.as_uuid())
    .fetch_one(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(counts, (1, 1), "one contact, created once");
}
