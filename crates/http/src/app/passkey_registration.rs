//! Adding a passkey to one's account: the options for the authenticator, then its answer. Once
//! the account has a passkey, only a session a passkey signed in or confirmed adds or removes
//! one; the first passkey of a member of an organization that requires passkeys needs the
//! mailed enrollment link, and that organization's ADMINs are told.

use mos_db::passkeys::{self, Purpose, Stored};
use mos_db::{audit, orgs, users, DbError};
use mos_domain::events::{self, MEMBERSHIP};
use mos_domain::{AuditEvent, RequestSource, Role, TokenHash, UserId};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use webauthn_rs::prelude::{Credential, PasskeyRegistration, RegisterPublicKeyCredential};

use crate::app::passkeys::{begin, credentials, failed, parse_name, pass_gate, take, Gate, Started};
use crate::app::session::{self, event, Issued};
use crate::extract::{require_recent, Authenticated};
use crate::{ApiError, AppState};

/// The server side of a registration: the library's state, and the enrollment link it was
/// begun with (its hash), to be spent with the passkey it adds.
#[derive(Serialize, Deserialize)]
struct Registering {
    registration: PasskeyRegistration,
    enrollment: Option<[u8; 32]>,
}

/// Starts adding a passkey: the options for `navigator.credentials.create()`. Needs a recent
/// sign-in, and whatever the account's [`Gate`] asks (a passkey session, or the mailed link).
pub async fn start(
    state: &AppState,
    auth: Authenticated,
    source: &RequestSource,
    enrollment: Option<&SecretString>,
) -> Result<Started, ApiError> {
    require_recent(state, &auth.session)?;
    let link = match enrollment {
        Some(token) => Some(mos_auth::token::hash_presented(token).ok_or(ApiError::InvalidToken)?),
        None => None,
    };
    let Authenticated { session, mut tx } = auth;
    let gate = Gate::of(&mut tx).await?;
    let mut tx = pass_gate(state, &gate, &session, link.as_ref(), tx, source, "add").await?;
    let email = users::profile(&mut tx).await?.ok_or(ApiError::Unauthenticated)?.email;
    let existing: Vec<_> = credentials(&mut tx).await?.into_iter().map(|(_, p)| p.cred_id().clone()).collect();
    tx.commit().await?;
    let (options, registration) = state
        .webauthn
        .start_passkey_registration(session.user.as_uuid(), &email, &email, Some(existing))
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    let mut options = serde_json::to_value(&options).map_err(|e| ApiError::Internal(Box::new(e)))?;
    // Discoverable, so that it also signs in without a password.
    options["publicKey"]["authenticatorSelection"]["residentKey"] = json!("required");
    options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = json!(true);
    let kept = Registering { registration, enrollment: link.map(|h| h.0) };
    begin(state, Purpose::Register, Some(session.user), &kept, options).await
}

/// Finishes adding a passkey with the authenticator's answer: signs out every other session,
/// mails the account, and tells the ADMINs of a first passkey added through the mailed link.
pub async fn finish(
    state: &AppState,
    auth: Authenticated,
    source: &RequestSource,
    ceremony: &SecretString,
    name: &str,
    credential: &RegisterPublicKeyCredential,
) -> Result<(Stored, Issued), ApiError> {
    require_recent(state, &auth.session)?;
    let name = parse_name(name)?;
    let live = auth.release().await?;
    let (owner, Registering { registration, enrollment }) = take(state, ceremony, Purpose::Register).await?;
    if owner != Some(live.user) {
        return Err(ApiError::InvalidCeremony);
    }
    let passkey = match state.webauthn.finish_passkey_registration(credential, &registration) {
        Ok(passkey) => passkey,
        Err(e) => return Err(failed(state, Some(live.user), Purpose::Register, &e, source).await?),
    };
    let internals = Credential::from(passkey.clone());
    let stored = serde_json::to_value(&passkey).map_err(|e| ApiError::Internal(Box::new(e)))?;
    // What the browser says the authenticator can be reached by (the library keeps only its own
    // view of them).
    let mut transports: Vec<String> = credential
        .response
        .transports
        .iter()
        .chain(internals.transports.iter())
        .flatten()
        .filter_map(|t| serde_json::to_value(t).ok().and_then(|v| v.as_str().map(str::to_owned)))
        .collect();
    transports.sort();
    transports.dedup();
    let now = state.clock.now();
    let mut tx = state.pool.begin_user(live.user).await?;
    // Decided again where the passkey is added: the account may have changed since the options.
    let gate = Gate::of(&mut tx).await?;
    let link = enrollment.map(TokenHash);
    let mut tx = pass_gate(state, &gate, &live, link.as_ref(), tx, source, "add").await?;
    if let (Gate::EmailedLink(_), Some(link)) = (&gate, &link) {
        if !passkeys::spend_enrollment(&mut tx, link, now).await? {
            return Err(ApiError::InvalidToken);
        }
    }
    let new = passkeys::New {
        credential_id: passkey.cred_id().as_ref(),
        name: &name,
        credential: stored,
        sign_count: i64::from(internals.counter),
        backup_eligible: internals.backup_eligible,
        backup_state: internals.backup_state,
        transports,
        now,
    };
    let added = match passkeys::add(&mut tx, new).await {
        Err(DbError::Conflict { .. }) => return Err(ApiError::Conflict("this passkey is registered already")),
        other => other?,
    };
    let (revoked, issued) = session::restart(state, &mut tx, source, &live).await?;
    let record = event(events::PASSKEY_ADDED, source)
        .actor(live.user)
        .meta("passkey_id", json!(added.id))
        .meta("name", json!(added.name))
        .meta("sessions_revoked", json!(revoked));
    audit::record_platform(&mut tx, &record).await?;
    let email = users::profile(&mut tx).await?.ok_or(ApiError::Unauthenticated)?.email;
    tx.commit().await?;
    session::notify(state, &email, "A passkey was added", &format!("The passkey \"{}\" was added to your Marketing OS account, and every other session was signed out. If this was not you, reset your password and remove the passkey.", added.name));
    if let Gate::EmailedLink(strict) = gate {
        tell_admins(state, live.user, &email, &added, &strict, source).await?;
    }
    Ok((added, issued))
}

/// A member's first passkey, added through the mailed link, goes on the trail of each of their
/// organizations that require passkeys, and each one's ADMINs are mailed: whoever holds the
/// member's mailbox and password could have added it, and the ADMINs can check with the member.
async fn tell_admins(
    state: &AppState,
    user: UserId,
    email: &str,
    added: &Stored,
    strict: &[passkeys::StrictOrganization],
    source: &RequestSource,
) -> Result<(), ApiError> {
    for org in strict {
        let mut tx = state.pool.begin_user(user).await?.into_tenant(org.org).await?;
        // The directory (a definer's read) before the record: on Citus, a placement that
        // `app_user` has written cannot be read over the definer's connection in the same
        // transaction.
        let admins: Vec<String> = orgs::members(&mut tx)
            .await?
            .into_iter()
            .filter(|m| m.role == Role::Admin && m.user != user)
            .map(|m| m.email)
            .collect();
        let record = AuditEvent::new(events::MEMBER_PASSKEY_ENROLLED, MEMBERSHIP)
            .source(source.clone())
            .actor(user)
            .resource_id(user)
            .meta("passkey_id", json!(added.id))
            .meta("name", json!(added.name))
            .meta("via", json!("emailed_link"));
        audit::record(&mut tx, &record).await?;
        tx.commit().await?;
        let body = format!(
            "{email}, a member of {name} ({slug}) on Marketing OS, added their first passkey \"{passkey}\" through a link \
             mailed to their address. {name} requires passkeys, so that passkey now admits them.\n\n\
             If you cannot confirm with {email} that they did this, remove them from the organization at {url}/orgs/{slug}.\n",
            name = org.name.as_str(),
            slug = org.slug.as_str(),
            passkey = added.name,
            url = state.settings.public_url,
        );
        for admin in admins {
            let subject = format!("A member of {} added their first passkey", org.name.as_str());
            crate::mail::send_later(
                &state.mailer,
                crate::mail::letter(&state.settings.mail_from, &admin, &subject, body.clone()),
            );
        }
    }
    Ok(())
}
