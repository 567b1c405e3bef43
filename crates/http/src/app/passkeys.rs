//! Passkeys (WebAuthn) of an account: the relying party, what adding one takes (a recent
//! sign-in; with a passkey on the account, a session that one signed in or confirmed; for the
//! first passkey of a member of an organization that requires passkeys, a mailed link), and
//! the account's own list: renaming and removing; and what every ceremony shares: each is two
//! requests, the options, whose server side is kept in the database under a single-use handle
//! that expires ([`begin`]), and the authenticator's answer ([`take`], [`verify_assertion`]).
//! Signing in with a passkey is a sign-in step (`app::signin`).

use chrono::{DateTime, Duration, Utc};
use mos_auth::OneTimeToken;
use mos_db::passkeys::{self, Purpose, Stored};
use mos_db::{audit, sessions, users, UserTx};
use mos_domain::events::{self, USER};
use mos_domain::{AuditEvent, Outcome, RequestSource, TokenHash, UserId};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PublicKeyCredential, Url, Webauthn, WebauthnBuilder, WebauthnError,
};

use crate::app::session::{self, event, Issued};
use crate::extract::{require_recent, Authenticated};
use crate::{throttle, ApiError, AppState};

/// Why passkeys cannot work with a public URL.
#[derive(Debug, thiserror::Error)]
pub enum RelyingPartyError {
    #[error("the public URL {0:?} is not a URL")]
    NotUrl(String),
    #[error("passkeys need the public URL to name a host, not an IP address ({0}); use a DNS name, or localhost on this machine")]
    IpAddress(String),
    #[error("passkeys need the public URL to be https (browsers allow plain http only for localhost), got {0}")]
    NotSecure(String),
    #[error("the relying party cannot be set up from {0}: {1}")]
    Rejected(String, WebauthnError),
}

/// The relying party of the public URL: its host is the RP id, its origin the one origin that
/// ceremonies may come from.
pub fn relying_party(public_url: &str) -> Result<Webauthn, RelyingPartyError> {
    let url = Url::parse(public_url).map_err(|_| RelyingPartyError::NotUrl(public_url.to_owned()))?;
    let host = match (url.domain(), url.host_str()) {
        (Some(domain), _) => domain.to_owned(),
        (None, Some(address)) => return Err(RelyingPartyError::IpAddress(address.to_owned())),
        (None, None) => return Err(RelyingPartyError::NotUrl(public_url.to_owned())),
    };
    if url.scheme() != "https" && host != "localhost" {
        return Err(RelyingPartyError::NotSecure(public_url.to_owned()));
    }
    WebauthnBuilder::new(&host, &url)
        .and_then(|b| b.rp_name("Marketing OS").build())
        .map_err(|e| RelyingPartyError::Rejected(public_url.to_owned(), e))
}

pub fn parse_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if (1..=100).contains(&name.chars().count()) && !name.chars().any(char::is_control) {
        Ok(name.to_owned())
    } else {
        Err(ApiError::Invalid {
            field: "name",
            message: "name must be 1 to 100 characters without control characters".into(),
        })
    }
}

/// What adding a passkey takes for an account, beyond a recent sign-in. A credential that a
/// phishing-resistant policy relies on must not be obtainable with the credentials that policy
/// distrusts: a password and a relayed code.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// No passkey yet and no organization that requires one: the recent sign-in is enough.
    RecentSignIn,
    /// The account has a passkey: a session that one signed in or confirmed.
    PasskeySession,
    /// The first passkey of a member of these organizations: the link mailed to the account.
    EmailedLink(Vec<passkeys::StrictOrganization>),
}

impl Gate {
    pub async fn of(tx: &mut UserTx) -> Result<Self, ApiError> {
        if passkeys::any(tx).await? {
            return Ok(Gate::PasskeySession);
        }
        let strict = passkeys::strict_organizations(tx).await?;
        Ok(if strict.is_empty() { Gate::RecentSignIn } else { Gate::EmailedLink(strict) })
    }

    pub fn label(&self) -> &'static str {
        match self {
            Gate::RecentSignIn => "recent_sign_in",
            Gate::PasskeySession => "passkey_session",
            Gate::EmailedLink(_) => "emailed_link",
        }
    }
}

/// Refuses a change of passkeys that `gate` does not allow to `session`, on the account's
/// trail, so that the owner sees the attempt. `link` is the enrollment link presented, if any.
pub async fn pass_gate(
    state: &AppState,
    gate: &Gate,
    session: &sessions::Live,
    link: Option<&TokenHash>,
    mut tx: UserTx,
    source: &RequestSource,
    change: &str,
) -> Result<UserTx, ApiError> {
    let refusal = match gate {
        Gate::RecentSignIn => None,
        Gate::PasskeySession if session.phishing_resistant => None,
        Gate::PasskeySession => Some((ApiError::PasskeySessionRequired, "passkey_session_required")),
        Gate::EmailedLink(_) => match link {
            None => Some((ApiError::PasskeyEnrollmentLinkRequired, "enrollment_link_required")),
            Some(hash) if passkeys::enrollment_open(&mut tx, hash, state.clock.now()).await? => None,
            Some(_) => Some((ApiError::InvalidToken, "enrollment_link_invalid")),
        },
    };
    let Some((error, reason)) = refusal else {
        return Ok(tx);
    };
    tx.rollback().await?;
    let record =
        event(events::PASSKEY_CHANGE_REFUSED, source).meta("change", json!(change)).meta("reason", json!(reason));
    session::record_failure(state, session.user, record).await?;
    Err(error)
}

/// How long a mailed enrollment link works: long enough to open the mail, short enough that an
/// old mail found later is useless.
pub const ENROLLMENT_LINK_VALIDITY: Duration = Duration::minutes(30);

/// What adding a passkey takes for the user's account, and the slugs of the organizations
/// that require passkeys (for the first one).
pub async fn policy(auth: &mut Authenticated) -> Result<(Gate, Vec<String>), ApiError> {
    let gate = Gate::of(&mut auth.tx).await?;
    let organizations = match &gate {
        Gate::EmailedLink(strict) => strict.iter().map(|o| o.slug.as_str().to_owned()).collect(),
        _ => Vec::new(),
    };
    Ok((gate, organizations))
}

/// Mails the user a link that adds their first passkey, as a member of an organization that
/// requires passkeys. Needs a recent sign-in; the link works once, for 30 minutes, and
/// replaces any earlier one.
pub async fn mail_enrollment_link(
    state: &AppState,
    auth: Authenticated,
    source: &RequestSource,
) -> Result<(), ApiError> {
    require_recent(state, &auth.session)?;
    let Authenticated { session: live, mut tx } = auth;
    if !matches!(Gate::of(&mut tx).await?, Gate::EmailedLink(_)) {
        return Err(ApiError::Conflict(
            "no link is needed: add a passkey directly (with a passkey session if you have one already)",
        ));
    }
    let email = users::profile(&mut tx).await?.ok_or(ApiError::Unauthenticated)?.email;
    tx.commit().await?;
    throttle::mail(state, &crate::app::signin::parse_email(&email)?).await?;
    let now = state.clock.now();
    let token = OneTimeToken::generate(&mut rand::thread_rng());
    let mut tx = state.pool.begin_user(live.user).await?;
    passkeys::replace_enrollment(&mut tx, &token.hash, now, now + ENROLLMENT_LINK_VALIDITY).await?;
    audit::record_platform(&mut tx, &event(events::PASSKEY_ENROLLMENT_SENT, source).actor(live.user)).await?;
    tx.commit().await?;
    let body = format!(
        "Someone signed in to your Marketing OS account asked to add its first passkey.\n\n\
         To add it, open this link on the device that holds the passkey within 30 minutes:\n\n\
         {}/account/passkeys/enroll?token={}\n\n\
         The administrators of your organizations that require passkeys will be told when it is added. \
         If it was not you, do not open the link: someone knows your password. Reset it.\n",
        state.settings.public_url,
        token.secret.expose_secret()
    );
    crate::mail::send_later(
        &state.mailer,
        crate::mail::letter(&state.settings.mail_from, &email, "Add your first passkey", body),
    );
    Ok(())
}

/// The user's passkeys, oldest first.
pub async fn list(auth: &mut Authenticated) -> Result<Vec<Stored>, ApiError> {
    Ok(passkeys::list(&mut auth.tx).await?)
}

fn passkey_id(id: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::try_parse(id).map_err(|_| ApiError::NotFound)
}

/// Renames one of the user's passkeys.
pub async fn rename(auth: Authenticated, source: &RequestSource, id: &str, name: &str) -> Result<(), ApiError> {
    let Authenticated { session, mut tx } = auth;

    let id = passkey_id(id)?;
    let name = parse_name(name)?;
    if !passkeys::rename(&mut tx, id, &name).await? {
        return Err(ApiError::NotFound);
    }
    let record = event(events::PASSKEY_RENAMED, source)
        .actor(session.user)
        .meta("passkey_id", json!(id))
        .meta("name", json!(name));
    audit::record_platform(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes one of the user's passkeys, in a session that a passkey signed in or confirmed, and
/// recently; signs out every other session. The new session replaces this one.
pub async fn remove(
    state: &AppState,
    auth: Authenticated,
    source: &RequestSource,
    id: &str,
) -> Result<Issued, ApiError> {
    require_recent(state, &auth.session)?;
    let id = passkey_id(id)?;
    let Authenticated { session: live, mut tx } = auth;
    // Only a passkey session: otherwise a phished password removes the owner's passkeys.
    let gate = if passkeys::any(&mut tx).await? { Gate::PasskeySession } else { Gate::RecentSignIn };
    let mut tx = pass_gate(state, &gate, &live, None, tx, source, "remove").await?;
    let name = passkeys::remove(&mut tx, id).await?.ok_or(ApiError::NotFound)?;
    // A session a removed passkey established stays as strong as it was proved; the others end.
    let (revoked, issued) = session::restart(state, &mut tx, source, &live).await?;
    let record = event(events::PASSKEY_REMOVED, source)
        .actor(live.user)
        .meta("passkey_id", json!(id))
        .meta("name", json!(name))
        .meta("sessions_revoked", json!(revoked));
    audit::record_platform(&mut tx, &record).await?;
    let email = users::profile(&mut tx).await?.ok_or(ApiError::Unauthenticated)?.email;
    tx.commit().await?;
    session::notify(state, &email, "A passkey was removed", &format!("The passkey \"{name}\" was removed from your Marketing OS account, and every other session was signed out. If this was not you, reset your password."));
    Ok(issued)
}

/// How long a ceremony waits for the authenticator: WebAuthn's own recommendation for a
/// ceremony with user verification is up to ten minutes; five is plenty for a person.
pub const CEREMONY_VALIDITY: Duration = Duration::minutes(5);

pub async fn credentials(tx: &mut UserTx) -> Result<Vec<(Stored, Passkey)>, ApiError> {
    passkeys::list(tx)
        .await?
        .into_iter()
        .map(|stored| {
            let passkey: Passkey = serde_json::from_value(stored.credential.0.clone())
                .map_err(|e| ApiError::Internal(format!("stored passkey {} unreadable: {e}", stored.id).into()))?;
            Ok((stored, passkey))
        })
        .collect()
}

/// A ceremony begun: the handle that finishes it (good once, until `expires_at`), and the
/// options for the authenticator, in WebAuthn's JSON encoding.
pub struct Started {
    pub handle: String,
    pub options: serde_json::Value,
    pub expires_at: DateTime<Utc>,
}

/// Keeps the server side of a ceremony and hands out its options with the handle.
pub async fn begin<S: Serialize>(
    state: &AppState,
    purpose: Purpose,
    user: Option<UserId>,
    server_side: &S,
    options: impl Serialize,
) -> Result<Started, ApiError> {
    let options = serde_json::to_value(&options).map_err(|e| ApiError::Internal(Box::new(e)))?;
    let now = state.clock.now();
    let expires_at = now + CEREMONY_VALIDITY;
    let handle = OneTimeToken::generate(&mut rand::thread_rng());
    let kept = serde_json::to_value(server_side).map_err(|e| ApiError::Internal(Box::new(e)))?;
    passkeys::begin_ceremony(&state.pool, &handle.hash, purpose, user, kept, now, expires_at).await?;
    Ok(Started { handle: handle.secret.expose_secret().to_owned(), options, expires_at })
}

/// Spends the ceremony behind `handle`: its user and server side.
pub async fn take<S: serde::de::DeserializeOwned>(
    state: &AppState,
    handle: &SecretString,
    purpose: Purpose,
) -> Result<(Option<UserId>, S), ApiError> {
    let hash = mos_auth::token::hash_presented(handle).ok_or(ApiError::InvalidCeremony)?;
    let (user, kept) = passkeys::spend_ceremony(&state.pool, &hash, purpose, state.clock.now())
        .await?
        .ok_or(ApiError::InvalidCeremony)?;
    let server_side = serde_json::from_value(kept).map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok((user, server_side))
}

/// A failed ceremony, on the account's trail when the account is known: why, in the library's
/// words (never the credential itself).
pub async fn failed(
    state: &AppState,
    user: Option<UserId>,
    purpose: Purpose,
    error: &WebauthnError,
    source: &RequestSource,
) -> Result<ApiError, ApiError> {
    let cloned = matches!(error, WebauthnError::CredentialPossibleCompromise);
    let action = if cloned { events::PASSKEY_CLONED } else { events::PASSKEY_FAILED };
    let record =
        event(action, source).meta("ceremony", json!(purpose.as_str())).meta("reason", json!(error.to_string()));
    match user {
        Some(user) => session::record_failure(state, user, record).await?,
        None => {
            audit::record_platform_unattributed(&state.pool, &record.outcome(Outcome::Failure)).await?;
        }
    }
    Ok(if cloned { ApiError::PasskeyCloned } else { ApiError::PasskeyFailed })
}

/// Verifies an assertion against the user's passkeys and records the use: the passkey used.
pub async fn verify_assertion(
    state: &AppState,
    tx: &mut UserTx,
    check: impl FnOnce(&[(Stored, Passkey)]) -> Result<webauthn_rs::prelude::AuthenticationResult, WebauthnError>,
) -> Result<Result<Stored, WebauthnError>, ApiError> {
    let mine = credentials(tx).await?;
    let result = match check(&mine) {
        Ok(result) => result,
        Err(e) => return Ok(Err(e)),
    };
    let Some((stored, mut passkey)) = mine.into_iter().find(|(_, p)| p.cred_id() == result.cred_id()) else {
        return Ok(Err(WebauthnError::CredentialNotFound));
    };
    passkey.update_credential(&result);
    let updated = serde_json::to_value(&passkey).map_err(|e| ApiError::Internal(Box::new(e)))?;
    let count = i64::from(result.counter());
    passkeys::used(tx, stored.id, updated, count, result.backup_state(), state.clock.now()).await?;
    Ok(Ok(stored))
}

/// Options for a ceremony in which one of the passkeys of the user of `tx` answers.
pub async fn prove_one_of(
    state: &AppState,
    mut tx: UserTx,
    purpose: Purpose,
    none: &'static str,
) -> Result<Started, ApiError> {
    let user = tx.user();
    let mine: Vec<Passkey> = credentials(&mut tx).await?.into_iter().map(|(_, p)| p).collect();
    tx.commit().await?;
    if mine.is_empty() {
        return Err(ApiError::Conflict(none));
    }
    let (options, authentication) =
        state.webauthn.start_passkey_authentication(&mine).map_err(|e| ApiError::Internal(Box::new(e)))?;
    begin(state, purpose, Some(user), &authentication, options).await
}

/// Options to confirm it is the session's user with one of their passkeys.
pub async fn reauthenticate_options(state: &AppState, auth: Authenticated) -> Result<Started, ApiError> {
    let none = "you have no passkey; confirm with your password instead";
    prove_one_of(state, auth.tx, Purpose::Reauthenticate, none).await
}

/// Confirms it is the session's user with one of their passkeys: the session counts as a recent
/// sign-in, and as phishing-resistant from now on.
pub async fn reauthenticate(
    state: &AppState,
    auth: Authenticated,
    source: &RequestSource,
    ceremony: &SecretString,
    credential: &PublicKeyCredential,
) -> Result<(), ApiError> {
    let live = auth.release().await?;
    let (owner, authentication): (_, PasskeyAuthentication) = take(state, ceremony, Purpose::Reauthenticate).await?;
    if owner != Some(live.user) {
        return Err(ApiError::InvalidCeremony);
    }
    let mut tx = state.pool.begin_user(live.user).await?;
    let verified =
        verify_assertion(state, &mut tx, |_| state.webauthn.finish_passkey_authentication(credential, &authentication))
            .await?;
    let used = match verified {
        Ok(used) => used,
        Err(e) => {
            tx.rollback().await?;
            return Err(failed(state, Some(live.user), Purpose::Reauthenticate, &e, source).await?);
        }
    };
    sessions::reauthenticated(&mut tx, live.id, state.clock.now(), true).await?;
    let record = AuditEvent::new(events::REAUTHENTICATED, USER)
        .source(source.clone())
        .actor(live.user)
        .meta("passkey", json!({ "id": used.id, "name": used.name }));
    audit::record_platform(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{relying_party, RelyingPartyError};

    #[test]
    fn passkeys_need_a_host_name_over_https_or_localhost() {
        assert!(relying_party("https://marketing-os.example").is_ok());
        assert!(relying_party("http://localhost:8080").is_ok());
        assert!(matches!(relying_party("http://127.0.0.1:8080"), Err(RelyingPartyError::IpAddress(_))));
        assert!(matches!(relying_party("https://[::1]:8443"), Err(RelyingPartyError::IpAddress(_))));
        assert!(matches!(relying_party("http://marketing-os.example"), Err(RelyingPartyError::NotSecure(_))));
        assert!(matches!(relying_party("not a url"), Err(RelyingPartyError::NotUrl(_))));
        let message = relying_party("http://10.0.0.5").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("not an IP address (10.0.0.5)"), "{message}");
    }
}
