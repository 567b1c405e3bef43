//! Real SMTP servers on loopback for the delivery tests of every suite: Postfix's `smtp-sink`
//! (answers each SMTP outcome, counts what it took, dumps each message to a file) and a private
//! Postfix instance relaying to it. No mocks: what a test sees is what a real MTA did.
#![allow(clippy::expect_used)] // A harness that cannot start its servers can only fail the test.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const SINK_MISSING: &str =
    "Postfix's smtp-sink for the delivery tests: apt-get install postfix (scripts/test installs it as root)";

/// How long a test waits for a server to start or to report what it saw before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A port nobody listens on now; the server started next binds it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port()
}

pub async fn wait_listening(port: u16, what: &str) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(started.elapsed() < PATIENCE, "{what} did not listen on port {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `smtp-sink` on a loopback port with the given options, its counters (`-c`: sessions ended,
/// QUITs, messages) read as it prints them, and each message it takes dumped to a file (`-d`).
pub struct Sink {
    child: Child,
    pub port: u16,
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
    pub async fn start(options: &[&str]) -> Self {
        Self::spawn(options, true).await
    }

    /// `smtp-sink` on `port`, which another sink had before it was dropped: a relay whose
    /// answers change while its clients keep its address.
    pub async fn start_on(port: u16, options: &[&str]) -> Self {
        Self::spawn_on(port, options, true).await
    }

    /// `dump`: keep each message in a file (disk writes the throughput measurement leaves out).
    pub async fn spawn(options: &[&str], dump: bool) -> Self {
        Self::spawn_on(free_port(), options, dump).await
    }

    async fn spawn_on(port: u16, options: &[&str], dump: bool) -> Self {
        let binary = Path::new("/usr/sbin/smtp-sink");
        assert!(binary.is_file(), "{SINK_MISSING}");
        let dir = tempfile::tempdir().expect("a temporary directory");
        // As root, smtp-sink drops to `nobody`, which must be able to write the dumps.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("permissions");
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

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Waits for the report saying that `sessions` sessions have ended, and answers what the
    /// sink counted then: sessions and messages. The probe that saw the sink listening is a
    /// session too, and is not counted.
    pub fn counted_after_sessions(&self, sessions: usize) -> (usize, usize) {
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
    pub fn dumps(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("the dump directory")
            .map(|e| e.expect("an entry").path())
            .collect();
        files.sort();
        files.iter().map(|f| std::fs::read_to_string(f).expect("a dump")).collect()
    }
}

/// A private Postfix on loopback (its own configuration, queue and log in a temporary
/// directory; the machine's own Postfix is neither used nor needed), relaying everything it
/// takes to `relayhost`.
pub struct Postfix {
    config: PathBuf,
    master: Child,
    pub port: u16,
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
    pub async fn start(relayhost: u16) -> Self {
        Self::start_with(relayhost, "", &[]).await
    }

    /// A Postfix whose `main.cf` also holds `extra` (lines of `name = value`), e.g. a transport
    /// map that refuses a domain's mail, so that Postfix bounces it to the sender through the
    /// relayhost, and whose `master.cf` also holds `services` (e.g. a pipe transport that such
    /// a map names).
    pub async fn start_with(relayhost: u16, extra: &str, services: &[&str]) -> Self {
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
                 smtp_tls_security_level = none\nsmtpd_tls_security_level = none\n{extra}\n"
            ),
        )
        .expect("main.cf");
        // Only the services a relay needs, none chrooted; smtpd on the test's own port.
        let base = [
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
        let services: Vec<String> = base.into_iter().chain(services.iter().map(|s| (*s).to_owned())).collect();
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

    /// The message as this Postfix relayed it into a sink's dump (its own `Received` header on
    /// top, CRLF line ends), or `None` when the dump holds no message relayed by it.
    pub fn relayed(dump: &str) -> Option<String> {
        let at = dump.find("\nReceived: from relay.mos.test")?;
        Some(dump[at + 1..].replace('\n', "\r\n"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }
}

/// Amazon SNS messages as SNS signs them, with a key and certificate made here (named as SNS's
/// is), for the tests of `feedback::ses` and of the endpoint that takes them.
#[allow(clippy::unwrap_used)]
pub mod sns {
    use chrono::{Duration, Utc};
    use data_encoding::BASE64;
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::{PKey, Private};
    use openssl::rsa::Rsa;
    use openssl::sign::Signer;
    use openssl::x509::{X509NameBuilder, X509};
    use serde_json::{json, Value};

    /// A key and a certificate named as SNS's is, valid from `from` for `days`.
    pub fn signer(common_name: &str, from: chrono::DateTime<Utc>, days: u32) -> (PKey<Private>, Vec<u8>) {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", common_name).unwrap();
        let name = name.build();
        let mut cert = X509::builder().unwrap();
        cert.set_version(2).unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(&key).unwrap();
        let not_before = Asn1Time::from_unix(from.timestamp()).unwrap();
        cert.set_not_before(&not_before).unwrap();
        cert.set_not_after(&Asn1Time::from_unix((from + Duration::days(i64::from(days))).timestamp()).unwrap())
            .unwrap();
        cert.sign(&key, MessageDigest::sha256()).unwrap();
        (key, cert.build().to_pem().unwrap())
    }

    pub const CERT_URL: &str =
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem";
    pub const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-feedback";

    /// An SNS message of `kind` signed as SNS's documentation says: the fields of the kind, in
    /// name order, each as `Name\nvalue\n`, RSA with SHA-1 (version 1) or SHA-256 (version 2).
    pub fn signed(key: &PKey<Private>, kind: &str, message: &str, version: u8) -> Value {
        let mut fields =
            vec![("Message", message.to_owned()), ("MessageId", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324".to_owned())];
        if kind == "Notification" {
            fields.push(("Timestamp", "2026-12-07T16:00:00.000Z".to_owned()));
        } else {
            fields.extend([
                (
                    "SubscribeURL",
                    "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37".to_owned(),
                ),
                ("Timestamp", "2026-12-07T16:00:00.000Z".to_owned()),
                ("Token", "2336412f37".to_owned()),
            ]);
        }
        fields.extend([("TopicArn", TOPIC.to_owned()), ("Type", kind.to_owned())]);
        let text: String = fields.iter().map(|(name, value)| format!("{name}\n{value}\n")).collect();
        let digest = if version == 1 { MessageDigest::sha1() } else { MessageDigest::sha256() };
        let mut signer = Signer::new(digest, key).unwrap();
        signer.update(text.as_bytes()).unwrap();
        let mut body: serde_json::Map<String, Value> =
            fields.into_iter().map(|(n, v)| (n.to_owned(), json!(v))).collect();
        body.insert("SignatureVersion".into(), json!(version.to_string()));
        body.insert("Signature".into(), json!(BASE64.encode(&signer.sign_to_vec().unwrap())));
        body.insert("SigningCertURL".into(), json!(CERT_URL));
        Value::Object(body)
    }
}
