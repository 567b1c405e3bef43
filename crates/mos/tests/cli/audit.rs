use mos_db::testing::TestDb;

use crate::{data_dir, mos, text};

/// A seeded database (an organization with two audit records), sealed.
async fn seeded() -> (TestDb, tempfile::TempDir) {
    let db = TestDb::new().await;
    let dir = data_dir();
    let out = mos().arg("seed").env("DATABASE_URL", db.database_url()).output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    let out = mos().args(["audit", "seal"]).env("DATABASE_URL", db.database_url()).output().unwrap();
    assert_eq!(text(&out).0, "sealed 2 record(s) of 1 organization(s)\n");
    (db, dir)
}

fn audit(db: &TestDb, dir: &tempfile::TempDir, args: &[&str]) -> std::process::Output {
    mos()
        .arg("audit")
        .args(args)
        .env("DATABASE_URL", db.database_url())
        .env("MOS_DATA_DIR", dir.path())
        .output()
        .unwrap()
}

#[tokio::test]
async fn verify_reports_an_intact_chain_and_the_first_broken_link_with_its_reason() {
    let (db, dir) = seeded().await;
    let out = audit(&db, &dir, &["verify"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.starts_with("demo: 2 records, chain intact to 2 ("), "{:?}", text(&out));

    let mut su = db.superuser().await;
    sqlx::raw_sql(
        "alter table app.audit_logs disable trigger all;
         update app.audit_logs set action = 'org.deleted' where id = (select audit_ids[1] from app.audit_blocks where first_seq = 1);
         alter table app.audit_logs enable always trigger audit_logs_append_only_rows",
    )
    .execute(&mut su)
    .await
    .unwrap();
    let out = audit(&db, &dir, &["verify", "--org", "demo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).0.starts_with("demo: broken at record 1: changed"), "{:?}", text(&out));
}

#[tokio::test]
async fn a_signed_checkpoint_proves_that_nothing_was_cut_from_the_end_since() {
    let (db, dir) = seeded().await;
    let file = dir.path().join("checkpoint.json");
    let out = audit(&db, &dir, &["checkpoint", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(dir.path().join("audit-signing.key").exists());
    let out = audit(&db, &dir, &["verify", "--checkpoint", file.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("demo: record 2 signed at"), "{:?}", text(&out));

    // The superuser cuts the last record and rewinds the head: the chain alone looks whole.
    let mut su = db.superuser().await;
    sqlx::raw_sql(
        "alter table app.audit_logs disable trigger all; alter table app.audit_blocks disable trigger all;
         delete from app.audit_logs where id = (select audit_ids[2] from app.audit_blocks where first_seq = 1);
         update app.audit_blocks set audit_ids = audit_ids[1:1], hashes = hashes[1:1] where first_seq = 1;
         update app.audit_chain_heads set seq = 1, hash = (select hashes[1] from app.audit_blocks where first_seq = 1)",
    )
    .execute(&mut su)
    .await
    .unwrap();
    assert!(audit(&db, &dir, &["verify"]).status.success(), "without the checkpoint the cut goes unnoticed");
    let out = audit(&db, &dir, &["verify", "--checkpoint", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).0.contains("demo: broken at record 2: deleted"), "{:?}", text(&out));
}

#[tokio::test]
async fn a_checkpoint_altered_after_signing_is_refused() {
    let (db, dir) = seeded().await;
    let file = dir.path().join("checkpoint.json");
    assert!(audit(&db, &dir, &["checkpoint", "--out", file.to_str().unwrap()]).status.success());
    let original = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, original.replace("\"seq\": 2", "\"seq\": 1")).unwrap();
    let out = audit(&db, &dir, &["verify", "--checkpoint", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("does not match its contents"), "{:?}", text(&out));
}

#[tokio::test]
async fn verify_refuses_a_connection_that_row_level_security_would_blind() {
    let (db, dir) = seeded().await;
    let url = db.database_url().replacen("postgres://postgres@", "postgres://app_user@", 1);
    let out =
        mos().args(["audit", "verify"]).env("DATABASE_URL", url).env("MOS_DATA_DIR", dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("row-level security hides from this role"), "{:?}", text(&out));
}
