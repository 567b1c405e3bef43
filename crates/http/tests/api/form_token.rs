//! The console's two defences against forged forms, each on its own: a form must carry the
//! token signed for this browser's seed and session, and must come from the public URL's
//! origin (or name none, as only a client that is not a browser does). Each test keeps the
//! other defence satisfied, so that removing either check makes one of them fail.

use crate::{ConsoleForm, TestApp};

/// The ADMIN's browser on the organization page: its cookies and the form it was given.
struct Browser {
    cookie: String,
    form: ConsoleForm,
}

async fn admins_browser(app: &TestApp) -> (Browser, crate::Members) {
    let org = app.org_with_every_role("acme").await;
    let session = format!("__Host-mos_session={}", org.admin);
    let form = app.console_form("/orgs/acme", &session).await;
    (Browser { cookie: format!("{session}; {}", form.seed), form }, org)
}

/// Posts the console's invitation form with `cookie`, `origin` (none: no header) and `token`
/// (none: no field): the status and the page.
async fn invite(app: &TestApp, cookie: &str, origin: Option<&str>, token: Option<&str>, email: &str) -> (u16, String) {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut fields = vec![("email", email), ("role", "ADMIN")];
    if let Some(token) = token {
        fields.push(("form_token", token));
    }
    let mut request = client.post(format!("{}/orgs/acme/invite", app.base)).header("cookie", cookie).form(&fields);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let reply = app.send(request).await;
    (reply.status, reply.body.as_str().unwrap_or_default().to_owned())
}

/// The addresses with a pending invitation, as the API lists them.
async fn invited(app: &TestApp, admin: &str) -> Vec<String> {
    let reply = app.get_as(admin, "/v1/orgs/acme/invitations").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body.as_array().unwrap().iter().map(|i| i["email"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_form_from_our_origin_without_the_token_of_this_browser_and_session_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (browser, org) = admins_browser(&app).await;
    let seed_only = browser.form.seed.clone();
    // A token genuinely signed, but for another seed (another browser) with the same session...
    let other_browser = app.console_form("/orgs/acme", &format!("__Host-mos_session={}", org.admin)).await;
    assert_ne!(other_browser.seed, browser.form.seed);
    // ...and one for this seed, but another member's session.
    let other_session =
        app.console_form("/orgs/acme", &format!("__Host-mos_session={}; {seed_only}", org.viewer)).await;
    assert_eq!(other_session.seed, browser.form.seed);
    // And the ADMIN's own genuine token, presented without the seed it was signed for.
    let without_seed = format!("__Host-mos_session={}", org.admin);

    let cases: [(&str, &str, Option<&str>); 6] = [
        ("no token", &browser.cookie, None),
        ("an empty token", &browser.cookie, Some("")),
        ("a token that is not one", &browser.cookie, Some("x")),
        ("another browser's token", &browser.cookie, Some(&other_browser.token)),
        ("another session's token", &browser.cookie, Some(&other_session.token)),
        ("the token without its seed", &without_seed, Some(&browser.form.token)),
    ];
    for (case, cookie, token) in cases {
        let (status, page) = invite(&app, cookie, Some(&app.public_url), token, "mallory@example.com").await;
        assert_eq!(status, 403, "{case}: {page}");
        assert!(page.contains("Form expired"), "{case}: refused by the form check: {page}");
    }
    assert!(invited(&app, &org.admin).await.is_empty(), "nothing was invited");

    // The same form with its own token goes through: the refusals above were the token's.
    let (status, page) =
        invite(&app, &browser.cookie, Some(&app.public_url), Some(&browser.form.token), "grace@example.com").await;
    assert_eq!(status, 303, "{page}");
    assert_eq!(invited(&app, &org.admin).await, ["grace@example.com"]);
}

#[tokio::test]
async fn a_form_with_its_own_token_from_another_origin_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (browser, org) = admins_browser(&app).await;
    let port = app.public_url.rsplit(':').next().unwrap();
    let origins = [
        "https://evil.example".to_owned(),
        // A page on another port of the same host, and the address without the public name:
        // the same site to a browser, not our origin.
        format!("http://localhost:{}", port.parse::<u16>().unwrap() ^ 1),
        format!("http://127.0.0.1:{port}"),
        "null".to_owned(),
    ];
    for origin in &origins {
        let (status, page) =
            invite(&app, &browser.cookie, Some(origin), Some(&browser.form.token), "mallory@example.com").await;
        assert_eq!(status, 403, "{origin}: {page}");
        assert!(page.contains("Form expired"), "{origin}: refused by the form check: {page}");
    }
    assert!(invited(&app, &org.admin).await.is_empty(), "nothing was invited");

    // Without an Origin (no browser leaves it out of a form post) the token alone decides.
    let (status, page) = invite(&app, &browser.cookie, None, Some(&browser.form.token), "grace@example.com").await;
    assert_eq!(status, 303, "{page}");
    assert_eq!(invited(&app, &org.admin).await, ["grace@example.com"]);
}
