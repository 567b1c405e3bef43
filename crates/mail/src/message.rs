//! A rendered message as MIME: multipart/alternative (text, then HTML, both UTF-8, each
//! transfer-encoded as lettre chooses), with the headers a bulk sender owes its recipients and
//! their mailbox providers (RFC 5322, RFC 8058's one-click unsubscribe, a Feedback-ID).

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue, MIME_VERSION_1_0};
use lettre::message::{Body, MultiPart, SinglePart};
use mos_domain::senders::FromName;
use mos_domain::Email;

use crate::error::{InputError, MessageError};
use crate::feedback::postmark;
use crate::render::Rendered;

/// A name and address, as From, To or Reply-To shows them. The name follows the senders' rule
/// for a display name (`FromName`: no control characters, quotes or angle brackets, so it can
/// carry no address of its own), and lettre encodes it (quoted, or RFC 2047 when it is not
/// ASCII), so no name can add a header or another recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    inner: lettre::message::Mailbox,
    address: Email,
}

impl Mailbox {
    /// Refused only when lettre cannot write the address (`Email`'s rule is the product's; the
    /// header's syntax is lettre's).
    pub fn new(name: Option<&FromName>, address: &Email) -> Result<Self, InputError> {
        let parsed: lettre::Address = address.as_str().parse().map_err(|_| InputError::Address)?;
        let name = name.map(|name| name.as_str().to_owned());
        Ok(Self { inner: lettre::message::Mailbox::new(name, parsed), address: address.clone() })
    }
}

/// A message's unique id, `<left@right>` (RFC 5322 `msg-id` with dot-atom sides), chosen by the
/// caller so that the send ledger names it before the message exists, and a retry of the same
/// row sends the same id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageId(String);

impl MessageId {
    pub fn parse(input: &str) -> Result<Self, InputError> {
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        let dot_atom = |s: &str| !s.is_empty() && s.split('.').all(|atom| !atom.is_empty() && atom.chars().all(atext));
        let ok = input.len() <= 250
            && input
                .strip_prefix('<')
                .and_then(|s| s.strip_suffix('>'))
                .and_then(|s| s.split_once('@'))
                .is_some_and(|(left, right)| dot_atom(left) && dot_atom(right));
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(InputError::MessageId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `Feedback-ID` header's value, by which a mailbox provider reports complaints per campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackId(String);

impl FeedbackId {
    pub fn parse(input: &str) -> Result<Self, InputError> {
        let ok =
            (1..=200).contains(&input.len()) && input.chars().all(|c| c.is_ascii_alphanumeric() || ":._-".contains(c));
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(InputError::FeedbackId)
        }
    }
}

/// Who sends to whom, when, and under which id. The subject and the one-click address come from
/// the rendered message.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub to: Mailbox,
    pub date: DateTime<Utc>,
    pub message_id: MessageId,
    /// Named in `List-Unsubscribe` after the https address, for clients that only mail.
    pub unsubscribe_mailto: Option<Email>,
    pub feedback_id: Option<FeedbackId>,
}

/// A built, unsigned message. Only [`crate::DkimSigner::sign`] turns it into bytes to send.
#[derive(Debug, Clone)]
pub struct Message {
    pub(crate) inner: lettre::Message,
    /// The From address, whose domain the DKIM domain must align with.
    pub(crate) from: Email,
}

impl Message {
    pub fn build(rendered: &Rendered, envelope: Envelope) -> Result<Self, MessageError> {
        let mut unsubscribe = format!("<{}>", rendered.unsubscribe().as_str());
        if let Some(mailto) = &envelope.unsubscribe_mailto {
            unsubscribe.push_str(&format!(", <mailto:{mailto}>"));
        }
        let from = envelope.from.address;
        let mut builder = lettre::Message::builder()
            .from(envelope.from.inner)
            .to(envelope.to.inner)
            .subject(rendered.subject())
            .date(envelope.date.into())
            .message_id(Some(envelope.message_id.0.clone()))
            .raw_header(header("List-Unsubscribe", unsubscribe))
            .raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_owned()));
        if let Some(reply_to) = envelope.reply_to {
            builder = builder.reply_to(reply_to.inner);
        }
        if let Some(feedback) = envelope.feedback_id {
            // The same two ids again as Postmark's metadata, which its webhooks return (it
            // names a message by its own id otherwise, see `feedback::postmark`). Other relays
            // pass them on; they say nothing that Message-ID and Feedback-ID do not.
            let left = envelope.message_id.0.trim_start_matches('<').split('@').next().unwrap_or_default();
            if feedback.0.len() <= POSTMARK_VALUE_MAX && left.len() <= POSTMARK_VALUE_MAX {
                builder = builder
                    .raw_header(header(postmark::FEEDBACK_HEADER, feedback.0.clone()))
                    .raw_header(header(postmark::MESSAGE_HEADER, left.to_owned()));
            }
            builder = builder.raw_header(header("Feedback-ID", feedback.0));
        }
        // lettre writes a multipart body's Content-Type with the body, not among the message's
        // headers, where its DKIM signer looks: a signature naming Content-Type would cover
        // nothing there, and every verifier would reject it. So the alternative is formatted
        // here, its Content-Type set as a header of the message, and its parts (each already
        // transfer-encoded, so the whole is 7-bit) given as the raw body.
        let alternative = MultiPart::alternative()
            .singlepart(SinglePart::plain(rendered.text().to_owned()))
            .singlepart(SinglePart::html(rendered.html().to_owned()));
        let content_type = alternative.headers().get::<ContentType>().ok_or(MessageError::Encoding)?;
        let mut body = alternative.formatted();
        let body = body.split_off(alternative.headers().to_string().len() + "\r\n".len());
        // lettre's own check wants lines under 76 bytes, which its quoted-printable lines reach;
        // RFC 5322's limit for 7-bit is 998, checked here with the rest of what 7-bit means.
        let seven_bit =
            body.iter().all(|&b| b != 0 && b.is_ascii()) && body.split(|&b| b == b'\n').all(|line| line.len() <= 999);
        if !seven_bit {
            return Err(MessageError::Encoding);
        }
        let body = Body::dangerous_pre_encoded(body, ContentTransferEncoding::SevenBit);
        let inner = builder.header(MIME_VERSION_1_0).header(content_type).body(body).map_err(MessageError::Build)?;
        Ok(Self { inner, from })
    }
}

/// The longest value Postmark keeps in a message's metadata.
const POSTMARK_VALUE_MAX: usize = 80;

/// A header lettre encodes itself (RFC 2047 for what is not printable ASCII, so a line break
/// cannot end it early). The values here are ASCII from parsed types.
fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}
