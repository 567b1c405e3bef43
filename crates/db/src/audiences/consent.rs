//! The consent ledger: events appended through `app.consent_append`, which refuses what the
//! database must never hold (a grant for a suppressed address other than the person's own
//! sign-up, a confirmation without a pending sign-up), and the current state derived from the
//! latest event by the view `app.consent_current`.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::types::ipnetwork::IpNetwork;

use crate::error::stored;
use crate::{audit, Result, TenantTx};
use mos_domain::audiences::{ConsentKind, ConsentSource, ConsentState, LawfulBasis};
use mos_domain::content::ContentHash;
use mos_domain::events::{consent_action, CONSENT};
use mos_domain::{AuditEvent, ConsentEventId, ContactId, PurposeId, RequestSource, UserId};

/// Where an event came from, with what each source must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// The person themselves, through the organization's sign-up form and its confirmation.
    SignupForm,
    /// One row of an import job, which a member started.
    Import {
        job: uuid::Uuid,
        row: i64,
        by: UserId,
    },
    Api {
        by: UserId,
    },
    Console {
        by: UserId,
    },
}

impl Provenance {
    fn source(self) -> ConsentSource {
        match self {
            Self::SignupForm => ConsentSource::SignupForm,
            Self::Import { .. } => ConsentSource::Import,
            Self::Api { .. } => ConsentSource::Api,
            Self::Console { .. } => ConsentSource::Console,
        }
    }

    fn recorded_by(self) -> Option<UserId> {
        match self {
            Self::SignupForm => None,
            Self::Import { by, .. } | Self::Api { by } | Self::Console { by } => Some(by),
        }
    }
}

/// The lawful basis of a grant, with what each basis must carry.
#[derive(Debug, Clone, PartialEq)]
pub enum Basis {
    Consent,
    /// A HIPAA marketing authorization: its 164.508(c) elements (`information`, `disclosers`,
    /// `recipients`, `purpose`, `signature`, `signed_on`, `right_to_revoke`, `conditioning`,
    /// `redisclosure`, and `expiry_event` when it has no date) and its expiry date.
    HipaaAuthorization {
        elements: Value,
        expires_at: Option<DateTime<Utc>>,
    },
    /// A documented exemption, described.
    Exemption(String),
}

/// Evidence that is personal data, kept erasable beside the event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evidence {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// One event to append.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub contact: ContactId,
    pub purpose: PurposeId,
    pub kind: ConsentKind,
    /// For a grant; a confirmation takes the pending sign-up's.
    pub basis: Option<&'a Basis>,
    pub notice: Option<ContentHash>,
    pub provenance: Provenance,
    pub evidence: Option<&'a Evidence>,
    pub now: DateTime<Utc>,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Event {
    #[sqlx(try_from = "uuid::Uuid")]
    pub id: ConsentEventId,
    #[sqlx(try_from = "uuid::Uuid")]
    pub contact_id: ContactId,
    #[sqlx(try_from = "uuid::Uuid")]
    pub purpose_id: PurposeId,
    pub seq: i32,
    #[sqlx(try_from = "String")]
    pub kind: ConsentKind,
    pub basis: Option<String>,
    pub notice_sha256: Option<Vec<u8>>,
    pub expires_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "String")]
    pub source: ConsentSource,
    pub evidence_sha256: Option<Vec<u8>>,
    pub recorded_by: Option<uuid::Uuid>,
    pub created_at: DateTime<Utc>,
}

/// A contact's consent for a purpose now.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Current {
    #[sqlx(try_from = "uuid::Uuid")]
    pub event_id: ConsentEventId,
    pub seq: i32,
    #[sqlx(try_from = "String")]
    pub state: ConsentState,
    pub basis: Option<String>,
    pub notice_sha256: Option<Vec<u8>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Appends an event and its audit record in `tx`; answers the event's id and its number in
/// the contact's history for the purpose. Refusals come back as
/// [`DbError::Invalid`](crate::DbError::Invalid) naming the rule: `consent_events_suppressed`,
/// `consent_events_confirm_pending`, `consent_events_hipaa_required`,
/// `consent_events_contact_erased`, or a constraint of the table.
pub async fn append(tx: &mut TenantTx, record: &Record<'_>, source: &RequestSource) -> Result<(ConsentEventId, i32)> {
    let id = ConsentEventId::new();
    let (basis, hipaa, expires_at, exemption) = match record.basis {
        None => (None, None, None, None),
        Some(Basis::Consent) => (Some(LawfulBasis::Consent), None, None, None),
        Some(Basis::HipaaAuthorization { elements, expires_at }) => {
            (Some(LawfulBasis::HipaaAuthorization), Some(elements), *expires_at, None)
        }
        Some(Basis::Exemption(why)) => (Some(LawfulBasis::Exemption), None, None, Some(why.as_str())),
    };
    let (job, row) = match record.provenance {
        Provenance::Import { job, row, .. } => (Some(job), Some(row)),
        _ => (None, None),
    };
    let evidence = record.evidence.cloned().unwrap_or_default();
    let seq: i32 = sqlx::query_scalar(
        "select app.consent_append($1, $2, $3, $4, $5::text::app.consent_kind, $6::text::app.lawful_basis, $7, $8,
                                   $9, $10, $11::text::app.consent_source, $12, $13, $14, $15, $16, $17)",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(record.contact.as_uuid())
    .bind(record.purpose.as_uuid())
    .bind(record.kind.as_str())
    .bind(basis.map(LawfulBasis::as_str))
    .bind(record.notice.as_ref().map(ContentHash::as_bytes))
    .bind(hipaa.map(sqlx::types::Json))
    .bind(expires_at)
    .bind(exemption)
    .bind(record.provenance.source().as_str())
    .bind(job)
    .bind(row)
    .bind(evidence.ip.map(IpNetwork::from))
    .bind(evidence.user_agent.as_deref())
    .bind(record.provenance.recorded_by().map(|u| u.as_uuid()))
    .bind(record.now)
    .fetch_one(tx.conn())
    .await?;
    let mut event = AuditEvent::new(consent_action(record.kind), CONSENT)
        .resource_id(id)
        .source(source.clone())
        .meta("contact", json!(record.contact))
        .meta("purpose", json!(record.purpose))
        .meta("seq", json!(seq))
        .meta("source", json!(record.provenance.source().as_str()));
    if let Some(hash) = record.notice {
        event = event.meta("notice_sha256", json!(hash.to_string()));
    }
    if let Some(by) = record.provenance.recorded_by() {
        event = event.actor(by);
    }
    audit::record(tx, &event).await?;
    Ok((id, seq))
}

/// The contact's consent for the purpose now; `None` when nothing was ever recorded.
pub async fn current(tx: &mut TenantTx, contact: ContactId, purpose: PurposeId) -> Result<Option<Current>> {
    Ok(sqlx::query_as(
        "select event_id, seq, state, basis::text as basis, notice_sha256, expires_at
           from app.consent_current
          where organization_id = $1 and contact_id = $2 and purpose_id = $3",
    )
    .bind(tx.org().as_uuid())
    .bind(contact.as_uuid())
    .bind(purpose.as_uuid())
    .fetch_optional(tx.conn())
    .await?)
}

/// The contact's events, for every purpose, in the order they happened for each.
pub async fn history(tx: &mut TenantTx, contact: ContactId) -> Result<Vec<Event>> {
    Ok(sqlx::query_as(
        "select id, contact_id, purpose_id, seq, kind::text as kind, basis::text as basis, notice_sha256,
                expires_at, source::text as source, evidence_sha256, recorded_by, created_at
           from app.consent_events
          where organization_id = $1 and contact_id = $2
          order by purpose_id, seq",
    )
    .bind(tx.org().as_uuid())
    .bind(contact.as_uuid())
    .fetch_all(tx.conn())
    .await?)
}

/// Whether an event's evidence is still held and matches the hash the event committed to:
/// `Some(true)` when it does, `Some(false)` when it was changed, `None` when it was erased (or
/// there was none).
pub async fn evidence_matches(tx: &mut TenantTx, event: ConsentEventId) -> Result<Option<bool>> {
    let found: Option<Option<bool>> = sqlx::query_scalar(
        "select e.evidence_sha256 = sha256(v.salt || convert_to(coalesce(host(v.ip), '') || E'\\n'
                                                              || coalesce(v.user_agent, ''), 'UTF8'))
           from app.consent_evidence v
           join app.consent_events e on e.organization_id = v.organization_id and e.id = v.event_id
          where v.organization_id = $1 and v.event_id = $2",
    )
    .bind(tx.org().as_uuid())
    .bind(event.as_uuid())
    .fetch_optional(tx.conn())
    .await?;
    match found {
        None => Ok(None),
        Some(Some(matches)) => Ok(Some(matches)),
        Some(None) => Err(stored("consent_events_evidence_sha256")),
    }
}
