//! `mos`: the Marketing OS server and its operator commands, in one binary.

mod audit_cmd;
mod backup;
mod bench;
mod config;
mod consent_cmd;
mod database;
mod db_watchdogs;
mod feedback_cmd;
mod identity;
mod jobs;
mod seed;
mod telemetry;
mod upgrade;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mos_db::ops::{check, citus, migrate, OpsError};

use crate::config::{Layer, Settings};
use crate::database::Database;

/// Marketing OS: a multi-tenant backend for healthcare marketing, with tenant isolation
/// enforced by PostgreSQL Row-Level Security and an append-only audit trail.
///
/// Without DATABASE_URL, mos runs on a private PostgreSQL cluster under the data directory,
/// started from the machine's PostgreSQL binaries.
#[derive(Parser)]
#[command(name = "mos", version, propagate_version = true)]
struct Cli {
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long, global = true, env = "MOS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Layer,
    /// Log as human-readable text or as JSON lines.
    #[arg(long, global = true, env = "MOS_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: telemetry::Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (/v1, /openapi.json, /docs, /healthz, /readyz) until SIGINT or SIGTERM. On the embedded database
    /// it applies pending migrations first; on an external one it refuses to start while any
    /// is pending. Either way it refuses to serve if `db check` finds a problem.
    Serve {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, env = "MOS_LISTEN", value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Apply pending schema migrations (idempotent; refuses if an applied one was changed).
    Migrate,
    /// Create the demo organization and its admin user, once; later runs change nothing.
    Seed,
    /// Database administration.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Measure the request path, row-level security, audit appends and sign-ins against their
    /// baselines (pgbench replaying the same statements, RLS off, plain appends, raw argon2id),
    /// in a scratch database on the configured server; prints one Markdown table.
    Bench(bench::Args),
    /// Back up the embedded database while it keeps serving: PostgreSQL's own copy of the
    /// whole cluster (pg_basebackup, with the WAL it needs) and a manifest with the SHA-256 of
    /// every file and the organizations' audit chain heads. Not with DATABASE_URL (see
    /// docs/operations.md). The key files of the data directory are not in it.
    Backup {
        /// Where to write it: a new directory, or one file if the name ends in `.tar`.
        #[arg(value_name = "DEST")]
        dest: PathBuf,
    },
    /// Restore a backup into an empty data directory (it may hold the key files, nothing else):
    /// checks every file against the manifest first, then restores, starts, runs `db check`
    /// and `audit verify`, and records the restore in every organization's audit chain.
    Restore {
        /// The backup: the directory or `.tar` file `mos backup` wrote.
        #[arg(value_name = "BACKUP")]
        source: PathBuf,
        /// The last signed checkpoint: reports (and records) each organization whose restored
        /// chain ends before the head this checkpoint signed.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// The organizations' tamper-evident audit trails.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Consent receipts.
    Consent {
        #[command(subcommand)]
        command: ConsentCommand,
    },
    /// Delivery feedback: bounces and complaints about the messages campaigns sent.
    Feedback {
        #[command(subcommand)]
        command: feedback_cmd::FeedbackCommand,
    },
}

#[derive(Subcommand)]
enum ConsentCommand {
    /// Check a consent receipt offline, without a database: each notice text against its hash,
    /// each consent event against its audit record, the records' chain up to the signed link,
    /// and the signature with the organization's public key. Prints what it verified; exits 2
    /// with the reason when anything was tampered with.
    Verify {
        /// The receipt (JSON), as `GET /v1/orgs/{slug}/contacts/{id}/consent-receipt` gave it.
        #[arg(value_name = "RECEIPT")]
        receipt: PathBuf,
        /// The organization's public key: 32 bytes in hex (`mos audit public-key`), or a file
        /// holding them.
        #[arg(long, value_name = "KEY")]
        public_key: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute every organization's hash chain and report the first broken link of each, with
    /// its reason (changed, deleted, inserted, reordered); exit 2 if any is broken.
    Verify {
        /// Only the organization with this slug.
        #[arg(long)]
        org: Option<String>,
        /// Also prove that every chain still reaches the heads this signed checkpoint recorded,
        /// so that nothing was cut from the end since.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// Also check a first-use evidence document (`GET .../content/{id}/first-use/evidence`,
        /// for Form FDA 2253): each version's stored text and first message, and each audit
        /// record it names at its place in the verified chain.
        #[arg(long, value_name = "FILE")]
        evidence: Option<PathBuf>,
    },
    /// Sign every organization's current chain head with the Ed25519 key (MOS_AUDIT_SIGNING_KEY,
    /// or <data dir>/audit-signing.key, made on first use) and write the checkpoint file.
    Checkpoint {
        /// Where to write it (default: <data dir>/checkpoints/<time>.json).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Seal every committed record that awaits its place in its organization's chain, once
    /// (`serve` does this continuously).
    Seal,
    /// Print the public key (hex) that verifies checkpoints and consent receipts: the one to
    /// give to whoever checks a receipt.
    PublicKey,
}

#[derive(Subcommand)]
enum DbCommand {
    /// Inspect the live catalog for anything that weakens tenant isolation or the audit log,
    /// list every problem, and exit non-zero if there is one. On a Citus coordinator it checks
    /// every shard and worker too.
    Check,
    /// On a Citus coordinator: place every table as the plan in `mos_db::ops::citus` says (reference,
    /// distributed by organization, or on the coordinator), in an order that drops nothing.
    /// Idempotent; refuses plain PostgreSQL and pending migrations.
    Distribute,
    /// Move the embedded cluster to the PostgreSQL major version of the binaries (PG_BIN, or the
    /// newest installed): dumps it with the old major's binaries, loads it into a new cluster,
    /// runs `db check` and `audit verify`, and keeps the old cluster as <data dir>/pg-<major>
    /// (or puts it back if the new one does not check out). Stop `mos serve` first.
    Upgrade {
        /// Directory of the cluster's own major's binaries (default
        /// /usr/lib/postgresql/<major>/bin).
        #[arg(long, value_name = "DIR")]
        old_bin: Option<PathBuf>,
    },
}

/// Exit code for `db check` problems and refused starts, apart from plain failures (1).
const EXIT_PROBLEMS: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    for name in config::unknown_env_vars(&<Cli as clap::CommandFactory>::command()) {
        tracing::warn!(variable = %name, "ignoring unknown MOS_* environment variable");
    }
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let file = config::load_file(cli.config.as_deref())?;
    let listen = match &cli.command {
        Command::Serve { listen } => *listen,
        _ => None,
    };
    let flags = Layer { listen, ..cli.settings };
    let settings = Settings::resolve(flags.over(file));
    // A restore lays the cluster down before anything opens it; the offline commands need none.
    match &cli.command {
        Command::Consent { command: ConsentCommand::Verify { receipt, public_key } } => {
            return consent_verify(receipt, public_key)
        }
        Command::Audit { command: AuditCommand::PublicKey } => {
            println!("{}", audit_cmd::public_key(&settings.data_dir)?);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Restore { source, checkpoint } => {
            return backup::restore(&settings, source, checkpoint.as_deref()).await
        }
        // The binaries cannot open the cluster until it is moved.
        Command::Db { command: DbCommand::Upgrade { old_bin } } => {
            return upgrade::run(&settings, old_bin.as_deref()).await
        }
        _ => {}
    }
    // Serving takes its address first, so that a taken port is reported before a data directory
    // is created or a database migrated.
    let listener = match &cli.command {
        Command::Serve { .. } => Some(bind(settings.listen).await?),
        _ => None,
    };
    let db = Database::open(&settings).await?;
    let result = match cli.command {
        Command::Serve { .. } => match listener {
            Some(listener) => serve(&db, &settings, listener).await,
            None => unreachable!("serve binds its address before the database is opened"),
        },
        Command::Migrate => run_migrate(&db).await,
        Command::Seed => seed::run(&db).await.map(|()| ExitCode::SUCCESS),
        Command::Backup { dest } => backup::run(&db, &dest).await,
        Command::Restore { .. }
        | Command::Db { command: DbCommand::Upgrade { .. } }
        | Command::Consent { .. }
        | Command::Audit { command: AuditCommand::PublicKey } => {
            unreachable!("handled before the database is opened")
        }
        Command::Db { command: DbCommand::Check } => db_check(&db).await,
        Command::Db { command: DbCommand::Distribute } => db_distribute(&db).await,
        Command::Audit { command } => audit(&db, &settings, command).await,
        Command::Feedback { command } => feedback_cmd::run(&db, &settings, command).await,
        Command::Bench(args) => {
            let pg_bin = mos_db::ops::embedded::PgBinaries::locate(settings.pg_bin()).ok();
            bench::run(&db, args, pg_bin.as_ref().map(|b| b.dir())).await.map(|()| ExitCode::SUCCESS)
        }
    };
    db.close().await;
    result
}

async fn run_migrate(db: &Database) -> anyhow::Result<ExitCode> {
    let mut conn = db.admin().await?;
    let applied = migrate::run(&mut conn).await?;
    if applied.is_empty() {
        println!("schema is up to date ({} migrations)", migrate::MIGRATIONS.len());
    }
    for m in applied {
        println!("applied {m:?}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints every problem; true when there are none.
async fn report_check(db: &Database) -> anyhow::Result<bool> {
    let mut conn = db.admin().await?;
    let problems = check::run(&mut conn).await?;
    for p in &problems {
        tracing::error!(code = p.code, "{}", p.detail);
        println!("problem: {p}");
    }
    Ok(problems.is_empty())
}

async fn db_distribute(db: &Database) -> anyhow::Result<ExitCode> {
    let mut conn = db.admin().await?;
    match citus::distribute(&mut conn).await {
        Ok(done) if done.is_empty() => println!("every table is already placed as planned"),
        Ok(done) => done.iter().for_each(|table| println!("placed {table}")),
        Err(
            e @ (OpsError::NotCitus | OpsError::Pending { .. } | OpsError::Unplanned(_) | OpsError::Misplaced { .. }),
        ) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_PROBLEMS));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(ExitCode::SUCCESS)
}

async fn db_check(db: &Database) -> anyhow::Result<ExitCode> {
    if report_check(db).await? {
        println!("ok: row-level security, roles, audit guards and functions are as they must be");
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(EXIT_PROBLEMS))
    }
}

async fn audit(db: &Database, settings: &Settings, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { org, checkpoint, evidence } => {
            let checks = audit_cmd::Checks { checkpoint: checkpoint.as_deref(), evidence: evidence.as_deref() };
            let intact = audit_cmd::verify(db, &settings.data_dir, org.as_deref(), checks).await?;
            Ok(if intact { ExitCode::SUCCESS } else { ExitCode::from(EXIT_PROBLEMS) })
        }
        AuditCommand::Checkpoint { out } => {
            let path = audit_cmd::checkpoint(db, &settings.data_dir, out).await?;
            println!("checkpoint written to {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::PublicKey => unreachable!("handled before the database is opened"),
        AuditCommand::Seal => {
            let sweep = audit_cmd::seal(db).await?;
            println!("sealed {} record(s) of {} organization(s)", sweep.sealed, sweep.tenants);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn consent_verify(receipt: &std::path::Path, public_key: &str) -> anyhow::Result<ExitCode> {
    let key = consent_cmd::public_key(public_key)?;
    match consent_cmd::verify_file(receipt, &key)? {
        Ok(verified) => {
            for line in verified.lines {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(consent_cmd::Refused(why)) => {
            println!("refused: {why}");
            Ok(ExitCode::from(EXIT_PROBLEMS))
        }
    }
}

async fn bind(listen: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (choose another address with --listen or MOS_LISTEN)"))
}

async fn serve(db: &Database, settings: &Settings, listener: tokio::net::TcpListener) -> anyhow::Result<ExitCode> {
    db.prepare_schema().await?;
    if !report_check(db).await? {
        tracing::error!("refusing to serve: the database check found problems (see `mos db check`)");
        return Ok(ExitCode::from(EXIT_PROBLEMS));
    }
    let pool = db.app_pool().await?;
    let local = listener.local_addr()?;
    let mut state = identity::state(settings, db.is_embedded(), pool.clone(), local).await?;
    state.audit_signer = audit_cmd::server_key(&settings.data_dir, db.is_embedded()).map(std::sync::Arc::new);
    let shutdown = telemetry::shutdown_signal();
    // The public URL is the one to open: on loopback it is `localhost`, where passkeys work and
    // `127.0.0.1` would not. The socket address comes first for scripts that read it.
    let url = &state.settings.public_url;
    tracing::info!(address = %local, %url, "listening");
    println!("listening on {local}, open {url}");
    let mut background = vec![
        tokio::spawn(audit_cmd::seal_continuously(pool.clone())),
        tokio::spawn(db_watchdogs::recheck_catalog(
            db.admin_options(),
            state.readiness.clone(),
            settings.check_interval,
        )),
    ];
    if let Some(cluster) = db.owned_cluster() {
        background.push(tokio::spawn(db_watchdogs::restart_cluster_when_down(cluster.clone(), pool.clone())));
    }
    match (db.cluster(), settings.backups()) {
        (Some(cluster), Some(schedule)) => {
            tracing::info!(dir = %schedule.dir.display(), every_secs = schedule.interval.as_secs(), keep = schedule.keep, "scheduled backups are on");
            background.push(tokio::spawn(backup::scheduled(
                cluster.clone(),
                db.admin_options(),
                schedule,
                state.readiness.clone(),
            )));
        }
        (None, Some(_)) => {
            tracing::warn!("MOS_BACKUP_DIR is set, but scheduled backups are of the embedded database only; none will be taken (see docs/operations.md)")
        }
        _ => {}
    }
    let keys: std::sync::Arc<dyn mos_domain::audiences::AddressKeyer> =
        std::sync::Arc::new(state.sealer.address_keys().clone());
    let outbox = identity::outbox(settings, &state, keys.clone())?;
    let deliverer = std::sync::Arc::new(mos_http::webhooks::Deliverer::new(
        std::sync::Arc::new(state.sealer.clone()),
        state.settings.webhooks.clone(),
    )?);
    let runner = jobs::runner(pool.clone(), settings.jobs.clone(), keys, outbox, Some(deliverer));
    state.jobs = Some(runner.waker());
    let jobs = runner.start();
    tracing::info!(workers = settings.jobs.workers, "background jobs are on");
    let served = mos_http::serve(listener, state, settings.http, shutdown).await;
    // Running jobs stop at their next checkpoint and go back to the queue for the next start.
    jobs.shutdown().await;
    // A sweep cut short rolls back whole; the next server picks up where it stopped.
    background.iter().for_each(tokio::task::JoinHandle::abort);
    pool.close().await;
    served.context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
