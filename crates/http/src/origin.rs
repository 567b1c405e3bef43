//! Which requests the session cookie may authorize. Browsers attach the cookie to requests
//! that another page starts: `SameSite=Strict` keeps other *sites* out, but a page on a sibling
//! subdomain (or another port of the same host) is the same site. So a state-changing API
//! request authorized by the cookie must say, in `Origin`, that our own pages sent it; other
//! clients send the session token as a bearer token, which no other page can attach.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::extract::{bearer_token, cookie_value, SESSION_COOKIE};
use crate::ApiError;

/// `scheme://host[:port]` of `url` as browsers write it in `Origin` (lowercase, no default
/// port); empty, and so matching no request, when `url` does not parse.
pub fn of(url: &str) -> String {
    url::Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}

/// Whether `headers` say the request was sent by a page of `ours`.
pub fn sent_from(headers: &HeaderMap, ours: &str) -> bool {
    headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()).is_some_and(|origin| !ours.is_empty() && origin == ours)
}

/// Refuses a state-changing request that only the session cookie authorizes unless it comes
/// from our own origin. A request without `Origin` is refused too: every browser sends it on
/// such a request, so only a client that is not a browser leaves it out, and that one has a
/// bearer token to use.
pub async fn cookie_needs_our_origin(
    State(ours): State<std::sync::Arc<str>>,
    request: Request,
    next: Next,
) -> Response {
    let cookie_authorizes = !request.method().is_safe()
        && bearer_token(request.headers()).is_none()
        && cookie_value(request.headers(), SESSION_COOKIE).is_some();
    if cookie_authorizes && !sent_from(request.headers(), &ours) {
        return ApiError::CrossOrigin.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::of;

    #[test]
    fn an_origin_is_written_as_browsers_write_it() {
        assert_eq!(of("http://localhost:8080"), "http://localhost:8080");
        assert_eq!(of("https://Marketing.Example:443/app/"), "https://marketing.example");
        assert_eq!(of("not a url"), "");
    }
}
