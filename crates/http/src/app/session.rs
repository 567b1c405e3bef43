//! What several flows share: issuing a session, confirming a password or a second factor, and
//! writing the audit record of a failed attempt in a transaction of its own.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use mos_auth::{recovery, OneTimeToken, Totp};
use mos_db::{audit, sessions, users, UserTx};
use mos_domain::{AuditAction, AuditEvent, Outcome, RequestSource, UserId};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::{DEVICE_COOKIE, SESSION_COOKIE};
use crate::{throttle, ApiError, AppState};
use mos_domain::events::{self, USER};

/// A new session: the bearer token (also set as an HttpOnly cookie) and when it ends at the latest.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

pub struct Issued {
    pub id: mos_domain::SessionId,
    pub view: SessionView,
    cookie: HeaderValue,
}

impl Issued {
    /// The cookie that holds the session in a browser.
    pub fn cookie(&self) -> HeaderValue {
        self.cookie.clone()
    }

    /// The session's bearer token.
    pub fn token(&self) -> &str {
        &self.view.token
    }

    /// The body `make` builds around the session, as JSON, with the session cookie set.
    pub fn respond_with<T: Serialize>(self, status: StatusCode, make: impl FnOnce(SessionView) -> T) -> Response {
        (status, [(header::SET_COOKIE, self.cookie)], Json(make(self.view))).into_response()
    }
}

/// A cookie that scripts cannot read and other sites cannot send.
fn set_cookie(name: &str, value: &str, max_age: i64) -> HeaderValue {
    let text = format!("{name}={value}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}");
    // Names are ours and values base64url (with a dot), so the header is always valid; should
    // that ever break, the cookie is cleared rather than set wrong.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("__Host-mos_session=; Path=/; Max-Age=0"))
}

fn cookie(value: &str, max_age: i64) -> HeaderValue {
    set_cookie(SESSION_COOKIE, value, max_age)
}

/// How long a browser keeps its device token: a year, like OWASP's example.
const DEVICE_TOKEN_DAYS: i64 = 365;

/// The cookie that holds a device token.
pub fn device_cookie(token: &str) -> HeaderValue {
    set_cookie(DEVICE_COOKIE, token, chrono::Duration::days(DEVICE_TOKEN_DAYS).num_seconds())
}

/// The header that makes a browser forget its session cookie.
pub fn clear_cookie() -> (header::HeaderName, HeaderValue) {
    (header::SET_COOKIE, cookie("", 0))
}

/// Starts a session for the user of `tx`, authenticated now; `phishing_resistant` when a passkey
/// proved the user.
pub async fn issue(
    state: &AppState,
    tx: &mut UserTx,
    source: &RequestSource,
    phishing_resistant: bool,
) -> Result<Issued, ApiError> {
    let now = state.clock.now();
    let expires_at = now + state.settings.session_absolute;
    let token = OneTimeToken::generate(&mut rand::thread_rng());
    let id = sessions::create(tx, &token.hash, now, expires_at, source, phishing_resistant).await?;
    let secret = token.secret.expose_secret();
    Ok(Issued {
        id,
        cookie: cookie(secret, state.settings.session_absolute.num_seconds()),
        view: SessionView { token: secret.to_owned(), expires_at },
    })
}

/// Every session of the user ends; a new one starts for the client that made the change (as
/// phishing-resistant as the one it replaces), so a password, two-factor or passkey change signs
/// out everyone else, attacker included.
pub async fn restart(
    state: &AppState,
    tx: &mut UserTx,
    source: &RequestSource,
    replaced: &sessions::Live,
) -> Result<(u64, Issued), ApiError> {
    let revoked = sessions::revoke_all(tx, state.clock.now()).await?;
    Ok((revoked, issue(state, tx, source, replaced.phishing_resistant).await?))
}

pub fn event(action: AuditAction, source: &RequestSource) -> AuditEvent {
    AuditEvent::new(action, USER).source(source.clone())
}

/// Records a failed or denied attempt on the user's trail, in its own transaction, so that the
/// record outlives the rollback of the attempt.
pub async fn record_failure(state: &AppState, user: UserId, event: AuditEvent) -> Result<(), ApiError> {
    let mut tx = state.pool.begin_user(user).await?;
    audit::record_platform(&mut tx, &event.actor(user).outcome(Outcome::Failure)).await?;
    tx.commit().await?;
    Ok(())
}

/// Checks the user's current password, counting failures against the account's limit.
pub async fn confirm_password(
    state: &AppState,
    user: UserId,
    password: SecretString,
    source: &RequestSource,
) -> Result<(), ApiError> {
    let key = throttle::user_key("reauth", user);
    throttle::attempt(state, &key, &throttle::account()).await?;
    let mut tx = state.pool.begin_user(user).await?;
    let hash = users::password_hash(&mut tx).await?.ok_or(ApiError::Unauthenticated)?;
    // Not held while hashing: the connection serves other requests meanwhile.
    tx.commit().await?;
    if state.hasher.verify(password, hash).await?.ok {
        let mut tx = state.pool.begin_user(user).await?;
        throttle::succeeded(&mut tx, &key).await?;
        Ok(tx.commit().await?)
    } else {
        record_failure(state, user, event(events::REAUTHENTICATION_FAILED, source)).await?;
        Err(ApiError::InvalidCredentials)
    }
}

/// How the user proved the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    Totp,
    RecoveryCode,
}

impl Proof {
    pub fn as_str(self) -> &'static str {
        match self {
            Proof::Totp => "totp",
            Proof::RecoveryCode => "recovery_code",
        }
    }
}

/// Why a second factor was not accepted.
enum Refused {
    /// Neither a good code nor a good recovery code was given.
    Wrong,
    /// The right code, but its time step was spent already (by this client or a replay).
    Reused,
}

/// Checks a TOTP code (once per time step, ever) or spends a recovery code, inside `tx`.
async fn second_factor(
    state: &AppState,
    tx: &mut UserTx,
    code: Option<&str>,
    recovery_code: Option<&SecretString>,
) -> Result<Result<Proof, Refused>, ApiError> {
    if let Some(code) = code {
        let Some((sealed, _)) = users::totp(tx).await? else {
            return Ok(Err(Refused::Wrong));
        };
        let secret = state.sealer.open(&sealed, tx.user().as_uuid().as_bytes())?;
        let totp = Totp::from_bytes(secret.expose_secret())
            .ok_or_else(|| ApiError::Internal("stored TOTP secret has the wrong size".into()))?;
        let Some(step) = totp.matching_step(code, state.clock.now().timestamp()) else {
            return Ok(Err(Refused::Wrong));
        };
        return Ok(if users::advance_totp_step(tx, step).await? { Ok(Proof::Totp) } else { Err(Refused::Reused) });
    }
    if let Some(hash) = recovery_code.and_then(recovery::hash_presented) {
        if users::use_recovery_code(tx, &hash, state.clock.now()).await? {
            return Ok(Ok(Proof::RecoveryCode));
        }
    }
    Ok(Err(Refused::Wrong))
}

/// The second factor of `user`, counted against the account's limit. On success, the user's
/// transaction in which the factor was spent, for the change it unlocks. The attempt is counted
/// (and committed) before that transaction begins, and a failure is recorded after it rolled
/// back: the caller must hold no transaction, and a request never holds two connections at once.
pub async fn require_second_factor(
    state: &AppState,
    user: UserId,
    code: Option<&str>,
    recovery_code: Option<&SecretString>,
    source: &RequestSource,
) -> Result<(UserTx, Proof), ApiError> {
    let key = throttle::user_key("two_factor", user);
    let policy = throttle::account();
    let hit = throttle::attempt(state, &key, &policy).await?;
    let mut tx = state.pool.begin_user(user).await?;
    let refused = match second_factor(state, &mut tx, code, recovery_code).await? {
        Ok(proof) => {
            throttle::succeeded(&mut tx, &key).await?;
            return Ok((tx, proof));
        }
        Err(refused) => refused,
    };
    tx.rollback().await?;
    let (reason, error) = match refused {
        Refused::Wrong => ("wrong_code", ApiError::InvalidCode),
        Refused::Reused => ("code_reused", ApiError::CodeReused),
    };
    record_failure(state, user, event(events::TWO_FACTOR_FAILED, source).meta("reason", reason.into())).await?;
    if throttle::just_locked(&hit, &policy) {
        notify_lockout(state, user, source).await?;
    }
    Err(error)
}

/// Tells the owner of an account that guessing just locked it, and records that.
pub async fn notify_lockout(state: &AppState, user: UserId, source: &RequestSource) -> Result<(), ApiError> {
    let mut tx = state.pool.begin_user(user).await?;
    audit::record_platform(&mut tx, &event(events::ACCOUNT_LOCKED, source).outcome(Outcome::Denied)).await?;
    let profile = users::profile(&mut tx).await?;
    tx.commit().await?;
    if let Some(profile) = profile {
        notify(
            state,
            &profile.email,
            "Sign-in attempts to your account were blocked",
            "Several attempts to sign in to your Marketing OS account failed, so further attempts are being delayed. Nobody has got in.",
        );
    }
    Ok(())
}

/// A short notice to the account's address after a security-relevant change.
pub fn notify(state: &AppState, email: &str, subject: &str, what: &str) {
    let body = format!(
        "{what}\n\nIf you did not do this, reset your password at {}/reset-password and contact your administrator.\n",
        state.settings.public_url
    );
    crate::mail::send_later(&state.mailer, crate::mail::letter(&state.settings.mail_from, email, subject, body));
}
