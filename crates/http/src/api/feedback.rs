//! Delivery feedback posted over HTTP (docs/sending.md, "Delivery feedback over HTTP"): a raw
//! DSN or ARF report from a relay, Postmark's webhooks, and Amazon SES notifications through
//! Amazon SNS. Each takes a feedback credential (`mos feedback credential create`), as a bearer
//! token or as the password of HTTP Basic authentication, which is what both providers can send
//! (a user and password in the webhook's address). What was reported is recorded exactly as
//! `mos feedback ingest` records it: matched by the original's ids, never by an address.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::Json;
use data_encoding::BASE64;
use mos_db::feedback::credentials;
use mos_mail::feedback::{postmark, ses};
use secrecy::SecretString;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::extract::{bearer_token, Client};
use crate::feedback::{IngestError, Ingested, MAX_REPORT_BYTES};
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(report))
        .routes(routes!(postmark_webhook))
        .routes(routes!(ses_notification))
        .layer(DefaultBodyLimit::max(MAX_REPORT_BYTES))
}

/// A relay or provider that presented a live feedback credential.
pub struct FeedbackCaller;

impl FromRequestParts<AppState> for FeedbackCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token =
            bearer_token(&parts.headers).or_else(|| basic_password(parts)).ok_or(ApiError::FeedbackCredential)?;
        let hash = mos_auth::token::hash_presented(&token).ok_or(ApiError::FeedbackCredential)?;
        let mut lookup = state.pool.begin_lookup().await?;
        let live = credentials::authenticate(&mut lookup, &hash).await?;
        lookup.commit().await?;
        live.map(|_| FeedbackCaller).ok_or(ApiError::FeedbackCredential)
    }
}

/// The password of `Authorization: Basic` (whatever the user name).
fn basic_password(parts: &Parts) -> Option<SecretString> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim_start().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64.decode(encoded.trim().as_bytes()).ok()?).ok()?;
    let (_user, password) = decoded.split_once(':')?;
    Some(SecretString::from(password.to_owned()))
}

#[derive(Serialize, ToSchema)]
pub struct Received {
    /// `recorded`; `recorded_before` (the same feedback again: nothing changed); `ignored` (it
    /// says nothing to record, such as an ARF not-spam report or an auto-reply); or
    /// `subscription_confirmed` (an SNS subscription confirmation).
    #[schema(example = "recorded")]
    result: &'static str,
}

/// A delivery status notification (RFC 3464) or an abuse report (RFC 5965), the whole message.
///
/// Matched to the message sent by the returned original's Feedback-ID and Message-ID; a hard
/// bounce or a complaint suppresses the address. A report that is malformed, names no message
/// of ours, or a message the organization never handed over is refused with the reason, and
/// changes nothing.
#[utoipa::path(post, path = "/v1/feedback/reports", tag = "feedback",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The report as received (a `message/rfc822` message, whatever `Content-Type` says), at most 2 MiB"),
    responses(
        (status = 200, body = Received),
        (status = 422, description = "Refused, with the reason; nothing was recorded"),
        (status = 503, description = "The database did not answer, or the message's hand-over is not recorded yet; send it again later"),
    ))]
async fn report(
    State(state): State<AppState>,
    _caller: FeedbackCaller,
    Client(source): Client,
    body: Bytes,
) -> Result<Json<Received>, ApiError> {
    let report = mos_mail::feedback::parse(&body).map_err(IngestError::from)?;
    received(&state, &source, Some(&report)).await
}

/// Postmark's bounce, spam complaint and delivery webhooks.
///
/// Matched by the metadata every message sent here carries (`mos-feedback-id`,
/// `mos-message`), which Postmark returns; a webhook without it is refused.
#[utoipa::path(post, path = "/v1/feedback/postmark", tag = "feedback",
    request_body(content = serde_json::Value, content_type = "application/json", description = "The webhook as Postmark sends it"),
    responses(
        (status = 200, body = Received),
        (status = 422, description = "Refused, with the reason; nothing was recorded"),
        (status = 503, description = "The database did not answer, or the message's hand-over is not recorded yet; Postmark sends it again later"),
    ))]
async fn postmark_webhook(
    State(state): State<AppState>,
    _caller: FeedbackCaller,
    Client(source): Client,
    body: Bytes,
) -> Result<Json<Received>, ApiError> {
    let report = postmark::parse(&body).map_err(IngestError::from)?;
    received(&state, &source, report.as_ref()).await
}

/// Amazon SES notifications (bounce, complaint, delivery, delivery delay) through an Amazon
/// SNS HTTPS subscription.
///
/// The SNS message's signature is checked with SNS's certificate, and its topic must be one
/// the server is configured to take (`MOS_FEEDBACK_SES_TOPICS`). A subscription confirmation of
/// such a topic is confirmed. The notification must return the original message's headers
/// ("Include original headers" on the SES identity).
#[utoipa::path(post, path = "/v1/feedback/ses", tag = "feedback",
    request_body(content = serde_json::Value, content_type = "text/plain", description = "The SNS message, JSON as SNS posts it"),
    responses(
        (status = 200, body = Received),
        (status = 422, description = "Refused, with the reason (a forged or unverifiable message, another topic): nothing was recorded"),
        (status = 503, description = "SNS's certificate or the database could not be reached, or the message's hand-over is not recorded yet; SNS sends it again later"),
    ))]
async fn ses_notification(
    State(state): State<AppState>,
    _caller: FeedbackCaller,
    Client(source): Client,
    body: Bytes,
) -> Result<Json<Received>, ApiError> {
    let message = ses::SnsMessage::parse(&body).map_err(IngestError::from)?;
    if !state.settings.feedback_ses_topics.iter().any(|t| t == message.topic_arn()) {
        return Err(ApiError::FeedbackRefused(
            "the SNS topic is not one this server takes notifications from (MOS_FEEDBACK_SES_TOPICS)".into(),
        ));
    }
    let certificate = state.sns.get(message.certificate_url()).await.map_err(|e| ApiError::Unavailable(Box::new(e)))?;
    message.verify(&certificate, state.clock.now()).map_err(IngestError::from)?;
    match message.kind() {
        ses::Kind::SubscriptionConfirmation => {
            let url = message.subscribe_url().ok_or(ApiError::FeedbackRefused(
                "the subscription confirmation's SubscribeURL is not an https address of Amazon SNS".into(),
            ))?;
            let confirmed = state.sns.client().get(url).send().await.and_then(|r| r.error_for_status());
            confirmed.map_err(|e| ApiError::Unavailable(Box::new(e)))?;
            tracing::info!(topic = message.topic_arn(), "SNS subscription for SES feedback confirmed");
            Ok(Json(Received { result: "subscription_confirmed" }))
        }
        ses::Kind::UnsubscribeConfirmation => Ok(Json(Received { result: "ignored" })),
        ses::Kind::Notification => {
            let report = message.report().map_err(IngestError::from)?;
            received(&state, &source, report.as_ref()).await
        }
    }
}

/// Records a report (none: the payload says nothing to record), and mails the ADMINs' letter
/// when the organization's breaker warned or halted (the record stands whatever the mail does).
async fn received(
    state: &AppState,
    source: &mos_domain::RequestSource,
    report: Option<&mos_mail::feedback::Report>,
) -> Result<Json<Received>, ApiError> {
    let Some(report) = report else { return Ok(Json(Received { result: "ignored" })) };
    let ingested = state.feedback.ingest_report(report, state.clock.now(), source).await?;
    let result = match ingested {
        Ingested::Recorded(notice) => {
            if let Some(notice) = notice {
                if let Err(e) = notice.send(state.mailer.as_ref(), &state.settings.mail_from).await {
                    tracing::error!(error = %e, "the organization's ADMINs could not be mailed about its sending breaker");
                }
            }
            "recorded"
        }
        Ingested::Again => "recorded_before",
        Ingested::Ignored => "ignored",
    };
    Ok(Json(Received { result }))
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Db(e) => e.into(),
            IngestError::NotYet => ApiError::FeedbackEarly,
            lost @ IngestError::Lost(_) => ApiError::Internal(Box::new(lost)),
            refused => ApiError::FeedbackRefused(refused.to_string()),
        }
    }
}
