//! Sending a campaign end to end, and launching a large one (the campaigns issue's performance
//! targets; docs/performance.md, "Sending").
//!
//! The campaign is the tests' own (`mos_db::fixtures::campaign`: an approved piece and template,
//! a purpose with its notice, a sender with a DKIM key, a segment of everyone) with N contacts
//! added in bulk, each with a live grant. It is launched (the audience snapshot, timed) and then
//! sent by the job runner of this process with the real handler (`mos_http::sending::run`:
//! claim, consent and suppression re-check, render, DKIM signature, SMTP, ledger update) to
//! Postfix's `smtp-sink` on loopback, until the campaign is finished. The baseline, in the same
//! run, sends as many pre-rendered, pre-signed messages through the same relay client with the
//! same concurrency, and nothing else. CPU is split between this process (which is `mos` here:
//! the runner and the sending path run in it), the benchmark database's PostgreSQL processes and
//! the sink. The launch of `--launch-contacts` is measured last, on an organization of its own,
//! with no runner left to send it.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use mos_auth::{Click, DkimKeyPair, Sealer};
use mos_db::audiences::consent::Evidence;
use mos_db::audiences::unsubscribe::{self, Change, Intent};
use mos_db::campaigns::{self, Launch};
use mos_db::fixtures::campaign::{self as fixture, Org};
use mos_db::jobs::runner::RunnerConfig;
use mos_db::AppPool;
use mos_domain::audiences::AddressKeyer;
use mos_domain::senders::{DkimDomain, FromName, PostalAddress, Selector};
use mos_domain::{ContactId, ContentId, Email, OrgId, PurposeId, RequestSource};
use mos_http::clicks::Follower;
use mos_http::sending::{Links, Outbox};
use mos_mail::smtp::{Delivery, Relay, RelayConfig};
use mos_mail::{
    render, Content, DkimSigner, Envelope, Essentials, Field, Fields, HttpsUrl, Mailbox, Message, MessageId,
    Personalisation, Signed, Template,
};
use secrecy::SecretBox;
use sqlx::{Executor, PgConnection};
use tokio::process::{Child, Command};

use super::measure::{memory_mib, process_ticks, Run, TICKS_PER_SECOND};
use super::{Row, Target};

const SINK: &str = "/usr/sbin/smtp-sink";
const PUBLIC_URL: &str = "https://mos.bench.example";
/// Messages the relay has in flight at once: as many as the sending job keeps in flight.
const IN_FLIGHT: usize = 64;
/// Distinct messages the baseline signs before it starts, and then sends in turn.
const BASELINE_DISTINCT: usize = 1000;

/// N contacts of `org` (addresses `p{i}@patients.example`), each with a live grant to `purpose`
/// under its notice, as the administrator in set-based statements; then their statistics, as
/// autovacuum would have them by the time a campaign is launched.
const CONTACTS: [&str; 2] = [
    "insert into app.contacts (organization_id, id, address, address_key, name, created_at)
     select $1, public.bench_uuid7(), 'p' || i || '@patients.example',
            sha256(convert_to($1::text || '/' || i, 'UTF8')), 'Patient ' || i, now()
       from generate_series(1, $2::bigint) i",
    "insert into app.consent_events (organization_id, contact_id, purpose_id, seq, id, channel, kind, basis,
                                     notice_sha256, source, recorded_by, created_at)
     select c.organization_id, c.id, $3, 1, public.bench_uuid7(), 'email', 'grant', 'consent',
            (select n.sha256 from app.notices n where n.organization_id = $1 and n.purpose_id = $3),
            'api', $4, now()
       from app.contacts c
      where c.organization_id = $1 and c.address like 'p%@patients.example'",
];

async fn add_contacts(admin: &mut PgConnection, o: &Org, n: usize) -> anyhow::Result<()> {
    for statement in CONTACTS {
        sqlx::query(statement)
            .bind(o.org.as_uuid())
            .bind(n as i64)
            .bind(o.purpose.as_uuid())
            .bind(o.admin.as_uuid())
            .execute(&mut *admin)
            .await
            .context("adding the campaign's contacts")?;
    }
    admin.execute("vacuum analyze app.contacts, app.consent_events, app.consent_state").await?;
    Ok(())
}

/// Postfix's `smtp-sink` on a loopback port: it accepts every message and keeps none (no `-d`).
struct Sink {
    // Held for its `kill_on_drop`: the sink ends with the case.
    _child: Child,
    pid: u32,
    port: u16,
}

impl Sink {
    async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = Command::new(SINK);
        // As root it must be told whom to run as.
        if nix::unistd::geteuid().is_root() {
            command.args(["-u", "nobody"]);
        }
        let child = command
            .arg(format!("127.0.0.1:{port}"))
            .arg("256")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting smtp-sink")?;
        let pid = child.id().context("smtp-sink exited at once")?;
        // It listens within milliseconds; the bound only keeps a broken install from hanging.
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(Self { _child: child, pid, port });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        anyhow::bail!("smtp-sink does not listen on port {port}")
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }
}

/// CPU ticks of the three parties: this process, the benchmark database's PostgreSQL (its
/// postmaster, its live processes, and those that exited), and the sink.
struct Split {
    postmaster: Option<u32>,
    sink: u32,
}

#[derive(Clone, Copy, Default)]
struct Ticks {
    postgres: Option<u64>,
    mos: u64,
    sink: u64,
}

impl Split {
    /// The postmaster is the parent of the backend serving `admin`; `None` when the database
    /// runs where `/proc` cannot see it.
    async fn new(admin: &mut PgConnection, sink: u32) -> anyhow::Result<Self> {
        let backend: i32 = sqlx::query_scalar("select pg_backend_pid()").fetch_one(&mut *admin).await?;
        Ok(Self { postmaster: u32::try_from(backend).ok().and_then(parent), sink })
    }

    fn now(&self) -> Ticks {
        let postgres = self.postmaster.and_then(|pm| {
            let children: u64 = children(pm).into_iter().filter_map(process_ticks).sum();
            Some(process_ticks(pm)? + children)
        });
        Ticks {
            postgres,
            mos: process_ticks(std::process::id()).unwrap_or(0),
            sink: process_ticks(self.sink).unwrap_or(0),
        }
    }
}

/// Cores used on average between two readings, as "PostgreSQL / mos / sink".
fn cores(before: Ticks, after: Ticks, seconds: f64) -> String {
    let c =
        |a: u64, b: u64| format!("{:.2}", b.saturating_sub(a) as f64 / TICKS_PER_SECOND / seconds.max(f64::EPSILON));
    let postgres = before.postgres.zip(after.postgres).map_or_else(|| "n/a".into(), |(a, b)| c(a, b));
    format!("{postgres} / {} / {}", c(before.mos, after.mos), c(before.sink, after.sink))
}

/// CPU milliseconds per message between two readings, as "PostgreSQL / mos / sink": what a
/// machine must give each message, however busy it was with other work meanwhile.
fn per_message(before: Ticks, after: Ticks, messages: i64) -> String {
    let ms = |a: u64, b: u64| {
        format!("{:.2}", b.saturating_sub(a) as f64 / TICKS_PER_SECOND * 1000.0 / messages.max(1) as f64)
    };
    let postgres = before.postgres.zip(after.postgres).map_or_else(|| "n/a".into(), |(a, b)| ms(a, b));
    format!("{postgres} / {} / {}", ms(before.mos, after.mos), ms(before.sink, after.sink))
}

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat.rsplit_once(')')?.1.split_whitespace().map(str::to_owned).collect())
}

fn parent(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

fn children(of: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| parent(pid) == Some(of))
        .collect()
}

/// A new organization with `contacts` consenting contacts and an approved campaign to all of them.
async fn campaign(
    pool: &AppPool,
    admin: &mut PgConnection,
    slug: &str,
    contacts: usize,
    sealer: &Sealer,
    keys: &dyn AddressKeyer,
) -> anyhow::Result<(Org, ContentId)> {
    let o = fixture::org(pool, slug, sealer, keys).await;
    add_contacts(admin, &o, contacts).await?;
    let id = fixture::new_campaign(pool, &o, &o.definition).await;
    fixture::approved(pool, &o, id).await;
    Ok((o, id))
}

/// Launches the campaign: its audience snapshot. How long it took and how many it queued.
async fn launch(pool: &AppPool, o: &Org, id: ContentId, split: &Split) -> anyhow::Result<(f64, i64, String)> {
    let (before, started) = (split.now(), Instant::now());
    let launched = fixture::launch(pool, o, id).await;
    let seconds = started.elapsed().as_secs_f64();
    let Launch::Done(launched) = launched else { anyhow::bail!("the campaign was not launched: {launched:?}") };
    Ok((seconds, launched.queued, cores(before, split.now(), seconds)))
}

/// Runs the job runner with the sending handler until the campaign is finished; how long it
/// took and how many messages were sent.
/// One-click unsubscribes while the campaign sends, as `POST /u/{token}` makes them (the same
/// transaction: the contact locked, the purpose revoked, the address suppressed), one every
/// 20 ms until `sending` ends or `contacts` run out: each one's latency and when it committed.
async fn unsubscribing(
    pool: AppPool,
    (org, purpose): (OrgId, PurposeId),
    campaign: ContentId,
    contacts: Vec<ContactId>,
    sending: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Vec<(ContactId, Duration, chrono::DateTime<Utc>)>> {
    let evidence = Evidence { ip: None, user_agent: Some("bench".into()) };
    let source = RequestSource::default();
    let mut done = Vec::new();
    for contact in contacts {
        if !*sending.borrow() {
            break;
        }
        let started = Instant::now();
        let mut tx = pool.begin_tenant(org, None).await?;
        let person =
            unsubscribe::person(&mut tx, contact, Intent::Change).await?.context("a contact of the campaign")?;
        let change =
            Change { contact, campaign: campaign.as_uuid(), evidence: &evidence, now: Utc::now(), source: &source };
        unsubscribe::unsubscribe(&mut tx, &person, &[purpose], &change).await?;
        tx.commit().await?;
        done.push((contact, started.elapsed(), Utc::now()));
        tokio::time::sleep(Duration::from_millis(20).saturating_sub(started.elapsed())).await;
    }
    Ok(done)
}

/// A click on a tracked link of the campaign's messages, as `GET /c/{token}` makes it (the token
/// checked, the launched versions read and parsed, the click recorded with its count per link),
/// for `contact`'s message and link `link`; how long it took.
async fn click(
    follower: &Follower,
    (org, id): (OrgId, ContentId),
    contact: ContactId,
    link: u16,
) -> anyhow::Result<Duration> {
    let token = follower.tokens().issue(&Click { organization: org, campaign: id, contact, link });
    let started = Instant::now();
    let target = follower.follow(&token, Utc::now(), true).await?;
    anyhow::ensure!(target.starts_with("https://clinic.example/"), "a click led to {target}");
    Ok(started.elapsed())
}

/// Clicks while the campaign sends, one every 10 ms until `sending` ends or `contacts` run out,
/// on the messages claimed first (the first by id): each one's latency.
async fn clicking(
    follower: Arc<Follower>,
    campaign: (OrgId, ContentId),
    contacts: Vec<ContactId>,
    sending: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Vec<Duration>> {
    let mut done = Vec::new();
    for (n, contact) in contacts.into_iter().enumerate() {
        if !*sending.borrow() {
            break;
        }
        let took = click(&follower, campaign, contact, u16::from(n % 2 == 1)).await?;
        done.push(took);
        tokio::time::sleep(Duration::from_millis(10).saturating_sub(took)).await;
    }
    Ok(done)
}

fn run_of(latencies: &[Duration]) -> Run {
    Run {
        ops: latencies.len() as u64,
        latencies: latencies.iter().map(|d| u32::try_from(d.as_micros()).unwrap_or(u32::MAX)).collect(),
        ..Run::default()
    }
}

fn latency_row(case: String, latencies: &[Duration], target_ms: f64) -> Row {
    let run = run_of(latencies);
    let p99 = run.percentile(99.0);
    row(
        case,
        format!("{target_ms:.0} ms"),
        format!("{:.2} / {p99:.2} ms", run.percentile(50.0)),
        Some((p99 / target_ms, Target::AtMost(1.0))),
        String::new(),
    )
}

/// Clicks taken in as fast as `CLICKERS` visitors at once can, after the send: every sent
/// message's first link, then every second one, then every first one again (a repeat counts as
/// a click but no new recipient). The rate, and whether the counts per link are exactly what was
/// clicked.
async fn ingestion(
    pool: &AppPool,
    follower: &Arc<Follower>,
    o: &Org,
    id: ContentId,
    contacts: &[ContactId],
) -> anyhow::Result<Row> {
    const CLICKERS: usize = 64;
    let clicks: Arc<Vec<(ContactId, u16)>> =
        Arc::new([0, 1, 0].into_iter().flat_map(|link| contacts.iter().map(move |c| (*c, link))).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CLICKERS {
        let (follower, clicks, next, campaign) = (follower.clone(), clicks.clone(), next.clone(), (o.org, id));
        workers.spawn(async move {
            while let Some(&(contact, link)) = clicks.get(next.fetch_add(1, Ordering::Relaxed)) {
                click(&follower, campaign, contact, link).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(worker) = workers.join_next().await {
        worker??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut tx = pool.begin_tenant(o.org, None).await?;
    let tallies = mos_db::clicks::tallies(&mut tx, id).await?;
    tx.commit().await?;
    let total: i64 = tallies.iter().map(|t| t.total).sum();
    let unique: i64 = tallies.iter().map(|t| t.unique).sum();
    let rate = clicks.len() as f64 / seconds;
    Ok(row(
        format!(
            "Click ingestion after the send ({} clicks on {} messages' two links, {CLICKERS} at once; counted {total} clicks, {unique} recipient-links)",
            clicks.len(),
            contacts.len()
        ),
        "5000/s".into(),
        format!("{rate:.0}/s"),
        Some((rate / 5000.0, Target::AtLeast(1.0))),
        String::new(),
    ))
}

/// A campaign's report as its page and its CSV read it (the outcomes, each link's clicks, the
/// hours of activity: the counts kept with the events), `READS` times one after the other,
/// against its outcomes counted from the ledger's rows, the scan the kept counts avoid: p50 /
/// p99 of each, the report's p99 against 50 ms.
async fn report_reads(pool: &AppPool, o: &Org, id: ContentId, rows: i64) -> anyhow::Result<Row> {
    const READS: usize = 200;
    let mut kept = Vec::with_capacity(READS);
    let mut hours = 0;
    for _ in 0..READS {
        let started = Instant::now();
        let mut tx = pool.begin_tenant(o.org, None).await?;
        campaigns::progress(&mut tx, id).await?;
        mos_db::clicks::tallies(&mut tx, id).await?;
        hours = campaigns::activity(&mut tx, id).await?.len();
        tx.commit().await?;
        kept.push(started.elapsed());
    }
    let mut scanned = Vec::with_capacity(READS / 10);
    for _ in 0..READS / 10 {
        let started = Instant::now();
        let mut tx = pool.begin_tenant(o.org, None).await?;
        sqlx::query(
            "select state, count(*) from app.campaign_messages
              where organization_id = $1 and campaign_id = $2 group by state",
        )
        .bind(o.org.as_uuid())
        .bind(id.as_uuid())
        .fetch_all(tx.conn())
        .await?;
        tx.commit().await?;
        scanned.push(started.elapsed());
    }
    let (kept, scanned) = (run_of(&kept), run_of(&scanned));
    let p99 = kept.percentile(99.0);
    Ok(row(
        format!("Campaign report read ({rows} ledger rows, {hours} hourly rows of activity) vs its outcomes counted from the ledger: p50 / p99"),
        format!("{:.2} / {:.2} ms", scanned.percentile(50.0), scanned.percentile(99.0)),
        format!("{:.2} / {p99:.2} ms", kept.percentile(50.0)),
        Some((p99 / 50.0, Target::AtMost(1.0))),
        String::new(),
    ))
}

/// One report as a relay or a mailbox provider mails it back about the campaign's message to
/// `contact`: of every hundred, one complaint (RFC 5965), two hard bounces and the rest
/// deliveries (RFC 3464).
fn report(o: &Org, id: ContentId, contact: ContactId, n: usize) -> String {
    let (message_id, feedback_id) =
        (campaigns::message_id(id, contact, "bench.example"), campaigns::feedback_id(id, o.org));
    let original = format!("From: news@bench.example\r\nMessage-ID: <{message_id}>\r\nFeedback-ID: {feedback_id}\r\n");
    let (kind, fields) = match n % 100 {
        0 => ("feedback-report", "Feedback-Type: abuse\r\nUser-Agent: bench/1\r\nVersion: 1\r\n".to_owned()),
        1 | 2 => (
            "delivery-status",
            "Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; x@p.example\r\nAction: failed\r\nStatus: 5.1.1\r\n".to_owned(),
        ),
        _ => (
            "delivery-status",
            "Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; x@p.example\r\nAction: delivered\r\nStatus: 2.0.0\r\n".to_owned(),
        ),
    };
    format!(
        "From: mailer-daemon@mx.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type={kind}; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nA report.\r\n\
         --b\r\nContent-Type: message/{kind}\r\n\r\n{fields}\r\n\
         --b\r\nContent-Type: text/rfc822-headers\r\n\r\n{original}\r\n--b--\r\n"
    )
}

/// Reports taken in as fast as `TAKERS` callers at once can, after the send, as
/// `POST /v1/feedback/reports` takes them (parsed, matched by their ids, recorded with the
/// suppressions they call for, the counts kept, the breaker judged; those that arrive together
/// in one transaction): the rate, and whether the organization's counts are exactly what was
/// reported.
async fn feedback_ingestion(pool: &AppPool, o: &Org, id: ContentId, contacts: &[ContactId]) -> anyhow::Result<Row> {
    const TAKERS: usize = 64;
    let ingestor = Arc::new(mos_http::feedback::Ingestor::new(pool.clone(), PUBLIC_URL.into()));
    let reports: Arc<Vec<String>> = Arc::new(contacts.iter().enumerate().map(|(n, c)| report(o, id, *c, n)).collect());
    let mut tx = pool.begin_tenant(o.org, None).await?;
    let before = mos_db::breaker::window(&mut tx, Utc::now().date_naive()).await?;
    tx.commit().await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..TAKERS {
        let (ingestor, reports, next) = (ingestor.clone(), reports.clone(), next.clone());
        workers.spawn(async move {
            while let Some(report) = reports.get(next.fetch_add(1, Ordering::Relaxed)) {
                let source = RequestSource::default();
                let taken = ingestor.ingest(report.as_bytes(), Utc::now(), &source).await?;
                anyhow::ensure!(matches!(taken, mos_http::feedback::Ingested::Recorded(_)), "a report was {taken:?}");
            }
            anyhow::Ok(())
        });
    }
    while let Some(worker) = workers.join_next().await {
        worker??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut tx = pool.begin_tenant(o.org, None).await?;
    let after = mos_db::breaker::window(&mut tx, Utc::now().date_naive()).await?;
    tx.commit().await?;
    let counted = (after.delivered - before.delivered)
        + (after.hard_bounces - before.hard_bounces)
        + (after.complaints - before.complaints);
    let rate = reports.len() as f64 / seconds;
    Ok(row(
        format!(
            "Feedback ingestion after the send ({} DSN and ARF reports, {TAKERS} at once; counted {counted}: {} delivered, {} hard bounces, {} complaints)",
            reports.len(),
            after.delivered - before.delivered,
            after.hard_bounces - before.hard_bounces,
            after.complaints - before.complaints,
        ),
        "5000/s".into(),
        format!("{rate:.0}/s"),
        Some((rate / 5000.0, Target::AtLeast(1.0))),
        String::new(),
    ))
}

/// The latency row of the unsubscribes made during the send, and whether the ledger refused the
/// next message to each: none of them may have been handed over after its unsubscribe
/// committed.
async fn unsubscribed(
    pool: &AppPool,
    o: &Org,
    id: ContentId,
    done: &[(ContactId, Duration, chrono::DateTime<Utc>)],
) -> anyhow::Result<Row> {
    let ids: Vec<uuid::Uuid> = done.iter().map(|(c, _, _)| c.as_uuid()).collect();
    let mut tx = pool.begin_tenant(o.org, None).await?;
    let rows: Vec<(uuid::Uuid, String, Option<chrono::DateTime<Utc>>)> = sqlx::query_as(
        "select contact_id, state::text, claimed_at from app.campaign_messages
          where organization_id = $1 and campaign_id = $2 and contact_id = any($3)",
    )
    .bind(o.org.as_uuid())
    .bind(id.as_uuid())
    .bind(&ids)
    .fetch_all(tx.conn())
    .await?;
    tx.commit().await?;
    let at: std::collections::HashMap<uuid::Uuid, chrono::DateTime<Utc>> =
        done.iter().map(|(c, _, at)| (c.as_uuid(), *at)).collect();
    let refused = rows.iter().filter(|(_, state, _)| state == "skipped").count();
    let late = rows
        .iter()
        .filter(|(c, state, claimed)| state == "sent" && claimed.zip(at.get(c)).is_some_and(|(cl, u)| cl > *u))
        .count();
    anyhow::ensure!(late == 0, "{late} messages were handed over after their recipient's one-click unsubscribe");
    let latencies: Vec<Duration> = done.iter().map(|(_, d, _)| *d).collect();
    Ok(latency_row(
        format!(
            "One-click unsubscribe during the send ({} of them): p50 / p99; the next message refused for {refused}, none handed over after",
            done.len()
        ),
        &latencies,
        50.0,
    ))
}

async fn send(
    pool: &AppPool,
    o: &Org,
    id: ContentId,
    outbox: Outbox,
    keys: Arc<dyn AddressKeyer>,
) -> anyhow::Result<(f64, i64)> {
    let config = RunnerConfig { workers: 1, poll: Duration::from_millis(50), ..RunnerConfig::default() };
    let started = Instant::now();
    let running = crate::jobs::runner(pool.clone(), config, keys, Some(Arc::new(outbox)), None).start();
    let (mut last, mut moved) = (std::collections::BTreeMap::new(), Instant::now());
    let progress = loop {
        // The campaign's state is what says it is done; a tenth of a second is far below a
        // run's length.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut tx = pool.begin_tenant(o.org, None).await?;
        let run = campaigns::run(&mut tx, id).await?.context("the campaign's run is gone")?;
        let progress = campaigns::progress(&mut tx, id).await?;
        tx.commit().await?;
        if run.state == "finished" {
            break progress;
        }
        if progress != last {
            (last, moved) = (progress, Instant::now());
        } else if moved.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("the campaign stopped moving, in state {}: {last:?}", run.state);
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    running.shutdown().await;
    let sent = progress.get("sent").copied().unwrap_or(0);
    anyhow::ensure!(
        progress.keys().all(|k| k == "sent" || k.starts_with("skipped:")),
        "messages ended otherwise than sent: {progress:?}"
    );
    Ok((seconds, sent))
}

/// `n` messages of the campaign's shape (the fixture's piece and layout, one recipient each),
/// rendered and signed with a key of the same size.
fn pre_signed(n: usize) -> anyhow::Result<Vec<Signed>> {
    let pair = DkimKeyPair::generate()?;
    let signer = DkimSigner::new(&Selector::parse("s1")?, &DkimDomain::parse("send.example")?, &pair.private_key_pem)?;
    let template = Template::new("{{content}}\n\n{{postal_address}} [Unsubscribe]({{unsubscribe_url}})")?;
    let content = Content { title: "Flu shots", body: "Book your flu shot, {{name}}.", subject: None };
    let fields = Fields::new(vec![Field::text("name", 40)?])?;
    let from = Mailbox::new(Some(&FromName::parse("Example Health")?), &Email::parse("news@send.example")?)?;
    (0..n)
        .map(|i| -> anyhow::Result<Signed> {
            let name = format!("Patient {i}");
            let values = Personalisation::new(&fields, [("name", name.as_str())])?;
            let link = HttpsUrl::parse(&format!("{PUBLIC_URL}/u/{i:064}"))?;
            let essentials = Essentials {
                postal_address: PostalAddress::parse("Example Health\n1 Main St")?,
                unsubscribe: link.clone(),
                preferences: link,
                clicks: Vec::new(),
            };
            let rendered = render(&template, &content, &values, &essentials)?;
            let envelope = Envelope {
                from: from.clone(),
                reply_to: None,
                to: Mailbox::new(None, &Email::parse(&format!("p{i}@patients.example"))?)?,
                date: Utc::now(),
                message_id: MessageId::parse(&format!("<{i}.bench@send.example>"))?,
                unsubscribe_mailto: None,
                feedback_id: None,
            };
            Ok(signer.sign(Message::build(&rendered, envelope)?)?)
        })
        .collect()
}

/// Sends `n` of `messages` in turn through a relay like the outbox's, `IN_FLIGHT` at a time.
async fn baseline(url: &str, messages: Arc<Vec<Signed>>, n: usize) -> anyhow::Result<f64> {
    let relay = Arc::new(Relay::from_url(url, RelayConfig::default())?);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (relay, messages, next) = (relay.clone(), messages.clone(), next.clone());
        senders.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                let delivery = relay.send(&messages[i % messages.len()]).await;
                anyhow::ensure!(matches!(delivery, Delivery::Accepted { .. }), "the sink refused: {}", delivery.text());
            }
        });
    }
    while let Some(sent) = senders.join_next().await {
        sent??;
    }
    let seconds = started.elapsed().as_secs_f64();
    relay.shutdown().await;
    Ok(seconds)
}

fn row(case: String, baseline: String, ours: String, ratio: Option<(f64, Target)>, cpu: String) -> Row {
    Row { case, baseline, ours, ratio, latency: String::new(), cpu }
}

/// The send case: a campaign of `send_contacts` sent end to end against the relay alone, then
/// the launch of one of `launch_contacts`.
pub async fn measure(
    admin: &mut PgConnection,
    pool: &AppPool,
    send_contacts: usize,
    launch_contacts: usize,
) -> anyhow::Result<Vec<Row>> {
    let sealer = Arc::new(Sealer::new(&SecretBox::new(Box::new(rand::random::<[u8; 32]>()))));
    let keys: Arc<dyn AddressKeyer> = Arc::new(fixture::keys());
    let mut rows = Vec::new();
    let sink = if std::path::Path::new(SINK).exists() {
        Some(Sink::start().await?)
    } else {
        eprintln!("send: {SINK} is not installed (apt-get install postfix), so the sending runs are skipped");
        rows.push(row(
            "Send end to end: skipped, smtp-sink is not installed".into(),
            String::new(),
            String::new(),
            None,
            String::new(),
        ));
        None
    };
    let split = Split::new(admin, sink.as_ref().map_or(0, |s| s.pid)).await?;

    if let Some(sink) = &sink {
        eprintln!("send: a campaign to {send_contacts} contacts...");
        let (o, id) = campaign(pool, admin, "send-bench", send_contacts, &sealer, keys.as_ref()).await?;
        let (launch_s, queued, _) = launch(pool, &o, id, &split).await?;
        eprintln!("send: launched {queued} messages in {launch_s:.2} s; the baseline signs {BASELINE_DISTINCT}...");
        let distinct = send_contacts.clamp(1, BASELINE_DISTINCT);
        let messages = Arc::new(tokio::task::spawn_blocking(move || pre_signed(distinct)).await??);

        let before = split.now();
        let relay_s = baseline(&sink.url(), messages, queued.max(1) as usize).await?;
        let after = split.now();
        let (baseline_cpu, baseline_ms) = (cores(before, after, relay_s), per_message(before, after, queued));
        let relay_rate = queued.max(1) as f64 / relay_s;

        let links = Links::new(&sealer, PUBLIC_URL)?;
        let mut outbox = Outbox::new(&sink.url(), sealer.clone(), keys.clone(), links)?;
        // One organization: its rate limit would measure the pacing, not the path.
        outbox.per_org_rate = 1e9;
        let memory_before = memory_mib(std::process::id()).context("reading this process's memory")?;
        // One in a hundred recipients unsubscribes while the campaign sends (a thousand at
        // most, one every 20 ms): the last by id, which are claimed last, so still queued then.
        let last: Vec<uuid::Uuid> =
            sqlx::query_scalar("select id from app.contacts where organization_id = $1 order by id desc limit $2")
                .bind(o.org.as_uuid())
                .bind(i64::try_from((send_contacts / 100).clamp(1, 1000))?)
                .fetch_all(&mut *admin)
                .await?;
        let last = last.into_iter().map(ContactId::try_from).collect::<Result<Vec<_>, _>>()?;
        // Clicks on the first by id, which are claimed and sent first.
        let first: Vec<uuid::Uuid> =
            sqlx::query_scalar("select id from app.contacts where organization_id = $1 order by id limit $2")
                .bind(o.org.as_uuid())
                .bind(i64::try_from(send_contacts.clamp(1, 10_000))?)
                .fetch_all(&mut *admin)
                .await?;
        let first = first.into_iter().map(ContactId::try_from).collect::<Result<Vec<_>, _>>()?;
        let (sending, watching) = tokio::sync::watch::channel(true);
        let probe = tokio::spawn(unsubscribing(pool.clone(), (o.org, o.purpose), id, last, watching.clone()));
        let follower = Arc::new(Follower::new(sealer.click_tokens().clone(), pool.clone()));
        let clicker = tokio::spawn(clicking(follower.clone(), (o.org, id), first, watching));
        let before = split.now();
        let (send_s, sent) = send(pool, &o, id, outbox, keys.clone()).await?;
        let after = split.now();
        sending.send_replace(false);
        let done = probe.await??;
        let clicked = clicker.await??;
        let (cpu, ms) = (cores(before, after, send_s), per_message(before, after, sent));
        let memory_after = memory_mib(std::process::id()).context("reading this process's memory")?;
        let rate = sent as f64 / send_s;
        rows.push(row(
            format!(
                "Send {sent} messages end to end (claim, re-check, render, DKIM, SMTP to smtp-sink, ledger) vs the same relay sending pre-signed messages"
            ),
            format!("{relay_rate:.0}/s"),
            format!("{rate:.0}/s ({:.2} of the relay alone)", rate / relay_rate.max(f64::EPSILON)),
            None,
            format!(
                "{cpu} (baseline {baseline_cpu}); PostgreSQL / mos / sink; CPU ms per message {ms} (baseline {baseline_ms})"
            ),
        ));
        rows.push(row(
            "Send rate against the 1,000 messages/s target".into(),
            "1000/s".into(),
            format!("{rate:.0}/s"),
            Some((rate / 1000.0, Target::AtLeast(1.0))),
            String::new(),
        ));
        rows.push(row(
            "mos (this process) resident memory: now / peak before the send; now / peak after".into(),
            String::new(),
            format!(
                "{:.0} / {:.0} MiB; {:.0} / {:.0} MiB",
                memory_before.0, memory_before.1, memory_after.0, memory_after.1
            ),
            None,
            String::new(),
        ));
        rows.push(unsubscribed(pool, &o, id, &done).await?);
        rows.push(latency_row(
            format!("Click redirect during the send ({} of them): p50 / p99", clicked.len()),
            &clicked,
            10.0,
        ));
        // Clicks come only on messages that were sent; these had none yet.
        let unclicked: Vec<uuid::Uuid> = sqlx::query_scalar(
            "select m.contact_id from app.campaign_messages m
              where m.organization_id = $1 and m.campaign_id = $2 and m.state = 'sent'
                and not exists (select 1 from app.campaign_clicks k
                                 where k.organization_id = $1 and k.campaign_id = $2 and k.contact_id = m.contact_id)
              order by m.contact_id limit 5000",
        )
        .bind(o.org.as_uuid())
        .bind(id.as_uuid())
        .fetch_all(&mut *admin)
        .await?;
        let unclicked = unclicked.into_iter().map(ContactId::try_from).collect::<Result<Vec<_>, _>>()?;
        rows.push(ingestion(pool, &follower, &o, id, &unclicked).await?);
        // Reports come back only about messages that were sent (the unsubscribed were skipped).
        let reported: Vec<uuid::Uuid> = sqlx::query_scalar(
            "select contact_id from app.campaign_messages
              where organization_id = $1 and campaign_id = $2 and state = 'sent' order by contact_id desc limit 5000",
        )
        .bind(o.org.as_uuid())
        .bind(id.as_uuid())
        .fetch_all(&mut *admin)
        .await?;
        let reported = reported.into_iter().map(ContactId::try_from).collect::<Result<Vec<_>, _>>()?;
        rows.push(feedback_ingestion(pool, &o, id, &reported).await?);
        rows.push(report_reads(pool, &o, id, queued).await?);
    }

    eprintln!("send: launching a campaign to {launch_contacts} contacts...");
    let (o, id) = campaign(pool, admin, "launch-bench", launch_contacts, &sealer, keys.as_ref()).await?;
    let (seconds, queued, cpu) = launch(pool, &o, id, &split).await?;
    rows.push(row(
        format!("Launch of a campaign to {queued} contacts (the audience snapshot) against 30 s"),
        "30 s".into(),
        format!("{seconds:.1} s"),
        Some((seconds / 30.0, Target::AtMost(1.0))),
        format!("{cpu}; PostgreSQL / mos / sink"),
    ));
    rows.push(report_reads(pool, &o, id, queued).await?);
    drop(sink);
    Ok(rows)
}
