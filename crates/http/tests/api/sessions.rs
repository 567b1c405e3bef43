use chrono::Duration;
use serde_json::json;

use crate::{TestApp, PASSWORD};

#[tokio::test]
async fn the_session_cookie_is_host_only_httponly_secure_and_strict_and_works_like_the_bearer_token() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    let reply = app.login("ada@example.com", PASSWORD).await;
    let cookie = reply.headers["set-cookie"].to_str().unwrap().to_owned();
    let token = reply.session_token();
    assert_eq!(cookie, format!("__Host-mos_session={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=43200"));

    let by_cookie = app
        .send(app.http.get(format!("{}/v1/me", app.base)).header("cookie", format!("__Host-mos_session={token}")))
        .await;
    assert_eq!((by_cookie.status, by_cookie.body["email"].as_str()), (200, Some("ada@example.com")));
    let anonymous = app.send(app.http.get(format!("{}/v1/me", app.base))).await;
    assert_eq!((anonymous.status, anonymous.problem_type()), (401, "urn:mos:problem:unauthenticated"));
    assert_eq!(anonymous.headers["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn a_session_ends_after_15_idle_minutes() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    app.clock.advance(Duration::minutes(14));
    assert_eq!(app.get_as(&token, "/v1/me").await.status, 200, "use moves the idle deadline");
    app.clock.advance(Duration::minutes(14));
    assert_eq!(app.get_as(&token, "/v1/me").await.status, 200);
    app.clock.advance(Duration::minutes(15) + Duration::seconds(1));
    assert_eq!(app.get_as(&token, "/v1/me").await.status, 401);
}

#[tokio::test]
async fn a_session_ends_12_hours_after_sign_in_however_active() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    for _ in 0..51 {
        app.clock.advance(Duration::minutes(14));
        assert_eq!(app.get_as(&token, "/v1/me").await.status, 200);
    }
    app.clock.advance(Duration::minutes(14));
    assert_eq!(app.get_as(&token, "/v1/me").await.status, 401, "714 minutes > 12 hours");
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    let reply = app.post_as(&token, "/v1/auth/logout", json!({})).await;
    assert_eq!(reply.status, 204);
    assert!(reply.headers["set-cookie"].to_str().unwrap().starts_with("__Host-mos_session=; Path=/;"));
    assert!(reply.headers["set-cookie"].to_str().unwrap().ends_with("Max-Age=0"));
    assert_eq!(app.get_as(&token, "/v1/me").await.status, 401);
}

#[tokio::test]
async fn users_list_and_revoke_their_own_sessions_only() {
    let app = TestApp::spawn().await;
    let laptop = app.signed_in("ada@example.com").await;
    let phone = app.login("ada@example.com", PASSWORD).await.session_token();
    let eve = app.signed_in("eve@example.com").await;

    let listed = app.get_as(&laptop, "/v1/me/sessions").await.body;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let phone_id = listed.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();

    let theft = app.send(app.http.delete(format!("{}/v1/me/sessions/{phone_id}", app.base)).bearer_auth(&eve)).await;
    assert_eq!(theft.status, 404, "another user's session is not theirs to end");
    assert_eq!(app.get_as(&phone, "/v1/me").await.status, 200);

    let revoked =
        app.send(app.http.delete(format!("{}/v1/me/sessions/{phone_id}", app.base)).bearer_auth(&laptop)).await;
    assert_eq!(revoked.status, 204);
    assert_eq!(app.get_as(&phone, "/v1/me").await.status, 401);
    assert_eq!(app.get_as(&laptop, "/v1/me").await.status, 200);
    let garbage =
        app.send(app.http.delete(format!("{}/v1/me/sessions/not-a-uuid", app.base)).bearer_auth(&laptop)).await;
    assert_eq!(garbage.status, 404);
}

#[tokio::test]
async fn malformed_and_forged_tokens_are_simply_unauthenticated() {
    let app = TestApp::spawn().await;
    for token in ["", "x", &"A".repeat(43), "' or 1=1 --"] {
        assert_eq!(app.get_as(token, "/v1/me").await.status, 401, "{token:?}");
    }
}
