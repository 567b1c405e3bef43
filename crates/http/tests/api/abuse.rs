use serde_json::json;

use crate::TestApp;

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let app = TestApp::spawn().await;
    let request = app
        .http
        .post(format!("{}/v1/auth/login", app.base))
        .header("content-type", "application/json")
        .body("{\"email\": ");
    let reply = app.send(request).await;
    assert_eq!((reply.status, reply.problem_type()), (400, "urn:mos:problem:malformed_body"));
    assert_eq!(reply.headers["content-type"], "application/problem+json");
}

#[tokio::test]
async fn wrong_shapes_and_unknown_fields_are_refused() {
    let app = TestApp::spawn().await;
    for body in [
        json!({ "email": 42, "password": "x" }),
        json!({ "email": "a@b.co" }),
        json!({ "email": "a@b.co", "password": "p", "admin": true }),
    ] {
        let reply = app.post("/v1/auth/login", body.clone()).await;
        assert_eq!((reply.status, reply.problem_type()), (400, "urn:mos:problem:malformed_body"), "{body}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415_problem() {
    let app = TestApp::spawn().await;
    let request =
        app.http.post(format!("{}/v1/auth/login", app.base)).header("content-type", "text/plain").body("email=a");
    assert_eq!(app.send(request).await.problem_type(), "urn:mos:problem:unsupported_media_type");
}

#[tokio::test]
async fn an_oversized_body_is_a_413_problem_and_never_parsed() {
    let app = TestApp::spawn().await;
    let huge = json!({ "email": "ada@example.com", "password": "x".repeat(32 * 1024) });
    let reply = app.post("/v1/auth/register", huge).await;
    assert_eq!((reply.status, reply.problem_type()), (413, "urn:mos:problem:body_too_large"));
    assert!(reply.body["detail"].as_str().unwrap().contains(" 16 KiB"), "{}", reply.body);
}

#[tokio::test]
async fn a_413_on_a_content_route_names_that_routes_limit() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    assert_eq!(app.post_as(&token, "/v1/orgs", json!({ "slug": "acme", "name": "Acme" })).await.status, 201);
    let huge = json!({ "title": "Flu", "channel": "email", "body": "x".repeat(600 * 1024) });
    let reply = app.post_as(&token, "/v1/orgs/acme/content", huge).await;
    assert_eq!((reply.status, reply.problem_type()), (413, "urn:mos:problem:body_too_large"));
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(detail.contains(" 512 KiB") && !detail.contains("16 KiB"), "{detail}");
    // Under the route's limit, the body is parsed and the domain's own limit answers.
    let long = json!({ "title": "Flu", "channel": "email", "body": "x".repeat(200 * 1024) });
    assert_eq!(app.post_as(&token, "/v1/orgs/acme/content", long).await.body["field"], "body");
}
