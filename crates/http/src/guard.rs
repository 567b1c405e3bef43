//! Limits on guessing: which counters an attempt counts against, and how each slows down.
//! Keys never hold an email address in clear, only its SHA-256.

use chrono::Duration;
use mos_db::throttle::{self, Hit, Policy};
use mos_db::UserTx;
use mos_domain::{Email, RequestSource, UserId};
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

/// What `Retry-After` says for an account locked until its password is reset.
pub const LOCKED_RETRY_AFTER: u64 = 3600;

/// Per account: five free failures, then 1 s doubling to 15 min; the 100th consecutive failure
/// locks the account until a password reset (NIST SP 800-63B §5.2.2).
pub fn account() -> Policy {
    Policy { free: 5, cap_secs: 900, hard: Some(100), window: None }
}

/// Per client address: twenty free failures an hour, then 1 s doubling to an hour.
pub fn address() -> Policy {
    Policy { free: 20, cap_secs: 3600, hard: None, window: Some(Duration::hours(1)) }
}

/// Emails a person can trigger for one address: three an hour, then slower.
pub fn mail() -> Policy {
    Policy { free: 3, cap_secs: 3600, hard: None, window: Some(Duration::hours(1)) }
}

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

pub fn address_key(scope: &str, source: &RequestSource) -> String {
    match source.ip {
        Some(ip) => format!("{scope}:ip:{ip}"),
        None => format!("{scope}:ip:unknown"),
    }
}

/// Counts an attempt against `key` before it is judged; refuses it while the key is locked.
pub async fn attempt(state: &AppState, key: &str, policy: &Policy) -> Result<Hit, ApiError> {
    let hit = throttle::hit(&state.pool, key, state.clock.now(), policy).await?;
    if hit.allowed {
        Ok(hit)
    } else if hit.hard_locked(policy) {
        Err(ApiError::Locked)
    } else {
        Err(ApiError::RateLimited { retry_after: hit.retry_after.map_or(1, |s| u64::try_from(s).unwrap_or(1).max(1)) })
    }
}

/// The attempt succeeded: forget the failures counted against `key`, with the success.
pub async fn succeeded(tx: &mut UserTx, key: &str) -> Result<(), ApiError> {
    Ok(throttle::clear(tx, key).await?)
}

/// Whether this failure is the one that locked the key (first delay, or the hard limit), which
/// is when the owner of an account hears about it.
pub fn just_locked(hit: &Hit, policy: &Policy) -> bool {
    hit.failures == policy.free + 1 || policy.hard == Some(hit.failures)
}
