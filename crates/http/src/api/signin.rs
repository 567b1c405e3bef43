//! Signing up and signing in: registration, email verification, login with an optional second
//! step, logout, and password reset. None of these answers says whether an address has an
//! account.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use mos_auth::{NewPassword, OneTimeToken};
use mos_db::users::{self, EmailToken};
use mos_db::{audit, sessions, DbError};
use mos_domain::{AuditEvent, Email, Outcome, UserId};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::Problem;
use crate::extract::{ApiJson, Authenticated, Client};
use crate::app::session::{self, event, SessionView};
use crate::{throttle, mail, ApiError, AppState};
use mos_domain::events::{self, SESSION};

pub const VERIFICATION_VALIDITY: Duration = Duration::hours(24);
pub const RESET_VALIDITY: Duration = Duration::hours(1);
pub const CHALLENGE_VALIDITY: Duration = Duration::minutes(5);
pub const CHALLENGE_ATTEMPTS: i32 = 5;

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

pub fn parse_email(input: &str) -> Result<Email, ApiError> {
    Email::parse(input).map_err(|e| ApiError::Invalid { field: "email", message: e.to_string() })
}

pub fn parse_new_password(password: SecretString, email: &str, field: &'static str) -> Result<NewPassword, ApiError> {
    NewPassword::parse(password, email).map_err(|e| ApiError::Invalid { field, message: e.to_string() })
}

fn link(state: &AppState, path: &str, token: &OneTimeToken) -> String {
    format!("{}{path}?token={}", state.settings.public_url, token.secret.expose_secret())
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
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Invalid email, or password refused by the policy (12 to 256 characters, not a common password)"),
    ))]
async fn register(
    State(state): State<AppState>,
    Client(source): Client,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<Status>), ApiError> {
    let email = parse_email(&body.email)?;
    let password = parse_new_password(body.password, email.as_str(), "password")?;
    let may_mail = throttle::mail(&state, &email).await?;
    // Hash before looking the address up, so both answers cost the same.
    let hash = state.hasher.hash(password.into_secret()).await?;
    let now = state.clock.now();
    if let Some(existing) = users::find_login(&state.pool, &email).await? {
        let mut tx = state.pool.begin_user(existing.user).await?;
        audit::record_platform(&mut tx, &event(events::REGISTER_DUPLICATE, &source).outcome(Outcome::Denied)).await?;
        tx.commit().await?;
        if may_mail {
            session::notify(
                &state,
                email.as_str(),
                "Someone tried to register with your address",
                "Someone tried to create a Marketing OS account with this address, which already has one. To get in, sign in or reset your password.",
            );
        }
        return Ok((StatusCode::ACCEPTED, Json(ACCEPTED)));
    }
    let user = UserId::new();
    let token = OneTimeToken::generate(&mut rand::thread_rng());
    let mut tx = state.pool.begin_user(user).await?;
    match users::insert(&mut tx, &email, &hash, None).await {
        // Registered by a concurrent request a moment ago: the same answer as above.
        Err(DbError::Conflict { .. }) => return Ok((StatusCode::ACCEPTED, Json(ACCEPTED))),
        other => other?,
    }
    users::replace_email_token(&mut tx, EmailToken::Verification, &token.hash, now, now + VERIFICATION_VALIDITY)
        .await?;
    audit::record_platform(&mut tx, &event(events::REGISTERED, &source).actor(user).resource_id(user)).await?;
    audit::record_platform(&mut tx, &event(events::VERIFICATION_SENT, &source).actor(user)).await?;
    tx.commit().await?;
    // Beyond the mail limit the account exists unverified; a resend within the next hour's
    // limit brings its link.
    if may_mail {
        send_verification(&state, &email, &token);
    }
    Ok((StatusCode::ACCEPTED, Json(ACCEPTED)))
}

fn send_verification(state: &AppState, email: &Email, token: &OneTimeToken) {
    let body = format!(
        "Welcome to Marketing OS.\n\nConfirm your email address within 24 hours:\n\n{}\n\n\
         If you did not create an account, ignore this message.\n",
        link(state, "/verify-email", token)
    );
    mail::send_later(
        &state.mailer,
        mail::letter(&state.settings.mail_from, email.as_str(), "Confirm your email address", body),
    );
}

/// Spends an emailed token and opens a transaction as its user, so that what the token unlocks
/// commits together with its spending; an unknown, spent or expired token is audited and refused.
async fn redeem(
    state: &AppState,
    kind: EmailToken,
    token: &SecretString,
    source: &mos_domain::RequestSource,
) -> Result<(mos_db::UserTx, UserId), ApiError> {
    if let Some(hash) = mos_auth::token::hash_presented(token) {
        let mut lookup = state.pool.begin_lookup().await?;
        if let Some(user) = users::redeem_email_token(&mut lookup, kind, &hash, state.clock.now()).await? {
            return Ok((lookup.into_user(user).await?, user));
        }
    }
    let action = match kind {
        EmailToken::Verification => events::VERIFICATION_FAILED,
        EmailToken::PasswordReset => events::PASSWORD_RESET_FAILED,
    };
    audit::record_platform_unattributed(&state.pool, &event(action, source).outcome(Outcome::Failure)).await?;
    Err(ApiError::InvalidToken)
}

/// Verify an email address with the token from the emailed link.
#[utoipa::path(post, path = "/v1/auth/verify-email", tag = "auth", request_body = TokenOnly,
    responses(
        (status = 200, body = Status, description = "Verified; you can sign in"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Invalid, expired or used token"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "Too many attempts from this address"),
    ))]
async fn verify_email(
    State(state): State<AppState>,
    Client(source): Client,
    ApiJson(body): ApiJson<TokenOnly>,
) -> Result<Json<Status>, ApiError> {
    throttle::attempt(&state, &throttle::address_key("verify", &source), &throttle::address()).await?;
    let (mut tx, user) = redeem(&state, EmailToken::Verification, &body.token, &source).await?;
    audit::record_platform(&mut tx, &event(events::VERIFICATION_USED, &source).actor(user)).await?;
    tx.commit().await?;
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
    let email = parse_email(&body.email)?;
    // Beyond the mail limit the link already sent stays the valid one.
    let may_mail = throttle::mail(&state, &email).await?;
    let account = users::find_login(&state.pool, &email).await?;
    if let Some(account) = account.filter(|a| may_mail && a.email_verified_at.is_none()) {
        let now = state.clock.now();
        let token = OneTimeToken::generate(&mut rand::thread_rng());
        let mut tx = state.pool.begin_user(account.user).await?;
        users::replace_email_token(&mut tx, EmailToken::Verification, &token.hash, now, now + VERIFICATION_VALIDITY)
            .await?;
        audit::record_platform(&mut tx, &event(events::VERIFICATION_SENT, &source).actor(account.user)).await?;
        tx.commit().await?;
        send_verification(&state, &email, &token);
    }
    Ok((StatusCode::ACCEPTED, Json(ACCEPTED)))
}

/// Sign in with email and password.
///
/// An unknown address and a wrong password get the same answer after the same work. With
/// two-factor on, the answer is a short-lived challenge instead of a session.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = SignIn,
    responses(
        (status = 200, body = LoginOutcome, description = "Signed in (also sets the session cookie), or a two-factor challenge"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "Email or password is incorrect"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Email address not verified yet"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "Too many failed attempts; see Retry-After"),
    ))]
async fn login(
    State(state): State<AppState>,
    Client(source): Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    let email = parse_email(&body.email)?;
    let digest = throttle::email_digest(&email);
    // A device that signed in to this account before has a budget of its own; every other
    // client shares the account's.
    let device = body
        .device_token
        .or_else(|| crate::extract::cookie_value(&headers, crate::extract::DEVICE_COOKIE))
        .and_then(|token| state.sealer.device_tokens().verify(&digest, &token));
    let account_key = match &device {
        Some(device) => throttle::device_key("login", device),
        None => throttle::email_key("login", &email),
    };
    let address_key = throttle::address_key("login", &source);
    let policy = throttle::account();
    let limited = async {
        // The address's limit stops one client guessing across accounts; a device token
        // already names the one account this client may try, with a budget of its own.
        if device.is_none() {
            throttle::attempt(&state, &address_key, &throttle::address()).await?;
        }
        throttle::attempt(&state, &account_key, &policy).await
    };
    let hit = match limited.await {
        Ok(hit) => hit,
        Err(refused) => {
            let throttled = event(events::LOGIN_THROTTLED, &source)
                .outcome(Outcome::Denied)
                .meta("email_sha256", json!(digest))
                .meta("known_device", json!(device.is_some()));
            audit::record_platform_unattributed(&state.pool, &throttled).await?;
            return Err(refused);
        }
    };

    let account = users::find_login(&state.pool, &email).await?;
    let stored = account.as_ref().map_or_else(|| state.dummy_hash.to_string(), |a| a.password_hash.clone());
    let password = SecretString::from(body.password.expose_secret().to_owned());
    let verified = state.hasher.verify(body.password, stored).await?;
    let account = match account {
        Some(account) if verified.ok => account,
        other => return Err(login_failed(&state, other, &email, &hit, &policy, &source).await?),
    };
    let now = state.clock.now();
    let mut tx = state.pool.begin_user(account.user).await?;
    throttle::succeeded(&mut tx, &account_key).await?;
    // Only an attempt the address counted is taken back; forgiving one it never counted would
    // erase a real failure (a guesser's, with a device token of their own account).
    if device.is_none() {
        throttle::forgive_address(&mut tx, &address_key).await?;
    }
    if account.email_verified_at.is_none() {
        tx.commit().await?;
        return Err(ApiError::EmailNotVerified);
    }
    if verified.outdated {
        let rehashed = state.hasher.hash(password).await?;
        users::set_password_hash(&mut tx, &rehashed, now).await?;
    }
    if account.totp_enabled {
        let challenge = OneTimeToken::generate(&mut rand::thread_rng());
        let expires_at = now + CHALLENGE_VALIDITY;
        sessions::create_challenge(&mut tx, &challenge.hash, now, expires_at).await?;
        audit::record_platform(&mut tx, &event(events::TWO_FACTOR_CHALLENGED, &source).actor(account.user)).await?;
        let passkey = mos_db::passkeys::any(&mut tx).await?;
        tx.commit().await?;
        let challenge = challenge.secret.expose_secret().to_owned();
        let outcome = LoginOutcome::TwoFactorRequired { challenge, expires_at, passkey };
        return Ok(Json(outcome).into_response());
    }
    let issued = session::issue(&state, &mut tx, &source, false).await?;
    let succeeded = event(events::LOGIN_SUCCEEDED, &source).actor(account.user).meta("session_id", json!(issued.id));
    audit::record_platform(&mut tx, &succeeded).await?;
    tx.commit().await?;
    Ok(signed_in(&state, issued, &digest))
}

/// The answer to a completed sign-in: the session, and a fresh device token for the account.
pub fn signed_in(state: &AppState, issued: session::Issued, email_digest: &str) -> Response {
    let device = state.sealer.device_tokens().issue(email_digest, &mut rand::thread_rng());
    let token = device.secret.expose_secret().to_owned();
    let mut response = issued
        .respond_with(StatusCode::OK, |session| LoginOutcome::Authenticated { session, device_token: token.clone() });
    response.headers_mut().append(header::SET_COOKIE, session::device_cookie(&token));
    response
}

/// Records a failed sign-in on the account's trail (or on nobody's, for an unknown address),
/// warns the owner when this failure locked the account, and answers like any wrong password.
async fn login_failed(
    state: &AppState,
    account: Option<users::LoginRecord>,
    email: &Email,
    hit: &mos_db::throttle::Hit,
    policy: &mos_db::throttle::Policy,
    source: &mos_domain::RequestSource,
) -> Result<ApiError, ApiError> {
    let failed = event(events::LOGIN_FAILED, source).meta("email_sha256", json!(throttle::email_digest(email)));
    match account {
        Some(known) => {
            session::record_failure(state, known.user, failed).await?;
            if throttle::just_locked(hit, policy) {
                session::notify_lockout(state, known.user, source).await?;
            }
        }
        None => {
            audit::record_platform_unattributed(&state.pool, &failed.outcome(Outcome::Failure)).await?;
        }
    }
    Ok(ApiError::InvalidCredentials)
}

/// Complete a sign-in with a TOTP code or a recovery code.
///
/// A challenge takes at most five attempts; a TOTP code is good once.
#[utoipa::path(post, path = "/v1/auth/login/two-factor", tag = "auth", request_body = SecondStep,
    responses(
        (status = 200, body = LoginOutcome, description = "Signed in; also sets the session cookie"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "Wrong code (`invalid_code`), a code already used (`code_reused`: wait for the next one), or the challenge is invalid, expired or out of attempts"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "Too many failed attempts; see Retry-After"),
    ))]
async fn login_two_factor(
    State(state): State<AppState>,
    Client(source): Client,
    ApiJson(body): ApiJson<SecondStep>,
) -> Result<Response, ApiError> {
    let address_key = throttle::address_key("two_factor", &source);
    throttle::attempt(&state, &address_key, &throttle::address()).await?;
    let now = state.clock.now();
    let hash = mos_auth::token::hash_presented(&body.challenge).ok_or(ApiError::InvalidChallenge)?;
    let sessions::ChallengeAttempt { challenge, user } =
        sessions::attempt_challenge(&state.pool, &hash, now, CHALLENGE_ATTEMPTS)
            .await?
            .ok_or(ApiError::InvalidChallenge)?;
    let (mut tx, proof) =
        session::require_second_factor(&state, user, body.code.as_deref(), body.recovery_code.as_ref(), &source)
            .await?;
    if !sessions::consume_challenge(&mut tx, challenge, now).await? {
        return Err(ApiError::InvalidChallenge);
    }
    throttle::forgive_address(&mut tx, &address_key).await?;
    let email = users::profile(&mut tx).await?.ok_or(ApiError::InvalidChallenge)?.email;
    let issued = session::issue(&state, &mut tx, &source, false).await?;
    let succeeded = event(events::LOGIN_SUCCEEDED, &source)
        .actor(user)
        .meta("session_id", json!(issued.id))
        .meta("second_factor", json!(proof.as_str()));
    audit::record_platform(&mut tx, &succeeded).await?;
    if proof == session::Proof::RecoveryCode {
        let left = users::recovery_codes_left(&mut tx).await?;
        audit::record_platform(
            &mut tx,
            &event(events::RECOVERY_CODE_USED, &source).actor(user).meta("remaining", json!(left)),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(signed_in(&state, issued, &throttle::email_digest(&parse_email(&email)?)))
}

/// Sign out: ends this session and clears the cookie.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
    ))]
async fn logout(
    State(state): State<AppState>,
    Client(source): Client,
    Authenticated { session: live, mut tx }: Authenticated,
) -> Result<Response, ApiError> {
    sessions::revoke(&mut tx, live.id, state.clock.now()).await?;
    let revoked =
        AuditEvent::new(events::SESSION_REVOKED, SESSION).source(source).actor(live.user).resource_id(live.id);
    audit::record_platform(&mut tx, &revoked.meta("reason", json!("logout"))).await?;
    tx.commit().await?;
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
    let email = parse_email(&body.email)?;
    // Beyond the mail limit the link already sent stays the valid one.
    let may_mail = throttle::mail(&state, &email).await?;
    let account = users::find_login(&state.pool, &email).await?;
    if let Some(account) = account.filter(|_| may_mail) {
        let now = state.clock.now();
        let token = OneTimeToken::generate(&mut rand::thread_rng());
        let mut tx = state.pool.begin_user(account.user).await?;
        users::replace_email_token(&mut tx, EmailToken::PasswordReset, &token.hash, now, now + RESET_VALIDITY).await?;
        audit::record_platform(&mut tx, &event(events::PASSWORD_RESET_REQUESTED, &source).actor(account.user)).await?;
        tx.commit().await?;
        let body = format!(
            "Someone asked to reset the password of your Marketing OS account.\n\nChoose a new password within one hour:\n\n{}\n\n\
             If it was not you, ignore this message; your password stays as it is.\n",
            link(&state, "/reset-password", &token)
        );
        mail::send_later(
            &state.mailer,
            mail::letter(&state.settings.mail_from, email.as_str(), "Reset your password", body),
        );
    }
    Ok((StatusCode::ACCEPTED, Json(ACCEPTED)))
}

/// Set a new password with the token from the emailed link. Ends every session and lifts a
/// lockout.
#[utoipa::path(post, path = "/v1/auth/password-reset/confirm", tag = "auth", request_body = PasswordReset,
    responses(
        (status = 204, description = "Password changed; sign in again"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Invalid, expired or used token"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Password refused by the policy; the token stays valid"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "Too many attempts from this address"),
    ))]
async fn reset_password(
    State(state): State<AppState>,
    Client(source): Client,
    ApiJson(body): ApiJson<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    throttle::attempt(&state, &throttle::address_key("reset", &source), &throttle::address()).await?;
    let now = state.clock.now();
    let (mut tx, user) = redeem(&state, EmailToken::PasswordReset, &body.token, &source).await?;
    let profile = users::profile(&mut tx).await?.ok_or(ApiError::InvalidToken)?;
    // A refused password rolls the transaction back, so the token can be used again.
    let password = parse_new_password(body.new_password, &profile.email, "new_password")?;
    let hash = state.hasher.hash(password.into_secret()).await?;
    users::set_password_hash(&mut tx, &hash, now).await?;
    let revoked = sessions::revoke_all(&mut tx, now).await?;
    audit::record_platform(
        &mut tx,
        &event(events::PASSWORD_RESET_COMPLETED, &source).actor(user).meta("sessions_revoked", json!(revoked)),
    )
    .await?;
    for key in [
        throttle::email_key("login", &parse_email(&profile.email)?),
        throttle::user_key("two_factor", user),
        throttle::user_key("reauth", user),
    ] {
        throttle::succeeded(&mut tx, &key).await?;
    }
    tx.commit().await?;
    session::notify(
        &state,
        &profile.email,
        "Your password was changed",
        "The password of your Marketing OS account was reset, and every session was signed out.",
    );
    Ok(StatusCode::NO_CONTENT)
}
