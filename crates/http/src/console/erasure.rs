//! A person's rights on the contact's page: the export of everything held about them and the
//! consent receipt to download, and erasure behind a confirmation step. Pages call
//! `app::erasure`, as the API does.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};

use super::{failed, hidden, plain, refused, render, Console, NoFields, Posted, Visit, FORM_FIELD};
use serde::Serialize;

use crate::access::{EraseContacts, ExportContacts};
use crate::app::erasure as app;
use crate::ApiError;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/orgs/{slug}/contacts/{id}/erase", get(confirm_erase).post(erase))
        .route("/orgs/{slug}/contacts/{id}/consent-receipt", get(receipt))
        .route("/orgs/{slug}/contacts/{id}/export", get(export))
}

/// The contact page's links to what the member may do here: download the export or the
/// receipt, erase.
pub fn links(slug: &str, contact: &str, exports: bool, erases: bool) -> Markup {
    html! {
        @if exports || erases {
            h2 { "The person's rights" }
            ul {
                @if exports {
                    li {
                        a href={ "/orgs/" (slug) "/contacts/" (contact) "/export" } { "Download everything held about this person" }
                        " (JSON: the contact, attribute values, consent history, notice texts and evidence)"
                    }
                    li {
                        a href={ "/orgs/" (slug) "/contacts/" (contact) "/consent-receipt" } { "Download the consent receipt" }
                        " (JSON; " code { "mos consent verify" } " checks it with the organization's public key)"
                    }
                }
                @if erases {
                    li { a href={ "/orgs/" (slug) "/contacts/" (contact) "/erase" } { "Erase this contact…" } }
                }
            }
        }
    }
}

/// What erasing does, asked before it is done. Shows no personal data: the member comes from
/// the contact's page.
async fn confirm_erase(
    State(console): State<Console>,
    visit: Visit,
    Path((slug, id)): Path<(String, String)>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let allowed = async {
        let auth = visit.member::<EraseContacts>(&console, &slug).await?;
        auth.commit().await
    };
    if let Err(error) = allowed.await {
        return failed(&console, &visit, error, "Erase a contact");
    }
    render(&console, &visit, StatusCode::OK, "Erase a contact", |t| {
        html! {
            p { "Erasing deletes the contact's address, name, language, time zone, tags, attribute values and the evidence of its consent. It cannot be undone." }
            p { "The address stays on the suppression list, so a later import or a consent recorded by a member is refused for it; only the person can consent again, through the sign-up form. The consent events and the audit trail stay, naming the contact by its id only." }
            form method="post" action={ "/orgs/" (slug) "/contacts/" (id) "/erase" } {
                (hidden(FORM_FIELD, t))
                button type="submit" { "Erase the contact" }
            }
            p { a href={ "/orgs/" (slug) "/contacts/" (id) } { "Keep the contact" } }
        }
    })
    .into_response()
}

async fn erase(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    Posted { visit, .. }: Posted<NoFields>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let done = async {
        let auth = visit.member::<EraseContacts>(&console, &slug).await?;
        app::erase_contact(&console.app, auth, &id).await
    };
    match done.await {
        Ok(()) => Redirect::to(&format!("/orgs/{slug}/contacts?done=contact_erased")).into_response(),
        Err(error) => refused(&console, &visit, &error, &format!("/orgs/{slug}/contacts/{id}")),
    }
}

/// A JSON file to download, named `{name}-{id}.json`; `title` names the page of a failure.
fn download<T: Serialize>(
    console: &Console,
    visit: &Visit,
    made: Result<T, ApiError>,
    name: &str,
    id: &str,
    title: &str,
) -> Response {
    match made.and_then(|value| serde_json::to_vec_pretty(&value).map_err(|e| ApiError::Internal(Box::new(e)))) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}-{id}.json\"")),
            ],
            body,
        )
            .into_response(),
        Err(error) => failed(console, visit, error, title),
    }
}

/// The receipt as a file to keep or hand over.
async fn receipt(State(console): State<Console>, visit: Visit, Path((slug, id)): Path<(String, String)>) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let issued = async {
        let mut auth = visit.member::<ExportContacts>(&console, &slug).await?;
        let receipt = app::consent_receipt(&console.app, &mut auth, &id).await?;
        auth.commit().await?;
        Ok(receipt)
    };
    download(&console, &visit, issued.await, "consent-receipt", &id, "Consent receipt")
}

/// Everything held about the person (GDPR Art. 15 and 20), as the API's export answers it and
/// recorded the same way (`contact.exported`).
async fn export(State(console): State<Console>, visit: Visit, Path((slug, id)): Path<(String, String)>) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let exported = async {
        let mut auth = visit.member::<ExportContacts>(&console, &slug).await?;
        let export = app::export_contact(&mut auth, &id).await?;
        auth.commit().await?;
        Ok(export)
    };
    download(&console, &visit, exported.await, "contact-export", &id, "Contact export")
}
