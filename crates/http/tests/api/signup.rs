//! The public double opt-in sign-up, end to end: the form, the mailed link, the page a mail
//! scanner may open, the confirmation; what a stranger can learn from the answers and what is
//! stored; spent, expired, tampered and foreign links; the limits. Database reads of the ledger
//! run as `app_user` in the organization's own transaction.

use chrono::Duration;
use mos_db::audiences::consent::{self, Provenance, Record};
use mos_db::audiences::{contacts, purposes, suppression};
use mos_db::DbError;
use mos_domain::audiences::{ConsentKind, ConsentState, NoticeText, SuppressionReason};
use mos_domain::{ContactId, Email, OrgId, PurposeId, RequestSource, UserId};
use serde_json::json;

use crate::{token_in, Reply, TestApp};

/// An organization with a purpose open to sign-up: what a test needs of it.
pub struct Form {
    pub slug: String,
    pub org: OrgId,
    pub admin: UserId,
    pub purpose: PurposeId,
    pub notice: String,
}

/// An organization `slug` (named "Acme Health") whose ADMIN declared the purpose `name` with a
/// notice, through the repositories as `app_user`.
pub async fn form_of(app: &TestApp, slug: &str, name: &str) -> Form {
    let token = app.signed_in(&format!("admin@{slug}.example")).await;
    let created = app.post_as(&token, "/v1/orgs", json!({ "slug": slug, "name": "Acme Health" })).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let org = OrgId::parse(created.body["id"].as_str().unwrap()).unwrap();
    let admin = UserId::parse(app.get_as(&token, "/v1/me").await.body["id"].as_str().unwrap()).unwrap();
    let now = mos_auth::Clock::now(&app.clock);
    let mut tx = app.pool.begin_tenant(org, Some(admin)).await.unwrap();
    let purpose = purposes::create(&mut tx, name, false, admin, now, &RequestSource::default()).await.unwrap();
    let text =
        NoticeText::parse("We will email you our newsletter once a month.\n\nYou can stop it at any time.").unwrap();
    let notice =
        purposes::publish_notice(&mut tx, purpose, &text, admin, now, &RequestSource::default()).await.unwrap();
    tx.commit().await.unwrap();
    Form { slug: slug.to_owned(), org, admin, purpose, notice: notice.to_string() }
}

impl Form {
    pub fn page(&self) -> String {
        format!("/o/{}/signup/{}", self.slug, self.purpose)
    }
}

async fn sign_up(app: &TestApp, form: &Form, email: &str) -> Reply {
    let body =
        json!({ "purpose": form.purpose.to_string(), "email": email, "notice_sha256": form.notice, "consent": true });
    app.post(&format!("/v1/public/orgs/{}/signup", form.slug), body).await
}

async fn confirm(app: &TestApp, slug: &str, token: &str) -> Reply {
    app.post(&format!("/v1/public/orgs/{slug}/signup/confirm"), json!({ "token": token })).await
}

/// The token of the `n`th confirmation mail to `email`.
async fn link_token(app: &TestApp, email: &str, n: usize) -> String {
    token_in(&app.inbox.wait_for(email, "Confirm your subscription", n).await)
}

/// The contact of `email` in the form's organization.
async fn contact(app: &TestApp, form: &Form, email: &str) -> ContactId {
    let mut tx = app.pool.begin_tenant(form.org, None).await.unwrap();
    let id: uuid::Uuid = sqlx::query_scalar("select id from app.contacts where organization_id = $1 and address = $2")
        .bind(form.org.as_uuid())
        .bind(email)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    ContactId::from_uuid(id).unwrap()
}

/// The contact's consent for the form's purpose now, as `app_user` sees it.
async fn state(app: &TestApp, form: &Form, email: &str) -> Option<ConsentState> {
    let contact = contact(app, form, email).await;
    let mut tx = app.pool.begin_tenant(form.org, None).await.unwrap();
    consent::current(&mut tx, contact, form.purpose).await.unwrap().map(|c| c.state)
}

/// The kinds of the contact's consent events, in order.
async fn history(app: &TestApp, form: &Form, email: &str) -> Vec<(ConsentKind, bool, Option<uuid::Uuid>)> {
    let contact = contact(app, form, email).await;
    let mut tx = app.pool.begin_tenant(form.org, None).await.unwrap();
    let events = consent::history(&mut tx, contact).await.unwrap();
    events.into_iter().map(|e| (e.kind, e.evidence_sha256.is_some(), e.recorded_by)).collect()
}

/// Suppresses `email` in the form's organization, as its ADMIN would.
async fn suppress(app: &TestApp, form: &Form, email: &str) {
    let mut tx = app.pool.begin_tenant(form.org, Some(form.admin)).await.unwrap();
    let address = Email::parse(email).unwrap();
    let now = mos_auth::Clock::now(&app.clock);
    suppression::suppress(
        &mut tx,
        &app.address_keys,
        &address,
        SuppressionReason::Unsubscribe,
        Some(form.admin),
        now,
        &RequestSource::default(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Makes the contact of `email`, as a member would.
async fn add_contact(app: &TestApp, form: &Form, email: &str) -> ContactId {
    let mut tx = app.pool.begin_tenant(form.org, Some(form.admin)).await.unwrap();
    let address = Email::parse(email).unwrap();
    let now = mos_auth::Clock::now(&app.clock);
    let new = contacts::NewContact::default();
    let id =
        contacts::create(&mut tx, &app.address_keys, &address, &new, Some(form.admin), now, &RequestSource::default())
            .await
            .unwrap();
    tx.commit().await.unwrap();
    id
}

/// How many rows each table of the application holds, as the superuser counts them.
pub(crate) async fn footprint(app: &TestApp) -> Vec<(String, i64)> {
    let mut su = app.db.superuser().await;
    let tables: Vec<String> =
        sqlx::query_scalar("select tablename::text from pg_tables where schemaname = 'app' order by 1")
            .fetch_all(&mut su)
            .await
            .unwrap();
    let mut counts = Vec::new();
    for table in tables {
        let n: i64 = sqlx::query_scalar(&format!("select count(*) from app.{table}")).fetch_one(&mut su).await.unwrap();
        counts.push((table, n));
    }
    counts
}

/// What a request added to each table that it changed.
pub(crate) fn added(before: &[(String, i64)], after: &[(String, i64)]) -> Vec<(String, i64)> {
    before.iter().zip(after).filter(|(b, a)| a.1 != b.1).map(|(b, a)| (b.0.clone(), a.1 - b.1)).collect()
}

/// The actions of the organization's audit records, in order.
async fn audit_actions(app: &TestApp, form: &Form) -> Vec<String> {
    let mut tx = app.pool.begin_tenant(form.org, None).await.unwrap();
    sqlx::query_scalar("select action from app.audit_logs where organization_id = $1 order by created_at, id")
        .bind(form.org.as_uuid())
        .fetch_all(tx.conn())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_person_signs_up_on_the_form_and_only_pressing_the_button_of_the_mailed_link_confirms() {
    let app = TestApp::spawn().await;
    let form = form_of(&app, "acme", "Monthly newsletter").await;

    let shown = app.send(app.http.get(format!("{}/v1/public/orgs/acme/signup/{}", app.base, form.purpose))).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.body["organization"], "Acme Health");
    assert_eq!(shown.body["purpose_name"], "Monthly newsletter");
    assert_eq!(shown.body["notice_sha256"], form.notice.as_str());
    assert!(shown.body["notice"].as_str().unwrap().starts_with("We will email you"));

    let reply = sign_up(&app, &form, "Ada@Patients.Example").await;
    assert_eq!((reply.status, &reply.body), (202, &json!({ "status": "accepted" })));
    let mail = app.inbox.wait_for("ada@patients.example", "Confirm your subscription", 1).await;
    assert!(mail.contains("Acme Health") && mail.contains("Monthly newsletter"), "{mail}");
    assert!(mail.contains(&format!("{}/o/acme/confirm?token=", app.public_url)), "{mail}");
    let token = token_in(&mail);
    assert_eq!(state(&app, &form, "ada@patients.example").await, Some(ConsentState::Pending));

    // A mail scanner opens the link: the page asks, and nothing is confirmed.
    for _ in 0..2 {
        let page = app.http.get(format!("{}/o/acme/confirm?token={token}", app.base)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("Yes, confirm") && html.contains("Monthly newsletter"), "{html}");
    }
    assert_eq!(state(&app, &form, "ada@patients.example").await, Some(ConsentState::Pending));

    let confirmed = confirm(&app, "acme", &token).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_eq!(confirmed.body["organization"], "Acme Health");
    assert_eq!(state(&app, &form, "ada@patients.example").await, Some(ConsentState::Granted));
    // The grant and its confirmation, both from the person (no member recorded them), both
    // with evidence.
    assert_eq!(
        history(&app, &form, "ada@patients.example").await,
        vec![(ConsentKind::Grant, true, None), (ConsentKind::Confirm, true, None)]
    );
    let actions = audit_actions(&app, &form).await;
    let tail: Vec<&str> = actions.iter().rev().take(3).rev().map(String::as_str).collect();
    assert_eq!(tail, ["contact.created", "consent.granted", "consent.confirmed"]);

    // Signing up again once confirmed changes nothing: the confirmed consent stays, and no mail.
    assert_eq!(sign_up(&app, &form, "ada@patients.example").await.status, 202);
    assert_eq!(state(&app, &form, "ada@patients.example").await, Some(ConsentState::Granted));
    assert_eq!(audit_actions(&app, &form).await.last().unwrap(), "signup.repeated");
    assert_eq!(app.inbox.all_to("ada@patients.example").len(), 1);
}

#[tokio::test]
async fn a_suppressed_address_gets_consent_back_only_through_its_own_confirmed_sign_up_which_lifts_it() {
    let app = TestApp::spawn().await;
    let form = form_of(&app, "acme", "Monthly newsletter").await;
    let contact = add_contact(&app, &form, "ada@patients.example").await;
    suppress(&app, &form, "ada@patients.example").await;

    // A member cannot consent for the person.
    let mut tx = app.pool.begin_tenant(form.org, Some(form.admin)).await.unwrap();
    let notice = mos_domain::content::ContentHash::parse(&form.notice).unwrap();
    let record = Record {
        contact,
        purpose: form.purpose,
        kind: ConsentKind::Grant,
        basis: Some(&consent::Basis::Consent),
        notice: Some(notice),
        provenance: Provenance::Api { by: form.admin },
        evidence: None,
        now: mos_auth::Clock::now(&app.clock),
    };
    let refused = consent::append(&mut tx, &record, &RequestSource::default()).await;
    assert!(matches!(refused, Err(DbError::Invalid { ref constraint }) if constraint == "consent_events_suppressed"));
    tx.rollback().await.unwrap();

    // Later than the unsubscribe: an entry and a confirmation of the same instant keep the entry.
    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(sign_up(&app, &form, "ada@patients.example").await.status, 202);
    let token = link_token(&app, "ada@patients.example", 1).await;
    assert_eq!(state(&app, &form, "ada@patients.example").await, Some(ConsentState::Pending));
    assert_eq!(confirm(&app, "acme", &token).await.status, 200);
    assert_eq!(state(&app, &form, "ada@patients.example").await, Some(ConsentState::Granted));
    // The person's own confirmation lifted the unsubscribe.
    let mut tx = app.pool.begin_tenant(form.org, Some(form.admin)).await.unwrap();
    let address = Email::parse("ada@patients.example").unwrap();
    let reasons = suppression::reasons(&mut tx, &app.address_keys, &address).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(reasons.is_empty(), "still suppressed for {reasons:?}");
}

#[tokio::test]
async fn new_known_and_suppressed_addresses_get_the_same_answer_and_store_the_same_until_confirmed() {
    let app = TestApp::spawn().await;
    let form = form_of(&app, "acme", "Monthly newsletter").await;
    add_contact(&app, &form, "known@patients.example").await;
    add_contact(&app, &form, "suppressed@patients.example").await;
    suppress(&app, &form, "suppressed@patients.example").await;
    // The client's and the organization's counters exist from here on.
    assert_eq!(sign_up(&app, &form, "first@patients.example").await.status, 202);

    let mut answers = Vec::new();
    let mut footprints = Vec::new();
    for email in ["new@patients.example", "known@patients.example", "suppressed@patients.example"] {
        let before = footprint(&app).await;
        let body = json!({ "purpose": form.purpose.to_string(), "email": email, "notice_sha256": form.notice, "consent": true });
        let response =
            app.http.post(format!("{}/v1/public/orgs/acme/signup", app.base)).json(&body).send().await.unwrap();
        let status = response.status().as_u16();
        let mut headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter(|(name, _)| !["x-request-id", "date"].contains(&name.as_str()))
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        answers.push((status, headers, response.bytes().await.unwrap()));
        footprints.push(added(&before, &footprint(&app).await));
        link_token(&app, email, 1).await;
    }
    assert_eq!(answers[0], answers[1], "new and known");
    assert_eq!(answers[1], answers[2], "known and suppressed");
    assert_eq!(footprints[1], footprints[2], "a suppressed address stores what a known one does");
    let mut new_only = footprints[0].clone();
    new_only.retain(|(table, _)| table != "contacts");
    for (table, n) in new_only.iter_mut() {
        if table == "audit_logs" {
            *n -= 1; // contact.created
        }
    }
    assert_eq!(new_only, footprints[1], "a new address stores its contact besides");
    for email in ["known@patients.example", "suppressed@patients.example"] {
        assert_eq!(state(&app, &form, email).await, Some(ConsentState::Pending), "{email}");
        assert_eq!(history(&app, &form, email).await, vec![(ConsentKind::Grant, true, None)], "{email}");
    }
}

#[tokio::test]
async fn a_spent_expired_tampered_or_other_organizations_link_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let form = form_of(&app, "acme", "Monthly newsletter").await;
    let other = form_of(&app, "globex", "Offers").await;
    let invalid = |reply: &Reply| (reply.status, reply.problem_type().to_owned());
    let refused = (400, "urn:mos:problem:invalid_token".to_owned());

    // Another organization's slug: the link is looked up in that tenant only, and not found.
    assert_eq!(sign_up(&app, &form, "ada@patients.example").await.status, 202);
    let token = link_token(&app, "ada@patients.example", 1).await;
    assert_eq!(invalid(&confirm(&app, "globex", &token).await), refused);
    assert_eq!(invalid(&confirm(&app, "no-such-org", &token).await), refused);
    // Tampered: one character changed.
    let mut tampered = token.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    assert_eq!(invalid(&confirm(&app, "acme", &String::from_utf8(tampered).unwrap()).await), refused);
    assert_eq!(invalid(&confirm(&app, "acme", "not a token").await), refused);
    assert_eq!(state(&app, &form, "ada@patients.example").await, Some(ConsentState::Pending));
    let page = app.http.get(format!("{}/o/globex/confirm?token={token}", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("This link does not work"));

    // The real one works once.
    assert_eq!(confirm(&app, "acme", &token).await.status, 200);
    assert_eq!(invalid(&confirm(&app, "acme", &token).await), refused);
    assert_eq!(history(&app, &form, "ada@patients.example").await.len(), 2, "no second confirmation");

    // Expired: 48 hours later the link is dead, and the grant stays pending.
    assert_eq!(sign_up(&app, &form, "grace@patients.example").await.status, 202);
    let late = link_token(&app, "grace@patients.example", 1).await;
    app.clock.advance(Duration::hours(48));
    assert_eq!(invalid(&confirm(&app, "acme", &late).await), refused);
    assert_eq!(state(&app, &form, "grace@patients.example").await, Some(ConsentState::Pending));

    // Each refusal is on the trail of the organization the link named; no token anywhere in it.
    let failures = audit_actions(&app, &form).await.iter().filter(|a| *a == "signup.confirmation_failed").count();
    assert_eq!(failures, 4);
    // At globex: the link presented to the API and opened on its page.
    assert_eq!(audit_actions(&app, &other).await.iter().filter(|a| *a == "signup.confirmation_failed").count(), 2);
    let mut su = app.db.superuser().await;
    let trail: Vec<String> =
        sqlx::query_scalar("select t::text from app.audit_logs t").fetch_all(&mut su).await.unwrap();
    assert!(!trail.iter().any(|row| row.contains(&token) || row.contains(&late)));
}

#[tokio::test]
async fn sign_ups_are_limited_per_address_silently_and_per_client_with_429() {
    let app = TestApp::spawn().await;
    let form = form_of(&app, "acme", "Monthly newsletter").await;

    // Per address: three mails an hour; the fourth request gets the same answer, and nothing
    // is recorded or sent.
    for _ in 0..4 {
        let reply = sign_up(&app, &form, "ada@patients.example").await;
        assert_eq!((reply.status, &reply.body), (202, &json!({ "status": "accepted" })));
    }
    link_token(&app, "ada@patients.example", 3).await;
    assert_eq!(history(&app, &form, "ada@patients.example").await.len(), 3);
    let mut su = app.db.superuser().await;
    let links: i64 =
        sqlx::query_scalar("select count(*) from app.signup_confirmations").fetch_one(&mut su).await.unwrap();
    assert_eq!(links, 3);

    // Per client: ten an hour, whatever the addresses; then 429 with Retry-After.
    for n in 0..6 {
        assert_eq!(sign_up(&app, &form, &format!("p{n}@patients.example")).await.status, 202);
    }
    let limited = sign_up(&app, &form, "late@patients.example").await;
    assert_eq!((limited.status, limited.problem_type()), (429, "urn:mos:problem:rate_limited"));
    assert!(limited.headers.contains_key("retry-after"));
    app.clock.advance(Duration::hours(1));
    assert_eq!(sign_up(&app, &form, "late@patients.example").await.status, 202);
    link_token(&app, "late@patients.example", 1).await;
}

#[tokio::test]
async fn markup_in_a_purpose_a_notice_an_address_or_a_user_agent_is_shown_as_text() {
    let app = TestApp::spawn().await;
    let form = form_of(&app, "acme", "<img src=x onerror=alert(1)>News").await;
    // A later notice, which the form then shows.
    app.clock.advance(Duration::minutes(1));
    let mut tx = app.pool.begin_tenant(form.org, Some(form.admin)).await.unwrap();
    let text = NoticeText::parse("<script>alert(2)</script>\nWe write monthly.").unwrap();
    let now = mos_auth::Clock::now(&app.clock);
    let notice = purposes::publish_notice(&mut tx, form.purpose, &text, form.admin, now, &RequestSource::default())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let html = app.http.get(format!("{}{}", app.base, form.page())).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;News"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(2)&lt;/script&gt;"), "{html}");
    assert!(!html.contains("<img src=x") && !html.contains("<script>alert"));

    // The console form, with markup in the address and the user agent.
    let page = app.console_form(&form.page(), "").await;
    let notice = notice.to_string();
    let post = |email: &'static str| {
        let fields = [
            ("form_token", page.token.as_str()),
            ("email", email),
            ("notice_sha256", notice.as_str()),
            ("consent", "yes"),
        ];
        app.http
            .post(format!("{}{}", app.base, form.page()))
            .header("cookie", &page.seed)
            .header("user-agent", "<script>alert(3)</script>")
            .form(&fields)
            .send()
    };
    let posted = post("<b>ada</b>@patients.example").await.unwrap();
    assert_eq!(posted.status(), 422);
    let html = posted.text().await.unwrap();
    assert!(!html.contains("<b>ada</b>") && html.contains("role=\"alert\""), "{html}");
    let posted = post("ada@patients.example").await.unwrap();
    assert_eq!(posted.status(), 200);
    assert!(!posted.text().await.unwrap().contains("<script>alert(3)"));
    // Kept as the evidence it is, verbatim, for the ledger; shown on no page.
    let token = link_token(&app, "ada@patients.example", 1).await;
    let confirm_page =
        app.http.get(format!("{}/o/acme/confirm?token={token}", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(!confirm_page.contains("alert(3)") && confirm_page.contains("&lt;img src=x"), "{confirm_page}");
    let mut su = app.db.superuser().await;
    let agent: String =
        sqlx::query_scalar("select user_agent from app.consent_evidence").fetch_one(&mut su).await.unwrap();
    assert_eq!(agent, "<script>alert(3)</script>");
}

#[tokio::test]
async fn an_outdated_notice_or_an_unticked_box_is_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let form = form_of(&app, "acme", "Monthly newsletter").await;
    let path = "/v1/public/orgs/acme/signup";
    let base = json!({ "purpose": form.purpose.to_string(), "email": "ada@patients.example", "notice_sha256": form.notice, "consent": true });
    for (field, value) in
        [("consent", json!(false)), ("notice_sha256", json!("00".repeat(32))), ("email", json!("not an address"))]
    {
        let mut body = base.clone();
        body[field] = value;
        let reply = app.post(path, body).await;
        assert_eq!((reply.status, reply.body["field"].as_str()), (422, Some(field)), "{}", reply.body);
    }
    let mut body = base.clone();
    body["purpose"] = json!(PurposeId::new().to_string());
    assert_eq!(app.post(path, body).await.status, 404);
    assert_eq!(app.post("/v1/public/orgs/globex/signup", base).await.status, 404);
    assert!(app.inbox.all_to("ada@patients.example").is_empty());
}
