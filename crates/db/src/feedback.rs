//! What came back about a sent message (docs/sending.md, "Delivery feedback"), recorded against
//! the send ledger: a report names the message by the `Message-ID` and `Feedback-ID` the sender
//! chose, so it is matched by campaign and contact in the organization the `Feedback-ID` names,
//! and only to a message that was handed over. A hard bounce or a complaint suppresses the
//! address (the ledger then refuses it every later message). The same feedback twice counts once.
//! A complaint or a hard bounce then has the organization's breaker judged in the same
//! transaction ([`crate::breaker::judge`]), which may halt its sending there and then.

pub mod credentials;

use chrono::{DateTime, Utc};

use crate::audiences::consent::{self, Provenance, Record};
use crate::audiences::suppression;
use crate::breaker::{self, Event, Verdict};
use crate::error::stored;
use crate::{Result, TenantTx};
use mos_domain::audiences::{AddressKey, ConsentKind, ConsentState, SuppressionReason};
use mos_domain::{ContactId, ContentId, OrgId, PurposeId, RequestSource};

/// What happened to a message, as the ledger of feedback names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Refused for good because of the address (RFC 3463 5.1.x).
    HardBounce,
    /// Refused for good for another reason (a policy, a full mailbox).
    SoftBounce,
    Delayed,
    Delivered,
    Complaint,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::HardBounce => "hard_bounce",
            Kind::SoftBounce => "soft_bounce",
            Kind::Delayed => "delayed",
            Kind::Delivered => "delivered",
            Kind::Complaint => "complaint",
        }
    }

    /// The suppression this feedback puts on the address, if any.
    fn suppresses(self) -> Option<SuppressionReason> {
        match self {
            Kind::HardBounce => Some(SuppressionReason::HardBounce),
            Kind::Complaint => Some(SuppressionReason::Complaint),
            Kind::SoftBounce | Kind::Delayed | Kind::Delivered => None,
        }
    }
}

/// What recording one piece of feedback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded, with what the breaker made of it.
    New(Verdict),
    /// The same kind of feedback about the same message was recorded before: nothing changed.
    Again,
    /// The organization sent no such message (or never handed it over): a forged or misdirected
    /// report, recorded nowhere.
    NoSuchMessage,
    /// The message is being handed over (or was, and the relay's answer was lost): a relay that
    /// bounces at once can report before the ledger records the hand-over. Recorded nowhere yet;
    /// the report is to be sent again later.
    NotYet,
}

/// The organization, campaign and contact a report's original message names: its
/// `Feedback-ID` is `campaign:organization` and its `Message-ID` `campaign.contact@domain`
/// ([`crate::campaigns::message_id`]), and both must name the same campaign.
/// A provider that returns only our metadata, not the header (Postmark), gives the
/// `Message-ID`'s left side alone.
pub fn addressed(message_id: &str, feedback_id: Option<&str>) -> Option<(OrgId, ContentId, ContactId)> {
    let (campaign, org) = feedback_id?.split_once(':')?;
    let left = message_id.split_once('@').map_or(message_id, |(left, _domain)| left);
    let (named, contact) = left.split_once('.')?;
    let campaign = ContentId::parse(campaign).ok()?;
    (ContentId::parse(named).ok()? == campaign)
        .then_some(())
        .and_then(|()| Some((OrgId::parse(org).ok()?, campaign, ContactId::parse(contact).ok()?)))
}

/// Records `kind` (with its status `code` or complaint type) about the campaign's message to
/// `contact`, in the transaction's organization.
pub async fn record(
    tx: &mut TenantTx,
    campaign: ContentId,
    contact: ContactId,
    kind: Kind,
    code: &str,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Recorded> {
    // Only a message that was handed over can have come back; the contact's address key, for
    // the suppression (none once erased: its earlier suppressions stay in force), and the
    // campaign's purpose, which a complaint revokes.
    // A message in flight (claimed, or tried and not known to be refused) may have reached the
    // relay already.
    let message: Option<(Option<Vec<u8>>, uuid::Uuid, bool)> = sqlx::query_as(
        "select c.address_key, v.purpose_id, m.state in ('sent', 'bounced') from app.campaign_messages m
           join app.contacts c on c.organization_id = $1 and c.id = m.contact_id
           join app.campaign_versions v on v.organization_id = $1 and v.campaign_id = m.campaign_id
                                       and v.version = m.version
          where m.organization_id = $1 and m.campaign_id = $2 and m.contact_id = $3
            and (m.state in ('sent', 'bounced', 'sending') or (m.state = 'queued' and m.attempts > 0))",
    )
    .bind(tx.org().as_uuid())
    .bind(campaign.as_uuid())
    .bind(contact.as_uuid())
    .fetch_optional(tx.conn())
    .await?;
    let (key, purpose) = match message {
        None => return Ok(Recorded::NoSuchMessage),
        Some((_, _, false)) => return Ok(Recorded::NotYet),
        Some((key, purpose, true)) => (key, purpose),
    };
    let inserted = sqlx::query(
        "insert into app.delivery_feedback (organization_id, campaign_id, contact_id, kind, code, received_at)
         values ($1, $2, $3, $4::text::app.feedback_kind, $5, $6)
         on conflict (organization_id, campaign_id, contact_id, kind) do nothing",
    )
    .bind(tx.org().as_uuid())
    .bind(campaign.as_uuid())
    .bind(contact.as_uuid())
    .bind(kind.as_str())
    .bind(code)
    .bind(now)
    .execute(tx.conn())
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(Recorded::Again);
    }
    let key =
        key.map(AddressKey::try_from).transpose().map_err(|_| crate::error::stored("contacts_address_key_length"))?;
    if let Some(key) = key {
        suppress(tx, contact, campaign, purpose, &key, kind, now, source).await?;
    }
    let event = match kind {
        Kind::Complaint if code != "not-spam" => Event::Complaint,
        Kind::HardBounce => Event::HardBounce,
        _ => Event::Other,
    };
    Ok(Recorded::New(breaker::judge(tx, event, now, source).await?))
}

#[allow(clippy::too_many_arguments)]
async fn suppress(
    tx: &mut TenantTx,
    contact: ContactId,
    campaign: ContentId,
    purpose: uuid::Uuid,
    key: &AddressKey,
    kind: Kind,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<()> {
    // A complaint is the person's own "stop": the campaign's purpose is revoked, as a one-click
    // unsubscribe revokes it. A hard bounce says only that the address takes no mail.
    if kind == Kind::Complaint {
        let purpose = PurposeId::try_from(purpose).map_err(|_| stored("campaign_versions_purpose_id"))?;
        let live = consent::current(tx, contact, purpose).await?.is_some_and(|c| c.state != ConsentState::Revoked);
        if live {
            let record = Record {
                contact,
                purpose,
                kind: ConsentKind::Revoke,
                basis: None,
                notice: None,
                provenance: Provenance::Complaint { campaign: campaign.as_uuid() },
                evidence: None,
                now,
            };
            consent::append(tx, &record, source).await?;
        }
    }
    if let Some(reason) = kind.suppresses() {
        if suppression::add(tx, key, reason, None, now).await? {
            suppression::record(tx, key, reason, None, source).await?;
        }
    }
    Ok(())
}
