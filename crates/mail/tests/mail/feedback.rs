//! Delivery feedback parsed from the RFCs' own examples, from a bounce a real Postfix wrote, and
//! from broken and mangled input: what happened and the original message's Message-ID, or a
//! clear refusal; never a panic.

use mos_mail::feedback::{self, Action, Complaint, FeedbackError, Original, Report, What};
use mos_mail::smtp::{Delivery, Relay, RelayConfig};
use mos_mail::testing::{Postfix, Sink};

use crate::{dkim, key, message};

pub fn sample(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/feedback/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).expect("a sample report")
}

#[test]
fn an_abuse_report_of_rfc_5965_is_a_complaint_about_the_message_it_returns() {
    let report = feedback::parse(&sample("rfc5965-b1.eml")).unwrap();
    let original = Original { message_id: "8787KJKJ3K4J3K4J3K4J3.mail@example.net".into(), feedback_id: None };
    assert_eq!(report, Report { original, what: What::Complaint(Complaint::Abuse) });
}

#[test]
fn a_bounce_returning_only_the_headers_names_the_original_and_a_hard_bounce() {
    let report = feedback::parse(&sample("hard-bounce-headers.eml")).unwrap();
    let What::Delivery(recipients) = &report.what else { panic!("a delivery report: {report:?}") };
    assert_eq!(
        report.original.message_id,
        "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60@mail.acme.example"
    );
    assert_eq!(
        report.original.feedback_id.as_deref(),
        Some("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b:0193a1b2-0000-7000-8000-000000000001")
    );
    assert_eq!(recipients.len(), 1);
    let status = &recipients[0];
    assert_eq!((status.action, status.code.to_string().as_str()), (Action::Failed, "5.1.1"));
    assert!(status.is_hard_bounce());
    // The folded diagnostic is one line, without its type.
    assert_eq!(
        status.diagnostic.as_deref(),
        Some("550 5.1.1 <ada@patient.example>: Recipient address rejected: User unknown in virtual mailbox table")
    );
}

#[test]
fn the_rfc_3464_example_is_refused_because_its_returned_message_has_no_message_id() {
    // The RFC's example returns "[original message goes here]": nothing to match it to.
    assert_eq!(feedback::parse(&sample("rfc3464-timeout.eml")), Err(FeedbackError::NoOriginal));
    // With a real message returned it is a permanent failure, but not a hard bounce: 4.0.0 is
    // a timeout's code, which says nothing about the address.
    let text = String::from_utf8(sample("rfc3464-timeout.eml")).unwrap().replace(
        "[original message goes here]",
        "From: news@mail.acme.example\nMessage-ID: <c0ffee.42@mail.acme.example>\nSubject: Hi\n\nHello\n",
    );
    let report = feedback::parse(text.as_bytes()).unwrap();
    let What::Delivery(recipients) = report.what else { panic!("a delivery report") };
    assert_eq!(report.original.message_id, "c0ffee.42@mail.acme.example");
    assert_eq!(recipients[0].action, Action::Failed);
    assert!(!recipients[0].is_hard_bounce());
}

#[test]
fn what_is_not_a_matchable_report_is_refused_with_its_reason() {
    let arf = String::from_utf8(sample("rfc5965-b1.eml")).unwrap();
    let dsn = String::from_utf8(sample("hard-bounce-headers.eml")).unwrap();
    let cases: Vec<(String, FeedbackError)> = vec![
        ("".into(), FeedbackError::NotAMessage),
        ("just some words".into(), FeedbackError::NotAReport),
        ("From: a@b.example\nSubject: Re: your newsletter\n\nPlease stop.\n".into(), FeedbackError::NotAReport),
        (arf.replace("report-type=feedback-report", "report-type=disposition-notification"), FeedbackError::NotAReport),
        (arf.replace("Feedback-Type: abuse", "Feedback-Type: spam-maybe"), FeedbackError::Field("Feedback-Type")),
        (
            arf.replace("Content-Type: message/feedback-report", "Content-Type: text/plain"),
            FeedbackError::MissingPart("message/feedback-report"),
        ),
        (dsn.replace("Status: 5.1.1", "Status: five"), FeedbackError::Field("Status")),
        (dsn.replace("Action: failed", "Action: exploded"), FeedbackError::Field("Action")),
        (dsn.replace("Message-ID: <0193", "X-Message-ID: <0193"), FeedbackError::NoOriginal),
        ("x".repeat(feedback::MAX_REPORT_BYTES + 1), FeedbackError::TooLarge),
    ];
    for (input, expected) in cases {
        let head: String = input.chars().take(60).collect();
        assert_eq!(feedback::parse(input.as_bytes()), Err(expected), "{head:?}");
    }
}

#[test]
fn mangled_reports_are_answered_without_a_panic() {
    let samples = [sample("rfc5965-b1.eml"), sample("hard-bounce-headers.eml"), sample("rfc3464-timeout.eml")];
    let parsed = mangled(&samples, 3000, |bytes| feedback::parse(bytes).is_ok());
    // Most small changes leave a report a report.
    assert!(parsed > 100, "{parsed}");
}

/// Feeds `rounds` mangled copies of the samples (bytes flipped, cut short, inserted, repeated,
/// by a fixed xorshift so that a failure repeats) to `parse`; how many it took.
pub fn mangled(samples: &[Vec<u8>], rounds: usize, mut parse: impl FnMut(&[u8]) -> bool) -> usize {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut parsed = 0;
    for round in 0..rounds {
        let mut bytes = samples[round % samples.len()].clone();
        for _ in 0..(next() % 8) {
            if bytes.is_empty() {
                break;
            }
            let at = (next() as usize) % bytes.len().max(1);
            match next() % 4 {
                0 => bytes[at] = next() as u8,
                1 => bytes.truncate(at),
                2 => bytes.insert(at, b"\r\n:;<>\"=-{}[],"[(next() % 13) as usize]),
                _ => {
                    let tail = bytes[at..].to_vec();
                    bytes.extend_from_slice(&tail[..tail.len().min(200)]);
                }
            }
        }
        if parse(&bytes) {
            parsed += 1;
        }
    }
    parsed
}

#[tokio::test]
async fn a_bounce_written_by_postfix_names_our_message_and_a_hard_bounce() {
    // Postfix takes the message and then refuses the recipient's domain itself (its error
    // transport, as a mailbox provider refuses an unknown user), and bounces it to the sender,
    // through the relayhost, into the sink.
    let sink = Sink::start(&[]).await;
    let postfix = Postfix::start_with(
        sink.port,
        "transport_maps = inline:{ {patient.example=error:5.1.1 User unknown in local recipient table} }\n\
         smtpd_reject_unlisted_recipient = no",
        &[],
    )
    .await;
    let relay = Relay::from_url(&format!("smtp://127.0.0.1:{}", postfix.port), RelayConfig::default()).unwrap();
    let signed = dkim::signer(key(), "mail.acme.example").sign(message("Hello {{first_name}}", "Ada")).unwrap();
    let delivery = relay.send(&signed).await;
    assert!(matches!(delivery, Delivery::Accepted { .. }), "{delivery:?}; Postfix's log: {}", postfix.log());
    relay.shutdown().await;

    let (_, messages) = sink.counted_after_sessions(1);
    assert_eq!(messages, 1, "Postfix's log: {}", postfix.log());
    let dumps = sink.dumps();
    let bounce = Postfix::relayed(&dumps[0]).expect("the bounce, relayed by Postfix");
    assert!(dumps[0].contains("X-Rcpt-Args: <news@mail.acme.example>"), "to the sender: {}", dumps[0]);
    let report = feedback::parse(bounce.as_bytes()).unwrap_or_else(|e| panic!("{e}: {bounce}"));
    let What::Delivery(recipients) = report.what else { panic!("a delivery report: {bounce}") };
    assert_eq!(report.original.message_id, "c0ffee.42@mail.acme.example");
    assert_eq!(report.original.feedback_id.as_deref(), Some("campaign-7:acme:mos"), "Postfix returns our headers");
    assert_eq!(recipients.len(), 1);
    assert_eq!(recipients[0].code.to_string(), "5.1.1");
    assert!(recipients[0].is_hard_bounce(), "{recipients:?}");
}
