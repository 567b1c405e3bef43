//! A tracked link of a sent message (`app::clicks`): a redirect to where the approved content
//! points, or, for a link that does not work, the same page an unsubscribe link gets.

use axum::extract::{Path, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::unsubscribe::link_refused;
use super::{Console, Visit};
use crate::app::clicks;

pub fn router() -> Router<Console> {
    Router::new().route("/c/{token}", get(follow))
}

/// `302 Found` to the link's address: the browser goes on at once, and the address is not one
/// to remember in place of ours (each message's link is its own).
async fn follow(State(console): State<Console>, visit: Visit, method: Method, Path(token): Path<String>) -> Response {
    match clicks::follow(&console.app, &token, method != Method::HEAD).await {
        Ok(target) => (StatusCode::FOUND, [(header::LOCATION, target)]).into_response(),
        Err(error) => link_refused(&console, &visit, &error, "a link"),
    }
}
