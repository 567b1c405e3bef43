//! A copy of the database is no key to the accounts in it. Each test reads, as the superuser
//! (the thief with a backup), what is stored for every secret a user was handed — sessions,
//! email verification, password reset, invitation, sign-in challenge, passkey enrollment and
//! sign-up confirmation tokens, recovery codes, TOTP seeds — and shows that what is stored
//! differs from what the user got, is refused by the API when presented as the secret, and that
//! no stored value in any table holds a secret in any of its spellings.

use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD, HEXLOWER};
use mos_auth::Totp;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{token_in, Reply, TestApp, PASSWORD};

/// The one value of the bytea column in the query's answer.
async fn stored(app: &TestApp, sql: &str) -> Vec<u8> {
    let rows = stored_all(app, sql).await;
    assert_eq!(rows.len(), 1, "{sql}");
    rows.into_iter().next().unwrap()
}

async fn stored_all(app: &TestApp, sql: &str) -> Vec<Vec<u8>> {
    sqlx::query_scalar(sql).fetch_all(&mut app.db.superuser().await).await.unwrap()
}

/// The ways a stolen value can be typed where a token goes.
fn spellings(value: &[u8]) -> [String; 2] {
    [BASE64URL_NOPAD.encode(value), HEXLOWER.encode(value)]
}

/// The bytes a 43-character token stands for.
fn raw(token: &str) -> Vec<u8> {
    BASE64URL_NOPAD.decode(token.as_bytes()).unwrap()
}

/// The stored form of a token is the SHA-256 of its bytes: not the token, and not a token.
fn assert_hash_of(stored: &[u8], token: &str, what: &str) {
    assert_ne!(stored, raw(token).as_slice(), "{what} is stored as it was handed out");
    assert_eq!(stored, Sha256::digest(raw(token)).as_slice(), "{what} is stored as the hash of what was handed out");
}

/// Every row of every table of the application, as text (bytea as `\x` and hex).
pub(crate) async fn everything_stored(app: &TestApp) -> String {
    let mut su = app.db.superuser().await;
    let tables: Vec<String> =
        sqlx::query_scalar("select tablename::text from pg_tables where schemaname = 'app' order by 1")
            .fetch_all(&mut su)
            .await
            .unwrap();
    assert!(tables.len() >= 20, "{tables:?}");
    let mut dump = String::new();
    for table in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("select t::text from app.{table} t")).fetch_all(&mut su).await.unwrap();
        dump.push_str(&rows.join("\n"));
    }
    dump.to_lowercase()
}

/// Neither the secret's text nor its bytes (in hex, as bytea shows them) is stored anywhere.
fn assert_nowhere(dump: &str, secret: &str, bytes: &[u8], what: &str) {
    assert!(!dump.contains(&secret.to_lowercase()), "{what} is stored as text");
    assert!(!dump.contains(&HEXLOWER.encode(bytes)), "{what}'s bytes are stored");
}

async fn verify_email(app: &TestApp, token: &str) -> Reply {
    app.post("/v1/auth/verify-email", json!({ "token": token })).await
}

#[tokio::test]
async fn stored_sessions_and_emailed_tokens_are_hashes_that_the_api_refuses_as_tokens() {
    let app = TestApp::spawn().await;
    let registered = app.post("/v1/auth/register", json!({ "email": "ada@example.com", "password": PASSWORD })).await;
    assert_eq!(registered.status, 202);

    // Email verification.
    let verification = token_in(&app.inbox.wait_for("ada@example.com", "Confirm your email address", 1).await);
    let kept = stored(&app, "select token_hash from app.email_verification_tokens").await;
    assert_hash_of(&kept, &verification, "the verification token");
    for stolen in spellings(&kept) {
        let reply = verify_email(&app, &stolen).await;
        assert_eq!((reply.status, reply.problem_type()), (400, "urn:mos:problem:invalid_token"), "{stolen}");
    }
    assert_eq!(verify_email(&app, &verification).await.status, 200, "the real one still works");

    // The session.
    let session = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(session.status, 200, "{}", session.body);
    let device_token = session.body["device_token"].as_str().unwrap().to_owned();
    let session = session.session_token();
    let kept = stored(&app, "select token_hash from app.sessions").await;
    assert_hash_of(&kept, &session, "the session token");
    for stolen in spellings(&kept) {
        assert_eq!(app.get_as(&stolen, "/v1/me").await.status, 401, "{stolen} as a bearer token");
        let cookie =
            app.http.get(format!("{}/v1/me", app.base)).header("cookie", format!("__Host-mos_session={stolen}"));
        assert_eq!(app.send(cookie).await.status, 401, "{stolen} as the cookie");
    }
    assert_eq!(app.get_as(&session, "/v1/me").await.status, 200);

    // An invitation.
    let created = app.post_as(&session, "/v1/orgs", json!({ "slug": "acme", "name": "Acme Health" })).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let invitation = token_in(&app.invite(&session, "acme", "grace@example.com", "VIEWER").await);
    let kept = stored(&app, "select token_hash from app.invitations").await;
    assert_hash_of(&kept, &invitation, "the invitation token");
    let grace = app.signed_in("grace@example.com").await;
    for stolen in spellings(&kept) {
        let reply = app.post_as(&grace, "/v1/invitations/accept", json!({ "token": stolen })).await;
        assert_eq!((reply.status, reply.problem_type()), (400, "urn:mos:problem:invalid_token"), "{stolen}");
    }
    assert_eq!(app.post_as(&grace, "/v1/invitations/accept", json!({ "token": invitation })).await.status, 200);

    // A password reset.
    let asked = app.post("/v1/auth/password-reset", json!({ "email": "ada@example.com" })).await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    let reset = token_in(&app.inbox.wait_for("ada@example.com", "Reset your password", 1).await);
    let kept = stored(&app, "select token_hash from app.password_reset_tokens").await;
    assert_hash_of(&kept, &reset, "the reset token");
    for stolen in spellings(&kept) {
        let body = json!({ "token": stolen, "new_password": "a thief's own passphrase" });
        let reply = app.post("/v1/auth/password-reset/confirm", body).await;
        assert_eq!((reply.status, reply.problem_type()), (400, "urn:mos:problem:invalid_token"), "{stolen}");
    }
    assert_eq!(app.login("ada@example.com", "a thief's own passphrase").await.status, 401);

    // A failure from the known device puts the device's name in the counters.
    let body = json!({ "email": "ada@example.com", "password": "not my password!", "device_token": device_token });
    assert_eq!(app.post("/v1/auth/login", body).await.status, 401);

    let dump = everything_stored(&app).await;
    for (what, secret) in [
        ("the verification token", &verification),
        ("the session token", &session),
        ("the invitation token", &invitation),
        ("the reset token", &reset),
    ] {
        assert_nowhere(&dump, secret, &raw(secret), what);
    }
    // A device token is not stored at all: only the nonce that names the device is, in the
    // counters of failed sign-ins; its signature is what makes it good, and that is nowhere.
    let (_, signature) = device_token.split_once('.').unwrap();
    let signature_bytes = BASE64URL_NOPAD.decode(signature.as_bytes()).unwrap();
    assert_nowhere(&dump, &device_token, &signature_bytes, "the device token");
    assert_nowhere(&dump, signature, &signature_bytes, "the device token's signature");

    let reply = app
        .post("/v1/auth/password-reset/confirm", json!({ "token": reset, "new_password": "a brand new passphrase" }))
        .await;
    assert_eq!(reply.status, 204, "the real reset token was not spent by the attempts: {}", reply.body);
}

/// The codes an authenticator shows for `secret` now and in the next two steps.
fn codes(app: &TestApp, secret: &[u8]) -> Vec<String> {
    let totp = Totp::from_bytes(secret).unwrap();
    let now = mos_auth::totp::step_at(mos_auth::Clock::now(&app.clock).timestamp());
    (0..3).map(|step| totp.code(now + step)).collect()
}

/// A stored TOTP seed is sealed: the seed is in no 20-byte window of what is stored, and no
/// window of it, taken as a seed, shows the codes that the real one shows.
fn assert_sealed(app: &TestApp, kept: &[u8], secret: &[u8], what: &str) {
    assert!(kept.len() > secret.len(), "{what}: {} bytes", kept.len());
    let real = codes(app, secret);
    for window in kept.windows(secret.len()) {
        assert_ne!(window, secret, "{what} holds the seed in the clear");
        assert_ne!(codes(app, window), real, "{what}, read as a seed, shows the real codes");
    }
}

#[tokio::test]
async fn stored_totp_seeds_are_sealed_and_recovery_codes_and_challenges_are_hashes_that_the_api_refuses() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    let enrollment: Value = app.post_as(&token, "/v1/me/two-factor/setup", json!({})).await.body;
    let text = enrollment["secret"].as_str().unwrap().to_owned();
    let secret = BASE32_NOPAD.decode(text.as_bytes()).unwrap();

    let pending = stored(&app, "select secret_encrypted from app.totp_setups").await;
    assert_sealed(&app, &pending, &secret, "the pending enrollment");
    // The code a thief computes from the stored value, where it differs from the real one (it
    // does but once in a million), does not confirm the enrollment.
    let real = codes(&app, &secret)[0].clone();
    let forged = codes(&app, &pending[12..32])[0].clone();
    if forged != real {
        let reply = app.post_as(&token, "/v1/me/two-factor/confirm", json!({ "code": forged })).await;
        assert_eq!((reply.status, reply.problem_type()), (401, "urn:mos:problem:invalid_code"));
    }
    let confirmed = app.post_as(&token, "/v1/me/two-factor/confirm", json!({ "code": real })).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    let recovery: Vec<String> =
        confirmed.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();

    let kept =
        stored(&app, "select totp_secret_encrypted from app.users where totp_secret_encrypted is not null").await;
    assert_sealed(&app, &kept, &secret, "the account's seed");

    // Recovery codes: SHA-256 of the code's 15 bytes, which is neither the code nor one.
    let mut hashes = stored_all(&app, "select code_hash from app.recovery_codes").await;
    let code_bytes = |code: &str| BASE32_NOPAD.decode(code.replace('-', "").to_uppercase().as_bytes()).unwrap();
    let mut expected: Vec<Vec<u8>> = recovery.iter().map(|c| Sha256::digest(code_bytes(c)).to_vec()).collect();
    hashes.sort();
    expected.sort();
    assert_eq!(hashes, expected, "each code is stored as the hash of its bytes");
    assert!(recovery.iter().all(|c| !hashes.contains(&code_bytes(c))));

    // Sign-in challenges too; and none of the stolen values completes the second step.
    app.clock.advance(chrono::Duration::seconds(30));
    let step = app.login("ada@example.com", PASSWORD).await;
    let challenge = step.body["challenge"].as_str().unwrap().to_owned();
    let kept_challenge = stored(&app, "select token_hash from app.login_challenges").await;
    assert_hash_of(&kept_challenge, &challenge, "the sign-in challenge");
    for stolen in spellings(&kept_challenge) {
        let reply =
            app.post("/v1/auth/login/two-factor", json!({ "challenge": stolen, "recovery_code": recovery[0] })).await;
        assert_eq!((reply.status, reply.problem_type()), (401, "urn:mos:problem:invalid_challenge"), "{stolen}");
    }
    // A stored recovery-code hash, typed as a code: whole in hex, and cut to a code's 15 bytes
    // in a code's own spelling. Four tries: a challenge takes five.
    let as_code = |bytes: &[u8]| {
        let text = BASE32_NOPAD.encode(&bytes[..15]).to_lowercase();
        text.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("-")
    };
    for stolen in [HEXLOWER.encode(&hashes[0]), as_code(&hashes[0]), as_code(&hashes[1]), as_code(&hashes[2])] {
        let reply =
            app.post("/v1/auth/login/two-factor", json!({ "challenge": challenge, "recovery_code": stolen })).await;
        assert_eq!((reply.status, reply.problem_type()), (401, "urn:mos:problem:invalid_code"), "{stolen}");
    }
    let done =
        app.post("/v1/auth/login/two-factor", json!({ "challenge": challenge, "recovery_code": recovery[0] })).await;
    assert_eq!(done.status, 200, "the real code still works: {}", done.body);

    let dump = everything_stored(&app).await;
    assert_nowhere(&dump, &text, &secret, "the TOTP seed");
    for code in &recovery {
        assert_nowhere(&dump, code, &code_bytes(code), "a recovery code");
        assert_nowhere(&dump, &code.replace('-', ""), &code_bytes(code), "a recovery code");
    }
    assert_nowhere(&dump, &challenge, &raw(&challenge), "the sign-in challenge");
}

#[tokio::test]
async fn a_stored_passkey_enrollment_link_is_a_hash_that_the_api_refuses_as_a_link() {
    let app = TestApp::spawn().await;
    let (org, _) = crate::passkeys::strict_org(&app).await;
    let link = app.enrollment_link(&org.creator, "creator@acme.example", 1).await;
    let kept = stored(&app, "select token_hash from app.passkey_enrollments").await;
    assert_hash_of(&kept, &link, "the enrollment link's token");
    for stolen in spellings(&kept) {
        let reply = app.post_as(&org.creator, "/v1/me/passkeys/options", json!({ "enrollment": stolen })).await;
        assert_eq!((reply.status, reply.problem_type()), (400, "urn:mos:problem:invalid_token"), "{stolen}");
    }
    let options = app.post_as(&org.creator, "/v1/me/passkeys/options", json!({ "enrollment": link })).await;
    assert_eq!(options.status, 200, "the real link still works: {}", options.body);
    assert_nowhere(&everything_stored(&app).await, &link, &raw(&link), "the enrollment link's token");
}

#[tokio::test]
async fn a_stored_signup_confirmation_link_is_a_hash_that_the_api_refuses_as_a_link() {
    let app = TestApp::spawn().await;
    let form = crate::signup::form_of(&app, "acme", "Monthly newsletter").await;
    let body = json!({ "purpose": form.purpose.to_string(), "email": "ada@patients.example",
                       "notice_sha256": form.notice, "consent": true });
    assert_eq!(app.post("/v1/public/orgs/acme/signup", body).await.status, 202);
    let link = token_in(&app.inbox.wait_for("ada@patients.example", "Confirm your subscription", 1).await);
    let kept = stored(&app, "select token_hash from app.signup_confirmations").await;
    assert_hash_of(&kept, &link, "the sign-up confirmation token");
    for stolen in spellings(&kept) {
        let reply = app.post("/v1/public/orgs/acme/signup/confirm", json!({ "token": stolen })).await;
        assert_eq!((reply.status, reply.problem_type()), (400, "urn:mos:problem:invalid_token"), "{stolen}");
    }
    let confirmed = app.post("/v1/public/orgs/acme/signup/confirm", json!({ "token": link })).await;
    assert_eq!(confirmed.status, 200, "the real link still works: {}", confirmed.body);
    assert_nowhere(&everything_stored(&app).await, &link, &raw(&link), "the sign-up confirmation token");
}
