//! The JSON API: one module of routes per feature.

pub mod account;
pub mod audiences;
pub mod audit;
pub mod breaker;
pub mod campaigns;
pub mod content;
pub mod docs;
pub mod erasure;
pub mod feedback;
pub mod health;
pub mod imports;
pub mod orgs;
pub mod passkeys;
pub mod segments;
pub mod senders;
pub mod signin;
pub mod signup;
pub mod unsubscribe;
pub mod webhooks;

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// The routes and their OpenAPI description, built together so they cannot drift apart.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(docs::base())
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
        .merge(passkeys::router())
        .merge(signup::router())
        .merge(unsubscribe::router())
        .merge(feedback::router())
        .merge(webhooks::router())
        .merge(health::router())
}
