//! The per-tenant hash chains of the audit log: sealing committed records into them, and
//! verifying them independently of the database's own sealing function: each link is
//! recomputed here from the stored values' canonical text (specified in docs/audit-chain.md),
//! so a superuser who edits records or seals, or replaces the function, is caught.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::postgres::types::PgInterval;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::{AppPool, DbError, Result};

/// The previous hash of a tenant's first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// How far behind the newest sealed record a full sweep still looks for records whose
/// transactions committed late. A record committed later than this after it was written is
/// left unsealed, and `verify` reports it.
pub const WINDOW: Duration = Duration::minutes(10);

/// How far back a quick sweep looks: enough for ordinary transactions, and cheap, since every
/// sweep re-reads what it looks back over.
pub const QUICK_WINDOW: Duration = Duration::seconds(5);

/// Records sealed per tenant and call, so that one busy tenant holds its head briefly.
const BATCH: i32 = 1000;

/// Why a link is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A record's content no longer matches its seal.
    Changed,
    /// Records or seals are missing (a gap, a seal without its record, a cut tail).
    Deleted,
    /// A record, or seal, that the chain does not account for.
    Inserted,
    /// Genuine records, out of their places.
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
    /// Records not sealed yet (written within the sealing window), and the oldest one's time.
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
}

fn interval(d: Duration) -> Result<PgInterval> {
    PgInterval::try_from(d).map_err(|e| DbError::Sqlx(sqlx::Error::Encode(e)))
}

/// Seals every committed, unsealed record of the tenants written to since `since` (all tenants
/// for `None`) that was written no more than `window` before the newest record sealed, in the
/// order the sealer finds them. Safe to run from many processes at once: each tenant's head is
/// locked while it is extended.
pub async fn seal(pool: &AppPool, since: Option<DateTime<Utc>>, window: Duration) -> Result<Sweep> {
    let tenants: Vec<Uuid> = sqlx::query_scalar("select app.audit_recent_tenants($1)")
        .bind(since.map(|s| s - window))
        .fetch_all(pool.without_context())
        .await?;
    let mut sweep = Sweep { tenants: tenants.len(), sealed: 0 };
    let window = interval(window)?;
    for org in tenants {
        loop {
            let sealed: i32 = sqlx::query_scalar("select app.audit_seal_pending($1, $2, $3)")
                .bind(org)
                .bind(window)
                .bind(BATCH)
                .fetch_one(pool.without_context())
                .await?;
            sweep.sealed += i64::from(sealed);
            if sealed < BATCH {
                break;
            }
        }
    }
    Ok(sweep)
}

fn field(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => out.extend_from_slice(&[0xff; 4]),
        Some(t) => {
            out.extend_from_slice(&(t.len() as u32).to_be_bytes());
            out.extend_from_slice(t.as_bytes());
        }
    }
}

/// A record's fields in the order the encoding takes them, as text; `{seq}` is the link's.
const FIELDS: &str = "a.organization_id::text, {seq}::text, a.id::text, a.actor_user_id::text, a.action,
    a.resource_type, a.resource_id, a.outcome::text, host(a.ip), a.user_agent, a.request_id, a.changes::text,
    a.metadata::text, (extract(epoch from a.created_at) * 1000000)::bigint::text";

/// SHA-256(previous hash ‖ the fields, each as a 4-byte big-endian length and its UTF-8 bytes,
/// or ffffffff for NULL).
pub fn link_hash(prev: &[u8; 32], fields: &[Option<String>]) -> [u8; 32] {
    let mut encoded = prev.to_vec();
    for f in fields {
        field(&mut encoded, f.as_deref());
    }
    Sha256::digest(&encoded).into()
}

fn bytes32(v: Vec<u8>) -> [u8; 32] {
    v.try_into().unwrap_or([0xee; 32])
}

/// Verifies the chain of every organization, or of the one with `slug`, as of `now`.
pub async fn verify(conn: &mut PgConnection, slug: Option<&str>, now: DateTime<Utc>) -> Result<Vec<Report>> {
    let orgs: Vec<(Uuid, String)> =
        sqlx::query_as("select id, slug from app.organizations where $1::text is null or slug = $1 order by slug")
            .bind(slug)
            .fetch_all(&mut *conn)
            .await?;
    let mut reports = Vec::new();
    for (org, slug) in orgs {
        reports.push(verify_one(conn, org, slug, now).await?);
    }
    Ok(reports)
}

/// A seal and, when its record still exists, the record's fields with the seal's sequence number.
struct Link {
    seq: i64,
    audit_id: Uuid,
    prev: [u8; 32],
    hash: [u8; 32],
    fields: Option<Vec<Option<String>>>,
}

async fn links(conn: &mut PgConnection, org: Uuid) -> Result<Vec<Link>> {
    let sql = format!(
        "select s.seq, s.audit_id, s.prev_hash, s.hash, a.id is not null as present, {}
           from app.audit_seals s
           left join app.audit_logs a on a.organization_id = s.organization_id and a.id = s.audit_id
          where s.organization_id = $1
          order by s.seq",
        FIELDS.replace("{seq}", "s.seq")
    );
    let rows = sqlx::query(&sql).bind(org).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| {
            let present: bool = row.try_get(4)?;
            let fields =
                if present { Some((5..19).map(|i| row.try_get(i)).collect::<sqlx::Result<Vec<_>>>()?) } else { None };
            Ok(Link {
                seq: row.try_get(0)?,
                audit_id: row.try_get(1)?,
                prev: bytes32(row.try_get(2)?),
                hash: bytes32(row.try_get(3)?),
                fields,
            })
        })
        .collect()
}

fn with_seq(fields: &[Option<String>], seq: i64) -> Vec<Option<String>> {
    let mut f = fields.to_vec();
    f[1] = Some(seq.to_string());
    f
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
    if link_hash(&link.prev, fields) != link.hash {
        // A genuine record in another link's place still hashes right under that link's number.
        let moved = all.iter().find(|other| {
            other.seq != seq
                && other.fields.as_ref().is_some_and(|f| link_hash(&link.prev, &with_seq(f, seq)) == link.hash)
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
                detail: format!("record {} does not match its seal", link.audit_id),
            },
        });
    }
    None
}

async fn verify_one(conn: &mut PgConnection, org: Uuid, slug: String, now: DateTime<Utc>) -> Result<Report> {
    let all = links(conn, org).await?;
    let mut report =
        Report { organization_id: org, slug, records: 0, head: (0, GENESIS), pending: (0, None), broken: None };
    for link in &all {
        if let Some(b) = check(link, report.head.0 + 1, &report.head.1, &all) {
            report.broken = Some(b);
            return Ok(report);
        }
        report.records += 1;
        report.head = (link.seq, link.hash);
    }
    // The head row says how far the chain reached: a shorter chain lost its tail.
    let recorded: Option<i64> = sqlx::query_scalar("select seq from app.audit_chain_heads where organization_id = $1")
        .bind(org)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(recorded) = recorded.filter(|r| *r > report.head.0) {
        report.broken = Some(Break {
            seq: report.head.0 + 1,
            reason: Reason::Deleted,
            detail: format!("the chain ends at {} but its head records {recorded}", report.head.0),
        });
        return Ok(report);
    }
    // Records outside every seal: in the sealing window that is just a lag; older, the record
    // was written behind the sealer's back.
    let (count, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "select count(*), min(a.created_at) from app.audit_logs a
          where a.organization_id = $1
            and not exists (select from app.audit_seals s where s.organization_id = a.organization_id and s.audit_id = a.id)",
    )
    .bind(org)
    .fetch_one(&mut *conn)
    .await?;
    report.pending = (count, oldest);
    if let Some(oldest) = oldest.filter(|o| now - *o > WINDOW) {
        report.broken = Some(Break {
            seq: report.head.0 + 1,
            reason: Reason::Inserted,
            detail: format!("{count} record(s) in no seal, the oldest written {oldest}"),
        });
    }
    Ok(report)
}

/// Every tenant's chain head, for a checkpoint.
pub async fn heads(conn: &mut PgConnection) -> Result<Vec<Head>> {
    let rows: Vec<(Uuid, i64, Vec<u8>)> =
        sqlx::query_as("select organization_id, seq, hash from app.audit_chain_heads order by organization_id")
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(organization_id, seq, hash)| Head { organization_id, seq, hash: bytes32(hash) })
        .collect())
}

/// Whether the link `head` names is still in the chain, as it was.
pub async fn holds(conn: &mut PgConnection, head: &Head) -> Result<bool> {
    if head.seq == 0 {
        return Ok(head.hash == GENESIS);
    }
    let hash: Option<Vec<u8>> =
        sqlx::query_scalar("select hash from app.audit_seals where organization_id = $1 and seq = $2")
            .bind(head.organization_id)
            .bind(head.seq)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(hash.map(bytes32) == Some(head.hash))
}
