//! Delivery through real SMTP servers on loopback, no mocks: Postfix's `smtp-sink` answers with
//! each outcome (it accepts, refuses a command with 4xx or 5xx, or hangs up), and a private
//! Postfix instance relays a signed message to a capture the test reads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mos_mail::smtp::{Delivery, Relay, RelayConfig, SmtpUrlError, MAX_REPLY_CHARS};
use mos_mail::testing::{free_port, Postfix, Sink};
use mos_mail::Signed;

use crate::{dkim, inspect, key, message, UNSUBSCRIBE};

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
    let relayed = Postfix::relayed(dump).expect("Postfix's Received header");
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
