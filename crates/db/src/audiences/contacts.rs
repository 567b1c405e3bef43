//! Contacts: one per normalised address in an organization.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::{audit, DbError, Result, TenantTx};
use mos_domain::audiences::AddressKeyer;
use mos_domain::events::{CONTACT, CONTACT_CREATED, CONTACT_ERASED};
use mos_domain::{AuditEvent, ContactId, Email, RequestSource, UserId};

/// A contact as stored; an erased one keeps only its id and dates.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Contact {
    #[sqlx(try_from = "uuid::Uuid")]
    pub id: ContactId,
    pub address: Option<String>,
    pub name: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub erased_at: Option<DateTime<Utc>>,
}

/// What a new contact says about the person.
#[derive(Debug, Clone, Default)]
pub struct NewContact<'a> {
    pub name: Option<&'a str>,
    pub locale: Option<&'a str>,
    pub time_zone: Option<&'a str>,
    pub tags: &'a [String],
}

/// Adds a contact for `address`, with the address's key under `keys` (which the consent rules
/// match against the suppressions); an address the organization already has is a conflict
/// (`contacts_address_key`).
pub async fn create(
    tx: &mut TenantTx,
    keys: &dyn AddressKeyer,
    address: &Email,
    new: &NewContact<'_>,
    actor: Option<UserId>,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<ContactId> {
    create_unless_known(tx, keys, address, new, actor, now, source)
        .await?
        .ok_or_else(|| DbError::Conflict { constraint: "contacts_address_key".to_owned() })
}

/// Adds a contact as [`create`] does, or answers `None` and records nothing when the
/// organization has the address already. A concurrent insert of the same address waits for
/// the other transaction and then answers `None` once it committed, instead of failing.
pub async fn create_unless_known(
    tx: &mut TenantTx,
    keys: &dyn AddressKeyer,
    address: &Email,
    new: &NewContact<'_>,
    actor: Option<UserId>,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Option<ContactId>> {
    let id = ContactId::new();
    let inserted = sqlx::query(
        "insert into app.contacts (organization_id, id, address, address_key, name, locale, time_zone, tags, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         on conflict do nothing",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(address.as_str())
    .bind(keys.key(address).as_bytes().as_slice())
    .bind(new.name)
    .bind(new.locale)
    .bind(new.time_zone)
    .bind(new.tags)
    .bind(now)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(None);
    }
    let mut event = AuditEvent::new(CONTACT_CREATED, CONTACT).resource_id(id).source(source.clone());
    if let Some(actor) = actor {
        event = event.actor(actor);
    }
    audit::record(tx, &event).await?;
    Ok(Some(id))
}

pub async fn get(tx: &mut TenantTx, id: ContactId) -> Result<Option<Contact>> {
    Ok(sqlx::query_as(
        "select id, address, name, locale, time_zone, tags, created_at, erased_at
           from app.contacts where organization_id = $1 and id = $2",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_optional(tx.conn())
    .await?)
}

/// Erases a contact (GDPR Art. 17): its personal data (address and address key included),
/// attribute values and the erasable evidence of its consent go; its consent events, its
/// suppressions (keyed by the address key, not by the contact) and the audit records stay.
/// Answers whether there was a contact to erase.
pub async fn erase(
    tx: &mut TenantTx,
    id: ContactId,
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<bool> {
    // The contact first: the evidence's trigger lets evidence go only for an erased contact.
    let erased = sqlx::query(
        "update app.contacts
            set address = null, address_key = null, name = null, locale = null, time_zone = null, tags = '{}',
                erased_at = $3
          where organization_id = $1 and id = $2 and erased_at is null",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(now)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1;
    if !erased {
        return Ok(false);
    }
    for table in ["app.contact_attribute_values", "app.consent_evidence"] {
        sqlx::query(&format!("delete from {table} where organization_id = $1 and contact_id = $2"))
            .bind(tx.org().as_uuid())
            .bind(id.as_uuid())
            .execute(tx.conn())
            .await?;
    }
    // What their sent messages were personalised with; each message's commitment stays.
    sqlx::query(
        "update app.campaign_messages set personalisation = null, personalisation_salt = null
          where organization_id = $1 and contact_id = $2 and personalisation is not null",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .execute(tx.conn())
    .await?;
    let event = AuditEvent::new(CONTACT_ERASED, CONTACT)
        .actor(actor)
        .resource_id(id)
        .source(source.clone())
        .meta("erased_at", json!(now));
    audit::record(tx, &event).await?;
    Ok(true)
}
