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
