//! The API served on a real socket, against a real database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod health;

use mos_db::testing::TestDb;
use mos_http::AppState;
use tokio::net::TcpListener;

/// A server on port 0 for one test, and its base URL.
pub struct TestApp {
    pub base: String,
    pub db: TestDb,
    pub state: AppState,
}

impl TestApp {
    pub async fn spawn() -> Self {
        let db = TestDb::new().await;
        let state = AppState {
            pool: db.app_pool(4).await,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(mos_http::serve(
            listener,
            state.clone(),
            std::future::pending(),
        ));
        Self { base, db, state }
    }
}

/// A minimal HTTP/1.1 GET over a fresh connection: status and body.
pub async fn get(base: &str, path: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_owned();
    (status, content_type, body.to_owned())
}
