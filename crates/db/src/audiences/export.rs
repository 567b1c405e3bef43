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
use mos_domain::{merkle, AuditEvent, ContactId, RequestSource, UserId};

/// The name and version of the receipt's format.
pub const RECEIPT_FORMAT: &str = "mos-consent-receipt-v2";

/// The format before imported grants were proven; a verifier still accepts it.
pub const RECEIPT_FORMAT_V1: &str = "mos-consent-receipt-v1";

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

macro_rules! select_events {
    ($where:literal) => {
        concat!(
            "select id, contact_id, purpose_id, seq, channel::text as channel, kind::text as kind,
                    basis::text as basis, encode(notice_sha256, 'hex') as notice_sha256, hipaa, expires_at, exemption,
                    source::text as source, import_job, import_row, encode(evidence_sha256, 'hex') as evidence_sha256,
                    recorded_by, created_at
               from app.consent_events
              where organization_id = $1 and ",
            $where
        )
    };
}

async fn events(tx: &mut TenantTx, contact: ContactId) -> Result<Vec<LedgerEvent>> {
    Ok(sqlx::query_as(select_events!("contact_id = $2 order by created_at, purpose_id, seq"))
        .bind(tx.org().as_uuid())
        .bind(contact.as_uuid())
        .fetch_all(tx.conn())
        .await?)
}

/// The grants an import batch wrote, for rows `first_row` to `last_row` of the import `job`, in
/// row order: the leaves of its record's Merkle tree.
pub async fn batch_events(
    tx: &mut TenantTx,
    job: uuid::Uuid,
    first_row: i64,
    last_row: i64,
) -> Result<Vec<LedgerEvent>> {
    Ok(sqlx::query_as(select_events!(
        "import_job = $2 and import_row between $3 and $4 and source = 'import' and seq = 1 order by import_row"
    ))
    .bind(tx.org().as_uuid())
    .bind(job)
    .bind(first_row)
    .bind(last_row)
    .fetch_all(tx.conn())
    .await?)
}

/// The leaf that stands for an imported grant in its batch's Merkle tree (docs/consent.md,
/// "Imported consent"): SHA-256(0x00 ‖ the event's fields as the chain encodes texts). `None`
/// for an event no import writes (one with HIPAA elements or evidence).
pub fn import_leaf(e: &LedgerEvent) -> Option<merkle::Hash> {
    if e.hipaa.is_some() || e.evidence_sha256.is_some() {
        return None;
    }
    let uuid = |u: uuid::Uuid| Some(u.to_string());
    let texts = [
        uuid(e.id),
        uuid(e.contact_id),
        uuid(e.purpose_id),
        Some(e.seq.to_string()),
        Some(e.channel.clone()),
        Some(e.kind.clone()),
        e.basis.clone(),
        e.notice_sha256.clone(),
        e.expires_at.map(|t| t.timestamp_micros().to_string()),
        e.exemption.clone(),
        Some(e.source.clone()),
        e.import_job.and_then(uuid),
        e.import_row.map(|r| r.to_string()),
        e.recorded_by.and_then(uuid),
        Some(e.created_at.timestamp_micros().to_string()),
    ];
    Some(merkle::leaf_hash(&chain::encoded(texts.iter().map(Option::as_deref))))
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
    /// For each imported event, its place in the Merkle tree its batch's record commits to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proofs: BTreeMap<uuid::Uuid, InclusionProof>,
}

/// Where an imported event's leaf sits in its batch's tree, and the sibling hashes (lowercase
/// hex, from the leaf up) that lead from it to the root its record states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    pub path: Vec<String>,
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

/// The record an import batch left for its grants (`consent.imported`), as its metadata states.
#[derive(Deserialize)]
struct BatchRecord {
    job: uuid::Uuid,
    first_row: i64,
    last_row: i64,
    events: u64,
    merkle_root: String,
}

/// The inclusion proofs of the imported events among `events` that have no record of their own,
/// each added to `records` with its batch's record. An event whose batch the ledger no longer
/// hashes to the stated root gets none, and stays uncovered.
async fn import_proofs(
    tx: &mut TenantTx,
    events: &[LedgerEvent],
    records: &mut BTreeMap<uuid::Uuid, uuid::Uuid>,
) -> Result<BTreeMap<uuid::Uuid, InclusionProof>> {
    let mut proofs = BTreeMap::new();
    let imported: Vec<&LedgerEvent> =
        events.iter().filter(|e| e.source == "import" && !records.contains_key(&e.id)).collect();
    let jobs: Vec<uuid::Uuid> = imported.iter().filter_map(|e| e.import_job).collect();
    if jobs.is_empty() {
        return Ok(proofs);
    }
    let batches: Vec<(uuid::Uuid, serde_json::Value)> = sqlx::query_as(
        "select a.id, a.metadata from app.audit_logs a
          where a.organization_id = $1 and a.resource_type = 'contact_import' and a.action = 'consent.imported'
            and a.resource_id in (select i.id::text from app.contact_imports i
                                   where i.organization_id = $1 and i.job_id = any($2))",
    )
    .bind(tx.org().as_uuid())
    .bind(&jobs)
    .fetch_all(tx.conn())
    .await?;
    let batches: Vec<(uuid::Uuid, BatchRecord)> =
        batches.into_iter().filter_map(|(id, m)| serde_json::from_value(m).ok().map(|b| (id, b))).collect();
    for event in imported {
        let (Some(job), Some(row)) = (event.import_job, event.import_row) else { continue };
        let Some((record, batch)) =
            batches.iter().find(|(_, b)| b.job == job && (b.first_row..=b.last_row).contains(&row))
        else {
            continue;
        };
        let members = batch_events(tx, job, batch.first_row, batch.last_row).await?;
        let Some(leaves) = members.iter().map(import_leaf).collect::<Option<Vec<_>>>() else { continue };
        let index = members.iter().position(|m| m.id == event.id);
        let proven = (leaves.len() as u64 == batch.events && hex::encode(merkle::root(&leaves)) == batch.merkle_root)
            .then_some(index)
            .flatten()
            .and_then(|i| merkle::path(&leaves, i).map(|p| (i, p)));
        if let Some((index, path)) = proven {
            records.insert(event.id, *record);
            proofs.insert(
                event.id,
                InclusionProof {
                    index: index as u64,
                    size: leaves.len() as u64,
                    path: path.iter().map(hex::encode).collect(),
                },
            );
        }
    }
    Ok(proofs)
}

/// The audit records of consent events, by the events' ids (`$2`), read through
/// `audit_logs_resource_idx` (migration 22).
pub const EVENT_RECORDS: &str = "select id, resource_id from app.audit_logs
  where organization_id = $1 and resource_type = 'consent' and resource_id = any($2)";

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
    let found: Vec<(uuid::Uuid, String)> =
        sqlx::query_as(EVENT_RECORDS).bind(tx.org().as_uuid()).bind(&event_ids).fetch_all(tx.conn()).await?;
    let mut records: BTreeMap<uuid::Uuid, uuid::Uuid> = found
        .into_iter()
        .filter_map(|(record, event)| event.parse::<uuid::Uuid>().ok().map(|event| (event, record)))
        .collect();
    let proofs = import_proofs(tx, &events, &mut records).await?;
    let mut record_ids: Vec<uuid::Uuid> = records.values().copied().collect();
    record_ids.sort_unstable();
    record_ids.dedup();
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
        proofs,
    };
    Ok(Some(Ok(UnsignedReceipt { receipt, head })))
}
