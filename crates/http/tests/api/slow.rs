//! Slow and idle clients: they are closed after the header deadline, a request that stalls is
//! stopped at the request deadline, at the cap the oldest idle connection makes room for a new
//! one, one client address cannot hold more than its share, and the server answers others
//! throughout. Clients at other addresses bind 127.0.0.2, 127.0.0.3, ... (all loopback).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::TestApp;

const LIMITS: mos_http::Limits = mos_http::Limits {
    max_connections: 1024,
    max_connections_per_client: 1024,
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

/// Starts a chunked CSV upload to acme's imports as `token`: the connection, with its headers sent.
async fn csv_upload(app: &TestApp, token: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address(app)).await.unwrap();
    let head = format!(
        "POST /v1/orgs/acme/imports?file_name=slow.csv HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

async fn send_chunk(stream: &mut TcpStream, data: &str) {
    stream.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes()).await.unwrap();
}

/// The status line and body of the answer on `stream`.
async fn answer(stream: &mut TcpStream) -> String {
    let mut got = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut got)).await.unwrap().unwrap();
    String::from_utf8_lossy(&got[..n]).into_owned()
}

#[tokio::test]
async fn an_upload_that_keeps_sending_outlasts_the_request_deadline_and_one_that_stops_is_cut_off() {
    let app = TestApp::spawn_limited(LIMITS).await;
    let org = app.org_with_every_role("acme").await;
    // Twelve chunks a quarter of the deadline apart: three times the deadline in all.
    let mut stream = csv_upload(&app, &org.creator).await;
    send_chunk(&mut stream, "email,name\r\n").await;
    for n in 0..12 {
        tokio::time::sleep(LIMITS.request_timeout / 4).await;
        send_chunk(&mut stream, &format!("person{n}@example.com,Person {n}\r\n")).await;
    }
    stream.write_all(b"0\r\n\r\n").await.unwrap();
    let got = answer(&mut stream).await;
    assert!(got.starts_with("HTTP/1.1 201"), "{got}");

    // One that stops sending mid-file is cut off once a deadline passes without a chunk.
    let mut stream = csv_upload(&app, &org.creator).await;
    send_chunk(&mut stream, "email,name\r\nana@example.com,Ana\r\n").await;
    let got = answer(&mut stream).await;
    assert!(got.starts_with("HTTP/1.1 400") && got.contains("nothing arrived for 2 s"), "{got}");
    let imports = app.get_as(&org.admin, "/v1/orgs/acme/imports").await;
    assert_eq!(
        imports.body["items"].as_array().map(Vec::len),
        Some(1),
        "only the finished upload is kept: {}",
        imports.body
    );

    // A CSV content type on a request that reads no body does not lift its deadline: with the
    // sessions locked, signing out waits, and is stopped at the deadline.
    let mut blocker = app.db.superuser().await;
    sqlx::raw_sql("begin").execute(&mut blocker).await.unwrap();
    sqlx::raw_sql("lock table app.sessions in share mode").execute(&mut blocker).await.unwrap();
    let request = app.http.post(format!("{}/v1/auth/logout", app.base)).bearer_auth(&org.viewer);
    let out = tokio::time::timeout(Duration::from_secs(30), app.send(request.header("content-type", "text/csv")))
        .await
        .expect("the request is answered at its deadline, not left waiting");
    assert_eq!((out.status, out.problem_type()), (503, "urn:mos:problem:timeout"), "{}", out.body);
    sqlx::raw_sql("rollback").execute(&mut blocker).await.unwrap();
}

/// A connection from the loopback address `ip`, as another client's.
async fn connect_from(ip: [u8; 4], addr: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((std::net::Ipv4Addr::from(ip), 0).into()).unwrap();
    socket.connect(addr.parse().unwrap()).await.unwrap()
}

/// A connection from `ip` that is serving a request: its body is awaited and never comes. The
/// interim "100 Continue" proves that the server has the request's headers and reads the body.
async fn serving_from(ip: [u8; 4], addr: &str) -> TcpStream {
    let mut stream = connect_from(ip, addr).await;
    let head = "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut answer)).await.unwrap().unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 100"), "{}", String::from_utf8_lossy(&answer[..n]));
    stream
}

/// `GET /healthz` from `ip` on a new connection: the status line, or nothing if closed unanswered.
async fn health_from(ip: [u8; 4], addr: &str) -> String {
    let mut stream = connect_from(ip, addr).await;
    // The server may have closed it already; then the read below finds nothing.
    let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut got)).await;
    String::from_utf8_lossy(&got).lines().next().unwrap_or_default().to_owned()
}

/// Held open long past any wait of these tests unless the server closes them.
const HOLDING: mos_http::Limits = mos_http::Limits {
    max_connections: 20,
    max_connections_per_client: 5,
    header_timeout: Duration::from_secs(120),
    request_timeout: Duration::from_secs(120),
};

#[tokio::test]
async fn when_every_connection_is_serving_a_new_one_is_closed_at_once_and_served_again_later() {
    let app = TestApp::spawn_limited(mos_http::Limits { max_connections_per_client: 20, ..HOLDING }).await;
    let addr = address(&app);
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(serving_from([127, 0, 0, 2], &addr).await);
    }
    let beyond = connect_from([127, 0, 0, 3], &addr).await;
    let got = tokio::time::timeout(Duration::from_secs(10), closed_by_server(beyond)).await;
    assert_eq!(got.ok(), Some(Vec::new()), "closed at once, long before any deadline");

    drop(held);
    let mut served = String::new();
    for _ in 0..100 {
        // The server sees the held connections end on their next read; retry until it has.
        served = health_from([127, 0, 0, 3], &addr).await;
        if !served.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(served, "HTTP/1.1 200 OK", "served again once the held connections are gone");
}

#[tokio::test]
async fn one_client_holding_its_share_does_not_keep_another_clients_request_out() {
    let app = TestApp::spawn_limited(HOLDING).await;
    let addr = address(&app);
    let mut share = Vec::new();
    for _ in 0..5 {
        share.push(serving_from([127, 0, 0, 2], &addr).await);
    }
    for _ in 0..20 {
        let more = connect_from([127, 0, 0, 2], &addr).await;
        let got = tokio::time::timeout(Duration::from_secs(10), closed_by_server(more)).await;
        assert_eq!(got.ok(), Some(Vec::new()), "beyond its share: closed at once");
    }
    assert_eq!(health_from([127, 0, 0, 3], &addr).await, "HTTP/1.1 200 OK", "another client is served");
    drop(share);
}

#[tokio::test]
async fn at_the_cap_the_oldest_idle_connection_makes_room_for_a_new_clients_request() {
    let app = TestApp::spawn_limited(HOLDING).await;
    let addr = address(&app);
    let mut idle = Vec::new();
    for i in 0..20u8 {
        // Four clients of five connections each, every one within its share; half of the
        // connections start a request and never finish its headers, half send nothing.
        let mut stream = connect_from([127, 0, 0, 2 + i / 5], &addr).await;
        if i % 2 == 0 {
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        }
        idle.push(stream);
    }
    let mut idle = idle.into_iter();
    let mut newcomers = Vec::new();
    for (evicted, kind) in [(idle.next().unwrap(), "with half its headers"), (idle.next().unwrap(), "silent")] {
        // The newcomer keeps its connection open after the answer, so the cap stays reached.
        let mut stream = connect_from([127, 0, 0, 9], &addr).await;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut answer = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut answer)).await.unwrap().unwrap_or(0);
        assert!(answer[..n].starts_with(b"HTTP/1.1 200"), "a new client is served: {:?}", &answer[..n]);
        newcomers.push(stream);
        let got = tokio::time::timeout(Duration::from_secs(10), closed_by_server(evicted)).await;
        assert!(got.is_ok(), "the oldest idle connection ({kind}) was closed, long before the header deadline");
    }
    drop((idle, newcomers));
}

/// Whether a request's transaction is still open on one of the pool's connections.
async fn a_request_transaction_is_open(app: &TestApp) -> bool {
    sqlx::query_scalar(
        "select count(*) > 0 from pg_stat_activity
          where datname = current_database() and usename = 'app_user' and application_name <> $1
            and xact_start is not null",
    )
    .bind(mos_db::PROBE_NAME)
    .fetch_one(&mut app.db.superuser().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_request_past_its_deadline_is_answered_503_and_nothing_it_wrote_is_kept() {
    let app = TestApp::spawn_limited(mos_http::Limits { request_timeout: Duration::from_secs(5), ..LIMITS }).await;
    let token = app.signed_in("ada@example.com").await;
    // The audit log locked: creating an organization writes it and its first member, then
    // waits to write the audit record until the request's deadline has passed.
    let mut blocker = app.db.superuser().await;
    sqlx::raw_sql("begin").execute(&mut blocker).await.unwrap();
    sqlx::raw_sql("lock table app.audit_logs in share mode").execute(&mut blocker).await.unwrap();
    let created = app.post_as(&token, "/v1/orgs", serde_json::json!({ "slug": "acme", "name": "Acme" })).await;
    assert_eq!((created.status, created.problem_type()), (503, "urn:mos:problem:timeout"), "{}", created.body);
    assert!(a_request_transaction_is_open(&app).await, "the request's statement still waits on the lock");

    // Once the lock is gone, its statement finishes and its transaction ends: rolled back.
    sqlx::raw_sql("rollback").execute(&mut blocker).await.unwrap();
    let ended = async {
        while a_request_transaction_is_open(&app).await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), ended).await.expect("the request's transaction ends");
    let mut su = app.db.superuser().await;
    for (table, sql) in [
        ("organizations", "select count(*) from app.organizations where slug = 'acme'"),
        ("memberships", "select count(*) from app.user_organizations"),
        ("audit records", "select count(*) from app.audit_logs where action = 'org.created'"),
    ] {
        let kept: i64 = sqlx::query_scalar(sql).fetch_one(&mut su).await.unwrap();
        assert_eq!(kept, 0, "{table} of the timed-out request");
    }
    assert_eq!(
        app.post_as(&token, "/v1/orgs", serde_json::json!({ "slug": "acme", "name": "Acme" })).await.status,
        201
    );
}
