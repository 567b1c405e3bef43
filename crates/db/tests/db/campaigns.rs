//! Campaigns and the send ledger, attacked as `app_user`: a campaign is reviewed by the content
//! review, its definition is bound to the reviewed body, and the ledger refuses a message to be
//! sent for a campaign that is not launched and approved, or to a contact without a live
//! consent, erased, or suppressed, whatever the statement that writes it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use mos_auth::Sealer;
use mos_db::audiences::attributes::{self, Value};
use mos_db::audiences::{consent, contacts, segments, suppression};
use mos_db::campaigns::{self, Control, Failure, Launch, Sent};
use mos_db::content::{self, Step};
use mos_db::testing::campaign::{self, approved, begin, grant, keys, launch, new_campaign, src, step, Org};
use mos_db::testing::{Backend, TestDb};
use mos_db::{chain, AppPool, DbError, TenantTx};
use mos_domain::audiences::{AttributeKind, AttributeName, ConsentKind, SuppressionReason};
use mos_domain::campaigns::{Definition, Schedule, SegmentRef};
use mos_domain::content::{Action, Channel, Refusal, State, Text};
use mos_domain::merkle;
use mos_domain::segments::Segment;
use mos_domain::{ContactId, ContentId, Email, Role};

/// An organization ready to send, its sender's key sealed under a throwaway server key.
async fn org(pool: &AppPool, slug: &str) -> Org {
    let sealer = Sealer::from_base64(&Sealer::generate_key_base64(&mut rand::thread_rng())).unwrap();
    campaign::org(pool, slug, &sealer, &keys()).await
}

async fn ledger(tx: &mut TenantTx, id: ContentId) -> Vec<(uuid::Uuid, String, Option<String>)> {
    sqlx::query_as(
        "select contact_id, state::text, skip_reason::text from app.campaign_messages
          where campaign_id = $1 order by contact_id",
    )
    .bind(id.as_uuid())
    .fetch_all(tx.conn())
    .await
    .unwrap()
}

fn constraint(result: Result<impl std::fmt::Debug, DbError>) -> String {
    match result {
        Err(DbError::Invalid { constraint }) => constraint,
        other => panic!("expected a refusal by a constraint, got {other:?}"),
    }
}

/// Runs `sql` (binding the campaign and a contact) as `app_user` in the tenant and answers the
/// constraint that refused it.
async fn refused(pool: &AppPool, o: &Org, sql: &str, campaign: ContentId, contact: ContactId) -> String {
    let mut tx = begin(pool, o.org, o.admin).await;
    let result = sqlx::query(sql).bind(campaign.as_uuid()).bind(contact.as_uuid()).execute(tx.conn()).await;
    constraint(result.map_err(DbError::from))
}

#[tokio::test]
async fn a_campaign_is_reviewed_by_the_content_review_and_launches_only_when_approved_by_someone_else() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let o = org(&pool, "acme").await;
    let id = new_campaign(&pool, &o, &o.definition).await;

    // A draft does not launch, nor one in review; the author does not approve it.
    let refusal = |l: Launch| match l {
        Launch::Step(Step::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(matches!(refusal(launch(&pool, &o, id).await), Refusal::WrongState { .. }));
    let mut tx = begin(&pool, o.org, o.admin).await;
    assert!(matches!(step(&mut tx, id, Action::Submit, o.admin, Role::Admin).await, Step::Done(_)));
    assert_eq!(step(&mut tx, id, Action::Approve, o.admin, Role::Admin).await, Step::Refused(Refusal::OwnVersion));
    tx.commit().await.unwrap();
    assert!(matches!(refusal(launch(&pool, &o, id).await), Refusal::WrongState { .. }));
    // The content review's own publish does not launch a campaign, nor edit one.
    let mut tx = begin(&pool, o.org, o.admin).await;
    assert!(matches!(step(&mut tx, id, Action::Approve, o.reviewer, Role::Reviewer).await, Step::Done(_)));
    assert_eq!(step(&mut tx, id, Action::Publish, o.admin, Role::Admin).await, Step::Refused(Refusal::KindFixed));
    let other = Text::parse("December flu shots", Channel::Email, "", "Anything", &[]).unwrap();
    assert_eq!(campaign::edit(&mut tx, id, &other, o.admin).await, Step::Refused(Refusal::KindFixed));
    tx.commit().await.unwrap();

    // Approved by someone else: it launches, snapshotting every contact of the segment.
    let Launch::Done(launched) = launch(&pool, &o, id).await else { panic!("the approved campaign launches") };
    assert_eq!((launched.version, launched.recipients, launched.queued), (1, 3, 1));
    assert_eq!(launched.skipped.into_iter().collect::<Vec<_>>(), [("no_consent".into(), 1), ("suppressed".into(), 1)]);
    let mut tx = begin(&pool, o.org, o.admin).await;
    let mut expected = vec![
        (o.ada.as_uuid(), "queued".to_owned(), None),
        (o.bea.as_uuid(), "skipped".to_owned(), Some("no_consent".to_owned())),
        (o.cy.as_uuid(), "skipped".to_owned(), Some("suppressed".to_owned())),
    ];
    expected.sort();
    assert_eq!(ledger(&mut tx, id).await, expected);
    let item = content::get(&mut tx, id).await.unwrap().unwrap();
    assert_eq!((item.state, item.published_version), (State::Published, Some(1)));
    drop(tx);
    // Once launched, it does not launch again.
    assert!(matches!(refusal(launch(&pool, &o, id).await), Refusal::WrongState { .. }));
}

#[tokio::test]
async fn an_edit_makes_a_new_version_that_voids_the_approval_and_the_definition_is_bound_to_the_reviewed_body() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let o = org(&pool, "acme").await;
    let id = new_campaign(&pool, &o, &o.definition).await;
    let mut tx = begin(&pool, o.org, o.admin).await;
    assert!(matches!(step(&mut tx, id, Action::Submit, o.admin, Role::Admin).await, Step::Done(_)));
    assert!(matches!(step(&mut tx, id, Action::Approve, o.reviewer, Role::Reviewer).await, Step::Done(_)));
    let later = Schedule::at(Utc::now() + Duration::days(1));
    let changed = Definition::new(
        o.definition.content,
        o.definition.template,
        o.definition.segment,
        o.definition.sender,
        o.definition.purpose,
        later,
        vec![],
    )
    .unwrap();
    let text = changed.text("December flu shots").unwrap();
    let step =
        campaigns::edit(&mut tx, id, &changed, &text, o.admin, Role::Admin, None, Utc::now(), &src()).await.unwrap();
    let Step::Done(item) = step else { panic!("the edit is taken: {step:?}") };
    assert_eq!((item.state, item.current_version, item.approved_version), (State::Draft, 2, None));
    let stored = campaigns::version_of(&mut tx, id, 2).await.unwrap().unwrap();
    assert_eq!(stored.schedule, later);
    tx.commit().await.unwrap();

    // A stored definition does not change: versions are append-only.
    let mut tx = begin(&pool, o.org, o.admin).await;
    let update = sqlx::query("update app.campaign_versions set fields = '[]' where organization_id = app.current_tenant_id() and campaign_id = $1")
        .bind(id.as_uuid())
        .execute(tx.conn())
        .await;
    assert_eq!(crate::sqlstate(update), "42501");
    drop(tx);

    // Columns must say what the reviewed body says. A content version 3 whose body is version
    // 1's definition, written directly: version 2's columns under it are refused, version 1's
    // are taken.
    let mut tx = begin(&pool, o.org, o.admin).await;
    sqlx::query(
        "insert into app.content_versions
           (organization_id, item_id, number, author_id, created_at, title, channel, audience, body, tags, sha256)
         select organization_id, item_id, 3, author_id, now(), title, channel, audience, body, tags, sha256
           from app.content_versions where organization_id = app.current_tenant_id() and item_id = $1 and number = 1",
    )
    .bind(id.as_uuid())
    .execute(tx.conn())
    .await
    .unwrap();
    let v3: Vec<u8> = sqlx::query_scalar(
        "select sha256 from app.content_versions
          where organization_id = app.current_tenant_id() and item_id = $1 and number = 3",
    )
    .bind(id.as_uuid())
    .fetch_one(tx.conn())
    .await
    .unwrap();
    let copy = |from: i32| {
        format!(
            "insert into app.campaign_versions
               (organization_id, campaign_id, version, sha256, content_id, content_version, content_sha256,
                template_id, template_version, template_sha256, segment_id, segment_version, segment_sha256,
                sender_id, purpose_id, schedule, send_at, local_date, local_hour, fields)
             select organization_id, campaign_id, 3, $2, content_id, content_version, content_sha256,
                    template_id, template_version, template_sha256, segment_id, segment_version, segment_sha256,
                    sender_id, purpose_id, schedule, send_at, local_date, local_hour, fields
               from app.campaign_versions
              where organization_id = app.current_tenant_id() and campaign_id = $1 and version = {from}"
        )
    };
    sqlx::query("savepoint before").execute(tx.conn()).await.unwrap();
    let result = sqlx::query(&copy(2)).bind(id.as_uuid()).bind(&v3).execute(tx.conn()).await;
    assert_eq!(constraint(result.map_err(DbError::from)), "campaign_versions_body");
    sqlx::query("rollback to savepoint before").execute(tx.conn()).await.unwrap();
    sqlx::query(&copy(1)).bind(id.as_uuid()).bind(&v3).execute(tx.conn()).await.unwrap();
}

#[tokio::test]
async fn the_ledger_refuses_a_message_to_be_sent_without_a_launch_consent_or_to_a_suppressed_or_erased_contact() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let o = org(&pool, "acme").await;
    let id = new_campaign(&pool, &o, &o.definition).await;

    // Not launched (no run): a queued row is refused even with the run's row forged first,
    // because the campaign is not published on this version.
    let queue = "insert into app.campaign_messages
                   (organization_id, campaign_id, contact_id, version, state, not_before, updated_at)
                 values (app.current_tenant_id(), $1, $2, 1, 'queued', now(), now())";
    let forge_run = "insert into app.campaign_runs (organization_id, campaign_id, version, state, launched_by, launched_at, recipients)
                     values (app.current_tenant_id(), $1, 1, 'sending', $2, now(), 1)";
    let mut tx = begin(&pool, o.org, o.admin).await;
    sqlx::query(forge_run).bind(id.as_uuid()).bind(o.admin.as_uuid()).execute(tx.conn()).await.unwrap();
    let result = sqlx::query(queue).bind(id.as_uuid()).bind(o.ada.as_uuid()).execute(tx.conn()).await;
    assert_eq!(constraint(result.map_err(DbError::from)), "campaign_messages_approved");
    drop(tx);

    approved(&pool, &o, id).await;
    assert!(matches!(launch(&pool, &o, id).await, Launch::Done(_)));
    // Launched: the rows the launch skipped cannot be queued or handed over by any statement.
    for (contact, rule) in [(o.bea, "campaign_messages_consent"), (o.cy, "campaign_messages_suppressed")] {
        let requeue = "update app.campaign_messages set state = 'sending', skip_reason = null, lease_until = now()
                        where organization_id = app.current_tenant_id() and campaign_id = $1 and contact_id = $2";
        let err = refused(&pool, &o, requeue, id, contact).await;
        // Skipped is final: the forward-only rule refuses first.
        assert_eq!(err, "campaign_messages_transition");
        let reinsert = "insert into app.campaign_messages
                          (organization_id, campaign_id, contact_id, version, state, not_before, updated_at)
                        values (app.current_tenant_id(), $1, $2, 1, 'queued', now(), now())
                        on conflict (organization_id, campaign_id, contact_id)
                        do update set state = excluded.state";
        assert_eq!(refused(&pool, &o, reinsert, id, contact).await, "campaign_messages_transition", "{rule}");
    }

    // Between launch and hand-over Ada revokes: handing her message over is refused.
    let hand_over = "update app.campaign_messages set state = 'sending', lease_until = now() + interval '1 minute', claimed_at = now()
                      where organization_id = app.current_tenant_id() and campaign_id = $1 and contact_id = $2";
    let mut tx = begin(&pool, o.org, o.admin).await;
    consent::append(&mut tx, &grant(&o, o.ada, ConsentKind::Revoke), &src()).await.unwrap();
    let result = sqlx::query(hand_over).bind(id.as_uuid()).bind(o.ada.as_uuid()).execute(tx.conn()).await;
    assert_eq!(constraint(result.map_err(DbError::from)), "campaign_messages_consent");
    drop(tx);
    // Suppressed: refused too.
    let mut tx = begin(&pool, o.org, o.admin).await;
    let ada = Email::parse("ada@p.example").unwrap();
    suppression::suppress(&mut tx, &keys(), &ada, SuppressionReason::Unsubscribe, None, Utc::now(), &src())
        .await
        .unwrap();
    let result = sqlx::query(hand_over).bind(id.as_uuid()).bind(o.ada.as_uuid()).execute(tx.conn()).await;
    assert_eq!(constraint(result.map_err(DbError::from)), "campaign_messages_suppressed");
    drop(tx);
    // Erased: refused.
    let mut tx = begin(&pool, o.org, o.admin).await;
    assert!(contacts::erase(&mut tx, o.ada, o.admin, Utc::now(), &src()).await.unwrap());
    let result = sqlx::query(hand_over).bind(id.as_uuid()).bind(o.ada.as_uuid()).execute(tx.conn()).await;
    assert_eq!(constraint(result.map_err(DbError::from)), "campaign_messages_erased");
    drop(tx);
    // The content withdrawn (back to draft by an edit) after the launch: refused.
    let mut tx = begin(&pool, o.org, o.admin).await;
    let edited = Text::parse("Flu shots", Channel::Email, "patients", "Book now.", &[]).unwrap();
    assert!(matches!(campaign::edit(&mut tx, o.definition.content.item, &edited, o.admin).await, Step::Done(_)));
    let result = sqlx::query(hand_over).bind(id.as_uuid()).bind(o.ada.as_uuid()).execute(tx.conn()).await;
    assert_eq!(constraint(result.map_err(DbError::from)), "campaign_messages_approved");
    drop(tx);
    // With everything in place the same statement is taken, and a sent message stays sent.
    let mut tx = begin(&pool, o.org, o.admin).await;
    sqlx::query(hand_over).bind(id.as_uuid()).bind(o.ada.as_uuid()).execute(tx.conn()).await.unwrap();
    let values = BTreeMap::new();
    let sent = Sent { contact: o.ada, values: &values, reply: "250 ok" };
    assert_eq!(campaigns::record_sent(&mut tx, id, &[sent], Utc::now(), &src()).await.unwrap().messages, 1);
    tx.commit().await.unwrap();
    let back = "update app.campaign_messages set state = 'queued' where organization_id = app.current_tenant_id() and campaign_id = $1 and contact_id = $2";
    assert_eq!(refused(&pool, &o, back, id, o.ada).await, "campaign_messages_transition");
}

#[tokio::test]
async fn a_campaign_on_a_segment_with_conditions_snapshots_exactly_the_contacts_its_count_finds() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let o = org(&pool, "acme").await;
    let crowd: Vec<ContactId> =
        campaign::consenting(&pool, &o, &keys(), 2).await.into_iter().map(|(id, _)| id).collect();
    // Live consent for the purpose, and the plan "plus": Ada and the crowd's first, not Bea
    // (no consent), not Cy (suppressed), not the crowd's second (no plan).
    let mut tx = begin(&pool, o.org, o.admin).await;
    let name = AttributeName::parse("plan").unwrap();
    let plan = attributes::define(
        &mut tx,
        &name,
        &AttributeKind::choice(&["basic", "plus"]).unwrap(),
        o.admin,
        Utc::now(),
        &src(),
    )
    .await
    .unwrap();
    for contact in [o.ada, o.bea, crowd[0]] {
        attributes::set(&mut tx, contact, plan, &Value::Choice("plus".into())).await.unwrap();
    }
    let catalog = segments::catalog(&mut tx).await.unwrap();
    let definition = format!(
        r#"{{"all": [{{"consent": "live", "purpose": "{}"}}, {{"attribute": "plan", "op": "in", "value": ["plus"]}}]}}"#,
        o.purpose
    );
    let segment = Segment::parse(&definition, &catalog).unwrap();
    let saved = segments::create(&mut tx, "Plus with consent", &segment, o.admin, Utc::now(), &src()).await.unwrap();
    assert_eq!(
        segments::count_query(o.org.as_uuid(), &segment, Utc::now())
            .build_query_scalar::<i64>()
            .fetch_one(tx.conn())
            .await
            .unwrap(),
        2
    );
    tx.commit().await.unwrap();
    let d = &o.definition;
    let reference = SegmentRef { segment: saved.segment, version: saved.version, sha256: saved.sha256 };
    let targeted =
        Definition::new(d.content, d.template, reference, d.sender, d.purpose, Schedule::Now, d.fields().to_vec())
            .unwrap();
    let id = new_campaign(&pool, &o, &targeted).await;
    approved(&pool, &o, id).await;
    let Launch::Done(launched) = launch(&pool, &o, id).await else { panic!("launched") };
    assert_eq!((launched.recipients, launched.queued), (2, 2));
    let mut tx = begin(&pool, o.org, o.admin).await;
    let mut rows: Vec<ContactId> =
        ledger(&mut tx, id).await.iter().map(|r| ContactId::try_from(r.0).unwrap()).collect();
    rows.sort();
    let mut expected = vec![o.ada, crowd[0]];
    expected.sort();
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn a_local_hour_schedule_sends_at_that_hour_in_each_contacts_time_zone() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let o = org(&pool, "acme").await;
    let mut tx = begin(&pool, o.org, o.admin).await;
    let new = contacts::NewContact { time_zone: Some("America/New_York"), ..Default::default() };
    let dee =
        contacts::create(&mut tx, &keys(), &Email::parse("dee@p.example").unwrap(), &new, None, Utc::now(), &src())
            .await
            .unwrap();
    consent::append(&mut tx, &grant(&o, dee, ConsentKind::Grant), &src()).await.unwrap();
    tx.commit().await.unwrap();
    let date = NaiveDate::from_ymd_opt(2027, 1, 15).unwrap();
    let local = Definition::new(
        o.definition.content,
        o.definition.template,
        o.definition.segment,
        o.definition.sender,
        o.definition.purpose,
        Schedule::local_hour(date, 9).unwrap(),
        vec![],
    )
    .unwrap();
    let id = new_campaign(&pool, &o, &local).await;
    approved(&pool, &o, id).await;
    assert!(matches!(launch(&pool, &o, id).await, Launch::Done(_)));
    let mut tx = begin(&pool, o.org, o.admin).await;
    let due: Vec<(uuid::Uuid, DateTime<Utc>)> = sqlx::query_as(
        "select contact_id, not_before from app.campaign_messages where campaign_id = $1 and state = 'queued' order by 1",
    )
    .bind(id.as_uuid())
    .fetch_all(tx.conn())
    .await
    .unwrap();
    let at = |h: u32| date.and_hms_opt(h, 0, 0).unwrap().and_utc();
    // Ada has no time zone: 09:00 UTC. Dee in New York, in January (UTC-5): 14:00 UTC.
    let mut expected = vec![(o.ada.as_uuid(), at(9)), (dee.as_uuid(), at(14))];
    expected.sort();
    assert_eq!(due, expected);
}

#[tokio::test]
async fn another_tenant_neither_sees_nor_writes_a_campaigns_ledger() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = org(&pool, "acme").await;
    let b = org(&pool, "globex").await;
    let id = new_campaign(&pool, &a, &a.definition).await;
    approved(&pool, &a, id).await;
    assert!(matches!(launch(&pool, &a, id).await, Launch::Done(_)));
    let mut tx = begin(&pool, b.org, b.admin).await;
    for table in ["campaign_versions", "campaign_runs", "campaign_messages", "campaign_tallies"] {
        let n: i64 =
            sqlx::query_scalar(&format!("select count(*) from app.{table}")).fetch_one(tx.conn()).await.unwrap();
        assert_eq!(n, 0, "{table}");
    }
    assert!(campaigns::version_of(&mut tx, id, 1).await.unwrap().is_none());
    let moved = sqlx::query(
        "update app.campaign_messages set state = 'skipped', skip_reason = 'cancelled' where campaign_id = $1",
    )
    .bind(id.as_uuid())
    .execute(tx.conn())
    .await
    .unwrap();
    assert_eq!(moved.rows_affected(), 0);
    // B launching A's campaign by its id finds nothing.
    let launched = campaigns::launch(&mut tx, id, b.admin, Role::Admin, Utc::now(), &src()).await.unwrap();
    assert_eq!(launched, Launch::Step(Step::NotFound));
    drop(tx);
    let mut bare = db.app_user().await;
    for table in ["campaign_messages", "campaign_tallies"] {
        let n: i64 =
            sqlx::query_scalar(&format!("select count(*) from app.{table}")).fetch_one(&mut bare).await.unwrap();
        assert_eq!(n, 0, "no tenant set: {table}");
    }
}

#[tokio::test]
async fn a_claim_checks_each_message_again_records_the_refused_as_skipped_and_takes_back_an_expired_lease() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let o = org(&pool, "acme").await;
    let mut tx = begin(&pool, o.org, o.admin).await;
    let mut more = Vec::new();
    for address in ["dee@p.example", "eve@p.example", "fay@p.example"] {
        let id = contacts::create(
            &mut tx,
            &keys(),
            &Email::parse(address).unwrap(),
            &Default::default(),
            None,
            Utc::now(),
            &src(),
        )
        .await
        .unwrap();
        consent::append(&mut tx, &grant(&o, id, ConsentKind::Grant), &src()).await.unwrap();
        more.push(id);
    }
    tx.commit().await.unwrap();
    let id = new_campaign(&pool, &o, &o.definition).await;
    approved(&pool, &o, id).await;
    let Launch::Done(launched) = launch(&pool, &o, id).await else { panic!("launches") };
    assert_eq!(launched.queued, 4, "Ada, Dee, Eve, Fay");

    // Dee revokes and Eve is suppressed after the launch: the claim skips them with the reason.
    let mut tx = begin(&pool, o.org, o.admin).await;
    consent::append(&mut tx, &grant(&o, more[0], ConsentKind::Revoke), &src()).await.unwrap();
    let eve = Email::parse("eve@p.example").unwrap();
    suppression::suppress(&mut tx, &keys(), &eve, SuppressionReason::Unsubscribe, None, Utc::now(), &src())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let lease = Duration::minutes(5);
    let now = Utc::now();
    let mut tx = begin(&pool, o.org, o.admin).await;
    let claim = campaigns::claim(&mut tx, id, 10, lease, now).await.unwrap();
    tx.commit().await.unwrap();
    let mut sent_to: Vec<ContactId> = claim.messages.iter().map(|m| m.contact).collect();
    let mut expected = vec![o.ada, more[2]];
    expected.sort();
    sent_to.sort();
    assert_eq!(sent_to, expected);
    assert!(claim.messages.iter().all(|m| m.attempts == 1));
    assert_eq!(
        claim.skipped.into_iter().collect::<Vec<_>>(),
        [("no_consent".to_owned(), 1), ("suppressed".to_owned(), 1)]
    );
    // Claimed rows are held: a second claim before the lease ends gets nothing.
    let mut tx = begin(&pool, o.org, o.admin).await;
    assert_eq!(campaigns::claim(&mut tx, id, 10, lease, now).await.unwrap(), Default::default());
    drop(tx);
    // The worker died: after its lease the rows are claimed again, as a second attempt.
    let mut tx = begin(&pool, o.org, o.admin).await;
    let again = campaigns::claim(&mut tx, id, 10, lease, now + lease + Duration::seconds(1)).await.unwrap();
    assert_eq!(again.messages.len(), 2);
    assert!(again.messages.iter().all(|m| m.attempts == 2));
    drop(tx);
    // The content edited after the launch: nothing more is handed over, the queue is skipped
    // as withdrawn, and no row is left unaccounted for.
    let mut tx = begin(&pool, o.org, o.admin).await;
    sqlx::query(
        "update app.campaign_messages set state = 'queued', lease_until = null
          where organization_id = app.current_tenant_id() and campaign_id = $1 and contact_id = $2",
    )
    .bind(id.as_uuid())
    .bind(o.ada.as_uuid())
    .execute(tx.conn())
    .await
    .unwrap();
    let edited = Text::parse("Flu shots", Channel::Email, "patients", "Book now.", &[]).unwrap();
    assert!(matches!(campaign::edit(&mut tx, o.definition.content.item, &edited, o.admin).await, Step::Done(_)));
    let withdrawn = campaigns::claim(&mut tx, id, 10, lease, Utc::now()).await.unwrap();
    assert!(withdrawn.messages.is_empty());
    assert_eq!(withdrawn.skipped.into_iter().collect::<Vec<_>>(), [("withdrawn".to_owned(), 1)]);
    let states: Vec<(String, Option<String>)> = sqlx::query_as(
        "select state::text, skip_reason::text from app.campaign_messages
          where organization_id = app.current_tenant_id() and campaign_id = $1 order by 1, 2",
    )
    .bind(id.as_uuid())
    .fetch_all(tx.conn())
    .await
    .unwrap();
    assert_eq!(states.len(), 6, "every contact of the segment has its row");
}

/// A launched campaign of Ada and three more contacts with consent, all claimed.
async fn claimed(pool: &AppPool, o: &Org) -> (ContentId, Vec<ContactId>) {
    campaign::consenting(pool, o, &keys(), 3).await;
    let id = new_campaign(pool, o, &o.definition).await;
    approved(pool, o, id).await;
    assert!(matches!(launch(pool, o, id).await, Launch::Done(_)));
    let mut tx = begin(pool, o.org, o.admin).await;
    let claim = campaigns::claim(&mut tx, id, 10, Duration::minutes(5), Utc::now()).await.unwrap();
    tx.commit().await.unwrap();
    let mut all: Vec<ContactId> = claim.messages.iter().map(|m| m.contact).collect();
    all.sort();
    assert_eq!(all.len(), 4);
    (id, all)
}

#[tokio::test]
async fn a_sent_batch_is_one_audit_record_whose_merkle_root_the_ledger_recomputes_even_after_an_erasure() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let o = org(&pool, "acme").await;
    let (id, contacts_claimed) = claimed(&pool, &o).await;
    let values: Vec<BTreeMap<String, String>> =
        ["Ada", "Dee", "Eve", "Fay"].iter().map(|n| BTreeMap::from([("name".to_owned(), (*n).to_owned())])).collect();
    // Three accepted in one batch; the fourth deferred by the relay.
    let sent: Vec<Sent> = (0..3)
        .map(|i| Sent { contact: contacts_claimed[i], values: &values[i], reply: "250 2.0.0 Ok: queued" })
        .collect();
    let mut tx = begin(&pool, o.org, o.admin).await;
    let batch = campaigns::record_sent(&mut tx, id, &sent, Utc::now(), &src()).await.unwrap();
    assert_eq!(batch.messages, 3);
    let retry_at = Utc::now() + Duration::minutes(1);
    let deferred = Failure::Deferred { reply: "451 4.3.0 try later".into(), retry_at };
    assert_ne!(
        campaigns::record_failure(&mut tx, id, contacts_claimed[3], &deferred, Utc::now()).await.unwrap(),
        campaigns::Recorded::Not
    );
    tx.commit().await.unwrap();

    // The audit record names the batch and its root; the ledger's rows give the same root.
    let mut tx = begin(&pool, o.org, o.admin).await;
    let (meta,): (serde_json::Value,) = sqlx::query_as(
        "select metadata from app.audit_logs
          where organization_id = app.current_tenant_id() and action = 'campaign.batch_sent'",
    )
    .fetch_one(tx.conn())
    .await
    .unwrap();
    assert_eq!(meta["messages"], 3);
    assert_eq!(meta["batch"], batch.id.to_string());
    assert_eq!(meta["merkle_root"], hex::encode(batch.root));
    type Row = (uuid::Uuid, String, Vec<u8>, Option<serde_json::Value>, Option<Vec<u8>>);
    let recompute = |rows: &[Row]| {
        let leaves: Vec<_> = rows.iter().map(|r| merkle::leaf_hash(&r.2)).collect();
        merkle::root(&leaves)
    };
    let rows_sql = "select contact_id, coalesce(personalisation->>'name', ''), message_sha256, personalisation,
                           personalisation_salt
                      from app.campaign_messages
                     where organization_id = app.current_tenant_id() and campaign_id = $1 and batch = $2
                     order by contact_id";
    let rows: Vec<Row> = sqlx::query_as(rows_sql).bind(id.as_uuid()).bind(batch.id).fetch_all(tx.conn()).await.unwrap();
    assert_eq!(recompute(&rows), batch.root);
    // Each row's hash is the message's, from the campaign's hashes, the contact, the Message-ID
    // and the commitment to the values it keeps.
    let item = content::get(&mut tx, id).await.unwrap().unwrap();
    for (i, row) in rows.iter().enumerate() {
        let salt: [u8; 16] = row.4.clone().unwrap().try_into().unwrap();
        let commitment = campaigns::values_commitment(&salt, &values[i]);
        let expected = campaigns::message_hash(
            &item.version.sha256,
            &o.definition.content.sha256,
            &o.definition.template.sha256,
            contacts_claimed[i],
            &campaigns::message_id(id, contacts_claimed[i], "acme.example"),
            &commitment,
        );
        assert_eq!(row.2, expected.to_vec(), "message {i}");
        assert_eq!(row.1, values[i]["name"]);
    }
    let progress = campaigns::progress(&mut tx, id).await.unwrap();
    let progress: Vec<(&str, i64)> = progress.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(progress, [("queued", 1), ("sent", 3), ("skipped:no_consent", 1), ("skipped:suppressed", 1)]);
    // A sent row does not change, but for the erasure of its values.
    let resend = sqlx::query(
        "update app.campaign_messages set reply = 'changed'
          where organization_id = app.current_tenant_id() and campaign_id = $1 and contact_id = $2",
    )
    .bind(id.as_uuid())
    .bind(contacts_claimed[0].as_uuid())
    .execute(tx.conn())
    .await;
    assert_eq!(constraint(resend.map_err(DbError::from)), "campaign_messages_transition");
    drop(tx);

    // Ada is erased: her values go, her message's hash and the batch's root stay.
    let mut tx = begin(&pool, o.org, o.admin).await;
    assert!(contacts::erase(&mut tx, o.ada, o.admin, Utc::now(), &src()).await.unwrap());
    let rows: Vec<Row> = sqlx::query_as(rows_sql).bind(id.as_uuid()).bind(batch.id).fetch_all(tx.conn()).await.unwrap();
    let ada = rows.iter().find(|r| r.0 == o.ada.as_uuid()).unwrap();
    assert_eq!((&ada.3, &ada.4), (&None, &None));
    assert_eq!(rows.iter().filter(|r| r.3.is_some()).count(), 2);
    assert_eq!(recompute(&rows), batch.root);
    tx.commit().await.unwrap();

    // The deferred message is queued again after its retry time, and is claimed then.
    let mut tx = begin(&pool, o.org, o.admin).await;
    let early = campaigns::claim(&mut tx, id, 10, Duration::minutes(5), Utc::now()).await.unwrap();
    assert!(early.messages.is_empty());
    let later = campaigns::claim(&mut tx, id, 10, Duration::minutes(5), retry_at + Duration::seconds(1)).await.unwrap();
    assert_eq!(later.messages.iter().map(|m| (m.contact, m.attempts)).collect::<Vec<_>>(), [(contacts_claimed[3], 2)]);
    let bounced = Failure::Bounced { reply: "550 5.1.1 no such user".into() };
    assert_ne!(
        campaigns::record_failure(&mut tx, id, contacts_claimed[3], &bounced, Utc::now()).await.unwrap(),
        campaigns::Recorded::Not
    );
    // Every message is final: the run finishes.
    assert!(campaigns::finish_if_done(&mut tx, id, Utc::now()).await.unwrap());
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_paused_campaign_hands_nothing_over_and_a_cancelled_one_skips_its_queue_and_stays_cancelled() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let o = org(&pool, "acme").await;
    let (id, claimed_contacts) = claimed(&pool, &o).await;
    // Two go back to the queue (deferred), then the campaign is paused.
    let retry_at = Utc::now();
    let mut tx = begin(&pool, o.org, o.admin).await;
    for contact in &claimed_contacts[..2] {
        let deferred = Failure::Deferred { reply: "421 4.7.0 busy".into(), retry_at };
        assert_ne!(
            campaigns::record_failure(&mut tx, id, *contact, &deferred, Utc::now()).await.unwrap(),
            campaigns::Recorded::Not
        );
    }
    let paused = campaigns::control(&mut tx, id, Control::Pause, o.admin, Utc::now(), &src()).await.unwrap();
    assert_eq!(paused, Some("paused"));
    tx.commit().await.unwrap();
    let later = Utc::now() + Duration::minutes(1);
    let mut tx = begin(&pool, o.org, o.admin).await;
    assert_eq!(campaigns::claim(&mut tx, id, 10, Duration::minutes(5), later).await.unwrap(), Default::default());
    // Handing one over by hand while paused is refused by the ledger.
    let hand_over = "update app.campaign_messages set state = 'sending', lease_until = now()
                      where organization_id = app.current_tenant_id() and campaign_id = $1 and contact_id = $2";
    let result = sqlx::query(hand_over).bind(id.as_uuid()).bind(claimed_contacts[0].as_uuid()).execute(tx.conn()).await;
    assert_eq!(constraint(result.map_err(DbError::from)), "campaign_messages_approved");
    drop(tx);
    // Pausing twice changes nothing; resuming hands them over again.
    let mut tx = begin(&pool, o.org, o.admin).await;
    assert_eq!(campaigns::control(&mut tx, id, Control::Pause, o.admin, Utc::now(), &src()).await.unwrap(), None);
    assert_eq!(
        campaigns::control(&mut tx, id, Control::Resume, o.admin, Utc::now(), &src()).await.unwrap(),
        Some("sending")
    );
    let resumed = campaigns::claim(&mut tx, id, 1, Duration::minutes(5), later).await.unwrap();
    assert_eq!(resumed.messages.len(), 1);
    // Cancelled: the one still queued is skipped; the run cannot be resumed or finished.
    assert_eq!(
        campaigns::control(&mut tx, id, Control::Cancel, o.admin, Utc::now(), &src()).await.unwrap(),
        Some("cancelled")
    );
    assert_eq!(campaigns::control(&mut tx, id, Control::Resume, o.admin, Utc::now(), &src()).await.unwrap(), None);
    let progress = campaigns::progress(&mut tx, id).await.unwrap();
    assert_eq!(progress.get("skipped:cancelled"), Some(&1));
    assert_eq!(progress.get("sending"), Some(&3), "in flight when cancelled: the workers finish them");
    tx.commit().await.unwrap();
    let revive = "update app.campaign_runs set state = 'sending'
                   where organization_id = app.current_tenant_id() and campaign_id = $1 and $2::uuid is not null";
    assert_eq!(refused(&pool, &o, revive, id, o.ada).await, "campaign_runs_transition");
}

#[tokio::test]
async fn the_sealed_trail_and_the_ledger_prove_a_sent_campaign_and_catch_a_changed_message_or_a_late_hand_over() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let o = org(&pool, "acme").await;
    let (id, claimed_contacts) = claimed(&pool, &o).await;
    let values = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
    let sent: Vec<Sent> =
        claimed_contacts.iter().map(|c| Sent { contact: *c, values: &values, reply: "250 2.0.0 Ok" }).collect();
    let mut tx = begin(&pool, o.org, o.admin).await;
    campaigns::record_sent(&mut tx, id, &sent[..2], Utc::now(), &src()).await.unwrap();
    campaigns::record_sent(&mut tx, id, &sent[2..], Utc::now(), &src()).await.unwrap();
    tx.commit().await.unwrap();
    chain::seal(&pool, None, chain::WINDOW).await.unwrap();
    let proofs = campaigns::evidence(&mut db.superuser().await, o.org.as_uuid()).await.unwrap();
    assert_eq!(proofs.len(), 1);
    assert_eq!((proofs[0].sent, proofs[0].batches, &proofs[0].problems), (4, 2, &vec![]));

    // A stored message hash changed behind the triggers: that message and its batch fail.
    let first = claimed_contacts[0].as_uuid();
    db.tamper(
        o.org.as_uuid(),
        &["campaign_messages"],
        &format!(
            "update {{campaign_messages}} set message_sha256 = sha256(message_sha256) where contact_id = '{first}'"
        ),
    )
    .await;
    let proofs = campaigns::evidence(&mut db.superuser().await, o.org.as_uuid()).await.unwrap();
    assert_eq!(proofs[0].batches, 1);
    assert!(
        proofs[0].problems.iter().any(|p| p.contains("does not have the hash of its fields")),
        "{:?}",
        proofs[0].problems
    );
    assert!(proofs[0].problems.iter().any(|p| p.contains("do not give the root")), "{:?}", proofs[0].problems);

    // A hand-over moved to after a suppression of the address: caught.
    let last = claimed_contacts[3].as_uuid();
    let mut tx = begin(&pool, o.org, o.admin).await;
    let address: String = sqlx::query_scalar("select address from app.contacts where id = $1")
        .bind(last)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    let address = Email::parse(&address).unwrap();
    suppression::suppress(&mut tx, &keys(), &address, SuppressionReason::Complaint, None, Utc::now(), &src())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    db.tamper(
        o.org.as_uuid(),
        &["campaign_messages"],
        &format!("update {{campaign_messages}} set claimed_at = now() + interval '1 hour' where contact_id = '{last}'"),
    )
    .await;
    let proofs = campaigns::evidence(&mut db.superuser().await, o.org.as_uuid()).await.unwrap();
    assert!(
        proofs[0].problems.iter().any(|p| p == "1 message(s) handed over to an address suppressed at that moment"),
        "{:?}",
        proofs[0].problems
    );
}

#[tokio::test]
#[ignore = "needs the Citus cluster: MOS_TEST_BACKEND=citus cargo test -- --include-ignored"]
async fn on_citus_the_launch_the_claim_with_its_check_every_ledger_update_and_a_click_run_on_one_shard() {
    mos_db::testing::requires(Backend::Citus, "run with MOS_TEST_BACKEND=citus");
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let o = org(&pool, "acme").await;
    let more = campaign::consenting(&pool, &o, &keys(), 3).await;
    let fay = Email::parse(&more[2].1).unwrap();
    let more: Vec<ContactId> = more.into_iter().map(|(id, _)| id).collect();
    let id = new_campaign(&pool, &o, &o.definition).await;
    approved(&pool, &o, id).await;
    let mut tx = begin(&pool, o.org, o.admin).await;
    // From here on, any statement that needs more than one shard is an error, the triggers'
    // statements included.
    crate::each(tx.conn(), &["set local citus.multi_task_query_log_level = 'error'"]).await;
    let now = Utc::now();
    assert!(matches!(
        campaigns::launch(&mut tx, id, o.admin, Role::Admin, now, &src()).await.unwrap(),
        Launch::Done(_)
    ));
    // A suppression between launch and hand-over: the claim's check skips that message.
    suppression::suppress(&mut tx, &keys(), &fay, SuppressionReason::Unsubscribe, None, now, &src()).await.unwrap();
    let claim = campaigns::claim(&mut tx, id, 10, Duration::minutes(5), now).await.unwrap();
    assert_eq!(claim.skipped, BTreeMap::from([("suppressed".to_owned(), 1)]));
    let handed: Vec<ContactId> = claim.messages.iter().map(|m| m.contact).collect();
    assert_eq!(handed.len(), 3, "Ada and two of the crowd");
    let recipients = campaigns::recipients(&mut tx, &handed, &["name".to_owned()]).await.unwrap();
    assert_eq!(recipients.len(), 3);
    let values = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
    let sent = [Sent { contact: o.ada, values: &values, reply: "250 2.0.0 Ok" }];
    assert_eq!(campaigns::record_sent(&mut tx, id, &sent, now, &src()).await.unwrap().messages, 1);
    // Clicks, more than the five after which a connection may plan a statement generically,
    // with the count their trigger keeps beside them, and the report's reads.
    for _ in 0..8 {
        assert!(mos_db::clicks::record(&mut tx, id, o.ada, 1, now).await.unwrap());
    }
    assert!(mos_db::clicks::launched(&mut tx, id).await.unwrap().is_some());
    assert_eq!(counted(&mos_db::clicks::tallies(&mut tx, id).await.unwrap()), [(1, 1, 8)]);
    let deferred = Failure::Deferred { reply: "451 4.3.0 later".into(), retry_at: now + Duration::minutes(1) };
    assert_ne!(
        campaigns::record_failure(&mut tx, id, more[0], &deferred, now).await.unwrap(),
        campaigns::Recorded::Not
    );
    let bounced = Failure::Bounced { reply: "550 5.1.1 unknown".into() };
    assert_ne!(campaigns::record_failure(&mut tx, id, more[1], &bounced, now).await.unwrap(), campaigns::Recorded::Not);
    for step in [Control::Pause, Control::Resume, Control::Cancel] {
        assert!(campaigns::control(&mut tx, id, step, o.admin, now, &src()).await.unwrap().is_some(), "{step:?}");
    }
    assert!(!campaigns::finish_if_done(&mut tx, id, now).await.unwrap(), "a cancelled run stays cancelled");
    assert_eq!(campaigns::run(&mut tx, id).await.unwrap().unwrap().state, "cancelled");
    let progress = campaigns::progress(&mut tx, id).await.unwrap();
    assert_eq!(progress.get("sent"), Some(&1), "{progress:?}");
    assert_eq!(progress.get("skipped:suppressed"), Some(&2), "Cy and the crowd's third: {progress:?}");
    tx.commit().await.unwrap();
}

/// The ledger counted row by row, as `campaigns::progress` names the outcomes.
async fn recount(tx: &mut TenantTx, id: ContentId) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select coalesce('skipped:' || skip_reason::text, state::text), count(*) from app.campaign_messages
          where organization_id = app.current_tenant_id() and campaign_id = $1 group by 1",
    )
    .bind(id.as_uuid())
    .fetch_all(tx.conn())
    .await
    .unwrap();
    rows.into_iter().collect()
}

/// Runs each of `attempts` in `tx` (as `app_user`), each refused with 42501 and rolled back.
async fn refused_to_app_user(tx: &mut TenantTx, attempts: &[String]) {
    for sql in attempts {
        sqlx::raw_sql("savepoint attempt").execute(tx.conn()).await.unwrap();
        let err = sqlx::raw_sql(sql).execute(tx.conn()).await.unwrap_err();
        let code = err.as_database_error().and_then(|e| e.code()).unwrap_or_default().into_owned();
        assert_eq!(code, "42501", "{sql}: {err}");
        sqlx::raw_sql("rollback to savepoint attempt").execute(tx.conn()).await.unwrap();
    }
}

#[tokio::test]
async fn the_counts_the_ledger_keeps_are_a_recount_of_it_after_every_kind_of_change_and_nobody_else_writes_them() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let o = org(&pool, "acme").await;
    let (id, handed) = claimed(&pool, &o).await;
    let mut tx = begin(&pool, o.org, o.admin).await;
    assert_eq!(campaigns::progress(&mut tx, id).await.unwrap(), recount(&mut tx, id).await);
    // Every kind of change, each in its own statement: a batch sent, a deferral, a bounce, a
    // claim after the deferral's time, an erasure of a sent contact's values, a cancel.
    let values = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
    let sent: Vec<Sent> = handed[..2].iter().map(|c| Sent { contact: *c, values: &values, reply: "250 Ok" }).collect();
    campaigns::record_sent(&mut tx, id, &sent, Utc::now(), &src()).await.unwrap();
    let soon = Utc::now() + Duration::seconds(1);
    let deferred = Failure::Deferred { reply: "451 later".into(), retry_at: soon };
    assert_ne!(
        campaigns::record_failure(&mut tx, id, handed[2], &deferred, Utc::now()).await.unwrap(),
        campaigns::Recorded::Not
    );
    let bounced = Failure::Bounced { reply: "550 5.1.1 unknown".into() };
    assert_ne!(
        campaigns::record_failure(&mut tx, id, handed[3], &bounced, Utc::now()).await.unwrap(),
        campaigns::Recorded::Not
    );
    assert_eq!(campaigns::progress(&mut tx, id).await.unwrap(), recount(&mut tx, id).await);
    let again = campaigns::claim(&mut tx, id, 10, Duration::minutes(5), soon + Duration::seconds(1)).await.unwrap();
    assert_eq!(again.messages.len(), 1);
    assert!(contacts::erase(&mut tx, handed[0], o.admin, Utc::now(), &src()).await.unwrap());
    campaigns::control(&mut tx, id, Control::Cancel, o.admin, Utc::now(), &src()).await.unwrap();
    let progress = campaigns::progress(&mut tx, id).await.unwrap();
    assert_eq!(progress, recount(&mut tx, id).await);
    assert_eq!(progress.get("sent"), Some(&2), "{progress:?}");
    assert_eq!(progress.get("bounced"), Some(&1), "{progress:?}");
    tx.commit().await.unwrap();

    // A second campaign of the same organization keeps its own counts.
    let other = new_campaign(&pool, &o, &o.definition).await;
    approved(&pool, &o, other).await;
    assert!(matches!(launch(&pool, &o, other).await, Launch::Done(_)));
    let mut tx = begin(&pool, o.org, o.admin).await;
    assert_eq!(campaigns::progress(&mut tx, other).await.unwrap(), recount(&mut tx, other).await);
    assert_eq!(campaigns::progress(&mut tx, id).await.unwrap(), progress);

    // app_user cannot write the counts itself, in any way.
    let attempts = [
        format!("insert into app.campaign_tallies values ('{}', '{}', 'sent', 1000)", o.org.as_uuid(), id.as_uuid()),
        format!("update app.campaign_tallies set n = 0 where campaign_id = '{}'", id.as_uuid()),
        format!("delete from app.campaign_tallies where campaign_id = '{}'", id.as_uuid()),
        "truncate app.campaign_tallies".to_owned(),
    ];
    refused_to_app_user(&mut tx, &attempts).await;
    assert_eq!(campaigns::progress(&mut tx, id).await.unwrap(), progress);
}

#[tokio::test]
async fn feedback_is_matched_only_to_a_message_handed_over_counts_once_and_a_hard_bounce_or_complaint_suppresses() {
    use mos_db::feedback::{self, Kind, Recorded};
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let o = org(&pool, "acme").await;
    let other = org(&pool, "globex").await;
    let (id, handed) = claimed(&pool, &o).await;
    let values = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
    let sent: Vec<Sent> = handed[..3].iter().map(|c| Sent { contact: *c, values: &values, reply: "250 Ok" }).collect();
    let mut tx = begin(&pool, o.org, o.admin).await;
    campaigns::record_sent(&mut tx, id, &sent, Utc::now(), &src()).await.unwrap();
    let now = Utc::now();
    // A hard bounce of a sent message: recorded once, and the address suppressed.
    assert_eq!(
        feedback::record(&mut tx, id, handed[0], Kind::HardBounce, "5.1.1", now, &src()).await.unwrap(),
        Recorded::New(mos_db::breaker::Verdict::Quiet)
    );
    assert_eq!(
        feedback::record(&mut tx, id, handed[0], Kind::HardBounce, "5.1.1", now, &src()).await.unwrap(),
        Recorded::Again
    );
    assert!(!consent::is_live(&mut tx, handed[0], o.purpose, now).await.unwrap(), "suppressed");
    // A complaint suppresses too; a delay or a soft bounce does not.
    assert_eq!(
        feedback::record(&mut tx, id, handed[1], Kind::Complaint, "abuse", now, &src()).await.unwrap(),
        Recorded::New(mos_db::breaker::Verdict::Quiet)
    );
    assert!(!consent::is_live(&mut tx, handed[1], o.purpose, now).await.unwrap());
    // The complaint is the person's own revocation of the campaign's purpose, naming the
    // campaign; the bounce revoked nothing (the address takes no mail; nobody withdrew).
    let events: Vec<(uuid::Uuid, String, String, bool)> = sqlx::query_as(
        "select contact_id, kind::text, source::text, recorded_by is null from app.consent_events
          where organization_id = app.current_tenant_id() and contact_id = any($1) and kind = 'revoke'",
    )
    .bind(vec![handed[0].as_uuid(), handed[1].as_uuid()])
    .fetch_all(tx.conn())
    .await
    .unwrap();
    assert_eq!(events, [(handed[1].as_uuid(), "revoke".to_owned(), "complaint".to_owned(), true)]);
    assert_eq!(
        feedback::record(&mut tx, id, handed[2], Kind::SoftBounce, "5.2.2", now, &src()).await.unwrap(),
        Recorded::New(mos_db::breaker::Verdict::Quiet)
    );
    assert_eq!(
        feedback::record(&mut tx, id, handed[2], Kind::Delayed, "4.4.1", now, &src()).await.unwrap(),
        Recorded::New(mos_db::breaker::Verdict::Quiet)
    );
    assert!(consent::is_live(&mut tx, handed[2], o.purpose, now).await.unwrap());
    // A message still `sending` (the relay may have it, and bounced it before the ledger
    // recorded the hand-over: to be reported again later), a contact never sent to, and a
    // malformed code: nothing is recorded.
    for (contact, answer) in [(handed[3], Recorded::NotYet), (o.bea, Recorded::NoSuchMessage)] {
        let refused = feedback::record(&mut tx, id, contact, Kind::HardBounce, "5.1.1", now, &src()).await.unwrap();
        assert_eq!(refused, answer);
    }
    assert!(consent::is_live(&mut tx, handed[3], o.purpose, now).await.unwrap(), "not suppressed");
    sqlx::raw_sql("savepoint bad").execute(tx.conn()).await.unwrap();
    let bad = feedback::record(&mut tx, id, handed[2], Kind::SoftBounce, "oops; drop", now, &src()).await;
    assert_eq!(constraint(bad), "delivery_feedback_code");
    sqlx::raw_sql("rollback to savepoint bad").execute(tx.conn()).await.unwrap();
    // Nobody changes or removes what came back.
    for sql in [
        "update app.delivery_feedback set code = '2.0.0'",
        "delete from app.delivery_feedback",
        "truncate app.delivery_feedback",
    ] {
        sqlx::raw_sql("savepoint attempt").execute(tx.conn()).await.unwrap();
        assert!(sqlx::raw_sql(sql).execute(tx.conn()).await.is_err(), "{sql}");
        sqlx::raw_sql("rollback to savepoint attempt").execute(tx.conn()).await.unwrap();
    }
    let kinds: Vec<(String, String)> = sqlx::query_as(
        "select kind::text, code from app.delivery_feedback where organization_id = app.current_tenant_id() order by 1",
    )
    .fetch_all(tx.conn())
    .await
    .unwrap();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    tx.commit().await.unwrap();

    // Another organization naming this campaign and contact finds no message of its own.
    let mut tx = begin(&pool, other.org, other.admin).await;
    let forged = feedback::record(&mut tx, id, handed[2], Kind::Complaint, "abuse", now, &src()).await.unwrap();
    assert_eq!(forged, Recorded::NoSuchMessage);
    let seen: i64 =
        sqlx::query_scalar("select count(*) from app.delivery_feedback").fetch_one(tx.conn()).await.unwrap();
    assert_eq!(seen, 0);
}

#[test]
fn a_report_is_addressed_only_when_its_feedback_id_and_message_id_name_the_same_campaign() {
    use mos_db::feedback::addressed;
    let (org, campaign, other, contact) =
        (mos_domain::OrgId::new(), ContentId::new(), ContentId::new(), ContactId::new());
    let message_id = campaigns::message_id(campaign, contact, "mail.acme.example");
    let feedback_id = campaigns::feedback_id(campaign, org);
    assert_eq!(addressed(&message_id, Some(&feedback_id)), Some((org, campaign, contact)));
    assert_eq!(addressed(&message_id, None), None, "no Feedback-ID");
    assert_eq!(addressed(&message_id, Some(&campaigns::feedback_id(other, org))), None, "another campaign");
    assert_eq!(addressed("c0ffee.42@mail.acme.example", Some(&feedback_id)), None, "not one of ours");
    assert_eq!(addressed(&format!("{campaign}@x"), Some(&feedback_id)), None, "no contact");
}

#[tokio::test]
async fn a_job_that_finds_only_messages_under_a_dead_workers_lease_comes_back_when_the_lease_ends() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let o = org(&pool, "acme").await;
    // Every message claimed by a worker that then died: `sending`, under its lease.
    let (id, _) = claimed(&pool, &o).await;

    // The job taken over before the leases end finds nothing due and the run not finished; it
    // must come back for those messages, or the campaign stays `sending` for good.
    let now = Utc::now();
    let mut tx = begin(&pool, o.org, o.admin).await;
    assert_eq!(campaigns::claim(&mut tx, id, 10, Duration::minutes(5), now).await.unwrap(), Default::default());
    assert!(!campaigns::finish_if_done(&mut tx, id, now).await.unwrap());
    let job = campaigns::schedule_sending(&mut tx, id, now).await.unwrap().expect("a job for the leased messages");
    let run_after: DateTime<Utc> = sqlx::query_scalar(
        "select run_after from app.jobs where organization_id = app.current_tenant_id() and id = $1",
    )
    .bind(job.as_uuid())
    .fetch_one(tx.conn())
    .await
    .unwrap();
    let lease_ends: DateTime<Utc> = sqlx::query_scalar(
        "select min(lease_until) from app.campaign_messages
          where organization_id = app.current_tenant_id() and campaign_id = $1",
    )
    .bind(id.as_uuid())
    .fetch_one(tx.conn())
    .await
    .unwrap();
    assert_eq!(run_after, lease_ends, "due when the first lease ends");
}

#[tokio::test]
async fn the_first_use_of_a_piece_and_of_its_template_is_the_first_message_the_ledger_recorded_sent() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let o = org(&pool, "acme").await;
    let piece = o.definition.content.item;
    let template = o.definition.template.item;
    let mut tx = begin(&pool, o.org, o.admin).await;
    assert!(campaigns::first_use(&mut tx, piece).await.unwrap().is_empty(), "never sent");
    drop(tx);
    // Launched and claimed, but nothing sent yet: still no first use.
    let (first, handed) = claimed(&pool, &o).await;
    let mut tx = begin(&pool, o.org, o.admin).await;
    assert!(campaigns::first_use(&mut tx, piece).await.unwrap().is_empty(), "handed over is not sent");
    let values = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
    let early = Utc::now() - Duration::minutes(10);
    let sent = [Sent { contact: handed[0], values: &values, reply: "250 Ok" }];
    let batch = campaigns::record_sent(&mut tx, first, &sent, early, &src()).await.unwrap();
    let later = [Sent { contact: handed[1], values: &values, reply: "250 Ok" }];
    campaigns::record_sent(&mut tx, first, &later, Utc::now(), &src()).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = begin(&pool, o.org, o.admin).await;
    let used = campaigns::first_use(&mut tx, piece).await.unwrap();
    assert_eq!(used.len(), 1);
    assert_eq!((used[0].version, used[0].campaign, used[0].batch), (1, first, batch.id));
    assert!((used[0].sent_at - early).num_milliseconds().abs() < 1, "the earlier batch's time: {used:?}");
    // The template's first use is the same message's.
    assert_eq!(campaigns::first_use(&mut tx, template).await.unwrap(), used);
    drop(tx);

    // A second campaign of the same piece, sent now, changes nothing.
    let second = new_campaign(&pool, &o, &o.definition).await;
    approved(&pool, &o, second).await;
    assert!(matches!(launch(&pool, &o, second).await, Launch::Done(_)));
    let mut tx = begin(&pool, o.org, o.admin).await;
    let claim = campaigns::claim(&mut tx, second, 10, Duration::minutes(5), Utc::now()).await.unwrap();
    let sent = [Sent { contact: claim.messages[0].contact, values: &values, reply: "250 Ok" }];
    campaigns::record_sent(&mut tx, second, &sent, Utc::now(), &src()).await.unwrap();
    assert_eq!(campaigns::first_use(&mut tx, piece).await.unwrap(), used);
    tx.commit().await.unwrap();

    // Another organization sees no first use of this piece.
    let other = org(&pool, "globex").await;
    let mut tx = begin(&pool, other.org, other.admin).await;
    assert!(campaigns::first_use(&mut tx, piece).await.unwrap().is_empty());
}

/// The clicks counted per link as `campaign_link_tallies` should hold them: (link, recipients, times).
async fn clicks_recount(tx: &mut TenantTx, id: ContentId) -> Vec<(i16, i64, i64)> {
    sqlx::query_as(
        "select link, count(*), sum(clicks)::bigint from app.campaign_clicks
          where organization_id = app.current_tenant_id() and campaign_id = $1 group by link order by link",
    )
    .bind(id.as_uuid())
    .fetch_all(tx.conn())
    .await
    .unwrap()
}

fn counted(tallies: &[mos_db::clicks::LinkTally]) -> Vec<(i16, i64, i64)> {
    tallies.iter().map(|t| (i16::try_from(t.link).unwrap(), t.unique, t.total)).collect()
}

#[tokio::test]
async fn clicks_count_only_for_a_message_handed_over_and_the_counts_per_link_are_a_recount_after_any_mix() {
    use mos_db::clicks;
    let db = TestDb::new().await;
    let pool = db.app_pool(4).await;
    let o = org(&pool, "acme").await;
    let (id, handed) = claimed(&pool, &o).await;
    let mut tx = begin(&pool, o.org, o.admin).await;
    let launched = clicks::launched(&mut tx, id).await.unwrap().expect("a launched campaign");
    assert_eq!(launched.body, campaign::BODY);
    let values = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
    let sent: Vec<Sent> = handed[..3].iter().map(|c| Sent { contact: *c, values: &values, reply: "250 Ok" }).collect();
    campaigns::record_sent(&mut tx, id, &sent, Utc::now(), &src()).await.unwrap();
    // The fourth is still being handed over: a link of its message is no click yet.
    assert!(!clicks::record(&mut tx, id, handed[3], 0, Utc::now()).await.unwrap());
    tx.commit().await.unwrap();

    // A mix of clicks, each in its own transaction, several at once on the same message and link.
    let mut state = 0x2545_f491_u32;
    let mut next = move |n: u32| {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (state >> 16) % n
    };
    let picks: Vec<(ContactId, u16)> =
        (0..60).map(|_| (handed[next(3) as usize], u16::try_from(next(4)).unwrap())).collect();
    let clicks_at = |(contact, link): (ContactId, u16)| {
        let pool = &pool;
        let o = &o;
        async move {
            let mut tx = begin(pool, o.org, o.admin).await;
            assert!(clicks::record(&mut tx, id, contact, link, Utc::now()).await.unwrap());
            tx.commit().await.unwrap();
        }
    };
    futures::future::join_all(picks.iter().copied().map(clicks_at)).await;
    futures::future::join_all((0..8).map(|_| clicks_at((handed[0], 7)))).await;

    let mut tx = begin(&pool, o.org, o.admin).await;
    let tallies = clicks::tallies(&mut tx, id).await.unwrap();
    assert_eq!(counted(&tallies), clicks_recount(&mut tx, id).await);
    let total: i64 = tallies.iter().map(|t| t.total).sum();
    assert_eq!(total, 68, "every click counted once: {tallies:?}");
    let seven = tallies.iter().find(|t| t.link == 7).unwrap();
    assert_eq!((seven.unique, seven.total), (1, 8), "eight at once by one person are one recipient");
    let distinct: std::collections::BTreeSet<_> = picks.iter().collect();
    assert_eq!(tallies.iter().filter(|t| t.link != 7).map(|t| t.unique).sum::<i64>(), distinct.len() as i64);

    // app_user writes the counts only through a click, and never takes a click back.
    let attempts = [
        format!("insert into app.campaign_link_tallies values ('{}', '{}', 9, 1, 1)", o.org.as_uuid(), id.as_uuid()),
        format!("update app.campaign_link_tallies set clicks = 0 where campaign_id = '{}'", id.as_uuid()),
        format!("delete from app.campaign_link_tallies where campaign_id = '{}'", id.as_uuid()),
        "truncate app.campaign_link_tallies".to_owned(),
        format!("delete from app.campaign_clicks where campaign_id = '{}'", id.as_uuid()),
        "truncate app.campaign_clicks".to_owned(),
    ];
    refused_to_app_user(&mut tx, &attempts).await;
    for (sql, rule) in [
        ("update app.campaign_clicks set clicks = 1 where clicks > 1", "campaign_clicks_counted"),
        ("update app.campaign_clicks set link = link + 100", "campaign_clicks_counted"),
    ] {
        sqlx::raw_sql("savepoint attempt").execute(tx.conn()).await.unwrap();
        let result = sqlx::raw_sql(sql).execute(tx.conn()).await.map_err(DbError::from);
        assert_eq!(constraint(result), rule, "{sql}");
        sqlx::raw_sql("rollback to savepoint attempt").execute(tx.conn()).await.unwrap();
    }
    assert_eq!(counted(&clicks::tallies(&mut tx, id).await.unwrap()), counted(&tallies));
    tx.commit().await.unwrap();

    // Another organization sees none of it and cannot click a message of this one.
    let other = org(&pool, "other").await;
    let mut tx = begin(&pool, other.org, other.admin).await;
    assert_eq!(clicks::launched(&mut tx, id).await.unwrap(), None);
    assert!(!clicks::record(&mut tx, id, handed[0], 0, Utc::now()).await.unwrap());
    assert_eq!(clicks::tallies(&mut tx, id).await.unwrap(), []);
    assert_eq!(clicks_recount(&mut tx, id).await, []);
}
