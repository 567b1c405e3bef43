//! The console's pages are a second door onto the same operations as the API: they must keep
//! every rule the API keeps (membership, the permission table, the organization's policies,
//! the audited refusal), because they no longer reach the product through the API's routes.

use serde_json::{json, Value};

use crate::orgs::enroll;
use crate::TestApp;

/// The console page `path` as the browser of the session `token` gets it: status and HTML.
pub(crate) async fn page(app: &TestApp, token: &str, path: &str) -> (u16, String) {
    let reply = app
        .http
        .get(format!("{}{path}", app.base))
        .header("cookie", format!("__Host-mos_session={token}"))
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.text().await.unwrap())
}

/// The organization's records of refused access, newest first, as its ADMIN reads them.
async fn denials(app: &TestApp, admin: &str) -> Vec<Value> {
    let trail = app.get_as(admin, "/v1/orgs/acme/audit-logs?action=access.denied").await;
    assert_eq!(trail.status, 200, "{}", trail.body);
    trail.body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_console_page_refuses_what_its_role_may_not_read_and_audits_the_refusal_like_the_api() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;

    let (status, html) = page(&app, &org.viewer, "/orgs/acme").await;
    assert_eq!(status, 200, "{html}");
    assert!(!html.contains("Pending invitations"), "a VIEWER's page reads no invitations");
    assert!(denials(&app, &org.admin).await.is_empty(), "showing less is no refusal: {html}");

    let (status, html) = page(&app, &org.viewer, "/orgs/acme/audit").await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("does not allow"), "{html}");
    let denied = denials(&app, &org.admin).await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["metadata"]["reason"], "permission");
    assert_eq!(denied[0]["metadata"]["permission"], "audit.read");
    assert_eq!(denied[0]["metadata"]["path"], "/orgs/acme/audit", "the page that was refused");

    let stranger = app.signed_in("stranger@example.com").await;
    for path in ["/orgs/acme", "/orgs/acme/audit", "/orgs/acme/content"] {
        assert_eq!(page(&app, &stranger, path).await.0, 404, "{path}: the same as an organization that does not exist");
    }
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let anonymous = client.get(format!("{}/orgs/acme", app.base)).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 303);
    assert_eq!(anonymous.headers()["location"], "/sign-in");
}

#[tokio::test]
async fn a_member_the_two_factor_policy_keeps_out_gets_no_console_page_of_the_organization() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let admin = enroll(&app, &org.admin).await;
    let text = json!({ "title": "Flu shots", "channel": "email", "body": "Book now." });
    let created = app.post_as(&admin, "/v1/orgs/acme/content", text).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let set = app.call_as("patch", &admin, "/v1/orgs/acme", json!({ "require_two_factor": true })).await;
    assert_eq!(set.status, 200, "{}", set.body);

    let item = format!("/orgs/acme/content/{id}");
    let paths = ["/orgs/acme", "/orgs/acme/content", item.as_str(), "/orgs/acme/content/new"];
    for path in &paths[..3] {
        let (status, html) = page(&app, &org.viewer, path).await;
        assert_eq!(status, 403, "{path}: {html}");
        assert!(html.contains("requires two-factor authentication"), "{path}: {html}");
        assert!(!html.contains("Flu shots") && !html.contains("viewer@acme.example"), "{path} shows nothing: {html}");
    }
    let denied = denials(&app, &admin).await;
    let reasons: Vec<(&str, &str)> = denied
        .iter()
        .map(|r| (r["metadata"]["reason"].as_str().unwrap(), r["metadata"]["path"].as_str().unwrap()))
        .collect();
    for path in &paths[..3] {
        assert!(reasons.contains(&("two_factor_required", path)), "{path} audited: {reasons:?}");
    }
    let (status, html) = page(&app, &admin, &item).await;
    assert_eq!(status, 200, "an ADMIN with two-factor reads it: {html}");
}
