//! Passkeys (WebAuthn) with `webauthn-rs`: registering them after a recent sign-in (with a
//! passkey session once the account has one, and through a mailed link for the first passkey of
//! a member of an organization that requires passkeys), listing,
//! renaming and removing them, and signing in with one, as the second factor after the
//! password or without a password (a discoverable credential), and confirming a session with
//! one (step-up). Every ceremony is two requests: the options, whose server side is kept in the
//! database under a single-use handle that expires, and the authenticator's answer. A session
//! that a passkey established (or confirmed) is phishing-resistant, which an organization may
//! require.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use mos_db::passkeys::Stored;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::api::account::Restarted;
use crate::api::signin::{signed_in, LoginOutcome};
use crate::app;
use crate::app::passkeys::Started;
use crate::app::session;
use crate::app::signin;
use crate::extract::{ApiJson, Authenticated, Client};
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(passkey_registration_options))
        .routes(routes!(passkey_enrollment_link))
        .routes(routes!(passkey_policy))
        .routes(routes!(list_passkeys, register_passkey))
        .routes(routes!(rename_passkey, remove_passkey))
        .routes(routes!(passkey_second_factor_options))
        .routes(routes!(passkey_second_factor))
        .routes(routes!(passkey_sign_in_options))
        .routes(routes!(passkey_sign_in))
        .routes(routes!(passkey_reauthenticate_options))
        .routes(routes!(passkey_reauthenticate))
}

/// The options of a ceremony, for `navigator.credentials.create()` or `.get()`, and the handle
/// that finishes it.
#[derive(Serialize, ToSchema)]
pub struct Ceremony {
    /// Send back with the authenticator's answer; good once, until `expires_at`.
    ceremony: String,
    /// `{"publicKey": {...}}` with binary fields in base64url, as WebAuthn's JSON encoding.
    #[schema(value_type = Object)]
    options: Value,
    expires_at: DateTime<Utc>,
}

impl From<Started> for Ceremony {
    fn from(started: Started) -> Self {
        Self { ceremony: started.handle, options: started.options, expires_at: started.expires_at }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyView {
    id: uuid::Uuid,
    name: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    /// The authenticator may sync it to other devices (a synced passkey).
    backup_eligible: bool,
    /// It is synced now.
    backup_state: bool,
    transports: Vec<String>,
}

impl From<Stored> for PasskeyView {
    fn from(s: Stored) -> Self {
        Self {
            id: s.id,
            name: s.name,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            backup_eligible: s.backup_eligible,
            backup_state: s.backup_state,
            transports: s.transports,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Added {
    passkey: PasskeyView,
    /// Every other session was signed out; this one replaces the session that added it.
    session: session::SessionView,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPasskey {
    #[schema(value_type = String)]
    ceremony: SecretString,
    /// 1 to 100 characters, e.g. the device.
    #[schema(example = "Work laptop", min_length = 1, max_length = 100)]
    name: String,
    /// The `PublicKeyCredential` that `navigator.credentials.create()` returned, in WebAuthn's
    /// JSON encoding.
    #[schema(value_type = Object)]
    credential: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyName {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assertion {
    #[schema(value_type = String)]
    ceremony: SecretString,
    /// The `PublicKeyCredential` that `navigator.credentials.get()` returned, in WebAuthn's JSON
    /// encoding.
    #[schema(value_type = Object)]
    credential: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeOnly {
    /// The challenge of `POST /v1/auth/login`.
    #[schema(value_type = String)]
    challenge: SecretString,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorAssertion {
    #[schema(value_type = String)]
    challenge: SecretString,
    #[schema(value_type = String)]
    ceremony: SecretString,
    #[schema(value_type = Object)]
    credential: Value,
}

/// The user's passkeys as the relying party library takes them, with their row ids.
fn parse<T: serde::de::DeserializeOwned>(credential: Value) -> Result<T, ApiError> {
    serde_json::from_value(credential)
        .map_err(|e| ApiError::Invalid { field: "credential", message: format!("not a WebAuthn credential: {e}") })
}

/// What the user's account needs to add a passkey.
#[derive(Serialize, ToSchema)]
pub struct PasskeyPolicy {
    /// `recent_sign_in` (no passkey yet), `passkey_session` (the account has a passkey: sign in
    /// or confirm with one), or `emailed_link` (the first passkey of a member of an
    /// organization that requires passkeys: ask for a link with `POST /v1/me/passkeys/enrollment`).
    #[schema(example = "emailed_link")]
    add: &'static str,
    /// Whether this session may add or remove passkeys now as far as passkeys go (a recent
    /// sign-in is needed too).
    session_is_phishing_resistant: bool,
    /// The organizations that require passkeys, whose ADMINs are told of a first passkey.
    organizations: Vec<String>,
}

/// What adding a passkey takes for your account.
#[utoipa::path(get, path = "/v1/me/passkeys/policy", tag = "account",
    responses((status = 200, body = PasskeyPolicy)))]
async fn passkey_policy(mut auth: Authenticated) -> Result<Json<PasskeyPolicy>, ApiError> {
    let (gate, organizations) = app::passkeys::policy(&mut auth).await?;
    auth.tx.commit().await?;
    Ok(Json(PasskeyPolicy {
        add: gate.label(),
        session_is_phishing_resistant: auth.session.phishing_resistant,
        organizations,
    }))
}

/// Mail yourself a link that adds your first passkey, as a member of an organization that
/// requires passkeys. Needs a recent sign-in; the link works once, for 30 minutes, for this
/// account only, and replaces any earlier one.
#[utoipa::path(post, path = "/v1/me/passkeys/enrollment", tag = "account",
    responses(
        (status = 202, description = "The link is on its way to your address"),
        (status = 403, description = "Reauthenticate first"),
        (status = 409, description = "No link is needed: you have a passkey, or belong to no organization that requires one"),
        (status = 429, description = "Too many emails to your address"),
    ))]
async fn passkey_enrollment_link(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
) -> Result<StatusCode, ApiError> {
    app::passkeys::mail_enrollment_link(&state, auth, &source).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The optional body of `POST /v1/me/passkeys/options`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationStart {
    /// The token of the mailed enrollment link, for the first passkey of a member of an
    /// organization that requires passkeys.
    #[schema(value_type = Option<String>)]
    enrollment: Option<SecretString>,
}

/// Start adding a passkey: options for `navigator.credentials.create()`. Needs a recent sign-in;
/// with a passkey on the account, a session that a passkey signed in or confirmed; for the
/// first passkey of a member of an organization that requires passkeys, the token of the mailed
/// enrollment link.
#[utoipa::path(post, path = "/v1/me/passkeys/options", tag = "account", request_body(content = Option<RegistrationStart>),
    responses(
        (status = 200, body = Ceremony),
        (status = 400, description = "The enrollment link is invalid, expired or used"),
        (status = 403, description = "Reauthenticate first; or a passkey session is required; or the mailed enrollment link is"),
    ))]
async fn passkey_registration_options(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    body: Option<ApiJson<RegistrationStart>>,
) -> Result<Json<Ceremony>, ApiError> {
    let link = body.and_then(|ApiJson(b)| b.enrollment);
    Ok(Json(app::passkey_registration::start(&state, auth, &source, link.as_ref()).await?.into()))
}

/// Your passkeys, oldest first.
#[utoipa::path(get, path = "/v1/me/passkeys", tag = "account",
    responses((status = 200, body = Vec<PasskeyView>)))]
async fn list_passkeys(mut auth: Authenticated) -> Result<Json<Vec<PasskeyView>>, ApiError> {
    let all = app::passkeys::list(&mut auth).await?;
    auth.tx.commit().await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

/// Finish adding a passkey with the authenticator's answer. Signs out every other session and
/// mails you.
#[utoipa::path(post, path = "/v1/me/passkeys", tag = "account", request_body = NewPasskey,
    responses(
        (status = 201, body = Added, description = "Added; the new session replaces the old one (cookie set too)"),
        (status = 401, description = "The ceremony is invalid, expired or used, or the authenticator's answer does not verify"),
        (status = 400, description = "The enrollment link is invalid, expired or used"),
        (status = 403, description = "Reauthenticate first; or a passkey session is required; or the mailed enrollment link is"),
        (status = 409, description = "This passkey is registered already"),
    ))]
async fn register_passkey(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    ApiJson(body): ApiJson<NewPasskey>,
) -> Result<Response, ApiError> {
    let credential: RegisterPublicKeyCredential = parse(body.credential)?;
    let (added, issued) =
        app::passkey_registration::finish(&state, auth, &source, &body.ceremony, &body.name, &credential).await?;
    Ok(issued.respond_with(StatusCode::CREATED, |session| Added { passkey: added.into(), session }))
}

/// Rename one of your passkeys.
#[utoipa::path(patch, path = "/v1/me/passkeys/{id}", tag = "account", request_body = PasskeyName,
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 204, description = "Renamed"),
        (status = 404, description = "No such passkey of yours"),
    ))]
async fn rename_passkey(
    Client(source): Client,
    auth: Authenticated,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PasskeyName>,
) -> Result<StatusCode, ApiError> {
    app::passkeys::rename(auth, &source, &id, &body.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove one of your passkeys. Needs a recent sign-in in a session that a passkey signed in or
/// confirmed; signs out every other session and mails you. Your password and two-factor (or
/// recovery codes) still sign you in.
#[utoipa::path(delete, path = "/v1/me/passkeys/{id}", tag = "account",
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = Restarted, description = "Removed; the new session replaces the old one (cookie set too)"),
        (status = 403, description = "Reauthenticate first, or a passkey session is required"),
        (status = 404, description = "No such passkey of yours"),
    ))]
async fn remove_passkey(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let issued = app::passkeys::remove(&state, auth, &source, &id).await?;
    Ok(issued.respond_with(StatusCode::OK, |session| Restarted { session }))
}

/// Options to complete a sign-in with a passkey instead of a code, after the password.
#[utoipa::path(post, path = "/v1/auth/login/passkey/options", tag = "auth", request_body = ChallengeOnly,
    responses(
        (status = 200, body = Ceremony),
        (status = 401, description = "The sign-in challenge is invalid or expired"),
        (status = 409, description = "The account has no passkey"),
    ))]
async fn passkey_second_factor_options(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ChallengeOnly>,
) -> Result<Json<Ceremony>, ApiError> {
    Ok(Json(signin::passkey_second_factor_options(&state, &body.challenge).await?.into()))
}

/// Complete a sign-in with a passkey instead of a code. The session is phishing-resistant.
#[utoipa::path(post, path = "/v1/auth/login/passkey", tag = "auth", request_body = SecondFactorAssertion,
    responses(
        (status = 200, body = LoginOutcome, description = "Signed in; also sets the session cookie"),
        (status = 401, description = "The challenge or ceremony is invalid, expired or used, or the passkey's answer does not verify (a replayed or cloned one included)"),
    ))]
async fn passkey_second_factor(
    State(state): State<AppState>,
    Client(source): Client,
    ApiJson(body): ApiJson<SecondFactorAssertion>,
) -> Result<Response, ApiError> {
    let credential: PublicKeyCredential = parse(body.credential)?;
    let signed = signin::passkey_second_factor(&state, &source, &body.challenge, &body.ceremony, &credential).await?;
    Ok(signed_in(signed))
}

/// Options for signing in with a passkey alone: the authenticator offers the accounts it holds
/// for this site.
#[utoipa::path(post, path = "/v1/auth/passkey/options", tag = "auth",
    responses(
        (status = 200, body = Ceremony),
        (status = 429, description = "Too many attempts from this address"),
    ))]
async fn passkey_sign_in_options(
    State(state): State<AppState>,
    Client(source): Client,
) -> Result<Json<Ceremony>, ApiError> {
    Ok(Json(signin::passkey_alone_options(&state, &source).await?.into()))
}

/// Sign in with a passkey alone. The session is phishing-resistant.
#[utoipa::path(post, path = "/v1/auth/passkey", tag = "auth", request_body = Assertion,
    responses(
        (status = 200, body = LoginOutcome, description = "Signed in; also sets the session cookie"),
        (status = 401, description = "The ceremony is invalid, expired or used, or the passkey's answer does not verify (a replayed or cloned one included)"),
    ))]
async fn passkey_sign_in(
    State(state): State<AppState>,
    Client(source): Client,
    ApiJson(body): ApiJson<Assertion>,
) -> Result<Response, ApiError> {
    let credential: PublicKeyCredential = parse(body.credential)?;
    Ok(signed_in(signin::passkey_alone(&state, &source, &body.ceremony, &credential).await?))
}

/// Options to confirm it is you with a passkey, for changes that need a recent sign-in.
#[utoipa::path(post, path = "/v1/me/reauthenticate/passkey/options", tag = "account",
    responses(
        (status = 200, body = Ceremony),
        (status = 409, description = "You have no passkey"),
    ))]
async fn passkey_reauthenticate_options(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Ceremony>, ApiError> {
    Ok(Json(app::passkeys::reauthenticate_options(&state, auth).await?.into()))
}

/// Confirm it is you with a passkey: the session counts as a recent sign-in, and as
/// phishing-resistant from now on.
#[utoipa::path(post, path = "/v1/me/reauthenticate/passkey", tag = "account", request_body = Assertion,
    responses(
        (status = 204, description = "Confirmed"),
        (status = 401, description = "The ceremony is invalid, expired or used, or the passkey's answer does not verify"),
    ))]
async fn passkey_reauthenticate(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    ApiJson(body): ApiJson<Assertion>,
) -> Result<StatusCode, ApiError> {
    let credential: PublicKeyCredential = parse(body.credential)?;
    app::passkeys::reauthenticate(&state, auth, &source, &body.ceremony, &credential).await?;
    Ok(StatusCode::NO_CONTENT)
}
