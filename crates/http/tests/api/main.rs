//! The API end to end: a real server on port 0, the real database, a real SMTP server on
//! loopback that the application sends through, and a clock the tests move by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod audiences;
mod audit_trail;
mod breaker;
mod browser;
mod budget;
mod campaigns;
mod console_access;
mod console_campaigns;
mod content;
mod cross_origin;
mod docs;
mod erasure;
mod feedback;
mod form_token;
mod health;
mod heavy;
mod hygiene;
mod imports;
mod injection;
mod landing;
mod login;
mod logs;
mod orgs;
mod passkeys;
mod password;
mod register;
mod reports;
mod review_walk;
mod role_matrix;
mod segments;
mod senders;
mod sending;
mod sessions;
mod signup;
mod slow;
mod stored_secrets;
mod two_factor;
mod unsubscribe;
mod webhooks;
mod wire;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mos_auth::{ManualClock, PasswordHasher, Sealer};
use mos_db::testing::TestDb;
use mos_http::mail::SmtpMailer;
use mos_http::{AppState, Settings};
use reqwest::header::HeaderMap;
use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery staple";

/// Messages as the SMTP server received them, raw.
#[derive(Clone, Default)]
pub struct Inbox(Arc<Mutex<Vec<String>>>);

#[derive(Clone)]
struct Capture {
    current: Vec<u8>,
    inbox: Inbox,
}

impl mailin_embedded::Handler for Capture {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, _to: &[String]) -> mailin_embedded::Response {
        self.current.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        self.inbox.0.lock().unwrap().push(String::from_utf8_lossy(&self.current).into_owned());
        mailin_embedded::response::OK
    }
}

impl Inbox {
    /// A real SMTP server on a free loopback port, serving until the test process ends.
    fn serve() -> (Self, SocketAddr) {
        let inbox = Inbox::default();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = mailin_embedded::Server::new(Capture { current: Vec::new(), inbox: inbox.clone() });
        server.with_name("mail.test").with_ssl(mailin_embedded::SslConfig::None).unwrap().with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        (inbox, addr)
    }

    pub fn all_to(&self, address: &str) -> Vec<String> {
        let to = format!("To: {address}");
        self.0.lock().unwrap().iter().filter(|m| m.lines().any(|l| l == to)).cloned().collect()
    }

    /// Waits for the `n`th message (1-based) to `address` whose subject contains `subject`.
    pub async fn wait_for(&self, address: &str, subject: &str, n: usize) -> String {
        // Up to 15 s: mail leaves in the background, and CI machines are busy.
        for _ in 0..600 {
            let found: Vec<String> = self.all_to(address).into_iter().filter(|m| m.contains(subject)).collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no message {n} to {address} about {subject:?}; inbox: {:#?}", self.all_to(address));
    }
}

/// The body as a mail client shows it: quoted-printable decoded when the message uses it.
fn readable(message: &str) -> String {
    if !message.contains("Content-Transfer-Encoding: quoted-printable") {
        return message.to_owned();
    }
    let joined = message.replace("=\r\n", "").replace("=\n", "");
    let mut out = Vec::new();
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()),
        ) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The token of the link in a message.
pub fn token_in(message: &str) -> String {
    let message = readable(message);
    let start = message.find("token=").expect("a link with a token") + "token=".len();
    message[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn problem_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }

    pub fn session_token(&self) -> String {
        self.body["session"]["token"].as_str().unwrap_or_else(|| panic!("no session in {}", self.body)).to_owned()
    }
}

/// The audit signing key of every test server: it signs the checkpoints of consent receipts.
pub static AUDIT_SIGNING_KEY: std::sync::LazyLock<ed25519_dalek::SigningKey> =
    std::sync::LazyLock::new(|| ed25519_dalek::SigningKey::from_bytes(&[7; 32]));

pub struct TestApp {
    pub base: String,
    /// What links in mail and passkeys name: `http://localhost` and the port of `base`.
    pub public_url: String,
    pub clock: ManualClock,
    pub inbox: Inbox,
    pub http: reqwest::Client,
    pub pool: mos_db::AppPool,
    pub readiness: mos_http::Readiness,
    /// The server's password hasher (a clone sees what the server's checked).
    pub hasher: PasswordHasher,
    /// The server's address keys, for contacts and suppressions written beside the API.
    pub address_keys: mos_auth::AddressKeys,
    /// The server's sealing key, for opening what it sealed (a sender's DKIM key) beside the API.
    pub sealer: Sealer,
    /// The job runner of the server's process, when it has one; dropping it stops it.
    _jobs: Option<mos_db::jobs::runner::Running>,
    /// Wakes it, for a job queued beside the API.
    waker: Option<mos_db::jobs::runner::Waker>,
    /// Last, so that it is dropped after the job runner that uses it.
    pub db: TestDb,
}

/// The job runner of a test server: none, or one that also sends campaigns through `relay`
/// (the test's own SMTP server when none is named) if the server's address is https.
enum Jobs {
    Off,
    /// Campaigns go to `relay` (the test's own SMTP server if none) through an outbox adjusted
    /// by `outbox`.
    On {
        relay: Option<String>,
        outbox: fn(&mut mos_http::sending::Outbox),
    },
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_on(TestDb::new().await, PasswordHasher::new(4), |_| {}).await
    }

    /// A server on an existing database, hashing with `hasher` (a later release's parameters),
    /// with its settings adjusted by `tune`.
    pub async fn spawn_on(db: TestDb, hasher: PasswordHasher, tune: impl FnOnce(&mut Settings)) -> Self {
        let pool = db.app_pool(8).await;
        Self::spawn_with(db, pool, hasher, tune, (mos_http::Limits::default(), Jobs::Off)).await
    }

    /// A server with a job runner in its process, as `mos serve` has, with its settings
    /// adjusted by `tune`. The runner never polls on its own within a test's time: a job
    /// starts only because the request that queued it woke the runner.
    pub async fn spawn_with_jobs(tune: impl FnOnce(&mut Settings)) -> Self {
        let db = TestDb::new().await;
        let pool = db.app_pool(8).await;
        Self::spawn_with(
            db,
            pool,
            PasswordHasher::new(4),
            tune,
            (mos_http::Limits::default(), Jobs::On { relay: None, outbox: |_| {} }),
        )
        .await
    }

    /// A server with a job runner that sends campaigns through the relay `relay_url`, with an
    /// https public address, as a server that sends must have, and its outbox adjusted by `outbox`.
    pub async fn spawn_sending_through(
        relay_url: &str,
        public_url: &str,
        outbox: fn(&mut mos_http::sending::Outbox),
    ) -> Self {
        let db = TestDb::new().await;
        let pool = db.app_pool(8).await;
        let public_url = public_url.to_owned();
        let jobs = Jobs::On { relay: Some(relay_url.to_owned()), outbox };
        Self::spawn_with(
            db,
            pool,
            PasswordHasher::new(4),
            |s| s.public_url = public_url,
            (mos_http::Limits::default(), jobs),
        )
        .await
    }

    /// A server whose pool has `connections` connections.
    pub async fn spawn_with_pool_size(connections: u32) -> Self {
        let db = TestDb::new().await;
        let pool = db.app_pool(connections).await;
        Self::spawn_with(db, pool, PasswordHasher::new(4), |_| {}, (mos_http::Limits::default(), Jobs::Off)).await
    }

    /// A server whose pool reaches the database through `wire`, which counts what it says.
    pub async fn spawn_counted() -> (Self, wire::Wire) {
        let db = TestDb::new().await;
        let (wire, options) = wire::Wire::between(&db.app_options()).await;
        let pool =
            mos_db::AppPool::connect(mos_db::AppPoolOptions { connect: options, set_role: false, max_connections: 8 })
                .await
                .unwrap();
        (
            Self::spawn_with(db, pool, PasswordHasher::new(4), |_| {}, (mos_http::Limits::default(), Jobs::Off)).await,
            wire,
        )
    }

    /// A server that serves within `limits`.
    pub async fn spawn_limited(limits: mos_http::Limits) -> Self {
        let db = TestDb::new().await;
        let pool = db.app_pool(8).await;
        Self::spawn_with(db, pool, PasswordHasher::new(4), |_| {}, (limits, Jobs::Off)).await
    }

    async fn spawn_with(
        db: TestDb,
        pool: mos_db::AppPool,
        hasher: PasswordHasher,
        tune: impl FnOnce(&mut Settings),
        (limits, jobs): (mos_http::Limits, Jobs),
    ) -> Self {
        let (inbox, smtp) = Inbox::serve();
        let clock = ManualClock::starting_at(chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0));
        let sealer = Sealer::from_base64(&Sealer::generate_key_base64(&mut rand::thread_rng())).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // Passkeys need a host name: localhost is the one that browsers allow over plain http.
        let public_url = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        // Webhook receivers of the tests listen on loopback over plain http and fail on purpose:
        // allowed here, and retried within a test's time. A test of the defaults tunes them back.
        let webhooks = mos_http::WebhookSettings {
            allow_private: true,
            allow_http_loopback: true,
            retry_base: Duration::from_millis(200),
            retry_cap: Duration::from_secs(1),
            poll: Duration::from_millis(100),
            ..mos_http::WebhookSettings::default()
        };
        let mut settings = Settings { public_url, webhooks, ..Settings::default() };
        tune(&mut settings);
        let mut state = AppState::new(
            pool.clone(),
            Arc::new(clock.clone()),
            hasher.clone(),
            sealer.clone(),
            Arc::new(SmtpMailer::from_url(&format!("smtp://{smtp}")).unwrap()),
            settings,
        )
        .await
        .unwrap();
        state.audit_signer = Some(Arc::new(AUDIT_SIGNING_KEY.clone()));
        let readiness = state.readiness.clone();
        let public_url = state.settings.public_url.clone();
        let address_keys = state.sealer.address_keys().clone();
        let (relay, adjust) = match &jobs {
            Jobs::On { relay: Some(url), outbox } => (url.clone(), *outbox),
            Jobs::On { relay: None, outbox } => (format!("smtp://{smtp}"), *outbox),
            Jobs::Off => (format!("smtp://{smtp}"), (|_| {}) as fn(&mut mos_http::sending::Outbox)),
        };
        let jobs = matches!(jobs, Jobs::On { .. }).then(|| {
            use mos_db::audiences::import::{self, IMPORT_JOB};
            use mos_db::campaigns::SEND_JOB;
            use mos_db::jobs::runner::{Runner, RunnerConfig, Work};
            use mos_http::sending::{self, Links, Outbox};
            let keys: Arc<dyn mos_domain::audiences::AddressKeyer> = Arc::new(address_keys.clone());
            let config = RunnerConfig { workers: 1, poll: Duration::from_secs(3600), ..RunnerConfig::default() };
            let import_keys = keys.clone();
            let deliverer = Arc::new(
                mos_http::webhooks::Deliverer::new(Arc::new(state.sealer.clone()), state.settings.webhooks.clone())
                    .unwrap(),
            );
            let mut runner = Runner::new(pool.clone(), config)
                .handle(IMPORT_JOB, Arc::new(move |work: Work| Box::pin(import::run(work, import_keys.clone()))))
                .handle(
                    mos_db::webhooks::WEBHOOK_JOB,
                    Arc::new(move |work: Work| Box::pin(mos_http::webhooks::run(work, deliverer.clone()))),
                );
            // Campaigns are sent, as `mos serve` sends them, by a server with an https address,
            // through the test's SMTP server.
            if let Ok(links) = Links::new(&state.sealer, &state.settings.public_url) {
                let mut outbox = Outbox::new(&relay, Arc::new(state.sealer.clone()), keys, links).unwrap();
                adjust(&mut outbox);
                let outbox = Arc::new(outbox);
                runner =
                    runner.handle(SEND_JOB, Arc::new(move |work: Work| Box::pin(sending::run(work, outbox.clone()))));
            }
            state.jobs = Some(runner.waker());
            runner.start()
        });
        let waker = state.jobs.clone();
        tokio::spawn(mos_http::serve(listener, state, limits, std::future::pending()));
        Self {
            base,
            public_url,
            db,
            clock,
            inbox,
            http: reqwest::Client::new(),
            pool,
            readiness,
            hasher,
            address_keys,
            sealer,
            _jobs: jobs,
            waker,
        }
    }

    /// Wakes the server's job runner, as a request that queues a job does.
    pub fn wake_jobs(&self) {
        self.waker.as_ref().expect("a server with a job runner").wake();
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Reply { status, headers, body }
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body)).await
    }

    pub async fn post_as(&self, token: &str, path: &str, body: Value) -> Reply {
        self.send(self.http.post(format!("{}{path}", self.base)).bearer_auth(token).json(&body)).await
    }

    pub async fn get_as(&self, token: &str, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base)).bearer_auth(token)).await
    }

    pub async fn call_as(&self, method: &str, token: &str, path: &str, body: Value) -> Reply {
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        self.send(self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token).json(&body)).await
    }

    /// An organization created by `admin`, with one member of each other role, all joined
    /// through emailed invitations: slug and each role's session token.
    pub async fn org_with_every_role(&self, slug: &str) -> Members {
        let admin = self.signed_in(&format!("admin@{slug}.example")).await;
        let created =
            self.post_as(&admin, "/v1/orgs", serde_json::json!({ "slug": slug, "name": "Acme Health" })).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let mut members = Members {
            slug: slug.to_owned(),
            admin,
            reviewer: String::new(),
            creator: String::new(),
            viewer: String::new(),
        };
        for role in ["REVIEWER", "CREATOR", "VIEWER"] {
            let email = format!("{}@{slug}.example", role.to_lowercase());
            let token = self.signed_in(&email).await;
            self.join(&members.admin, slug, &email, role, &token).await;
            match role {
                "REVIEWER" => members.reviewer = token,
                "CREATOR" => members.creator = token,
                _ => members.viewer = token,
            }
        }
        members
    }

    /// `admin` invites `email` to `slug` with `role`, and the invitee (signed in as `token`)
    /// accepts through the emailed link.
    pub async fn join(&self, admin: &str, slug: &str, email: &str, role: &str, token: &str) {
        let mail = self.invite(admin, slug, email, role).await;
        let accepted =
            self.post_as(token, "/v1/invitations/accept", serde_json::json!({ "token": token_in(&mail) })).await;
        assert_eq!(accepted.status, 200, "{}", accepted.body);
    }
}

impl TestApp {
    /// `admin` invites `email` to `slug` with `role`: the invitation mail as received.
    pub async fn invite(&self, admin: &str, slug: &str, email: &str, role: &str) -> String {
        let before = self.inbox.all_to(email).iter().filter(|m| m.contains("on Marketing OS")).count();
        let body = serde_json::json!({ "email": email, "role": role });
        let invited = self.post_as(admin, &format!("/v1/orgs/{slug}/invitations"), body).await;
        assert_eq!(invited.status, 201, "{}", invited.body);
        self.inbox.wait_for(email, "on Marketing OS", before + 1).await
    }

    /// How many invitations to `email` the database holds, in any organization (as the superuser).
    pub async fn invitations_of(&self, email: &str) -> i64 {
        sqlx::query_scalar("select count(*) from app.invitations where email = $1")
            .bind(email)
            .fetch_one(&mut self.db.superuser().await)
            .await
            .unwrap()
    }

    /// Registers `email` and verifies it through the emailed link.
    pub async fn sign_up(&self, email: &str) {
        let reply = self.post("/v1/auth/register", serde_json::json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        let mail = self.inbox.wait_for(email, "Confirm your email address", 1).await;
        let reply = self.post("/v1/auth/verify-email", serde_json::json!({ "token": token_in(&mail) })).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post("/v1/auth/login", serde_json::json!({ "email": email, "password": password })).await
    }

    /// A verified user with a live session: its bearer token.
    pub async fn signed_in(&self, email: &str) -> String {
        self.sign_up(email).await;
        let reply = self.login(email, PASSWORD).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.session_token()
    }
}

/// A console page as a browser gets it: the form-token seed cookie it set (`name=value`) and the
/// token its forms carry.
pub struct ConsoleForm {
    pub seed: String,
    pub token: String,
}

impl TestApp {
    /// Opens the console page `path` with the cookies `cookie` (a session, a seed), and reads
    /// its form token; the seed is the one it set, or else the one sent.
    pub async fn console_form(&self, path: &str, cookie: &str) -> ConsoleForm {
        let page = self.http.get(format!("{}{path}", self.base)).header("cookie", cookie).send().await.unwrap();
        let set = page
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .find(|c| c.starts_with("__Host-mos_form="));
        let sent = cookie.split("; ").find(|c| c.starts_with("__Host-mos_form=")).map(str::to_owned);
        let seed = set.or(sent).expect("a form seed");
        let html = page.text().await.unwrap();
        let token = html.split("name=\"form_token\" value=\"").nth(1).expect("a form").split('"').next().unwrap();
        ConsoleForm { seed, token: token.to_owned() }
    }
}

/// The session tokens of an organization's members, one per role.
pub struct Members {
    pub slug: String,
    pub admin: String,
    pub reviewer: String,
    pub creator: String,
    pub viewer: String,
}

impl Members {
    pub fn by_role(&self) -> [(&'static str, &str); 4] {
        [("ADMIN", &self.admin), ("REVIEWER", &self.reviewer), ("CREATOR", &self.creator), ("VIEWER", &self.viewer)]
    }
}
