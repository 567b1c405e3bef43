//! `mos consent verify`: checks a consent receipt offline, with nothing but the organization's
//! public key (docs/consent.md, "Consent receipts"). No database: what the receipt claims is
//! recomputed from what it carries, down to a link of the audit chain that the key signed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use mos_db::audiences::export::{import_leaf, InclusionProof, LedgerEvent, Receipt, RECEIPT_FORMAT, RECEIPT_FORMAT_V1};
use mos_db::chain::{checkpoint_text, link_hash, FIELD_NAMES};
use mos_domain::audiences::ConsentKind;
use mos_domain::events::CONSENT_IMPORTED;
use mos_domain::merkle;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What a good receipt proved, to be printed.
pub struct Verified {
    pub lines: Vec<String>,
}

/// Why a receipt is refused: the first thing found wrong.
#[derive(Debug)]
pub struct Refused(pub String);

fn refuse<T>(why: impl Into<String>) -> Result<T, Refused> {
    Err(Refused(why.into()))
}

/// The public key as given: 32 bytes in hex, or a file holding them.
pub fn public_key(given: &str) -> anyhow::Result<VerifyingKey> {
    let text = if Path::new(given).is_file() {
        std::fs::read_to_string(given).with_context(|| format!("reading {given}"))?
    } else {
        given.to_owned()
    };
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("the public key is 32 bytes in hex (or a file holding them)")?;
    VerifyingKey::from_bytes(&bytes).context("not an Ed25519 public key")
}

/// Reads and checks the receipt at `path`.
pub fn verify_file(path: &Path, key: &VerifyingKey) -> anyhow::Result<Result<Verified, Refused>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(match serde_json::from_str::<Receipt>(&text) {
        Ok(receipt) => verify(&receipt, key),
        Err(e) => Err(Refused(format!("{} is not a consent receipt: {e}", path.display()))),
    })
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn hash32(text: &str, what: &str) -> Result<[u8; 32], Refused> {
    match hex::decode(text).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()) {
        Some(hash) => Ok(hash),
        None => refuse(format!("{what} is not a SHA-256 in hex")),
    }
}

/// Checks a receipt against `key`: the checkpoint's signature, the chain from the events'
/// records to the signed link, each event against its record, each notice text against its
/// hash, and that no consent record of the contact in that chain is left out.
pub fn verify(receipt: &Receipt, key: &VerifyingKey) -> Result<Verified, Refused> {
    // Version 1 is version 2 without imported grants proven: still checked alike.
    let v1 = receipt.format == RECEIPT_FORMAT_V1;
    if receipt.format != RECEIPT_FORMAT && !v1 {
        return refuse(format!("the format is {:?}, not {RECEIPT_FORMAT}", receipt.format));
    }
    if v1 && !receipt.proofs.is_empty() {
        return refuse(format!("a {RECEIPT_FORMAT_V1} receipt carries no proofs"));
    }
    let org = receipt.organization_id;
    let contact = receipt.contact_id.to_string();

    // The signed link.
    let Some(checkpoint) = &receipt.checkpoint else {
        return refuse("the receipt carries no signed checkpoint: nothing in it is proven");
    };
    if checkpoint.public_key != hex::encode(key.as_bytes()) {
        return refuse("the checkpoint was signed with another key than the organization's public key given");
    }
    let signature: [u8; 64] = match hex::decode(&checkpoint.signature).ok().and_then(|b| b.try_into().ok()) {
        Some(s) => s,
        None => return refuse("the checkpoint's signature is malformed"),
    };
    let text = checkpoint_text(
        &checkpoint.created_at,
        checkpoint.heads.iter().map(|h| (h.organization_id, h.seq, h.hash.as_str())),
    );
    if key.verify(&text, &Signature::from_bytes(&signature)).is_err() {
        return refuse("the checkpoint's signature does not verify with the organization's public key");
    }
    let [head] = checkpoint.heads.as_slice() else {
        return refuse("a receipt's checkpoint signs one link");
    };
    if head.organization_id != org {
        return refuse("the checkpoint signs another organization's chain");
    }

    // The chain, recomputed link by link up to the signed one.
    let Some(chain) = &receipt.chain else {
        return refuse("the receipt carries no stretch of the audit chain");
    };
    let mut prev = hash32(&chain.prev_hash, "the chain's first previous hash")?;
    let mut expected_seq = None;
    let mut by_id: HashMap<String, (i64, &BTreeMap<String, Option<String>>)> = HashMap::new();
    for record in &chain.records {
        if expected_seq.is_some_and(|s| s != record.seq) {
            return refuse(format!("the chain's records are not consecutive at record {}", record.seq));
        }
        if record.fields.len() != FIELD_NAMES.len() {
            return refuse(format!("record {} does not have the fields of an audit record", record.seq));
        }
        let fields: Vec<Option<String>> =
            FIELD_NAMES.iter().map(|name| record.fields.get(*name).cloned().flatten()).collect();
        if fields[0].as_deref() != Some(org.to_string().as_str()) {
            return refuse(format!("record {} belongs to another organization", record.seq));
        }
        let hash = link_hash(&prev, record.seq, &fields);
        if hex::encode(hash) != record.hash {
            return refuse(format!("record {} does not hash to its link: it was changed", record.seq));
        }
        if let Some(id) = fields[1].clone() {
            by_id.insert(id, (record.seq, &record.fields));
        }
        prev = hash;
        expected_seq = Some(record.seq + 1);
    }
    let (Some(first), Some(last)) = (chain.records.first(), chain.records.last()) else {
        return refuse("the receipt's stretch of the chain is empty");
    };
    if (last.seq, last.hash.as_str()) != (head.seq, head.hash.as_str()) {
        return refuse("the chain does not end at the link the checkpoint signed");
    }

    // The notices, by purpose and hash.
    let mut notices: HashSet<(uuid::Uuid, &str)> = HashSet::new();
    for notice in &receipt.notices {
        if sha256_hex(&notice.text) != notice.sha256 {
            return refuse(format!(
                "the text of notice {} (purpose {}) does not hash to its SHA-256: it was changed",
                &notice.sha256[..notice.sha256.len().min(16)],
                notice.purpose_id
            ));
        }
        notices.insert((notice.purpose_id, notice.sha256.as_str()));
    }

    // The events: the contact's, numbered without gaps per purpose, each in its record.
    let not_covered: HashSet<uuid::Uuid> = receipt.not_covered.iter().copied().collect();
    let mut seqs: BTreeMap<uuid::Uuid, Vec<i32>> = BTreeMap::new();
    let mut unstated: BTreeMap<&str, usize> = BTreeMap::new();
    let mut covered = 0;
    for event in &receipt.events {
        if event.contact_id != receipt.contact_id {
            return refuse(format!("event {} is another contact's", event.id));
        }
        seqs.entry(event.purpose_id).or_default().push(event.seq);
        if let Some(hash) = &event.notice_sha256 {
            if !notices.contains(&(event.purpose_id, hash.as_str())) {
                return refuse(format!("event {} names a notice whose text the receipt lacks", event.id));
            }
        }
        if not_covered.contains(&event.id) {
            continue;
        }
        let Some(record_id) = receipt.records.get(&event.id) else {
            return refuse(format!("event {} has no audit record", event.id));
        };
        let Some((_, fields)) = by_id.get(&record_id.to_string()) else {
            return refuse(format!("the audit record of event {} is not in the chain", event.id));
        };
        if fields.get("action").cloned().flatten().as_deref() == Some(CONSENT_IMPORTED.as_str()) {
            let Some(proof) = receipt.proofs.get(&event.id) else {
                return refuse(format!("event {} is in an import batch's record without its proof", event.id));
            };
            matches_batch(event, fields, proof)?;
        } else {
            matches_record(event, &contact, fields, &mut unstated)?;
        }
        covered += 1;
    }
    for (purpose, mut numbers) in seqs {
        numbers.sort_unstable();
        if numbers.iter().enumerate().any(|(i, n)| *n != i as i32 + 1) {
            return refuse(format!("the history for purpose {purpose} has a gap: an event was left out"));
        }
    }
    // Every consent record of this contact in the stretch belongs to an event the receipt vouches for.
    let vouched: HashSet<String> = receipt
        .events
        .iter()
        .filter(|e| !not_covered.contains(&e.id))
        .filter_map(|e| receipt.records.get(&e.id))
        .map(ToString::to_string)
        .collect();
    for (id, (seq, fields)) in &by_id {
        let consent = fields.get("resource_type").cloned().flatten().as_deref() == Some("consent");
        let meta: Value = fields
            .get("metadata")
            .cloned()
            .flatten()
            .and_then(|m| serde_json::from_str(&m).ok())
            .unwrap_or(Value::Null);
        if consent && meta.get("contact").and_then(Value::as_str) == Some(contact.as_str()) && !vouched.contains(id) {
            return refuse(format!(
                "the chain holds a consent record of this contact (record {seq}) whose event the receipt leaves out"
            ));
        }
    }

    let mut lines = vec![
        format!(
            "checkpoint of {} signed by {}: valid",
            checkpoint.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            checkpoint.public_key
        ),
        format!("chain of organization {org}: records {} to {} link up to the signed link", first.seq, last.seq),
        format!("{} notice text(s) hash to the SHA-256 their events name", receipt.notices.len()),
        format!("{covered} consent event(s) of contact {contact} match their audit records in the chain"),
    ];
    for (field, count) in unstated {
        lines.push(format!("note: {count} event(s) predate their audit record stating `{field}`; it is not proven"));
    }
    if !receipt.not_covered.is_empty() {
        lines.push(format!(
            "not verified: {} event(s) newer than the checkpoint; verified up to the checkpoint only",
            receipt.not_covered.len()
        ));
    }
    Ok(Verified { lines })
}

/// An imported grant in the record of its batch: the record is of the event's import job and
/// rows, states its purpose, notice and importer, and the event's leaf with `proof` leads to the
/// Merkle root the record states.
fn matches_batch(
    event: &LedgerEvent,
    fields: &BTreeMap<String, Option<String>>,
    proof: &InclusionProof,
) -> Result<(), Refused> {
    let field = |name: &str| fields.get(name).cloned().flatten();
    let wrong = |what: &str| Refused(format!("event {} does not match its import batch's record: {what}", event.id));
    if field("resource_type").as_deref() != Some("contact_import") {
        return Err(wrong("the record is another resource's"));
    }
    let meta: Value = field("metadata").and_then(|m| serde_json::from_str(&m).ok()).unwrap_or(Value::Null);
    let text = |key: &str| meta.get(key).and_then(Value::as_str).map(str::to_owned);
    let number = |key: &str| meta.get(key).and_then(Value::as_i64);
    if event.source != "import" || text("job") != event.import_job.map(|j| j.to_string()) {
        return Err(wrong("job"));
    }
    let row = event.import_row.ok_or_else(|| wrong("row"))?;
    if !number("first_row").zip(number("last_row")).is_some_and(|(first, last)| (first..=last).contains(&row)) {
        return Err(wrong("row"));
    }
    if text("purpose") != Some(event.purpose_id.to_string()) {
        return Err(wrong("purpose"));
    }
    if text("notice_sha256") != event.notice_sha256 {
        return Err(wrong("notice_sha256"));
    }
    if field("actor_user_id") != event.recorded_by.map(|u| u.to_string()) {
        return Err(wrong("recorded_by"));
    }
    if number("events").and_then(|n| u64::try_from(n).ok()) != Some(proof.size) {
        return Err(wrong("the size of its tree"));
    }
    let leaf = import_leaf(event).ok_or_else(|| wrong("an import writes no HIPAA elements or evidence"))?;
    let mut path = Vec::with_capacity(proof.path.len());
    for step in &proof.path {
        path.push(hash32(step, "a hash of an inclusion proof")?);
    }
    let root = merkle::root_from_path(&leaf, proof.index, proof.size, &path).map(hex::encode);
    if root.is_none() || root != text("merkle_root") {
        return Err(wrong("its proof does not lead to the root the record states"));
    }
    Ok(())
}

/// The event as its audit record states it; a field a record does not state (records written
/// before it was stated) is counted in `unstated`.
fn matches_record(
    event: &LedgerEvent,
    contact: &str,
    fields: &BTreeMap<String, Option<String>>,
    unstated: &mut BTreeMap<&'static str, usize>,
) -> Result<(), Refused> {
    let field = |name: &str| fields.get(name).cloned().flatten();
    let wrong = |what: &str| Refused(format!("event {} does not match its audit record: {what}", event.id));
    let kind: ConsentKind = event.kind.parse().map_err(|_| wrong("its kind is unknown"))?;
    if field("action").as_deref() != Some(mos_domain::events::consent_action(kind).as_str()) {
        return Err(wrong("kind"));
    }
    if field("resource_type").as_deref() != Some("consent") || field("resource_id") != Some(event.id.to_string()) {
        return Err(wrong("the record is another resource's"));
    }
    let meta: Value = field("metadata").and_then(|m| serde_json::from_str(&m).ok()).unwrap_or(Value::Null);
    let text = |key: &str| meta.get(key).and_then(Value::as_str).map(str::to_owned);
    if text("contact").as_deref() != Some(contact) {
        return Err(wrong("contact"));
    }
    if text("purpose") != Some(event.purpose_id.to_string()) {
        return Err(wrong("purpose"));
    }
    if meta.get("seq").and_then(Value::as_i64) != Some(i64::from(event.seq)) {
        return Err(wrong("seq"));
    }
    if text("source").as_deref() != Some(event.source.as_str()) {
        return Err(wrong("source"));
    }
    if text("notice_sha256") != event.notice_sha256 {
        return Err(wrong("notice_sha256"));
    }
    if field("actor_user_id") != event.recorded_by.map(|u| u.to_string()) {
        return Err(wrong("recorded_by"));
    }
    let stated: [(&'static str, Option<String>); 3] = [
        ("channel", Some(event.channel.clone())),
        ("basis", event.basis.clone()),
        ("evidence_sha256", event.evidence_sha256.clone()),
    ];
    let stated_any = ["channel", "basis", "evidence_sha256", "expires_at"].iter().any(|k| meta.get(*k).is_some());
    for (key, value) in stated {
        if !stated_any {
            *unstated.entry(key).or_default() += 1;
        } else if text(key) != value {
            return Err(wrong(key));
        }
    }
    let expires = meta
        .get("expires_at")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc).timestamp_micros());
    if stated_any && expires != event.expires_at.map(|t| t.timestamp_micros()) {
        return Err(wrong("expires_at"));
    }
    Ok(())
}
