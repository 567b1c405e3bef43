//! The public double opt-in sign-up (migration 16): what a sign-up page shows, and the mailed
//! confirmation links, stored as the SHA-256 of their token, spent once, dead after their
//! expiry. The pending grant and its confirmation themselves are consent events
//! ([`super::consent::append`]), which hold the rules about suppressed addresses.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::error::stored;
use crate::{audit, AppPool, DbError, Result, TenantTx};
use mos_domain::audiences::AddressKeyer;
use mos_domain::content::ContentHash;
use mos_domain::events::{SIGNUP, SIGNUP_REPEATED};
use mos_domain::{AuditEvent, ConsentEventId, ContactId, Email, OrgId, PurposeId, RequestSource, Slug, TokenHash};

use super::contacts::{self, NewContact};

/// The organization behind a public page's slug: what the page may show of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
}

/// The organization whose slug is `slug`, looked up before any tenant is named, in a
/// transaction of its own that reads nothing else.
pub async fn organization(pool: &AppPool, slug: &Slug) -> Result<Option<Organization>> {
    let mut tx = pool.bare().await?;
    let row: Option<(uuid::Uuid, String)> =
        sqlx::query_as("select organization_id, name from app.signup_organization($1)")
            .bind(slug.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    row.map(|(id, name)| {
        Ok(Organization { id: OrgId::from_uuid(id).map_err(|_| stored("organizations_id_v7"))?, name })
    })
    .transpose()
}

/// What a sign-up page for a purpose shows: the purpose and its current notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub purpose: PurposeId,
    pub purpose_name: String,
    pub notice: ContentHash,
    pub notice_text: String,
}

/// The form of `purpose`: its latest notice. `None` for a purpose the organization does not
/// have, one without a notice, and one that needs a HIPAA authorization, whose elements a
/// sign-up form does not collect.
pub async fn form(tx: &mut TenantTx, purpose: PurposeId) -> Result<Option<Form>> {
    let row: Option<(String, Vec<u8>, String)> = sqlx::query_as(
        "select p.name, n.sha256, n.body
           from app.purposes p
           join app.notices n on n.organization_id = p.organization_id and n.purpose_id = p.id
          where p.organization_id = $1 and p.id = $2 and not p.needs_hipaa_authorization
          order by n.created_at desc, n.sha256
          limit 1",
    )
    .bind(tx.org().as_uuid())
    .bind(purpose.as_uuid())
    .fetch_optional(tx.conn())
    .await?;
    row.map(|(purpose_name, hash, notice_text)| {
        let notice = ContentHash::try_from(hash).map_err(|_| stored("notices_sha256"))?;
        Ok(Form { purpose, purpose_name, notice, notice_text })
    })
    .transpose()
}

/// The contact of `address`, made (and audited, with no actor: the person did it) when the
/// organization has none. Two sign-ups of a new address at once both end with the one contact:
/// the second insert waits for the first and then finds its row.
pub async fn contact_for(
    tx: &mut TenantTx,
    keys: &dyn AddressKeyer,
    address: &Email,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<ContactId> {
    if let Some(id) = find(tx, address).await? {
        return Ok(id);
    }
    match contacts::create_unless_known(tx, keys, address, &NewContact::default(), None, now, source).await? {
        Some(id) => Ok(id),
        None => find(tx, address).await?.ok_or_else(|| stored("contacts_address_key")),
    }
}

async fn find(tx: &mut TenantTx, address: &Email) -> Result<Option<ContactId>> {
    let found: Option<uuid::Uuid> =
        sqlx::query_scalar("select id from app.contacts where organization_id = $1 and address = $2")
            .bind(tx.org().as_uuid())
            .bind(address.as_str())
            .fetch_optional(tx.conn())
            .await?;
    found.map(|id| ContactId::from_uuid(id).map_err(|_| stored("contacts_id_v7"))).transpose()
}

/// Records that a sign-up changed nothing, because the contact's consent for the purpose is
/// already granted.
pub async fn repeated(tx: &mut TenantTx, contact: ContactId, purpose: PurposeId, source: &RequestSource) -> Result<()> {
    let event = AuditEvent::new(SIGNUP_REPEATED, SIGNUP)
        .resource_id(contact)
        .source(source.clone())
        .meta("contact", json!(contact))
        .meta("purpose", json!(purpose));
    audit::record(tx, &event).await?;
    Ok(())
}

/// What a confirmation link confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub contact: ContactId,
    pub purpose: PurposeId,
    /// The pending grant the link was mailed for.
    pub grant: ConsentEventId,
}

/// Stores a mailed link by its token's hash, valid until `expires_at`.
pub async fn issue(
    tx: &mut TenantTx,
    token: &TokenHash,
    pending: &Pending,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "insert into app.signup_confirmations
                (organization_id, token_hash, contact_id, purpose_id, grant_event_id, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tx.org().as_uuid())
    .bind(token.as_bytes())
    .bind(pending.contact.as_uuid())
    .bind(pending.purpose.as_uuid())
    .bind(pending.grant.as_uuid())
    .bind(now)
    .bind(expires_at)
    .execute(tx.conn())
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    contact_id: uuid::Uuid,
    purpose_id: uuid::Uuid,
    grant_event_id: uuid::Uuid,
}

impl TryFrom<PendingRow> for Pending {
    type Error = DbError;

    fn try_from(row: PendingRow) -> Result<Self> {
        Ok(Self {
            contact: ContactId::from_uuid(row.contact_id).map_err(|_| stored("signup_confirmations_contact"))?,
            purpose: PurposeId::from_uuid(row.purpose_id).map_err(|_| stored("signup_confirmations_purpose"))?,
            grant: ConsentEventId::from_uuid(row.grant_event_id).map_err(|_| stored("signup_confirmations_grant"))?,
        })
    }
}

/// What the link of `token` confirms, if it is unspent and unexpired; spends nothing (the page a
/// mail scanner may open).
pub async fn peek(tx: &mut TenantTx, token: &TokenHash, now: DateTime<Utc>) -> Result<Option<Pending>> {
    let row: Option<PendingRow> = sqlx::query_as(
        "select contact_id, purpose_id, grant_event_id from app.signup_confirmations
          where organization_id = $1 and token_hash = $2 and used_at is null and expires_at > $3",
    )
    .bind(tx.org().as_uuid())
    .bind(token.as_bytes())
    .bind(now)
    .fetch_optional(tx.conn())
    .await?;
    row.map(Pending::try_from).transpose()
}

/// Spends the link of `token`, if it is unspent and unexpired, in `tx`: a rollback gives it back.
pub async fn spend(tx: &mut TenantTx, token: &TokenHash, now: DateTime<Utc>) -> Result<Option<Pending>> {
    let row: Option<PendingRow> = sqlx::query_as(
        "update app.signup_confirmations set used_at = $3
          where organization_id = $1 and token_hash = $2 and used_at is null and expires_at > $3
          returning contact_id, purpose_id, grant_event_id",
    )
    .bind(tx.org().as_uuid())
    .bind(token.as_bytes())
    .bind(now)
    .fetch_optional(tx.conn())
    .await?;
    row.map(Pending::try_from).transpose()
}

/// A purpose's name, for the page that confirms consent to it.
pub async fn purpose_name(tx: &mut TenantTx, purpose: PurposeId) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("select name from app.purposes where organization_id = $1 and id = $2")
        .bind(tx.org().as_uuid())
        .bind(purpose.as_uuid())
        .fetch_optional(tx.conn())
        .await?)
}
