//! What every response carries: security headers, our own request id, problem documents for
//! every refusal the router makes itself.

use serde_json::json;

use crate::TestApp;

#[tokio::test]
async fn every_response_tells_browsers_not_to_sniff_frame_cache_or_refer() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    let json = app.get_as(&token, "/v1/me").await;
    let html = app.send(app.http.get(format!("{}/docs", app.base))).await;
    let console = app.send(app.http.get(format!("{}/sign-in", app.base))).await;
    let refused = app.send(app.http.get(format!("{}/v1/me", app.base))).await;
    let answers =
        [("a JSON answer", &json), ("the docs page", &html), ("a console page", &console), ("a refusal", &refused)];
    for (what, reply) in answers {
        let header = |name: &str| reply.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"), "{what}");
        // HTML pages keep the referrer within our origin, so that their forms carry an Origin.
        let html = header("content-type").is_some_and(|t| t.starts_with("text/html"));
        let referrer = if html { "same-origin" } else { "no-referrer" };
        assert_eq!(html, what.ends_with("page"), "{what}");
        assert_eq!(header("referrer-policy").as_deref(), Some(referrer), "{what}: never to another site");
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{what}");
        let csp = header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{what}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
        assert_eq!(header("cache-control").as_deref(), Some("no-store"), "{what}");
        assert_eq!(header("strict-transport-security"), None, "{what}: plain http says nothing about https");
    }
    let page = html.body.as_str().unwrap();
    assert!(!page.contains("<style") && !page.contains("style="), "the page's style lives in its own file");
    let css = app.send(app.http.get(format!("{}/docs.css", app.base))).await;
    assert_eq!(css.status, 200);
    assert!(css.headers["content-type"].to_str().unwrap().starts_with("text/css"));
}

#[tokio::test]
async fn behind_an_https_public_url_browsers_are_told_to_stay_on_https() {
    let app = TestApp::spawn_on(mos_db::testing::TestDb::new().await, mos_auth::PasswordHasher::new(4), |s| {
        s.public_url = "https://marketing-os.example".into();
    })
    .await;
    let reply = app.send(app.http.get(format!("{}/healthz", app.base))).await;
    let hsts = reply.headers["strict-transport-security"].to_str().unwrap();
    assert!(hsts.starts_with("max-age=") && hsts.contains("includeSubDomains"), "{hsts}");
}

#[tokio::test]
async fn the_request_id_is_ours_and_a_clients_id_is_kept_apart_only_when_plain() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    let create = |id: &str, slug: &str| {
        app.http
            .post(format!("{}/v1/orgs", app.base))
            .bearer_auth(&token)
            .header("x-request-id", id)
            .json(&json!({ "slug": slug, "name": "Acme" }))
    };
    let plain = app.send(create("client-7", "acme")).await;
    let forged = app.send(create(&format!("{}<script>", "x".repeat(5000)), "other")).await;
    assert_eq!((plain.status, forged.status), (201, 201), "{} {}", plain.body, forged.body);

    for (slug, reply, client_id) in [("acme", &plain, Some("client-7")), ("other", &forged, None)] {
        let ours = reply.headers["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(ours).is_ok(), "the response names our id, not the client's: {ours}");
        let trail = app.get_as(&token, &format!("/v1/orgs/{slug}/audit-logs")).await.body;
        let created = trail["items"].as_array().unwrap().iter().find(|r| r["action"] == "org.created").unwrap();
        assert_eq!(created["request_id"], ours, "the record names the request as the response did");
        assert_eq!(created["metadata"].get("client_request_id").and_then(|v| v.as_str()), client_id);
    }
}

#[tokio::test]
async fn the_router_refuses_with_problem_documents() {
    let app = TestApp::spawn().await;
    let unknown = app.send(app.http.get(format!("{}/v1/nothing-here", app.base))).await;
    assert_eq!((unknown.status, unknown.problem_type()), (404, "urn:mos:problem:not_found"));
    assert_eq!(unknown.headers["content-type"], "application/problem+json");

    let wrong_method = app.send(app.http.put(format!("{}/v1/auth/login", app.base))).await;
    assert_eq!((wrong_method.status, wrong_method.problem_type()), (405, "urn:mos:problem:method_not_allowed"));
    assert_eq!(wrong_method.headers["content-type"], "application/problem+json");
    assert_eq!(wrong_method.headers["allow"], "POST");
}

#[tokio::test]
async fn the_bearer_scheme_is_accepted_in_any_case() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let request = app.http.get(format!("{}/v1/me", app.base)).header("authorization", format!("{scheme} {token}"));
        assert_eq!(app.send(request).await.status, 200, "{scheme}");
    }
    let basic = app.http.get(format!("{}/v1/me", app.base)).header("authorization", format!("Basic {token}"));
    assert_eq!(app.send(basic).await.status, 401, "another scheme is not a session");
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_described_in_terms_of_json() {
    let app = TestApp::spawn().await;
    let reply = app.post("/v1/auth/login", json!(["ada@example.com"])).await;
    assert_eq!((reply.status, reply.problem_type()), (400, "urn:mos:problem:malformed_body"));
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(detail.contains("expected an object") && !detail.contains("Credentials"), "{detail}");
}

#[tokio::test]
async fn a_control_character_in_a_query_filter_is_refused_naming_the_parameter_before_any_answer() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin@acme.example").await;
    assert_eq!(app.post_as(&admin, "/v1/orgs", json!({ "slug": "acme", "name": "Acme" })).await.status, 201);
    let filters = [
        ("content", "q"),
        ("content", "tag"),
        ("audit-logs", "action"),
        ("audit-logs", "resource_type"),
        ("audit-logs", "resource_id"),
        ("audit-logs/export", "action"),
        ("audit-logs/export", "resource_type"),
        ("audit-logs/export", "resource_id"),
    ];
    for (route, name) in filters {
        for value in ["%00", "a%00b", "%1B%5B2J"] {
            let path = format!("/v1/orgs/acme/{route}?{name}={value}");
            // The whole answer, streamed or not: a refusal is complete, not a 200 cut short.
            let response = app.http.get(format!("{}{path}", app.base)).bearer_auth(&admin).send().await.unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
            assert_eq!((status, body["field"].as_str()), (422, Some(name)), "{path}: {body}");
            assert_eq!(body["type"], "urn:mos:problem:invalid_field", "{path}");
        }
    }
    // The same filters without the control character are served.
    assert_eq!(app.get_as(&admin, "/v1/orgs/acme/content?q=flu&tag=flu").await.status, 200);
    assert_eq!(app.get_as(&admin, "/v1/orgs/acme/audit-logs?action=org.created").await.status, 200);
}
