//! The console's front page: what Marketing OS is and where to begin, for someone who opens the
//! address without a session. A signed-in visitor goes straight to their organizations.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::{render, Console, Visit};

pub async fn home(State(console): State<Console>, visit: Visit) -> Response {
    if visit.signed_in() {
        return Redirect::to("/orgs").into_response();
    }
    render(&console, &visit, StatusCode::OK, "Healthcare marketing, reviewed before it goes out", |_| {
        html! {
            p {
                "Marketing content for healthcare organizations: written by your team, reviewed for "
                "medical, legal and regulatory compliance, and published only once it is approved."
            }
            ul {
                li { "Each organization's data is kept apart by the database itself, not only by this application." }
                li { "Members have roles: ADMINs, reviewers, creators and viewers, each allowed what their role allows." }
                li { "Every version of a text is kept, and a version is published only with the approvals your organization requires." }
                li { "Every change that matters leaves a record in a tamper-evident audit trail." }
                li { "Sign in with a password and a code from an authenticator app, or with a passkey." }
            }
            p {
                a href="/sign-in" { "Sign in" } " or " a href="/sign-up" { "create an account" } ". "
                "Invited by a colleague? Create your account with the address the invitation was sent to, then open the invitation's link."
            }
            p { "For developers: the HTTP API is described at " a href="/docs" { "/docs" } "." }
        }
    })
    .into_response()
}
