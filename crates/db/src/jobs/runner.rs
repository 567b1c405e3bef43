//! The runner: N workers that claim jobs, run each kind's handler, keep the lease alive while
//! it runs, and record how the attempt ended. It stops gracefully: a shutdown makes every
//! worker stop claiming, and a running job stops at its next checkpoint and goes back to the
//! queue at once, its committed steps kept, without spending an attempt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_core::future::BoxFuture;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::{backoff, checkpoint, claim, finish, heartbeat, Claim, Ending, JobKind, Lease, Progress};
use crate::{AppPool, Result, TenantTx};

/// How the runner behaves; `mos serve` reads it from the settings.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Jobs run at once by this process.
    pub workers: usize,
    /// How long a claim holds without a heartbeat; a runner that dies frees its jobs this long
    /// after its last sign of life.
    pub lease: Duration,
    /// How often an idle worker looks for work made by another process.
    pub poll: Duration,
    /// The wait before the first retry of a failed attempt, doubling for each further one.
    pub retry_base: Duration,
    pub retry_cap: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            retry_base: Duration::from_secs(10),
            retry_cap: Duration::from_secs(3600),
        }
    }
}

/// What a handler answers: how the attempt ended, or why it failed (retried with backoff while
/// attempts remain). The reason is stored on the job and shown to its organization, so it
/// must not hold personal data or secrets.
pub type Outcome = std::result::Result<Ending, String>;
pub type Handler = Arc<dyn Fn(Work) -> BoxFuture<'static, Outcome> + Send + Sync>;

/// What a step's checkpoint tells the handler to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// A cancel was asked for: end with [`Ending::Cancelled`].
    Cancel,
    /// The process is shutting down: end with [`Ending::Released`].
    Stop,
    /// Another runner holds the job now; the step was rolled back. End with anything: it is
    /// ignored.
    Lost,
}

/// A claimed job in the hands of its handler.
pub struct Work {
    pub claim: Claim,
    pool: AppPool,
    lease: Duration,
    stopping: watch::Receiver<bool>,
    since: Instant,
}

impl Work {
    pub fn pool(&self) -> &AppPool {
        &self.pool
    }

    /// A transaction in the job's tenant, for one step of its work.
    pub async fn begin(&self) -> Result<TenantTx> {
        self.pool.begin_tenant(self.claim.org, None).await
    }

    /// Ends a step: records `progress` in `tx` together with the step's work and commits both,
    /// or rolls both back if the lease was lost.
    pub async fn checkpoint(&mut self, mut tx: TenantTx, progress: Progress) -> Result<Next> {
        let now = Instant::now();
        let progress = Progress { busy: now - self.since, ..progress };
        match checkpoint(&mut tx, &self.claim, progress, Utc::now(), self.lease).await? {
            Lease::Lost => {
                tx.rollback().await?;
                Ok(Next::Lost)
            }
            Lease::Held { cancel } => {
                tx.commit().await?;
                self.since = now;
                Ok(if cancel {
                    Next::Cancel
                } else if *self.stopping.borrow() {
                    Next::Stop
                } else {
                    Next::Continue
                })
            }
        }
    }
}

pub struct Runner {
    pool: AppPool,
    config: RunnerConfig,
    handlers: HashMap<&'static str, Handler>,
    wake: Arc<Notify>,
}

/// The running workers.
pub struct Running {
    workers: JoinSet<()>,
    stop: watch::Sender<bool>,
    wake: Arc<Notify>,
}

impl Running {
    /// Tells idle workers that a job was just queued in this process.
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// Stops claiming, lets running jobs reach their next checkpoint, and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.workers.join_next().await.is_some() {}
    }
}

/// Wakes the idle workers of a runner from elsewhere in the process (a request that just
/// queued a job), so the job starts now rather than at the next poll.
#[derive(Clone)]
pub struct Waker(Arc<Notify>);

impl Waker {
    pub fn wake(&self) {
        self.0.notify_waiters();
    }
}

impl Runner {
    /// What wakes this runner's workers once it is started.
    pub fn waker(&self) -> Waker {
        Waker(self.wake.clone())
    }

    pub fn new(pool: AppPool, config: RunnerConfig) -> Self {
        Self { pool, config, handlers: HashMap::new(), wake: Arc::new(Notify::new()) }
    }

    /// Runs jobs of `kind` with `handler`.
    pub fn handle(mut self, kind: JobKind, handler: Handler) -> Self {
        self.handlers.insert(kind.as_str(), handler);
        self
    }

    pub fn start(self) -> Running {
        let (stop, stopping) = watch::channel(false);
        let shared = Arc::new(self);
        let mut workers = JoinSet::new();
        for _ in 0..shared.config.workers.max(1) {
            let runner = shared.clone();
            let stopping = stopping.clone();
            workers.spawn(async move { runner.work(stopping).await });
        }
        Running { workers, stop, wake: shared.wake.clone() }
    }

    async fn work(&self, mut stopping: watch::Receiver<bool>) {
        let kinds: Vec<JobKind> = self.handlers.keys().map(|k| JobKind::new(k)).collect();
        while !*stopping.borrow() {
            match claim(&self.pool, &kinds, Utc::now(), self.config.lease).await {
                Ok(Some(claim)) => self.run(claim, stopping.clone()).await,
                Ok(None) => {
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.poll) => {}
                        _ = self.wake.notified() => {}
                        _ = stopping.changed() => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "claiming a job failed");
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.poll) => {}
                        _ = stopping.changed() => {}
                    }
                }
            }
        }
    }

    #[tracing::instrument(skip_all, fields(job = %claim.id, org = %claim.org, kind = %claim.kind, attempt = claim.attempt))]
    async fn run(&self, claim: Claim, stopping: watch::Receiver<bool>) {
        let Some(handler) = self.handlers.get(claim.kind.as_str()) else {
            // Only kinds with a handler are claimed.
            return;
        };
        let work = Work {
            claim: claim.clone(),
            pool: self.pool.clone(),
            lease: self.config.lease,
            stopping,
            since: Instant::now(),
        };
        // The handler is never dropped mid-step: a future dropped inside a `COPY` leaves its
        // pooled connection out of step with the server. Once the lease is lost the handler
        // runs on to its next checkpoint, which finds the lease gone and rolls the step back.
        let attempt = handler(work);
        tokio::pin!(attempt);
        let outcome = tokio::select! {
            outcome = &mut attempt => outcome,
            () = self.keep_alive(&claim) => {
                tracing::warn!("lost the lease; the job is another runner's now");
                let _ = attempt.await;
                return;
            }
        };
        let ending = outcome.unwrap_or_else(|error| {
            tracing::warn!(%error, "job attempt failed");
            Ending::Failed { error, retry_after: backoff(claim.attempt, self.config.retry_base, self.config.retry_cap) }
        });
        let finished = async {
            let mut tx = self.pool.begin_tenant(claim.org, None).await?;
            let state = finish(&mut tx, &claim, &ending, Utc::now()).await?;
            tx.commit().await?;
            Ok::<_, crate::DbError>(state)
        };
        match finished.await {
            Ok(Some(state)) => tracing::info!(state = state.as_str(), "job attempt ended"),
            Ok(None) => tracing::warn!("lost the lease before the attempt ended"),
            // The lease runs out and another runner takes the job over.
            Err(error) => tracing::error!(%error, "recording how a job attempt ended failed"),
        }
    }

    /// Renews the lease three times per lease period; returns once it is lost.
    async fn keep_alive(&self, claim: &Claim) {
        let every = self.config.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            match heartbeat(&self.pool, claim, Utc::now(), self.config.lease).await {
                Ok(Lease::Lost) => return,
                Ok(Lease::Held { .. }) => {}
                Err(error) => tracing::warn!(%error, "renewing a job's lease failed"),
            }
        }
    }
}
