//! The HTTP API of Marketing OS. [`app`] builds the whole router from its state, so the binary
//! and the tests serve exactly the same thing.

mod access;
mod api;
mod app;
mod console;
mod error;
mod extract;
mod headers;
mod heavy;
pub mod mail;
mod origin;
mod paging;
mod server;
mod throttle;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::middleware;
use axum::Router;
use chrono::Duration;
use mos_auth::{Clock, PasswordError, PasswordHasher, Sealer};
use mos_db::AppPool;
use secrecy::SecretString;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;
pub use api::health::Readiness;
pub use mail::Mailer;
pub use server::{serve, Limits};

/// JSON bodies of this API are small; anything larger is refused before it is parsed.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// How identity behaves; every field has a sensible default.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where people reach the service, for links in emails.
    pub public_url: String,
    /// A session unused for this long ends (HIPAA automatic logoff).
    pub session_idle: Duration,
    /// A session ends this long after sign-in, however active.
    pub session_absolute: Duration,
    /// The name authenticator apps show next to a code.
    pub issuer: String,
    /// Reverse proxies whose `X-Forwarded-For` names the client; nobody's by default.
    pub trusted_proxies: Vec<ipnetwork::IpNetwork>,
    pub mail_from: lettre::message::Mailbox,
    /// How long the comparison of two versions' bodies may refine itself; past it the diff is
    /// coarser, and says so.
    pub diff_deadline: std::time::Duration,
    /// CPU-bound jobs (diffs) running at once, off the async workers.
    pub heavy_jobs: usize,
    /// How long a CPU-bound job waits for a free slot before its request is answered 503.
    pub heavy_wait: std::time::Duration,
    /// How long a search of content by its words may run in the database before it is
    /// cancelled and answered 503.
    pub search_deadline: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            public_url: "http://localhost:8080".into(),
            session_idle: Duration::minutes(15),
            session_absolute: Duration::hours(12),
            issuer: "Marketing OS".into(),
            trusted_proxies: Vec::new(),
            mail_from: lettre::message::Mailbox::new(
                Some("Marketing OS".into()),
                lettre::Address::new("no-reply", "marketing-os.localhost")
                    .unwrap_or_else(|_| unreachable!("a valid address")),
            ),
            diff_deadline: std::time::Duration::from_secs(2),
            heavy_jobs: heavy::default_jobs(),
            heavy_wait: std::time::Duration::from_secs(10),
            search_deadline: std::time::Duration::from_secs(5),
        }
    }
}

/// Why the application cannot start with its settings.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    RelyingParty(#[from] api::passkeys::RelyingPartyError),
}

/// What every handler can reach. Passed explicitly: there are no global singletons.
#[derive(Clone)]
pub struct AppState {
    pub pool: AppPool,
    pub clock: Arc<dyn Clock>,
    pub hasher: PasswordHasher,
    pub sealer: Sealer,
    pub mailer: Arc<dyn Mailer>,
    pub settings: Arc<Settings>,
    /// What the last database check found; `/readyz` reports it.
    pub readiness: api::health::Readiness,
    /// The WebAuthn relying party of the public URL.
    pub webauthn: Arc<webauthn_rs::Webauthn>,
    /// Where CPU-bound work runs, a bounded number of jobs at a time.
    pub heavy: heavy::Heavy,
    /// A real hash of a random password: verifying against it when an email is unknown makes
    /// that answer cost the same as a wrong password.
    dummy_hash: Arc<str>,
}

impl AppState {
    pub async fn new(
        pool: AppPool,
        clock: Arc<dyn Clock>,
        hasher: PasswordHasher,
        sealer: Sealer,
        mailer: Arc<dyn Mailer>,
        settings: Settings,
    ) -> Result<Self, StartError> {
        let webauthn = Arc::new(api::passkeys::relying_party(&settings.public_url)?);
        let random = mos_auth::OneTimeToken::generate(&mut rand::thread_rng()).secret;
        let dummy_hash: Arc<str> =
            hasher.hash(SecretString::from(secrecy::ExposeSecret::expose_secret(&random).to_owned())).await?.into();
        let readiness = api::health::Readiness::default();
        let heavy = heavy::Heavy::new(settings.heavy_jobs, settings.heavy_wait);
        Ok(Self {
            pool,
            clock,
            hasher,
            sealer,
            mailer,
            settings: Arc::new(settings),
            readiness,
            webauthn,
            heavy,
            dummy_hash,
        })
    }
}

/// The routes and their OpenAPI description, built together so they cannot drift apart.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(api::docs::base())
        .merge(api::signin::router())
        .merge(api::account::router())
        .merge(api::orgs::router())
        .merge(api::audit::router())
        .merge(api::content::router())
        .merge(api::passkeys::router())
        .merge(api::health::router())
}

pub fn app(state: AppState, request_timeout: std::time::Duration) -> Router {
    let (api, mut openapi) = api().split_for_parts();
    api::docs::annotate(&mut openapi);
    let transport = headers::Transport { https_only: state.settings.public_url.starts_with("https://") };
    let ours: Arc<str> = origin::of(&state.settings.public_url).into();
    // Every answer of the API, to a client or to a console page, is watched for a database
    // server that cannot use its own files.
    let api = Router::new()
        .merge(api)
        .merge(api::docs::router(openapi))
        .with_state(state.clone())
        .layer(middleware::from_fn_with_state(ours, origin::cookie_needs_our_origin))
        .layer(middleware::from_fn_with_state(state.readiness.clone(), api::health::watch));
    let pages = console::router(api.clone(), &state);
    Router::new()
        .merge(api)
        .merge(pages)
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(request_timeout, server::deadline))
        .layer(middleware::from_fn_with_state(transport, headers::security_headers))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let route = req.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned());
            let id =
                req.headers().get(headers::REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let client_id = req.extensions().get::<headers::ClientRequestId>().map(|c| c.0.clone());
            tracing::info_span!("request", method = %req.method(), route = route.as_deref().unwrap_or("-"),
                request_id = %id, client_request_id = client_id.as_deref().unwrap_or("-"))
        }))
        .layer(middleware::from_fn(headers::request_id))
}
