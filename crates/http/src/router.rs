//! The whole router: the API, its OpenAPI document and the console, under the layers every
//! request passes.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::middleware;
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::{api, console, headers, origin, server, ApiError, AppState, MAX_BODY_BYTES};

pub fn app(state: AppState, request_timeout: std::time::Duration) -> Router {
    let (api, mut openapi) = api::router().split_for_parts();
    api::docs::annotate(&mut openapi);
    let transport = headers::Transport { https_only: state.settings.public_url.starts_with("https://") };
    let ours: Arc<str> = origin::of(&state.settings.public_url).into();
    // Every answer, of the API and of the console, is watched for a database server that
    // cannot use its own files.
    let api = Router::new()
        .merge(api)
        .merge(api::docs::router(openapi))
        .with_state(state.clone())
        .layer(middleware::from_fn_with_state(ours, origin::cookie_needs_our_origin))
        .layer(middleware::from_fn_with_state(state.readiness.clone(), api::health::watch));
    let pages =
        console::router(&state).layer(middleware::from_fn_with_state(state.readiness.clone(), api::health::watch));
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
