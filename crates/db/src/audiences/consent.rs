//! The consent ledger: events appended by `app_user`, checked by the ledger's statement trigger
//! (`app.consent_events_check`), which refuses what the database must never hold (a grant for
//! a suppressed address other than the person's own sign-up, a confirmation without a pending
//! sign-up, anything for an erased contact, a gap in the sequence), and the current state
//! derived from the latest event by the view `app.consent_current`.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::types::ipnetwork::IpNetwork;

use super::suppression::in_force;
use crate::error::stored;
use crate::{audit, DbError, Result, TenantTx};
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
    /// The person themselves, through a message's unsubscribe link (one click, or "unsubscribe
    /// from everything"); the campaign is the one whose message carried the link.
    Unsubscribe {
        campaign: uuid::Uuid,
    },
    /// The person themselves, on the preference centre a message's link opened.
    PreferenceCentre {
        campaign: uuid::Uuid,
    },
    /// The person themselves, marking the campaign's message as spam, as their mailbox
    /// provider reported it (`crate::feedback`).
    Complaint {
        campaign: uuid::Uuid,
    },
}

impl Provenance {
    fn source(self) -> ConsentSource {
        match self {
            Self::SignupForm => ConsentSource::SignupForm,
            Self::Import { .. } => ConsentSource::Import,
            Self::Api { .. } => ConsentSource::Api,
            Self::Console { .. } => ConsentSource::Console,
            Self::Unsubscribe { .. } => ConsentSource::Unsubscribe,
            Self::PreferenceCentre { .. } => ConsentSource::PreferenceCentre,
            Self::Complaint { .. } => ConsentSource::Complaint,
        }
    }

    /// The campaign whose message's link the person followed.
    fn campaign(self) -> Option<uuid::Uuid> {
        match self {
            Self::Unsubscribe { campaign } | Self::PreferenceCentre { campaign } | Self::Complaint { campaign } => {
                Some(campaign)
            }
            _ => None,
        }
    }

    fn recorded_by(self) -> Option<UserId> {
        match self {
            Self::SignupForm | Self::Unsubscribe { .. } | Self::PreferenceCentre { .. } | Self::Complaint { .. } => {
                None
            }
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

/// SHA-256 of a salt and the evidence, `SHA-256(salt || UTF-8(host(ip) || LF || user_agent))`,
/// as SQL over the three expressions given; the evidence's trigger
/// (`app.consent_evidence_check`) computes the same.
fn evidence_sha256(salt: &str, ip: &str, user_agent: &str) -> String {
    format!("sha256({salt} || convert_to(coalesce(host({ip}), '') || E'\\n' || coalesce({user_agent}, ''), 'UTF8'))")
}

/// The latest event of a contact and purpose, as the next one needs it.
#[derive(sqlx::FromRow)]
struct Last {
    seq: i32,
    kind: String,
    source: String,
    basis: Option<String>,
    notice_sha256: Option<Vec<u8>>,
    hipaa: Option<sqlx::types::Json<Value>>,
    expires_at: Option<DateTime<Utc>>,
    exemption: Option<String>,
}

/// Appends an event and its audit record in `tx`; answers the event's id and its number in
/// the contact's history for the purpose. A confirmation carries the terms (basis, notice,
/// authorization, expiry) of the sign-up it confirms. Refusals come back as
/// [`DbError::Invalid`](crate::DbError::Invalid) naming the rule: `consent_events_suppressed`,
/// `consent_events_confirm_pending`, `consent_events_hipaa_required`,
/// `consent_events_contact_erased`, or a constraint of the table.
pub async fn append(tx: &mut TenantTx, record: &Record<'_>, source: &RequestSource) -> Result<(ConsentEventId, i32)> {
    let id = ConsentEventId::new();
    let (basis, hipaa, expires_at, exemption) = match record.basis {
        None => (None, None, None, None),
        Some(Basis::Consent) => (Some(LawfulBasis::Consent.as_str().to_owned()), None, None, None),
        Some(Basis::HipaaAuthorization { elements, expires_at }) => {
            (Some(LawfulBasis::HipaaAuthorization.as_str().to_owned()), Some(elements.clone()), *expires_at, None)
        }
        Some(Basis::Exemption(why)) => {
            (Some(LawfulBasis::Exemption.as_str().to_owned()), None, None, Some(why.clone()))
        }
    };
    let (job, row) = match record.provenance {
        Provenance::Import { job, row, .. } => (Some(job), Some(row)),
        _ => (None, None),
    };
    // The contact's row is locked, so that the events of one contact follow each other (and a
    // suppression of its address, which locks it too, comes before or after, not between).
    let org = tx.org().as_uuid();
    sqlx::query("select from app.contacts where organization_id = $1 and id = $2 for update")
        .bind(org)
        .bind(record.contact.as_uuid())
        .execute(tx.conn())
        .await?;
    let channel: Option<String> =
        sqlx::query_scalar("select channel::text from app.purposes where organization_id = $1 and id = $2")
            .bind(org)
            .bind(record.purpose.as_uuid())
            .fetch_optional(tx.conn())
            .await?;
    let channel = channel.ok_or_else(|| DbError::Invalid { constraint: "consent_events_purpose_fkey".to_owned() })?;
    let last: Option<Last> = sqlx::query_as(
        "select seq, kind::text as kind, source::text as source, basis::text as basis, notice_sha256, hipaa, expires_at, exemption
           from app.consent_events
          where organization_id = $1 and contact_id = $2 and purpose_id = $3
          order by seq desc limit 1",
    )
    .bind(org)
    .bind(record.contact.as_uuid())
    .bind(record.purpose.as_uuid())
    .fetch_optional(tx.conn())
    .await?;
    let seq = last.as_ref().map_or(0, |l| l.seq) + 1;
    let pending = |l: &&Last| l.kind == ConsentKind::Grant.as_str() && l.source == ConsentSource::SignupForm.as_str();
    let (basis, notice, hipaa, expires_at, exemption) = match (last.as_ref().filter(pending), record.kind) {
        // Said here for a clear answer; the ledger's trigger refuses it whoever inserts it.
        (None, ConsentKind::Confirm) => {
            return Err(DbError::Invalid { constraint: "consent_events_confirm_pending".to_owned() });
        }
        (Some(last), ConsentKind::Confirm) => (
            last.basis.clone(),
            last.notice_sha256.clone(),
            last.hipaa.as_ref().map(|h| h.0.clone()),
            last.expires_at,
            last.exemption.clone(),
        ),
        _ => (basis, record.notice.map(|h| h.as_bytes().to_vec()), hipaa, expires_at, exemption),
    };
    let evidence = record.evidence.filter(|e| e.ip.is_some() || e.user_agent.is_some());
    let salt: Option<[u8; 16]> = evidence.map(|_| rand::random());
    let ip = evidence.and_then(|e| e.ip).map(IpNetwork::from);
    let user_agent = evidence.and_then(|e| e.user_agent.as_deref());
    let evidence_sha256: Option<String> = sqlx::query_scalar(&format!(
        "insert into app.consent_events (organization_id, contact_id, purpose_id, seq, id, channel, kind, basis,
                                         notice_sha256, hipaa, expires_at, exemption, source, import_job, import_row,
                                         evidence_sha256, recorded_by, created_at, campaign_id)
         values ($1, $2, $3, $4, $5, $6::text::app.consent_channel, $7::text::app.consent_kind,
                 $8::text::app.lawful_basis, $9, $10, $11, $12, $13::text::app.consent_source, $14, $15,
                 case when $16::bytea is not null then {} end, $19, $20, $21)
         returning encode(evidence_sha256, 'hex')",
        evidence_sha256("$16::bytea", "$17::inet", "$18::text")
    ))
    .bind(org)
    .bind(record.contact.as_uuid())
    .bind(record.purpose.as_uuid())
    .bind(seq)
    .bind(id.as_uuid())
    .bind(&channel)
    .bind(record.kind.as_str())
    .bind(basis.as_deref())
    .bind(notice.as_deref())
    .bind(hipaa.map(sqlx::types::Json))
    .bind(expires_at)
    .bind(exemption.as_deref())
    .bind(record.provenance.source().as_str())
    .bind(job)
    .bind(row)
    .bind(salt.as_ref().map(|s| s.as_slice()))
    .bind(ip)
    .bind(user_agent)
    .bind(record.provenance.recorded_by().map(|u| u.as_uuid()))
    .bind(record.now)
    .bind(record.provenance.campaign())
    .fetch_one(tx.conn())
    .await?;
    if let Some(salt) = salt {
        sqlx::query(
            "insert into app.consent_evidence (organization_id, event_id, contact_id, salt, ip, user_agent)
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(org)
        .bind(id.as_uuid())
        .bind(record.contact.as_uuid())
        .bind(salt.as_slice())
        .bind(ip)
        .bind(user_agent)
        .execute(tx.conn())
        .await?;
    }
    let mut event = AuditEvent::new(consent_action(record.kind), CONSENT)
        .resource_id(id)
        .source(source.clone())
        .meta("contact", json!(record.contact))
        .meta("purpose", json!(record.purpose))
        .meta("seq", json!(seq))
        .meta("source", json!(record.provenance.source().as_str()));
    if let Some(hash) = notice.as_deref() {
        event = event.meta("notice_sha256", json!(hex::encode(hash)));
    }
    // The rest of what the event states, so that the chain vouches for all of it (a consent
    // receipt is checked against this record): the basis, the channel, when it expires, and
    // the commitment to its evidence (a salted hash, not the evidence).
    event = event.meta("channel", json!(channel));
    if let Some(basis) = basis.as_deref() {
        event = event.meta("basis", json!(basis));
    }
    if let Some(expires_at) = expires_at {
        event = event.meta("expires_at", json!(expires_at));
    }
    if let Some(hash) = evidence_sha256 {
        event = event.meta("evidence_sha256", json!(hash));
    }
    if let Some(campaign) = record.provenance.campaign() {
        event = event.meta("campaign", json!(campaign));
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

/// The test that an event `e` (its `kind`, `source` and `expires_at`) is live consent, up to
/// the instant, which the statement appends followed by `)`: a confirmation, or a grant that
/// did not come through the sign-up form (which waits for its confirmation), not expired then.
/// A macro so that [`is_live`] and the campaigns' refusal can `concat!` it; segments use it
/// through [`LIVE_UNTIL`].
macro_rules! live_until {
    () => {
        "(e.kind = 'confirm' or (e.kind = 'grant' and e.source <> 'signup_form')) and (e.expires_at is null or e.expires_at > "
    };
}

pub(crate) use live_until;

/// [`live_until!`] for statements built at run time (segments' consent condition).
pub(crate) const LIVE_UNTIL: &str = live_until!();

/// What a sender asks before each message: may `contact` be written to for `purpose` at `at`?
/// Yes only when its latest event for the purpose is live ([`LIVE_UNTIL`]: granted or
/// confirmed, not revoked, not pending, not expired at `at`), the contact is not erased, and its
/// address is not suppressed (by an entry in force: one the person's own confirmed sign-up did
/// not lift, see [`super::suppression`]). One statement of three key lookups: the latest
/// event is one descent of the ledger's primary key read backwards, the contact one of its
/// primary key, its suppressions one of theirs.
pub async fn is_live(tx: &mut TenantTx, contact: ContactId, purpose: PurposeId, at: DateTime<Utc>) -> Result<bool> {
    Ok(sqlx::query_scalar(IS_LIVE)
        .bind(tx.org().as_uuid())
        .bind(contact.as_uuid())
        .bind(purpose.as_uuid())
        .bind(at)
        .fetch_one(tx.conn())
        .await?)
}

/// The statement of [`is_live`]; `$1` the tenant, `$2` the contact, `$3` the purpose, `$4` the
/// instant.
pub const IS_LIVE: &str = concat!(
    "select exists (select from (select e.kind, e.source, e.expires_at from app.consent_events e
                                  where e.organization_id = $1 and e.contact_id = $2 and e.purpose_id = $3
                                  order by e.seq desc limit 1) e
                     where ",
    live_until!(),
    "$4))
       and exists (select from app.contacts c
                    where c.organization_id = $1 and c.id = $2 and c.erased_at is null
                      and not exists (select from app.suppressions s
                                       where s.organization_id = $1 and s.address_key = c.address_key
                                         and ",
    in_force!(),
    "))"
);

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
    let found: Option<Option<bool>> = sqlx::query_scalar(&format!(
        "select e.evidence_sha256 = {}
           from app.consent_evidence v
           join app.consent_events e on e.organization_id = v.organization_id and e.id = v.event_id
          where v.organization_id = $1 and v.event_id = $2",
        evidence_sha256("v.salt", "v.ip", "v.user_agent")
    ))
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
