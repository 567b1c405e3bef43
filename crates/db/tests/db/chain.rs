use chrono::Utc;
use futures::future::join_all;
use mos_db::chain::{self, Reason};
use mos_db::testing::{self, TestDb};
use mos_db::{audit, AppPool};
use mos_domain::{AuditAction, AuditEvent, OrgId, ResourceType, UserId};
use sqlx::PgConnection;

use crate::{new_org, new_user};

async fn record(pool: &AppPool, org: OrgId, actor: UserId, n: usize) {
    let mut tx = pool.begin_tenant(org, Some(actor)).await.unwrap();
    let event =
        AuditEvent::new(AuditAction::known("doc.created"), ResourceType::known("document")).actor(actor).resource_id(n);
    audit::record(&mut tx, &event).await.unwrap();
    tx.commit().await.unwrap();
}

/// An organization with ten records, each sealed in a block of its own (the tests' own org
/// helper writes no audit).
async fn ten_sealed() -> (TestDb, AppPool) {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let admin = new_user(&pool, "admin@example.com").await;
    let org = new_org(&pool, "acme", admin).await;
    for n in 0..10 {
        record(&pool, org, admin, n).await;
        let sweep = chain::seal(&pool, None, chain::WINDOW).await.unwrap();
        assert_eq!(sweep.sealed, 1);
        assert!(
            sweep.oldest.is_some_and(|at| Utc::now() - at < chrono::Duration::minutes(1)),
            "the sweep knows its lag"
        );
    }
    (db, pool)
}

/// Runs `tamper` as the superuser with every trigger (guards and foreign keys) set aside,
/// verifies, and rolls everything back.
async fn verify_after(db: &TestDb, tamper: &str) -> Option<(i64, Reason)> {
    let mut su: PgConnection = db.superuser().await;
    sqlx::raw_sql(
        "begin; alter table app.audit_logs disable trigger all; alter table app.audit_blocks disable trigger all",
    )
    .execute(&mut su)
    .await
    .unwrap();
    sqlx::raw_sql(tamper).execute(&mut su).await.unwrap();
    let report = chain::verify(&mut su, Some("acme"), Utc::now()).await.unwrap().remove(0);
    sqlx::raw_sql("rollback").execute(&mut su).await.unwrap();
    report.broken.map(|b| (b.seq, b.reason))
}

const RECORD_AT: &str = "(select audit_ids[1] from app.audit_blocks where first_seq = ";

#[tokio::test]
async fn sealing_chains_every_record_once_and_an_untouched_chain_verifies() {
    let (db, pool) = ten_sealed().await;
    let again = chain::seal(&pool, None, chain::WINDOW).await.unwrap();
    assert_eq!((again.sealed, again.oldest), (0, None), "nothing is sealed twice");
    let report = chain::verify(&mut db.superuser().await, None, Utc::now()).await.unwrap().remove(0);
    assert_eq!((report.records, report.head.0, report.pending.0, &report.broken), (10, 10, 0, &None));
    let heads = chain::heads(&mut db.superuser().await).await.unwrap();
    assert_eq!((heads[0].seq, heads[0].hash), (10, report.head.1));
    assert!(chain::holds(&mut db.superuser().await, &heads[0]).await.unwrap());
}

#[tokio::test]
async fn each_kind_of_tampering_by_the_superuser_is_detected_with_its_reason() {
    testing::requires(
        testing::Backend::Postgres,
        "the coordinator refuses to switch a distributed table's triggers; \
         citus::a_record_edited_on_a_worker_shard_is_reported_as_changed tampers on a shard instead",
    );
    let (db, _) = ten_sealed().await;
    let cases = [
        (format!("update app.audit_logs set action = 'doc.deleted' where id = {RECORD_AT}4)"), (4, Reason::Changed)),
        (format!("update app.audit_logs set metadata = '{{\"note\": \"edited\"}}' where id = {RECORD_AT}7)"), (7, Reason::Changed)),
        (format!("delete from app.audit_logs where id = {RECORD_AT}5)"), (5, Reason::Deleted)),
        ("delete from app.audit_blocks where first_seq = 6".to_owned(), (6, Reason::Deleted)),
        (
            "insert into app.audit_logs (organization_id, id, action, resource_type, outcome, created_at)
             select id, '0190d6c2-0000-7000-8000-000000000001', 'doc.created', 'document', 'success', now() - interval '1 hour'
               from app.organizations"
                .to_owned(),
            (11, Reason::Inserted),
        ),
        (
            "update app.audit_blocks b
                set audit_ids = (select o.audit_ids from app.audit_blocks o where o.first_seq = 7 - b.first_seq)
              where b.first_seq in (3, 4)"
                .to_owned(),
            (3, Reason::Reordered),
        ),
        ("delete from app.audit_blocks where first_seq > 8".to_owned(), (9, Reason::Deleted)),
    ];
    for (tamper, expected) in cases {
        assert_eq!(verify_after(&db, &tamper).await, Some(expected), "{tamper}");
    }
    assert_eq!(verify_after(&db, "select 1").await, None, "the rollbacks left the chain intact");
}

#[tokio::test]
async fn records_awaiting_their_seal_are_a_lag_not_a_break() {
    let (db, pool) = ten_sealed().await;
    let admin = new_user(&pool, "other@example.com").await;
    let org = new_org(&pool, "globex", admin).await;
    record(&pool, org, admin, 1).await;
    let report = chain::verify(&mut db.superuser().await, Some("globex"), Utc::now()).await.unwrap().remove(0);
    assert_eq!((report.pending.0, &report.broken), (1, &None));
    let later = Utc::now() + chrono::Duration::minutes(11);
    let report = chain::verify(&mut db.superuser().await, Some("globex"), later).await.unwrap().remove(0);
    assert_eq!(report.broken.map(|b| b.reason), Some(Reason::Inserted), "unsealed past the window");
}

#[tokio::test]
async fn concurrent_writers_and_sealers_leave_one_unbroken_gapless_chain_per_tenant() {
    let db = TestDb::new().await;
    let pool = db.app_pool(8).await;
    let admin = new_user(&pool, "admin@example.com").await;
    let tenants = [new_org(&pool, "acme", admin).await, new_org(&pool, "globex", admin).await];
    let writers = (0..12).map(|w| {
        let pool = pool.clone();
        async move {
            for n in 0..15 {
                record(&pool, tenants[w % 2], admin, n).await;
            }
        }
    });
    // Three sealers race the writers and each other.
    let sealers = (0..3).map(|_| {
        let pool = pool.clone();
        async move {
            for _ in 0..10 {
                chain::seal(&pool, Some(Utc::now() - chrono::Duration::minutes(1)), chain::QUICK_WINDOW).await.unwrap();
                tokio::task::yield_now().await;
            }
        }
    });
    tokio::join!(join_all(writers), join_all(sealers));
    chain::seal(&pool, None, chain::WINDOW).await.unwrap();
    let reports = chain::verify(&mut db.superuser().await, None, Utc::now()).await.unwrap();
    assert_eq!(reports.len(), 2, "a report for each tenant");
    for report in reports {
        assert_eq!(
            (report.records, report.head.0, report.pending.0, &report.broken),
            (90, 90, 0, &None),
            "{}",
            report.slug
        );
    }
}

#[tokio::test]
async fn app_user_can_neither_forge_nor_change_blocks() {
    let (db, pool) = ten_sealed().await;
    let org: uuid::Uuid =
        sqlx::query_scalar("select id from app.organizations").fetch_one(&mut db.superuser().await).await.unwrap();
    let mut tx = pool.begin_tenant(OrgId::from_uuid(org).unwrap(), None).await.unwrap();
    let blocks: i64 = sqlx::query_scalar("select count(*) from app.audit_blocks").fetch_one(tx.conn()).await.unwrap();
    assert_eq!(blocks, 10, "a tenant reads its own blocks");
    for sql in [
        "insert into app.audit_blocks (organization_id, first_seq, prev_hash, audit_ids, hashes, last_created_at)
         select organization_id, 11, prev_hash, audit_ids, hashes, last_created_at from app.audit_blocks where first_seq = 1",
        "update app.audit_blocks set hashes = array[prev_hash]",
        "delete from app.audit_blocks",
        "update app.audit_chain_heads set seq = 0",
    ] {
        sqlx::raw_sql("savepoint s").execute(tx.conn()).await.unwrap();
        assert_eq!(crate::sqlstate(sqlx::raw_sql(sql).execute(tx.conn()).await), "42501", "{sql}");
        sqlx::raw_sql("rollback to savepoint s").execute(tx.conn()).await.unwrap();
    }
    // The sealer's own entry point takes only a block that continues the chain: block 5 again
    // is refused.
    let (prev, ids, hashes, last): (Vec<u8>, Vec<uuid::Uuid>, Vec<Vec<u8>>, chrono::DateTime<Utc>) = sqlx::query_as(
        "select prev_hash, audit_ids, hashes, last_created_at from app.audit_blocks where organization_id = $1 and first_seq = 5",
    )
    .bind(org)
    .fetch_one(tx.conn())
    .await
    .unwrap();
    let replayed = sqlx::query("select app.audit_append_block($1, 5, $2, $3, $4, $5)")
        .bind(org)
        .bind(prev)
        .bind(ids)
        .bind(hashes)
        .bind(last)
        .execute(tx.conn())
        .await;
    assert_eq!(crate::sqlstate(replayed), "40001");
}

#[tokio::test]
async fn the_sealer_links_records_exactly_as_the_documented_encoding_computes() {
    let db = TestDb::new().await;
    let vectors = db.insert_audit_vectors().await;
    let pool = db.app_pool(1).await;
    let sweep = chain::seal(&pool, None, chain::WINDOW).await.unwrap();
    assert_eq!(sweep.sealed, vectors.hashes.len() as i64);
    let mut su = db.superuser().await;
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar(
        "select h from app.audit_blocks, unnest(hashes) with ordinality as u(h, i)
          where organization_id = $1 order by first_seq, i",
    )
    .bind(vectors.organization_id)
    .fetch_all(&mut su)
    .await
    .unwrap();
    assert_eq!(sealed.iter().map(hex::encode).collect::<Vec<_>>(), vectors.hashes);
    let report = chain::verify(&mut su, Some(testing::AUDIT_VECTORS_SLUG), Utc::now()).await.unwrap().remove(0);
    assert_eq!((report.records, report.broken), (3, None), "the verifier agrees with the vectors");
    assert_eq!(Some(&hex::encode(report.head.1)), vectors.hashes.last());
}

#[tokio::test]
async fn a_receipts_lookup_of_its_events_records_uses_an_index_not_the_tenants_whole_trail() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let admin = new_user(&pool, "admin@example.com").await;
    let org = new_org(&pool, "acme", admin).await;
    // A few thousand records, each naming a resource of its own.
    let mut ids = Vec::new();
    for _ in 0..30 {
        let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
        for _ in 0..100 {
            let resource = uuid::Uuid::new_v4();
            let event = AuditEvent::new(AuditAction::known("consent.granted"), ResourceType::known("consent"))
                .actor(admin)
                .resource_id(resource);
            ids.push((audit::record(&mut tx, &event).await.unwrap(), resource));
        }
        tx.commit().await.unwrap();
    }
    let (record, resource) = ids[1234];
    let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
    crate::each(tx.conn(), &["set local citus.propagate_set_commands = 'local'", "set local enable_seqscan = off"])
        .await;
    let plan: Vec<String> =
        sqlx::query_scalar(&format!("explain (costs off) {}", mos_db::audiences::export::EVENT_RECORDS))
            .bind(org.as_uuid())
            .bind(vec![resource.to_string()])
            .fetch_all(tx.conn())
            .await
            .unwrap();
    let plan = plan.join("\n");
    // Without it, the organization's records are read by their time and filtered.
    assert!(plan.contains("audit_logs_resource_idx"), "{plan}");
    let found: Vec<(uuid::Uuid, String)> = sqlx::query_as(mos_db::audiences::export::EVENT_RECORDS)
        .bind(org.as_uuid())
        .bind(vec![resource.to_string()])
        .fetch_all(tx.conn())
        .await
        .unwrap();
    assert_eq!(found, vec![(record, resource.to_string())]);
}
