use mos_db::ops::migrate::{self, MIGRATIONS};
use mos_db::ops::OpsError;
use mos_db::testing::{backend, Backend, TestDb};

#[tokio::test]
async fn migrating_applies_every_migration_once_and_a_second_run_applies_none() {
    let db = TestDb::empty().await;
    let mut su = db.superuser().await;
    assert!(
        matches!(migrate::ensure_current(&mut su).await, Err(OpsError::Pending { count, .. }) if count == MIGRATIONS.len())
    );

    let applied = migrate::run(&mut su).await.unwrap();
    assert_eq!(applied.len(), MIGRATIONS.len());
    assert!(migrate::run(&mut su).await.unwrap().is_empty());
    migrate::ensure_current(&mut su).await.unwrap();
    let recorded: i64 =
        sqlx::query_scalar("select count(*) from mos_migrations.applied").fetch_one(&mut su).await.unwrap();
    assert_eq!(recorded, MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn concurrent_migrators_apply_each_migration_exactly_once() {
    let db = TestDb::empty().await;
    let mut first = db.superuser().await;
    let mut second = db.superuser().await;
    let (a, b) = tokio::join!(migrate::run(&mut first), migrate::run(&mut second));
    assert_eq!(a.unwrap().len() + b.unwrap().len(), MIGRATIONS.len());
}

#[tokio::test]
async fn a_migration_changed_after_it_was_applied_is_refused() {
    let db = TestDb::new().await;
    let mut su = db.superuser().await;
    sqlx::query("update mos_migrations.applied set checksum = sha256('edited') where version = 1")
        .execute(&mut su)
        .await
        .unwrap();
    let err = migrate::run(&mut su).await.unwrap_err();
    assert!(matches!(err, OpsError::ChecksumMismatch { version: 1, .. }), "{err}");
    assert!(err.to_string().contains("was changed after it was applied"), "{err}");
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_build_is_refused() {
    let db = TestDb::new().await;
    let mut su = db.superuser().await;
    sqlx::query("insert into mos_migrations.applied (version, name, checksum, duration_ms) values (9999, 'from_the_future', '\\x00', 1)")
        .execute(&mut su)
        .await
        .unwrap();
    let err = migrate::ensure_current(&mut su).await.unwrap_err();
    assert!(matches!(err, OpsError::UnknownMigration { version: 9999, .. }), "{err}");
}

#[tokio::test]
async fn every_object_belongs_to_the_nologin_owner_role() {
    let db = TestDb::new().await;
    let mut su = db.superuser().await;
    let foreign: Vec<String> = sqlx::query_scalar(
        "select format('%s owned by %s', c.oid::regclass, pg_get_userbyid(c.relowner))
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname in ('app', 'mos_migrations') and pg_get_userbyid(c.relowner) <> 'mos_owner'",
    )
    .fetch_all(&mut su)
    .await
    .unwrap();
    assert!(foreign.is_empty(), "{foreign:?}");
    let can_login: Vec<String> = sqlx::query_scalar(
        "select rolname::text from pg_roles where rolname in ('mos_owner', 'mos_definer') and rolcanlogin",
    )
    .fetch_all(&mut su)
    .await
    .unwrap();
    match backend() {
        Backend::Postgres => assert!(can_login.is_empty(), "{can_login:?}"),
        // Citus reaches the workers as these roles, with passwords only pg_dist_authinfo holds.
        Backend::Citus => {
            let held: Vec<String> = sqlx::query_scalar(
                "select rolename::text from pg_dist_authinfo where nodeid = 0 and rolename in ('mos_owner', 'mos_definer') order by 1",
            )
            .fetch_all(&mut su)
            .await
            .unwrap();
            assert_eq!(held, ["mos_definer", "mos_owner"]);
        }
    }
}

#[test]
fn no_migration_file_sets_a_password() {
    for m in MIGRATIONS {
        assert!(!m.sql.to_lowercase().contains("password '"), "{m:?}");
    }
}
