use futures::future::join_all;
use mos_db::chain::{self, Reason};
use mos_db::testing::TestDb;
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

/// An organization with ten records in its chain (org creation is recorded by the tests' own
/// helper without audit, so these are the only ones).
async fn ten_records() -> (TestDb, OrgId) {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let admin = new_user(&pool, "admin@example.com").await;
    let org = new_org(&pool, "acme", admin).await;
    for n in 0..10 {
        record(&pool, org, admin, n).await;
    }
    (db, org)
}

/// Runs `tamper` as the superuser, with the guards that would stop it set aside, verifies, and
/// rolls everything back.
async fn verify_after(db: &TestDb, tamper: &str) -> Option<(i64, Reason)> {
    let mut su: PgConnection = db.superuser().await;
    sqlx::raw_sql("begin; alter table app.audit_logs disable trigger user").execute(&mut su).await.unwrap();
    sqlx::raw_sql(tamper).execute(&mut su).await.unwrap();
    let report = chain::verify(&mut su, Some("acme")).await.unwrap().remove(0);
    sqlx::raw_sql("rollback").execute(&mut su).await.unwrap();
    report.broken.map(|b| (b.seq, b.reason))
}

#[tokio::test]
async fn an_untouched_chain_verifies_end_to_end() {
    let (db, _) = ten_records().await;
    let report = chain::verify(&mut db.superuser().await, None).await.unwrap().remove(0);
    assert_eq!((report.records, report.head.0, report.broken), (10, 10, None));
    let heads = chain::heads(&mut db.superuser().await).await.unwrap();
    assert_eq!((heads[0].seq, heads[0].hash), (10, report.head.1));
}

#[tokio::test]
async fn each_kind_of_tampering_by_the_superuser_is_detected_with_its_reason() {
    let (db, _) = ten_records().await;
    let cases = [
        ("update app.audit_logs set action = 'doc.deleted' where seq = 4", (4, Reason::Changed)),
        ("update app.audit_logs set metadata = '{\"note\": \"edited\"}' where seq = 7", (7, Reason::Changed)),
        ("delete from app.audit_logs where seq = 5", (5, Reason::Deleted)),
        (
            "insert into app.audit_logs (organization_id, id, action, resource_type, outcome, seq, prev_hash, hash)
             select organization_id, '0190d6c2-0000-7000-8000-000000000001', 'doc.created', 'document', 'success',
                    11, sha256('forged'), sha256('forged')
               from app.audit_logs where seq = 10",
            (11, Reason::Inserted),
        ),
        (
            "alter table app.audit_logs drop constraint audit_logs_seq_key;
             update app.audit_logs set seq = -3 where seq = 3;
             update app.audit_logs set seq = 3 where seq = 4;
             update app.audit_logs set seq = 4 where seq = -3",
            (3, Reason::Reordered),
        ),
        ("delete from app.audit_logs where seq > 8", (9, Reason::Deleted)),
    ];
    for (tamper, expected) in cases {
        assert_eq!(verify_after(&db, tamper).await, Some(expected), "{tamper}");
    }
    assert_eq!(verify_after(&db, "select 1").await, None, "the rollbacks left the chain intact");
}

#[tokio::test]
async fn a_forged_record_with_a_consistent_hash_still_breaks_the_link() {
    let (db, _) = ten_records().await;
    // The forger computes the hash properly, but cannot know a link that fits the chain and
    // still say what they want: here it hangs off the genesis hash.
    let forged = "insert into app.audit_logs (organization_id, id, action, resource_type, outcome, created_at, seq, prev_hash, hash)
        select organization_id, '0190d6c2-0000-7000-8000-000000000002', 'doc.created', 'document', 'success', created_at,
               11, decode(repeat('00', 32), 'hex'),
               app.audit_link_hash(decode(repeat('00', 32), 'hex'), 11,
                   (organization_id, '0190d6c2-0000-7000-8000-000000000002'::uuid, null, 'doc.created', 'document', null,
                    'success', null, null, null, '{}'::jsonb, '{}'::jsonb, created_at, null, null, null)::app.audit_logs)
          from app.audit_logs where seq = 10";
    assert_eq!(verify_after(&db, forged).await, Some((11, Reason::Inserted)));
}

#[tokio::test]
async fn concurrent_writers_leave_one_unbroken_gapless_chain_per_tenant() {
    let db = TestDb::new().await;
    let pool = db.app_pool(8).await;
    let admin = new_user(&pool, "admin@example.com").await;
    let tenants = [new_org(&pool, "acme", admin).await, new_org(&pool, "globex", admin).await];
    let writers = (0..16).map(|w| {
        let pool = pool.clone();
        async move {
            for n in 0..15 {
                record(&pool, tenants[w % 2], admin, n).await;
            }
        }
    });
    join_all(writers).await;
    // A rolled-back insert takes its link with it.
    let mut tx = pool.begin_tenant(tenants[0], Some(admin)).await.unwrap();
    let event = AuditEvent::new(AuditAction::known("doc.created"), ResourceType::known("document"));
    audit::record(&mut tx, &event).await.unwrap();
    tx.rollback().await.unwrap();

    for report in chain::verify(&mut db.superuser().await, None).await.unwrap() {
        assert_eq!((report.records, report.head.0, &report.broken), (120, 120, &None), "{}", report.slug);
    }
}
