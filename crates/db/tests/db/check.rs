use mos_db::ops::check;
use mos_db::testing::{requires, Backend, TestDb};
use sqlx::PgConnection;

/// Runs `sabotage` as the superuser in a transaction, checks, and rolls back, so that changes
/// to cluster-wide roles never reach the other tests sharing the cluster.
async fn problems_after(db: &TestDb, sabotage: &str) -> Vec<(&'static str, String)> {
    let mut su: PgConnection = db.superuser().await;
    sqlx::raw_sql("begin").execute(&mut su).await.unwrap();
    sqlx::raw_sql(sabotage).execute(&mut su).await.unwrap_or_else(|e| panic!("{sabotage}: {e}"));
    let problems = check::run(&mut su).await.unwrap();
    sqlx::raw_sql("rollback").execute(&mut su).await.unwrap();
    problems.into_iter().map(|p| (p.code, p.detail)).collect()
}

#[tokio::test]
async fn a_freshly_migrated_database_passes_every_check() {
    let db = TestDb::new().await;
    let problems = check::run(&mut db.superuser().await).await.unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn each_way_of_switching_protection_off_is_reported() {
    requires(
        Backend::Postgres,
        "the coordinator refuses to switch a distributed table's triggers; \
         citus::protection_switched_off_on_one_shard_is_reported switches them off on a shard instead",
    );
    let db = TestDb::new().await;
    let cases: &[(&str, &str, &str)] = &[
        (
            "alter table app.user_organizations disable row level security",
            "rls_disabled",
            "app.user_organizations has row-level security disabled",
        ),
        (
            "alter table app.audit_logs no force row level security",
            "rls_disabled",
            "app.audit_logs has row-level security enabled but not forced",
        ),
        ("drop policy self_only on app.totp_setups", "no_policies", "app.totp_setups"),
        ("create table public.leads (organization_id uuid, email text)", "rls_disabled", "leads"),
        (
            "create policy peek on app.organizations for select using (exists (select 1 from app.user_organizations))",
            "policy_subquery",
            "peek",
        ),
        ("alter role app_user bypassrls", "app_role_privileged", "bypasses row-level security"),
        ("alter role app_user superuser", "app_role_privileged", "is a superuser"),
        ("grant mos_owner to app_user", "app_role_privileged", "mos_owner is granted to app_user"),
        ("alter table app.totp_setups owner to app_user", "app_role_owns", "app.totp_setups"),
        ("grant update on app.audit_logs to app_user", "audit_writable", "app_user can update"),
        ("grant truncate on app.audit_logs to mos_owner", "audit_writable", "mos_owner can truncate app.audit_logs"),
        (
            "grant delete on app.platform_audit_logs to app_user",
            "audit_writable",
            "app_user can delete app.platform_audit_logs",
        ),
        (
            "alter table app.platform_audit_logs disable trigger all",
            "audit_guard",
            "platform_audit_logs_append_only_truncate is not ENABLE ALWAYS (state D)",
        ),
        ("alter table app.auth_throttles disable row level security", "rls_disabled", "app.auth_throttles"),
        (
            "alter table app.audit_logs disable trigger audit_logs_append_only_rows",
            "audit_guard",
            "audit_logs_append_only_rows is not ENABLE ALWAYS",
        ),
        (
            "alter table app.audit_logs enable trigger audit_logs_append_only_truncate",
            "audit_guard",
            "audit_logs_append_only_truncate is not ENABLE ALWAYS (state O)",
        ),
        (
            "drop trigger audit_logs_append_only_truncate on app.audit_logs",
            "audit_guard",
            "audit_logs_append_only_truncate is missing",
        ),
        ("alter function app.find_login(text) reset search_path", "definer_search_path", "app.find_login(text)"),
        (
            "alter function app.find_login(text) owner to postgres",
            "definer_privileged",
            "runs as postgres, which is a superuser",
        ),
        ("create view public.all_orgs as select * from app.organizations", "view_not_invoker", "all_orgs"),
        ("alter role mos_owner login", "owner_can_login", "mos_owner"),
        ("delete from mos_migrations.applied", "migrations_pending", "0001_foundation"),
        (
            "create function app.lookup(p uuid) returns uuid language sql as 'select p'",
            "sql_function_with_parameters",
            "function app.lookup(uuid) is a SQL-language function with parameters",
        ),
        (
            "alter function app.throttle_clear(text) rename to throttle_clear_gone",
            "function_missing",
            "function app.throttle_clear(text) is missing",
        ),
        ("alter role app_user rename to app_user_gone", "app_role_missing", "role app_user does not exist"),
        ("grant update on app.consent_events to app_user", "audit_writable", "app_user can update app.consent_events"),
        ("grant delete on app.suppressions to mos_owner", "audit_writable", "mos_owner can delete app.suppressions"),
        (
            "alter table app.suppressions disable trigger suppressions_append_only_rows",
            "audit_guard",
            "suppressions_append_only_rows is not ENABLE ALWAYS (state D)",
        ),
        (
            "alter table app.consent_events disable trigger consent_events_rules",
            "rule_trigger",
            "rule trigger consent_events_rules on app.consent_events is not ENABLE ALWAYS (state D)",
        ),
        (
            "drop trigger consent_evidence_erased_only on app.consent_evidence",
            "rule_trigger",
            "rule trigger consent_evidence_erased_only on app.consent_evidence is missing",
        ),
    ];
    let mut unreported = Vec::new();
    for (sabotage, code, detail) in cases {
        let problems = problems_after(&db, sabotage).await;
        if !problems.iter().any(|(c, d)| c == code && d.contains(detail)) {
            unreported.push(format!("after `{sabotage}` expected {code}: …{detail}…, got {problems:#?}"));
        }
    }
    assert!(unreported.is_empty(), "{}", unreported.join("\n"));
    // And nothing leaked out of the rolled-back sabotage.
    assert!(check::run(&mut db.superuser().await).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_view_with_security_invoker_passes() {
    let db = TestDb::new().await;
    let problems = problems_after(
        &db,
        "create view public.my_orgs with (security_invoker = true) as select id from app.organizations",
    )
    .await;
    assert!(problems.is_empty(), "{problems:#?}");
}
