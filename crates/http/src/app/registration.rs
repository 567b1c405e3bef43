//! Getting into an account without a session: registering, verifying the address, and
//! resetting a forgotten password. None of these says whether an address has an account.

use chrono::Duration;
use mos_auth::{NewPassword, OneTimeToken};
use mos_db::users::{self, EmailToken};
use mos_db::{audit, sessions, DbError, UserTx};
use mos_domain::events;
use mos_domain::{Email, Outcome, RequestSource, UserId};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::app::session::{self, event};
use crate::app::signin::parse_email;
use crate::{mail, throttle, ApiError, AppState};

pub const VERIFICATION_VALIDITY: Duration = Duration::hours(24);
pub const RESET_VALIDITY: Duration = Duration::hours(1);

pub fn parse_new_password(password: SecretString, email: &str, field: &'static str) -> Result<NewPassword, ApiError> {
    NewPassword::parse(password, email).map_err(|e| ApiError::Invalid { field, message: e.to_string() })
}

fn link(state: &AppState, path: &str, token: &OneTimeToken) -> String {
    format!("{}{path}?token={}", state.settings.public_url, token.secret.expose_secret())
}

/// Registers an account, or tells the mailbox owner that someone tried to register again: the
/// same outcome either way. At most three mails an hour go to one address, counting
/// registrations, resends and resets; beyond that nothing is mailed.
pub async fn register(
    state: &AppState,
    source: &RequestSource,
    email: &str,
    password: SecretString,
) -> Result<(), ApiError> {
    let email = parse_email(email)?;
    let password = parse_new_password(password, email.as_str(), "password")?;
    let may_mail = throttle::mail(state, &email).await?;
    // Hash before looking the address up, so both answers cost the same.
    let hash = state.hasher.hash(password.into_secret()).await?;
    let now = state.clock.now();
    if let Some(existing) = users::find_login(&state.pool, &email).await? {
        let mut tx = state.pool.begin_user(existing.user).await?;
        audit::record_platform(&mut tx, &event(events::REGISTER_DUPLICATE, source).outcome(Outcome::Denied)).await?;
        tx.commit().await?;
        if may_mail {
            session::notify(
                state,
                email.as_str(),
                "Someone tried to register with your address",
                "Someone tried to create a Marketing OS account with this address, which already has one. To get in, sign in or reset your password.",
            );
        }
        return Ok(());
    }
    let user = UserId::new();
    let token = OneTimeToken::generate(&mut rand::thread_rng());
    let mut tx = state.pool.begin_user(user).await?;
    match users::insert(&mut tx, &email, &hash, None).await {
        // Registered by a concurrent request a moment ago: the same outcome as above.
        Err(DbError::Conflict { .. }) => return Ok(()),
        other => other?,
    }
    users::replace_email_token(&mut tx, EmailToken::Verification, &token.hash, now, now + VERIFICATION_VALIDITY)
        .await?;
    audit::record_platform(&mut tx, &event(events::REGISTERED, source).actor(user).resource_id(user)).await?;
    audit::record_platform(&mut tx, &event(events::VERIFICATION_SENT, source).actor(user)).await?;
    tx.commit().await?;
    // Beyond the mail limit the account exists unverified; a resend within the next hour's
    // limit brings its link.
    if may_mail {
        send_verification(state, &email, &token);
    }
    Ok(())
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
    source: &RequestSource,
) -> Result<(UserTx, UserId), ApiError> {
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

/// Verifies an address with the token of the emailed link.
pub async fn verify_email(state: &AppState, source: &RequestSource, token: &SecretString) -> Result<(), ApiError> {
    throttle::attempt(state, &throttle::address_key("verify", source), &throttle::address()).await?;
    let (mut tx, user) = redeem(state, EmailToken::Verification, token, source).await?;
    audit::record_platform(&mut tx, &event(events::VERIFICATION_USED, source).actor(user)).await?;
    tx.commit().await?;
    Ok(())
}

/// Sends a fresh verification link to an unverified account; older links stop working.
pub async fn resend_verification(state: &AppState, source: &RequestSource, email: &str) -> Result<(), ApiError> {
    let email = parse_email(email)?;
    // Beyond the mail limit the link already sent stays the valid one.
    let may_mail = throttle::mail(state, &email).await?;
    let account = users::find_login(&state.pool, &email).await?;
    if let Some(account) = account.filter(|a| may_mail && a.email_verified_at.is_none()) {
        let now = state.clock.now();
        let token = OneTimeToken::generate(&mut rand::thread_rng());
        let mut tx = state.pool.begin_user(account.user).await?;
        users::replace_email_token(&mut tx, EmailToken::Verification, &token.hash, now, now + VERIFICATION_VALIDITY)
            .await?;
        audit::record_platform(&mut tx, &event(events::VERIFICATION_SENT, source).actor(account.user)).await?;
        tx.commit().await?;
        send_verification(state, &email, &token);
    }
    Ok(())
}

/// Mails a password-reset link, valid for one hour, to an existing account.
pub async fn request_password_reset(state: &AppState, source: &RequestSource, email: &str) -> Result<(), ApiError> {
    let email = parse_email(email)?;
    // Beyond the mail limit the link already sent stays the valid one.
    let may_mail = throttle::mail(state, &email).await?;
    let account = users::find_login(&state.pool, &email).await?;
    if let Some(account) = account.filter(|_| may_mail) {
        let now = state.clock.now();
        let token = OneTimeToken::generate(&mut rand::thread_rng());
        let mut tx = state.pool.begin_user(account.user).await?;
        users::replace_email_token(&mut tx, EmailToken::PasswordReset, &token.hash, now, now + RESET_VALIDITY).await?;
        audit::record_platform(&mut tx, &event(events::PASSWORD_RESET_REQUESTED, source).actor(account.user)).await?;
        tx.commit().await?;
        let body = format!(
            "Someone asked to reset the password of your Marketing OS account.\n\nChoose a new password within one hour:\n\n{}\n\n\
             If it was not you, ignore this message; your password stays as it is.\n",
            link(state, "/reset-password", &token)
        );
        mail::send_later(
            &state.mailer,
            mail::letter(&state.settings.mail_from, email.as_str(), "Reset your password", body),
        );
    }
    Ok(())
}

/// Sets a new password with the token of the emailed link; ends every session and lifts a
/// lockout.
pub async fn reset_password(
    state: &AppState,
    source: &RequestSource,
    token: &SecretString,
    new_password: SecretString,
) -> Result<(), ApiError> {
    throttle::attempt(state, &throttle::address_key("reset", source), &throttle::address()).await?;
    let now = state.clock.now();
    let (mut tx, user) = redeem(state, EmailToken::PasswordReset, token, source).await?;
    let profile = users::profile(&mut tx).await?.ok_or(ApiError::InvalidToken)?;
    // A refused password rolls the transaction back, so the token can be used again.
    let password = parse_new_password(new_password, &profile.email, "new_password")?;
    let hash = state.hasher.hash(password.into_secret()).await?;
    users::set_password_hash(&mut tx, &hash, now).await?;
    let revoked = sessions::revoke_all(&mut tx, now).await?;
    audit::record_platform(
        &mut tx,
        &event(events::PASSWORD_RESET_COMPLETED, source).actor(user).meta("sessions_revoked", json!(revoked)),
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
        state,
        &profile.email,
        "Your password was changed",
        "The password of your Marketing OS account was reset, and every session was signed out.",
    );
    Ok(())
}
