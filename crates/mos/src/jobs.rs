//! The background jobs `serve` runs (docs/jobs.md): one handler per job kind.

use std::sync::Arc;

use mos_db::audiences::import::{self, IMPORT_JOB};
use mos_db::campaigns::SEND_JOB;
use mos_db::jobs::runner::{Runner, RunnerConfig, Work};
use mos_db::webhooks::WEBHOOK_JOB;
use mos_db::AppPool;
use mos_domain::audiences::AddressKeyer;
use mos_http::sending::{self, Outbox};
use mos_http::webhooks::{self, Deliverer};

/// The runner with the import handler, the webhook deliverer's when given, and the campaign
/// sender's when this server can send (`outbox`); without it, launched campaigns wait for a
/// server that can.
pub fn runner(
    pool: AppPool,
    config: RunnerConfig,
    keys: Arc<dyn AddressKeyer>,
    outbox: Option<Arc<Outbox>>,
    deliverer: Option<Arc<Deliverer>>,
) -> Runner {
    let mut runner = Runner::new(pool, config).handle(
        IMPORT_JOB,
        Arc::new(move |work: Work| {
            let keys = keys.clone();
            Box::pin(import::run(work, keys))
        }),
    );
    if let Some(deliverer) = deliverer {
        runner = runner.handle(
            WEBHOOK_JOB,
            Arc::new(move |work: Work| {
                let deliverer = deliverer.clone();
                Box::pin(webhooks::run(work, deliverer))
            }),
        );
    }
    match outbox {
        Some(outbox) => runner.handle(
            SEND_JOB,
            Arc::new(move |work: Work| {
                let outbox = outbox.clone();
                Box::pin(sending::run(work, outbox))
            }),
        ),
        None => runner,
    }
}
