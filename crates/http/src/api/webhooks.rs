//! Webhooks under `/v1/orgs/{slug}/webhooks`: subscribe an endpoint to events (the answer holds
//! its signing secret, this once), list, show with recent deliveries, disable, enable, rotate
//! the secret. Adapters over `app::webhooks`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use mos_db::webhooks::{Delivery, Webhook};
use mos_domain::WebhookId;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Authorized, ManageWebhooks};
use crate::app::webhooks::{self as app, WebhookInput};
use crate::extract::ApiJson;
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook))
        .routes(routes!(disable_webhook))
        .routes(routes!(enable_webhook))
        .routes(routes!(rotate_webhook_secret))
}

/// An endpoint; never its secret.
#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    #[schema(value_type = uuid::Uuid)]
    id: WebhookId,
    #[schema(example = "https://hooks.example.com/marketing-os")]
    url: String,
    /// The event types it receives.
    #[schema(example = json!(["message.sent", "message.bounced"]))]
    events: Vec<String>,
    description: Option<String>,
    enabled: bool,
    /// While disabled: `member` (a member disabled it) or `failures` (too many failed attempts
    /// in a row).
    disabled_reason: Option<String>,
    /// Failed attempts since the last delivered one.
    consecutive_failures: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Webhook> for WebhookView {
    fn from(w: Webhook) -> Self {
        Self {
            id: w.id,
            url: w.url,
            events: w.events,
            description: w.description,
            enabled: w.enabled,
            disabled_reason: w.disabled_reason,
            consecutive_failures: w.consecutive_failures,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhookListView {
    /// Oldest first.
    items: Vec<WebhookView>,
}

/// The organization's endpoints.
#[utoipa::path(get, path = "/v1/orgs/{slug}/webhooks", tag = "webhooks",
    params(("slug" = String, Path)),
    responses((status = 200, body = WebhookListView)))]
async fn list_webhooks(mut auth: Authorized<ManageWebhooks>) -> Result<Json<WebhookListView>, ApiError> {
    let rows = app::list(&mut auth).await?;
    auth.commit().await?;
    Ok(Json(WebhookListView { items: rows.into_iter().map(Into::into).collect() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookBody {
    /// An https URL whose host is, and resolves only to, public addresses.
    #[schema(example = "https://hooks.example.com/marketing-os", min_length = 8, max_length = 2000)]
    url: String,
    /// One or more of `message.sent`, `message.delivered`, `message.bounced`,
    /// `message.complained`, `message.clicked`, `contact.unsubscribed`, `consent.changed`.
    #[schema(example = json!(["message.sent", "message.bounced"]), min_items = 1)]
    events: Vec<String>,
    #[schema(max_length = 200)]
    description: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedView {
    webhook: WebhookView,
    /// The signing secret (`whsec_` and base64), shown this once: store it now. Only a rotation
    /// replaces it.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: String,
}

/// Subscribe an endpoint to event types. Each event is posted to it signed as the Standard
/// Webhooks specification says, with the secret in this answer.
#[utoipa::path(post, path = "/v1/orgs/{slug}/webhooks", tag = "webhooks", request_body = NewWebhookBody,
    params(("slug" = String, Path)),
    responses((status = 201, body = CreatedView), (status = 422, description = "The URL is not https, or its host is not public; an event type is unknown (`field` names it)")))]
async fn create_webhook(
    State(state): State<AppState>,
    auth: Authorized<ManageWebhooks>,
    ApiJson(body): ApiJson<NewWebhookBody>,
) -> Result<Response, ApiError> {
    let input = WebhookInput { url: &body.url, events: &body.events, description: body.description.as_deref() };
    let created = app::create(&state, auth, &input).await?;
    let view = CreatedView { webhook: created.webhook.into(), secret: created.secret.expose_secret().to_owned() };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// One event for the endpoint and how its delivery stands.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    /// The `webhook-id` every attempt carries.
    #[schema(example = "msg_0193a5b4c2d17e5f8a9b0c1d2e3f4a5b")]
    id: String,
    #[schema(example = "message.sent")]
    event_type: String,
    contact_id: Option<uuid::Uuid>,
    occurred_at: DateTime<Utc>,
    /// `pending`, `delivered` or `failed` (given up after the last attempt).
    state: String,
    attempts: i32,
    /// While pending.
    next_attempt_at: Option<DateTime<Utc>>,
    last_attempt_at: Option<DateTime<Utc>>,
    /// The endpoint's HTTP status at the last attempt, if it answered.
    last_status: Option<i16>,
    last_error: Option<String>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: format!("msg_{}", d.event_id.simple()),
            event_type: d.event_type,
            contact_id: d.contact_id,
            occurred_at: d.occurred_at,
            state: d.state,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_attempt_at: d.last_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhookDetailView {
    webhook: WebhookView,
    /// The 50 most recent events, newest first.
    deliveries: Vec<DeliveryView>,
}

/// An endpoint and its recent deliveries.
#[utoipa::path(get, path = "/v1/orgs/{slug}/webhooks/{id}", tag = "webhooks",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = WebhookDetailView)))]
async fn get_webhook(
    mut auth: Authorized<ManageWebhooks>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<WebhookDetailView>, ApiError> {
    let (webhook, deliveries) = app::get(&mut auth, &id).await?;
    auth.commit().await?;
    Ok(Json(WebhookDetailView {
        webhook: webhook.into(),
        deliveries: deliveries.into_iter().map(Into::into).collect(),
    }))
}

/// Disable an endpoint: nothing more is sent to it, and no new events are kept for it.
#[utoipa::path(post, path = "/v1/orgs/{slug}/webhooks/{id}/disable", tag = "webhooks",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = WebhookView)))]
async fn disable_webhook(
    State(state): State<AppState>,
    auth: Authorized<ManageWebhooks>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(app::set_enabled(&state, auth, &id, false).await?.into()))
}

/// Enable an endpoint again; the events still pending for it are delivered.
#[utoipa::path(post, path = "/v1/orgs/{slug}/webhooks/{id}/enable", tag = "webhooks",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = WebhookView)))]
async fn enable_webhook(
    State(state): State<AppState>,
    auth: Authorized<ManageWebhooks>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(app::set_enabled(&state, auth, &id, true).await?.into()))
}

#[derive(Serialize, ToSchema)]
pub struct SecretView {
    /// The new signing secret, shown this once.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: String,
}

/// Replace the endpoint's signing secret. Every attempt from now on is signed with the new one.
#[utoipa::path(post, path = "/v1/orgs/{slug}/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = SecretView)))]
async fn rotate_webhook_secret(
    State(state): State<AppState>,
    auth: Authorized<ManageWebhooks>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<SecretView>, ApiError> {
    let secret = app::rotate(&state, auth, &id).await?;
    Ok(Json(SecretView { secret: secret.expose_secret().to_owned() }))
}
