//! The job queue against a real PostgreSQL, as `app_user`: claims are exclusive, a dead
//! runner's job is claimed again once its lease ran out and the dead runner can change
//! nothing after, claims are fair between tenants, failures are retried after a backoff,
//! cancel stops a job at its next checkpoint, and a tenant sees only its own jobs.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mos_db::jobs::runner::{Next, Runner, RunnerConfig, Work};
use mos_db::jobs::{self, Ending, JobKind, JobState, Lease, Progress};
use mos_db::testing::TestDb;
use mos_db::AppPool;
use mos_domain::{JobId, OrgId};
use tokio::sync::Semaphore;

use crate::{new_org, new_user};

const KIND: JobKind = JobKind::new("test_job");
const LEASE: Duration = Duration::from_secs(30);

async fn tenants(pool: &AppPool) -> (OrgId, OrgId) {
    let alice = new_user(pool, "alice@a.example").await;
    let bob = new_user(pool, "bob@b.example").await;
    (new_org(pool, "tenant-a", alice).await, new_org(pool, "tenant-b", bob).await)
}

async fn enqueue(pool: &AppPool, org: OrgId, now: DateTime<Utc>) -> JobId {
    let mut tx = pool.begin_tenant(org, None).await.unwrap();
    let id = jobs::enqueue(&mut tx, KIND, &serde_json::json!({}), 3, now).await.unwrap();
    tx.commit().await.unwrap();
    id
}

async fn job(pool: &AppPool, org: OrgId, id: JobId) -> jobs::Job {
    let mut tx = pool.begin_tenant(org, None).await.unwrap();
    let job = jobs::get(&mut tx, id).await.unwrap().expect("the job");
    tx.commit().await.unwrap();
    job
}

async fn finish(pool: &AppPool, claim: &jobs::Claim, ending: Ending, now: DateTime<Utc>) -> Option<JobState> {
    let mut tx = pool.begin_tenant(claim.org, None).await.unwrap();
    let state = jobs::finish(&mut tx, claim, &ending, now).await.unwrap();
    tx.commit().await.unwrap();
    state
}

/// Polls until `done` holds, for at most ten seconds: waiting for an event of another task
/// without guessing how long it takes.
async fn until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn concurrent_claims_never_hand_out_the_same_job_twice() {
    let db = TestDb::new().await;
    let pool = db.app_pool(8).await;
    let (a, b) = tenants(&pool).await;
    let now = Utc::now();
    let mut queued = HashSet::new();
    for i in 0..12 {
        queued.insert(enqueue(&pool, if i % 2 == 0 { a } else { b }, now).await);
    }

    let claims = futures::future::join_all((0..16).map(|_| jobs::claim(&pool, &[KIND], now, LEASE))).await;

    let claimed: Vec<JobId> = claims.into_iter().filter_map(|c| c.unwrap()).map(|c| c.id).collect();
    let distinct: HashSet<JobId> = claimed.iter().copied().collect();
    assert_eq!(distinct.len(), claimed.len(), "a job was claimed twice: {claimed:?}");
    assert_eq!(distinct, queued, "every queued job is claimed once, and only those");
}

#[tokio::test]
async fn two_runners_run_every_job_exactly_once() {
    let db = TestDb::new().await;
    let pool = db.app_pool(10).await;
    let (a, b) = tenants(&pool).await;
    let mut queued = Vec::new();
    for i in 0..20 {
        queued.push(enqueue(&pool, if i % 3 == 0 { a } else { b }, Utc::now()).await);
    }
    let ran: Arc<Mutex<Vec<JobId>>> = Arc::default();
    let runner = |ran: Arc<Mutex<Vec<JobId>>>| {
        let config = RunnerConfig { workers: 2, poll: Duration::from_millis(20), ..RunnerConfig::default() };
        Runner::new(pool.clone(), config)
            .handle(
                KIND,
                Arc::new(move |work: Work| {
                    let ran = ran.clone();
                    Box::pin(async move {
                        ran.lock().unwrap().push(work.claim.id);
                        Ok(Ending::Succeeded)
                    })
                }),
            )
            .start()
    };
    let (one, two) = (runner(ran.clone()), runner(ran.clone()));

    let check = pool.clone();
    until("every job succeeded", || {
        let (check, queued) = (check.clone(), queued.clone());
        async move {
            for (i, id) in queued.iter().enumerate() {
                if job(&check, if i % 3 == 0 { a } else { b }, *id).await.state != JobState::Succeeded {
                    return false;
                }
            }
            true
        }
    })
    .await;
    one.shutdown().await;
    two.shutdown().await;

    let mut ran = ran.lock().unwrap().clone();
    ran.sort();
    queued.sort();
    assert_eq!(ran, queued, "each job ran exactly once");
}

#[tokio::test]
async fn a_dead_runners_job_is_claimed_again_after_its_lease_and_the_dead_runner_can_change_nothing() {
    let db = TestDb::new().await;
    let pool = db.app_pool(4).await;
    let (a, _) = tenants(&pool).await;
    let t0 = Utc::now();
    let id = enqueue(&pool, a, t0).await;
    let dead = jobs::claim(&pool, &[KIND], t0, LEASE).await.unwrap().expect("a claim");
    assert_eq!(dead.attempt, 1);

    let during = jobs::claim(&pool, &[KIND], t0 + chrono::Duration::seconds(29), LEASE).await.unwrap();
    assert!(during.is_none(), "a job under a live lease is not claimed");
    let after = t0 + chrono::Duration::seconds(31);
    let again = jobs::claim(&pool, &[KIND], after, LEASE).await.unwrap().expect("the job again");
    assert_eq!((again.id, again.attempt), (id, 2));

    let mut tx = pool.begin_tenant(a, None).await.unwrap();
    let step = Progress { done: 99, ..Progress::default() };
    assert_eq!(jobs::checkpoint(&mut tx, &dead, step, after, LEASE).await.unwrap(), Lease::Lost);
    tx.rollback().await.unwrap();
    assert_eq!(finish(&pool, &dead, Ending::Succeeded, after).await, None);
    assert_eq!(job(&pool, a, id).await.state, JobState::Running, "the dead runner's ending is ignored");
    assert_eq!(finish(&pool, &again, Ending::Succeeded, after).await, Some(JobState::Succeeded));
    assert_eq!(job(&pool, a, id).await.done, 0, "the dead runner's progress was not recorded");
}

#[tokio::test]
async fn a_job_whose_runner_died_on_its_last_attempt_fails_instead_of_running_again() {
    let db = TestDb::new().await;
    let pool = db.app_pool(4).await;
    let (a, _) = tenants(&pool).await;
    let mut now = Utc::now();
    let id = enqueue(&pool, a, now).await;
    for _ in 0..3 {
        assert!(jobs::claim(&pool, &[KIND], now, LEASE).await.unwrap().is_some());
        now += chrono::Duration::seconds(31);
    }

    assert!(jobs::claim(&pool, &[KIND], now, LEASE).await.unwrap().is_none());
    let job = job(&pool, a, id).await;
    assert_eq!((job.state, job.attempts), (JobState::Failed, 3));
}

#[tokio::test]
async fn claims_alternate_between_tenants_however_many_jobs_one_of_them_queued() {
    let db = TestDb::new().await;
    let pool = db.app_pool(4).await;
    let (a, b) = tenants(&pool).await;
    let t0 = Utc::now();
    let mut a_jobs = Vec::new();
    for i in 0..3 {
        a_jobs.push(enqueue(&pool, a, t0 + chrono::Duration::milliseconds(i)).await);
    }
    let b_job = enqueue(&pool, b, t0 + chrono::Duration::milliseconds(10)).await;

    // One runner slot, each job finished before the next claim: B is served second although
    // A's jobs were all queued first.
    let mut order = Vec::new();
    let mut now = t0 + chrono::Duration::seconds(1);
    while let Some(claim) = jobs::claim(&pool, &[KIND], now, LEASE).await.unwrap() {
        order.push(claim.id);
        finish(&pool, &claim, Ending::Succeeded, now).await;
        now += chrono::Duration::seconds(1);
    }
    assert_eq!(order, vec![a_jobs[0], b_job, a_jobs[1], a_jobs[2]]);
}

#[tokio::test]
async fn a_tenant_with_a_running_job_waits_behind_a_tenant_with_none() {
    let db = TestDb::new().await;
    let pool = db.app_pool(4).await;
    let (a, b) = tenants(&pool).await;
    let t0 = Utc::now();
    let first = enqueue(&pool, a, t0).await;
    let second = enqueue(&pool, a, t0).await;
    let b_job = enqueue(&pool, b, t0 + chrono::Duration::seconds(1)).await;
    let now = t0 + chrono::Duration::seconds(2);

    // A's first job is still running when the next claim comes: B's job goes first, though
    // A's second was queued before it.
    let c1 = jobs::claim(&pool, &[KIND], now, LEASE).await.unwrap().unwrap();
    let c2 = jobs::claim(&pool, &[KIND], now, LEASE).await.unwrap().unwrap();
    let c3 = jobs::claim(&pool, &[KIND], now, LEASE).await.unwrap().unwrap();
    assert_eq!((c1.id, c2.id, c3.id), (first, b_job, second));
}

#[tokio::test]
async fn a_failed_attempt_is_retried_after_its_backoff_until_the_attempts_run_out() {
    let db = TestDb::new().await;
    let pool = db.app_pool(4).await;
    let (a, _) = tenants(&pool).await;
    let mut now = Utc::now();
    let id = enqueue(&pool, a, now).await;
    for attempt in 1..=3 {
        let claim = jobs::claim(&pool, &[KIND], now, LEASE).await.unwrap().expect("a retry");
        assert_eq!(claim.attempt, attempt);
        let wait = jobs::backoff(attempt, Duration::from_secs(10), Duration::from_secs(3600));
        let failed = Ending::Failed { error: format!("failure {attempt}"), retry_after: wait };
        let state = finish(&pool, &claim, failed, now).await;
        let wait = chrono::Duration::from_std(wait).unwrap();
        if attempt < 3 {
            assert_eq!(state, Some(JobState::Queued));
            let early = jobs::claim(&pool, &[KIND], now + wait - chrono::Duration::seconds(1), LEASE).await.unwrap();
            assert!(early.is_none(), "claimed before its backoff ended");
        } else {
            assert_eq!(state, Some(JobState::Failed));
        }
        now += wait;
    }
    let job = job(&pool, a, id).await;
    assert_eq!((job.state, job.attempts, job.last_error.as_deref()), (JobState::Failed, 3, Some("failure 3")));
    assert!(jobs::claim(&pool, &[KIND], now, LEASE).await.unwrap().is_none());
    assert_eq!(jobs::backoff(1, Duration::from_secs(10), Duration::from_secs(25)), Duration::from_secs(10));
    assert_eq!(jobs::backoff(3, Duration::from_secs(10), Duration::from_secs(25)), Duration::from_secs(25));
}

#[tokio::test]
async fn cancel_stops_a_running_job_at_its_next_checkpoint_keeping_what_it_committed() {
    let db = TestDb::new().await;
    let pool = db.app_pool(6).await;
    let (a, _) = tenants(&pool).await;
    let id = enqueue(&pool, a, Utc::now()).await;
    // The test hands out batches one by one, so it knows where the job is.
    let batches = Arc::new(Semaphore::new(0));
    let gate = batches.clone();
    let config = RunnerConfig { workers: 1, poll: Duration::from_millis(20), ..RunnerConfig::default() };
    let running = Runner::new(pool.clone(), config)
        .handle(
            KIND,
            Arc::new(move |mut work: Work| {
                let gate = gate.clone();
                Box::pin(async move {
                    for done in 1..=10 {
                        gate.acquire().await.map_err(|e| e.to_string())?.forget();
                        let tx = work.begin().await.map_err(|e| e.to_string())?;
                        let step = Progress { total: Some(10), done, ..Progress::default() };
                        match work.checkpoint(tx, step).await.map_err(|e| e.to_string())? {
                            Next::Continue => {}
                            Next::Cancel => return Ok(Ending::Cancelled),
                            Next::Stop | Next::Lost => return Ok(Ending::Released),
                        }
                    }
                    Ok(Ending::Succeeded)
                })
            }),
        )
        .start();

    batches.add_permits(2);
    until("two batches are committed", || async { job(&pool, a, id).await.done == 2 }).await;
    let mut tx = pool.begin_tenant(a, None).await.unwrap();
    assert_eq!(jobs::cancel(&mut tx, id, Utc::now()).await.unwrap(), Some(JobState::Running));
    tx.commit().await.unwrap();
    batches.add_permits(1);
    until("the job is cancelled", || async { job(&pool, a, id).await.state == JobState::Cancelled }).await;
    running.shutdown().await;

    let job = job(&pool, a, id).await;
    assert_eq!((job.done, job.total), (3, Some(10)), "the batch in flight commits, and no other");
    assert!(job.finished_at.is_some());
}

#[tokio::test]
async fn a_queued_job_is_cancelled_at_once_and_never_claimed() {
    let db = TestDb::new().await;
    let pool = db.app_pool(4).await;
    let (a, _) = tenants(&pool).await;
    let now = Utc::now();
    let id = enqueue(&pool, a, now).await;
    let mut tx = pool.begin_tenant(a, None).await.unwrap();
    assert_eq!(jobs::cancel(&mut tx, id, now).await.unwrap(), Some(JobState::Cancelled));
    tx.commit().await.unwrap();
    assert!(jobs::claim(&pool, &[KIND], now, LEASE).await.unwrap().is_none());
}

#[tokio::test]
async fn a_shutdown_puts_a_running_job_back_in_the_queue_without_spending_an_attempt() {
    let db = TestDb::new().await;
    let pool = db.app_pool(6).await;
    let (a, _) = tenants(&pool).await;
    let id = enqueue(&pool, a, Utc::now()).await;
    let started = Arc::new(Semaphore::new(0));
    let signal = started.clone();
    let config = RunnerConfig { workers: 1, poll: Duration::from_millis(20), ..RunnerConfig::default() };
    let running = Runner::new(pool.clone(), config)
        .handle(
            KIND,
            Arc::new(move |mut work: Work| {
                let signal = signal.clone();
                Box::pin(async move {
                    signal.add_permits(1);
                    loop {
                        let tx = work.begin().await.map_err(|e| e.to_string())?;
                        match work
                            .checkpoint(tx, Progress { done: 1, ..Progress::default() })
                            .await
                            .map_err(|e| e.to_string())?
                        {
                            Next::Continue => tokio::task::yield_now().await,
                            Next::Cancel => return Ok(Ending::Cancelled),
                            Next::Stop | Next::Lost => return Ok(Ending::Released),
                        }
                    }
                })
            }),
        )
        .start();
    started.acquire().await.unwrap().forget();

    running.shutdown().await;

    let job = job(&pool, a, id).await;
    assert_eq!((job.state, job.attempts, job.done), (JobState::Queued, 0, 1));
    let claim = jobs::claim(&pool, &[KIND], Utc::now(), LEASE).await.unwrap().expect("claimable at once");
    assert_eq!(claim.attempt, 1);
}

#[tokio::test]
async fn a_tenant_neither_sees_nor_cancels_another_tenants_jobs_and_nobody_without_a_tenant_sees_any() {
    let db = TestDb::new().await;
    let pool = db.app_pool(4).await;
    let (a, b) = tenants(&pool).await;
    let id = enqueue(&pool, a, Utc::now()).await;

    let mut tx = pool.begin_tenant(b, None).await.unwrap();
    assert_eq!(jobs::get(&mut tx, id).await.unwrap(), None);
    assert_eq!(jobs::cancel(&mut tx, id, Utc::now()).await.unwrap(), None);
    let smuggled = sqlx::query(
        "insert into app.jobs (organization_id, id, kind, max_attempts, run_after, created_at)
         values ($1, $2, 'test_job', 1, now(), now())",
    )
    .bind(a.as_uuid())
    .bind(JobId::new().as_uuid())
    .execute(tx.conn())
    .await;
    assert_eq!(crate::sqlstate(smuggled), "42501", "B cannot queue a job for A");
    tx.rollback().await.unwrap();

    let mut bare = db.app_user().await;
    let seen: i64 = sqlx::query_scalar("select count(*) from app.jobs").fetch_one(&mut bare).await.unwrap();
    assert_eq!(seen, 0);
    assert_eq!(job(&pool, a, id).await.state, JobState::Queued);
}
