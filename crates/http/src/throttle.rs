//! Limits on guessing: which counters an attempt counts against, and how each slows down.
//! Keys never hold an email address in clear, only its SHA-256.

use chrono::Duration;
use mos_db::throttle::{self, Hit, Policy, Rate};
use mos_db::UserTx;
use mos_domain::{Email, RequestSource, UserId};
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

/// Per account for clients without a device token of it, per device token for those with one:
/// five free failures, then 1 s doubling to 15 min. Nothing locks an account for good: a lock
/// that anyone can trigger is a way to shut its owner out.
pub fn account() -> Policy {
    Policy { free: 5, cap_secs: 900, window: None }
}

/// Per client address: twenty free failures an hour, then 1 s doubling to an hour. Successes
/// are not counted.
pub fn address() -> Policy {
    Policy { free: 20, cap_secs: 3600, window: Some(Duration::hours(1)) }
}

/// Emails a person can trigger for one address: three an hour, counted from the first, every
/// request counted whether or not the address has an account.
pub const MAIL: Rate = Rate { limit: 3, window: Duration::hours(1) };

/// The SHA-256 of an address in hex: how keys and audit records name an address without holding it.
pub fn email_digest(email: &Email) -> String {
    hex::encode(Sha256::digest(email.as_str().as_bytes()))
}

pub fn email_key(scope: &str, email: &Email) -> String {
    format!("{scope}:email:{}", email_digest(email))
}

pub fn user_key(scope: &str, user: UserId) -> String {
    format!("{scope}:user:{user}")
}

/// The counter of one device that holds a device token of the account.
pub fn device_key(scope: &str, device: &str) -> String {
    format!("{scope}:device:{device}")
}

pub fn address_key(scope: &str, source: &RequestSource) -> String {
    match source.ip {
        Some(ip) => format!("{scope}:ip:{ip}"),
        None => format!("{scope}:ip:unknown"),
    }
}

fn retry_after(hit: &Hit) -> ApiError {
    ApiError::RateLimited { retry_after: hit.retry_after.map_or(1, |s| u64::try_from(s).unwrap_or(1).max(1)) }
}

/// Counts an attempt against `key` before it is judged; refuses it while the key is delayed.
pub async fn attempt(state: &AppState, key: &str, policy: &Policy) -> Result<Hit, ApiError> {
    let hit = throttle::hit(&state.pool, key, state.clock.now(), policy).await?;
    if hit.allowed {
        Ok(hit)
    } else {
        Err(retry_after(&hit))
    }
}

/// Counts a request for mail to `email`; whether a mail may go out, within [`MAIL`]. Beyond
/// it the caller answers as it always does and sends nothing: a refusal would tell whoever asks
/// that mail went to this address within the hour, which an account's own sign-up or reset
/// does, and so whether the address has an account.
pub async fn mail(state: &AppState, email: &Email) -> Result<bool, ApiError> {
    let hit = throttle::rate(&state.pool, &email_key("mail", email), state.clock.now(), &MAIL).await?;
    Ok(hit.allowed)
}

/// Counts one use of `key` against `rate`; beyond it the request is refused with 429 and
/// `Retry-After`, and not counted.
pub async fn within(state: &AppState, key: &str, rate: &Rate) -> Result<(), ApiError> {
    let hit = throttle::rate(&state.pool, key, state.clock.now(), rate).await?;
    if hit.allowed {
        Ok(())
    } else {
        Err(retry_after(&hit))
    }
}

/// The attempt succeeded: forget the failures counted against `key`, with the success.
pub async fn succeeded(tx: &mut UserTx, key: &str) -> Result<(), ApiError> {
    Ok(throttle::clear(tx, key).await?)
}

/// The attempt succeeded: it does not count against the client's address, but the failures
/// before it still do.
pub async fn forgive_address(tx: &mut UserTx, key: &str) -> Result<(), ApiError> {
    Ok(throttle::forgive(tx, key, &address()).await?)
}

/// Whether this failure is the one that started the delays, which is when the owner of an
/// account hears about it.
pub fn just_locked(hit: &Hit, policy: &Policy) -> bool {
    hit.failures == policy.free + 1
}
