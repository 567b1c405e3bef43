//! What row-level security costs: a tenant's audit page and its count read as `app_user`
//! through a [`mos_db::TenantTx`], against the same statements in the same transaction shape
//! as the administrator, whom RLS does not apply to. And whether that read stays as fast with
//! ten thousand tenants as with ten.

use std::sync::Arc;
use std::time::Duration;

use mos_db::{audit, AppPool};
use mos_domain::OrgId;
use rand::Rng;
use sqlx::{Executor, PgPool};

use super::measure::{self, Run};

pub const COUNT: &str = "select count(*) from app.audit_logs where organization_id = $1";
const PAGE: i64 = 21;

/// The ids of the organizations whose slug starts with `prefix`, in creation order.
pub async fn tenants(admin: &PgPool, prefix: &str) -> anyhow::Result<Vec<OrgId>> {
    let ids: Vec<uuid::Uuid> =
        sqlx::query_scalar("select id from app.organizations where slug like $1 || '%' order by id")
            .bind(prefix)
            .fetch_all(admin)
            .await?;
    ids.into_iter().map(|id| Ok(OrgId::from_uuid(id)?)).collect()
}

/// The page (the list's statement with no filter) and the count, fetched alike on both sides so
/// that only row-level security differs.
async fn page_and_count(conn: &mut sqlx::PgConnection, org: OrgId) -> anyhow::Result<()> {
    let page = audit::search_sql(&audit::Filter::default());
    sqlx::query(&page).bind(org.as_uuid()).bind(PAGE).fetch_all(&mut *conn).await?;
    let _: i64 = sqlx::query_scalar(COUNT).bind(org.as_uuid()).fetch_one(&mut *conn).await?;
    Ok(())
}

/// `op` on a random one of `tenants`, by `clients` clients for `duration`.
async fn reads<F, Fut>(tenants: Arc<Vec<OrgId>>, clients: usize, duration: Duration, op: F) -> anyhow::Result<Run>
where
    F: Fn(OrgId) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    measure::drive(clients, duration, None, move |_, _| op(tenants[rand::thread_rng().gen_range(0..tenants.len())]))
        .await
}

/// The page and the count as `app_user`, in the tenant's transaction.
pub async fn with_rls(
    pool: &AppPool,
    tenants: Arc<Vec<OrgId>>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let pool = pool.clone();
    reads(tenants, clients, duration, move |org| {
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin_tenant(org, None).await?;
            page_and_count(tx.conn(), org).await?;
            Ok(tx.commit().await?)
        }
    })
    .await
}

/// The same statements and transaction shape as the administrator, past RLS.
pub async fn without_rls(
    admin: &PgPool,
    tenants: Arc<Vec<OrgId>>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let admin = admin.clone();
    reads(tenants, clients, duration, move |org| {
        let admin = admin.clone();
        async move {
            let mut tx = admin.begin().await?;
            tx.execute(format!("set local app.current_tenant_id = '{org}'").as_str()).await?;
            page_and_count(&mut tx, org).await?;
            Ok(tx.commit().await?)
        }
    })
    .await
}
