//! Amazon SES notifications as Amazon SNS delivers them to an HTTPS subscription
//! (<https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html>): an SNS message whose
//! signature is checked first (<https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html>),
//! then the SES notification it carries read as the report it stands for.
//!
//! SES returns the original message's headers (with "Include original headers" on), so a
//! notification is matched like a DSN: by our `Feedback-ID` and `Message-ID`, never by the
//! addresses it lists. The signing certificate comes from an address of SNS itself, which the
//! caller fetches over HTTPS (or has pinned); this module only says which address is acceptable
//! and checks the signature with the certificate given.

use chrono::{DateTime, Utc};
use data_encoding::BASE64;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::sign::Verifier;
use openssl::x509::X509;
use serde::Deserialize;
use url::Url;

use super::{Action, Complaint, Original, ProviderError, Report, Status, StatusCode, What};

/// The common name of the certificate SNS signs with.
const SIGNER: &str = "sns.amazonaws.com";

/// What kind of SNS message arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Fields {
    #[serde(rename = "Type")]
    kind: String,
    message_id: String,
    topic_arn: String,
    subject: Option<String>,
    message: String,
    timestamp: String,
    signature_version: String,
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: Option<String>,
    token: Option<String>,
}

/// An SNS message, parsed but not yet verified.
pub struct SnsMessage {
    kind: Kind,
    fields: Fields,
    certificate: Url,
}

impl SnsMessage {
    /// Parses the body SNS posted; refuses one whose signing certificate would come from
    /// anywhere but SNS.
    pub fn parse(body: &[u8]) -> Result<Self, ProviderError> {
        let fields: Fields = serde_json::from_slice(body).map_err(|_| ProviderError::Malformed("the SNS message"))?;
        let kind = match fields.kind.as_str() {
            "Notification" => Kind::Notification,
            "SubscriptionConfirmation" => Kind::SubscriptionConfirmation,
            "UnsubscribeConfirmation" => Kind::UnsubscribeConfirmation,
            _ => return Err(ProviderError::Malformed("Type")),
        };
        let certificate = sns_url(&fields.signing_cert_url).filter(|u| u.path().ends_with(".pem"));
        let certificate = certificate.ok_or(ProviderError::CertificateUrl)?;
        Ok(Self { kind, fields, certificate })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn topic_arn(&self) -> &str {
        &self.fields.topic_arn
    }

    /// Where the certificate that signed the message is: an https address of SNS.
    pub fn certificate_url(&self) -> &Url {
        &self.certificate
    }

    /// A subscription confirmation's address to confirm it at, when it is one of SNS.
    pub fn subscribe_url(&self) -> Option<Url> {
        self.fields.subscribe_url.as_deref().and_then(sns_url)
    }

    /// Checks the signature with the certificate (PEM) from [`Self::certificate_url`]: the
    /// certificate must be SNS's and valid at `now`.
    pub fn verify(&self, certificate_pem: &[u8], now: DateTime<Utc>) -> Result<(), ProviderError> {
        let certificate =
            X509::from_pem(certificate_pem).map_err(|_| ProviderError::Certificate("not a certificate"))?;
        let named = certificate
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .any(|entry| entry.data().as_slice() == SIGNER.as_bytes());
        if !named {
            return Err(ProviderError::Certificate("not issued to sns.amazonaws.com"));
        }
        let at = openssl::asn1::Asn1Time::from_unix(now.timestamp())
            .map_err(|_| ProviderError::Certificate("the time cannot be compared"))?;
        if certificate.not_before() > at || certificate.not_after() < at {
            return Err(ProviderError::Certificate("not valid now"));
        }
        let digest = match self.fields.signature_version.as_str() {
            "1" => MessageDigest::sha1(),
            "2" => MessageDigest::sha256(),
            _ => return Err(ProviderError::Malformed("SignatureVersion")),
        };
        let signature =
            BASE64.decode(self.fields.signature.as_bytes()).map_err(|_| ProviderError::Malformed("Signature"))?;
        let key = certificate.public_key().map_err(|_| ProviderError::Certificate("no public key"))?;
        let verified = Verifier::new(digest, &key)
            .and_then(|mut v| {
                v.update(self.signed_text()?.as_bytes())?;
                v.verify(&signature)
            })
            .unwrap_or(false);
        if verified {
            Ok(())
        } else {
            Err(ProviderError::Signature)
        }
    }

    /// The text SNS signs: the message's fields of its kind, each as `Name\nvalue\n`, by name.
    fn signed_text(&self) -> Result<String, openssl::error::ErrorStack> {
        let f = &self.fields;
        let mut fields: Vec<(&str, Option<&str>)> =
            vec![("Message", Some(&f.message)), ("MessageId", Some(&f.message_id))];
        match self.kind {
            Kind::Notification => fields.push(("Subject", f.subject.as_deref())),
            Kind::SubscriptionConfirmation | Kind::UnsubscribeConfirmation => {
                fields.push(("SubscribeURL", f.subscribe_url.as_deref()));
            }
        }
        fields.push(("Timestamp", Some(&f.timestamp)));
        if self.kind != Kind::Notification {
            fields.push(("Token", f.token.as_deref()));
        }
        fields.extend([("TopicArn", Some(f.topic_arn.as_str())), ("Type", Some(f.kind.as_str()))]);
        Ok(fields.into_iter().filter_map(|(name, value)| Some(format!("{name}\n{}\n", value?))).collect())
    }

    /// What the SES notification in a verified message says: `Ok(None)` for an event that
    /// says nothing to record (a send, an open, a rendering failure).
    pub fn report(&self) -> Result<Option<Report>, ProviderError> {
        notification(self.fields.message.as_bytes())
    }
}

/// An https address of SNS itself (`sns.<region>.amazonaws.com`, or `.com.cn` in China), with
/// no user or port: the only place a certificate or a confirmation may come from.
fn sns_url(text: &str) -> Option<Url> {
    let url = Url::parse(text).ok()?;
    let host = url.host_str()?;
    let region = host.strip_prefix("sns.")?;
    let region = region.strip_suffix(".amazonaws.com").or_else(|| region.strip_suffix(".amazonaws.com.cn"))?;
    let plain = !region.is_empty() && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (url.scheme() == "https" && plain && url.port().is_none() && url.username().is_empty() && url.password().is_none())
        .then_some(url)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    /// `notificationType` of a notification, `eventType` of event publishing.
    #[serde(alias = "eventType")]
    notification_type: String,
    mail: Mail,
    bounce: Option<Bounce>,
    complaint: Option<ComplaintFields>,
    delivery_delay: Option<DeliveryDelay>,
}

#[derive(Deserialize)]
struct Mail {
    #[serde(default)]
    headers: Vec<Header>,
    #[serde(rename = "commonHeaders")]
    common_headers: Option<CommonHeaders>,
}

#[derive(Deserialize)]
struct Header {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct CommonHeaders {
    #[serde(rename = "messageId")]
    message_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: String,
    bounce_sub_type: Option<String>,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
}

#[derive(Deserialize)]
struct Recipient {
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ComplaintFields {
    complaint_feedback_type: Option<String>,
    complaint_sub_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryDelay {
    #[serde(default)]
    delayed_recipients: Vec<Recipient>,
}

/// Reads an SES notification (or event), the JSON inside an SNS message.
pub fn notification(message: &[u8]) -> Result<Option<Report>, ProviderError> {
    let n: Notification =
        serde_json::from_slice(message).map_err(|_| ProviderError::Malformed("the SES notification"))?;
    let what = match n.notification_type.as_str() {
        "Delivery" => What::Delivery(vec![status(Action::Delivered, None, "2.0.0")]),
        "Bounce" => What::Delivery(bounce(n.bounce.as_ref().ok_or(ProviderError::Malformed("bounce"))?)),
        "Complaint" => {
            let c = n.complaint.as_ref().ok_or(ProviderError::Malformed("complaint"))?;
            // SES did not send to an address on the account's suppression list: nobody complained.
            if c.complaint_sub_type.as_deref() == Some("OnAccountSuppressionList") {
                return Ok(None);
            }
            let kind = c.complaint_feedback_type.as_deref().and_then(super::complaint).unwrap_or(Complaint::Other);
            What::Complaint(kind)
        }
        "DeliveryDelay" => {
            let d = n.delivery_delay.as_ref().ok_or(ProviderError::Malformed("deliveryDelay"))?;
            let first = d.delayed_recipients.first().and_then(|r| r.status.as_deref());
            What::Delivery(vec![status(Action::Delayed, first, "4.0.0")])
        }
        _ => return Ok(None),
    };
    Ok(Some(Report { original: original(&n.mail)?, what }))
}

/// The original message's `Message-ID` and `Feedback-ID`, from the headers SES returns.
fn original(mail: &Mail) -> Result<Original, ProviderError> {
    let header = |name: &str| mail.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.trim());
    let message_id = header("Message-ID")
        .or_else(|| mail.common_headers.as_ref().and_then(|c| c.message_id.as_deref()))
        .map(|id| id.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
        .ok_or(ProviderError::NoHeaders)?;
    let feedback_id = header("Feedback-ID").map(str::to_owned).ok_or(ProviderError::NoHeaders)?;
    Ok(Original { message_id, feedback_id: Some(feedback_id) })
}

/// One status per bounced recipient, by its own status code when SES gives one, else by the
/// bounce's type: a permanent bounce because the address takes no mail is a hard one.
fn bounce(b: &Bounce) -> Vec<Status> {
    let fallback = match (b.bounce_type.as_str(), b.bounce_sub_type.as_deref()) {
        ("Permanent", Some("NoEmail" | "Suppressed" | "OnAccountSuppressionList")) => "5.1.1",
        ("Permanent", Some("MailboxFull")) => "5.2.2",
        ("Permanent", Some("MessageTooLarge")) => "5.3.4",
        ("Permanent", Some("ContentRejected" | "AttachmentRejected")) => "5.6.0",
        ("Permanent", _) => "5.1.0",
        // Transient: SES gave up after its retries, for a reason that may pass.
        (_, _) => "4.0.0",
    };
    let forced = matches!(b.bounce_sub_type.as_deref(), Some("NoEmail" | "Suppressed" | "OnAccountSuppressionList"));
    let statuses: Vec<Status> = b
        .bounced_recipients
        .iter()
        .map(|r| status(Action::Failed, if forced { None } else { r.status.as_deref() }, fallback))
        .collect();
    if statuses.is_empty() {
        vec![status(Action::Failed, None, fallback)]
    } else {
        statuses
    }
}

fn status(action: Action, given: Option<&str>, fallback: &str) -> Status {
    let code = given
        .and_then(StatusCode::parse)
        .or_else(|| StatusCode::parse(fallback))
        .unwrap_or_else(|| unreachable!("the fallback codes are well formed"));
    Status { action, code, diagnostic: None }
}
