//! The signed-in user's own account: profile, sessions, password, two-factor, and the
//! platform-scope audit events about them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::audit::Record;
use crate::app::account;
use crate::app::session::SessionView;
use crate::extract::{ApiJson, Authenticated, Client};
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(reauthenticate))
        .routes(routes!(change_password))
        .routes(routes!(start_two_factor))
        .routes(routes!(confirm_two_factor))
        .routes(routes!(disable_two_factor))
        .routes(routes!(my_events))
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    id: uuid::Uuid,
    email: String,
    email_verified_at: Option<DateTime<Utc>>,
    two_factor_enabled: bool,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionSummary {
    id: uuid::Uuid,
    created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    #[schema(value_type = Option<String>)]
    ip: Option<std::net::IpAddr>,
    user_agent: Option<String>,
    /// The session this request came with.
    current: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    /// Required when two-factor is on (or `recovery_code`).
    code: Option<String>,
    #[schema(value_type = Option<String>)]
    recovery_code: Option<SecretString>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(value_type = String, format = Password)]
    current_password: SecretString,
    /// 12 to 256 characters, not a common password and not the address.
    #[schema(value_type = String, format = Password, min_length = 12, max_length = 256)]
    new_password: SecretString,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeOnly {
    #[schema(example = "123456", pattern = "^[0-9]{6}$")]
    code: String,
}

#[derive(Serialize, ToSchema)]
pub struct Enrollment {
    /// The secret in base32, for typing into an authenticator by hand.
    secret: String,
    otpauth_uri: String,
    /// The `otpauth_uri` as a QR code, an SVG document.
    qr_svg: String,
    expires_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct Enabled {
    /// Ten single-use codes for when the authenticator is lost. Shown only now.
    recovery_codes: Vec<String>,
    /// Every other session was signed out; this one replaces the session of the request.
    session: SessionView,
}

#[derive(Serialize, ToSchema)]
pub struct Restarted {
    /// Every other session was signed out; this one replaces the session of the request.
    pub(crate) session: SessionView,
}

/// The signed-in user.
#[utoipa::path(get, path = "/v1/me", tag = "account",
    responses(
        (status = 200, body = Me),
    ))]
async fn me(mut auth: Authenticated) -> Result<Json<Me>, ApiError> {
    let profile = account::me(&mut auth).await?;
    auth.tx.commit().await?;
    Ok(Json(Me {
        id: profile.id.as_uuid(),
        email: profile.email,
        email_verified_at: profile.email_verified_at,
        two_factor_enabled: profile.totp_enabled_at.is_some(),
        created_at: profile.created_at,
    }))
}

/// The user's live sessions, newest first.
#[utoipa::path(get, path = "/v1/me/sessions", tag = "account",
    responses(
        (status = 200, body = Vec<SessionSummary>),
    ))]
async fn list_sessions(
    State(state): State<AppState>,
    mut auth: Authenticated,
) -> Result<Json<Vec<SessionSummary>>, ApiError> {
    let listed = account::sessions(&state, &mut auth).await?;
    auth.tx.commit().await?;
    let current = auth.session.id;
    Ok(Json(
        listed
            .into_iter()
            .map(|s| SessionSummary {
                id: s.id.as_uuid(),
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                ip: s.ip,
                user_agent: s.user_agent,
                current: s.id == current,
            })
            .collect(),
    ))
}

/// End one of the user's sessions.
#[utoipa::path(delete, path = "/v1/me/sessions/{id}", tag = "account",
    params(("id" = uuid::Uuid, Path, description = "A session id from GET /v1/me/sessions")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "No such live session of yours"),
    ))]
async fn revoke_session(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    account::revoke_session(&state, auth, &source, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Prove it is still you (password, and a code when two-factor is on), so that sensitive
/// changes are allowed for the next ten minutes.
#[utoipa::path(post, path = "/v1/me/reauthenticate", tag = "account", request_body = Proof,
    responses(
        (status = 204, description = "Confirmed"),
        (status = 401, description = "Wrong password or code, or no live session"),
        (status = 429, description = "Too many failed attempts"),
    ))]
async fn reauthenticate(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    ApiJson(body): ApiJson<Proof>,
) -> Result<StatusCode, ApiError> {
    let proof = account::Proof { password: body.password, code: body.code, recovery_code: body.recovery_code };
    account::reauthenticate(&state, auth, &source, proof).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the password. Signs out every other session.
#[utoipa::path(post, path = "/v1/me/password", tag = "account", request_body = PasswordChange,
    responses(
        (status = 200, body = Restarted, description = "Changed; the new session replaces the old one (cookie set too)"),
        (status = 401, description = "Wrong current password, or no live session"),
        (status = 422, description = "New password refused by the policy"),
        (status = 429, description = "Too many failed attempts"),
    ))]
async fn change_password(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Response, ApiError> {
    let issued = account::change_password(&state, auth, &source, body.current_password, body.new_password).await?;
    Ok(issued.respond_with(StatusCode::OK, |session| Restarted { session }))
}

/// Start enrolling an authenticator app: a new secret, valid for ten minutes until confirmed.
/// Needs a recent sign-in or reauthentication.
#[utoipa::path(post, path = "/v1/me/two-factor/setup", tag = "account",
    responses(
        (status = 200, body = Enrollment),
        (status = 403, description = "Reauthenticate first"),
        (status = 409, description = "Two-factor is already on"),
    ))]
async fn start_two_factor(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
) -> Result<Json<Enrollment>, ApiError> {
    let enrollment = account::start_two_factor(&state, auth, &source).await?;
    Ok(Json(Enrollment {
        secret: enrollment.secret,
        otpauth_uri: enrollment.otpauth_uri,
        qr_svg: enrollment.qr_svg,
        expires_at: enrollment.expires_at,
    }))
}

/// Confirm the enrollment with a code from the app: turns two-factor on, returns ten recovery
/// codes, and signs out every other session.
#[utoipa::path(post, path = "/v1/me/two-factor/confirm", tag = "account", request_body = CodeOnly,
    responses(
        (status = 200, body = Enabled, description = "On; the new session replaces the old one (cookie set too)"),
        (status = 401, description = "Wrong code, or no live session"),
        (status = 403, description = "Reauthenticate first"),
        (status = 409, description = "No enrollment pending, or it expired"),
    ))]
async fn confirm_two_factor(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    ApiJson(body): ApiJson<CodeOnly>,
) -> Result<Response, ApiError> {
    let enabled = account::confirm_two_factor(&state, auth, &source, &body.code).await?;
    let recovery_codes = enabled.recovery_codes;
    Ok(enabled.issued.respond_with(StatusCode::OK, |session| Enabled { recovery_codes, session }))
}

/// Turn two-factor off. Needs the password and a current code (or a recovery code); signs out
/// every other session.
#[utoipa::path(post, path = "/v1/me/two-factor/disable", tag = "account", request_body = Proof,
    responses(
        (status = 200, body = Restarted, description = "Off; the new session replaces the old one (cookie set too)"),
        (status = 401, description = "Wrong password or code, or no live session"),
        (status = 409, description = "Two-factor is not on"),
        (status = 429, description = "Too many failed attempts"),
    ))]
async fn disable_two_factor(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    ApiJson(body): ApiJson<Proof>,
) -> Result<Response, ApiError> {
    let proof = account::Proof { password: body.password, code: body.code, recovery_code: body.recovery_code };
    let issued = account::disable_two_factor(&state, auth, &source, proof).await?;
    Ok(issued.respond_with(StatusCode::OK, |session| Restarted { session }))
}

/// The user's own account events (sign-ins, failures, two-factor and password changes),
/// newest first, at most 100.
#[utoipa::path(get, path = "/v1/me/events", tag = "account",
    responses(
        (status = 200, body = Vec<Record>),
    ))]
async fn my_events(mut auth: Authenticated) -> Result<Json<Vec<Record>>, ApiError> {
    let records = account::events(&mut auth, 100).await?;
    auth.tx.commit().await?;
    Ok(Json(records.into_iter().map(Record::from).collect()))
}
