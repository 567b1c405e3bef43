//! The embedded default database: a private PostgreSQL cluster under the data directory,
//! started from the machine's own PostgreSQL binaries.
//!
//! The cluster listens on no TCP port at all, only on a unix socket inside its own data
//! directory, and admits exactly the operating-system user that created it (peer
//! authentication with an ident map), so there is no password to store or leak. PostgreSQL
//! refuses to run as root; when we are root, the cluster runs as the `postgres` system user.

use std::fmt::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::unistd::{Gid, Uid, User};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tokio::process::Command;

/// Fixed: the socket lives in a directory only this cluster uses, so no port can clash.
pub const PORT: u16 = 5432;
/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// The database the application uses inside the embedded cluster.
pub const DATABASE: &str = "mos";
/// The cluster's superuser, used for migrations and checks.
pub const SUPERUSER: &str = "postgres";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no PostgreSQL server binaries (initdb, pg_ctl, postgres) in {searched}; install them (Debian/Ubuntu: apt-get install postgresql), point PG_BIN at their directory, or set DATABASE_URL to use a running server")]
    NoBinaries { searched: String },
    #[error("mos runs as root and PostgreSQL refuses root, but there is no `postgres` system user to run the cluster as; install the postgresql package (it creates the user) or run mos as an ordinary user")]
    NoPostgresUser,
    #[error("the current user (uid {0}) has no name in the user database, which peer authentication needs")]
    NoUserName(u32),
    #[error("the `postgres` system user cannot reach {path}: {why}; set MOS_DATA_DIR to a directory it can reach (for example under /var/lib or /srv)")]
    Unreachable { path: PathBuf, why: String },
    #[error("the socket path {0} is longer than the {MAX_SOCKET_PATH} bytes a unix socket allows; set MOS_DATA_DIR to a shorter path")]
    SocketPathTooLong(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{program} failed ({status}):\n{output}")]
    Command { program: String, status: String, output: String },
    #[error("the embedded PostgreSQL did not accept connections within {seconds} s; its log is {log}", log = .log.display())]
    NotReady { seconds: u64, log: PathBuf },
    #[error("the embedded cluster {pgdata} was made by PostgreSQL {cluster}, but the server binaries in {bin} are PostgreSQL {binaries}, and a cluster starts only under the major version that made it; point PG_BIN at PostgreSQL {cluster}'s binaries, or move the cluster to {binaries} with `mos db upgrade` (docs/operations.md, Upgrading PostgreSQL)", pgdata = .pgdata.display(), bin = .bin.display())]
    MajorMismatch { pgdata: PathBuf, cluster: u32, binaries: u32, bin: PathBuf },
    #[error("cannot tell the major version of {0}")]
    UnknownVersion(PathBuf),
    #[error("{0} already holds a PostgreSQL cluster; a restore goes into a data directory without one")]
    AlreadyThere(PathBuf),
    #[error("the embedded PostgreSQL refused a connection: {0}")]
    Connect(#[from] sqlx::Error),
}

type Result<T> = std::result::Result<T, ClusterError>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ClusterError + '_ {
    move |source| ClusterError::Io { path: path.to_owned(), source }
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    dir: PathBuf,
}

impl PgBinaries {
    const NEEDED: [&'static str; 3] = ["initdb", "pg_ctl", "postgres"];

    /// Looks in `explicit` (PG_BIN) only when given; otherwise on PATH, then in the newest
    /// `/usr/lib/postgresql/*/bin` (Debian keeps the server binaries off PATH).
    /// The directory the server binaries are in (its client programs, like `pgbench`, are too).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn locate(explicit: Option<&Path>) -> Result<Self> {
        let candidates: Vec<PathBuf> = match explicit {
            Some(dir) => vec![dir.to_owned()],
            None => {
                let mut dirs: Vec<PathBuf> =
                    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
                let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
                    .collect();
                versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
                dirs.extend(versioned.into_iter().map(|(_, dir)| dir));
                dirs
            }
        };
        for dir in &candidates {
            if Self::NEEDED.iter().all(|b| is_executable(&dir.join(b))) {
                // Resolve links such as /usr/local/bin/pg_ctl so all three come from one install.
                let dir = std::fs::canonicalize(dir.join("postgres"))
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_owned))
                    .filter(|d| Self::NEEDED.iter().all(|b| is_executable(&d.join(b))))
                    .unwrap_or_else(|| dir.clone());
                return Ok(Self { dir });
            }
        }
        let searched = match explicit {
            Some(dir) => format!("PG_BIN={}", dir.display()),
            None => "PATH and /usr/lib/postgresql/*/bin".to_owned(),
        };
        Err(ClusterError::NoBinaries { searched })
    }

    pub fn path(&self, program: &str) -> PathBuf {
        self.dir.join(program)
    }

    /// The major version of these binaries (15 for "postgres (PostgreSQL) 15.10 (Debian ...)").
    pub fn major(&self) -> Result<u32> {
        let postgres = self.path("postgres");
        let out = std::process::Command::new(&postgres).arg("--version").output().map_err(io(&postgres))?;
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .find_map(|word| word.split('.').next()?.parse().ok())
            .ok_or(ClusterError::UnknownVersion(postgres))
    }
}

/// The major version that made the cluster in `pgdata`, from its `PG_VERSION` (the file the
/// server itself reads to refuse another major's cluster); `None` when there is no cluster.
pub fn cluster_major(pgdata: &Path) -> Result<Option<u32>> {
    let path = pgdata.join("PG_VERSION");
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| ClusterError::UnknownVersion(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path)(e)),
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// How the cluster is meant to live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tuning {
    /// Durable: the embedded default that keeps your data.
    #[default]
    Durable,
    /// A throwaway cluster (tests, benchmarks): no fsync, and its whole directory belongs to
    /// the server's user, which deletes it on the way out.
    Throwaway,
}

/// A cluster directory, initialized, and the identity it runs under.
/// The lock that makes a process the owner of a cluster; see [`Cluster::claim`].
pub struct Claim {
    lock: nix::fcntl::Flock<std::fs::File>,
    path: PathBuf,
    before: Option<u32>,
}

impl Claim {
    /// The owner before, which died without stopping the cluster.
    pub fn orphaned_by(&self) -> Option<u32> {
        self.before
    }

    /// Records this process as the owner; the lock stays held until the claim is dropped.
    pub fn own(&mut self) -> Result<()> {
        use std::io::Write;
        self.lock.set_len(0).map_err(io(&self.path))?;
        write!(&mut *self.lock, "{}", std::process::id()).map_err(io(&self.path))
    }

    /// The cluster was stopped: nobody owns it any more.
    pub fn release(self) -> Result<()> {
        self.lock.set_len(0).map_err(io(&self.path))
    }
}

#[derive(Debug, Clone)]
pub struct Cluster {
    bin: PgBinaries,
    pgdata: PathBuf,
    log: PathBuf,
    /// Set when we are root: the system user the server runs as.
    run_as: Option<User>,
    /// Set for a node of a throwaway Citus cluster: its nodes reach each other over TCP on
    /// loopback, so it listens on this port too, with password authentication only.
    citus_port: Option<u16>,
}

impl Cluster {
    /// Creates `root` and an initialized cluster inside it if there is none yet.
    pub async fn init(bin: PgBinaries, root: &Path, tuning: Tuning) -> Result<Self> {
        Self::init_node(bin, root, tuning, None).await
    }

    /// A throwaway node of a Citus cluster (tests): Citus preloaded, and listening on `port` on
    /// loopback besides the socket, where every role must present a password.
    pub async fn init_citus_node(bin: PgBinaries, root: &Path, port: u16) -> Result<Self> {
        Self::init_node(bin, root, Tuning::Throwaway, Some(port)).await
    }

    async fn init_node(bin: PgBinaries, root: &Path, tuning: Tuning, citus_port: Option<u16>) -> Result<Self> {
        let cluster = Self::at(bin, root, citus_port)?;
        if let Some(made_by) = cluster_major(&cluster.pgdata)? {
            let binaries = cluster.bin.major()?;
            if made_by != binaries {
                return Err(ClusterError::MajorMismatch {
                    pgdata: cluster.pgdata.clone(),
                    cluster: made_by,
                    binaries,
                    bin: cluster.bin.dir.clone(),
                });
            }
        }
        let root = cluster.pgdata.parent().unwrap_or(&cluster.pgdata).to_owned();
        if tuning == Tuning::Throwaway {
            cluster.hand_over(&root)?;
        }
        if !cluster.pgdata.join("PG_VERSION").exists() {
            cluster.initdb().await?;
        }
        cluster.write_settings(tuning)?;
        Ok(cluster)
    }

    /// Lays down a base backup, as `pg_basebackup --format=tar` wrote it (`base`, and `wal`
    /// with the WAL from its start to its end), as the durable cluster under `root`, which must
    /// hold none yet. Its first start replays that WAL and so reaches the backup's end point.
    pub async fn restore(bin: PgBinaries, root: &Path, base: &Path, wal: &Path) -> Result<Self> {
        let cluster = Self::at(bin, root, None)?;
        if cluster.pgdata.join("PG_VERSION").exists() {
            return Err(ClusterError::AlreadyThere(cluster.pgdata.clone()));
        }
        std::fs::create_dir_all(&cluster.pgdata).map_err(io(&cluster.pgdata))?;
        std::fs::set_permissions(&cluster.pgdata, std::fs::Permissions::from_mode(0o700))
            .map_err(io(&cluster.pgdata))?;
        cluster.hand_over(&cluster.pgdata)?;
        cluster.untar(base, &cluster.pgdata).await?;
        cluster.untar(wal, &cluster.pgdata.join("pg_wal")).await?;
        // The copy holds the socket lock of the server it was taken from.
        let lock = cluster.pgdata.join(format!(".s.PGSQL.{}.lock", cluster.port()));
        if lock.exists() {
            std::fs::remove_file(&lock).map_err(io(&lock))?;
        }
        cluster.write_settings(Tuning::Durable)?;
        Ok(cluster)
    }

    /// Extracts a gzipped tar into `into` as the server's user, so that every file is the
    /// server's; the archive is opened here and handed over as standard input.
    async fn untar(&self, archive: &Path, into: &Path) -> Result<()> {
        let file = std::fs::File::open(archive).map_err(io(archive))?;
        let mut cmd = Command::new("tar");
        self.drop_root(&mut cmd);
        cmd.args(["--extract", "--gzip", "--no-same-owner", "--file=-", "--directory"]).arg(into);
        cmd.stdin(Stdio::from(file)).kill_on_drop(true);
        let out = cmd.output().await.map_err(io(archive))?;
        if out.status.success() {
            return Ok(());
        }
        Err(ClusterError::Command {
            program: format!("tar (extracting {})", archive.display()),
            status: out.status.to_string(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }

    /// Streams a consistent copy of the running cluster into the empty directory `dest`, with
    /// `pg_basebackup`: `base.tar.gz`, `pg_wal.tar.gz` (the WAL written while it copied, so the
    /// copy restores without an archive) and PostgreSQL's own `backup_manifest`. The cluster
    /// keeps serving meanwhile. It runs as this process's user, who owns `dest`.
    pub async fn base_backup(&self, dest: &Path, label: &str) -> Result<()> {
        // A cluster started before its pg_hba.conf admitted replication connections reads the
        // rewritten one now; the postmaster takes the signal in its own time, hence the retries.
        let mut conn = self.connect_options(SUPERUSER, "postgres").connect().await?;
        sqlx::query("select pg_reload_conf()").execute(&mut conn).await?;
        conn.close().await?;
        let mut attempt = 0;
        loop {
            let mut cmd = Command::new(self.bin.path("pg_basebackup"));
            cmd.arg("--pgdata").arg(dest);
            cmd.args(["--format=tar", "--gzip", "--wal-method=stream", "--checkpoint=fast", "--no-password"]);
            cmd.args(["--manifest-checksums=SHA256", "--label", label, "--username", SUPERUSER]);
            cmd.arg("--host").arg(&self.pgdata).arg("--port").arg(self.port().to_string());
            match run(cmd, "pg_basebackup").await {
                Err(ClusterError::Command { output, .. }) if attempt < 20 && output.contains("pg_hba.conf") => {
                    attempt += 1;
                    clear_dir(dest)?;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    /// Writes the whole cluster, roles with their attributes and passwords included, as SQL
    /// (`pg_dumpall` of these binaries, so of the cluster's own version) to `to`, readable by
    /// its owner only. For moving the cluster to another major version.
    pub async fn dump_all(&self, to: &Path) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        // Made here, so that pg_dumpall writes into a file that was never readable by others.
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(to).map_err(io(to))?;
        let mut cmd = Command::new(self.bin.path("pg_dumpall"));
        cmd.args(["--no-password", "--username", SUPERUSER, "--host"]).arg(&self.pgdata);
        cmd.arg("--port").arg(self.port().to_string()).arg("--file").arg(to);
        run(cmd, "pg_dumpall").await
    }

    /// The schema of `database` (tables, indexes, policies, functions, triggers, grants), as
    /// `pg_dump --schema-only` of these binaries prints it, without what changes from one run
    /// or version of pg_dump to the next: its version lines, its session settings, and the
    /// random key of its `\restrict` guard. `docs/schema.sql` is this text of a migrated database.
    pub async fn schema_sql(&self, database: &str) -> Result<String> {
        let mut cmd = Command::new(self.bin.path("pg_dump"));
        cmd.args(["--schema-only", "--no-password", "--username", SUPERUSER, "--host"]).arg(&self.pgdata);
        cmd.arg("--port").arg(self.port().to_string()).args(["--dbname", database]);
        let dumped = String::from_utf8_lossy(&output(cmd, "pg_dump").await?).into_owned();
        Ok(normalize_schema(&dumped))
    }

    /// Runs the SQL of [`Cluster::dump_all`] from another cluster in this one, with `client`'s
    /// `psql`, stopping at the first error. The one statement a fresh cluster must skip is the
    /// creation of its own superuser, which `initdb` made.
    pub async fn load_all(&self, sql: &Path, client: &PgBinaries) -> Result<()> {
        let text = std::fs::read_to_string(sql).map_err(io(sql))?;
        let own = format!("CREATE ROLE {SUPERUSER};");
        let filtered: String = text.lines().filter(|l| l.trim() != own).flat_map(|l| [l, "\n"]).collect();
        let filtered_path = sql.with_extension("load.sql");
        std::fs::write(&filtered_path, filtered).map_err(io(&filtered_path))?;
        std::fs::set_permissions(&filtered_path, std::fs::Permissions::from_mode(0o600)).map_err(io(&filtered_path))?;
        let mut cmd = Command::new(client.path("psql"));
        cmd.args(["--no-psqlrc", "--quiet", "--no-password", "--set", "ON_ERROR_STOP=1", "--username", SUPERUSER]);
        cmd.arg("--host").arg(&self.pgdata).arg("--port").arg(self.port().to_string());
        cmd.args(["--dbname", "postgres", "--file"]).arg(&filtered_path);
        let result = run(cmd, "psql").await;
        let _ = std::fs::remove_file(&filtered_path);
        result
    }

    /// The cluster under `root` as this build lays it out; nothing is created but `root`.
    fn at(bin: PgBinaries, root: &Path, citus_port: Option<u16>) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(io(root))?;
        let root = std::fs::canonicalize(root).map_err(io(root))?;
        let run_as = if nix::unistd::geteuid().is_root() {
            Some(User::from_name("postgres").ok().flatten().ok_or(ClusterError::NoPostgresUser)?)
        } else {
            None
        };
        let cluster = Self { bin, pgdata: root.join("pg"), log: root.join("postgres.log"), run_as, citus_port };
        let socket = cluster.pgdata.join(format!(".s.PGSQL.{}", cluster.port()));
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(ClusterError::SocketPathTooLong(socket));
        }
        if let Some(user) = &cluster.run_as {
            check_reachable(&root, user)?;
        }
        Ok(cluster)
    }

    async fn initdb(&self) -> Result<()> {
        tracing::info!(pgdata = %self.pgdata.display(), "creating the embedded PostgreSQL cluster");
        std::fs::create_dir_all(&self.pgdata).map_err(io(&self.pgdata))?;
        std::fs::set_permissions(&self.pgdata, std::fs::Permissions::from_mode(0o700)).map_err(io(&self.pgdata))?;
        self.hand_over(&self.pgdata)?;
        let mut cmd = self.command("initdb");
        cmd.arg("--pgdata")
            .arg(&self.pgdata)
            .args(["--username", SUPERUSER, "--auth-local=peer", "--auth-host=reject"])
            .args(["--encoding=UTF8", "--locale=C", "--no-instructions"]);
        run(cmd, "initdb").await?;

        let conf = self.pgdata.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(io(&conf))?;
        text.push_str("\n# Settings that follow the data directory; rewritten by mos at every start.\ninclude_if_exists = 'mos.conf'\n");
        self.write_owned(&conf, &text)
    }

    /// Who may connect: only over the unix socket, only with peer authentication through the
    /// `mos` map, as the superuser or `app_user`; the superuser may also stream the cluster for
    /// `mos backup` (`pg_basebackup` opens replication connections, which `all` does not
    /// cover). A Citus node also admits its peers on loopback, with a password. Rewritten at
    /// every start, so that a cluster made before a line was added gets it too.
    fn write_access(&self) -> Result<()> {
        let ident_path = self.pgdata.join("pg_ident.conf");
        let mut ident = std::fs::read_to_string(&ident_path).map_err(io(&ident_path))?;
        if !ident.contains("(written by mos)") {
            ident = String::from("# MAPNAME  SYSTEM-USERNAME  PG-USERNAME  (written by mos)\n");
        }
        // Lines are only added: the map keeps the user who made the cluster when another one
        // (an operator running `mos backup`) starts it, so the server's own logins keep working.
        let me = self.client_user_name()?;
        for system_user in [me.as_str(), "postgres"] {
            for db_user in [SUPERUSER, crate::APP_ROLE] {
                let line = format!("mos  {system_user}  {db_user}");
                if !ident.lines().any(|l| l.trim() == line) {
                    let _ = writeln!(ident, "{line}");
                }
            }
        }
        self.write_owned(&ident_path, &ident)?;
        let mut hba = format!(
            "# written by mos\nlocal  all  all  peer  map=mos\nlocal  replication  {SUPERUSER}  peer  map=mos\n"
        );
        if self.citus_port.is_some() {
            hba.push_str("host   all  all  127.0.0.1/32  scram-sha-256\n");
        }
        self.write_owned(&self.pgdata.join("pg_hba.conf"), &hba)
    }

    fn write_settings(&self, tuning: Tuning) -> Result<()> {
        self.write_access()?;
        let quote = |p: &Path| p.display().to_string().replace('\'', "''");
        let listen = if self.citus_port.is_some() { "127.0.0.1" } else { "" };
        let mut conf = format!(
            "listen_addresses = '{listen}'\nport = {}\nunix_socket_directories = '{}'\nunix_socket_permissions = 0700\n",
            self.port(),
            quote(&self.pgdata)
        );
        if tuning == Tuning::Throwaway {
            conf.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 300\n");
        }
        if self.citus_port.is_some() {
            // Every database that uses Citus has a maintenance daemon, and tests make many. Four
            // shards per distributed table rather than 32: a tenant's rows are routed the same
            // way, and the copy of a database that every test makes has an eighth of the files.
            conf.push_str(
                "shared_preload_libraries = 'citus'\nmax_worker_processes = 512\nmax_connections = 600\ncitus.shard_count = 4\n",
            );
        }
        self.write_owned(&self.pgdata.join("mos.conf"), &conf)
    }

    /// Writes a file the server must read, owned by the server's user when that is not us.
    fn write_owned(&self, path: &Path, contents: &str) -> Result<()> {
        std::fs::write(path, contents).map_err(io(path))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
        self.hand_over(path)
    }

    fn hand_over(&self, path: &Path) -> Result<()> {
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw())).map_err(io(path))?;
        }
        Ok(())
    }

    /// The name peer authentication sees for this process.
    fn client_user_name(&self) -> Result<String> {
        let uid = nix::unistd::geteuid();
        User::from_uid(uid).ok().flatten().map(|u| u.name).ok_or(ClusterError::NoUserName(uid.as_raw()))
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.path(program));
        self.drop_root(&mut cmd);
        cmd
    }

    fn drop_root(&self, cmd: &mut Command) {
        if let Some(user) = &self.run_as {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
            cmd.env("HOME", &user.dir).env("USER", &user.name);
        }
    }

    /// The server binaries this cluster runs on.
    pub fn binaries(&self) -> &PgBinaries {
        &self.bin
    }

    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    /// The port in the socket's name, and on a Citus node the TCP port on loopback.
    pub fn port(&self) -> u16 {
        self.citus_port.unwrap_or(PORT)
    }

    /// Connection options for `user` over the cluster's socket.
    pub fn connect_options(&self, user: &str, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .socket(&self.pgdata)
            .port(self.port())
            .username(user)
            .database(database)
            .application_name("mos")
    }

    /// Whether a server is running on this data directory. A `postmaster.pid` whose process is
    /// gone, or belongs to something else (pid reuse after a crash or reboot), is stale.
    pub fn running(&self) -> bool {
        let pidfile = self.pgdata.join("postmaster.pid");
        let Some(pid) =
            std::fs::read_to_string(&pidfile).ok().and_then(|t| t.lines().next()?.trim().parse::<u32>().ok())
        else {
            return false;
        };
        // The postmaster's working directory is its data directory.
        std::fs::read_link(format!("/proc/{pid}/cwd")).map(|cwd| cwd == self.pgdata).unwrap_or(false)
    }

    fn clear_stale_lock(&self) -> Result<()> {
        for name in ["postmaster.pid".to_owned(), format!(".s.PGSQL.{}.lock", self.port())] {
            let path = self.pgdata.join(name);
            if path.exists() {
                tracing::warn!(path = %path.display(), "removing a stale lock file left by a server that is gone");
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        Ok(())
    }

    /// Tries to become the `mos` process that looks after this cluster: the owner holds an
    /// exclusive lock on `cluster.owner` beside the data directory for as long as it lives, so
    /// the lock is free again the moment it exits, however it exits. `None` while another live
    /// process owns the cluster; otherwise the claim, with the pid of the owner before, if one
    /// was recorded and never released (it died without stopping the cluster).
    pub fn claim(&self) -> Result<Option<Claim>> {
        use std::io::{Read, Seek};
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.pgdata.parent().unwrap_or(&self.pgdata).join("cluster.owner");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        let mut lock = match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(None),
            Err((_, errno)) => return Err(io(&path)(std::io::Error::from(errno))),
        };
        let mut text = String::new();
        lock.read_to_string(&mut text).map_err(io(&path))?;
        lock.rewind().map_err(io(&path))?;
        Ok(Some(Claim { lock, path, before: text.trim().parse().ok() }))
    }

    /// Starts the server in the background unless it already runs. Returns whether this call
    /// started it, so that only the starter stops it again.
    pub async fn start(&self) -> Result<bool> {
        if self.running() {
            tracing::info!(pgdata = %self.pgdata.display(), "reusing the running embedded PostgreSQL");
            self.wait_ready(Duration::from_secs(30)).await?;
            return Ok(false);
        }
        self.clear_stale_lock()?;
        if !self.log.exists() {
            self.write_owned(&self.log, "")?;
        }
        let mut cmd = self.command("pg_ctl");
        cmd.arg("start").arg("--pgdata").arg(&self.pgdata).arg("--log").arg(&self.log).args([
            "--wait",
            "--timeout=60",
            "--silent",
        ]);
        match run(cmd, "pg_ctl start").await {
            Ok(()) => {}
            // Another mos started it between our look and our start.
            Err(_) if self.running() => return self.wait_ready(Duration::from_secs(30)).await.map(|()| false),
            Err(e) => return Err(self.with_log_tail(e)),
        }
        self.wait_ready(Duration::from_secs(30)).await?;
        tracing::info!(pgdata = %self.pgdata.display(), "started the embedded PostgreSQL");
        Ok(true)
    }

    /// Starts the server as a child that stops, and deletes `remove_after` (a throwaway
    /// cluster's whole directory), when this process exits, whichever way it exits: the
    /// watchdog shell waits for its standard input to close, which the kernel does for us.
    pub fn start_supervised(&self, remove_after: &Path) -> Result<std::process::Child> {
        if !self.log.exists() {
            self.write_owned(&self.log, "")?;
        }
        let script = r#"postgres=$1; pgdata=$2; log=$3; tmp=$4
"$postgres" -D "$pgdata" >"$log" 2>&1 &
pid=$!
cat >/dev/null
kill -INT "$pid" 2>/dev/null
wait "$pid"
rm -rf "$tmp""#;
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.arg("-c").arg(script).arg("mos-test-postgres");
        cmd.arg(self.bin.path("postgres")).arg(&self.pgdata).arg(&self.log).arg(remove_after);
        cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
        if let Some(user) = &self.run_as {
            use std::os::unix::process::CommandExt;
            // HOME too: libpq inside the server (Citus reaching its workers) looks there.
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw()).env("HOME", &user.dir).env("USER", &user.name);
        }
        cmd.spawn().map_err(io(&self.pgdata))
    }

    /// Waits until the superuser can connect.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let options = self.connect_options(SUPERUSER, "postgres");
        loop {
            match options.connect().await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return Ok(());
                }
                Err(_) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(_) => return Err(ClusterError::NotReady { seconds: timeout.as_secs(), log: self.log.clone() }),
            }
        }
    }

    /// Creates `database` unless it exists.
    pub async fn ensure_database(&self, database: &str) -> Result<()> {
        let mut conn = self.connect_options(SUPERUSER, "postgres").connect().await?;
        let exists: bool = sqlx::query_scalar("select exists (select from pg_database where datname = $1)")
            .bind(database)
            .fetch_one(&mut conn)
            .await?;
        if !exists {
            let quoted = database.replace('"', "\"\"");
            sqlx::raw_sql(&format!("create database \"{quoted}\"")).execute(&mut conn).await?;
        }
        conn.close().await?;
        Ok(())
    }

    /// Fast shutdown: open transactions roll back, nothing committed is lost.
    pub async fn stop(&self) -> Result<()> {
        if !self.running() {
            return Ok(());
        }
        let mut cmd = self.command("pg_ctl");
        cmd.arg("stop").arg("--pgdata").arg(&self.pgdata).args(["--mode=fast", "--wait", "--timeout=60", "--silent"]);
        run(cmd, "pg_ctl stop").await.map_err(|e| self.with_log_tail(e))?;
        tracing::info!(pgdata = %self.pgdata.display(), "stopped the embedded PostgreSQL");
        Ok(())
    }

    fn with_log_tail(&self, e: ClusterError) -> ClusterError {
        let ClusterError::Command { program, status, mut output } = e else {
            return e;
        };
        if let Ok(log) = std::fs::read_to_string(&self.log) {
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            output.push_str("\nlast lines of ");
            output.push_str(&self.log.display().to_string());
            output.push_str(":\n");
            output.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        ClusterError::Command { program, status, output }
    }
}

async fn run(cmd: Command, program: &str) -> Result<()> {
    output(cmd, program).await.map(drop)
}

/// Runs `cmd` and returns what it printed; a failure carries its error output.
async fn output(mut cmd: Command, program: &str) -> Result<Vec<u8>> {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let out = cmd.output().await.map_err(|source| ClusterError::Io { path: PathBuf::from(program), source })?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let mut output = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if output.is_empty() {
        output = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    }
    Err(ClusterError::Command { program: program.to_owned(), status: out.status.to_string(), output })
}

/// What [`Cluster::schema_sql`] keeps of pg_dump's output: everything from the first object on,
/// opened by a comment line as pg_dump opens each object,
/// less the `\restrict` lines (their key is random) and runs of blank lines.
fn normalize_schema(dumped: &str) -> String {
    let objects = dumped.lines().skip_while(|line| !line.starts_with("-- Name: "));
    let mut out = String::from("--\n");
    let mut blank = false;
    for line in objects.filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict ")) {
        let line = line.trim_end();
        if line.is_empty() && blank {
            continue;
        }
        blank = line.is_empty();
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Empties a directory that a failed attempt left files in.
fn clear_dir(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
        } else {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// Every directory from `/` down to `path` must let `user` pass (execute permission).
fn check_reachable(path: &Path, user: &User) -> Result<()> {
    for dir in path.ancestors().collect::<Vec<_>>().into_iter().rev() {
        let meta = std::fs::metadata(dir).map_err(io(dir))?;
        let mode = meta.mode();
        let passes = mode & 0o001 != 0
            || (Uid::from_raw(meta.uid()) == user.uid && mode & 0o100 != 0)
            || (Gid::from_raw(meta.gid()) == user.gid && mode & 0o010 != 0);
        if !passes {
            return Err(ClusterError::Unreachable {
                path: path.to_owned(),
                why: format!("{} has mode {:o} and is owned by uid {}", dir.display(), mode & 0o7777, meta.uid()),
            });
        }
    }
    Ok(())
}
