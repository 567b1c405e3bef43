//! The harness integration tests run against: one throwaway PostgreSQL cluster per test
//! process, started from the machine's binaries, and a fresh database per test cloned from a
//! migrated template. Tests of isolation connect as `app_user`, never as the superuser that
//! bypasses RLS; the superuser connection is there for arranging data and for tampering.
//!
//! With `MOS_TEST_BACKEND=citus` the cluster is a Citus coordinator with two workers, and the
//! template is migrated and then distributed with `mos db distribute`'s own code. Each node gets
//! the test's database, cloned from the same template, so that Citus finds it on every node.
#![allow(clippy::expect_used)] // A harness that cannot start its database can only fail the test.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};
use tokio::sync::OnceCell;

use crate::ops::embedded::{Cluster, PgBinaries, Tuning, SUPERUSER};
use crate::ops::{citus, migrate};
use crate::{AppPool, AppPoolOptions, APP_ROLE};

pub use crate::fixtures::campaign;

const TEMPLATE: &str = "mos_template";
/// On Citus: the extension and the nodes, but no schema yet (for tests of the migrator).
const CITUS_BASE: &str = "mos_citus_base";
const WORKERS: usize = 2;

/// Which kind of server the tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Citus,
}

/// `MOS_TEST_BACKEND=citus` selects the Citus cluster; anything else, plain PostgreSQL.
pub fn backend() -> Backend {
    match std::env::var("MOS_TEST_BACKEND").as_deref() {
        Ok("citus") => Backend::Citus,
        _ => Backend::Postgres,
    }
}

/// For a test that cannot run on the other backend: it fails there, saying why, instead of
/// passing without having run. The suites leave such tests out of that backend's run by name
/// (`--skip`), so that they are counted as filtered out, never as passed; tests that need
/// Citus are `#[ignore]`d, and run by the Citus pass's `--include-ignored`.
pub fn requires(needed: Backend, why: &str) {
    assert_eq!(backend(), needed, "this test cannot run on {:?}: {why}", backend());
}

struct Shared {
    /// The server tests connect to first; on Citus the coordinator, followed by the workers.
    nodes: Vec<Cluster>,
    /// Never dropped: their standard input stays open until the process exits, and then each
    /// watchdog stops its server and removes its directory.
    _watchdogs: Mutex<Vec<std::process::Child>>,
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();

fn scratch_dir() -> PathBuf {
    let root = tempfile::Builder::new().prefix("mos-test-").tempdir().expect("a temporary directory").keep();
    std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("temporary directory permissions");
    root
}

async fn start(cluster: Cluster, root: &Path) -> (Cluster, std::process::Child) {
    let watchdog = cluster.start_supervised(root).expect("starting a test cluster");
    cluster.wait_ready(std::time::Duration::from_secs(60)).await.expect("a test cluster accepting connections");
    (cluster, watchdog)
}

async fn superuser(cluster: &Cluster, database: &str) -> PgConnection {
    cluster.connect_options(SUPERUSER, database).connect().await.expect("a superuser connection to a test cluster")
}

async fn execute(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sql).execute(conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn shared() -> &'static Shared {
    SHARED
        .get_or_init(|| async {
            match backend() {
                Backend::Postgres => postgres().await,
                Backend::Citus => citus_cluster().await,
            }
        })
        .await
}

async fn postgres() -> Shared {
    let bin = PgBinaries::locate(std::env::var_os("PG_BIN").as_deref().map(Path::new))
        .expect("PostgreSQL server binaries for the test cluster");
    let root = scratch_dir();
    let cluster = Cluster::init(bin, &root, Tuning::Throwaway).await.expect("initdb of the test cluster");
    let (cluster, watchdog) = start(cluster, &root).await;
    cluster.ensure_database(TEMPLATE).await.expect("the template database");
    migrate::run(&mut superuser(&cluster, TEMPLATE).await).await.expect("migrating the template");
    Shared { nodes: vec![cluster], _watchdogs: Mutex::new(vec![watchdog]) }
}

/// The server binaries that have Citus installed: `PG_BIN`, or the newest
/// `/usr/lib/postgresql/*` with `lib/citus.so`.
fn citus_binaries() -> PgBinaries {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return PgBinaries::locate(Some(Path::new(&dir))).expect("PG_BIN with the PostgreSQL server binaries");
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("lib/citus.so").exists())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    versions.sort();
    let (_, dir) = versions.pop().expect("Citus in /usr/lib/postgresql/*/lib (scripts/test installs it)");
    PgBinaries::locate(Some(&dir)).expect("the PostgreSQL server binaries beside Citus")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port()
}

fn random_secret() -> String {
    use rand::Rng;
    rand::thread_rng().sample_iter(rand::distributions::Alphanumeric).take(40).map(char::from).collect()
}

/// A coordinator and two workers. The nodes reach each other on loopback with passwords that
/// only the coordinator's `pg_dist_authinfo` holds, as in production; the tests themselves
/// connect through each node's socket.
async fn citus_cluster() -> Shared {
    let bin = citus_binaries();
    let mut nodes = Vec::new();
    let mut watchdogs = Vec::new();
    for _ in 0..=WORKERS {
        let root = scratch_dir();
        let cluster = Cluster::init_citus_node(bin.clone(), &root, free_port()).await.expect("initdb of a Citus node");
        let (cluster, watchdog) = start(cluster, &root).await;
        nodes.push(cluster);
        watchdogs.push(watchdog);
    }
    let superuser_secret = random_secret();
    for node in &nodes {
        node.ensure_database(CITUS_BASE).await.expect("the base database");
        let mut conn = superuser(node, CITUS_BASE).await;
        execute(&mut conn, "create extension if not exists citus").await;
        execute(&mut conn, &format!("alter role {SUPERUSER} password '{superuser_secret}'")).await;
    }
    let mut conn = superuser(&nodes[0], CITUS_BASE).await;
    execute(
        &mut conn,
        &format!("insert into pg_dist_authinfo (nodeid, rolename, authinfo) values (0, '{SUPERUSER}', 'password={superuser_secret}')"),
    )
    .await;
    execute(&mut conn, &format!("select citus_set_coordinator_host('127.0.0.1', {})", nodes[0].port())).await;
    for worker in &nodes[1..] {
        execute(&mut conn, &format!("select citus_add_node('127.0.0.1', {})", worker.port())).await;
    }
    migrate::bootstrap(&mut conn).await.expect("the roles, on every node");
    // What an operator does once: app_user's password, for Citus to reach the workers as it.
    let app_secret = random_secret();
    execute(&mut conn, &format!("alter role {APP_ROLE} password '{app_secret}'")).await;
    execute(
        &mut conn,
        &format!("insert into pg_dist_authinfo (nodeid, rolename, authinfo) values (0, '{APP_ROLE}', 'password={app_secret}')"),
    )
    .await;
    drop(conn);
    freeze(&nodes, CITUS_BASE).await;
    clone_on_every_node(&nodes, CITUS_BASE, TEMPLATE).await;
    let mut conn = superuser(&nodes[0], TEMPLATE).await;
    migrate::run(&mut conn).await.expect("migrating the template");
    citus::distribute(&mut conn).await.expect("distributing the template");
    drop(conn);
    freeze(&nodes, TEMPLATE).await;
    Shared { nodes, _watchdogs: Mutex::new(watchdogs) }
}

/// Makes `database` a template that can be cloned: no new connections, and none left (Citus
/// keeps a maintenance daemon and cached connections in every database that uses it).
async fn freeze(nodes: &[Cluster], database: &str) {
    for node in nodes {
        let mut conn = superuser(node, "postgres").await;
        execute(&mut conn, &format!("alter database {database} with allow_connections false")).await;
        for _ in 0..200 {
            let left: i64 = sqlx::query_scalar(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
            )
            .bind(database)
            .fetch_one(&mut conn)
            .await
            .expect("ending the connections to a template");
            if left == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
}

async fn clone_on_every_node(nodes: &[Cluster], template: &str, name: &str) {
    for node in nodes {
        let mut conn = superuser(node, "postgres").await;
        execute(&mut conn, &format!("create database {name} template {template}")).await;
    }
}

const AUDIT_VECTORS: &str = include_str!("../tests/data/audit_vectors.json");
pub const AUDIT_VECTORS_SLUG: &str = "vectors";

/// Known answers for the audit chain, as an independent implementation computed them.
pub struct AuditVectors {
    pub organization_id: uuid::Uuid,
    /// The link hashes of the records in chain order, hex.
    pub hashes: Vec<String>,
    /// Hex of the Ed25519 seed that signed `checkpoint`.
    pub checkpoint_key: String,
    /// A checkpoint file of the last head, signed over the documented text.
    pub checkpoint: serde_json::Value,
}

/// A database of its own for one test.
pub struct TestDb {
    pub name: String,
    cluster: &'static Cluster,
    workers: &'static [Cluster],
}

/// Drops `name` on `node`, best effort: the disk it frees is a convenience, not what a test
/// checks. `force` ends what is still connected (a server's pool, a job runner); on Citus a
/// node's maintenance daemon can still be in the database for a moment, so a refusal is tried
/// again a few times, and a database that stays is reported and left to the cluster's removal.
async fn drop_database(node: &Cluster, name: &str) {
    let sql = format!("drop database if exists {name} with (force)");
    let mut last = None;
    for attempt in 0..5u64 {
        tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
        match sqlx::raw_sql(&sql).execute(&mut superuser(node, "postgres").await).await {
            Ok(_) => return,
            Err(e) => last = Some(e),
        }
    }
    if let Some(e) = last {
        eprintln!("the test database {name} stays until the test cluster goes: {e}");
    }
}

/// A test's database goes when the test is done, so that a suite of hundreds of tests needs the
/// disk of the few that run at once, not of all of them. A failed test's stays, to be looked into.
impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let name = std::mem::take(&mut self.name);
        let nodes: Vec<&'static Cluster> = std::iter::once(self.cluster).chain(self.workers).collect();
        // A runtime of its own: this may run on the test's runtime, which cannot block on itself.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async {
                for node in nodes {
                    drop_database(node, &name).await;
                }
            })
        });
        dropped.join().expect("dropping a test database");
    }
}

impl TestDb {
    /// A migrated database, cloned from the template.
    pub async fn new() -> Self {
        Self::create(Some(TEMPLATE)).await
    }

    /// A database with nothing in it, for testing the migrator itself.
    pub async fn empty() -> Self {
        Self::create(None).await
    }

    async fn create(template: Option<&str>) -> Self {
        let shared = shared().await;
        let name = format!("test_{}", uuid::Uuid::now_v7().simple());
        match (backend(), template) {
            (Backend::Postgres, None) => {
                execute(&mut superuser(&shared.nodes[0], "postgres").await, &format!("create database {name}")).await
            }
            (Backend::Postgres, Some(t)) => clone_on_every_node(&shared.nodes, t, &name).await,
            (Backend::Citus, t) => clone_on_every_node(&shared.nodes, t.unwrap_or(CITUS_BASE), &name).await,
        }
        Self { name, cluster: &shared.nodes[0], workers: &shared.nodes[1..] }
    }

    /// The workers of the Citus cluster (none on plain PostgreSQL).
    pub fn workers(&self) -> &'static [Cluster] {
        self.workers
    }

    /// The superuser on one worker, in this test's database: for tampering with shards.
    pub async fn worker_superuser(&self, worker: usize) -> PgConnection {
        superuser(&self.workers[worker], &self.name).await
    }

    pub fn superuser_options(&self) -> PgConnectOptions {
        self.cluster.connect_options(SUPERUSER, &self.name)
    }

    /// Where the server listens: the directory of its unix socket, and its port.
    pub fn socket(&self) -> (&Path, u16) {
        (self.cluster.pgdata(), self.cluster.port())
    }

    pub fn app_options(&self) -> PgConnectOptions {
        self.cluster.connect_options(APP_ROLE, &self.name)
    }

    /// The superuser: bypasses RLS. For arranging data and tampering, never for proving isolation.
    pub async fn superuser(&self) -> PgConnection {
        self.superuser_options().connect().await.expect("superuser connection")
    }

    /// A raw connection as `app_user` with no request context at all, set up like the
    /// application pool's connections (on Citus, `SET LOCAL` then reaches the workers).
    pub async fn app_user(&self) -> PgConnection {
        let mut conn = self.app_options().connect().await.expect("app_user connection");
        execute(&mut conn, "set citus.propagate_set_commands = 'local'").await;
        conn
    }

    /// The superuser switched to the NOLOGIN owner role, as a migration runs.
    pub async fn owner(&self) -> PgConnection {
        let mut conn = self.superuser().await;
        sqlx::raw_sql("set role mos_owner").execute(&mut conn).await.expect("set role mos_owner");
        conn
    }

    /// The PostgreSQL major version the test cluster runs.
    pub fn major(&self) -> u32 {
        self.cluster.binaries().major().expect("the test cluster's PostgreSQL version")
    }

    /// This database's schema as `docs/schema.sql` holds it ([`Cluster::schema_sql`]).
    pub async fn schema_sql(&self) -> String {
        self.cluster.schema_sql(&self.name).await.expect("pg_dump of the test database")
    }

    pub async fn app_pool(&self, max_connections: u32) -> AppPool {
        AppPool::connect(AppPoolOptions { connect: self.app_options(), set_role: false, max_connections })
            .await
            .expect("app_user pool")
    }

    /// Inserts, as the superuser, an organization and the records of `tests/data/audit_vectors.json`,
    /// whose link hashes and signed checkpoint an independent implementation of
    /// `docs/audit-chain.md` computed (`tests/data/audit_vectors.py`); the records are unsealed.
    pub async fn insert_audit_vectors(&self) -> AuditVectors {
        let vectors: serde_json::Value = serde_json::from_str(AUDIT_VECTORS).expect("audit vectors are JSON");
        let mut su = self.superuser().await;
        let org: uuid::Uuid =
            vectors["organization_id"].as_str().and_then(|s| s.parse().ok()).expect("an organization id");
        sqlx::query("insert into app.organizations (id, slug, name) values ($1, $2, 'Audit vectors')")
            .bind(org)
            .bind(AUDIT_VECTORS_SLUG)
            .execute(&mut su)
            .await
            .expect("the vectors' organization");
        for r in vectors["records"].as_array().expect("records") {
            let text = |field: &str| r[field].as_str().map(str::to_owned);
            sqlx::query(
                "insert into app.audit_logs (organization_id, id, actor_user_id, action, resource_type, resource_id,
                     outcome, ip, user_agent, request_id, changes, metadata, created_at)
                 values ($1, $2::uuid, $3::uuid, $4, $5, $6, $7::app.audit_outcome, $8::inet, $9, $10, $11::jsonb,
                     $12::jsonb, $13::timestamptz)",
            )
            .bind(org)
            .bind(text("id"))
            .bind(text("actor_user_id"))
            .bind(text("action"))
            .bind(text("resource_type"))
            .bind(text("resource_id"))
            .bind(text("outcome"))
            .bind(text("ip"))
            .bind(text("user_agent"))
            .bind(text("request_id"))
            .bind(r["changes"].to_string())
            .bind(r["metadata"].to_string())
            .bind(text("created_at"))
            .execute(&mut su)
            .await
            .expect("a vector record");
        }
        let expected = &vectors["expected"];
        let field = |name: &str| expected[name].as_str().expect("an expected value").to_owned();
        AuditVectors {
            organization_id: org,
            hashes: expected["hashes"]
                .as_array()
                .expect("expected hashes")
                .iter()
                .map(|h| h.as_str().expect("a hash").to_owned())
                .collect(),
            checkpoint_key: vectors["checkpoint"]["signing_key"].as_str().expect("a signing key").to_owned(),
            checkpoint: serde_json::json!({
                "created_at": vectors["checkpoint"]["created_at"],
                "heads": vectors["checkpoint"]["heads"],
                "public_key": field("public_key"),
                "signature": field("signature"),
            }),
        }
    }

    /// Where `org`'s rows of the distributed table `app.<table>` live on Citus: each worker that
    /// holds a placement of their shard (an index into [`TestDb::workers`]) and the shard's name.
    pub async fn shard_placements(&self, table: &str, org: uuid::Uuid) -> Vec<(usize, String)> {
        let placements: Vec<(String, i32)> = sqlx::query_as(
            "select s.shard_name::text, s.nodeport from citus_shards s
              where s.table_name = ('app.' || $1)::regclass
                and s.shardid = get_shard_id_for_distribution_column(('app.' || $1)::regclass, $2)
              order by s.nodeport",
        )
        .bind(table)
        .bind(org)
        .fetch_all(&mut self.superuser().await)
        .await
        .expect("the placements of a shard");
        assert!(!placements.is_empty(), "app.{table} has no shard for {org}");
        placements
            .into_iter()
            .map(|(shard, port)| {
                let worker =
                    self.workers.iter().position(|w| i32::from(w.port()) == port).expect("a shard on a worker");
                (worker, shard)
            })
            .collect()
    }

    /// Changes rows as a superuser who gets past the guard triggers would: `sql` (one or more
    /// statements) names each table of `tables` as `{table}`, and runs in one transaction with
    /// those tables' own triggers off, switched back to their previous state before it commits.
    /// On plain PostgreSQL `{table}` is `app.<table>`; on Citus, where the coordinator refuses
    /// to switch a distributed table's triggers, it is the shard holding `org`'s rows, changed
    /// on each worker with a placement of it (the tables must be distributed and co-located).
    pub async fn tamper(&self, org: uuid::Uuid, tables: &[&str], sql: &str) {
        match backend() {
            Backend::Postgres => {
                let names: Vec<(String, String)> = tables.iter().map(|t| (t.to_string(), format!("app.{t}"))).collect();
                tamper_on(&mut self.superuser().await, &names, sql, &[]).await;
            }
            Backend::Citus => {
                let mut on_worker: Vec<(usize, Vec<(String, String)>)> = Vec::new();
                for table in tables {
                    for (worker, shard) in self.shard_placements(table, org).await {
                        match on_worker.iter_mut().find(|(w, _)| *w == worker) {
                            Some((_, names)) => names.push((table.to_string(), shard)),
                            None => on_worker.push((worker, vec![(table.to_string(), shard)])),
                        }
                    }
                }
                for (worker, names) in on_worker {
                    assert_eq!(names.len(), tables.len(), "the tables are co-located: {names:?}");
                    let mut conn = self.worker_superuser(worker).await;
                    // Citus refuses changes made to a shard by hand unless told that they are meant.
                    tamper_on(&mut conn, &names, sql, &["set citus.enable_manual_changes_to_shards = on"]).await;
                }
            }
        }
    }

    /// A `DATABASE_URL` for the superuser, for running the `mos` binary against this database.
    pub fn database_url(&self) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost:{}/{}?host={}",
            self.cluster.port(),
            self.name,
            self.cluster.pgdata().display()
        )
    }
}

/// [`TestDb::tamper`] on one server: `names` maps each `{table}` to the relation it stands for.
async fn tamper_on(conn: &mut PgConnection, names: &[(String, String)], sql: &str, setup: &[&str]) {
    for statement in setup.iter().copied().chain(["begin"]) {
        execute(conn, statement).await;
    }
    let mut restore = Vec::new();
    for (_, relation) in names {
        let triggers: Vec<(String, String)> = sqlx::query_as(
            "select tgname::text, tgenabled::text from pg_trigger where tgrelid = $1::regclass and not tgisinternal",
        )
        .bind(relation)
        .fetch_all(&mut *conn)
        .await
        .expect("the triggers of a table to tamper with");
        for (trigger, state) in triggers {
            let enable = match state.as_str() {
                "A" => "enable always",
                "R" => "enable replica",
                "D" => "disable",
                _ => "enable",
            };
            restore.push(format!("alter table {relation} {enable} trigger {trigger}"));
        }
        execute(conn, &format!("alter table {relation} disable trigger user")).await;
    }
    let sql =
        names.iter().fold(sql.to_owned(), |sql, (table, relation)| sql.replace(&format!("{{{table}}}"), relation));
    execute(conn, &sql).await;
    for statement in restore.iter().map(String::as_str).chain(["commit"]) {
        execute(conn, statement).await;
    }
}
