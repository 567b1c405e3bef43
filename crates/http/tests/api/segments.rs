//! Segments over the API and in the console, end to end on contacts made through the API:
//! counting, previewing (and the record it leaves), saving versions named by their hash, the
//! problems of a definition named by their JSON Pointer, who may see what, and tenancy.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::audiences::{contact, purpose_with_notice, records};
use crate::console_access::page;
use crate::cross_origin::posted;
use crate::orgs::RANDOM_ID;
use crate::{Members, TestApp};

/// An organization with an attribute `age`, a purpose with a notice, and four contacts:
/// `a` (70, patient, consents), `b` (55, patient and staff), `c` (30, patient, consents) and
/// `d` (nothing). Answers the contacts' ids in that order and the purpose's id.
async fn people(app: &TestApp, org: &Members) -> (Vec<String>, String) {
    let slug = &org.slug;
    let defined = app
        .post_as(&org.admin, &format!("/v1/orgs/{slug}/attributes"), json!({ "name": "age", "kind": "number" }))
        .await;
    assert_eq!(defined.status, 201, "{}", defined.body);
    let (purpose, notice) = purpose_with_notice(app, org, "Newsletter", false).await;
    let mut ids = Vec::new();
    for (name, age, tags) in [
        ("a", Some(70), vec!["patient"]),
        ("b", Some(55), vec!["patient", "staff"]),
        ("c", Some(30), vec!["patient"]),
        ("d", None, vec![]),
    ] {
        let attributes = age.map_or(json!({}), |age| json!({ "age": age }));
        let body = json!({ "address": format!("{name}@example.com"), "tags": tags, "attributes": attributes });
        ids.push(contact(app, &org.creator, slug, body).await);
    }
    for id in [&ids[0], &ids[2]] {
        let grant = json!({ "action": "grant", "purpose": purpose, "basis": "consent", "notice_sha256": notice });
        let granted = app.post_as(&org.creator, &format!("/v1/orgs/{slug}/contacts/{id}/consent"), grant).await;
        assert_eq!(granted.status, 201, "{}", granted.body);
    }
    (ids, purpose)
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn ids_of(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_segment_is_counted_saved_versioned_and_previewed_on_contacts_made_through_the_api() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let (ids, purpose) = people(&app, &org).await;

    let fifty_plus = json!({ "all": [{ "attribute": "age", "op": "gte", "value": 50 }] });
    let counted = app.post_as(&org.creator, "/v1/orgs/acme/segments/count", json!({ "definition": fifty_plus })).await;
    assert_eq!((counted.status, &counted.body["count"]), (200, &json!(2)), "{}", counted.body);
    let consenting = json!({ "all": [
        { "attribute": "age", "op": "gte", "value": 50 },
        { "consent": "live", "purpose": purpose },
    ] });
    let counted_consenting =
        app.post_as(&org.creator, "/v1/orgs/acme/segments/count", json!({ "definition": consenting })).await;
    assert_eq!(counted_consenting.body["count"], json!(1), "only a is 50 or more and consents");

    let created = app
        .post_as(&org.creator, "/v1/orgs/acme/segments", json!({ "name": "Fifty plus", "definition": fifty_plus }))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["version"], json!(1));
    assert_eq!(created.body["sha256"], counted.body["sha256"], "the count says the hash a save gives");
    let id = created.body["segment"].as_str().unwrap().to_owned();

    let added = app
        .post_as(&org.creator, &format!("/v1/orgs/acme/segments/{id}/versions"), json!({ "definition": consenting }))
        .await;
    assert_eq!((added.status, &added.body["version"]), (201, &json!(2)), "{}", added.body);

    let segment = app.get_as(&org.viewer, &format!("/v1/orgs/acme/segments/{id}")).await;
    assert_eq!(segment.status, 200, "{}", segment.body);
    assert_eq!(segment.body["name"], json!("Fifty plus"));
    let numbers: Vec<&Value> = segment.body["versions"].as_array().unwrap().iter().map(|v| &v["version"]).collect();
    assert_eq!(numbers, [&json!(2), &json!(1)], "newest first");

    let first = app.get_as(&org.viewer, &format!("/v1/orgs/acme/segments/{id}/versions/1")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    // The canonical text: keys in order, no whitespace, numbers as f64; its hash names it.
    let canonical = r#"{"all":[{"attribute":"age","op":"gte","value":50.0}]}"#;
    assert_eq!(first.body["definition"], serde_json::from_str::<Value>(canonical).unwrap());
    assert_eq!(first.body["sha256"], json!(sha256_hex(canonical)));
    let missing = app.get_as(&org.viewer, &format!("/v1/orgs/acme/segments/{id}/versions/3")).await;
    assert_eq!(missing.status, 404, "{}", missing.body);

    // The preview, a page at a time, in id order.
    let patients =
        json!({ "all": [{ "tags": "has", "value": "patient" }, { "not": { "tags": "has", "value": "staff" } }] });
    let mut shown = Vec::new();
    let mut cursor = Value::Null;
    for _ in 0..3 {
        let body = json!({ "definition": patients, "limit": 1, "cursor": cursor });
        let page = app.post_as(&org.creator, "/v1/orgs/acme/segments/preview", body).await;
        assert_eq!(page.status, 200, "{}", page.body);
        shown.extend(ids_of(&page.body));
        cursor = page.body["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert!(cursor.is_null(), "the pages end");
    let mut expected = vec![ids[0].clone(), ids[2].clone()];
    expected.sort();
    assert_eq!(shown, expected, "a and c, each once, in id order");

    // Saved segments, a page at a time.
    let other = json!({ "any": [] });
    let second =
        app.post_as(&org.admin, "/v1/orgs/acme/segments", json!({ "name": "Nobody", "definition": other })).await;
    assert_eq!(second.status, 201, "{}", second.body);
    let page = app.get_as(&org.viewer, "/v1/orgs/acme/segments?limit=1").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["items"][0]["name"], json!("Fifty plus"));
    assert_eq!(page.body["items"][0]["latest"], json!(2));
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = app.get_as(&org.viewer, &format!("/v1/orgs/acme/segments?limit=1&cursor={cursor}")).await;
    assert_eq!(next.body["items"][0]["name"], json!("Nobody"));
    assert_eq!(next.body["next_cursor"], Value::Null);

    let taken =
        app.post_as(&org.admin, "/v1/orgs/acme/segments", json!({ "name": "Nobody", "definition": other })).await;
    assert_eq!((taken.status, &taken.body["field"]), (409, &json!("name")), "{}", taken.body);
}

#[tokio::test]
async fn the_same_definition_saved_twice_keeps_one_version() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    people(&app, &org).await;
    let definition =
        json!({ "all": [{ "tags": "has", "value": "patient" }, { "attribute": "age", "op": "gte", "value": 50 }] });
    let created = app
        .post_as(&org.creator, "/v1/orgs/acme/segments", json!({ "name": "Older patients", "definition": definition }))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["segment"].as_str().unwrap();

    // The same definition, written otherwise: members in another order, keys in another order,
    // the number spelled otherwise.
    let again =
        json!({ "all": [{ "value": 50.0, "op": "gte", "attribute": "age" }, { "value": "patient", "tags": "has" }] });
    let saved = app
        .post_as(&org.creator, &format!("/v1/orgs/acme/segments/{id}/versions"), json!({ "definition": again }))
        .await;
    assert_eq!(saved.status, 200, "not a new version: {}", saved.body);
    assert_eq!(saved.body["version"], json!(1));
    assert_eq!(saved.body["sha256"], created.body["sha256"]);
    let segment = app.get_as(&org.creator, &format!("/v1/orgs/acme/segments/{id}")).await;
    assert_eq!(segment.body["versions"].as_array().unwrap().len(), 1, "{}", segment.body);
    assert!(records(&app, &org, "segment.saved").await.len() == 1, "one save recorded");
}

#[tokio::test]
async fn a_definition_that_does_not_parse_is_a_422_naming_the_path_of_each_bad_part() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    people(&app, &org).await;
    let bad = json!({ "all": [
        { "tags": "has", "value": "patient" },
        { "attribute": "age", "op": "gte", "value": "old" },
        { "attribute": "favourite_colour", "op": "is_set" },
        { "consent": "live", "purpose": RANDOM_ID },
        { "any": [{ "created": "before", "value": "yesterday" }] },
    ] });
    for (token, path, body) in [
        (&org.viewer, "/v1/orgs/acme/segments/count", json!({ "definition": bad })),
        (&org.creator, "/v1/orgs/acme/segments/preview", json!({ "definition": bad })),
        (&org.creator, "/v1/orgs/acme/segments", json!({ "name": "Broken", "definition": bad })),
    ] {
        let reply = app.post_as(token, path, body).await;
        assert_eq!(reply.status, 422, "{path}: {}", reply.body);
        assert_eq!(reply.problem_type(), "urn:mos:problem:invalid_field");
        assert_eq!(reply.body["field"], json!("definition"));
        let pointers: Vec<&str> =
            reply.body["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
        assert_eq!(
            pointers,
            [
                "/definition/all/1/value",
                "/definition/all/2/attribute",
                "/definition/all/3/purpose",
                "/definition/all/4/any/0/value"
            ],
            "{path}: {}",
            reply.body
        );
    }
    let not_an_object = app.post_as(&org.viewer, "/v1/orgs/acme/segments/count", json!({ "definition": 5 })).await;
    assert_eq!(not_an_object.status, 422, "{}", not_an_object.body);
    assert_eq!(not_an_object.body["errors"][0]["pointer"], json!("/definition"));
    let listed = app.get_as(&org.viewer, "/v1/orgs/acme/segments").await;
    assert_eq!(listed.body["items"], json!([]), "nothing was saved");
}

#[tokio::test]
async fn a_viewer_gets_counts_but_not_the_preview_and_cannot_save() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    people(&app, &org).await;
    let everyone = json!({ "definition": { "all": [] } });
    let counted = app.post_as(&org.viewer, "/v1/orgs/acme/segments/count", everyone.clone()).await;
    assert_eq!((counted.status, &counted.body["count"]), (200, &Value::Null), "{}", counted.body);
    assert_eq!(counted.body["fewer_than"], json!(10), "{}", counted.body);
    let preview = app.post_as(&org.viewer, "/v1/orgs/acme/segments/preview", everyone.clone()).await;
    assert_eq!((preview.status, preview.problem_type()), (403, "urn:mos:problem:forbidden"), "{}", preview.body);
    let saved = app
        .post_as(&org.viewer, "/v1/orgs/acme/segments", json!({ "name": "Everyone", "definition": { "all": [] } }))
        .await;
    assert_eq!(saved.status, 403, "{}", saved.body);
    // Nor through the console's editor, whose buttons it is not shown.
    let session = format!("__Host-mos_session={}", org.viewer);
    let form = app.console_form("/orgs/acme/segments/new", &session).await;
    let cookie = format!("{session}; {}", form.seed);
    for action in ["preview", "save"] {
        let fields = [("form_token", form.token.as_str()), ("do", action), ("name", "Everyone")];
        let (status, page) = console_post(&app, "/orgs/acme/segments/new", &cookie, &fields).await;
        assert_eq!(status, 403, "{action}: {page}");
        assert!(!page.contains("@example.com"), "{page}");
    }
    let (status, text) = console_post(&app, "/orgs/acme/segments/count", &cookie, &[("form_token", &form.token)]).await;
    assert_eq!((status, text.as_str()), (200, "fewer than 10 contacts"));
    assert!(records(&app, &org, "segment.previewed").await.is_empty(), "nobody was shown");
    assert!(records(&app, &org, "segment.saved").await.is_empty(), "nothing was saved");
    let denied = records(&app, &org, "access.denied").await;
    assert_eq!(denied.len(), 4, "each refusal is recorded, as the API's: {denied:?}");
}

#[tokio::test]
async fn a_viewer_is_told_fewer_than_ten_where_an_admin_gets_the_small_count_and_both_get_it_from_ten() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    people(&app, &org).await;
    // "Aged 70 and a patient": one person, whom a count of 1 would single out.
    let one = json!({ "definition": { "all": [
        { "attribute": "age", "op": "equals", "value": 70 }, { "tags": "has", "value": "patient" } ] } });
    let everyone = json!({ "definition": { "all": [] } });
    for (definition, exact) in [(&one, 1), (&everyone, 4)] {
        let admin = app.post_as(&org.admin, "/v1/orgs/acme/segments/count", definition.clone()).await;
        assert_eq!((admin.status, &admin.body["count"]), (200, &json!(exact)), "{}", admin.body);
        assert_eq!(admin.body["fewer_than"], Value::Null);
        let viewer = app.post_as(&org.viewer, "/v1/orgs/acme/segments/count", definition.clone()).await;
        assert_eq!(viewer.status, 200, "{}", viewer.body);
        assert_eq!((&viewer.body["count"], &viewer.body["fewer_than"]), (&Value::Null, &json!(10)), "{}", viewer.body);
        assert_eq!(viewer.body["sha256"], admin.body["sha256"], "the same definition");
    }
    // From ten on, the viewer gets the number too.
    for n in 0..6 {
        contact(&app, &org.creator, "acme", json!({ "address": format!("more{n}@example.com") })).await;
    }
    for token in [&org.admin, &org.viewer] {
        let counted = app.post_as(token, "/v1/orgs/acme/segments/count", everyone.clone()).await;
        assert_eq!(
            (&counted.body["count"], &counted.body["fewer_than"]),
            (&json!(10), &Value::Null),
            "{}",
            counted.body
        );
    }
    // The console: a saved segment's page counts it, for the viewer in the same words.
    let saved = app
        .post_as(&org.admin, "/v1/orgs/acme/segments", json!({ "name": "One", "definition": one["definition"] }))
        .await;
    assert_eq!(saved.status, 201, "{}", saved.body);
    let id = saved.body["segment"].as_str().unwrap();
    for (token, said) in [(&org.viewer, "fewer than 10 contacts"), (&org.admin, "1 contact")] {
        let (status, html) = page(&app, token, &format!("/orgs/acme/segments/{id}/edit")).await;
        assert_eq!(status, 200, "{html}");
        let output = html.split("id=\"segment-count\"").nth(1).unwrap().split("</output>").next().unwrap();
        assert!(output.ends_with(said), "{output}");
    }
}

#[tokio::test]
async fn a_preview_leaves_one_record_naming_exactly_the_contacts_and_fields_shown() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let (ids, _) = people(&app, &org).await;
    let me = app.get_as(&org.creator, "/v1/me").await.body["id"].as_str().unwrap().to_owned();
    let fifty_plus = json!({ "all": [{ "attribute": "age", "op": "gte", "value": 50 }] });
    let page = app.post_as(&org.creator, "/v1/orgs/acme/segments/preview", json!({ "definition": fifty_plus })).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let shown = ids_of(&page.body);
    let mut expected = vec![ids[0].clone(), ids[1].clone()];
    expected.sort();
    assert_eq!(shown, expected);

    let previewed = records(&app, &org, "segment.previewed").await;
    assert_eq!(previewed.len(), 1, "{previewed:?}");
    assert_eq!(previewed[0]["actor"], json!(me));
    assert_eq!(previewed[0]["metadata"]["contacts"], json!(shown));
    assert_eq!(previewed[0]["metadata"]["fields"], json!(["address", "name", "created_at"]));
    let counted = app.post_as(&org.creator, "/v1/orgs/acme/segments/count", json!({ "definition": fifty_plus })).await;
    assert_eq!(previewed[0]["metadata"]["definition_sha256"], counted.body["sha256"]);
}

#[tokio::test]
async fn another_organizations_segment_is_not_found() {
    let app = TestApp::spawn().await;
    let acme = app.org_with_every_role("acme").await;
    let beta = app.org_with_every_role("beta").await;
    let created = app
        .post_as(&beta.admin, "/v1/orgs/beta/segments", json!({ "name": "Beta's", "definition": { "all": [] } }))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["segment"].as_str().unwrap();

    for path in [format!("/v1/orgs/acme/segments/{id}"), format!("/v1/orgs/acme/segments/{id}/versions/1")] {
        let reply = app.get_as(&acme.admin, &path).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
    }
    let added = app
        .post_as(&acme.admin, &format!("/v1/orgs/acme/segments/{id}/versions"), json!({ "definition": { "any": [] } }))
        .await;
    assert_eq!(added.status, 404, "{}", added.body);
    let stranger = app.get_as(&acme.admin, &format!("/v1/orgs/beta/segments/{id}")).await;
    assert_eq!(stranger.status, 404, "{}", stranger.body);
    let listed = app.get_as(&acme.admin, "/v1/orgs/acme/segments").await;
    assert_eq!(listed.body["items"], json!([]));
    let unchanged = app.get_as(&beta.admin, &format!("/v1/orgs/beta/segments/{id}")).await;
    assert_eq!(unchanged.body["versions"].as_array().unwrap().len(), 1, "{}", unchanged.body);
}

/// A console form posted from our own page: status and HTML (or text).
pub(crate) async fn console_post(app: &TestApp, path: &str, cookie: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let request = app
        .http
        .post(format!("{}{path}", app.base))
        .header("origin", &app.public_url)
        .header("cookie", cookie)
        .form(fields);
    let reply = app.send(request).await;
    (reply.status, reply.body.as_str().map(str::to_owned).unwrap_or_else(|| reply.body.to_string()))
}

#[tokio::test]
async fn the_console_editor_counts_by_form_and_for_its_script_and_its_json_reads_back_as_the_same_version() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    people(&app, &org).await;
    let session = format!("__Host-mos_session={}", org.creator);
    let form = app.console_form("/orgs/acme/segments/new", &session).await;
    let cookie = format!("{session}; {}", form.seed);
    let token = form.token.as_str();
    let rows = [
        ("form_token", token),
        ("joint", "all"),
        ("field.0", "attribute:age"),
        ("op.0", "gte"),
        ("value.0", "50"),
        ("field.1", "tags"),
        ("op.1", "has"),
        ("value.1", "staff"),
    ];

    // Without script: the Count button posts the form and the page says the count.
    let (status, page) =
        console_post(&app, "/orgs/acme/segments/new", &cookie, &[&rows[..], &[("do", "count")]].concat()).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("1 contact<"), "b only: {page}");
    // The script's door: the same form, the count as text.
    let (status, text) = console_post(&app, "/orgs/acme/segments/count", &cookie, &rows).await;
    assert_eq!((status, text.as_str()), (200, "1 contact"));
    // A bad row is named by its number.
    let bad = [("form_token", token), ("field.0", "attribute:age"), ("op.0", "gte"), ("value.0", "old")];
    let (status, text) = console_post(&app, "/orgs/acme/segments/count", &cookie, &bad).await;
    assert_eq!(status, 422);
    assert!(text.starts_with("Condition 1:"), "{text}");

    // Saved, then edited: the editor's JSON posted back unchanged is the same version.
    let save = [&rows[..], &[("do", "save"), ("name", "Older staff")]].concat();
    let (status, location, _) = posted(&app, "/orgs/acme/segments/new", &cookie, &save).await;
    assert_eq!(status, 303, "{location}");
    assert!(location.ends_with("?done=created"), "{location}");
    let id = location.trim_start_matches("/orgs/acme/segments/").split('?').next().unwrap().to_owned();
    let reply = app
        .http
        .get(format!("{}/orgs/acme/segments/{id}/edit", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let html = reply.text().await.unwrap();
    let json = html.split("name=\"json\" rows=\"6\">").nth(1).unwrap().split("</textarea>").next().unwrap();
    let json = json.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    assert!(json.starts_with("{\"all\":["), "{json}");
    let resave = [("form_token", token), ("mode", "json"), ("json", json.as_str()), ("do", "save")];
    let (status, location, _) = posted(&app, &format!("/orgs/acme/segments/{id}/edit"), &cookie, &resave).await;
    assert_eq!(status, 303, "{location}");
    assert!(location.ends_with("?done=unchanged"), "{location}");
    let segment = app.get_as(&org.creator, &format!("/v1/orgs/acme/segments/{id}")).await;
    assert_eq!(segment.body["versions"].as_array().unwrap().len(), 1, "{}", segment.body);
}
