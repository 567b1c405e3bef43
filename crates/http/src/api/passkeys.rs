//! Passkeys (WebAuthn) with `webauthn-rs`: registering them after a recent sign-in (with a
//! passkey session once the account has one, and through a mailed link for the first passkey of
//! a member of an organization that requires passkeys), listing,
//! renaming and removing them, and signing in with one, as the second factor after the
//! password or without a password (a discoverable credential), and confirming a session with
//! one (step-up). Every ceremony is two requests: the options, whose server side is kept in the
//! database under a single-use handle that expires, and the authenticator's answer. A session
//! that a passkey established (or confirmed) is phishing-resistant, which an organization may
//! require.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use mos_db::passkeys::{self, Purpose, Stored};
use mos_db::{audit, orgs, sessions, users, DbError};
use mos_domain::events::{self, MEMBERSHIP, USER};
use mos_domain::{AuditEvent, RequestSource, Role, TokenHash, UserId};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use webauthn_rs::prelude::{
    Credential, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
};

use crate::api::account::Restarted;
use crate::api::signin::{signed_in, LoginOutcome};
use crate::app;
use crate::app::passkeys::{
    begin, credentials, failed, parse_name, pass_gate, prove_one_of, take, verify_assertion, Gate, Started,
};
use crate::app::session::{self, event};
use crate::app::signin;
use crate::extract::{require_recent, ApiJson, Authenticated, Client};
use crate::{throttle, ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(passkey_registration_options))
        .routes(routes!(passkey_enrollment_link))
        .routes(routes!(passkey_policy))
        .routes(routes!(list_passkeys, register_passkey))
        .routes(routes!(rename_passkey, remove_passkey))
        .routes(routes!(passkey_second_factor_options))
        .routes(routes!(passkey_second_factor))
        .routes(routes!(passkey_sign_in_options))
        .routes(routes!(passkey_sign_in))
        .routes(routes!(passkey_reauthenticate_options))
        .routes(routes!(passkey_reauthenticate))
}

/// The options of a ceremony, for `navigator.credentials.create()` or `.get()`, and the handle
/// that finishes it.
#[derive(Serialize, ToSchema)]
pub struct Ceremony {
    /// Send back with the authenticator's answer; good once, until `expires_at`.
    ceremony: String,
    /// `{"publicKey": {...}}` with binary fields in base64url, as WebAuthn's JSON encoding.
    #[schema(value_type = Object)]
    options: Value,
    expires_at: DateTime<Utc>,
}

impl From<Started> for Ceremony {
    fn from(started: Started) -> Self {
        Self { ceremony: started.handle, options: started.options, expires_at: started.expires_at }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyView {
    id: uuid::Uuid,
    name: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    /// The authenticator may sync it to other devices (a synced passkey).
    backup_eligible: bool,
    /// It is synced now.
    backup_state: bool,
    transports: Vec<String>,
}

impl From<Stored> for PasskeyView {
    fn from(s: Stored) -> Self {
        Self {
            id: s.id,
            name: s.name,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            backup_eligible: s.backup_eligible,
            backup_state: s.backup_state,
            transports: s.transports,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Added {
    passkey: PasskeyView,
    /// Every other session was signed out; this one replaces the session that added it.
    session: session::SessionView,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPasskey {
    #[schema(value_type = String)]
    ceremony: SecretString,
    /// 1 to 100 characters, e.g. the device.
    #[schema(example = "Work laptop", min_length = 1, max_length = 100)]
    name: String,
    /// The `PublicKeyCredential` that `navigator.credentials.create()` returned, in WebAuthn's
    /// JSON encoding.
    #[schema(value_type = Object)]
    credential: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyName {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assertion {
    #[schema(value_type = String)]
    ceremony: SecretString,
    /// The `PublicKeyCredential` that `navigator.credentials.get()` returned, in WebAuthn's JSON
    /// encoding.
    #[schema(value_type = Object)]
    credential: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeOnly {
    /// The challenge of `POST /v1/auth/login`.
    #[schema(value_type = String)]
    challenge: SecretString,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorAssertion {
    #[schema(value_type = String)]
    challenge: SecretString,
    #[schema(value_type = String)]
    ceremony: SecretString,
    #[schema(value_type = Object)]
    credential: Value,
}

/// The user's passkeys as the relying party library takes them, with their row ids.
fn parse<T: serde::de::DeserializeOwned>(credential: Value) -> Result<T, ApiError> {
    serde_json::from_value(credential)
        .map_err(|e| ApiError::Invalid { field: "credential", message: format!("not a WebAuthn credential: {e}") })
}

/// What the user's account needs to add a passkey.
#[derive(Serialize, ToSchema)]
pub struct PasskeyPolicy {
    /// `recent_sign_in` (no passkey yet), `passkey_session` (the account has a passkey: sign in
    /// or confirm with one), or `emailed_link` (the first passkey of a member of an
    /// organization that requires passkeys: ask for a link with `POST /v1/me/passkeys/enrollment`).
    #[schema(example = "emailed_link")]
    add: &'static str,
    /// Whether this session may add or remove passkeys now as far as passkeys go (a recent
    /// sign-in is needed too).
    session_is_phishing_resistant: bool,
    /// The organizations that require passkeys, whose ADMINs are told of a first passkey.
    organizations: Vec<String>,
}

/// What adding a passkey takes for your account.
#[utoipa::path(get, path = "/v1/me/passkeys/policy", tag = "account",
    responses((status = 200, body = PasskeyPolicy)))]
async fn passkey_policy(mut auth: Authenticated) -> Result<Json<PasskeyPolicy>, ApiError> {
    let (gate, organizations) = app::passkeys::policy(&mut auth).await?;
    auth.tx.commit().await?;
    Ok(Json(PasskeyPolicy {
        add: gate.label(),
        session_is_phishing_resistant: auth.session.phishing_resistant,
        organizations,
    }))
}

/// Mail yourself a link that adds your first passkey, as a member of an organization that
/// requires passkeys. Needs a recent sign-in; the link works once, for 30 minutes, for this
/// account only, and replaces any earlier one.
#[utoipa::path(post, path = "/v1/me/passkeys/enrollment", tag = "account",
    responses(
        (status = 202, description = "The link is on its way to your address"),
        (status = 403, description = "Reauthenticate first"),
        (status = 409, description = "No link is needed: you have a passkey, or belong to no organization that requires one"),
        (status = 429, description = "Too many emails to your address"),
    ))]
async fn passkey_enrollment_link(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
) -> Result<StatusCode, ApiError> {
    app::passkeys::mail_enrollment_link(&state, auth, &source).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The optional body of `POST /v1/me/passkeys/options`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationStart {
    /// The token of the mailed enrollment link, for the first passkey of a member of an
    /// organization that requires passkeys.
    #[schema(value_type = Option<String>)]
    enrollment: Option<SecretString>,
}

/// The server side of a registration: the library's state, and the enrollment link it was
/// begun with (its hash), to be spent with the passkey it adds.
#[derive(Serialize, Deserialize)]
struct Registering {
    registration: PasskeyRegistration,
    enrollment: Option<[u8; 32]>,
}

/// Start adding a passkey: options for `navigator.credentials.create()`. Needs a recent sign-in;
/// with a passkey on the account, a session that a passkey signed in or confirmed; for the
/// first passkey of a member of an organization that requires passkeys, the token of the mailed
/// enrollment link.
#[utoipa::path(post, path = "/v1/me/passkeys/options", tag = "account", request_body(content = Option<RegistrationStart>),
    responses(
        (status = 200, body = Ceremony),
        (status = 400, description = "The enrollment link is invalid, expired or used"),
        (status = 403, description = "Reauthenticate first; or a passkey session is required; or the mailed enrollment link is"),
    ))]
async fn passkey_registration_options(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    body: Option<ApiJson<RegistrationStart>>,
) -> Result<Json<Ceremony>, ApiError> {
    require_recent(&state, &auth.session)?;
    let link = match body.and_then(|ApiJson(b)| b.enrollment) {
        Some(token) => Some(mos_auth::token::hash_presented(&token).ok_or(ApiError::InvalidToken)?),
        None => None,
    };
    let Authenticated { session, mut tx } = auth;
    let gate = Gate::of(&mut tx).await?;
    let mut tx = pass_gate(&state, &gate, &session, link.as_ref(), tx, &source, "add").await?;
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
    Ok(Json(begin(&state, Purpose::Register, Some(session.user), &kept, options).await?.into()))
}

/// Your passkeys, oldest first.
#[utoipa::path(get, path = "/v1/me/passkeys", tag = "account",
    responses((status = 200, body = Vec<PasskeyView>)))]
async fn list_passkeys(mut auth: Authenticated) -> Result<Json<Vec<PasskeyView>>, ApiError> {
    let all = app::passkeys::list(&mut auth).await?;
    auth.tx.commit().await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

/// Finish adding a passkey with the authenticator's answer. Signs out every other session and
/// mails you.
#[utoipa::path(post, path = "/v1/me/passkeys", tag = "account", request_body = NewPasskey,
    responses(
        (status = 201, body = Added, description = "Added; the new session replaces the old one (cookie set too)"),
        (status = 401, description = "The ceremony is invalid, expired or used, or the authenticator's answer does not verify"),
        (status = 400, description = "The enrollment link is invalid, expired or used"),
        (status = 403, description = "Reauthenticate first; or a passkey session is required; or the mailed enrollment link is"),
        (status = 409, description = "This passkey is registered already"),
    ))]
async fn register_passkey(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    ApiJson(body): ApiJson<NewPasskey>,
) -> Result<Response, ApiError> {
    require_recent(&state, &auth.session)?;
    let name = parse_name(&body.name)?;
    let credential: RegisterPublicKeyCredential = parse(body.credential)?;
    let live = auth.release().await?;
    let (owner, Registering { registration, enrollment }) = take(&state, &body.ceremony, Purpose::Register).await?;
    if owner != Some(live.user) {
        return Err(ApiError::InvalidCeremony);
    }
    let passkey = match state.webauthn.finish_passkey_registration(&credential, &registration) {
        Ok(passkey) => passkey,
        Err(e) => return Err(failed(&state, Some(live.user), Purpose::Register, &e, &source).await?),
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
    let mut tx = pass_gate(&state, &gate, &live, link.as_ref(), tx, &source, "add").await?;
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
    let (revoked, issued) = session::restart(&state, &mut tx, &source, &live).await?;
    let record = event(events::PASSKEY_ADDED, &source)
        .actor(live.user)
        .meta("passkey_id", json!(added.id))
        .meta("name", json!(added.name))
        .meta("sessions_revoked", json!(revoked));
    audit::record_platform(&mut tx, &record).await?;
    let email = users::profile(&mut tx).await?.ok_or(ApiError::Unauthenticated)?.email;
    tx.commit().await?;
    session::notify(&state, &email, "A passkey was added", &format!("The passkey \"{}\" was added to your Marketing OS account, and every other session was signed out. If this was not you, reset your password and remove the passkey.", added.name));
    if let Gate::EmailedLink(strict) = gate {
        tell_admins(&state, live.user, &email, &added, &strict, &source).await?;
    }
    Ok(issued.respond_with(StatusCode::CREATED, |session| Added { passkey: added.into(), session }))
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

/// Rename one of your passkeys.
#[utoipa::path(patch, path = "/v1/me/passkeys/{id}", tag = "account", request_body = PasskeyName,
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 204, description = "Renamed"),
        (status = 404, description = "No such passkey of yours"),
    ))]
async fn rename_passkey(
    Client(source): Client,
    auth: Authenticated,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PasskeyName>,
) -> Result<StatusCode, ApiError> {
    app::passkeys::rename(auth, &source, &id, &body.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove one of your passkeys. Needs a recent sign-in in a session that a passkey signed in or
/// confirmed; signs out every other session and mails you. Your password and two-factor (or
/// recovery codes) still sign you in.
#[utoipa::path(delete, path = "/v1/me/passkeys/{id}", tag = "account",
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = Restarted, description = "Removed; the new session replaces the old one (cookie set too)"),
        (status = 403, description = "Reauthenticate first, or a passkey session is required"),
        (status = 404, description = "No such passkey of yours"),
    ))]
async fn remove_passkey(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let issued = app::passkeys::remove(&state, auth, &source, &id).await?;
    Ok(issued.respond_with(StatusCode::OK, |session| Restarted { session }))
}

/// Options to complete a sign-in with a passkey instead of a code, after the password.
#[utoipa::path(post, path = "/v1/auth/login/passkey/options", tag = "auth", request_body = ChallengeOnly,
    responses(
        (status = 200, body = Ceremony),
        (status = 401, description = "The sign-in challenge is invalid or expired"),
        (status = 409, description = "The account has no passkey"),
    ))]
async fn passkey_second_factor_options(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ChallengeOnly>,
) -> Result<Json<Ceremony>, ApiError> {
    let hash = mos_auth::token::hash_presented(&body.challenge).ok_or(ApiError::InvalidChallenge)?;
    // Counts as one of the challenge's attempts, like a code would.
    let sessions::ChallengeAttempt { user, .. } =
        sessions::attempt_challenge(&state.pool, &hash, state.clock.now(), crate::app::signin::CHALLENGE_ATTEMPTS)
            .await?
            .ok_or(ApiError::InvalidChallenge)?;
    let tx = state.pool.begin_user(user).await?;
    let none = "this account has no passkey; use a code from your authenticator app";
    Ok(Json(prove_one_of(&state, tx, Purpose::SecondFactor, none).await?.into()))
}

/// Complete a sign-in with a passkey instead of a code. The session is phishing-resistant.
#[utoipa::path(post, path = "/v1/auth/login/passkey", tag = "auth", request_body = SecondFactorAssertion,
    responses(
        (status = 200, body = LoginOutcome, description = "Signed in; also sets the session cookie"),
        (status = 401, description = "The challenge or ceremony is invalid, expired or used, or the passkey's answer does not verify (a replayed or cloned one included)"),
    ))]
async fn passkey_second_factor(
    State(state): State<AppState>,
    Client(source): Client,
    ApiJson(body): ApiJson<SecondFactorAssertion>,
) -> Result<Response, ApiError> {
    let credential: PublicKeyCredential = parse(body.credential)?;
    let signed = signin::passkey_second_factor(&state, &source, &body.challenge, &body.ceremony, &credential).await?;
    Ok(signed_in(signed))
}

/// Options for signing in with a passkey alone: the authenticator offers the accounts it holds
/// for this site.
#[utoipa::path(post, path = "/v1/auth/passkey/options", tag = "auth",
    responses(
        (status = 200, body = Ceremony),
        (status = 429, description = "Too many attempts from this address"),
    ))]
async fn passkey_sign_in_options(
    State(state): State<AppState>,
    Client(source): Client,
) -> Result<Json<Ceremony>, ApiError> {
    // Every ceremony is a row until it expires: an address may not start them without end.
    throttle::attempt(&state, &throttle::address_key("passkey", &source), &throttle::address()).await?;
    let (mut options, authentication) =
        state.webauthn.start_discoverable_authentication().map_err(|e| ApiError::Internal(Box::new(e)))?;
    // A button the user presses, not the autofill of a form field.
    options.mediation = None;
    Ok(Json(begin(&state, Purpose::Passwordless, None, &authentication, options).await?.into()))
}

/// Sign in with a passkey alone. The session is phishing-resistant.
#[utoipa::path(post, path = "/v1/auth/passkey", tag = "auth", request_body = Assertion,
    responses(
        (status = 200, body = LoginOutcome, description = "Signed in; also sets the session cookie"),
        (status = 401, description = "The ceremony is invalid, expired or used, or the passkey's answer does not verify (a replayed or cloned one included)"),
    ))]
async fn passkey_sign_in(
    State(state): State<AppState>,
    Client(source): Client,
    ApiJson(body): ApiJson<Assertion>,
) -> Result<Response, ApiError> {
    let credential: PublicKeyCredential = parse(body.credential)?;
    Ok(signed_in(signin::passkey_alone(&state, &source, &body.ceremony, &credential).await?))
}

/// Options to confirm it is you with a passkey, for changes that need a recent sign-in.
#[utoipa::path(post, path = "/v1/me/reauthenticate/passkey/options", tag = "account",
    responses(
        (status = 200, body = Ceremony),
        (status = 409, description = "You have no passkey"),
    ))]
async fn passkey_reauthenticate_options(
    State(state): State<AppState>,
    Authenticated { tx, .. }: Authenticated,
) -> Result<Json<Ceremony>, ApiError> {
    let none = "you have no passkey; confirm with your password instead";
    Ok(Json(prove_one_of(&state, tx, Purpose::Reauthenticate, none).await?.into()))
}

/// Confirm it is you with a passkey: the session counts as a recent sign-in, and as
/// phishing-resistant from now on.
#[utoipa::path(post, path = "/v1/me/reauthenticate/passkey", tag = "account", request_body = Assertion,
    responses(
        (status = 204, description = "Confirmed"),
        (status = 401, description = "The ceremony is invalid, expired or used, or the passkey's answer does not verify"),
    ))]
async fn passkey_reauthenticate(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    ApiJson(body): ApiJson<Assertion>,
) -> Result<StatusCode, ApiError> {
    let credential: PublicKeyCredential = parse(body.credential)?;
    let live = auth.release().await?;
    let (owner, authentication): (_, PasskeyAuthentication) =
        take(&state, &body.ceremony, Purpose::Reauthenticate).await?;
    if owner != Some(live.user) {
        return Err(ApiError::InvalidCeremony);
    }
    let mut tx = state.pool.begin_user(live.user).await?;
    let verified = verify_assertion(&state, &mut tx, |_| {
        state.webauthn.finish_passkey_authentication(&credential, &authentication)
    })
    .await?;
    let used = match verified {
        Ok(used) => used,
        Err(e) => {
            tx.rollback().await?;
            return Err(failed(&state, Some(live.user), Purpose::Reauthenticate, &e, &source).await?);
        }
    };
    sessions::reauthenticated(&mut tx, live.id, state.clock.now(), true).await?;
    let record = AuditEvent::new(events::REAUTHENTICATED, USER)
        .source(source.clone())
        .actor(live.user)
        .meta("passkey", json!({ "id": used.id, "name": used.name }));
    audit::record_platform(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
