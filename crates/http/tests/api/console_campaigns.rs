//! Campaigns in the console: the editor writes what the API reads back, the review page shows
//! the definition as a table, the preview escapes what a contact typed and records the read of
//! their data, only a member allowed to send launches, pauses, resumes and cancels, the ledger's
//! pages cover every row once with or without a filter, and another organization finds none
//! of it.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::audiences::{contact, purpose_with_notice, records};
use crate::campaigns::{approved, campaign, ready, Ready};
use crate::console_access::page;
use crate::segments::console_post;
use crate::{Members, TestApp};

fn session(token: &str) -> String {
    format!("__Host-mos_session={token}")
}

/// Posts `fields` to `to` as the browser of `token` that opened the console page `from`: with
/// that page's form token and seed.
async fn post_from(app: &TestApp, token: &str, from: &str, to: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let session = session(token);
    let form = app.console_form(from, &session).await;
    let cookie = format!("{session}; {}", form.seed);
    let mut all = vec![("form_token", form.token.as_str())];
    all.extend_from_slice(fields);
    console_post(app, to, &cookie, &all).await
}

/// The editor's fields for a campaign of `ready` (the versions chosen as `id:number`).
fn editor_fields(ready: &Ready) -> Vec<(&'static str, String)> {
    vec![
        ("name", "December flu shots".to_owned()),
        ("content", format!("{}:1", ready.content)),
        ("template", format!("{}:1", ready.template)),
        ("segment", format!("{}:1", ready.segment)),
        ("sender", ready.sender.clone()),
        ("purpose", ready.purpose.clone()),
        ("schedule", "local_hour".to_owned()),
        ("at", String::new()),
        ("date", "2026-12-08".to_owned()),
        ("hour", "9".to_owned()),
        ("fields", "name:40".to_owned()),
    ]
}

fn borrowed<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn campaign_json(app: &TestApp, org: &Members, id: &str) -> Value {
    let got = app.get_as(&org.admin, &format!("/v1/orgs/{}/campaigns/{id}", org.slug)).await;
    assert_eq!(got.status, 200, "{}", got.body);
    got.body
}

#[tokio::test]
async fn the_console_editor_writes_what_the_api_reads_the_review_shows_a_table_and_an_edit_voids_the_approval() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let ready = ready(&app, &org).await;

    let fields = editor_fields(&ready);
    let new = "/orgs/acme/campaigns/new";
    let (status, html) = post_from(&app, &org.creator, new, new, &borrowed(&fields)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("The campaign is created as a draft"), "{html}");
    let listed = app.get_as(&org.creator, "/v1/orgs/acme/campaigns").await;
    let id = listed.body["items"][0]["id"].as_str().unwrap().to_owned();
    let stored = campaign_json(&app, &org, &id).await;
    let definition = &stored["definition"];
    assert_eq!(definition["schedule"], json!({ "kind": "local_hour", "date": "2026-12-08", "hour": 9 }));
    assert_eq!(definition["fields"], json!([{ "kind": "text", "max": 40, "name": "name" }]));
    assert_eq!(definition["content"]["item"], json!(ready.content));

    // The review page: the definition as a table with each part's name and full hash, not its JSON.
    let (status, html) = page(&app, &org.reviewer, &format!("/orgs/acme/content/{id}")).await;
    assert_eq!(status, 200, "{html}");
    for hash in ["content", "template", "segment"] {
        let sha = definition[hash]["sha256"].as_str().unwrap();
        assert!(html.contains(sha), "{hash} hash shown: {html}");
    }
    assert!(html.contains("Flu shots") && html.contains("Everyone") && html.contains("News"), "{html}");
    assert!(!html.contains("&quot;channel&quot;") && !html.contains("\"channel\""), "no raw definition: {html}");
    assert!(!html.contains(&format!("/orgs/acme/content/{id}/edit")), "a campaign is edited in its own editor");

    // Approved by the REVIEWER, then edited in the console: a new version, the approval void.
    approved(&app, &org, &org.creator, &id).await;
    let edit = format!("/orgs/acme/campaigns/{id}/edit");
    let (status, html) = page(&app, &org.creator, &edit).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("value=\"local_hour\" checked") && html.contains("value=\"name:40\""), "prefilled: {html}");
    let revision = stored["revision"].as_i64().unwrap() + 2; // submitted, approved
    let mut changed = editor_fields(&ready);
    changed.retain(|(k, _)| !matches!(*k, "schedule" | "date" | "hour"));
    changed.push(("schedule", "now".to_owned()));
    changed.push(("revision", revision.to_string()));
    let (status, html) = post_from(&app, &org.creator, &edit, &edit, &borrowed(&changed)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("its review starts over"), "{html}");
    let edited = campaign_json(&app, &org, &id).await;
    assert_eq!((edited["version"].as_i64(), edited["state"].as_str()), (Some(2), Some("draft")), "{edited}");
    assert_eq!(edited["approvals"]["given"], 0, "{edited}");
    assert_eq!(edited["definition"]["schedule"], json!({ "kind": "now" }));

    // A field that names nothing of the organization: the editor again, saying which.
    let mut bad = editor_fields(&ready);
    bad.push(("revision", edited["revision"].to_string()));
    bad.iter_mut().filter(|(k, _)| *k == "fields").for_each(|(_, v)| *v = "age:10".to_owned());
    let (status, html) = post_from(&app, &org.creator, &edit, &edit, &borrowed(&bad)).await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("`age` is neither `name` nor a text or choice attribute"), "{html}");
    assert_eq!(campaign_json(&app, &org, &id).await["version"], 2, "nothing written");
}

#[tokio::test]
async fn the_preview_shows_a_hostile_value_as_text_with_the_exact_headers_and_records_the_read() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let ready = ready(&app, &org).await;
    let id = campaign(&app, &org, &org.creator, &ready).await;
    // Ada is the segment's first contact by id; her name is what a stranger could have typed.
    let hostile = "<script>alert(1)</script>";
    let path = format!("/v1/orgs/acme/contacts/{}", ready.ada);
    let renamed = app.call_as("PATCH", &org.creator, &path, json!({ "name": hostile })).await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let viewed_before = records(&app, &org, "contact.viewed").await.len();

    let preview = format!("/orgs/acme/campaigns/{id}/preview");
    let (status, html) = page(&app, &org.creator, &preview).await;
    assert_eq!(status, 200, "{html}");
    assert!(!html.contains("<script>alert"), "never markup: {html}");
    // The plain part escaped once by the page; the HTML part escaped by the renderer, then as text.
    assert!(html.contains("Book your flu shot, &lt;script&gt;alert(1)&lt;/script&gt;."), "{html}");
    assert!(html.contains("&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;"), "{html}");
    let header = |name: &str| {
        let row = html.split(&format!("<th scope=\"row\">{name}</th><td><code>")).nth(1).unwrap_or_default();
        row.split("</code>").next().unwrap_or_default().to_owned()
    };
    assert!(header("To").contains("ada@p.example"), "{html}");
    assert!(header("Message-ID").starts_with(&format!("&lt;{id}.{}@", ready.ada)), "{html}");
    assert!(header("List-Unsubscribe").starts_with("&lt;https://"), "{html}");
    assert_eq!(header("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    assert!(!header("From").is_empty() && !header("Subject").is_empty(), "{html}");
    let signed: BTreeSet<String> = header("DKIM-Signature h=").split(':').map(str::to_lowercase).collect();
    for name in ["from", "to", "subject", "message-id", "list-unsubscribe", "list-unsubscribe-post"] {
        assert!(signed.contains(name), "{name} signed: {signed:?}");
    }
    let viewed = records(&app, &org, "contact.viewed").await;
    assert_eq!(viewed.len(), viewed_before + 1, "{viewed:?}");
    assert_eq!(viewed[0]["resource_id"], json!(ready.ada));
    assert_eq!(viewed[0]["metadata"]["fields"], json!(["address", "name"]));

    // The API's door onto the same operation: the same message, the read recorded again.
    let api = app.get_as(&org.creator, &format!("/v1/orgs/acme/campaigns/{id}/preview")).await;
    assert_eq!(api.status, 200, "{}", api.body);
    assert_eq!(api.body["sample"], json!(ready.ada));
    assert!(api.body["text"].as_str().unwrap().contains(hostile), "{}", api.body);
    assert!(api.body["html"].as_str().unwrap().contains("&lt;script&gt;"), "escaped by the renderer: {}", api.body);
    let post = api.body["headers"].as_array().unwrap().iter().find(|h| h["name"] == "List-Unsubscribe-Post").cloned();
    assert_eq!(post.map(|h| h["value"].clone()), Some(json!("List-Unsubscribe=One-Click")));
    assert_eq!(records(&app, &org, "contact.viewed").await.len(), viewed_before + 2);

    // A REVIEWER reads no contact's data: no preview, and the page offers none.
    assert_eq!(page(&app, &org.reviewer, &preview).await.0, 403);
    let (_, html) = page(&app, &org.reviewer, &format!("/orgs/acme/campaigns/{id}")).await;
    assert!(!html.contains(&preview), "{html}");

    // A segment that holds nobody: a made-up recipient, and no contact's data read.
    let (other, _) = purpose_with_notice(&app, &org, "Nobody agreed", false).await;
    let nobody = json!({ "name": "Nobody", "definition": { "all": [{ "consent": "live", "purpose": other }] } });
    let nobody = app.post_as(&org.creator, "/v1/orgs/acme/segments", nobody).await;
    assert_eq!(nobody.status, 201, "{}", nobody.body);
    let mut body = ready.body();
    body["segment"] = json!({ "id": nobody.body["segment"], "version": 1 });
    let empty = app.post_as(&org.creator, "/v1/orgs/acme/campaigns", body).await;
    assert_eq!(empty.status, 201, "{}", empty.body);
    let (status, html) =
        page(&app, &org.creator, &format!("/orgs/acme/campaigns/{}/preview", empty.body["id"].as_str().unwrap())).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("made-up recipient") && html.contains("recipient@example.com"), "{html}");
    assert!(html.contains("Book your flu shot, name."), "the field shows its own name: {html}");
    assert_eq!(records(&app, &org, "contact.viewed").await.len(), viewed_before + 2);
}

/// Every row of a ledger page: contact id and state.
fn ledger_rows(html: &str) -> Vec<(String, String)> {
    html.split("<tr><td><code>")
        .skip(1)
        .map(|row| {
            let contact = row.split("</code>").next().unwrap().to_owned();
            let state = row.split("<td>").nth(1).unwrap().split([' ', '<']).next().unwrap().to_owned();
            (contact, state)
        })
        .collect()
}

/// Every row of the ledger from `first`, following each page's link to the next.
async fn walk(app: &TestApp, token: &str, first: &str) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(path) = next {
        let (status, html) = page(app, token, &path).await;
        assert_eq!(status, 200, "{path}: {html}");
        let found = ledger_rows(&html);
        assert!(found.len() <= 1, "one a page: {found:?}");
        rows.extend(found);
        next = html.split("<a href=\"").filter(|h| h.contains("/messages?cursor=")).find_map(|h| {
            let link = h.split('"').next()?.replace("&amp;", "&");
            Some(link)
        });
    }
    rows
}

#[tokio::test]
async fn only_a_member_allowed_to_send_launches_and_controls_and_the_ledger_pages_cover_every_row_once() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let ready = ready(&app, &org).await;
    // A third contact who consents, after Bea by id: queued rows on either side of a skipped one,
    // so a page's link that lost its filter would show Bea among the queued.
    let cy = contact(&app, &org.creator, "acme", json!({ "address": "cy@p.example", "name": "Cy" })).await;
    let grant =
        json!({ "action": "grant", "purpose": ready.purpose, "basis": "consent", "notice_sha256": ready.notice });
    let granted = app.post_as(&org.creator, &format!("/v1/orgs/acme/contacts/{cy}/consent"), grant).await;
    assert_eq!(granted.status, 201, "{}", granted.body);
    let id = campaign(&app, &org, &org.creator, &ready).await;
    approved(&app, &org, &org.creator, &id).await;
    let at = format!("/orgs/acme/campaigns/{id}");

    // A REVIEWER sees no launch button, and a launch posted anyway is refused; nothing launched.
    let (_, html) = page(&app, &org.reviewer, &at).await;
    assert!(!html.contains("/step/launch"), "{html}");
    let (status, html) = post_from(&app, &org.reviewer, &at, &format!("{at}/step/launch"), &[]).await;
    assert_eq!(status, 403, "{html}");
    assert_eq!(campaign_json(&app, &org, &id).await["run"], Value::Null);
    let (status, _) = post_from(&app, &org.creator, &at, &format!("{at}/step/launch"), &[]).await;
    assert_eq!(status, 403, "a CREATOR may not send either");

    let (status, html) = post_from(&app, &org.admin, &at, &format!("{at}/step/launch"), &[]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Launched:") && html.contains("<dt>Recipients</dt><dd>3</dd>"), "{html}");
    assert!(html.contains("1 no consent"), "skipped by reason: {html}");

    // The ledger, a row a page, with and without each filter: every row exactly once.
    let all = app.get_as(&org.admin, &format!("/v1/orgs/acme/campaigns/{id}/messages?limit=500")).await;
    let every: Vec<(String, String)> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["contact"].as_str().unwrap().to_owned(), m["state"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(every.len(), 3, "{every:?}");
    let walked = walk(&app, &org.viewer, &format!("{at}/messages?limit=1")).await;
    assert_eq!(walked, every, "in contact order, each once");
    for state in ["queued", "skipped", "sent"] {
        let walked = walk(&app, &org.viewer, &format!("{at}/messages?state={state}&limit=1")).await;
        let expected: Vec<_> = every.iter().filter(|(_, s)| s == state).cloned().collect();
        assert_eq!(walked, expected, "{state}");
    }
    assert_eq!(walk(&app, &org.viewer, &format!("{at}/messages?state=queued&limit=1")).await.len(), 2);

    // Pause, resume, cancel: each button where it applies, each refused to a REVIEWER.
    for (step, said, state) in [
        ("pause", "Sending is paused.", "paused"),
        ("resume", "Sending resumed.", "sending"),
        ("cancel", "Sending is cancelled", "cancelled"),
    ] {
        let (status, _) = post_from(&app, &org.reviewer, &at, &format!("{at}/step/{step}"), &[]).await;
        assert_eq!(status, 403, "{step}");
        let (status, html) = post_from(&app, &org.admin, &at, &format!("{at}/step/{step}"), &[]).await;
        assert_eq!(status, 200, "{step}: {html}");
        assert!(html.contains(said), "{step}: {html}");
        assert_eq!(campaign_json(&app, &org, &id).await["run"]["state"], state);
    }
    let (_, html) = page(&app, &org.admin, &at).await;
    assert!(!html.contains("/step/"), "nothing applies to a cancelled run: {html}");
}

#[tokio::test]
async fn each_role_gets_the_campaign_pages_its_permissions_allow() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let ready = ready(&app, &org).await;
    let id = campaign(&app, &org, &org.creator, &ready).await;
    let base = format!("/orgs/acme/campaigns/{id}");
    // ADMIN, REVIEWER, CREATOR, VIEWER
    let pages: [(String, [u16; 4]); 6] = [
        ("/orgs/acme/campaigns".to_owned(), [200, 200, 200, 200]),
        ("/orgs/acme/campaigns/new".to_owned(), [200, 403, 200, 403]),
        (base.clone(), [200, 200, 200, 200]),
        (format!("{base}/edit"), [200, 403, 200, 403]),
        (format!("{base}/preview"), [200, 403, 200, 403]),
        (format!("{base}/messages"), [200, 200, 200, 200]),
    ];
    for (path, expected) in &pages {
        for ((role, token), status) in org.by_role().into_iter().zip(expected) {
            let (got, html) = page(&app, token, path).await;
            assert_eq!(got, *status, "{role} {path}: {html}");
        }
    }
}

#[tokio::test]
async fn another_organization_gets_404_for_every_campaign_page_and_step() {
    let app = TestApp::spawn().await;
    let acme = app.org_with_every_role("acme").await;
    let ready = ready(&app, &acme).await;
    let id = campaign(&app, &acme, &acme.creator, &ready).await;
    approved(&app, &acme, &acme.creator, &id).await;
    let globex = app.signed_in("admin@globex.example").await;
    let made = app.post_as(&globex, "/v1/orgs", json!({ "slug": "globex", "name": "Globex" })).await;
    assert_eq!(made.status, 201, "{}", made.body);

    for slug in ["acme", "globex"] {
        let base = format!("/orgs/{slug}/campaigns/{id}");
        for path in [base.clone(), format!("{base}/edit"), format!("{base}/preview"), format!("{base}/messages")] {
            let (status, html) = page(&app, &globex, &path).await;
            assert_eq!(status, 404, "{path}: {html}");
        }
        for step in ["launch", "pause", "resume", "cancel"] {
            let (status, html) =
                post_from(&app, &globex, "/orgs/globex/campaigns", &format!("{base}/step/{step}"), &[]).await;
            assert_eq!(status, 404, "{slug} {step}: {html}");
        }
        let fields = editor_fields(&ready);
        let mut fields = borrowed(&fields);
        fields.push(("revision", "3"));
        let (status, html) = post_from(&app, &globex, "/orgs/globex/campaigns", &format!("{base}/edit"), &fields).await;
        assert_eq!(status, 404, "{slug} edit: {html}");
    }
    assert_eq!(page(&app, &globex, "/orgs/acme/campaigns").await.0, 404);
    for slug in ["acme", "globex"] {
        let api = app.get_as(&globex, &format!("/v1/orgs/{slug}/campaigns/{id}/preview")).await;
        assert_eq!(api.status, 404, "{slug}: {}", api.body);
    }
    let (status, html) = page(&app, &globex, "/orgs/globex/campaigns").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("No campaigns yet."), "{html}");
    let untouched = campaign_json(&app, &acme, &id).await;
    assert_eq!((untouched["version"].as_i64(), untouched["run"].clone()), (Some(1), Value::Null), "{untouched}");
}
