//! The contact import through its real path: a CSV of contacts with five attributes, two tags
//! and a consent provenance, uploaded as the upload route stores it, and imported by the job
//! runner of a `mos serve` process of its own; against a bare `COPY` of the same file into a
//! table with no constraint, index or policy, in the same run. `mos serve`'s resident memory is
//! read before, during and after the import.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use mos_db::audiences::import::{self, Mapping, Provenance, Target, Upload};
use mos_db::audiences::{attributes, purposes};
use mos_db::{jobs, orgs, users, AppPool};
use mos_domain::audiences::{AttributeKind, AttributeName, NoticeText};
use mos_domain::{Email, OrgId, OrgName, RequestSource, Role, Slug, UserId};
use sqlx::PgConnection;

use super::measure::{memory_mib, Meter, Run};
use super::server::Server;
use super::{cpu_text, Row, Target as Bound};
use crate::database::Database;

/// The table the baseline copies into: every column text, nothing checked.
const PLAIN_TABLE: &str = "create table public.bench_import_plain (
    address text, name text, tags text, plan text, visits text, born text, active text, note text)";

/// A well-formed argon2id string; nobody signs in as the importer.
const PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

const CHOICES: [&str; 3] = ["basic", "plus", "family"];

/// The file: a header and `rows` contacts, each with a name, two tags and five attributes (a
/// choice, a number, a date, a boolean and a text).
pub fn csv(rows: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows * 120 + 64);
    out.extend_from_slice(b"email,name,tags,plan,visits,born,active,note\n");
    for i in 0..rows {
        let line = format!(
            "patient{i}@clinic{}.example,Patient {i},t{}|t{},{},{},{}-{:02}-{:02},{},\"note {i}, kept\"\n",
            i % 97,
            i % 7,
            i % 11,
            CHOICES[i % CHOICES.len()],
            i % 40,
            1940 + i % 60,
            1 + i % 12,
            1 + i % 28,
            i % 2 == 0,
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// Copies the file into the plain table as the administrator; the rows copied and how long.
async fn bare_copy(admin: &mut PgConnection, file: &[u8]) -> anyhow::Result<Run> {
    sqlx::raw_sql("truncate public.bench_import_plain").execute(&mut *admin).await?;
    let meter = Meter::start(None);
    let started = Instant::now();
    let mut copy = admin.copy_in_raw("copy public.bench_import_plain from stdin (format csv, header)").await?;
    copy.send(file).await?;
    let rows = copy.finish().await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Run { ops: rows, seconds, latencies: Vec::new(), cpu: meter.stop(seconds) })
}

/// A new organization with its ADMIN, the five attributes and a purpose with a notice.
async fn tenant(pool: &AppPool, n: usize) -> anyhow::Result<(OrgId, UserId, Provenance)> {
    let (src, now) = (RequestSource::default(), Utc::now());
    let admin = UserId::new();
    let mut tx = pool.begin_user(admin).await?;
    users::insert(&mut tx, &Email::parse(&format!("importer{n}@bench.example"))?, PASSWORD_HASH, Some(now)).await?;
    tx.commit().await?;
    let org = OrgId::new();
    let mut tx = pool.begin_tenant(org, Some(admin)).await?;
    orgs::insert(&mut tx, &Slug::parse(&format!("import-{n}"))?, &OrgName::parse(&format!("Import {n}"))?).await?;
    orgs::add_member(&mut tx, admin, Role::Admin).await?;
    let kinds = [
        ("plan", AttributeKind::Choice { choices: CHOICES.iter().map(|c| (*c).to_owned()).collect() }),
        ("visits", AttributeKind::Number),
        ("born", AttributeKind::Date),
        ("active", AttributeKind::Boolean),
        ("note", AttributeKind::text(100)?),
    ];
    for (name, kind) in &kinds {
        attributes::define(&mut tx, &AttributeName::parse(name)?, kind, admin, now, &src).await?;
    }
    let purpose = purposes::create(&mut tx, "Newsletter", false, admin, now, &src).await?;
    let notice = NoticeText::parse("We send a monthly newsletter.")?;
    let notice = purposes::publish_notice(&mut tx, purpose, &notice, admin, now, &src).await?;
    tx.commit().await?;
    let provenance = Provenance {
        purpose,
        exemption: None,
        notice_sha256: hex::encode(notice.as_bytes()),
        description: "Benchmark list".into(),
    };
    Ok((org, admin, provenance))
}

/// What the server's memory did during one import, in MiB.
struct Memory {
    before: (f64, f64),
    during: f64,
    after: (f64, f64),
}

/// Uploads the file to a new tenant, starts its import and waits for the server's runner to
/// finish it. Timed from the start's commit to the job's end as the job records it.
async fn through_the_server(pool: &AppPool, server: &Server, file: &[u8], n: usize) -> anyhow::Result<(Run, Memory)> {
    let (org, admin, provenance) = tenant(pool, n).await?;
    let mut tx = pool.begin_tenant(org, Some(admin)).await?;
    let id = import::create(&mut tx, "contacts.csv", admin, Utc::now()).await?;
    let mut upload = Upload::new(id);
    for piece in file.chunks(64 * 1024) {
        upload.push(&mut tx, piece).await?;
    }
    upload.finish(&mut tx).await?;
    tx.commit().await?;
    let mapping: Mapping = vec![
        Some(Target::Address),
        Some(Target::Name),
        Some(Target::Tags),
        Some(Target::Attribute("plan".into())),
        Some(Target::Attribute("visits".into())),
        Some(Target::Attribute("born".into())),
        Some(Target::Attribute("active".into())),
        Some(Target::Attribute("note".into())),
    ];

    let before = memory_mib(server.pid).context("reading mos serve's memory")?;
    let mut during = before.0;
    let meter = Meter::start(Some(server.pid));
    let mut tx = pool.begin_tenant(org, Some(admin)).await?;
    let job = import::start(&mut tx, id, &mapping, Some(&provenance), Utc::now())
        .await?
        .map_err(|e| anyhow::anyhow!("the import did not start: {e}"))?;
    tx.commit().await?;
    let started = Instant::now();
    let finished = loop {
        // The runner reports progress once per batch; a tenth of a second is far below the
        // import's duration.
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some((now, _)) = memory_mib(server.pid) {
            during = during.max(now);
        }
        let mut tx = pool.begin_tenant(org, None).await?;
        let state = jobs::get(&mut tx, job).await?.context("the import's job is gone")?;
        tx.commit().await?;
        if state.state.is_finished() {
            break state;
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let cpu = meter.stop(seconds);
    let after = memory_mib(server.pid).context("reading mos serve's memory")?;
    let mut tx = pool.begin_tenant(org, None).await?;
    let imported = import::get(&mut tx, id).await?.context("the import is gone")?;
    tx.commit().await?;
    anyhow::ensure!(
        finished.state == jobs::JobState::Succeeded && imported.imported as usize == file_rows(file),
        "the import ended {:?} with {} of {} rows imported: {:?}",
        finished.state,
        imported.imported,
        file_rows(file),
        finished.last_error
    );
    let run = Run { ops: imported.imported as u64, seconds, latencies: Vec::new(), cpu };
    Ok((run, Memory { before, during, after }))
}

fn file_rows(file: &[u8]) -> usize {
    file.iter().filter(|b| **b == b'\n').count().saturating_sub(1)
}

/// The import case: `rounds` imports of `rows` contacts, each into a new tenant, alternating
/// with bare copies of the same file.
pub async fn measure(
    db: &Database,
    name: &str,
    admin: &mut PgConnection,
    pool: &AppPool,
    rows: usize,
    rounds: usize,
) -> anyhow::Result<Vec<Row>> {
    let file = csv(rows);
    eprintln!("contact import: {rows} rows, {} MiB...", file.len() >> 20);
    sqlx::raw_sql(PLAIN_TABLE).execute(&mut *admin).await?;
    let (admin_url, app_url) = db.urls_on(name);
    let scratch = tempfile::tempdir()?;
    let server = Server::start(&admin_url, app_url.as_ref(), scratch.path(), 4).await?;
    let (mut copies, mut imports, mut memory) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds.max(1) {
        copies.push(bare_copy(admin, &file).await?);
        let (run, m) = through_the_server(pool, &server, &file, round).await?;
        imports.push(run);
        memory.push(m);
    }
    server.stop().await?;
    sqlx::raw_sql("drop table public.bench_import_plain").execute(&mut *admin).await?;
    let (copy, ours) = (Run::merge(copies), Run::merge(imports));
    // The issue sets no bound on the ratio to a bare COPY, only reports it: it is in the text.
    let mut rows_out = vec![Row {
        case: format!("Contact import, {rows} rows (5 attributes, 2 tags, a grant each) vs bare COPY of the file"),
        baseline: format!("{:.0} rows/s", copy.rate()),
        ours: format!("{:.0} rows/s ({:.3} of the COPY)", ours.rate(), ours.rate() / copy.rate().max(f64::EPSILON)),
        ratio: None,
        latency: String::new(),
        cpu: cpu_text(&ours, Some(&copy)),
    }];
    rows_out.push(Row {
        case: "Contact import, absolute: rows/s against the 50,000 target".into(),
        baseline: "50000 rows/s".into(),
        ours: format!("{:.0} rows/s", ours.rate()),
        ratio: Some((ours.rate() / 50_000.0, Bound::AtLeast(1.0))),
        latency: String::new(),
        cpu: String::new(),
    });
    for (round, m) in memory.iter().enumerate() {
        rows_out.push(Row {
            case: format!(
                "mos serve resident memory, import {}: now / peak before, highest seen during, now / peak after",
                round + 1
            ),
            baseline: String::new(),
            ours: format!(
                "{:.0} / {:.0} MiB; {:.0} MiB; {:.0} / {:.0} MiB",
                m.before.0, m.before.1, m.during, m.after.0, m.after.1
            ),
            ratio: None,
            latency: String::new(),
            cpu: String::new(),
        });
    }
    Ok(rows_out)
}
