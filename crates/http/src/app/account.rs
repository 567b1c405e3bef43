//! The signed-in user's own account: profile, sessions, password, two-factor, and the
//! platform-scope audit events about them. A change that proves the user again (password,
//! two-factor) ends the request's first transaction before hashing, and every change of a
//! credential signs out the other sessions and starts a new one for this client.

use chrono::{DateTime, Duration, Utc};
use mos_auth::{recovery, totp, Totp};
use mos_db::audit::AuditRecord;
use mos_db::sessions::Listed;
use mos_db::users::Profile;
use mos_db::{audit, sessions, users};
use mos_domain::events::{self, SESSION};
use mos_domain::{AuditEvent, RequestSource, SessionId};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::app::registration::parse_new_password;
use crate::app::session::{self, event, Issued};
use crate::extract::{require_recent, Authenticated};
use crate::{ApiError, AppState};

pub const ENROLLMENT_VALIDITY: Duration = Duration::minutes(10);

/// The signed-in user.
pub async fn me(auth: &mut Authenticated) -> Result<Profile, ApiError> {
    users::profile(&mut auth.tx).await?.ok_or(ApiError::Unauthenticated)
}

/// The user's live sessions, newest first.
pub async fn sessions(state: &AppState, auth: &mut Authenticated) -> Result<Vec<Listed>, ApiError> {
    Ok(sessions::list_live(&mut auth.tx, state.clock.now(), state.settings.session_idle).await?)
}

/// The user's own account events, newest first, at most `limit`.
pub async fn events(auth: &mut Authenticated, limit: i64) -> Result<Vec<AuditRecord>, ApiError> {
    Ok(audit::platform_recent(&mut auth.tx, limit).await?)
}

/// Ends one of the user's sessions.
pub async fn revoke_session(
    state: &AppState,
    auth: Authenticated,
    source: &RequestSource,
    id: &str,
) -> Result<(), ApiError> {
    let Authenticated { session: live, mut tx } = auth;
    let id = SessionId::parse(id).map_err(|_| ApiError::NotFound)?;
    if !sessions::revoke(&mut tx, id, state.clock.now()).await? {
        return Err(ApiError::NotFound);
    }
    let revoked =
        AuditEvent::new(events::SESSION_REVOKED, SESSION).source(source.clone()).actor(live.user).resource_id(id);
    audit::record_platform(&mut tx, &revoked.meta("reason", json!("revoked_by_user"))).await?;
    tx.commit().await?;
    Ok(())
}

/// How the user proves it is still them: the password, and with two-factor on a code or a
/// recovery code.
pub struct Proof {
    pub password: SecretString,
    pub code: Option<String>,
    pub recovery_code: Option<SecretString>,
}

/// Confirms it is still the user, so that sensitive changes are allowed for the next ten
/// minutes.
pub async fn reauthenticate(
    state: &AppState,
    auth: Authenticated,
    source: &RequestSource,
    proof: Proof,
) -> Result<(), ApiError> {
    let live = auth.release().await?;
    session::confirm_password(state, live.user, proof.password, source).await?;
    let mut tx = if live.two_factor_enabled {
        let (tx, _) = session::require_second_factor(
            state,
            live.user,
            proof.code.as_deref(),
            proof.recovery_code.as_ref(),
            source,
        )
        .await?;
        tx
    } else {
        state.pool.begin_user(live.user).await?
    };
    sessions::reauthenticated(&mut tx, live.id, state.clock.now(), false).await?;
    audit::record_platform(&mut tx, &event(events::REAUTHENTICATED, source).actor(live.user)).await?;
    tx.commit().await?;
    Ok(())
}

/// Changes the password; signs out every other session. The new session replaces this one.
pub async fn change_password(
    state: &AppState,
    mut auth: Authenticated,
    source: &RequestSource,
    current: SecretString,
    new: SecretString,
) -> Result<Issued, ApiError> {
    let email = me(&mut auth).await?.email;
    let live = auth.release().await?;
    let new = parse_new_password(new, &email, "new_password")?;
    session::confirm_password(state, live.user, current, source).await?;
    let hash = state.hasher.hash(new.into_secret()).await?;
    let mut tx = state.pool.begin_user(live.user).await?;
    users::set_password_hash(&mut tx, &hash, state.clock.now()).await?;
    let (revoked, issued) = session::restart(state, &mut tx, source, &live).await?;
    audit::record_platform(
        &mut tx,
        &event(events::PASSWORD_CHANGED, source).actor(live.user).meta("sessions_revoked", json!(revoked)),
    )
    .await?;
    tx.commit().await?;
    session::notify(
        state,
        &email,
        "Your password was changed",
        "The password of your Marketing OS account was changed, and every other session was signed out.",
    );
    Ok(issued)
}

/// A new authenticator secret, to be confirmed with a code before it counts.
pub struct Enrollment {
    /// The secret in base32, for typing into an authenticator by hand.
    pub secret: String,
    pub otpauth_uri: String,
    /// The `otpauth_uri` as a QR code, an SVG document.
    pub qr_svg: String,
    pub expires_at: DateTime<Utc>,
}

/// Starts enrolling an authenticator app: a new secret, valid for ten minutes until confirmed.
/// Needs a recent sign-in.
pub async fn start_two_factor(
    state: &AppState,
    auth: Authenticated,
    source: &RequestSource,
) -> Result<Enrollment, ApiError> {
    require_recent(state, &auth.session)?;
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
    audit::record_platform(&mut tx, &event(events::TWO_FACTOR_SETUP_STARTED, source).actor(user)).await?;
    tx.commit().await?;
    let otpauth_uri = secret.uri(&state.settings.issuer, &email);
    let qr_svg = totp::qr_svg(&otpauth_uri).ok_or_else(|| ApiError::Internal("QR code too large".into()))?;
    Ok(Enrollment { secret: secret.base32(), otpauth_uri, qr_svg, expires_at })
}

/// Two-factor turned on: the recovery codes, shown once, and the session that replaces the
/// request's.
pub struct Enabled {
    pub recovery_codes: Vec<String>,
    pub issued: Issued,
}

/// Confirms the enrollment with a code from the app: turns two-factor on, returns ten recovery
/// codes, and signs out every other session.
pub async fn confirm_two_factor(
    state: &AppState,
    auth: Authenticated,
    source: &RequestSource,
    code: &str,
) -> Result<Enabled, ApiError> {
    require_recent(state, &auth.session)?;
    let Authenticated { session, mut tx } = auth;
    let user = session.user;
    let now = state.clock.now();
    let sealed = users::totp_setup(&mut tx, now)
        .await?
        .ok_or(ApiError::Conflict("no two-factor enrollment is pending, or it expired; start a new one"))?;
    let secret = state.sealer.open(&sealed, user.as_uuid().as_bytes())?;
    let totp = Totp::from_bytes(secret.expose_secret())
        .ok_or_else(|| ApiError::Internal("pending TOTP secret has the wrong size".into()))?;
    let Some(step) = totp.matching_step(code, now.timestamp()) else {
        tx.rollback().await?;
        session::record_failure(
            state,
            user,
            event(events::TWO_FACTOR_FAILED, source).meta("during", json!("enrollment")),
        )
        .await?;
        return Err(ApiError::InvalidCode);
    };
    let codes = recovery::generate(&mut rand::thread_rng());
    let hashes: Vec<mos_auth::TokenHash> = codes.iter().map(|(_, h)| *h).collect();
    users::enable_totp(&mut tx, &sealed, step, &hashes, now).await?;
    let (revoked, issued) = session::restart(state, &mut tx, source, &session).await?;
    audit::record_platform(
        &mut tx,
        &event(events::TWO_FACTOR_ENABLED, source).actor(user).meta("sessions_revoked", json!(revoked)),
    )
    .await?;
    let email = users::profile(&mut tx).await?.ok_or(ApiError::Unauthenticated)?.email;
    tx.commit().await?;
    session::notify(state, &email, "Two-factor authentication is on", "Two-factor authentication was turned on for your Marketing OS account, and every other session was signed out.");
    let recovery_codes = codes.into_iter().map(|(c, _)| c.expose_secret().to_owned()).collect();
    Ok(Enabled { recovery_codes, issued })
}

/// Turns two-factor off with the password and a current code (or a recovery code); signs out
/// every other session.
pub async fn disable_two_factor(
    state: &AppState,
    auth: Authenticated,
    source: &RequestSource,
    proof: Proof,
) -> Result<Issued, ApiError> {
    let live = auth.release().await?;
    session::confirm_password(state, live.user, proof.password, source).await?;
    if !live.two_factor_enabled {
        return Err(ApiError::Conflict("two-factor authentication is not on"));
    }
    let (mut tx, _) =
        session::require_second_factor(state, live.user, proof.code.as_deref(), proof.recovery_code.as_ref(), source)
            .await?;
    users::disable_totp(&mut tx, state.clock.now()).await?;
    let (revoked, issued) = session::restart(state, &mut tx, source, &live).await?;
    audit::record_platform(
        &mut tx,
        &event(events::TWO_FACTOR_DISABLED, source).actor(live.user).meta("sessions_revoked", json!(revoked)),
    )
    .await?;
    let email = users::profile(&mut tx).await?.ok_or(ApiError::Unauthenticated)?.email;
    tx.commit().await?;
    session::notify(state, &email, "Two-factor authentication is off", "Two-factor authentication was turned off for your Marketing OS account, and every other session was signed out.");
    Ok(issued)
}
