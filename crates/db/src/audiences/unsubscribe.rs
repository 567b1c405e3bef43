//! What a message's unsubscribe link does (docs/consent.md, "Unsubscribe and the preference
//! centre"): the one-click unsubscribe of RFC 8058 revokes the contact's consent for the
//! message's purpose and suppresses its address, and the preference centre the link opens turns
//! each of the organization's email purposes on or off. Every change is a consent event with the
//! person as its author ([`Provenance::Unsubscribe`], [`Provenance::PreferenceCentre`]); the
//! link's token, which names the contact, is checked by the server before anything here runs.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::consent::{self, Basis, Evidence, Provenance, Record};
use super::suppression;
use crate::error::stored;
use crate::{audit, Result, TenantTx};
use mos_domain::audiences::{AddressKey, ConsentKind, ConsentState, SuppressionReason};
use mos_domain::content::ContentHash;
use mos_domain::events::{CONTACT, CONTACT_VIEWED};
use mos_domain::{AuditEvent, ContactId, PurposeId, RequestSource};

/// The contact a link names, as its pages need it.
#[derive(Debug, Clone)]
pub struct Person {
    /// The organization's name, which heads the pages.
    pub organization: String,
    /// Its address, to show masked; `None` once erased.
    pub address: Option<String>,
    pub address_key: Option<AddressKey>,
}

/// Whether a read of a contact is for a change: its row is then locked until the transaction
/// ends, so that two requests of the same link follow each other and the second finds what the
/// first recorded (and records nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Show,
    Change,
}

/// The contact `contact` of the transaction's organization; `None` when it has no such contact.
pub async fn person(tx: &mut TenantTx, contact: ContactId, intent: Intent) -> Result<Option<Person>> {
    let lock = if intent == Intent::Change { " for update of c" } else { "" };
    let row: Option<(String, Option<String>, Option<Vec<u8>>)> = sqlx::query_as(&format!(
        "select (select o.name from app.organizations o where o.id = $1), c.address, c.address_key
           from app.contacts c
          where c.organization_id = $1 and c.id = $2{lock}"
    ))
    .bind(tx.org().as_uuid())
    .bind(contact.as_uuid())
    .fetch_optional(tx.conn())
    .await?;
    row.map(|(organization, address, key)| {
        let address_key = key.map(AddressKey::try_from).transpose().map_err(|_| stored("contacts_address_key"))?;
        Ok(Person { organization, address, address_key })
    })
    .transpose()
}

/// One of the organization's email purposes, as the preference centre shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub purpose: PurposeId,
    pub name: String,
    /// The contact's consent for it now; `None` when nothing was ever recorded.
    pub state: Option<ConsentState>,
    /// Its latest notice, which a grant from the preference centre is given against, and its
    /// text, which the page shows before the person agrees.
    pub notice: Option<ContentHash>,
    pub notice_text: Option<String>,
    /// A HIPAA authorization's elements are not collected here, so it cannot be turned on here.
    pub needs_hipaa_authorization: bool,
}

#[derive(sqlx::FromRow)]
struct ChoiceRow {
    purpose: uuid::Uuid,
    name: String,
    state: Option<String>,
    notice: Option<Vec<u8>>,
    notice_text: Option<String>,
    needs_hipaa_authorization: bool,
}

impl Choice {
    /// Whether the purpose is on for the contact: granted or confirmed, not revoked, pending
    /// or expired.
    pub fn on(&self) -> bool {
        self.state == Some(ConsentState::Granted)
    }

    /// Whether the person may turn it on here: it has a notice to agree to, and needs no HIPAA
    /// authorization.
    pub fn offered(&self) -> bool {
        self.notice.is_some() && !self.needs_hipaa_authorization
    }
}

/// Every email purpose of the organization with the contact's consent for it, by name.
pub async fn choices(tx: &mut TenantTx, contact: ContactId) -> Result<Vec<Choice>> {
    let rows: Vec<ChoiceRow> = sqlx::query_as(
        "select p.id as purpose, p.name, c.state, p.needs_hipaa_authorization, n.sha256 as notice,
                n.body as notice_text
           from app.purposes p
           left join app.consent_current c
                  on c.organization_id = $1 and c.contact_id = $2 and c.purpose_id = p.id
           left join lateral (select n.sha256, n.body from app.notices n
                               where n.organization_id = $1 and n.purpose_id = p.id
                               order by n.created_at desc, n.sha256 limit 1) n on true
          where p.organization_id = $1 and p.channel = 'email'
          order by p.name, p.id",
    )
    .bind(tx.org().as_uuid())
    .bind(contact.as_uuid())
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Choice {
                purpose: PurposeId::from_uuid(r.purpose).map_err(|_| stored("purposes_id_v7"))?,
                name: r.name,
                state: r.state.map(|s| s.parse()).transpose().map_err(|_| stored("consent_current_state"))?,
                notice: r.notice.map(ContentHash::try_from).transpose().map_err(|_| stored("notices_sha256"))?,
                notice_text: r.notice_text,
                needs_hipaa_authorization: r.needs_hipaa_authorization,
            })
        })
        .collect()
}

/// What one request from a link changes for one contact.
pub struct Change<'a> {
    pub contact: ContactId,
    pub campaign: uuid::Uuid,
    pub evidence: &'a Evidence,
    pub now: DateTime<Utc>,
    pub source: &'a RequestSource,
}

impl Change<'_> {
    async fn append(
        &self,
        tx: &mut TenantTx,
        purpose: PurposeId,
        kind: ConsentKind,
        notice: Option<ContentHash>,
        provenance: Provenance,
    ) -> Result<()> {
        let basis = (kind == ConsentKind::Grant).then_some(&Basis::Consent);
        let record = Record {
            contact: self.contact,
            purpose,
            kind,
            basis,
            notice,
            provenance,
            evidence: Some(self.evidence),
            now: self.now,
        };
        consent::append(tx, &record, self.source).await.map(|_| ())
    }
}

/// Whether the latest event of a contact and purpose leaves nothing to revoke: a revocation
/// already, or nothing at all.
fn revoked(current: Option<&consent::Current>) -> bool {
    current.is_none_or(|c| c.state == ConsentState::Revoked)
}

/// Unsubscribes the contact of `person` from `purposes` (one, or all the organization's):
/// a revocation of each that is not revoked already, and the address's `unsubscribe`
/// suppression unless one is in force, each with its audit record. Answers whether anything was
/// recorded: nothing, for a repeated request. An erased contact has no address and takes no
/// events: nothing is recorded, and its earlier suppressions stay in force.
pub async fn unsubscribe(
    tx: &mut TenantTx,
    person: &Person,
    purposes: &[PurposeId],
    change: &Change<'_>,
) -> Result<bool> {
    let Some(key) = person.address_key else { return Ok(false) };
    let provenance = Provenance::Unsubscribe { campaign: change.campaign };
    let mut recorded = false;
    for &purpose in purposes {
        if !revoked(consent::current(tx, change.contact, purpose).await?.as_ref()) {
            change.append(tx, purpose, ConsentKind::Revoke, None, provenance).await?;
            recorded = true;
        }
    }
    if suppression::add(tx, &key, SuppressionReason::Unsubscribe, None, change.now).await? {
        suppression::record(tx, &key, SuppressionReason::Unsubscribe, None, change.source).await?;
        recorded = true;
    }
    Ok(recorded)
}

/// Why a purpose could not be turned on from the preference centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address is suppressed: only a confirmed double opt-in lifts it.
    Suppressed,
    /// The purpose needs a HIPAA authorization, or has no notice to agree to.
    NotHere,
    /// The notice the page showed is no longer the purpose's latest.
    NoticeChanged,
}

/// Sets each of the contact's email purposes as `wanted` says (on for those it names, with the
/// notice the page showed for each, off for the others): a grant against the purpose's latest
/// notice for one turned on, which must be the one shown, a revocation for one turned off,
/// nothing for one already as wanted. Answers the purposes that could not be
/// turned on and why; a refusal rolls back nothing else. An erased contact changes nothing.
pub async fn set(
    tx: &mut TenantTx,
    person: &Person,
    wanted: &[(PurposeId, Option<ContentHash>)],
    change: &Change<'_>,
) -> Result<Vec<(PurposeId, Refusal)>> {
    let mut refused = Vec::new();
    let Some(key) = person.address_key else { return Ok(refused) };
    let suppressed = !suppression::reasons_of(tx, &key).await?.is_empty();
    let provenance = Provenance::PreferenceCentre { campaign: change.campaign };
    for choice in choices(tx, change.contact).await? {
        let shown = wanted.iter().find(|(p, _)| *p == choice.purpose).map(|(_, notice)| *notice);
        let on = shown.is_some();
        if on == choice.on() {
            continue;
        }
        if !on {
            change.append(tx, choice.purpose, ConsentKind::Revoke, None, provenance).await?;
            continue;
        }
        let (Some(notice), true) = (choice.notice, choice.offered()) else {
            refused.push((choice.purpose, Refusal::NotHere));
            continue;
        };
        // Asked first for a clear answer; the ledger's trigger refuses the grant whoever asks.
        if suppressed {
            refused.push((choice.purpose, Refusal::Suppressed));
            continue;
        }
        if shown.flatten() != Some(notice) {
            refused.push((choice.purpose, Refusal::NoticeChanged));
            continue;
        }
        change.append(tx, choice.purpose, ConsentKind::Grant, Some(notice), provenance).await?;
    }
    Ok(refused)
}

/// Records that the preference centre showed the person their own consent and masked address:
/// a read of personal data like any other, with no member as its actor.
pub async fn shown(tx: &mut TenantTx, contact: ContactId, source: &RequestSource) -> Result<()> {
    let event = AuditEvent::new(CONTACT_VIEWED, CONTACT)
        .resource_id(contact)
        .source(source.clone())
        .meta("fields", json!(["address (masked)", "consent"]))
        .meta("via", json!("preference_centre"));
    audit::record(tx, &event).await.map(|_| ())
}
