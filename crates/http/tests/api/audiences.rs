//! The audience API end to end: purposes, notices and attributes; contacts with keyset paging,
//! search and tags; consent and the suppression list; and the audit record that every read of
//! a contact's personal data leaves.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{Members, TestApp};

async fn contact(app: &TestApp, token: &str, slug: &str, body: Value) -> String {
    let created = app.post_as(token, &format!("/v1/orgs/{slug}/contacts"), body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

/// A purpose with one notice version: its id and the notice's hash.
pub async fn purpose_with_notice(app: &TestApp, org: &Members, name: &str, hipaa: bool) -> (String, String) {
    let slug = &org.slug;
    let created = app
        .post_as(
            &org.admin,
            &format!("/v1/orgs/{slug}/purposes"),
            json!({ "name": name, "needs_hipaa_authorization": hipaa }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let notice = app
        .post_as(
            &org.admin,
            &format!("/v1/orgs/{slug}/purposes/{id}/notices"),
            json!({ "text": format!("{name}: we write now and then.") }),
        )
        .await;
    assert_eq!(notice.status, 201, "{}", notice.body);
    (id, notice.body["sha256"].as_str().unwrap().to_owned())
}

/// The organization's audit records with `action`, newest first, as its ADMIN reads them.
pub async fn records(app: &TestApp, org: &Members, action: &str) -> Vec<Value> {
    let reply = app.get_as(&org.admin, &format!("/v1/orgs/{}/audit-logs?action={action}", org.slug)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_member_who_lists_contacts_leaves_one_record_naming_exactly_the_contacts_shown() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(contact(&app, &org.creator, "acme", json!({ "address": format!("p{n}@example.com") })).await);
    }
    let me = app.get_as(&org.creator, "/v1/me").await.body["id"].as_str().unwrap().to_owned();

    let page = app.get_as(&org.creator, "/v1/orgs/acme/contacts?limit=2").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let shown: Vec<&str> = page.body["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(shown, [ids[2].as_str(), ids[1].as_str()], "newest first");

    let listed = records(&app, &org, "contact.listed").await;
    assert_eq!(listed.len(), 1, "one record for the page: {listed:?}");
    assert_eq!(listed[0]["actor"], json!(me));
    assert_eq!(listed[0]["metadata"]["contacts"], json!(shown), "it names the contacts shown, and only them");
    assert_eq!(listed[0]["metadata"]["fields"], json!(["address", "name", "locale", "time_zone", "tags"]));

    // The next page names the one contact it shows; a page of nobody is no record.
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = app.get_as(&org.creator, &format!("/v1/orgs/acme/contacts?limit=2&cursor={cursor}")).await;
    assert_eq!(next.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(next.body["next_cursor"], Value::Null);
    app.get_as(&org.creator, "/v1/orgs/acme/contacts?q=nobody").await;
    let listed = records(&app, &org, "contact.listed").await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["metadata"]["contacts"], json!([ids[0]]));

    // Who looked at this person: the contact's page is on the trail under its id.
    let page = app.get_as(&org.admin, &format!("/v1/orgs/acme/contacts/{}", ids[0])).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let viewed =
        app.get_as(&org.admin, &format!("/v1/orgs/acme/audit-logs?action=contact.viewed&resource_id={}", ids[0])).await;
    let viewed = viewed.body["items"].as_array().unwrap();
    assert_eq!(viewed.len(), 1, "{viewed:?}");
    assert!(viewed[0]["metadata"]["fields"].as_array().unwrap().contains(&json!("consent_history")));
}

#[tokio::test]
async fn a_viewer_or_reviewer_sees_counts_and_no_one() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let id = contact(&app, &org.creator, "acme", json!({ "address": "ana@example.com", "name": "Ana" })).await;
    let (purpose, notice) = purpose_with_notice(&app, &org, "News", false).await;
    let granted = app
        .post_as(
            &org.creator,
            &format!("/v1/orgs/acme/contacts/{id}/consent"),
            json!({ "action": "grant", "purpose": purpose, "basis": "consent", "notice_sha256": notice }),
        )
        .await;
    assert_eq!(granted.status, 201, "{}", granted.body);
    app.post_as(&org.creator, "/v1/orgs/acme/suppressions", json!({ "address": "gone@example.com" })).await;

    for token in [&org.viewer, &org.reviewer] {
        let overview = app.get_as(token, "/v1/orgs/acme/audience").await;
        assert_eq!(overview.status, 200, "{}", overview.body);
        assert_eq!(overview.body["contacts"], 1);
        assert_eq!(overview.body["suppressed"], 1);
        assert_eq!(overview.body["purposes"][0]["consenting"], 1);
        assert!(!overview.body.to_string().contains("ana@"), "no address in the counts");
        for path in [
            "/v1/orgs/acme/contacts".to_owned(),
            format!("/v1/orgs/acme/contacts/{id}"),
            "/v1/orgs/acme/contacts?q=ana".to_owned(),
            "/v1/orgs/acme/suppressions".to_owned(),
        ] {
            let reply = app.get_as(token, &path).await;
            assert_eq!(reply.status, 403, "{path}: {}", reply.body);
            assert!(!reply.body.to_string().contains("ana@"), "{path}");
        }
        let check =
            app.post_as(token, "/v1/orgs/acme/suppressions/check", json!({ "address": "gone@example.com" })).await;
        assert_eq!(check.status, 403, "{}", check.body);
    }
    assert!(records(&app, &org, "contact.viewed").await.is_empty(), "nobody was shown");
}

#[tokio::test]
async fn a_second_contact_for_the_same_address_is_a_conflict_naming_the_address() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    contact(&app, &org.creator, "acme", json!({ "address": "Ana@Example.com" })).await;
    let again = app.post_as(&org.creator, "/v1/orgs/acme/contacts", json!({ "address": "ana@EXAMPLE.com" })).await;
    assert_eq!((again.status, again.problem_type()), (409, "urn:mos:problem:conflict"), "{}", again.body);
    assert_eq!(again.body["field"], "address");

    let bad =
        app.post_as(&org.creator, "/v1/orgs/acme/contacts", json!({ "address": "x@y.org", "locale": "german" })).await;
    assert_eq!((bad.status, bad.body["field"].as_str()), (422, Some("locale")), "{}", bad.body);
}

#[tokio::test]
async fn contacts_are_found_by_address_prefix_or_name_and_by_tag_and_edited() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let ana = contact(
        &app,
        &org.creator,
        "acme",
        json!({ "address": "ana@example.com", "name": "Ana Silva", "tags": ["VIP"] }),
    )
    .await;
    let bo = contact(&app, &org.creator, "acme", json!({ "address": "bo@example.com", "name": "Bo Lee" })).await;
    contact(&app, &org.creator, "acme", json!({ "address": "100%_x@example.com", "name": "Zed" })).await;
    let ids = |reply: &crate::Reply| -> Vec<String> {
        reply.body["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&app.get_as(&org.creator, "/v1/orgs/acme/contacts?q=an").await), [ana.as_str()]);
    assert_eq!(
        ids(&app.get_as(&org.creator, "/v1/orgs/acme/contacts?q=lee").await),
        [bo.as_str()],
        "a word of the name"
    );
    assert_eq!(ids(&app.get_as(&org.creator, "/v1/orgs/acme/contacts?tag=vip").await), [ana.as_str()]);
    assert!(
        ids(&app.get_as(&org.creator, "/v1/orgs/acme/contacts?q=%25").await).is_empty(),
        "% is a letter, not a pattern"
    );

    let edited = app
        .call_as(
            "patch",
            &org.creator,
            &format!("/v1/orgs/acme/contacts/{bo}"),
            json!({ "tags": ["vip", "flu-2026"], "locale": "en-GB" }),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    let mut vip = ids(&app.get_as(&org.creator, "/v1/orgs/acme/contacts?tag=vip").await);
    vip.sort();
    let mut both = vec![ana, bo.clone()];
    both.sort();
    assert_eq!(vip, both);
    let page = app.get_as(&org.creator, &format!("/v1/orgs/acme/contacts/{bo}")).await;
    assert_eq!(page.body["locale"], "en-GB");
    assert_eq!(page.body["name"], "Bo Lee", "a field left out stays");
    let updated = records(&app, &org, "contact.updated").await;
    assert_eq!(updated[0]["metadata"]["fields"], json!(["locale", "tags"]));
    assert!(!updated[0].to_string().contains("en-GB"), "the record names fields, not values");

    let moved = app
        .call_as("patch", &org.creator, &format!("/v1/orgs/acme/contacts/{bo}"), json!({ "address": "b@x.org" }))
        .await;
    assert_eq!((moved.status, moved.body["field"].as_str()), (422, Some("address")));
}

#[tokio::test]
async fn purposes_notices_and_attributes_are_configured_by_an_admin_and_typed_values_checked() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let (purpose, notice) = purpose_with_notice(&app, &org, "Flu reminders", false).await;
    let text = "Flu reminders: we write now and then.";
    assert_eq!(notice, format!("{:x}", Sha256::digest(text.as_bytes())), "the hash names the canonical text");
    let again = app
        .post_as(
            &org.admin,
            &format!("/v1/orgs/acme/purposes/{purpose}/notices"),
            json!({ "text": format!("{text}  \r\n") }),
        )
        .await;
    assert_eq!(again.body["sha256"], notice, "the same canonical text is the same version");
    let listed = app.get_as(&org.viewer, &format!("/v1/orgs/acme/purposes/{purpose}/notices")).await;
    assert_eq!(listed.body["notices"].as_array().unwrap().len(), 1, "{}", listed.body);
    assert_eq!(records(&app, &org, "notice.published").await.len(), 1);

    let taken = app.post_as(&org.admin, "/v1/orgs/acme/purposes", json!({ "name": "Flu reminders" })).await;
    assert_eq!((taken.status, taken.body["field"].as_str()), (409, Some("name")), "{}", taken.body);

    for body in [
        json!({ "name": "plan", "kind": "choice", "choices": ["gold", "silver"] }),
        json!({ "name": "born", "kind": "date" }),
        json!({ "name": "nickname", "kind": "text", "max_length": 5 }),
    ] {
        let defined = app.post_as(&org.admin, "/v1/orgs/acme/attributes", body).await;
        assert_eq!(defined.status, 201, "{}", defined.body);
    }
    let id = contact(
        &app,
        &org.creator,
        "acme",
        json!({ "address": "ana@example.com", "attributes": { "plan": "gold", "born": "1990-02-03", "nickname": "Ana" } }),
    )
    .await;
    let page = app.get_as(&org.creator, &format!("/v1/orgs/acme/contacts/{id}")).await;
    assert_eq!(page.body["attributes"], json!({ "born": "1990-02-03", "nickname": "Ana", "plan": "gold" }));
    for wrong in [
        json!({ "plan": "bronze" }),
        json!({ "born": "yesterday" }),
        json!({ "nickname": "Anabela" }),
        json!({ "nope": 1 }),
    ] {
        let refused = app
            .call_as("patch", &org.creator, &format!("/v1/orgs/acme/contacts/{id}"), json!({ "attributes": wrong }))
            .await;
        assert_eq!(
            (refused.status, refused.body["field"].as_str()),
            (422, Some("attributes")),
            "{wrong}: {}",
            refused.body
        );
    }
    let cleared = app
        .call_as(
            "patch",
            &org.creator,
            &format!("/v1/orgs/acme/contacts/{id}"),
            json!({ "attributes": { "plan": null } }),
        )
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    let page = app.get_as(&org.creator, &format!("/v1/orgs/acme/contacts/{id}")).await;
    assert_eq!(page.body["attributes"], json!({ "born": "1990-02-03", "nickname": "Ana" }));
}

#[tokio::test]
async fn consent_is_recorded_as_a_timeline_and_a_suppressed_address_is_refused_naming_the_contact() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let (news, notice) = purpose_with_notice(&app, &org, "News", false).await;
    let (care, care_notice) = purpose_with_notice(&app, &org, "Care programs", true).await;
    let ana = contact(&app, &org.creator, "acme", json!({ "address": "ana@example.com" })).await;
    let url = format!("/v1/orgs/acme/contacts/{ana}/consent");

    let grant = json!({ "action": "grant", "purpose": news, "basis": "consent", "notice_sha256": notice });
    assert_eq!(app.post_as(&org.creator, &url, grant.clone()).await.body["seq"], 1);
    let revoked = app.post_as(&org.creator, &url, json!({ "action": "revoke", "purpose": news })).await;
    assert_eq!(revoked.body["seq"], 2, "{}", revoked.body);

    // A HIPAA purpose wants an authorization with its elements.
    let plain = json!({ "action": "grant", "purpose": care, "basis": "consent", "notice_sha256": care_notice });
    let refused = app.post_as(&org.creator, &url, plain).await;
    assert_eq!((refused.status, refused.body["field"].as_str()), (422, Some("basis")), "{}", refused.body);
    let elements = json!({ "information": "appointment dates", "disclosers": "Acme Clinic", "recipients": "Acme Health",
        "purpose": "care program mail", "signature": "Ana Silva", "signed_on": "2026-01-05",
        "right_to_revoke": "in writing at any time", "conditioning": "care does not depend on it",
        "redisclosure": "may be redisclosed" });
    let hipaa = json!({ "action": "grant", "purpose": care, "basis": "hipaa_authorization", "notice_sha256": care_notice,
        "hipaa": elements, "expires_at": "2027-01-05T00:00:00Z" });
    let authorized = app.post_as(&org.creator, &url, hipaa).await;
    assert_eq!(authorized.status, 201, "{}", authorized.body);
    let wrong_notice = json!({ "action": "grant", "purpose": news, "basis": "consent", "notice_sha256": care_notice });
    let refused = app.post_as(&org.creator, &url, wrong_notice).await;
    assert_eq!((refused.status, refused.body["field"].as_str()), (422, Some("notice_sha256")), "{}", refused.body);

    let page = app.get_as(&org.creator, &format!("/v1/orgs/acme/contacts/{ana}")).await;
    let kinds: Vec<(&str, &str)> = page.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["purpose_name"].as_str().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("News", "grant"), ("News", "revoke"), ("Care programs", "grant")]);
    assert_eq!(page.body["history"][0]["source"], "api");
    assert_eq!(page.body["history"][0]["notice_sha256"], notice);
    assert_eq!(page.body["history"][2]["basis"], "hipaa_authorization");

    // Suppressed by hand: a member may no longer record consent for the address.
    let suppressed =
        app.post_as(&org.creator, "/v1/orgs/acme/suppressions", json!({ "address": "ANA@example.com" })).await;
    assert_eq!(suppressed.status, 204, "{}", suppressed.body);
    let refused = app.post_as(&org.creator, &url, grant).await;
    assert_eq!((refused.status, refused.body["field"].as_str()), (409, Some("contact")), "{}", refused.body);
    assert!(refused.body["detail"].as_str().unwrap().contains("suppressed"), "{}", refused.body);

    let check =
        app.post_as(&org.creator, "/v1/orgs/acme/suppressions/check", json!({ "address": "ana@example.com" })).await;
    assert_eq!(check.body, json!({ "suppressed": true, "reasons": ["manual"] }));
    let list = app.get_as(&org.admin, "/v1/orgs/acme/suppressions").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1, "{}", list.body);
    assert_eq!(list.body["items"][0]["reason"], "manual");
    assert!(!list.body.to_string().contains("ana@"), "the list holds no address");
    assert!(!records(&app, &org, "suppression.checked").await[0].to_string().contains("ana@"));
}
