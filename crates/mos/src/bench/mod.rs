//! `mos bench`: the request path measured against its own baselines, in one run on one machine,
//! each case alternating with its baseline so that a noisy machine's drift hits both alike. It
//! builds its data in a scratch database of the configured server, starts `mos serve` on it as
//! a process of its own, prints one Markdown table, and drops the database. It measures;
//! nothing in it asserts a time.

mod append;
mod data;
mod import;
mod login;
mod measure;
mod mix;
mod rls;
mod segments;
mod send;
mod server;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mos_auth::PasswordHasher;
use mos_db::ops::migrate;
use secrecy::SecretString;
use sqlx::postgres::PgPoolOptions;
use sqlx::{ConnectOptions, Connection};

use crate::database::Database;
use measure::Run;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Organizations of the request mix.
    #[arg(long, default_value_t = 100)]
    orgs: usize,
    /// Members of each organization.
    #[arg(long, default_value_t = 50)]
    members: usize,
    /// Audit records, spread evenly over the organizations.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Seconds of each measured run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Runs of each case and of its baseline, alternating.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Concurrent clients of the request mix and of the RLS case.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Tenant counts of the scaling case, smallest first.
    #[arg(long, value_delimiter = ',', default_value = "10,1000,10000")]
    tenant_steps: Vec<usize>,
    /// Audit records of each tenant in the scaling case.
    #[arg(long, default_value_t = 20)]
    rows_per_tenant: usize,
    /// Concurrent writers of the audit-append case (and tenants, in its many-tenants run).
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Concurrent sign-ins of the login storm.
    #[arg(long, default_value_t = 100)]
    logins: usize,
    /// Contacts of the large tenants of the segment and consent cases, one tenant each.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    segment_contacts: Vec<usize>,
    /// Contacts of the import case's file.
    #[arg(long, default_value_t = 1_000_000)]
    import_rows: usize,
    /// Contacts of the send case's campaign, sent end to end.
    #[arg(long, default_value_t = 100_000)]
    send_contacts: usize,
    /// Contacts of the send case's second campaign, only launched (the audience snapshot).
    #[arg(long, default_value_t = 1_000_000)]
    launch_contacts: usize,
    /// Which cases to run (`import` and `send` only when asked for).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "mix,rls,logins,append,scaling,segments,consent")]
    cases: Vec<Case>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// The request mix through HTTP and the data layer, against pgbench.
    Mix,
    /// Row-level security on against off.
    Rls,
    /// Sign-ins against raw password verification; other requests during a storm of them.
    Logins,
    /// Chained against plain audit appends.
    Append,
    /// The same read with more and more tenants.
    Scaling,
    /// A segment's count with RLS against the same statement as the owner.
    Segments,
    /// The per-message consent check against a primary-key read.
    Consent,
    /// A CSV import through `mos serve`'s job runner, against a bare COPY of the file.
    Import,
    /// A campaign sent end to end to smtp-sink, against the relay alone; a large launch.
    Send,
}

/// A bound on a ratio, and which side of it is good.
#[derive(Clone, Copy)]
enum Target {
    AtLeast(f64),
    AtMost(f64),
}

impl Target {
    fn met(self, ratio: f64) -> bool {
        match self {
            Target::AtLeast(t) => ratio >= t,
            Target::AtMost(t) => ratio <= t,
        }
    }

    fn text(self) -> String {
        match self {
            Target::AtLeast(t) => format!("≥ {t:.2}"),
            Target::AtMost(t) => format!("≤ {t:.2}"),
        }
    }
}

struct Row {
    case: String,
    baseline: String,
    ours: String,
    ratio: Option<(f64, Target)>,
    latency: String,
    cpu: String,
}

fn cores(c: Option<f64>) -> String {
    c.map_or_else(|| "n/a".into(), |c| format!("{c:.2}"))
}

/// PostgreSQL, server and client (this process) cores: of our side, then of the baseline.
fn cpu_text(ours: &Run, baseline: Option<&Run>) -> String {
    let one = |r: &Run| format!("{} / {} / {}", cores(r.cpu.postgres), cores(r.cpu.server), cores(Some(r.cpu.bench)));
    match baseline {
        Some(b) => format!("{} (baseline {})", one(ours), one(b)),
        None => one(ours),
    }
}

fn latency_text(r: &Run) -> String {
    format!("{:.2} / {:.2}", r.percentile(50.0), r.percentile(99.0))
}

/// Throughput of ours against the baseline's.
fn throughput(case: &str, baseline: &Run, ours: &Run, target: Target) -> Row {
    Row {
        case: case.into(),
        baseline: format!("{:.0}/s", baseline.rate()),
        ours: format!("{:.0}/s", ours.rate()),
        ratio: Some((ours.rate() / baseline.rate().max(f64::EPSILON), target)),
        latency: format!("{} (baseline {})", latency_text(ours), latency_text(baseline)),
        cpu: cpu_text(ours, Some(baseline)),
    }
}

fn print(rows: &[Row], args: &Args) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "\n{cpus} cores; {} organizations × {} members, {} audit records; {} clients; {} × {} s per case and baseline\n",
        args.orgs, args.members, args.records, args.clients, args.rounds, args.seconds
    );
    println!("| Case | Baseline | Ours | Ratio | Target | p50 / p99 ms | CPU cores: PostgreSQL / mos / client |");
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        let (ratio, target) = match row.ratio {
            Some((ratio, target)) => (
                format!("{ratio:.2}"),
                format!("{} {}", target.text(), if target.met(ratio) { "met" } else { "**missed**" }),
            ),
            None => (String::new(), String::new()),
        };
        println!(
            "| {} | {} | {} | {ratio} | {target} | {} | {} |",
            row.case, row.baseline, row.ours, row.latency, row.cpu
        );
    }
}

/// `rounds` runs of the baseline and of ours, alternating.
async fn interleaved<B, BF, O, OF>(rounds: usize, mut baseline: B, mut ours: O) -> anyhow::Result<(Run, Run)>
where
    B: FnMut() -> BF,
    BF: Future<Output = anyhow::Result<Run>>,
    O: FnMut() -> OF,
    OF: Future<Output = anyhow::Result<Run>>,
{
    let (mut b, mut o) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        b.push(baseline().await?);
        o.push(ours().await?);
    }
    Ok((Run::merge(b), Run::merge(o)))
}

pub async fn run(db: &Database, args: Args, pg_bin: Option<&std::path::Path>) -> anyhow::Result<()> {
    let name = format!("mos_bench_{}", uuid::Uuid::now_v7().simple());
    let mut admin = db.admin().await?;
    sqlx::raw_sql(&format!("create database {name}"))
        .execute(&mut admin)
        .await
        .context("creating the scratch database")?;
    let result = measure_all(db, &name, &args, pg_bin).await;
    sqlx::raw_sql(&format!("drop database {name} with (force)"))
        .execute(&mut admin)
        .await
        .context("dropping the scratch database")?;
    print(&result?, &args);
    Ok(())
}

async fn measure_all(
    db: &Database,
    name: &str,
    args: &Args,
    pg_bin: Option<&std::path::Path>,
) -> anyhow::Result<Vec<Row>> {
    let duration = Duration::from_secs(args.seconds.max(1));
    let warm_up = Duration::from_secs(1);
    let clients = args.clients.max(1);
    let orgs = args.orgs.max(1);
    let admin_options = db.admin_options().database(name);
    let mut admin = admin_options.connect().await?;
    migrate::run(&mut admin).await?;
    let pool = db.app_pool_on(Some(name), (clients.max(args.writers) + 2) as u32).await?;
    let admin_pool = PgPoolOptions::new()
        .max_connections(clients as u32)
        // As the application pool: no ping before each use.
        .test_before_acquire(false)
        .connect_with(admin_options.clone())
        .await?;

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let storm_size = args.logins.clamp(1, orgs * args.members.max(1));
    let hash = PasswordHasher::new(cpus).hash(SecretString::from(login::PASSWORD.to_owned())).await?;
    eprintln!("building {orgs} organizations × {} members and {} audit records...", args.members, args.records);
    data::build(&mut admin, &pool, orgs, args.members, args.records, &hash).await?;

    let (admin_url, app_url) = db.urls_on(name);
    let scratch = tempfile::tempdir()?;
    let server = server::Server::start(&admin_url, app_url.as_ref(), scratch.path(), clients).await?;
    let pgbench_url = app_url.clone().unwrap_or_else(|| admin_url.clone());
    let baseline = || mix::baseline(&pgbench_url, app_url.is_some(), pg_bin, orgs, clients, duration);
    let mut rows = Vec::new();

    let wants = |case: Case| args.cases.contains(&case);
    if wants(Case::Mix) {
        eprintln!("request mix: HTTP, data layer and pgbench...");
        mix::baseline(&pgbench_url, app_url.is_some(), pg_bin, orgs, clients, warm_up).await?;
        mix::http(&server.base, orgs, clients, warm_up, server.pid).await?;
        // As many connections as pgbench opens, here and in the server.
        let mix_pool = db.app_pool_on(Some(name), clients as u32).await?;
        mix::data_layer(&mix_pool, orgs, clients, warm_up).await?;
        let (pg_http, http) =
            interleaved(args.rounds, baseline, || mix::http(&server.base, orgs, clients, duration, server.pid)).await?;
        let peak = measure::memory_mib(server.pid);
        rows.push(throughput("HTTP mix vs pgbench (same statements)", &pg_http, &http, Target::AtLeast(0.6)));
        let (pg_data, data_layer) =
            interleaved(args.rounds, baseline, || mix::data_layer(&mix_pool, orgs, clients, duration)).await?;
        mix_pool.close().await;
        rows.push(throughput("Data layer mix vs pgbench", &pg_data, &data_layer, Target::AtLeast(0.9)));
        if let Some((_, peak)) = peak {
            rows.push(Row {
                case: "mos serve resident memory, peak during the HTTP mix".into(),
                baseline: String::new(),
                ours: format!("{peak:.0} MiB"),
                ratio: None,
                latency: String::new(),
                cpu: String::new(),
            });
        }
    }

    if wants(Case::Rls) {
        eprintln!("row-level security...");
        // As many connections as the administrator's pool, so that only RLS differs.
        let rls_pool = db.app_pool_on(Some(name), clients as u32).await?;
        let tenants = Arc::new(rls::tenants(&admin_pool, "bench-").await?);
        rls::without_rls(&admin_pool, tenants.clone(), clients, warm_up).await?;
        rls::with_rls(&rls_pool, tenants.clone(), clients, warm_up).await?;
        let (off, on) = interleaved(
            args.rounds,
            || rls::without_rls(&admin_pool, tenants.clone(), clients, duration),
            || rls::with_rls(&rls_pool, tenants.clone(), clients, duration),
        )
        .await?;
        rls_pool.close().await;
        let mut row = throughput(
            &format!("RLS: audit page + count, {orgs} tenants, {} records (cost: RLS off / on)", args.records),
            &off,
            &on,
            Target::AtMost(1.10),
        );
        row.ratio = Some((off.rate() / on.rate().max(f64::EPSILON), Target::AtMost(1.10)));
        rows.push(row);
    }

    if wants(Case::Logins) {
        eprintln!("sign-ins...");
        let raw = login::raw_verify(&hash, duration).await?;
        let logins = login::storm(&server.base, orgs, args.members, storm_size, duration, server.pid).await?;
        rows.push(throughput(
            &format!("Logins/s ({storm_size} at once) vs raw argon2id verifications on {cpus} cores"),
            &raw,
            &logins,
            Target::AtLeast(0.9),
        ));
        let calm = login::me(&server.base, duration, server.pid).await?;
        let (stormy, _) = tokio::join!(
            login::me(&server.base, duration, server.pid),
            login::storm(&server.base, orgs, args.members, storm_size, duration, server.pid)
        );
        let stormy = stormy?;
        rows.push(Row {
            case: format!("GET /v1/me p99 during {storm_size} concurrent logins vs without"),
            baseline: format!("{:.2} ms", calm.percentile(99.0)),
            ours: format!("{:.2} ms", stormy.percentile(99.0)),
            ratio: Some((stormy.percentile(99.0) / calm.percentile(99.0).max(f64::EPSILON), Target::AtMost(2.0))),
            latency: format!("{} (without {})", latency_text(&stormy), latency_text(&calm)),
            cpu: cpu_text(&stormy, Some(&calm)),
        });
        if let Some((idle, _)) = measure::memory_mib(server.pid) {
            rows.push(Row {
                case: "mos serve resident memory, idle after the sign-ins".into(),
                baseline: String::new(),
                ours: format!("{idle:.0} MiB"),
                ratio: None,
                latency: String::new(),
                cpu: String::new(),
            });
        }
    }
    server.stop().await?;

    if wants(Case::Append) {
        eprintln!("audit appends...");
        append::prepare(&mut admin).await?;
        sqlx::query(
            "insert into app.organizations (id, slug, name)
         select public.bench_uuid7(), 'append-' || i, 'Append ' || i from generate_series(0, $1 - 1) i",
        )
        .bind(args.writers.max(1) as i64)
        .execute(&mut admin)
        .await?;
        let writers = args.writers.max(1);
        let many = Arc::new(rls::tenants(&admin_pool, "append-").await?);
        let one = Arc::new(many[..1].to_vec());
        for (label, tenants, target) in [
            (format!("Audit append, 1 tenant × {writers} writers: chained vs plain"), one, 0.8),
            (format!("Audit append, {writers} tenants × 1 writer: chained vs plain"), many, 0.85),
        ] {
            append::plain(&pool, tenants.clone(), writers, warm_up).await?;
            let lag = Arc::new(std::sync::Mutex::new(Duration::ZERO));
            let (plain, chained) = interleaved(
                args.rounds,
                || append::plain(&pool, tenants.clone(), writers, duration),
                || {
                    let (pool, tenants, lag) = (pool.clone(), tenants.clone(), lag.clone());
                    async move {
                        let (run, sealed_after) = append::chained(&pool, tenants, writers, duration).await?;
                        let mut longest = lag.lock().map_err(|_| anyhow::anyhow!("a measurement panicked"))?;
                        *longest = (*longest).max(sealed_after);
                        Ok(run)
                    }
                },
            )
            .await?;
            let mut row = throughput(&label, &plain, &chained, Target::AtLeast(target));
            let lag = *lag.lock().map_err(|_| anyhow::anyhow!("a measurement panicked"))?;
            row.ours = format!("{} (sealed {} ms after)", row.ours, lag.as_millis());
            rows.push(row);
        }
    }

    if wants(Case::Scaling) {
        eprintln!("tenants scaling...");
        let mut have = 0;
        let mut steps = Vec::new();
        for &step in &args.tenant_steps {
            data::add_scale_tenants(&mut admin, &pool, have, step, args.rows_per_tenant).await?;
            have = have.max(step);
            let tenants = Arc::new(rls::tenants(&admin_pool, "scale-").await?);
            rls::with_rls(&pool, tenants.clone(), clients, warm_up).await?;
            let run = rls::with_rls(&pool, tenants, clients, duration).await?;
            rows.push(Row {
                case: format!("Audit page + count with RLS, {step} tenants × {} records", args.rows_per_tenant),
                baseline: String::new(),
                ours: format!("{:.0}/s", run.rate()),
                ratio: None,
                latency: latency_text(&run),
                cpu: cpu_text(&run, None),
            });
            steps.push(run);
        }
        if let (Some(first), Some(last)) = (steps.first(), steps.last()) {
            let p50 = last.percentile(50.0) / first.percentile(50.0).max(f64::EPSILON);
            let p99 = last.percentile(99.0) / first.percentile(99.0).max(f64::EPSILON);
            rows.push(Row {
                case: "Tenants scaling: largest vs smallest, p50 and p99 (worse of the two)".into(),
                baseline: format!("{:.2} / {:.2} ms", first.percentile(50.0), first.percentile(99.0)),
                ours: format!("{:.2} / {:.2} ms", last.percentile(50.0), last.percentile(99.0)),
                ratio: Some((p50.max(p99), Target::AtMost(1.2))),
                latency: String::new(),
                cpu: String::new(),
            });
        }
    }

    if wants(Case::Segments) || wants(Case::Consent) {
        rows.extend(segments::measure(&mut admin, &pool, &admin_pool, args, warm_up, duration).await?);
    }
    if wants(Case::Import) {
        rows.extend(import::measure(db, name, &mut admin, &pool, args.import_rows, args.rounds).await?);
    }
    if wants(Case::Send) {
        rows.extend(send::measure(&mut admin, &pool, args.send_contacts, args.launch_contacts).await?);
    }

    pool.close().await;
    admin_pool.close().await;
    admin.close().await?;
    Ok(rows)
}
