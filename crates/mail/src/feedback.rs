//! Delivery feedback as relays and mailbox providers send it back: delivery status
//! notifications (DSN, RFC 3464: a bounce or a delay) and abuse reports (ARF, RFC 5965: a
//! complaint). Both are `multipart/report` messages whose machine-readable part says what
//! happened and whose last part returns the original message, or its headers.
//!
//! What a report says about a recipient is never trusted to find the recipient: a report is
//! matched to what was sent only by the original message's `Message-ID`, which the sender chose
//! (`<campaign.contact@domain>`). So the parser answers that `Message-ID` and what happened,
//! and refuses, with the reason, a report that names no original message. Nothing here reads a
//! database; the caller matches and records.

pub mod postmark;
pub mod ses;

use mail_parser::{MessageParser, MessagePart, MimeHeaders, PartType};

/// The largest report read: a DSN returns at most the original message, and ours are small.
pub const MAX_REPORT_BYTES: usize = 2 * 1024 * 1024;

/// What a report says happened to a message, and which message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub original: Original,
    pub what: What,
}

/// The original message as the report returns it: its `Message-ID` (without angle brackets)
/// and its `Feedback-ID` header, when it has one (ours name the campaign and the organization).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    pub message_id: String,
    pub feedback_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// A delivery status notification: one status per recipient it reports on.
    Delivery(Vec<Status>),
    /// An abuse report: the recipient (or their provider on their behalf) complained.
    Complaint(Complaint),
}

/// One recipient's outcome in a DSN (RFC 3464 section 2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub action: Action,
    /// The enhanced status code (RFC 3463), e.g. `5.1.1`.
    pub code: StatusCode,
    /// The remote server's own words (`Diagnostic-Code`), bounded, when given.
    pub diagnostic: Option<String>,
}

impl Status {
    /// A permanent failure that says the mailbox does not exist or cannot take mail at this
    /// address (RFC 3463 class 5, subject 1: addressing): the address should not be mailed
    /// again. A permanent failure for another reason (a policy refusal, a full mailbox) says
    /// nothing about the address.
    pub fn is_hard_bounce(&self) -> bool {
        self.action == Action::Failed && self.code.class == 5 && self.code.subject == 1
    }
}

/// `Action` of a DSN recipient (RFC 3464 section 2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    Relayed,
    Expanded,
}

/// An enhanced status code, `class.subject.detail` (RFC 3463).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusCode {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl std::fmt::Display for StatusCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl StatusCode {
    fn parse(text: &str) -> Option<Self> {
        // A comment may follow the code (`5.1.1 (user unknown)`).
        let code = text.split_whitespace().next()?;
        let mut parts = code.split('.');
        let class = parts.next()?.parse().ok().filter(|c| [2, 4, 5].contains(c))?;
        let subject = parts.next()?.parse().ok().filter(|s| *s < 1000)?;
        let detail = parts.next()?.parse().ok().filter(|d| *d < 1000)?;
        parts.next().is_none().then_some(Self { class, subject, detail })
    }
}

/// `Feedback-Type` of an abuse report (RFC 5965 section 7.3 and its registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Complaint {
    Abuse,
    Fraud,
    Virus,
    AuthFailure,
    NotSpam,
    Other,
}

/// Why a message is not a report that can be matched to what was sent. The reason names the
/// part or field, never a value from the report (which may hold a recipient's address).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedbackError {
    #[error("the report is larger than {MAX_REPORT_BYTES} bytes")]
    TooLarge,
    #[error("the input is not a MIME message")]
    NotAMessage,
    #[error("the message is not a multipart/report of type delivery-status or feedback-report")]
    NotAReport,
    #[error("the report has no {0} part")]
    MissingPart(&'static str),
    #[error("the report's {0} field is missing or malformed")]
    Field(&'static str),
    #[error("the report reports on no recipient")]
    NoRecipient,
    #[error("the report does not return the original message's Message-ID, so it cannot be matched to a message sent")]
    NoOriginal,
}

/// Why a provider's webhook or notification is refused. Like [`FeedbackError`], no reason holds
/// a value from the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("{0} is missing or malformed")]
    Malformed(&'static str),
    #[error("the webhook does not carry the metadata every message sent here has, so it is about no message of ours")]
    NotOurs,
    #[error(
        "the notification does not return the original message's Message-ID and Feedback-ID headers: turn on \"Include original headers\" for its identity"
    )]
    NoHeaders,
    #[error("the signing certificate's address is not an https address of Amazon SNS")]
    CertificateUrl,
    #[error("the signing certificate is refused: {0}")]
    Certificate(&'static str),
    #[error("the SNS message's signature does not verify")]
    Signature,
}

/// Parses one report as received (the whole message, as a pipe or an upload hands it over).
pub fn parse(raw: &[u8]) -> Result<Report, FeedbackError> {
    if raw.len() > MAX_REPORT_BYTES {
        return Err(FeedbackError::TooLarge);
    }
    let message = MessageParser::default().parse(raw).ok_or(FeedbackError::NotAMessage)?;
    let root = message.root_part();
    let content_type = message.content_type().ok_or(FeedbackError::NotAReport)?;
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    if !is(content_type.ctype(), "multipart") || !content_type.subtype().is_some_and(|s| is(s, "report")) {
        return Err(FeedbackError::NotAReport);
    }
    let report_type = content_type.attribute("report-type").unwrap_or_default().to_ascii_lowercase();
    let parts: Vec<&MessagePart> = match &root.body {
        PartType::Multipart(ids) => ids.iter().filter_map(|id| message.part(*id)).collect(),
        _ => return Err(FeedbackError::NotAReport),
    };
    let typed = |subtype: &str| {
        parts.iter().copied().find(|p| {
            p.content_type().is_some_and(|c| {
                is(c.ctype(), "message") && c.subtype().is_some_and(|s| is(s, subtype))
                    || is(c.ctype(), "text") && c.subtype().is_some_and(|s| is(s, subtype))
            })
        })
    };
    let original = || -> Result<Original, FeedbackError> {
        let returned = typed("rfc822").or_else(|| typed("rfc822-headers")).or_else(|| typed("global"));
        returned.and_then(original).ok_or(FeedbackError::NoOriginal)
    };
    match report_type.as_str() {
        "delivery-status" => {
            let part = typed("delivery-status").ok_or(FeedbackError::MissingPart("message/delivery-status"))?;
            let blocks = field_blocks(&part_text(part));
            // The first block is about the message; each further one about a recipient.
            let recipients = blocks.iter().skip(1).map(|b| recipient(b)).collect::<Result<Vec<_>, _>>()?;
            if recipients.is_empty() {
                return Err(FeedbackError::NoRecipient);
            }
            Ok(Report { original: original()?, what: What::Delivery(recipients) })
        }
        "feedback-report" => {
            let part = typed("feedback-report").ok_or(FeedbackError::MissingPart("message/feedback-report"))?;
            let blocks = field_blocks(&part_text(part));
            let kind = blocks
                .first()
                .and_then(|b| field(b, "feedback-type"))
                .and_then(|t| complaint(t.trim()))
                .ok_or(FeedbackError::Field("Feedback-Type"))?;
            Ok(Report { original: original()?, what: What::Complaint(kind) })
        }
        _ => Err(FeedbackError::NotAReport),
    }
}

/// A part's text whatever the parser made of it (a `message/*` part that is not a message is
/// kept as bytes).
fn part_text(part: &MessagePart) -> String {
    String::from_utf8_lossy(part.contents()).into_owned()
}

/// The returned original, a whole message or only its headers: its `Message-ID`, and its
/// `Feedback-ID` if it has one.
fn original(part: &MessagePart) -> Option<Original> {
    let mut headers = Vec::new();
    let headers_only;
    let message = match part.message() {
        Some(message) => message,
        None => {
            // Headers alone: parsed as a message with an empty body.
            headers.extend_from_slice(part.contents());
            headers.extend_from_slice(b"\r\n\r\n");
            headers_only = MessageParser::default().parse(&headers)?;
            &headers_only
        }
    };
    let printable = |v: &str| {
        let v = v.trim();
        (!v.is_empty() && v.len() <= 998 && v.is_ascii() && !v.contains(char::is_whitespace)).then(|| v.to_owned())
    };
    let message_id = printable(message.message_id()?.trim_start_matches('<').trim_end_matches('>'))?;
    let feedback_id = message.header_raw("Feedback-ID").and_then(printable);
    Some(Original { message_id, feedback_id })
}

/// The field blocks of a `message/delivery-status` or `message/feedback-report` body: groups of
/// `Name: value` lines (continuation lines folded in) separated by blank lines, names lowercased.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut block: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = block.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            block.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    blocks
}

fn field<'a>(block: &'a [(String, String)], name: &str) -> Option<&'a str> {
    block.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The most characters of a remote server's words kept.
const MAX_DIAGNOSTIC_CHARS: usize = 500;

fn recipient(block: &[(String, String)]) -> Result<Status, FeedbackError> {
    let action = match field(block, "action").map(|a| a.split_whitespace().next().unwrap_or("").to_ascii_lowercase()) {
        Some(a) if a == "failed" => Action::Failed,
        Some(a) if a == "delayed" => Action::Delayed,
        Some(a) if a == "delivered" => Action::Delivered,
        Some(a) if a == "relayed" => Action::Relayed,
        Some(a) if a == "expanded" => Action::Expanded,
        _ => return Err(FeedbackError::Field("Action")),
    };
    let code = field(block, "status").and_then(StatusCode::parse).ok_or(FeedbackError::Field("Status"))?;
    let diagnostic = field(block, "diagnostic-code").map(|d| {
        // `smtp; 550 5.1.1 ...`: the type, then the server's words.
        let words = d.split_once(';').map_or(d, |(_, w)| w).trim();
        words.chars().filter(|c| !c.is_control()).take(MAX_DIAGNOSTIC_CHARS).collect()
    });
    Ok(Status { action, code, diagnostic })
}

fn complaint(kind: &str) -> Option<Complaint> {
    Some(match kind.to_ascii_lowercase().as_str() {
        "abuse" => Complaint::Abuse,
        "fraud" => Complaint::Fraud,
        "virus" => Complaint::Virus,
        "auth-failure" => Complaint::AuthFailure,
        "not-spam" => Complaint::NotSpam,
        "other" => Complaint::Other,
        _ => return None,
    })
}
