//! The public double opt-in sign-up of an organization: a person with no account asks, on the
//! organization's form, to hear from it for a purpose; the database records a pending grant
//! with the notice they were shown and the evidence, a link goes to the address, and following
//! it (with a POST: mail scanners open links) records the confirmation.
//!
//! The answer to a sign-up is the same whether the address is new to the organization, a known
//! contact, suppressed, already consented, or past its mail limit, and what is stored for a
//! suppressed address is what is stored for any other until the person confirms: only the
//! mailbox learns anything.

use chrono::Duration;
use mos_auth::OneTimeToken;
use mos_db::audiences::consent::{self, Basis, Evidence, Provenance, Record};
use mos_db::audiences::signup::{self, Organization, Pending};
use mos_db::throttle::Rate;
use mos_db::{audit, DbError, TenantTx};
use mos_domain::audiences::{ConsentKind, ConsentState};
use mos_domain::content::ContentHash;
use mos_domain::events::{SIGNUP, SIGNUP_CONFIRMATION_FAILED};
use mos_domain::{AuditEvent, Outcome, PurposeId, RequestSource, Slug};
use secrecy::{ExposeSecret, SecretString};

use crate::app::signin::parse_email;
use crate::{mail, throttle, ApiError, AppState};

/// How long a mailed confirmation link works.
pub const CONFIRMATION_VALIDITY: Duration = Duration::hours(48);

/// Sign-ups one client address may send, to any organization: ten an hour.
pub const PER_CLIENT: Rate = Rate { limit: 10, window: Duration::hours(1) };

/// Confirmation mails one organization's forms may send: five hundred an hour, so that a
/// script feeding its form other people's addresses cannot spend the organization's sending
/// reputation. The platform has no other per-organization mail limit.
pub const PER_ORGANIZATION: Rate = Rate { limit: 500, window: Duration::hours(1) };

/// What a sign-up page shows.
#[derive(Debug, Clone)]
pub struct SignupForm {
    pub organization: String,
    pub purpose: PurposeId,
    pub purpose_name: String,
    pub notice: ContentHash,
    pub notice_text: String,
}

/// What a confirmation link confirms, as its pages say it.
#[derive(Debug, Clone)]
pub struct Confirmation {
    pub organization: String,
    pub purpose_name: String,
}

/// The organization of a public page; an unknown or malformed slug is not found.
async fn organization(state: &AppState, slug: &str) -> Result<(Slug, Organization), ApiError> {
    let slug = Slug::parse(slug).map_err(|_| ApiError::NotFound)?;
    let org = signup::organization(&state.pool, &slug).await?.ok_or(ApiError::NotFound)?;
    Ok((slug, org))
}

/// A link naming an organization that does not exist is a link that does not work.
fn not_found_is_invalid(error: ApiError) -> ApiError {
    match error {
        ApiError::NotFound => ApiError::InvalidToken,
        other => other,
    }
}

/// The form of `purpose` in `tx`'s organization, or not found.
async fn form_in(tx: &mut TenantTx, purpose: &str) -> Result<signup::Form, ApiError> {
    let purpose = PurposeId::parse(purpose).map_err(|_| ApiError::NotFound)?;
    signup::form(tx, purpose).await?.ok_or(ApiError::NotFound)
}

/// The sign-up form of an organization's purpose: its name and current notice. Not found for
/// an unknown organization or purpose, one without a notice, and one that needs a HIPAA
/// authorization (a sign-up form does not collect its elements).
pub async fn form(state: &AppState, slug: &str, purpose: &str) -> Result<SignupForm, ApiError> {
    let (_, org) = organization(state, slug).await?;
    let mut tx = state.pool.begin_tenant(org.id, None).await?;
    let form = form_in(&mut tx, purpose).await?;
    tx.commit().await?;
    Ok(SignupForm {
        organization: org.name,
        purpose: form.purpose,
        purpose_name: form.purpose_name,
        notice: form.notice,
        notice_text: form.notice_text,
    })
}

/// What a person sent on a sign-up form.
pub struct Request<'a> {
    pub purpose: &'a str,
    pub email: &'a str,
    /// The hex SHA-256 of the notice the form showed.
    pub notice: &'a str,
    /// The box saying they agree to the notice was ticked.
    pub consent: bool,
}

/// Takes a sign-up: records a pending grant with the notice shown and the evidence, and mails
/// the link that confirms it. The same `Ok` for every address; refusals are about the request
/// (a field, the organization, the purpose, the client's or the organization's rate), never
/// about the address's history.
pub async fn sign_up(
    state: &AppState,
    source: &RequestSource,
    slug: &str,
    request: &Request<'_>,
) -> Result<(), ApiError> {
    throttle::within(state, &throttle::address_key("signup", source), &PER_CLIENT).await?;
    let email = parse_email(request.email)?;
    let notice = ContentHash::parse(request.notice).map_err(|_| ApiError::Invalid {
        field: "notice_sha256",
        message: "the notice's SHA-256, as 64 hexadecimal digits".to_owned(),
    })?;
    if !request.consent {
        return Err(ApiError::Invalid {
            field: "consent",
            message: "tick the box to say you agree to the notice".to_owned(),
        });
    }
    let (slug, org) = organization(state, slug).await?;
    // Within the address's mail limit, or nothing is recorded or sent: an answer that differs
    // would tell whoever asks that the address got mail within the hour.
    if !throttle::mail(state, &email).await? {
        return Ok(());
    }
    throttle::within(state, &format!("signup:org:{}", org.id), &PER_ORGANIZATION).await?;
    let now = state.clock.now();
    let mut tx = state.pool.begin_tenant(org.id, None).await?;
    let form = form_in(&mut tx, request.purpose).await?;
    if form.notice != notice {
        return Err(ApiError::Invalid {
            field: "notice_sha256",
            message: "the notice has changed since the form was opened; open it again and read the new one".to_owned(),
        });
    }
    let contact = signup::contact_for(&mut tx, state.sealer.address_keys(), &email, now, source).await?;
    // A confirmed consent stays as it is: otherwise anyone could turn it back into a pending
    // one by typing the address.
    let current = consent::current(&mut tx, contact, form.purpose).await?;
    if current.is_some_and(|c| c.state == ConsentState::Granted) {
        signup::repeated(&mut tx, contact, form.purpose, source).await?;
        tx.commit().await?;
        return Ok(());
    }
    let evidence = Evidence { ip: source.ip, user_agent: source.user_agent.clone() };
    let record = Record {
        contact,
        purpose: form.purpose,
        kind: ConsentKind::Grant,
        basis: Some(&Basis::Consent),
        notice: Some(notice),
        provenance: Provenance::SignupForm,
        evidence: Some(&evidence),
        now,
    };
    let (grant, _) = consent::append(&mut tx, &record, source).await?;
    let token = OneTimeToken::generate(&mut rand::thread_rng());
    let pending = Pending { contact, purpose: form.purpose, grant };
    signup::issue(&mut tx, &token.hash, &pending, now, now + CONFIRMATION_VALIDITY).await?;
    tx.commit().await?;
    let link =
        format!("{}/o/{}/confirm?token={}", state.settings.public_url, slug.as_str(), token.secret.expose_secret());
    let body = format!(
        "You asked {} to write to you about: {}.\n\nTo confirm, open this link within 48 hours and press the button on the page:\n\n{link}\n\n\
         If it was not you, ignore this message: nothing will be sent to you.\n",
        org.name, form.purpose_name
    );
    mail::send_later(
        &state.mailer,
        mail::letter(&state.settings.mail_from, email.as_str(), "Confirm your subscription", body),
    );
    Ok(())
}

/// The refusal of a confirmation link, recorded on the organization's trail (never the token)
/// in a transaction of its own, so that it outlives the rollback of the attempt.
async fn refuse(state: &AppState, org: &Organization, source: &RequestSource) -> ApiError {
    let event = AuditEvent::new(SIGNUP_CONFIRMATION_FAILED, SIGNUP).source(source.clone()).outcome(Outcome::Failure);
    let recorded = async {
        let mut tx = state.pool.begin_tenant(org.id, None).await?;
        audit::record(&mut tx, &event).await?;
        tx.commit().await
    };
    match recorded.await {
        Ok(()) => ApiError::InvalidToken,
        Err(e) => e.into(),
    }
}

/// What the link of `token` would confirm, spending nothing: the page a mail scanner may open
/// shows a button and changes nothing. Counted against the client address like any use of a
/// token, so that it cannot be used to test guessed tokens.
pub async fn pending(
    state: &AppState,
    source: &RequestSource,
    slug: &str,
    token: &SecretString,
) -> Result<Confirmation, ApiError> {
    throttle::attempt(state, &throttle::address_key("signup_confirm", source), &throttle::address()).await?;
    let (_, org) = organization(state, slug).await.map_err(not_found_is_invalid)?;
    let Some(hash) = mos_auth::token::hash_presented(token) else { return Err(refuse(state, &org, source).await) };
    let mut tx = state.pool.begin_tenant(org.id, None).await?;
    let Some(found) = signup::peek(&mut tx, &hash, state.clock.now()).await? else {
        tx.rollback().await?;
        return Err(refuse(state, &org, source).await);
    };
    let purpose_name = signup::purpose_name(&mut tx, found.purpose).await?.unwrap_or_default();
    tx.commit().await?;
    Ok(Confirmation { organization: org.name, purpose_name })
}

/// Confirms the sign-up of the link of `token`: spends the link and records the confirmation,
/// with this request's evidence, together. An unknown, spent, expired or other organization's
/// link, and one whose sign-up is no longer pending (a later revocation, an erasure), changes
/// nothing and is refused as an invalid token.
pub async fn confirm(
    state: &AppState,
    source: &RequestSource,
    slug: &str,
    token: &SecretString,
) -> Result<Confirmation, ApiError> {
    throttle::attempt(state, &throttle::address_key("signup_confirm", source), &throttle::address()).await?;
    let (_, org) = organization(state, slug).await.map_err(not_found_is_invalid)?;
    let Some(hash) = mos_auth::token::hash_presented(token) else { return Err(refuse(state, &org, source).await) };
    let now = state.clock.now();
    let mut tx = state.pool.begin_tenant(org.id, None).await?;
    let Some(found) = signup::spend(&mut tx, &hash, now).await? else {
        tx.rollback().await?;
        return Err(refuse(state, &org, source).await);
    };
    let evidence = Evidence { ip: source.ip, user_agent: source.user_agent.clone() };
    let record = Record {
        contact: found.contact,
        purpose: found.purpose,
        kind: ConsentKind::Confirm,
        basis: None,
        notice: None,
        provenance: Provenance::SignupForm,
        evidence: Some(&evidence),
        now,
    };
    match consent::append(&mut tx, &record, source).await {
        Ok(_) => {}
        // The ledger's rules refuse it (no longer pending, an erased contact): the link is
        // given back by the rollback, and is as dead as a spent one.
        Err(DbError::Invalid { .. }) => {
            tx.rollback().await?;
            return Err(refuse(state, &org, source).await);
        }
        Err(other) => return Err(other.into()),
    }
    let purpose_name = signup::purpose_name(&mut tx, found.purpose).await?.unwrap_or_default();
    tx.commit().await?;
    Ok(Confirmation { organization: org.name, purpose_name })
}
