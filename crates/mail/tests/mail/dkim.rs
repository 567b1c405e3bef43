use mos_domain::senders::{DkimDomain, Selector};
use mos_mail::{render, Content, DkimSigner, InputError, Message, MessageError, SIGNED_HEADERS};
use secrecy::SecretString;

use crate::{essentials, inspect, key, mailbox, message, new_key, template, values, TestKey};

const SELECTOR: &str = "s2026";
const DOMAIN: &str = "mail.acme.example";

pub fn signer(key: &TestKey, domain: &str) -> DkimSigner {
    let selector = Selector::parse(SELECTOR).expect("a selector");
    let domain = DkimDomain::parse(domain).expect("a DKIM domain");
    DkimSigner::new(&selector, &domain, &SecretString::from(key.private_pem.clone())).expect("a signer")
}

fn verify(bytes: &[u8], public_b64: &str) -> (bool, serde_json::Value) {
    inspect(bytes, &["verify", SELECTOR, DOMAIN, public_b64])
}

/// `bytes` with the first `from` after the headers replaced by `to` (in the body when `in_body`).
fn replace(bytes: &[u8], from: &str, to: &str, in_body: bool) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).expect("ASCII");
    let split = text.find("\r\n\r\n").expect("a head");
    let (head, body) = text.split_at(split);
    let (head, body) = if in_body {
        (head.to_owned(), body.replacen(from, to, 1))
    } else {
        (head.replacen(from, to, 1), body.to_owned())
    };
    assert_ne!(format!("{head}{body}"), text, "{from:?} must be in the message");
    format!("{head}{body}").into_bytes()
}

#[test]
fn a_signed_message_verifies_in_dkimpy_and_covers_the_one_click_headers() {
    let key = key();
    let bytes = signer(key, DOMAIN).sign(message("Hello {{first_name}}", "Zoë")).expect("signed").formatted();
    let (ok, result) = verify(&bytes, &key.public_b64);
    assert!(ok, "dkimpy: {result}");
    assert_eq!(result["tags"]["a"], "rsa-sha256");
    assert_eq!(result["tags"]["c"], "relaxed/relaxed");
    assert_eq!(result["tags"]["d"], DOMAIN);
    assert_eq!(result["tags"]["s"], SELECTOR);
    let signed: Vec<&str> = result["signed"].as_array().into_iter().flatten().filter_map(|h| h.as_str()).collect();
    for name in SIGNED_HEADERS {
        assert!(signed.contains(&name.to_ascii_lowercase().as_str()), "{name} unsigned: {signed:?}");
    }
    for required in ["list-unsubscribe", "list-unsubscribe-post", "from", "to", "subject", "date", "message-id"] {
        assert!(signed.contains(&required), "{required} unsigned: {signed:?}");
    }

    // Long headers are folded, and non-ASCII ones encoded, before they are signed: relaxed
    // canonicalization must still agree with the verifier's.
    let subject = "Flu shots for {{first_name}}: book now at the {{city}} clinic before the winter season starts, café and parking included";
    let content = Content { title: "T", body: "Hello {{first_name}}", subject: Some(subject) };
    let rendered = render(&template(), &content, &values("Zoë Ångström-Øster Mac Giolla Phádraig"), &essentials())
        .expect("a message");
    let mut envelope = crate::envelope();
    envelope.to = mailbox("Zoë Ångström-Øster Mac Giolla Phádraig, the second", "zoe@patient.example");
    let bytes =
        signer(key, DOMAIN).sign(Message::build(&rendered, envelope).expect("a message")).expect("signed").formatted();
    assert!(bytes.windows(3).any(|w| w == b"\r\n "), "the long headers are folded");
    let (ok, result) = verify(&bytes, &key.public_b64);
    assert!(ok, "dkimpy: {result}");
}

#[test]
fn a_changed_body_or_signed_header_fails_verification() {
    let key = key();
    let bytes =
        signer(key, DOMAIN).sign(message("Hello {{first_name}}, take care.", "Ada")).expect("signed").formatted();
    assert!(verify(&bytes, &key.public_b64).0, "the untouched message verifies");
    for (from, to, in_body) in [
        ("take care", "take pills", true),
        ("Subject: Flu shots for Ada", "Subject: Flu shots for Bob", false),
        ("https://mos.example/u/tok3n", "https://evil.example/u/tok3n", false),
        ("List-Unsubscribe-Post: List-Unsubscribe=One-Click", "List-Unsubscribe-Post: List-Unsubscribe=Twice", false),
        ("To: \"Ada Lovelace\" <ada@patient.example>", "To: \"Ada Lovelace\" <eve@patient.example>", false),
        ("<c0ffee.42@mail.acme.example>", "<c0ffee.43@mail.acme.example>", false),
        ("Reply-To: \"Acme care team\" <care@acme.example>", "Reply-To: \"Acme care team\" <care@evil.example>", false),
        ("Content-Type: multipart/alternative", "Content-Type: multipart/mixed", false),
    ] {
        let tampered = replace(&bytes, from, to, in_body);
        let (ok, result) = verify(&tampered, &key.public_b64);
        assert!(!ok, "{from:?} -> {to:?} still verifies: {result}");
    }
    // A header the signature names but the message lacked cannot be added afterwards.
    let mut without_feedback = crate::envelope();
    without_feedback.feedback_id = None;
    let rendered = crate::rendered("Hi", "Ada");
    let bytes = signer(key, DOMAIN)
        .sign(mos_mail::Message::build(&rendered, without_feedback).expect("a message"))
        .expect("signed")
        .formatted();
    assert!(verify(&bytes, &key.public_b64).0);
    let added = [b"Feedback-ID: evil:1\r\n".as_slice(), &bytes].concat();
    assert!(!verify(&added, &key.public_b64).0, "an added Feedback-ID still verifies");
}

#[test]
fn another_key_or_another_domain_does_not_verify_and_an_unaligned_from_is_refused() {
    let key = key();
    let bytes = signer(key, DOMAIN).sign(message("Hi", "Ada")).expect("signed").formatted();
    let other = new_key();
    assert!(!verify(&bytes, &other.public_b64).0, "verified with a key that did not sign it");

    // The parent domain aligns (relaxed alignment, `DkimDomain::aligns_with`); a sibling or a
    // suffix that is not a label does not.
    assert!(signer(key, "acme.example").sign(message("Hi", "Ada")).is_ok());
    assert!(signer(key, "Mail.ACME.example").sign(message("Hi", "Ada")).is_ok(), "domains compare in lower case");
    for domain in ["other.example", "l.acme.example", "cme.example"] {
        match signer(key, domain).sign(message("Hi", "Ada")) {
            Err(MessageError::NotAligned { from, dkim }) => {
                assert_eq!((from.as_str(), dkim.as_str()), (DOMAIN, domain))
            }
            other => panic!("{domain}: {other:?}"),
        }
    }
}

#[test]
fn a_key_or_name_that_cannot_sign_is_refused_without_showing_the_key() {
    let not_a_key = "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0IGJ5dGVz\n-----END RSA PRIVATE KEY-----\n";
    let selector = Selector::parse(SELECTOR).expect("a selector");
    let domain = DkimDomain::parse(DOMAIN).expect("a DKIM domain");
    let refused = DkimSigner::new(&selector, &domain, &SecretString::from(not_a_key.to_owned()));
    assert_eq!(refused.as_ref().err(), Some(&InputError::DkimKey));
    assert!(!refused.err().map(|e| e.to_string()).unwrap_or_default().contains("c2VjcmV0"));
    // What could end a tag or the header never becomes a selector or a domain to sign with.
    for bad in ["s1; d=evil.example", "s1\r\nX: y", "", "a..b", "-s1"] {
        assert!(Selector::parse(bad).is_err(), "{bad:?}");
        assert!(DkimDomain::parse(&format!("{bad}.example")).is_err(), "{bad:?}");
    }
    let signer = signer(key(), DOMAIN);
    assert!(!format!("{signer:?}").contains("PRIVATE"), "{signer:?}");
}
