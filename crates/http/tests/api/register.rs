use serde_json::json;

use crate::{token_in, TestApp, PASSWORD};

#[tokio::test]
async fn registering_sends_a_verification_link_over_smtp_and_verifying_allows_login() {
    let app = TestApp::spawn().await;
    let reply = app.post("/v1/auth/register", json!({ "email": "  Ada@Example.com ", "password": PASSWORD })).await;
    assert_eq!((reply.status, reply.body), (202, json!({ "status": "accepted" })));

    let mail = app.inbox.wait_for("ada@example.com", "Confirm your email address", 1).await;
    assert!(mail.contains("Content-Transfer-Encoding: 7bit"), "links stay copyable from the raw message: {mail}");
    assert!(mail.contains(&format!("{}/verify-email?token=", app.public_url)), "{mail}");
    assert_eq!(app.login("ada@example.com", PASSWORD).await.problem_type(), "urn:mos:problem:email_not_verified");

    let token = token_in(&mail);
    assert_eq!(token.len(), 43, "{mail}");
    let reply = app.post("/v1/auth/verify-email", json!({ "token": token })).await;
    assert_eq!((reply.status, reply.body), (200, json!({ "status": "verified" })));
    let reply = app.post("/v1/auth/verify-email", json!({ "token": token })).await;
    assert_eq!((reply.status, reply.problem_type()), (400, "urn:mos:problem:invalid_token"), "single use");
    assert_eq!(app.login("ADA@example.com", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn registering_an_existing_address_answers_the_same_and_tells_only_the_owner() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    let again = app
        .post("/v1/auth/register", json!({ "email": "ada@example.com", "password": "another long passphrase" }))
        .await;
    let fresh = app
        .post("/v1/auth/register", json!({ "email": "bob@example.com", "password": "another long passphrase" }))
        .await;
    assert_eq!((again.status, &again.body), (fresh.status, &fresh.body));

    let notice = app.inbox.wait_for("ada@example.com", "Someone tried to register with your address", 1).await;
    assert!(!notice.contains("token="), "the notice carries no verification link");
    // The existing account is untouched: the old password still works.
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn passwords_follow_the_nist_policy() {
    let app = TestApp::spawn().await;
    for (password, detail) in [
        ("short pass", "at least 12 characters"),
        ("qwerty123456", "commonly used"),
        ("ada@example.com", "not be your email"),
    ] {
        let reply = app.post("/v1/auth/register", json!({ "email": "ada@example.com", "password": password })).await;
        assert_eq!((reply.status, reply.problem_type()), (422, "urn:mos:problem:invalid_field"), "{password}");
        assert_eq!(reply.body["field"], "password");
        assert!(reply.body["detail"].as_str().unwrap().contains(detail), "{}", reply.body);
    }
    let long = "ü".repeat(256);
    assert_eq!(
        app.post("/v1/auth/register", json!({ "email": "ada@example.com", "password": long })).await.status,
        202
    );
    // Mail leaves in the background: once the accepted registration's mail has arrived, one that
    // the earlier refusals had sent would have too.
    app.inbox.wait_for("ada@example.com", "Confirm your email address", 1).await;
    assert_eq!(app.inbox.all_to("ada@example.com").len(), 1, "refused registrations send nothing");
}

#[tokio::test]
async fn a_malformed_email_is_refused_with_the_field_named() {
    let app = TestApp::spawn().await;
    let reply = app.post("/v1/auth/register", json!({ "email": "not-an-address", "password": PASSWORD })).await;
    assert_eq!((reply.status, reply.body["field"].as_str()), (422, Some("email")));
}

#[tokio::test]
async fn a_verification_link_expires_after_24_hours_and_a_resend_voids_the_old_one() {
    let app = TestApp::spawn().await;
    app.post("/v1/auth/register", json!({ "email": "ada@example.com", "password": PASSWORD })).await;
    let first = token_in(&app.inbox.wait_for("ada@example.com", "Confirm your email address", 1).await);

    let reply = app.post("/v1/auth/verify-email/resend", json!({ "email": "ada@example.com" })).await;
    assert_eq!(reply.status, 202);
    let second = token_in(&app.inbox.wait_for("ada@example.com", "Confirm your email address", 2).await);
    assert_ne!(first, second);
    assert_eq!(app.post("/v1/auth/verify-email", json!({ "token": first })).await.status, 400, "voided by the resend");

    app.clock.advance(chrono::Duration::hours(24) + chrono::Duration::seconds(1));
    assert_eq!(app.post("/v1/auth/verify-email", json!({ "token": second })).await.status, 400, "expired");

    // Resending for unknown or verified addresses answers the same and sends nothing.
    let unknown = app.post("/v1/auth/verify-email/resend", json!({ "email": "nobody@example.com" })).await;
    assert_eq!((unknown.status, unknown.body), (202, json!({ "status": "accepted" })));
}

#[tokio::test]
async fn guessing_verification_tokens_is_limited_per_client_address() {
    let app = TestApp::spawn().await;
    let mut statuses = Vec::new();
    for _ in 0..22 {
        statuses.push(app.post("/v1/auth/verify-email", json!({ "token": "A".repeat(43) })).await);
    }
    assert!(statuses[..20].iter().all(|r| r.status == 400));
    let limited = &statuses[21];
    assert_eq!((limited.status, limited.problem_type()), (429, "urn:mos:problem:rate_limited"));
    assert!(limited.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
}

#[tokio::test]
async fn the_answers_to_mail_requests_are_the_same_for_an_address_with_an_account_and_one_without() {
    let app = TestApp::spawn().await;
    // Signing up mailed the known address a link within this hour; the unknown one got nothing.
    app.sign_up("known@example.com").await;
    for path in ["/v1/auth/password-reset", "/v1/auth/verify-email/resend", "/v1/auth/register"] {
        let mut answers = Vec::new();
        for email in ["known@example.com", "unknown@example.com"] {
            let mut statuses = Vec::new();
            for _ in 0..5 {
                let body = if path.ends_with("register") {
                    json!({ "email": email, "password": PASSWORD })
                } else {
                    json!({ "email": email })
                };
                let reply = app.post(path, body).await;
                statuses.push((reply.status, reply.body));
            }
            answers.push(statuses);
        }
        assert_eq!(answers[0], answers[1], "{path}: known, then unknown");
        assert!(answers[0].iter().all(|(status, _)| *status == 202), "{path}: {:?}", answers[0]);
        app.clock.advance(chrono::Duration::hours(1));
    }
}

#[tokio::test]
async fn three_mails_an_hour_reach_an_address_whatever_is_asked_and_the_rest_send_nothing() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    // The sign-up's link was the first mail of the hour: two resets go out, the rest are
    // answered alike and send nothing.
    for _ in 0..5 {
        assert_eq!(app.post("/v1/auth/password-reset", json!({ "email": "ada@example.com" })).await.status, 202);
    }
    app.inbox.wait_for("ada@example.com", "Reset your password", 2).await;
    // The link of the later of the two mails stays valid (mail leaves in the background, so
    // either may arrive first): the requests beyond the limit replaced nothing.
    let mut accepted = 0;
    for mail in app.inbox.all_to("ada@example.com").iter().filter(|m| m.contains("Reset your password")) {
        let reset = json!({ "token": token_in(mail), "new_password": "a new and long passphrase" });
        let status = app.post("/v1/auth/password-reset/confirm", reset).await.status;
        assert!(status == 204 || status == 400, "{status}");
        accepted += usize::from(status == 204);
    }
    assert_eq!(accepted, 1, "one of the two links still works");
    app.clock.advance(chrono::Duration::hours(1));
    assert_eq!(app.post("/v1/auth/password-reset", json!({ "email": "ada@example.com" })).await.status, 202);
    app.inbox.wait_for("ada@example.com", "Reset your password", 3).await;
    let resets = app.inbox.all_to("ada@example.com").into_iter().filter(|m| m.contains("Reset your password")).count();
    assert_eq!(resets, 3, "two in the first hour, one in the next");
}

#[tokio::test]
async fn an_address_in_nfc_and_nfd_is_one_account() {
    let app = TestApp::spawn().await;
    // "café" as one code point, and as "e" with a combining accent: the same domain.
    let first = app.post("/v1/auth/register", json!({ "email": "ada@caf\u{e9}.example", "password": PASSWORD })).await;
    assert_eq!(first.status, 202);
    let mail = app.inbox.wait_for("ada@xn--caf-dma.example", "Confirm your email address", 1).await;
    assert_eq!(app.post("/v1/auth/verify-email", json!({ "token": token_in(&mail) })).await.status, 200);
    let twin = app.post("/v1/auth/register", json!({ "email": "ada@cafe\u{301}.example", "password": PASSWORD })).await;
    assert_eq!(twin.status, 202);
    app.inbox.wait_for("ada@xn--caf-dma.example", "Someone tried to register with your address", 1).await;
    for spelling in ["ADA@CAFE\u{301}.example", "ada@xn--caf-dma.example", "ada@caf\u{e9}.EXAMPLE"] {
        let login = app.login(spelling, PASSWORD).await;
        assert_eq!(login.status, 200, "{spelling:?} signs in to the one account: {}", login.body);
        let me = app.get_as(&login.session_token(), "/v1/me").await.body;
        assert_eq!(me["email"], "ada@xn--caf-dma.example");
    }

    let invisible =
        app.post("/v1/auth/register", json!({ "email": "ada\u{200b}@example.com", "password": PASSWORD })).await;
    assert_eq!((invisible.status, invisible.body["field"].as_str()), (422, Some("email")));
}
