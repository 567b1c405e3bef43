//! Campaigns over the API: created from versions of this organization's content, template,
//! segment, sender and purpose, reviewed through the content routes by someone other than the
//! author, launched only by an ADMIN into a send ledger that a reader pages through without
//! seeing an address, paused, resumed and cancelled. A definition that names nothing of this
//! tenant, or one that would not render, is refused at creation naming its field, and nothing
//! is written; another tenant gets 404 on every route.

use mos_auth::Clock;
use mos_db::campaigns::{self, Failure};
use mos_domain::ContentId;
use serde_json::{json, Value};

use crate::audiences::{contact, purpose_with_notice, records};
use crate::console_access::page;
use crate::erasure::org_id;
use crate::orgs::RANDOM_ID;
use crate::senders::new_sender;
use crate::{Members, Reply, TestApp};

/// What a campaign of `org` can name: an approved piece and template, a segment of everyone,
/// a sender, a purpose, and two contacts: `ada` who consents and `bea` who does not.
pub(crate) struct Ready {
    pub content: String,
    pub template: String,
    pub segment: String,
    pub sender: String,
    pub purpose: String,
    /// The hash of the purpose's notice, which a grant names.
    pub notice: String,
    pub ada: String,
    pub bea: String,
}

const LAYOUT: &str = "{{content}}\n\n{{postal_address}} [Unsubscribe]({{unsubscribe_url}})";

/// A content item of `channel` written by the CREATOR; its id.
async fn item(app: &TestApp, org: &Members, channel: &str, title: &str, body: &str) -> String {
    let text = json!({ "title": title, "channel": channel, "body": body });
    let created = app.post_as(&org.creator, &format!("/v1/orgs/{}/content", org.slug), text).await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

/// Submitted by `author` and approved by the REVIEWER, naming the latest version's hash.
pub(crate) async fn approved(app: &TestApp, org: &Members, author: &str, id: &str) -> Reply {
    let path = format!("/v1/orgs/{}/content/{id}", org.slug);
    let submitted = app.post_as(author, &format!("{path}/submit"), json!({})).await;
    assert_eq!(submitted.status, 200, "{}", submitted.body);
    let sha256 = submitted.body["version"]["sha256"].clone();
    let approved = app.post_as(&org.reviewer, &format!("{path}/approve"), json!({ "sha256": sha256 })).await;
    assert_eq!((approved.status, approved.body["state"].as_str()), (200, Some("approved")), "{}", approved.body);
    approved
}

pub(crate) async fn ready(app: &TestApp, org: &Members) -> Ready {
    let slug = &org.slug;
    let content =
        item(app, org, "email", "Flu shots", "Book your flu shot, {{name}}. [Read why](https://clinic.example/flu)")
            .await;
    approved(app, org, &org.creator, &content).await;
    let template = item(app, org, "email_template", "Plain", LAYOUT).await;
    approved(app, org, &org.creator, &template).await;
    let everyone = json!({ "name": "Everyone", "definition": { "all": [] } });
    let segment = app.post_as(&org.creator, &format!("/v1/orgs/{slug}/segments"), everyone).await;
    assert_eq!(segment.status, 201, "{}", segment.body);
    let sender = app.post_as(&org.admin, &format!("/v1/orgs/{slug}/senders"), new_sender()).await;
    assert_eq!(sender.status, 201, "{}", sender.body);
    let (purpose, notice) = purpose_with_notice(app, org, "News", false).await;
    let age = json!({ "name": "age", "kind": "number" });
    assert_eq!(app.post_as(&org.admin, &format!("/v1/orgs/{slug}/attributes"), age).await.status, 201);
    let ada = contact(app, &org.creator, slug, json!({ "address": "ada@p.example", "name": "Ada" })).await;
    let bea = contact(app, &org.creator, slug, json!({ "address": "bea@p.example", "name": "Bea" })).await;
    let grant = json!({ "action": "grant", "purpose": purpose, "basis": "consent", "notice_sha256": notice });
    let granted = app.post_as(&org.creator, &format!("/v1/orgs/{slug}/contacts/{ada}/consent"), grant).await;
    assert_eq!(granted.status, 201, "{}", granted.body);
    Ready {
        content,
        template,
        segment: segment.body["segment"].as_str().unwrap().to_owned(),
        sender: sender.body["id"].as_str().unwrap().to_owned(),
        purpose,
        notice,
        ada,
        bea,
    }
}

impl Ready {
    /// A campaign's body naming everything ready, to be sent now with the contact's name.
    pub(crate) fn body(&self) -> Value {
        json!({
            "name": "December flu shots",
            "content": { "item": self.content, "version": 1 },
            "template": { "item": self.template, "version": 1 },
            "segment": { "id": self.segment, "version": 1 },
            "sender": self.sender,
            "purpose": self.purpose,
            "schedule": { "kind": "now" },
            "fields": [{ "name": "name", "max": 40 }],
        })
    }
}

async fn create(app: &TestApp, org: &Members, token: &str, body: Value) -> Reply {
    app.post_as(token, &format!("/v1/orgs/{}/campaigns", org.slug), body).await
}

/// A campaign created by `author` from `ready`: its id.
pub(crate) async fn campaign(app: &TestApp, org: &Members, author: &str, ready: &Ready) -> String {
    let created = create(app, org, author, ready.body()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

fn contacts_of(page: &Value) -> Vec<(String, String, Value)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["contact"].as_str().unwrap().to_owned(),
                m["state"].as_str().unwrap().to_owned(),
                m["skip_reason"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_campaign_is_created_approved_by_another_member_launched_by_an_admin_and_paused_resumed_and_cancelled() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let ready = ready(&app, &org).await;

    let created = create(&app, &org, &org.creator, ready.body()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!((created.body["state"].as_str(), created.body["version"].as_i64()), (Some("draft"), Some(1)));
    assert_eq!(created.headers["etag"], "\"1\"");
    assert_eq!(created.body["run"], Value::Null);
    // The definition names each version by its hash, and the campaign's hash is its version's.
    let content = app.get_as(&org.viewer, &format!("/v1/orgs/acme/content/{}", ready.content)).await;
    assert_eq!(created.body["definition"]["content"]["sha256"], content.body["version"]["sha256"]);
    assert_eq!(created.body["definition"]["fields"], json!([{ "kind": "text", "max": 40, "name": "name" }]));
    let as_content = app.get_as(&org.viewer, &format!("/v1/orgs/acme/content/{id}")).await;
    assert_eq!(created.body["sha256"], as_content.body["version"]["sha256"]);
    assert_eq!(as_content.body["version"]["channel"], "campaign");

    // Reviewed by the content routes; a CREATOR may not launch it, an ADMIN may.
    approved(&app, &org, &org.creator, &id).await;
    let path = format!("/v1/orgs/acme/campaigns/{id}");
    let refused = app.post_as(&org.creator, &format!("{path}/launch"), json!({})).await;
    assert_eq!((refused.status, refused.problem_type()), (403, "urn:mos:problem:forbidden"), "{}", refused.body);
    let launched = app.post_as(&org.admin, &format!("{path}/launch"), json!({})).await;
    assert_eq!(launched.status, 200, "{}", launched.body);
    assert_eq!(
        (launched.body["state"].as_str(), launched.body["published_version"].as_i64()),
        (Some("published"), Some(1))
    );
    let run = &launched.body["run"];
    assert_eq!((run["state"].as_str(), run["recipients"].as_i64()), (Some("sending"), Some(2)), "{run}");
    assert_eq!(run["progress"], json!({ "queued": 1, "skipped:no_consent": 1 }));
    // Its one web link, tracked in every message, not followed yet.
    assert_eq!(run["links"], json!([{ "address": "https://clinic.example/flu", "unique_clicks": 0, "clicks": 0 }]));
    let again = app.post_as(&org.admin, &format!("{path}/launch"), json!({})).await;
    assert_eq!((again.status, again.problem_type()), (409, "urn:mos:problem:invalid_transition"), "{}", again.body);

    // The ledger: every contact of the audience, by id only, a page at a time, by state.
    let mut expected = vec![
        (ready.ada.clone(), "queued".to_owned(), Value::Null),
        (ready.bea.clone(), "skipped".to_owned(), json!("no_consent")),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let all = app.get_as(&org.viewer, &format!("{path}/messages")).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(contacts_of(&all.body), expected);
    assert!(!all.body.to_string().contains("@p.example") && !all.body.to_string().contains("Ada"), "{}", all.body);
    let first = app.get_as(&org.viewer, &format!("{path}/messages?limit=1")).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = app.get_as(&org.viewer, &format!("{path}/messages?limit=1&cursor={cursor}")).await;
    assert_eq!([contacts_of(&first.body), contacts_of(&second.body)].concat(), expected);
    assert_eq!(second.body["next_cursor"], Value::Null);
    let skipped = app.get_as(&org.viewer, &format!("{path}/messages?state=skipped")).await;
    assert_eq!(contacts_of(&skipped.body), [expected.iter().find(|m| m.0 == ready.bea).unwrap().clone()]);
    let bogus = app.get_as(&org.viewer, &format!("{path}/messages?state=lost")).await;
    assert_eq!((bogus.status, bogus.body["field"].as_str()), (422, Some("state")), "{}", bogus.body);

    // Pause, resume and cancel, each only where it applies.
    let step = |name: &str, token: &str| {
        let url = format!("{path}/{name}");
        let token = token.to_owned();
        let app = &app;
        async move { app.post_as(&token, &url, json!({})).await }
    };
    assert_eq!(step("pause", &org.creator).await.status, 403);
    let paused = step("pause", &org.admin).await;
    assert_eq!((paused.status, paused.body["run"]["state"].as_str()), (200, Some("paused")), "{}", paused.body);
    assert_eq!(step("pause", &org.admin).await.status, 409);
    let resumed = step("resume", &org.admin).await;
    assert_eq!((resumed.status, resumed.body["run"]["state"].as_str()), (200, Some("sending")), "{}", resumed.body);
    assert_eq!(step("resume", &org.admin).await.status, 409);
    let cancelled = step("cancel", &org.admin).await;
    assert_eq!(cancelled.body["run"]["state"], "cancelled", "{}", cancelled.body);
    assert_eq!(cancelled.body["run"]["progress"], json!({ "skipped:cancelled": 1, "skipped:no_consent": 1 }));
    for name in ["pause", "resume", "cancel"] {
        let late = step(name, &org.admin).await;
        assert_eq!((late.status, late.problem_type()), (409, "urn:mos:problem:conflict"), "{name}: {}", late.body);
    }
    assert_eq!(records(&app, &org, "campaign.launched").await.len(), 1);
    assert_eq!(records(&app, &org, "campaign.controlled").await.len(), 3);

    let listed = app.get_as(&org.viewer, "/v1/orgs/acme/campaigns").await;
    let ids: Vec<&str> = listed.body["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [id.as_str()], "campaigns only, not the content they send: {}", listed.body);
    // Newest first, a page at a time.
    let newer = campaign(&app, &org, &org.creator, &ready).await;
    let first = app.get_as(&org.viewer, "/v1/orgs/acme/campaigns?limit=1").await;
    assert_eq!(first.body["items"][0]["id"], json!(newer), "{}", first.body);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let next = app.get_as(&org.viewer, &format!("/v1/orgs/acme/campaigns?limit=1&cursor={cursor}")).await;
    assert_eq!((&next.body["items"][0]["id"], &next.body["next_cursor"]), (&json!(id), &Value::Null), "{}", next.body);
}

#[tokio::test]
async fn nobody_approves_their_own_campaign_a_viewer_creates_none_and_a_draft_does_not_launch() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let ready = ready(&app, &org).await;
    let refused = create(&app, &org, &org.viewer, ready.body()).await;
    assert_eq!((refused.status, refused.problem_type()), (403, "urn:mos:problem:forbidden"), "{}", refused.body);

    let id = campaign(&app, &org, &org.admin, &ready).await;
    let path = format!("/v1/orgs/acme/campaigns/{id}");
    let draft = app.post_as(&org.admin, &format!("{path}/launch"), json!({})).await;
    assert_eq!((draft.status, draft.problem_type()), (409, "urn:mos:problem:invalid_transition"), "{}", draft.body);
    let content = format!("/v1/orgs/acme/content/{id}");
    let submitted = app.post_as(&org.admin, &format!("{content}/submit"), json!({})).await;
    let sha256 = submitted.body["version"]["sha256"].clone();
    let own = app.post_as(&org.admin, &format!("{content}/approve"), json!({ "sha256": sha256 })).await;
    assert_eq!((own.status, own.problem_type()), (403, "urn:mos:problem:separation_of_duties"), "{}", own.body);
    let in_review = app.post_as(&org.admin, &format!("{path}/launch"), json!({})).await;
    assert_eq!(in_review.status, 409, "{}", in_review.body);
    assert_eq!(app.get_as(&org.admin, &path).await.body["run"], Value::Null, "nothing was launched");
}

#[tokio::test]
async fn a_placeholder_nobody_declared_or_a_template_without_its_footer_is_refused_at_creation() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let ready = ready(&app, &org).await;

    let undeclared = item(&app, &org, "email", "Hello", "Hello {{first_name}}.").await;
    let mut body = ready.body();
    body["content"]["item"] = json!(undeclared);
    let refused = create(&app, &org, &org.creator, body).await;
    assert_eq!((refused.status, refused.body["field"].as_str()), (422, Some("content")), "{}", refused.body);
    assert!(refused.body["detail"].as_str().unwrap().contains("first_name"), "{}", refused.body);

    // The piece uses `name`: without the field declared, it does not render either.
    let mut body = ready.body();
    body["fields"] = json!([]);
    let refused = create(&app, &org, &org.creator, body).await;
    assert_eq!((refused.status, refused.body["field"].as_str()), (422, Some("content")), "{}", refused.body);

    for layout in [
        "{{content}}\n\n{{postal_address}} [Unsubscribe]({{unsubscribe_url}}) {{nickname}}",
        "{{content}}\n\n{{postal_address}}",
        "No slot for the content. {{postal_address}} [Unsubscribe]({{unsubscribe_url}})",
    ] {
        let template = item(&app, &org, "email_template", "Broken", layout).await;
        let mut body = ready.body();
        body["template"]["item"] = json!(template);
        let refused = create(&app, &org, &org.creator, body).await;
        assert_eq!(
            (refused.status, refused.body["field"].as_str()),
            (422, Some("template")),
            "{layout}: {}",
            refused.body
        );
    }
    let listed = app.get_as(&org.creator, "/v1/orgs/acme/campaigns").await;
    assert_eq!(listed.body["items"], json!([]), "nothing was created: {}", listed.body);
}

#[tokio::test]
async fn an_edit_after_approval_is_a_new_version_that_voids_it_and_the_launch_is_refused() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let ready = ready(&app, &org).await;
    let id = campaign(&app, &org, &org.creator, &ready).await;
    let approval = approved(&app, &org, &org.creator, &id).await;
    let etag = approval.headers["etag"].to_str().unwrap().to_owned();
    let path = format!("/v1/orgs/acme/campaigns/{id}");

    let mut later = ready.body();
    later["schedule"] = json!({ "kind": "local_hour", "date": "2026-12-08", "hour": 9 });
    let put = |if_match: Option<&str>, body: Value| {
        let mut request = app.http.put(format!("{}{path}", app.base)).bearer_auth(&org.creator).json(&body);
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        app.send(request)
    };
    assert_eq!(put(None, later.clone()).await.status, 428);
    assert_eq!(put(Some("\"1\""), later.clone()).await.status, 412, "a revision it no longer is at");
    let edited = put(Some(&etag), later).await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(
        (edited.body["state"].as_str(), edited.body["version"].as_i64(), &edited.body["approved_version"]),
        (Some("draft"), Some(2), &Value::Null)
    );
    assert_eq!(edited.body["definition"]["schedule"], json!({ "kind": "local_hour", "date": "2026-12-08", "hour": 9 }));
    assert_ne!(edited.body["sha256"], approval.body["version"]["sha256"], "another definition, another hash");

    let refused = app.post_as(&org.admin, &format!("{path}/launch"), json!({})).await;
    assert_eq!(
        (refused.status, refused.problem_type()),
        (409, "urn:mos:problem:invalid_transition"),
        "{}",
        refused.body
    );
    assert_eq!(app.get_as(&org.admin, &path).await.body["run"], Value::Null);
}

#[tokio::test]
async fn bad_input_is_refused_naming_its_field_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let ready = ready(&app, &org).await;
    let cases: [(&str, &str, Value); 16] = [
        ("name", "/name", json!("")),
        ("content", "/content/item", json!("not an id")),
        ("content", "/content/version", json!(9)),
        ("content", "/content/item", json!(ready.template)),
        ("template", "/template/item", json!(ready.content)),
        ("segment", "/segment/version", json!(2)),
        ("segment", "/segment/id", json!(RANDOM_ID)),
        ("sender", "/sender", json!(RANDOM_ID)),
        ("purpose", "/purpose", json!(ready.segment)),
        ("schedule", "/schedule", json!({ "kind": "later" })),
        ("schedule", "/schedule", json!({ "kind": "now", "hour": 9 })),
        ("schedule", "/schedule", json!({ "kind": "local_hour", "date": "2026-12-08", "hour": 24 })),
        ("fields", "/fields", json!([{ "name": "age", "max": 3 }])),
        ("fields", "/fields", json!([{ "name": "nickname", "max": 40 }])),
        ("fields", "/fields", json!([{ "name": "name", "max": 40 }, { "name": "name", "max": 20 }])),
        ("fields", "/fields", json!([{ "name": "name", "max": 0 }])),
    ];
    for (field, pointer, value) in cases {
        let mut body = ready.body();
        *body.pointer_mut(pointer).unwrap() = value.clone();
        let refused = create(&app, &org, &org.creator, body).await;
        assert_eq!(
            (refused.status, refused.body["field"].as_str()),
            (422, Some(field)),
            "{pointer} = {value}: {}",
            refused.body
        );
    }
    let listed = app.get_as(&org.creator, "/v1/orgs/acme/campaigns").await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.body);
    let mut su = app.db.superuser().await;
    let versions: i64 =
        sqlx::query_scalar("select count(*) from app.campaign_versions").fetch_one(&mut su).await.unwrap();
    assert_eq!(versions, 0, "nothing was written");

    // An edit refused for its input leaves the campaign as it was.
    let id = campaign(&app, &org, &org.creator, &ready).await;
    let path = format!("/v1/orgs/acme/campaigns/{id}");
    let before = app.get_as(&org.creator, &path).await;
    let mut body = ready.body();
    body["fields"] = json!([{ "name": "age", "max": 3 }]);
    let request = app.http.put(format!("{}{path}", app.base)).bearer_auth(&org.creator).header("if-match", "\"1\"");
    let refused = app.send(request.json(&body)).await;
    assert_eq!((refused.status, refused.body["field"].as_str()), (422, Some("fields")), "{}", refused.body);
    assert_eq!(app.get_as(&org.creator, &path).await.body, before.body);
}

#[tokio::test]
async fn another_organization_gets_404_for_a_campaigns_every_route() {
    let app = TestApp::spawn().await;
    let acme = app.org_with_every_role("acme").await;
    let ready = ready(&app, &acme).await;
    let id = campaign(&app, &acme, &acme.creator, &ready).await;
    let globex = app.signed_in("admin@globex.example").await;
    let made = app.post_as(&globex, "/v1/orgs", json!({ "slug": "globex", "name": "Globex" })).await;
    assert_eq!(made.status, 201, "{}", made.body);

    for slug in ["globex", "acme"] {
        let base = format!("/v1/orgs/{slug}/campaigns/{id}");
        let mut replies = vec![
            app.get_as(&globex, &base).await,
            app.get_as(&globex, &format!("{base}/messages")).await,
            app.send(
                app.http
                    .put(format!("{}{base}", app.base))
                    .bearer_auth(&globex)
                    .header("if-match", "\"1\"")
                    .json(&ready.body()),
            )
            .await,
        ];
        for step in ["launch", "pause", "resume", "cancel"] {
            replies.push(app.post_as(&globex, &format!("{base}/{step}"), json!({})).await);
        }
        for reply in replies {
            assert_eq!(reply.status, 404, "{slug}: {}", reply.body);
        }
    }
    let listed = app.get_as(&globex, "/v1/orgs/globex/campaigns").await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.body);
    // Nor can globex build a campaign of acme's parts.
    let sender = app.post_as(&globex, "/v1/orgs/globex/senders", new_sender()).await;
    let mut body = ready.body();
    body["sender"] = sender.body["id"].clone();
    let refused = app.post_as(&globex, "/v1/orgs/globex/campaigns", body).await;
    assert_eq!((refused.status, refused.body["field"].as_str()), (422, Some("content")), "{}", refused.body);
    let mine = app.get_as(&acme.admin, &format!("/v1/orgs/acme/campaigns/{id}")).await;
    assert_eq!((mine.status, mine.body["version"].as_i64()), (200, Some(1)));
}

#[tokio::test]
async fn the_ledger_page_masks_an_address_the_transports_reply_quotes() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let ready = ready(&app, &org).await;
    let id = campaign(&app, &org, &org.creator, &ready).await;
    approved(&app, &org, &org.creator, &id).await;
    let path = format!("/v1/orgs/acme/campaigns/{id}");
    assert_eq!(app.post_as(&org.admin, &format!("{path}/launch"), json!({})).await.status, 200);

    // A worker hands Ada's message over and the relay refuses it, quoting her address.
    let campaign = ContentId::parse(&id).unwrap();
    let mut tx = app.pool.begin_tenant(org_id(&app, "acme").await, None).await.unwrap();
    let now = app.clock.now();
    let claim = campaigns::claim(&mut tx, campaign, 10, chrono::Duration::minutes(5), now).await.unwrap();
    assert_eq!(claim.messages.len(), 1, "{claim:?}");
    let bounce = Failure::Bounced { reply: "550 5.1.1 <ada@p.example>: Recipient address rejected".into() };
    let recorded = campaigns::record_failure(&mut tx, campaign, claim.messages[0].contact, &bounce, now).await.unwrap();
    assert_eq!(recorded, campaigns::Recorded::HardRefusal);
    tx.commit().await.unwrap();

    let bounced = app.get_as(&org.viewer, &format!("{path}/messages?state=bounced")).await;
    assert_eq!(bounced.status, 200, "{}", bounced.body);
    assert_eq!(bounced.body["items"][0]["contact"], json!(ready.ada));
    assert_eq!(bounced.body["items"][0]["attempts"], json!(1));
    assert_eq!(bounced.body["items"][0]["reply"], json!("550 5.1.1 <address> Recipient address rejected"));
    assert!(!bounced.body.to_string().contains("ada@"), "{}", bounced.body);

    // A content item that is no campaign is not found here.
    let piece = app.get_as(&org.viewer, &format!("/v1/orgs/acme/campaigns/{}", ready.content)).await;
    assert_eq!(piece.status, 404, "{}", piece.body);
}

#[tokio::test]
async fn a_campaign_whose_piece_left_its_approved_version_after_the_campaigns_approval_does_not_launch() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let ready = ready(&app, &org).await;
    let id = campaign(&app, &org, &org.creator, &ready).await;
    approved(&app, &org, &org.creator, &id).await;
    let withdrawn =
        app.post_as(&org.creator, &format!("/v1/orgs/acme/content/{}/withdraw", ready.content), json!({})).await;
    assert_eq!((withdrawn.status, withdrawn.body["state"].as_str()), (200, Some("draft")), "{}", withdrawn.body);

    let path = format!("/v1/orgs/acme/campaigns/{id}");
    let refused = app.post_as(&org.admin, &format!("{path}/launch"), json!({})).await;
    assert_eq!((refused.status, refused.problem_type()), (409, "urn:mos:problem:conflict"), "{}", refused.body);
    assert!(refused.body["detail"].as_str().unwrap().contains("approved version"), "{}", refused.body);
    let after = app.get_as(&org.admin, &path).await;
    assert_eq!((after.body["state"].as_str(), &after.body["run"]), (Some("approved"), &Value::Null), "{}", after.body);
    assert_eq!(records(&app, &org, "campaign.launched").await.len(), 0);
}

#[tokio::test]
async fn the_first_use_evidence_of_a_sent_piece_is_a_json_attachment_and_a_printable_page_with_sealed_places() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let ready = ready(&app, &org).await;
    let id = campaign(&app, &org, &org.creator, &ready).await;
    approved(&app, &org, &org.creator, &id).await;
    assert_eq!(app.post_as(&org.admin, &format!("/v1/orgs/acme/campaigns/{id}/launch"), json!({})).await.status, 200);
    let evidence_path = format!("/v1/orgs/acme/content/{}/first-use/evidence", ready.content);
    let nothing = app.get_as(&org.viewer, &evidence_path).await;
    assert_eq!((nothing.status, &nothing.body["versions"]), (200, &json!([])), "nothing sent yet: {}", nothing.body);

    // Ada's message is sent in one batch, and the records are sealed.
    let campaign = ContentId::parse(&id).unwrap();
    let mut tx = app.pool.begin_tenant(org_id(&app, "acme").await, None).await.unwrap();
    let now = app.clock.now();
    let claim = campaigns::claim(&mut tx, campaign, 10, chrono::Duration::minutes(5), now).await.unwrap();
    let values = std::collections::BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
    let sent = [campaigns::Sent { contact: claim.messages[0].contact, values: &values, reply: "250 Ok" }];
    campaigns::record_sent(&mut tx, campaign, &sent, now, &mos_domain::RequestSource::default()).await.unwrap();
    tx.commit().await.unwrap();
    mos_db::chain::seal(&app.pool, None, mos_db::chain::WINDOW).await.unwrap();

    let exported = app.get_as(&org.viewer, &evidence_path).await;
    assert_eq!(exported.status, 200, "{}", exported.body);
    let disposition = exported.headers["content-disposition"].to_str().unwrap().to_owned();
    assert_eq!(disposition, format!("attachment; filename=\"first-use-{}.json\"", ready.content));
    let evidence = &exported.body;
    assert_eq!(evidence["format"], "mos-first-use/1");
    let version = &evidence["versions"][0];
    let content = app.get_as(&org.viewer, &format!("/v1/orgs/acme/content/{}", ready.content)).await;
    assert_eq!(version["sha256"], content.body["version"]["sha256"]);
    assert_eq!(version["body"], content.body["version"]["body"]);
    assert_eq!(
        (version["campaign"]["id"].as_str(), version["campaign"]["recipients"].as_i64()),
        (Some(id.as_str()), Some(2))
    );
    let records = version["records"].as_array().unwrap();
    assert!(
        records.iter().all(|r| r["seq"].is_i64() && r["hash"].as_str().is_some_and(|h| h.len() == 64)),
        "{records:?}"
    );

    // The page to print says the same, and another organization's member gets nothing.
    let (status, html) = page(&app, &org.viewer, &format!("/orgs/acme/content/{}/first-use", ready.content)).await;
    assert_eq!(status, 200, "{html}");
    for shown in [version["sha256"].as_str().unwrap(), "December flu shots", records[0]["hash"].as_str().unwrap()] {
        assert!(html.contains(shown), "{shown}: {html}");
    }
    let stranger = app.org_with_every_role("other").await;
    let foreign = app.get_as(&stranger.admin, &evidence_path.replace("/acme/", "/other/")).await;
    assert_eq!(foreign.status, 404, "{}", foreign.body);
}
