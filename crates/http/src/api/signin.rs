//! Signing up and signing in: registration, email verification, login with an optional second
//! step, logout, and password reset. None of these answers says whether an address has an
//! account.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::registration;
use crate::app::session::{self, SessionView};
use crate::app::signin::{self, PasswordStep};
use crate::extract::{ApiJson, Authenticated, Client};
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(login))
        .routes(routes!(login_two_factor))
        .routes(routes!(logout))
        .routes(routes!(request_password_reset))
        .routes(routes!(reset_password))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    email: String,
    /// 12 to 256 characters, not a common password and not the address.
    #[schema(value_type = String, format = Password, min_length = 12, max_length = 256)]
    password: SecretString,
}

/// A sign-in: the credentials, and the device token an earlier sign-in to this account gave
/// this client (browsers send it as a cookie instead).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    /// From an earlier sign-in's `device_token`: this client's failures then count against its
    /// own budget, and failures from elsewhere do not slow it down.
    #[schema(value_type = Option<String>)]
    device_token: Option<SecretString>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailOnly {
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenOnly {
    /// The token from the emailed link.
    #[schema(value_type = String)]
    token: SecretString,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    #[schema(value_type = String)]
    token: SecretString,
    /// 12 to 256 characters, not a common password and not the address.
    #[schema(value_type = String, format = Password, min_length = 12, max_length = 256)]
    new_password: SecretString,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondStep {
    /// The challenge from the password step.
    #[schema(value_type = String)]
    challenge: SecretString,
    /// A 6-digit code from the authenticator app.
    #[schema(example = "123456", pattern = "^[0-9]{6}$")]
    code: Option<String>,
    /// Instead of `code`: one of the recovery codes, each good once.
    #[schema(value_type = Option<String>)]
    recovery_code: Option<SecretString>,
}

/// What happened, in one word.
#[derive(Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "accepted")]
    status: &'static str,
}

const ACCEPTED: Status = Status { status: "accepted" };

#[derive(Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LoginOutcome {
    /// Signed in: here is the session, and a device token for later sign-ins from this client
    /// (also set as the `__Host-mos_device` cookie).
    Authenticated { session: SessionView, device_token: String },
    /// The password was right and two-factor is on: complete with `POST /v1/auth/login/two-factor`
    /// (a code or a recovery code), or, when `passkey` is true, with a passkey
    /// (`POST /v1/auth/login/passkey/options`, then `POST /v1/auth/login/passkey`).
    TwoFactorRequired { challenge: String, expires_at: DateTime<Utc>, passkey: bool },
}

/// Register an account.
///
/// Always answers 202, whether or not the address has an account already: the mailbox owner
/// gets either a verification link or a note that someone tried to register again. At most
/// three mails an hour go to one address, counting registrations, resends and resets; beyond
/// that the answer is the same and no mail goes out.
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = Credentials,
    responses(
        (status = 202, body = Status, description = "Check your email"),
        (status = 422, description = "Invalid email, or password refused by the policy (12 to 256 characters, not a common password)"),
    ))]
async fn register(
    State(state): State<AppState>,
    Client(source): Client,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<Status>), ApiError> {
    registration::register(&state, &source, &body.email, body.password).await?;
    Ok((StatusCode::ACCEPTED, Json(ACCEPTED)))
}

/// Verify an email address with the token from the emailed link.
#[utoipa::path(post, path = "/v1/auth/verify-email", tag = "auth", request_body = TokenOnly,
    responses(
        (status = 200, body = Status, description = "Verified; you can sign in"),
        (status = 400, description = "Invalid, expired or used token"),
        (status = 429, description = "Too many attempts from this address"),
    ))]
async fn verify_email(
    State(state): State<AppState>,
    Client(source): Client,
    ApiJson(body): ApiJson<TokenOnly>,
) -> Result<Json<Status>, ApiError> {
    registration::verify_email(&state, &source, &body.token).await?;
    Ok(Json(Status { status: "verified" }))
}

/// Send a fresh verification link; older links stop working.
///
/// Always answers 202; only an unverified account gets a message, and none beyond three mails
/// an hour to the address.
#[utoipa::path(post, path = "/v1/auth/verify-email/resend", tag = "auth", request_body = EmailOnly,
    responses(
        (status = 202, body = Status, description = "If the address needs verifying, a new link is on its way"),
    ))]
async fn resend_verification(
    State(state): State<AppState>,
    Client(source): Client,
    ApiJson(body): ApiJson<EmailOnly>,
) -> Result<(StatusCode, Json<Status>), ApiError> {
    registration::resend_verification(&state, &source, &body.email).await?;
    Ok((StatusCode::ACCEPTED, Json(ACCEPTED)))
}

/// Sign in with email and password.
///
/// An unknown address and a wrong password get the same answer after the same work. With
/// two-factor on, the answer is a short-lived challenge instead of a session.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = SignIn,
    responses(
        (status = 200, body = LoginOutcome, description = "Signed in (also sets the session cookie), or a two-factor challenge"),
        (status = 401, description = "Email or password is incorrect"),
        (status = 403, description = "Email address not verified yet"),
        (status = 429, description = "Too many failed attempts; see Retry-After"),
    ))]
async fn login(
    State(state): State<AppState>,
    Client(source): Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    let device_token =
        body.device_token.or_else(|| crate::extract::cookie_value(&headers, crate::extract::DEVICE_COOKIE));
    match signin::password(&state, &source, &body.email, body.password, device_token).await? {
        PasswordStep::SignedIn(signed) => Ok(signed_in(signed)),
        PasswordStep::TwoFactorRequired { challenge, expires_at, passkey } => {
            Ok(Json(LoginOutcome::TwoFactorRequired { challenge, expires_at, passkey }).into_response())
        }
    }
}

/// The answer to a completed sign-in: the session, and a fresh device token for the account,
/// also as cookies.
pub fn signed_in(signed: signin::SignedIn) -> Response {
    let device = session::device_cookie(&signed.device_token);
    let device_token = signed.device_token;
    let mut response =
        signed.issued.respond_with(StatusCode::OK, |session| LoginOutcome::Authenticated { session, device_token });
    response.headers_mut().append(header::SET_COOKIE, device);
    response
}

/// Complete a sign-in with a TOTP code or a recovery code.
///
/// A challenge takes at most five attempts; a TOTP code is good once.
#[utoipa::path(post, path = "/v1/auth/login/two-factor", tag = "auth", request_body = SecondStep,
    responses(
        (status = 200, body = LoginOutcome, description = "Signed in; also sets the session cookie"),
        (status = 401, description = "Wrong code (`invalid_code`), a code already used (`code_reused`: wait for the next one), or the challenge is invalid, expired or out of attempts"),
        (status = 429, description = "Too many failed attempts; see Retry-After"),
    ))]
async fn login_two_factor(
    State(state): State<AppState>,
    Client(source): Client,
    ApiJson(body): ApiJson<SecondStep>,
) -> Result<Response, ApiError> {
    let signed =
        signin::second_factor(&state, &source, &body.challenge, body.code.as_deref(), body.recovery_code.as_ref())
            .await?;
    Ok(signed_in(signed))
}

/// Sign out: ends this session and clears the cookie.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "Signed out"),
    ))]
async fn logout(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
) -> Result<Response, ApiError> {
    signin::sign_out(&state, auth, &source).await?;
    Ok((StatusCode::NO_CONTENT, [session::clear_cookie()]).into_response())
}

/// Ask for a password-reset link, valid for one hour.
///
/// Always answers 202; only an existing account gets a message, and none beyond three mails an
/// hour to the address.
#[utoipa::path(post, path = "/v1/auth/password-reset", tag = "auth", request_body = EmailOnly,
    responses(
        (status = 202, body = Status, description = "If the address has an account, a link is on its way"),
    ))]
async fn request_password_reset(
    State(state): State<AppState>,
    Client(source): Client,
    ApiJson(body): ApiJson<EmailOnly>,
) -> Result<(StatusCode, Json<Status>), ApiError> {
    registration::request_password_reset(&state, &source, &body.email).await?;
    Ok((StatusCode::ACCEPTED, Json(ACCEPTED)))
}

/// Set a new password with the token from the emailed link. Ends every session and lifts a
/// lockout.
#[utoipa::path(post, path = "/v1/auth/password-reset/confirm", tag = "auth", request_body = PasswordReset,
    responses(
        (status = 204, description = "Password changed; sign in again"),
        (status = 400, description = "Invalid, expired or used token"),
        (status = 422, description = "Password refused by the policy; the token stays valid"),
        (status = 429, description = "Too many attempts from this address"),
    ))]
async fn reset_password(
    State(state): State<AppState>,
    Client(source): Client,
    ApiJson(body): ApiJson<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    registration::reset_password(&state, &source, &body.token, body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}
