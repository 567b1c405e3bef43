//! A tracked link of a sent message (`/c/<token>`, docs/sending.md, "Clicks"): the token names
//! the organization, campaign, contact and which of the message's tracked links it is
//! ([`mos_auth::ClickTokens`]), and the address it leads to is read from the campaign's launched
//! version, the approved content and template, never from the request. So a link can only ever
//! lead where the approved content pointed: there is no open redirect, whatever a token or a
//! query string says. A forged or altered token costs no query.

use chrono::{DateTime, Utc};
use mos_auth::ClickTokens;
use mos_db::{clicks, AppPool, DbError, TenantTx};
use mos_domain::ContentId;
use mos_mail::{tracked_links, InputError, RenderError, Template};

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
}

/// The tracked links of the version `campaign` was launched on, in the order messages hold them.
async fn links(tx: &mut TenantTx, campaign: ContentId) -> Result<Option<Vec<String>>, ClickError> {
    let Some(launched) = clicks::launched(tx, campaign).await? else { return Ok(None) };
    let template = Template::new(&launched.layout)?;
    Ok(Some(tracked_links(&template, &launched.body)?))
}

/// Where the link of `token` leads, recording the click at `now` when `count` is set (a `HEAD`,
/// which link scanners send, is answered without counting).
pub async fn follow(
    pool: &AppPool,
    tokens: &ClickTokens,
    token: &str,
    now: DateTime<Utc>,
    count: bool,
) -> Result<String, ClickError> {
    let click = tokens.verify(token).ok_or(ClickError::NotFound)?;
    let mut tx = pool.begin_tenant(click.organization, None).await?;
    let links = links(&mut tx, click.campaign).await?.ok_or(ClickError::NotFound)?;
    let target = links.into_iter().nth(usize::from(click.link)).ok_or(ClickError::NotFound)?;
    if count {
        clicks::record(&mut tx, click.campaign, click.contact, click.link, now).await?;
    }
    tx.commit().await?;
    Ok(target)
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
