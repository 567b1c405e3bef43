//! CPU-bound work of a request (comparing two long versions, say) runs here: on the blocking
//! threads, never on the async workers that answer every other request, and a few jobs at a
//! time, so that however many such requests arrive, `/healthz`, sign-in and reads keep their
//! share of the processor.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::ApiError;

/// At most this many jobs at once; a job that finds them all taken waits its turn, up to a
/// bounded time.
#[derive(Clone)]
pub struct Heavy {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl Heavy {
    pub fn new(jobs: usize, wait: Duration) -> Self {
        Self { permits: Arc::new(Semaphore::new(jobs.max(1))), wait }
    }

    /// Runs `job` off the async workers once a slot is free; 503 with `Retry-After` when none
    /// frees up within the wait. A request that ends early (its client left, its deadline
    /// passed) does not end its job: the job keeps its slot until it returns, so that the bound
    /// holds for the work actually running, not for the requests still waiting on it.
    pub async fn run<T, F>(&self, job: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| ApiError::Busy)?
            .map_err(|e| ApiError::Internal(Box::new(e)))?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _slot = permit;
            span.in_scope(job)
        })
        .await
        .map_err(|e| ApiError::Internal(Box::new(e)))
    }
}

/// Jobs at once by default: every core but one, so that one is always left to the async
/// workers; one on a machine of one or two cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}
