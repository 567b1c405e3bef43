//! The harness integration tests run against: one throwaway PostgreSQL cluster per test
//! process, started from the machine's binaries, and a fresh database per test cloned from a
//! migrated template. Tests of isolation connect as `app_user`, never as the superuser that
//! bypasses RLS; the superuser connection is there for arranging data and for tampering.
#![allow(clippy::expect_used)] // A harness that cannot start its database can only fail the test.

use std::path::Path;
use std::sync::Mutex;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};
use tokio::sync::OnceCell;

use crate::embedded::{Cluster, PgBinaries, Tuning, SUPERUSER};
use crate::{migrate, AppPool, AppPoolOptions, APP_ROLE};

const TEMPLATE: &str = "mos_template";

struct Shared {
    cluster: Cluster,
    /// Never dropped: its standard input stays open until the process exits, and then the
    /// watchdog stops the server and removes the directory.
    _watchdog: Mutex<std::process::Child>,
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();

async fn shared() -> &'static Shared {
    SHARED
        .get_or_init(|| async {
            let bin = PgBinaries::locate(std::env::var_os("PG_BIN").as_deref().map(Path::new))
                .expect("PostgreSQL server binaries for the test cluster");
            let root = tempfile::Builder::new().prefix("mos-test-").tempdir().expect("a temporary directory").keep();
            std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .expect("temporary directory permissions");
            let cluster = Cluster::init(bin, &root, Tuning::Throwaway).await.expect("initdb of the test cluster");
            let watchdog = cluster.start_supervised(&root).expect("starting the test cluster");
            cluster
                .wait_ready(std::time::Duration::from_secs(60))
                .await
                .expect("the test cluster accepting connections");
            cluster.ensure_database(TEMPLATE).await.expect("the template database");
            let mut conn =
                cluster.connect_options(SUPERUSER, TEMPLATE).connect().await.expect("connect to the template");
            migrate::run(&mut conn).await.expect("migrating the template");
            drop(conn);
            Shared { cluster, _watchdog: Mutex::new(watchdog) }
        })
        .await
}

/// A database of its own for one test.
pub struct TestDb {
    pub name: String,
    cluster: &'static Cluster,
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
        let mut conn =
            shared.cluster.connect_options(SUPERUSER, "postgres").connect().await.expect("connect to the test cluster");
        let sql = match template {
            Some(t) => format!("create database {name} template {t}"),
            None => format!("create database {name}"),
        };
        sqlx::raw_sql(&sql).execute(&mut conn).await.expect("create the test database");
        Self { name, cluster: &shared.cluster }
    }

    pub fn superuser_options(&self) -> PgConnectOptions {
        self.cluster.connect_options(SUPERUSER, &self.name)
    }

    pub fn app_options(&self) -> PgConnectOptions {
        self.cluster.connect_options(APP_ROLE, &self.name)
    }

    /// The superuser: bypasses RLS. For arranging data and tampering, never for proving isolation.
    pub async fn superuser(&self) -> PgConnection {
        self.superuser_options().connect().await.expect("superuser connection")
    }

    /// A raw connection as `app_user` with no request context at all.
    pub async fn app_user(&self) -> PgConnection {
        self.app_options().connect().await.expect("app_user connection")
    }

    /// The superuser switched to the NOLOGIN owner role, as a migration runs.
    pub async fn owner(&self) -> PgConnection {
        let mut conn = self.superuser().await;
        sqlx::raw_sql("set role mos_owner").execute(&mut conn).await.expect("set role mos_owner");
        conn
    }

    pub async fn app_pool(&self, max_connections: u32) -> AppPool {
        AppPool::connect(AppPoolOptions { connect: self.app_options(), set_role: false, max_connections })
            .await
            .expect("app_user pool")
    }

    /// A `DATABASE_URL` for the superuser, for running the `mos` binary against this database.
    pub fn database_url(&self) -> String {
        format!("postgres://{SUPERUSER}@localhost/{}?host={}", self.name, self.cluster.pgdata().display())
    }
}
