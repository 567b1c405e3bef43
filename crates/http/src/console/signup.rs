//! An organization's public sign-up pages (`app::signup`): the form of a purpose, and the page
//! its mailed link lands on. They are for people without an account, so they are headed by the
//! organization's name rather than the console's links; opening the link changes nothing (mail
//! scanners open links too), its button confirms.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use secrecy::SecretString;
use serde::Deserialize;

use super::{alert, field, hidden, plain, render, render_public, Console, Posted, Visit, FORM_FIELD};
use crate::app::signup::{self, Request, SignupForm};
use crate::ApiError;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/o/{slug}/signup/{purpose}", get(form_page).post(sign_up))
        .route("/o/{slug}/confirm", get(confirm_page).post(confirm))
}

#[derive(Deserialize)]
struct SignupFields {
    email: String,
    notice_sha256: String,
    /// Present when the box is ticked.
    consent: Option<String>,
}

#[derive(Deserialize)]
struct TokenLink {
    token: Option<String>,
}

#[derive(Deserialize)]
struct TokenForm {
    token: String,
}

/// A notice as the person reads it: its paragraphs, with its line breaks kept.
pub(super) fn notice(text: &str) -> Markup {
    html! {
        div class="notice" {
            @for paragraph in text.split("\n\n") {
                p {
                    @for (n, line) in paragraph.lines().enumerate() {
                        @if n > 0 { br; }
                        (line)
                    }
                }
            }
        }
    }
}

fn signup_form(token: &str, slug: &str, form: &SignupForm, problem: Option<&str>) -> Markup {
    let action = format!("/o/{}/signup/{}", plain(slug), form.purpose);
    html! {
        @if let Some(problem) = problem { (alert(problem)) }
        p { "Sign up to hear from " strong { (form.organization) } " about: " strong { (form.purpose_name) } "." }
        h2 { "What you agree to" }
        (notice(&form.notice_text))
        form method="post" action=(action) {
            (hidden(FORM_FIELD, token))
            (hidden("notice_sha256", &form.notice.to_string()))
            (field("Your email address", "email", "email", "email"))
            p class="check" {
                input id="consent" name="consent" type="checkbox" value="yes" required;
                label for="consent" { "I have read the text above and agree to it." }
            }
            button type="submit" { "Sign up" }
        }
        p class="note" { "We will email you a link. Nothing is sent to you unless you open it and confirm." }
    }
}

/// The page of a public route that failed before the organization was known.
fn not_found(console: &Console, visit: &Visit, error: &ApiError) -> Response {
    render(console, visit, error.status(), "Page not found", |_| {
        html! { (alert("There is no sign-up form at this address. Check the link you followed.")) }
    })
    .into_response()
}

async fn form_page(
    State(console): State<Console>,
    visit: Visit,
    Path((slug, purpose)): Path<(String, String)>,
) -> Response {
    match signup::form(&console.app, &slug, &purpose).await {
        Ok(form) => render_public(&console, &visit, StatusCode::OK, &form.organization, "Sign up", |t| {
            signup_form(t, &slug, &form, None)
        })
        .into_response(),
        Err(error) => not_found(&console, &visit, &error),
    }
}

async fn sign_up(
    State(console): State<Console>,
    Path((slug, purpose)): Path<(String, String)>,
    Posted { visit, form: fields }: Posted<SignupFields>,
) -> Response {
    let request = Request {
        purpose: &purpose,
        email: &fields.email,
        notice: &fields.notice_sha256,
        consent: fields.consent.is_some(),
    };
    let error = match signup::sign_up(&console.app, &visit.source, &slug, &request).await {
        Ok(()) => {
            // The same page whatever the organization knows of the address.
            let organization = signup::form(&console.app, &slug, &purpose).await.map(|f| f.organization);
            let organization = organization.unwrap_or_default();
            return render_public(&console, &visit, StatusCode::OK, &organization, "Check your email", |_| {
                html! {
                    p { "We sent a message to " strong { (fields.email) } "." }
                    p { "Open the link in it within 48 hours and press the button on the page to confirm. Until you do, we will not write to you." }
                    p class="note" { "No message? Check your spam folder, or sign up again in an hour." }
                }
            })
            .into_response();
        }
        Err(error) => error,
    };
    match signup::form(&console.app, &slug, &purpose).await {
        Ok(form) => {
            let problem = error.shown(&console.app.readiness);
            render_public(&console, &visit, error.status(), &form.organization, "Sign up", |t| {
                signup_form(t, &slug, &form, Some(&problem))
            })
            .into_response()
        }
        Err(_) => not_found(&console, &visit, &error),
    }
}

fn confirm_form(token: &str, slug: &str, link_token: &str) -> Markup {
    html! {
        form method="post" action=(format!("/o/{}/confirm", plain(slug))) {
            (hidden(FORM_FIELD, token))
            (hidden("token", link_token))
            button type="submit" { "Yes, confirm" }
        }
    }
}

/// The refusal of a link, in words for the person who followed it.
fn link_refused(console: &Console, visit: &Visit, error: &ApiError) -> Response {
    let message = match error {
        ApiError::InvalidToken => "This link does not work: it was already used, it is older than 48 hours, or it was copied incompletely. If you still want to sign up, fill in the form again to get a new link.",
        _ => "Something went wrong on our side. Try the link again in a few minutes.",
    };
    render(console, visit, error.status(), "Link not valid", |_| html! { (alert(message)) }).into_response()
}

async fn confirm_page(
    State(console): State<Console>,
    visit: Visit,
    Path(slug): Path<String>,
    Query(link): Query<TokenLink>,
) -> Response {
    let link_token = link.token.unwrap_or_default();
    let secret = SecretString::from(link_token.clone());
    match signup::pending(&console.app, &visit.source, &slug, &secret).await {
        Ok(what) => render_public(&console, &visit, StatusCode::OK, &what.organization, "Confirm your subscription", |t| {
            html! {
                p { "Do you want " strong { (what.organization) } " to write to you about: " strong { (what.purpose_name) } "?" }
                (confirm_form(t, &slug, &link_token))
                p class="note" { "If you did not sign up, close this page: nothing happens until you press the button." }
            }
        })
        .into_response(),
        Err(error) => link_refused(&console, &visit, &error),
    }
}

async fn confirm(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, form }: Posted<TokenForm>,
) -> Response {
    let secret = SecretString::from(form.token);
    match signup::confirm(&console.app, &visit.source, &slug, &secret).await {
        Ok(done) => render_public(&console, &visit, StatusCode::OK, &done.organization, "Subscription confirmed", |_| {
            html! {
                p { "Thank you. " strong { (done.organization) } " may now write to you about: " strong { (done.purpose_name) } "." }
            }
        })
        .into_response(),
        Err(error) => link_refused(&console, &visit, &error),
    }
}
