//! A campaign survives `kill -9` of `mos serve` in the middle of sending, and of the embedded
//! PostgreSQL under a running server: the campaign resumes by itself, every message ends final,
//! nobody gets a message twice except those whose message was in flight at the kill, each copy
//! with the same `Message-ID`, and `mos audit verify` accepts the result (docs/sending.md,
//! "Faults").
//!
//! The relay is `smtp-sink` answering each message's final dot after a second (`-W .:1`): it
//! has taken (and dumped) a message it has not acknowledged yet, so a kill at that moment
//! leaves messages the relay holds and the ledger still calls `sending`, the at-least-once edge.
//!
//! And a relay refusing (450) for a while, then accepting: every message deferred, then sent
//! once, none lost. And a relay that takes a message and bounces it later: the bounce it writes
//! comes back through its pipe transport into `mos feedback ingest`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mos_auth::Sealer;
use mos_db::audiences::consent;
use mos_db::campaigns::{self, Launch, Message};
use mos_db::testing::campaign::{self, approved, launch, new_campaign, Org};
use mos_db::testing::TestDb;
use mos_db::{AppPool, AppPoolOptions, DbError, PgConnectOptions};
use mos_domain::{ContactId, ContentId};
use mos_mail::testing::{Postfix, Sink};
use nix::sys::signal::Signal;

use crate::embedded::{postmaster_pid, serve_in};
use crate::import::kill;
use crate::{data_dir, mos, serve, serve_command, text, until_logged, SERVER_KEY};

/// Contacts with consent besides Ada: two claims of the servers' batches of [`BATCH`].
const CONTACTS: usize = 120;
const BATCH: &str = "100";
/// The shortest job lease (and so the shortest lease of a claimed message): the campaign is
/// taken over this long after its server's last sign of life.
const LEASE_SECS: &str = "6";
/// The public address of the servers: https, which campaigns need (RFC 8058).
const PUBLIC_URL: &str = "https://mos.test";
/// The sender's DKIM domain in the fixture, which every `Message-ID` names.
const DOMAIN: &str = "acme.example";
/// How often the tests look at the ledger, and for how many looks at most (two minutes).
const POLL: Duration = Duration::from_millis(50);
const LOOKS: usize = 2400;

/// The relay: `smtp-sink` acknowledging each message a second after it took it.
async fn slow_relay() -> Sink {
    Sink::start(&["-W", ".:1"]).await
}

/// What makes `mos serve` send through the relay at `url`, with the shortest lease and batches
/// of [`BATCH`].
fn sending_env(url: String) -> [(&'static str, String); 5] {
    [
        ("SMTP_URL", url),
        ("MOS_PUBLIC_URL", PUBLIC_URL.to_owned()),
        ("MOS_TOTP_KEY", SERVER_KEY.to_owned()),
        ("MOS_JOB_LEASE_SECS", LEASE_SECS.to_owned()),
        ("MOS_SEND_BATCH", BATCH.to_owned()),
    ]
}

/// `mos serve` against the database at `url`, sending through `sink`.
fn sending_against(url: &str, dir: &std::path::Path, sink: &Sink) -> std::process::Command {
    let mut command = serve_command(url, dir);
    command.envs(sending_env(sink.url()));
    command
}

/// The organization `acme` as the servers see it (its sender's key sealed and its addresses
/// keyed under their key), Ada and [`CONTACTS`] more with consent, and an approved campaign
/// to all of them: the campaign and the address of each contact it is for.
async fn approved_campaign(pool: &AppPool) -> (Org, ContentId, BTreeMap<ContactId, String>) {
    let sealer = Sealer::from_base64(SERVER_KEY).unwrap();
    let keys = sealer.address_keys().clone();
    let o = campaign::org(pool, "acme", &sealer, &keys).await;
    let mut recipients: BTreeMap<ContactId, String> =
        campaign::consenting(pool, &o, &keys, CONTACTS).await.into_iter().collect();
    recipients.insert(o.ada, "ada@p.example".to_owned());
    let id = new_campaign(pool, &o, &o.definition).await;
    approved(pool, &o, id).await;
    (o, id, recipients)
}

/// The campaign's ledger, by contact.
type Ledger = BTreeMap<ContactId, Message>;

async fn ledger(pool: &AppPool, o: &Org, id: ContentId) -> Result<Ledger, DbError> {
    let mut tx = pool.begin_tenant(o.org, Some(o.admin)).await?;
    let rows = campaigns::messages(&mut tx, id, None, None, 1000).await?;
    Ok(rows.into_iter().map(|m| (m.contact, m)).collect())
}

/// How many messages are in each state, for a failure's message.
fn counts(ledger: &Result<Ledger, DbError>) -> String {
    match ledger {
        Ok(ledger) => {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            ledger.values().for_each(|m| *counts.entry(m.state.as_str()).or_default() += 1);
            format!("{counts:?}")
        }
        Err(e) => e.to_string(),
    }
}

fn in_state(ledger: &Ledger, state: &str) -> BTreeSet<ContactId> {
    ledger.values().filter(|m| m.state == state).map(|m| m.contact).collect()
}

/// Looks at the ledger until `done` says so (a look that fails, the database being away,
/// counts as not done): the ledger then.
async fn until(pool: &AppPool, o: &Org, id: ContentId, what: &str, done: impl Fn(&Ledger) -> bool) -> Ledger {
    for _ in 0..LOOKS {
        if let Ok(ledger) = ledger(pool, o, id).await {
            if done(&ledger) {
                return ledger;
            }
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("the campaign never got to: {what}; messages by state: {}", counts(&ledger(pool, o, id).await));
}

/// Waits until the campaign's run is finished (every message final, the job that saw it so
/// recorded it), as a server that resumed it by itself leaves it.
async fn until_finished(pool: &AppPool, o: &Org, id: ContentId) {
    let state = || async move {
        let mut tx = pool.begin_tenant(o.org, Some(o.admin)).await?;
        Ok::<_, DbError>(campaigns::run(&mut tx, id).await?.map(|r| r.state))
    };
    for _ in 0..LOOKS {
        if let Ok(Some(state)) = state().await {
            if state == "finished" {
                return;
            }
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("the run is not finished: {:?}; messages by state: {}", state().await, counts(&ledger(pool, o, id).await));
}

/// Some messages recorded as sent, and the relay holding a message the ledger still calls
/// `sending`: one in flight, that the relay took and has not acknowledged yet.
async fn cut_mid_way(
    pool: &AppPool,
    o: &Org,
    id: ContentId,
    recipients: &BTreeMap<ContactId, String>,
    sink: &Sink,
) -> Ledger {
    until(pool, o, id, "some sent and one in flight held by the relay", |l| {
        !in_state(l, "sent").is_empty() && !held(&in_state(l, "sending"), recipients, sink).is_empty()
    })
    .await
}

/// Those of `contacts` whose message the relay has taken.
fn held(contacts: &BTreeSet<ContactId>, recipients: &BTreeMap<ContactId, String>, sink: &Sink) -> BTreeSet<ContactId> {
    let taken = taken(sink);
    contacts.iter().filter(|c| taken.contains_key(&recipients[c])).copied().collect()
}

/// The `Message-ID`s the relay took for each recipient address, in the order it took them.
/// smtp-sink writes a dump as the message comes in: one without its recipient and
/// `Message-ID` yet is a message still (or, cut by a kill, forever) on its way, not taken.
fn taken(sink: &Sink) -> BTreeMap<String, Vec<String>> {
    let mut taken: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for dump in sink.dumps() {
        let header = |name: &str| {
            dump.lines().find_map(|l| {
                let (key, value) = l.split_once(':')?;
                key.eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
            })
        };
        if let (Some(to), Some(id)) = (header("X-Rcpt-Args"), header("Message-ID")) {
            taken.entry(to.trim_matches(['<', '>']).to_owned()).or_default().push(id);
        }
    }
    taken
}

/// What the issue asks of a campaign after a fault, once its run finished by itself: every contact
/// with consent has its message recorded as sent, and every other row is skipped; the relay
/// took a message for each of them and for nobody else, each with the recipient's one
/// `Message-ID`; and two were taken only of those `in_flight` at the kill. Answers those who
/// got two.
async fn assert_resumed_and_nothing_lost_or_doubled(
    pool: &AppPool,
    o: &Org,
    id: ContentId,
    recipients: &BTreeMap<ContactId, String>,
    in_flight: &BTreeSet<ContactId>,
    sink: &Sink,
) -> BTreeSet<ContactId> {
    let ledger = ledger(pool, o, id).await.unwrap();
    assert_eq!(in_state(&ledger, "sent"), recipients.keys().copied().collect(), "{ledger:?}");
    assert!(ledger.values().all(|m| recipients.contains_key(&m.contact) || m.state == "skipped"), "{ledger:?}");

    let taken = taken(sink);
    let addresses: BTreeSet<&String> = recipients.values().collect();
    assert_eq!(taken.keys().collect::<BTreeSet<_>>(), addresses, "every recipient, nobody else");
    let mut twice = BTreeSet::new();
    for (contact, address) in recipients {
        let ids = &taken[address];
        let expected = format!("<{}>", campaigns::message_id(id, *contact, DOMAIN));
        assert!(ids.iter().all(|i| *i == expected), "{address}: {ids:?}, not {expected}");
        if ids.len() > 1 {
            assert!(in_flight.contains(contact), "{address} got {} copies but was not in flight", ids.len());
            assert_eq!(ids.len(), 2, "{address}: {ids:?}");
            twice.insert(*contact);
        }
    }
    twice
}

/// `mos audit seal` (a server seals on its own time; the last batches may not be yet), then
/// `mos audit verify`, each with `env`: whether verify passed, and what it said.
fn audit_verify(env: &[(&str, &str)]) -> (bool, String) {
    let run = |args: &[&str]| mos().args(args).envs(env.iter().copied()).output().unwrap();
    let sealed = run(&["audit", "seal"]);
    assert!(sealed.status.success(), "{:?}", text(&sealed));
    let out = run(&["audit", "verify"]);
    let (stdout, stderr) = text(&out);
    (out.status.success(), format!("{stdout}{stderr}"))
}

#[tokio::test]
async fn a_campaign_cut_by_sigkill_of_mos_is_resumed_by_the_next_server_and_only_the_in_flight_get_two_copies() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let sink = slow_relay().await;
    let (o, id, recipients) = approved_campaign(&pool).await;
    assert!(matches!(launch(&pool, &o, id).await, Launch::Done(_)));
    let dir = data_dir();
    // The first server names its connections, so that the test can tell when they are gone.
    let killed = format!("{}&application_name=mos-killed", db.database_url());
    let (mut first, _, log) = serve(sending_against(&killed, dir.path(), &sink));

    cut_mid_way(&pool, &o, id, &recipients, &sink).await;
    kill(&mut first, Signal::SIGKILL);
    // A statement the server sent just before it died may still be running: the ledger is as
    // the kill left it once the server's sessions are gone.
    let mut su = db.superuser().await;
    let mut gone = false;
    for _ in 0..LOOKS {
        let left: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = current_database() and application_name = 'mos-killed'",
        )
        .fetch_one(&mut su)
        .await
        .unwrap();
        if left == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    assert!(gone, "the killed server's sessions ended");
    let at_kill = ledger(&pool, &o, id).await.unwrap();
    let in_flight = in_state(&at_kill, "sending");
    assert!(!in_flight.is_empty(), "the kill came while messages were in flight: {at_kill:?}; {}", log.lock().unwrap());
    let held_at_kill = held(&in_flight, &recipients, &sink);

    let (mut second, _, log) = serve(sending_against(&db.database_url(), dir.path(), &sink));
    until_finished(&pool, &o, id).await;
    let twice = assert_resumed_and_nothing_lost_or_doubled(&pool, &o, id, &recipients, &in_flight, &sink).await;
    // Exactly the messages the relay held and the ledger had not recorded at the kill were
    // sent again (there were some: the cut waited for one).
    assert!(!held_at_kill.is_empty());
    assert_eq!(twice, held_at_kill, "two copies of exactly the messages in flight that the relay held");
    kill(&mut second, Signal::SIGTERM);
    assert!(!log.lock().unwrap().contains("panicked"), "{}", log.lock().unwrap());

    let (ok, said) =
        audit_verify(&[("DATABASE_URL", &db.database_url()), ("MOS_DATA_DIR", dir.path().to_str().unwrap())]);
    assert!(ok, "{said}");
}

/// The embedded cluster's PostgreSQL, logged in as `app_user` over its socket in `dir`.
async fn embedded_app_pool(dir: &std::path::Path) -> AppPool {
    let connect = PgConnectOptions::new_without_pgpass()
        .socket(dir.join(".mos/pg"))
        .port(mos_db::ops::embedded::PORT)
        .username(mos_db::APP_ROLE)
        .database(mos_db::ops::embedded::DATABASE);
    AppPool::connect(AppPoolOptions { connect, set_role: false, max_connections: 2 }).await.unwrap()
}

/// `kill -9` of PostgreSQL as a crash is: the postmaster and every process it started (its
/// backends among them, which would otherwise serve their sessions on for a moment and let the
/// server record the slice in flight). Stopped first, so that it starts no process meanwhile.
fn crash(postmaster: i32) {
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    kill(Pid::from_raw(postmaster), Signal::SIGSTOP).unwrap();
    let children = std::fs::read_to_string(format!("/proc/{postmaster}/task/{postmaster}/children")).unwrap();
    kill(Pid::from_raw(postmaster), Signal::SIGKILL).unwrap();
    for child in children.split_whitespace() {
        // One may have ended by itself in between.
        let _ = kill(Pid::from_raw(child.parse().unwrap()), Signal::SIGKILL);
    }
}

#[tokio::test]
async fn a_campaign_cut_by_sigkill_of_the_embedded_postgres_is_resumed_and_only_the_in_flight_get_two_copies() {
    let dir = data_dir();
    let sink = slow_relay().await;
    // The test's own cluster: the server's embedded one, in its data directory.
    let env = sending_env(sink.url());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (mut server, _, log) = serve_in(dir.path(), &env);
    let pool = embedded_app_pool(dir.path()).await;
    let (o, id, recipients) = approved_campaign(&pool).await;
    assert!(matches!(launch(&pool, &o, id).await, Launch::Done(_)));

    let before = cut_mid_way(&pool, &o, id, &recipients, &sink).await;
    let postmaster = postmaster_pid(dir.path()).unwrap();
    crash(postmaster);
    // The server's supervisor starts a new postmaster, which recovers from its WAL.
    let mut restarted = false;
    for _ in 0..LOOKS {
        let now = postmaster_pid(dir.path());
        restarted = now.is_some() && now != Some(postmaster);
        if restarted {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    assert!(restarted, "a new postmaster; log: {}", log.lock().unwrap());
    // In flight: what was `sending` before the kill, and what the restarted database holds as
    // `sending` at its first answer (a claim committed between that look and the kill), before
    // any of it could be claimed again (not before its lease, longer than the restart).
    let after = until(&pool, &o, id, "the database answering again", |_| true).await;
    let in_flight: BTreeSet<ContactId> =
        in_state(&before, "sending").union(&in_state(&after, "sending")).copied().collect();
    assert!(!in_flight.is_empty(), "{before:?}");

    until_finished(&pool, &o, id).await;
    // The server sends on while its database is away; whether the slice in flight gets its
    // outcome recorded depends on how soon the database is back, so sending it again is
    // allowed, not required, for each message in flight.
    assert_resumed_and_nothing_lost_or_doubled(&pool, &o, id, &recipients, &in_flight, &sink).await;
    assert!(until_logged(&log, "restarted the embedded PostgreSQL"), "{}", log.lock().unwrap());
    pool.close().await;
    kill(&mut server, Signal::SIGTERM);

    let (ok, said) =
        audit_verify(&[("MOS_DATA_DIR", dir.path().join(".mos").to_str().unwrap()), ("MOS_TOTP_KEY", SERVER_KEY)]);
    assert!(ok, "{said}");
}

#[tokio::test]
async fn a_relay_that_refuses_for_a_while_and_then_accepts_gets_every_message_once_and_none_is_lost() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    // 450 to every recipient, until the test replaces it by a relay that accepts on its port.
    let refusing = Sink::start(&["-r", "RCPT"]).await;
    let (o, id, recipients) = approved_campaign(&pool).await;
    assert!(matches!(launch(&pool, &o, id).await, Launch::Done(_)));
    let dir = data_dir();
    let (mut server, _, log) = serve(sending_against(&db.database_url(), dir.path(), &refusing));

    let deferred = until(&pool, &o, id, "every message deferred once", |l| {
        recipients.keys().all(|c| l.get(c).is_some_and(|m| m.state == "queued" && m.attempts == 1 && m.reply.is_some()))
    })
    .await;
    assert!(
        recipients.keys().all(|c| deferred[c].reply.as_deref().is_some_and(|r| r.starts_with("450 "))),
        "each with the relay's reply: {deferred:?}"
    );
    let port = refusing.port;
    drop(refusing);
    let accepting = Sink::start_on(port, &[]).await;

    until_finished(&pool, &o, id).await;
    // Nothing was in flight: every recipient got exactly one message, at its second attempt.
    let twice =
        assert_resumed_and_nothing_lost_or_doubled(&pool, &o, id, &recipients, &BTreeSet::new(), &accepting).await;
    assert!(twice.is_empty());
    let ledger = ledger(&pool, &o, id).await.unwrap();
    assert!(recipients.keys().all(|c| ledger[c].attempts == 2), "{}", counts(&Ok(ledger.clone())));
    kill(&mut server, Signal::SIGTERM);
    assert!(!log.lock().unwrap().contains("panicked"), "{}", log.lock().unwrap());
}

#[tokio::test]
async fn a_bounce_postfix_writes_after_taking_a_message_comes_back_through_its_pipe_and_suppresses_and_counts() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let sink = Sink::start(&[]).await;
    // The organization's mail goes out through a private Postfix, which takes Ada's message and
    // then refuses her mailbox (its error transport, as a provider refuses an unknown user after
    // the relay took the message). Postfix bounces it to the envelope sender, the sender's From
    // address, whose domain its transport map gives to `mos feedback ingest` through a pipe, as
    // docs/sending.md sets it up. The pipe runs as `postgres` (Postfix runs no command as root),
    // which the test clusters admit, a copy of the binary where that user can reach it. A
    // bounce that arrives before `mos` has recorded the hand-over is answered 75 (try again
    // later), and Postfix, told to retry after a second here, delivers it again.
    let bin = data_dir();
    let copy = bin.path().join("mos");
    std::fs::copy(env!("CARGO_BIN_EXE_mos"), &copy).unwrap();
    let pipe = format!(
        "mosfeedback unix - n n - - pipe user=postgres argv=/usr/bin/env DATABASE_URL={} {} feedback ingest",
        db.database_url(),
        copy.display()
    );
    let maps = format!(
        "transport_maps = inline:{{ {{ada@p.example=error:5.1.1 User unknown}}, {{{DOMAIN}=mosfeedback:}} }}\n\
         smtpd_reject_unlisted_recipient = no\nmosfeedback_destination_recipient_limit = 1\n\
         queue_run_delay = 1s\nminimal_backoff_time = 1s\nmaximal_backoff_time = 2s"
    );
    let postfix = Postfix::start_with(sink.port, &maps, &[&pipe]).await;
    let (o, id, recipients) = approved_campaign(&pool).await;
    assert!(matches!(launch(&pool, &o, id).await, Launch::Done(_)));
    let dir = data_dir();
    let mut command = serve_command(&db.database_url(), dir.path());
    command.envs(sending_env(format!("smtp://127.0.0.1:{}", postfix.port)));
    let (mut server, _, log) = serve(command);
    until_finished(&pool, &o, id).await;

    // The campaign's report shows the bounce once Postfix has piped it in.
    let report = || async {
        let mut tx = pool.begin_tenant(o.org, Some(o.admin)).await.unwrap();
        campaigns::total(&campaigns::activity(&mut tx, id).await.unwrap())
    };
    let mut counted = report().await;
    for _ in 0..LOOKS {
        if counted.hard_bounces > 0 {
            break;
        }
        tokio::time::sleep(POLL).await;
        counted = report().await;
    }
    let handed = i64::try_from(recipients.len()).unwrap();
    assert_eq!((counted.sent, counted.hard_bounces), (handed, 1), "Postfix's log: {}", postfix.log());
    let mut tx = pool.begin_tenant(o.org, Some(o.admin)).await.unwrap();
    let feedback: Vec<(uuid::Uuid, String, String)> =
        sqlx::query_as("select contact_id, kind::text, code from app.delivery_feedback")
            .fetch_all(tx.conn())
            .await
            .unwrap();
    assert_eq!(feedback, [(o.ada.as_uuid(), "hard_bounce".to_owned(), "5.1.1".to_owned())]);
    let now = chrono::Utc::now();
    assert!(!consent::is_live(&mut tx, o.ada, o.purpose, now).await.unwrap(), "Ada's address is suppressed");
    drop(tx);
    assert!(postfix.log().contains("status=sent (delivered via mosfeedback service"), "{}", postfix.log());
    kill(&mut server, Signal::SIGTERM);
    assert!(!log.lock().unwrap().contains("panicked"), "{}", log.lock().unwrap());
}
