//! What a contact's data is, handed out: the export of everything held about the person (GDPR
//! Art. 15 and 20), and the consent receipt, which lets anyone holding the organization's
//! public key check the contact's consent against the tenant's audit chain offline
//! (docs/consent.md, "Consent receipts"). Both leave an audit record naming the contact by id
//! and what was handed out, never the data.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audiences::browse::{self, AttributeValue};
use crate::audiences::contacts::{self, Contact};
use crate::chain::{self, Stretch};
use crate::{audit, Result, TenantTx};
use mos_domain::events::{CONTACT, CONTACT_EXPORTED, CONTACT_RECEIPT_ISSUED};
use mos_domain::{AuditEvent, ContactId, RequestSource, UserId};

/// The name and version of the receipt's format.
pub const RECEIPT_FORMAT: &str = "mos-consent-receipt-v1";

/// A consent event as the ledger stores it; hashes in lowercase hex.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct LedgerEvent {
    pub id: uuid::Uuid,
    pub contact_id: uuid::Uuid,
    pub purpose_id: uuid::Uuid,
    pub seq: i32,
    pub channel: String,
    pub kind: String,
    pub basis: Option<String>,
    pub notice_sha256: Option<String>,
    pub hipaa: Option<serde_json::Value>,
    pub expires_at: Option<DateTime<Utc>>,
    pub exemption: Option<String>,
    pub source: String,
    pub import_job: Option<uuid::Uuid>,
    pub import_row: Option<i64>,
    pub evidence_sha256: Option<String>,
    pub recorded_by: Option<uuid::Uuid>,
    pub created_at: DateTime<Utc>,
}

/// A notice version's text, named by its purpose and SHA-256 (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct NoticeCopy {
    pub purpose_id: uuid::Uuid,
    pub sha256: String,
    pub text: String,
}

/// The erasable evidence of an event, while it is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct EvidenceCopy {
    pub event_id: uuid::Uuid,
    /// Hex of the salt that the event's `evidence_sha256` commits to with the evidence.
    pub salt: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Everything held about a contact.
#[derive(Debug, Clone)]
pub struct ContactExport {
    pub contact: Contact,
    pub attributes: Vec<AttributeValue>,
    pub events: Vec<LedgerEvent>,
    pub notices: Vec<NoticeCopy>,
    pub evidence: Vec<EvidenceCopy>,
}

const EVENTS: &str = "select id, contact_id, purpose_id, seq, channel::text as channel, kind::text as kind,
        basis::text as basis, encode(notice_sha256, 'hex') as notice_sha256, hipaa, expires_at, exemption,
        source::text as source, import_job, import_row, encode(evidence_sha256, 'hex') as evidence_sha256,
        recorded_by, created_at
   from app.consent_events
  where organization_id = $1 and contact_id = $2
  order by created_at, purpose_id, seq";

async fn events(tx: &mut TenantTx, contact: ContactId) -> Result<Vec<LedgerEvent>> {
    Ok(sqlx::query_as(EVENTS).bind(tx.org().as_uuid()).bind(contact.as_uuid()).fetch_all(tx.conn()).await?)
}

/// The texts of the notice versions the contact's events name.
async fn notices(tx: &mut TenantTx, contact: ContactId) -> Result<Vec<NoticeCopy>> {
    Ok(sqlx::query_as(
        "select n.purpose_id, encode(n.sha256, 'hex') as sha256, n.body as text
           from app.notices n
          where n.organization_id = $1
            and exists (select from app.consent_events e
                         where e.organization_id = $1 and e.contact_id = $2
                           and e.purpose_id = n.purpose_id and e.notice_sha256 = n.sha256)
          order by n.purpose_id, n.sha256",
    )
    .bind(tx.org().as_uuid())
    .bind(contact.as_uuid())
    .fetch_all(tx.conn())
    .await?)
}

/// Everything held about a live contact (`None` for none, or an erased one, which holds
/// nothing but its consent events), recorded as exported by `actor`.
pub async fn export(
    tx: &mut TenantTx,
    contact: ContactId,
    actor: UserId,
    source: &RequestSource,
) -> Result<Option<ContactExport>> {
    let Some(found) = contacts::get(tx, contact).await?.filter(|c| c.erased_at.is_none()) else {
        return Ok(None);
    };
    let attributes = browse::values(tx, contact).await?;
    let events = events(tx, contact).await?;
    let notices = notices(tx, contact).await?;
    let evidence: Vec<EvidenceCopy> = sqlx::query_as(
        "select event_id, encode(salt, 'hex') as salt, host(ip) as ip, user_agent
           from app.consent_evidence where organization_id = $1 and contact_id = $2 order by event_id",
    )
    .bind(tx.org().as_uuid())
    .bind(contact.as_uuid())
    .fetch_all(tx.conn())
    .await?;
    let event = AuditEvent::new(CONTACT_EXPORTED, CONTACT)
        .actor(actor)
        .resource_id(contact)
        .source(source.clone())
        .meta("fields", json!(EXPORT_FIELDS))
        .meta("consent_events", json!(events.len()));
    audit::record(tx, &event).await?;
    Ok(Some(ContactExport { contact: found, attributes, events, notices, evidence }))
}

/// What an export hands out, as its audit record names it.
pub const EXPORT_FIELDS: &[&str] =
    &["address", "name", "locale", "time_zone", "tags", "attributes", "consent_history", "notices", "evidence"];

/// An audit record as the chain hashes it: each field's text, or null.
pub type RecordFields = BTreeMap<String, Option<String>>;

/// One link of the receipt's stretch of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainRecord {
    pub seq: i64,
    /// The link's hash, lowercase hex; a verifier recomputes it.
    pub hash: String,
    pub fields: RecordFields,
}

/// The stretch of the tenant's chain from the record of the contact's first event to the
/// record the checkpoint signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStretch {
    /// The link hash the first record follows, lowercase hex.
    pub prev_hash: String,
    pub records: Vec<ChainRecord>,
}

/// A signed statement that a link is in the tenant's chain: the same signed text as the
/// checkpoints of `mos audit checkpoint`, over one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptCheckpoint {
    pub created_at: DateTime<Utc>,
    pub heads: Vec<ReceiptHead>,
    pub public_key: String,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptHead {
    pub organization_id: uuid::Uuid,
    pub seq: i64,
    pub hash: String,
}

/// A consent receipt (docs/consent.md, "Consent receipts").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub format: String,
    pub organization_id: uuid::Uuid,
    pub contact_id: uuid::Uuid,
    pub issued_at: DateTime<Utc>,
    pub events: Vec<LedgerEvent>,
    pub notices: Vec<NoticeCopy>,
    /// Each event's audit record, by event id: the record's id.
    pub records: BTreeMap<uuid::Uuid, uuid::Uuid>,
    pub chain: Option<ChainStretch>,
    pub checkpoint: Option<ReceiptCheckpoint>,
    /// Events whose audit record is not in the chain yet: the receipt cannot vouch for them.
    pub not_covered: Vec<uuid::Uuid>,
}

/// A receipt before it is signed, and the link its checkpoint is to sign.
#[derive(Debug, Clone)]
pub struct UnsignedReceipt {
    pub receipt: Receipt,
    /// The last link of the stretch: what the checkpoint signs.
    pub head: Option<(i64, [u8; 32])>,
}

fn record_fields(fields: &[Option<String>]) -> RecordFields {
    chain::FIELD_NAMES.iter().map(|n| (*n).to_owned()).zip(fields.iter().cloned()).collect()
}

/// The most audit records a receipt carries: it holds every record between the contact's first
/// and last event, and is built in memory.
pub const RECEIPT_MAX_RECORDS: i64 = 100_000;

/// The consent receipt of a contact (erased or not; `None` when there is no such contact), to
/// be signed by the caller, and recorded as issued by `actor`. The stretch of the chain is read
/// before the record is written, and so never contains it. A stretch of more than `max`
/// records is refused, with nothing read of it and nothing recorded.
pub async fn receipt(
    tx: &mut TenantTx,
    contact: ContactId,
    now: DateTime<Utc>,
    actor: UserId,
    source: &RequestSource,
    max: i64,
) -> Result<Option<std::result::Result<UnsignedReceipt, chain::TooLong>>> {
    if contacts::get(tx, contact).await?.is_none() {
        return Ok(None);
    }
    let events = events(tx, contact).await?;
    let notices = notices(tx, contact).await?;
    let event_ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
    let found: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "select id, resource_id from app.audit_logs
          where organization_id = $1 and resource_type = 'consent' and resource_id = any($2)",
    )
    .bind(tx.org().as_uuid())
    .bind(&event_ids)
    .fetch_all(tx.conn())
    .await?;
    let records: BTreeMap<uuid::Uuid, uuid::Uuid> = found
        .into_iter()
        .filter_map(|(record, event)| event.parse::<uuid::Uuid>().ok().map(|event| (event, record)))
        .collect();
    let record_ids: Vec<uuid::Uuid> = records.values().copied().collect();
    let (stretch, unsealed) = match chain::stretch(tx, &record_ids, max).await? {
        Ok(found) => found,
        Err(too_long) => return Ok(Some(Err(too_long))),
    };
    let not_covered: Vec<uuid::Uuid> =
        events.iter().filter(|e| records.get(&e.id).is_none_or(|r| unsealed.contains(r))).map(|e| e.id).collect();
    let head = stretch.as_ref().and_then(|s| s.links.last()).map(|l| (l.seq, l.hash));
    let chain = stretch.map(|Stretch { prev, links }| ChainStretch {
        prev_hash: hex::encode(prev),
        records: links
            .into_iter()
            .map(|l| ChainRecord { seq: l.seq, hash: hex::encode(l.hash), fields: record_fields(&l.fields) })
            .collect(),
    });
    let event = AuditEvent::new(CONTACT_RECEIPT_ISSUED, CONTACT)
        .actor(actor)
        .resource_id(contact)
        .source(source.clone())
        .meta("consent_events", json!(events.len()))
        .meta("chain_to", json!(head.map(|h| h.0)));
    audit::record(tx, &event).await?;
    let receipt = Receipt {
        format: RECEIPT_FORMAT.to_owned(),
        organization_id: tx.org().as_uuid(),
        contact_id: contact.as_uuid(),
        issued_at: now,
        events,
        notices,
        records,
        chain,
        checkpoint: None,
        not_covered,
    };
    Ok(Some(Ok(UnsignedReceipt { receipt, head })))
}
