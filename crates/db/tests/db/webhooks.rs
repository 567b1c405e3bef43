//! The webhook outbox (migration 34) as `app_user`: the triggers write an event only for an
//! organization with an enabled subscription to its type, and only in its own tenant; a claim
//! hands out each endpoint's events of one contact in order, one at a time; a claim whose
//! worker died is taken over once its lease ran out, and the dead worker can record nothing;
//! finished events leave after the retention, pending ones never.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use mos_auth::Sealer;
use mos_db::campaigns::{self, Launch, Sent};
use mos_db::feedback::{self, Kind};
use mos_db::testing::campaign::{self, approved, begin, keys, launch, new_campaign, src, Org};
use mos_db::testing::TestDb;
use mos_db::webhooks::{self, Attempt, NewWebhook};
use mos_db::{AppPool, TenantTx};
use mos_domain::webhooks::EventType;
use mos_domain::{ContactId, ContentId, WebhookId};
use uuid::Uuid;

fn sealer() -> Sealer {
    Sealer::from_base64(&Sealer::generate_key_base64(&mut rand::thread_rng())).unwrap()
}

/// A launched campaign of `o` with every message claimed: its id and the claimed contacts.
async fn claimed(pool: &AppPool, o: &Org) -> (ContentId, Vec<ContactId>) {
    let id = new_campaign(pool, o, &o.definition).await;
    approved(pool, o, id).await;
    assert!(matches!(launch(pool, o, id).await, Launch::Done(_)));
    let mut tx = begin(pool, o.org, o.admin).await;
    let claimed = campaigns::claim(&mut tx, id, 100, chrono::Duration::minutes(5), Utc::now()).await.unwrap();
    tx.commit().await.unwrap();
    (id, claimed.messages.iter().map(|m| m.contact).collect())
}

async fn subscribe(pool: &AppPool, o: &Org, sealer: &Sealer, events: &[EventType]) -> WebhookId {
    let mut tx = begin(pool, o.org, o.admin).await;
    let new = NewWebhook { url: "https://hooks.example.com/in", events, description: None };
    let id = webhooks::create(&mut tx, sealer, &new, &[9; 32], o.admin, Utc::now(), &src()).await.unwrap();
    tx.commit().await.unwrap();
    id
}

async fn sent(pool: &AppPool, o: &Org, id: ContentId, contact: ContactId) {
    let values = BTreeMap::new();
    let mut tx = begin(pool, o.org, o.admin).await;
    let sent = [Sent { contact, values: &values, reply: "250 2.0.0 Ok" }];
    campaigns::record_sent(&mut tx, id, &sent, Utc::now(), &src()).await.unwrap();
    tx.commit().await.unwrap();
}

async fn reported(pool: &AppPool, o: &Org, id: ContentId, contact: ContactId, kind: Kind, code: &str) {
    let mut tx = begin(pool, o.org, o.admin).await;
    feedback::record(&mut tx, id, contact, kind, code, Utc::now(), &src()).await.unwrap();
    tx.commit().await.unwrap();
}

/// The tenant's outbox as `app_user` sees it: (type, contact) in enqueue order.
async fn outbox(tx: &mut TenantTx) -> Vec<(String, Option<Uuid>)> {
    sqlx::query_as("select event_type, contact_id from app.webhook_outbox order by enqueued_at, ord")
        .fetch_all(tx.conn())
        .await
        .unwrap()
}

#[tokio::test]
async fn events_are_written_only_for_a_subscribed_type_of_the_organization_and_no_other_tenant_sees_them() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let sealer = sealer();
    let acme = campaign::org(&pool, "acme", &sealer, &keys()).await;
    let globex = campaign::org(&pool, "globex", &sealer, &keys()).await;
    subscribe(&pool, &acme, &sealer, &[EventType::MessageSent, EventType::MessageBounced]).await;

    for o in [&acme, &globex] {
        let (id, contacts) = claimed(&pool, o).await;
        assert_eq!(contacts.len(), 1, "Ada alone has consent and is not suppressed");
        sent(&pool, o, id, o.ada).await;
        // Not subscribed: a delivery report writes nothing.
        reported(&pool, o, id, o.ada, Kind::Delivered, "2.0.0").await;
        // Subscribed: a bounce reported later.
        reported(&pool, o, id, o.ada, Kind::HardBounce, "5.1.1").await;
    }

    let mut tx = begin(&pool, acme.org, acme.admin).await;
    let ada = Some(acme.ada.as_uuid());
    assert_eq!(outbox(&mut tx).await, [("message.sent".to_owned(), ada), ("message.bounced".to_owned(), ada)]);
    let data: Vec<serde_json::Value> =
        sqlx::query_scalar("select data from app.webhook_outbox order by enqueued_at, ord")
            .fetch_all(tx.conn())
            .await
            .unwrap();
    // Ids and kinds, nothing of the person.
    assert_eq!(data[1]["bounce"], "hard");
    assert_eq!(data[1]["status"], "5.1.1");
    assert!(!data.iter().any(|d| d.to_string().contains('@')), "{data:?}");
    tx.commit().await.unwrap();

    // Globex has no subscription: nothing was written for it, and it sees none of Acme's.
    let mut tx = begin(&pool, globex.org, globex.admin).await;
    assert!(outbox(&mut tx).await.is_empty());
    let forged = sqlx::query(
        "insert into app.webhook_outbox (organization_id, subscription_id, event_id, event_type, data, occurred_at,
                                         enqueued_at, ord, next_attempt_at)
         select organization_id, id, gen_random_uuid(), 'message.sent', '{}', now(), now(), 1, now()
           from app.webhook_subscriptions",
    )
    .execute(tx.conn())
    .await
    .unwrap();
    assert_eq!(forged.rows_affected(), 0, "Acme's subscription is invisible to Globex");
    let direct = sqlx::query(
        "insert into app.webhook_outbox (organization_id, subscription_id, event_id, event_type, data, occurred_at,
                                         enqueued_at, ord, next_attempt_at)
         values ($1, $2, $3, 'message.sent', '{}', now(), now(), 1, now())",
    )
    .bind(acme.org.as_uuid())
    .bind(Uuid::now_v7())
    .bind(Uuid::now_v7())
    .execute(tx.conn())
    .await;
    assert!(direct.is_err(), "a row of another tenant is refused");
    tx.rollback().await.unwrap();
    let mut tx = pool.begin_tenant(globex.org, None).await.unwrap();
    let seen: i64 =
        sqlx::query_scalar("select count(*) from app.webhook_subscriptions").fetch_one(tx.conn()).await.unwrap();
    assert_eq!(seen, 0);
    tx.commit().await.unwrap();

    // A disabled subscription gets no new events.
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    let hooks = webhooks::list(&mut tx).await.unwrap();
    webhooks::set_enabled(&mut tx, hooks[0].id, false, acme.admin, Utc::now(), &src()).await.unwrap();
    tx.commit().await.unwrap();
    let (id, _) = claimed(&pool, &acme).await;
    sent(&pool, &acme, id, acme.ada).await;
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    assert_eq!(outbox(&mut tx).await.len(), 2);
    tx.commit().await.unwrap();
}

fn attempt(event: &webhooks::Claimed, delivered: bool, retry: Option<chrono::Duration>) -> Attempt {
    Attempt {
        subscription: event.subscription,
        event_id: event.event_id,
        status: Some(if delivered { 204 } else { 500 }),
        delivered,
        error: (!delivered).then(|| "the endpoint answered 500".to_owned()),
        retry_at: retry.map(|r| Utc::now() + r),
    }
}

async fn claim(
    pool: &AppPool,
    o: &Org,
    sealer: &Sealer,
    token: Uuid,
    ahead: chrono::Duration,
) -> Vec<webhooks::Claimed> {
    let mut tx = begin(pool, o.org, o.admin).await;
    let claimed =
        webhooks::claim(&mut tx, sealer, token, Utc::now() + ahead, Duration::from_secs(30), 10).await.unwrap();
    tx.commit().await.unwrap();
    claimed
}

fn kinds(claimed: &[webhooks::Claimed]) -> Vec<(String, Option<Uuid>)> {
    let mut kinds: Vec<_> = claimed.iter().map(|c| (c.event_type.clone(), c.contact_id)).collect();
    kinds.sort();
    kinds
}

#[tokio::test]
async fn a_contacts_events_are_claimed_in_order_one_at_a_time_and_a_dead_workers_claim_is_taken_over_after_its_lease() {
    let db = TestDb::new().await;
    let pool = db.app_pool(3).await;
    let sealer = sealer();
    let acme = campaign::org(&pool, "acme", &sealer, &keys()).await;
    let more = campaign::consenting(&pool, &acme, &keys(), 1).await;
    let events = [EventType::MessageSent, EventType::MessageDelivered, EventType::MessageComplained];
    subscribe(&pool, &acme, &sealer, &events).await;
    let (id, contacts) = claimed(&pool, &acme).await;
    assert_eq!(contacts.len(), 2);
    let (ada, other) = (acme.ada, more[0].0);
    // Ada: sent, delivered, complained, each in a transaction of its own; the other: sent.
    sent(&pool, &acme, id, ada).await;
    sent(&pool, &acme, id, other).await;
    reported(&pool, &acme, id, ada, Kind::Delivered, "2.0.0").await;
    reported(&pool, &acme, id, ada, Kind::Complaint, "abuse").await;
    let (ada, other) = (Some(ada.as_uuid()), Some(other.as_uuid()));
    let zero = chrono::Duration::zero();

    // The first worker takes each contact's first event and dies.
    let dead = Uuid::now_v7();
    let first = claim(&pool, &acme, &sealer, dead, zero).await;
    assert_eq!(kinds(&first), [("message.sent".to_owned(), ada), ("message.sent".to_owned(), other)]);

    // While two claims run at once, the second skips what the first holds and takes nothing.
    let mut one = begin(&pool, acme.org, acme.admin).await;
    let mut two = begin(&pool, acme.org, acme.admin).await;
    let later = Utc::now() + chrono::Duration::seconds(60);
    let a = webhooks::claim(&mut one, &sealer, Uuid::now_v7(), later, Duration::from_secs(30), 10).await.unwrap();
    let b = webhooks::claim(&mut two, &sealer, Uuid::now_v7(), later, Duration::from_secs(30), 10).await.unwrap();
    assert_eq!(a.len(), 2);
    assert!(b.is_empty(), "{:?}", kinds(&b));
    one.rollback().await.unwrap();
    two.rollback().await.unwrap();

    // Under its lease nobody else gets them; after it, another worker does.
    assert!(claim(&pool, &acme, &sealer, Uuid::now_v7(), zero).await.is_empty());
    let taker = Uuid::now_v7();
    let taken = claim(&pool, &acme, &sealer, taker, chrono::Duration::seconds(60)).await;
    assert_eq!(kinds(&taken), kinds(&first));
    let ids = |c: &[webhooks::Claimed]| c.iter().map(|e| e.event_id).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(ids(&taken), ids(&first), "the same events, with the same ids");

    // The dead worker's late record changes nothing.
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    let late: Vec<Attempt> = first.iter().map(|e| attempt(e, true, None)).collect();
    webhooks::record(&mut tx, dead, &late, Utc::now(), 100).await.unwrap();
    let attempts: i64 = sqlx::query_scalar("select sum(attempts) from app.webhook_outbox where organization_id = $1")
        .bind(acme.org.as_uuid())
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(attempts, 0);
    // Ada's is delivered; the other's fails and waits an hour.
    let outcome: Vec<Attempt> = taken
        .iter()
        .map(|e| {
            if e.contact_id == ada {
                attempt(e, true, None)
            } else {
                attempt(e, false, Some(chrono::Duration::hours(1)))
            }
        })
        .collect();
    webhooks::record(&mut tx, taker, &outcome, Utc::now(), 100).await.unwrap();
    tx.commit().await.unwrap();

    // Ada's second event, and not her third; the other's retry is not due. (Under its lease it
    // is taken over again later, as above.)
    let second = claim(&pool, &acme, &sealer, Uuid::now_v7(), chrono::Duration::seconds(60)).await;
    assert_eq!(kinds(&second), [("message.delivered".to_owned(), ada)]);
    // Given up after its last attempt, it lets the third through.
    let again = claim(&pool, &acme, &sealer, Uuid::now_v7(), chrono::Duration::seconds(120)).await;
    assert_eq!(kinds(&again), [("message.delivered".to_owned(), ada)]);
    let giver = Uuid::now_v7();
    let given = claim(&pool, &acme, &sealer, giver, chrono::Duration::seconds(180)).await;
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    webhooks::record(&mut tx, giver, &[attempt(&given[0], false, None)], Utc::now(), 100).await.unwrap();
    tx.commit().await.unwrap();
    let third = claim(&pool, &acme, &sealer, Uuid::now_v7(), chrono::Duration::seconds(240)).await;
    assert_eq!(kinds(&third), [("message.complained".to_owned(), ada)]);

    let mut tx = begin(&pool, acme.org, acme.admin).await;
    let states: Vec<(String, String, i32)> = sqlx::query_as(
        "select event_type, state, attempts from app.webhook_outbox
          where organization_id = $1 and contact_id = $2 order by enqueued_at, ord",
    )
    .bind(acme.org.as_uuid())
    .bind(ada)
    .fetch_all(tx.conn())
    .await
    .unwrap();
    assert_eq!(
        states,
        [
            ("message.sent".to_owned(), "delivered".to_owned(), 1),
            ("message.delivered".to_owned(), "failed".to_owned(), 1),
            ("message.complained".to_owned(), "pending".to_owned(), 0),
        ]
    );
    // Past the retention, what was delivered or given up leaves the outbox, oldest first and at
    // most a batch at a time; what is pending stays, however old.
    let minute = chrono::Duration::minutes(1);
    assert_eq!(webhooks::prune(&mut tx, Utc::now() - minute, 100).await.unwrap(), 0);
    assert_eq!(webhooks::prune(&mut tx, Utc::now() + minute, 1).await.unwrap(), 1);
    assert_eq!(webhooks::prune(&mut tx, Utc::now() + minute, 100).await.unwrap(), 1);
    let (ada, other) = (ada.unwrap(), other.unwrap());
    assert_eq!(
        outbox(&mut tx).await,
        [("message.sent".to_owned(), Some(other)), ("message.complained".to_owned(), Some(ada))]
    );
    tx.commit().await.unwrap();
}

#[tokio::test]
#[ignore = "needs the Citus cluster: MOS_TEST_BACKEND=citus cargo test -- --include-ignored"]
async fn on_citus_the_events_of_a_send_clicks_feedback_and_consent_and_their_claim_and_record_run_on_one_shard() {
    mos_db::testing::requires(mos_db::testing::Backend::Citus, "run with MOS_TEST_BACKEND=citus");
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let sealer = sealer();
    let acme = campaign::org(&pool, "acme", &sealer, &keys()).await;
    subscribe(&pool, &acme, &sealer, &EventType::ALL).await;
    let id = new_campaign(&pool, &acme, &acme.definition).await;
    approved(&pool, &acme, id).await;
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    // From here on, any statement that needs more than one shard is an error, the triggers'
    // statements included.
    crate::each(tx.conn(), &["set local citus.multi_task_query_log_level = 'error'"]).await;
    let now = Utc::now();
    assert!(matches!(
        campaigns::launch(&mut tx, id, acme.admin, mos_domain::Role::Admin, now, &src()).await.unwrap(),
        Launch::Done(_)
    ));
    let claimed = campaigns::claim(&mut tx, id, 10, chrono::Duration::minutes(5), now).await.unwrap();
    assert_eq!(claimed.messages.len(), 1);
    let values = BTreeMap::new();
    let sent = [Sent { contact: acme.ada, values: &values, reply: "250 2.0.0 Ok" }];
    campaigns::record_sent(&mut tx, id, &sent, now, &src()).await.unwrap();
    // More clicks than the five after which a connection may plan a statement generically.
    for _ in 0..8 {
        assert!(mos_db::clicks::record(&mut tx, id, acme.ada, 0, now).await.unwrap());
    }
    feedback::record(&mut tx, id, acme.ada, Kind::Delivered, "2.0.0", now, &src()).await.unwrap();
    let revoke = campaign::grant(&acme, acme.ada, mos_domain::audiences::ConsentKind::Revoke);
    mos_db::audiences::consent::append(&mut tx, &revoke, &src()).await.unwrap();
    let token = Uuid::now_v7();
    let mut handed = 0;
    for round in 0..12 {
        let at = Utc::now() + chrono::Duration::seconds(round);
        let claimed = webhooks::claim(&mut tx, &sealer, token, at, Duration::from_secs(30), 10).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        handed += claimed.len();
        let done: Vec<Attempt> = claimed.iter().map(|e| attempt(e, true, None)).collect();
        webhooks::record(&mut tx, token, &done, at, 100).await.unwrap();
    }
    assert_eq!(handed, 1 + 8 + 1 + 1, "sent, eight clicks, delivered, the consent change");
    assert_eq!(webhooks::outlook(&mut tx).await.unwrap(), (true, None));
    // Past the retention, a batch of the delivered leave the outbox.
    let later = Utc::now() + chrono::Duration::minutes(1);
    assert_eq!(webhooks::prune(&mut tx, later, 5).await.unwrap(), 5);
    tx.commit().await.unwrap();

    // A click in a transaction of its own, as the redirect records it.
    let mut tx = pool.begin_tenant(acme.org, None).await.unwrap();
    crate::each(tx.conn(), &["set local citus.multi_task_query_log_level = 'error'"]).await;
    assert!(mos_db::clicks::record(&mut tx, id, acme.ada, 1, Utc::now()).await.unwrap());
    tx.commit().await.unwrap();
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    assert_eq!(outbox(&mut tx).await.len(), 12 - 5, "the click's event too");
    tx.commit().await.unwrap();
}
