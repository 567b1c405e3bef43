//! Feedback from two providers, read from their documented sample payloads: Amazon SES
//! notifications (and the Amazon SNS message around them, whose signature is checked with a
//! certificate made here the way SNS's is named), and Postmark's webhooks. What each says, and
//! that a payload about a message that is not ours, a forged or re-signed SNS message, and
//! mangled input are all refused without a panic.

use chrono::{Duration, Utc};
use mos_mail::feedback::ses::{self, Kind, SnsMessage};
use mos_mail::feedback::{postmark, Action, Complaint, ProviderError, What};
use mos_mail::testing::sns::{signed, signer, CERT_URL, TOPIC};
use serde_json::{json, Value};

use crate::feedback::{mangled, sample};

const FEEDBACK_ID: &str = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b:0193a1b2-0000-7000-8000-000000000001";
const MESSAGE_LEFT: &str = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60";

fn json_sample(name: &str) -> Value {
    serde_json::from_slice(&sample(name)).unwrap()
}

/// An SES sample as a notification about our message: its Message-ID ours, and our Feedback-ID
/// among the returned headers.
fn ours(mut notification: Value) -> Value {
    let headers = notification["mail"]["headers"].as_array_mut().unwrap();
    for header in headers.iter_mut().filter(|h| h["name"] == "Message-ID") {
        header["value"] = json!(format!("<{MESSAGE_LEFT}@mail.acme.example>"));
    }
    headers.push(json!({"name": "Feedback-ID", "value": FEEDBACK_ID}));
    notification
}

fn codes(what: &What) -> Vec<(Action, String)> {
    let What::Delivery(statuses) = what else { panic!("a delivery report: {what:?}") };
    statuses.iter().map(|s| (s.action, s.code.to_string())).collect()
}

#[test]
fn the_documented_ses_notifications_are_a_bounce_a_complaint_and_a_delivery_of_the_message_they_return() {
    let read = |name: &str| ses::notification(&serde_json::to_vec(&ours(json_sample(name))).unwrap()).unwrap().unwrap();
    let bounce = read("ses-bounce.json");
    assert_eq!(bounce.original.message_id, format!("{MESSAGE_LEFT}@mail.acme.example"));
    assert_eq!(bounce.original.feedback_id.as_deref(), Some(FEEDBACK_ID));
    assert_eq!(codes(&bounce.what), [(Action::Failed, "5.1.1".to_owned())]);
    let What::Delivery(statuses) = &bounce.what else { unreachable!() };
    assert!(statuses[0].is_hard_bounce());
    assert_eq!(read("ses-complaint.json").what, What::Complaint(Complaint::Abuse));
    assert_eq!(codes(&read("ses-delivery.json").what), [(Action::Delivered, "2.0.0".to_owned())]);

    // As documented, they return a message that is not ours: no Feedback-ID to name an
    // organization, so nothing can be matched, and the reason says what to switch on.
    for name in ["ses-bounce.json", "ses-complaint.json", "ses-delivery.json"] {
        assert_eq!(ses::notification(&sample(name)), Err(ProviderError::NoHeaders), "{name}");
    }
    let mut truncated = json_sample("ses-bounce.json");
    truncated["mail"]["headers"] = json!([]);
    assert_eq!(ses::notification(&serde_json::to_vec(&truncated).unwrap()), Err(ProviderError::NoHeaders));
}

#[test]
fn an_ses_bounce_is_hard_by_its_status_or_by_a_subtype_that_says_the_address_takes_no_mail() {
    let bounce = |kind: &str, subtype: &str, status: Option<&str>| {
        let mut n = ours(json_sample("ses-bounce.json"));
        n["bounce"]["bounceType"] = json!(kind);
        n["bounce"]["bounceSubType"] = json!(subtype);
        n["bounce"]["bouncedRecipients"][0]["status"] = status.map_or(Value::Null, |s| json!(s));
        codes(&ses::notification(&serde_json::to_vec(&n).unwrap()).unwrap().unwrap().what)[0].1.clone()
    };
    assert_eq!(bounce("Permanent", "General", None), "5.1.0");
    assert_eq!(bounce("Permanent", "NoEmail", Some("5.0.0")), "5.1.1");
    assert_eq!(bounce("Permanent", "OnAccountSuppressionList", None), "5.1.1");
    assert_eq!(bounce("Permanent", "MailboxFull", None), "5.2.2");
    assert_eq!(bounce("Permanent", "General", Some("5.7.1")), "5.7.1");
    assert_eq!(bounce("Transient", "General", None), "4.0.0");

    // SES not sending to an address on its own list is no complaint.
    let mut n = ours(json_sample("ses-complaint.json"));
    n["complaint"]["complaintSubType"] = json!("OnAccountSuppressionList");
    assert_eq!(ses::notification(&serde_json::to_vec(&n).unwrap()), Ok(None));
    // Nor are the events that say nothing about delivery.
    let mut n = ours(json_sample("ses-delivery.json"));
    n.as_object_mut().unwrap().remove("notificationType");
    n["eventType"] = json!("Open");
    assert_eq!(ses::notification(&serde_json::to_vec(&n).unwrap()), Ok(None));
}

#[test]
fn the_documented_postmark_webhooks_need_our_metadata_and_then_say_what_happened() {
    for name in ["postmark-bounce.json", "postmark-spam-complaint.json", "postmark-delivery.json"] {
        assert_eq!(postmark::parse(&sample(name)), Err(ProviderError::NotOurs), "{name}");
    }
    let read = |name: &str, kind: Option<&str>| {
        let mut webhook = json_sample(name);
        webhook["Metadata"] = json!({postmark::FEEDBACK_KEY: FEEDBACK_ID, postmark::MESSAGE_KEY: MESSAGE_LEFT});
        if let Some(kind) = kind {
            webhook["Type"] = json!(kind);
        }
        postmark::parse(&serde_json::to_vec(&webhook).unwrap()).unwrap()
    };
    let bounce = read("postmark-bounce.json", None).unwrap();
    assert_eq!(bounce.original.message_id, MESSAGE_LEFT);
    assert_eq!(bounce.original.feedback_id.as_deref(), Some(FEEDBACK_ID));
    assert_eq!(codes(&bounce.what), [(Action::Failed, "5.1.1".to_owned())]);
    assert_eq!(
        codes(&read("postmark-bounce.json", Some("SoftBounce")).unwrap().what),
        [(Action::Failed, "4.0.0".to_owned())]
    );
    assert_eq!(
        codes(&read("postmark-bounce.json", Some("Transient")).unwrap().what),
        [(Action::Delayed, "4.0.0".to_owned())]
    );
    assert_eq!(read("postmark-bounce.json", Some("AutoResponder")), None);
    assert_eq!(read("postmark-spam-complaint.json", None).unwrap().what, What::Complaint(Complaint::Abuse));
    assert_eq!(codes(&read("postmark-delivery.json", None).unwrap().what), [(Action::Delivered, "2.0.0".to_owned())]);
}

fn parsed(body: &Value) -> SnsMessage {
    SnsMessage::parse(&serde_json::to_vec(body).unwrap()).unwrap()
}

#[test]
fn an_sns_message_verifies_only_unchanged_with_a_current_certificate_of_sns() {
    let now = Utc::now();
    let (key, cert) = signer("sns.amazonaws.com", now - Duration::days(1), 30);
    let notification = serde_json::to_string(&ours(json_sample("ses-complaint.json"))).unwrap();
    for version in [1, 2] {
        let body = signed(&key, "Notification", &notification, version);
        let message = parsed(&body);
        assert_eq!(message.kind(), Kind::Notification);
        assert_eq!(message.topic_arn(), TOPIC);
        assert_eq!(message.certificate_url().as_str(), CERT_URL);
        assert_eq!(message.verify(&cert, now), Ok(()), "version {version}");
        assert_eq!(message.report().unwrap().unwrap().what, What::Complaint(Complaint::Abuse));
    }
    let body = signed(&key, "SubscriptionConfirmation", "You have chosen to subscribe", 2);
    let confirmation = parsed(&body);
    assert_eq!(confirmation.verify(&cert, now), Ok(()));
    assert_eq!(confirmation.subscribe_url().unwrap().host_str(), Some("sns.us-east-1.amazonaws.com"));

    // Any field changed after signing, or a signature of another text or key, is refused.
    let body = signed(&key, "Notification", &notification, 2);
    for (field, value) in [
        ("Message", notification.replace("abuse", "not-spam")),
        ("TopicArn", "arn:aws:sns:us-east-1:666666666666:other".to_owned()),
        ("Timestamp", "2026-12-07T16:00:01.000Z".to_owned()),
        ("MessageId", "00000000-fdea-4c2c-8f9d-bdfb0c7bf324".to_owned()),
        ("SignatureVersion", "1".to_owned()),
    ] {
        let mut forged = body.clone();
        forged[field] = json!(value);
        assert_eq!(parsed(&forged).verify(&cert, now), Err(ProviderError::Signature), "{field} changed");
    }
    let mut forged = body.clone();
    forged["Subject"] = json!("added");
    assert_eq!(parsed(&forged).verify(&cert, now), Err(ProviderError::Signature));
    let (other_key, _) = signer("sns.amazonaws.com", now, 1);
    assert_eq!(
        parsed(&signed(&other_key, "Notification", &notification, 2)).verify(&cert, now),
        Err(ProviderError::Signature)
    );
    let mut garbled = body.clone();
    garbled["Signature"] = json!("not base64!");
    assert_eq!(parsed(&garbled).verify(&cert, now), Err(ProviderError::Malformed("Signature")));

    // A certificate that is not SNS's, or not valid now, is refused before the signature.
    let (key, stranger) = signer("sns.amazonaws.com.evil.example", now - Duration::days(1), 30);
    let body = signed(&key, "Notification", &notification, 2);
    assert_eq!(
        parsed(&body).verify(&stranger, now),
        Err(ProviderError::Certificate("not issued to sns.amazonaws.com"))
    );
    let (key, expired) = signer("sns.amazonaws.com", now - Duration::days(40), 30);
    let body = signed(&key, "Notification", &notification, 2);
    assert_eq!(parsed(&body).verify(&expired, now), Err(ProviderError::Certificate("not valid now")));
    assert_eq!(
        parsed(&body).verify(b"-----BEGIN CERTIFICATE-----\nAAAA\n", now),
        Err(ProviderError::Certificate("not a certificate"))
    );
}

#[test]
fn a_signing_certificate_or_a_confirmation_is_taken_only_from_an_https_address_of_sns() {
    let (key, _) = signer("sns.amazonaws.com", Utc::now(), 1);
    let body = signed(&key, "Notification", "{}", 2);
    for url in [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us_east.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.txt",
        "https://s3.amazonaws.com/SimpleNotificationService-1.pem",
    ] {
        let mut forged = body.clone();
        forged["SigningCertURL"] = json!(url);
        assert_eq!(
            SnsMessage::parse(&serde_json::to_vec(&forged).unwrap()).err(),
            Some(ProviderError::CertificateUrl),
            "{url}"
        );
    }
    let mut china = body.clone();
    china["SigningCertURL"] = json!("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem");
    assert!(SnsMessage::parse(&serde_json::to_vec(&china).unwrap()).is_ok());

    let mut confirmation = signed(&key, "SubscriptionConfirmation", "subscribe", 2);
    confirmation["SubscribeURL"] = json!("https://evil.example/?Action=ConfirmSubscription");
    assert_eq!(parsed(&confirmation).subscribe_url(), None);
}

#[test]
fn mangled_provider_payloads_are_answered_without_a_panic() {
    let ses_samples: Vec<Vec<u8>> = ["ses-bounce.json", "ses-complaint.json", "ses-delivery.json"]
        .iter()
        .map(|name| serde_json::to_vec(&ours(json_sample(name))).unwrap())
        .collect();
    let read = mangled(&ses_samples, 2000, |bytes| matches!(ses::notification(bytes), Ok(Some(_))));
    assert!(read > 100, "{read}");
    let postmark_samples: Vec<Vec<u8>> =
        ["postmark-bounce.json", "postmark-spam-complaint.json", "postmark-delivery.json"]
            .iter()
            .map(|name| {
                let mut webhook = json_sample(name);
                webhook["Metadata"] = json!({postmark::FEEDBACK_KEY: FEEDBACK_ID, postmark::MESSAGE_KEY: MESSAGE_LEFT});
                serde_json::to_vec(&webhook).unwrap()
            })
            .collect();
    let read = mangled(&postmark_samples, 2000, |bytes| matches!(postmark::parse(bytes), Ok(Some(_))));
    assert!(read > 100, "{read}");
    let (key, _) = signer("sns.amazonaws.com", Utc::now(), 1);
    let sns = vec![serde_json::to_vec(&signed(&key, "Notification", "{}", 2)).unwrap()];
    mangled(&sns, 2000, |bytes| SnsMessage::parse(bytes).is_ok());
}
