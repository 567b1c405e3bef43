//! Through a real transaction pooler: PgBouncer in transaction mode hands each transaction to
//! whichever server connection is free, so anything set for a session leaks to the next client
//! of that server connection. The request context is `SET LOCAL`, which ends with its
//! transaction; these tests show the difference on a real PgBouncer.
//!
//! The statements of these tests are unnamed: PgBouncer before 1.21 (Debian 12 ships 1.18)
//! cannot follow named prepared statements, which `sqlx` uses for every repository query, from
//! one server connection to the next. Behind a transaction pooler, `mos` needs PgBouncer 1.22 or
//! newer with `max_prepared_statements` set (see docs/scaling.md); what is tested here is that
//! the request context itself (`TenantTx`, `SET LOCAL`, RLS) holds there.

use std::collections::HashSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::time::Duration;

use mos_db::testing::{requires, Backend, TestDb};
use mos_db::PgConnectOptions;
use mos_db::{audit, AppPool, AppPoolOptions};
use mos_domain::OrgId;
use sqlx::{Connection, Row};

use crate::{new_org, new_user};

/// Server connections behind the database `pooled`; the clients are more.
const SERVER_CONNECTIONS: usize = 3;

/// Why the pooler tests do not run on Citus (its run leaves out `pooler::` by name): there the
/// tenant reaches the workers through a session setting of each server connection
/// (`citus.propagate_set_commands`), which a transaction pooler cannot keep, so the pooler
/// belongs in front of each node's own connections, not of mos's.
const NOT_ON_CITUS: &str =
    "a transaction pooler in front of the coordinator drops the session setting that carries the tenant to the workers";

/// A PgBouncer in transaction mode in front of the test's database: `pooled` with a few server
/// connections, `single` with one, so that its clients take turns on the same one.
struct Bouncer {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pgbouncer_binary() -> PathBuf {
    let candidates = [std::env::var_os("PGBOUNCER").map(PathBuf::from), Some(PathBuf::from("/usr/sbin/pgbouncer"))];
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("pgbouncer"));
    candidates
        .into_iter()
        .flatten()
        .chain(on_path)
        .find(|p| p.is_file())
        .expect("PgBouncer for the pooler tests: apt-get install pgbouncer (or set PGBOUNCER); scripts/test installs it as root")
}

impl Bouncer {
    async fn start(db: &TestDb) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // PgBouncer refuses to run as root; then it runs as the server's user, which must be
        // able to write its log here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (socket, server_port) = db.socket();
        let users = dir.path().join("users.txt");
        std::fs::write(&users, "\"app_user\" \"\"\n").unwrap();
        let ini = dir.path().join("pgbouncer.ini");
        let server = format!("host={} port={server_port} dbname={}", socket.display(), db.name);
        std::fs::write(
            &ini,
            format!(
                "[databases]\npooled = {server} pool_size={SERVER_CONNECTIONS}\nsingle = {server} pool_size=1\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {}\npool_mode = transaction\nmax_client_conn = 500\n\
                 ignore_startup_parameters = extra_float_digits,options\nlogfile = {}\n",
                users.display(),
                dir.path().join("pgbouncer.log").display()
            ),
        )
        .unwrap();
        for file in [&users, &ini] {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let mut command = std::process::Command::new(pgbouncer_binary());
        if std::fs::metadata("/proc/self").unwrap().uid() == 0 {
            command.args(["-u", "postgres"]);
        }
        let child = command.arg(&ini).stdout(std::process::Stdio::null()).spawn().expect("starting pgbouncer");
        let bouncer = Self { child, port, dir };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return bouncer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(bouncer.dir.path().join("pgbouncer.log"));
        panic!("pgbouncer did not listen; its log: {log:?}");
    }

    /// As `app_user`, through the pooler.
    fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass().host("127.0.0.1").port(self.port).username("app_user").database(database)
    }
}

#[tokio::test]
async fn many_clients_on_few_server_connections_never_see_another_tenants_rows() {
    requires(Backend::Postgres, NOT_ON_CITUS);
    let db = TestDb::new().await;
    let direct = db.app_pool(2).await;
    let mut orgs: Vec<OrgId> = Vec::new();
    for i in 0..4 {
        let admin = new_user(&direct, &format!("admin{i}@example.com")).await;
        orgs.push(new_org(&direct, &format!("tenant-{i}"), admin).await);
    }
    let bouncer = Bouncer::start(&db).await;
    let clients = 16;
    let pool = AppPool::connect(AppPoolOptions {
        connect: bouncer.options("pooled"),
        set_role: false,
        max_connections: clients,
    })
    .await
    .unwrap();

    let work = (0..clients as usize).map(|client| {
        let (pool, orgs) = (pool.clone(), orgs.clone());
        tokio::spawn(async move {
            let mut servers = HashSet::new();
            for round in 0..25 {
                let org = orgs[(client + round) % orgs.len()];
                let mut tx = pool.begin_tenant(org, None).await.unwrap();
                sqlx::query(&audit::tenant_insert_sql())
                    .persistent(false)
                    .bind(org.as_uuid())
                    .bind(uuid::Uuid::now_v7())
                    .bind(None::<uuid::Uuid>)
                    .bind("doc.viewed")
                    .bind("document")
                    .bind(None::<String>)
                    .bind("success")
                    .bind(None::<sqlx::types::ipnetwork::IpNetwork>)
                    .bind(None::<String>)
                    .bind(None::<String>)
                    .bind(sqlx::types::Json(serde_json::json!({})))
                    .bind(sqlx::types::Json(serde_json::json!({})))
                    .execute(tx.conn())
                    .await
                    .unwrap();
                // RLS alone, with no filter of ours: only the transaction's tenant is visible.
                let seen: Vec<uuid::Uuid> = sqlx::query_scalar("select organization_id from app.audit_logs")
                    .persistent(false)
                    .fetch_all(tx.conn())
                    .await
                    .unwrap();
                let foreign = seen.iter().filter(|o| **o != org.as_uuid()).count();
                assert_eq!(foreign, 0, "client {client} round {round} saw {foreign} rows of other tenants");
                assert!(!seen.is_empty());
                let server: i32 =
                    sqlx::query_scalar("select pg_backend_pid()").persistent(false).fetch_one(tx.conn()).await.unwrap();
                servers.insert(server);
                tx.commit().await.unwrap();
            }
            servers
        })
    });
    let servers: HashSet<i32> = futures::future::join_all(work).await.into_iter().flat_map(|r| r.unwrap()).collect();
    assert!(servers.len() <= SERVER_CONNECTIONS, "{} clients shared {} server connections", clients, servers.len());

    let mut su = db.superuser().await;
    let per_tenant: Vec<i64> = sqlx::query_scalar(
        "select count(*) from app.audit_logs where action = 'doc.viewed' group by organization_id order by 1",
    )
    .fetch_all(&mut su)
    .await
    .unwrap();
    assert_eq!(per_tenant, [100, 100, 100, 100], "every write landed in its own tenant");
}

/// The row count of `app.user_organizations` as the connection's current context sees it.
async fn visible_memberships(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::raw_sql("select count(*) from app.user_organizations").fetch_one(conn).await.unwrap().get(0)
}

#[tokio::test]
async fn a_session_set_leaks_to_the_next_client_and_set_local_does_not() {
    requires(Backend::Postgres, NOT_ON_CITUS);
    let db = TestDb::new().await;
    let direct = db.app_pool(1).await;
    let admin = new_user(&direct, "admin@example.com").await;
    let org = new_org(&direct, "acme", admin).await;
    let bouncer = Bouncer::start(&db).await;
    let mut alice = sqlx::PgConnection::connect_with(&bouncer.options("single")).await.unwrap();
    let mut mallory = sqlx::PgConnection::connect_with(&bouncer.options("single")).await.unwrap();
    assert_eq!(visible_memberships(&mut mallory).await, 0, "no tenant, no rows");

    // The wrong way: a session setting stays on the server connection after Alice's statement,
    // and the pooler hands that connection to Mallory next.
    sqlx::raw_sql(&format!("set app.current_tenant_id = '{org}'")).execute(&mut alice).await.unwrap();
    assert_eq!(visible_memberships(&mut mallory).await, 1, "the session SET leaked Alice's tenant to Mallory");
    sqlx::raw_sql("reset app.current_tenant_id").execute(&mut alice).await.unwrap();

    // Our way: SET LOCAL, in its own message, inside the transaction that uses it.
    sqlx::raw_sql("begin").execute(&mut alice).await.unwrap();
    sqlx::raw_sql(&format!("set local app.current_tenant_id = '{org}'")).execute(&mut alice).await.unwrap();
    assert_eq!(visible_memberships(&mut alice).await, 1);
    sqlx::raw_sql("commit").execute(&mut alice).await.unwrap();
    assert_eq!(visible_memberships(&mut mallory).await, 0, "the context ended with Alice's transaction");
}
