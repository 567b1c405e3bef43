//! Webhooks in the console (docs/webhooks.md), for an ADMIN: the organization's endpoints, the
//! form for a new one, and an endpoint's page with its deliveries, the switch that disables or
//! enables it, and the replacement of its signing secret behind a page that says what it does.
//! A secret is shown once, on the page that answers its creation or replacement; no other page
//! carries it. Every action calls `app::webhooks`, as the API does.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use mos_db::webhooks::{Delivery, Webhook};
use mos_domain::webhooks::EventType;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::words::confirmation;
use super::{alert, failed, hidden, plain, refused, render, when, Console, NoFields, Posted, Visit, FORM_FIELD};
use crate::access::ManageWebhooks;
use crate::app::webhooks::{self as app, WebhookInput};
use crate::ApiError;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/orgs/{slug}/webhooks", get(list))
        .route("/orgs/{slug}/webhooks/new", get(new).post(post_new))
        .route("/orgs/{slug}/webhooks/{id}", get(endpoint))
        .route("/orgs/{slug}/webhooks/{id}/enabled", post(switch))
        .route("/orgs/{slug}/webhooks/{id}/rotate", get(confirm_rotate).post(rotate))
}

fn area(slug: &str) -> Markup {
    html! {
        nav aria-label="Webhooks" class="filters" {
            a href={ "/orgs/" (slug) } { "Organization" } " · "
            a href={ "/orgs/" (slug) "/webhooks" } { "Webhooks" } " · "
            a href={ "/orgs/" (slug) "/webhooks/new" } { "New endpoint" }
        }
    }
}

/// Whether an endpoint is sent anything, and why not.
fn status(w: &Webhook) -> &'static str {
    match (w.enabled, w.disabled_reason.as_deref()) {
        (true, _) => "enabled",
        (false, Some("failures")) => "disabled after failing too often in a row",
        (false, _) => "disabled",
    }
}

#[derive(Deserialize, Default)]
struct PageQuery {
    done: Option<String>,
}

async fn list(
    State(console): State<Console>,
    visit: Visit,
    Path(slug): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let slug = plain(&slug);
    let read = async {
        let mut auth = visit.member::<ManageWebhooks>(&console, &slug).await?;
        let rows = app::list(&mut auth).await?;
        auth.commit().await?;
        Ok::<_, ApiError>(rows)
    };
    let rows = match read.await {
        Ok(rows) => rows,
        Err(error) => return failed(&console, &visit, error, "Webhooks"),
    };
    render(&console, &visit, StatusCode::OK, "Webhooks", |_| {
        html! {
            (area(&slug))
            (confirmation(query.done.as_deref()))
            p { "Each endpoint is sent the events it subscribes to, signed as the Standard Webhooks specification says, retried until it answers 2xx." }
            @if rows.is_empty() { p { "No endpoints yet." } }
            @else {
                div class="scroll" { table {
                    thead { tr { th scope="col" { "Endpoint" } th scope="col" { "Events" } th scope="col" { "Status" } } }
                    tbody {
                        @for w in &rows {
                            tr {
                                td { a href={ "/orgs/" (slug) "/webhooks/" (w.id) } { code { (w.url) } } }
                                td { (w.events.join(", ")) }
                                td { (status(w)) }
                            }
                        }
                    }
                } }
            }
        }
    })
    .into_response()
}

/// The form's fields: the address, a description, and one checkbox per event type (named
/// `event:<type>`, since a form sends a checked box as its own name).
#[derive(Deserialize, Default)]
struct WebhookForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
    #[serde(flatten)]
    rest: BTreeMap<String, String>,
}

impl WebhookForm {
    fn events(&self) -> Vec<String> {
        EventType::ALL
            .iter()
            .map(|t| t.as_str().to_owned())
            .filter(|t| self.rest.contains_key(&format!("event:{t}")))
            .collect()
    }
}

fn new_form(slug: &str, token: &str, form: &WebhookForm, problem: Option<&str>) -> Markup {
    let chosen = form.events();
    html! {
        (area(slug))
        @if let Some(problem) = problem { (alert(problem)) }
        form method="post" action={ "/orgs/" (slug) "/webhooks/new" } {
            (hidden(FORM_FIELD, token))
            p {
                label for="url" { "Endpoint address" }
                input id="url" name="url" type="url" value=(form.url) required aria-describedby="url-hint";
                span id="url-hint" class="note" { "An https address on the public internet." }
            }
            p {
                label for="description" { "Description (optional)" }
                input id="description" name="description" type="text" maxlength="200" value=(form.description);
            }
            fieldset {
                legend { "Events to send" }
                @for t in EventType::ALL {
                    @let name = format!("event:{}", t.as_str());
                    p {
                        input id=(name) name=(name) type="checkbox" value="on" checked[chosen.iter().any(|c| c == t.as_str())];
                        " " label for=(name) { code { (t.as_str()) } }
                    }
                }
            }
            button type="submit" { "Add the endpoint" }
        }
    }
}

async fn new(State(console): State<Console>, visit: Visit, Path(slug): Path<String>) -> Response {
    let slug = plain(&slug);
    let allowed = async { visit.member::<ManageWebhooks>(&console, &slug).await?.commit().await };
    if let Err(error) = allowed.await {
        return failed(&console, &visit, error, "New webhook endpoint");
    }
    let form = WebhookForm::default();
    render(&console, &visit, StatusCode::OK, "New webhook endpoint", |t| new_form(&slug, t, &form, None))
        .into_response()
}

/// The page that shows a signing secret, its only showing.
fn secret_page(slug: &str, webhook: &str, secret: &SecretString, what: &str) -> Markup {
    html! {
        p { (what) }
        p { "The signing secret, shown this once: copy it into the receiver now. Nobody can read it again; a lost secret is replaced, not recovered." }
        p { code id="secret" { (secret.expose_secret()) } }
        p { a href={ "/orgs/" (slug) "/webhooks/" (webhook) } { "The endpoint" } }
    }
}

async fn post_new(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, form }: Posted<WebhookForm>,
) -> Response {
    let slug = plain(&slug);
    let events = form.events();
    let done = async {
        let auth = visit.member::<ManageWebhooks>(&console, &slug).await?;
        let description = Some(form.description.as_str());
        let input = WebhookInput { url: &form.url, events: &events, description };
        app::create(&console.app, auth, &input).await
    };
    match done.await {
        Ok(created) => {
            let id = created.webhook.id.to_string();
            render(&console, &visit, StatusCode::CREATED, "Endpoint added", |_| {
                secret_page(
                    &slug,
                    &id,
                    &created.secret,
                    "The endpoint is added and enabled: events are sent to it from now on.",
                )
            })
            .into_response()
        }
        Err(error @ ApiError::Invalid { .. }) => {
            let problem = error.to_string();
            render(&console, &visit, StatusCode::UNPROCESSABLE_ENTITY, "New webhook endpoint", |t| {
                new_form(&slug, t, &form, Some(&problem))
            })
            .into_response()
        }
        Err(error) => refused(&console, &visit, &error, &format!("/orgs/{slug}/webhooks/new")),
    }
}

fn deliveries_table(deliveries: &[Delivery], now: chrono::DateTime<chrono::Utc>) -> Markup {
    html! {
        @if deliveries.is_empty() { p { "Nothing sent yet." } }
        @else {
            div class="scroll" { table {
                caption { "The latest deliveries, newest first" }
                thead { tr {
                    th scope="col" { "Event" } th scope="col" { "Occurred" } th scope="col" { "State" }
                    th scope="col" { "Attempts" } th scope="col" { "Last answer" } th scope="col" { "Next attempt" }
                } }
                tbody {
                    @for d in deliveries {
                        tr {
                            th scope="row" { code { (d.event_type) } }
                            td { (when(now, d.occurred_at)) }
                            td { (d.state) }
                            td { (d.attempts) }
                            td {
                                @if let Some(status) = d.last_status { "HTTP " (status) }
                                @else if let Some(error) = &d.last_error { (error) }
                                @else { "—" }
                            }
                            td { @if let Some(at) = d.next_attempt_at { (when(now, at)) } @else { "—" } }
                        }
                    }
                }
            } }
        }
    }
}

async fn endpoint(
    State(console): State<Console>,
    visit: Visit,
    Path((slug, id)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let read = async {
        let mut auth = visit.member::<ManageWebhooks>(&console, &slug).await?;
        let shown = app::get(&mut auth, &id).await?;
        auth.commit().await?;
        Ok::<_, ApiError>(shown)
    };
    let (webhook, deliveries) = match read.await {
        Ok(shown) => shown,
        Err(error) => return failed(&console, &visit, error, "Webhook endpoint"),
    };
    let now = console.app.clock.now();
    let base = format!("/orgs/{slug}/webhooks/{id}");
    render(&console, &visit, StatusCode::OK, "Webhook endpoint", |t| {
        html! {
            (area(&slug))
            (confirmation(query.done.as_deref()))
            dl class="facts" {
                dt { "Address" } dd { code { (webhook.url) } }
                @if let Some(description) = &webhook.description { dt { "Description" } dd { (description) } }
                dt { "Events" } dd { (webhook.events.join(", ")) }
                dt { "Status" } dd { (status(&webhook)) }
                dt { "Failures in a row" } dd { (webhook.consecutive_failures) }
                dt { "Added" } dd { (when(now, webhook.created_at)) }
            }
            form method="post" action={ (base) "/enabled" } class="step" {
                (hidden(FORM_FIELD, t))
                @if webhook.enabled {
                    input type="hidden" name="enabled" value="false";
                    button type="submit" class="secondary" { "Disable the endpoint" }
                } @else {
                    input type="hidden" name="enabled" value="true";
                    button type="submit" { "Enable the endpoint" }
                }
            }
            p { a href={ (base) "/rotate" } { "Replace the signing secret…" } }
            h2 { "Deliveries" }
            (deliveries_table(&deliveries, now))
        }
    })
    .into_response()
}

#[derive(Deserialize, Default)]
struct SwitchForm {
    #[serde(default)]
    enabled: String,
}

async fn switch(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    Posted { visit, form }: Posted<SwitchForm>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let enabled = form.enabled == "true";
    let done = async {
        let auth = visit.member::<ManageWebhooks>(&console, &slug).await?;
        app::set_enabled(&console.app, auth, &id, enabled).await
    };
    let said = if enabled { "webhook_enabled" } else { "webhook_disabled" };
    match done.await {
        Ok(_) => Redirect::to(&format!("/orgs/{slug}/webhooks/{id}?done={said}")).into_response(),
        Err(error) => refused(&console, &visit, &error, &format!("/orgs/{slug}/webhooks/{id}")),
    }
}

/// What replacing the secret does, asked before it is done.
async fn confirm_rotate(
    State(console): State<Console>,
    visit: Visit,
    Path((slug, id)): Path<(String, String)>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let allowed = async { visit.member::<ManageWebhooks>(&console, &slug).await?.commit().await };
    if let Err(error) = allowed.await {
        return failed(&console, &visit, error, "Replace the signing secret");
    }
    render(&console, &visit, StatusCode::OK, "Replace the signing secret", |t| {
        html! {
            p { "A new secret signs every attempt from now on, retries of earlier events included. The receiver rejects them until it has the new secret: put it there at once." }
            form method="post" action={ "/orgs/" (slug) "/webhooks/" (id) "/rotate" } {
                (hidden(FORM_FIELD, t))
                button type="submit" { "Replace the signing secret" }
            }
            p { a href={ "/orgs/" (slug) "/webhooks/" (id) } { "Keep the current secret" } }
        }
    })
    .into_response()
}

async fn rotate(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    Posted { visit, .. }: Posted<NoFields>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let done = async {
        let auth = visit.member::<ManageWebhooks>(&console, &slug).await?;
        app::rotate(&console.app, auth, &id).await
    };
    match done.await {
        Ok(secret) => render(&console, &visit, StatusCode::OK, "Signing secret replaced", |_| {
            secret_page(&slug, &id, &secret, "The signing secret is replaced: the new one signs from now on.")
        })
        .into_response(),
        Err(error) => refused(&console, &visit, &error, &format!("/orgs/{slug}/webhooks/{id}")),
    }
}
