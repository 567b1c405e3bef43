use futures_util::future::join_all;
use serde_json::json;

use crate::{TestApp, PASSWORD};

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    let wrong = app.login("ada@example.com", "not the password at all").await;
    let unknown = app.login("nobody@example.com", "not the password at all").await;
    assert_eq!((wrong.status, &wrong.body), (unknown.status, &unknown.body));
    assert_eq!(wrong.problem_type(), "urn:mos:problem:invalid_credentials");
}

#[tokio::test]
async fn an_unknown_email_costs_the_same_password_check_as_a_wrong_password() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    let mut work = Vec::new();
    for email in ["ada@example.com", "nobody@example.com"] {
        let before = app.hasher.checked_so_far();
        assert_eq!(app.login(email, "not the password at all").await.status, 401, "{email}");
        let after = app.hasher.checked_so_far();
        work.push((after.0 - before.0, after.1 - before.1));
    }
    let (wrong, unknown) = (work[0], work[1]);
    assert_eq!(wrong.0, 1, "a wrong password is checked once");
    assert_eq!(unknown, wrong, "an unknown address: one check at the same memory and passes");
}

#[tokio::test]
async fn an_unverified_account_cannot_sign_in_and_says_so_only_to_its_password() {
    let app = TestApp::spawn().await;
    app.post("/v1/auth/register", json!({ "email": "ada@example.com", "password": PASSWORD })).await;
    assert_eq!(
        app.login("ada@example.com", "a wrong password!").await.problem_type(),
        "urn:mos:problem:invalid_credentials"
    );
    let right = app.login("ada@example.com", PASSWORD).await;
    assert_eq!((right.status, right.problem_type()), (403, "urn:mos:problem:email_not_verified"));
}

#[tokio::test]
async fn repeated_failures_slow_down_with_retry_after_and_the_owner_is_told() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    for _ in 0..6 {
        assert_eq!(app.login("ada@example.com", "a wrong password!").await.status, 401);
    }
    let limited = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(
        (limited.status, limited.problem_type()),
        (429, "urn:mos:problem:rate_limited"),
        "even the right password waits"
    );
    assert_eq!(limited.headers["retry-after"], "1");
    app.inbox.wait_for("ada@example.com", "Sign-in attempts to your account were blocked", 1).await;

    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status, 200);
    // A success starts the count over.
    assert_eq!(app.login("ada@example.com", "a wrong password!").await.status, 401);
}

#[tokio::test]
async fn parallel_guesses_cannot_slip_past_the_limit() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    let guesses = (0..24).map(|i| app.login("ada@example.com", if i == 23 { PASSWORD } else { "a wrong password!" }));
    let replies = join_all(guesses).await;
    let judged = replies.iter().filter(|r| r.status != 429).count();
    assert!(judged <= 6, "at most the five free failures and the one that locks: {judged} judged");
    assert!(replies.iter().all(|r| [200, 401, 429].contains(&r.status)));
}

#[tokio::test]
async fn one_client_address_guessing_across_accounts_is_limited_too() {
    let app = TestApp::spawn().await;
    let mut replies = Vec::new();
    for i in 0..22 {
        replies.push(app.login(&format!("user{i}@example.com"), "a wrong password!").await);
    }
    assert!(replies[..20].iter().all(|r| r.status == 401));
    assert_eq!(replies[21].status, 429);
}

#[tokio::test]
async fn sign_in_events_are_audited_with_source_and_without_secrets() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    app.login("ada@example.com", "a wrong password!").await;
    let request = app
        .http
        .post(format!("{}/v1/auth/login", app.base))
        .header("user-agent", "audit-test/1.0")
        .header("x-request-id", "req-audit-1")
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({ "email": "ada@example.com", "password": PASSWORD }));
    let token = app.send(request).await.session_token();

    let events = app.get_as(&token, "/v1/me/events").await.body;
    let actions: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "auth.login.succeeded",
            "auth.login.failed",
            "auth.verification.used",
            "auth.verification.sent",
            "auth.registered"
        ]
    );
    let latest = &events[0];
    assert_eq!((latest["ip"].as_str(), latest["user_agent"].as_str()), (Some("127.0.0.1"), Some("audit-test/1.0")));
    assert!(uuid::Uuid::parse_str(latest["request_id"].as_str().unwrap()).is_ok(), "our own id: {latest}");
    assert_eq!(latest["metadata"]["client_request_id"], "req-audit-1", "the client's, apart");
    assert_eq!(events[1]["outcome"], "failure");

    // Nothing secret anywhere in the platform log, read as the superuser.
    let mut su = app.db.superuser().await;
    let everything: Vec<String> = sqlx::query_scalar("select row_to_json(l)::text from app.platform_audit_logs l")
        .fetch_all(&mut su)
        .await
        .unwrap();
    for row in &everything {
        assert!(!row.contains(PASSWORD) && !row.contains("a wrong password") && !row.contains(&token), "{row}");
    }
    assert_eq!(everything.len(), 5, "{everything:#?}");
}

#[tokio::test]
async fn a_hash_made_with_weaker_parameters_is_replaced_at_the_next_login() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    let stored = |db: &mos_db::testing::TestDb| {
        let options = db.superuser_options();
        async move {
            let mut su = sqlx::ConnectOptions::connect(&options).await.unwrap();
            sqlx::query_scalar::<_, String>("select password_hash from app.users").fetch_one(&mut su).await.unwrap()
        }
    };
    assert!(stored(&app.db).await.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));

    // The next release raises the cost; the same database, a new server.
    let upgraded = TestApp::spawn_on(app.db, mos_auth::PasswordHasher::with_params(2, 19 * 1024, 3), |_| {}).await;
    assert_eq!(upgraded.login("ada@example.com", PASSWORD).await.status, 200);
    let rehashed = stored(&upgraded.db).await;
    assert!(rehashed.starts_with("$argon2id$v=19$m=19456,t=3,p=1$"), "{rehashed}");
    assert_eq!(upgraded.login("ada@example.com", PASSWORD).await.status, 200, "the new hash verifies");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_address_is_audited_and_limited() {
    let trusted = vec!["127.0.0.1/32".parse().unwrap()];
    let app = TestApp::spawn_on(mos_db::testing::TestDb::new().await, mos_auth::PasswordHasher::new(4), |s| {
        s.trusted_proxies = trusted
    })
    .await;
    app.sign_up("ada@example.com").await;
    let via = |client: &'static str| {
        app.http
            .post(format!("{}/v1/auth/login", app.base))
            .header("x-forwarded-for", format!("6.6.6.6, {client}"))
            .json(&json!({ "email": "ada@example.com", "password": PASSWORD }))
    };
    let token = app.send(via("203.0.113.9")).await.session_token();
    let events = app.get_as(&token, "/v1/me/events").await.body;
    assert_eq!(events[0]["ip"], "203.0.113.9", "the proxy's client, not the address the client claimed");

    // The per-address limit counts the forwarded client, so one client's guesses do not lock
    // out everyone behind the same proxy.
    for i in 0..21 {
        let guess = app.http.post(format!("{}/v1/auth/login", app.base)).header("x-forwarded-for", "198.51.100.7");
        app.send(guess.json(&json!({ "email": format!("u{i}@example.com"), "password": "a wrong password!" }))).await;
    }
    let blocked = app.http.post(format!("{}/v1/auth/login", app.base)).header("x-forwarded-for", "198.51.100.7");
    assert_eq!(
        app.send(blocked.json(&json!({ "email": "x@example.com", "password": "a wrong password!" }))).await.status,
        429
    );
    assert_eq!(app.send(via("203.0.113.10")).await.status, 200, "another client behind the proxy is unaffected");
}

#[tokio::test]
async fn an_office_behind_one_address_can_sign_in_all_day() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    app.login("nobody@example.com", "a wrong password!").await;
    for round in 0..30 {
        let reply = app.login("ada@example.com", PASSWORD).await;
        assert_eq!(reply.status, 200, "sign-in {round}: {}", reply.body);
    }
    // Failures still count: the one above and twenty more reach the limit.
    let strangers: Vec<String> = (0..21).map(|i| format!("user{i}@example.com")).collect();
    let replies = join_all(strangers.iter().map(|email| app.login(email, "a wrong password!"))).await;
    let replies: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(replies.contains(&429), "{replies:?}");
}

#[tokio::test]
async fn failures_from_elsewhere_never_slow_the_owners_known_device() {
    let db = mos_db::testing::TestDb::new().await;
    let app = TestApp::spawn_on(db, mos_auth::PasswordHasher::new(4), |s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let from = |ip: String, body: serde_json::Value| {
        app.send(app.http.post(format!("{}/v1/auth/login", app.base)).header("x-forwarded-for", ip).json(&body))
    };
    let office = || "198.51.100.7".to_owned();
    app.sign_up("ada@example.com").await;
    app.sign_up("mallory@example.com").await;
    let first = from(office(), json!({ "email": "ada@example.com", "password": PASSWORD })).await;
    let device = first.body["device_token"].as_str().unwrap().to_owned();
    let cookie = first
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-mos_device="));
    assert!(cookie.is_some_and(|c| c.contains("HttpOnly") && c.contains("Secure")), "the browser keeps it as a cookie");
    let mallorys = app.login("mallory@example.com", PASSWORD).await.body["device_token"].as_str().unwrap().to_owned();

    // Guessing from a new address each time, each guess as soon as allowed.
    let mut limited = 0;
    for i in 0..60 {
        let guess =
            from(format!("203.0.113.{i}"), json!({ "email": "ada@example.com", "password": "a wrong password!" }))
                .await;
        if guess.status == 429 {
            limited += 1;
            let wait: i64 = guess.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(wait <= 900, "delays stop at 15 minutes, nothing locks: {wait}");
            app.clock.advance(chrono::Duration::seconds(wait));
        }
    }
    assert!(limited > 0, "the guesser is slowed down");
    let unknown = from(office(), json!({ "email": "ada@example.com", "password": PASSWORD })).await;
    assert_eq!(unknown.status, 429, "a client without a device token waits like the guesser");
    let wrong_account =
        from(office(), json!({ "email": "ada@example.com", "password": PASSWORD, "device_token": mallorys })).await;
    assert_eq!(wrong_account.status, 429, "another account's device token counts for nothing");

    let with_token = |password: &str| {
        from(office(), json!({ "email": "ada@example.com", "password": password, "device_token": device }))
    };
    assert_eq!(with_token(PASSWORD).await.status, 200, "the owner's device signs in at once");
    let by_cookie = app.send(
        app.http
            .post(format!("{}/v1/auth/login", app.base))
            .header("x-forwarded-for", office())
            .header("cookie", format!("__Host-mos_device={device}"))
            .json(&json!({ "email": "ada@example.com", "password": PASSWORD })),
    );
    assert_eq!(by_cookie.await.status, 200, "a browser's cookie works the same");

    // The device's own mistakes count against the device alone.
    for _ in 0..6 {
        assert_eq!(with_token("a wrong password!").await.status, 401);
    }
    assert_eq!(with_token(PASSWORD).await.status, 429, "after its own failures the device waits too");
}

#[tokio::test]
async fn a_sign_in_with_a_device_token_does_not_take_back_the_addresss_failures() {
    let app = TestApp::spawn().await;
    app.sign_up("mallory@example.com").await;
    let device = app.login("mallory@example.com", PASSWORD).await.body["device_token"].as_str().unwrap().to_owned();
    for i in 0..20 {
        assert_eq!(app.login(&format!("user{i}@example.com"), "a wrong password!").await.status, 401);
    }
    // A device token's sign-in is not counted against the address, so it takes nothing back.
    let own = app
        .post("/v1/auth/login", json!({ "email": "mallory@example.com", "password": PASSWORD, "device_token": device }))
        .await;
    assert_eq!(own.status, 200);
    assert_eq!(app.login("user20@example.com", "a wrong password!").await.status, 401, "the 21st failure");
    assert_eq!(app.login("user21@example.com", "a wrong password!").await.status, 429, "then the delay");
}
