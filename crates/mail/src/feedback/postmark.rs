//! Postmark's bounce, spam complaint and delivery webhooks
//! (<https://postmarkapp.com/developer/webhooks/webhooks-overview>), read as the reports they
//! stand for. Postmark names a message by its own `MessageID`, not ours; so every message carries
//! two `X-PM-Metadata-*` headers (see `Message::build`), which Postmark's SMTP takes off the
//! message and returns in each webhook's `Metadata`: the campaign and organization (our
//! `Feedback-ID`) and the campaign and contact (our `Message-ID`'s left side). A webhook without
//! them is about a message that is not ours.

use serde::Deserialize;

use super::{Action, Complaint, Original, ProviderError, Report, Status, StatusCode, What};

/// The `Metadata` key holding our `Feedback-ID` (at most 20 characters, as Postmark allows),
/// and the header that sets it.
pub const FEEDBACK_KEY: &str = "mos-feedback-id";
pub const FEEDBACK_HEADER: &str = "X-PM-Metadata-mos-feedback-id";
/// The `Metadata` key holding our `Message-ID`'s left side, `campaign.contact`, and its header.
pub const MESSAGE_KEY: &str = "mos-message";
pub const MESSAGE_HEADER: &str = "X-PM-Metadata-mos-message";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Webhook {
    record_type: String,
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(default)]
    metadata: std::collections::HashMap<String, String>,
}

/// What one webhook says: `Ok(None)` for a record that says nothing to record (an auto-reply,
/// an open, a subscription change).
pub fn parse(body: &[u8]) -> Result<Option<Report>, ProviderError> {
    let webhook: Webhook = serde_json::from_slice(body).map_err(|_| ProviderError::Malformed("the webhook's JSON"))?;
    let what = match webhook.record_type.as_str() {
        "Delivery" => What::Delivery(vec![status(Action::Delivered, "2.0.0")]),
        "SpamComplaint" => What::Complaint(Complaint::Abuse),
        "Bounce" => match bounce(webhook.kind.as_deref().ok_or(ProviderError::Malformed("Type"))?) {
            Some(what) => what,
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    let feedback_id = webhook.metadata.get(FEEDBACK_KEY).cloned().ok_or(ProviderError::NotOurs)?;
    let message_id = webhook.metadata.get(MESSAGE_KEY).cloned().ok_or(ProviderError::NotOurs)?;
    Ok(Some(Report { original: Original { message_id, feedback_id: Some(feedback_id) }, what }))
}

/// A bounce record by its `Type`, with the enhanced status code that says the same (Postmark
/// gives none): only `HardBounce` and `BadEmailAddress` say the address takes no mail.
fn bounce(kind: &str) -> Option<What> {
    let (action, code) = match kind {
        "HardBounce" => (Action::Failed, "5.1.1"),
        "BadEmailAddress" => (Action::Failed, "5.1.3"),
        "SoftBounce" => (Action::Failed, "4.0.0"),
        "DnsError" => (Action::Failed, "4.4.3"),
        "Blocked" | "SpamNotification" | "DMARCPolicy" => (Action::Failed, "5.7.1"),
        "Transient" => (Action::Delayed, "4.0.0"),
        "SpamComplaint" => return Some(What::Complaint(Complaint::Abuse)),
        // An auto-reply, a challenge, an unsubscribe request by mail, Postmark's own
        // deactivation: nothing about the delivery of the message.
        _ => return None,
    };
    Some(What::Delivery(vec![status(action, code)]))
}

fn status(action: Action, code: &str) -> Status {
    let code = StatusCode::parse(code).unwrap_or_else(|| unreachable!("the codes above are well formed"));
    Status { action, code, diagnostic: None }
}
