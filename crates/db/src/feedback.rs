//! What came back about a sent message (docs/sending.md, "Delivery feedback"), recorded against
//! the send ledger: a report names the message by the `Message-ID` and `Feedback-ID` the sender
//! chose, so it is matched by campaign and contact in the organization the `Feedback-ID` names,
//! and only to a message that was handed over. A hard bounce or a complaint suppresses the
//! address (the ledger then refuses it every later message). The same feedback twice counts once.
//! A complaint or a hard bounce then has the organization's breaker judged in the same
//! transaction ([`crate::breaker::judge`]), which may halt its sending there and then.

pub mod credentials;

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::audiences::consent::{self, Provenance, Record};
use crate::audiences::suppression;
use crate::breaker::{self, Event, Verdict};
use crate::campaigns::MESSAGE;
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

/// What one report says about one message, to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returned {
    pub campaign: ContentId,
    pub contact: ContactId,
    /// Each kind it reports, once, with its status code or complaint type.
    pub kinds: Vec<(Kind, String)>,
    /// When it was received.
    pub at: DateTime<Utc>,
    /// Who delivered it, for the audit records of what it causes.
    pub source: RequestSource,
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
    let report = Returned { campaign, contact, kinds: vec![(kind, code.to_owned())], at: now, source: source.clone() };
    let mut recorded = record_all(tx, std::slice::from_ref(&report)).await?;
    recorded.pop().ok_or_else(|| stored("delivery_feedback"))
}

/// What the ledger holds of a message feedback is about.
struct Message {
    /// The contact's address key, for the suppression (none once erased: its earlier
    /// suppressions stay in force).
    key: Option<AddressKey>,
    /// The campaign's purpose, which a complaint revokes.
    purpose: uuid::Uuid,
    /// Handed over, or refused at the hand-over: not in flight any more.
    settled: bool,
}

/// Records reports in the transaction's organization: for each, in their order, what recording
/// it did. A few statements for all of them, whatever their number: a report says little (97 of
/// 100 are deliveries), and one at a time each would pay for the breaker's lock and the counts'
/// rows, which every report of the organization takes. The breaker is judged once, after all of
/// them, for each kind of event they hold; its verdict is told on the last report of that kind.
pub async fn record_all(tx: &mut TenantTx, reports: &[Returned]) -> Result<Vec<Recorded>> {
    let messages = messages(tx, reports).await?;
    // A report about a settled message is `Again` until a row it says is new.
    let mut recorded: Vec<Recorded> = reports
        .iter()
        .map(|r| match messages.get(&(r.campaign, r.contact)) {
            None => Recorded::NoSuchMessage,
            Some(m) if !m.settled => Recorded::NotYet,
            Some(_) => Recorded::Again,
        })
        .collect();
    let new = insert(tx, reports, &recorded).await?;
    let mut judged: Vec<(Event, usize)> = Vec::new();
    for (n, report) in reports.iter().enumerate() {
        let kinds: Vec<&(Kind, String)> = report.kinds.iter().filter(|(kind, _)| new.contains(&(n, *kind))).collect();
        let Some(message) = messages.get(&(report.campaign, report.contact)) else { continue };
        if kinds.is_empty() {
            continue;
        }
        recorded[n] = Recorded::New(Verdict::Quiet);
        for (kind, code) in kinds {
            if let Some(key) = &message.key {
                suppress(tx, report, message.purpose, key, *kind).await?;
            }
            let event = match kind {
                Kind::Complaint if code != "not-spam" => Event::Complaint,
                Kind::HardBounce => Event::HardBounce,
                _ => Event::Other,
            };
            judged.retain(|(seen, _)| *seen != event);
            judged.push((event, n));
        }
    }
    // The lines a complaint or a bounce may cross first; a delivery alone may only clear a
    // warning.
    judged.sort_by_key(|(event, _)| *event != Event::Complaint);
    if judged.iter().any(|(event, _)| *event != Event::Other) {
        judged.retain(|(event, _)| *event != Event::Other);
    }
    for (event, n) in judged {
        let verdict = breaker::judge(tx, event, reports[n].at, &reports[n].source).await?;
        if verdict != Verdict::Quiet {
            recorded[n] = Recorded::New(verdict);
        }
    }
    Ok(recorded)
}

/// The messages the reports are about that were handed over or are in flight (claimed, or tried
/// and not known to be refused: the relay may have them already), by campaign and contact.
async fn messages(tx: &mut TenantTx, reports: &[Returned]) -> Result<HashMap<(ContentId, ContactId), Message>> {
    let campaigns: Vec<uuid::Uuid> = reports.iter().map(|r| r.campaign.as_uuid()).collect();
    let contacts: Vec<uuid::Uuid> = reports.iter().map(|r| r.contact.as_uuid()).collect();
    // Campaign, contact, address key, purpose, settled.
    type Row = (uuid::Uuid, uuid::Uuid, Option<Vec<u8>>, uuid::Uuid, bool);
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "select distinct m.campaign_id, m.contact_id, c.address_key, v.purpose_id, m.state in ('sent', 'bounced')
           from unnest($2::uuid[], $3::uuid[]) as r(campaign_id, contact_id)
           {MESSAGE}
           join app.contacts c on c.organization_id = $1 and c.id = m.contact_id
           join app.campaign_versions v on v.organization_id = $1 and v.campaign_id = m.campaign_id
                                       and v.version = m.version
          where m.state in ('sent', 'bounced', 'sending') or (m.state = 'queued' and m.attempts > 0)"
    ))
    .bind(tx.org().as_uuid())
    .bind(campaigns)
    .bind(contacts)
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|(campaign, contact, key, purpose, settled)| {
            let campaign = ContentId::try_from(campaign).map_err(|_| stored("campaign_messages_campaign_id"))?;
            let contact = ContactId::try_from(contact).map_err(|_| stored("campaign_messages_contact_id"))?;
            let key = key.map(AddressKey::try_from).transpose().map_err(|_| stored("contacts_address_key_length"))?;
            Ok(((campaign, contact), Message { key, purpose, settled }))
        })
        .collect()
}

/// Inserts what the settled reports say, each kind of feedback about a message once: which
/// report and kind each new row came from (the first report to say it).
async fn insert(tx: &mut TenantTx, reports: &[Returned], recorded: &[Recorded]) -> Result<Vec<(usize, Kind)>> {
    let rows: Vec<(usize, &Returned, Kind, &str)> = reports
        .iter()
        .enumerate()
        .filter(|(n, _)| recorded[*n] == Recorded::Again)
        .flat_map(|(n, r)| r.kinds.iter().map(move |(kind, code)| (n, r, *kind, code.as_str())))
        .collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let inserted: Vec<(uuid::Uuid, uuid::Uuid, String)> = sqlx::query_as(&format!(
        "insert into app.delivery_feedback (organization_id, campaign_id, contact_id, kind, code, received_at)
         select m.organization_id, m.campaign_id, m.contact_id, r.kind::app.feedback_kind, r.code, r.at
           from unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[])
                as r(campaign_id, contact_id, kind, code, at)
           {MESSAGE}
         on conflict (organization_id, campaign_id, contact_id, kind) do nothing
         returning campaign_id, contact_id, kind::text"
    ))
    .bind(tx.org().as_uuid())
    .bind(rows.iter().map(|(_, r, _, _)| r.campaign.as_uuid()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, r, _, _)| r.contact.as_uuid()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, _, kind, _)| kind.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, _, _, code)| *code).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, r, _, _)| r.at).collect::<Vec<_>>())
    .fetch_all(tx.conn())
    .await?;
    Ok(inserted
        .into_iter()
        .filter_map(|(campaign, contact, kind)| {
            rows.iter()
                .find(|(_, r, k, _)| {
                    r.campaign.as_uuid() == campaign && r.contact.as_uuid() == contact && k.as_str() == kind
                })
                .map(|(n, _, k, _)| (*n, *k))
        })
        .collect())
}

async fn suppress(
    tx: &mut TenantTx,
    report: &Returned,
    purpose: uuid::Uuid,
    key: &AddressKey,
    kind: Kind,
) -> Result<()> {
    let (contact, campaign, now, source) = (report.contact, report.campaign, report.at, &report.source);
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
