//! Verifying the per-tenant hash chains of the audit log, independently of the database's own
//! trigger: each link is recomputed here from the stored values' canonical text (specified in
//! docs/audit-chain.md), so a superuser who edits rows, or replaces the trigger, is caught.

use std::fmt;

use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::Result;

/// The previous hash of a tenant's first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// Why a link is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The record's content no longer matches its hash.
    Changed,
    /// Records are missing (a gap in the sequence, or the tail behind the recorded head).
    Deleted,
    /// A record that the chain does not link to.
    Inserted,
    /// A genuine record, out of its place.
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
    /// Records checked.
    pub records: i64,
    /// The last good link: its sequence number and hash.
    pub head: (i64, [u8; 32]),
    pub broken: Option<Break>,
}

/// A tenant's chain head as the database records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub organization_id: Uuid,
    pub seq: i64,
    pub hash: [u8; 32],
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

/// The fields of a record in the order the encoding takes them, as text.
const FIELDS: &str = "organization_id::text, seq::text, id::text, actor_user_id::text, action, resource_type,
    resource_id, outcome::text, host(ip), user_agent, request_id, changes::text, metadata::text,
    (extract(epoch from created_at) * 1000000)::bigint::text";

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

/// Verifies the chain of every organization, or of the one with `slug`.
pub async fn verify(conn: &mut PgConnection, slug: Option<&str>) -> Result<Vec<Report>> {
    let orgs: Vec<(Uuid, String)> =
        sqlx::query_as("select id, slug from app.organizations where $1::text is null or slug = $1 order by slug")
            .bind(slug)
            .fetch_all(&mut *conn)
            .await?;
    let mut reports = Vec::new();
    for (org, slug) in orgs {
        reports.push(verify_one(conn, org, slug).await?);
    }
    Ok(reports)
}

async fn verify_one(conn: &mut PgConnection, org: Uuid, slug: String) -> Result<Report> {
    // Columns 0 to 2 are the link, 3 to 16 the encoded fields in order.
    let rows = sqlx::query(&format!(
        "select seq, prev_hash, hash, {FIELDS} from app.audit_logs a where organization_id = $1 order by a.seq, a.id"
    ))
    .bind(org)
    .fetch_all(&mut *conn)
    .await?;
    let mut report = Report { organization_id: org, slug, records: 0, head: (0, GENESIS), broken: None };
    for (i, row) in rows.iter().enumerate() {
        let seq: i64 = row.try_get(0)?;
        let prev: [u8; 32] = bytes32(row.try_get(1)?);
        let stored: [u8; 32] = bytes32(row.try_get(2)?);
        let fields: Vec<Option<String>> = (3..17).map(|i| row.try_get(i)).collect::<std::result::Result<_, _>>()?;
        let (expected_seq, expected_prev) = (report.head.0 + 1, report.head.1);
        let broken = if seq > expected_seq {
            Some(Break {
                seq: expected_seq,
                reason: Reason::Deleted,
                detail: format!("records {expected_seq} to {} are missing", seq - 1),
            })
        } else if seq < expected_seq {
            Some(Break {
                seq,
                reason: Reason::Inserted,
                detail: format!("a second record claims sequence number {seq}"),
            })
        } else if prev != expected_prev {
            // Reordered when the link it carries is another genuine record's hash.
            let known = rows
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && other.try_get::<Vec<u8>, _>(2).map(bytes32).ok() == Some(prev));
            Some(Break {
                seq,
                reason: if known { Reason::Reordered } else { Reason::Inserted },
                detail: "the record does not link to the one before it".into(),
            })
        } else if link_hash(&prev, &fields) != stored {
            let moved = rows.iter().find_map(|other| {
                let other_seq: i64 = other.try_get(0).ok()?;
                (other_seq != seq && link_hash(&prev, &with_seq(&fields, other_seq)) == stored).then_some(other_seq)
            });
            Some(match moved {
                Some(original) => Break {
                    seq,
                    reason: Reason::Reordered,
                    detail: format!("the record at {seq} belongs at {original}"),
                },
                None => Break { seq, reason: Reason::Changed, detail: "the record does not match its hash".into() },
            })
        } else {
            None
        };
        if let Some(b) = broken {
            report.broken = Some(b);
            return Ok(report);
        }
        report.records += 1;
        report.head = (seq, stored);
    }
    // The head row says how long the chain was at the last insert: a shorter chain lost its tail.
    let head: Option<(i64,)> = sqlx::query_as("select seq from app.audit_chain_heads where organization_id = $1")
        .bind(org)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some((recorded,)) = head {
        if recorded > report.head.0 {
            report.broken = Some(Break {
                seq: report.head.0 + 1,
                reason: Reason::Deleted,
                detail: format!("the chain ends at {} but its head records {recorded}", report.head.0),
            });
        }
    }
    Ok(report)
}

fn with_seq(fields: &[Option<String>], seq: i64) -> Vec<Option<String>> {
    let mut f = fields.to_vec();
    f[1] = Some(seq.to_string());
    f
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

/// Whether the record `head` names is still in the chain, as it was.
pub async fn holds(conn: &mut PgConnection, head: &Head) -> Result<bool> {
    let hash: Option<Vec<u8>> =
        sqlx::query_scalar("select hash from app.audit_logs where organization_id = $1 and seq = $2")
            .bind(head.organization_id)
            .bind(head.seq)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(hash.map(bytes32) == Some(head.hash) || (head.seq == 0 && head.hash == GENESIS))
}
