//! A tracked link of a sent message, as the console serves it (`crate::clicks` does the work).

use mos_db::TenantTx;
use mos_domain::ContentId;

use crate::clicks::{self, LinkClicks};
use crate::{ApiError, AppState};

/// Where the link of `token` leads, recording the click when `count` is set.
pub async fn follow(state: &AppState, token: &str, count: bool) -> Result<String, ApiError> {
    Ok(state.clicks.follow(token, state.clock.now(), count).await?)
}

/// Each tracked link of a launched campaign with its clicks.
pub async fn report(tx: &mut TenantTx, campaign: ContentId) -> Result<Vec<LinkClicks>, ApiError> {
    Ok(clicks::report(tx, campaign).await?)
}
