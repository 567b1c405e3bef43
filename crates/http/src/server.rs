//! Serving connections with limits, so that slow or idle clients cannot take the server down:
//! a cap on open connections, and one per client address; a deadline for each request's
//! headers (which is also how long an idle keep-alive connection may wait for its next
//! request), and a deadline for each request's answer. At the cap, a new connection takes the
//! place of the oldest one that is not serving a request, so that clients who merely hold
//! connections open cannot keep everyone else out.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt as _;

use crate::{app, ApiError, AppState};

/// How much of the server one client can hold, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at most. At the cap, the oldest connection that is not serving a
    /// request is closed to make room; when every one is serving, the new one is closed at
    /// once, and the log says so.
    pub max_connections: usize,
    /// Open connections from one client address at most; more are closed at once. A trusted
    /// proxy's connections are not counted against it: the client behind them is known only
    /// from a request's `X-Forwarded-For`, after the connection was accepted.
    pub max_connections_per_client: usize,
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
            max_connections_per_client: 128,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Ends a request that has not started its answer by the deadline. A CSV body, which the
/// import's upload streams into the database as it arrives (docs/imports.md), moves the
/// deadline with each chunk that arrives: a large file over a slow link takes longer than any
/// fixed deadline, a client that stops sending is cut off by the body's own deadline, and a
/// request that reads no body, or stops making progress after it, still ends at the deadline.
pub async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let csv = request.method() == axum::http::Method::POST
        && request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/csv"));
    if !csv {
        return match tokio::time::timeout(limit, next.run(request)).await {
            Ok(response) => response,
            Err(_) => ApiError::RequestTimeout.into_response(),
        };
    }
    let progress = Arc::new(Mutex::new(Progress { last: tokio::time::Instant::now(), reading: false }));
    let (parts, body) = request.into_parts();
    let body = axum::body::Body::from_stream(chunks_within(body.into_data_stream(), limit, progress.clone()));
    let answer = next.run(Request::from_parts(parts, body));
    tokio::pin!(answer);
    let mut check = tokio::time::Instant::now() + limit;
    loop {
        tokio::select! {
            response = &mut answer => return response,
            () = tokio::time::sleep_until(check) => {}
        }
        let Progress { last, reading } = *progress.lock().unwrap_or_else(PoisonError::into_inner);
        let now = tokio::time::Instant::now();
        if reading {
            // Waiting on the body: its own deadline ends the wait.
            check = now + limit;
        } else if last + limit <= now {
            return ApiError::RequestTimeout.into_response();
        } else {
            check = last + limit;
        }
    }
}

/// When a streamed body last moved (a chunk came, or it ended), and whether the handler is
/// waiting on it now.
#[derive(Clone, Copy)]
struct Progress {
    last: tokio::time::Instant,
    reading: bool,
}

/// A body whose every chunk must come within `limit` of the one before; past it the body
/// ends with an error, which the handler answers as a cut-off upload.
fn chunks_within(
    body: axum::body::BodyDataStream,
    limit: Duration,
    progress: Arc<Mutex<Progress>>,
) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, axum::Error>> {
    let mark = move |reading: bool| {
        *progress.lock().unwrap_or_else(PoisonError::into_inner) =
            Progress { last: tokio::time::Instant::now(), reading };
    };
    futures_util::stream::unfold(Some(body), move |body| {
        let mark = mark.clone();
        async move {
            let mut body = body?;
            mark(true);
            let next = tokio::time::timeout(limit, futures_util::StreamExt::next(&mut body)).await;
            mark(false);
            match next {
                Ok(Some(chunk)) => Some((chunk, Some(body))),
                Ok(None) => None,
                Err(_) => {
                    let why = format!("nothing arrived for {} s", limit.as_secs());
                    Some((Err(axum::Error::new(std::io::Error::new(std::io::ErrorKind::TimedOut, why))), None))
                }
            }
        }
    })
}

/// While the cap is reached, says so once, not once per refused connection.
struct CapLog {
    hit: AtomicBool,
}

impl CapLog {
    fn refused(&self, cap: usize) {
        if !self.hit.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                max_connections = cap,
                "connection limit reached with every connection serving a request: closing new connections until some end"
            );
        }
    }

    fn accepted(&self) {
        if self.hit.swap(false, Ordering::Relaxed) {
            tracing::info!("below the connection limit again");
        }
    }
}

/// One open connection, as its task and the table of slots share it.
#[derive(Default)]
struct Connection {
    /// Requests being served, from complete headers to the last byte of the answer.
    serving: AtomicUsize,
    /// Told when the connection's slot went to a newer connection.
    evicted: Notify,
}

/// The open connections: how many each client address holds, and all of them oldest first.
#[derive(Default)]
struct Table {
    next: u64,
    by_client: HashMap<IpAddr, usize>,
    open: BTreeMap<u64, (Option<IpAddr>, Arc<Connection>)>,
}

/// Why a new connection was closed at once.
enum Refused {
    /// Its client holds its share already.
    Client,
    /// Every slot holds a connection that is serving a request.
    Full,
}

struct Slots {
    limits: Limits,
    table: Mutex<Table>,
}

/// A connection's place in the table, given up when dropped.
struct Slot {
    slots: Arc<Slots>,
    id: u64,
    connection: Arc<Connection>,
}

impl Slots {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table stays consistent whatever panicked while holding it: every change is one
        // insert or remove with its count.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a connection from `client` (none: a trusted proxy, not counted), making room
    /// at the cap by evicting the oldest connection that serves no request.
    fn admit(self: &Arc<Self>, client: Option<IpAddr>) -> Result<Slot, Refused> {
        let mut table = self.table();
        if let Some(ip) = client {
            if table.by_client.get(&ip).copied().unwrap_or(0) >= self.limits.max_connections_per_client {
                return Err(Refused::Client);
            }
        }
        if table.open.len() >= self.limits.max_connections {
            let idle = table.open.iter().find(|(_, (_, c))| c.serving.load(Ordering::Acquire) == 0).map(|(id, _)| *id);
            let Some(id) = idle else { return Err(Refused::Full) };
            if let Some((client, evicted)) = Table::remove(&mut table, id) {
                tracing::debug!(client = ?client, "connection limit reached: closing the oldest idle connection");
                evicted.evicted.notify_one();
            }
        }
        let id = table.next;
        table.next += 1;
        let connection = Arc::new(Connection::default());
        table.open.insert(id, (client, Arc::clone(&connection)));
        if let Some(ip) = client {
            *table.by_client.entry(ip).or_default() += 1;
        }
        Ok(Slot { slots: Arc::clone(self), id, connection })
    }
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<(Option<IpAddr>, Arc<Connection>)> {
        let (client, connection) = self.open.remove(&id)?;
        if let Some(ip) = client {
            if let Some(count) = self.by_client.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    self.by_client.remove(&ip);
                }
            }
        }
        Some((client, connection))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Gone already if it was evicted.
        Table::remove(&mut self.slots.table(), self.id);
    }
}

/// Marks its connection as serving a request for as long as it lives.
struct Serving(Arc<Connection>);

impl Serving {
    fn start(connection: &Arc<Connection>) -> Self {
        connection.serving.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(connection))
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.serving.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long an evicted connection may take to close by itself before it is cut: long enough to
/// flush an answer's last bytes, short enough that evicted connections do not pile up.
const EVICTION_GRACE: Duration = Duration::from_secs(1);

/// Serves `state` on `listener` within `limits` until `shutdown` resolves, then lets requests
/// in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let trusted = state.settings.trusted_proxies.clone();
    let router = app(state, limits.request_timeout);
    let slots = Arc::new(Slots { limits, table: Mutex::default() });
    let cap = CapLog { hit: AtomicBool::new(false) };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            // Reaps the tasks of closed connections, so that the set holds only open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
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
        let client = Some(peer.ip()).filter(|ip| !trusted.iter().any(|net| net.contains(*ip)));
        let slot = match slots.admit(client) {
            Ok(slot) => slot,
            Err(Refused::Client) => {
                tracing::debug!(%peer, "this client's connection limit is reached: closing its new connection");
                continue;
            }
            Err(Refused::Full) => {
                cap.refused(limits.max_connections);
                continue;
            }
        };
        cap.accepted();
        // Responses go out as soon as they are written, not after the peer acknowledges the last.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let router = router.clone();
        let this = Arc::clone(&slot.connection);
        let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            // Serving from complete headers until the answer's body is dropped, sent or not.
            let serving = Serving::start(&this);
            let answer = router.clone().oneshot(request.map(axum::body::Body::new));
            async move {
                let response = answer.await?;
                Ok::<_, std::convert::Infallible>(response.map(move |body| {
                    axum::body::Body::new(body.map_frame(move |frame| {
                        let _ = &serving;
                        frame
                    }))
                }))
            }
        });
        let mut stopping = stopping.clone();
        let connection = http.serve_connection(TokioIo::new(tcp), service);
        connections.spawn(async move {
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = slot.connection.evicted.notified() => {
                    connection.as_mut().graceful_shutdown();
                    if slot.connection.serving.load(Ordering::Acquire) == 0 {
                        // Idle, or still sending its headers: it may not hold the slot's
                        // successor's file descriptor for long.
                        tokio::time::timeout(EVICTION_GRACE, connection.as_mut()).await.unwrap_or(Ok(()))
                    } else {
                        connection.as_mut().await
                    }
                }
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.as_mut().await
                }
            };
            // A client that goes away or times out ends its connection; nothing to report.
            if let Err(e) = ended {
                tracing::debug!(error = %e, %peer, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    // Requests in flight finish; idle connections close now.
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}
