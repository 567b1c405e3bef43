//! Extractors: what a handler may assume about its request once it runs.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use mos_auth::TokenHash;
use mos_db::request::SessionRules;
use mos_db::sessions::Live;
use mos_db::UserTx;
use mos_domain::RequestSource;
use secrecy::SecretString;
use serde::de::DeserializeOwned;

use crate::{headers, ApiError, AppState};

/// The session cookie. `__Host-` makes browsers insist on Secure, Path=/ and no Domain.
pub const SESSION_COOKIE: &str = "__Host-mos_session";

/// The device token of the last account signed in from this browser (see `mos_auth::device`).
pub const DEVICE_COOKIE: &str = "__Host-mos_device";

/// A JSON body, with every way of getting it wrong answered as a problem document.
pub struct ApiJson<T>(pub T);

/// The body limit of the routes that set one other than [`crate::MAX_BODY_BYTES`], so that a
/// 413 names the limit of the route that refused the body.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().map_or(crate::MAX_BODY_BYTES, |l| l.0);
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::BodyTooLarge { limit })
            }
            Err(rejection) => Err(ApiError::MalformedBody(readable(&rejection.body_text()))),
        }
    }
}

/// A body that may be left out: with no `Content-Type` there is none; with one, it is parsed
/// like any [`ApiJson`] body.
impl<S: Send + Sync, T: DeserializeOwned> axum::extract::OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if req.headers().contains_key(axum::http::header::CONTENT_TYPE) {
            <Self as FromRequest<S>>::from_request(req, state).await.map(Some)
        } else {
            Ok(None)
        }
    }
}

/// A parse error as a client can use it: without the extractor's preamble, and with the JSON
/// shape that was expected where serde names a Rust type ("expected struct Credentials").
fn readable(text: &str) -> String {
    const PREAMBLES: [&str; 3] = [
        "Failed to deserialize the JSON body into the target type: ",
        "Failed to parse the request body as JSON: ",
        "Failed to deserialize query string: ",
    ];
    const RUST_KINDS: [(&str, &str); 5] = [
        ("tuple struct ", "an array"),
        ("unit struct ", "null"),
        ("newtype struct ", "a value"),
        ("struct ", "an object"),
        ("enum ", "one of the documented values"),
    ];
    let mut text = PREAMBLES.iter().find_map(|p| text.strip_prefix(p)).unwrap_or(text).to_owned();
    for (kind, instead) in RUST_KINDS {
        while let Some(at) =
            text.find(kind).filter(|&at| text[at + kind.len()..].starts_with(|c: char| c.is_ascii_uppercase()))
        {
            let name = text[at + kind.len()..]
                .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .map_or(text.len(), |n| at + kind.len() + n);
            text.replace_range(at..name, instead);
        }
    }
    text
}

/// Query parameters, with a malformed or unknown one answered as a problem document.
pub struct ApiQuery<T>(pub T);

/// No query parameter of this API can hold a control character; a NUL would reach PostgreSQL,
/// which refuses it in text mid-request (a 500, or an export cut after its first bytes). Refused
/// here, before the handler runs and so before any byte of the answer, naming the parameter.
fn refuse_control_characters(query: &str) -> Result<(), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    match pairs.into_iter().find(|(name, value)| name.chars().chain(value.chars()).any(char::is_control)) {
        None => Ok(()),
        Some((name, _)) if name.chars().any(char::is_control) => Err(ApiError::Invalid {
            field: "query",
            message: "query parameter names must not contain control characters".into(),
        }),
        Some((name, _)) => {
            Err(ApiError::InvalidParameter { message: format!("{name} must not contain control characters"), name })
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        refuse_control_characters(parts.uri.query().unwrap_or_default())?;
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::Invalid { field: "query", message: readable(&rejection.body_text()) }),
        }
    }
}

/// The client's address: the TCP peer, unless the peer is a trusted proxy; then the rightmost
/// address of `X-Forwarded-For` that is not a trusted proxy itself (addresses to its left were
/// written by the client and prove nothing).
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &[ipnetwork::IpNetwork],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(*ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for.flat_map(|h| h.split(',')).map(str::trim).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            // A malformed hop: nothing left of it can be believed.
            Err(_) => return client,
        }
    }
    client
}

/// Where the request came from, for audit records and per-address limits.
pub struct Client(pub RequestSource);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(request_source(parts, state)))
    }
}

/// Where a request came from, as audit records and per-address limits name it.
pub fn request_source(parts: &Parts, state: &AppState) -> RequestSource {
    let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| client_ip(c.0.ip(), forwarded, &state.settings.trusted_proxies));
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(512).collect::<String>());
    // Ours, set by the request-id layer for every request.
    let request_id = parts.headers.get(headers::REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let client_request_id = parts.extensions.get::<headers::ClientRequestId>().map(|c| c.0.clone());
    RequestSource { ip, user_agent, request_id, client_request_id }
}

/// The token of `Authorization: Bearer`, if the request has one.
pub fn bearer_token(headers: &HeaderMap) -> Option<SecretString> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        // The scheme's name is case-insensitive (RFC 9110 §11.1).
        let (scheme, token) = v.trim_start().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| SecretString::from(token.trim().to_owned()))
    })
}

/// The session token a request carries: `Authorization: Bearer`, or else the cookie.
fn presented_token(parts: &Parts) -> Option<SecretString> {
    bearer_token(&parts.headers).or_else(|| cookie_value(&parts.headers, SESSION_COOKIE))
}

/// The value of the cookie `name`, if the request carries it.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<SecretString> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then(|| SecretString::from(value.to_owned()))
    })
}

/// How often a session's activity is written down: the precision of the idle timeout. Requests
/// in between only read, so a GET waits for no WAL flush.
pub const SESSION_ACTIVITY_PRECISION: chrono::Duration = chrono::Duration::minutes(1);

pub fn session_rules(state: &AppState) -> SessionRules {
    SessionRules { idle: state.settings.session_idle, touch_every: SESSION_ACTIVITY_PRECISION }
}

/// The token hash a request presents, or 401.
pub fn presented_hash(parts: &Parts) -> Result<TokenHash, ApiError> {
    presented_token(parts).and_then(|t| mos_auth::token::hash_presented(&t)).ok_or(ApiError::Unauthenticated)
}

/// A request with a live session, and the request's one transaction, scoped to its user: the
/// handler does its work in `tx` and commits it.
pub struct Authenticated {
    pub session: Live,
    pub tx: UserTx,
}

impl Authenticated {
    /// Ends the request's transaction before slow work (password hashing), so that its
    /// connection serves other requests meanwhile; what follows opens a transaction of its own.
    pub async fn release(self) -> Result<Live, ApiError> {
        self.tx.commit().await?;
        Ok(self.session)
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Self::check(state, &presented_hash(parts)?).await
    }
}

impl Authenticated {
    /// The live session behind `hash`, and the request's one transaction as its user.
    pub async fn check(state: &AppState, hash: &TokenHash) -> Result<Self, ApiError> {
        let (session, tx) = state
            .pool
            .authenticate(hash, state.clock.now(), session_rules(state))
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        Ok(Self { session, tx })
    }
}

/// How long ago counts as "just now" for changing passwords, two-factor and (later) roles.
pub const RECENT_AUTHENTICATION: chrono::Duration = chrono::Duration::minutes(10);

/// Sensitive changes need the user of `session` to have proved themselves within the last ten
/// minutes.
pub fn require_recent(state: &AppState, session: &Live) -> Result<(), ApiError> {
    if state.clock.now() - session.authenticated_at <= RECENT_AUTHENTICATION {
        Ok(())
    } else {
        Err(ApiError::ReauthenticationRequired)
    }
}

#[cfg(test)]
mod tests {
    use super::{client_ip, readable};

    #[test]
    fn parse_errors_describe_the_json_not_the_rust_types() {
        assert_eq!(
            readable("Failed to deserialize the JSON body into the target type: invalid type: sequence, expected struct Credentials at line 1 column 0"),
            "invalid type: sequence, expected an object at line 1 column 0"
        );
        assert_eq!(
            readable("role: invalid type: integer `1`, expected enum Role"),
            "role: invalid type: integer `1`, expected one of the documented values"
        );
        assert_eq!(readable("missing field `email`"), "missing field `email`", "nothing to change");
        assert_eq!(readable("a struct in lowercase"), "a struct in lowercase");
    }
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let xff = ["203.0.113.9, 10.0.0.7"];
        assert_eq!(client_ip(ip("198.51.100.1"), xff.into_iter(), &trusted), ip("198.51.100.1"), "an untrusted peer");
        assert_eq!(client_ip(ip("10.0.0.2"), xff.into_iter(), &trusted), ip("203.0.113.9"));
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["6.6.6.6, 203.0.113.9"].into_iter(), &trusted),
            ip("203.0.113.9"),
            "a client cannot prepend"
        );
        assert_eq!(client_ip(ip("10.0.0.2"), ["garbage, 10.0.0.9"].into_iter(), &trusted), ip("10.0.0.9"));
        assert_eq!(client_ip(ip("10.0.0.2"), std::iter::empty(), &trusted), ip("10.0.0.2"));
        assert_eq!(client_ip(ip("10.0.0.2"), xff.into_iter(), &[]), ip("10.0.0.2"), "nobody is trusted by default");
    }
}
