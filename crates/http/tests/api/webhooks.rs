//! Outgoing webhooks through the doors: a campaign sent to `smtp-sink`, a click and an abuse
//! report reach an organization's endpoint signed as Standard Webhooks says, verified by the
//! `standardwebhooks` package in a Python receiver (and refused there under another secret);
//! refused deliveries come again with the same `webhook-id`, in order per contact; another
//! organization's endpoint gets only its own events. An ADMIN subscribes, sees the secret once,
//! rotates it and disables the endpoint, through the API and the console; other roles may not;
//! addresses off the public internet are refused unless the server allows them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mos_db::testing::campaign::{self, begin, src, Org};
use mos_db::webhooks::{self as hooks, NewWebhook};
use mos_domain::webhooks::EventType;
use mos_http::feedback::ingest;
use mos_mail::testing::Sink;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::breaker::complaint;
use crate::console_access::page;
use crate::segments::console_post;
use crate::sending::{click_links, sent, PUBLIC_URL};
use crate::TestApp;

/// The Python receiver (`tests/data/webhook_receiver.py`), stopped when dropped.
struct Receiver {
    child: Child,
    port: u16,
    http: reqwest::Client,
}

impl Receiver {
    fn start() -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/webhook_receiver.py");
        let mut child = Command::new("python3")
            .arg(script)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the receiver (pip install standardwebhooks==1.0.0)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the receiver's port, not {line:?}"));
        Self { child, port, http: reqwest::Client::new() }
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/hooks/{name}", self.port)
    }

    async fn expect(&self, name: &str, secret: &str, fail_first: u32) {
        let url = format!("http://127.0.0.1:{}/control/{name}", self.port);
        let answer =
            self.http.post(url).json(&json!({ "secret": secret, "fail_first": fail_first })).send().await.unwrap();
        assert_eq!(answer.status(), 204);
    }

    async fn log(&self) -> Vec<Value> {
        let url = format!("http://127.0.0.1:{}/control/log", self.port);
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Subscribes `o` to every event type at `url`: the secret as the organization would be shown it.
async fn subscribe(app: &TestApp, o: &Org, url: &str) -> String {
    let (secret, key) = mos_http::webhooks::new_secret();
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    let new = NewWebhook { url, events: &EventType::ALL, description: None };
    hooks::create(&mut tx, &app.sealer, &new, &key, o.admin, chrono::Utc::now(), &src()).await.unwrap();
    tx.commit().await.unwrap();
    secret.expose_secret().to_owned()
}

/// The organization's outbox: every event id (as `webhook-id`) with its contact, in enqueue order.
async fn outbox(app: &TestApp, o: &Org) -> Vec<(String, String)> {
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    let rows: Vec<(uuid::Uuid, Option<uuid::Uuid>)> = sqlx::query_as(
        "select event_id, contact_id from app.webhook_outbox where organization_id = $1 order by enqueued_at, ord",
    )
    .bind(o.org.as_uuid())
    .fetch_all(tx.conn())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, contact)| (format!("msg_{}", id.simple()), contact.map(|c| c.to_string()).unwrap_or_default()))
        .collect()
}

/// Waits, waking the job runner, until the receiver has answered every event of `o`'s outbox
/// with a 2xx at `endpoint`; its log then.
async fn delivered(app: &TestApp, receiver: &Receiver, o: &Org, endpoint: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let expected: BTreeSet<String> = outbox(app, o).await.into_iter().map(|(id, _)| id).collect();
        let log = receiver.log().await;
        let got: BTreeSet<String> = log
            .iter()
            .filter(|r| r["endpoint"] == endpoint && r["status"] == 204)
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        if !expected.is_empty() && got == expected {
            return log.into_iter().filter(|r| r["endpoint"] == endpoint).collect();
        }
        assert!(Instant::now() < deadline, "not every event reached {endpoint}: expected {expected:?}, log {log:#?}");
        app.wake_jobs();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_campaigns_events_reach_the_endpoint_signed_retried_with_the_same_id_in_order_per_contact_and_no_other_tenant(
) {
    let receiver = Receiver::start();
    let sink = Sink::start(&[]).await;
    let app = TestApp::spawn_sending_through(&sink.url(), PUBLIC_URL, |_| {}).await;
    let acme = campaign::org(&app.pool, "acme", &app.sealer, &app.address_keys).await;
    let globex = campaign::org(&app.pool, "globex", &app.sealer, &app.address_keys).await;
    campaign::consenting(&app.pool, &acme, &app.address_keys, 3).await;
    let acme_secret = subscribe(&app, &acme, &receiver.url("acme")).await;
    let globex_secret = subscribe(&app, &globex, &receiver.url("globex")).await;
    // Acme's endpoint fails its first three requests with 500.
    receiver.expect("acme", &acme_secret, 3).await;
    receiver.expect("globex", &globex_secret, 0).await;

    // Each organization sends a campaign; Ada of Acme follows a link, then complains.
    // Both organizations have an Ada at the same address: Acme's message is the one there before
    // Globex sends.
    let acme_campaign = sent(&app, &acme).await;
    let to_ada: Vec<String> = sink.dumps().into_iter().filter(|d| d.contains("X-Rcpt-Args: <ada@p.example>")).collect();
    assert_eq!(to_ada.len(), 1);
    let link = click_links(&to_ada[0]).remove(0);
    let globex_campaign = sent(&app, &globex).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    assert_eq!(client.get(format!("{}{link}", app.base)).send().await.unwrap().status(), 302);
    let message_id = mos_db::campaigns::message_id(acme_campaign, acme.ada, "mail.acme.example");
    let report = complaint(&message_id, &mos_db::campaigns::feedback_id(acme_campaign, acme.org));
    ingest(&app.pool, report.as_bytes(), chrono::Utc::now(), &src(), &app.public_url).await.unwrap();

    let log = delivered(&app, &receiver, &acme, "acme").await;
    // Every attempt verifies under the endpoint's secret, and under no other.
    for r in &log {
        assert_eq!((r["verified"].as_bool(), r["wrong_secret_verifies"].as_bool()), (Some(true), Some(false)), "{r}");
    }
    // The three refused attempts came again, with the same ids, and each event arrived whole.
    let refused: Vec<&str> = log.iter().filter(|r| r["status"] == 500).map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(refused.len(), 3);
    let accepted: Vec<&Value> = log.iter().filter(|r| r["status"] == 204).collect();
    for id in &refused {
        assert!(accepted.iter().any(|r| r["id"] == *id), "{id} was delivered later");
    }
    let ids: Vec<&str> = accepted.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len(), "each event accepted once: {ids:?}");

    // In order per contact: each contact's events were accepted in the order they were written.
    let events = outbox(&app, &acme).await;
    let mut written: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, contact) in &events {
        written.entry(contact.as_str()).or_default().push(id.as_str());
    }
    let contact_of: BTreeMap<&str, &str> = events.iter().map(|(id, c)| (id.as_str(), c.as_str())).collect();
    let mut arrived: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for id in &ids {
        arrived.entry(contact_of[id]).or_default().push(id);
    }
    assert_eq!(arrived, written);

    // What Ada's events say: ids and kinds, nothing of her.
    let ada = acme.ada.to_string();
    let types: Vec<&str> = accepted
        .iter()
        .filter(|r| r["payload"]["data"]["contact_id"] == ada.as_str())
        .map(|r| r["payload"]["type"].as_str().unwrap())
        .collect();
    for expected in ["message.sent", "message.clicked", "message.complained", "consent.changed"] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    assert_eq!(types[0], "message.sent", "{types:?}");
    for r in &accepted {
        let payload = r["payload"].to_string();
        assert!(!payload.contains('@'), "no address in {payload}");
        if r["payload"]["type"].as_str().unwrap().starts_with("message.") {
            assert_eq!(r["payload"]["data"]["campaign_id"], acme_campaign.to_string().as_str());
        }
    }

    // Globex's endpoint got Globex's events, and nothing of Acme's.
    let theirs = delivered(&app, &receiver, &globex, "globex").await;
    let acme_ids: BTreeSet<String> = events.iter().map(|(id, _)| id.clone()).collect();
    for r in &theirs {
        assert!(!acme_ids.contains(r["id"].as_str().unwrap()), "{r}");
        let data = &r["payload"]["data"];
        assert_ne!(data["campaign_id"], acme_campaign.to_string().as_str(), "{r}");
        if data["campaign_id"].is_string() {
            assert_eq!(data["campaign_id"], globex_campaign.to_string().as_str(), "{r}");
        }
    }
    assert!(theirs.iter().any(|r| r["payload"]["type"] == "message.sent"));
}

#[tokio::test]
async fn an_admin_subscribes_sees_the_secret_once_rotates_it_and_disables_the_endpoint_and_no_other_role_may() {
    let receiver = Receiver::start();
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let path = "/v1/orgs/acme/webhooks";
    let body = json!({ "url": receiver.url("acme"), "events": ["consent.changed", "message.sent"] });
    for token in [&org.reviewer, &org.creator, &org.viewer] {
        assert_eq!(app.post_as(token, path, body.clone()).await.status, 403);
        assert_eq!(app.get_as(token, path).await.status, 403);
    }
    let unknown =
        app.post_as(&org.admin, path, json!({ "url": receiver.url("acme"), "events": ["message.opened"] })).await;
    assert_eq!((unknown.status, unknown.body["field"].as_str()), (422, Some("events")), "{}", unknown.body);

    let created = app.post_as(&org.admin, path, body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    let id = created.body["webhook"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["webhook"]["events"], json!(["consent.changed", "message.sent"]));

    // Never shown again: not in the list, the endpoint's page, or the audit trail.
    let listed = app.get_as(&org.admin, path).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let shown = app.get_as(&org.admin, &format!("{path}/{id}")).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.body["webhook"]["enabled"], true);
    let rotated = app.post_as(&org.admin, &format!("{path}/{id}/rotate-secret"), json!({})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_secret = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    let disabled = app.post_as(&org.admin, &format!("{path}/{id}/disable"), json!({})).await;
    assert_eq!(
        (disabled.body["enabled"].as_bool(), disabled.body["disabled_reason"].as_str()),
        (Some(false), Some("member"))
    );
    let enabled = app.post_as(&org.admin, &format!("{path}/{id}/enable"), json!({})).await;
    assert_eq!(enabled.body["enabled"], true);
    let audit = app.get_as(&org.admin, "/v1/orgs/acme/audit-logs").await;
    let trail = audit.body.to_string();
    for action in ["webhook.created", "webhook.secret_rotated", "webhook.disabled", "webhook.enabled"] {
        assert!(trail.contains(action), "{action} in {trail}");
    }
    for text in [&listed.body.to_string(), &shown.body.to_string(), &trail] {
        assert!(!text.contains(&secret[6..]) && !text.contains(&new_secret[6..]), "{text}");
    }
    // Another organization's ADMIN does not find it.
    let other = app.org_with_every_role("globex").await;
    assert_eq!(app.get_as(&other.admin, &format!("/v1/orgs/globex/webhooks/{id}")).await.status, 404);
    assert_eq!(app.get_as(&other.admin, &format!("{path}/{id}")).await.status, 404);
}

#[tokio::test]
async fn an_endpoint_off_the_public_internet_or_not_https_is_refused_unless_the_server_allows_it() {
    let app = TestApp::spawn_on(mos_db::testing::TestDb::new().await, mos_auth::PasswordHasher::new(4), |s| {
        s.webhooks = mos_http::WebhookSettings::default();
    })
    .await;
    let org = app.org_with_every_role("acme").await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://hooks.example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.7/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:192.168.0.1]/hook",
        "https://localhost/hook",
        "https://user:password@hooks.example.com/hook",
        "not a url",
    ] {
        let refused =
            app.post_as(&org.admin, "/v1/orgs/acme/webhooks", json!({ "url": url, "events": ["message.sent"] })).await;
        assert_eq!((refused.status, refused.body["field"].as_str()), (422, Some("url")), "{url}: {}", refused.body);
    }
    let listed = app.get_as(&org.admin, "/v1/orgs/acme/webhooks").await;
    assert_eq!(listed.body["items"], json!([]));
}

#[tokio::test]
async fn in_the_console_an_admin_adds_an_endpoint_sees_its_secret_once_switches_it_and_replaces_the_secret() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    for token in [&org.reviewer, &org.creator, &org.viewer] {
        for path in ["/orgs/acme/webhooks", "/orgs/acme/webhooks/new"] {
            assert_eq!(page(&app, token, path).await.0, 403, "{path}");
        }
    }
    let session = format!("__Host-mos_session={}", org.admin);
    let form = app.console_form("/orgs/acme/webhooks/new", &session).await;
    let cookie = format!("{session}; {}", form.seed);
    let url = "http://127.0.0.1:9/hooks/mos";
    let base = [("form_token", form.token.as_str()), ("url", url), ("description", "CRM")];
    let (status, refused) = console_post(&app, "/orgs/acme/webhooks/new", &cookie, &base).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused.contains("choose at least one event type"), "{refused}");
    let chosen = [base.as_slice(), &[("event:message.sent", "on"), ("event:consent.changed", "on")]].concat();
    let (status, created) = console_post(&app, "/orgs/acme/webhooks/new", &cookie, &chosen).await;
    assert_eq!(status, 201, "{created}");
    let secret = created.split("<code id=\"secret\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{created}");

    let listed = app.get_as(&org.admin, "/v1/orgs/acme/webhooks").await;
    let item = &listed.body["items"][0];
    assert_eq!((item["url"].as_str(), item["description"].as_str()), (Some(url), Some("CRM")), "{}", listed.body);
    assert_eq!(item["events"], json!(["consent.changed", "message.sent"]));
    let id = item["id"].as_str().unwrap().to_owned();
    let endpoint = format!("/orgs/acme/webhooks/{id}");
    for path in ["/orgs/acme/webhooks", endpoint.as_str()] {
        let (status, shown) = page(&app, &org.admin, path).await;
        assert_eq!(status, 200, "{shown}");
        assert!(shown.contains(url) && !shown.contains(&secret), "the secret is shown once only: {shown}");
    }

    let form = app.console_form(&endpoint, &session).await;
    let cookie = format!("{session}; {}", form.seed);
    let off = [("form_token", form.token.as_str()), ("enabled", "false")];
    let (status, shown) = console_post(&app, &format!("{endpoint}/enabled"), &cookie, &off).await;
    assert!(status < 400 && shown.contains("disabled"), "{status} {shown}");
    assert_eq!(app.get_as(&org.admin, &format!("/v1/orgs/acme/webhooks/{id}")).await.body["webhook"]["enabled"], false);
    let on = [("form_token", form.token.as_str()), ("enabled", "true")];
    assert!(console_post(&app, &format!("{endpoint}/enabled"), &cookie, &on).await.0 < 400);
    assert_eq!(app.get_as(&org.admin, &format!("/v1/orgs/acme/webhooks/{id}")).await.body["webhook"]["enabled"], true);

    let form = app.console_form(&format!("{endpoint}/rotate"), &session).await;
    let cookie = format!("{session}; {}", form.seed);
    let (status, rotated) =
        console_post(&app, &format!("{endpoint}/rotate"), &cookie, &[("form_token", form.token.as_str())]).await;
    assert_eq!(status, 200, "{rotated}");
    let replaced = rotated.split("<code id=\"secret\">").nth(1).unwrap().split('<').next().unwrap();
    assert!(replaced.starts_with("whsec_") && replaced != secret, "{rotated}");
    let trail = app.get_as(&org.admin, "/v1/orgs/acme/audit-logs?action=webhook.secret_rotated").await;
    assert_eq!(trail.body["items"].as_array().map(Vec::len), Some(1), "{}", trail.body);
    assert!(!trail.body.to_string().contains("whsec_"), "{}", trail.body);
}
