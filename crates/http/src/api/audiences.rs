//! Audiences under `/v1/orgs/{slug}/...`: the overview's counts, purposes and their notice
//! versions, attribute definitions, contacts with their consent, and the suppression list.
//! Adapters over `app::audiences`; each route names the permission it needs ([`Authorized`]).
//! A route that answers with a contact's personal data leaves an audit record naming the
//! contacts it showed.

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use mos_db::audiences::browse::{Attribute, Notice, Purpose};
use mos_domain::audiences::{ConsentKind, ConsentSource, ConsentState, LawfulBasis, SuppressionReason};
use mos_domain::{AttributeId, ContactId, PurposeId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Authorized, ConfigureAudience, ManageContacts, ReadAudience, ReadContacts};
use crate::api::docs::label_schema;
use crate::app::audiences::{
    self as app, AttributeValueView, Change, ContactFields, ContactSummary, Door, Given, HipaaElements, Listing,
    NewAttribute,
};
use crate::extract::{ApiJson, ApiQuery, BodyLimit};
use crate::{ApiError, AppState};

/// A notice may be 100,000 bytes, which JSON escaping makes longer.
const MAX_NOTICE_REQUEST_BYTES: usize = 256 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    let notices = OpenApiRouter::new()
        .routes(routes!(list_notices, publish_notice))
        .layer(DefaultBodyLimit::max(MAX_NOTICE_REQUEST_BYTES))
        .layer(axum::Extension(BodyLimit(MAX_NOTICE_REQUEST_BYTES)));
    OpenApiRouter::new()
        .routes(routes!(audience_overview))
        .routes(routes!(list_purposes, create_purpose))
        .merge(notices)
        .routes(routes!(list_attributes, define_attribute))
        .routes(routes!(list_contacts, create_contact))
        .routes(routes!(get_contact, edit_contact))
        .routes(routes!(record_consent))
        .routes(routes!(list_suppressions, suppress_address))
        .routes(routes!(check_suppression))
}

label_schema!(
    /// Why an address is suppressed.
    ReasonName,
    SuppressionReason::ALL.iter().map(|r| r.as_str())
);
label_schema!(
    /// A contact's consent for a purpose now.
    StateName,
    ConsentState::ALL.iter().map(|s| s.as_str())
);
label_schema!(
    /// A kind of consent event.
    KindName,
    ConsentKind::ALL.iter().map(|k| k.as_str())
);
label_schema!(
    /// A lawful basis.
    BasisName,
    LawfulBasis::ALL.iter().map(|b| b.as_str())
);
label_schema!(
    /// Where a consent event came from.
    SourceName,
    ConsentSource::ALL.iter().map(|s| s.as_str())
);
label_schema!(
    /// The kind of a custom attribute.
    AttributeKindName,
    ["text", "number", "date", "boolean", "choice"].into_iter()
);

#[derive(Serialize, ToSchema)]
pub struct PurposeCount {
    #[schema(value_type = uuid::Uuid)]
    purpose: PurposeId,
    name: String,
    /// Contacts whose consent for the purpose is granted and not expired now.
    consenting: i64,
}

/// Counts only: no person in them, so every role may read them.
#[derive(Serialize, ToSchema)]
pub struct OverviewView {
    /// Contacts that are not erased.
    contacts: i64,
    /// Addresses on the suppression list.
    suppressed: i64,
    purposes: Vec<PurposeCount>,
}

/// How many contacts, how many consent to each purpose now, how many addresses are suppressed.
#[utoipa::path(get, path = "/v1/orgs/{slug}/audience", tag = "audiences",
    params(("slug" = String, Path)),
    responses((status = 200, body = OverviewView)))]
async fn audience_overview(mut auth: Authorized<ReadAudience>) -> Result<Json<OverviewView>, ApiError> {
    let o = app::overview(&mut auth).await?;
    auth.commit().await?;
    Ok(Json(OverviewView {
        contacts: o.contacts,
        suppressed: o.suppressed,
        purposes: o
            .consenting
            .into_iter()
            .map(|(purpose, name, consenting)| PurposeCount { purpose, name, consenting })
            .collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct PurposeView {
    #[schema(value_type = uuid::Uuid)]
    id: PurposeId,
    name: String,
    #[schema(example = "email")]
    channel: String,
    /// Consent for it is a HIPAA marketing authorization (45 CFR 164.508(a)(3)).
    needs_hipaa_authorization: bool,
    /// How many notice versions it has.
    notices: i64,
    created_at: DateTime<Utc>,
}

impl From<Purpose> for PurposeView {
    fn from(p: Purpose) -> Self {
        Self {
            id: p.id,
            name: p.name,
            channel: p.channel,
            needs_hipaa_authorization: p.needs_hipaa_authorization,
            notices: p.notices,
            created_at: p.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPurpose {
    /// 1 to 200 characters; unique in the organization.
    #[schema(example = "Flu season reminders", min_length = 1, max_length = 200)]
    name: String,
    /// `email`, the one channel so far.
    #[schema(example = "email")]
    #[serde(default = "email")]
    channel: String,
    #[serde(default)]
    needs_hipaa_authorization: bool,
}

fn email() -> String {
    "email".to_owned()
}

/// The organization's purposes, by name.
#[utoipa::path(get, path = "/v1/orgs/{slug}/purposes", tag = "audiences",
    params(("slug" = String, Path)),
    responses((status = 200, body = Vec<PurposeView>)))]
async fn list_purposes(mut auth: Authorized<ReadAudience>) -> Result<Json<Vec<PurposeView>>, ApiError> {
    let all = app::purposes(&mut auth).await?;
    auth.commit().await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

/// Declare a purpose. A name in use answers 409 naming `name`.
#[utoipa::path(post, path = "/v1/orgs/{slug}/purposes", tag = "audiences", request_body = NewPurpose,
    params(("slug" = String, Path)),
    responses((status = 201, body = PurposeView), (status = 409, description = "A purpose with this name exists (`field`: `name`)")))]
async fn create_purpose(
    State(state): State<AppState>,
    auth: Authorized<ConfigureAudience>,
    ApiJson(body): ApiJson<NewPurpose>,
) -> Result<Response, ApiError> {
    let purpose = app::create_purpose(&state, auth, &body.name, &body.channel, body.needs_hipaa_authorization).await?;
    Ok((StatusCode::CREATED, Json(PurposeView::from(purpose))).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct NoticeView {
    /// SHA-256 of the canonical text, in hex: what a consent event names.
    sha256: String,
    /// The canonical text (NFC, `\n` line ends, no trailing spaces).
    text: String,
    #[schema(value_type = uuid::Uuid)]
    created_by: UserId,
    created_at: DateTime<Utc>,
}

impl From<Notice> for NoticeView {
    fn from(n: Notice) -> Self {
        Self { sha256: n.sha256.to_string(), text: n.body, created_by: n.created_by, created_at: n.created_at }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NoticesView {
    purpose: PurposeView,
    /// Newest first.
    notices: Vec<NoticeView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNotice {
    /// 1 to 100,000 bytes; stored in canonical form, which the hash is taken of.
    #[schema(example = "We will email you flu season reminders. Unsubscribe at any time.")]
    text: String,
}

#[derive(Serialize, ToSchema)]
pub struct PublishedView {
    sha256: String,
    text: String,
}

/// A purpose's notice versions, newest first.
#[utoipa::path(get, path = "/v1/orgs/{slug}/purposes/{id}/notices", tag = "audiences",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = NoticesView)))]
async fn list_notices(
    mut auth: Authorized<ReadAudience>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<NoticesView>, ApiError> {
    let (purpose, notices) = app::notices(&mut auth, &id).await?;
    auth.commit().await?;
    Ok(Json(NoticesView { purpose: purpose.into(), notices: notices.into_iter().map(Into::into).collect() }))
}

/// Publish a notice version. A version is identified by the SHA-256 of its canonical text:
/// publishing the same text again answers the same hash and changes nothing.
#[utoipa::path(post, path = "/v1/orgs/{slug}/purposes/{id}/notices", tag = "audiences", request_body = NewNotice,
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 201, body = PublishedView)))]
async fn publish_notice(
    State(state): State<AppState>,
    auth: Authorized<ConfigureAudience>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<NewNotice>,
) -> Result<Response, ApiError> {
    let published = app::publish_notice(&state, auth, &id, &body.text).await?;
    let view = PublishedView { sha256: published.sha256.to_string(), text: published.text };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct AttributeView {
    #[schema(value_type = uuid::Uuid)]
    id: AttributeId,
    name: String,
    #[schema(value_type = AttributeKindName)]
    kind: String,
    /// A text's maximum length in characters.
    max_length: Option<i32>,
    /// A choice's choices.
    choices: Vec<String>,
    created_at: DateTime<Utc>,
}

impl From<Attribute> for AttributeView {
    fn from(a: Attribute) -> Self {
        Self {
            id: a.id,
            name: a.name,
            kind: a.kind,
            max_length: a.max_length,
            choices: a.choices,
            created_at: a.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAttributeBody {
    /// A lower-case letter, then up to 62 lower-case letters, digits or underscores.
    #[schema(example = "preferred_clinic", pattern = "^[a-z][a-z0-9_]{0,62}$")]
    name: String,
    #[schema(value_type = AttributeKindName)]
    kind: String,
    /// For a text: 1 to 10,000 (default 200).
    #[schema(minimum = 1, maximum = 10000)]
    max_length: Option<i32>,
    /// For a choice: 1 to 200 choices of 1 to 200 characters.
    #[serde(default)]
    choices: Vec<String>,
}

/// The organization's custom attributes, by name.
#[utoipa::path(get, path = "/v1/orgs/{slug}/attributes", tag = "audiences",
    params(("slug" = String, Path)),
    responses((status = 200, body = Vec<AttributeView>)))]
async fn list_attributes(mut auth: Authorized<ReadAudience>) -> Result<Json<Vec<AttributeView>>, ApiError> {
    let all = app::attributes(&mut auth).await?;
    auth.commit().await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

/// Define a custom attribute. A name in use answers 409 naming `name`.
#[utoipa::path(post, path = "/v1/orgs/{slug}/attributes", tag = "audiences", request_body = NewAttributeBody,
    params(("slug" = String, Path)),
    responses((status = 201, body = AttributeView), (status = 409, description = "An attribute with this name exists (`field`: `name`)")))]
async fn define_attribute(
    State(state): State<AppState>,
    auth: Authorized<ConfigureAudience>,
    ApiJson(body): ApiJson<NewAttributeBody>,
) -> Result<Response, ApiError> {
    let new = NewAttribute { name: &body.name, kind: &body.kind, max_length: body.max_length, choices: &body.choices };
    let attribute = app::define_attribute(&state, auth, &new).await?;
    Ok((StatusCode::CREATED, Json(AttributeView::from(attribute))).into_response())
}

/// What a list page shows of each contact, as its audit record names it.
const LIST_FIELDS: &[&str] = &["address", "name", "locale", "time_zone", "tags"];

#[derive(Serialize, ToSchema)]
pub struct ContactPageView {
    /// Newest first.
    items: Vec<ContactSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContactQuery {
    /// The start of an address, or of a word of a name (case-insensitive).
    q: Option<String>,
    /// Only contacts with this tag.
    tag: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// One event of the consent history.
#[derive(Serialize, ToSchema)]
pub struct ConsentEventView {
    #[schema(value_type = uuid::Uuid)]
    purpose: PurposeId,
    purpose_name: String,
    /// Its number in the contact's history for the purpose, from 1.
    seq: i32,
    #[schema(value_type = KindName)]
    kind: String,
    #[schema(value_type = Option<BasisName>)]
    basis: Option<String>,
    /// The notice version the person was shown, in hex.
    notice_sha256: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    #[schema(value_type = SourceName)]
    source: String,
    /// The member who recorded it; absent when the person did it themselves.
    recorded_by: Option<uuid::Uuid>,
    /// That member's address; absent too when they are no longer a member.
    recorded_by_email: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsentNow {
    purpose_name: String,
    #[schema(value_type = StateName)]
    state: String,
}

/// A contact with its attribute values and consent history.
#[derive(Serialize, ToSchema)]
pub struct ContactView {
    #[serde(flatten)]
    contact: ContactSummary,
    /// By attribute name.
    attributes: BTreeMap<String, AttributeValueView>,
    /// The consent for each purpose with any event, now.
    consent: Vec<ConsentNow>,
    /// Oldest first, across purposes.
    history: Vec<ConsentEventView>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl From<app::ContactPage> for ContactView {
    fn from(page: app::ContactPage) -> Self {
        Self {
            contact: page.contact.into(),
            attributes: page.attributes.into_iter().map(|a| (a.name, a.value.into())).collect(),
            consent: page
                .current
                .into_iter()
                .map(|(purpose_name, state)| ConsentNow { purpose_name, state: state.as_str().to_owned() })
                .collect(),
            history: page
                .history
                .into_iter()
                .map(|e| ConsentEventView {
                    recorded_by_email: e
                        .event
                        .recorded_by
                        .and_then(|u| mos_domain::UserId::from_uuid(u).ok())
                        .and_then(|u| page.recorders.get(&u).cloned()),
                    purpose: e.event.purpose_id,
                    purpose_name: e.purpose,
                    seq: e.event.seq,
                    kind: e.event.kind.as_str().to_owned(),
                    basis: e.event.basis,
                    notice_sha256: e.event.notice_sha256.as_deref().map(hex),
                    expires_at: e.event.expires_at,
                    source: e.event.source.as_str().to_owned(),
                    recorded_by: e.event.recorded_by,
                    created_at: e.event.created_at,
                })
                .collect(),
        }
    }
}

/// An attribute's new value: a string, number or boolean; `null` removes it.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum GivenValue {
    Boolean(bool),
    Number(f64),
    Text(String),
}

impl From<GivenValue> for Given {
    fn from(v: GivenValue) -> Self {
        match v {
            GivenValue::Boolean(b) => Given::Boolean(b),
            GivenValue::Number(n) => Given::Number(n),
            GivenValue::Text(t) => Given::Text(t),
        }
    }
}

/// A contact's fields; on an edit, a field left out stays as it is, and an empty string clears
/// it.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    /// Only when creating; a contact keeps its address. Normalised: the domain in ASCII, the
    /// local part in lower case. An address the organization has answers 409 naming `address`.
    #[schema(example = "ana@example.com")]
    address: Option<String>,
    /// Up to 200 characters.
    #[schema(example = "Ana Silva", max_length = 200)]
    name: Option<String>,
    /// A language tag such as `en` or `pt-BR`.
    #[schema(example = "pt-BR")]
    locale: Option<String>,
    /// An IANA name such as `America/Sao_Paulo`.
    #[schema(example = "America/Sao_Paulo")]
    time_zone: Option<String>,
    /// Up to 50, each 1 to 40 lowercase letters, digits and single hyphens.
    #[schema(max_items = 50)]
    tags: Option<Vec<String>>,
    /// By attribute name; `null` removes a value.
    #[serde(default)]
    #[schema(value_type = Object)]
    attributes: BTreeMap<String, Option<GivenValue>>,
}

impl ContactBody {
    fn fields(&mut self) -> (ContactFields<'_>, Option<&str>) {
        let attributes =
            std::mem::take(&mut self.attributes).into_iter().map(|(k, v)| (k, v.map(Given::from))).collect();
        (
            ContactFields {
                name: self.name.as_deref(),
                locale: self.locale.as_deref(),
                time_zone: self.time_zone.as_deref(),
                tags: self.tags.as_deref(),
                attributes,
            },
            self.address.as_deref(),
        )
    }
}

/// Contacts, newest first, a page at a time. Each page that shows anyone leaves one audit record
/// (`contact.listed`) naming the contacts shown.
#[utoipa::path(get, path = "/v1/orgs/{slug}/contacts", tag = "audiences",
    params(("slug" = String, Path), ContactQuery),
    responses((status = 200, body = ContactPageView)))]
async fn list_contacts(
    mut auth: Authorized<ReadContacts>,
    ApiQuery(query): ApiQuery<ContactQuery>,
) -> Result<Json<ContactPageView>, ApiError> {
    let listing = Listing { search: query.q.as_deref(), tag: query.tag.as_deref() };
    let (rows, next_cursor) =
        app::list_contacts(&mut auth, &listing, query.cursor.as_deref(), query.limit, LIST_FIELDS).await?;
    auth.commit().await?;
    Ok(Json(ContactPageView { items: rows.into_iter().map(Into::into).collect(), next_cursor }))
}

/// Add a contact.
#[utoipa::path(post, path = "/v1/orgs/{slug}/contacts", tag = "audiences", request_body = ContactBody,
    params(("slug" = String, Path)),
    responses((status = 201, body = ContactIdView), (status = 409, description = "The organization has a contact with this address (`field`: `address`)")))]
async fn create_contact(
    State(state): State<AppState>,
    auth: Authorized<ManageContacts>,
    ApiJson(mut body): ApiJson<ContactBody>,
) -> Result<Response, ApiError> {
    let (fields, address) = body.fields();
    let address = address.ok_or(ApiError::Invalid { field: "address", message: "a contact has an address".into() })?;
    let address = address.to_owned();
    let id = app::create_contact(&state, auth, &address, fields).await?;
    Ok((StatusCode::CREATED, Json(ContactIdView { id })).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct ContactIdView {
    #[schema(value_type = uuid::Uuid)]
    id: ContactId,
}

/// A contact with its attribute values and consent history. Leaves an audit record
/// (`contact.viewed`) naming the contact.
#[utoipa::path(get, path = "/v1/orgs/{slug}/contacts/{id}", tag = "audiences",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ContactView)))]
async fn get_contact(
    mut auth: Authorized<ReadContacts>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ContactView>, ApiError> {
    let page = app::contact(&mut auth, &id).await?;
    auth.commit().await?;
    Ok(Json(page.into()))
}

/// Change a contact's name, locale, time zone, tags or attribute values.
#[utoipa::path(patch, path = "/v1/orgs/{slug}/contacts/{id}", tag = "audiences", request_body = ContactBody,
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ContactIdView)))]
async fn edit_contact(
    auth: Authorized<ManageContacts>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(mut body): ApiJson<ContactBody>,
) -> Result<Json<ContactIdView>, ApiError> {
    let (fields, address) = body.fields();
    if address.is_some() {
        return Err(ApiError::Invalid {
            field: "address",
            message: "a contact keeps its address; another address is another contact".into(),
        });
    }
    let id = app::edit_contact(auth, &id, fields).await?;
    Ok(Json(ContactIdView { id }))
}

#[derive(Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ConsentAction {
    Grant,
    Revoke,
}

/// A grant or a revocation, recorded by you through the API.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    action: ConsentAction,
    #[schema(value_type = uuid::Uuid)]
    purpose: String,
    /// For a grant.
    #[schema(value_type = Option<BasisName>)]
    basis: Option<String>,
    /// For a grant: the SHA-256 (hex) of the notice version the person was shown.
    notice_sha256: Option<String>,
    /// For a HIPAA authorization.
    hipaa: Option<HipaaElements>,
    /// When a HIPAA authorization expires (or give `hipaa.expiry_event`).
    expires_at: Option<DateTime<Utc>>,
    /// For an exemption: what it is, 1 to 2,000 characters.
    exemption: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsentRecorded {
    /// The event's number in the contact's history for the purpose.
    seq: i32,
}

/// Record a grant or a revocation of a contact's consent for a purpose. A grant for a
/// suppressed address is refused (409, `field`: `contact`): only the person can consent again,
/// by a confirmed double opt-in.
#[utoipa::path(post, path = "/v1/orgs/{slug}/contacts/{id}/consent", tag = "audiences", request_body = ConsentBody,
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 201, body = ConsentRecorded), (status = 409, description = "The address is suppressed (`field`: `contact`)")))]
async fn record_consent(
    State(state): State<AppState>,
    auth: Authorized<ManageContacts>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<ConsentBody>,
) -> Result<Response, ApiError> {
    let change = match body.action {
        ConsentAction::Revoke => Change::Revoke { purpose: &body.purpose },
        ConsentAction::Grant => Change::Grant {
            purpose: &body.purpose,
            basis: body.basis.as_deref().ok_or(ApiError::Invalid {
                field: "basis",
                message: "a grant names its basis: consent, hipaa_authorization or exemption".into(),
            })?,
            notice: body.notice_sha256.as_deref().unwrap_or_default(),
            hipaa: body.hipaa.as_ref(),
            expires_at: body.expires_at,
            exemption: body.exemption.as_deref(),
        },
    };
    let seq = app::record_consent(&state, auth, &id, &change, Door::Api).await?;
    Ok((StatusCode::CREATED, Json(ConsentRecorded { seq })).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct SuppressionView {
    /// The entry's key: a keyed hash of the address, not the address.
    key: String,
    #[schema(value_type = ReasonName)]
    reason: String,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct SuppressionPage {
    /// Newest first.
    items: Vec<SuppressionView>,
    next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    #[schema(example = "ana@example.com")]
    address: String,
}

#[derive(Serialize, ToSchema)]
pub struct SuppressedView {
    suppressed: bool,
    #[schema(value_type = Vec<ReasonName>)]
    reasons: Vec<String>,
}

/// The suppression list: reasons and dates. It holds keyed hashes of addresses, not addresses;
/// to ask about an address, use `suppressions/check`.
#[utoipa::path(get, path = "/v1/orgs/{slug}/suppressions", tag = "audiences",
    params(("slug" = String, Path), PageQuery),
    responses((status = 200, body = SuppressionPage)))]
async fn list_suppressions(
    mut auth: Authorized<ReadContacts>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<SuppressionPage>, ApiError> {
    let (rows, next_cursor) = app::suppressions(&mut auth, query.cursor.as_deref(), query.limit).await?;
    auth.commit().await?;
    let items = rows
        .into_iter()
        .map(|(key, reason, created_at)| SuppressionView { key, reason: reason.as_str().to_owned(), created_at })
        .collect();
    Ok(Json(SuppressionPage { items, next_cursor }))
}

/// Suppress an address by hand (reason `manual`): nothing is sent to it, and only the person's
/// own confirmed sign-up records consent for it again.
#[utoipa::path(post, path = "/v1/orgs/{slug}/suppressions", tag = "audiences", request_body = AddressBody,
    params(("slug" = String, Path)),
    responses((status = 204, description = "Suppressed")))]
async fn suppress_address(
    State(state): State<AppState>,
    auth: Authorized<ManageContacts>,
    ApiJson(body): ApiJson<AddressBody>,
) -> Result<StatusCode, ApiError> {
    app::suppress(&state, auth, &body.address).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether an address is suppressed, and why. A POST, so that the address stays out of URLs
/// and their logs.
#[utoipa::path(post, path = "/v1/orgs/{slug}/suppressions/check", tag = "audiences", request_body = AddressBody,
    params(("slug" = String, Path)),
    responses((status = 200, body = SuppressedView)))]
async fn check_suppression(
    State(state): State<AppState>,
    auth: Authorized<ReadContacts>,
    ApiJson(body): ApiJson<AddressBody>,
) -> Result<Json<SuppressedView>, ApiError> {
    let reasons = app::suppressed(&state, auth, &body.address).await?;
    Ok(Json(SuppressedView {
        suppressed: !reasons.is_empty(),
        reasons: reasons.into_iter().map(|r| r.as_str().to_owned()).collect(),
    }))
}
