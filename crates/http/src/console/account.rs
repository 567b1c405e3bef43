//! The signed-in user's own page: profile, sessions (this one marked, others revocable), and
//! their recent account events.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::html;
use serde::Deserialize;

use super::{alert, forged, hidden, needs_session, render, Console, Visit, FORM_FIELD};

pub fn router() -> Router<Console> {
    Router::new().route("/account", get(account)).route("/account/sessions/{id}/revoke", post(revoke))
}

fn text<'a>(value: &'a serde_json::Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

async fn account(State(console): State<Console>, visit: Visit) -> Response {
    let me = visit.api(&console, Method::GET, "/v1/me", None).await;
    if let Some(to_sign_in) = needs_session(&me) {
        return to_sign_in;
    }
    let sessions = visit.api(&console, Method::GET, "/v1/me/sessions", None).await;
    let events = visit.api(&console, Method::GET, "/v1/me/events", None).await;
    let sessions = sessions.body.as_array().cloned().unwrap_or_default();
    let events = events.body.as_array().cloned().unwrap_or_default();
    render(&console, &visit, StatusCode::OK, "Your account", |t| {
        html! {
            dl {
                dt { "Email" } dd { (text(&me.body, "email")) }
                dt { "Two-factor authentication" }
                dd { @if me.body["two_factor_enabled"] == true { "On" } @else { "Off" } }
            }
            h2 { "Sessions" }
            div class="scroll" {
                table {
                    caption class="note" { "Where you are signed in; end any you do not recognise." }
                    thead { tr { th scope="col" { "Signed in" } th scope="col" { "Last active" } th scope="col" { "From" } th scope="col" { span class="note" { "Action" } } } }
                    tbody {
                        @for s in &sessions {
                            tr {
                                td { (text(s, "created_at")) }
                                td { (text(s, "last_seen_at")) }
                                td { (text(s, "ip")) " " span class="note" { (text(s, "user_agent")) } }
                                td {
                                    @if s["current"] == true { "This session" } @else {
                                        form method="post" action={ "/account/sessions/" (text(s, "id")) "/revoke" } class="inline" {
                                            (hidden(FORM_FIELD, t))
                                            button type="submit" class="secondary" { "Sign out this session" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Recent account events" }
            div class="scroll" {
                table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "What" } th scope="col" { "Outcome" } th scope="col" { "From" } } }
                    tbody {
                        @for e in events.iter().take(20) {
                            tr { td { (text(e, "created_at")) } td { code { (text(e, "action")) } } td { (text(e, "outcome")) } td { (text(e, "ip")) } }
                        }
                    }
                }
            }
        }
    })
    .into_response()
}

#[derive(Deserialize)]
struct FormOnly {
    form_token: String,
}

async fn revoke(
    State(console): State<Console>,
    visit: Visit,
    Path(id): Path<String>,
    Form(form): Form<FormOnly>,
) -> Response {
    if !visit.form_is_ours(&console, &form.form_token) {
        return forged(&console, &visit).into_response();
    }
    let id: String = id.chars().filter(|c| c.is_ascii_hexdigit() || *c == '-').collect();
    let answer = visit.api(&console, Method::DELETE, &format!("/v1/me/sessions/{id}"), None).await;
    if answer.ok() {
        Redirect::to("/account").into_response()
    } else {
        render(&console, &visit, answer.status, "Your account", |_| alert(&answer.detail())).into_response()
    }
}
