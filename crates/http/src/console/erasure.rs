//! A person's rights on the contact's page: the consent receipt to download, and erasure
//! behind a confirmation step. Pages call `app::erasure`, as the API does.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};

use super::{failed, hidden, plain, refused, render, Console, NoFields, Posted, Visit, FORM_FIELD};
use crate::access::{EraseContacts, ExportContacts};
use crate::app::erasure as app;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/orgs/{slug}/contacts/{id}/erase", get(confirm_erase).post(erase))
        .route("/orgs/{slug}/contacts/{id}/consent-receipt", get(receipt))
}

/// The contact page's links to what the member may do here: download the receipt, erase.
pub fn links(slug: &str, contact: &str, exports: bool, erases: bool) -> Markup {
    html! {
        @if exports || erases {
            h2 { "The person's rights" }
            ul {
                @if exports {
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

/// The receipt as a file to keep or hand over.
async fn receipt(State(console): State<Console>, visit: Visit, Path((slug, id)): Path<(String, String)>) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let issued = async {
        let mut auth = visit.member::<ExportContacts>(&console, &slug).await?;
        let receipt = app::consent_receipt(&console.app, &mut auth, &id).await?;
        auth.commit().await?;
        Ok::<_, crate::ApiError>(receipt)
    };
    match issued.await {
        Ok(receipt) => match serde_json::to_vec_pretty(&receipt) {
            Ok(body) => (
                [
                    (header::CONTENT_TYPE, "application/json".to_owned()),
                    (header::CONTENT_DISPOSITION, format!("attachment; filename=\"consent-receipt-{id}.json\"")),
                ],
                body,
            )
                .into_response(),
            Err(e) => failed(&console, &visit, crate::ApiError::Internal(Box::new(e)), "Consent receipt"),
        },
        Err(error) => failed(&console, &visit, error, "Consent receipt"),
    }
}
