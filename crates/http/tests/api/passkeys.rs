//! Passkeys against a software authenticator written here from the WebAuthn specification: a
//! P-256 key, authenticator data, "none" attestation in CBOR, ES256 signatures. Being ours, it
//! can also lie: another origin, another relying party, an old challenge, a counter going back.

use data_encoding::BASE64URL_NOPAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{token_in, Reply, TestApp, PASSWORD};

/// CBOR, as little of it as attestation needs: unsigned and negative integers, byte and text
/// strings, maps.
mod cbor {
    fn head(major: u8, len: u64, out: &mut Vec<u8>) {
        let major = major << 5;
        match len {
            0..=23 => out.push(major | len as u8),
            24..=0xff => out.extend([major | 24, len as u8]),
            0x100..=0xffff => {
                out.push(major | 25);
                out.extend((len as u16).to_be_bytes());
            }
            _ => {
                out.push(major | 26);
                out.extend((len as u32).to_be_bytes());
            }
        }
    }

    pub fn int(value: i64, out: &mut Vec<u8>) {
        if value >= 0 {
            head(0, value as u64, out);
        } else {
            head(1, (-1 - value) as u64, out);
        }
    }

    pub fn bytes(value: &[u8], out: &mut Vec<u8>) {
        head(2, value.len() as u64, out);
        out.extend(value);
    }

    pub fn text(value: &str, out: &mut Vec<u8>) {
        head(3, value.len() as u64, out);
        out.extend(value.as_bytes());
    }

    pub fn map(entries: usize, out: &mut Vec<u8>) {
        head(5, entries as u64, out);
    }
}

fn b64(bytes: &[u8]) -> String {
    BASE64URL_NOPAD.encode(bytes)
}

fn unb64(value: &Value) -> Vec<u8> {
    BASE64URL_NOPAD.decode(value.as_str().unwrap().as_bytes()).unwrap()
}

/// One credential of a software authenticator.
pub(crate) struct Soft {
    key: SigningKey,
    id: Vec<u8>,
    user_handle: Vec<u8>,
    counter: u32,
}

/// What the authenticator and its browser claim, honestly by default.
pub(crate) struct Claims<'a> {
    origin: &'a str,
    rp_id: Option<&'a str>,
    /// Whether the authenticator says it verified its user (a PIN, a fingerprint).
    user_verified: bool,
}

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

impl Soft {
    /// Answers `navigator.credentials.create()` with `options`.
    fn create(options: &Value, claims: &Claims) -> (Self, Value) {
        let public_key = &options["publicKey"];
        let rp_id = claims.rp_id.unwrap_or_else(|| public_key["rp"]["id"].as_str().unwrap());
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let id: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
        let soft = Soft { key, id, user_handle: unb64(&public_key["user"]["id"]), counter: 0 };
        let client_data = json!({
            "type": "webauthn.create",
            "challenge": public_key["challenge"],
            "origin": claims.origin,
            "crossOrigin": false,
        })
        .to_string();
        let point = soft.key.verifying_key().to_encoded_point(false);
        let mut cose = Vec::new();
        cbor::map(5, &mut cose);
        for (label, value) in [(1, 2), (3, -7), (-1, 1)] {
            cbor::int(label, &mut cose);
            cbor::int(value, &mut cose);
        }
        cbor::int(-2, &mut cose);
        cbor::bytes(point.x().unwrap(), &mut cose);
        cbor::int(-3, &mut cose);
        cbor::bytes(point.y().unwrap(), &mut cose);
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(UP | if claims.user_verified { UV } else { 0 } | AT);
        auth_data.extend(soft.counter.to_be_bytes());
        auth_data.extend([0u8; 16]);
        auth_data.extend((soft.id.len() as u16).to_be_bytes());
        auth_data.extend(&soft.id);
        auth_data.extend(cose);
        let mut attestation = Vec::new();
        cbor::map(3, &mut attestation);
        cbor::text("fmt", &mut attestation);
        cbor::text("none", &mut attestation);
        cbor::text("attStmt", &mut attestation);
        cbor::map(0, &mut attestation);
        cbor::text("authData", &mut attestation);
        cbor::bytes(&auth_data, &mut attestation);
        let credential = json!({
            "id": b64(&soft.id),
            "rawId": b64(&soft.id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(client_data.as_bytes()),
                "transports": ["internal"],
            },
        });
        (soft, credential)
    }

    /// Answers `navigator.credentials.get()` with `options`, its counter moved to `counter`.
    fn get(&mut self, options: &Value, claims: &Claims, counter: u32) -> Value {
        let public_key = &options["publicKey"];
        let rp_id = claims.rp_id.unwrap_or_else(|| public_key["rpId"].as_str().unwrap());
        self.counter = counter;
        let client_data = json!({
            "type": "webauthn.get",
            "challenge": public_key["challenge"],
            "origin": claims.origin,
            "crossOrigin": false,
        })
        .to_string();
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(UP | if claims.user_verified { UV } else { 0 });
        auth_data.extend(self.counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(client_data.as_bytes()));
        let signature: Signature = self.key.sign(&signed);
        json!({
            "id": b64(&self.id),
            "rawId": b64(&self.id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(client_data.as_bytes()),
                "signature": b64(signature.to_der().as_bytes()),
                "userHandle": b64(&self.user_handle),
            },
        })
    }
}

impl TestApp {
    pub(crate) fn honest(&self) -> Claims<'_> {
        Claims { origin: &self.public_url, rp_id: None, user_verified: true }
    }

    /// Adds a passkey to the account of `token`: the authenticator, and the session that
    /// replaced `token`.
    pub(crate) async fn add_passkey(&self, token: &str, name: &str) -> (Soft, String) {
        let options = self.post_as(token, "/v1/me/passkeys/options", json!({})).await;
        assert_eq!(options.status, 200, "{}", options.body);
        let (soft, credential) = Soft::create(&options.body["options"], &self.honest());
        let body = json!({ "ceremony": options.body["ceremony"], "name": name, "credential": credential });
        let added = self.post_as(token, "/v1/me/passkeys", body).await;
        assert_eq!(added.status, 201, "{}", added.body);
        (soft, added.session_token())
    }

    /// A passwordless sign-in with `soft`, claiming `claims`, counter at `counter`.
    pub(crate) async fn passkey_sign_in(&self, soft: &mut Soft, claims: &Claims<'_>, counter: u32) -> Reply {
        let options = self.post("/v1/auth/passkey/options", json!({})).await;
        assert_eq!(options.status, 200, "{}", options.body);
        let credential = soft.get(&options.body["options"], claims, counter);
        self.post("/v1/auth/passkey", json!({ "ceremony": options.body["ceremony"], "credential": credential })).await
    }

    /// Adds the first passkey of a member of an organization that requires passkeys, through the
    /// link mailed to `email` (the `n`th such mail): the authenticator, and the session that
    /// replaced `token`.
    async fn add_passkey_by_mail(&self, token: &str, email: &str, n: usize, name: &str) -> (Soft, String) {
        let link = self.enrollment_link(token, email, n).await;
        let options = self.post_as(token, "/v1/me/passkeys/options", json!({ "enrollment": link })).await;
        assert_eq!(options.status, 200, "{}", options.body);
        let (soft, credential) = Soft::create(&options.body["options"], &self.honest());
        let body = json!({ "ceremony": options.body["ceremony"], "name": name, "credential": credential });
        let added = self.post_as(token, "/v1/me/passkeys", body).await;
        assert_eq!(added.status, 201, "{}", added.body);
        (soft, added.session_token())
    }

    /// Asks for an enrollment link as `token` and reads it from the `n`th such mail to `email`.
    pub(crate) async fn enrollment_link(&self, token: &str, email: &str, n: usize) -> String {
        let asked = self.post_as(token, "/v1/me/passkeys/enrollment", json!({})).await;
        assert_eq!(asked.status, 202, "{}", asked.body);
        let mail = self.inbox.wait_for(email, "Add your first passkey", n).await;
        assert!(mail.contains("/account/passkeys/enroll?token="), "{mail}");
        token_in(&mail)
    }

    /// A session signed in with the password and a code from `totp`, as a phisher who relays
    /// both would get.
    async fn password_and_code(&self, email: &str, totp: &mos_auth::Totp) -> String {
        // Each code is good once: the next time step's, as a relayed code would be.
        self.clock.advance(chrono::Duration::seconds(30));
        let step = self.login(email, PASSWORD).await;
        assert_eq!(step.body["status"], "two_factor_required", "{}", step.body);
        let code = totp.code(mos_auth::totp::step_at(mos_auth::Clock::now(&self.clock).timestamp()));
        let done =
            self.post("/v1/auth/login/two-factor", json!({ "challenge": step.body["challenge"], "code": code })).await;
        assert_eq!(done.status, 200, "{}", done.body);
        done.session_token()
    }

    async fn events_of(&self, token: &str) -> Vec<Value> {
        self.get_as(token, "/v1/me/events").await.body.as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn a_passkey_is_added_after_a_recent_sign_in_and_then_signs_in_without_a_password() {
    let app = TestApp::spawn().await;
    let first = app.signed_in("ada@example.com").await;
    let other_device = app.login("ada@example.com", PASSWORD).await.session_token();
    let (mut soft, session) = app.add_passkey(&first, "Work laptop").await;
    assert_eq!(app.get_as(&other_device, "/v1/me").await.status, 401, "other sessions end");
    assert_eq!(app.get_as(&first, "/v1/me").await.status, 401, "replaced by the new session");
    app.inbox.wait_for("ada@example.com", "A passkey was added", 1).await;
    let listed = app.get_as(&session, "/v1/me/passkeys").await.body;
    assert_eq!(listed[0]["name"], "Work laptop");
    assert_eq!(listed[0]["transports"], json!(["internal"]));

    let signed_in = app.passkey_sign_in(&mut soft, &app.honest(), 1).await;
    assert_eq!(
        (signed_in.status, signed_in.body["status"].as_str()),
        (200, Some("authenticated")),
        "{}",
        signed_in.body
    );
    let token = signed_in.session_token();
    assert_eq!(app.get_as(&token, "/v1/me").await.body["email"], "ada@example.com");
    let listed = app.get_as(&token, "/v1/me/passkeys").await.body;
    assert!(listed[0]["last_used_at"].is_string(), "{listed}");
    let events = app.events_of(&token).await;
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"auth.passkey.added") && actions.contains(&"auth.login.succeeded"), "{actions:?}");
    assert_eq!(events[0]["metadata"]["passkey"]["as"], "passwordless");

    // A change of passkeys needs a recent sign-in; an hour later, without one, nothing happens.
    app.clock.advance(chrono::Duration::minutes(11));
    let fresh = app.login("ada@example.com", PASSWORD).await.session_token();
    app.clock.advance(chrono::Duration::minutes(11));
    let late = app.post_as(&fresh, "/v1/me/passkeys/options", json!({})).await;
    assert_eq!(late.problem_type(), "urn:mos:problem:reauthentication_required");
}

#[tokio::test]
async fn answers_for_another_origin_another_relying_party_or_an_old_challenge_are_refused_and_recorded() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    let (mut soft, session) = app.add_passkey(&token, "Phone").await;

    let phished = app
        .passkey_sign_in(&mut soft, &Claims { origin: "https://marketing-os.example.evil", ..app.honest() }, 1)
        .await;
    assert_eq!((phished.status, phished.problem_type()), (401, "urn:mos:problem:passkey_failed"), "{}", phished.body);
    let other_rp = app.passkey_sign_in(&mut soft, &Claims { rp_id: Some("evil.example"), ..app.honest() }, 2).await;
    assert_eq!((other_rp.status, other_rp.problem_type()), (401, "urn:mos:problem:passkey_failed"));

    // A ceremony is good once: the same answer again finds it spent.
    let options = app.post("/v1/auth/passkey/options", json!({})).await.body;
    let answer = soft.get(&options["options"], &app.honest(), 3);
    let body = json!({ "ceremony": options["ceremony"], "credential": answer });
    assert_eq!(app.post("/v1/auth/passkey", body.clone()).await.status, 200);
    let replayed = app.post("/v1/auth/passkey", body).await;
    assert_eq!((replayed.status, replayed.problem_type()), (401, "urn:mos:problem:invalid_ceremony"));
    // And an old answer does not fit a new ceremony's challenge.
    let fresh = app.post("/v1/auth/passkey/options", json!({})).await.body;
    let stale = app.post("/v1/auth/passkey", json!({ "ceremony": fresh["ceremony"], "credential": answer })).await;
    assert_eq!((stale.status, stale.problem_type()), (401, "urn:mos:problem:passkey_failed"));

    let failures = app
        .events_of(&session)
        .await
        .into_iter()
        .filter(|e| e["action"] == "auth.passkey.failed" && e["outcome"] == "failure")
        .count();
    assert_eq!(failures, 3, "each refusal is on the account's record");
}

#[tokio::test]
async fn an_authenticator_that_did_not_verify_its_user_neither_adds_a_passkey_nor_signs_in() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    let unverified = Claims { user_verified: false, ..app.honest() };
    let options = app.post_as(&token, "/v1/me/passkeys/options", json!({})).await;
    assert_eq!(options.status, 200, "{}", options.body);
    let (_, credential) = Soft::create(&options.body["options"], &unverified);
    let body = json!({ "ceremony": options.body["ceremony"], "name": "Tapped only", "credential": credential });
    let added = app.post_as(&token, "/v1/me/passkeys", body).await;
    assert_eq!(added.status / 100, 4, "a registration without user verification: {}", added.body);
    assert_eq!(app.get_as(&token, "/v1/me/passkeys").await.body.as_array().map(Vec::len), Some(0));

    let (mut soft, _) = app.add_passkey(&token, "Phone").await;
    let tapped = app.passkey_sign_in(&mut soft, &unverified, 1).await;
    assert_eq!((tapped.status, tapped.problem_type()), (401, "urn:mos:problem:passkey_failed"), "{}", tapped.body);
    assert_eq!(app.passkey_sign_in(&mut soft, &app.honest(), 2).await.status, 200, "the same key, verified");
}

#[tokio::test]
async fn a_counter_that_goes_backwards_is_refused_as_a_possible_clone_and_recorded() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    let (mut soft, session) = app.add_passkey(&token, "Security key").await;
    assert_eq!(app.passkey_sign_in(&mut soft, &app.honest(), 5).await.status, 200);
    let cloned = app.passkey_sign_in(&mut soft, &app.honest(), 3).await;
    assert_eq!((cloned.status, cloned.problem_type()), (401, "urn:mos:problem:passkey_cloned"), "{}", cloned.body);
    let events = app.events_of(&session).await;
    assert!(events.iter().any(|e| e["action"] == "auth.passkey.cloned"), "{events:?}");
    assert_eq!(app.passkey_sign_in(&mut soft, &app.honest(), 6).await.status, 200, "the real one goes on");
}

#[tokio::test]
async fn a_passkey_completes_a_sign_in_after_the_password_instead_of_a_code() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    let token = crate::orgs::enroll(&app, &token).await;
    let (mut soft, _) = app.add_passkey(&token, "Laptop").await;
    let first = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(
        (first.body["status"].as_str(), first.body["passkey"].as_bool()),
        (Some("two_factor_required"), Some(true))
    );
    let challenge = first.body["challenge"].clone();
    let options = app.post("/v1/auth/login/passkey/options", json!({ "challenge": challenge })).await;
    assert_eq!(options.status, 200, "{}", options.body);
    let credential = soft.get(&options.body["options"], &app.honest(), 1);
    let body = json!({ "challenge": challenge, "ceremony": options.body["ceremony"], "credential": credential });
    let done = app.post("/v1/auth/login/passkey", body.clone()).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let again = app.post("/v1/auth/login/passkey", body).await;
    assert_eq!(again.status, 401, "the challenge and the ceremony are spent");
}

#[tokio::test]
async fn an_organization_that_requires_passkeys_refuses_password_sessions_on_every_tenant_route_until_a_passkey_signs_in_or_confirms(
) {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let policy = json!({ "require_phishing_resistant": true });
    let refused = app.call_as("patch", &org.admin, "/v1/orgs/acme", policy.clone()).await;
    assert_eq!(refused.status, 409, "an ADMIN without a passkey session would lock themselves out: {}", refused.body);

    let (mut admin_key, _) = app.add_passkey(&org.admin, "Admin laptop").await;
    let admin = app.passkey_sign_in(&mut admin_key, &app.honest(), 1).await.session_token();
    let set = app.call_as("patch", &admin, "/v1/orgs/acme", policy).await;
    assert_eq!((set.status, set.body["require_phishing_resistant"].as_bool()), (200, Some(true)), "{}", set.body);

    // A member with a password session is kept out of every tenant route, and told why.
    let viewer = app.login("viewer@acme.example", PASSWORD).await.session_token();
    for path in ["/v1/orgs/acme", "/v1/orgs/acme/members", "/v1/orgs/acme/content"] {
        let reply = app.get_as(&viewer, path).await;
        assert_eq!(
            (reply.status, reply.problem_type()),
            (403, "urn:mos:problem:phishing_resistant_required"),
            "{path}"
        );
    }
    // Every tenant route, whatever the role would allow.
    let member = app.login("creator@acme.example", PASSWORD).await.session_token();
    for (method, path, _) in crate::orgs::documented_tenant_operations(&app).await {
        let url = path
            .replace("{slug}", "acme")
            .replace("{user_id}", crate::orgs::RANDOM_ID)
            .replace("{id}", crate::orgs::RANDOM_ID)
            .replace("{number}", "1");
        let reply = app.call_as(&method, &member, &url, json!({})).await;
        assert_eq!(
            (reply.status, reply.problem_type()),
            (403, "urn:mos:problem:phishing_resistant_required"),
            "{method} {url}"
        );
    }
    // Leaving too: a phished password must not take the member out (an ADMIN still can).
    let left = app.post_as(&member, "/v1/orgs/acme/leave", json!({})).await;
    assert_eq!((left.status, left.problem_type()), (403, "urn:mos:problem:phishing_resistant_required"));
    let member_id = app.get_as(&member, "/v1/me").await.body["id"].as_str().unwrap().to_owned();
    let removed = app.call_as("delete", &admin, &format!("/v1/orgs/acme/members/{member_id}"), json!({})).await;
    assert_eq!(removed.status, 204, "an ADMIN still removes a member the policy keeps out: {}", removed.body);

    // Confirming with a passkey makes the same session phishing-resistant.
    let (mut viewer_key, viewer) = app.add_passkey_by_mail(&viewer, "viewer@acme.example", 1, "Viewer phone").await;
    assert_eq!(app.get_as(&viewer, "/v1/orgs/acme").await.status, 403, "adding one is not signing in with it");
    let options = app.post_as(&viewer, "/v1/me/reauthenticate/passkey/options", json!({})).await.body;
    let credential = viewer_key.get(&options["options"], &app.honest(), 1);
    let confirmed = app
        .post_as(
            &viewer,
            "/v1/me/reauthenticate/passkey",
            json!({ "ceremony": options["ceremony"], "credential": credential }),
        )
        .await;
    assert_eq!(confirmed.status, 204, "{}", confirmed.body);
    assert_eq!(app.get_as(&viewer, "/v1/orgs/acme/members").await.status, 200);

    let trail = app.get_as(&admin, "/v1/orgs/acme/audit-logs?action=access.denied").await.body;
    assert!(
        trail["items"].as_array().unwrap().iter().any(|r| r["metadata"]["reason"] == "phishing_resistant_required"),
        "{trail}"
    );
}

#[tokio::test]
async fn removing_a_passkey_needs_a_passkey_session_signs_out_elsewhere_and_leaves_the_password() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    let (mut soft, session) = app.add_passkey(&token, "Old phone").await;
    let elsewhere = app.passkey_sign_in(&mut soft, &app.honest(), 1).await.session_token();
    let id = app.get_as(&session, "/v1/me/passkeys").await.body[0]["id"].as_str().unwrap().to_owned();
    let renamed =
        app.call_as("patch", &session, &format!("/v1/me/passkeys/{id}"), json!({ "name": "Lost phone" })).await;
    assert_eq!(renamed.status, 204);
    let refused = app.call_as("delete", &session, &format!("/v1/me/passkeys/{id}"), json!({})).await;
    assert_eq!(
        (refused.status, refused.problem_type()),
        (403, "urn:mos:problem:passkey_session_required"),
        "the password session that added it may not remove it"
    );
    let removed = app.call_as("delete", &elsewhere, &format!("/v1/me/passkeys/{id}"), json!({})).await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(app.get_as(&session, "/v1/me").await.status, 401);
    app.inbox.wait_for("ada@example.com", "A passkey was removed", 1).await;
    assert_eq!(app.passkey_sign_in(&mut soft, &app.honest(), 2).await.status, 401, "the removed passkey is unknown");
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status, 200, "the password still signs in");
}

#[tokio::test]
async fn a_passkey_session_satisfies_an_organizations_two_factor_policy() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let admin = crate::orgs::enroll(&app, &org.admin).await;
    let set = app.call_as("patch", &admin, "/v1/orgs/acme", json!({ "require_two_factor": true })).await;
    assert_eq!(set.status, 200, "{}", set.body);
    let viewer = app.login("viewer@acme.example", PASSWORD).await.session_token();
    let kept_out = app.get_as(&viewer, "/v1/orgs/acme").await;
    assert_eq!(kept_out.problem_type(), "urn:mos:problem:two_factor_required");
    let (mut key, _) = app.add_passkey(&viewer, "Viewer phone").await;
    let with_passkey = app.passkey_sign_in(&mut key, &app.honest(), 1).await.session_token();
    assert_eq!(app.get_as(&with_passkey, "/v1/orgs/acme").await.status, 200, "a passkey is two factors in one");
}

/// An organization `acme` that requires passkeys, set by its ADMIN from a passkey session: the
/// members' tokens, and the ADMIN's passkey session.
pub(crate) async fn strict_org(app: &TestApp) -> (crate::Members, String) {
    let org = app.org_with_every_role("acme").await;
    let (mut admin_key, _) = app.add_passkey(&org.admin, "Admin laptop").await;
    let admin = app.passkey_sign_in(&mut admin_key, &app.honest(), 1).await.session_token();
    let set = app.call_as("patch", &admin, "/v1/orgs/acme", json!({ "require_phishing_resistant": true })).await;
    assert_eq!(set.status, 200, "{}", set.body);
    (org, admin)
}

#[tokio::test]
async fn a_phished_password_and_code_cannot_add_or_remove_passkeys_of_an_account_that_has_one() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    // The owner: two-factor, and a passkey added before the organization required one.
    let (owner, totp) = crate::orgs::enroll_totp(&app, &org.viewer).await;
    let (mut owner_key, _) = app.add_passkey(&owner, "Owner phone").await;
    let (mut admin_key, _) = app.add_passkey(&org.admin, "Admin laptop").await;
    let admin = app.passkey_sign_in(&mut admin_key, &app.honest(), 1).await.session_token();
    let set = app.call_as("patch", &admin, "/v1/orgs/acme", json!({ "require_phishing_resistant": true })).await;
    assert_eq!(set.status, 200, "{}", set.body);

    // The phisher relays the password and one code: a fresh, recent session.
    let phisher = app.password_and_code("viewer@acme.example", &totp).await;
    let denied = app.get_as(&phisher, "/v1/orgs/acme/content").await;
    assert_eq!(denied.problem_type(), "urn:mos:problem:phishing_resistant_required");

    // Adds their own passkey: refused at the options, and at the finish with options begun
    // before the owner's passkey existed does not apply (there are none to begin).
    let options = app.post_as(&phisher, "/v1/me/passkeys/options", json!({})).await;
    assert_eq!(
        (options.status, options.problem_type()),
        (403, "urn:mos:problem:passkey_session_required"),
        "{}",
        options.body
    );
    // So there is nothing of theirs to sign in with, and the organization stays closed.
    let (mut phisher_key, _) = Soft::create(
        &json!({ "publicKey": { "rp": { "id": "localhost" }, "user": { "id": b64(&[7u8; 16]) }, "challenge": b64(&[0u8; 32]) } }),
        &app.honest(),
    );
    let signed_in = app.passkey_sign_in(&mut phisher_key, &app.honest(), 1).await;
    assert_eq!(signed_in.status, 401, "{}", signed_in.body);
    assert_eq!(app.get_as(&phisher, "/v1/orgs/acme/content").await.status, 403);

    // Nor may the phisher remove the owner's passkey, nor make the owner leave.
    let id = app.get_as(&phisher, "/v1/me/passkeys").await.body[0]["id"].as_str().unwrap().to_owned();
    let removed = app.call_as("delete", &phisher, &format!("/v1/me/passkeys/{id}"), json!({})).await;
    assert_eq!((removed.status, removed.problem_type()), (403, "urn:mos:problem:passkey_session_required"));
    let left = app.post_as(&phisher, "/v1/orgs/acme/leave", json!({})).await;
    assert_eq!((left.status, left.problem_type()), (403, "urn:mos:problem:phishing_resistant_required"));
    // An enrollment link is no way around it: the account has a passkey.
    let link = app.post_as(&phisher, "/v1/me/passkeys/enrollment", json!({})).await;
    assert_eq!(link.status, 409, "{}", link.body);

    // The owner's passkey still signs in and reads the organization, and the attempts are on
    // the owner's record.
    let owner = app.passkey_sign_in(&mut owner_key, &app.honest(), 1).await.session_token();
    assert_eq!(app.get_as(&owner, "/v1/orgs/acme/content").await.status, 200);
    assert_eq!(app.get_as(&owner, "/v1/me/passkeys").await.body.as_array().unwrap().len(), 1);
    let refusals: Vec<Value> = app
        .events_of(&owner)
        .await
        .into_iter()
        .filter(|e| e["action"] == "auth.passkey.change_refused")
        .map(|e| e["metadata"]["change"].clone())
        .collect();
    assert_eq!(refusals, vec![json!("remove"), json!("add")], "newest first");

    // Confirming with the owner's passkey is what allows the changes.
    let options = app.post_as(&owner, "/v1/me/passkeys/options", json!({})).await;
    assert_eq!(options.status, 200, "a passkey session may add another: {}", options.body);
}

#[tokio::test]
async fn a_phished_password_and_code_cannot_add_the_first_passkey_in_an_organization_that_requires_them() {
    let app = TestApp::spawn().await;
    let (org, admin) = strict_org(&app).await;
    let (_, totp) = crate::orgs::enroll_totp(&app, &org.creator).await;
    let phisher = app.password_and_code("creator@acme.example", &totp).await;

    let options = app.post_as(&phisher, "/v1/me/passkeys/options", json!({})).await;
    assert_eq!(
        (options.status, options.problem_type()),
        (403, "urn:mos:problem:passkey_enrollment_link_required"),
        "{}",
        options.body
    );
    let guessed = b64(&[1u8; 32]);
    let options = app.post_as(&phisher, "/v1/me/passkeys/options", json!({ "enrollment": guessed })).await;
    assert_eq!((options.status, options.problem_type()), (400, "urn:mos:problem:invalid_token"));
    // Another account's link is not this account's.
    let stranger = app.signed_in("mallory@example.com").await;
    let strangers_link = {
        let joined = app.signed_in("mallory@acme.example").await;
        app.join(&admin, "acme", "mallory@acme.example", "VIEWER", &joined).await;
        app.enrollment_link(&joined, "mallory@acme.example", 1).await
    };
    let options = app.post_as(&phisher, "/v1/me/passkeys/options", json!({ "enrollment": strangers_link })).await;
    assert_eq!((options.status, options.problem_type()), (400, "urn:mos:problem:invalid_token"));
    // Asking for a link sends it to the owner's mailbox, which the phisher does not have.
    let asked = app.post_as(&phisher, "/v1/me/passkeys/enrollment", json!({})).await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    let mail = app.inbox.wait_for("creator@acme.example", "Add your first passkey", 1).await;
    assert!(mail.contains("someone knows your password"), "{mail}");
    assert_eq!(app.get_as(&phisher, "/v1/orgs/acme/content").await.status, 403);
    assert!(app.get_as(&phisher, "/v1/me/passkeys").await.body.as_array().unwrap().is_empty());
    // Outside such organizations the first passkey needs no link.
    assert_eq!(app.post_as(&stranger, "/v1/me/passkeys/options", json!({})).await.status, 200);
}

#[tokio::test]
async fn the_first_passkey_comes_through_the_mailed_link_once_and_the_admins_are_told() {
    let app = TestApp::spawn().await;
    let (org, admin) = strict_org(&app).await;
    let policy = app.get_as(&org.creator, "/v1/me/passkeys/policy").await.body;
    assert_eq!((policy["add"].as_str(), &policy["organizations"]), (Some("emailed_link"), &json!(["acme"])));

    // A link expires after 30 minutes, and a newer one replaces it.
    let old = app.enrollment_link(&org.creator, "creator@acme.example", 1).await;
    let link = app.enrollment_link(&org.creator, "creator@acme.example", 2).await;
    let replaced = app.post_as(&org.creator, "/v1/me/passkeys/options", json!({ "enrollment": old })).await;
    assert_eq!(replaced.problem_type(), "urn:mos:problem:invalid_token");

    let options = app.post_as(&org.creator, "/v1/me/passkeys/options", json!({ "enrollment": link })).await;
    assert_eq!(options.status, 200, "{}", options.body);
    let (mut key, credential) = Soft::create(&options.body["options"], &app.honest());
    let body = json!({ "ceremony": options.body["ceremony"], "name": "Creator phone", "credential": credential });
    let added = app.post_as(&org.creator, "/v1/me/passkeys", body).await;
    assert_eq!(added.status, 201, "{}", added.body);

    // Spent: it starts no second registration.
    let session = added.session_token();
    let again = app.post_as(&session, "/v1/me/passkeys/options", json!({ "enrollment": link })).await;
    assert_eq!(again.status, 403, "the account has a passkey now; a password session adds none: {}", again.body);

    let told = app.inbox.wait_for("admin@acme.example", "added their first passkey", 1).await;
    assert!(told.contains("creator@acme.example"), "{told}");
    let trail = app.get_as(&admin, "/v1/orgs/acme/audit-logs?action=member.passkey_enrolled").await.body;
    let record = &trail["items"][0];
    assert_eq!(record["metadata"]["name"], "Creator phone", "{trail}");
    assert_eq!(record["metadata"]["via"], "emailed_link");

    let creator = app.passkey_sign_in(&mut key, &app.honest(), 1).await.session_token();
    assert_eq!(app.get_as(&creator, "/v1/orgs/acme/content").await.status, 200);
}

#[tokio::test]
async fn an_enrollment_link_expires_and_is_spent_by_the_first_registration_that_uses_it() {
    let app = TestApp::spawn().await;
    let (org, _) = strict_org(&app).await;
    let link = app.enrollment_link(&org.reviewer, "reviewer@acme.example", 1).await;
    app.clock.advance(chrono::Duration::minutes(31));
    let reviewer = app.login("reviewer@acme.example", PASSWORD).await.session_token();
    let expired = app.post_as(&reviewer, "/v1/me/passkeys/options", json!({ "enrollment": link })).await;
    assert_eq!((expired.status, expired.problem_type()), (400, "urn:mos:problem:invalid_token"));

    // Two ceremonies begun with one link: the first to finish spends it.
    let link = app.enrollment_link(&reviewer, "reviewer@acme.example", 2).await;
    let first = app.post_as(&reviewer, "/v1/me/passkeys/options", json!({ "enrollment": link })).await.body;
    let second = app.post_as(&reviewer, "/v1/me/passkeys/options", json!({ "enrollment": link })).await.body;
    let (_, one) = Soft::create(&first["options"], &app.honest());
    let (_, two) = Soft::create(&second["options"], &app.honest());
    let added = app
        .post_as(
            &reviewer,
            "/v1/me/passkeys",
            json!({ "ceremony": first["ceremony"], "name": "One", "credential": one }),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let session = added.session_token();
    let refused = app
        .post_as(
            &session,
            "/v1/me/passkeys",
            json!({ "ceremony": second["ceremony"], "name": "Two", "credential": two }),
        )
        .await;
    assert_eq!((refused.status, refused.problem_type()), (403, "urn:mos:problem:passkey_session_required"));
    assert_eq!(app.get_as(&session, "/v1/me/passkeys").await.body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_console_page_refused_by_the_passkey_policy_offers_to_confirm_with_a_passkey_there() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let (mut admin_key, _) = app.add_passkey(&org.admin, "Admin laptop").await;
    let admin = app.passkey_sign_in(&mut admin_key, &app.honest(), 1).await.session_token();
    let set = app.call_as("patch", &admin, "/v1/orgs/acme", json!({ "require_phishing_resistant": true })).await;
    assert_eq!(set.status, 200, "{}", set.body);

    let viewer = app.login("viewer@acme.example", PASSWORD).await.session_token();
    for path in ["/orgs/acme", "/orgs/acme/content"] {
        let (status, html) = crate::console_access::page(&app, &viewer, path).await;
        assert_eq!(status, 403, "{path}: {html}");
        assert!(html.contains("requires sign-in with a passkey"), "{path}: {html}");
        assert!(
            html.contains(&format!("data-passkey=\"reauthenticate\" data-next=\"{path}\"")),
            "{path}: the confirmation is offered on the page, and returns to it: {html}"
        );
    }
}
