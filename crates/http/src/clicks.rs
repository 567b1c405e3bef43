//! A tracked link of a sent message (`/c/<token>`, docs/sending.md, "Clicks"): the token names
//! the organization, campaign, contact and which of the message's tracked links it is
//! ([`mos_auth::ClickTokens`]), and the address it leads to is read from the campaign's launched
//! version, the approved content and template, never from the request. So a link can only ever
//! lead where the approved content pointed: there is no open redirect, whatever a token or a
//! query string says. A forged or altered token costs no query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use mos_auth::ClickTokens;
use mos_db::clicks::{self, Clicked};
use mos_db::{AppPool, DbError, TenantTx};
use mos_domain::{ContentId, OrgId};
use mos_mail::{tracked_links, InputError, RenderError, Template};

use crate::batch::{self, Batches, Lost, Write};

/// Why a link leads nowhere.
#[derive(Debug, thiserror::Error)]
pub enum ClickError {
    /// Not a link this server made, or not one of a launched campaign's links.
    #[error("not a link of a sent message")]
    NotFound,
    /// The launched versions no longer parse: the database was changed behind our back.
    #[error("the launched template does not parse: {0}")]
    Template(#[from] InputError),
    #[error("the launched content does not render: {0}")]
    Content(#[from] RenderError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Lost(#[from] Lost),
}

/// The tracked links of the version `campaign` was launched on, in the order messages hold them.
async fn links(tx: &mut TenantTx, campaign: ContentId) -> Result<Option<Vec<String>>, ClickError> {
    let Some(launched) = clicks::launched(tx, campaign).await? else { return Ok(None) };
    let template = Template::new(&launched.layout)?;
    Ok(Some(tracked_links(&template, &launched.body)?))
}

/// Follows tracked links: checks their tokens, and keeps each launched campaign's tracked links
/// once read. A campaign is launched once and its launched versions never change, so every
/// click after the first one of a campaign costs neither the read of its bodies nor their
/// parse: a `HEAD` then costs no query at all, a `GET` only the click's record, which is written
/// with the other clicks that arrive meanwhile ([`crate::batch`]).
pub struct Follower {
    tokens: ClickTokens,
    pool: AppPool,
    kept: Mutex<Kept>,
    clicks: Batches<Clicks>,
}

/// Each campaign's tracked links, by organization and campaign.
type Kept = HashMap<(OrgId, ContentId), Arc<[String]>>;

/// Campaigns whose links are kept at most; past it the memory starts over, as a campaign's
/// clicks come mostly in the days after its send.
const KEPT: usize = 1024;

impl Follower {
    pub fn new(tokens: ClickTokens, pool: AppPool) -> Self {
        let clicks = Batches::new(Clicks { pool: pool.clone() });
        Self { tokens, pool, kept: Mutex::new(HashMap::new()), clicks }
    }

    /// The tokens it checks, which the messages' links carry.
    pub fn tokens(&self) -> &ClickTokens {
        &self.tokens
    }

    /// Where the link of `token` leads, recording the click at `now` when `count` is set (a
    /// `HEAD`, which link scanners send, is answered without counting). Answered once the click
    /// is committed.
    pub async fn follow(&self, token: &str, now: DateTime<Utc>, count: bool) -> Result<String, ClickError> {
        let click = self.tokens.verify(token).ok_or(ClickError::NotFound)?;
        let key = (click.organization, click.campaign);
        let kept = self.memory().get(&key).cloned();
        let links = match kept {
            Some(links) => links,
            None => {
                let mut tx = self.pool.begin_tenant(click.organization, None).await?;
                let links: Arc<[String]> = links(&mut tx, click.campaign).await?.ok_or(ClickError::NotFound)?.into();
                tx.commit().await?;
                let mut memory = self.memory();
                if memory.len() >= KEPT {
                    memory.clear();
                }
                memory.insert(key, links.clone());
                links
            }
        };
        let target = links.get(usize::from(click.link)).cloned().ok_or(ClickError::NotFound)?;
        if count {
            let clicked = Clicked { campaign: click.campaign, contact: click.contact, link: click.link, at: now };
            self.clicks.submit((click.organization, clicked)).await??;
        }
        Ok(target)
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Writes clicks, each organization's in a transaction.
struct Clicks {
    pool: AppPool,
}

impl Write for Clicks {
    type Item = (OrgId, Clicked);
    type Answer = Result<bool, ClickError>;

    async fn write(&self, items: Vec<Self::Item>) -> Vec<Self::Answer> {
        batch::by_organization(items, |org, clicks: Vec<Clicked>| async move {
            let mut tx = self.pool.begin_tenant(org, None).await?;
            let recorded = clicks::record_all(&mut tx, &clicks).await?;
            tx.commit().await?;
            Ok(recorded)
        })
        .await
    }
}

/// How often one of a campaign's links was followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClicks {
    /// Where it leads, as the approved content says.
    pub address: String,
    /// Recipients who followed it.
    pub unique: i64,
    /// Times it was followed in all.
    pub total: i64,
}

/// Each tracked link of a launched campaign with its clicks, in the order messages hold them
/// (none before the launch): a row of counts per link, never the clicks themselves.
pub async fn report(tx: &mut TenantTx, campaign: ContentId) -> Result<Vec<LinkClicks>, ClickError> {
    let Some(links) = links(tx, campaign).await? else { return Ok(Vec::new()) };
    let tallies = clicks::tallies(tx, campaign).await?;
    Ok(links
        .into_iter()
        .enumerate()
        .map(|(n, address)| {
            let tally = tallies.iter().find(|t| usize::from(t.link) == n);
            LinkClicks { address, unique: tally.map_or(0, |t| t.unique), total: tally.map_or(0, |t| t.total) }
        })
        .collect())
}
