use crate::TestApp;

#[tokio::test]
async fn healthz_answers_while_the_process_runs() {
    let app = TestApp::spawn().await;
    let reply = app.send(app.http.get(format!("{}/healthz", app.base))).await;
    assert_eq!((reply.status, reply.body), (200, serde_json::json!({ "status": "ok" })));
}

#[tokio::test]
async fn readyz_is_ready_while_the_database_answers_and_unavailable_after() {
    let app = TestApp::spawn().await;
    let reply = app.send(app.http.get(format!("{}/readyz", app.base))).await;
    assert_eq!((reply.status, reply.body), (200, serde_json::json!({ "status": "ready" })));

    app.pool.close().await;
    let reply = app.send(app.http.get(format!("{}/readyz", app.base))).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    assert_eq!(reply.problem_type(), "urn:mos:problem:unavailable");
}

#[tokio::test]
async fn unknown_paths_are_problem_documents_with_a_request_id() {
    let app = TestApp::spawn().await;
    let reply = app.send(app.http.get(format!("{}/v1/nope", app.base)).header("x-request-id", "trace-me-42")).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    assert_eq!(reply.problem_type(), "urn:mos:problem:not_found");
    let ours = reply.headers["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(ours).is_ok(), "every answer names the request by our own id: {ours}");
}

#[tokio::test]
async fn readyz_says_not_ready_while_the_database_check_finds_a_problem() {
    let app = TestApp::spawn().await;
    app.readiness.record(vec!["audit_guard_disabled".into()]);
    let reply = app.send(app.http.get(format!("{}/readyz", app.base))).await;
    assert_eq!((reply.status, reply.problem_type()), (503, "urn:mos:problem:not_ready"));
    assert!(reply.headers.contains_key("retry-after"));
    assert!(!reply.body.to_string().contains("audit_guard"), "which protection is off is for the log, not the world");
    app.readiness.record(Vec::new());
    assert_eq!(app.send(app.http.get(format!("{}/readyz", app.base))).await.status, 200);
}

#[tokio::test]
async fn while_the_database_is_away_requests_fail_fast_with_retry_after() {
    let (app, wire) = TestApp::spawn_counted().await;
    let token = app.signed_in("ada@example.com").await;
    wire.cut();
    // Bounded far below the ten seconds a request used to hang; a failure here is a hang.
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(8)).build().unwrap();
    // Twice over: the pool's open connections fail at their first statement; after them, each
    // request has to connect anew, which is where a request used to wait out the whole timeout.
    let requests = (0..2).flat_map(|_| {
        [
            client.get(format!("{}/v1/me", app.base)).bearer_auth(&token),
            client.get(format!("{}/readyz", app.base)),
            client
                .post(format!("{}/v1/auth/login", app.base))
                .json(&serde_json::json!({ "email": "ada@example.com", "password": crate::PASSWORD })),
        ]
    });
    for request in requests {
        let reply = app.send(request).await;
        assert_eq!((reply.status, reply.problem_type()), (503, "urn:mos:problem:unavailable"), "{}", reply.body);
        assert!(reply.headers.contains_key("retry-after"));
    }
}
