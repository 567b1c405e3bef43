//! Outgoing webhooks (docs/webhooks.md): an organization's endpoints, their signing secrets and
//! their deliveries. A secret is generated here, handed to the repository only to be sealed, and
//! returned once to the member who created or rotated it; no other answer carries it.

use mos_db::webhooks::{self, Delivery, NewWebhook, Webhook};
use mos_domain::webhooks::EventType;
use mos_domain::WebhookId;
use secrecy::SecretString;

use crate::access::{Authorized, ManageWebhooks};
use crate::webhooks::{check_url, new_secret};
use crate::{ApiError, AppState};

/// The deliveries an endpoint's page shows.
const RECENT_DELIVERIES: i64 = 50;

fn parse_id(id: &str) -> Result<WebhookId, ApiError> {
    WebhookId::parse(id).map_err(|_| ApiError::NotFound)
}

/// An endpoint as a door received it, before parsing.
pub struct WebhookInput<'a> {
    pub url: &'a str,
    pub events: &'a [String],
    pub description: Option<&'a str>,
}

fn events(names: &[String]) -> Result<Vec<EventType>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::Invalid { field: "events", message: "choose at least one event type".into() });
    }
    names
        .iter()
        .map(|n| {
            EventType::parse(n.trim()).ok_or_else(|| ApiError::Invalid {
                field: "events",
                message: format!(
                    "not an event type; the types are {}",
                    EventType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
                ),
            })
        })
        .collect()
}

/// A new endpoint and its secret, shown this once.
pub struct Created {
    pub webhook: Webhook,
    pub secret: SecretString,
}

/// Subscribes an endpoint to event types, enabled, with a new signing secret.
pub async fn create(
    state: &AppState,
    auth: Authorized<ManageWebhooks>,
    input: &WebhookInput<'_>,
) -> Result<Created, ApiError> {
    let events = events(input.events)?;
    let description = input.description.map(str::trim).filter(|d| !d.is_empty());
    if description.is_some_and(|d| d.chars().count() > 200) {
        return Err(ApiError::Invalid { field: "description", message: "at most 200 characters".into() });
    }
    let url = check_url(input.url, &state.settings.webhooks)
        .await
        .map_err(|e| ApiError::Invalid { field: "url", message: e.to_string() })?;
    let (secret, key) = new_secret();
    let mut tx = auth.tx;
    let new = NewWebhook { url: url.as_str(), events: &events, description };
    let id = webhooks::create(&mut tx, &state.sealer, &new, &key, auth.session.user, state.clock.now(), &auth.source)
        .await?;
    let webhook = webhooks::get(&mut tx, id).await?.ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    state.wake_jobs();
    Ok(Created { webhook, secret })
}

/// The organization's endpoints, oldest first.
pub async fn list(auth: &mut Authorized<ManageWebhooks>) -> Result<Vec<Webhook>, ApiError> {
    Ok(webhooks::list(&mut auth.tx).await?)
}

/// An endpoint and its most recent deliveries, newest first.
pub async fn get(auth: &mut Authorized<ManageWebhooks>, id: &str) -> Result<(Webhook, Vec<Delivery>), ApiError> {
    let id = parse_id(id)?;
    let webhook = webhooks::get(&mut auth.tx, id).await?.ok_or(ApiError::NotFound)?;
    let deliveries = webhooks::deliveries(&mut auth.tx, id, RECENT_DELIVERIES).await?;
    Ok((webhook, deliveries))
}

/// Enables or disables an endpoint. A disabled endpoint is sent nothing and no new events are
/// written for it; the events still pending for it wait until it is enabled again.
pub async fn set_enabled(
    state: &AppState,
    auth: Authorized<ManageWebhooks>,
    id: &str,
    enabled: bool,
) -> Result<Webhook, ApiError> {
    let id = parse_id(id)?;
    let mut tx = auth.tx;
    let webhook = webhooks::set_enabled(&mut tx, id, enabled, auth.session.user, state.clock.now(), &auth.source)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    if enabled {
        state.wake_jobs();
    }
    Ok(webhook)
}

/// Replaces an endpoint's signing secret; the new one is shown this once, and signs every
/// attempt from now on, retries of earlier events included.
pub async fn rotate(state: &AppState, auth: Authorized<ManageWebhooks>, id: &str) -> Result<SecretString, ApiError> {
    let id = parse_id(id)?;
    let (secret, key) = new_secret();
    let mut tx = auth.tx;
    if !webhooks::rotate(&mut tx, &state.sealer, id, &key, auth.session.user, state.clock.now(), &auth.source).await? {
        return Err(ApiError::NotFound);
    }
    tx.commit().await?;
    Ok(secret)
}
