//! Clicks on the tracked links of sent messages (docs/sending.md, "Clicks"). A link names its
//! place among the message's tracked links; where it leads is read from the campaign's launched
//! version, the approved content and template, never from the link, so a click can lead only
//! where the approved content pointed. A click is recorded once per message and link, with how
//! often it was followed; the counts per link follow in the same transaction (migration 31).

use chrono::{DateTime, Utc};

use crate::{Result, TenantTx};
use mos_domain::{ContactId, ContentId};

/// The bodies a launched campaign's messages were rendered from, as the reviewers approved them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    /// The email template's layout.
    pub layout: String,
    /// The content's Markdown body.
    pub body: String,
}

/// The template and content bodies of the version `campaign` was launched on, if it was.
pub async fn launched(tx: &mut TenantTx, campaign: ContentId) -> Result<Option<Launched>> {
    let bodies: Option<(String, String)> = sqlx::query_as(
        "select t.body, c.body from app.campaign_runs r
           join app.campaign_versions v on v.organization_id = $1 and v.campaign_id = r.campaign_id
                                       and v.version = r.version
           join app.content_versions c on c.organization_id = $1 and c.item_id = v.content_id
                                      and c.number = v.content_version
           join app.content_versions t on t.organization_id = $1 and t.item_id = v.template_id
                                      and t.number = v.template_version
          where r.organization_id = $1 and r.campaign_id = $2",
    )
    .bind(tx.org().as_uuid())
    .bind(campaign.as_uuid())
    .fetch_optional(tx.conn())
    .await?;
    Ok(bodies.map(|(layout, body)| Launched { layout, body }))
}

/// Records that `contact` followed link `link` of `campaign`'s message to them at `at`. False
/// when the organization handed no such message over: a link of a message never sent is not a
/// click (and none was ever minted for it).
pub async fn record(
    tx: &mut TenantTx,
    campaign: ContentId,
    contact: ContactId,
    link: u16,
    at: DateTime<Utc>,
) -> Result<bool> {
    // No message holds that many links (a body is at most 100,000 bytes).
    let Ok(link) = i16::try_from(link) else { return Ok(false) };
    let recorded = sqlx::query(
        "insert into app.campaign_clicks as k
                (organization_id, campaign_id, contact_id, link, first_at, last_at, clicks)
         select m.organization_id, m.campaign_id, m.contact_id, $4, $5, $5, 1
           from app.campaign_messages m
          where m.organization_id = $1 and m.campaign_id = $2 and m.contact_id = $3 and m.state = 'sent'
         on conflict (organization_id, campaign_id, contact_id, link)
         do update set clicks = k.clicks + 1, last_at = greatest(k.last_at, excluded.last_at)",
    )
    .bind(tx.org().as_uuid())
    .bind(campaign.as_uuid())
    .bind(contact.as_uuid())
    .bind(link)
    .bind(at)
    .execute(tx.conn())
    .await?;
    Ok(recorded.rows_affected() == 1)
}

/// How often one link of a campaign was followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTally {
    /// Its place among the messages' tracked links, from 0.
    pub link: u16,
    /// Recipients who followed it.
    pub unique: i64,
    /// Times it was followed in all.
    pub total: i64,
}

/// Each followed link of `campaign`, in link order: a row per link, never the clicks.
pub async fn tallies(tx: &mut TenantTx, campaign: ContentId) -> Result<Vec<LinkTally>> {
    let rows: Vec<(i16, i64, i64)> = sqlx::query_as(
        "select link, unique_clicks, clicks from app.campaign_link_tallies
          where organization_id = $1 and campaign_id = $2 order by link",
    )
    .bind(tx.org().as_uuid())
    .bind(campaign.as_uuid())
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|(link, unique, total)| {
            let link = u16::try_from(link).map_err(|_| crate::error::stored("campaign_clicks_link"))?;
            Ok(LinkTally { link, unique, total })
        })
        .collect()
}
