use chrono::{DateTime, Duration, SubsecRound, Utc};
use futures::future::join_all;
use mos_db::request::SessionRules;
use mos_db::sessions::Live;
use mos_db::testing::TestDb;
use mos_db::throttle::{self, Policy};
use mos_db::{audit, sessions, users, AppPool};
use mos_domain::{AuditAction, AuditEvent, Outcome, RequestSource, ResourceType, TokenHash, UserId};

use crate::{new_org, new_user, sqlstate};

const ACCOUNT: Policy = Policy { free: 5, cap_secs: 900, window: None };

#[tokio::test]
async fn parallel_failures_cannot_slip_past_the_limit() {
    let db = TestDb::new().await;
    let pool = db.app_pool(8).await;
    let now = Utc::now();
    let attempts = (0..40).map(|_| {
        let pool = pool.clone();
        async move { throttle::hit(&pool, "login:email:x", now, &ACCOUNT).await.unwrap() }
    });
    let hits = join_all(attempts).await;
    let allowed = hits.iter().filter(|h| h.allowed).count();
    // The five free failures, and the one that set the first lock.
    assert_eq!(allowed, 6, "{hits:?}");
    let refused = hits.iter().find(|h| !h.allowed).unwrap();
    assert_eq!(refused.retry_after, Some(1));
}

async fn clear(pool: &AppPool, key: &str) {
    let mut tx = pool.begin_user(UserId::new()).await.unwrap();
    throttle::clear(&mut tx, key).await.unwrap();
    tx.commit().await.unwrap();
}

/// The live session behind a token hash, as a request would find it.
async fn live(pool: &AppPool, hash: &TokenHash, at: DateTime<Utc>, idle: Duration) -> Option<Live> {
    let rules = SessionRules { idle, touch_every: Duration::minutes(1) };
    let (session, tx) = pool.authenticate(hash, at, rules).await.unwrap()?;
    tx.commit().await.unwrap();
    Some(session)
}

#[tokio::test]
async fn delays_double_up_to_the_cap_and_a_success_starts_over() {
    let db = TestDb::new().await;
    let pool = db.app_pool(1).await;
    let policy = Policy { free: 2, cap_secs: 8, window: None };
    let mut now = Utc::now();
    let mut delays = Vec::new();
    for _ in 0..7 {
        let hit = throttle::hit(&pool, "k", now, &policy).await.unwrap();
        assert!(hit.allowed);
        delays.push(hit.retry_after.unwrap_or(0));
        now += Duration::seconds(i64::from(hit.retry_after.unwrap_or(0)));
    }
    assert_eq!(delays, [0, 0, 1, 2, 4, 8, 8]);
    let early = throttle::hit(&pool, "k", now - Duration::seconds(1), &policy).await.unwrap();
    assert!(!early.allowed && early.failures == 7, "a refused attempt is not counted: {early:?}");

    clear(&pool, "k").await;
    assert_eq!(throttle::hit(&pool, "k", now, &policy).await.unwrap().failures, 1);
}

#[tokio::test]
async fn no_number_of_failures_locks_a_key_for_good() {
    let db = TestDb::new().await;
    let pool = db.app_pool(1).await;
    let policy = Policy { free: 5, cap_secs: 900, window: None };
    let mut now = Utc::now();
    for _ in 0..150 {
        let hit = throttle::hit(&pool, "acct", now, &policy).await.unwrap();
        assert!(hit.allowed, "{hit:?}");
        now += Duration::seconds(i64::from(hit.retry_after.unwrap_or(0)));
    }
    let next = throttle::hit(&pool, "acct", now - Duration::seconds(1), &policy).await.unwrap();
    assert_eq!((next.allowed, next.retry_after), (false, Some(1)), "a delay of at most the cap, never a lock");
}

#[tokio::test]
async fn a_forgiven_success_does_not_count_and_an_earlier_failure_still_does() {
    let db = TestDb::new().await;
    let pool = db.app_pool(1).await;
    let policy = Policy { free: 2, cap_secs: 60, window: Some(Duration::hours(1)) };
    let now = Utc::now();
    throttle::hit(&pool, "ip:192.0.2.1", now, &policy).await.unwrap();
    for _ in 0..10 {
        let hit = throttle::hit(&pool, "ip:192.0.2.1", now, &policy).await.unwrap();
        assert_eq!((hit.allowed, hit.failures), (true, 2), "one failure and this attempt");
        let mut tx = pool.begin_user(UserId::new()).await.unwrap();
        throttle::forgive(&mut tx, "ip:192.0.2.1", &policy).await.unwrap();
        tx.commit().await.unwrap();
    }
    let failed = throttle::hit(&pool, "ip:192.0.2.1", now, &policy).await.unwrap();
    assert_eq!(failed.failures, 2, "the failure from before the successes is still there");
}

#[tokio::test]
async fn a_rate_allows_its_limit_per_window_whatever_came_before() {
    let db = TestDb::new().await;
    let pool = db.app_pool(1).await;
    let rate = throttle::Rate { limit: 3, window: Duration::hours(1) };
    let start = Utc::now();
    for round in 0..3 {
        let window = start + Duration::hours(round * 2);
        let answers: Vec<bool> =
            join_all(
                (0..5).map(|i| {
                    let pool = pool.clone();
                    async move {
                        throttle::rate(&pool, "mail:x", window + Duration::minutes(i), &rate).await.unwrap().allowed
                    }
                }),
            )
            .await;
        assert_eq!(answers.iter().filter(|a| **a).count(), 3, "round {round}: {answers:?}");
        let refused = throttle::rate(&pool, "mail:x", window + Duration::minutes(59), &rate).await.unwrap();
        assert!(!refused.allowed && (1..=3600).contains(&refused.retry_after.unwrap()), "{refused:?}");
    }
}

#[tokio::test]
async fn a_windowed_counter_forgets_old_failures() {
    let db = TestDb::new().await;
    let pool = db.app_pool(1).await;
    let policy = Policy { free: 1, cap_secs: 60, window: Some(Duration::hours(1)) };
    let now = Utc::now();
    throttle::hit(&pool, "ip:192.0.2.1", now, &policy).await.unwrap();
    throttle::hit(&pool, "ip:192.0.2.1", now, &policy).await.unwrap();
    let fresh = throttle::hit(&pool, "ip:192.0.2.1", now + Duration::hours(2), &policy).await.unwrap();
    assert_eq!((fresh.allowed, fresh.failures), (true, 1));
}

#[tokio::test]
async fn app_user_cannot_read_or_reset_throttles_directly() {
    let db = TestDb::new().await;
    let pool = db.app_pool(1).await;
    throttle::hit(&pool, "k", Utc::now(), &ACCOUNT).await.unwrap();
    let mut conn = db.app_user().await;
    assert_eq!(sqlstate(sqlx::query("delete from app.auth_throttles").execute(&mut conn).await), "42501");
    assert_eq!(sqlstate(sqlx::query("select * from app.auth_throttles").fetch_all(&mut conn).await), "42501");
}

#[tokio::test]
async fn a_session_lives_until_idle_absolute_expiry_or_revocation() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let user = new_user(&pool, "ada@example.com").await;
    let now = Utc::now().trunc_subsecs(6);
    let idle = Duration::minutes(15);
    let mut tx = pool.begin_user(user).await.unwrap();
    let id = sessions::create(
        &mut tx,
        &TokenHash([5; 32]),
        now,
        now + Duration::hours(12),
        &RequestSource::default(),
        false,
    )
    .await
    .unwrap();
    sessions::create(&mut tx, &TokenHash([6; 32]), now, now + Duration::hours(12), &RequestSource::default(), false)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Each use moves the idle deadline; 14 minutes apart it stays alive for an hour.
    let mut at = now;
    for _ in 0..4 {
        at += Duration::minutes(14);
        let live = live(&pool, &TokenHash([5; 32]), at, idle).await.unwrap();
        assert_eq!((live.id, live.user, live.authenticated_at), (id, user, now));
    }
    assert_eq!(live(&pool, &TokenHash([5; 32]), at + Duration::minutes(16), idle).await, None, "idle");
    assert_eq!(live(&pool, &TokenHash([6; 32]), now + Duration::hours(13), Duration::days(1)).await, None, "absolute");
    assert_eq!(live(&pool, &TokenHash([7; 32]), now, idle).await, None, "unknown");

    let mut tx = pool.begin_user(user).await.unwrap();
    assert_eq!(sessions::list_live(&mut tx, now, idle).await.unwrap().len(), 2);
    assert_eq!(sessions::revoke_all(&mut tx, now).await.unwrap(), 2);
    tx.commit().await.unwrap();
    assert_eq!(live(&pool, &TokenHash([6; 32]), now, idle).await, None, "revoked");
}

#[tokio::test]
async fn activity_is_written_at_most_once_a_minute_and_a_read_writes_nothing() {
    let db = TestDb::new().await;
    let pool = db.app_pool(1).await;
    let user = new_user(&pool, "ada@example.com").await;
    let now = Utc::now().trunc_subsecs(6);
    let rules = SessionRules { idle: Duration::minutes(15), touch_every: Duration::minutes(1) };
    let mut tx = pool.begin_user(user).await.unwrap();
    sessions::create(&mut tx, &TokenHash([5; 32]), now, now + Duration::hours(12), &RequestSource::default(), false)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // (when, whether this request writes, what the session's last activity reads afterwards)
    let steps = [
        (now + Duration::seconds(30), false, now),
        (now + Duration::seconds(59), false, now),
        (now + Duration::seconds(61), true, now + Duration::seconds(61)),
        (now + Duration::seconds(90), false, now + Duration::seconds(61)),
    ];
    for (at, writes, seen) in steps {
        let (_, mut tx) = pool.authenticate(&TokenHash([5; 32]), at, rules).await.unwrap().unwrap();
        let xid: Option<String> =
            sqlx::query_scalar("select pg_current_xact_id_if_assigned()::text").fetch_one(tx.conn()).await.unwrap();
        assert_eq!(xid.is_some(), writes, "at {at}: a transaction id is assigned only by a write");
        let listed = sessions::list_live(&mut tx, at, rules.idle).await.unwrap();
        assert_eq!(listed[0].last_seen_at, seen, "at {at}");
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn another_user_cannot_revoke_or_list_my_sessions() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let ada = new_user(&pool, "ada@example.com").await;
    let eve = new_user(&pool, "eve@example.com").await;
    let now = Utc::now();
    let mut tx = pool.begin_user(ada).await.unwrap();
    let id =
        sessions::create(&mut tx, &TokenHash([5; 32]), now, now + Duration::hours(1), &RequestSource::default(), false)
            .await
            .unwrap();
    tx.commit().await.unwrap();

    let mut tx = pool.begin_user(eve).await.unwrap();
    assert!(sessions::list_live(&mut tx, now, Duration::minutes(15)).await.unwrap().is_empty());
    assert!(!sessions::revoke(&mut tx, id, now).await.unwrap());
    tx.commit().await.unwrap();
    assert!(live(&pool, &TokenHash([5; 32]), now, Duration::minutes(15)).await.is_some());
}

#[tokio::test]
async fn a_login_challenge_allows_five_attempts_and_is_spent_once() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let user = new_user(&pool, "ada@example.com").await;
    let now = Utc::now();
    let mut tx = pool.begin_user(user).await.unwrap();
    sessions::create_challenge(&mut tx, &TokenHash([8; 32]), now, now + Duration::minutes(5)).await.unwrap();
    tx.commit().await.unwrap();

    let mut challenge = None;
    for _ in 0..5 {
        challenge = sessions::attempt_challenge(&pool, &TokenHash([8; 32]), now, 5).await.unwrap();
        assert_eq!(challenge.map(|a| a.user), Some(user));
    }
    assert_eq!(
        sessions::attempt_challenge(&pool, &TokenHash([8; 32]), now, 5).await.unwrap(),
        None,
        "attempts used up"
    );
    let id = challenge.unwrap().challenge;
    let mut tx = pool.begin_user(user).await.unwrap();
    assert!(sessions::consume_challenge(&mut tx, id, now).await.unwrap());
    assert!(!sessions::consume_challenge(&mut tx, id, now).await.unwrap(), "spent once");
}

#[tokio::test]
async fn a_totp_step_is_accepted_once_even_under_racing_requests() {
    let db = TestDb::new().await;
    let pool = db.app_pool(8).await;
    let user = new_user(&pool, "ada@example.com").await;
    let mut tx = pool.begin_user(user).await.unwrap();
    users::enable_totp(&mut tx, b"sealed", 100, &[TokenHash([1; 32])], Utc::now()).await.unwrap();
    tx.commit().await.unwrap();

    let racers = (0..16).map(|_| {
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin_user(user).await.unwrap();
            let won = users::advance_totp_step(&mut tx, 101).await.unwrap();
            tx.commit().await.unwrap();
            won
        }
    });
    assert_eq!(join_all(racers).await.into_iter().filter(|w| *w).count(), 1);
    let mut tx = pool.begin_user(user).await.unwrap();
    assert!(!users::advance_totp_step(&mut tx, 100).await.unwrap(), "an older step is a replay");
    assert!(users::use_recovery_code(&mut tx, &TokenHash([1; 32]), Utc::now()).await.unwrap());
    assert!(!users::use_recovery_code(&mut tx, &TokenHash([1; 32]), Utc::now()).await.unwrap(), "single use");
}

#[tokio::test]
async fn platform_events_are_readable_by_their_user_only_and_never_by_a_tenant() {
    let db = TestDb::new().await;
    let pool = db.app_pool(4).await;
    let ada = new_user(&pool, "ada@example.com").await;
    let eve = new_user(&pool, "eve@example.com").await;
    let org = new_org(&pool, "acme", eve).await;
    let login =
        AuditEvent::new(AuditAction::parse("auth.login.succeeded").unwrap(), ResourceType::parse("user").unwrap())
            .actor(ada);
    let mut tx = pool.begin_user(ada).await.unwrap();
    audit::record_platform(&mut tx, &login).await.unwrap();
    tx.commit().await.unwrap();
    let unknown =
        AuditEvent::new(AuditAction::parse("auth.login.failed").unwrap(), ResourceType::parse("user").unwrap())
            .outcome(Outcome::Failure);
    audit::record_platform_unattributed(&pool, &unknown).await.unwrap();

    let mut tx = pool.begin_user(ada).await.unwrap();
    let mine = audit::platform_recent(&mut tx, 10).await.unwrap();
    assert_eq!(mine.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["auth.login.succeeded"]);
    let mut tx = pool.begin_user(eve).await.unwrap();
    assert!(audit::platform_recent(&mut tx, 10).await.unwrap().is_empty());
    let mut tenant = pool.begin_tenant(org, Some(eve)).await.unwrap();
    let seen: i64 =
        sqlx::query_scalar("select count(*) from app.platform_audit_logs").fetch_one(tenant.conn()).await.unwrap();
    assert_eq!(seen, 0);

    // Nobody forges an event onto someone else's trail, and nobody edits one.
    let forged = sqlx::query("insert into app.platform_audit_logs (id, subject_user_id, action, resource_type, outcome) values ($1, $2, 'auth.login.succeeded', 'user', 'success')")
        .bind(uuid::Uuid::now_v7())
        .bind(ada.as_uuid())
        .execute(tenant.conn())
        .await;
    assert_eq!(sqlstate(forged), "42501");
    let mut su = db.superuser().await;
    let err = sqlx::query("update app.platform_audit_logs set action = 'auth.login.failed'")
        .execute(&mut su)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}
