//! Passkeys are a user's own, a WebAuthn ceremony is spent once, before it expires, by the step
//! it was begun for, and so is a mailed enrollment link, by its own user: tried as `app_user`.

use chrono::{Duration, Utc};
use mos_db::passkeys::{self, Purpose};
use mos_db::testing::TestDb;
use mos_domain::TokenHash;
use serde_json::json;

use crate::{new_org, new_user, sqlstate};

fn passkey(credential_id: &[u8]) -> passkeys::New<'_> {
    passkeys::New {
        credential_id,
        name: "Laptop",
        credential: json!({ "cred": "opaque to the database" }),
        sign_count: 0,
        backup_eligible: true,
        backup_state: false,
        transports: vec!["internal".into()],
        now: Utc::now(),
    }
}

#[tokio::test]
async fn a_user_sees_and_changes_only_their_own_passkeys_and_a_credential_belongs_to_one_account() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let ada = new_user(&pool, "ada@example.com").await;
    let bob = new_user(&pool, "bob@example.com").await;
    let mut tx = pool.begin_user(ada).await.unwrap();
    let added = passkeys::add(&mut tx, passkey(&[1; 32])).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = pool.begin_user(bob).await.unwrap();
    assert!(passkeys::list(&mut tx).await.unwrap().is_empty());
    assert!(!passkeys::rename(&mut tx, added.id, "Mine now").await.unwrap());
    assert_eq!(passkeys::remove(&mut tx, added.id).await.unwrap(), None);
    let taken = passkeys::add(&mut tx, passkey(&[1; 32])).await;
    assert!(matches!(taken, Err(mos_db::DbError::Conflict { .. })), "one credential, one account: {taken:?}");
    tx.rollback().await.unwrap();

    let mut bare = db.app_user().await;
    let seen: i64 = sqlx::query_scalar("select count(*) from app.passkeys").fetch_one(&mut bare).await.unwrap();
    assert_eq!(seen, 0, "without a user, no passkey");
    let ceremonies = sqlx::query("select * from app.webauthn_ceremonies").fetch_all(&mut bare).await;
    assert_eq!(sqlstate(ceremonies), "42501", "ceremonies only through their functions");
    assert_eq!(passkeys::owner(&pool, &[1; 32]).await.unwrap(), Some(ada));
    assert_eq!(passkeys::owner(&pool, &[2; 32]).await.unwrap(), None);
}

#[tokio::test]
async fn a_ceremony_is_spent_once_by_its_own_step_and_not_after_it_expires() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let ada = new_user(&pool, "ada@example.com").await;
    let now = Utc::now();
    let state = json!({ "challenge": "abc" });
    let handle = TokenHash([7; 32]);
    passkeys::begin_ceremony(
        &pool,
        &handle,
        Purpose::Reauthenticate,
        Some(ada),
        state.clone(),
        now,
        now + Duration::minutes(5),
    )
    .await
    .unwrap();
    assert_eq!(
        passkeys::spend_ceremony(&pool, &handle, Purpose::Passwordless, now).await.unwrap(),
        None,
        "another step"
    );
    assert_eq!(
        passkeys::spend_ceremony(&pool, &handle, Purpose::Reauthenticate, now).await.unwrap(),
        Some((Some(ada), state))
    );
    assert_eq!(passkeys::spend_ceremony(&pool, &handle, Purpose::Reauthenticate, now).await.unwrap(), None, "spent");

    let late = TokenHash([8; 32]);
    passkeys::begin_ceremony(&pool, &late, Purpose::Passwordless, None, json!({}), now, now + Duration::minutes(5))
        .await
        .unwrap();
    let expired =
        passkeys::spend_ceremony(&pool, &late, Purpose::Passwordless, now + Duration::minutes(5)).await.unwrap();
    assert_eq!(expired, None);
}

#[tokio::test]
async fn an_enrollment_link_is_its_users_alone_spent_once_and_not_after_it_expires() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let ada = new_user(&pool, "ada@example.com").await;
    let bob = new_user(&pool, "bob@example.com").await;
    let now = Utc::now();
    let link = TokenHash([3; 32]);
    let mut tx = pool.begin_user(ada).await.unwrap();
    passkeys::replace_enrollment(&mut tx, &TokenHash([2; 32]), now, now + Duration::minutes(30)).await.unwrap();
    passkeys::replace_enrollment(&mut tx, &link, now, now + Duration::minutes(30)).await.unwrap();
    assert!(!passkeys::enrollment_open(&mut tx, &TokenHash([2; 32]), now).await.unwrap(), "replaced");
    tx.commit().await.unwrap();

    let mut tx = pool.begin_user(bob).await.unwrap();
    assert!(!passkeys::enrollment_open(&mut tx, &link, now).await.unwrap(), "not bob's");
    assert!(!passkeys::spend_enrollment(&mut tx, &link, now).await.unwrap());
    let seen: i64 =
        sqlx::query_scalar("select count(*) from app.passkey_enrollments").fetch_one(tx.conn()).await.unwrap();
    assert_eq!(seen, 0, "bob sees none of ada's links");
    tx.rollback().await.unwrap();
    let mut bare = db.app_user().await;
    let seen: i64 =
        sqlx::query_scalar("select count(*) from app.passkey_enrollments").fetch_one(&mut bare).await.unwrap();
    assert_eq!(seen, 0, "without a user, no link");

    let mut tx = pool.begin_user(ada).await.unwrap();
    let late = now + Duration::minutes(30);
    assert!(!passkeys::enrollment_open(&mut tx, &link, late).await.unwrap(), "expired");
    assert!(!passkeys::spend_enrollment(&mut tx, &link, late).await.unwrap(), "expired");
    assert!(passkeys::enrollment_open(&mut tx, &link, now).await.unwrap());
    assert!(passkeys::spend_enrollment(&mut tx, &link, now).await.unwrap());
    assert!(!passkeys::spend_enrollment(&mut tx, &link, now).await.unwrap(), "spent");
    assert!(!passkeys::enrollment_open(&mut tx, &link, now).await.unwrap(), "spent");
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_user_learns_which_of_their_own_organizations_require_passkeys_and_no_others() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let ada = new_user(&pool, "ada@example.com").await;
    let bob = new_user(&pool, "bob@example.com").await;
    let strict = new_org(&pool, "strict", ada).await;
    new_org(&pool, "relaxed", ada).await;
    let others = new_org(&pool, "others", bob).await;
    for org in [strict, others] {
        let mut tx = pool.begin_tenant(org, None).await.unwrap();
        sqlx::query("update app.organizations set require_phishing_resistant = true where id = $1")
            .bind(org.as_uuid())
            .execute(tx.conn())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let mut tx = pool.begin_user(ada).await.unwrap();
    let found = passkeys::strict_organizations(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    let slugs: Vec<&str> = found.iter().map(|o| o.slug.as_str()).collect();
    assert_eq!(slugs, ["strict"]);
    assert_eq!(found[0].org, strict);
}
