//! What members browse and edit of an audience: the purposes with their notice versions, the
//! attribute definitions, pages of contacts, one contact's attribute values, the counts every
//! role may see, and the suppression list (reasons and dates only). Reading a contact's personal
//! data leaves an audit record naming who was shown ([`shown`]).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::suppression::in_force;
use crate::audiences::attributes::Value;
use crate::audiences::contacts::Contact;
use crate::error::stored;
use crate::{audit, Result, TenantTx};
use mos_domain::audiences::{ConsentState, SuppressionReason};
use mos_domain::content::ContentHash;
use mos_domain::events::{CONTACT, CONTACTS_LISTED, CONTACT_UPDATED, CONTACT_VIEWED};
use mos_domain::{AttributeId, AuditEvent, ContactId, PurposeId, RequestSource, UserId};

/// A purpose, with how many notice versions it has.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Purpose {
    #[sqlx(try_from = "uuid::Uuid")]
    pub id: PurposeId,
    pub name: String,
    pub channel: String,
    pub needs_hipaa_authorization: bool,
    pub created_at: DateTime<Utc>,
    pub notices: i64,
}

pub async fn purposes(tx: &mut TenantTx) -> Result<Vec<Purpose>> {
    Ok(sqlx::query_as(
        "select p.id, p.name, p.channel::text as channel, p.needs_hipaa_authorization, p.created_at,
                (select count(*) from app.notices n
                  where n.organization_id = p.organization_id and n.purpose_id = p.id) as notices
           from app.purposes p
          where p.organization_id = $1
          order by p.name",
    )
    .bind(tx.org().as_uuid())
    .fetch_all(tx.conn())
    .await?)
}

pub async fn purpose(tx: &mut TenantTx, id: PurposeId) -> Result<Option<Purpose>> {
    Ok(sqlx::query_as(
        "select p.id, p.name, p.channel::text as channel, p.needs_hipaa_authorization, p.created_at,
                (select count(*) from app.notices n
                  where n.organization_id = p.organization_id and n.purpose_id = p.id) as notices
           from app.purposes p
          where p.organization_id = $1 and p.id = $2",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_optional(tx.conn())
    .await?)
}

/// A published notice version.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Notice {
    #[sqlx(try_from = "Vec<u8>")]
    pub sha256: ContentHash,
    pub body: String,
    #[sqlx(try_from = "uuid::Uuid")]
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
}

/// The purpose's notice versions, newest first.
pub async fn notices(tx: &mut TenantTx, purpose: PurposeId) -> Result<Vec<Notice>> {
    Ok(sqlx::query_as(
        "select sha256, body, created_by, created_at from app.notices
          where organization_id = $1 and purpose_id = $2
          order by created_at desc, sha256",
    )
    .bind(tx.org().as_uuid())
    .bind(purpose.as_uuid())
    .fetch_all(tx.conn())
    .await?)
}

/// An attribute's definition.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Attribute {
    #[sqlx(try_from = "uuid::Uuid")]
    pub id: AttributeId,
    pub name: String,
    pub kind: String,
    pub max_length: Option<i32>,
    /// For a choice, its choices in order; empty otherwise.
    pub choices: Vec<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn attributes(tx: &mut TenantTx) -> Result<Vec<Attribute>> {
    Ok(sqlx::query_as(
        "select a.id, a.name, a.kind::text as kind, a.max_length, a.created_at,
                coalesce((select array_agg(c.value order by c.value) from app.contact_attribute_choices c
                           where c.organization_id = a.organization_id and c.attribute_id = a.id),
                         '{}') as choices
           from app.contact_attributes a
          where a.organization_id = $1
          order by a.name",
    )
    .bind(tx.org().as_uuid())
    .fetch_all(tx.conn())
    .await?)
}

/// What a page of contacts is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The start of the address, or of a word of the name (case-insensitive).
    pub search: Option<String>,
    pub tag: Option<String>,
    /// Contacts older than this one (ids grow with time): the page after the one it ended.
    pub before: Option<ContactId>,
}

/// `%` and `_` in what a member typed are letters, not patterns.
fn like_prefix(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

/// Contacts that are not erased, newest first, at most `limit`.
pub async fn contacts(tx: &mut TenantTx, filter: &Filter, limit: i64) -> Result<Vec<Contact>> {
    let search = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    Ok(sqlx::query_as(
        "select id, address, name, locale, time_zone, tags, created_at, erased_at
           from app.contacts
          where organization_id = $1 and erased_at is null
            and ($2::text is null
                 or address like lower($2)
                 or lower(name) like lower($2)
                 or lower(name) like '% ' || lower($2))
            and ($3::text is null or tags @> array[$3::text])
            and ($4::uuid is null or id < $4)
          order by id desc
          limit $5",
    )
    .bind(tx.org().as_uuid())
    .bind(search.map(like_prefix))
    .bind(filter.tag.as_deref())
    .bind(filter.before.map(|b| b.as_uuid()))
    .bind(limit)
    .fetch_all(tx.conn())
    .await?)
}

/// A contact's value of an attribute, with the attribute's name.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeValue {
    pub attribute: AttributeId,
    pub name: String,
    pub value: Value,
}

#[derive(sqlx::FromRow)]
struct ValueRow {
    attribute_id: uuid::Uuid,
    name: String,
    kind: String,
    text_value: Option<String>,
    number_value: Option<f64>,
    date_value: Option<NaiveDate>,
    boolean_value: Option<bool>,
    choice_value: Option<String>,
}

/// The contact's attribute values, by attribute name.
pub async fn values(tx: &mut TenantTx, contact: ContactId) -> Result<Vec<AttributeValue>> {
    let rows: Vec<ValueRow> = sqlx::query_as(
        "select v.attribute_id, a.name, v.kind::text as kind, v.text_value, v.number_value::float8 as number_value,
                v.date_value, v.boolean_value, v.choice_value
           from app.contact_attribute_values v
           join app.contact_attributes a on a.organization_id = v.organization_id and a.id = v.attribute_id
          where v.organization_id = $1 and v.contact_id = $2
          order by a.name",
    )
    .bind(tx.org().as_uuid())
    .bind(contact.as_uuid())
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|r| {
            let value =
                match (r.kind.as_str(), r.text_value, r.number_value, r.date_value, r.boolean_value, r.choice_value) {
                    ("text", Some(v), ..) => Value::Text(v),
                    ("number", _, Some(v), ..) => Value::Number(v),
                    ("date", _, _, Some(v), ..) => Value::Date(v),
                    ("boolean", _, _, _, Some(v), _) => Value::Boolean(v),
                    ("choice", .., Some(v)) => Value::Choice(v),
                    _ => return Err(stored("contact_attribute_values_one_value")),
                };
            let attribute = AttributeId::from_uuid(r.attribute_id).map_err(|_| stored("contact_attributes_id_v7"))?;
            Ok(AttributeValue { attribute, name: r.name, value })
        })
        .collect()
}

/// Removes a contact's value of an attribute; answers whether it had one.
pub async fn unset(tx: &mut TenantTx, contact: ContactId, attribute: AttributeId) -> Result<bool> {
    let done = sqlx::query(
        "delete from app.contact_attribute_values where organization_id = $1 and contact_id = $2 and attribute_id = $3",
    )
    .bind(tx.org().as_uuid())
    .bind(contact.as_uuid())
    .bind(attribute.as_uuid())
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// New values of a contact's own fields; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct Changes<'a> {
    pub name: Option<Option<&'a str>>,
    pub locale: Option<Option<&'a str>>,
    pub time_zone: Option<Option<&'a str>>,
    pub tags: Option<&'a [String]>,
}

/// Changes a contact that is not erased; answers whether there was one. The row is locked
/// first, so that two edits of the same contact follow each other.
pub async fn update(tx: &mut TenantTx, id: ContactId, changes: &Changes<'_>) -> Result<bool> {
    let done = sqlx::query(
        "update app.contacts
            set name = case when $3 then $4 else name end,
                locale = case when $5 then $6 else locale end,
                time_zone = case when $7 then $8 else time_zone end,
                tags = coalesce($9, tags)
          where organization_id = $1 and id = $2 and erased_at is null",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(changes.name.is_some())
    .bind(changes.name.flatten())
    .bind(changes.locale.is_some())
    .bind(changes.locale.flatten())
    .bind(changes.time_zone.is_some())
    .bind(changes.time_zone.flatten())
    .bind(changes.tags)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records that a member changed `fields` of a contact (names only: the values are personal
/// data, and the trail outlives the contact's erasure).
pub async fn updated(
    tx: &mut TenantTx,
    id: ContactId,
    fields: &[String],
    actor: UserId,
    source: &RequestSource,
) -> Result<()> {
    let event = AuditEvent::new(CONTACT_UPDATED, CONTACT)
        .actor(actor)
        .resource_id(id)
        .source(source.clone())
        .meta("fields", json!(fields));
    audit::record(tx, &event).await?;
    Ok(())
}

/// What of a contact a page showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown<'a> {
    /// A page of a list: these contacts, these fields of each.
    List { contacts: &'a [ContactId], fields: &'a [&'a str] },
    /// One contact's page: its fields, attribute values and consent history.
    Detail { contact: ContactId, fields: &'a [&'a str] },
}

/// Records that `actor` was shown contacts' personal data: one record per page, naming the
/// contacts by id and the fields shown. A page that showed nobody needs no record.
pub async fn shown(tx: &mut TenantTx, shown: Shown<'_>, actor: UserId, source: &RequestSource) -> Result<()> {
    let event = match shown {
        Shown::List { contacts: [], .. } => return Ok(()),
        Shown::List { contacts, fields } => {
            AuditEvent::new(CONTACTS_LISTED, CONTACT).meta("contacts", json!(contacts)).meta("fields", json!(fields))
        }
        Shown::Detail { contact, fields } => {
            AuditEvent::new(CONTACT_VIEWED, CONTACT).resource_id(contact).meta("fields", json!(fields))
        }
    };
    audit::record(tx, &event.actor(actor).source(source.clone())).await?;
    Ok(())
}

/// The counts every role may see: no person in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    /// Contacts that are not erased.
    pub contacts: i64,
    /// Addresses on the suppression list (for any reason), entries lifted by the person left out.
    pub suppressed: i64,
    /// Per purpose, by name, the contacts whose consent is granted and not expired now.
    pub consenting: Vec<(PurposeId, String, i64)>,
}

pub async fn overview(tx: &mut TenantTx) -> Result<Overview> {
    let (contacts, suppressed): (i64, i64) = sqlx::query_as(concat!(
        "select (select count(*) from app.contacts where organization_id = $1 and erased_at is null),
                (select count(distinct s.address_key) from app.suppressions s where s.organization_id = $1 and ",
        in_force!(),
        ")",
    ))
    .bind(tx.org().as_uuid())
    .fetch_one(tx.conn())
    .await?;
    let rows: Vec<(uuid::Uuid, String, i64)> = sqlx::query_as(
        "select p.id, p.name,
                (select count(*) from app.consent_current c
                  where c.organization_id = p.organization_id and c.purpose_id = p.id and c.state = 'granted')
           from app.purposes p
          where p.organization_id = $1
          order by p.name",
    )
    .bind(tx.org().as_uuid())
    .fetch_all(tx.conn())
    .await?;
    let consenting = rows
        .into_iter()
        .map(|(id, name, n)| Ok((PurposeId::from_uuid(id).map_err(|_| stored("purposes_id_v7"))?, name, n)))
        .collect::<Result<_>>()?;
    Ok(Overview { contacts, suppressed, consenting })
}

/// The suppression list in force, newest first: each entry's key (not the address), reason and date;
/// `after` is the date and key the previous page ended with.
pub async fn suppressions(
    tx: &mut TenantTx,
    after: Option<(DateTime<Utc>, Vec<u8>)>,
    limit: i64,
) -> Result<Vec<(Vec<u8>, SuppressionReason, DateTime<Utc>)>> {
    let (at, key) = after.map_or((None, None), |(at, key)| (Some(at), Some(key)));
    let rows: Vec<(Vec<u8>, String, DateTime<Utc>)> = sqlx::query_as(concat!(
        "select s.address_key, s.reason::text, s.created_at from app.suppressions s
              where s.organization_id = $1 and ",
        in_force!(),
        "
                and ($2::timestamptz is null or (s.created_at, s.address_key) < ($2, $3))
              order by s.created_at desc, s.address_key desc
              limit $4",
    ))
    .bind(tx.org().as_uuid())
    .bind(at)
    .bind(key)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|(key, reason, at)| Ok((key, reason.parse().map_err(|_| stored("suppressions_reason"))?, at)))
        .collect()
}

/// The contact's consent now for each purpose it has an event for, in one statement.
pub async fn consent_now(tx: &mut TenantTx, contact: ContactId) -> Result<Vec<(PurposeId, ConsentState)>> {
    let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "select purpose_id, state from app.consent_current where organization_id = $1 and contact_id = $2",
    )
    .bind(tx.org().as_uuid())
    .bind(contact.as_uuid())
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|(purpose, state)| {
            let purpose = PurposeId::from_uuid(purpose).map_err(|_| stored("purposes_id_v7"))?;
            Ok((purpose, state.parse().map_err(|_| stored("consent_current_state"))?))
        })
        .collect()
}
