//! Requests that the browser's cookie authorizes, sent by a page that is not ours: the API and
//! the console both refuse them, whatever `Host` says; form tokens do not outlive a session;
//! and after sign-in nobody is sent to another origin.

use serde_json::json;

use crate::content::Org;
use crate::{TestApp, PASSWORD};

/// A page on another port of the same host: the same site as ours, so `SameSite=Strict`
/// cookies go along, but another origin.
const SIBLING: &str = "http://localhost:1";

/// `POST path` as a browser sends it from a page of `origin` (none: no `Origin` header) with
/// the session cookie of `token`: no body, no `Content-Type`.
async fn post_with_cookie(app: &TestApp, token: &str, path: &str, origin: Option<&str>) -> crate::Reply {
    let mut request =
        app.http.post(format!("{}{path}", app.base)).header("cookie", format!("__Host-mos_session={token}"));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    app.send(request).await
}

#[tokio::test]
async fn every_state_change_with_the_cookie_from_another_origin_or_none_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let members = app.org_with_every_role("acme").await;
    let org = Org::new(&app, &members);
    let approved = org.item_in(&members, "approved").await;
    let draft = org.item_in(&members, "draft").await;
    let in_review = org.item_in(&members, "in_review").await;
    let content = |id: &str, step: &str| org.path(&format!("/{id}/{step}"));
    let attempts = [
        (&members.admin, content(&approved, "publish")),
        (&members.admin, content(&draft, "archive")),
        (&members.creator, content(&draft, "submit")),
        (&members.creator, content(&in_review, "withdraw")),
        (&members.viewer, "/v1/orgs/acme/leave".to_owned()),
        (&members.reviewer, "/v1/me/two-factor/setup".to_owned()),
        (&members.reviewer, "/v1/me/passkeys/options".to_owned()),
        (&members.reviewer, "/v1/auth/logout".to_owned()),
    ];
    for (token, path) in &attempts {
        for origin in [Some(SIBLING), Some("null"), None] {
            let reply = post_with_cookie(&app, token, path, origin).await;
            assert_eq!(reply.status, 403, "{path} from {origin:?}: {}", reply.body);
            assert_eq!(reply.problem_type(), "urn:mos:problem:cross_origin", "{path}");
        }
    }
    for (id, state) in [(&approved, "approved"), (&draft, "draft"), (&in_review, "in_review")] {
        assert_eq!(org.get(&members.admin, id).await.body["state"], state, "nothing moved");
    }
    let roles = app.get_as(&members.admin, "/v1/orgs/acme/members").await.body;
    assert!(roles.as_array().unwrap().iter().any(|m| m["role"] == "VIEWER"), "the viewer is still a member: {roles}");
    assert_eq!(app.get_as(&members.reviewer, "/v1/me").await.status, 200, "still signed in");

    // Our own pages (the passkey script) and bearer clients go on working.
    let ours = post_with_cookie(&app, &members.admin, &content(&approved, "publish"), Some(&app.public_url)).await;
    assert_eq!(ours.status, 200, "{}", ours.body);
    let bearer = app.post_as(&members.admin, &content(&draft, "archive"), json!({})).await;
    assert_eq!(bearer.status, 200, "{}", bearer.body);
    let read = app
        .send(
            app.http
                .get(format!("{}/v1/me", app.base))
                .header("cookie", format!("__Host-mos_session={}", members.viewer))
                .header("origin", SIBLING),
        )
        .await;
    assert_eq!(read.status, 200, "reading changes nothing, and other origins cannot read the answer");
}

/// A sign-in form posted to the console with `host` and `origin`; the password is wrong, so a
/// form taken as ours gets 401 and any other 403.
async fn sign_in_form_from(app: &TestApp, host: &str, origin: &str) -> u16 {
    let form = app.console_form("/sign-in", "").await;
    let request = app
        .http
        .post(format!("{}/sign-in", app.base))
        .header("host", host)
        .header("origin", origin)
        .header("cookie", &form.seed)
        .form(&[
            ("form_token", form.token.as_str()),
            ("email", "nobody@example.com"),
            ("password", "not the password"),
        ]);
    app.send(request).await.status
}

#[tokio::test]
async fn a_console_form_is_ours_only_from_the_public_urls_origin_whatever_the_host_header_says() {
    let app = TestApp::spawn().await;
    assert_eq!(sign_in_form_from(&app, "evil.example", "http://evil.example").await, 403, "a spoofed Host");
    let port = app.public_url.rsplit(':').next().unwrap();
    let direct = format!("127.0.0.1:{port}");
    assert_eq!(sign_in_form_from(&app, &direct, &format!("http://{direct}")).await, 403, "not the public URL");
    let public_host = app.public_url.trim_start_matches("http://").to_owned();
    assert_eq!(sign_in_form_from(&app, &public_host, SIBLING).await, 403, "a sibling page");
    assert_eq!(sign_in_form_from(&app, &public_host, &app.public_url).await, 401, "ours: the password is wrong");
}

/// Where a console form's answer redirects to, and the cookies it set (`name=value`).
pub(crate) async fn posted(
    app: &TestApp,
    path: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> (u16, String, Vec<String>) {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let request = client
        .post(format!("{}{path}", app.base))
        .header("origin", &app.public_url)
        .header("cookie", cookie)
        .form(fields);
    let reply = app.send(request).await;
    let location = reply.headers.get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
    let cookies = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    (reply.status, location, cookies)
}

#[tokio::test]
async fn a_form_token_from_before_sign_in_or_before_sign_out_is_void_after_it() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    let before = app.console_form("/sign-in", "").await;
    let credentials = [("email", "ada@example.com"), ("password", PASSWORD)];
    let (status, _, cookies) =
        posted(&app, "/sign-in", &before.seed, &[&[("form_token", before.token.as_str())][..], &credentials].concat())
            .await;
    assert_eq!(status, 303);
    let session = cookies.iter().find(|c| c.starts_with("__Host-mos_session=")).unwrap().clone();
    let signed_in = format!("{session}; {}", before.seed);

    let (status, _, _) = posted(&app, "/sign-out", &signed_in, &[("form_token", before.token.as_str())]).await;
    assert_eq!(status, 403, "the token seen before sign-in");
    let during = app.console_form("/account", &signed_in).await;
    assert_eq!(during.seed, before.seed, "the same browser");
    assert_ne!(during.token, before.token);
    let (status, location, _) = posted(&app, "/sign-out", &signed_in, &[("form_token", during.token.as_str())]).await;
    assert_eq!((status, location.as_str()), (303, "/sign-in"));
    let (status, _, _) =
        posted(&app, "/sign-in", &before.seed, &[&[("form_token", during.token.as_str())][..], &credentials].concat())
            .await;
    assert_eq!(status, 403, "the token of the ended session");
}

#[tokio::test]
async fn after_sign_in_a_hostile_next_leads_home_and_never_to_another_origin_or_a_500() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com").await;
    for next in [
        "/\t/evil.example",
        "/\r\n/evil.example",
        "/\r/evil.example",
        "/\u{b}/evil.example",
        "/\u{c}/evil.example",
        "//evil.example",
        "/\\evil.example",
        "/.//evil.example",
        "https://evil.example/",
    ] {
        let form = app.console_form("/sign-in", "").await;
        let fields =
            [("form_token", form.token.as_str()), ("email", "ada@example.com"), ("password", PASSWORD), ("next", next)];
        let (status, location, _) = posted(&app, "/sign-in", &form.seed, &fields).await;
        assert_eq!((status, location.as_str()), (303, "/"), "{next:?}");
    }
    let form = app.console_form("/sign-in", "").await;
    let fields = [
        ("form_token", form.token.as_str()),
        ("email", "ada@example.com"),
        ("password", PASSWORD),
        ("next", "/orgs?x=1"),
    ];
    assert_eq!(posted(&app, "/sign-in", &form.seed, &fields).await.1, "/orgs?x=1", "a path of ours is kept");

    // What the passkey button follows, and the form's own field, are checked the same way.
    let page = app.http.get(format!("{}/sign-in?next=/%09/evil.example", app.base)).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"data-next="/""#), "{html}");
    assert!(html.contains(r#"name="next" value="/""#), "{html}");
    assert!(!html.contains("evil.example"), "{html}");
}
