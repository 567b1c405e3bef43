//! The web console: HTML pages rendered on the server, for the people who use Marketing OS in a
//! browser. A page is an adapter, as the API's routes are: it establishes who asks (the same
//! session check, and for an organization's pages the same [`Authorized`] permission check),
//! calls the operations of [`crate::app`] that the API calls, and renders the typed values
//! they return. So the console can do nothing the API would not allow that user, every action
//! is audited and throttled exactly as through the API, and no business rule is written twice.
//! A page reads everything it shows in one transaction.
//!
//! Plain forms, each carrying a signed form token (CSRF) bound to the browser's session,
//! checked with the `Origin` header on every POST. Script only adds to a page that works
//! without it: the idle warning, passkeys, and the segment editor's live count (which posts
//! the editor's own form, token included).

mod account;
mod audiences;
mod audit;
mod breaker;
mod campaigns;
mod chart;
mod clicks;
mod content;
mod erasure;
mod imports;
mod landing;
mod orgs;
mod segments;
mod senders;
mod signin;
mod signup;
mod unsubscribe;
mod webhooks;
mod words;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use data_encoding::BASE64URL_NOPAD;
use maud::{html, Markup, DOCTYPE};
use mos_auth::TokenHash;
use mos_domain::RequestSource;
use secrecy::{ExposeSecret, SecretString};

use crate::access::{self, Authorized, Needs};
use crate::app::session::Issued;
use crate::extract::{Authenticated, SESSION_COOKIE};
use crate::{ApiError, AppState};

/// The cookie that holds this browser's form-token seed.
const FORM_COOKIE: &str = "__Host-mos_form";
/// The hidden field every form carries.
const FORM_FIELD: &str = "form_token";

/// What the pages need: the application, and how to sign and check form tokens.
#[derive(Clone)]
pub struct Console {
    app: AppState,
    forms: mos_auth::Signer,
    /// `scheme://host[:port]` of the public URL: the only `Origin` a form may come from.
    origin: String,
    /// Seconds without activity after which a session ends, for the page's warning.
    idle_secs: i64,
}

pub fn router(state: &AppState) -> Router {
    let console = Console {
        app: state.clone(),
        forms: state.sealer.form_signer().clone(),
        origin: crate::origin::of(&state.settings.public_url),
        idle_secs: state.settings.session_idle.num_seconds(),
    };
    Router::new()
        .route("/", get(landing::home))
        .route("/console.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }))
        .route("/console.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT) }))
        .route(
            "/passkey.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], PASSKEY_SCRIPT) }),
        )
        .merge(signin::router())
        .merge(account::router())
        .merge(orgs::router())
        .merge(audit::router())
        .merge(content::router())
        .merge(audiences::router())
        .merge(segments::router())
        .merge(senders::router())
        .merge(campaigns::router())
        .merge(breaker::router())
        .merge(erasure::router())
        .merge(imports::router())
        .merge(signup::router())
        .merge(unsubscribe::router())
        .merge(clicks::router())
        .merge(webhooks::router())
        .with_state(console)
}

/// One request of a browser to the console: who asks, from where, and its form token.
pub struct Visit {
    headers: HeaderMap,
    /// Where the request came from, as the API's own extractor reads it.
    pub source: RequestSource,
    method: Method,
    path: String,
    form_seed: Option<String>,
    /// The session cookie an operation of this visit set (empty: cleared), which the browser
    /// holds from this response on: the page rendered after it signs its forms for that one.
    renewed: std::sync::Mutex<Option<String>>,
}

impl FromRequestParts<Console> for Visit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Self::Rejection> {
        let form_seed = crate::extract::cookie_value(&parts.headers, FORM_COOKIE)
            .map(|s| s.expose_secret().to_owned())
            .filter(|s| BASE64URL_NOPAD.decode(s.as_bytes()).is_ok_and(|b| b.len() == 32));
        Ok(Self {
            headers: parts.headers.clone(),
            source: crate::extract::request_source(parts, &console.app),
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            form_seed,
            renewed: std::sync::Mutex::default(),
        })
    }
}

impl Visit {
    pub fn signed_in(&self) -> bool {
        crate::extract::cookie_value(&self.headers, SESSION_COOKIE).is_some()
    }

    /// The hash of the session token the browser presents, or 401.
    fn session_hash(&self) -> Result<TokenHash, ApiError> {
        crate::extract::cookie_value(&self.headers, SESSION_COOKIE)
            .and_then(|t| mos_auth::token::hash_presented(&t))
            .ok_or(ApiError::Unauthenticated)
    }

    /// The signed-in user and the page's one transaction, as the API's [`Authenticated`].
    pub async fn user(&self, console: &Console) -> Result<Authenticated, ApiError> {
        Authenticated::check(&console.app, &self.session_hash()?).await
    }

    /// The member of organization `slug` allowed `P`, and the page's one transaction, checked
    /// and audited exactly as the API's routes check theirs.
    pub async fn member<P: Needs>(&self, console: &Console, slug: &str) -> Result<Authorized<P>, ApiError> {
        let request = access::Request { method: &self.method, path: &self.path };
        Authorized::check(&console.app, &self.session_hash()?, slug, self.source.clone(), request).await
    }

    /// What a page shows, read in the one transaction of organization `slug` as a member
    /// allowed `P`: the member is checked, `read` runs, the transaction commits. On a refusal
    /// or a failure, the page that says so, titled `title`, to answer instead.
    pub async fn read<P: Needs, T>(
        &self,
        console: &Console,
        slug: &str,
        title: &str,
        read: impl AsyncFnOnce(&mut Authorized<P>) -> Result<T, ApiError>,
    ) -> Result<T, Response> {
        let done = async {
            let mut auth = self.member::<P>(console, slug).await?;
            let shown = read(&mut auth).await?;
            auth.commit().await?;
            Ok(shown)
        };
        done.await.map_err(|error| failed(console, self, error, title))
    }

    /// The device token of the last account signed in from this browser.
    pub fn device_token(&self) -> Option<SecretString> {
        crate::extract::cookie_value(&self.headers, crate::extract::DEVICE_COOKIE)
    }

    /// The session an operation of this visit started: this response sets its cookie, so the
    /// page rendered with it signs its forms for it.
    pub fn renew(&self, issued: &Issued) {
        *self.renewed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(issued.token().to_owned());
    }

    /// The token this visit's forms carry, and the cookie to set when the browser has no seed
    /// yet.
    pub fn form_token(&self, console: &Console) -> (String, Option<HeaderValue>) {
        let (seed, cookie) = match &self.form_seed {
            Some(seed) => (seed.clone(), None),
            None => {
                let mut bytes = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
                let seed = BASE64URL_NOPAD.encode(&bytes);
                let cookie = format!("{FORM_COOKIE}={seed}; Path=/; HttpOnly; Secure; SameSite=Strict");
                (seed, HeaderValue::from_str(&cookie).ok())
            }
        };
        (BASE64URL_NOPAD.encode(&console.forms.sign(&[seed.as_bytes(), self.session().as_bytes()])), cookie)
    }

    /// The session cookie's value, or nothing. A form token is signed over it as well as over
    /// the seed, so signing in or out (or any change that starts a new session) makes every
    /// token issued before it void: one seen before sign-in cannot be replayed after it.
    fn session(&self) -> String {
        let renewed = self.renewed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        renewed.unwrap_or_else(|| {
            crate::extract::cookie_value(&self.headers, SESSION_COOKIE)
                .map(|s| s.expose_secret().to_owned())
                .unwrap_or_default()
        })
    }

    /// Whether a form came from our own page: its token matches this browser's seed and
    /// session, and the browser says it was sent from the public URL's origin. Browsers send
    /// the origin with every form; only a client that is not a browser may leave it out, and
    /// that one has no other site's page to be tricked by. The `Host` header proves nothing
    /// here: whoever sends the request writes it, and a proxy may rewrite it.
    fn form_is_ours(&self, console: &Console, token: &str) -> bool {
        let origin_ok =
            !self.headers.contains_key(header::ORIGIN) || crate::origin::sent_from(&self.headers, &console.origin);
        let token_ok = match (&self.form_seed, BASE64URL_NOPAD.decode(token.as_bytes())) {
            (Some(seed), Ok(tag)) => console.forms.verify(&[seed.as_bytes(), self.session().as_bytes()], &tag),
            _ => false,
        };
        origin_ok && token_ok
    }
}

/// A form posted from one of our own pages: the visit and the form's fields. Any other post is
/// answered with the "Form expired" page before a handler runs, so no handler can forget the
/// check.
pub struct Posted<F> {
    pub visit: Visit,
    pub form: F,
}

/// A form of nothing but its button (and token).
#[derive(serde::Deserialize)]
pub struct NoFields {}

#[derive(serde::Deserialize)]
struct FormToken {
    form_token: String,
}

impl<F: serde::de::DeserializeOwned> axum::extract::FromRequest<Console> for Posted<F> {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Console) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let Ok(visit) = Visit::from_request_parts(&mut parts, console).await;
        // A content editor's form carries a long text.
        let bytes =
            axum::body::to_bytes(body, crate::app::content::MAX_CONTENT_REQUEST_BYTES).await.unwrap_or_default();
        let ours =
            serde_urlencoded::from_bytes::<FormToken>(&bytes).is_ok_and(|t| visit.form_is_ours(console, &t.form_token));
        if !ours {
            return Err(forged(console, &visit).into_response());
        }
        match serde_urlencoded::from_bytes::<F>(&bytes) {
            Ok(form) => Ok(Self { visit, form }),
            Err(_) => Err(render(console, &visit, StatusCode::UNPROCESSABLE_ENTITY, "Form incomplete", |_| {
                alert("A field of the form is missing or malformed. Go back, fill it in, and send it again.")
            })
            .into_response()),
        }
    }
}

/// A page: status, the cookies to set, the HTML.
pub struct Page {
    status: StatusCode,
    pub cookies: Vec<HeaderValue>,
    html: Markup,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.html).into_response();
        for cookie in self.cookies {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }
}

/// A redirect after a form that set cookies (a new session, a cleared one).
pub fn redirect_setting(to: &str, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    let mut response = Redirect::to(to).into_response();
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The refusal of a form that did not come from our page.
fn forged(console: &Console, visit: &Visit) -> Page {
    render(
        console,
        visit,
        StatusCode::FORBIDDEN,
        "Form expired",
        |_| html! { p role="alert" { "This form has expired or did not come from this site. Open the page again and resubmit." } },
    )
}

/// Renders a page with the site's frame; `body` gets the form token for its forms.
pub fn render(
    console: &Console,
    visit: &Visit,
    status: StatusCode,
    title: &str,
    body: impl FnOnce(&str) -> Markup,
) -> Page {
    let signed_in = visit.signed_in();
    frame(console, visit, status, (title, "Marketing OS"), body, |token| {
        html! {
            a class="brand" href="/" { "Marketing OS" }
            @if signed_in {
                a href="/orgs" { "Organizations" }
                a href="/account" { "Account" }
                form method="post" action="/sign-out" class="inline" {
                    (hidden(FORM_FIELD, token))
                    button type="submit" { "Sign out" }
                }
            } @else {
                a href="/sign-in" { "Sign in" }
                a href="/sign-up" { "Sign up" }
            }
        }
    })
}

/// Renders a page of an organization for the public (its sign-up form): the console's frame,
/// headed by the organization's name instead of the console's own links, which mean nothing
/// to someone who signs up for its news.
pub fn render_public(
    console: &Console,
    visit: &Visit,
    status: StatusCode,
    organization: &str,
    title: &str,
    body: impl FnOnce(&str) -> Markup,
) -> Page {
    frame(console, visit, status, (title, organization), body, |_| html! { span class="brand" { (organization) } })
}

/// The page around `body`, with `nav`'s links; both get the form token for their forms. The
/// window's title is the page's, then whose site it is.
fn frame(
    console: &Console,
    visit: &Visit,
    status: StatusCode,
    (title, site): (&str, &str),
    body: impl FnOnce(&str) -> Markup,
    nav: impl FnOnce(&str) -> Markup,
) -> Page {
    let (token, cookie) = visit.form_token(console);
    let content = body(&token);
    let links = nav(&token);
    let signed_in = visit.signed_in();
    let html = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (site) }
                link rel="stylesheet" href="/console.css";
                @if signed_in { script src="/console.js" defer {} }
                script src="/passkey.js" defer {}
            }
            body data-idle-seconds=[signed_in.then_some(console.idle_secs)] {
                header {
                    nav aria-label="Main" { (links) }
                }
                main {
                    h1 { (title) }
                    (content)
                }
            }
        }
    };
    Page { status, cookies: cookie.into_iter().collect(), html }
}

/// Keeps only what a slug or id can contain, so that nothing else reaches a link.
pub fn plain(segment: &str) -> String {
    segment.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect()
}

pub fn hidden(name: &str, value: &str) -> Markup {
    html! { input type="hidden" name=(name) value=(value); }
}

/// A problem an operation reported, as the page shows it.
pub fn alert(message: &str) -> Markup {
    html! { p class="alert" role="alert" { (message) } }
}

/// A moment as people read it ("5 minutes ago"), with the exact time, in UTC, as the
/// `<time>` element's value and on hover.
pub fn when(now: DateTime<Utc>, at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339_opts(SecondsFormat::Secs, true)) title=(at.format("%Y-%m-%d %H:%M:%S UTC")) {
            (ago(now, at))
        }
    }
}

/// How long before `now` (or after it) `at` is, in the largest whole unit.
fn ago(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    let (amount, future) = (seconds.unsigned_abs(), seconds < 0);
    let unit = |n: u64, one: &str| {
        let text = if n == 1 { format!("1 {one}") } else { format!("{n} {one}s") };
        if future {
            format!("in {text}")
        } else {
            format!("{text} ago")
        }
    };
    match amount {
        0..=59 => "just now".to_owned(),
        60..=3_599 => unit(amount / 60, "minute"),
        3_600..=86_399 => unit(amount / 3_600, "hour"),
        86_400..=2_591_999 => unit(amount / 86_400, "day"),
        _ => format!("on {}", at.format("%Y-%m-%d")),
    }
}

/// A labelled input.
pub fn field(label: &str, name: &str, kind: &str, autocomplete: &str) -> Markup {
    html! {
        p {
            label for=(name) { (label) }
            input id=(name) name=(name) type=(kind) autocomplete=(autocomplete) required;
        }
    }
}

/// The page for an action that was refused. A change that needs a recent sign-in gets the
/// form that renews it, which then returns to `back`.
pub fn refused(console: &Console, visit: &Visit, error: &ApiError, back: &str) -> Response {
    match error {
        ApiError::ReauthenticationRequired => render(console, visit, StatusCode::FORBIDDEN, "Confirm it is you", |t| {
            html! {
                p { "This change needs a sign-in within the last ten minutes. Enter your password (and a code, if two-factor is on) to go on." }
                form method="post" action="/account/reauthenticate" {
                    (hidden(FORM_FIELD, t))
                    (hidden("back", back))
                    (field("Password", "password", "password", "current-password"))
                    p {
                        label for="code" { "Code from your authenticator app (if two-factor is on)" }
                        input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code";
                    }
                    button type="submit" { "Confirm" }
                }
                (passkey_button("reauthenticate", "Confirm with a passkey instead", back, None))
            }
        })
        .into_response(),
        ApiError::PasskeySessionRequired => render(console, visit, StatusCode::FORBIDDEN, "Confirm it is you", |_| {
            html! {
                p { "This account has a passkey, so this change needs a session that one of your passkeys signed in or confirmed: a password and a code are not enough." }
                (passkey_button("reauthenticate", "Confirm with a passkey", back, None))
            }
        })
        .into_response(),
        other => {
            let detail = other.shown(&console.app.readiness);
            render(console, visit, other.status(), "Not done", |_| {
                html! {
                    (alert(&detail))
                    (passkey_offer(other, back))
                    p { a href=(back) { "Back" } }
                }
            })
            .into_response()
        }
    }
}

/// The page of a read that failed: the sign-in page without a session, or what went wrong.
pub fn failed(console: &Console, visit: &Visit, error: ApiError, title: &str) -> Response {
    if matches!(error, ApiError::Unauthenticated) {
        return Redirect::to("/sign-in").into_response();
    }
    let detail = error.shown(&console.app.readiness);
    let back = visit.path.clone();
    render(console, visit, error.status(), title, |_| html! { (alert(&detail)) (passkey_offer(&error, &back)) })
        .into_response()
}

/// On a refusal by an organization's passkey policy: the button that confirms this session
/// with a passkey, which makes it phishing-resistant, then comes back to `back`.
fn passkey_offer(error: &ApiError, back: &str) -> Markup {
    html! {
        @if matches!(error, ApiError::PhishingResistantRequired) {
            p { "If you have a passkey already, confirm it is you with it, and this page opens." }
            (passkey_button("reauthenticate", "Confirm with a passkey", back, None))
        }
    }
}

/// Where to go after a form or a sign-in: `next` if it is a path of this site as a browser
/// reads it, else the home page.
pub fn local_path(next: &str) -> String {
    own_path(next).unwrap_or_else(|| "/".to_owned())
}

/// `next` as a path on our own origin, written as the URL parser normalised it.
fn own_path(next: &str) -> Option<String> {
    // Browsers drop tabs and line breaks anywhere in a URL and read a backslash as a slash, so
    // "/\t/evil.example" and "/\\evil.example" lead to another host; no path of ours has a
    // control character or a backslash. The percent-decoded form is held to the same rule, for
    // whatever decodes it on the way.
    let refused =
        |s: &str| !s.starts_with('/') || s.starts_with("//") || s.chars().any(|c| c.is_control() || c == '\\');
    if refused(next) || refused(&percent_encoding::percent_decode_str(next).decode_utf8_lossy()) {
        return None;
    }
    let base = url::Url::parse("http://origin.invalid/").ok()?;
    let url = base.join(next).ok()?;
    // "/.//evil.example" normalises to "//evil.example": a host again, if sent as is.
    (url.origin() == base.origin() && !url.path().starts_with("//"))
        .then(|| url[url::Position::BeforePath..].to_owned())
}

/// The passkey ceremonies: talking to an authenticator takes a script.
const PASSKEY_SCRIPT: &str = include_str!("passkey.js");

/// A button that runs a passkey ceremony (`passkey.js`); hidden until the script finds that the
/// browser can, and with a line where it says how it went.
pub fn passkey_button(ceremony: &str, caption: &str, next: &str, extra: Option<(&str, &str)>) -> Markup {
    let status = format!("passkey-status-{ceremony}");
    html! {
        p {
            @match extra {
                Some(("challenge", challenge)) => {
                    button type="button" class="secondary" hidden data-passkey=(ceremony) data-next=(next) data-status=(status) data-challenge=(challenge) { (caption) }
                }
                Some((_, field)) => {
                    button type="button" hidden data-passkey=(ceremony) data-next=(next) data-status=(status) data-name-field=(field) { (caption) }
                }
                None => {
                    button type="button" class="secondary" hidden data-passkey=(ceremony) data-next=(next) data-status=(status) { (caption) }
                }
            }
            " " span id=(status) class="note" role="status" {}
        }
        noscript { p class="note" { "Passkeys need JavaScript in this browser." } }
    }
}

/// The one script: a page cannot know without it that the idle timeout is near. It warns a
/// minute before, and goes to the sign-in page once the session has ended.
const SCRIPT: &str = include_str!("console.js");

const STYLE: &str = include_str!("console.css");

#[cfg(test)]
mod tests {
    use super::{ago, local_path};

    #[test]
    fn a_moment_is_said_in_the_largest_whole_unit() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap().to_utc();
        let before = |seconds| now - chrono::Duration::seconds(seconds);
        assert_eq!(ago(now, before(5)), "just now");
        assert_eq!(ago(now, before(60)), "1 minute ago");
        assert_eq!(ago(now, before(5 * 60 + 59)), "5 minutes ago");
        assert_eq!(ago(now, before(2 * 3_600)), "2 hours ago");
        assert_eq!(ago(now, before(3 * 86_400)), "3 days ago");
        assert_eq!(ago(now, before(-10 * 60)), "in 10 minutes");
        assert_eq!(ago(now, before(90 * 86_400)), "on 2025-12-01");
    }

    #[test]
    fn only_a_path_of_our_own_origin_is_a_place_to_go_next() {
        for ours in ["/", "/orgs", "/orgs/acme/content?state=published", "/account#passkeys", "/a%20b"] {
            assert_eq!(local_path(ours), ours);
        }
        assert_eq!(local_path("/orgs/./acme"), "/orgs/acme", "written as the browser will read it");
        for nasty in [
            "",
            "orgs",
            " /orgs",
            "//evil.example",
            "///evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/\r/evil.example",
            "/\u{b}/evil.example",
            "/\u{c}/evil.example",
            "/\0/evil.example",
            "/orgs\u{7f}",
            "/\u{85}/evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/\\/evil.example",
            "/%09/evil.example",
            "/%0d%0a/evil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%5Cevil.example",
            "/.//evil.example",
            "/..//evil.example",
            "/orgs/%2e%2e//evil.example",
            "https://evil.example/",
            "http:/evil.example",
            "javascript:alert(1)",
            "evil.example",
        ] {
            assert_eq!(local_path(nasty), "/", "{nasty:?}");
        }
    }
}
