//! Serving connections with limits, so that slow or idle clients cannot take the server down:
//! a cap on open connections, a deadline for each request's headers (which is also how long an
//! idle keep-alive connection may wait for its next request), and a deadline for each request's
//! answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::{app, ApiError, AppState};

/// How much of the server one client can hold, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at most; one more is closed at once, and the log says so.
    pub max_connections: usize,
    /// A client has this long to send a request's headers, and an idle keep-alive connection
    /// this long to start its next request.
    pub header_timeout: Duration,
    /// A request has this long until its answer starts (a streamed export may take longer to
    /// finish); then it is answered 503 and its transaction rolled back.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Ends a request that has not started its answer by the deadline.
pub async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout.into_response(),
    }
}

/// While the cap is reached, says so once, not once per refused connection.
struct CapLog {
    hit: AtomicBool,
}

impl CapLog {
    fn refused(&self, cap: usize) {
        if !self.hit.swap(true, Ordering::Relaxed) {
            tracing::warn!(max_connections = cap, "connection limit reached: closing new connections until some end");
        }
    }

    fn accepted(&self) {
        if self.hit.swap(false, Ordering::Relaxed) {
            tracing::info!("below the connection limit again");
        }
    }
}

/// Serves `state` on `listener` within `limits` until `shutdown` resolves, then lets requests
/// in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = app(state, limits.request_timeout);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let cap = CapLog { hit: AtomicBool::new(false) };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait for some to be freed rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            cap.refused(limits.max_connections);
            drop(tcp);
            continue;
        };
        cap.accepted();
        // Responses go out as soon as they are written, not after the peer acknowledges the last.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(tcp), service));
        tokio::spawn(async move {
            // A client that goes away or times out ends its connection; nothing to report.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
