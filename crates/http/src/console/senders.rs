//! Senders in the console: the list, the form for a new sender, and a sender's page with the
//! DNS TXT record of each published key, its details to change, and the rotation and
//! retirement of keys, each behind a page that says what it does before it is done. Every
//! action calls `app::senders`, as the API does; no page shows a private key.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use mos_domain::Permission;
use serde::Deserialize;

use super::words::confirmation;
use super::{alert, failed, hidden, plain, refused, render, when, Console, NoFields, Posted, Visit, FORM_FIELD};
use crate::access::{ManageSenders, ReadSenders};
use crate::app::senders::{self as app, ChangesInput, SenderInput, SenderPage};
use crate::ApiError;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/orgs/{slug}/senders", get(list))
        .route("/orgs/{slug}/senders/new", get(new).post(post_new))
        .route("/orgs/{slug}/senders/{id}", get(sender).post(post_changes))
        .route("/orgs/{slug}/senders/{id}/rotate", get(confirm_rotate).post(rotate))
        .route("/orgs/{slug}/senders/{id}/keys/{key}/retire", get(confirm_retire).post(retire))
}

/// The sender list's page size.
const PAGE: i64 = 50;

fn area(slug: &str, manages: bool) -> Markup {
    html! {
        nav aria-label="Senders" class="filters" {
            a href={ "/orgs/" (slug) } { "Organization" } " · "
            a href={ "/orgs/" (slug) "/senders" } { "Senders" }
            @if manages { " · " a href={ "/orgs/" (slug) "/senders/new" } { "New sender" } }
        }
    }
}

#[derive(Deserialize, Default)]
struct ListQuery {
    cursor: Option<String>,
    done: Option<String>,
}

async fn list(
    State(console): State<Console>,
    visit: Visit,
    Path(slug): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    let slug = plain(&slug);
    let read = async {
        let mut auth = visit.member::<ReadSenders>(&console, &slug).await?;
        let page = app::list(&mut auth, query.cursor.as_deref(), Some(PAGE)).await?;
        let manages = auth.role.can(Permission::ManageSenders);
        auth.commit().await?;
        Ok::<_, ApiError>((page, manages))
    };
    let ((rows, next), manages) = match read.await {
        Ok(read) => read,
        Err(error) => return failed(&console, &visit, error, "Senders"),
    };
    render(&console, &visit, StatusCode::OK, "Senders", |_| {
        html! {
            (area(&slug, manages))
            (confirmation(query.done.as_deref()))
            @if rows.is_empty() { p { "No senders yet." } }
            @else {
                div class="scroll" { table {
                    thead { tr { th scope="col" { "From" } th scope="col" { "Address" } th scope="col" { "DKIM domain" } } }
                    tbody {
                        @for s in &rows {
                            tr {
                                td { a href={ "/orgs/" (slug) "/senders/" (s.id) } { (s.from_name.as_str()) } }
                                td { (s.from_address) }
                                td { (s.dkim_domain.as_str()) }
                            }
                        }
                    }
                } }
            }
            @if let Some(cursor) = next {
                p { a href={ "/orgs/" (slug) "/senders?cursor=" (plain(&cursor)) } { "More" } }
            }
        }
    })
    .into_response()
}

#[derive(Deserialize, Default)]
struct SenderForm {
    #[serde(default)]
    from_name: String,
    #[serde(default)]
    from_address: String,
    #[serde(default)]
    reply_to: String,
    #[serde(default)]
    postal_address: String,
    #[serde(default)]
    dkim_domain: String,
    #[serde(default)]
    selector: String,
}

fn text_field(label: &str, name: &str, value: &str, required: bool, hint: Option<&str>) -> Markup {
    let hint_id = format!("{name}-hint");
    html! {
        p {
            label for=(name) { (label) }
            input id=(name) name=(name) type="text" value=(value) required[required]
                aria-describedby=[hint.map(|_| hint_id.as_str())];
            @if let Some(hint) = hint { span id=(hint_id) class="note" { (hint) } }
        }
    }
}

fn postal_field(value: &str) -> Markup {
    html! {
        p {
            label for="postal_address" { "Postal address (printed in every message, as CAN-SPAM requires)" }
            textarea id="postal_address" name="postal_address" rows="4" required { (value) }
        }
    }
}

fn new_form(slug: &str, token: &str, form: &SenderForm, problem: Option<&str>) -> Markup {
    html! {
        (area(slug, true))
        @if let Some(problem) = problem { (alert(problem)) }
        form method="post" action={ "/orgs/" (slug) "/senders/new" } {
            (hidden(FORM_FIELD, token))
            (text_field("From name", "from_name", &form.from_name, true, None))
            (text_field("From address", "from_address", &form.from_address, true,
                Some("At the DKIM domain or a subdomain of it, so that DMARC counts the signature.")))
            (text_field("Reply-to (optional)", "reply_to", &form.reply_to, false, None))
            (postal_field(&form.postal_address))
            (text_field("DKIM domain", "dkim_domain", &form.dkim_domain, true, Some("The domain the signatures name, such as example.com.")))
            (text_field("Selector of the first key", "selector", &form.selector, true,
                Some("The key is published at selector._domainkey.domain; letters, digits and hyphens.")))
            button type="submit" { "Add the sender and generate its key" }
        }
    }
}

async fn new(State(console): State<Console>, visit: Visit, Path(slug): Path<String>) -> Response {
    let slug = plain(&slug);
    let allowed = async { visit.member::<ManageSenders>(&console, &slug).await?.commit().await };
    if let Err(error) = allowed.await {
        return failed(&console, &visit, error, "New sender");
    }
    let form = SenderForm { selector: "mos1".into(), ..SenderForm::default() };
    render(&console, &visit, StatusCode::OK, "New sender", |t| new_form(&slug, t, &form, None)).into_response()
}

async fn post_new(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, form }: Posted<SenderForm>,
) -> Response {
    let slug = plain(&slug);
    let done = async {
        let auth = visit.member::<ManageSenders>(&console, &slug).await?;
        let input = SenderInput {
            from_name: &form.from_name,
            from_address: &form.from_address,
            reply_to: Some(form.reply_to.as_str()),
            postal_address: &form.postal_address,
            dkim_domain: &form.dkim_domain,
            selector: &form.selector,
        };
        app::create(&console.app, auth, &input).await
    };
    match done.await {
        Ok(page) => {
            Redirect::to(&format!("/orgs/{slug}/senders/{}?done=sender_created", page.sender.id)).into_response()
        }
        Err(error @ ApiError::Invalid { .. }) => {
            let problem = error.to_string();
            render(&console, &visit, StatusCode::UNPROCESSABLE_ENTITY, "New sender", |t| {
                new_form(&slug, t, &form, Some(&problem))
            })
            .into_response()
        }
        Err(error) => refused(&console, &visit, &error, &format!("/orgs/{slug}/senders/new")),
    }
}

#[derive(Deserialize, Default)]
struct PageQuery {
    done: Option<String>,
}

async fn read_sender(console: &Console, visit: &Visit, slug: &str, id: &str) -> Result<(SenderPage, bool), ApiError> {
    let mut auth = visit.member::<ReadSenders>(console, slug).await?;
    let page = app::sender(&mut auth, id).await?;
    let manages = auth.role.can(Permission::ManageSenders);
    auth.commit().await?;
    Ok((page, manages))
}

fn sender_body(
    slug: &str,
    token: &str,
    page: &SenderPage,
    manages: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Markup {
    let s = &page.sender;
    let base = format!("/orgs/{slug}/senders/{}", s.id);
    html! {
        (area(slug, manages))
        dl class="facts" {
            dt { "From" } dd { (s.from_name.as_str()) " <" (s.from_address) ">" }
            dt { "Reply-to" } dd { (s.reply_to.as_ref().map_or("none", |r| r.as_str())) }
            dt { "Postal address" } dd { @for line in s.postal_address.as_str().split('\n') { (line) br; } }
            dt { "DKIM domain" } dd { (s.dkim_domain.as_str()) }
        }
        h2 { "DNS records to publish" }
        p { "Publish each record as a TXT record before mail is sent with its key. A previous key stays published until it is retired, so that mail it signed still verifies." }
        // One block per key, not a table: a record's value is a long unbroken string that a
        // phone's width must wrap.
        @for key in &page.keys {
            section aria-label={ "Key " (key.selector.as_str()) } {
                h3 { "Key " code { (key.selector.as_str()) } " (" (key.state.as_str()) ")" }
                dl class="facts" {
                    dt { "Created" } dd { (when(now, key.created_at)) }
                    @if let Some(record) = page.record(key) {
                        dt { "TXT name" } dd { code { (record.name) } }
                        dt { "TXT value" } dd { code { (record.value) } }
                    } @else {
                        dt { "Record" } dd { "Not published (retired)" }
                    }
                }
                @if manages && key.state == mos_domain::senders::KeyState::Previous {
                    p { a href={ (base) "/keys/" (key.id) "/retire" } { "Retire key " (key.selector.as_str()) "…" } }
                }
            }
        }
        @if manages {
            p { a href={ (base) "/rotate" } { "Rotate the key…" } }
            h2 { "Change the sender" }
            form method="post" action=(base) {
                (hidden(FORM_FIELD, token))
                (text_field("From name", "from_name", s.from_name.as_str(), true, None))
                (text_field("Reply-to (empty for none)", "reply_to", s.reply_to.as_ref().map_or("", |r| r.as_str()), false, None))
                (postal_field(s.postal_address.as_str()))
                button type="submit" { "Save" }
            }
        }
    }
}

async fn sender(
    State(console): State<Console>,
    visit: Visit,
    Path((slug, id)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let (page, manages) = match read_sender(&console, &visit, &slug, &id).await {
        Ok(read) => read,
        Err(error) => return failed(&console, &visit, error, "Sender"),
    };
    let now = console.app.clock.now();
    // The name, not the address: an address is one word that a phone's width cannot wrap.
    let title = format!("Sender: {}", page.sender.from_name.as_str());
    render(&console, &visit, StatusCode::OK, &title, |t| {
        html! { (confirmation(query.done.as_deref())) (sender_body(&slug, t, &page, manages, now)) }
    })
    .into_response()
}

#[derive(Deserialize, Default)]
struct ChangesForm {
    #[serde(default)]
    from_name: String,
    #[serde(default)]
    reply_to: String,
    #[serde(default)]
    postal_address: String,
}

async fn post_changes(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    Posted { visit, form }: Posted<ChangesForm>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let done = async {
        let auth = visit.member::<ManageSenders>(&console, &slug).await?;
        let input = ChangesInput {
            from_name: Some(&form.from_name),
            reply_to: Some(&form.reply_to),
            postal_address: Some(&form.postal_address),
        };
        app::update(&console.app, auth, &id, &input).await
    };
    match done.await {
        Ok(_) => Redirect::to(&format!("/orgs/{slug}/senders/{id}?done=sender_saved")).into_response(),
        Err(error) => refused(&console, &visit, &error, &format!("/orgs/{slug}/senders/{id}")),
    }
}

#[derive(Deserialize, Default)]
struct RotateForm {
    #[serde(default)]
    selector: String,
}

/// What a rotation does, asked before it is done, with the new key's selector to choose.
async fn confirm_rotate(
    State(console): State<Console>,
    visit: Visit,
    Path((slug, id)): Path<(String, String)>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let allowed = async { visit.member::<ManageSenders>(&console, &slug).await?.commit().await };
    if let Err(error) = allowed.await {
        return failed(&console, &visit, error, "Rotate the key");
    }
    // A selector that names when the key was made tells an operator reading DNS which is newer.
    let suggested = format!("mos{}", console.app.clock.now().format("%Y%m%d"));
    render(&console, &visit, StatusCode::OK, "Rotate the key", |t| {
        html! {
            p { "A new RSA-2048 key is generated and signs from now on. The key it replaces becomes the previous key: it stays published until you retire it, so that mail it signed and still in flight verifies." }
            p { "Publish the new key's record (shown on the sender's page) right away: mail signed with it fails DKIM until receivers can find it." }
            form method="post" action={ "/orgs/" (slug) "/senders/" (id) "/rotate" } {
                (hidden(FORM_FIELD, t))
                (text_field("Selector of the new key", "selector", &suggested, true, Some("One this sender never used; letters, digits and hyphens.")))
                button type="submit" { "Rotate the key" }
            }
            p { a href={ "/orgs/" (slug) "/senders/" (id) } { "Keep the current key" } }
        }
    })
    .into_response()
}

async fn rotate(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    Posted { visit, form }: Posted<RotateForm>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let done = async {
        let auth = visit.member::<ManageSenders>(&console, &slug).await?;
        app::rotate(&console.app, auth, &id, &form.selector).await
    };
    match done.await {
        Ok(_) => Redirect::to(&format!("/orgs/{slug}/senders/{id}?done=key_rotated")).into_response(),
        Err(error) => refused(&console, &visit, &error, &format!("/orgs/{slug}/senders/{id}/rotate")),
    }
}

/// What retiring a key does, asked before it is done.
async fn confirm_retire(
    State(console): State<Console>,
    visit: Visit,
    Path((slug, id, key)): Path<(String, String, String)>,
) -> Response {
    let (slug, id, key) = (plain(&slug), plain(&id), plain(&key));
    let allowed = async { visit.member::<ManageSenders>(&console, &slug).await?.commit().await };
    if let Err(error) = allowed.await {
        return failed(&console, &visit, error, "Retire a key");
    }
    render(&console, &visit, StatusCode::OK, "Retire a key", |t| {
        html! {
            p { "A retired key never signs again, and its DNS record may then be removed. Mail it signed that is still on its way, or that a receiver checks again later, no longer verifies once the record is gone." }
            form method="post" action={ "/orgs/" (slug) "/senders/" (id) "/keys/" (key) "/retire" } {
                (hidden(FORM_FIELD, t))
                button type="submit" { "Retire the key" }
            }
            p { a href={ "/orgs/" (slug) "/senders/" (id) } { "Keep the key" } }
        }
    })
    .into_response()
}

async fn retire(
    State(console): State<Console>,
    Path((slug, id, key)): Path<(String, String, String)>,
    Posted { visit, .. }: Posted<NoFields>,
) -> Response {
    let (slug, id, key) = (plain(&slug), plain(&id), plain(&key));
    let done = async {
        let auth = visit.member::<ManageSenders>(&console, &slug).await?;
        app::retire(&console.app, auth, &id, &key).await
    };
    match done.await {
        Ok(_) => Redirect::to(&format!("/orgs/{slug}/senders/{id}?done=key_retired")).into_response(),
        Err(error) => refused(&console, &visit, &error, &format!("/orgs/{slug}/senders/{id}")),
    }
}
