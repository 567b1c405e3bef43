use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool, Postgres, Transaction};

use crate::{DbError, LookupTx, Result, TenantTx, UserTx};
use mos_domain::{OrgId, UserId};

/// How the application pool reaches `app_user`.
#[derive(Debug, Clone)]
pub struct AppPoolOptions {
    pub connect: PgConnectOptions,
    /// Log in as another role and `SET ROLE app_user` on every new connection. Only for servers
    /// where `app_user` cannot log in itself: a session that started as a more powerful role
    /// could switch back, so logging in as `app_user` is the stronger setup.
    pub set_role: bool,
    pub max_connections: u32,
}

/// The pool every request runs on. It only hands out transactions that carry a request
/// context, so no code path can query tenant tables without naming the tenant first.
#[derive(Clone, Debug)]
pub struct AppPool {
    pool: PgPool,
    /// Milliseconds since `epoch` at which every connection made before became useless (the
    /// server restarted); 0 while that never happened.
    invalidated_at: Arc<AtomicU64>,
    epoch: Instant,
}

/// How long a request waits for a connection before it is told the service is unavailable:
/// short, so that while the database is away requests fail fast instead of queueing.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

impl AppPool {
    /// Connects, after proving on a first connection that the role is subject to RLS. Every
    /// later connection of the pool is checked again before use.
    pub async fn connect(options: AppPoolOptions) -> Result<Self> {
        let set_role = options.set_role;
        let mut first = PgConnection::connect_with(&options.connect).await?;
        prepare(&mut first, set_role).await?;
        first.close().await?;
        let invalidated_at = Arc::new(AtomicU64::new(0));
        let epoch = Instant::now();
        let stale_after = Arc::clone(&invalidated_at);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A connection made before the server restarted is dead: close it unused, with no
            // round trip, rather than fail a request with it.
            .before_acquire(move |_conn, meta| {
                let invalidated = stale_after.load(Ordering::Relaxed);
                let born = epoch.elapsed().saturating_sub(meta.age).as_millis() as u64;
                Box::pin(async move { Ok(invalidated == 0 || born > invalidated) })
            })
            // A ping before every acquire is a round trip per request; a connection that broke
            // fails its first statement instead, and the pool discards it.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                Box::pin(
                    async move { prepare(conn, set_role).await.map_err(|e| sqlx::Error::Configuration(Box::new(e))) },
                )
            })
            .connect_with(options.connect)
            .await?;
        Ok(Self { pool, invalidated_at, epoch })
    }

    /// Every connection open now is dead (the server restarted): none is handed out again.
    pub fn invalidate(&self) {
        let now = (self.epoch.elapsed().as_millis() as u64).max(1);
        self.invalidated_at.store(now, Ordering::Relaxed);
    }

    /// Opens a transaction scoped to one tenant (and the acting user, when known).
    pub async fn begin_tenant(&self, org: OrgId, actor: Option<UserId>) -> Result<TenantTx> {
        TenantTx::begin(&self.pool, org, actor).await.map_err(unwrap_configuration)
    }

    /// Opens a transaction scoped to one user's private rows.
    pub async fn begin_user(&self, user: UserId) -> Result<UserTx> {
        UserTx::begin(&self.pool, user).await.map_err(unwrap_configuration)
    }

    /// Opens a transaction with no context, for redeeming a token before the user is known.
    pub async fn begin_lookup(&self) -> Result<LookupTx> {
        LookupTx::begin(&self.pool).await.map_err(unwrap_configuration)
    }

    /// Readiness: can a connection be had and used within `limit`?
    pub async fn ping(&self, limit: Duration) -> Result<()> {
        match tokio::time::timeout(limit, self.pool.execute("select 1")).await {
            Ok(done) => done.map(|_| ()).map_err(unwrap_configuration),
            Err(_) => Err(DbError::Sqlx(sqlx::Error::PoolTimedOut)),
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction with no request context: it sees no table rows, so it is only good for
    /// the SECURITY DEFINER lookups and for audit records about no known account. A transaction
    /// even for one statement: behind a transaction pooler (PgBouncer's transaction mode), only
    /// a transaction keeps a statement's parse, bind and execute on one server connection.
    pub(crate) async fn bare(&self) -> sqlx::Result<Transaction<'static, Postgres>> {
        self.pool.begin().await
    }
}

/// Switches to `app_user` when asked, then refuses a role that RLS would not apply to.
async fn prepare(conn: &mut PgConnection, set_role: bool) -> Result<()> {
    if set_role {
        conn.execute("set role app_user").await?;
    }
    // Citus forwards `SET LOCAL` (how TenantTx sets the tenant) to its workers only with this;
    // on plain PostgreSQL it is an inert placeholder setting.
    conn.execute("set citus.propagate_set_commands = 'local'").await?;
    // `current_user` is the role RLS evaluates, after any SET ROLE. In a transaction, like every
    // statement of this pool, and unnamed (it runs once), so that a transaction pooler keeps it
    // on one server connection and no other client's statement names collide with it.
    let mut tx = conn.begin().await?;
    let (role, superuser, bypass): (String, bool, bool) =
        sqlx::query_as("select rolname::text, rolsuper, rolbypassrls from pg_roles where rolname = current_user")
            .persistent(false)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    let why = match (superuser, bypass) {
        (true, _) => "is a superuser",
        (false, true) => "bypasses row-level security",
        (false, false) => return Ok(()),
    };
    Err(DbError::UnsafeAppRole { role, why })
}

/// Turns the refusal raised inside `after_connect` back into our own error.
fn unwrap_configuration(e: sqlx::Error) -> DbError {
    match e {
        sqlx::Error::Configuration(inner) => match inner.downcast::<DbError>() {
            Ok(db) => *db,
            Err(other) => DbError::Sqlx(sqlx::Error::Configuration(other)),
        },
        other => other.into(),
    }
}
