//! Clicks on the tracked links of sent messages (docs/sending.md, "Clicks"). A link names its
//! place among the message's tracked links; where it leads is read from the campaign's launched
//! version, the approved content and template, never from the link, so a click can lead only
//! where the approved content pointed. A click is recorded once per message and link, with how
//! often it was followed; the counts per link follow in the same transaction (migration 31).

use chrono::{DateTime, Utc};

use crate::campaigns::MESSAGE;
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

/// One click on a tracked link: `contact` followed link `link` of `campaign`'s message to them
/// at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clicked {
    pub campaign: ContentId,
    pub contact: ContactId,
    pub link: u16,
    pub at: DateTime<Utc>,
}

/// Records one click. False when the organization handed no such message over: a link of a
/// message never sent is not a click (and none was ever minted for it).
pub async fn record(
    tx: &mut TenantTx,
    campaign: ContentId,
    contact: ContactId,
    link: u16,
    at: DateTime<Utc>,
) -> Result<bool> {
    Ok(record_all(tx, &[Clicked { campaign, contact, link, at }]).await?.first().copied().unwrap_or(false))
}

/// Records clicks in the transaction's organization, a statement for all of them: for each, in
/// their order, whether it was recorded (as [`record`] answers).
///
/// A statement holds at most one click per message and link: the count of a second click on the
/// same link must add to the first, which one `on conflict` cannot do twice for a row. So clicks
/// that repeat one go into a next statement, in the order they came. Each click's message is
/// looked up by its key ([`MESSAGE`](crate::campaigns::MESSAGE)).
pub async fn record_all(tx: &mut TenantTx, clicks: &[Clicked]) -> Result<Vec<bool>> {
    let mut recorded = vec![false; clicks.len()];
    // Each round: the clicks of one statement, by their place and their link as stored.
    let mut rounds: Vec<Vec<(usize, i16)>> = Vec::new();
    let mut seen: std::collections::HashMap<(ContentId, ContactId, u16), usize> = std::collections::HashMap::new();
    for (n, click) in clicks.iter().enumerate() {
        // No message holds that many links (a body is at most 100,000 bytes).
        let Ok(link) = i16::try_from(click.link) else { continue };
        let round = seen.entry((click.campaign, click.contact, click.link)).or_insert(0);
        match rounds.get_mut(*round) {
            Some(statement) => statement.push((n, link)),
            None => rounds.push(vec![(n, link)]),
        }
        *round += 1;
    }
    for round in rounds {
        let column = |f: fn(&Clicked) -> uuid::Uuid| round.iter().map(|&(n, _)| f(&clicks[n])).collect::<Vec<_>>();
        let links: Vec<i16> = round.iter().map(|&(_, link)| link).collect();
        let at: Vec<DateTime<Utc>> = round.iter().map(|&(n, _)| clicks[n].at).collect();
        let written: Vec<(uuid::Uuid, uuid::Uuid, i16)> = sqlx::query_as(&format!(
            "insert into app.campaign_clicks as k
                    (organization_id, campaign_id, contact_id, link, first_at, last_at, clicks)
             select m.organization_id, m.campaign_id, m.contact_id, r.link, r.at, r.at, 1
               from unnest($2::uuid[], $3::uuid[], $4::int2[], $5::timestamptz[]) as r(campaign_id, contact_id, link, at)
               {MESSAGE}
              where m.state = 'sent'
             on conflict (organization_id, campaign_id, contact_id, link)
             do update set clicks = k.clicks + 1, last_at = greatest(k.last_at, excluded.last_at)
             returning campaign_id, contact_id, link"
        ))
        .bind(tx.org().as_uuid())
        .bind(column(|c| c.campaign.as_uuid()))
        .bind(column(|c| c.contact.as_uuid()))
        .bind(links)
        .bind(at)
        .fetch_all(tx.conn())
        .await?;
        for written in written {
            let found = round
                .iter()
                .find(|&&(n, link)| (clicks[n].campaign.as_uuid(), clicks[n].contact.as_uuid(), link) == written);
            if let Some(&(n, _)) = found {
                recorded[n] = true;
            }
        }
    }
    Ok(recorded)
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
