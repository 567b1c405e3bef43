//! The request mix: 40% member lists, 40% audit pages of 20, 20% renames, each by the ADMIN of a
//! random organization. Three ways to run it: through the HTTP API, through the data layer
//! in-process, and as `pgbench` replaying the very statements the data layer sends (the
//! baseline both are held against).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use mos_db::request::{Authorization, Hold, SessionRules};
use mos_db::{audit, orgs, request, AppPool};
use mos_domain::{OrgName, RequestSource, Slug};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};

use super::data;
use super::measure::{self, Run};

#[derive(Clone, Copy)]
enum Op {
    Members,
    AuditPage,
    Rename,
}

/// Operation `n` of a client: the 40/40/20 mix, in a fixed cycle.
fn op(n: u64) -> Op {
    match n % 5 {
        0 | 2 => Op::Members,
        1 | 3 => Op::AuditPage,
        _ => Op::Rename,
    }
}

const PAGE: i64 = 20;

/// Through the HTTP API of the server at `base`.
pub async fn http(base: &str, orgs: usize, clients: usize, duration: Duration, server: u32) -> anyhow::Result<Run> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(clients).build()?;
    let base: Arc<str> = base.into();
    measure::drive(clients, duration, Some(server), move |_, n| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let i = rand::thread_rng().gen_range(0..orgs);
            let slug = data::slug(i);
            let request = match op(n) {
                Op::Members => client.get(format!("{base}/v1/orgs/{slug}/members")),
                Op::AuditPage => client.get(format!("{base}/v1/orgs/{slug}/audit-logs?limit={PAGE}")),
                Op::Rename => client
                    .patch(format!("{base}/v1/orgs/{slug}"))
                    .json(&serde_json::json!({ "name": format!("Bench {i} {n}") })),
            };
            let response = request.bearer_auth(data::token(i)).send().await?;
            anyhow::ensure!(response.status().is_success(), "{} answered {}", response.url(), response.status());
            response.bytes().await?;
            Ok(())
        }
    })
    .await
}

/// Through the data layer, as the handlers call it, without HTTP.
pub async fn data_layer(pool: &AppPool, orgs: usize, clients: usize, duration: Duration) -> anyhow::Result<Run> {
    let pool = pool.clone();
    let rules = SessionRules { idle: chrono::Duration::days(1), touch_every: chrono::Duration::minutes(1) };
    measure::drive(clients, duration, None, move |_, n| {
        let pool = pool.clone();
        async move {
            let i = rand::thread_rng().gen_range(0..orgs);
            let op = op(n);
            let slug = Slug::parse(&data::slug(i))?;
            let hold = if matches!(op, Op::Rename) { Hold::Member } else { Hold::Nothing };
            let authorized = pool.authorize(&data::token_hash(i), &slug, Utc::now(), rules, hold).await?;
            let Some(Authorization::Member { session, mut tx, .. }) = authorized else {
                anyhow::bail!("the session of {slug} was refused");
            };
            match op {
                Op::Members => {
                    orgs::members(&mut tx).await?;
                }
                Op::AuditPage => {
                    audit::search(&mut tx, &audit::Filter::default(), PAGE + 1).await?;
                }
                Op::Rename => {
                    let name = OrgName::parse(&format!("Bench {i} {n}"))?;
                    let changes = orgs::Changes { name: Some(&name), ..Default::default() };
                    orgs::change(&mut tx, changes, Utc::now(), session.user, &RequestSource::default()).await?;
                }
            }
            tx.commit().await?;
            Ok(())
        }
    })
    .await
}

/// `sql` with `$1`, `$2`, ... replaced by `values`, highest number first so that `$1` does not
/// eat into `$10`.
fn bind(sql: &str, values: &[&str]) -> String {
    let mut out = sql.to_owned();
    for (n, value) in values.iter().enumerate().rev() {
        out = out.replace(&format!("${}", n + 1), value);
    }
    out
}

/// The three transactions as `pgbench` scripts, built from the data layer's own statements. The
/// two context settings go in one `set_config` statement, since `pgbench` cannot pass
/// parameters to `SET`: the same single round trip.
fn scripts() -> [(&'static str, String, u32); 3] {
    let context = |hold: bool| {
        let mut head = format!(
            "\\set i random(0, :orgs - 1)\nbegin;\n{} \\gset\n\
             select set_config('app.current_tenant_id', :organization_id, true), set_config('app.current_user_id', :user_id, true);\n",
            bind(
                request::CONTEXT,
                &[&data::token_hash_sql(":i"), "'bench-' || :i", "now()", "interval '1 day'", "interval '1 minute'"]
            )
        );
        if hold {
            head.push_str(&format!("{};\n", bind(request::HOLD, &[":organization_id", ":user_id"])));
        }
        head
    };
    let members = format!("{}{};\ncommit;\n", context(false), orgs::MEMBERS);
    // The list's statement with no filter: the tenant and the limit.
    let limit = (PAGE + 1).to_string();
    let search = audit::search_sql(&audit::Filter::default());
    let page = format!("{}{};\ncommit;\n", context(false), bind(&search, &[":organization_id", &limit]));
    let changes = r#"'{"name": {"from": "Bench", "to": "Bench renamed"}}'"#;
    let rename = format!(
        "{}{};\n{};\n{};\ncommit;\n",
        context(true),
        bind(orgs::GET, &[":organization_id"]),
        bind(orgs::UPDATE, &[":organization_id", "'Bench ' || :i || ' renamed'", "null", "now()", "null", "null"]),
        bind(
            &audit::tenant_insert_sql(),
            &[
                ":organization_id",
                "public.bench_uuid7()",
                ":user_id",
                "'org.updated'",
                "'organization'",
                ":organization_id",
                "'success'",
                "null",
                "null",
                "null",
                changes,
                "'{}'"
            ]
        ),
    );
    [("members", members, 4), ("audit_page", page, 4), ("rename", rename, 2)]
}

/// The `pgbench` of the machine: on the `PATH`, or beside the embedded cluster's binaries.
fn pgbench(pg_bin: Option<&Path>) -> anyhow::Result<std::path::PathBuf> {
    let beside = pg_bin.map(|d| d.join("pgbench")).filter(|p| p.exists());
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("pgbench")).find(|p| p.exists()));
    beside.or(on_path).context("pgbench not found: install PostgreSQL's client programs (Debian: postgresql-client)")
}

/// `pgbench` running the scripts as `app_user` with prepared statements, `clients` connections,
/// logging each transaction's latency.
pub async fn baseline(
    app_url: &SecretString,
    as_app_user: bool,
    pg_bin: Option<&Path>,
    orgs: usize,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let mut command = tokio::process::Command::new(pgbench(pg_bin)?);
    command
        .current_dir(dir.path())
        .args(["--no-vacuum", "--protocol=prepared", "--log", "--log-prefix=txn"])
        .arg(format!("--client={clients}"))
        .arg(format!("--jobs={}", clients.min(2)))
        .arg(format!("--time={}", duration.as_secs().max(1)))
        .arg(format!("--define=orgs={orgs}"));
    for (name, script, weight) in scripts() {
        let path = dir.path().join(format!("{name}.sql"));
        std::fs::write(&path, script)?;
        command.arg(format!("--file={}@{weight}", path.display()));
    }
    if !as_app_user {
        // Logged in as the administrator: switch to `app_user`, so that RLS applies as to the API.
        command.env("PGOPTIONS", "-c role=app_user");
    }
    command.arg(app_url.expose_secret()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let meter = measure::Meter::start(None);
    let started = std::time::Instant::now();
    let output = command.output().await.context("running pgbench")?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = meter.stop(seconds);
    anyhow::ensure!(output.status.success(), "pgbench failed: {}", String::from_utf8_lossy(&output.stderr));
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(dir.path())?.flatten() {
        if entry.file_name().to_string_lossy().starts_with("txn") {
            for line in std::fs::read_to_string(entry.path())?.lines() {
                // client, transaction, latency (µs), script, epoch, µs
                if let Some(latency) = line.split_whitespace().nth(2).and_then(|v| v.parse::<u32>().ok()) {
                    latencies.push(latency);
                }
            }
        }
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let tps = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = ")?.split_whitespace().next()?.parse::<f64>().ok())
        .context("pgbench printed no tps")?;
    let measured = tps * duration.as_secs_f64();
    // pgbench's own duration excludes its connection set-up; its CPU is the machine's meanwhile.
    Ok(Run { ops: measured.round() as u64, seconds: duration.as_secs_f64(), latencies, cpu })
}

#[cfg(test)]
mod tests {
    use super::{bind, scripts};

    #[test]
    fn parameters_are_replaced_from_the_highest_number_down() {
        assert_eq!(bind("$1 $10 $2", &["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]), "a j b");
    }

    #[test]
    fn the_scripts_hold_no_parameter_placeholders() {
        // A placeholder left over, or one eaten into by a lower one (`$1` of `$10`), shows here.
        for (name, script, _) in scripts() {
            assert!(!script.contains('$'), "{name}: {script}");
        }
    }
}
