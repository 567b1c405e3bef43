use mos_db::testing::TestDb;
use mos_db::{audit, orgs, DbError};
use mos_domain::{AuditAction, AuditEvent, OrgId, RequestSource, ResourceType, Role, UserId};
use serde_json::json;
use sqlx::PgConnection;

use crate::{new_org, new_user, sqlstate};

fn event(action: &str) -> AuditEvent {
    AuditEvent::new(AuditAction::parse(action).unwrap(), ResourceType::parse("organization").unwrap())
}

async fn audit_rows(su: &mut PgConnection) -> i64 {
    sqlx::query_scalar("select count(*) from app.audit_logs").fetch_one(su).await.unwrap()
}

/// Tries UPDATE, DELETE and TRUNCATE on the audit log; returns the SQLSTATE of each.
async fn tamper(conn: &mut PgConnection) -> Vec<String> {
    let mut codes = Vec::new();
    for sql in
        ["update app.audit_logs set action = 'org.forged'", "delete from app.audit_logs", "truncate app.audit_logs"]
    {
        sqlx::raw_sql("savepoint attempt").execute(&mut *conn).await.unwrap();
        codes.push(sqlstate(sqlx::raw_sql(sql).execute(&mut *conn).await));
        sqlx::raw_sql("rollback to savepoint attempt").execute(&mut *conn).await.unwrap();
    }
    codes
}

async fn seeded() -> (TestDb, OrgId, UserId) {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let admin = new_user(&pool, "admin@example.com").await;
    let org = new_org(&pool, "acme", admin).await;
    let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
    audit::record(&mut tx, &event("org.created").actor(admin)).await.unwrap();
    tx.commit().await.unwrap();
    (db, org, admin)
}

#[tokio::test]
async fn app_user_cannot_update_delete_or_truncate_even_its_own_audit_records() {
    let (db, org, admin) = seeded().await;
    let pool = db.app_pool(1).await;
    let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
    sqlx::raw_sql("select 1").execute(tx.conn()).await.unwrap();
    assert_eq!(tamper(tx.conn()).await, ["42501", "42501", "42501"]);
    drop(tx);
    assert_eq!(audit_rows(&mut db.superuser().await).await, 1);
}

#[tokio::test]
async fn the_owner_role_cannot_update_delete_or_truncate_audit_records() {
    let (db, org, _admin) = seeded().await;
    let mut owner = db.owner().await;
    crate::each(&mut owner, &["begin", &format!("set local app.current_tenant_id = '{org}'")]).await;
    assert_eq!(tamper(&mut owner).await, ["42501", "42501", "42501"]);
    sqlx::raw_sql("rollback").execute(&mut owner).await.unwrap();

    // Even with FORCE lifted and the privileges granted back, the ALWAYS trigger holds.
    crate::each(
        &mut owner,
        &[
            "begin",
            "alter table app.audit_logs no force row level security",
            "grant update, delete, truncate on app.audit_logs to mos_owner",
            &format!("set local app.current_tenant_id = '{org}'"),
        ],
    )
    .await;
    assert_eq!(tamper(&mut owner).await, ["42501", "42501", "42501"]);
    sqlx::raw_sql("rollback").execute(&mut owner).await.unwrap();
    assert_eq!(audit_rows(&mut db.superuser().await).await, 1);
}

#[tokio::test]
async fn the_guard_fires_for_the_superuser_even_in_replica_mode() {
    let (db, ..) = seeded().await;
    let mut su = db.superuser().await;
    sqlx::raw_sql("begin; set local session_replication_role = replica").execute(&mut su).await.unwrap();
    assert_eq!(tamper(&mut su).await, ["42501", "42501", "42501"]);
    sqlx::raw_sql("rollback").execute(&mut su).await.unwrap();
    let err = sqlx::query("delete from app.audit_logs").execute(&mut su).await.unwrap_err();
    assert!(err.to_string().contains("audit_logs is append-only: DELETE is not allowed"), "{err}");
}

#[tokio::test]
async fn a_failed_transaction_leaves_neither_the_change_nor_its_audit_record() {
    let (db, org, admin) = seeded().await;
    let pool = db.app_pool(1).await;
    let newcomer = new_user(&pool, "new@example.com").await;

    let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
    orgs::add_member(&mut tx, newcomer, Role::Viewer).await.unwrap();
    audit::record(&mut tx, &event("member.added").actor(admin).resource_id(newcomer)).await.unwrap();
    // Adding the same member again violates the primary key and dooms the transaction.
    let err = orgs::add_member(&mut tx, newcomer, Role::Viewer).await.unwrap_err();
    assert!(matches!(err, DbError::Conflict { .. }), "{err}");
    // What `?` does on the error path: the transaction is dropped, and so rolled back.
    drop(tx);

    let mut check = pool.begin_tenant(org, None).await.unwrap();
    assert_eq!(orgs::members(&mut check).await.unwrap().len(), 1, "the member was not added");
    let actions: Vec<String> = audit::recent(&mut check, 10).await.unwrap().into_iter().map(|r| r.action).collect();
    assert_eq!(actions, ["org.created"], "no audit record of a change that did not happen");
}

#[tokio::test]
async fn audit_records_keep_who_from_where_and_what_changed() {
    let (db, org, admin) = seeded().await;
    let pool = db.app_pool(1).await;
    let source = RequestSource {
        ip: Some("2001:db8::7".parse().unwrap()),
        user_agent: Some("curl/8.5".into()),
        request_id: Some("0190b3c4-0000-7000-8000-000000000042".into()),
        client_request_id: Some("client-7".into()),
    };
    let renamed = event("org.renamed").actor(admin).resource_id(org).source(source.clone()).change(
        "name",
        json!("Acme"),
        json!("Acme Health"),
    );
    let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
    let id = audit::record(&mut tx, &renamed).await.unwrap();
    let stored = audit::recent(&mut tx, 1).await.unwrap().remove(0);
    tx.commit().await.unwrap();

    assert_eq!(stored.id, id);
    assert_eq!(stored.scope, Some(org.as_uuid()));
    assert_eq!(stored.actor, Some(admin.as_uuid()));
    assert_eq!(stored.ip, source.ip);
    assert_eq!(stored.user_agent, source.user_agent);
    assert_eq!(stored.request_id, source.request_id);
    assert_eq!(stored.metadata, json!({ "client_request_id": "client-7" }), "the client's id apart from ours");
    assert_eq!(stored.changes, json!({ "name": { "before": "Acme", "after": "Acme Health" } }));
}

#[tokio::test]
async fn the_schema_refuses_malformed_audit_records_that_bypass_the_types() {
    let (db, org, _admin) = seeded().await;
    let mut conn = db.app_user().await;
    crate::each(&mut conn, &["begin", &format!("set local app.current_tenant_id = '{org}'")]).await;
    for (action, changes) in [("", "{}"), ("Created", "{}"), ("org.created", "[]")] {
        sqlx::raw_sql("savepoint s").execute(&mut conn).await.unwrap();
        let result = sqlx::query(
            "insert into app.audit_logs (organization_id, id, action, resource_type, outcome, changes) values ($1, $2, $3, 'organization', 'success', $4::jsonb)",
        )
        .bind(org.as_uuid())
        .bind(uuid::Uuid::now_v7())
        .bind(action)
        .bind(changes)
        .execute(&mut conn)
        .await;
        assert_eq!(sqlstate(result), "23514", "{action:?} {changes}");
        sqlx::raw_sql("rollback to savepoint s").execute(&mut conn).await.unwrap();
    }
}
