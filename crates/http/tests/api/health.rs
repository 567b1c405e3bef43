use crate::{get, TestApp};

#[tokio::test]
async fn healthz_answers_while_the_process_runs() {
    let app = TestApp::spawn().await;
    let (status, _, body) = get(&app.base, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
}

#[tokio::test]
async fn readyz_is_ready_while_the_database_answers_and_unavailable_after() {
    let app = TestApp::spawn().await;
    let (status, _, body) = get(&app.base, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));

    app.state.pool.close().await;
    let (status, content_type, body) = get(&app.base, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(
        body,
        r#"{"type":"urn:mos:problem:unavailable","title":"Service unavailable","status":503}"#
    );
}
