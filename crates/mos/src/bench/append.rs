//! What hash-chaining costs an audit append: the same records appended to `app.audit_logs` with
//! a sealer chaining them as `serve` does, and to a plain copy of the table under the same RLS
//! policies with nothing chaining it; for one tenant with many writers and for many tenants with
//! one writer each. Every append is its own transaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mos_db::{audit, chain, AppPool};
use mos_domain::{AuditAction, AuditEvent, OrgId, ResourceType, UserId};
use sqlx::PgConnection;

use super::measure::{self, Run};

const PLAIN_TABLE: &str = "
create table public.bench_plain (like app.audit_logs including defaults including constraints including indexes);
alter table public.bench_plain enable row level security;
alter table public.bench_plain force row level security;
create policy tenant_read on public.bench_plain for select using (organization_id = app.current_tenant_id());
create policy tenant_append on public.bench_plain for insert with check (organization_id = app.current_tenant_id());
grant select, insert on public.bench_plain to app_user;
";

const PLAIN_INSERT: &str = "insert into public.bench_plain
    (organization_id, id, actor_user_id, action, resource_type, resource_id, outcome, changes, metadata)
    values ($1, $2, $3, $4, $5, $6, 'success', '{}', $7)";

const ACTION: AuditAction = AuditAction::known("document.updated");
const RESOURCE: ResourceType = ResourceType::known("document");

/// Creates the plain table beside the real one.
pub async fn prepare(admin: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::raw_sql(PLAIN_TABLE).execute(admin).await?;
    Ok(())
}

/// Plain appends by `writers` writers, writer `w` to `tenants[w % len]`.
pub async fn plain(
    pool: &AppPool,
    tenants: Arc<Vec<OrgId>>,
    writers: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    appends(pool, tenants, writers, duration, false).await
}

/// Chained appends, with a sealer sweeping every second as in `serve`; also how long the sealer
/// needed after the run to have chained everything.
pub async fn chained(
    pool: &AppPool,
    tenants: Arc<Vec<OrgId>>,
    writers: usize,
    duration: Duration,
) -> anyhow::Result<(Run, Duration)> {
    let sealer = tokio::spawn(crate::audit_cmd::seal_continuously(pool.clone()));
    let run = appends(pool, tenants, writers, duration, true).await;
    sealer.abort();
    let ended = Instant::now();
    while chain::seal(pool, None, chain::WINDOW).await?.sealed > 0 {}
    Ok((run?, ended.elapsed()))
}

async fn appends(
    pool: &AppPool,
    tenants: Arc<Vec<OrgId>>,
    writers: usize,
    duration: Duration,
    chained: bool,
) -> anyhow::Result<Run> {
    let pool = pool.clone();
    let actor = UserId::new();
    measure::drive(writers, duration, None, move |w, n| {
        let (pool, org) = (pool.clone(), tenants[w % tenants.len()]);
        async move {
            let mut tx = pool.begin_tenant(org, Some(actor)).await?;
            if chained {
                let event =
                    AuditEvent::new(ACTION, RESOURCE).actor(actor).resource_id(n).meta("n", serde_json::json!(n));
                audit::record(&mut tx, &event).await?;
            } else {
                sqlx::query(PLAIN_INSERT)
                    .bind(org.as_uuid())
                    .bind(uuid::Uuid::now_v7())
                    .bind(actor.as_uuid())
                    .bind(ACTION.as_str())
                    .bind(RESOURCE.as_str())
                    .bind(n.to_string())
                    .bind(sqlx::types::Json(serde_json::json!({ "n": n })))
                    .execute(tx.conn())
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        }
    })
    .await
}
