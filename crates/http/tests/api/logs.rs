//! What the server writes to its log while secrets pass through it, captured at the most
//! verbose level: no password, emailed token, unsubscribe link, session or device token, two-factor secret, code
//! or challenge, or recovery code ever appears in it.

use std::cell::Cell;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::Duration;
use serde_json::json;

use crate::two_factor::{code_for, enrolled};
use crate::{token_in, TestApp, PASSWORD};

/// The log as the server wrote it, for the tracing subscriber of one test's thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
}

/// From now on, everything logged on this thread, at every level, goes to the returned log.
/// The subscriber is the process's own, asked at every event, so that no callsite first met on
/// another thread is cached as unwanted; other threads' events pass it unrecorded.
fn capture_this_thread() -> Captured {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;
    static LOG: OnceLock<Captured> = OnceLock::new();
    let log = LOG
        .get_or_init(|| {
            let log = Captured::default();
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(log.clone())
                .with_ansi(false)
                // Asked at every event, never cached per callsite: the answer is the thread's.
                .with_filter(
                    tracing_subscriber::filter::dynamic_filter_fn(|_, _| CAPTURING.with(Cell::get))
                        .with_callsite_filter(|_| tracing::subscriber::Interest::sometimes()),
                );
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
                .expect("no other subscriber in the API tests");
            log
        })
        .clone();
    CAPTURING.with(|c| c.set(true));
    log
}

#[tokio::test]
async fn no_password_token_or_second_factor_secret_reaches_the_log() {
    // The test's runtime runs on this thread alone, the server's tasks included (password
    // hashing aside, on threads of its own that log nothing of the password).
    let log = capture_this_thread();
    let app = TestApp::spawn().await;
    let mut secrets: Vec<String> = vec![PASSWORD.to_owned()];

    // Registration, the emailed link, sign-in with a wrong and the right password.
    app.post("/v1/auth/register", json!({ "email": "ada@example.com", "password": PASSWORD })).await;
    let verify = token_in(&app.inbox.wait_for("ada@example.com", "Confirm your email address", 1).await);
    assert_eq!(app.post("/v1/auth/verify-email", json!({ "token": verify })).await.status, 200);
    let wrong = "wrong horse battery staple";
    assert_eq!(app.login("ada@example.com", wrong).await.status, 401);
    let signed_in = app.login("ada@example.com", PASSWORD).await;
    secrets.extend([
        verify,
        wrong.to_owned(),
        signed_in.session_token(),
        signed_in.body["device_token"].as_str().unwrap().to_owned(),
    ]);

    // Two-factor: the enrollment's secret, its codes and recovery codes, a challenge.
    let (session, enrollment, recovery) = enrolled(&app, "grace@example.com").await;
    app.clock.advance(Duration::seconds(30));
    let challenge = app.login("grace@example.com", PASSWORD).await.body["challenge"].as_str().unwrap().to_owned();
    let code = code_for(&app, &enrollment, 0);
    let done = app.post("/v1/auth/login/two-factor", json!({ "challenge": challenge, "code": code })).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let challenge_2 = app.login("grace@example.com", PASSWORD).await.body["challenge"].as_str().unwrap().to_owned();
    let by_recovery =
        app.post("/v1/auth/login/two-factor", json!({ "challenge": challenge_2, "recovery_code": recovery[0] })).await;
    assert_eq!(by_recovery.status, 200, "{}", by_recovery.body);
    secrets.extend([session, enrollment["secret"].as_str().unwrap().to_owned(), code, challenge, challenge_2]);
    secrets.extend([done.session_token(), by_recovery.session_token()]);
    secrets.extend(recovery);

    // A password reset through its emailed link.
    app.post("/v1/auth/password-reset", json!({ "email": "ada@example.com" })).await;
    let reset = token_in(&app.inbox.wait_for("ada@example.com", "Reset your password", 1).await);
    let new_password = "a brand new passphrase";
    let confirmed =
        app.post("/v1/auth/password-reset/confirm", json!({ "token": reset, "new_password": new_password })).await;
    assert_eq!(confirmed.status, 204, "{}", confirmed.body);
    secrets.extend([reset, new_password.to_owned()]);

    // A passkey added and signed in with.
    let token = app.login("ada@example.com", new_password).await.session_token();
    let (mut soft, session) = app.add_passkey(&token, "Phone").await;
    let by_passkey = app.passkey_sign_in(&mut soft, &app.honest(), 1).await;
    assert_eq!(by_passkey.status, 200, "{}", by_passkey.body);
    secrets.extend([token, session, by_passkey.session_token()]);

    // A message's unsubscribe link: its page opened, its one-click unsubscribe.
    let subscribed = crate::unsubscribe::subscribed(&app).await;
    let link = format!("{}{}", app.base, subscribed.link);
    assert_eq!(app.send(app.http.get(&link)).await.status, 200);
    let one_click = app.http.post(&link).form(&[("List-Unsubscribe", "One-Click")]);
    assert_eq!(app.send(one_click).await.status, 200);
    secrets.push(subscribed.link.trim_start_matches("/u/").to_owned());

    let log = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    // The capture worked: the requests and the server's own events are there.
    for expected in ["/v1/auth/login", "/v1/auth/password-reset/confirm", "/v1/me/passkeys", "/u/{token}"] {
        assert!(log.contains(expected), "{expected} is not in the captured log");
    }
    for secret in &secrets {
        assert!(secret.len() >= 6, "{secret:?} is too short to search for");
        assert!(!log.contains(secret.as_str()), "the log holds {secret:?}:\n{log}");
    }
}

#[tokio::test]
async fn no_dkim_private_key_reaches_the_log() {
    use secrecy::ExposeSecret;
    let log = capture_this_thread();
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let body = json!({ "from_name": "Acme", "from_address": "news@acme.example", "postal_address": "1 Main St",
                       "dkim_domain": "acme.example", "selector": "s1" });
    let created = app.post_as(&org.admin, "/v1/orgs/acme/senders", body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let sender = mos_domain::SenderId::parse(&id).unwrap();
    let org_id = crate::erasure::org_id(&app, "acme").await;
    let mut pems = Vec::new();
    for selector in ["s2", "s3"] {
        let mut tx = app.pool.begin_tenant(org_id, None).await.unwrap();
        let key = mos_db::senders::signing_key(&mut tx, &app.sealer, sender).await.unwrap().unwrap();
        pems.push(key.private_key_pem.expose_secret().to_owned());
        drop(tx);
        let path = format!("/v1/orgs/acme/senders/{id}/keys");
        assert_eq!(app.post_as(&org.admin, &path, json!({ "selector": selector })).await.status, 201);
    }
    // A refused rotation and a retirement pass through the error and audit paths too.
    let path = format!("/v1/orgs/acme/senders/{id}/keys");
    assert_eq!(app.post_as(&org.admin, &path, json!({ "selector": "s1" })).await.status, 409);

    let log = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    assert!(log.contains("/senders/"), "the capture worked");
    assert!(!log.contains("PRIVATE KEY"), "a PEM header is in the log:\n{log}");
    for pem in &pems {
        // Every full line (64 characters); the last, short one could match anything by chance.
        for line in pem.lines().filter(|l| l.len() == 64) {
            assert!(!log.contains(line), "a line of a private key is in the log");
        }
    }
}
