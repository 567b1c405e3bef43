//! What every response carries, whatever route made it: our own request id, and the headers
//! that tell browsers not to sniff, frame, cache or leak it.

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id a client sent in `X-Request-Id`, kept apart from ours (it proves nothing) and only
/// when it is short and plain, since it lands in audit records.
#[derive(Clone, Debug)]
pub struct ClientRequestId(pub String);

/// The longest client request id that is kept.
const CLIENT_ID_MAX: usize = 64;

fn well_formed(id: &str) -> bool {
    (1..=CLIENT_ID_MAX).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Gives every request an id of our own (replacing whatever the client put in the header, so
/// that logs, audit records and the response all name the request the same way) and keeps a
/// well-formed client id beside it.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let client = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).filter(|id| well_formed(id));
    if let Some(id) = client.map(|id| ClientRequestId(id.to_owned())) {
        request.extensions_mut().insert(id);
    }
    let ours = HeaderValue::try_from(Uuid::now_v7().to_string())
        .unwrap_or_else(|_| unreachable!("a hyphenated UUID is a valid header value"));
    request.headers_mut().insert(REQUEST_ID, ours.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID, ours);
    response
}

/// Whether responses tell browsers to use HTTPS only: when the public URL is `https`.
#[derive(Clone, Copy)]
pub struct Transport {
    pub https_only: bool,
}

/// No script, style or frame of anyone else's: the API's JSON needs none, and the HTML pages
/// load their style sheet from this origin, send their forms only here, and the passkey script
/// calls only this origin's API.
const CSP_JSON: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const CSP_HTML: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Security headers on every response. A response that says nothing about caching is not
/// stored anywhere: most carry a token or someone's data, and the few that do not lose little.
pub async fn security_headers(State(transport): State<Transport>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(if html { CSP_HTML } else { CSP_JSON }));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // No referrer ever leaves for another site. The console's own pages keep it within the
    // origin, because with `no-referrer` a browser sends `Origin: null` on their forms and the
    // forms' origin check would have nothing to check.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static(if html { "same-origin" } else { "no-referrer" }));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    if transport.https_only {
        headers
            .insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000; includeSubDomains"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::well_formed;

    #[test]
    fn a_client_id_is_kept_only_when_short_and_plain() {
        assert!(well_formed("req-42.a:b_c"));
        assert!(well_formed(&"a".repeat(64)));
        for bad in ["", "with space", "new\nline", "ünï", "<script>", &"a".repeat(65)] {
            assert!(!well_formed(bad), "{bad:?}");
        }
    }
}
