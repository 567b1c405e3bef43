use std::collections::HashSet;

use futures::{stream, StreamExt};
use mos_db::testing::{backend, Backend, TestDb};
use mos_db::users::EmailToken;
use mos_db::{audit, orgs, users, AppPool, AppPoolOptions, DbError};
use mos_domain::{AuditAction, AuditEvent, Email, OrgId, ResourceType, Role, Slug, TokenHash, UserId};
use sqlx::{Connection, Row};
use uuid::Uuid;

use crate::{new_org, new_user, sqlstate};

const RLS_VIOLATION: &str = "42501";
const TENANT_TABLES: [&str; 3] = ["app.organizations", "app.user_organizations", "app.audit_logs"];
const USER_TABLES: [&str; 3] = ["app.users", "app.email_verification_tokens", "app.totp_setups"];

async fn two_tenants(db: &TestDb) -> (AppPool, OrgId, UserId, OrgId, UserId) {
    let pool = db.app_pool(4).await;
    let alice = new_user(&pool, "alice@a.example").await;
    let bob = new_user(&pool, "bob@b.example").await;
    let a = new_org(&pool, "tenant-a", alice).await;
    let b = new_org(&pool, "tenant-b", bob).await;
    for (org, actor) in [(a, alice), (b, bob)] {
        let mut tx = pool.begin_tenant(org, Some(actor)).await.unwrap();
        let event =
            AuditEvent::new(AuditAction::parse("org.created").unwrap(), ResourceType::parse("organization").unwrap())
                .actor(actor)
                .resource_id(org);
        audit::record(&mut tx, &event).await.unwrap();
        tx.commit().await.unwrap();
    }
    (pool, a, alice, b, bob)
}

async fn count(conn: &mut sqlx::PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table}")).fetch_one(conn).await.unwrap()
}

#[tokio::test]
async fn without_a_tenant_app_user_sees_no_rows_and_cannot_write_any() {
    let db = TestDb::new().await;
    let (_pool, a, alice, ..) = two_tenants(&db).await;
    let mut conn = db.app_user().await;

    for table in TENANT_TABLES.iter().chain(&USER_TABLES) {
        assert_eq!(count(&mut conn, table).await, 0, "{table} without context");
    }
    let insert_org = sqlx::query("insert into app.organizations (id, slug, name) values ($1, 'sneaky', 'Sneaky')")
        .bind(Uuid::now_v7())
        .execute(&mut conn)
        .await;
    assert_eq!(sqlstate(insert_org), RLS_VIOLATION);
    let insert_member =
        sqlx::query("insert into app.user_organizations (organization_id, user_id, role) values ($1, $2, 'ADMIN')")
            .bind(a.as_uuid())
            .bind(alice.as_uuid())
            .execute(&mut conn)
            .await;
    assert_eq!(sqlstate(insert_member), RLS_VIOLATION);
    let updated = sqlx::query("update app.organizations set name = 'Hijacked'").execute(&mut conn).await.unwrap();
    assert_eq!(updated.rows_affected(), 0);
    let deleted = sqlx::query("delete from app.user_organizations").execute(&mut conn).await.unwrap();
    assert_eq!(deleted.rows_affected(), 0);

    let mut su = db.superuser().await;
    assert_eq!(count(&mut su, "app.organizations").await, 2, "nothing was changed");
    assert_eq!(count(&mut su, "app.user_organizations").await, 2);
}

#[tokio::test]
async fn after_a_tenant_transaction_ends_its_empty_setting_means_no_rows_not_an_error() {
    let db = TestDb::new().await;
    let (_pool, a, ..) = two_tenants(&db).await;
    let mut conn = db.app_user().await;

    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql(&format!("set local app.current_tenant_id = '{a}'")).execute(&mut *tx).await.unwrap();
    assert_eq!(count(&mut tx, "app.organizations").await, 1);
    tx.commit().await.unwrap();

    // The same session now reads the setting back as '' rather than NULL.
    let setting: Option<String> =
        sqlx::query_scalar("select current_setting('app.current_tenant_id', true)").fetch_one(&mut conn).await.unwrap();
    assert_eq!(setting.as_deref(), Some(""));
    for table in TENANT_TABLES {
        assert_eq!(count(&mut conn, table).await, 0, "{table} after the tenant transaction ended");
    }
}

#[tokio::test]
async fn a_tenant_reads_only_its_own_rows() {
    let db = TestDb::new().await;
    let (pool, a, alice, b, _bob) = two_tenants(&db).await;

    let mut tx = pool.begin_tenant(a, Some(alice)).await.unwrap();
    for table in TENANT_TABLES {
        // Without the explicit filter: RLS alone must hold the line.
        let column = if table == "app.organizations" { "id" } else { "organization_id" };
        let seen: Vec<Uuid> =
            sqlx::query_scalar(&format!("select {column} from {table}")).fetch_all(tx.conn()).await.unwrap();
        assert!(!seen.is_empty(), "{table}");
        assert!(seen.iter().all(|id| *id == a.as_uuid()), "{table} leaked another tenant: {seen:?}");
        // Asking for the other tenant by id finds nothing.
        let other: i64 = sqlx::query_scalar(&format!("select count(*) from {table} where {column} = $1"))
            .bind(b.as_uuid())
            .fetch_one(tx.conn())
            .await
            .unwrap();
        assert_eq!(other, 0, "{table}");
    }
    assert_eq!(audit::recent(&mut tx, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_tenant_cannot_insert_rows_into_another_tenant() {
    let db = TestDb::new().await;
    let (pool, a, alice, b, _bob) = two_tenants(&db).await;

    let mut tx = pool.begin_tenant(a, Some(alice)).await.unwrap();
    let member =
        sqlx::query("insert into app.user_organizations (organization_id, user_id, role) values ($1, $2, 'ADMIN')")
            .bind(b.as_uuid())
            .bind(alice.as_uuid())
            .execute(tx.conn())
            .await;
    assert_eq!(sqlstate(member), RLS_VIOLATION);
    tx.rollback().await.unwrap();

    let mut tx = pool.begin_tenant(a, Some(alice)).await.unwrap();
    let forged = sqlx::query(
        "insert into app.audit_logs (organization_id, id, action, resource_type, outcome) values ($1, $2, 'org.deleted', 'organization', 'success')",
    )
    .bind(b.as_uuid())
    .bind(Uuid::now_v7())
    .execute(tx.conn())
    .await;
    assert_eq!(sqlstate(forged), RLS_VIOLATION);
}

#[tokio::test]
async fn a_tenant_cannot_update_delete_or_move_rows_of_another_tenant() {
    let db = TestDb::new().await;
    let (pool, a, alice, b, bob) = two_tenants(&db).await;

    let mut tx = pool.begin_tenant(a, Some(alice)).await.unwrap();
    let updated = sqlx::query("update app.user_organizations set role = 'VIEWER' where organization_id = $1")
        .bind(b.as_uuid())
        .execute(tx.conn())
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 0);
    let renamed = sqlx::query("update app.organizations set name = 'Owned' where id = $1")
        .bind(b.as_uuid())
        .execute(tx.conn())
        .await
        .unwrap();
    assert_eq!(renamed.rows_affected(), 0);
    let deleted =
        sqlx::query("delete from app.organizations where id = $1").bind(b.as_uuid()).execute(tx.conn()).await.unwrap();
    assert_eq!(deleted.rows_affected(), 0);
    tx.commit().await.unwrap();

    // Moving one's own row into the other tenant fails the policy's WITH CHECK.
    let mut tx = pool.begin_tenant(a, Some(alice)).await.unwrap();
    let moved = sqlx::query("update app.user_organizations set organization_id = $1 where organization_id = $2")
        .bind(b.as_uuid())
        .bind(a.as_uuid())
        .execute(tx.conn())
        .await;
    // Citus refuses it before the policy does: a row never changes its distribution column.
    let refusals: &[&str] = match backend() {
        Backend::Postgres => &[RLS_VIOLATION],
        Backend::Citus => &[RLS_VIOLATION, "0A000"],
    };
    let moved = sqlstate(moved);
    assert!(refusals.contains(&moved.as_str()), "{moved}");
    drop(tx);

    let mut su = db.superuser().await;
    let (role, name): (String, String) = sqlx::query_as(
        "select m.role::text, o.name from app.user_organizations m join app.organizations o on o.id = m.organization_id where m.user_id = $1",
    )
    .bind(bob.as_uuid())
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!((role.as_str(), name.as_str()), ("ADMIN", "tenant-b"));
}

#[tokio::test]
async fn app_user_cannot_truncate_any_table() {
    let db = TestDb::new().await;
    let (pool, a, alice, ..) = two_tenants(&db).await;
    // Every table of every schema of ours, from the catalog, so that a new table is covered
    // without anyone remembering to list it here.
    let tables: Vec<String> = sqlx::query_scalar(
        "select format('%I.%I', schemaname, tablename) from pg_tables
          where schemaname not in ('pg_catalog', 'information_schema', 'citus', 'columnar') order by 1",
    )
    .fetch_all(&mut db.superuser().await)
    .await
    .unwrap();
    for covered in ["app.audit_logs", "app.contacts", "app.consent_events", "app.suppressions", "app.consent_evidence"]
    {
        assert!(tables.iter().any(|t| t == covered), "{covered} in {tables:?}");
    }
    assert!(tables.len() >= 30, "{tables:?}");
    let mut su = db.superuser().await;
    for table in &tables {
        let before = count(&mut su, table).await;
        let mut tx = pool.begin_tenant(a, Some(alice)).await.unwrap();
        let truncated = sqlx::query(&format!("truncate {table} cascade")).execute(tx.conn()).await;
        let err = truncated.expect_err(table);
        assert!(crate::refused_for_privilege(&err), "{table}: {err}");
        drop(tx);
        assert_eq!(count(&mut su, table).await, before, "{table}: nothing truncated");
    }
    assert_eq!(count(&mut su, "app.organizations").await, 2);
    assert_eq!(count(&mut su, "app.audit_logs").await, 2);
}

#[tokio::test]
async fn a_tenant_can_neither_read_nor_change_another_tenants_invitations_audit_blocks_or_chain_heads() {
    let db = TestDb::new().await;
    let (pool, a, alice, b, bob) = two_tenants(&db).await;
    let now = chrono::Utc::now();
    for (org, actor, n) in [(a, alice, 1u8), (b, bob, 2)] {
        let mut tx = pool.begin_tenant(org, Some(actor)).await.unwrap();
        let invitee = Email::parse(&format!("invitee{n}@example.com")).unwrap();
        orgs::invite(&mut tx, &invitee, Role::Viewer, &TokenHash([n; 32]), now, now + chrono::Duration::days(7))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(mos_db::chain::seal(&pool, None, mos_db::chain::WINDOW).await.unwrap().sealed, 2);
    let tables = ["app.invitations", "app.audit_blocks", "app.audit_chain_heads"];
    let mut su = db.superuser().await;
    for table in tables {
        assert_eq!(count(&mut su, table).await, 2, "{table}: one row per tenant to attack");
    }

    let mut tx = pool.begin_tenant(a, Some(alice)).await.unwrap();
    for table in tables {
        // The chain heads are not even readable by the application; the rest, only the tenant's own.
        sqlx::raw_sql("savepoint s").execute(tx.conn()).await.unwrap();
        match sqlx::query_scalar::<_, Uuid>(&format!("select organization_id from {table}")).fetch_all(tx.conn()).await
        {
            Ok(seen) => assert_eq!(seen, [a.as_uuid()], "{table}: RLS alone shows only the tenant's own row"),
            Err(e) => assert_eq!(sqlstate::<()>(Err(e)), RLS_VIOLATION, "{table}"),
        }
        sqlx::raw_sql("rollback to savepoint s").execute(tx.conn()).await.unwrap();
        for attack in [
            format!("update {table} set organization_id = organization_id where organization_id = $1"),
            format!("delete from {table} where organization_id = $1"),
        ] {
            sqlx::raw_sql("savepoint s").execute(tx.conn()).await.unwrap();
            match sqlx::query(&attack).bind(b.as_uuid()).execute(tx.conn()).await {
                Ok(done) => assert_eq!(done.rows_affected(), 0, "{attack}"),
                Err(e) => assert_eq!(sqlstate::<()>(Err(e)), RLS_VIOLATION, "{attack}"),
            }
            sqlx::raw_sql("rollback to savepoint s").execute(tx.conn()).await.unwrap();
        }
    }
    let forged = sqlx::query(
        "insert into app.invitations (organization_id, id, email, role, token_hash, created_at, expires_at)
         values ($1, $2, 'mallory@example.com', 'ADMIN', $3, now(), now() + interval '1 day')",
    )
    .bind(b.as_uuid())
    .bind(Uuid::now_v7())
    .bind(&[9u8; 32][..])
    .execute(tx.conn())
    .await;
    assert_eq!(sqlstate(forged), RLS_VIOLATION);
    drop(tx);

    let invitations: Vec<(Uuid, String)> =
        sqlx::query_as("select organization_id, email from app.invitations order by email")
            .fetch_all(&mut su)
            .await
            .unwrap();
    assert_eq!(
        invitations,
        [(a.as_uuid(), "invitee1@example.com".to_owned()), (b.as_uuid(), "invitee2@example.com".to_owned())]
    );
    for table in &tables[1..] {
        assert_eq!(count(&mut su, table).await, 2, "{table}: untouched");
    }
}

#[tokio::test]
async fn a_user_sees_only_their_own_private_rows() {
    let db = TestDb::new().await;
    let (pool, _a, alice, _b, bob) = two_tenants(&db).await;
    let mut tx = pool.begin_user(alice).await.unwrap();
    let now = chrono::Utc::now();
    users::replace_email_token(
        &mut tx,
        EmailToken::Verification,
        &TokenHash([1; 32]),
        now,
        now + chrono::Duration::hours(24),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = pool.begin_user(bob).await.unwrap();
    let emails: Vec<String> = sqlx::query_scalar("select email from app.users").fetch_all(tx.conn()).await.unwrap();
    assert_eq!(emails, ["bob@b.example"]);
    assert_eq!(count(tx.conn(), "app.email_verification_tokens").await, 0);
    let hijack = sqlx::query("update app.users set email = 'mine@b.example' where id = $1")
        .bind(alice.as_uuid())
        .execute(tx.conn())
        .await
        .unwrap();
    assert_eq!(hijack.rows_affected(), 0);
    // A user context is not a tenant context.
    assert_eq!(count(tx.conn(), "app.organizations").await, 0);
}

#[tokio::test]
async fn a_tenant_setting_that_is_not_a_uuid_is_an_error_not_a_match() {
    let db = TestDb::new().await;
    let mut conn = db.app_user().await;
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("select set_config('app.current_tenant_id', $1, true)")
        .bind("' or true --")
        .execute(&mut *tx)
        .await
        .unwrap();
    let read = sqlx::query("select * from app.organizations").fetch_all(&mut *tx).await;
    assert_eq!(sqlstate(read), "22P02", "invalid_text_representation");

    // In Rust the same input never gets as far as a transaction.
    let err = OrgId::parse("' or true --").unwrap_err();
    assert_eq!(err.to_string(), "organization id must be a UUID, got \"' or true --\"");
}

#[tokio::test]
async fn the_tenant_predicate_of_the_policy_is_an_index_condition() {
    let db = TestDb::new().await;
    let (pool, a, alice, ..) = two_tenants(&db).await;
    let mut tx = pool.begin_tenant(a, Some(alice)).await.unwrap();
    sqlx::raw_sql("set local enable_seqscan = off").execute(tx.conn()).await.unwrap();
    // No explicit filter: the only tenant predicate is the one RLS adds.
    let plan: Vec<String> =
        sqlx::query_scalar("explain select * from app.audit_logs order by created_at desc limit 10")
            .fetch_all(tx.conn())
            .await
            .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("Index Cond: (organization_id = app.current_tenant_id())")
        || plan.contains("Index Cond: (organization_id = (NULLIF(current_setting('app.current_tenant_id'::text, true), ''::text))::uuid)"),
        "the tenant predicate is not an index condition:\n{plan}");
    assert!(!plan.contains("SubPlan"), "{plan}");
}

#[tokio::test]
async fn app_user_is_neither_superuser_nor_bypassrls_nor_an_owner() {
    let db = TestDb::new().await;
    let mut conn = db.app_user().await;
    let row = sqlx::query(
        "select r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb,
                (select count(*) from pg_class where relowner = r.oid) + (select count(*) from pg_proc where proowner = r.oid)
                  + (select count(*) from pg_namespace where nspowner = r.oid) as owned
           from pg_roles r where r.rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!row.get::<bool, _>("rolsuper"));
    assert!(!row.get::<bool, _>("rolbypassrls"));
    assert!(!row.get::<bool, _>("rolcreaterole"));
    assert!(!row.get::<bool, _>("rolcreatedb"));
    assert_eq!(row.get::<i64, _>("owned"), 0);
}

#[tokio::test]
async fn the_app_pool_refuses_to_run_as_a_role_that_bypasses_rls() {
    let db = TestDb::new().await;
    let (_pool, a, ..) = two_tenants(&db).await;
    let err = AppPool::connect(AppPoolOptions { connect: db.superuser_options(), set_role: false, max_connections: 1 })
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::UnsafeAppRole { why, .. } if why == "is a superuser"), "{err}");

    // A role that is no superuser but has BYPASSRLS is refused too. Roles are the cluster's, so
    // the name is this test database's own; the session starts as that role (the test clusters
    // admit only their two roles at login).
    let skipper = format!("skipper_{}", db.name);
    let mut su = db.superuser().await;
    sqlx::raw_sql(&format!("create role {skipper} nologin bypassrls; grant app_user to {skipper}"))
        .execute(&mut su)
        .await
        .unwrap();
    let err = AppPool::connect(AppPoolOptions {
        connect: db.superuser_options().options([("role", skipper.as_str())]),
        set_role: false,
        max_connections: 1,
    })
    .await
    .unwrap_err();
    assert!(matches!(&err, DbError::UnsafeAppRole { why, .. } if *why == "bypasses row-level security"), "{err}");

    // Logging in as a superuser and switching to app_user is accepted, and is subject to RLS:
    // of the two tenants' organizations it sees only the one whose tenant is set.
    let pool = AppPool::connect(AppPoolOptions { connect: db.superuser_options(), set_role: true, max_connections: 1 })
        .await
        .unwrap();
    pool.ping(std::time::Duration::from_secs(5)).await.unwrap();
    let mut tx = pool.begin_tenant(a, None).await.unwrap();
    let seen: Vec<Uuid> = sqlx::query_scalar("select id from app.organizations").fetch_all(tx.conn()).await.unwrap();
    assert_eq!(seen, [a.as_uuid()]);
    let propagate: String = sqlx::query_scalar("show citus.propagate_set_commands").fetch_one(tx.conn()).await.unwrap();
    assert_eq!(propagate, "local", "ready for Citus to forward SET LOCAL to its workers");
    drop(tx);
    assert_eq!(count(&mut su, "app.organizations").await, 2, "the superuser itself sees both");
}

#[tokio::test]
async fn concurrent_requests_for_different_tenants_over_a_small_pool_only_see_their_own_rows() {
    let db = TestDb::new().await;
    let pool = db.app_pool(3).await;
    let admin = new_user(&pool, "ops@example.com").await;
    let mut tenants = Vec::new();
    for i in 0..8 {
        tenants.push(new_org(&pool, &format!("tenant-{i}"), admin).await);
    }

    // More requests in flight than connections, so connections pass between tenants under
    // contention; bounded, so that no request waits for dozens of others and runs into the
    // pool's acquire timeout when the machine is busy.
    let tasks = stream::iter(0..96).map(|i| {
        let pool = pool.clone();
        let org = tenants[i % tenants.len()];
        tokio::spawn(async move {
            let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
            let event =
                AuditEvent::new(AuditAction::parse("load.tested").unwrap(), ResourceType::parse("test").unwrap())
                    .resource_id(i);
            audit::record(&mut tx, &event).await.unwrap();
            tokio::task::yield_now().await;
            // Read back with no explicit filter, so only RLS decides what comes back.
            let seen: Vec<Uuid> =
                sqlx::query_scalar("select organization_id from app.audit_logs").fetch_all(tx.conn()).await.unwrap();
            let orgs: HashSet<Uuid> = sqlx::query_scalar("select id from app.organizations")
                .fetch_all(tx.conn())
                .await
                .unwrap()
                .into_iter()
                .collect();
            tx.commit().await.unwrap();
            assert!(seen.contains(&org.as_uuid()), "task {i} for {org} sees its own record");
            assert!(seen.iter().all(|o| *o == org.as_uuid()), "task {i} for {org} saw {seen:?}");
            assert_eq!(orgs, HashSet::from([org.as_uuid()]));
            // Between requests the pooled connection carries no tenant.
            let mut bare = pool.begin_user(admin).await.unwrap();
            let leaked: i64 =
                sqlx::query_scalar("select count(*) from app.audit_logs").fetch_one(bare.conn()).await.unwrap();
            assert_eq!(leaked, 0);
        })
    });
    let results: Vec<_> = tasks.buffer_unordered(8).collect().await;
    for result in results {
        result.unwrap();
    }

    for org in tenants {
        let mut tx = pool.begin_tenant(org, None).await.unwrap();
        assert_eq!(audit::recent(&mut tx, 1000).await.unwrap().len(), 12, "every write landed in its own tenant");
    }
}

#[tokio::test]
async fn login_lookup_works_before_any_context_and_opens_nothing_else() {
    let db = TestDb::new().await;
    let (pool, ..) = two_tenants(&db).await;
    let found = users::find_login(&pool, &Email::parse("ALICE@a.example").unwrap()).await.unwrap().unwrap();
    assert_eq!(found.password_hash, crate::HASH);
    assert!(found.email_verified_at.is_some());
    assert!(users::find_login(&pool, &Email::parse("nobody@a.example").unwrap()).await.unwrap().is_none());
    // The definer role is not reachable for app_user, and tables stay closed.
    let mut conn = db.app_user().await;
    assert_eq!(sqlstate(sqlx::query("set role mos_definer").execute(&mut conn).await), "42501");
    assert_eq!(count(&mut conn, "app.users").await, 0);
}

#[tokio::test]
async fn emailed_tokens_are_spent_once_not_after_expiry_and_a_resend_voids_older_ones() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    // Microseconds, as PostgreSQL stores them, so that what comes back compares equal.
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    let day = chrono::Duration::hours(24);
    let user = UserId::new();
    let mut tx = pool.begin_user(user).await.unwrap();
    users::insert(&mut tx, &Email::parse("new@example.com").unwrap(), crate::HASH, None).await.unwrap();
    for (kind, first, second) in [
        (EmailToken::Verification, TokenHash([1; 32]), TokenHash([2; 32])),
        (EmailToken::PasswordReset, TokenHash([3; 32]), TokenHash([4; 32])),
    ] {
        users::replace_email_token(&mut tx, kind, &first, now, now + day).await.unwrap();
        users::replace_email_token(&mut tx, kind, &second, now, now + day).await.unwrap();
    }
    tx.commit().await.unwrap();

    let redeem = |hash: TokenHash, kind: EmailToken, at: chrono::DateTime<chrono::Utc>| {
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin_lookup().await.unwrap();
            let user = users::redeem_email_token(&mut tx, kind, &hash, at).await.unwrap();
            tx.commit().await.unwrap();
            user
        }
    };
    let verified = || async {
        users::find_login(&pool, &Email::parse("new@example.com").unwrap()).await.unwrap().unwrap().email_verified_at
    };

    assert_eq!(redeem(TokenHash([1; 32]), EmailToken::Verification, now).await, None, "voided by the resend");
    assert_eq!(redeem(TokenHash([2; 32]), EmailToken::Verification, now + day).await, None, "expired");
    assert_eq!(redeem(TokenHash([2; 32]), EmailToken::PasswordReset, now).await, None, "a token of another kind");
    assert_eq!(verified().await, None);
    assert_eq!(redeem(TokenHash([2; 32]), EmailToken::Verification, now).await, Some(user));
    assert_eq!(verified().await, Some(now));
    assert_eq!(redeem(TokenHash([2; 32]), EmailToken::Verification, now).await, None, "spent");
    assert_eq!(redeem(TokenHash([9; 32]), EmailToken::Verification, now).await, None, "unknown");
    assert_eq!(redeem(TokenHash([3; 32]), EmailToken::PasswordReset, now).await, None, "voided by the resend");
    assert_eq!(redeem(TokenHash([4; 32]), EmailToken::PasswordReset, now).await, Some(user));
}

#[tokio::test]
async fn membership_lookup_finds_only_organizations_the_user_belongs_to() {
    let db = TestDb::new().await;
    let (pool, a, alice, ..) = two_tenants(&db).await;
    let mut tx = pool.begin_user(alice).await.unwrap();
    let access = orgs::access(&mut tx, &Slug::parse("tenant-a").unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (access.org, access.role, access.require_two_factor, access.two_factor_enabled),
        (a, Role::Admin, false, false)
    );
    assert_eq!(orgs::access(&mut tx, &Slug::parse("tenant-b").unwrap()).await.unwrap(), None);
    assert_eq!(orgs::access(&mut tx, &Slug::parse("no-such-org").unwrap()).await.unwrap(), None);
}

#[tokio::test]
async fn a_page_of_members_and_the_addresses_of_named_users_stay_within_the_tenant() {
    let db = TestDb::new().await;
    let (pool, a, alice, b, bob) = two_tenants(&db).await;
    let carol = new_user(&pool, "carol@a.example").await;
    let mut tx = pool.begin_tenant(a, Some(alice)).await.unwrap();
    orgs::add_member(&mut tx, carol, Role::Viewer).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = pool.begin_tenant(a, Some(alice)).await.unwrap();
    let first = orgs::members_page(&mut tx, None, 1).await.unwrap();
    assert_eq!(first.iter().map(|m| m.user).collect::<Vec<_>>(), [alice], "oldest membership first");
    let rest = orgs::members_page(&mut tx, Some((first[0].joined_at, first[0].user)), 10).await.unwrap();
    assert_eq!(rest.iter().map(|m| (m.user, m.email.as_str())).collect::<Vec<_>>(), [(carol, "carol@a.example")]);
    let mut named = orgs::addresses(&mut tx, &[alice, bob, carol]).await.unwrap();
    named.sort();
    let mut expected = vec![(alice, "alice@a.example".to_owned()), (carol, "carol@a.example".to_owned())];
    expected.sort();
    assert_eq!(named, expected, "a member of another organization is nobody here");
    assert_eq!(
        orgs::addresses(&mut tx, &[carol]).await.unwrap(),
        [(carol, "carol@a.example".to_owned())],
        "just those asked"
    );
    tx.commit().await.unwrap();

    let mut tx = pool.begin_tenant(b, Some(bob)).await.unwrap();
    assert_eq!(orgs::addresses(&mut tx, &[alice, carol]).await.unwrap(), []);
    let theirs = orgs::members_page(&mut tx, None, 10).await.unwrap();
    assert_eq!(theirs.iter().map(|m| m.user).collect::<Vec<_>>(), [bob]);
}

#[tokio::test]
async fn constraint_violations_come_back_as_typed_errors() {
    let db = TestDb::new().await;
    let (pool, _a, alice, ..) = two_tenants(&db).await;
    let org = OrgId::new();
    let mut tx = pool.begin_tenant(org, Some(alice)).await.unwrap();
    let slug = Slug::parse("tenant-a").unwrap();
    let err = orgs::insert(&mut tx, &slug, &mos_domain::OrgName::parse("Copy").unwrap()).await.unwrap_err();
    assert!(matches!(err, DbError::Conflict { ref constraint } if constraint == "organizations_slug_key"), "{err}");

    let user = UserId::new();
    let mut tx = pool.begin_user(user).await.unwrap();
    let err = users::insert(&mut tx, &Email::parse("Alice@A.example").unwrap(), crate::HASH, None).await.unwrap_err();
    assert!(matches!(err, DbError::Conflict { ref constraint } if constraint == "users_email_key"), "{err}");
    let mut tx = pool.begin_user(user).await.unwrap();
    let err = users::insert(&mut tx, &Email::parse("carol@example.com").unwrap(), "plaintext", None).await.unwrap_err();
    assert!(matches!(err, DbError::Invalid { ref constraint } if constraint == "users_password_hash_format"), "{err}");
}
