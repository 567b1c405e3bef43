//! The pages of a message's unsubscribe link (`app::unsubscribe`), for people without an
//! account, headed by the organization's name.
//!
//! Opening the link changes nothing: link scanners open links. The preference centre's buttons
//! are forms of our page, under the console's CSRF rules. The same address takes RFC 8058's
//! one-click `POST` (`api::unsubscribe`), the one change that carries no form token.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use mos_db::audiences::unsubscribe::Refusal;
use mos_domain::content::ContentHash;
use mos_domain::PurposeId;
use secrecy::SecretString;
use serde::Deserialize;

use super::signup::notice;
use super::{alert, hidden, render, render_public, Console, Posted, Visit, FORM_FIELD};
use crate::app::unsubscribe::{self, Preferences, Wanted};
use crate::ApiError;

pub fn router() -> Router<Console> {
    Router::new().route("/u/{token}", get(page)).route("/u/{token}/preferences", post(choose))
}

/// The prefix of a purpose's checkbox name; the rest is the purpose's id.
const PURPOSE_FIELD: &str = "purpose-";
/// The prefix of the hidden field with the SHA-256 of the notice shown for a purpose.
const NOTICE_FIELD: &str = "notice-";

#[derive(Deserialize)]
struct Choices {
    /// Present when the "unsubscribe from everything" button sent the form.
    everything: Option<String>,
    /// The purposes' checkboxes (`purpose-<id>=on`) and the form token.
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

/// The token in the path, kept to the characters a token has, so that nothing else reaches a
/// link of the page.
fn token_of(path: &str) -> (String, SecretString) {
    let token: String = path.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    (token.clone(), SecretString::from(token))
}

fn preferences_form(form_token: &str, link: &str, shown: &Preferences) -> Markup {
    let action = format!("/u/{link}/preferences");
    html! {
        @if let Some(address) = &shown.address {
            p { "These choices are for " strong { (address) } "." }
            h2 { "Stop all email" }
            form id="everything" method="post" action=(action) {
                (hidden(FORM_FIELD, form_token))
                (hidden("everything", "yes"))
                p { "You will get no more email from " (shown.organization) "." }
                button type="submit" { "Unsubscribe from everything" }
            }
            @if !shown.purposes.is_empty() {
                h2 { "Or choose what you get" }
                form id="choices" method="post" action=(action) {
                    (hidden(FORM_FIELD, form_token))
                    fieldset {
                        legend { "Email about" }
                        @for choice in &shown.purposes {
                            @let id = format!("{PURPOSE_FIELD}{}", choice.purpose);
                            @let here = choice.offered();
                            p class="check" {
                                input id=(id) name=(id) type="checkbox" value="on" checked[choice.on()] disabled[!here && !choice.on()];
                                label for=(id) {
                                    (choice.name)
                                    @if choice.purpose == shown.purpose { " (the email you came from)" }
                                    @if !here && !choice.on() { " (cannot be turned on here; ask " (shown.organization) ")" }
                                }
                            }
                            @if let (true, Some(hash), Some(text)) = (here, choice.notice, &choice.notice_text) {
                                (hidden(&format!("{NOTICE_FIELD}{}", choice.purpose), &hash.to_string()))
                                @if !choice.on() {
                                    details {
                                        summary { "What you agree to by ticking " (choice.name) }
                                        (notice(text))
                                    }
                                }
                            }
                        }
                    }
                    button type="submit" class="secondary" { "Save my choices" }
                }
            }
        } @else {
            p { "There is nothing to choose here any more: " (shown.organization) " holds no address for this link." }
        }
    }
}

/// The refusal of a link of a message (`which`: "the unsubscribe link"): the same page for a
/// forged, altered or foreign link and for one whose contact is gone, so that it says nothing of
/// anyone.
pub(super) fn link_refused(console: &Console, visit: &Visit, error: &ApiError, which: &str) -> Response {
    let message = match error {
        ApiError::NotFound => format!(
            "This link does not work: it was copied incompletely or changed. Use {which} of a message you received, as it is."
        ),
        _ => "Something went wrong on our side. Try the link again in a few minutes.".to_owned(),
    };
    render(console, visit, error.status(), "Link not valid", |_| html! { (alert(&message)) }).into_response()
}

const UNSUBSCRIBE_LINK: &str = "the unsubscribe link";

async fn page(State(console): State<Console>, visit: Visit, Path(token): Path<String>) -> Response {
    let (link, secret) = token_of(&token);
    match unsubscribe::preferences(&console.app, &visit.source, &secret).await {
        Ok(shown) => render_public(&console, &visit, StatusCode::OK, &shown.organization, "Your email choices", |t| {
            html! {
                p { "Nothing has changed yet: choose below, and press a button." }
                (preferences_form(t, &link, &shown))
            }
        })
        .into_response(),
        Err(error) => link_refused(&console, &visit, &error, UNSUBSCRIBE_LINK),
    }
}

/// The purposes whose boxes were ticked, each with the notice shown for it; a box that does not
/// name a purpose is ignored.
fn ticked(rest: &HashMap<String, String>) -> Vec<(PurposeId, Option<ContentHash>)> {
    let shown = |id: &str| rest.get(&format!("{NOTICE_FIELD}{id}")).and_then(|h| ContentHash::parse(h).ok());
    rest.keys()
        .filter_map(|k| k.strip_prefix(PURPOSE_FIELD))
        .filter_map(|id| PurposeId::parse(id).ok().map(|p| (p, shown(id))))
        .collect()
}

fn refusal_words(name: &str, why: Refusal) -> String {
    match why {
        Refusal::Suppressed => format!(
            "{name} was not turned on: this address unsubscribed from all email. To hear from us again, sign up on our sign-up form and confirm from your mailbox."
        ),
        Refusal::NotHere => format!("{name} cannot be turned on here: it needs your signed authorization."),
        Refusal::NoticeChanged => {
            format!("{name} was not turned on: what you agree to has changed since the page was opened. Read it below and choose again.")
        }
    }
}

async fn choose(
    State(console): State<Console>,
    Path(token): Path<String>,
    Posted { visit, form }: Posted<Choices>,
) -> Response {
    let (link, secret) = token_of(&token);
    let wanted = if form.everything.is_some() { Wanted::Nothing } else { Wanted::Only(ticked(&form.rest)) };
    match unsubscribe::apply(&console.app, &visit.source, &secret, &wanted).await {
        Ok(applied) => {
            let title = if wanted == Wanted::Nothing { "Unsubscribed" } else { "Your choices are saved" };
            let shown = &applied.preferences;
            render_public(&console, &visit, StatusCode::OK, &shown.organization, title, |t| {
                html! {
                    @if wanted == Wanted::Nothing {
                        p role="status" { "You are unsubscribed from all email of " (shown.organization) "." }
                    } @else if applied.refused.is_empty() {
                        p role="status" { "Your choices are saved." }
                    }
                    @for (name, why) in &applied.refused { (alert(&refusal_words(name, *why))) }
                    (preferences_form(t, &link, shown))
                }
            })
            .into_response()
        }
        Err(error) => link_refused(&console, &visit, &error, UNSUBSCRIBE_LINK),
    }
}
