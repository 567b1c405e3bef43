//! The public double opt-in sign-up of an organization, for clients of people with no account
//! (an organization's own web site): the form of a purpose, the sign-up, and its confirmation
//! with the mailed token. No session; answers never say what the organization knows of an
//! address.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::signup::{self, Confirmation, Request};
use crate::extract::{ApiJson, Client};
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(form)).routes(routes!(sign_up)).routes(routes!(confirm))
}

/// A purpose's sign-up form: what to show the person before they agree.
#[derive(Serialize, ToSchema)]
pub struct SignupFormView {
    /// The organization's name.
    #[schema(example = "Acme Health")]
    organization: String,
    #[schema(value_type = String, format = Uuid)]
    purpose: String,
    #[schema(example = "Monthly newsletter")]
    purpose_name: String,
    /// The current notice's text, to show as it is.
    notice: String,
    /// Its SHA-256 (hex), to send back with the sign-up.
    #[schema(example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    notice_sha256: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// The purpose's id, from its form.
    #[schema(value_type = String, format = Uuid)]
    purpose: String,
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    email: String,
    /// The SHA-256 of the notice shown, from the form; it must be the current one.
    notice_sha256: String,
    /// The person agreed to the notice; must be `true`.
    consent: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// The token from the mailed link.
    #[schema(value_type = String)]
    token: SecretString,
}

/// What happened, in one word.
#[derive(Serialize, ToSchema)]
pub struct SignupStatus {
    #[schema(example = "accepted")]
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Confirmed {
    #[schema(example = "confirmed")]
    status: &'static str,
    #[schema(example = "Acme Health")]
    organization: String,
    #[schema(example = "Monthly newsletter")]
    purpose_name: String,
}

/// The sign-up form of one of an organization's purposes.
///
/// Not found for an unknown organization or purpose, one without a published notice, and one
/// that needs a HIPAA authorization (its elements are not collected by a sign-up form).
#[utoipa::path(get, path = "/v1/public/orgs/{slug}/signup/{purpose}", tag = "signup",
    params(("slug" = String, Path), ("purpose" = String, Path, description = "The purpose's id")),
    responses(
        (status = 200, body = SignupFormView),
        (status = 404, description = "No such organization, or no sign-up form for this purpose"),
    ))]
async fn form(
    State(state): State<AppState>,
    Path((slug, purpose)): Path<(String, String)>,
) -> Result<Json<SignupFormView>, ApiError> {
    let form = signup::form(&state, &slug, &purpose).await?;
    Ok(Json(SignupFormView {
        organization: form.organization,
        purpose: form.purpose.to_string(),
        purpose_name: form.purpose_name,
        notice: form.notice_text,
        notice_sha256: form.notice.to_string(),
    }))
}

/// Sign up for a purpose: a confirmation link is mailed to the address.
///
/// Always 202 with the same body, whether the address is new to the organization, a contact
/// already, suppressed, or past its mail limit (three mails an hour to one address): only the
/// mailbox learns anything. Nothing counts as consent until the link is followed.
#[utoipa::path(post, path = "/v1/public/orgs/{slug}/signup", tag = "signup", request_body = SignupRequest,
    params(("slug" = String, Path)),
    responses(
        (status = 202, body = SignupStatus, description = "If the address may get mail, a confirmation link is on its way"),
        (status = 404, description = "No such organization, or no sign-up form for this purpose"),
        (status = 422, description = "Invalid address, an outdated notice, or consent not given; `field` names it"),
        (status = 429, description = "Too many sign-ups from this client, or from this organization's forms; see Retry-After"),
    ))]
async fn sign_up(
    State(state): State<AppState>,
    Client(source): Client,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<SignupRequest>,
) -> Result<(StatusCode, Json<SignupStatus>), ApiError> {
    let request =
        Request { purpose: &body.purpose, email: &body.email, notice: &body.notice_sha256, consent: body.consent };
    signup::sign_up(&state, &source, &slug, &request).await?;
    Ok((StatusCode::ACCEPTED, Json(SignupStatus { status: "accepted" })))
}

/// Confirm a sign-up with the token of the mailed link.
///
/// Records the confirmed consent. A token that is unknown, spent, expired or another
/// organization's changes nothing.
#[utoipa::path(post, path = "/v1/public/orgs/{slug}/signup/confirm", tag = "signup", request_body = ConfirmRequest,
    params(("slug" = String, Path)),
    responses(
        (status = 200, body = Confirmed),
        (status = 400, description = "Invalid, expired or used token"),
        (status = 429, description = "Too many attempts from this client; see Retry-After"),
    ))]
async fn confirm(
    State(state): State<AppState>,
    Client(source): Client,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<ConfirmRequest>,
) -> Result<Json<Confirmed>, ApiError> {
    let Confirmation { organization, purpose_name } = signup::confirm(&state, &source, &slug, &body.token).await?;
    Ok(Json(Confirmed { status: "confirmed", organization, purpose_name }))
}
