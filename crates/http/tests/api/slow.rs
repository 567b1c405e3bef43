//! Slow and idle clients: they are closed after the header deadline, a request that stalls is
//! stopped at the request deadline, connections beyond the cap are closed at once, and the
//! server answers others throughout.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::TestApp;

const LIMITS: mos_http::Limits = mos_http::Limits {
    max_connections: 1024,
    header_timeout: Duration::from_secs(1),
    request_timeout: Duration::from_secs(2),
};

fn address(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Waits until the server closes `stream` (end of stream or reset); panics if it stays open
/// far beyond any deadline of these tests.
async fn closed_by_server(mut stream: TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the connection is still open");
    got
}

#[tokio::test]
async fn connections_that_send_nothing_are_closed_and_the_server_answers_throughout() {
    let app = TestApp::spawn_limited(LIMITS).await;
    let addr = address(&app);
    let mut idle = Vec::new();
    for i in 0..200 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        if i % 2 == 0 {
            // Half of them start a request and never finish its headers.
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        }
        idle.push(stream);
    }
    let waiting = tokio::spawn(futures_util::future::join_all(idle.into_iter().map(closed_by_server)));
    let checker = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    while !waiting.is_finished() {
        let health = checker.get(format!("{}/healthz", app.base)).send().await;
        assert_eq!(health.map(|r| r.status().as_u16()).ok(), Some(200), "/healthz answers while they wait");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answers = waiting.await.unwrap();
    assert!(answers.iter().all(|got| got.is_empty() || got.starts_with(b"HTTP/1.1 408")), "closed without an answer");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_deadline() {
    let app = TestApp::spawn_limited(LIMITS).await;
    let mut stream = TcpStream::connect(address(&app)).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = closed_by_server(stream).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
}

#[tokio::test]
async fn a_request_whose_body_stalls_is_stopped_at_the_request_deadline() {
    let app = TestApp::spawn_limited(LIMITS).await;
    let mut stream = TcpStream::connect(address(&app)).await.unwrap();
    let head = "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("urn:mos:problem:timeout") && answer.contains("retry-after"), "{answer}");
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once_and_served_again_later() {
    let limits = mos_http::Limits { max_connections: 20, header_timeout: Duration::from_secs(20), ..LIMITS };
    let app = TestApp::spawn_limited(limits).await;
    let addr = address(&app);
    let mut held = Vec::new();
    for _ in 0..20 {
        // An answer proves the server took the connection, before the next one knocks; the
        // connection then stays open, idle, within the header deadline.
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut answer = [0u8; 512];
        let n = stream.read(&mut answer).await.unwrap();
        assert!(answer[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..n]));
        held.push(stream);
    }
    let mut beyond = TcpStream::connect(&addr).await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), beyond.read_to_end(&mut got)).await;
    assert!(read.is_ok() && got.is_empty(), "closed at once, long before the header deadline");

    drop(held);
    let mut served = None;
    for _ in 0..100 {
        // The server sees the held connections end on their next read; retry until it has.
        if let Ok(health) = reqwest::get(format!("{}/healthz", app.base)).await {
            served = Some(health.status().as_u16());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(served, Some(200), "served again once the held connections are gone");
}
