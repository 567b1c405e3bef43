use mos_domain::senders::{FromName, PostalAddress};
use mos_mail::{render, Content, FeedbackId, InputError, Mailbox, Message, MessageId, Personalisation};

use crate::{email, envelope, essentials, fields, inspect, key, mailbox, message, template, values, UNSUBSCRIBE};

fn signed(message: Message) -> Vec<u8> {
    crate::dkim::signer(key(), "mail.acme.example").sign(message).expect("an aligned signature").formatted()
}

fn header<'a>(parsed: &'a serde_json::Value, name: &str) -> Vec<&'a str> {
    parsed["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .filter_map(|h| h[1].as_str())
        .collect()
}

#[test]
fn a_message_carries_its_headers_once_and_a_text_and_an_html_part() {
    let bytes = signed(message("Hello {{first_name}}, see you in {{city}}.", "Ada"));
    let (_, parsed) = inspect(&bytes, &["parse"]);
    let one = |name: &str| {
        let found = header(&parsed, name);
        assert_eq!(found.len(), 1, "{name}: {found:?} in {parsed}");
        found[0].to_owned()
    };
    assert_eq!(one("From"), "Acme Health <news@mail.acme.example>");
    assert_eq!(one("To"), "Ada Lovelace <ada@patient.example>");
    assert_eq!(one("Reply-To"), "Acme care team <care@acme.example>");
    assert_eq!(one("Subject"), "Flu shots for Ada");
    assert_eq!(one("Date"), "Mon, 07 Dec 2026 09:30:00 +0000");
    assert_eq!(one("Message-ID"), "<c0ffee.42@mail.acme.example>");
    assert_eq!(one("List-Unsubscribe"), format!("<{UNSUBSCRIBE}>, <mailto:unsubscribe@mail.acme.example>"));
    assert_eq!(one("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    assert_eq!(one("Feedback-ID"), "campaign-7:acme:mos");
    assert_eq!(one("MIME-Version"), "1.0");
    assert_eq!(one("DKIM-Signature").split(';').next(), Some("v=1"));
    assert_eq!(parsed["content_type"], "multipart/alternative");
    let parts = parsed["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 2, "{parsed}");
    assert_eq!((parts[0][0].as_str(), parts[0][1].as_str()), (Some("text/plain"), Some("utf-8")));
    assert_eq!((parts[1][0].as_str(), parts[1][1].as_str()), (Some("text/html"), Some("utf-8")));
    let text = parts[0][3].as_str().unwrap_or_default().replace("\r\n", "\n");
    assert!(text.starts_with("Hello Ada, see you in Springfield.\n"), "{text}");
    assert!(text.contains(UNSUBSCRIBE), "{text}");
    let html = parts[1][3].as_str().unwrap_or_default();
    assert!(html.contains("<p>Hello Ada, see you in Springfield.</p>"), "{html}");
}

#[test]
fn non_ascii_and_hostile_names_and_subjects_stay_inside_their_headers() {
    let hostile = "Zoë \"x\", <y> 😀";
    let mut envelope = envelope();
    // A display name that carries an address of its own never reaches a header.
    assert!(FromName::parse("Acme, \"Health\" <x@evil.example>").is_err());
    envelope.from = mailbox("Acme, Health (Zoë's team) 😀", "news@mail.acme.example");
    envelope.to = mailbox("Zoë, Ångström (the second) 😀", "ada@patient.example");
    let rendered = render(
        &template(),
        &Content { title: "T", body: "b", subject: Some("Für {{first_name}}: Bcc: all@example.com") },
        &values(hostile),
        &essentials(),
    )
    .expect("a message");
    let bytes = signed(Message::build(&rendered, envelope).expect("a message"));
    // Every header line is ASCII; the names and the subject are encoded, not raw.
    let head = &bytes[..bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a head")];
    assert!(head.is_ascii(), "{}", String::from_utf8_lossy(head));
    let (_, parsed) = inspect(&bytes, &["parse"]);
    assert_eq!(header(&parsed, "Subject"), [format!("Für {hostile}: Bcc: all@example.com")]);
    assert!(header(&parsed, "Bcc").is_empty() && header(&parsed, "Cc").is_empty(), "{parsed}");
    assert_eq!(header(&parsed, "To").len(), 1);
    assert!(header(&parsed, "To")[0].ends_with("<ada@patient.example>"), "{parsed}");
    assert!(header(&parsed, "From")[0].ends_with("<news@mail.acme.example>"), "{parsed}");
    assert!(header(&parsed, "From")[0].contains("Acme, Health (Zoë's team) 😀"), "{parsed}");
    assert!(header(&parsed, "To")[0].contains("Zoë, Ångström (the second) 😀"), "{parsed}");

    // A line break cannot get that far: values, names and subjects refuse it when parsed.
    assert_eq!(
        Personalisation::new(&fields(), [("first_name", "Ada\r\nBcc: all@example.com"), ("city", "")]),
        Err(InputError::Invisible("first_name".into()))
    );
    assert!(FromName::parse("Ada\r\nBcc: a@b.example").is_err());
    assert!(Mailbox::new(None, &email("a@b.example")).is_ok());
}

#[test]
fn ids_are_parsed_before_they_reach_a_header() {
    for bad in ["c0ffee@x", "<c0ffee>", "<a@b>\r\nBcc: x@y.z", "<a b@c>", "<@b>", "<a@>", "<a..b@c>", "<a@b@c>"] {
        assert_eq!(MessageId::parse(bad), Err(InputError::MessageId), "{bad:?}");
    }
    assert!(MessageId::parse("<0193a1b2-7c3d.42@mail.acme.example>").is_ok());
    for bad in ["", "a b", "a;b", "a\r\nb"] {
        assert_eq!(FeedbackId::parse(bad), Err(InputError::FeedbackId), "{bad:?}");
    }
    for bad in ["http://mos.example/u", "mailto:a@b.example", "https://user:pw@mos.example/u", "/u/tok", "javascript:x"]
    {
        assert_eq!(mos_mail::HttpsUrl::parse(bad), Err(InputError::HttpsUrl), "{bad:?}");
    }
    assert!(PostalAddress::parse("1 Main St\u{202E}").is_err());
    assert!(PostalAddress::parse("  ").is_err());
}
