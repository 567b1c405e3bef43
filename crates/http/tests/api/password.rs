use chrono::Duration;
use serde_json::json;

use crate::{token_in, TestApp, PASSWORD};

const NEW: &str = "a brand new passphrase";

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_signs_out_everyone_else() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    let other = app.login("ada@example.com", PASSWORD).await.session_token();

    let wrong = app
        .post_as(&token, "/v1/me/password", json!({ "current_password": "not my password!", "new_password": NEW }))
        .await;
    assert_eq!(wrong.problem_type(), "urn:mos:problem:invalid_credentials");
    let weak = app
        .post_as(&token, "/v1/me/password", json!({ "current_password": PASSWORD, "new_password": "qwerty123456" }))
        .await;
    assert_eq!((weak.status, weak.body["field"].as_str()), (422, Some("new_password")));

    let changed =
        app.post_as(&token, "/v1/me/password", json!({ "current_password": PASSWORD, "new_password": NEW })).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(app.get_as(&other, "/v1/me").await.status, 401);
    assert_eq!(app.get_as(&token, "/v1/me").await.status, 401);
    assert_eq!(app.get_as(&changed.session_token(), "/v1/me").await.status, 200);
    app.inbox.wait_for("ada@example.com", "Your password was changed", 1).await;
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status, 401);
    assert_eq!(app.login("ada@example.com", NEW).await.status, 200);
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once_and_signs_out_every_session() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    let unknown = app.post("/v1/auth/password-reset", json!({ "email": "nobody@example.com" })).await;
    let known = app.post("/v1/auth/password-reset", json!({ "email": "ada@example.com" })).await;
    assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));
    let reset = token_in(&app.inbox.wait_for("ada@example.com", "Reset your password", 1).await);

    let weak =
        app.post("/v1/auth/password-reset/confirm", json!({ "token": reset, "new_password": "ada@example.com" })).await;
    assert_eq!(weak.status, 422, "refused, and the token stays good");
    let done = app.post("/v1/auth/password-reset/confirm", json!({ "token": reset, "new_password": NEW })).await;
    assert_eq!(done.status, 204, "{}", done.body);
    let reused = app
        .post("/v1/auth/password-reset/confirm", json!({ "token": reset, "new_password": "yet another passphrase" }))
        .await;
    assert_eq!(reused.problem_type(), "urn:mos:problem:invalid_token");

    assert_eq!(app.get_as(&token, "/v1/me").await.status, 401);
    assert_eq!(app.login("ada@example.com", NEW).await.status, 200);
}

#[tokio::test]
async fn a_reset_link_expires_after_an_hour() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    app.post("/v1/auth/password-reset", json!({ "email": "ada@example.com" })).await;
    let reset = token_in(&app.inbox.wait_for("ada@example.com", "Reset your password", 1).await);
    app.clock.advance(Duration::hours(1) + Duration::seconds(1));
    let late = app.post("/v1/auth/password-reset/confirm", json!({ "token": reset, "new_password": NEW })).await;
    assert_eq!(late.problem_type(), "urn:mos:problem:invalid_token");
}

#[tokio::test]
async fn a_reset_lifts_a_lockout() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    for _ in 0..7 {
        app.login("ada@example.com", "a wrong password!").await;
    }
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status, 429);
    app.post("/v1/auth/password-reset", json!({ "email": "ada@example.com" })).await;
    let reset = token_in(&app.inbox.wait_for("ada@example.com", "Reset your password", 1).await);
    assert_eq!(
        app.post("/v1/auth/password-reset/confirm", json!({ "token": reset, "new_password": NEW })).await.status,
        204
    );
    assert_eq!(app.login("ada@example.com", NEW).await.status, 200);
}
