//! The background jobs `serve` runs (docs/jobs.md): one handler per job kind.

use std::sync::Arc;

use mos_db::audiences::import::{self, IMPORT_JOB};
use mos_db::jobs::runner::{Runner, RunnerConfig, Work};
use mos_db::AppPool;
use mos_domain::audiences::AddressKeyer;

pub fn runner(pool: AppPool, config: RunnerConfig, keys: Arc<dyn AddressKeyer>) -> Runner {
    Runner::new(pool, config).handle(
        IMPORT_JOB,
        Arc::new(move |work: Work| {
            let keys = keys.clone();
            Box::pin(import::run(work, keys))
        }),
    )
}
