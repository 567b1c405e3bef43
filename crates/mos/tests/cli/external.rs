use mos_db::testing::{backend, Backend, TestDb};

use crate::{migration_names, mos, serve, text, until_logged};

#[tokio::test]
async fn db_check_passes_on_a_migrated_database_and_fails_once_rls_is_disabled_by_hand() {
    let db = TestDb::new().await;
    let out = mos().args(["db", "check"]).env("DATABASE_URL", db.database_url()).output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));

    let mut su = db.superuser().await;
    sqlx::raw_sql("alter table app.organizations disable row level security").execute(&mut su).await.unwrap();
    let out = mos().args(["db", "check"]).env("DATABASE_URL", db.database_url()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let (stdout, _) = text(&out);
    let table = "problem: rls_disabled: table app.organizations has row-level security disabled\n";
    match backend() {
        Backend::Postgres => assert_eq!(stdout, table),
        // The switch reached every copy of the reference table, and each is reported.
        Backend::Citus => {
            assert!(stdout.starts_with(table), "{stdout}");
            let shards = stdout.matches("of app.organizations on 127.0.0.1:").count();
            assert_eq!(shards, 3, "{stdout}");
        }
    }
}

#[tokio::test]
async fn serve_refuses_an_external_database_with_pending_migrations() {
    let db = TestDb::empty().await;
    let out = mos().args(["serve", "--listen", "127.0.0.1:0"]).env("DATABASE_URL", db.database_url()).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    let names = migration_names();
    let pending = format!("{} migration(s) pending ({}); run `mos migrate` first", names.len(), names.join(", "));
    assert!(stderr.contains(&pending), "{stderr}");
}

#[tokio::test]
async fn serve_refuses_to_serve_while_the_check_finds_a_problem() {
    let db = TestDb::new().await;
    let mut su = db.superuser().await;
    // On Citus the coordinator refuses to switch a distributed table's triggers; a table taken
    // out of the plan is what an undistributed cluster looks like (docs/scaling.md).
    let (sabotage, problem) = match backend() {
        Backend::Postgres => (
            "alter table app.audit_logs disable trigger audit_logs_append_only_rows",
            "problem: audit_guard: audit guard trigger audit_logs_append_only_rows is not ENABLE ALWAYS",
        ),
        Backend::Citus => {
            ("select undistribute_table('app.audit_blocks')", "problem: citus_placement: table app.audit_blocks is")
        }
    };
    sqlx::raw_sql(sabotage).execute(&mut su).await.unwrap();
    let out = mos().args(["serve", "--listen", "127.0.0.1:0"]).env("DATABASE_URL", db.database_url()).output().unwrap();
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(stdout.contains(problem), "{stdout}");
    assert!(!stdout.contains("listening"), "{stdout}");
}

#[tokio::test]
async fn serve_refuses_a_public_url_that_passkeys_cannot_work_with_and_says_why() {
    let db = TestDb::new().await;
    for (url, why) in
        [("http://10.0.0.5:8080", "not an IP address (10.0.0.5)"), ("http://marketing-os.example", "to be https")]
    {
        let out = mos()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", db.database_url())
            .env("MOS_PUBLIC_URL", url)
            .env("MOS_TOTP_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{url}: {stdout}");
        assert!(stderr.contains(why) && stderr.contains("set MOS_PUBLIC_URL"), "{url}: {stderr}");
        assert!(!stdout.contains("listening"), "{stdout}");
    }
}

#[tokio::test]
async fn a_flag_wins_over_its_environment_variable() {
    let db = TestDb::new().await;
    let nowhere = "postgres://nobody@127.0.0.1:1/nothing";
    let out = mos().args(["db", "check"]).env("DATABASE_URL", nowhere).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "the variable alone is used: {:?}", text(&out));
    let out = mos()
        .args(["db", "check", "--database-url", &db.database_url()])
        .env("DATABASE_URL", nowhere)
        .output()
        .unwrap();
    assert!(out.status.success(), "the flag is used instead: {:?}", text(&out));
}

#[tokio::test]
async fn migrate_then_seed_against_an_external_database_writes_through_app_user_with_audit() {
    let db = TestDb::empty().await;
    let url = db.database_url();
    let out = mos().arg("migrate").env("DATABASE_URL", &url).output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    // With app_user unable to write the audit log, the superuser's URL does not help the seed.
    let mut su = db.superuser().await;
    sqlx::raw_sql("revoke insert on app.audit_logs from app_user").execute(&mut su).await.unwrap();
    let out = mos().arg("seed").env("DATABASE_URL", &url).output().unwrap();
    assert!(!out.status.success(), "{:?}", text(&out));
    assert!(text(&out).1.contains("permission denied"), "{:?}", text(&out));
    sqlx::raw_sql("grant insert on app.audit_logs to app_user").execute(&mut su).await.unwrap();
    let out = mos().arg("seed").env("DATABASE_URL", &url).output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));

    let actions: Vec<String> = sqlx::query_scalar(
        "select a.action from app.audit_logs a join app.organizations o on o.id = a.organization_id where o.slug = 'demo' order by a.id",
    )
    .fetch_all(&mut su)
    .await
    .unwrap();
    assert_eq!(actions, ["org.created", "member.added"]);
    let role: String = sqlx::query_scalar(
        "select m.role::text from app.user_organizations m join app.users u on u.id = m.user_id where u.email = 'admin@demo.example.com'",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(role, "ADMIN");
}

#[tokio::test]
async fn migrate_distribute_and_check_through_the_binary() {
    let db = TestDb::empty().await;
    let url = db.database_url();
    let out = mos().arg("migrate").env("DATABASE_URL", &url).output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    let out = mos().args(["db", "distribute"]).env("DATABASE_URL", &url).output().unwrap();
    match backend() {
        Backend::Postgres => {
            assert_eq!(out.status.code(), Some(2));
            assert!(text(&out).1.contains("this database has no Citus extension"), "{:?}", text(&out));
        }
        Backend::Citus => {
            assert!(out.status.success(), "{:?}", text(&out));
            let placed = text(&out).0;
            assert!(placed.contains("placed app.audit_logs: distributed by `organization_id`"), "{placed}");
            assert!(placed.contains("placed app.organizations: reference"), "{placed}");
            let again = mos().args(["db", "distribute"]).env("DATABASE_URL", &url).output().unwrap();
            assert_eq!(text(&again).0, "every table is already placed as planned\n");
        }
    }
    let out = mos().args(["db", "check"]).env("DATABASE_URL", &url).output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
}

#[tokio::test]
async fn serve_seals_at_once_what_waited_and_warns_about_records_that_waited_more_than_ten_seconds() {
    let db = TestDb::new().await;
    let out = mos().arg("seed").env("DATABASE_URL", db.database_url()).output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    // A record committed a minute ago and never sealed: the server's first sweep, over the
    // whole window, takes it, and its age is the lag that sweep measures.
    let mut su = db.superuser().await;
    sqlx::query(
        "insert into app.audit_logs (organization_id, id, action, resource_type, outcome, created_at)
         select id, $1, 'doc.created', 'document', 'success', now() - interval '1 minute'
           from app.organizations where slug = 'demo'",
    )
    .bind(uuid::Uuid::now_v7())
    .execute(&mut su)
    .await
    .unwrap();
    let mut command = mos();
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", db.database_url())
        .env("MOS_TOTP_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let (mut child, _, log) = serve(command);
    let warned = until_logged(&log, "audit records waited long for their seal");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success(), "{}", log.lock().unwrap());
    let log = log.lock().unwrap().clone();
    assert!(warned, "{log}");
    let lag: u64 = log
        .split("lag_ms=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("the lag is logged: {log}"));
    assert!(lag >= 60_000, "the late record's age: {log}");
    let sealed: i64 = sqlx::query_scalar(
        "select count(*) from app.audit_logs a join app.audit_blocks b
             on b.organization_id = a.organization_id and a.id = any (b.audit_ids)",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(sealed, 3, "the seed's two records and the late one");
}
