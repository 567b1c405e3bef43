//! Audiences: purposes and their notice versions, attribute definitions, contacts, their
//! consent, and the suppression list. Each operation takes the member's [`Authorized`] for the
//! permission it needs; the rules of the data (one contact per address, the ledger's refusals,
//! a suppressed address) are the database's, and their refusals come back here named by the
//! request field at fault. Every operation that shows a contact's personal data records, in the
//! same transaction, which contacts it showed: the trail answers "who looked at this person".

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use mos_db::audiences::attributes::{self, Value};
use mos_db::audiences::browse::{self, Attribute, Filter, Notice, Overview, Purpose, Shown};
use mos_db::audiences::consent::{self, Basis, Provenance, Record};
use mos_db::audiences::contacts::{self, Contact, NewContact};
use mos_db::audiences::{purposes, suppression};
use mos_db::{audit, DbError, TenantTx};
use mos_domain::audiences::{AttributeKind, AttributeName, ConsentKind, NoticeText, SuppressionReason};
use mos_domain::content::ContentHash;
use mos_domain::events::{SUPPRESSION, SUPPRESSION_CHECKED};
use mos_domain::{contact, AuditEvent, ContactId, Email, PurposeId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::access::{Authorized, ConfigureAudience, ManageContacts, ReadAudience, ReadContacts};
use crate::{paging, ApiError, AppState};

fn invalid(field: &'static str, message: impl ToString) -> ApiError {
    ApiError::Invalid { field, message: message.to_string() }
}

fn parse_contact(id: &str) -> Result<ContactId, ApiError> {
    ContactId::parse(id).map_err(|_| ApiError::NotFound)
}

fn parse_purpose(id: &str) -> Result<PurposeId, ApiError> {
    PurposeId::parse(id).map_err(|_| ApiError::NotFound)
}

/// A contact in a list, and in an export: its fields as JSON shows them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ContactSummary {
    #[schema(value_type = uuid::Uuid)]
    id: ContactId,
    address: String,
    name: Option<String>,
    locale: Option<String>,
    time_zone: Option<String>,
    tags: Vec<String>,
    created_at: DateTime<Utc>,
}

impl From<Contact> for ContactSummary {
    fn from(c: Contact) -> Self {
        Self {
            id: c.id,
            address: c.address.unwrap_or_default(),
            name: c.name,
            locale: c.locale,
            time_zone: c.time_zone,
            tags: c.tags,
            created_at: c.created_at,
        }
    }
}

/// An attribute's value as JSON says it: a string (text, date as YYYY-MM-DD, choice), a number
/// or a boolean.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AttributeValueView {
    Text(String),
    Number(f64),
    Boolean(bool),
}

impl From<Value> for AttributeValueView {
    fn from(v: Value) -> Self {
        match v {
            Value::Text(t) | Value::Choice(t) => Self::Text(t),
            Value::Number(n) => Self::Number(n),
            Value::Date(d) => Self::Text(d.format("%Y-%m-%d").to_string()),
            Value::Boolean(b) => Self::Boolean(b),
        }
    }
}

/// The counts every role may see: how many contacts, how many consent per purpose now, how many
/// addresses are suppressed. No person in them.
pub async fn overview(auth: &mut Authorized<ReadAudience>) -> Result<Overview, ApiError> {
    Ok(browse::overview(&mut auth.tx).await?)
}

pub async fn purposes(auth: &mut Authorized<ReadAudience>) -> Result<Vec<Purpose>, ApiError> {
    Ok(browse::purposes(&mut auth.tx).await?)
}

/// A purpose's name: 1 to 200 characters, trimmed, no control characters.
fn purpose_name(input: &str) -> Result<String, ApiError> {
    let name = input.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(invalid("name", "a purpose's name is 1 to 200 characters without control characters"));
    }
    Ok(name.to_owned())
}

/// Declares a purpose. Email is the one channel there is so far.
pub async fn create_purpose(
    state: &AppState,
    auth: Authorized<ConfigureAudience>,
    name: &str,
    channel: &str,
    needs_hipaa_authorization: bool,
) -> Result<Purpose, ApiError> {
    let name = purpose_name(name)?;
    if channel != "email" {
        return Err(invalid("channel", "the channel of a purpose is email"));
    }
    let mut tx = auth.tx;
    let created =
        purposes::create(&mut tx, &name, needs_hipaa_authorization, auth.session.user, state.clock.now(), &auth.source)
            .await;
    let id = match created {
        Ok(id) => id,
        Err(DbError::Conflict { .. }) => {
            return Err(ApiError::ConflictOn { field: "name", message: "a purpose with this name exists".into() })
        }
        Err(e) => return Err(e.into()),
    };
    let purpose = browse::purpose(&mut tx, id).await?.ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok(purpose)
}

/// A purpose and its notice versions, newest first.
pub async fn notices(auth: &mut Authorized<ReadAudience>, purpose: &str) -> Result<(Purpose, Vec<Notice>), ApiError> {
    let id = parse_purpose(purpose)?;
    let purpose = browse::purpose(&mut auth.tx, id).await?.ok_or(ApiError::NotFound)?;
    let notices = browse::notices(&mut auth.tx, id).await?;
    Ok((purpose, notices))
}

/// A published notice version: its canonical text and the SHA-256 that names it.
pub struct Published {
    pub sha256: ContentHash,
    pub text: String,
}

/// Publishes a notice version of a purpose. The same text (in canonical form) again is the same
/// version, and changes nothing.
pub async fn publish_notice(
    state: &AppState,
    auth: Authorized<ConfigureAudience>,
    purpose: &str,
    text: &str,
) -> Result<Published, ApiError> {
    let id = parse_purpose(purpose)?;
    let text = NoticeText::parse(text).map_err(|e| invalid("text", e))?;
    let mut tx = auth.tx;
    browse::purpose(&mut tx, id).await?.ok_or(ApiError::NotFound)?;
    let sha256 =
        purposes::publish_notice(&mut tx, id, &text, auth.session.user, state.clock.now(), &auth.source).await?;
    tx.commit().await?;
    Ok(Published { sha256, text: text.canonical().to_owned() })
}

pub async fn attributes(auth: &mut Authorized<ReadAudience>) -> Result<Vec<Attribute>, ApiError> {
    Ok(browse::attributes(&mut auth.tx).await?)
}

/// A new attribute, as a client writes it.
pub struct NewAttribute<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub max_length: Option<i32>,
    pub choices: &'a [String],
}

impl NewAttribute<'_> {
    fn parse(&self) -> Result<(AttributeName, AttributeKind), ApiError> {
        let name = AttributeName::parse(self.name).map_err(|e| invalid("name", e))?;
        let kind = match self.kind {
            "text" => AttributeKind::text(self.max_length.unwrap_or(200)).map_err(|e| invalid("max_length", e))?,
            "number" => AttributeKind::Number,
            "date" => AttributeKind::Date,
            "boolean" => AttributeKind::Boolean,
            "choice" => {
                let choices: Vec<&str> = self.choices.iter().map(String::as_str).collect();
                AttributeKind::choice(&choices).map_err(|e| invalid("choices", e))?
            }
            _ => return Err(invalid("kind", "an attribute's kind is text, number, date, boolean or choice")),
        };
        if !matches!(kind, AttributeKind::Text { .. }) && self.max_length.is_some() {
            return Err(invalid("max_length", "only a text attribute has a maximum length"));
        }
        if !matches!(kind, AttributeKind::Choice { .. }) && !self.choices.is_empty() {
            return Err(invalid("choices", "only a choice attribute has choices"));
        }
        Ok((name, kind))
    }
}

/// Defines an attribute. A definition does not change once values follow it.
pub async fn define_attribute(
    state: &AppState,
    auth: Authorized<ConfigureAudience>,
    new: &NewAttribute<'_>,
) -> Result<Attribute, ApiError> {
    let (name, kind) = new.parse()?;
    let mut tx = auth.tx;
    let defined = attributes::define(&mut tx, &name, &kind, auth.session.user, state.clock.now(), &auth.source).await;
    let id = match defined {
        Ok(id) => id,
        Err(DbError::Conflict { .. }) => {
            return Err(ApiError::ConflictOn { field: "name", message: "an attribute with this name exists".into() })
        }
        Err(e) => return Err(e.into()),
    };
    let all = browse::attributes(&mut tx).await?;
    tx.commit().await?;
    all.into_iter().find(|a| a.id == id).ok_or(ApiError::NotFound)
}

/// A value a client gives an attribute: what JSON or a form can say. Its meaning comes from the
/// attribute's kind.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Given {
    Boolean(bool),
    Number(f64),
    Text(String),
}

fn value_for(attribute: &Attribute, given: Given) -> Result<Value, String> {
    let name = &attribute.name;
    match (attribute.kind.as_str(), given) {
        ("text", Given::Text(t)) => {
            let t = t.trim().to_owned();
            if attribute.max_length.is_some_and(|max| t.chars().count() > usize::try_from(max).unwrap_or(0)) {
                Err(format!("{name} is at most {} characters", attribute.max_length.unwrap_or_default()))
            } else if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                Err(format!("{name} may not hold control characters"))
            } else {
                Ok(Value::Text(t))
            }
        }
        ("number", Given::Number(n)) if n.is_finite() => Ok(Value::Number(n)),
        ("number", Given::Text(t)) => t
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Value::Number)
            .ok_or(format!("{name} is a number")),
        ("date", Given::Text(t)) => NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
            .map(Value::Date)
            .map_err(|_| format!("{name} is a date, YYYY-MM-DD")),
        ("boolean", Given::Boolean(b)) => Ok(Value::Boolean(b)),
        ("boolean", Given::Text(t)) if matches!(t.as_str(), "true" | "false") => Ok(Value::Boolean(t == "true")),
        ("choice", Given::Text(t)) if attribute.choices.iter().any(|c| *c == t.trim()) => {
            Ok(Value::Choice(t.trim().to_owned()))
        }
        ("choice", _) => Err(format!("{name} is one of: {}", attribute.choices.join(", "))),
        (kind, _) => Err(format!("{name} is a {kind}")),
    }
}

/// Sets (or, for `None`, removes) the contact's values of the attributes named; answers the
/// names of those that changed hands.
async fn set_values(
    tx: &mut TenantTx,
    contact: ContactId,
    values: BTreeMap<String, Option<Given>>,
) -> Result<Vec<String>, ApiError> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let defined = browse::attributes(tx).await?;
    let mut changed = Vec::with_capacity(values.len());
    for (name, given) in values {
        let attribute = defined
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| invalid("attributes", format!("the organization has no attribute {name}")))?;
        match given {
            None => {
                browse::unset(tx, contact, attribute.id).await?;
            }
            Some(given) => {
                let value = value_for(attribute, given).map_err(|m| invalid("attributes", m))?;
                match attributes::set(tx, contact, attribute.id, &value).await {
                    Ok(()) => {}
                    Err(DbError::Invalid { .. }) => {
                        return Err(invalid("attributes", format!("{name} does not fit its definition")))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        changed.push(format!("attributes.{name}"));
    }
    Ok(changed)
}

/// What a client writes about a contact. `None` leaves a field as it is (on creation: empty).
#[derive(Default)]
pub struct ContactFields<'a> {
    pub name: Option<&'a str>,
    pub locale: Option<&'a str>,
    pub time_zone: Option<&'a str>,
    pub tags: Option<&'a [String]>,
    /// By attribute name; `None` removes the value.
    pub attributes: BTreeMap<String, Option<Given>>,
}

struct Parsed {
    name: Option<Option<String>>,
    locale: Option<Option<String>>,
    time_zone: Option<Option<String>>,
    tags: Option<Vec<String>>,
}

fn field(e: contact::FieldError) -> ApiError {
    ApiError::Invalid { field: e.field, message: e.message.to_owned() }
}

impl ContactFields<'_> {
    fn parse(&self) -> Result<Parsed, ApiError> {
        Ok(Parsed {
            name: self.name.map(contact::name).transpose().map_err(field)?,
            locale: self.locale.map(contact::locale).transpose().map_err(field)?,
            time_zone: self.time_zone.map(contact::time_zone).transpose().map_err(field)?,
            tags: self.tags.map(contact::tags).transpose().map_err(field)?,
        })
    }
}

/// Adds a contact for `address` (normalised: the domain in ASCII, the local part in lower case).
pub async fn create_contact(
    state: &AppState,
    auth: Authorized<ManageContacts>,
    address: &str,
    fields: ContactFields<'_>,
) -> Result<ContactId, ApiError> {
    let address = Email::parse(address).map_err(|e| invalid("address", e))?;
    let parsed = fields.parse()?;
    let tags = parsed.tags.unwrap_or_default();
    let (name, locale, time_zone) = (parsed.name.flatten(), parsed.locale.flatten(), parsed.time_zone.flatten());
    let new =
        NewContact { name: name.as_deref(), locale: locale.as_deref(), time_zone: time_zone.as_deref(), tags: &tags };
    let mut tx = auth.tx;
    let keys = state.sealer.address_keys();
    let created =
        contacts::create(&mut tx, keys, &address, &new, Some(auth.session.user), state.clock.now(), &auth.source).await;
    let id = match created {
        Ok(id) => id,
        Err(DbError::Conflict { .. }) => {
            return Err(ApiError::ConflictOn {
                field: "address",
                message: "the organization already has a contact with this address".into(),
            })
        }
        Err(e) => return Err(e.into()),
    };
    let changed = set_values(&mut tx, id, fields.attributes).await?;
    if !changed.is_empty() {
        browse::updated(&mut tx, id, &changed, auth.session.user, &auth.source).await?;
    }
    tx.commit().await?;
    Ok(id)
}

/// Changes a contact's name, locale, time zone, tags or attribute values. The audit record names
/// the fields changed, not their values.
pub async fn edit_contact(
    auth: Authorized<ManageContacts>,
    id: &str,
    fields: ContactFields<'_>,
) -> Result<ContactId, ApiError> {
    let id = parse_contact(id)?;
    let parsed = fields.parse()?;
    let changes = browse::Changes {
        name: parsed.name.as_ref().map(Option::as_deref),
        locale: parsed.locale.as_ref().map(Option::as_deref),
        time_zone: parsed.time_zone.as_ref().map(Option::as_deref),
        tags: parsed.tags.as_deref(),
    };
    let mut tx = auth.tx;
    if !browse::update(&mut tx, id, &changes).await? {
        return Err(ApiError::NotFound);
    }
    let mut changed: Vec<String> = [
        ("name", changes.name.is_some()),
        ("locale", changes.locale.is_some()),
        ("time_zone", changes.time_zone.is_some()),
        ("tags", changes.tags.is_some()),
    ]
    .into_iter()
    .filter(|(_, given)| *given)
    .map(|(name, _)| name.to_owned())
    .collect();
    changed.extend(set_values(&mut tx, id, fields.attributes).await?);
    if !changed.is_empty() {
        browse::updated(&mut tx, id, &changed, auth.session.user, &auth.source).await?;
    }
    tx.commit().await?;
    Ok(id)
}

/// What a list of contacts asks for, as a client writes it.
#[derive(Default)]
pub struct Listing<'a> {
    /// The start of an address, or of a word of a name.
    pub search: Option<&'a str>,
    pub tag: Option<&'a str>,
}

/// A page of contacts, newest first, and the cursor of the next. `fields` are the fields of
/// each contact that the door shows: the audit record of the page names them, with the
/// contacts shown.
pub async fn list_contacts(
    auth: &mut Authorized<ReadContacts>,
    listing: &Listing<'_>,
    cursor: Option<&str>,
    limit: Option<i64>,
    fields: &[&str],
) -> Result<(Vec<Contact>, Option<String>), ApiError> {
    let limit = paging::limit(limit)?;
    let filter = Filter {
        search: listing.search.map(str::to_owned),
        tag: listing.tag.map(mos_domain::content::fold_tag).filter(|t| !t.is_empty()),
        before: cursor.map(ContactId::parse).transpose().map_err(|_| paging::bad_cursor())?,
    };
    let rows = browse::contacts(&mut auth.tx, &filter, limit + 1).await?;
    let (rows, next) = paging::split(rows, limit, |c: &Contact| c.id.to_string());
    let ids: Vec<ContactId> = rows.iter().map(|c| c.id).collect();
    browse::shown(&mut auth.tx, Shown::List { contacts: &ids, fields }, auth.session.user, &auth.source).await?;
    Ok((rows, next))
}

/// One consent event as the contact's page shows it: with its purpose's name.
pub struct ConsentEntry {
    pub event: consent::Event,
    pub purpose: String,
}

/// A contact with everything its page shows.
pub struct ContactPage {
    pub contact: Contact,
    pub attributes: Vec<browse::AttributeValue>,
    /// Oldest first, across purposes: the timeline.
    pub history: Vec<ConsentEntry>,
    /// The consent for each purpose now, by purpose name (purposes with no event left out).
    pub current: Vec<(String, mos_domain::audiences::ConsentState)>,
    /// The organization's purposes, which the history names (and a form may offer).
    pub purposes: Vec<Purpose>,
    /// The addresses of the members who recorded the history's events; a member who left is
    /// missing.
    pub recorders: std::collections::HashMap<mos_domain::UserId, String>,
}

/// What a contact's page shows, recorded as shown.
pub const CONTACT_PAGE_FIELDS: &[&str] =
    &["address", "name", "locale", "time_zone", "tags", "attributes", "consent_history"];

/// A contact's page: its fields, attribute values and consent history. Recorded as read.
pub async fn contact(auth: &mut Authorized<ReadContacts>, id: &str) -> Result<ContactPage, ApiError> {
    let id = parse_contact(id)?;
    let found = contacts::get(&mut auth.tx, id).await?;
    let contact = found.filter(|c| c.erased_at.is_none()).ok_or(ApiError::NotFound)?;
    let attributes = browse::values(&mut auth.tx, id).await?;
    let events = consent::history(&mut auth.tx, id).await?;
    let purposes = browse::purposes(&mut auth.tx).await?;
    let names: BTreeMap<PurposeId, String> = purposes.iter().map(|p| (p.id, p.name.clone())).collect();
    let mut current: Vec<(String, mos_domain::audiences::ConsentState)> = browse::consent_now(&mut auth.tx, id)
        .await?
        .into_iter()
        .map(|(purpose, state)| (names.get(&purpose).cloned().unwrap_or_default(), state))
        .collect();
    current.sort_by(|a, b| a.0.cmp(&b.0));
    let mut history: Vec<ConsentEntry> = events
        .into_iter()
        .map(|event| {
            let purpose = names.get(&event.purpose_id).cloned().unwrap_or_default();
            ConsentEntry { event, purpose }
        })
        .collect();
    // By time; events of the same moment stay in the ledger's order (by purpose, then number).
    history.sort_by_key(|e| e.event.created_at);
    let mut ids: Vec<mos_domain::UserId> = history
        .iter()
        .filter_map(|e| e.event.recorded_by)
        .filter_map(|u| mos_domain::UserId::from_uuid(u).ok())
        .collect();
    ids.sort();
    ids.dedup();
    // Before the read is recorded: the look-up is a definer function, which Citus refuses on a
    // tenant's shard after `app_user` wrote there in the same transaction (docs/scaling.md).
    let recorders = mos_db::orgs::addresses(&mut auth.tx, &ids).await?.into_iter().collect();
    let shown = Shown::Detail { contact: id, fields: CONTACT_PAGE_FIELDS };
    browse::shown(&mut auth.tx, shown, auth.session.user, &auth.source).await?;
    Ok(ContactPage { contact, attributes, history, current, purposes, recorders })
}

/// The 164.508(c) elements of a HIPAA marketing authorization, as the signed form states them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HipaaElements {
    /// (c)(1)(i): the information to be used or disclosed.
    pub information: String,
    /// (c)(1)(ii): who may use or disclose it.
    pub disclosers: String,
    /// (c)(1)(iii): to whom.
    pub recipients: String,
    /// (c)(1)(iv): the purpose of each use or disclosure.
    pub purpose: String,
    /// (c)(1)(vi): the signature (the name as signed).
    pub signature: String,
    /// (c)(1)(vi): the date signed, YYYY-MM-DD.
    pub signed_on: String,
    /// (c)(2)(i): the statement of the right to revoke.
    pub right_to_revoke: String,
    /// (c)(2)(ii): the statement on conditioning treatment or payment.
    pub conditioning: String,
    /// (c)(2)(iii): the statement on redisclosure.
    pub redisclosure: String,
    /// (c)(1)(v): the expiry event, when the authorization has no expiry date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_event: Option<String>,
}

impl HipaaElements {
    fn check(&self) -> Result<(), ApiError> {
        let required = [
            &self.information,
            &self.disclosers,
            &self.recipients,
            &self.purpose,
            &self.signature,
            &self.signed_on,
            &self.right_to_revoke,
            &self.conditioning,
            &self.redisclosure,
        ];
        if required.iter().any(|e| e.trim().is_empty() || e.chars().count() > 2000) {
            return Err(invalid(
                "hipaa",
                "a HIPAA authorization states each element of 164.508(c), up to 2,000 characters each",
            ));
        }
        NaiveDate::parse_from_str(self.signed_on.trim(), "%Y-%m-%d")
            .map_err(|_| invalid("hipaa", "signed_on is the date signed, YYYY-MM-DD"))?;
        Ok(())
    }
}

/// What a member records of a contact's consent.
pub enum Change<'a> {
    Grant {
        purpose: &'a str,
        /// `consent`, `hipaa_authorization` or `exemption`.
        basis: &'a str,
        /// The hex SHA-256 of the notice version the person was shown.
        notice: &'a str,
        hipaa: Option<&'a HipaaElements>,
        expires_at: Option<DateTime<Utc>>,
        exemption: Option<&'a str>,
    },
    Revoke {
        purpose: &'a str,
    },
}

/// Which door a member recorded consent through: the ledger names it as the event's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Api,
    Console,
}

/// The ledger's refusals, named by the request field at fault.
fn refused(e: DbError) -> ApiError {
    let DbError::Invalid { constraint } = &e else { return e.into() };
    match constraint.as_str() {
        "consent_events_suppressed" => ApiError::ConflictOn {
            field: "contact",
            message: "this address is suppressed: only the person can consent again, by confirming a sign-up \
                      (double opt-in)"
                .into(),
        },
        "consent_events_contact_erased" | "consent_events_contact_fkey" => ApiError::NotFound,
        "consent_events_purpose_fkey" => invalid("purpose", "the organization has no such purpose"),
        "consent_events_hipaa_required" => {
            invalid("basis", "this purpose needs a HIPAA authorization (basis hipaa_authorization)")
        }
        "consent_events_notice_fkey" | "consent_events_grant" => {
            invalid("notice_sha256", "name a published notice version of this purpose by its SHA-256")
        }
        "consent_events_hipaa" => invalid(
            "hipaa",
            "a HIPAA authorization states each element of 164.508(c), and an expiry date or an expiry event",
        ),
        "consent_events_exemption" | "consent_events_exemption_basis" => {
            invalid("exemption", "an exemption is described in 1 to 2,000 characters")
        }
        _ => e.into(),
    }
}

/// Records a grant or a revocation of a contact's consent for a purpose, by the member, through
/// `door`. Answers the event's number in the contact's history for the purpose.
pub async fn record_consent(
    state: &AppState,
    auth: Authorized<ManageContacts>,
    contact: &str,
    change: &Change<'_>,
    door: Door,
) -> Result<i32, ApiError> {
    let contact = parse_contact(contact)?;
    let by = auth.session.user;
    let provenance = match door {
        Door::Api => Provenance::Api { by },
        Door::Console => Provenance::Console { by },
    };
    let parse_purpose_field =
        |p: &str| PurposeId::parse(p).map_err(|_| invalid("purpose", "the organization has no such purpose"));
    let (purpose, kind, basis, notice) = match change {
        Change::Revoke { purpose } => (parse_purpose_field(purpose)?, ConsentKind::Revoke, None, None),
        Change::Grant { purpose, basis, notice, hipaa, expires_at, exemption } => {
            let notice = ContentHash::parse(notice).map_err(|_| {
                invalid("notice_sha256", "name a published notice version of this purpose by its SHA-256")
            })?;
            let basis = match *basis {
                "consent" => Basis::Consent,
                "hipaa_authorization" => {
                    let elements = hipaa
                        .ok_or_else(|| invalid("hipaa", "a HIPAA authorization states each element of 164.508(c)"))?;
                    elements.check()?;
                    if expires_at.is_none() && elements.expiry_event.as_deref().is_none_or(|e| e.trim().is_empty()) {
                        return Err(invalid(
                            "expires_at",
                            "a HIPAA authorization has an expiry date or an expiry event",
                        ));
                    }
                    Basis::HipaaAuthorization { elements: json!(elements), expires_at: *expires_at }
                }
                "exemption" => Basis::Exemption(exemption.map(str::trim).unwrap_or_default().to_owned()),
                _ => return Err(invalid("basis", "the basis is consent, hipaa_authorization or exemption")),
            };
            (parse_purpose_field(purpose)?, ConsentKind::Grant, Some(basis), Some(notice))
        }
    };
    let record = Record {
        contact,
        purpose,
        kind,
        basis: basis.as_ref(),
        notice,
        provenance,
        evidence: None,
        now: state.clock.now(),
    };
    let mut tx = auth.tx;
    let (_, seq) = consent::append(&mut tx, &record, &auth.source).await.map_err(refused)?;
    tx.commit().await?;
    Ok(seq)
}

/// A page of the suppression list: each entry's key (in hex; not the address), reason and date.
pub async fn suppressions(
    auth: &mut Authorized<ReadContacts>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<(Vec<(String, SuppressionReason, DateTime<Utc>)>, Option<String>), ApiError> {
    let limit = paging::limit(limit)?;
    let after = cursor.map(parse_suppression_cursor).transpose()?;
    let rows = browse::suppressions(&mut auth.tx, after, limit + 1).await?;
    let rows: Vec<_> = rows.into_iter().map(|(key, reason, at)| (hex(&key), reason, at)).collect();
    Ok(paging::split(rows, limit, |(key, _, at)| format!("{}.{key}", at.timestamp_micros())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_suppression_cursor(cursor: &str) -> Result<(DateTime<Utc>, Vec<u8>), ApiError> {
    let (micros, key) = cursor.split_once('.').ok_or_else(paging::bad_cursor)?;
    let at = micros.parse::<i64>().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(paging::bad_cursor)?;
    let key = ContentHash::parse(key).map_err(|_| paging::bad_cursor())?;
    Ok((at, key.0.to_vec()))
}

/// Suppresses an address by hand (reason `manual`). The list keeps the address's keyed hash,
/// not the address.
pub async fn suppress(state: &AppState, auth: Authorized<ManageContacts>, address: &str) -> Result<(), ApiError> {
    let address = Email::parse(address).map_err(|e| invalid("address", e))?;
    let mut tx = auth.tx;
    suppression::suppress(
        &mut tx,
        state.sealer.address_keys(),
        &address,
        SuppressionReason::Manual,
        Some(auth.session.user),
        state.clock.now(),
        &auth.source,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The reasons an address is suppressed for; none when it is not. The check is recorded, with
/// its answer but not the address.
pub async fn suppressed(
    state: &AppState,
    auth: Authorized<ReadContacts>,
    address: &str,
) -> Result<Vec<SuppressionReason>, ApiError> {
    let address = Email::parse(address).map_err(|e| invalid("address", e))?;
    let mut tx = auth.tx;
    let reasons = suppression::reasons(&mut tx, state.sealer.address_keys(), &address).await?;
    let event = AuditEvent::new(SUPPRESSION_CHECKED, SUPPRESSION)
        .actor(auth.session.user)
        .source(auth.source.clone())
        .meta("suppressed", json!(!reasons.is_empty()));
    audit::record(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_attribute_is_written_as_an_iso_date() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert!(
            matches!(AttributeValueView::from(Value::Date(date)), AttributeValueView::Text(t) if t == "2026-03-01")
        );
    }
}
