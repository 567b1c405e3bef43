//! The per-tenant hash chains of the audit log: sealing committed records into them, and
//! verifying them. Links are computed here, in Rust, both when sealing and when verifying, from
//! the records' canonical text (specified in docs/audit-chain.md): verifying never trusts a
//! stored hash, so a superuser who edits records or blocks is caught.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::{AppPool, Result, TenantTx};

/// The previous hash of a tenant's first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// How far behind the newest sealed record a full sweep still looks for records whose
/// transactions committed late. A record committed later than this after it was written is
/// left unsealed, and `verify` reports it.
pub const WINDOW: Duration = Duration::minutes(10);

/// How far back a quick sweep looks: enough for ordinary transactions, and cheap, since every
/// sweep re-reads what it looks back over.
pub const QUICK_WINDOW: Duration = Duration::seconds(5);

/// Records per block, so that a backlog is sealed in bounded steps.
const BLOCK: i64 = 10_000;

/// A record's fields as text, in the order of the encoding, less `seq` (the link's, second).
const FIELDS: &str = "a.organization_id::text, a.id::text, a.actor_user_id::text, a.action, a.resource_type,
    a.resource_id, a.outcome::text, host(a.ip), a.user_agent, a.request_id, a.changes::text, a.metadata::text,
    (extract(epoch from a.created_at) * 1000000)::bigint::text";
const FIELD_COUNT: usize = 13;

/// Why a link is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A record's content no longer matches its link.
    Changed,
    /// Records or links are missing (a gap, a link whose record is gone, a cut tail).
    Deleted,
    /// A record or link that the chain does not account for.
    Inserted,
    /// Genuine records or links, out of their places.
    Reordered,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Changed => "changed",
            Reason::Deleted => "deleted",
            Reason::Inserted => "inserted",
            Reason::Reordered => "reordered",
        })
    }
}

/// The first broken link of a tenant's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub seq: i64,
    pub reason: Reason,
    pub detail: String,
}

/// What verifying one tenant's chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub organization_id: Uuid,
    pub slug: String,
    /// Links checked.
    pub records: i64,
    /// The last good link: its sequence number and hash.
    pub head: (i64, [u8; 32]),
    /// Records not sealed yet, and the oldest one's time.
    pub pending: (i64, Option<DateTime<Utc>>),
    pub broken: Option<Break>,
}

/// A tenant's chain head as the database records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub organization_id: Uuid,
    pub seq: i64,
    pub hash: [u8; 32],
}

/// What one sealing sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    pub tenants: usize,
    pub sealed: i64,
    /// The oldest record this sweep sealed: how far sealing lagged behind writing.
    pub oldest: Option<DateTime<Utc>>,
}

/// SHA-256(previous hash ‖ the fields with `seq` second, [`encoded`]).
pub fn link_hash(prev: &[u8; 32], seq: i64, fields: &[Option<String>]) -> [u8; 32] {
    let seq = seq.to_string();
    let ordered = fields
        .iter()
        .take(1)
        .map(Option::as_deref)
        .chain([Some(seq.as_str())])
        .chain(fields.iter().skip(1).map(Option::as_deref));
    Sha256::new().chain_update(prev).chain_update(encoded(ordered)).finalize().into()
}

/// Texts as the chain encodes them: each as a 4-byte big-endian length and its UTF-8 bytes, or
/// ffffffff for NULL, so that no two different lists encode alike.
pub fn encoded<'a>(fields: impl IntoIterator<Item = Option<&'a str>>) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        match f {
            None => out.extend_from_slice(&[0xff; 4]),
            Some(t) => {
                out.extend_from_slice(&(t.len() as u32).to_be_bytes());
                out.extend_from_slice(t.as_bytes());
            }
        }
    }
    out
}

fn bytes32(v: Vec<u8>) -> [u8; 32] {
    v.try_into().unwrap_or([0xee; 32])
}

fn fields_of(row: &sqlx::postgres::PgRow, from: usize) -> sqlx::Result<Vec<Option<String>>> {
    (from..from + FIELD_COUNT).map(|i| row.try_get(i)).collect()
}

/// Seals the committed, unsealed records of the tenants written to since `since` (all tenants
/// for `None`) that were written no more than `window` before the newest record sealed. Safe
/// from many processes at once: each tenant's head is locked while it is extended.
pub async fn seal(pool: &AppPool, since: Option<DateTime<Utc>>, window: Duration) -> Result<Sweep> {
    let mut tx = pool.bare().await?;
    let tenants: Vec<Uuid> = sqlx::query_scalar("select app.audit_recent_tenants($1)")
        .bind(since.map(|s| s - window))
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut sweep = Sweep { tenants: tenants.len(), ..Sweep::default() };
    for org in tenants {
        loop {
            let (sealed, oldest) = seal_block(pool, org, window).await?;
            sweep.sealed += sealed;
            sweep.oldest = match (sweep.oldest, oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if sealed < BLOCK {
                break;
            }
        }
    }
    Ok(sweep)
}

/// A tenant's chain head, locked for sealing.
#[derive(sqlx::FromRow)]
struct LockedHead {
    seq: i64,
    hash: Vec<u8>,
    sealed_through: Option<DateTime<Utc>>,
}

/// One block for one tenant: read what awaits, hash it here, append it, all under the head lock.
/// How many records it sealed, and the oldest one's time.
async fn seal_block(pool: &AppPool, org: Uuid, window: Duration) -> Result<(i64, Option<DateTime<Utc>>)> {
    let mut tx = pool.begin_lookup().await?;
    let head: LockedHead = sqlx::query_as("select seq, hash, sealed_through from app.audit_lock_head($1)")
        .bind(org)
        .fetch_one(tx.conn())
        .await?;
    let (mut seq, hash, through) = (head.seq, head.hash, head.sealed_through);
    let rows = sqlx::query(&format!(
        "select a.id, a.created_at, {FIELDS} from app.audit_unsealed_since($1, $2) a order by a.created_at, a.id limit $3"
    ))
    .bind(org)
    .bind(through.map(|t| t - window))
    .bind(BLOCK)
    .fetch_all(tx.conn())
    .await?;
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        tx.commit().await?;
        return Ok((0, None));
    };
    let first_created: DateTime<Utc> = first.try_get(1)?;
    let last_created: DateTime<Utc> = last.try_get(1)?;
    let (first_seq, prev) = (seq + 1, bytes32(hash));
    let mut link = prev;
    let mut ids = Vec::with_capacity(rows.len());
    let mut hashes = Vec::with_capacity(rows.len());
    for row in &rows {
        seq += 1;
        link = link_hash(&link, seq, &fields_of(row, 2)?);
        ids.push(row.try_get::<Uuid, _>(0)?);
        hashes.push(link.to_vec());
    }
    sqlx::query("select app.audit_append_block($1, $2, $3, $4, $5, $6)")
        .bind(org)
        .bind(first_seq)
        .bind(&prev[..])
        .bind(&ids)
        .bind(&hashes)
        .bind(last_created)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok((rows.len() as i64, Some(first_created)))
}

/// Verifies the chain of every organization, or of the one with `slug`, as of `now`.
pub async fn verify(conn: &mut PgConnection, slug: Option<&str>, now: DateTime<Utc>) -> Result<Vec<Report>> {
    let orgs: Vec<OrgRow> =
        sqlx::query_as("select id, slug from app.organizations where $1::text is null or slug = $1 order by slug")
            .bind(slug)
            .fetch_all(&mut *conn)
            .await?;
    let mut reports = Vec::new();
    for OrgRow { id: org, slug } in orgs {
        let recorded: Option<i64> =
            sqlx::query_scalar("select seq from app.audit_chain_heads where organization_id = $1")
                .bind(org)
                .fetch_optional(&mut *conn)
                .await?;
        reports.push(verify_one(conn, org, slug, recorded, now).await?);
    }
    Ok(reports)
}

/// Verifies the chain of the tenant of `tx` as its ADMIN may see it: the same check as
/// `mos audit verify`, through row-level security.
///
/// The head is read before the blocks, so that a block the sealer appends meanwhile makes the
/// chain longer than the head says, never shorter.
pub async fn verify_tenant(tx: &mut TenantTx, now: DateTime<Utc>) -> Result<Report> {
    let org = tx.org().as_uuid();
    let recorded: Option<i64> = sqlx::query_scalar("select app.audit_head_seq()").fetch_one(tx.conn()).await?;
    let slug: String =
        sqlx::query_scalar("select slug from app.organizations where id = $1").bind(org).fetch_one(tx.conn()).await?;
    verify_one(tx.conn(), org, slug, recorded, now).await
}

/// A link as the blocks record it, and its record's fields when the record still exists.
struct Link {
    seq: i64,
    audit_id: Uuid,
    prev: [u8; 32],
    hash: [u8; 32],
    fields: Option<Vec<Option<String>>>,
}

/// first_seq, prev_hash, audit_ids, hashes.
#[derive(sqlx::FromRow)]
struct OrgRow {
    id: Uuid,
    slug: String,
}

/// One sealed block as stored: where it starts, what it links to, and its records' links.
#[derive(sqlx::FromRow)]
struct BlockRow {
    first_seq: i64,
    prev_hash: Vec<u8>,
    audit_ids: Vec<Uuid>,
    hashes: Vec<Vec<u8>>,
}

async fn links(conn: &mut PgConnection, org: Uuid) -> Result<(Vec<Link>, Vec<(Uuid, DateTime<Utc>)>)> {
    let rows =
        sqlx::query(&format!("select a.id, a.created_at, {FIELDS} from app.audit_logs a where a.organization_id = $1"))
            .bind(org)
            .fetch_all(&mut *conn)
            .await?;
    let mut records = HashMap::with_capacity(rows.len());
    let mut created = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: Uuid = row.try_get(0)?;
        created.push((id, row.try_get(1)?));
        records.insert(id, fields_of(row, 2)?);
    }
    let blocks: Vec<BlockRow> = sqlx::query_as(
        "select first_seq, prev_hash, audit_ids, hashes from app.audit_blocks where organization_id = $1 order by first_seq",
    )
    .bind(org)
    .fetch_all(&mut *conn)
    .await?;
    let mut links = Vec::new();
    for block in blocks {
        let mut prev = bytes32(block.prev_hash);
        for (i, (id, hash)) in block.audit_ids.into_iter().zip(block.hashes).enumerate() {
            let hash = bytes32(hash);
            let seq = block.first_seq + i as i64;
            links.push(Link { seq, audit_id: id, prev, hash, fields: records.get(&id).cloned() });
            prev = hash;
        }
    }
    let sealed: HashSet<Uuid> = links.iter().map(|l| l.audit_id).collect();
    created.retain(|(id, _)| !sealed.contains(id));
    Ok((links, created))
}

/// The first thing wrong with `link`, given the chain so far.
fn check(link: &Link, expected_seq: i64, expected_prev: &[u8; 32], all: &[Link]) -> Option<Break> {
    let seq = link.seq;
    if seq > expected_seq {
        return Some(Break {
            seq: expected_seq,
            reason: Reason::Deleted,
            detail: format!("links {expected_seq} to {} are missing", seq - 1),
        });
    }
    if seq < expected_seq {
        return Some(Break { seq, reason: Reason::Inserted, detail: format!("a second link claims {seq}") });
    }
    let Some(fields) = &link.fields else {
        return Some(Break { seq, reason: Reason::Deleted, detail: format!("record {} is gone", link.audit_id) });
    };
    if &link.prev != expected_prev {
        let known = all.iter().any(|other| other.seq != seq && other.hash == link.prev);
        return Some(Break {
            seq,
            reason: if known { Reason::Reordered } else { Reason::Inserted },
            detail: "the link does not follow the one before it".into(),
        });
    }
    if link_hash(&link.prev, seq, fields) != link.hash {
        // A genuine record in another link's place still hashes right under this link.
        let moved = all.iter().find(|other| {
            other.seq != seq && other.fields.as_ref().is_some_and(|f| link_hash(&link.prev, seq, f) == link.hash)
        });
        return Some(match moved {
            Some(other) => Break {
                seq,
                reason: Reason::Reordered,
                detail: format!("record {} belongs at {seq}, not at {}", other.audit_id, other.seq),
            },
            None => Break {
                seq,
                reason: Reason::Changed,
                detail: format!("record {} does not match its link", link.audit_id),
            },
        });
    }
    None
}

/// Verifies one tenant's chain; `recorded` is how far its head row says the chain reaches.
async fn verify_one(
    conn: &mut PgConnection,
    org: Uuid,
    slug: String,
    recorded: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Report> {
    let (all, unsealed) = links(conn, org).await?;
    let oldest = unsealed.iter().map(|(_, at)| *at).min();
    let mut report = Report {
        organization_id: org,
        slug,
        records: 0,
        head: (0, GENESIS),
        pending: (unsealed.len() as i64, oldest),
        broken: None,
    };
    for link in &all {
        if let Some(b) = check(link, report.head.0 + 1, &report.head.1, &all) {
            report.broken = Some(b);
            return Ok(report);
        }
        report.records += 1;
        report.head = (link.seq, link.hash);
    }
    // The head row says how far the chain reached: a shorter chain lost its tail.
    if let Some(recorded) = recorded.filter(|r| *r > report.head.0) {
        report.broken = Some(Break {
            seq: report.head.0 + 1,
            reason: Reason::Deleted,
            detail: format!("the chain ends at {} but its head records {recorded}", report.head.0),
        });
    } else if let Some(oldest) = oldest.filter(|o| now - *o > WINDOW) {
        // Within the window an unsealed record is a lag; older, it was written behind the
        // sealer's back.
        report.broken = Some(Break {
            seq: report.head.0 + 1,
            reason: Reason::Inserted,
            detail: format!("{} record(s) in no block, the oldest written {oldest}", unsealed.len()),
        });
    }
    Ok(report)
}

/// Every tenant's chain head, for a checkpoint.
pub async fn heads(conn: &mut PgConnection) -> Result<Vec<Head>> {
    let rows: Vec<HeadRow> =
        sqlx::query_as("select organization_id, seq, hash from app.audit_chain_heads order by organization_id")
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|h| Head { organization_id: h.organization_id, seq: h.seq, hash: bytes32(h.hash) })
        .collect())
}

#[derive(sqlx::FromRow)]
struct HeadRow {
    organization_id: Uuid,
    seq: i64,
    hash: Vec<u8>,
}

/// Whether the link `head` names is still in the chain, as it was.
pub async fn holds(conn: &mut PgConnection, head: &Head) -> Result<bool> {
    if head.seq == 0 {
        return Ok(head.hash == GENESIS);
    }
    let hash: Option<Vec<u8>> = sqlx::query_scalar(
        "select hashes[$2 - first_seq + 1] from app.audit_blocks
          where organization_id = $1 and first_seq <= $2 and $2 < first_seq + cardinality(audit_ids)",
    )
    .bind(head.organization_id)
    .bind(head.seq)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(hash.map(bytes32) == Some(head.hash))
}

/// The first line of the text a checkpoint signs.
pub const CHECKPOINT_DOMAIN: &str = "mos-audit-checkpoint-v1";

/// The text a checkpoint signs (docs/audit-chain.md): the domain line, the time (RFC 3339 in
/// UTC with microseconds and `Z`), then `organization_id seq hash` per head (the hash as the
/// checkpoint spells it, lowercase hex), each line ending in LF. One definition for the
/// checkpoints of `mos audit` and those of consent receipts, which their verifiers share.
pub fn checkpoint_text<'a>(
    created_at: &DateTime<Utc>,
    heads: impl IntoIterator<Item = (Uuid, i64, &'a str)>,
) -> Vec<u8> {
    let mut text =
        format!("{CHECKPOINT_DOMAIN}\n{}\n", created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    for (organization_id, seq, hash) in heads {
        text.push_str(&format!("{organization_id} {seq} {hash}\n"));
    }
    text.into_bytes()
}

/// The names of a record's fields in the order [`link_hash`] takes them (`seq` apart).
pub const FIELD_NAMES: [&str; FIELD_COUNT] = [
    "organization_id",
    "id",
    "actor_user_id",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
    "ip",
    "user_agent",
    "request_id",
    "changes",
    "metadata",
    "created_at",
];

/// One link of a stretch of a chain: the record's place, its link hash, and its fields as the
/// hash encodes them (in the order of [`FIELD_NAMES`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StretchLink {
    pub seq: i64,
    pub audit_id: Uuid,
    pub hash: [u8; 32],
    pub fields: Vec<Option<String>>,
}

/// A contiguous stretch of a tenant's chain: the hash it follows and its links, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stretch {
    pub prev: [u8; 32],
    pub links: Vec<StretchLink>,
}

/// A stretch longer than its caller allows, by the number of links it would hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    pub links: i64,
}

/// Where each of the sealed records `ids` of organization `org` sits in its chain: its `seq` and
/// its link hash. A record not sealed yet is not in the answer.
pub async fn places(conn: &mut PgConnection, org: Uuid, ids: &[Uuid]) -> Result<HashMap<Uuid, (i64, [u8; 32])>> {
    let holding: Vec<BlockRow> = sqlx::query_as(
        "select first_seq, prev_hash, audit_ids, hashes from app.audit_blocks
          where organization_id = $1 and audit_ids && $2 order by first_seq",
    )
    .bind(org)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let wanted: HashSet<Uuid> = ids.iter().copied().collect();
    let mut found = HashMap::new();
    for block in holding {
        for (i, (id, hash)) in block.audit_ids.into_iter().zip(block.hashes).enumerate() {
            if wanted.contains(&id) {
                found.insert(id, (block.first_seq + i as i64, bytes32(hash)));
            }
        }
    }
    Ok(found)
}

/// The stretch of the chain of `tx`'s tenant from the earliest to the latest of the sealed
/// records `ids`, each link recomputed from its record, and the `ids` not sealed yet. `None`
/// when none of them is sealed. A link in the stretch that does not hold (a record changed or
/// gone, links out of order) is an error, never a stretch: what is handed out to be checked
/// offline is first checked here. A stretch of more than `max` links is not read at all: every
/// record of a busy tenant between two events far apart in time would otherwise be loaded.
pub async fn stretch(
    tx: &mut TenantTx,
    ids: &[Uuid],
    max: i64,
) -> Result<std::result::Result<(Option<Stretch>, Vec<Uuid>), TooLong>> {
    let org = tx.org().as_uuid();
    let found: HashMap<Uuid, i64> =
        places(tx.conn(), org, ids).await?.into_iter().map(|(id, (seq, _))| (id, seq)).collect();
    let unsealed: Vec<Uuid> = ids.iter().filter(|id| !found.contains_key(id)).copied().collect();
    let (Some(first), Some(last)) = (found.values().min().copied(), found.values().max().copied()) else {
        return Ok(Ok((None, unsealed)));
    };
    if last - first + 1 > max {
        return Ok(Err(TooLong { links: last - first + 1 }));
    }
    let blocks: Vec<BlockRow> = sqlx::query_as(
        "select first_seq, prev_hash, audit_ids, hashes from app.audit_blocks
          where organization_id = $1 and first_seq <= $3 and first_seq + cardinality(audit_ids) > $2
          order by first_seq",
    )
    .bind(org)
    .bind(first)
    .bind(last)
    .fetch_all(tx.conn())
    .await?;
    let mut placed: Vec<(i64, Uuid, [u8; 32], [u8; 32])> = Vec::new();
    for block in blocks {
        let mut prev = bytes32(block.prev_hash);
        for (i, (id, hash)) in block.audit_ids.into_iter().zip(block.hashes).enumerate() {
            let hash = bytes32(hash);
            let seq = block.first_seq + i as i64;
            if (first..=last).contains(&seq) {
                placed.push((seq, id, prev, hash));
            }
            prev = hash;
        }
    }
    let record_ids: Vec<Uuid> = placed.iter().map(|p| p.1).collect();
    let rows = sqlx::query(&format!(
        "select a.id, a.created_at, {FIELDS} from app.audit_logs a where a.organization_id = $1 and a.id = any($2)"
    ))
    .bind(org)
    .bind(&record_ids)
    .fetch_all(tx.conn())
    .await?;
    let mut records: HashMap<Uuid, Vec<Option<String>>> = HashMap::with_capacity(rows.len());
    for row in &rows {
        records.insert(row.try_get(0)?, fields_of(row, 2)?);
    }
    let broken = || crate::error::stored("audit_chain_stretch");
    let start = placed.first().map(|p| p.2).ok_or_else(broken)?;
    let (mut expected_seq, mut expected_prev) = (first, start);
    let mut links = Vec::with_capacity(placed.len());
    for (seq, audit_id, prev, hash) in placed {
        let fields = records.remove(&audit_id).ok_or_else(broken)?;
        if seq != expected_seq || prev != expected_prev || link_hash(&prev, seq, &fields) != hash {
            return Err(broken());
        }
        links.push(StretchLink { seq, audit_id, hash, fields });
        (expected_seq, expected_prev) = (seq + 1, hash);
    }
    if expected_seq != last + 1 {
        return Err(broken());
    }
    Ok(Ok((Some(Stretch { prev: start, links }), unsealed)))
}

/// Seals what the tenant `org` has waiting, now: a consent receipt is checked against the
/// chain as far as it reaches, and the sweep of a running server may be up to a second away.
pub async fn seal_tenant(pool: &AppPool, org: Uuid) -> Result<i64> {
    let mut sealed = 0;
    loop {
        let (n, _) = seal_block(pool, org, WINDOW).await?;
        sealed += n;
        if n < BLOCK {
            return Ok(sealed);
        }
    }
}
