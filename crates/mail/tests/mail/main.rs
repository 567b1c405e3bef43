//! The mail crate's tests: rendering (escaping, placeholders, the required elements, a golden
//! rendering), the built message's headers, its DKIM signature checked by dkimpy, and delivery
//! through real SMTP servers on loopback (smtp-sink, a private Postfix).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dkim;
mod feedback;
mod headers;
mod providers;
mod render;
mod smtp;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use chrono::{TimeZone, Utc};
use mos_domain::senders::{FromName, PostalAddress};
use mos_domain::Email;
use mos_mail::{
    render, Content, Envelope, Essentials, FeedbackId, Field, Fields, HttpsUrl, Mailbox, Message, MessageId,
    Personalisation, Rendered, Template,
};

/// A sender's postal address as the senders store it: several lines.
pub const ADDRESS: &str = "Acme Health\n1 Main Street\nSpringfield, IL 62701";
pub const UNSUBSCRIBE: &str = "https://mos.example/u/tok3n?c=1&k=2";
pub const PREFERENCES: &str = "https://mos.example/p/tok3n";

/// A layout with everything a message needs: the content, then the footer.
pub const LAYOUT: &str = "{{content}}\n\n---\n\n{{postal_address}}\n\n[Unsubscribe]({{unsubscribe_url}}) | [Preferences]({{preferences_url}})\n";

pub fn fields() -> Fields {
    Fields::new(vec![
        Field::text("first_name", 40).expect("a field name"),
        Field::text("city", 60).expect("a field name"),
    ])
    .expect("distinct fields")
}

pub fn values(first_name: &str) -> Personalisation {
    Personalisation::new(&fields(), [("first_name", first_name), ("city", "Springfield")]).expect("valid values")
}

pub fn essentials() -> Essentials {
    Essentials {
        postal_address: PostalAddress::parse(ADDRESS).expect("an address"),
        unsubscribe: HttpsUrl::parse(UNSUBSCRIBE).expect("an https URL"),
        preferences: HttpsUrl::parse(PREFERENCES).expect("an https URL"),
        clicks: Vec::new(),
    }
}

pub fn template() -> Template {
    Template::new(LAYOUT).expect("a layout with one content slot")
}

pub fn content(body: &str) -> Content<'_> {
    Content { title: "Flu shots for {{first_name}}", body, subject: None }
}

/// `body` rendered in the standard layout for a recipient called `first_name`.
pub fn rendered(body: &str, first_name: &str) -> Rendered {
    render(&template(), &content(body), &values(first_name), &essentials()).expect("a complete message")
}

pub fn email(address: &str) -> Email {
    Email::parse(address).expect("an address")
}

pub fn name(name: &str) -> FromName {
    FromName::parse(name).expect("a display name")
}

pub fn mailbox(display_name: &str, address: &str) -> Mailbox {
    Mailbox::new(Some(&name(display_name)), &email(address)).expect("a mailbox")
}

pub fn envelope() -> Envelope {
    Envelope {
        from: mailbox("Acme Health", "news@mail.acme.example"),
        reply_to: Some(mailbox("Acme care team", "care@acme.example")),
        to: mailbox("Ada Lovelace", "ada@patient.example"),
        date: Utc.with_ymd_and_hms(2026, 12, 7, 9, 30, 0).single().expect("a date"),
        message_id: MessageId::parse("<c0ffee.42@mail.acme.example>").expect("a message id"),
        unsubscribe_mailto: Some(email("unsubscribe@mail.acme.example")),
        feedback_id: Some(FeedbackId::parse("campaign-7:acme:mos").expect("a feedback id")),
    }
}

pub fn message(body: &str, first_name: &str) -> Message {
    Message::build(&rendered(body, first_name), envelope()).expect("a message")
}

/// A throwaway RSA-2048 key made by the openssl CLI: the private key in PKCS#1 PEM, the public key
/// as the base64 DER a DNS TXT record's `p=` holds. One per test run: making one takes a while.
pub struct TestKey {
    pub private_pem: String,
    pub public_b64: String,
}

pub fn key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(new_key)
}

pub fn new_key() -> TestKey {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let private = dir.path().join("private.pem");
    let status = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&private)
        .arg("2048")
        .output()
        .expect("openssl runs");
    assert!(status.status.success(), "openssl genrsa: {}", String::from_utf8_lossy(&status.stderr));
    let public = Command::new("openssl")
        .args(["rsa", "-pubout", "-outform", "DER", "-in"])
        .arg(&private)
        .output()
        .expect("openssl runs");
    assert!(public.status.success(), "openssl rsa: {}", String::from_utf8_lossy(&public.stderr));
    TestKey {
        private_pem: std::fs::read_to_string(&private).expect("the key file"),
        public_b64: data_encoding::BASE64.encode(&public.stdout),
    }
}

/// Runs tests/data/inspect_message.py on `message`; its exit status and what it printed.
pub fn inspect(message: &[u8], args: &[&str]) -> (bool, serde_json::Value) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("message.eml");
    std::fs::write(&file, message).expect("the message file");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/inspect_message.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(args[0])
        .arg(&file)
        .args(&args[1..])
        .output()
        .expect("python3 runs tests/data/inspect_message.py (pip install dkimpy)");
    let printed = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(&printed).unwrap_or_else(|_| {
        panic!("inspect_message.py printed {printed:?}, {}", String::from_utf8_lossy(&output.stderr))
    });
    (output.status.success(), json)
}
