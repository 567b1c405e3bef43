//! What the server says to PostgreSQL, counted on the wire: a proxy on a Unix socket between
//! the application pool and the database that reads the frontend protocol. A round trip is a
//! message the client then waits on: a simple `Query`, or a `Sync` closing an extended-protocol
//! batch that executes something. A statement is a statement of a simple query or an
//! `Execute`. Counted apart, because neither is part of a request in the steady state: a batch
//! that only prepares (once per statement and connection), and a bare `Sync`, the ping with
//! which the pool checks a connection it gets back, after the response is on its way. The
//! connections the pool opens are counted too, so that a test can tell a call that paid for a
//! new connection's set-up from one that did not.
//! Deterministic: it counts messages, not time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use mos_db::PgConnectOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// The frontend's `SSLRequest` code: an untyped message before the startup message.
const SSL_REQUEST: u32 = 80_877_103;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub statements: usize,
    pub round_trips: usize,
    pub prepares: usize,
    pub pings: usize,
    /// Connections the pool opened (the probe's aside): their set-up is counted with the rest.
    pub connects: usize,
    /// Each statement's text, in order, for the message of a failed assertion.
    pub log: Vec<String>,
}

#[derive(Clone)]
pub struct Wire {
    tally: Arc<Mutex<Tally>>,
    /// True once the database is to look gone: connections are cut and new ones refused.
    down: tokio::sync::watch::Sender<bool>,
    _dir: Arc<tempfile::TempDir>,
}

impl Wire {
    /// A proxy in front of the server that `upstream` reaches over its Unix socket; the options
    /// to connect through it instead.
    pub async fn between(upstream: &PgConnectOptions) -> (Self, PgConnectOptions) {
        let port = upstream.get_port();
        let server: PathBuf =
            upstream.get_socket().expect("the test clusters listen on a Unix socket").join(format!(".s.PGSQL.{port}"));
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join(format!(".s.PGSQL.{port}"))).unwrap();
        let wire = Self { tally: Arc::default(), down: tokio::sync::watch::Sender::new(false), _dir: Arc::new(dir) };
        let proxied = upstream.clone().socket(wire._dir.path());
        let (tally, down) = (wire.tally.clone(), wire.down.clone());
        tokio::spawn(async move {
            let mut cut = down.subscribe();
            loop {
                let client = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => return,
                    },
                    // The listener goes, its socket file stays: connecting is refused, as when
                    // the server was killed.
                    _ = cut.wait_for(|down| *down) => return,
                };
                let upstream = UnixStream::connect(&server).await.unwrap();
                tokio::spawn(relay(client, upstream, tally.clone(), down.subscribe()));
            }
        });
        (wire, proxied)
    }

    /// From now on the database looks gone, as after `kill -9` of the server: every connection
    /// is cut and connecting is refused.
    pub fn cut(&self) {
        self.down.send_replace(true);
    }

    /// What was counted since the last call.
    pub fn take(&self) -> Tally {
        std::mem::take(&mut *self.tally.lock().unwrap())
    }
}

async fn relay(
    client: UnixStream,
    upstream: UnixStream,
    tally: Arc<Mutex<Tally>>,
    mut down: tokio::sync::watch::Receiver<bool>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
    });
    let mut frontend = Frontend::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            read = client_read.read(&mut chunk) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            // Dropping our ends closes both connections.
            _ = down.wait_for(|down| *down) => return,
        };
        // Counted before it is forwarded, so the tally is complete when the reply arrives.
        frontend.feed(&chunk[..n], &tally);
        if upstream_write.write_all(&chunk[..n]).await.is_err() {
            return;
        }
    }
}

/// One connection's frontend stream, parsed message by message.
#[derive(Default)]
struct Frontend {
    buffer: Vec<u8>,
    started: bool,
    /// Prepared statement names, and the unnamed one as "", to their text.
    prepared: HashMap<String, String>,
    /// The statement the current portal was bound from.
    bound: String,
    /// What the extended-protocol batch since the last `Sync` has done.
    batch_executes: bool,
    batch_prepares: bool,
    /// The pool's probe, which nothing counts.
    probe: bool,
}

fn cstring(bytes: &[u8]) -> (String, &[u8]) {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    (String::from_utf8_lossy(&bytes[..end]).into_owned(), bytes.get(end + 1..).unwrap_or_default())
}

impl Frontend {
    fn feed(&mut self, bytes: &[u8], tally: &Mutex<Tally>) {
        self.buffer.extend_from_slice(bytes);
        loop {
            let header = if self.started { 5 } else { 4 };
            if self.buffer.len() < header {
                return;
            }
            let at = header - 4;
            let length = u32::from_be_bytes(self.buffer[at..at + 4].try_into().unwrap()) as usize;
            let total = at + length;
            if self.buffer.len() < total {
                return;
            }
            let message: Vec<u8> = self.buffer.drain(..total).collect();
            if self.started {
                if !self.probe {
                    self.message(message[0], &message[5..], &mut tally.lock().unwrap());
                }
            } else {
                // The startup message, or an SSLRequest before it.
                let code = u32::from_be_bytes(message[4..8].try_into().unwrap());
                self.started = code != SSL_REQUEST;
                // The pool's probe asks the database on a connection of its own, every second,
                // whatever the requests do: not part of any request's count.
                let params: Vec<String> =
                    message[8..].split(|b| *b == 0).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
                self.probe |= params.windows(2).any(|kv| kv[0] == "application_name" && kv[1] == mos_db::PROBE_NAME);
                if self.started && !self.probe {
                    tally.lock().unwrap().connects += 1;
                }
            }
        }
    }

    fn message(&mut self, kind: u8, body: &[u8], tally: &mut Tally) {
        match kind {
            b'Q' => {
                let (text, _) = cstring(body);
                let statements: Vec<&str> = text.split(';').map(str::trim).filter(|s| !s.is_empty()).collect();
                tally.statements += statements.len();
                tally.round_trips += 1;
                tally.log.extend(statements.iter().map(|s| format!("simple: {s}")));
            }
            b'P' => {
                self.batch_prepares = true;
                let (name, rest) = cstring(body);
                let (text, _) = cstring(rest);
                self.prepared.insert(name, text);
            }
            b'B' => {
                let (_portal, rest) = cstring(body);
                let (statement, _) = cstring(rest);
                self.bound = self.prepared.get(&statement).cloned().unwrap_or(statement);
            }
            b'E' => {
                self.batch_executes = true;
                tally.statements += 1;
                tally.log.push(format!("execute: {}", self.bound.split_whitespace().collect::<Vec<_>>().join(" ")));
            }
            b'S' => {
                match (self.batch_executes, self.batch_prepares) {
                    (true, _) => tally.round_trips += 1,
                    (false, true) => tally.prepares += 1,
                    (false, false) => tally.pings += 1,
                }
                self.batch_executes = false;
                self.batch_prepares = false;
            }
            _ => {}
        }
    }
}
