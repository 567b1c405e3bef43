//! Passkeys are a user's own, and a WebAuthn ceremony is spent once, before it expires, by the
//! step it was begun for: tried as `app_user`.

use chrono::{Duration, Utc};
use mos_db::passkeys::{self, Purpose};
use mos_db::testing::TestDb;
use mos_domain::TokenHash;
use serde_json::json;

use crate::{new_user, sqlstate};

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
    passkeys::begin(&pool, &handle, Purpose::Reauthenticate, Some(ada), state.clone(), now, now + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(passkeys::take(&pool, &handle, Purpose::Passwordless, now).await.unwrap(), None, "another step");
    assert_eq!(passkeys::take(&pool, &handle, Purpose::Reauthenticate, now).await.unwrap(), Some((Some(ada), state)));
    assert_eq!(passkeys::take(&pool, &handle, Purpose::Reauthenticate, now).await.unwrap(), None, "spent");

    let late = TokenHash([8; 32]);
    passkeys::begin(&pool, &late, Purpose::Passwordless, None, json!({}), now, now + Duration::minutes(5))
        .await
        .unwrap();
    let expired = passkeys::take(&pool, &late, Purpose::Passwordless, now + Duration::minutes(5)).await.unwrap();
    assert_eq!(expired, None);
}
