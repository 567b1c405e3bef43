use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::watch;

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
    /// Whether the database answers, as the probe sees it.
    reach: watch::Receiver<Reach>,
    stale: Staleness,
}

/// Whether the database answers, as a probe of its own sees it: while it does not, requests
/// are refused at once instead of each waiting for a connection that cannot come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Up,
    Away,
}

/// When every connection made before became useless (the server restarted or went away).
#[derive(Debug, Clone)]
struct Staleness {
    /// Milliseconds since `epoch`; 0 while that never happened.
    since: Arc<AtomicU64>,
    epoch: Instant,
}

impl Staleness {
    fn mark(&self) {
        let now = (self.epoch.elapsed().as_millis() as u64).max(1);
        self.since.store(now, Ordering::Relaxed);
    }

    /// Whether a connection of this age is from before the mark.
    fn is_stale(&self, age: Duration) -> bool {
        let since = self.since.load(Ordering::Relaxed);
        since != 0 && self.epoch.elapsed().saturating_sub(age).as_millis() as u64 <= since
    }
}

/// How long a request waits for a busy pool before it is told the service is unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the probe asks the database, and how long it waits for an answer.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_WITHIN: Duration = Duration::from_secs(1);
/// The probe's `application_name`, so that it can be told apart in `pg_stat_activity`.
pub const PROBE_NAME: &str = "mos probe";

impl AppPool {
    /// Connects, after proving on a first connection that the role is subject to RLS. Every
    /// later connection of the pool is checked again before use. A probe of its own (one more
    /// connection) then asks the database every second whether it answers.
    pub async fn connect(options: AppPoolOptions) -> Result<Self> {
        let set_role = options.set_role;
        let mut first = PgConnection::connect_with(&options.connect).await?;
        prepare(&mut first, set_role).await?;
        let stale = Staleness { since: Arc::new(AtomicU64::new(0)), epoch: Instant::now() };
        let staleness = stale.clone();
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A connection made before the server restarted is dead: close it unused, with no
            // round trip, rather than fail a request with it.
            .before_acquire(move |_conn, meta| {
                let fresh = !staleness.is_stale(meta.age);
                Box::pin(async move { Ok(fresh) })
            })
            // A ping before every acquire is a round trip per request; a connection that broke
            // fails its first statement instead, and the pool discards it.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                Box::pin(
                    async move { prepare(conn, set_role).await.map_err(|e| sqlx::Error::Configuration(Box::new(e))) },
                )
            })
            .connect_with(options.connect.clone())
            .await?;
        first.close().await?;
        let (report, reach) = watch::channel(Reach::Up);
        tokio::spawn(probe(options.connect.application_name(PROBE_NAME), report, stale.clone()));
        Ok(Self { pool, reach, stale })
    }

    /// Every connection open now is dead (the server restarted): none is handed out again.
    pub fn invalidate(&self) {
        self.stale.mark();
    }

    /// Opens a transaction scoped to one tenant (and the acting user, when known).
    pub async fn begin_tenant(&self, org: OrgId, actor: Option<UserId>) -> Result<TenantTx> {
        Ok(TenantTx::scope(self.bare().await?, org, actor).await?)
    }

    /// Opens a transaction scoped to one user's private rows.
    pub async fn begin_user(&self, user: UserId) -> Result<UserTx> {
        Ok(UserTx::scope(self.bare().await?, user).await?)
    }

    /// Opens a transaction with no context, for redeeming a token before the user is known.
    pub async fn begin_lookup(&self) -> Result<LookupTx> {
        Ok(LookupTx::new(self.bare().await?))
    }

    /// Readiness: does the database answer, all within `limit`, and run PL/pgSQL? Every
    /// authenticated request starts with `app.request_context`, a PL/pgSQL function: the probe
    /// calls it for a session that cannot exist, so a server whose PL/pgSQL library no longer
    /// loads is not ready, though it still answers `select 1`.
    pub async fn ping(&self, limit: Duration) -> Result<()> {
        let answered = async {
            let mut tx = self.bare().await?;
            tx.execute(
                "select count(*) from app.request_context(''::bytea, null, now(), interval '0 seconds', interval '1 minute')",
            )
            .await?;
            Ok(tx.commit().await?)
        };
        tokio::time::timeout(limit, answered).await.map_err(|_| DbError::Away)?
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction with no request context: it sees no table rows, so it is only good for
    /// the SECURITY DEFINER lookups and for audit records about no known account. A transaction
    /// even for one statement: behind a transaction pooler (PgBouncer's transaction mode), only
    /// a transaction keeps a statement's parse, bind and execute on one server connection.
    ///
    /// Every transaction of the pool begins here: while the probe finds the database away it
    /// is refused at once, and a request waiting for a connection stops waiting when the probe
    /// finds out.
    pub(crate) async fn bare(&self) -> Result<Transaction<'static, Postgres>> {
        let mut reach = self.reach.clone();
        if *reach.borrow_and_update() == Reach::Away {
            return Err(DbError::Away);
        }
        tokio::select! {
            tx = self.pool.begin() => tx.map_err(unwrap_configuration),
            Ok(_) = reach.wait_for(|r| *r == Reach::Away) => Err(DbError::Away),
        }
    }
}

/// Asks the database every second, on a connection of its own, whether it answers, and
/// reports the change. When the probe's connection broke, the server went away or restarted,
/// so the pool's connections from before are dropped unused. Ends with the last `AppPool`.
async fn probe(options: PgConnectOptions, report: watch::Sender<Reach>, stale: Staleness) {
    let mut conn: Option<PgConnection> = None;
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        if report.is_closed() {
            return;
        }
        let answered = match conn.as_mut() {
            Some(c) => matches!(tokio::time::timeout(PROBE_WITHIN, c.execute("select 1")).await, Ok(Ok(_))),
            None => false,
        };
        if !answered {
            if conn.is_some() {
                stale.mark();
            }
            conn = match tokio::time::timeout(PROBE_WITHIN, PgConnection::connect_with(&options)).await {
                Ok(Ok(fresh)) => Some(fresh),
                _ => None,
            };
        }
        let now = if conn.is_some() { Reach::Up } else { Reach::Away };
        if report.send_if_modified(|reach| std::mem::replace(reach, now) != now) {
            match now {
                Reach::Away => tracing::error!("the database does not answer; requests get 503 until it does"),
                Reach::Up => tracing::warn!("the database answers again"),
            }
        }
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
