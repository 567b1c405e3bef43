//! Delivery through real SMTP servers on loopback, no mocks: Postfix's `smtp-sink` answers with
//! each outcome (it accepts, refuses a command with 4xx or 5xx, or hangs up), and a private
//! Postfix instance relays a signed message to a capture the test reads.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use mos_mail::smtp::{Delivery, Relay, RelayConfig, SmtpUrlError, MAX_REPLY_CHARS};
use mos_mail::Signed;

use crate::{dkim, inspect, key, message, UNSUBSCRIBE};

const SINK_MISSING: &str =
    "Postfix's smtp-sink for the delivery tests: apt-get install postfix (scripts/test installs it as root)";

/// How long a test waits for a server to start or to report what it saw before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A port nobody listens on now; the server started next binds it.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port()
}

async fn wait_listening(port: u16, what: &str) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(started.elapsed() < PATIENCE, "{what} did not listen on port {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `smtp-sink` on a loopback port with the given options, its counters (`-c`: sessions ended,
/// QUITs, messages) read as it prints them, and each message it takes dumped to a file (`-d`).
struct Sink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    counters: mpsc::Receiver<String>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sink {
    async fn start(options: &[&str]) -> Self {
        Self::spawn(options, true).await
    }

    /// `dump`: keep each message in a file (disk writes the throughput measurement leaves out).
    async fn spawn(options: &[&str], dump: bool) -> Self {
        let binary = Path::new("/usr/sbin/smtp-sink");
        assert!(binary.is_file(), "{SINK_MISSING}");
        let dir = tempfile::tempdir().expect("a temporary directory");
        // As root, smtp-sink drops to `nobody`, which must be able to write the dumps.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("permissions");
        let port = free_port();
        let mut command = Command::new(binary);
        if running_as_root() {
            command.args(["-u", "nobody"]);
        }
        command.arg("-c");
        if dump {
            command.arg("-d").arg(format!("{}/%Y%m%d%H%M%S.", dir.path().display()));
        }
        command.args(options).arg(format!("127.0.0.1:{port}")).arg("64");
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("smtp-sink starts");
        let mut stdout = child.stdout.take().expect("its stdout");
        let (send, counters) = mpsc::channel();
        // Each report is `sess=N quit=N mesg=N` ended by a carriage return.
        std::thread::spawn(move || {
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while stdout.read(&mut byte).is_ok_and(|n| n == 1) {
                if byte[0] == b'\r' || byte[0] == b'\n' {
                    if send.send(String::from_utf8_lossy(&line).trim().to_owned()).is_err() {
                        return;
                    }
                    line.clear();
                } else {
                    line.push(byte[0]);
                }
            }
        });
        let sink = Self { child, port, dir, counters };
        wait_listening(port, "smtp-sink").await;
        sink
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Waits for the report saying that `sessions` sessions have ended, and answers what the
    /// sink counted then: sessions and messages. The probe that saw the sink listening is a
    /// session too, and is not counted.
    fn counted_after_sessions(&self, sessions: usize) -> (usize, usize) {
        let sessions = sessions + 1;
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let report = self.counters.recv_timeout(left).expect("smtp-sink reports the sessions ending");
            let field =
                |name: &str| report.split(' ').find_map(|f| f.strip_prefix(name)).and_then(|n| n.parse::<usize>().ok());
            if let (Some(ended), Some(messages)) = (field("sess="), field("mesg=")) {
                if ended >= sessions {
                    return (ended - 1, messages);
                }
            }
        }
    }

    /// The messages the sink took, as it dumped them (its own headers first).
    fn dumps(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("the dump directory")
            .map(|e| e.expect("an entry").path())
            .collect();
        files.sort();
        files.iter().map(|f| std::fs::read_to_string(f).expect("a dump")).collect()
    }
}

fn relay(url: &str, max_connections: u32) -> Relay {
    let config = RelayConfig { max_connections, timeout: Duration::from_secs(20) };
    Relay::from_url(url, config).expect("a relay URL")
}

fn signed(body: &str) -> Signed {
    dkim::signer(key(), "mail.acme.example").sign(message(body, "Ada")).expect("signed")
}

#[tokio::test]
async fn a_message_the_relay_takes_is_accepted_with_its_reply_and_arrives_whole() {
    let sink = Sink::start(&[]).await;
    let relay = relay(&sink.url(), 2);
    let message = signed("Hello {{first_name}}");
    let delivery = relay.send(&message).await;
    assert!(matches!(&delivery, Delivery::Accepted { code: 250, text } if text.contains("Ok")), "{delivery:?}");
    relay.shutdown().await;
    assert_eq!(sink.counted_after_sessions(1), (1, 1));
    let dumps = sink.dumps();
    assert_eq!(dumps.len(), 1);
    assert!(dumps[0].contains("X-Mail-Args: <news@mail.acme.example>"), "{}", dumps[0]);
    assert!(dumps[0].contains("X-Rcpt-Args: <ada@patient.example>"), "{}", dumps[0]);
    let sent = String::from_utf8(message.formatted()).expect("ASCII").replace("\r\n", "\n");
    assert!(dumps[0].contains(&sent), "the message arrives as it was signed: {}", dumps[0]);
}

#[tokio::test]
async fn a_4xx_reply_is_a_temporary_failure_and_a_5xx_a_permanent_one_with_code_and_text() {
    for (options, expected) in [
        (vec!["-r", "RCPT"], Delivery::Temporary { code: Some(450), text: "4.3.0 Error: command failed".into() }),
        (vec!["-r", "."], Delivery::Temporary { code: Some(450), text: "4.3.0 Error: command failed".into() }),
        (vec!["-Q", "MAIL"], Delivery::Temporary { code: Some(421), text: String::new() }),
        (vec!["-f", "MAIL"], Delivery::Permanent { code: 500, text: "5.3.0 Error: command failed".into() }),
        (vec!["-f", "."], Delivery::Permanent { code: 500, text: "5.3.0 Error: command failed".into() }),
        (
            vec!["-f", "RCPT", "-B", "550 5.1.1 <ada@patient.example>: Recipient address rejected"],
            Delivery::Permanent { code: 550, text: "5.1.1 <ada@patient.example>: Recipient address rejected".into() },
        ),
    ] {
        let sink = Sink::start(&options).await;
        let delivery = relay(&sink.url(), 1).send(&signed("Hi")).await;
        match (&delivery, &expected) {
            // smtp-sink's 421 text names its host; the code is what counts.
            (Delivery::Temporary { code: Some(421), .. }, Delivery::Temporary { code: Some(421), .. }) => {}
            _ => assert_eq!(delivery, expected, "{options:?}"),
        }
    }

    // A long reply is kept trimmed and bounded.
    let long = format!("554 5.7.1 {}", "blocked ".repeat(100));
    let sink = Sink::start(&["-f", ".", "-B", &long]).await;
    let delivery = relay(&sink.url(), 1).send(&signed("Hi")).await;
    assert_eq!(delivery.code(), Some(554), "{delivery:?}");
    assert!(matches!(delivery, Delivery::Permanent { .. }));
    assert_eq!(delivery.text().chars().count(), MAX_REPLY_CHARS, "{delivery:?}");
    assert!(delivery.text().starts_with("5.7.1 blocked blocked"), "{delivery:?}");
}

#[tokio::test]
async fn a_connection_lost_or_refused_is_a_temporary_failure_never_accepted() {
    // The relay hangs up without a word: after the final dot (the whole message was sent, no
    // reply came), after DATA, after RCPT.
    for command in [".", "DATA", "RCPT"] {
        let sink = Sink::start(&["-q", command]).await;
        let delivery = relay(&sink.url(), 1).send(&signed("Hi")).await;
        assert!(matches!(delivery, Delivery::Temporary { code: None, .. }), "-q {command}: {delivery:?}");
        assert!(!delivery.text().is_empty(), "-q {command}: says what failed");
    }
    // Nobody listening.
    let delivery = relay(&format!("smtp://127.0.0.1:{}", free_port()), 1).send(&signed("Hi")).await;
    assert!(matches!(delivery, Delivery::Temporary { code: None, .. }), "{delivery:?}");
}

/// A TCP proxy in front of a server that counts the connections made through it: how the test
/// sees connections being reused.
struct Proxy {
    port: u16,
    connections: Arc<AtomicUsize>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl Proxy {
    async fn start(to: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { port, connections, accepting }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn several_messages_share_one_connection_and_connections_stay_within_the_bound() {
    // One connection: five messages in a row go over it.
    let sink = Sink::start(&[]).await;
    let proxy = Proxy::start(sink.port).await;
    let one = relay(&proxy.url(), 1);
    for i in 0..5 {
        let delivery = one.send(&signed(&format!("Message {i}"))).await;
        assert!(matches!(delivery, Delivery::Accepted { .. }), "{delivery:?}");
    }
    assert_eq!(proxy.connections(), 1, "five messages over one connection");
    one.shutdown().await;
    assert_eq!(sink.counted_after_sessions(1), (1, 5));

    // Twenty at once through a relay of three connections: never more than three.
    let sink = Sink::start(&[]).await;
    let proxy = Proxy::start(sink.port).await;
    let three = Arc::new(relay(&proxy.url(), 3));
    let message = Arc::new(signed("At once"));
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (relay, message) = (Arc::clone(&three), Arc::clone(&message));
        sends.spawn(async move { relay.send(&message).await });
    }
    while let Some(delivery) = sends.join_next().await {
        let delivery = delivery.expect("a send");
        assert!(matches!(delivery, Delivery::Accepted { .. }), "{delivery:?}");
    }
    let connections = proxy.connections();
    assert!((1..=3).contains(&connections), "{connections} connections for a bound of three");
    assert_eq!(sink.dumps().len(), 20);
}

#[tokio::test]
async fn credentials_in_the_url_never_show_and_tls_required_never_falls_back_to_plain_text() {
    let secret = "s3cr3t-pa55";
    let sink = Sink::start(&[]).await;
    for (url, error) in [
        (format!("http://mos:{secret}@127.0.0.1:25"), SmtpUrlError::Scheme),
        (format!("smtp://mos:{secret}@127.0.0.1:25?tls=maybe"), SmtpUrlError::Options),
        (format!("smtp:mos:{secret}"), SmtpUrlError::NoHost),
        (format!("//mos:{secret}@127.0.0.1:25"), SmtpUrlError::NotAUrl),
        // lettre would send the password in the clear here.
        (format!("smtp://mos:{secret}@127.0.0.1:{}", sink.port), SmtpUrlError::PasswordInTheClear),
        (format!("smtp://mos:{secret}@127.0.0.1:{}?tls=opportunistic", sink.port), SmtpUrlError::PasswordInTheClear),
    ] {
        let refused = Relay::from_url(&url, RelayConfig::default()).expect_err("a bad SMTP_URL");
        assert_eq!(refused, error, "{url}");
        assert!(!refused.to_string().contains(secret) && !format!("{refused:?}").contains(secret));
    }

    // smtp-sink offers no STARTTLS: a relay that must use it sends nothing, in the clear or at
    // all, and neither its Debug nor the failure shows the password.
    let required = relay(&format!("smtp://mos:{secret}@127.0.0.1:{}?tls=required", sink.port), 1);
    assert!(!format!("{required:?}").contains(secret), "{required:?}");
    assert_eq!(required.endpoint(), format!("127.0.0.1:{}", sink.port));
    let delivery = required.send(&signed("Hi")).await;
    assert!(matches!(delivery, Delivery::Temporary { code: None, .. }), "{delivery:?}");
    assert!(!delivery.text().contains(secret), "{delivery:?}");
    required.shutdown().await;
    let (_, messages) = sink.counted_after_sessions(1);
    assert_eq!(messages, 0);
    assert!(sink.dumps().is_empty(), "a message went out without the TLS the URL requires");
}

/// What the relay client alone manages: the same pre-signed message sent again and again to
/// smtp-sink (which throws it away), as fast as the pool allows, for several pool sizes; and, for
/// comparison, one connection per message. A measurement, not a check: it prints, and asserts
/// only that every message was accepted.
/// `cargo test --workspace --test mail smtp::throughput -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: prints messages per second against smtp-sink"]
async fn throughput_of_pre_signed_messages_against_smtp_sink() {
    const MESSAGES: usize = 4000;
    let sink = Sink::spawn(&[], false).await;
    let message = Arc::new(signed("A flu clinic opens on Monday near you. {{first_name}}, book a slot."));
    println!("message size: {} bytes", message.formatted().len());
    for connections in [1, 2, 4, 8, 16] {
        let relay = Arc::new(relay(&sink.url(), connections));
        let started = Instant::now();
        let mut sends = tokio::task::JoinSet::new();
        for _ in 0..MESSAGES {
            let (relay, message) = (Arc::clone(&relay), Arc::clone(&message));
            sends.spawn(async move { relay.send(&message).await });
        }
        while let Some(delivery) = sends.join_next().await {
            assert!(matches!(delivery.expect("a send"), Delivery::Accepted { .. }));
        }
        let elapsed = started.elapsed();
        println!(
            "{connections:>2} connections: {MESSAGES} messages in {elapsed:.2?}, {:.0} messages/s",
            MESSAGES as f64 / elapsed.as_secs_f64()
        );
        relay.shutdown().await;
    }
    // One connection per message: the pool emptied after each.
    let relay = relay(&sink.url(), 1);
    let started = Instant::now();
    for _ in 0..MESSAGES / 4 {
        assert!(matches!(relay.send(&message).await, Delivery::Accepted { .. }));
        relay.shutdown().await;
    }
    let elapsed = started.elapsed();
    println!(
        "a new connection per message, one at a time: {} messages in {elapsed:.2?}, {:.0} messages/s",
        MESSAGES / 4,
        (MESSAGES / 4) as f64 / elapsed.as_secs_f64()
    );
}

/// A private Postfix on loopback (its own configuration, queue and log in a temporary
/// directory; the machine's own Postfix is neither used nor needed), relaying everything it
/// takes to `relayhost`.
struct Postfix {
    config: PathBuf,
    master: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Postfix {
    fn drop(&mut self) {
        // `stop` ends the master and its children; a kill is the fallback if it cannot.
        let stopped = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&self.config)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            let _ = self.master.kill();
        }
        let _ = self.master.wait();
    }
}

impl Postfix {
    async fn start(relayhost: u16) -> Self {
        assert!(Path::new("/usr/sbin/postfix").is_file(), "{SINK_MISSING}");
        assert!(
            running_as_root(),
            "a private Postfix starts only as root (scripts/test runs the suites as root in CI)"
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("permissions");
        let config = root.join("config");
        std::fs::create_dir(&config).expect("the configuration directory");
        std::fs::create_dir(root.join("queue")).expect("the queue directory");
        std::fs::create_dir(root.join("data")).expect("the data directory");
        let chown = Command::new("chown").arg("postfix").arg(root.join("data")).status().expect("chown runs");
        assert!(chown.success(), "the data directory belongs to postfix");
        let port = free_port();
        let root = root.display();
        std::fs::write(
            config.join("main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {root}/queue\ndata_directory = {root}/data\n\
                 mail_owner = postfix\nsetgid_group = postdrop\ninet_interfaces = loopback-only\n\
                 inet_protocols = ipv4\nmyhostname = relay.mos.test\nmydestination =\n\
                 local_recipient_maps =\nalias_maps =\nalias_database =\n\
                 relayhost = [127.0.0.1]:{relayhost}\nmynetworks = 127.0.0.0/8\n\
                 smtpd_relay_restrictions = permit_mynetworks, reject\n\
                 maillog_file_prefixes = {root}\nmaillog_file = {root}/maillog\nsmtputf8_enable = no\n\
                 smtp_tls_security_level = none\nsmtpd_tls_security_level = none\n"
            ),
        )
        .expect("main.cf");
        // Only the services a relay needs, none chrooted; smtpd on the test's own port.
        let services = [
            format!("127.0.0.1:{port} inet n - n - - smtpd"),
            "pickup unix n - n 60 1 pickup".into(),
            "cleanup unix n - n - 0 cleanup".into(),
            "qmgr unix n - n 300 1 qmgr".into(),
            "rewrite unix - - n - - trivial-rewrite".into(),
            "bounce unix - - n - 0 bounce".into(),
            "defer unix - - n - 0 bounce".into(),
            "trace unix - - n - 0 bounce".into(),
            "verify unix - - n - 1 verify".into(),
            "flush unix n - n 1000? 0 flush".into(),
            "proxymap unix - - n - - proxymap".into(),
            "smtp unix - - n - - smtp".into(),
            "relay unix - - n - - smtp".into(),
            "showq unix n - n - - showq".into(),
            "error unix - - n - - error".into(),
            "retry unix - - n - - error".into(),
            "discard unix - - n - - discard".into(),
            "anvil unix - - n - 1 anvil".into(),
            "scache unix - - n - 1 scache".into(),
            "postlog unix-dgram n - n - 1 postlogd".into(),
        ];
        std::fs::write(config.join("master.cf"), services.join("\n") + "\n").expect("master.cf");
        let master = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&config)
            .arg("start-fg")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postfix starts");
        let postfix = Self { config, master, port, dir };
        wait_listening(port, "Postfix").await;
        postfix
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }
}

#[tokio::test]
async fn a_message_relayed_by_postfix_arrives_with_its_dkim_signature_and_one_click_headers_intact() {
    let sink = Sink::start(&[]).await;
    let postfix = Postfix::start(sink.port).await;
    let relay = relay(&format!("smtp://127.0.0.1:{}", postfix.port), 1);
    let delivery = relay.send(&signed("Hello {{first_name}}, your flu shot is due.")).await;
    match &delivery {
        Delivery::Accepted { code: 250, text } => assert!(text.contains("queued as"), "{text}"),
        other => panic!("Postfix did not take the message: {other:?}; its log: {}", postfix.log()),
    }
    relay.shutdown().await;

    // Postfix delivers from its queue on its own time: the message is there once the sink has
    // counted it, which it reports when Postfix's session with it ends.
    let (_, messages) = sink.counted_after_sessions(1);
    assert_eq!(messages, 1, "Postfix's log: {}", postfix.log());
    let dumps = sink.dumps();
    assert_eq!(dumps.len(), 1);
    // The dump is smtp-sink's own headers, ending with its three-line Received header, then the
    // message as Postfix relayed it (with Postfix's Received header on top), then a blank line.
    let dump = &dumps[0];
    let at = dump.find("\nReceived: from relay.mos.test").expect("Postfix's Received header");
    let relayed = dump[at + 1..].replace('\n', "\r\n");
    assert!(relayed.contains("by relay.mos.test (Postfix)"), "{relayed}");

    let public = &key().public_b64;
    let (ok, result) = inspect(relayed.as_bytes(), &["verify", "s2026", "mail.acme.example", public]);
    assert!(ok, "dkimpy after Postfix: {result}");
    let (_, parsed) = inspect(relayed.as_bytes(), &["parse"]);
    let header = |name: &str| -> Vec<String> {
        parsed["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .filter_map(|h| h[1].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(header("List-Unsubscribe-Post"), ["List-Unsubscribe=One-Click"]);
    assert_eq!(header("List-Unsubscribe"), [format!("<{UNSUBSCRIBE}>, <mailto:unsubscribe@mail.acme.example>")]);
    assert_eq!(header("Message-ID"), ["<c0ffee.42@mail.acme.example>"]);
}
