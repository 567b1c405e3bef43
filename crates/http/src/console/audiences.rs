//! The audience area: the overview's counts (every role), the contacts list with its search and
//! tag filter, a contact's page with its consent history as a timeline, purposes with their
//! notice versions and the attributes, and the suppression list. Pages call `app::audiences`,
//! which records every page that shows a contact's personal data, as it does for the API.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use mos_db::audiences::attributes::Value;
use mos_domain::audiences::{ConsentKind, ConsentSource};
use mos_domain::{url_component, UserId};
use serde::Deserialize;

use super::words::confirmation;
use super::{failed, hidden, plain, refused, render, when, Console, Posted, Visit, FORM_FIELD};
use crate::access::{
    Authorized, ConfigureAudience, EraseContacts, ExportContacts, ManageContacts, ReadAudience, ReadContacts,
};
use crate::app::audiences::{self as app, Change, ContactFields, Door, Given, HipaaElements, Listing, NewAttribute};
use crate::ApiError;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/orgs/{slug}/audience", get(overview))
        .route("/orgs/{slug}/contacts", get(contacts).post(add_contact))
        .route("/orgs/{slug}/contacts/{id}", get(contact).post(edit_contact))
        .route("/orgs/{slug}/contacts/{id}/consent", post(record_consent))
        .route("/orgs/{slug}/purposes", get(purposes).post(create_purpose))
        .route("/orgs/{slug}/purposes/{id}", get(purpose))
        .route("/orgs/{slug}/purposes/{id}/notices", post(publish_notice))
        .route("/orgs/{slug}/attributes", post(define_attribute))
        .route("/orgs/{slug}/suppressions", get(suppressions).post(suppress))
        .route("/orgs/{slug}/suppressions/check", post(check))
}

/// What the contacts list shows of each contact, as its audit record names it.
const LIST_FIELDS: &[&str] = &["address", "name", "tags"];

/// The links of the audience area, each shown to the roles that may open it.
fn area(slug: &str, contacts: bool) -> Markup {
    html! {
        nav aria-label="Audience" class="filters" {
            a href={ "/orgs/" (slug) } { "Organization" } " · "
            a href={ "/orgs/" (slug) "/audience" } { "Audience" } " · "
            @if contacts {
                a href={ "/orgs/" (slug) "/contacts" } { "Contacts" } " · "
            }
            a href={ "/orgs/" (slug) "/purposes" } { "Purposes and notices" } " · "
            a href={ "/orgs/" (slug) "/segments" } { "Segments" }
            @if contacts {
                " · " a href={ "/orgs/" (slug) "/suppressions" } { "Suppression list" }
            }
        }
    }
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[derive(Deserialize, Default)]
struct Done {
    done: Option<String>,
}

async fn overview(State(console): State<Console>, visit: Visit, Path(slug): Path<String>) -> Response {
    let slug = plain(&slug);
    let read = visit.read(&console, &slug, "Audience", async |auth: &mut Authorized<ReadAudience>| {
        let counts = app::overview(auth).await?;
        let people = auth.may::<ReadContacts>();
        Ok((counts, people))
    });
    let (counts, people) = match read.await {
        Ok(read) => read,
        Err(page) => return page,
    };
    render(&console, &visit, StatusCode::OK, "Audience", |_| {
        html! {
            (area(&slug, people))
            @if !people { p class="note" { "Your role shows counts only: the contacts' personal data is for ADMINs and CREATORs." } }
            dl {
                dt { "Contacts" } dd { (counts.contacts) }
                dt { "Suppressed addresses" } dd { (counts.suppressed) }
            }
            h2 { "Consent now, per purpose" }
            @if counts.consenting.is_empty() { p { "No purposes yet." } }
            @else {
                div class="scroll" { table {
                    thead { tr { th scope="col" { "Purpose" } th scope="col" { "Contacts who consent" } } }
                    tbody {
                        @for (_, name, n) in &counts.consenting {
                            tr { td { (name) } td { (n) } }
                        }
                    }
                } }
            }
        }
    })
    .into_response()
}

#[derive(Deserialize, Default)]
struct ContactQuery {
    q: Option<String>,
    tag: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

async fn contacts(
    State(console): State<Console>,
    visit: Visit,
    Path(slug): Path<String>,
    Query(query): Query<ContactQuery>,
) -> Response {
    let slug = plain(&slug);
    let again: String = [("q", &query.q), ("tag", &query.tag)]
        .iter()
        .filter_map(|(name, value)| given(value).map(|v| format!("&{name}={}", url_component(v))))
        .collect();
    let listing = Listing { search: given(&query.q), tag: given(&query.tag) };
    let read = visit.read(&console, &slug, "Contacts", async |auth: &mut Authorized<ReadContacts>| {
        let page = app::list_contacts(auth, &listing, query.cursor.as_deref(), Some(50), LIST_FIELDS).await?;
        let manages = auth.may::<ManageContacts>();
        Ok((page, manages))
    });
    let ((rows, next), manages) = match read.await {
        Ok(read) => read,
        Err(page) => return page,
    };
    render(&console, &visit, StatusCode::OK, "Contacts", |t| {
        html! {
            (area(&slug, true))
            (confirmation(query.done.as_deref()))
            form method="get" action={ "/orgs/" (slug) "/contacts" } class="filters" {
                p { label for="q" { "Address or name starts with" } input id="q" name="q" type="search" value=[query.q.as_deref()]; }
                p { label for="tag" { "Tag" } input id="tag" name="tag" type="text" value=[query.tag.as_deref()]; }
                button type="submit" { "Search" }
            }
            @if rows.is_empty() { p { "Nobody here." } }
            @else {
                div class="scroll" {
                    table {
                        thead { tr { th scope="col" { "Address" } th scope="col" { "Name" } th scope="col" { "Tags" } } }
                        tbody {
                            @for c in &rows {
                                tr {
                                    td { a href={ "/orgs/" (slug) "/contacts/" (c.id) } { (c.address.as_deref().unwrap_or_default()) } }
                                    td { (c.name.as_deref().unwrap_or_default()) }
                                    td { (c.tags.join(", ")) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(cursor) = next {
                p { a href={ "/orgs/" (slug) "/contacts?cursor=" (plain(&cursor)) (again) } { "Older" } }
            }
            @if manages {
                h2 { "Add a contact" }
                form method="post" action={ "/orgs/" (slug) "/contacts" } {
                    (hidden(FORM_FIELD, t))
                    p { label for="address" { "Email address" } input id="address" name="address" type="email" autocomplete="off" required; }
                    (contact_inputs(None, None, None, ""))
                    button type="submit" { "Add" }
                }
            }
        }
    })
    .into_response()
}

/// The inputs of a contact's own fields, filled in with what it has.
fn contact_inputs(name: Option<&str>, locale: Option<&str>, zone: Option<&str>, tags: &str) -> Markup {
    html! {
        p { label for="name" { "Name" } input id="name" name="name" type="text" autocomplete="off" value=[name]; }
        p { label for="locale" { "Language (such as en or pt-BR)" } input id="locale" name="locale" type="text" autocomplete="off" value=[locale]; }
        p { label for="time_zone" { "Time zone (such as America/New_York)" } input id="time_zone" name="time_zone" type="text" autocomplete="off" value=[zone]; }
        p { label for="tags" { "Tags, separated by commas" } input id="tags" name="tags" type="text" autocomplete="off" value=(tags); }
    }
}

#[derive(Deserialize)]
struct ContactForm {
    address: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    tags: String,
    /// Attribute values, as `attr.<name>` fields.
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

impl ContactForm {
    fn tags(&self) -> Vec<String> {
        self.tags.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
    }

    /// The attribute fields: an empty one removes the value.
    fn attributes(&self) -> BTreeMap<String, Option<Given>> {
        self.rest
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("attr.").map(|name| (name.to_owned(), v.trim())))
            .map(|(name, v)| (name, (!v.is_empty()).then(|| Given::Text(v.to_owned()))))
            .collect()
    }
}

async fn add_contact(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, form }: Posted<ContactForm>,
) -> Response {
    let slug = plain(&slug);
    let back = format!("/orgs/{slug}/contacts");
    let tags = form.tags();
    let fields = ContactFields {
        name: Some(&form.name),
        locale: Some(&form.locale),
        time_zone: Some(&form.time_zone),
        tags: Some(&tags),
        attributes: BTreeMap::new(),
    };
    let done = async {
        let auth = visit.member::<ManageContacts>(&console, &slug).await?;
        app::create_contact(&console.app, auth, form.address.as_deref().unwrap_or_default(), fields).await
    };
    match done.await {
        Ok(id) => Redirect::to(&format!("/orgs/{slug}/contacts/{id}?done=created")).into_response(),
        Err(error) => refused(&console, &visit, &error, &back),
    }
}

async fn edit_contact(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    Posted { visit, form }: Posted<ContactForm>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let back = format!("/orgs/{slug}/contacts/{id}");
    let tags = form.tags();
    let fields = ContactFields {
        name: Some(&form.name),
        locale: Some(&form.locale),
        time_zone: Some(&form.time_zone),
        tags: Some(&tags),
        attributes: form.attributes(),
    };
    let done = async {
        let auth = visit.member::<ManageContacts>(&console, &slug).await?;
        app::edit_contact(auth, &id, fields).await
    };
    match done.await {
        Ok(_) => Redirect::to(&format!("{back}?done=contact_saved")).into_response(),
        Err(error) => refused(&console, &visit, &error, &back),
    }
}

fn words(text: &str) -> String {
    let spaced = text.replace('_', " ");
    let mut chars = spaced.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn kind_words(kind: ConsentKind) -> &'static str {
    match kind {
        ConsentKind::Grant => "Consent given",
        ConsentKind::Confirm => "Confirmed by the person",
        ConsentKind::Revoke => "Consent withdrawn",
        ConsentKind::Expire => "Expired",
    }
}

fn source_words(source: ConsentSource) -> &'static str {
    match source {
        ConsentSource::SignupForm => "the sign-up form",
        ConsentSource::Import => "an import",
        ConsentSource::Api => "the API",
        ConsentSource::Console => "the console",
        ConsentSource::Unsubscribe => "the person's unsubscribe link",
        ConsentSource::PreferenceCentre => "the person's preference centre",
        ConsentSource::Complaint => "the person's spam report to their mailbox provider",
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::Text(t) | Value::Choice(t) => t.clone(),
        Value::Number(n) => n.to_string(),
        Value::Date(d) => d.format("%Y-%m-%d").to_string(),
        Value::Boolean(b) => if *b { "yes" } else { "no" }.to_owned(),
    }
}

async fn contact(
    State(console): State<Console>,
    visit: Visit,
    Path((slug, id)): Path<(String, String)>,
    Query(query): Query<Done>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let now = console.app.clock.now();
    let read = async {
        let mut auth = visit.member::<ReadContacts>(&console, &slug).await?;
        let page = app::contact(&mut auth, &id).await?;
        let manages = auth.may::<ManageContacts>();
        let rights = (auth.may::<ExportContacts>(), auth.may::<EraseContacts>());
        // Every role that reads contacts reads the audience's definitions too.
        let mut reader =
            auth.also::<ReadAudience>().map_err(|_| ApiError::Forbidden(mos_domain::Permission::ReadAudience))?;
        let defined = app::attributes(&mut reader).await?;
        reader.commit().await?;
        Ok::<_, ApiError>((page, manages, rights, defined))
    };
    let (page, manages, (exports, erases), defined) = match read.await {
        Ok(read) => read,
        Err(error) => return failed(&console, &visit, error, "Contact"),
    };
    let address = page.contact.address.clone().unwrap_or_default();
    let person = |by: Option<uuid::Uuid>| match by.and_then(|u| UserId::from_uuid(u).ok()) {
        None => "the person".to_owned(),
        Some(user) => page.recorders.get(&user).cloned().unwrap_or_else(|| "a former member".to_owned()),
    };
    let values: HashMap<&str, String> =
        page.attributes.iter().map(|a| (a.name.as_str(), value_text(&a.value))).collect();
    render(&console, &visit, StatusCode::OK, &address, |t| {
        html! {
            (area(&slug, true))
            (confirmation(query.done.as_deref()))
            dl {
                dt { "Name" } dd { (page.contact.name.as_deref().unwrap_or("—")) }
                dt { "Language" } dd { (page.contact.locale.as_deref().unwrap_or("—")) }
                dt { "Time zone" } dd { (page.contact.time_zone.as_deref().unwrap_or("—")) }
                dt { "Tags" } dd { (page.contact.tags.join(", ")) }
                dt { "Added" } dd { (when(now, page.contact.created_at)) }
                @for a in &page.attributes { dt { (a.name) } dd { (value_text(&a.value)) } }
            }
            h2 { "Consent now" }
            @if page.current.is_empty() { p { "No consent recorded." } }
            @else {
                ul { @for (purpose, state) in &page.current { li { (purpose) ": " (words(state.as_str())) } } }
            }
            h2 { "Consent history" }
            @if page.history.is_empty() { p { "Nothing yet." } }
            @else {
                ol class="timeline" {
                    @for e in &page.history {
                        li {
                            strong { (kind_words(e.event.kind)) } " · " (e.purpose)
                            br;
                            @if let Some(basis) = &e.event.basis { "Basis: " (words(basis)) ". " }
                            @if let Some(hash) = &e.event.notice_sha256 {
                                "Notice " code { (hash.iter().take(6).map(|b| format!("{b:02x}")).collect::<String>()) } ". "
                            }
                            @if let Some(expires) = e.event.expires_at { "Expires " (when(now, expires)) ". " }
                            "Through " (source_words(e.event.source)) ", by " (person(e.event.recorded_by)) ", " (when(now, e.event.created_at)) "."
                        }
                    }
                }
            }
            @if manages {
                h2 { "Record consent" }
                @if page.purposes.is_empty() { p { "Declare a purpose first." } }
                @else {
                    form method="post" action={ "/orgs/" (slug) "/contacts/" (page.contact.id) "/consent" } {
                        (hidden(FORM_FIELD, t))
                        p {
                            label for="purpose" { "Purpose" }
                            select id="purpose" name="purpose" {
                                @for p in &page.purposes { option value=(p.id) { (p.name) } }
                            }
                        }
                        p {
                            label for="action" { "What happened" }
                            select id="action" name="action" {
                                option value="grant" { "The person gave consent" }
                                option value="revoke" { "The person withdrew consent" }
                            }
                        }
                        p {
                            label for="basis" { "Basis (for consent given)" }
                            select id="basis" name="basis" {
                                option value="consent" { "Consent" }
                                option value="hipaa_authorization" { "HIPAA authorization" }
                                option value="exemption" { "Documented exemption" }
                            }
                        }
                        p { label for="notice" { "Notice version shown (its SHA-256, from the purpose's page)" } input id="notice" name="notice" type="text" autocomplete="off"; }
                        p { label for="exemption" { "Exemption, described" } input id="exemption" name="exemption" type="text" autocomplete="off"; }
                        details {
                            summary { "HIPAA authorization: its 164.508(c) elements" }
                            @for (name, label) in HIPAA_FIELDS {
                                p { label for={ "hipaa_" (name) } { (label) } input id={ "hipaa_" (name) } name={ "hipaa_" (name) } type="text" autocomplete="off"; }
                            }
                            p { label for="expires_on" { "Expires on (YYYY-MM-DD)" } input id="expires_on" name="expires_on" type="date"; }
                        }
                        button type="submit" { "Record" }
                    }
                }
                h2 { "Edit" }
                form method="post" action={ "/orgs/" (slug) "/contacts/" (page.contact.id) } {
                    (hidden(FORM_FIELD, t))
                    (contact_inputs(page.contact.name.as_deref(), page.contact.locale.as_deref(), page.contact.time_zone.as_deref(), &page.contact.tags.join(", ")))
                    @for a in &defined {
                        p {
                            label for={ "attr_" (a.name) } { (a.name) " (" (a.kind) ")" }
                            input id={ "attr_" (a.name) } name={ "attr." (a.name) } type="text" autocomplete="off" value=[values.get(a.name.as_str())];
                        }
                    }
                    button type="submit" { "Save" }
                }
            }
            (super::erasure::links(&slug, &page.contact.id.to_string(), exports, erases))
        }
    })
    .into_response()
}

/// The 164.508(c) elements, by the form field that carries each, and how the form asks for it.
const HIPAA_FIELDS: [(&str, &str); 10] = [
    ("information", "Information to be used or disclosed"),
    ("disclosers", "Who may use or disclose it"),
    ("recipients", "To whom"),
    ("purpose", "For what purpose"),
    ("signature", "Signed by"),
    ("signed_on", "Signed on (YYYY-MM-DD)"),
    ("right_to_revoke", "Statement of the right to revoke"),
    ("conditioning", "Statement on conditioning of treatment"),
    ("redisclosure", "Statement on redisclosure"),
    ("expiry_event", "Expiry event (when there is no expiry date)"),
];

#[derive(Deserialize)]
struct ConsentForm {
    purpose: String,
    action: String,
    #[serde(default)]
    basis: String,
    #[serde(default)]
    notice: String,
    #[serde(default)]
    exemption: String,
    #[serde(default)]
    expires_on: String,
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

impl ConsentForm {
    fn hipaa(&self) -> HipaaElements {
        let get = |name: &str| self.rest.get(&format!("hipaa_{name}")).map(|v| v.trim().to_owned()).unwrap_or_default();
        HipaaElements {
            information: get("information"),
            disclosers: get("disclosers"),
            recipients: get("recipients"),
            purpose: get("purpose"),
            signature: get("signature"),
            signed_on: get("signed_on"),
            right_to_revoke: get("right_to_revoke"),
            conditioning: get("conditioning"),
            redisclosure: get("redisclosure"),
            expiry_event: Some(get("expiry_event")).filter(|e| !e.is_empty()),
        }
    }
}

async fn record_consent(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    Posted { visit, form }: Posted<ConsentForm>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let back = format!("/orgs/{slug}/contacts/{id}");
    let hipaa = form.hipaa();
    let expires_at = chrono::NaiveDate::parse_from_str(form.expires_on.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc());
    let change = match form.action.as_str() {
        "revoke" => Change::Revoke { purpose: &form.purpose },
        _ => Change::Grant {
            purpose: &form.purpose,
            basis: &form.basis,
            notice: &form.notice,
            hipaa: (form.basis == "hipaa_authorization").then_some(&hipaa),
            expires_at,
            exemption: (form.basis == "exemption").then_some(form.exemption.as_str()),
        },
    };
    let done = async {
        let auth = visit.member::<ManageContacts>(&console, &slug).await?;
        app::record_consent(&console.app, auth, &id, &change, Door::Console).await
    };
    match done.await {
        Ok(_) => Redirect::to(&format!("{back}?done=consent_recorded")).into_response(),
        Err(error) => refused(&console, &visit, &error, &back),
    }
}

async fn purposes(
    State(console): State<Console>,
    visit: Visit,
    Path(slug): Path<String>,
    Query(query): Query<Done>,
) -> Response {
    let slug = plain(&slug);
    let now = console.app.clock.now();
    let read = visit.read(&console, &slug, "Purposes and notices", async |auth: &mut Authorized<ReadAudience>| {
        let purposes = app::purposes(auth).await?;
        let attributes = app::attributes(auth).await?;
        let (configures, people) = (auth.may::<ConfigureAudience>(), auth.may::<ReadContacts>());
        Ok((purposes, attributes, configures, people))
    });
    let (purposes, attributes, configures, people) = match read.await {
        Ok(read) => read,
        Err(page) => return page,
    };
    render(&console, &visit, StatusCode::OK, "Purposes and notices", |t| {
        html! {
            (area(&slug, people))
            (confirmation(query.done.as_deref()))
            @if purposes.is_empty() { p { "No purposes yet." } }
            @else {
                div class="scroll" { table {
                    thead { tr { th scope="col" { "Purpose" } th scope="col" { "Channel" } th scope="col" { "HIPAA authorization" } th scope="col" { "Notice versions" } th scope="col" { "Declared" } } }
                    tbody {
                        @for p in &purposes {
                            tr {
                                td { a href={ "/orgs/" (slug) "/purposes/" (p.id) } { (p.name) } }
                                td { (words(&p.channel)) }
                                td { @if p.needs_hipaa_authorization { "Needed" } @else { "Not needed" } }
                                td { (p.notices) }
                                td { (when(now, p.created_at)) }
                            }
                        }
                    }
                } }
            }
            @if configures {
                h2 { "Declare a purpose" }
                form method="post" action={ "/orgs/" (slug) "/purposes" } {
                    (hidden(FORM_FIELD, t))
                    p { label for="name" { "Name" } input id="name" name="name" type="text" autocomplete="off" required; }
                    p { input id="hipaa" name="needs_hipaa_authorization" type="checkbox" value="true"; " " label for="hipaa" { "Consent for it is a HIPAA marketing authorization" } }
                    button type="submit" { "Declare" }
                }
            }
            h2 { "Attributes" }
            @if attributes.is_empty() { p { "No attributes yet." } }
            @else {
                div class="scroll" { table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Kind" } th scope="col" { "Rule" } } }
                    tbody {
                        @for a in &attributes {
                            tr {
                                td { (a.name) }
                                td { (words(&a.kind)) }
                                td {
                                    @if let Some(max) = a.max_length { "Up to " (max) " characters" }
                                    @if !a.choices.is_empty() { "One of: " (a.choices.join(", ")) }
                                }
                            }
                        }
                    }
                } }
            }
            @if configures {
                h2 { "Define an attribute" }
                form method="post" action={ "/orgs/" (slug) "/attributes" } {
                    (hidden(FORM_FIELD, t))
                    p { label for="attr_name" { "Name (lower-case letters, digits, underscores)" } input id="attr_name" name="name" type="text" autocomplete="off" required; }
                    p {
                        label for="kind" { "Kind" }
                        select id="kind" name="kind" {
                            @for k in ["text", "number", "date", "boolean", "choice"] { option value=(k) { (words(k)) } }
                        }
                    }
                    p { label for="max_length" { "Longest text, in characters (for text)" } input id="max_length" name="max_length" type="number" min="1" max="10000"; }
                    p { label for="choices" { "Choices, separated by commas (for choice)" } input id="choices" name="choices" type="text" autocomplete="off"; }
                    button type="submit" { "Define" }
                }
            }
        }
    })
    .into_response()
}

#[derive(Deserialize)]
struct PurposeForm {
    name: String,
    needs_hipaa_authorization: Option<String>,
}

async fn create_purpose(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, form }: Posted<PurposeForm>,
) -> Response {
    let slug = plain(&slug);
    let back = format!("/orgs/{slug}/purposes");
    let hipaa = form.needs_hipaa_authorization.as_deref() == Some("true");
    let done = async {
        let auth = visit.member::<ConfigureAudience>(&console, &slug).await?;
        app::create_purpose(&console.app, auth, &form.name, "email", hipaa).await
    };
    match done.await {
        Ok(p) => Redirect::to(&format!("/orgs/{slug}/purposes/{}?done=created", p.id)).into_response(),
        Err(error) => refused(&console, &visit, &error, &back),
    }
}

#[derive(Deserialize)]
struct AttributeForm {
    name: String,
    kind: String,
    #[serde(default)]
    max_length: String,
    #[serde(default)]
    choices: String,
}

async fn define_attribute(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, form }: Posted<AttributeForm>,
) -> Response {
    let slug = plain(&slug);
    let back = format!("/orgs/{slug}/purposes");
    let choices: Vec<String> =
        form.choices.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect();
    let max_length = form.max_length.trim().parse::<i32>().ok().filter(|_| form.kind == "text");
    let new = NewAttribute { name: &form.name, kind: &form.kind, max_length, choices: &choices };
    let done = async {
        let auth = visit.member::<ConfigureAudience>(&console, &slug).await?;
        app::define_attribute(&console.app, auth, &new).await
    };
    match done.await {
        Ok(_) => Redirect::to(&format!("{back}?done=defined")).into_response(),
        Err(error) => refused(&console, &visit, &error, &back),
    }
}

async fn purpose(
    State(console): State<Console>,
    visit: Visit,
    Path((slug, id)): Path<(String, String)>,
    Query(query): Query<Done>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let now = console.app.clock.now();
    let read = visit.read(&console, &slug, "Purpose", async |auth: &mut Authorized<ReadAudience>| {
        let (purpose, notices) = app::notices(auth, &id).await?;
        let (configures, people) = (auth.may::<ConfigureAudience>(), auth.may::<ReadContacts>());
        Ok((purpose, notices, configures, people))
    });
    let (purpose, notices, configures, people) = match read.await {
        Ok(read) => read,
        Err(page) => return page,
    };
    render(&console, &visit, StatusCode::OK, &purpose.name, |t| {
        html! {
            (area(&slug, people))
            (confirmation(query.done.as_deref()))
            p { @if purpose.needs_hipaa_authorization { "Consent for this purpose is a HIPAA marketing authorization." } @else { "Consent for this purpose is given by email sign-up or recorded by a member." } }
            h2 { "Notice versions" }
            @if notices.is_empty() { p { "None published yet." } }
            @for n in &notices {
                article {
                    h3 { "Published " (when(now, n.created_at)) }
                    p { "SHA-256: " code { (n.sha256.to_string()) } }
                    pre { (n.body) }
                }
            }
            @if configures {
                h2 { "Publish a notice version" }
                form method="post" action={ "/orgs/" (slug) "/purposes/" (purpose.id) "/notices" } {
                    (hidden(FORM_FIELD, t))
                    p { label for="text" { "Text, exactly as people will read it" } textarea id="text" name="text" rows="8" required {} }
                    button type="submit" { "Publish" }
                }
            }
        }
    })
    .into_response()
}

#[derive(Deserialize)]
struct NoticeForm {
    text: String,
}

async fn publish_notice(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    Posted { visit, form }: Posted<NoticeForm>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let back = format!("/orgs/{slug}/purposes/{id}");
    let done = async {
        let auth = visit.member::<ConfigureAudience>(&console, &slug).await?;
        app::publish_notice(&console.app, auth, &id, &form.text).await
    };
    match done.await {
        Ok(_) => Redirect::to(&format!("{back}?done=published_notice")).into_response(),
        Err(error) => refused(&console, &visit, &error, &back),
    }
}

#[derive(Deserialize, Default)]
struct PageQuery {
    cursor: Option<String>,
    done: Option<String>,
}

async fn suppressions(
    State(console): State<Console>,
    visit: Visit,
    Path(slug): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let slug = plain(&slug);
    let now = console.app.clock.now();
    let read = visit.read(&console, &slug, "Suppression list", async |auth: &mut Authorized<ReadContacts>| {
        let page = app::suppressions(auth, query.cursor.as_deref(), Some(50)).await?;
        let manages = auth.may::<ManageContacts>();
        Ok((page, manages))
    });
    let ((rows, next), manages) = match read.await {
        Ok(read) => read,
        Err(page) => return page,
    };
    render(&console, &visit, StatusCode::OK, "Suppression list", |t| {
        html! {
            (area(&slug, true))
            (confirmation(query.done.as_deref()))
            p class="note" { "The list keeps a keyed fingerprint of each address, not the address: ask about an address below." }
            form method="post" action={ "/orgs/" (slug) "/suppressions/check" } {
                (hidden(FORM_FIELD, t))
                p { label for="check_address" { "Is this address suppressed?" } input id="check_address" name="address" type="email" autocomplete="off" required; }
                button type="submit" { "Check" }
            }
            @if rows.is_empty() { p { "No address is suppressed." } }
            @else {
                div class="scroll" { table {
                    thead { tr { th scope="col" { "Reason" } th scope="col" { "Since" } } }
                    tbody { @for (_, reason, at) in &rows { tr { td { (words(reason.as_str())) } td { (when(now, *at)) } } } }
                } }
            }
            @if let Some(cursor) = next {
                p { a href={ "/orgs/" (slug) "/suppressions?cursor=" (plain_cursor(&cursor)) } { "Older" } }
            }
            @if manages {
                h2 { "Suppress an address" }
                form method="post" action={ "/orgs/" (slug) "/suppressions" } {
                    (hidden(FORM_FIELD, t))
                    p { label for="address" { "Email address" } input id="address" name="address" type="email" autocomplete="off" required; }
                    button type="submit" { "Suppress" }
                }
            }
        }
    })
    .into_response()
}

/// A suppression cursor holds digits, a dot and hex.
fn plain_cursor(cursor: &str) -> String {
    cursor.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '.').collect()
}

#[derive(Deserialize)]
struct AddressForm {
    address: String,
}

async fn suppress(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, form }: Posted<AddressForm>,
) -> Response {
    let slug = plain(&slug);
    let back = format!("/orgs/{slug}/suppressions");
    let done = async {
        let auth = visit.member::<ManageContacts>(&console, &slug).await?;
        app::suppress(&console.app, auth, &form.address).await
    };
    match done.await {
        Ok(()) => Redirect::to(&format!("{back}?done=suppressed")).into_response(),
        Err(error) => refused(&console, &visit, &error, &back),
    }
}

async fn check(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, form }: Posted<AddressForm>,
) -> Response {
    let slug = plain(&slug);
    let back = format!("/orgs/{slug}/suppressions");
    let done = async {
        let auth = visit.member::<ReadContacts>(&console, &slug).await?;
        app::suppressed(&console.app, auth, &form.address).await
    };
    match done.await {
        Ok(reasons) => render(&console, &visit, StatusCode::OK, "Suppression check", |_| {
            html! {
                (area(&slug, true))
                @if reasons.is_empty() { p role="status" { (form.address) " is not suppressed." } }
                @else {
                    p role="status" { (form.address) " is suppressed: "
                        (reasons.iter().map(|r| words(r.as_str())).collect::<Vec<_>>().join(", ")) "." }
                }
                p { a href=(back) { "Back to the suppression list" } }
            }
        })
        .into_response(),
        Err(error) => refused(&console, &visit, &error, &back),
    }
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn codes_are_said_as_words() {
        assert_eq!(words("hipaa_authorization"), "Hipaa authorization");
        assert_eq!(words(""), "");
    }
}
