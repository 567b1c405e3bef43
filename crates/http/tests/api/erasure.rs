//! A person's rights end to end: erasure (personal data gone from the contact API and the
//! export, the suppression, the consent events and a verifying chain kept), the export and the
//! consent receipt, each audited, and only for an ADMIN.

use mos_db::chain;
use mos_domain::OrgId;
use serde_json::{json, Value};

use crate::audiences::{contact, purpose_with_notice, records};
use crate::console_access::page;
use crate::{Members, TestApp};

/// A contact of `org` with a name, a tag and one consent grant: its id and the notice's hash.
pub(crate) async fn consenting(app: &TestApp, org: &Members, address: &str) -> (String, String, String) {
    let slug = &org.slug;
    let id = contact(app, &org.creator, slug, json!({ "address": address, "name": "Ana Lima", "tags": ["vip"] })).await;
    let (purpose, notice) = purpose_with_notice(app, org, "News", false).await;
    let granted = app
        .post_as(
            &org.creator,
            &format!("/v1/orgs/{slug}/contacts/{id}/consent"),
            json!({ "action": "grant", "purpose": purpose, "basis": "consent", "notice_sha256": notice }),
        )
        .await;
    assert_eq!(granted.status, 201, "{}", granted.body);
    (id, purpose, notice)
}

pub(crate) async fn org_id(app: &TestApp, slug: &str) -> OrgId {
    let id: uuid::Uuid = sqlx::query_scalar("select id from app.organizations where slug = $1")
        .bind(slug)
        .fetch_one(&mut app.db.superuser().await)
        .await
        .unwrap();
    OrgId::from_uuid(id).unwrap()
}

#[tokio::test]
async fn an_erased_contact_is_gone_from_the_api_and_its_address_stays_suppressed_with_its_consent_and_chain() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let (id, purpose, notice) = consenting(&app, &org, "ana@example.com").await;
    let before = app.get_as(&org.admin, &format!("/v1/orgs/acme/contacts/{id}/export")).await;
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(before.body["address"], "ana@example.com");

    let erased = app.post_as(&org.admin, &format!("/v1/orgs/acme/contacts/{id}/erase"), json!({})).await;
    assert_eq!(erased.status, 204, "{}", erased.body);

    // Gone from every door that shows a person, and erased once only.
    for path in [format!("/v1/orgs/acme/contacts/{id}"), format!("/v1/orgs/acme/contacts/{id}/export")] {
        let reply = app.get_as(&org.admin, &path).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
    }
    let list = app.get_as(&org.admin, "/v1/orgs/acme/contacts").await;
    assert!(!list.body.to_string().contains("ana@"), "{}", list.body);
    let again = app.post_as(&org.admin, &format!("/v1/orgs/acme/contacts/{id}/erase"), json!({})).await;
    assert_eq!(again.status, 404, "{}", again.body);

    // The consent event stays, naming the contact by id; the receipt shows it and no personal data.
    let receipt = app.get_as(&org.admin, &format!("/v1/orgs/acme/contacts/{id}/consent-receipt")).await;
    assert_eq!(receipt.status, 200, "{}", receipt.body);
    let events = receipt.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{}", receipt.body);
    assert_eq!(
        (events[0]["kind"].as_str(), events[0]["notice_sha256"].as_str()),
        (Some("grant"), Some(notice.as_str()))
    );
    assert!(!receipt.body.to_string().contains("ana@") && !receipt.body.to_string().contains("Ana Lima"));

    // The address stays suppressed: checked, and a new contact for it takes no consent from a member.
    let check =
        app.post_as(&org.admin, "/v1/orgs/acme/suppressions/check", json!({ "address": "ana@example.com" })).await;
    assert_eq!(check.body["suppressed"], true, "{}", check.body);
    let again = contact(&app, &org.creator, "acme", json!({ "address": "ana@example.com" })).await;
    let grant = app
        .post_as(
            &org.creator,
            &format!("/v1/orgs/acme/contacts/{again}/consent"),
            json!({ "action": "grant", "purpose": purpose, "basis": "consent", "notice_sha256": notice }),
        )
        .await;
    assert_eq!((grant.status, grant.body["field"].as_str()), (409, Some("contact")), "{}", grant.body);

    // The erasure is on the trail, and the chain still verifies with it.
    let erasures = records(&app, &org, "contact.erased").await;
    assert_eq!(erasures.len(), 1, "{erasures:?}");
    assert_eq!(erasures[0]["resource_id"], json!(id));
    chain::seal(&app.pool, None, chain::WINDOW).await.unwrap();
    let mut tx = app.pool.begin_tenant(org_id(&app, "acme").await, None).await.unwrap();
    let report = chain::verify_tenant(&mut tx, chrono::Utc::now()).await.unwrap();
    assert!(report.broken.is_none() && report.pending.0 == 0, "{report:?}");
    let leaked: i64 = sqlx::query_scalar(
        "select count(*) from app.audit_logs where organization_id = $1 and (changes::text || metadata::text) like '%ana@%'",
    )
    .bind(tx.org().as_uuid())
    .fetch_one(tx.conn())
    .await
    .unwrap();
    assert_eq!(leaked, 0, "the trail names contacts by id only");
}

#[tokio::test]
async fn an_export_holds_the_contact_its_attributes_consent_and_notice_texts_and_is_audited_without_the_data() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let defined = app
        .post_as(&org.admin, "/v1/orgs/acme/attributes", json!({ "name": "plan", "kind": "text", "max_length": 20 }))
        .await;
    assert_eq!(defined.status, 201, "{}", defined.body);
    let (id, purpose, notice) = consenting(&app, &org, "ana@example.com").await;
    let edited = app
        .call_as(
            "patch",
            &org.creator,
            &format!("/v1/orgs/acme/contacts/{id}"),
            json!({ "attributes": { "plan": "gold" } }),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);

    let export = app.get_as(&org.admin, &format!("/v1/orgs/acme/contacts/{id}/export")).await;
    assert_eq!(export.status, 200, "{}", export.body);
    let body = &export.body;
    assert_eq!((body["address"].as_str(), body["name"].as_str()), (Some("ana@example.com"), Some("Ana Lima")));
    assert_eq!(body["tags"], json!(["vip"]));
    assert_eq!(body["attributes"], json!({ "plan": "gold" }));
    let events = body["consent_events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["purpose_id"], json!(purpose));
    assert_eq!(events[0]["notice_sha256"], json!(notice));
    assert_eq!(body["notices"][0]["sha256"], json!(notice));
    assert_eq!(body["notices"][0]["text"], "News: we write now and then.");

    let exported = records(&app, &org, "contact.exported").await;
    assert_eq!(exported.len(), 1, "{exported:?}");
    assert_eq!(exported[0]["resource_id"], json!(id));
    assert!(exported[0]["metadata"]["fields"].as_array().unwrap().contains(&json!("consent_history")));
    let text = exported[0].to_string();
    assert!(!text.contains("ana@") && !text.contains("Ana Lima") && !text.contains("gold"), "{text}");
}

#[tokio::test]
async fn creators_and_viewers_may_neither_erase_nor_export_nor_take_a_receipt() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let (id, _, _) = consenting(&app, &org, "ana@example.com").await;
    for token in [&org.creator, &org.viewer, &org.reviewer] {
        let erase = app.post_as(token, &format!("/v1/orgs/acme/contacts/{id}/erase"), json!({})).await;
        assert_eq!(erase.status, 403, "{}", erase.body);
        for path in
            [format!("/v1/orgs/acme/contacts/{id}/export"), format!("/v1/orgs/acme/contacts/{id}/consent-receipt")]
        {
            let reply = app.get_as(token, &path).await;
            assert_eq!(reply.status, 403, "{path}: {}", reply.body);
            assert!(!reply.body.to_string().contains("ana@"), "{path}");
        }
    }
    let still = app.get_as(&org.admin, &format!("/v1/orgs/acme/contacts/{id}")).await;
    assert_eq!((still.status, still.body["address"].as_str()), (200, Some("ana@example.com")));
    assert!(records(&app, &org, "contact.exported").await.is_empty());
}

#[tokio::test]
async fn a_receipt_carries_the_events_records_and_a_checkpoint_signed_with_the_installations_key() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let (id, purpose, _) = consenting(&app, &org, "ana@example.com").await;
    let revoked = app
        .post_as(
            &org.creator,
            &format!("/v1/orgs/acme/contacts/{id}/consent"),
            json!({ "action": "revoke", "purpose": purpose }),
        )
        .await;
    assert_eq!(revoked.status, 201, "{}", revoked.body);

    let receipt = app.get_as(&org.admin, &format!("/v1/orgs/acme/contacts/{id}/consent-receipt")).await;
    assert_eq!(receipt.status, 200, "{}", receipt.body);
    let body = &receipt.body;
    assert_eq!(body["format"], mos_db::audiences::export::RECEIPT_FORMAT);
    assert_eq!(body["events"].as_array().unwrap().len(), 2);
    assert_eq!(body["not_covered"], json!([]), "sealed before it was issued");
    let records = body["chain"]["records"].as_array().unwrap();
    let last = records.last().unwrap();
    let head = &body["checkpoint"]["heads"][0];
    assert_eq!((&head["seq"], &head["hash"]), (&last["seq"], &last["hash"]));
    let key = hex::encode(crate::AUDIT_SIGNING_KEY.verifying_key().as_bytes());
    assert_eq!(body["checkpoint"]["public_key"], json!(key));
    for event in body["events"].as_array().unwrap() {
        let record = body["records"][event["id"].as_str().unwrap()].as_str().unwrap();
        let found =
            records.iter().find(|r| r["fields"]["id"] == json!(record)).expect("the event's record is in the stretch");
        let meta: Value = serde_json::from_str(found["fields"]["metadata"].as_str().unwrap()).unwrap();
        assert_eq!((&meta["contact"], &meta["seq"]), (&json!(id), &event["seq"]));
    }
    let issued = crate::audiences::records(&app, &org, "contact.receipt_issued").await;
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0]["resource_id"], json!(id));
}

#[tokio::test]
async fn a_receipt_whose_events_lie_further_apart_than_the_bound_is_refused_without_reading_or_recording_it() {
    use mos_db::audiences::export;
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let (id, purpose, _) = consenting(&app, &org, "ana@example.com").await;
    let revoked = app
        .post_as(
            &org.creator,
            &format!("/v1/orgs/acme/contacts/{id}/consent"),
            json!({ "action": "revoke", "purpose": purpose }),
        )
        .await;
    assert_eq!(revoked.status, 201, "{}", revoked.body);
    let org_id = org_id(&app, "acme").await;
    chain::seal_tenant(&app.pool, org_id.as_uuid()).await.unwrap();

    let contact = mos_domain::ContactId::from_uuid(id.parse().unwrap()).unwrap();
    let admin = mos_domain::UserId::from_uuid(
        app.get_as(&org.admin, "/v1/me").await.body["id"].as_str().unwrap().parse().unwrap(),
    )
    .unwrap();
    let source = mos_domain::RequestSource::default();
    let mut tx = app.pool.begin_tenant(org_id, Some(admin)).await.unwrap();
    let refused = export::receipt(&mut tx, contact, chrono::Utc::now(), admin, &source, 1).await.unwrap().unwrap();
    let too_long = refused.expect_err("two records apart, one allowed");
    assert!(too_long.links >= 2, "{too_long:?}");
    tx.commit().await.unwrap();
    assert!(crate::audiences::records(&app, &org, "contact.receipt_issued").await.is_empty(), "nothing issued");
    // Within the bound, the same contact's receipt is issued.
    let mut tx = app.pool.begin_tenant(org_id, Some(admin)).await.unwrap();
    let issued = export::receipt(&mut tx, contact, chrono::Utc::now(), admin, &source, too_long.links).await;
    assert!(issued.unwrap().unwrap().is_ok());
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn the_console_hands_an_admin_the_contacts_export_as_a_json_file_audited_as_the_apis_and_others_get_no_link_and_a_403(
) {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let (id, purpose, _) = consenting(&app, &org, "ana@example.com").await;
    let (contact_page, export) = (format!("/orgs/acme/contacts/{id}"), format!("/orgs/acme/contacts/{id}/export"));
    let link = format!("href=\"{export}\"");

    let (_, html) = page(&app, &org.admin, &contact_page).await;
    assert!(html.contains(&link), "{html}");
    let file = app
        .http
        .get(format!("{}{export}", app.base))
        .header("cookie", format!("__Host-mos_session={}", org.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "application/json");
    let disposition = file.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert_eq!(disposition, format!("attachment; filename=\"contact-export-{id}.json\""));
    let file: Value = serde_json::from_str(&file.text().await.unwrap()).unwrap();
    assert_eq!((file["address"].as_str(), file["name"].as_str()), (Some("ana@example.com"), Some("Ana Lima")));
    assert_eq!(file["consent_events"][0]["purpose_id"], json!(purpose));
    // The same document as the API's export, and the same record of it.
    let api = app.get_as(&org.admin, &format!("/v1/orgs/acme/contacts/{id}/export")).await;
    assert_eq!(api.body, file);
    let exported = records(&app, &org, "contact.exported").await;
    assert_eq!(exported.len(), 2, "{exported:?}");
    for record in &exported {
        assert_eq!((&record["resource_id"], &record["metadata"]), (&json!(id), &exported[0]["metadata"]));
    }

    // A CREATOR reads the contact but may not export it: no link, and a 403 by the address.
    let (_, html) = page(&app, &org.creator, &contact_page).await;
    assert!(html.contains("ana@example.com") && !html.contains(&link), "{html}");
    for token in [&org.creator, &org.viewer] {
        let (status, html) = page(&app, token, &export).await;
        assert_eq!(status, 403, "{html}");
        assert!(!html.contains("ana@"), "{html}");
    }
    assert_eq!(records(&app, &org, "contact.exported").await.len(), 2, "a refusal exports nothing");
}
