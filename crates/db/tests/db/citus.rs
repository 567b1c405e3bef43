//! What only a Citus cluster can show: the plan applied, tenant queries routed to one shard,
//! and shards tampered with on a worker caught by `db check` and `audit verify`. These run in
//! the Citus pass of `scripts/test` (`MOS_TEST_BACKEND=citus ... --include-ignored`).

use chrono::Utc;
use mos_db::chain::{self, Reason};
use mos_db::ops::citus::{self, Placement, PLAN};
use mos_db::ops::{check, OpsError};
use mos_db::testing::{backend, Backend, TestDb};
use mos_db::{audit, content, orgs, AppPool};
use mos_domain::content::{Action, Channel, State, Text};
use mos_domain::{AuditAction, AuditEvent, Email, OrgId, RequestSource, ResourceType, Role, TokenHash, UserId};
use sqlx::{ConnectOptions, PgConnection};

use crate::{new_org, new_user};

/// A fresh database on the cluster; these tests mean nothing anywhere else.
async fn on_citus() -> TestDb {
    mos_db::testing::requires(Backend::Citus, "run with MOS_TEST_BACKEND=citus");
    TestDb::new().await
}

/// A fresh database on the cluster with organization `acme` and its ADMIN.
async fn acme_on_citus() -> (TestDb, AppPool, UserId, OrgId) {
    let db = on_citus().await;
    let pool = db.app_pool(2).await;
    let admin = new_user(&pool, "admin@example.com").await;
    let org = new_org(&pool, "acme", admin).await;
    (db, pool, admin, org)
}

#[test]
fn the_scaling_doc_shows_the_plan_as_the_code_defines_it() {
    let doc = include_str!("../../../../docs/scaling.md");
    assert!(
        doc.contains(&citus::markdown_table()),
        "docs/scaling.md is out of date; paste this table into it:\n{}",
        citus::markdown_table()
    );
}

#[tokio::test]
async fn the_plan_names_every_table_and_distribute_refuses_plain_postgres() {
    let db = TestDb::new().await;
    let mut su = db.superuser().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'app' and c.relkind = 'r' order by 1",
    )
    .fetch_all(&mut su)
    .await
    .unwrap();
    let mut planned: Vec<&str> = PLAN.iter().map(|p| p.table).collect();
    planned.sort_unstable();
    assert_eq!(tables, planned);
    match backend() {
        Backend::Postgres => assert!(matches!(citus::distribute(&mut su).await, Err(OpsError::NotCitus))),
        // The template was distributed already: a second run has nothing left to do.
        Backend::Citus => assert_eq!(citus::distribute(&mut su).await.unwrap(), Vec::<String>::new()),
    }
}

#[tokio::test]
#[ignore = "needs the Citus cluster: MOS_TEST_BACKEND=citus cargo test -- --include-ignored"]
async fn every_table_is_placed_as_planned_and_the_cluster_passes_every_check() {
    let db = on_citus().await;
    let mut su = db.superuser().await;
    for plan in PLAN {
        let kind: Option<(String, String)> = sqlx::query_as(
            "select partmethod::text, repmodel::text from pg_dist_partition where logicalrelid = ('app.' || $1)::regclass",
        )
        .bind(plan.table)
        .fetch_optional(&mut su)
        .await
        .unwrap();
        let expected = match plan.placement {
            Placement::Reference => Some(("n", "t")),
            Placement::Distributed => Some(("h", "s")),
            Placement::CitusLocal => Some(("n", "s")),
            Placement::Local => None,
        };
        assert_eq!(kind.as_ref().map(|(m, r)| (m.as_str(), r.as_str())), expected, "{}", plan.table);
    }
    let problems = check::run(&mut su).await.unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Runs `tamper` as the superuser on the worker that holds the first placement of
/// `app.<table>`'s shard for `org` (`{shard}` in it is that shard's name).
async fn on_shard(db: &TestDb, table: &str, org: uuid::Uuid, tamper: &str) {
    let (worker, shard) = db.shard_placements(table, org).await.remove(0);
    let mut conn = db.worker_superuser(worker).await;
    // Citus refuses changes made to a shard by hand unless told that they are meant.
    crate::each(&mut conn, &["set citus.enable_manual_changes_to_shards = on", &tamper.replace("{shard}", &shard)])
        .await;
}

#[tokio::test]
#[ignore = "needs the Citus cluster: MOS_TEST_BACKEND=citus cargo test -- --include-ignored"]
async fn protection_switched_off_on_one_shard_is_reported() {
    let cases = [
        ("audit_logs", "grant update on {shard} to mos_owner", "mos_owner can update"),
        ("audit_blocks", "grant truncate on {shard} to app_user", "app_user can truncate"),
        ("audit_logs", "alter table {shard} disable trigger all", "guard trigger"),
        ("user_organizations", "alter table {shard} no force row level security", "not enabled and forced"),
        ("invitations", "drop policy tenant_isolation on {shard}", "policies instead of"),
        ("consent_events", "grant update on {shard} to app_user", "app_user can update"),
        ("suppressions", "alter table {shard} disable trigger all", "guard trigger"),
        ("consent_events", "alter table {shard} disable trigger user", "rule trigger consent_events_rules"),
        ("consent_evidence", "alter table {shard} enable trigger all", "rule trigger consent_evidence_committed"),
    ];
    for (table, tamper, expected) in cases {
        let (db, _pool, _admin, org) = acme_on_citus().await;
        on_shard(&db, table, org.as_uuid(), tamper).await;
        let problems = check::run(&mut db.superuser().await).await.unwrap();
        assert!(
            problems.iter().any(|p| p.code == "shard_unprotected"
                && p.detail.contains(&format!("of app.{table} on"))
                && p.detail.contains(expected)),
            "{tamper}: {problems:#?}"
        );
    }
}

#[tokio::test]
#[ignore = "needs the Citus cluster: MOS_TEST_BACKEND=citus cargo test -- --include-ignored"]
async fn a_function_the_shards_need_gone_from_one_worker_is_reported() {
    let db = on_citus().await;
    let mut worker = db.worker_superuser(0).await;
    // Citus leaves changes to a distributed object to the coordinator unless told otherwise.
    crate::each(
        &mut worker,
        &["set citus.enable_ddl_propagation = off", "alter function app.is_uuid_v7(uuid) rename to is_uuid_v7_gone"],
    )
    .await;
    let problems = check::run(&mut db.superuser().await).await.unwrap();
    let port = db.workers()[0].port();
    assert!(
        problems.iter().any(|p| p.code == "worker_function_missing"
            && p.detail == format!("worker 127.0.0.1:{port}: missing app.is_uuid_v7(uuid)")),
        "{problems:#?}"
    );
}

#[tokio::test]
#[ignore = "needs the Citus cluster: MOS_TEST_BACKEND=citus cargo test -- --include-ignored"]
async fn a_table_left_where_the_plan_does_not_put_it_is_reported() {
    let db = on_citus().await;
    let mut su = db.superuser().await;
    crate::each(&mut su, &["select undistribute_table('app.audit_blocks')"]).await;
    let problems = check::run(&mut su).await.unwrap();
    assert!(
        problems.iter().any(|p| p.code == "citus_placement" && p.detail.contains("app.audit_blocks")),
        "{problems:#?}"
    );
    // Distributing again restores it, and the owner's rights stay revoked on every shard.
    assert_eq!(citus::distribute(&mut su).await.unwrap(), ["app.audit_blocks: distributed by `organization_id`"]);
    let problems = check::run(&mut su).await.unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
#[ignore = "needs the Citus cluster: MOS_TEST_BACKEND=citus cargo test -- --include-ignored"]
async fn every_tenant_query_is_routed_to_a_single_shard() {
    let (_db, pool, admin, org) = acme_on_citus().await;
    let member = new_user(&pool, "member@example.com").await;

    let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
    // From here on, any statement that needs more than one shard is an error.
    crate::each(tx.conn(), &["set local citus.multi_task_query_log_level = 'error'"]).await;
    // First: Citus refuses a definer function (another role) on placements that this
    // transaction has already changed as app_user.
    orgs::members(&mut tx).await.unwrap();
    let event = AuditEvent::new(AuditAction::known("doc.created"), ResourceType::known("document"));
    audit::record(&mut tx, &event).await.unwrap();
    audit::recent(&mut tx, 20).await.unwrap();
    audit::search(&mut tx, &audit::Filter { action: Some("doc.created".into()), ..Default::default() }, 20)
        .await
        .unwrap();
    orgs::get(&mut tx).await.unwrap();
    orgs::add_member(&mut tx, member, Role::Viewer).await.unwrap();
    orgs::change_role(&mut tx, member, Role::Reviewer, Utc::now()).await.unwrap();
    // The content repository: an item written, searched, reviewed and published, and read back.
    let source = RequestSource::default();
    let text = Text::parse("Flu shots", Channel::Email, "patients", "Book now.", &["flu".into()]).unwrap();
    let item = content::create(&mut tx, &text, admin, Utc::now(), &source).await.unwrap();
    let filter = |words: Option<&str>| content::Filter {
        state: None,
        channel: Some(Channel::Email),
        tag: Some("flu".into()),
        author: Some(admin),
        text: words.map(str::to_owned),
        text_within: std::time::Duration::from_secs(60),
        awaiting: None,
        before: None,
    };
    assert_eq!(content::list(&mut tx, &filter(None), 20).await.unwrap().len(), 1);
    assert_eq!(content::list(&mut tx, &filter(Some("book")), 20).await.unwrap().len(), 1);
    for (action, actor, role) in [
        (Action::Submit, admin, Role::Admin),
        (Action::Approve, member, Role::Reviewer),
        (Action::Publish, admin, Role::Admin),
    ] {
        let request = content::Request {
            action,
            text: None,
            note: None,
            actor,
            role,
            revisions: None,
            sha256: None,
            now: Utc::now(),
            source: &source,
        };
        let step = content::act(&mut tx, item.id, request).await.unwrap();
        assert!(matches!(step, content::Step::Done(_)), "{action}: {step:?}");
    }
    let published = content::get(&mut tx, item.id).await.unwrap().unwrap();
    assert_eq!(published.state, State::Published);
    content::approvals(&mut tx, &published, admin).await.unwrap();
    assert_eq!(content::versions(&mut tx, item.id).await.unwrap().len(), 1);
    assert!(content::version(&mut tx, item.id, 1).await.unwrap().is_some());
    assert_eq!(content::history(&mut tx, item.id).await.unwrap().len(), 4);
    let email = Email::parse("new@example.com").unwrap();
    let now = Utc::now();
    let invitation =
        orgs::invite(&mut tx, &email, Role::Viewer, &TokenHash([7; 32]), now, now + chrono::Duration::days(7))
            .await
            .unwrap();
    orgs::pending_invitations(&mut tx, now).await.unwrap();
    orgs::revoke_invitation(&mut tx, invitation.id, now).await.unwrap();
    orgs::remove_member(&mut tx, member).await.unwrap();

    // And the plan says so: the audit page is one task on one shard.
    let plan: Vec<String> = sqlx::query_scalar(
        "explain select id, created_at from app.audit_logs where organization_id = $1 order by created_at desc, id desc limit 20",
    )
    .bind(org.as_uuid())
    .fetch_all(tx.conn())
    .await
    .unwrap();
    assert!(plan.iter().any(|l| l.contains("Task Count: 1")), "{plan:#?}");
    tx.commit().await.unwrap();
}

#[tokio::test]
#[ignore = "needs the Citus cluster: MOS_TEST_BACKEND=citus cargo test -- --include-ignored"]
async fn a_record_edited_on_a_worker_shard_is_reported_as_changed() {
    let (db, pool, admin, org) = acme_on_citus().await;
    for _ in 0..3 {
        let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
        let event = AuditEvent::new(AuditAction::known("doc.created"), ResourceType::known("document"));
        audit::record(&mut tx, &event).await.unwrap();
        tx.commit().await.unwrap();
    }
    chain::seal(&pool, None, chain::WINDOW).await.unwrap();
    let intact = chain::verify(&mut db.superuser().await, Some("acme"), Utc::now()).await.unwrap();
    assert_eq!(intact[0].broken, None);

    // A superuser on the worker, past the guard trigger, rewrites the second record.
    let second: uuid::Uuid = sqlx::query_scalar(
        "select audit_ids[2] from app.audit_blocks where organization_id = $1 order by first_seq limit 1",
    )
    .bind(org.as_uuid())
    .fetch_one(&mut db.superuser().await)
    .await
    .unwrap();
    on_shard(
        &db,
        "audit_logs",
        org.as_uuid(),
        &format!(
            "do $$ begin
                 alter table {{shard}} disable trigger all;
                 update {{shard}} set action = 'org.deleted' where id = '{second}';
             end $$"
        ),
    )
    .await;
    let report = chain::verify(&mut db.superuser().await, Some("acme"), Utc::now()).await.unwrap().remove(0);
    assert_eq!(report.broken.map(|b| (b.seq, b.reason)), Some((2, Reason::Changed)));
}

#[tokio::test]
#[ignore = "needs the Citus cluster: MOS_TEST_BACKEND=citus cargo test -- --include-ignored"]
async fn the_owner_and_definer_cannot_log_in_without_the_coordinators_credentials() {
    let db = on_citus().await;
    for role in ["mos_owner", "mos_definer"] {
        // Through the socket: peer authentication maps no system user to these roles.
        let socket = db.superuser_options().username(role).connect().await;
        assert_authentication_refused(socket, &format!("{role} over the coordinator's socket"));
        for node in db.workers() {
            let tcp: Result<PgConnection, _> = sqlx::postgres::PgConnectOptions::new_without_pgpass()
                .host("127.0.0.1")
                .port(node.port())
                .username(role)
                .password("guess")
                .database(&db.name)
                .connect()
                .await;
            assert_authentication_refused(tcp, &format!("{role} on worker {}", node.port()));
        }
    }
}

/// The server itself refused the login (SQLSTATE class 28, invalid authorization), rather than
/// the connection failing for any other reason (a wrong port, a server down).
fn assert_authentication_refused(connected: Result<PgConnection, sqlx::Error>, what: &str) {
    let err = connected.err().unwrap_or_else(|| panic!("{what}: logged in"));
    let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned()).unwrap_or_default();
    assert!(code.starts_with("28"), "{what}: not an authentication failure: {err}");
}
