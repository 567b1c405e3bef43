//! Senders and their DKIM keys, attacked as `app_user`: another tenant's rows, no tenant at
//! all, a second active key, a key moved backwards, and a sealed key opened under the wrong
//! owner or server key.

use chrono::Utc;
use mos_auth::{DkimKeyPair, Sealer};
use mos_db::senders::{self, Key, NewSender, Retired};
use mos_db::testing::TestDb;
use mos_db::{AppPool, DbError};
use mos_domain::senders::{DkimDomain, FromName, KeyState, PostalAddress, Selector};
use mos_domain::{DkimKeyId, Email, OrgId, RequestSource, SenderId, UserId};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::{new_org, new_user, refused_for_privilege, sqlstate};

fn new_sealer() -> Sealer {
    Sealer::from_base64(&Sealer::generate_key_base64(&mut rand::thread_rng())).unwrap()
}

fn new_sender(domain: &str, from: &str, selector: &str) -> NewSender {
    NewSender {
        from_name: FromName::parse("Example Health").unwrap(),
        from_address: Email::parse(from).unwrap(),
        reply_to: None,
        postal_address: PostalAddress::parse("Example Health\n1 Main St\nSpringfield, IL 62701").unwrap(),
        dkim_domain: DkimDomain::parse(domain).unwrap(),
        selector: Selector::parse(selector).unwrap(),
    }
}

struct Tenant {
    org: OrgId,
    admin: UserId,
    sender: SenderId,
}

async fn tenant(pool: &AppPool, sealer: &Sealer, slug: &str) -> Tenant {
    let admin = new_user(pool, &format!("admin@{slug}.example")).await;
    let org = new_org(pool, slug, admin).await;
    let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
    let new = new_sender(&format!("{slug}.example"), &format!("news@mail.{slug}.example"), "s1");
    let pair = DkimKeyPair::generate().unwrap();
    let sender =
        senders::create(&mut tx, sealer, &new, &pair, admin, Utc::now(), &RequestSource::default()).await.unwrap();
    tx.commit().await.unwrap();
    Tenant { org, admin, sender }
}

async fn keys(pool: &AppPool, t: &Tenant) -> Vec<Key> {
    let mut tx = pool.begin_tenant(t.org, Some(t.admin)).await.unwrap();
    senders::get(&mut tx, t.sender).await.unwrap().unwrap().1
}

async fn count(conn: &mut sqlx::PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from app.{table}")).fetch_one(conn).await.unwrap()
}

#[tokio::test]
async fn a_tenant_can_neither_read_nor_change_another_tenants_senders_or_keys() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let sealer = new_sealer();
    let a = tenant(&pool, &sealer, "acme").await;
    let b = tenant(&pool, &sealer, "globex").await;
    let b_key = keys(&pool, &b).await[0].id;
    let src = RequestSource::default();

    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    assert_eq!(count(tx.conn(), "senders").await, 1);
    assert_eq!(count(tx.conn(), "dkim_keys").await, 1);
    assert!(senders::get(&mut tx, b.sender).await.unwrap().is_none());
    assert!(senders::signing_key(&mut tx, &sealer, b.sender).await.unwrap().is_none());
    let pair = DkimKeyPair::generate().unwrap();
    let s2 = Selector::parse("s2").unwrap();
    assert_eq!(senders::rotate(&mut tx, &sealer, b.sender, &s2, &pair, a.admin, Utc::now(), &src).await.unwrap(), None);
    assert_eq!(senders::retire(&mut tx, b.sender, b_key, a.admin, Utc::now(), &src).await.unwrap(), Retired::NotFound);
    // Naming the other tenant outright changes nothing either.
    for sql in [
        "update app.senders set from_name = 'Owned' where organization_id = $1",
        "update app.dkim_keys set state = 'previous' where organization_id = $1",
    ] {
        let done = sqlx::query(sql).bind(b.org.as_uuid()).execute(tx.conn()).await.unwrap();
        assert_eq!(done.rows_affected(), 0, "{sql}");
    }
    drop(tx);
    for sql in
        ["delete from app.senders where organization_id = $1", "delete from app.dkim_keys where organization_id = $1"]
    {
        let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
        let err = sqlx::query(sql).bind(b.org.as_uuid()).execute(tx.conn()).await.unwrap_err();
        assert!(refused_for_privilege(&err), "{sql}: {err}");
    }
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let planted = sqlx::query(
        "insert into app.senders (organization_id, id, from_name, from_address, postal_address, dkim_domain, created_at, updated_at)
         values ($1, $2, 'Planted', 'x@globex.example', '1 Main St', 'globex.example', now(), now())",
    )
    .bind(b.org.as_uuid())
    .bind(Uuid::now_v7())
    .execute(tx.conn())
    .await;
    assert_eq!(sqlstate(planted), "42501");
    drop(tx);
    // Moving one's own sender into the other tenant is not a column app_user may update.
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let moved =
        sqlx::query("update app.senders set organization_id = $1").bind(b.org.as_uuid()).execute(tx.conn()).await;
    // Citus refuses it first: a row never changes its distribution column.
    let moved = moved.unwrap_err();
    let code = moved.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
    assert!(refused_for_privilege(&moved) || code.as_deref() == Some("0A000"), "{moved}");
    drop(tx);

    let mut su = db.superuser().await;
    let names: Vec<String> =
        sqlx::query_scalar("select from_name from app.senders order by 1").fetch_all(&mut su).await.unwrap();
    assert_eq!(names, ["Example Health", "Example Health"], "nothing was changed");
    let states: Vec<String> =
        sqlx::query_scalar("select state::text from app.dkim_keys").fetch_all(&mut su).await.unwrap();
    assert_eq!(states, ["active", "active"]);
}

#[tokio::test]
async fn without_a_tenant_app_user_sees_no_senders_or_keys_and_writes_none() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = tenant(&pool, &new_sealer(), "acme").await;
    let mut conn = db.app_user().await;
    assert_eq!(count(&mut conn, "senders").await, 0);
    assert_eq!(count(&mut conn, "dkim_keys").await, 0);
    let updated = sqlx::query("update app.senders set from_name = 'Owned'").execute(&mut conn).await.unwrap();
    assert_eq!(updated.rows_affected(), 0);
    let updated = sqlx::query("update app.dkim_keys set state = 'previous'").execute(&mut conn).await.unwrap();
    assert_eq!(updated.rows_affected(), 0);
    let planted = sqlx::query(
        "insert into app.senders (organization_id, id, from_name, from_address, postal_address, dkim_domain, created_at, updated_at)
         values ($1, $2, 'Planted', 'x@acme.example', '1 Main St', 'acme.example', now(), now())",
    )
    .bind(a.org.as_uuid())
    .bind(Uuid::now_v7())
    .execute(&mut conn)
    .await;
    assert_eq!(sqlstate(planted), "42501");
    assert!(refused_for_privilege(&sqlx::query("delete from app.dkim_keys").execute(&mut conn).await.unwrap_err()));
    let mut su = db.superuser().await;
    assert_eq!(count(&mut su, "senders").await, 1);
    assert_eq!(count(&mut su, "dkim_keys").await, 1);
}

#[tokio::test]
async fn a_rotation_keeps_the_old_key_as_previous_and_the_database_refuses_two_active_keys_or_a_step_back() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let sealer = new_sealer();
    let a = tenant(&pool, &sealer, "acme").await;
    let src = RequestSource::default();
    let first = keys(&pool, &a).await[0].id;

    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let pair = DkimKeyPair::generate().unwrap();
    let s2 = Selector::parse("s2").unwrap();
    let second =
        senders::rotate(&mut tx, &sealer, a.sender, &s2, &pair, a.admin, Utc::now(), &src).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    // A selector the sender used before names a DNS record resolvers may still hold.
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let again = senders::rotate(&mut tx, &sealer, a.sender, &s2, &pair, a.admin, Utc::now(), &src).await;
    assert!(
        matches!(again, Err(DbError::Conflict { ref constraint }) if constraint == "dkim_keys_selector_key"),
        "{again:?}"
    );
    drop(tx);
    let now = keys(&pool, &a).await;
    let states: Vec<(DkimKeyId, KeyState)> = now.iter().map(|k| (k.id, k.state)).collect();
    assert_eq!(states, [(second, KeyState::Active), (first, KeyState::Previous)]);

    // The database itself: a second active key, by insert or by update, and a key moved back.
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let promoted = sqlx::query("update app.dkim_keys set state = 'active' where organization_id = $1 and id = $2")
        .bind(a.org.as_uuid())
        .bind(first.as_uuid())
        .execute(tx.conn())
        .await;
    // The trigger refuses a step back before the index is reached.
    assert_eq!(sqlstate(promoted), "23514", "dkim_keys_forward");
    drop(tx);
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let copied = sqlx::query(
        "insert into app.dkim_keys (organization_id, id, sender_id, selector, public_key, sealed_private_key, state, created_at)
         select organization_id, $2, sender_id, 's9', public_key, sealed_private_key, 'active', created_at
           from app.dkim_keys where organization_id = $1 and id = $3",
    )
    .bind(a.org.as_uuid())
    .bind(Uuid::now_v7())
    .bind(second.as_uuid())
    .execute(tx.conn())
    .await;
    // As the repository sees it: on Citus the shard's copy of the index is named in the message.
    let err = DbError::from(copied.unwrap_err());
    assert!(matches!(err, DbError::Conflict { ref constraint } if constraint == "dkim_keys_one_active"), "{err:?}");
    drop(tx);

    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    assert_eq!(
        senders::retire(&mut tx, a.sender, second, a.admin, Utc::now(), &src).await.unwrap(),
        Retired::NotPrevious(KeyState::Active),
        "the active key signs until a rotation replaces it"
    );
    assert_eq!(senders::retire(&mut tx, a.sender, first, a.admin, Utc::now(), &src).await.unwrap(), Retired::Done);
    tx.commit().await.unwrap();
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let back = sqlx::query(
        "update app.dkim_keys set state = 'previous', retired_at = null where organization_id = $1 and id = $2",
    )
    .bind(a.org.as_uuid())
    .bind(first.as_uuid())
    .execute(tx.conn())
    .await;
    assert_eq!(sqlstate(back), "23514", "dkim_keys_forward");
    drop(tx);
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let swapped = sqlx::query("update app.dkim_keys set public_key = public_key where organization_id = $1")
        .bind(a.org.as_uuid())
        .execute(tx.conn())
        .await;
    assert!(refused_for_privilege(&swapped.unwrap_err()), "key material is not app_user's to change");
    drop(tx);
    // Not even a superuser, who passes every grant and policy, swaps a key under its selector.
    let mut su = db.superuser().await;
    let swapped = sqlx::query("update app.dkim_keys set selector = 'evil' where id = $1")
        .bind(second.as_uuid())
        .execute(&mut su)
        .await;
    assert_eq!(sqlstate(swapped), "23514", "dkim_keys_fixed");
    let states: Vec<KeyState> = keys(&pool, &a).await.iter().map(|k| k.state).collect();
    assert_eq!(states, [KeyState::Active, KeyState::Retired]);
}

#[tokio::test]
async fn a_sealed_key_opens_only_under_its_own_owner_bytes_and_the_servers_key() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let sealer = new_sealer();
    let a = tenant(&pool, &sealer, "acme").await;
    let b = tenant(&pool, &sealer, "globex").await;
    let key = keys(&pool, &a).await.remove(0);
    let b_key = keys(&pool, &b).await[0].id;

    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let signing = senders::signing_key(&mut tx, &sealer, a.sender).await.unwrap().unwrap();
    assert_eq!((signing.key, signing.selector.as_str(), signing.domain.as_str()), (key.id, "s1", "acme.example"));
    assert!(!format!("{signing:?}").contains("PRIVATE"), "Debug hides the key");
    let pem = signing.private_key_pem.expose_secret();
    let private = openssl::rsa::Rsa::private_key_from_pem(pem.as_bytes()).unwrap();
    assert_eq!(private.public_key_to_der().unwrap(), key.public_key, "the opened key is the published key's pair");
    let other = senders::signing_key(&mut tx, &new_sealer(), a.sender).await;
    assert!(matches!(other, Err(DbError::Unsealable(_))), "another server key");
    drop(tx);

    let mut su = db.superuser().await;
    let sealed: Vec<u8> = sqlx::query_scalar("select sealed_private_key from app.dkim_keys where id = $1")
        .bind(key.id.as_uuid())
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("PRIVATE KEY"), "sealed at rest");
    assert!(sealer.open(&sealed, &senders::owner(a.org, key.id)).is_ok());
    assert!(sealer.open(&sealed, &senders::owner(b.org, key.id)).is_err(), "bound to the organization");
    assert!(sealer.open(&sealed, &senders::owner(a.org, b_key)).is_err(), "bound to the key");
}

#[tokio::test]
async fn the_database_refuses_a_from_address_outside_the_dkim_domain() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let admin = new_user(&pool, "admin@acme.example").await;
    let org = new_org(&pool, "acme", admin).await;
    let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
    let pair = DkimKeyPair::generate().unwrap();
    let new = new_sender("acme.example", "news@badacme.example", "s1");
    let refused =
        senders::create(&mut tx, &new_sealer(), &new, &pair, admin, Utc::now(), &RequestSource::default()).await;
    assert!(
        matches!(refused, Err(DbError::Invalid { ref constraint }) if constraint == "senders_dkim_aligned"),
        "{refused:?}"
    );
}
