//! An organization's sending counted per day and month by the ledger's and the feedback's own
//! triggers, and its complaint-rate breaker, as `app_user`: the counts are a recount of the
//! ledger and the feedback after any mix, nobody else writes them, another tenant sees none of
//! them; the breaker warns once, halts every sending run at the next claim, keeps a launch from
//! sending, and only a resume sends again.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use mos_auth::Sealer;
use mos_db::audiences::consent::Evidence;
use mos_db::audiences::unsubscribe::{self, Change, Intent};
use mos_db::breaker::{self, Event, Reason, Totals, Verdict};
use mos_db::campaigns::{self, Activity, Control, Failure, Launch, Sent};
use mos_db::clicks::{self, Clicked};
use mos_db::feedback::{self, Kind, Recorded, Returned};
use mos_db::testing::campaign::{self, approved, begin, keys, launch, new_campaign, src, Org};
use mos_db::testing::{Backend, TestDb};
use mos_db::{AppPool, DbError, TenantTx};
use mos_domain::{ContactId, ContentId, Role};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

async fn org(pool: &AppPool, slug: &str) -> Org {
    let sealer = Sealer::from_base64(&Sealer::generate_key_base64(&mut rand::thread_rng())).unwrap();
    campaign::org(pool, slug, &sealer, &keys()).await
}

/// A launched campaign of `o` to its whole audience, with up to `claim` messages claimed.
async fn claimed(pool: &AppPool, o: &Org, claim: i64) -> (ContentId, Vec<ContactId>) {
    let id = new_campaign(pool, o, &o.definition).await;
    approved(pool, o, id).await;
    assert!(matches!(launch(pool, o, id).await, Launch::Done(_)));
    let mut tx = begin(pool, o.org, o.admin).await;
    let claimed = campaigns::claim(&mut tx, id, claim, Duration::minutes(5), Utc::now()).await.unwrap();
    tx.commit().await.unwrap();
    (id, claimed.messages.iter().map(|m| m.contact).collect())
}

type Recount = BTreeMap<(String, NaiveDate), Totals>;

/// The organization's sending counted from the ledger and the feedback themselves, by span and
/// first day, as migration 32 defines the counts.
async fn recount(tx: &mut TenantTx) -> Recount {
    #[derive(sqlx::FromRow)]
    struct Row {
        span: String,
        starts: NaiveDate,
        #[sqlx(flatten)]
        totals: Totals,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "with e as (
           select ((case when m.state = 'sent' then m.sent_at else m.updated_at end) at time zone 'UTC')::date as day,
                  (m.state = 'sent')::int as sent, (m.state = 'bounced')::int as refused,
                  (m.state = 'bounced' and m.reply ~ '^(\\d{3} 5\\.1\\.|55[013] (?!5\\.))')::int as hard,
                  (m.state = 'bounced' and m.reply !~ '^(\\d{3} 5\\.1\\.|55[013] (?!5\\.))')::int as soft,
                  0 as delivered, 0 as complaints
             from app.campaign_messages m
            where m.organization_id = app.current_tenant_id() and m.state in ('sent', 'bounced')
           union all
           select (f.received_at at time zone 'UTC')::date, 0, 0,
                  (f.kind = 'hard_bounce' and m.state = 'sent')::int, (f.kind = 'soft_bounce' and m.state = 'sent')::int,
                  (f.kind = 'delivered')::int, (f.kind = 'complaint')::int
             from app.delivery_feedback f
             join app.campaign_messages m on m.organization_id = f.organization_id and m.campaign_id = f.campaign_id
                                         and m.contact_id = f.contact_id
            where f.organization_id = app.current_tenant_id())
         select s.span, case s.span when 'day' then e.day else date_trunc('month', e.day)::date end as starts,
                sum(e.sent)::bigint as sent, sum(e.refused)::bigint as refused, sum(e.hard)::bigint as hard_bounces,
                sum(e.soft)::bigint as soft_bounces, sum(e.delivered)::bigint as delivered,
                sum(e.complaints)::bigint as complaints
           from e cross join (values ('day'), ('month')) s(span)
          group by 1, 2",
    )
    .fetch_all(tx.conn())
    .await
    .unwrap();
    rows.into_iter().map(|r| ((r.span, r.starts), r.totals)).collect()
}

/// What `breaker::counts` answers, in the recount's shape.
async fn kept(tx: &mut TenantTx, today: NaiveDate) -> Recount {
    let counts = breaker::counts(tx, today).await.unwrap();
    let days = counts.days.iter().map(|p| (("day".to_owned(), p.starts), p.totals));
    let months = counts.months.iter().map(|p| (("month".to_owned(), p.starts), p.totals));
    days.chain(months).collect()
}

/// Each campaign's hours (migration 35), by campaign and hour.
type Hours = BTreeMap<(uuid::Uuid, DateTime<Utc>), Activity>;

#[derive(sqlx::FromRow)]
struct HourRow {
    campaign_id: uuid::Uuid,
    starts: DateTime<Utc>,
    #[sqlx(flatten)]
    activity: Activity,
}

/// The tenant's campaigns' hours counted from the ledger, the feedback and the consent ledger
/// themselves, as migration 35 defines them; clicks are added from what `random_mix` did, since a
/// click row keeps only its first and last time.
async fn recount_hours(tx: &mut TenantTx, clicked: &Hours) -> Hours {
    let rows: Vec<HourRow> = sqlx::query_as(
        "with e as (
           select m.campaign_id, case when m.state = 'sent' then m.sent_at else m.updated_at end as at,
                  (m.state = 'sent')::int as sent, 0 as delivered, 0 as deferred,
                  (m.state = 'bounced' and m.reply ~ '^(\\d{3} 5\\.1\\.|55[013] (?!5\\.))')::int as hard,
                  (m.state = 'bounced' and m.reply !~ '^(\\d{3} 5\\.1\\.|55[013] (?!5\\.))')::int as soft,
                  0 as complaints, 0 as unsubscribes
             from app.campaign_messages m
            where m.organization_id = app.current_tenant_id() and m.state in ('sent', 'bounced')
           union all
           select f.campaign_id, f.received_at, 0, (f.kind = 'delivered')::int, (f.kind = 'delayed')::int,
                  (f.kind = 'hard_bounce' and m.state = 'sent')::int, (f.kind = 'soft_bounce' and m.state = 'sent')::int,
                  (f.kind = 'complaint')::int, 0
             from app.delivery_feedback f
             join app.campaign_messages m on m.organization_id = f.organization_id and m.campaign_id = f.campaign_id
                                         and m.contact_id = f.contact_id
            where f.organization_id = app.current_tenant_id()
           union all
           select c.campaign_id, min(c.created_at), 0, 0, 0, 0, 0, 0, 1
             from app.consent_events c
            where c.organization_id = app.current_tenant_id() and c.kind = 'revoke'
              and c.source in ('unsubscribe', 'preference_centre')
            group by c.campaign_id, c.contact_id)
         select e.campaign_id, date_trunc('hour', e.at, 'UTC') as starts, sum(e.sent)::bigint as sent,
                sum(e.delivered)::bigint as delivered, sum(e.deferred)::bigint as deferred,
                sum(e.hard)::bigint as hard_bounces, sum(e.soft)::bigint as soft_bounces,
                sum(e.complaints)::bigint as complaints, sum(e.unsubscribes)::bigint as unsubscribes,
                0::bigint as clicks, 0::bigint as clickers
           from e group by 1, 2",
    )
    .fetch_all(tx.conn())
    .await
    .unwrap();
    let mut hours: Hours = rows.into_iter().map(|r| ((r.campaign_id, r.starts), r.activity)).collect();
    for (key, a) in clicked {
        *hours.entry(*key).or_default() += *a;
    }
    // A bounce reported about a message refused at hand-over counts nothing: no hour of its own.
    hours.retain(|_, a| *a != Activity::default());
    hours
}

/// What `campaigns::activity` answers for each of `ids`, in the recount's shape.
async fn kept_hours(tx: &mut TenantTx, ids: &[ContentId]) -> Hours {
    let mut hours = Hours::new();
    for id in ids {
        for h in campaigns::activity(tx, *id).await.unwrap() {
            hours.insert((id.as_uuid(), h.starts), h.activity);
        }
    }
    hours
}

/// The first instant of `at`'s hour.
fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(Duration::hours(1)).unwrap()
}

/// Sends, refusals (hard and soft), deferrals, feedback of every kind, clicks and unsubscribes,
/// at random over the last `days` days, for the campaign's `handed` messages. Answers the clicks
/// and first clicks it recorded, per hour.
async fn random_mix(
    tx: &mut TenantTx,
    rng: &mut StdRng,
    o: &Org,
    id: ContentId,
    handed: &[ContactId],
    days: i64,
) -> Hours {
    let now = Utc::now();
    let at = |rng: &mut StdRng| -> DateTime<Utc> { now - Duration::hours(rng.gen_range(0..days * 24)) };
    let values = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
    let mut outcomes = Vec::new();
    for contact in handed {
        let when = at(rng);
        match rng.gen_range(0..10) {
            0 => {
                let reply =
                    ["550 5.1.1 unknown user", "550 mailbox unavailable", "554 5.7.1 spam"][rng.gen_range(0..3)];
                campaigns::record_failure(tx, id, *contact, &Failure::Bounced { reply: reply.into() }, when)
                    .await
                    .unwrap();
                outcomes.push((*contact, false));
            }
            1 => {
                let deferred = Failure::Deferred { reply: "451 4.3.0 later".into(), retry_at: when };
                campaigns::record_failure(tx, id, *contact, &deferred, when).await.unwrap();
            }
            _ => {
                let sent = [Sent { contact: *contact, values: &values, reply: "250 2.0.0 Ok" }];
                campaigns::record_sent(tx, id, &sent, when, &src()).await.unwrap();
                outcomes.push((*contact, true));
            }
        }
    }
    let mut clicked = Hours::new();
    let mut clicks = Vec::new();
    let evidence = Evidence { ip: None, user_agent: None };
    let mut unsubscribed = 0;
    for (contact, sent) in outcomes.iter().copied() {
        if sent && rng.gen_bool(0.3) {
            // Up to four clicks on the two links, in time order as people click.
            let mut times: Vec<DateTime<Utc>> = (0..rng.gen_range(1..=4)).map(|_| at(rng)).collect();
            times.sort();
            for (n, when) in times.into_iter().enumerate() {
                clicks.push(Clicked { campaign: id, contact, link: rng.gen_range(0..2), at: when });
                let hour = clicked.entry((id.as_uuid(), hour_of(when))).or_default();
                hour.clicks += 1;
                hour.clickers += i64::from(n == 0);
            }
        }
        // At least one recipient of each campaign unsubscribes, then one in ten.
        if sent && (unsubscribed == 0 || rng.gen_bool(0.1)) {
            unsubscribed += 1;
            let person = unsubscribe::person(tx, contact, Intent::Change).await.unwrap().unwrap();
            let change =
                Change { contact, campaign: id.as_uuid(), evidence: &evidence, now: Utc::now(), source: &src() };
            assert!(unsubscribe::unsubscribe(tx, &person, &[o.purpose], &change).await.unwrap());
        }
    }
    // Recorded as the server takes them in, several at a time (a recipient's clicks often
    // together); each one recorded.
    for batch in in_batches(rng, &clicks) {
        let recorded = clicks::record_all(tx, batch).await.unwrap();
        assert_eq!(recorded, vec![true; batch.len()]);
    }
    let mut reports = Vec::new();
    for (contact, _) in outcomes {
        for (kind, code) in [
            (Kind::Delivered, "2.0.0"),
            (Kind::HardBounce, "5.1.1"),
            (Kind::SoftBounce, "5.2.2"),
            (Kind::Delayed, "4.4.1"),
            (Kind::Complaint, "abuse"),
        ] {
            if rng.gen_bool(0.3) {
                let kinds = vec![(kind, code.to_owned())];
                reports.push(Returned { campaign: id, contact, kinds, at: at(rng), source: src() });
            }
        }
    }
    for batch in in_batches(rng, &reports) {
        for recorded in feedback::record_all(tx, batch).await.unwrap() {
            assert!(matches!(recorded, Recorded::New(_)), "{recorded:?}");
        }
    }
    clicked
}

/// `items` in order, cut into batches of 1 to 50.
fn in_batches<'a, T>(rng: &mut StdRng, mut items: &'a [T]) -> Vec<&'a [T]> {
    let mut batches = Vec::new();
    while !items.is_empty() {
        let (batch, rest) = items.split_at(rng.gen_range(1..=50).min(items.len()));
        batches.push(batch);
        items = rest;
    }
    batches
}

#[tokio::test]
async fn the_daily_monthly_and_campaign_hourly_counts_are_a_recount_of_what_happened_after_a_random_mix() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    let acme = org(&pool, "acme").await;
    let globex = org(&pool, "globex").await;
    campaign::consenting(&pool, &acme, &keys(), 40).await;
    campaign::consenting(&pool, &globex, &keys(), 10).await;
    let mut mixed = Vec::new();
    for o in [&acme, &globex] {
        // Two campaigns each, their messages sent, refused and reported over the last 40 days:
        // more than a month, so that two or three months have rows.
        let (mut ids, mut clicked) = (Vec::new(), Hours::new());
        for _ in 0..2 {
            let (id, handed) = claimed(&pool, o, 100).await;
            let mut tx = begin(&pool, o.org, o.admin).await;
            clicked.extend(random_mix(&mut tx, &mut rng, o, id, &handed, 40).await);
            tx.commit().await.unwrap();
            ids.push(id);
        }
        mixed.push((ids, clicked));
    }
    let today = Utc::now().date_naive();
    for (o, (ids, clicked)) in [&acme, &globex].into_iter().zip(&mixed) {
        let mut tx = begin(&pool, o.org, o.admin).await;
        let hours = recount_hours(&mut tx, clicked).await;
        assert!(hours.values().map(|a| a.unsubscribes).sum::<i64>() >= 2, "one in each campaign at least, seed {seed}");
        let held = kept_hours(&mut tx, ids).await;
        let differ: Vec<_> = hours.keys().chain(held.keys()).filter(|k| hours.get(k) != held.get(k)).collect();
        assert!(
            differ.is_empty(),
            "seed {seed}, (hour, kept, recounted): {:?}",
            differ.iter().map(|k| (k, held.get(k), hours.get(k))).collect::<Vec<_>>()
        );
        let mut expected = recount(&mut tx).await;
        assert!(expected.keys().any(|(span, _)| span == "month"), "seed {seed}");
        // `counts` reads the last 30 days and 12 months.
        expected.retain(|(span, starts), _| span == "month" || *starts > today - Duration::days(30));
        assert_eq!(kept(&mut tx, today).await, expected, "seed {seed}");
        let mut summed = Totals::default();
        for ((span, starts), t) in &expected {
            if span == "day" {
                summed.sent += t.sent;
                summed.complaints += t.complaints;
                assert!(*starts <= today);
            }
        }
        let counts = breaker::counts(&mut tx, today).await.unwrap();
        assert_eq!((counts.last_30_days.sent, counts.last_30_days.complaints), (summed.sent, summed.complaints));
        // Below the minimum volume (1,000 by default) nothing trips, whatever the rates.
        assert_eq!(breaker::get(&mut tx).await.unwrap().state, "clear", "seed {seed}");
    }

    // Another organization sees none of acme's counts, and nobody writes them but the triggers.
    let mut tx = begin(&pool, globex.org, globex.admin).await;
    let seen: i64 = sqlx::query_scalar("select count(*) from app.sending_counts where organization_id = $1")
        .bind(acme.org.as_uuid())
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(seen, 0);
    let attempts = [
        format!(
            "insert into app.sending_counts (organization_id, span, starts, sent) values ('{}', 'day', current_date, 9)",
            globex.org.as_uuid()
        ),
        "update app.sending_counts set complaints = 0".to_owned(),
        "delete from app.sending_counts".to_owned(),
        "truncate app.sending_counts".to_owned(),
        format!(
            "select app.sending_counts_add('{}', array[current_date], array[1::bigint], array[0::bigint],
                    array[0::bigint], array[0::bigint], array[0::bigint], array[0::bigint])",
            globex.org.as_uuid()
        ),
        "update app.campaign_activity set complaints = 0".to_owned(),
        "delete from app.campaign_activity".to_owned(),
        "truncate app.campaign_activity".to_owned(),
        format!(
            "select app.campaign_activity_add('{}', array['{}'::uuid], array[now()], array['sent'], array[9::bigint])",
            globex.org.as_uuid(),
            mixed[1].0[0].as_uuid()
        ),
    ];
    let before = kept(&mut tx, today).await;
    let hours_before = kept_hours(&mut tx, &mixed[1].0).await;
    for sql in attempts {
        sqlx::raw_sql("savepoint attempt").execute(tx.conn()).await.unwrap();
        let err = sqlx::raw_sql(&sql).execute(tx.conn()).await.unwrap_err();
        assert!(crate::refused_for_privilege(&err), "{sql}: {err}");
        sqlx::raw_sql("rollback to savepoint attempt").execute(tx.conn()).await.unwrap();
    }
    assert_eq!(kept(&mut tx, today).await, before);
    assert_eq!(kept_hours(&mut tx, &mixed[1].0).await, hours_before);
    let seen: i64 = sqlx::query_scalar("select count(*) from app.campaign_activity where organization_id = $1")
        .bind(acme.org.as_uuid())
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(seen, 0);
}

/// The audit records of `action` in the tenant, oldest first: their metadata.
async fn audited(tx: &mut TenantTx, action: &str) -> Vec<serde_json::Value> {
    sqlx::query_scalar(
        "select metadata from app.audit_logs where organization_id = app.current_tenant_id() and action = $1
          order by created_at, id",
    )
    .bind(action)
    .fetch_all(tx.conn())
    .await
    .unwrap()
}

async fn run_state(tx: &mut TenantTx, id: ContentId) -> String {
    campaigns::run(tx, id).await.unwrap().unwrap().state
}

fn constraint<T: std::fmt::Debug>(result: Result<T, DbError>) -> String {
    match result {
        Err(DbError::Invalid { constraint }) => constraint,
        other => panic!("expected a refusal by a constraint, got {other:?}"),
    }
}

#[tokio::test]
async fn the_breaker_warns_once_halts_every_sending_run_at_its_next_claim_holds_a_launch_and_only_a_resume_sends() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let acme = org(&pool, "acme").await;
    let globex = org(&pool, "globex").await;
    campaign::consenting(&pool, &acme, &keys(), 720).await;
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    breaker::configure(&mut tx, Some(100), None, acme.admin, &src()).await.unwrap();
    tx.commit().await.unwrap();

    // Campaign A hands 700 messages over and keeps 21 queued; B is launched and sending; C was
    // paused by a member.
    let (a, handed) = claimed(&pool, &acme, 700).await;
    assert_eq!(handed.len(), 700);
    let (b, _) = claimed(&pool, &acme, 0).await;
    let (c, _) = claimed(&pool, &acme, 0).await;
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    let values = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
    let sent: Vec<Sent> = handed.iter().map(|c| Sent { contact: *c, values: &values, reply: "250 Ok" }).collect();
    campaigns::record_sent(&mut tx, a, &sent, Utc::now(), &src()).await.unwrap();
    campaigns::control(&mut tx, c, Control::Pause, acme.admin, Utc::now(), &src()).await.unwrap();
    tx.commit().await.unwrap();

    // A complaint: 1 in 700 (0.14%) warns, once; a second (0.29%) says nothing new.
    let (acme_org, acme_admin) = (acme.org, acme.admin);
    let complain = |contact: ContactId| {
        let pool = pool.clone();
        async move {
            let mut tx = begin(&pool, acme_org, acme_admin).await;
            let now = Utc::now();
            let recorded = feedback::record(&mut tx, a, contact, Kind::Complaint, "abuse", now, &src()).await.unwrap();
            tx.commit().await.unwrap();
            match recorded {
                Recorded::New(verdict) => verdict,
                other => panic!("{other:?}"),
            }
        }
    };
    assert!(matches!(complain(handed[0]).await, Verdict::Warned(w) if w.complaints == 1 && w.sent == 700));
    assert_eq!(complain(handed[1]).await, Verdict::Quiet);
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    assert_eq!(audited(&mut tx, "sending.breaker_warned").await.len(), 1);
    assert_eq!(breaker::get(&mut tx).await.unwrap().state, "warned");
    tx.commit().await.unwrap();

    // The third (0.43%) halts: A, mid-send, and B are paused by the breaker; C stays as it was.
    let Verdict::Tripped { reason, window, paused } = complain(handed[2]).await else { panic!("no halt") };
    assert_eq!(reason, Reason::Complaints);
    assert_eq!(window.complaints, 3);
    let mut both = vec![a, b];
    both.sort();
    assert_eq!(paused, both);
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    let claim = campaigns::claim(&mut tx, a, 100, Duration::minutes(5), Utc::now()).await.unwrap();
    assert!(claim.messages.is_empty() && claim.skipped.is_empty(), "{claim:?}");
    for id in [a, b, c] {
        assert_eq!(run_state(&mut tx, id).await, "paused");
    }
    let tripped = audited(&mut tx, "sending.breaker_tripped").await;
    assert_eq!(tripped.len(), 1);
    assert_eq!(tripped[0]["reason"], "complaints");
    assert_eq!(tripped[0]["window"]["complaint_rate"], "0.43%");
    let by_breaker = audited(&mut tx, "campaign.controlled").await;
    assert_eq!(by_breaker.iter().filter(|m| m["by"] == "breaker").count(), 2);
    // Neither a member's resume nor a write behind the application's back sends again.
    let resumed = campaigns::control(&mut tx, a, Control::Resume, acme.admin, Utc::now(), &src()).await;
    assert_eq!(constraint(resumed), "campaign_runs_halted");
    tx.commit().await.unwrap();
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    let forced = sqlx::query("update app.campaign_runs set state = 'sending', held = false where campaign_id = $1")
        .bind(a.as_uuid())
        .execute(tx.conn())
        .await
        .map(|_| ())
        .map_err(DbError::from);
    assert_eq!(constraint(forced), "campaign_runs_halted");
    drop(tx);

    // A launch while halted is held: its run waits paused and nothing is handed over.
    let d = new_campaign(&pool, &acme, &acme.definition).await;
    approved(&pool, &acme, d).await;
    let Launch::Done(launched) = launch(&pool, &acme, d).await else { panic!("not launched") };
    assert!(launched.held && launched.queued > 0);
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    assert_eq!(run_state(&mut tx, d).await, "paused");
    assert!(campaigns::claim(&mut tx, d, 100, Duration::minutes(5), Utc::now()).await.unwrap().messages.is_empty());
    tx.commit().await.unwrap();

    // Another organization sends on, and there a complaint about its one message is far below
    // the minimum volume (1,000 by default): nothing trips.
    let (g, handed) = claimed(&pool, &globex, 10).await;
    assert_eq!(handed.len(), 1, "Ada alone has consent in globex");
    let mut tx = begin(&pool, globex.org, globex.admin).await;
    let sent = [Sent { contact: handed[0], values: &values, reply: "250 Ok" }];
    campaigns::record_sent(&mut tx, g, &sent, Utc::now(), &src()).await.unwrap();
    let recorded = feedback::record(&mut tx, g, handed[0], Kind::Complaint, "abuse", Utc::now(), &src()).await.unwrap();
    assert_eq!(recorded, Recorded::New(Verdict::Quiet));
    assert_eq!(breaker::get(&mut tx).await.unwrap().state, "clear");
    assert_eq!(breaker::judge(&mut tx, Event::Complaint, Utc::now(), &src()).await.unwrap(), Verdict::Quiet);
    tx.commit().await.unwrap();

    // The ADMIN's resume: A, B and D send again, C stays paused; still over 0.1%, so warned.
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    let resumed = breaker::resume(&mut tx, acme.admin, Utc::now(), &src()).await.unwrap().unwrap();
    let mut three = vec![a, b, d];
    three.sort();
    assert_eq!(resumed.campaigns, three);
    assert_eq!(breaker::get(&mut tx).await.unwrap().state, "warned");
    assert_eq!(run_state(&mut tx, c).await, "paused");
    let claim = campaigns::claim(&mut tx, a, 100, Duration::minutes(5), Utc::now()).await.unwrap();
    assert_eq!(claim.messages.len(), 21, "Ada and the last twenty");
    let records = audited(&mut tx, "sending.breaker_resumed").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["window"]["complaints"], 3);
    assert!(breaker::resume(&mut tx, acme.admin, Utc::now(), &src()).await.unwrap().is_none(), "not halted");
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_refusal_is_hard_by_its_enhanced_status_when_it_has_one_else_by_the_basic_codes_that_name_the_mailbox() {
    let db = TestDb::new().await;
    let pool = db.app_pool(1).await;
    let acme = org(&pool, "acme").await;
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    for (reply, hard) in [
        ("550 5.1.1 <a@example.com>: Recipient address rejected: User unknown", true),
        ("554 5.1.0 Address rejected", true),
        ("550 5.7.1 Message rejected as spam", false),
        ("552 5.2.2 Mailbox full", false),
        ("550 Requested action not taken: mailbox unavailable", true),
        ("553 Requested action not taken: mailbox name not allowed", true),
        ("554 Transaction failed", false),
        ("", false),
    ] {
        let judged: bool =
            sqlx::query_scalar("select app.hard_refusal($1)").bind(reply).fetch_one(tx.conn()).await.unwrap();
        assert_eq!(judged, hard, "{reply:?}");
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_refusal_at_hand_over_counts_as_a_hard_bounce_and_halts_at_the_organizations_limit() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let acme = org(&pool, "acme").await;
    campaign::consenting(&pool, &acme, &keys(), 110).await;
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    // 5% by default; 2% here.
    breaker::configure(&mut tx, Some(100), Some(200), acme.admin, &src()).await.unwrap();
    tx.commit().await.unwrap();
    let (id, handed) = claimed(&pool, &acme, 105).await;
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    let values = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
    let sent: Vec<Sent> =
        handed[..102].iter().map(|c| Sent { contact: *c, values: &values, reply: "250 Ok" }).collect();
    campaigns::record_sent(&mut tx, id, &sent, Utc::now(), &src()).await.unwrap();
    // A policy refusal is a soft bounce; one hard of 104 handed over is under 2%...
    for (contact, reply, hard) in [(handed[102], "554 5.7.1 policy", false), (handed[103], "550 5.1.1 unknown", true)] {
        let recorded =
            campaigns::record_failure(&mut tx, id, contact, &Failure::Bounced { reply: reply.into() }, Utc::now())
                .await
                .unwrap();
        let expected = if hard { campaigns::Recorded::HardRefusal } else { campaigns::Recorded::Failure };
        assert_eq!(recorded, expected, "{reply}");
    }
    assert_eq!(breaker::get(&mut tx).await.unwrap().state, "clear");
    // ...and a hard bounce reported later makes it 2 of 104 (1.92%), still under. A third, at
    // hand-over, makes 3 of 105 (2.86%): halted, in the sending job's own transaction.
    let recorded =
        feedback::record(&mut tx, id, handed[0], Kind::HardBounce, "5.1.1", Utc::now(), &src()).await.unwrap();
    assert_eq!(recorded, Recorded::New(Verdict::Quiet));
    campaigns::record_failure(
        &mut tx,
        id,
        handed[104],
        &Failure::Bounced { reply: "550 no such user".into() },
        Utc::now(),
    )
    .await
    .unwrap();
    let b = breaker::get(&mut tx).await.unwrap();
    assert_eq!((b.state.as_str(), b.reason.as_deref()), ("halted", Some("hard_bounces")));
    assert_eq!(run_state(&mut tx, id).await, "paused");
    let window = breaker::window(&mut tx, Utc::now().date_naive()).await.unwrap();
    assert_eq!((window.sent, window.refused, window.hard_bounces, window.soft_bounces), (102, 3, 3, 1));
    tx.commit().await.unwrap();
}

#[tokio::test]
#[ignore = "needs the Citus cluster: MOS_TEST_BACKEND=citus cargo test -- --include-ignored"]
async fn on_citus_the_counts_the_judgement_the_halt_the_held_launch_and_the_resume_run_on_one_shard() {
    mos_db::testing::requires(Backend::Citus, "run with MOS_TEST_BACKEND=citus");
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let acme = org(&pool, "acme").await;
    campaign::consenting(&pool, &acme, &keys(), 110).await;
    let (id, handed) = claimed(&pool, &acme, 110).await;
    let other = new_campaign(&pool, &acme, &acme.definition).await;
    approved(&pool, &acme, other).await;
    let mut tx = begin(&pool, acme.org, acme.admin).await;
    // From here on, any statement that needs more than one shard is an error, the triggers'
    // statements included.
    crate::each(tx.conn(), &["set local citus.multi_task_query_log_level = 'error'"]).await;
    breaker::configure(&mut tx, Some(100), None, acme.admin, &src()).await.unwrap();
    let now = Utc::now();
    let values = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
    let sent: Vec<Sent> =
        handed[..100].iter().map(|c| Sent { contact: *c, values: &values, reply: "250 Ok" }).collect();
    campaigns::record_sent(&mut tx, id, &sent, now, &src()).await.unwrap();
    for (kind, code) in [(Kind::Delivered, "2.0.0"), (Kind::SoftBounce, "5.2.2")] {
        let recorded = feedback::record(&mut tx, id, handed[0], kind, code, now, &src()).await.unwrap();
        assert!(matches!(recorded, Recorded::New(_)), "{recorded:?}");
    }
    // Hard refusals at hand-over until the sixth of 106 passes 5%: halted there.
    for contact in &handed[100..106] {
        let refused = Failure::Bounced { reply: "550 5.1.1 unknown".into() };
        campaigns::record_failure(&mut tx, id, *contact, &refused, now).await.unwrap();
    }
    assert_eq!(breaker::get(&mut tx).await.unwrap().reason.as_deref(), Some("hard_bounces"));
    let counts = breaker::counts(&mut tx, now.date_naive()).await.unwrap();
    let t = counts.last_30_days;
    assert_eq!((t.sent, t.refused, t.hard_bounces, t.soft_bounces, t.delivered), (100, 6, 6, 1, 1));
    let Launch::Done(launched) = campaigns::launch(&mut tx, other, acme.admin, Role::Admin, now, &src()).await.unwrap()
    else {
        panic!("not launched")
    };
    assert!(launched.held);
    let resumed = breaker::resume(&mut tx, acme.admin, now, &src()).await.unwrap().unwrap();
    assert_eq!(resumed.campaigns.len(), 2);
    tx.commit().await.unwrap();
}
