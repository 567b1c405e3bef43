//! Signing in, step by step: the password, then (with two-factor on) a code, a recovery code
//! or a passkey; or a passkey alone. Every method ends in [`finish`], which issues the session
//! and writes the one record of a successful sign-in.

use chrono::{DateTime, Duration, Utc};
use mos_auth::OneTimeToken;
use mos_db::passkeys::{self, Purpose, Stored};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, PasskeyAuthentication, PublicKeyCredential, WebauthnError,
};

use crate::app::passkeys::{self as ceremonies, take, verify_assertion, Started};
use mos_db::{audit, sessions, users, UserTx};
use mos_domain::events;
use mos_domain::{AuditEvent, Email, Outcome, RequestSource};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::app::session::{self, event, Issued, Proof};
use crate::extract::Authenticated;
use crate::{throttle, ApiError, AppState};

pub const CHALLENGE_VALIDITY: Duration = Duration::minutes(5);
pub const CHALLENGE_ATTEMPTS: i32 = 5;

pub fn parse_email(input: &str) -> Result<Email, ApiError> {
    Email::parse(input).map_err(|e| ApiError::Invalid { field: "email", message: e.to_string() })
}

/// How the user proved who they are.
pub enum Method<'a> {
    /// The password, on an account without two-factor.
    Password,
    /// The password, then a code or a recovery code.
    SecondFactor(Proof),
    /// A passkey: after the password (`second_factor`) or alone (`passwordless`).
    Passkey { used: &'a Stored, how: &'static str },
}

/// A completed sign-in: the session, and a fresh device token for the account.
pub struct SignedIn {
    pub issued: Issued,
    pub device_token: String,
}

impl SignedIn {
    /// The cookies a browser keeps: the session, and the device token.
    pub fn cookies(&self) -> [axum::http::HeaderValue; 2] {
        [self.issued.cookie(), session::device_cookie(&self.device_token)]
    }
}

/// Ends a sign-in by any method, in the transaction of its user in which the proof was spent:
/// issues the session (phishing-resistant when a passkey proved the user), records the
/// success, commits, and hands out a device token of the account.
pub async fn finish(
    state: &AppState,
    mut tx: UserTx,
    method: Method<'_>,
    source: &RequestSource,
) -> Result<SignedIn, ApiError> {
    let user = tx.user();
    let email = users::profile(&mut tx).await?.ok_or(ApiError::Unauthenticated)?.email;
    let phishing_resistant = matches!(method, Method::Passkey { .. });
    let issued = session::issue(state, &mut tx, source, phishing_resistant).await?;
    let succeeded = event(events::LOGIN_SUCCEEDED, source).actor(user).meta("session_id", json!(issued.id));
    let succeeded = match &method {
        Method::Password => succeeded,
        Method::SecondFactor(proof) => succeeded.meta("second_factor", json!(proof.as_str())),
        Method::Passkey { used, how } => {
            succeeded.meta("passkey", json!({ "id": used.id, "name": used.name, "as": how }))
        }
    };
    audit::record_platform(&mut tx, &succeeded).await?;
    if matches!(method, Method::SecondFactor(Proof::RecoveryCode)) {
        let left = users::recovery_codes_left(&mut tx).await?;
        audit::record_platform(
            &mut tx,
            &event(events::RECOVERY_CODE_USED, source).actor(user).meta("remaining", json!(left)),
        )
        .await?;
    }
    tx.commit().await?;
    let digest = throttle::email_digest(&parse_email(&email)?);
    let device = state.sealer.device_tokens().issue(&digest, &mut rand::thread_rng());
    Ok(SignedIn { issued, device_token: device.secret.expose_secret().to_owned() })
}

/// Where the password step leaves a sign-in.
pub enum PasswordStep {
    SignedIn(SignedIn),
    /// Two-factor is on: the challenge that the second step presents, and whether the account
    /// has a passkey to offer for it.
    TwoFactorRequired {
        challenge: String,
        expires_at: DateTime<Utc>,
        passkey: bool,
    },
}

/// The password step: an unknown address and a wrong password get the same answer after the
/// same work. `device_token` is the one an earlier sign-in to this account gave the client.
pub async fn password(
    state: &AppState,
    source: &RequestSource,
    email: &str,
    password: SecretString,
    device_token: Option<SecretString>,
) -> Result<PasswordStep, ApiError> {
    let email = parse_email(email)?;
    let digest = throttle::email_digest(&email);
    // A device that signed in to this account before has a budget of its own; every other
    // client shares the account's.
    let device = device_token.and_then(|token| state.sealer.device_tokens().verify(&digest, &token));
    let account_key = match &device {
        Some(device) => throttle::device_key("login", device),
        None => throttle::email_key("login", &email),
    };
    let address_key = throttle::address_key("login", source);
    let policy = throttle::account();
    let limited = async {
        // The address's limit stops one client guessing across accounts; a device token
        // already names the one account this client may try, with a budget of its own.
        if device.is_none() {
            throttle::attempt(state, &address_key, &throttle::address()).await?;
        }
        throttle::attempt(state, &account_key, &policy).await
    };
    let hit = match limited.await {
        Ok(hit) => hit,
        Err(refused) => {
            let throttled = event(events::LOGIN_THROTTLED, source)
                .outcome(Outcome::Denied)
                .meta("email_sha256", json!(digest))
                .meta("known_device", json!(device.is_some()));
            audit::record_platform_unattributed(&state.pool, &throttled).await?;
            return Err(refused);
        }
    };

    let account = users::find_login(&state.pool, &email).await?;
    let stored = account.as_ref().map_or_else(|| state.dummy_hash.to_string(), |a| a.password_hash.clone());
    let kept = SecretString::from(password.expose_secret().to_owned());
    let verified = state.hasher.verify(password, stored).await?;
    let account = match account {
        Some(account) if verified.ok => account,
        other => return Err(failed(state, other, &email, &hit, &policy, source).await?),
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
        let rehashed = state.hasher.hash(kept).await?;
        users::set_password_hash(&mut tx, &rehashed, now).await?;
    }
    if account.totp_enabled {
        let challenge = OneTimeToken::generate(&mut rand::thread_rng());
        let expires_at = now + CHALLENGE_VALIDITY;
        sessions::create_challenge(&mut tx, &challenge.hash, now, expires_at).await?;
        audit::record_platform(&mut tx, &event(events::TWO_FACTOR_CHALLENGED, source).actor(account.user)).await?;
        let passkey = mos_db::passkeys::any(&mut tx).await?;
        tx.commit().await?;
        let challenge = challenge.secret.expose_secret().to_owned();
        return Ok(PasswordStep::TwoFactorRequired { challenge, expires_at, passkey });
    }
    Ok(PasswordStep::SignedIn(finish(state, tx, Method::Password, source).await?))
}

/// Records a failed sign-in on the account's trail (or on nobody's, for an unknown address),
/// warns the owner when this failure locked the account, and answers like any wrong password.
async fn failed(
    state: &AppState,
    account: Option<users::LoginRecord>,
    email: &Email,
    hit: &mos_db::throttle::Hit,
    policy: &mos_db::throttle::Policy,
    source: &RequestSource,
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

/// The second step with a TOTP code or a recovery code. A challenge takes at most five
/// attempts; a TOTP code is good once.
pub async fn second_factor(
    state: &AppState,
    source: &RequestSource,
    challenge: &SecretString,
    code: Option<&str>,
    recovery_code: Option<&SecretString>,
) -> Result<SignedIn, ApiError> {
    let address_key = throttle::address_key("two_factor", source);
    throttle::attempt(state, &address_key, &throttle::address()).await?;
    let now = state.clock.now();
    let hash = mos_auth::token::hash_presented(challenge).ok_or(ApiError::InvalidChallenge)?;
    let sessions::ChallengeAttempt { challenge, user } =
        sessions::attempt_challenge(&state.pool, &hash, now, CHALLENGE_ATTEMPTS)
            .await?
            .ok_or(ApiError::InvalidChallenge)?;
    let (mut tx, proof) = session::require_second_factor(state, user, code, recovery_code, source).await?;
    if !sessions::consume_challenge(&mut tx, challenge, now).await? {
        return Err(ApiError::InvalidChallenge);
    }
    throttle::forgive_address(&mut tx, &address_key).await?;
    finish(state, tx, Method::SecondFactor(proof), source).await
}

/// Signs out: ends the session of `auth`.
pub async fn sign_out(state: &AppState, auth: Authenticated, source: &RequestSource) -> Result<(), ApiError> {
    let Authenticated { session: live, mut tx } = auth;
    sessions::revoke(&mut tx, live.id, state.clock.now()).await?;
    let revoked = AuditEvent::new(events::SESSION_REVOKED, events::SESSION)
        .source(source.clone())
        .actor(live.user)
        .resource_id(live.id);
    audit::record_platform(&mut tx, &revoked.meta("reason", json!("logout"))).await?;
    tx.commit().await?;
    Ok(())
}

/// Options for the second step with a passkey instead of a code. Counts as one of the
/// challenge's attempts, like a code would.
pub async fn passkey_second_factor_options(state: &AppState, challenge: &SecretString) -> Result<Started, ApiError> {
    let hash = mos_auth::token::hash_presented(challenge).ok_or(ApiError::InvalidChallenge)?;
    let sessions::ChallengeAttempt { user, .. } =
        sessions::attempt_challenge(&state.pool, &hash, state.clock.now(), CHALLENGE_ATTEMPTS)
            .await?
            .ok_or(ApiError::InvalidChallenge)?;
    let tx = state.pool.begin_user(user).await?;
    let none = "this account has no passkey; use a code from your authenticator app";
    ceremonies::prove_one_of(state, tx, Purpose::SecondFactor, none).await
}

/// The second step with a passkey instead of a code: the answer to the ceremony begun for the
/// challenge's account. The session is phishing-resistant.
pub async fn passkey_second_factor(
    state: &AppState,
    source: &RequestSource,
    challenge: &SecretString,
    ceremony: &SecretString,
    credential: &PublicKeyCredential,
) -> Result<SignedIn, ApiError> {
    let address_key = throttle::address_key("two_factor", source);
    throttle::attempt(state, &address_key, &throttle::address()).await?;
    let now = state.clock.now();
    let (owner, authentication): (_, PasskeyAuthentication) = take(state, ceremony, Purpose::SecondFactor).await?;
    let hash = mos_auth::token::hash_presented(challenge).ok_or(ApiError::InvalidChallenge)?;
    let sessions::ChallengeAttempt { challenge, user } =
        sessions::attempt_challenge(&state.pool, &hash, now, CHALLENGE_ATTEMPTS)
            .await?
            .ok_or(ApiError::InvalidChallenge)?;
    if owner != Some(user) {
        return Err(ApiError::InvalidCeremony);
    }
    let mut tx = state.pool.begin_user(user).await?;
    let verified =
        verify_assertion(state, &mut tx, |_| state.webauthn.finish_passkey_authentication(credential, &authentication))
            .await?;
    let used = match verified {
        Ok(used) => used,
        Err(e) => {
            tx.rollback().await?;
            return Err(ceremonies::failed(state, Some(user), Purpose::SecondFactor, &e, source).await?);
        }
    };
    if !sessions::consume_challenge(&mut tx, challenge, now).await? {
        return Err(ApiError::InvalidChallenge);
    }
    throttle::forgive_address(&mut tx, &address_key).await?;
    finish(state, tx, Method::Passkey { used: &used, how: "second_factor" }, source).await
}

/// Options for signing in with a passkey alone: the authenticator offers the accounts it holds
/// for this site.
pub async fn passkey_alone_options(state: &AppState, source: &RequestSource) -> Result<Started, ApiError> {
    // Every ceremony is a row until it expires: an address may not start them without end.
    throttle::attempt(state, &throttle::address_key("passkey", source), &throttle::address()).await?;
    let (mut options, authentication) =
        state.webauthn.start_discoverable_authentication().map_err(|e| ApiError::Internal(Box::new(e)))?;
    // A button the user presses, not the autofill of a form field.
    options.mediation = None;
    ceremonies::begin(state, Purpose::Passwordless, None, &authentication, options).await
}

/// Signing in with a passkey alone (a discoverable credential). The session is
/// phishing-resistant.
pub async fn passkey_alone(
    state: &AppState,
    source: &RequestSource,
    ceremony: &SecretString,
    credential: &PublicKeyCredential,
) -> Result<SignedIn, ApiError> {
    let (_, authentication): (_, DiscoverableAuthentication) = take(state, ceremony, Purpose::Passwordless).await?;
    let (handle, credential_id) = match state.webauthn.identify_discoverable_authentication(credential) {
        Ok(found) => found,
        Err(e) => return Err(ceremonies::failed(state, None, Purpose::Passwordless, &e, source).await?),
    };
    let owner = passkeys::owner(&state.pool, credential_id).await?;
    let Some(user) = owner.filter(|u| u.as_uuid() == handle) else {
        let unknown = WebauthnError::CredentialNotFound;
        return Err(ceremonies::failed(state, None, Purpose::Passwordless, &unknown, source).await?);
    };
    let mut tx = state.pool.begin_user(user).await?;
    let verified = verify_assertion(state, &mut tx, |mine| {
        let keys: Vec<DiscoverableKey> = mine.iter().map(|(_, p)| p.into()).collect();
        state.webauthn.finish_discoverable_authentication(credential, authentication, &keys)
    })
    .await?;
    match verified {
        Ok(used) => {
            throttle::forgive_address(&mut tx, &throttle::address_key("passkey", source)).await?;
            finish(state, tx, Method::Passkey { used: &used, how: "passwordless" }, source).await
        }
        Err(e) => {
            tx.rollback().await?;
            Err(ceremonies::failed(state, Some(user), Purpose::Passwordless, &e, source).await?)
        }
    }
}
