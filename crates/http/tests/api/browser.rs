//! The console in a real browser: headless Chromium driven over WebDriver (Debian's `chromium`
//! and `chromium-driver`), each page checked with axe-core (npm) for serious or critical
//! accessibility violations, and a screenshot of each at desktop and phone width under
//! `target/screenshots/`.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::{token_in, TestApp, PASSWORD};

/// A chromedriver of its own on a free port, stopped when dropped.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let exe = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let child = std::process::Command::new(&exe)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{exe}: {e}; apt-get install chromium chromium-driver (scripts/test does as root)")
            });
        let driver = Self { child, url: format!("http://127.0.0.1:{port}") };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("chromedriver did not listen");
    }

    /// A fresh browser session: its own cookies, like another person's browser.
    async fn browser(&self) -> Browser {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"] }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector).capabilities(capabilities).connect(&self.url).await.unwrap();
        Browser { client }
    }
}

struct Browser {
    client: Client,
}

/// axe-core's script, installed by `scripts/test` with npm.
fn axe_script() -> String {
    let path = std::env::var_os("AXE_CORE_JS").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/axe/node_modules/axe-core/axe.min.js")
    });
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("axe-core at {}: {e}; scripts/test installs it with npm", path.display()))
}

impl Browser {
    async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    async fn text(&self) -> String {
        self.client.find(Locator::Css("main")).await.unwrap().text().await.unwrap()
    }

    async fn heading(&self) -> String {
        match self.client.find(Locator::Css("h1")).await {
            Ok(h1) => h1.text().await.unwrap(),
            Err(_) => panic!("a page without a heading: {}", self.client.source().await.unwrap_or_default()),
        }
    }

    /// Fills the form that `form` selects with `fields`, submits it, and waits for the page
    /// that answers.
    async fn submit(&self, form: &str, fields: &[(&str, &str)]) {
        let element = self.client.form(Locator::Css(form)).await.unwrap();
        for (name, value) in fields {
            element.set_by_name(name, value).await.unwrap();
        }
        self.client.execute("window.mosBefore = true;", Vec::new()).await.unwrap();
        element.submit().await.unwrap();
        for _ in 0..200 {
            let loaded = self
                .client
                .execute("return window.mosBefore !== true && document.readyState === 'complete';", Vec::new())
                .await
                .unwrap();
            if loaded == Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no page answered the form {form}: {}", self.client.source().await.unwrap_or_default());
    }

    /// Runs axe-core on the page: no serious or critical violation. Saves the page at desktop and
    /// phone width.
    async fn check(&self, name: &str) {
        let axe = axe_script();
        self.client.execute(&axe, Vec::new()).await.unwrap();
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document).then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }))));",
                Vec::new(),
            )
            .await
            .unwrap();
        let serious: Vec<&Value> = found
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
            .collect();
        assert!(serious.is_empty(), "{name}: {serious:?}");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        for (width, height, suffix) in [(1280, 900, "desktop"), (390, 844, "phone")] {
            self.client.set_window_size(width, height).await.unwrap();
            let overflow = self
                .client
                .execute(
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                    Vec::new(),
                )
                .await
                .unwrap();
            assert!(overflow.as_i64().unwrap_or(0) <= 0, "{name} scrolls sideways at {width} px: {overflow}");
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}-{suffix}.png")), png).unwrap();
        }
        self.client.set_window_size(1280, 900).await.unwrap();
    }
}

#[tokio::test]
async fn a_new_user_signs_up_turns_on_two_factor_creates_an_organization_invites_a_colleague_and_reads_the_trail() {
    let app = TestApp::spawn().await;
    let driver = Driver::start().await;
    let ada = driver.browser().await;

    ada.open(&format!("{}/", app.public_url)).await;
    assert_eq!(ada.heading().await, "Healthcare marketing, reviewed before it goes out");
    ada.check("front-page").await;
    ada.open(&format!("{}/sign-up", app.public_url)).await;
    ada.check("sign-up").await;
    ada.submit("form[action='/sign-up']", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(ada.heading().await, "Check your email");
    ada.check("check-your-email").await;

    let mail = app.inbox.wait_for("ada@example.com", "Confirm your email address", 1).await;
    ada.open(&format!("{}/verify-email?token={}", app.public_url, token_in(&mail))).await;
    ada.check("verify-email").await;
    ada.submit("form[action='/verify-email']", &[]).await;
    assert_eq!(ada.heading().await, "Address confirmed");
    ada.check("address-confirmed").await;

    ada.open(&format!("{}/sign-in", app.public_url)).await;
    ada.check("sign-in").await;
    ada.submit("form[action='/sign-in']", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(ada.heading().await, "Your organizations", "signed in: {}", ada.text().await);
    ada.check("organizations").await;

    // Two-factor: the key shown on the page, the code computed from it at the server's time.
    ada.open(&format!("{}/account", app.public_url)).await;
    ada.check("account").await;
    ada.submit("form[action='/account/two-factor/setup']", &[]).await;
    ada.check("two-factor-setup").await;
    let key = ada.client.find(Locator::Css("#totp-key")).await.unwrap().text().await.unwrap();
    let totp = mos_auth::Totp::from_bytes(&data_encoding::BASE32_NOPAD.decode(key.as_bytes()).unwrap()).unwrap();
    let code_now = || totp.code(mos_auth::totp::step_at(mos_auth::Clock::now(&app.clock).timestamp()));
    ada.submit("form[action='/account/two-factor/confirm']", &[("code", &code_now())]).await;
    assert_eq!(ada.heading().await, "Two-factor authentication is on", "{}", ada.text().await);
    let codes = ada.client.find_all(Locator::Css("#recovery-codes li")).await.unwrap();
    assert_eq!(codes.len(), 10, "ten recovery codes, shown once");
    ada.check("two-factor-on").await;

    ada.submit("header form[action='/sign-out']", &[]).await;
    assert_eq!(ada.heading().await, "Sign in");
    ada.submit("form[action='/sign-in']", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(ada.heading().await, "Two-factor authentication");
    ada.check("sign-in-two-factor").await;
    app.clock.advance(chrono::Duration::seconds(30));
    ada.submit("form[action='/sign-in/two-factor']", &[("code", &code_now())]).await;
    assert_eq!(ada.heading().await, "Your organizations", "{}", ada.text().await);

    ada.submit("form[action='/orgs']", &[("name", "Acme Health"), ("slug", "acme")]).await;
    assert_eq!(ada.heading().await, "Acme Health");
    ada.submit("form[action='/orgs/acme/invite']", &[("email", "grace@example.com"), ("role", "CREATOR")]).await;
    assert!(ada.text().await.contains("grace@example.com as CREATOR"), "{}", ada.text().await);
    ada.check("organization").await;

    // Grace, in a browser of her own, with an account made through the API.
    app.sign_up("grace@example.com").await;
    let grace = driver.browser().await;
    let invitation = app.inbox.wait_for("grace@example.com", "Join Acme Health", 1).await;
    grace.open(&format!("{}/accept-invitation?token={}", app.public_url, token_in(&invitation))).await;
    grace.check("accept-invitation-signed-out").await;
    // Not signed in yet: the page's sign-in link comes back to the invitation.
    let link = grace.client.find(Locator::Css("main a[href^='/sign-in?next=']")).await.unwrap();
    let href = link.attr("href").await.unwrap().unwrap();
    grace.open(&format!("{}{href}", app.public_url)).await;
    assert_eq!(grace.heading().await, "Sign in");
    grace.submit("main form[action='/sign-in']", &[("email", "grace@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(grace.heading().await, "Accept an invitation", "{}", grace.text().await);
    grace.check("accept-invitation").await;
    grace.submit("form[action='/accept-invitation']", &[]).await;
    assert_eq!(grace.heading().await, "Acme Health");
    assert!(!grace.text().await.contains("Invite someone"), "a CREATOR sees no ADMIN controls");
    grace.check("organization-as-creator").await;

    // Eleven minutes on, making Grace a REVIEWER needs Ada to confirm it is her.
    app.clock.advance(chrono::Duration::minutes(11));
    ada.open(&format!("{}/orgs/acme", app.public_url)).await;
    let grace_id = app.get_as(&app.login("grace@example.com", PASSWORD).await.session_token(), "/v1/me").await.body
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ada.submit(&format!("form[action='/orgs/acme/members/{grace_id}/role']"), &[("role", "REVIEWER")]).await;
    assert_eq!(ada.heading().await, "Confirm it is you");
    ada.check("reauthenticate").await;
    ada.submit("form[action='/account/reauthenticate']", &[("password", PASSWORD), ("code", &code_now())]).await;
    assert_eq!(ada.heading().await, "Acme Health");
    ada.submit(&format!("form[action='/orgs/acme/members/{grace_id}/role']"), &[("role", "REVIEWER")]).await;
    assert_eq!(ada.heading().await, "Acme Health", "{}", ada.text().await);

    mos_db::chain::seal(&app.pool, None, chrono::Duration::minutes(5)).await.unwrap();
    ada.open(&format!("{}/orgs/acme/audit?verify=true", app.public_url)).await;
    let chain = ada.client.find(Locator::Css("#chain-state")).await.unwrap().text().await.unwrap();
    assert!(chain.starts_with("Intact: "), "{chain}");
    let trail = ada.text().await;
    for action in ["org.created", "invitation.created", "invitation.accepted", "member.added", "member.role_changed"] {
        assert!(trail.contains(action), "{action} missing from the trail page: {trail}");
    }
    ada.check("audit-trail").await;

    ada.submit("form[action='/orgs/acme/audit']", &[("action", "member.role_changed")]).await;
    let rows = ada.client.find_all(Locator::Css("main tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "the filter keeps Grace's role change alone: {}", ada.text().await);

    // The export link works with the browser's own session.
    let link = ada.client.find(Locator::LinkText("NDJSON")).await.unwrap().attr("href").await.unwrap().unwrap();
    let session = ada.client.get_named_cookie("__Host-mos_session").await.unwrap();
    let export = app
        .http
        .get(format!("{}{link}", app.base))
        .header("cookie", format!("__Host-mos_session={}", session.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    let lines = export.text().await.unwrap();
    assert!(lines.lines().any(|l| l.contains("\"member.role_changed\"")), "{lines}");

    ada.open(&format!("{}/account", app.public_url)).await;
    assert!(ada.text().await.contains("This session"));
    assert!(ada.text().await.contains("auth.login.succeeded"), "the account's events");
    ada.client.clone().close().await.unwrap();
    grace.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_form_without_our_token_is_refused_and_a_forged_admin_form_gets_the_apis_refusal() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    // Straight at the form handler, as another site would post it: no token, a foreign origin.
    let cross_site = app
        .http
        .post(format!("{}/orgs/acme/invite", app.base))
        .header("cookie", format!("__Host-mos_session={}", org.admin))
        .header("origin", "https://evil.example")
        .form(&[("form_token", "x"), ("email", "mallory@example.com"), ("role", "ADMIN")]);
    let reply = app.send(cross_site).await;
    assert_eq!(reply.status, 403);
    assert_eq!(app.invitations_of("mallory@example.com").await, 0, "nothing was done");

    // A VIEWER with a genuine form token of their own posts the ADMIN's form by hand.
    let page = app
        .http
        .get(format!("{}/orgs/acme", app.base))
        .header("cookie", format!("__Host-mos_session={}", org.viewer))
        .send()
        .await
        .unwrap();
    let seed = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-mos_form="))
        .unwrap();
    let seed = seed.split(';').next().unwrap().to_owned();
    let html = page.text().await.unwrap();
    assert!(!html.contains("Invite someone"), "no ADMIN controls for a VIEWER");
    let token = html.split("name=\"form_token\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let forged = app
        .http
        .post(format!("{}/orgs/acme/invite", app.base))
        .header("cookie", format!("__Host-mos_session={}; {seed}", org.viewer))
        .header("origin", app.public_url.as_str())
        .form(&[("form_token", token.as_str()), ("email", "mallory@example.com"), ("role", "ADMIN")]);
    let reply = app.send(forged).await;
    assert_eq!(reply.status, 403, "the API's own permission check");
    assert!(reply.body.as_str().unwrap().contains("does not allow"), "{}", reply.body);
    assert_eq!(app.invitations_of("mallory@example.com").await, 0, "nothing was done");
    // Mail leaves in the background: once an invitation made after the refusals has arrived,
    // one that they had sent would have too.
    app.invite(&org.admin, "acme", "grace@example.com", "VIEWER").await;
    assert!(app.inbox.all_to("mallory@example.com").is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_forgotten_password_is_reset_from_the_emailed_link_and_a_session_ended_from_another_browser() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    let driver = Driver::start().await;
    let laptop = driver.browser().await;
    laptop.open(&format!("{}/sign-in", app.public_url)).await;
    laptop.submit("form[action='/sign-in']", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(laptop.heading().await, "Your organizations");

    // From a second browser, Ada ends the laptop's session.
    let phone = driver.browser().await;
    phone.open(&format!("{}/sign-in", app.public_url)).await;
    phone.submit("form[action='/sign-in']", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    phone.open(&format!("{}/account", app.public_url)).await;
    phone.submit("main form[action^='/account/sessions/']", &[]).await;
    assert_eq!(phone.heading().await, "Your account");
    laptop.open(&format!("{}/account", app.public_url)).await;
    assert_eq!(laptop.heading().await, "Sign in", "the laptop's session ended");

    // The laptop has forgotten the password: the emailed link lands on a working page.
    laptop.open(&format!("{}/forgot-password", app.public_url)).await;
    laptop.check("forgot-password").await;
    laptop.submit("form[action='/forgot-password']", &[("email", "ada@example.com")]).await;
    assert_eq!(laptop.heading().await, "Check your email");
    let mail = app.inbox.wait_for("ada@example.com", "Reset your password", 1).await;
    laptop.open(&format!("{}/reset-password?token={}", app.public_url, token_in(&mail))).await;
    laptop.check("reset-password").await;
    laptop.submit("form[action='/reset-password']", &[("new_password", "an entirely new passphrase")]).await;
    assert_eq!(laptop.heading().await, "Password changed", "{}", laptop.text().await);
    laptop.open(&format!("{}/sign-in", app.public_url)).await;
    laptop
        .submit("form[action='/sign-in']", &[("email", "ada@example.com"), ("password", "an entirely new passphrase")])
        .await;
    assert_eq!(laptop.heading().await, "Your organizations");

    phone.open(&format!("{}/account", app.public_url)).await;
    assert_eq!(phone.heading().await, "Sign in", "a reset signs out every session");
    laptop.client.clone().close().await.unwrap();
    phone.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn the_page_warns_a_minute_before_the_idle_timeout_signs_the_user_out() {
    let db = mos_db::testing::TestDb::new().await;
    let app = TestApp::spawn_on(db, mos_auth::PasswordHasher::new(4), |s| {
        s.session_idle = chrono::Duration::seconds(62);
    })
    .await;
    app.sign_up("ada@example.com").await;
    let driver = Driver::start().await;
    let ada = driver.browser().await;
    ada.open(&format!("{}/sign-in", app.public_url)).await;
    ada.submit("form[action='/sign-in']", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    let warning =
        ada.client.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("main p[role='alert']")).await;
    let text = warning.unwrap().text().await.unwrap();
    assert!(text.contains("signed out in about a minute"), "{text}");
    ada.check("idle-warning").await;
    ada.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_spent_verification_link_offers_a_new_one() {
    let app = TestApp::spawn().await;
    let reply = app.post("/v1/auth/register", json!({ "email": "ada@example.com", "password": PASSWORD })).await;
    assert_eq!(reply.status, 202);
    let driver = Driver::start().await;
    let ada = driver.browser().await;
    ada.open(&format!("{}/verify-email?token=not-a-token-of-ours", app.public_url)).await;
    ada.submit("form[action='/verify-email']", &[]).await;
    assert!(ada.text().await.contains("invalid, expired or already used"), "{}", ada.text().await);
    ada.check("verify-email-failed").await;
    ada.submit("form[action='/verify-email/resend']", &[("email", "ada@example.com")]).await;
    assert_eq!(ada.heading().await, "Check your email");
    app.inbox.wait_for("ada@example.com", "Confirm your email address", 2).await;
    ada.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn an_admin_requires_two_factor_and_a_member_without_it_can_still_leave() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let driver = Driver::start().await;
    let admin = driver.browser().await;
    admin.open(&format!("{}/sign-in", app.public_url)).await;
    admin.submit("form[action='/sign-in']", &[("email", "admin@acme.example"), ("password", PASSWORD)]).await;
    admin.open(&format!("{}/orgs/acme", app.public_url)).await;
    admin.submit("form[action='/orgs/acme/policy']", &[]).await;
    // An ADMIN without two-factor would lock themselves out: the API's refusal, readable.
    assert_eq!(admin.heading().await, "Not done");
    assert!(admin.text().await.contains("turn on two-factor for your own account first"), "{}", admin.text().await);
    admin.check("not-done").await;

    // The viewer leaves, from their own browser.
    let viewer = driver.browser().await;
    viewer.open(&format!("{}/sign-in", app.public_url)).await;
    viewer.submit("form[action='/sign-in']", &[("email", "viewer@acme.example"), ("password", PASSWORD)]).await;
    viewer.open(&format!("{}/orgs/acme", app.public_url)).await;
    assert!(!viewer.text().await.contains("Require two-factor"), "the policy is an ADMIN's control");
    viewer.submit("form[action='/orgs/acme/leave']", &[]).await;
    assert_eq!(viewer.heading().await, "Your organizations");
    assert!(!viewer.text().await.contains("Acme Health"));
    let members = app.get_as(&org.admin, "/v1/orgs/acme/members").await.body;
    assert!(members.as_array().unwrap().iter().all(|m| m["role"] != "VIEWER"), "{members}");
    admin.client.clone().close().await.unwrap();
    viewer.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_creator_drafts_and_submits_a_reviewer_approves_and_an_admin_publishes_in_the_console() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let driver = Driver::start().await;
    let sign_in = |who: &'static str| {
        let app = &app;
        let driver = &driver;
        async move {
            let browser = driver.browser().await;
            browser.open(&format!("{}/sign-in", app.public_url)).await;
            let email = format!("{who}@acme.example");
            browser.submit("form[action='/sign-in']", &[("email", &email), ("password", PASSWORD)]).await;
            browser
        }
    };

    let creator = sign_in("creator").await;
    creator.open(&format!("{}/orgs/acme/content/new", app.public_url)).await;
    creator.check("content-new").await;
    let fields = [
        ("title", "Flu shots are here"),
        ("channel", "web_page"),
        ("audience", "Patients 65 and older"),
        ("tags", "flu, Vaccines"),
        ("body", "Book your flu shot today.\nWalk-ins welcome."),
    ];
    creator.submit("form[action='/orgs/acme/content']", &fields).await;
    assert_eq!(creator.heading().await, "Flu shots are here");
    assert!(creator.text().await.contains("draft"), "{}", creator.text().await);
    let path = creator.client.current_url().await.unwrap().path().to_owned();
    let edit = format!("form[action='{path}/edit']");
    creator.submit(&edit, &[("body", "Book your flu shot today.\nWalk-ins welcome on Saturdays.")]).await;
    assert!(creator.text().await.contains("Version\n2"), "{}", creator.text().await);
    creator.check("content-item").await;
    creator.open(&format!("{}{path}/diff?from=1&to=2", app.public_url)).await;
    assert!(creator.text().await.contains("+Walk-ins welcome on Saturdays."), "{}", creator.text().await);
    creator.check("content-diff").await;
    creator.open(&format!("{}{path}", app.public_url)).await;
    assert!(!creator.text().await.contains("Approve this version"), "a creator does not approve");
    creator.submit(&format!("form[action='{path}/step/submit']"), &[]).await;
    assert!(creator.text().await.contains("in review"), "{}", creator.text().await);

    let reviewer = sign_in("reviewer").await;
    reviewer.open(&format!("{}/orgs/acme/content?mine=review", app.public_url)).await;
    assert_eq!(reviewer.heading().await, "Waiting for my review");
    assert!(reviewer.text().await.contains("Flu shots are here"), "{}", reviewer.text().await);
    reviewer.check("content-waiting").await;
    reviewer.open(&format!("{}{path}", app.public_url)).await;
    reviewer
        .submit(&format!("form[action='{path}/step/approve']"), &[("note", "Claims checked against the label.")])
        .await;
    assert!(reviewer.text().await.contains("approved"), "{}", reviewer.text().await);

    let admin = sign_in("admin").await;
    admin.open(&format!("{}{path}", app.public_url)).await;
    admin.submit(&format!("form[action='{path}/step/publish']"), &[]).await;
    let page = admin.text().await;
    assert!(page.contains("published") && page.contains("Claims checked against the label."), "{page}");
    admin.open(&format!("{}/orgs/acme/content?state=published", app.public_url)).await;
    admin.check("content-list").await;
    let listed = app.get_as(&org.viewer, "/v1/orgs/acme/content?state=published").await.body;
    assert_eq!(listed["items"][0]["version"], 2);
    for browser in [creator, reviewer, admin] {
        browser.client.clone().close().await.unwrap();
    }
}

#[tokio::test]
async fn an_admin_declares_a_purpose_a_creator_adds_a_contact_and_records_consent_and_a_viewer_sees_counts() {
    let app = TestApp::spawn().await;
    app.org_with_every_role("acme").await;
    let driver = Driver::start().await;
    let sign_in = |who: &'static str| {
        let app = &app;
        let driver = &driver;
        async move {
            let browser = driver.browser().await;
            browser.open(&format!("{}/sign-in", app.public_url)).await;
            let email = format!("{who}@acme.example");
            browser.submit("form[action='/sign-in']", &[("email", &email), ("password", PASSWORD)]).await;
            browser
        }
    };

    let admin = sign_in("admin").await;
    admin.open(&format!("{}/orgs/acme/purposes", app.public_url)).await;
    admin.submit("form[action='/orgs/acme/purposes']", &[("name", "Flu reminders")]).await;
    assert_eq!(admin.heading().await, "Flu reminders");
    let purpose = admin.client.current_url().await.unwrap().path().to_owned();
    admin.submit(&format!("form[action='{purpose}/notices']"), &[("text", "We write before flu season.")]).await;
    let page = admin.text().await;
    assert!(page.contains("SHA-256") && page.contains("We write before flu season."), "{page}");
    admin.check("audience-purpose").await;
    admin.open(&format!("{}/orgs/acme/purposes", app.public_url)).await;
    admin
        .submit("form[action='/orgs/acme/attributes']", &[("name", "clinic"), ("kind", "text"), ("max_length", "80")])
        .await;
    assert!(admin.text().await.contains("clinic"), "{}", admin.text().await);
    admin.check("audience-purposes").await;
    let token = app.login("admin@acme.example", PASSWORD).await.session_token();
    let notice = app.get_as(&token, &format!("/v1{purpose}/notices")).await;
    let sha = notice.body["notices"][0]["sha256"].as_str().unwrap().to_owned();

    let creator = sign_in("creator").await;
    creator.open(&format!("{}/orgs/acme/contacts", app.public_url)).await;
    creator
        .submit(
            "form[action='/orgs/acme/contacts'][method='post']",
            &[("address", "ana@example.com"), ("name", "Ana Silva"), ("tags", "vip")],
        )
        .await;
    assert_eq!(creator.heading().await, "ana@example.com");
    let contact = creator.client.current_url().await.unwrap().path().to_owned();
    creator.submit(&format!("form[action='{contact}/consent']"), &[("notice", &sha)]).await;
    let page = creator.text().await;
    assert!(
        page.contains("Consent given") && page.contains("creator@acme.example"),
        "the timeline names the member: {page}"
    );
    assert!(!page.contains(&contact.rsplit('/').next().unwrap().to_owned()), "no id on the page: {page}");
    creator.check("audience-contact").await;
    creator.open(&format!("{}/orgs/acme/contacts?q=ana", app.public_url)).await;
    assert!(creator.text().await.contains("Ana Silva"), "{}", creator.text().await);
    creator.check("audience-contacts").await;
    creator.open(&format!("{}/orgs/acme/suppressions", app.public_url)).await;
    creator.submit("form[action='/orgs/acme/suppressions'][method='post']", &[("address", "gone@example.com")]).await;
    assert!(creator.text().await.contains("Manual"), "{}", creator.text().await);
    creator.check("audience-suppressions").await;

    // The ADMIN sees the person's rights on the contact's page, and erases behind a confirmation.
    admin.open(&format!("{}{contact}", app.public_url)).await;
    let page = admin.text().await;
    assert!(page.contains("Download the consent receipt") && page.contains("Erase this contact"), "{page}");
    assert!(page.contains("Download everything held about this person"), "{page}");
    admin.check("audience-contact-rights").await;
    admin.open(&format!("{}{contact}/erase", app.public_url)).await;
    assert_eq!(admin.heading().await, "Erase a contact");
    admin.check("audience-erase").await;
    admin.submit(&format!("form[action='{contact}/erase']"), &[]).await;
    let page = admin.text().await;
    assert!(page.contains("The contact was erased") && !page.contains("Ana Silva"), "{page}");

    let viewer = sign_in("viewer").await;
    viewer.open(&format!("{}/orgs/acme/audience", app.public_url)).await;
    let page = viewer.text().await;
    assert!(page.contains("Flu reminders") && page.contains("counts only") && !page.contains("ana@"), "{page}");
    viewer.check("audience-overview").await;
    viewer.open(&format!("{}/orgs/acme/contacts", app.public_url)).await;
    assert!(!viewer.text().await.contains("ana@"), "{}", viewer.text().await);
    for browser in [admin, creator, viewer] {
        browser.client.clone().close().await.unwrap();
    }
}

/// WebDriver's WebAuthn extension: a virtual platform authenticator with user verification, for
/// the browser session, so that passkey ceremonies complete without a person.
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl fantoccini::wd::WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/webauthn/authenticator", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        (http::Method::POST, Some(options.to_string()))
    }
}

impl Browser {
    async fn with_authenticator(self) -> Self {
        self.client.issue_cmd(AddVirtualAuthenticator).await.unwrap();
        self
    }

    /// Clicks the button that `css` selects (a script's, not a form's) and waits until the page
    /// says `expected`.
    async fn click_until(&self, css: &str, expected: &str) {
        self.client.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
        self.until(css, expected).await;
    }

    /// Waits until the page says `expected`, after what `cause` did.
    async fn until(&self, cause: &str, expected: &str) {
        for _ in 0..200 {
            // The page may be replaced between finding its main element and reading it.
            let text = match self.client.find(Locator::Css("main")).await {
                Ok(main) => main.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(expected) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{cause}: the page never said {expected:?}: {}", self.text().await);
    }
}

#[tokio::test]
async fn a_passkey_added_on_the_account_page_signs_in_and_the_organization_policy_waits_for_one() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let driver = Driver::start().await;
    // The relying party is the public URL's host: the browser must be at localhost.
    let site = app.public_url.clone();

    let admin = driver.browser().await.with_authenticator().await;
    admin.open(&format!("{site}/sign-in")).await;
    admin.submit("form[action='/sign-in']", &[("email", "admin@acme.example"), ("password", PASSWORD)]).await;
    admin.open(&format!("{site}/account")).await;
    admin.client.find(Locator::Css("#passkey-name")).await.unwrap().send_keys("Admin laptop").await.unwrap();
    admin.click_until("button[data-passkey='register']", "Remove Admin laptop").await;
    admin.check("account-passkeys").await;
    admin.submit("form[action='/sign-out']", &[]).await;
    admin.open(&format!("{site}/sign-in")).await;
    admin.click_until("button[data-passkey='sign-in']", "Your organizations").await;
    let events = app.get_as(&org.admin, "/v1/me/events").await;
    assert_eq!(events.status, 401, "adding the passkey signed out the admin's other sessions");
    admin.open(&format!("{site}/orgs/acme")).await;
    admin.submit("form[action='/orgs/acme/policy']:nth-of-type(2)", &[]).await;
    assert!(admin.text().await.contains("Members must sign in with a passkey."), "{}", admin.text().await);

    // A member with two-factor but no passkey is kept out, and told what to do.
    let totp = {
        let token = app.login("viewer@acme.example", PASSWORD).await.session_token();
        let enrollment = app.post_as(&token, "/v1/me/two-factor/setup", json!({})).await.body;
        let secret = data_encoding::BASE32_NOPAD.decode(enrollment["secret"].as_str().unwrap().as_bytes()).unwrap();
        let totp = mos_auth::Totp::from_bytes(&secret).unwrap();
        let code = totp.code(mos_auth::totp::step_at(mos_auth::Clock::now(&app.clock).timestamp()));
        assert_eq!(app.post_as(&token, "/v1/me/two-factor/confirm", json!({ "code": code })).await.status, 200);
        totp
    };
    app.clock.advance(chrono::Duration::seconds(30));
    let viewer = driver.browser().await.with_authenticator().await;
    viewer.open(&format!("{site}/sign-in")).await;
    viewer.submit("form[action='/sign-in']", &[("email", "viewer@acme.example"), ("password", PASSWORD)]).await;
    let code = totp.code(mos_auth::totp::step_at(mos_auth::Clock::now(&app.clock).timestamp()));
    viewer.submit("form[action='/sign-in/two-factor']", &[("code", &code)]).await;
    viewer.open(&format!("{site}/orgs/acme")).await;
    assert!(viewer.text().await.contains("requires sign-in with a passkey"), "{}", viewer.text().await);
    viewer.check("passkey-required").await;
    // The first passkey comes through a link mailed to the member's address: a password and
    // a code alone cannot add it.
    viewer.open(&format!("{site}/account")).await;
    assert!(
        viewer.client.find(Locator::Css("button[data-passkey='register']")).await.is_err(),
        "{}",
        viewer.text().await
    );
    viewer.submit("form[action='/account/passkeys/enrollment']", &[]).await;
    assert!(viewer.text().await.contains("We sent a link to your address"), "{}", viewer.text().await);
    let mail = app.inbox.wait_for("viewer@acme.example", "Add your first passkey", 1).await;
    viewer.open(&format!("{site}/account/passkeys/enroll?token={}", crate::token_in(&mail))).await;
    viewer.check("passkey-enrollment").await;
    viewer.client.find(Locator::Css("#passkey-name")).await.unwrap().send_keys("Viewer phone").await.unwrap();
    viewer.click_until("button[data-passkey='register']", "Remove Viewer phone").await;
    app.inbox.wait_for("admin@acme.example", "added their first passkey", 1).await;
    viewer.submit("form[action='/sign-out']", &[]).await;
    viewer.open(&format!("{site}/sign-in")).await;
    viewer.click_until("button[data-passkey='sign-in']", "Your organizations").await;
    viewer.open(&format!("{site}/orgs/acme")).await;
    assert!(viewer.text().await.contains("viewer@acme.example"), "the member list: {}", viewer.text().await);

    // With the password, the passkey takes the place of the code.
    viewer.submit("form[action='/sign-out']", &[]).await;
    viewer.open(&format!("{site}/sign-in")).await;
    viewer.submit("form[action='/sign-in']", &[("email", "viewer@acme.example"), ("password", PASSWORD)]).await;
    viewer.check("two-factor-with-passkey").await;
    viewer.click_until("button[data-passkey='second-factor']", "Your organizations").await;
    viewer.open(&format!("{site}/orgs/acme")).await;
    assert!(viewer.text().await.contains("viewer@acme.example"), "{}", viewer.text().await);
    admin.client.clone().close().await.unwrap();
    viewer.client.clone().close().await.unwrap();
}

/// A page of another origin on our host: another port of localhost, so the same *site* (the
/// browser sends our `SameSite=Strict` cookies with its requests to us), as a sibling subdomain
/// would be in production. Serves `html` to every request; its address.
async fn sibling_page(html: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let html = html.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://localhost:{port}")
}

#[tokio::test]
async fn a_page_on_another_port_of_our_host_cannot_publish_or_archive_as_the_signed_in_admin() {
    let app = TestApp::spawn().await;
    let members = app.org_with_every_role("acme").await;
    let org = crate::content::Org::new(&app, &members);
    let id = org.item_in(&members, "approved").await;
    let driver = Driver::start().await;
    let site = app.public_url.clone();
    let admin = driver.browser().await;
    admin.open(&format!("{site}/sign-in")).await;
    admin.submit("form[action='/sign-in']", &[("email", "admin@acme.example"), ("password", PASSWORD)]).await;
    assert_eq!(admin.heading().await, "Your organizations");

    // What the attacker's page does: the API's own calls, with the browser's cookie, one after
    // the other; then it says so in its title.
    let item = format!("{site}{}", org.path(&format!("/{id}")));
    let attack = format!(
        "<!doctype html><title>waiting</title><script>\
         var post = function (step) {{ return fetch('{item}/' + step, {{ method: 'POST', mode: 'no-cors', credentials: 'include' }}); }};\
         post('publish').then(function () {{ return post('archive'); }})\
           .then(function () {{ document.title = 'sent'; }}, function (e) {{ document.title = 'failed: ' + e; }});\
         </script>"
    );
    admin.open(&sibling_page(attack).await).await;
    let mut title = String::new();
    for _ in 0..200 {
        title = admin.client.title().await.unwrap();
        if title != "waiting" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(title, "sent", "the page sent both requests");
    assert_eq!(org.get(&members.admin, &id).await.body["state"], "approved", "neither published nor archived");

    // The admin's own page still can: the console's form, from our origin.
    admin.open(&format!("{site}/orgs/acme/content/{id}")).await;
    admin.submit(&format!("form[action='/orgs/acme/content/{id}/step/publish']"), &[]).await;
    assert_eq!(org.get(&members.admin, &id).await.body["state"], "published", "{}", admin.text().await);
    admin.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn the_passkey_button_of_a_sign_in_link_with_a_hostile_next_stays_on_our_origin() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    let driver = Driver::start().await;
    let site = app.public_url.clone();
    let ada = driver.browser().await.with_authenticator().await;
    ada.open(&format!("{site}/sign-in")).await;
    ada.submit("form[action='/sign-in']", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    ada.open(&format!("{site}/account")).await;
    ada.client.find(Locator::Css("#passkey-name")).await.unwrap().send_keys("Laptop").await.unwrap();
    ada.click_until("button[data-passkey='register']", "Remove Laptop").await;
    ada.submit("header form[action='/sign-out']", &[]).await;

    // A link that someone else wrote: the tab is dropped by the browser, leaving "//evil.example".
    ada.open(&format!("{site}/sign-in?next=/%09/evil.example")).await;
    ada.click_until("button[data-passkey='sign-in']", "Your organizations").await;
    let at = ada.client.current_url().await.unwrap();
    assert_eq!(at.origin().ascii_serialization(), site, "signed in, and still at our origin: {at}");
    ada.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_person_signs_up_on_an_organizations_form_and_confirms_from_the_mailed_link() {
    let app = TestApp::spawn().await;
    let form = crate::signup::form_of(&app, "acme", "Monthly newsletter").await;
    let driver = Driver::start().await;
    let person = driver.browser().await;

    person.open(&format!("{}{}", app.public_url, form.page())).await;
    assert_eq!(person.heading().await, "Sign up");
    let text = person.text().await;
    assert!(text.contains("Acme Health") && text.contains("once a month"), "{text}");
    person.check("signup-form").await;
    person.client.find(Locator::Css("#consent")).await.unwrap().click().await.unwrap();
    person.submit("main form", &[("email", "ada@patients.example")]).await;
    assert_eq!(person.heading().await, "Check your email");
    person.check("signup-check-your-email").await;

    let token = token_in(&app.inbox.wait_for("ada@patients.example", "Confirm your subscription", 1).await);
    person.open(&format!("{}/o/acme/confirm?token={token}", app.public_url)).await;
    assert_eq!(person.heading().await, "Confirm your subscription");
    person.check("signup-confirm").await;
    person.submit("main form", &[]).await;
    assert_eq!(person.heading().await, "Subscription confirmed");
    assert!(person.text().await.contains("Monthly newsletter"));
    person.check("signup-confirmed").await;

    person.open(&format!("{}/o/acme/confirm?token={token}", app.public_url)).await;
    assert_eq!(person.heading().await, "Link not valid");
    person.check("signup-link-not-valid").await;
    person.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_person_opens_a_messages_unsubscribe_link_chooses_and_then_unsubscribes_from_everything() {
    let app = TestApp::spawn().await;
    let subscribed = crate::unsubscribe::subscribed(&app).await;
    let driver = Driver::start().await;
    let person = driver.browser().await;

    person.open(&format!("{}{}", app.public_url, subscribed.link)).await;
    assert_eq!(person.heading().await, "Your email choices");
    let text = person.text().await;
    assert!(text.contains("a***@example.com") && !text.contains("ana@example.com"), "{text}");
    person.check("unsubscribe-preferences").await;
    let news = format!("#purpose-{}", subscribed.purpose);
    person.client.find(Locator::Css(&news)).await.unwrap().click().await.unwrap();
    person.submit("#choices", &[]).await;
    assert_eq!(person.heading().await, "Your choices are saved");
    person.check("unsubscribe-saved").await;
    person.submit("#everything", &[]).await;
    assert_eq!(person.heading().await, "Unsubscribed");
    person.check("unsubscribe-everything").await;

    person.open(&format!("{}/u/not-a-token", app.public_url)).await;
    assert_eq!(person.heading().await, "Link not valid");
    person.check("unsubscribe-link-not-valid").await;
    person.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_creator_builds_a_segment_sees_its_count_live_and_a_viewer_only_counts() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let age = json!({ "name": "age", "kind": "number" });
    assert_eq!(app.post_as(&org.admin, "/v1/orgs/acme/attributes", age).await.status, 201);
    for (address, age) in [("old@example.com", 70), ("young@example.com", 30)] {
        let body = json!({ "address": address, "attributes": { "age": age } });
        assert_eq!(app.post_as(&org.creator, "/v1/orgs/acme/contacts", body).await.status, 201);
    }
    let driver = Driver::start().await;
    let sign_in = |who: &'static str| {
        let app = &app;
        let driver = &driver;
        async move {
            let browser = driver.browser().await;
            browser.open(&format!("{}/sign-in", app.public_url)).await;
            let email = format!("{who}@acme.example");
            browser.submit("form[action='/sign-in']", &[("email", &email), ("password", PASSWORD)]).await;
            browser
        }
    };

    let creator = sign_in("creator").await;
    creator.open(&format!("{}/orgs/acme/segments/new", app.public_url)).await;
    let find = |css: &'static str| creator.client.find(Locator::Css(css));
    find("select[name='field.0']").await.unwrap().select_by_value("attribute:age").await.unwrap();
    find("select[name='op.0']").await.unwrap().select_by_value("gte").await.unwrap();
    find("input[name='value.0']").await.unwrap().send_keys("50").await.unwrap();
    // No button pressed: the script counted as the value was typed.
    creator.until("typing the condition", "Count: 1 contact").await;
    assert_eq!(creator.client.current_url().await.unwrap().path(), "/orgs/acme/segments/new", "no page was posted");
    creator.check("segment-editor").await;
    find("input[name='name']").await.unwrap().send_keys("Fifty plus").await.unwrap();
    creator.click_until("button[value='save']", "Versions").await;
    assert_eq!(creator.heading().await, "Fifty plus");
    let page = creator.text().await;
    assert!(
        page.contains("SHA-256") && page.contains(r#"{"all":[{"attribute":"age","op":"gte","value":50.0}]}"#),
        "{page}"
    );
    creator.check("segment").await;
    creator.click_until("a[href$='/edit']", "Count: 1 contact").await;
    creator.click_until("button[value='preview']", "old@example.com").await;
    assert!(!creator.text().await.contains("young@example.com"));
    creator.check("segment-preview").await;
    creator.open(&format!("{}/orgs/acme/segments", app.public_url)).await;
    assert!(creator.text().await.contains("Fifty plus"));
    creator.check("segments").await;

    let viewer = sign_in("viewer").await;
    viewer.open(&format!("{}/orgs/acme/segments/new", app.public_url)).await;
    let find = |css: &'static str| viewer.client.find(Locator::Css(css));
    find("select[name='field.0']").await.unwrap().select_by_value("attribute:age").await.unwrap();
    find("select[name='op.0']").await.unwrap().select_by_value("lt").await.unwrap();
    find("input[name='value.0']").await.unwrap().send_keys("50").await.unwrap();
    // One contact: a count that would single the person out, which a VIEWER is told as fewer
    // than ten, live too.
    viewer.until("typing the condition", "Count: fewer than 10 contacts").await;
    assert!(find("button[value='preview']").await.is_err(), "a VIEWER has no preview");
    assert!(find("button[value='save']").await.is_err(), "nor a save");
    for browser in [creator, viewer] {
        browser.client.clone().close().await.unwrap();
    }
}

#[tokio::test]
async fn a_creator_uploads_a_file_maps_its_columns_and_watches_the_import_finish_in_the_console() {
    let app = TestApp::spawn_with_jobs(|_| {}).await;
    app.org_with_every_role("acme").await;
    let driver = Driver::start().await;
    let creator = driver.browser().await;
    creator.open(&format!("{}/sign-in", app.public_url)).await;
    creator.submit("form[action='/sign-in']", &[("email", "creator@acme.example"), ("password", PASSWORD)]).await;

    creator.open(&format!("{}/orgs/acme/imports/new", app.public_url)).await;
    assert_eq!(creator.heading().await, "Upload a file");
    creator.check("import-upload").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("patients.csv");
    std::fs::write(&file, "Email;Name\nana@example.com;Ana\nnot-an-address;Bob\n").unwrap();
    let input = creator.client.find(Locator::Css("#file")).await.unwrap();
    input.send_keys(file.to_str().unwrap()).await.unwrap();
    creator.client.find(Locator::Css("#import-upload button")).await.unwrap().click().await.unwrap();
    // The script uploads the file and opens the mapping page.
    for _ in 0..200 {
        if creator.client.current_url().await.unwrap().path() != "/orgs/acme/imports/new" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(creator.heading().await, "Map the columns");
    let page = creator.text().await;
    assert!(page.contains("ana@example.com") && page.contains("not-an-address"), "the first rows: {page}");
    creator.check("import-mapping").await;
    let import = creator.client.current_url().await.unwrap().path().to_owned();

    // The suggested mapping is preset: the address and the name.
    creator.submit(&format!("form[action='{import}/start']"), &[]).await;
    assert_eq!(creator.heading().await, "Import");
    for _ in 0..600 {
        if creator.text().await.contains("succeeded") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        creator.open(&format!("{}{import}", app.public_url)).await;
    }
    let page = creator.text().await;
    assert!(page.contains("succeeded") && page.contains("Download the problems"), "{page}");
    creator.check("import-progress").await;
    creator.open(&format!("{}/orgs/acme/imports", app.public_url)).await;
    assert!(creator.text().await.contains("patients.csv"), "{}", creator.text().await);
    creator.check("import-list").await;
    creator.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn an_admin_adds_a_sender_rotates_and_retires_its_key_in_the_console_and_a_creator_only_reads_it() {
    let app = TestApp::spawn().await;
    app.org_with_every_role("acme").await;
    let driver = Driver::start().await;
    let admin = driver.browser().await;
    admin.open(&format!("{}/sign-in", app.public_url)).await;
    admin.submit("form[action='/sign-in']", &[("email", "admin@acme.example"), ("password", PASSWORD)]).await;

    admin.open(&format!("{}/orgs/acme/senders/new", app.public_url)).await;
    assert_eq!(admin.heading().await, "New sender");
    admin.check("sender-new").await;
    let sender = [
        ("from_name", "Acme Health"),
        ("from_address", "news@other.example"),
        ("postal_address", "Acme Health\n1 Main St\nSpringfield, IL 62701"),
        ("dkim_domain", "acme.example"),
        ("selector", "s1"),
    ];
    admin.submit("main form", &sender).await;
    assert!(admin.text().await.contains("or a subdomain of it"), "the misaligned address is refused on the form");
    admin.check("sender-new-refused").await;
    admin.submit("main form", &[("from_address", "news@acme.example")]).await;
    assert_eq!(admin.heading().await, "Sender: Acme Health");
    let page = admin.text().await;
    assert!(page.contains("s1._domainkey.acme.example") && page.contains("v=DKIM1; k=rsa; p=MII"), "{page}");
    assert!(!page.contains("PRIVATE"), "{page}");
    admin.check("sender").await;
    let sender_url = admin.client.current_url().await.unwrap();

    admin.client.find(Locator::Css("a[href$='/rotate']")).await.unwrap().click().await.unwrap();
    admin.until("the rotate link", "A new RSA-2048 key").await;
    admin.check("sender-rotate").await;
    admin.submit("main form", &[("selector", "s2")]).await;
    let page = admin.text().await;
    assert!(page.contains("s2._domainkey.acme.example") && page.contains("s1._domainkey.acme.example"), "{page}");
    admin.client.find(Locator::Css("a[href$='/retire']")).await.unwrap().click().await.unwrap();
    admin.until("the retire link", "A retired key never signs again").await;
    admin.check("sender-retire").await;
    admin.submit("main form", &[]).await;
    let page = admin.text().await;
    assert!(page.contains("Not published (retired)") && !page.contains("s1._domainkey"), "{page}");

    let creator = driver.browser().await;
    creator.open(&format!("{}/sign-in", app.public_url)).await;
    creator.submit("form[action='/sign-in']", &[("email", "creator@acme.example"), ("password", PASSWORD)]).await;
    creator.open(&format!("{}/orgs/acme/senders", app.public_url)).await;
    assert!(creator.text().await.contains("news@acme.example"));
    creator.check("senders").await;
    creator.open(sender_url.as_str()).await;
    assert!(creator.text().await.contains("s2._domainkey.acme.example"));
    assert!(creator.client.find(Locator::Css("a[href$='/rotate']")).await.is_err(), "a CREATOR does not rotate");
    assert!(creator.client.find(Locator::Css("main form")).await.is_err(), "nor change the sender");

    // The organization's webhooks: a new endpoint, its secret shown once, its page, the switch.
    admin.open(&format!("{}/orgs/acme/webhooks/new", app.public_url)).await;
    admin.check("webhook-new").await;
    admin.client.find(Locator::Css("input[name='event:message.sent']")).await.unwrap().click().await.unwrap();
    admin.submit("main form", &[("url", "http://127.0.0.1:9/hooks"), ("description", "CRM")]).await;
    assert_eq!(admin.heading().await, "Endpoint added");
    assert!(admin.text().await.contains("whsec_"));
    admin.check("webhook-secret").await;
    admin.client.find(Locator::Css("main a[href*='/webhooks/']")).await.unwrap().click().await.unwrap();
    admin.until("the endpoint's page", "Nothing sent yet.").await;
    admin.check("webhook").await;
    admin.submit("form.step", &[]).await;
    assert!(admin.text().await.contains("The endpoint is disabled"), "{}", admin.text().await);
    for browser in [admin, creator] {
        browser.client.clone().close().await.unwrap();
    }
}

#[tokio::test]
async fn a_creator_writes_and_previews_a_campaign_and_an_admin_launches_it_and_reads_its_ledger_in_the_console() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let ready = crate::campaigns::ready(&app, &org).await;
    let driver = Driver::start().await;
    let creator = driver.browser().await;
    creator.open(&format!("{}/sign-in", app.public_url)).await;
    creator.submit("form[action='/sign-in']", &[("email", "creator@acme.example"), ("password", PASSWORD)]).await;

    creator.open(&format!("{}/orgs/acme/campaigns/new", app.public_url)).await;
    assert_eq!(creator.heading().await, "New campaign");
    creator.check("campaign-new").await;
    let (content, template, segment) =
        (format!("{}:1", ready.content), format!("{}:1", ready.template), format!("{}:1", ready.segment));
    let fields = [
        ("name", "December flu shots"),
        ("content", content.as_str()),
        ("template", template.as_str()),
        ("segment", segment.as_str()),
        ("sender", ready.sender.as_str()),
        ("purpose", ready.purpose.as_str()),
        ("fields", "name:40"),
    ];
    creator.submit("main form", &fields).await;
    assert_eq!(creator.heading().await, "Campaign: December flu shots");
    creator.check("campaign").await;
    let campaign_url = creator.client.current_url().await.unwrap();
    let id = campaign_url.path().rsplit('/').next().unwrap().to_owned();
    creator.client.find(Locator::Css("a[href$='/preview']")).await.unwrap().click().await.unwrap();
    creator.until("the preview link", "List-Unsubscribe-Post").await;
    assert!(creator.text().await.contains("Book your flu shot, Ada."), "{}", creator.text().await);
    creator.check("campaign-preview").await;

    crate::campaigns::approved(&app, &org, &org.creator, &id).await;
    let admin = driver.browser().await;
    admin.open(&format!("{}/sign-in", app.public_url)).await;
    admin.submit("form[action='/sign-in']", &[("email", "admin@acme.example"), ("password", PASSWORD)]).await;
    admin.open(campaign_url.as_str()).await;
    admin.submit("form[action$='/step/launch']", &[]).await;
    assert!(admin.text().await.contains("Launched:"), "{}", admin.text().await);
    admin.check("campaign-sending").await;
    admin.client.find(Locator::Css("a[href$='/messages']")).await.unwrap().click().await.unwrap();
    admin.until("the ledger link", "One row per contact").await;
    assert!(admin.text().await.contains("no consent"), "{}", admin.text().await);
    admin.check("campaign-ledger").await;
    admin.open(&format!("{}/orgs/acme/campaigns", app.public_url)).await;
    assert!(admin.text().await.contains("December flu shots"));
    admin.check("campaigns").await;
    for browser in [admin, creator] {
        browser.client.clone().close().await.unwrap();
    }
}

#[tokio::test]
async fn an_admin_sees_the_halted_sending_resumes_it_and_sets_the_breaker_in_the_console() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let id = crate::breaker::org_id(&app, &org.admin, "acme").await;
    crate::breaker::halt(&app, id).await;
    let driver = Driver::start().await;
    let admin = driver.browser().await;
    admin.open(&format!("{}/sign-in", app.public_url)).await;
    admin.submit("form[action='/sign-in']", &[("email", "admin@acme.example"), ("password", PASSWORD)]).await;

    admin.open(&format!("{}/orgs/acme/sending", app.public_url)).await;
    assert_eq!(admin.heading().await, "Sending health");
    assert!(admin.text().await.contains("Sending is halted"), "{}", admin.text().await);
    admin.check("sending-halted").await;
    admin.submit("form[action='/orgs/acme/sending/resume']", &[]).await;
    let page = admin.text().await;
    assert!(page.contains("sending again") && page.contains("Sending is not held back"), "{page}");
    assert!(admin.client.find(Locator::Css("form[action='/orgs/acme/sending/resume']")).await.is_err());
    admin.submit("form[action='/orgs/acme/sending']", &[("min_sent", "500"), ("hard_bounce_limit", "200")]).await;
    assert!(admin.text().await.contains("The breaker's settings were saved."), "{}", admin.text().await);
    admin.check("sending").await;
    let shown = app.get_as(&org.viewer, "/v1/orgs/acme/sending-breaker").await.body;
    assert_eq!((shown["state"].as_str(), shown["min_sent"].as_i64()), (Some("clear"), Some(500)));
    admin.client.clone().close().await.unwrap();
}
