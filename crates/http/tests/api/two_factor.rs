use chrono::Duration;
use mos_auth::Totp;
use serde_json::{json, Value};

use crate::{TestApp, PASSWORD};

/// The secret of an enrollment answer, and the code it shows at the app's clock.
pub(crate) fn code_for(app: &TestApp, enrollment: &Value, offset_steps: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD.decode(enrollment["secret"].as_str().unwrap().as_bytes()).unwrap();
    let totp = Totp::from_bytes(&secret).unwrap();
    totp.code(mos_auth::totp::step_at(mos_auth::Clock::now(&app.clock).timestamp()) + offset_steps)
}

/// Signs in, enrolls, confirms: the session token, the enrollment and the recovery codes.
pub(crate) async fn enrolled(app: &TestApp, email: &str) -> (String, Value, Vec<String>) {
    let token = app.signed_in(email).await;
    let enrollment = app.post_as(&token, "/v1/me/two-factor/setup", json!({})).await;
    assert_eq!(enrollment.status, 200, "{}", enrollment.body);
    let enrollment = enrollment.body;
    let confirmed =
        app.post_as(&token, "/v1/me/two-factor/confirm", json!({ "code": code_for(app, &enrollment, 0) })).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    let codes =
        confirmed.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    (confirmed.session_token(), enrollment, codes)
}

#[tokio::test]
async fn enrollment_gives_a_uri_a_qr_code_and_ten_recovery_codes_and_signs_out_other_sessions() {
    let app = TestApp::spawn().await;
    let other = {
        app.sign_up("ada@example.com").await;
        app.login("ada@example.com", PASSWORD).await.session_token()
    };
    let token = app.login("ada@example.com", PASSWORD).await.session_token();
    let enrollment = app.post_as(&token, "/v1/me/two-factor/setup", json!({})).await.body;
    let uri = enrollment["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Marketing%20OS:ada%40example.com?secret="), "{uri}");
    assert_eq!(enrollment["secret"].as_str().unwrap().len(), 32, "160 bits in base32");
    assert!(enrollment["qr_svg"].as_str().unwrap().contains("<svg"));

    let wrong =
        app.post_as(&token, "/v1/me/two-factor/confirm", json!({ "code": code_for(&app, &enrollment, 5) })).await;
    assert_eq!((wrong.status, wrong.problem_type()), (401, "urn:mos:problem:invalid_code"));
    let confirmed =
        app.post_as(&token, "/v1/me/two-factor/confirm", json!({ "code": code_for(&app, &enrollment, 0) })).await;
    assert_eq!(confirmed.status, 200);
    assert_eq!(confirmed.body["recovery_codes"].as_array().unwrap().len(), 10);
    app.inbox.wait_for("ada@example.com", "Two-factor authentication is on", 1).await;

    assert_eq!(app.get_as(&other, "/v1/me").await.status, 401, "other sessions are signed out");
    assert_eq!(app.get_as(&token, "/v1/me").await.status, 401, "the session of the change is replaced");
    let me = app.get_as(&confirmed.session_token(), "/v1/me").await;
    assert_eq!(me.body["two_factor_enabled"], true);
}

#[tokio::test]
async fn an_enrollment_needs_a_recent_sign_in_and_expires_after_ten_minutes() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    for _ in 0..2 {
        app.clock.advance(Duration::minutes(6));
        app.get_as(&token, "/v1/me").await;
    }
    let stale = app.post_as(&token, "/v1/me/two-factor/setup", json!({})).await;
    assert_eq!((stale.status, stale.problem_type()), (403, "urn:mos:problem:reauthentication_required"));
    let wrong = app.post_as(&token, "/v1/me/reauthenticate", json!({ "password": "not my password!" })).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(app.post_as(&token, "/v1/me/reauthenticate", json!({ "password": PASSWORD })).await.status, 204);

    let enrollment = app.post_as(&token, "/v1/me/two-factor/setup", json!({})).await.body;
    app.clock.advance(Duration::minutes(10) + Duration::seconds(1));
    app.post_as(&token, "/v1/me/reauthenticate", json!({ "password": PASSWORD })).await;
    let late =
        app.post_as(&token, "/v1/me/two-factor/confirm", json!({ "code": code_for(&app, &enrollment, 0) })).await;
    assert_eq!((late.status, late.problem_type()), (409, "urn:mos:problem:conflict"));
}

#[tokio::test]
async fn login_with_two_factor_takes_a_code_once_and_a_recovery_code_once() {
    let app = TestApp::spawn().await;
    let (_, enrollment, codes) = enrolled(&app, "ada@example.com").await;
    app.clock.advance(Duration::seconds(30));

    let step = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(step.body["status"], "two_factor_required", "{}", step.body);
    assert!(step.headers.get("set-cookie").is_none(), "no session before the second factor");
    let challenge = step.body["challenge"].as_str().unwrap().to_owned();
    let code = code_for(&app, &enrollment, 0);
    let done = app.post("/v1/auth/login/two-factor", json!({ "challenge": challenge, "code": code })).await;
    assert_eq!((done.status, done.body["status"].as_str()), (200, Some("authenticated")));

    // The same code again, with a fresh challenge: a replay.
    let challenge = app.login("ada@example.com", PASSWORD).await.body["challenge"].as_str().unwrap().to_owned();
    let replay = app.post("/v1/auth/login/two-factor", json!({ "challenge": challenge, "code": code })).await;
    assert_eq!((replay.status, replay.problem_type()), (401, "urn:mos:problem:code_reused"), "told to wait");
    assert!(replay.body["detail"].as_str().unwrap().contains("wait for the next one"));
    let used_challenge = app
        .post("/v1/auth/login/two-factor", json!({ "challenge": challenge, "recovery_code": codes[0].to_uppercase() }))
        .await;
    assert_eq!(used_challenge.status, 200, "a recovery code, typed in upper case, completes the same challenge");
    let again =
        app.post("/v1/auth/login/two-factor", json!({ "challenge": challenge, "recovery_code": codes[1] })).await;
    assert_eq!(
        (again.status, again.problem_type()),
        (401, "urn:mos:problem:invalid_challenge"),
        "a challenge is spent once"
    );

    let challenge = app.login("ada@example.com", PASSWORD).await.body["challenge"].as_str().unwrap().to_owned();
    let reused =
        app.post("/v1/auth/login/two-factor", json!({ "challenge": challenge, "recovery_code": codes[0] })).await;
    assert_eq!(reused.status, 401, "a recovery code is good once");
}

#[tokio::test]
async fn racing_requests_with_one_code_succeed_once() {
    let app = TestApp::spawn().await;
    let (_, enrollment, _) = enrolled(&app, "ada@example.com").await;
    app.clock.advance(Duration::seconds(30));
    let mut challenges = Vec::new();
    for _ in 0..4 {
        challenges.push(app.login("ada@example.com", PASSWORD).await.body["challenge"].as_str().unwrap().to_owned());
    }
    let code = code_for(&app, &enrollment, 0);
    let attempts =
        challenges.iter().map(|c| app.post("/v1/auth/login/two-factor", json!({ "challenge": c, "code": code })));
    let replies = futures_util::future::join_all(attempts).await;
    assert_eq!(replies.iter().filter(|r| r.status == 200).count(), 1, "RFC 6238 §5.2: accepted once");
    for lost in replies.iter().filter(|r| r.status != 200) {
        assert_eq!(lost.problem_type(), "urn:mos:problem:code_reused");
    }
}

#[tokio::test]
async fn a_challenge_allows_five_attempts_and_expires_after_five_minutes() {
    let app = TestApp::spawn().await;
    let (_, enrollment, _) = enrolled(&app, "ada@example.com").await;
    app.clock.advance(Duration::seconds(30));
    let challenge = app.login("ada@example.com", PASSWORD).await.body["challenge"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        let wrong = app.post("/v1/auth/login/two-factor", json!({ "challenge": challenge, "code": "000000" })).await;
        assert_eq!(wrong.problem_type(), "urn:mos:problem:invalid_code");
    }
    let sixth = app
        .post("/v1/auth/login/two-factor", json!({ "challenge": challenge, "code": code_for(&app, &enrollment, 0) }))
        .await;
    assert_eq!(sixth.problem_type(), "urn:mos:problem:invalid_challenge", "out of attempts, even with the right code");

    app.clock.advance(Duration::seconds(30));
    let challenge = app.login("ada@example.com", PASSWORD).await.body["challenge"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::minutes(5) + Duration::seconds(1));
    let late = app
        .post("/v1/auth/login/two-factor", json!({ "challenge": challenge, "code": code_for(&app, &enrollment, 0) }))
        .await;
    assert_eq!(late.problem_type(), "urn:mos:problem:invalid_challenge");
}

#[tokio::test]
async fn a_code_from_an_independent_implementation_is_accepted() {
    let app = TestApp::spawn().await;
    let (_, enrollment, _) = enrolled(&app, "ada@example.com").await;
    app.clock.advance(Duration::seconds(30));
    let at = mos_auth::Clock::now(&app.clock).timestamp();
    let script = "import pyotp, sys; print(pyotp.TOTP(sys.argv[1]).at(int(sys.argv[2])))";
    let output = std::process::Command::new("python3")
        .args(["-c", script, enrollment["secret"].as_str().unwrap(), &at.to_string()])
        .output()
        .expect("python3 to run pyotp");
    assert!(
        output.status.success(),
        "pyotp is needed for this test (pip install pyotp): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let code = String::from_utf8(output.stdout).unwrap().trim().to_owned();

    let challenge = app.login("ada@example.com", PASSWORD).await.body["challenge"].as_str().unwrap().to_owned();
    let done = app.post("/v1/auth/login/two-factor", json!({ "challenge": challenge, "code": code })).await;
    assert_eq!(done.status, 200, "pyotp's code {code} was refused: {}", done.body);
}

#[tokio::test]
async fn disabling_needs_the_password_and_a_current_code() {
    let app = TestApp::spawn().await;
    let (token, enrollment, _) = enrolled(&app, "ada@example.com").await;
    app.clock.advance(Duration::seconds(30));
    let no_code = app.post_as(&token, "/v1/me/two-factor/disable", json!({ "password": PASSWORD })).await;
    assert_eq!(no_code.problem_type(), "urn:mos:problem:invalid_code");
    let wrong_password = app
        .post_as(
            &token,
            "/v1/me/two-factor/disable",
            json!({ "password": "not my password!", "code": code_for(&app, &enrollment, 0) }),
        )
        .await;
    assert_eq!(wrong_password.problem_type(), "urn:mos:problem:invalid_credentials");
    let disabled = app
        .post_as(
            &token,
            "/v1/me/two-factor/disable",
            json!({ "password": PASSWORD, "code": code_for(&app, &enrollment, 0) }),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    app.inbox.wait_for("ada@example.com", "Two-factor authentication is off", 1).await;
    assert_eq!(app.login("ada@example.com", PASSWORD).await.body["status"], "authenticated");
}

#[tokio::test]
async fn sign_in_reauthentication_org_creation_and_disabling_with_two_factor_each_finish_on_one_connection() {
    // With one connection, a request that asked for a second while holding the first would wait
    // for itself until the pool gave up, and answer 503.
    let app = TestApp::spawn_with_pool_size(1).await;
    let (token, enrollment, _) = enrolled(&app, "ada@example.com").await;
    app.clock.advance(Duration::seconds(30));

    let challenge = app.login("ada@example.com", PASSWORD).await.body["challenge"].as_str().unwrap().to_owned();
    let wrong = app.post("/v1/auth/login/two-factor", json!({ "challenge": challenge, "code": "000000" })).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let code = code_for(&app, &enrollment, 0);
    let signed_in = app.post("/v1/auth/login/two-factor", json!({ "challenge": challenge, "code": code })).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);

    app.clock.advance(Duration::seconds(30));
    let proof = json!({ "password": PASSWORD, "code": code_for(&app, &enrollment, 0) });
    assert_eq!(app.post_as(&token, "/v1/me/reauthenticate", proof).await.status, 204);
    let created = app.post_as(&token, "/v1/orgs", json!({ "slug": "acme", "name": "Acme" })).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(app.get_as(&token, "/v1/orgs/acme/members").await.status, 200);

    app.clock.advance(Duration::seconds(30));
    let proof = json!({ "password": PASSWORD, "code": code_for(&app, &enrollment, 0) });
    let disabled = app.post_as(&token, "/v1/me/two-factor/disable", proof).await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
}
