//! The evidence of a piece's first use, for Form FDA 2253 (docs/campaigns.md, "First use"): for
//! each version of a content item that was sent, the exact approved text with its hash, the
//! first message that carried it (when, by which campaign version, to which audience) and the
//! audit records that say so, each with its place in the organization's sealed chain.
//! `mos audit verify --evidence <file>` checks such a document against the database: the chain
//! holds, each record named sits at the place the document gives it and says what it claims.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::campaigns::{self, FirstUse};
use crate::error::stored;
use crate::{chain, content, Result, TenantTx};
use mos_domain::ContentId;

/// The `format` of the document.
pub const FORMAT: &str = "mos-first-use/1";

/// A content item's first uses, as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub format: String,
    pub organization_id: Uuid,
    pub content_id: Uuid,
    pub generated_at: DateTime<Utc>,
    /// Each version that was sent, oldest first.
    pub versions: Vec<VersionUse>,
}

/// One version of the item and its first use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionUse {
    pub version: i32,
    /// The SHA-256 of the version's canonical text, which its approvals name.
    pub sha256: String,
    pub title: String,
    pub channel: String,
    pub audience: String,
    /// The approved text, as it was sent.
    pub body: String,
    pub first_sent_at: DateTime<Utc>,
    pub campaign: CampaignUse,
    /// The batch of the first message, whose sealed record holds the batch's Merkle root.
    pub batch: Uuid,
    /// The records of the version's approvals (and publication, if it was published), the
    /// campaign's launch and the first batch, in the order they were written.
    pub records: Vec<RecordPlace>,
}

/// The campaign version that first sent it, and its audience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignUse {
    pub id: Uuid,
    pub name: String,
    pub version: i32,
    pub sha256: String,
    pub segment_id: Uuid,
    pub segment_version: i32,
    pub segment_sha256: String,
    /// Every contact of the audience snapshot, sent or skipped.
    pub recipients: i64,
}

/// An audit record and where it sits in the chain (no place: not sealed yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPlace {
    pub id: Uuid,
    pub action: String,
    pub actor_user_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub seq: Option<i64>,
    /// The record's link hash in hex.
    pub hash: Option<String>,
}

#[derive(sqlx::FromRow)]
struct CampaignRow {
    version: i32,
    sha256: Vec<u8>,
    name: String,
    segment_id: Uuid,
    segment_version: i32,
    segment_sha256: Vec<u8>,
    recipients: i64,
}

#[derive(sqlx::FromRow)]
struct RecordRow {
    id: Uuid,
    action: String,
    actor_user_id: Option<Uuid>,
    created_at: DateTime<Utc>,
}

/// The audit records that a version's first use rests on: the approvals and publication of that
/// text (by its hash), the launch of the campaign and the batch of its first message.
pub(crate) const RECORDS: &str = "select a.id, a.action, a.actor_user_id, a.created_at from app.audit_logs a
  where a.organization_id = $1 and a.outcome = 'success'
    and ((a.resource_type = 'content' and a.resource_id = $2 and a.metadata ->> 'sha256' = $3
          and a.action in ('content.approved', 'content.published'))
      or (a.resource_type = 'campaign' and a.resource_id = $4
          and (a.action = 'campaign.launched' or (a.action = 'campaign.batch_sent' and a.metadata ->> 'batch' = $5))))
  order by a.created_at, a.id";

/// The evidence of content item `item`'s first uses, as of `now`.
pub async fn evidence(tx: &mut TenantTx, item: ContentId, now: DateTime<Utc>) -> Result<Evidence> {
    let uses = campaigns::first_use(tx, item).await?;
    let mut versions = Vec::with_capacity(uses.len());
    for FirstUse { version, campaign, sent_at, batch } in uses {
        let text = content::version(tx, item, version).await?.ok_or_else(|| stored("content_versions_pkey"))?;
        let run: CampaignRow = sqlx::query_as(
            "select r.version, v.sha256, t.title as name, v.segment_id, v.segment_version, v.segment_sha256,
                    r.recipients
               from app.campaign_runs r
               join app.campaign_versions v on v.organization_id = $1 and v.campaign_id = r.campaign_id
                                           and v.version = r.version
               join app.content_versions t on t.organization_id = $1 and t.item_id = r.campaign_id
                                          and t.number = r.version
              where r.organization_id = $1 and r.campaign_id = $2",
        )
        .bind(tx.org().as_uuid())
        .bind(campaign.as_uuid())
        .fetch_one(tx.conn())
        .await?;
        let records: Vec<RecordRow> = sqlx::query_as(RECORDS)
            .bind(tx.org().as_uuid())
            .bind(item.to_string())
            .bind(text.sha256.to_string())
            .bind(campaign.to_string())
            .bind(batch.to_string())
            .fetch_all(tx.conn())
            .await?;
        let ids: Vec<Uuid> = records.iter().map(|r| r.id).collect();
        let org = tx.org().as_uuid();
        let places: HashMap<Uuid, (i64, [u8; 32])> = chain::places(tx.conn(), org, &ids).await?;
        versions.push(VersionUse {
            version,
            sha256: text.sha256.to_string(),
            title: text.title,
            channel: text.channel.to_string(),
            audience: text.audience,
            body: text.body,
            first_sent_at: sent_at,
            campaign: CampaignUse {
                id: campaign.as_uuid(),
                name: run.name,
                version: run.version,
                sha256: hex::encode(run.sha256),
                segment_id: run.segment_id,
                segment_version: run.segment_version,
                segment_sha256: hex::encode(run.segment_sha256),
                recipients: run.recipients,
            },
            batch,
            records: records
                .into_iter()
                .map(|r| {
                    let place = places.get(&r.id);
                    RecordPlace {
                        id: r.id,
                        action: r.action,
                        actor_user_id: r.actor_user_id,
                        created_at: r.created_at,
                        seq: place.map(|p| p.0),
                        hash: place.map(|p| hex::encode(p.1)),
                    }
                })
                .collect(),
        });
    }
    Ok(Evidence {
        format: FORMAT.to_owned(),
        organization_id: tx.org().as_uuid(),
        content_id: item.as_uuid(),
        generated_at: now,
        versions,
    })
}

/// What is wrong with `evidence` against the database, on a connection that sees every tenant
/// (`mos audit verify`), after the organization's chain verified; empty when the database backs
/// every claim: each version's stored text has the exported hash and words, the ledger's first
/// message that carried it was sent at the exported time, and each record the document names is
/// in the sealed chain at the exported place, saying what the document says it does.
pub async fn check(conn: &mut sqlx::PgConnection, evidence: &Evidence) -> Result<Vec<String>> {
    if evidence.format != FORMAT {
        return Ok(vec![format!("the format is {:?}, not {FORMAT}", evidence.format)]);
    }
    let org = evidence.organization_id;
    let item = evidence.content_id;
    let mut problems = Vec::new();
    for v in &evidence.versions {
        let at = |what: String| format!("version {}: {what}", v.version);
        let stored: Option<(Vec<u8>, String, String)> = sqlx::query_as(
            "select sha256, title, body from app.content_versions
              where organization_id = $1 and item_id = $2 and number = $3",
        )
        .bind(org)
        .bind(item)
        .bind(v.version)
        .fetch_optional(&mut *conn)
        .await?;
        match stored {
            None => problems.push(at("no such version is stored".into())),
            Some((sha256, title, body)) => {
                if hex::encode(sha256) != v.sha256 || title != v.title || body != v.body {
                    problems.push(at("the stored version is not the exported text and hash".into()));
                }
            }
        }
        let first: Option<DateTime<Utc>> = sqlx::query_scalar(
            "select min(m.sent_at) from app.campaign_messages m
               join app.campaign_versions c on c.organization_id = m.organization_id
                                           and c.campaign_id = m.campaign_id and c.version = m.version
              where m.organization_id = $1 and m.state = 'sent'
                and ((c.content_id = $2 and c.content_version = $3) or (c.template_id = $2 and c.template_version = $3))",
        )
        .bind(org)
        .bind(item)
        .bind(v.version)
        .fetch_one(&mut *conn)
        .await?;
        let in_batch: Option<DateTime<Utc>> = sqlx::query_scalar(
            "select min(sent_at) from app.campaign_messages
              where organization_id = $1 and campaign_id = $2 and batch = $3 and state = 'sent'",
        )
        .bind(org)
        .bind(v.campaign.id)
        .bind(v.batch)
        .fetch_one(&mut *conn)
        .await?;
        if first != Some(v.first_sent_at) || in_batch != Some(v.first_sent_at) {
            problems.push(at(format!(
                "the ledger's first message of this version was not sent at {} in batch {}",
                v.first_sent_at, v.batch
            )));
        }
        let records: Vec<RecordRow> = sqlx::query_as(RECORDS)
            .bind(org)
            .bind(item.to_string())
            .bind(&v.sha256)
            .bind(v.campaign.id.to_string())
            .bind(v.batch.to_string())
            .fetch_all(&mut *conn)
            .await?;
        let ids: Vec<Uuid> = v.records.iter().map(|r| r.id).collect();
        let places = chain::places(conn, org, &ids).await?;
        for claimed in &v.records {
            let Some(record) = records.iter().find(|r| r.id == claimed.id) else {
                problems.push(at(format!(
                    "record {} is not a record of this version's approval, publication, launch or first batch",
                    claimed.id
                )));
                continue;
            };
            if (&record.action, record.actor_user_id, record.created_at)
                != (&claimed.action, claimed.actor_user_id, claimed.created_at)
            {
                problems.push(at(format!("record {} does not say what the document says it does", claimed.id)));
            }
            let (Some(seq), Some(hash)) = (claimed.seq, claimed.hash.as_deref()) else {
                problems.push(at(format!("record {} was not sealed when the document was made", claimed.id)));
                continue;
            };
            match places.get(&claimed.id) {
                Some((s, h)) if *s == seq && hex::encode(h) == hash => {}
                _ => problems
                    .push(at(format!("record {} is not at record {seq} of the chain with that hash", claimed.id))),
            }
        }
        // A piece is sent on its approval; a publication of the same text, if any, is named too.
        for needed in ["content.approved", "campaign.launched", "campaign.batch_sent"] {
            if !v.records.iter().any(|r| r.action == needed) {
                problems.push(at(format!("the document names no {needed} record")));
            }
        }
    }
    Ok(problems)
}
