//! The HTTP API of Marketing OS. [`app`] builds the whole router from its state, so the binary
//! and the tests serve exactly the same thing.

mod error;
mod health;

use axum::Router;
use mos_db::AppPool;
use tokio::net::TcpListener;

pub use error::ApiError;

/// What every handler can reach. Passed explicitly: there are no global singletons.
#[derive(Clone)]
pub struct AppState {
    pub pool: AppPool,
}

pub fn app(state: AppState) -> Router {
    Router::new().merge(health::router()).with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
