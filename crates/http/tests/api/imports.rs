//! Contact imports through the API, end to end: upload, preview, start, progress, problems,
//! cancel; consent only with a provenance and never for a suppressed address; another
//! organization's imports out of reach; a role without `contacts.manage` refused.

use std::time::Duration;

use mos_auth::PasswordHasher;
use mos_db::testing::TestDb;
use serde_json::{json, Value};

use crate::audiences::{purpose_with_notice, records};
use crate::{Members, Reply, TestApp};

/// Uploads `csv` to `slug` as `token`.
async fn upload(app: &TestApp, token: &str, slug: &str, csv: &[u8]) -> Reply {
    let url = format!("{}/v1/orgs/{slug}/imports?file_name=patients.csv", app.base);
    app.send(app.http.post(url).bearer_auth(token).header("content-type", "text/csv").body(csv.to_vec())).await
}

/// Uploads `csv` and starts it with `mapping` and `provenance`: the import's id.
async fn import(app: &TestApp, org: &Members, csv: &[u8], mapping: Value, provenance: Value) -> String {
    let uploaded = upload(app, &org.creator, &org.slug, csv).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let id = uploaded.body["import"]["id"].as_str().unwrap().to_owned();
    let started = app
        .post_as(
            &org.creator,
            &format!("/v1/orgs/{}/imports/{id}/start", org.slug),
            json!({ "mapping": mapping, "provenance": provenance }),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    id
}

/// Polls the import until its job has ended (at most 30 s: the job runs in the background on
/// a busy machine); its last state.
async fn finished(app: &TestApp, org: &Members, id: &str) -> Value {
    for _ in 0..1200 {
        let reply = app.get_as(&org.creator, &format!("/v1/orgs/{}/imports/{id}", org.slug)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        if ["succeeded", "failed", "cancelled"].contains(&reply.body["state"].as_str().unwrap()) {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the import {id} did not finish");
}

async fn problems(app: &TestApp, org: &Members, id: &str) -> String {
    let url = format!("{}/v1/orgs/{}/imports/{id}/problems", app.base, org.slug);
    let response = app.http.get(url).bearer_auth(&org.creator).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    response.text().await.unwrap()
}

async fn overview(app: &TestApp, org: &Members) -> Value {
    let reply = app.get_as(&org.admin, &format!("/v1/orgs/{}/audience", org.slug)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

fn provenance(purpose: &str, notice: &str) -> Value {
    json!({ "purpose": purpose, "lawful_basis": "consent", "notice_sha256": notice,
            "description": "Sign-up sheet at the spring health fair" })
}

fn mapping() -> Value {
    json!([{ "field": "address" }, { "field": "name" }, { "field": "locale" }])
}

#[tokio::test]
async fn an_import_with_bad_rows_imports_the_rest_and_reports_each_bad_field_in_the_problems_csv() {
    let app = TestApp::spawn_with_jobs(|_| {}).await;
    let org = app.org_with_every_role("acme").await;
    let (purpose, notice) = purpose_with_notice(&app, &org, "News", false).await;
    // A byte order mark, semicolons, a quoted field with the delimiter in it.
    let csv = "\u{feff}E-mail;Full name;Language\r\n\
               ana@example.com;\"Ana; RN\";en\r\n\
               not-an-address;Bob;xx_1\r\n\
               cy@example.com;Cy;en-GB\r\n\
               ana@example.com;Ana again;de\r\n";

    let uploaded = upload(&app, &org.creator, "acme", csv.as_bytes()).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let body = &uploaded.body;
    assert_eq!(body["delimiter"], ";");
    assert_eq!(body["header"], json!(["E-mail", "Full name", "Language"]), "the byte order mark is no part of it");
    assert_eq!(body["rows"][0], json!(["ana@example.com", "Ana; RN", "en"]));
    assert_eq!(body["rows"].as_array().unwrap().len(), 4);
    assert_eq!(body["suggested_mapping"], mapping(), "suggested from the header's names");
    assert_eq!(body["import"]["state"], "uploaded");
    let id = body["import"]["id"].as_str().unwrap().to_owned();
    let previewed = records(&app, &org, "contact_import.previewed").await;
    assert_eq!(previewed.len(), 1, "showing the first rows is recorded: {previewed:?}");
    assert_eq!(previewed[0]["resource_id"], json!(id));
    assert_eq!(previewed[0]["metadata"]["rows"], json!([2, 3, 4, 5]), "the rows shown, by number, not their data");

    let started = app
        .post_as(
            &org.creator,
            &format!("/v1/orgs/acme/imports/{id}/start"),
            json!({ "mapping": mapping(), "provenance": provenance(&purpose, &notice) }),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    let done = finished(&app, &org, &id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!((&done["imported"], &done["invalid"], &done["rows_done"]), (&json!(2), &json!(1), &json!(4)), "{done}");
    assert_eq!(done["rows_total"], json!(4), "the rows were counted as the file came in: {done}");
    assert_eq!(done["provenance"]["notice_sha256"], json!(notice));
    assert_eq!(done["mapping"], mapping());

    let csv = problems(&app, &org, &id).await;
    assert_eq!(
        csv,
        "row,column,reason\r\n\
         3,E-mail,not an email address\r\n\
         3,Language,not a language tag\r\n\
         5,address,same address as row 2\r\n"
    );
    let audience = overview(&app, &org).await;
    assert_eq!(audience["contacts"], 2);
    assert_eq!(audience["purposes"][0]["consenting"], 2, "each imported contact consented, as the provenance says");
    let imported = records(&app, &org, "contacts.imported").await;
    assert_eq!(imported.len(), 1, "{imported:?}");
    assert_eq!(imported[0]["metadata"]["imported"], 2);

    let listed = app.get_as(&org.admin, "/v1/orgs/acme/imports?limit=1").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["items"][0]["id"], json!(id));
    assert_eq!(listed.body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn without_a_provenance_the_contacts_are_imported_without_consent() {
    let app = TestApp::spawn_with_jobs(|_| {}).await;
    let org = app.org_with_every_role("acme").await;
    purpose_with_notice(&app, &org, "News", false).await;
    let id = import(&app, &org, b"email,name,locale\na@example.com,A,en\nb@example.com,B,en\n", mapping(), Value::Null)
        .await;
    let done = finished(&app, &org, &id).await;
    assert_eq!((done["state"].as_str(), &done["imported"]), (Some("succeeded"), &json!(2)), "{done}");
    assert_eq!(done["provenance"], Value::Null);
    let audience = overview(&app, &org).await;
    assert_eq!((&audience["contacts"], &audience["purposes"][0]["consenting"]), (&json!(2), &json!(0)));
}

#[tokio::test]
async fn a_suppressed_address_is_imported_without_consent_and_reported() {
    let app = TestApp::spawn_with_jobs(|_| {}).await;
    let org = app.org_with_every_role("acme").await;
    let (purpose, notice) = purpose_with_notice(&app, &org, "News", false).await;
    let suppressed =
        app.post_as(&org.creator, "/v1/orgs/acme/suppressions", json!({ "address": "gone@example.com" })).await;
    assert_eq!(suppressed.status, 204, "{}", suppressed.body);

    let csv = b"email,name,locale\nGONE@example.com,Gone,en\nkept@example.com,Kept,en\n";
    let id = import(&app, &org, csv, mapping(), provenance(&purpose, &notice)).await;
    let done = finished(&app, &org, &id).await;
    assert_eq!((&done["imported"], &done["suppressed"]), (&json!(2), &json!(1)), "{done}");
    assert_eq!(
        problems(&app, &org, &id).await,
        "row,column,reason\r\n2,address,suppressed: imported without consent\r\n"
    );
    assert_eq!(overview(&app, &org).await["purposes"][0]["consenting"], 1, "only the address not suppressed");
}

#[tokio::test]
async fn a_queued_import_is_cancelled_and_imports_nothing() {
    // No runner in this server's process: the job stays queued until cancelled.
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let uploaded = upload(&app, &org.creator, "acme", b"email,name,locale\na@example.com,A,en\n").await;
    let id = uploaded.body["import"]["id"].as_str().unwrap().to_owned();
    let early = app.post_as(&org.creator, &format!("/v1/orgs/acme/imports/{id}/cancel"), json!({})).await;
    assert_eq!(early.status, 409, "nothing started, nothing to cancel: {}", early.body);

    let started =
        app.post_as(&org.creator, &format!("/v1/orgs/acme/imports/{id}/start"), json!({ "mapping": mapping() })).await;
    assert_eq!((started.status, started.body["state"].as_str()), (202, Some("queued")), "{}", started.body);
    let cancelled = app.post_as(&org.creator, &format!("/v1/orgs/acme/imports/{id}/cancel"), json!({})).await;
    assert_eq!(cancelled.status, 202, "{}", cancelled.body);
    assert_eq!(
        (cancelled.body["state"].as_str(), &cancelled.body["cancel_requested"]),
        (Some("cancelled"), &json!(true))
    );
    let again =
        app.post_as(&org.creator, &format!("/v1/orgs/acme/imports/{id}/start"), json!({ "mapping": mapping() })).await;
    assert_eq!(again.status, 409, "a cancelled import does not start again: {}", again.body);
    assert_eq!(overview(&app, &org).await["contacts"], 0);
    // Who started it and who stopped it are on the trail, though nothing was imported.
    for action in ["contact_import.started", "contact_import.cancelled"] {
        let found = records(&app, &org, action).await;
        assert_eq!(found.len(), 1, "{action}: {found:?}");
        assert_eq!(found[0]["resource_id"], id.as_str(), "{action}");
    }
    assert_eq!(records(&app, &org, "contact_import.started").await[0]["metadata"]["with_consent"], false);
}

#[tokio::test]
async fn each_invalid_part_of_a_start_is_refused_naming_its_field() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let (purpose, notice) = purpose_with_notice(&app, &org, "News", false).await;
    let (care, care_notice) = purpose_with_notice(&app, &org, "Care programs", true).await;
    let uploaded = upload(&app, &org.creator, "acme", b"email,name,locale\na@example.com,A,en\n").await;
    let id = uploaded.body["import"]["id"].as_str().unwrap().to_owned();
    let url = format!("/v1/orgs/acme/imports/{id}/start");
    let good = provenance(&purpose, &notice);
    let with = |key: &str, value: Value| {
        let mut p = good.clone();
        p[key] = value;
        json!({ "mapping": mapping(), "provenance": p })
    };
    let cases = [
        (json!({ "mapping": [{ "field": "name" }, null, null] }), "mapping"),
        (json!({ "mapping": [{ "field": "address" }, null] }), "mapping"),
        (json!({ "mapping": [{ "field": "address" }, { "field": "attribute", "name": "nope" }, null] }), "mapping"),
        (json!({ "mapping": [{ "field": "address" }, { "field": "birthday" }, null] }), "mapping"),
        (with("purpose", json!(uuid::Uuid::now_v7())), "provenance.purpose"),
        (with("notice_sha256", json!("ab".repeat(32))), "provenance.notice_sha256"),
        (with("description", json!(" ")), "provenance.description"),
        (with("lawful_basis", json!("hipaa_authorization")), "provenance.lawful_basis"),
        (with("lawful_basis", json!("exemption")), "provenance.exemption"),
        (json!({ "mapping": mapping(), "provenance": provenance(&care, &care_notice) }), "provenance.purpose"),
    ];
    for (body, field) in cases {
        let refused = app.post_as(&org.creator, &url, body.clone()).await;
        assert_eq!((refused.status, refused.body["field"].as_str()), (422, Some(field)), "{body}: {}", refused.body);
    }
    let status = app.get_as(&org.creator, &format!("/v1/orgs/acme/imports/{id}")).await;
    assert_eq!(status.body["state"], "uploaded", "nothing was queued by a refused start");
}

#[tokio::test]
async fn another_organizations_import_is_out_of_reach_and_a_viewer_is_refused() {
    let app = TestApp::spawn().await;
    let acme = app.org_with_every_role("acme").await;
    let other = app.org_with_every_role("other").await;
    let uploaded = upload(&app, &acme.creator, "acme", b"email\na@example.com\n").await;
    let id = uploaded.body["import"]["id"].as_str().unwrap().to_owned();

    for (method, path) in [
        ("get", format!("/v1/orgs/other/imports/{id}")),
        ("get", format!("/v1/orgs/other/imports/{id}/preview")),
        ("get", format!("/v1/orgs/other/imports/{id}/problems")),
        ("post", format!("/v1/orgs/other/imports/{id}/cancel")),
    ] {
        let reply = app.call_as(method, &other.admin, &path, json!({})).await;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.body);
    }
    let started = app
        .post_as(
            &other.admin,
            &format!("/v1/orgs/other/imports/{id}/start"),
            json!({ "mapping": [{ "field": "address" }] }),
        )
        .await;
    assert_eq!(started.status, 404, "{}", started.body);
    let listed = app.get_as(&other.admin, "/v1/orgs/other/imports").await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.body);
    // Its own org's slug with the other's session is no way in either.
    let stranger = app.get_as(&other.admin, &format!("/v1/orgs/acme/imports/{id}")).await;
    assert_eq!(stranger.status, 404, "{}", stranger.body);

    let refused = upload(&app, &acme.viewer, "acme", b"email\nb@example.com\n").await;
    assert_eq!((refused.status, refused.problem_type()), (403, "urn:mos:problem:forbidden"), "{}", refused.body);
    let rows: i64 = sqlx::query_scalar("select count(*) from app.contact_imports")
        .fetch_one(&mut app.db.superuser().await)
        .await
        .unwrap();
    assert_eq!(rows, 1, "the VIEWER's upload stored nothing");
}

#[tokio::test]
async fn an_upload_past_the_size_limit_is_refused_with_413_and_nothing_is_kept() {
    let app = TestApp::spawn_on(TestDb::new().await, PasswordHasher::new(4), |s| s.import_max_bytes = 4096).await;
    let org = app.org_with_every_role("acme").await;
    let mut csv = b"email\n".to_vec();
    while csv.len() <= 4096 {
        csv.extend_from_slice(b"someone@example.com\n");
    }
    let refused = upload(&app, &org.creator, "acme", &csv).await;
    assert_eq!((refused.status, refused.problem_type()), (413, "urn:mos:problem:body_too_large"), "{}", refused.body);
    csv.truncate(4096);
    let fits = upload(&app, &org.creator, "acme", &csv).await;
    assert_eq!(fits.status, 201, "a file of exactly the limit fits: {}", fits.body);
    let listed = app.get_as(&org.creator, "/v1/orgs/acme/imports").await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1, "{}", listed.body);
}
