//! The signed-in user's own account: profile, sessions, password, two-factor, and the
//! platform-scope audit events about them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use mos_auth::{recovery, totp, Totp};
use mos_db::{audit, sessions, users};
use mos_domain::{AuditEvent, SessionId};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::audit::Record;
use crate::api::signin::parse_new_password;
use crate::error::Problem;
use crate::extract::{ApiJson, Authenticated, Client};
use crate::app::session::{self, event, SessionView};
use crate::{ApiError, AppState};
use mos_domain::events::{self, SESSION};

pub const ENROLLMENT_VALIDITY: Duration = Duration::minutes(10);

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
#[utoipa::path(get, path = "/v1/me", tag = "account", security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, body = Me),
    ))]
async fn me(Authenticated { mut tx, .. }: Authenticated) -> Result<Json<Me>, ApiError> {
    let profile = users::profile(&mut tx).await?.ok_or(ApiError::Unauthenticated)?;
    tx.commit().await?;
    Ok(Json(Me {
        id: profile.id.as_uuid(),
        email: profile.email,
        email_verified_at: profile.email_verified_at,
        two_factor_enabled: profile.totp_enabled_at.is_some(),
        created_at: profile.created_at,
    }))
}

/// The user's live sessions, newest first.
#[utoipa::path(get, path = "/v1/me/sessions", tag = "account", security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, body = Vec<SessionSummary>),
    ))]
async fn list_sessions(
    State(state): State<AppState>,
    Authenticated { session: live, mut tx }: Authenticated,
) -> Result<Json<Vec<SessionSummary>>, ApiError> {
    let listed = sessions::list_live(&mut tx, state.clock.now(), state.settings.session_idle).await?;
    tx.commit().await?;
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
                current: s.id == live.id,
            })
            .collect(),
    ))
}

/// End one of the user's sessions.
#[utoipa::path(delete, path = "/v1/me/sessions/{id}", tag = "account", security(("session" = []), ("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "A session id from GET /v1/me/sessions")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such live session of yours"),
    ))]
async fn revoke_session(
    State(state): State<AppState>,
    Client(source): Client,
    Authenticated { session: live, mut tx }: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = SessionId::parse(&id).map_err(|_| ApiError::NotFound)?;
    if !sessions::revoke(&mut tx, id, state.clock.now()).await? {
        return Err(ApiError::NotFound);
    }
    let revoked = AuditEvent::new(events::SESSION_REVOKED, SESSION).source(source).actor(live.user).resource_id(id);
    audit::record_platform(&mut tx, &revoked.meta("reason", json!("revoked_by_user"))).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Prove it is still you (password, and a code when two-factor is on), so that sensitive
/// changes are allowed for the next ten minutes.
#[utoipa::path(post, path = "/v1/me/reauthenticate", tag = "account", request_body = Proof, security(("session" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Confirmed"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "Wrong password or code, or no live session"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "Too many failed attempts"),
    ))]
async fn reauthenticate(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    ApiJson(body): ApiJson<Proof>,
) -> Result<StatusCode, ApiError> {
    let live = auth.release().await?;
    session::confirm_password(&state, live.user, body.password, &source).await?;
    let mut tx = if live.two_factor_enabled {
        let (tx, _) = session::require_second_factor(
            &state,
            live.user,
            body.code.as_deref(),
            body.recovery_code.as_ref(),
            &source,
        )
        .await?;
        tx
    } else {
        state.pool.begin_user(live.user).await?
    };
    sessions::reauthenticated(&mut tx, live.id, state.clock.now(), false).await?;
    audit::record_platform(&mut tx, &event(events::REAUTHENTICATED, &source).actor(live.user)).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the password. Signs out every other session.
#[utoipa::path(post, path = "/v1/me/password", tag = "account", request_body = PasswordChange, security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, body = Restarted, description = "Changed; the new session replaces the old one (cookie set too)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "Wrong current password, or no live session"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "New password refused by the policy"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "Too many failed attempts"),
    ))]
async fn change_password(
    State(state): State<AppState>,
    Client(source): Client,
    mut auth: Authenticated,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Response, ApiError> {
    let email = users::profile(&mut auth.tx).await?.ok_or(ApiError::Unauthenticated)?.email;
    let live = auth.release().await?;
    let new = parse_new_password(body.new_password, &email, "new_password")?;
    session::confirm_password(&state, live.user, body.current_password, &source).await?;
    let hash = state.hasher.hash(new.into_secret()).await?;
    let mut tx = state.pool.begin_user(live.user).await?;
    users::set_password_hash(&mut tx, &hash, state.clock.now()).await?;
    let (revoked, issued) = session::restart(&state, &mut tx, &source, &live).await?;
    audit::record_platform(
        &mut tx,
        &event(events::PASSWORD_CHANGED, &source).actor(live.user).meta("sessions_revoked", json!(revoked)),
    )
    .await?;
    tx.commit().await?;
    session::notify(
        &state,
        &email,
        "Your password was changed",
        "The password of your Marketing OS account was changed, and every other session was signed out.",
    );
    Ok(issued.respond_with(StatusCode::OK, |session| Restarted { session }))
}

/// Start enrolling an authenticator app: a new secret, valid for ten minutes until confirmed.
/// Needs a recent sign-in or reauthentication.
#[utoipa::path(post, path = "/v1/me/two-factor/setup", tag = "account", security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, body = Enrollment),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Reauthenticate first"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Two-factor is already on"),
    ))]
async fn start_two_factor(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
) -> Result<Json<Enrollment>, ApiError> {
    crate::extract::require_recent(&state, &auth.session)?;
    let Authenticated { session, mut tx } = auth;
    let user = session.user;
    let now = state.clock.now();
    if users::totp(&mut tx).await?.is_some() {
        return Err(ApiError::Conflict(
            "two-factor authentication is already on; disable it first to enroll another authenticator",
        ));
    }
    let email = users::profile(&mut tx).await?.ok_or(ApiError::Unauthenticated)?.email;
    // The thread-local generator must not live across an await.
    let (secret, sealed) = {
        let mut rng = rand::thread_rng();
        let secret = Totp::generate(&mut rng);
        let sealed = state.sealer.seal(secret.expose_bytes(), user.as_uuid().as_bytes(), &mut rng);
        (secret, sealed)
    };
    let expires_at = now + ENROLLMENT_VALIDITY;
    users::put_totp_setup(&mut tx, &sealed, now, expires_at).await?;
    audit::record_platform(&mut tx, &event(events::TWO_FACTOR_SETUP_STARTED, &source).actor(user)).await?;
    tx.commit().await?;
    let otpauth_uri = secret.uri(&state.settings.issuer, &email);
    let qr_svg = totp::qr_svg(&otpauth_uri).ok_or_else(|| ApiError::Internal("QR code too large".into()))?;
    Ok(Json(Enrollment { secret: secret.base32(), otpauth_uri, qr_svg, expires_at }))
}

/// Confirm the enrollment with a code from the app: turns two-factor on, returns ten recovery
/// codes, and signs out every other session.
#[utoipa::path(post, path = "/v1/me/two-factor/confirm", tag = "account", request_body = CodeOnly, security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, body = Enabled, description = "On; the new session replaces the old one (cookie set too)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "Wrong code, or no live session"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Reauthenticate first"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "No enrollment pending, or it expired"),
    ))]
async fn confirm_two_factor(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    ApiJson(body): ApiJson<CodeOnly>,
) -> Result<Response, ApiError> {
    crate::extract::require_recent(&state, &auth.session)?;
    let Authenticated { session, mut tx } = auth;
    let user = session.user;
    let now = state.clock.now();
    let sealed = users::totp_setup(&mut tx, now)
        .await?
        .ok_or(ApiError::Conflict("no two-factor enrollment is pending, or it expired; start a new one"))?;
    let secret = state.sealer.open(&sealed, user.as_uuid().as_bytes())?;
    let totp = Totp::from_bytes(secret.expose_secret())
        .ok_or_else(|| ApiError::Internal("pending TOTP secret has the wrong size".into()))?;
    let Some(step) = totp.matching_step(&body.code, now.timestamp()) else {
        tx.rollback().await?;
        session::record_failure(
            &state,
            user,
            event(events::TWO_FACTOR_FAILED, &source).meta("during", json!("enrollment")),
        )
        .await?;
        return Err(ApiError::InvalidCode);
    };
    let codes = recovery::generate(&mut rand::thread_rng());
    let hashes: Vec<mos_auth::TokenHash> = codes.iter().map(|(_, h)| *h).collect();
    users::enable_totp(&mut tx, &sealed, step, &hashes, now).await?;
    let (revoked, issued) = session::restart(&state, &mut tx, &source, &session).await?;
    audit::record_platform(
        &mut tx,
        &event(events::TWO_FACTOR_ENABLED, &source).actor(user).meta("sessions_revoked", json!(revoked)),
    )
    .await?;
    let email = users::profile(&mut tx).await?.ok_or(ApiError::Unauthenticated)?.email;
    tx.commit().await?;
    session::notify(&state, &email, "Two-factor authentication is on", "Two-factor authentication was turned on for your Marketing OS account, and every other session was signed out.");
    let recovery_codes = codes.into_iter().map(|(c, _)| c.expose_secret().to_owned()).collect();
    Ok(issued.respond_with(StatusCode::OK, |session| Enabled { recovery_codes, session }))
}

/// Turn two-factor off. Needs the password and a current code (or a recovery code); signs out
/// every other session.
#[utoipa::path(post, path = "/v1/me/two-factor/disable", tag = "account", request_body = Proof, security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, body = Restarted, description = "Off; the new session replaces the old one (cookie set too)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "Wrong password or code, or no live session"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Two-factor is not on"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "Too many failed attempts"),
    ))]
async fn disable_two_factor(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    ApiJson(body): ApiJson<Proof>,
) -> Result<Response, ApiError> {
    let live = auth.release().await?;
    session::confirm_password(&state, live.user, body.password, &source).await?;
    if !live.two_factor_enabled {
        return Err(ApiError::Conflict("two-factor authentication is not on"));
    }
    let (mut tx, _) =
        session::require_second_factor(&state, live.user, body.code.as_deref(), body.recovery_code.as_ref(), &source)
            .await?;
    users::disable_totp(&mut tx, state.clock.now()).await?;
    let (revoked, issued) = session::restart(&state, &mut tx, &source, &live).await?;
    audit::record_platform(
        &mut tx,
        &event(events::TWO_FACTOR_DISABLED, &source).actor(live.user).meta("sessions_revoked", json!(revoked)),
    )
    .await?;
    let email = users::profile(&mut tx).await?.ok_or(ApiError::Unauthenticated)?.email;
    tx.commit().await?;
    session::notify(&state, &email, "Two-factor authentication is off", "Two-factor authentication was turned off for your Marketing OS account, and every other session was signed out.");
    Ok(issued.respond_with(StatusCode::OK, |session| Restarted { session }))
}

/// The user's own account events (sign-ins, failures, two-factor and password changes),
/// newest first, at most 100.
#[utoipa::path(get, path = "/v1/me/events", tag = "account", security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, body = Vec<Record>),
    ))]
async fn my_events(Authenticated { mut tx, .. }: Authenticated) -> Result<Json<Vec<Record>>, ApiError> {
    let records = audit::platform_recent(&mut tx, 100).await?;
    tx.commit().await?;
    Ok(Json(records.into_iter().map(Record::from).collect()))
}
