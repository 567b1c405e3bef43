//! The content review over HTTP: the workflow end to end, every role against every step,
//! every state against every step, concurrent edits, lists, and other tenants. Random
//! sequences by random members are in `review_walk`.

use std::collections::{HashMap, HashSet};

use mos_domain::content::{Channel, Text};
use serde_json::{json, Value};

use crate::{Members, Reply, TestApp};

/// A body of text for a new item or version.
fn draft(title: &str, body: &str) -> Value {
    json!({ "title": title, "channel": "email", "audience": "Patients 65+", "body": body, "tags": ["flu"] })
}

pub struct Org<'a> {
    app: &'a TestApp,
    pub(crate) slug: String,
}

impl<'a> Org<'a> {
    pub fn new(app: &'a TestApp, members: &Members) -> Self {
        Self { app, slug: members.slug.clone() }
    }

    pub fn path(&self, rest: &str) -> String {
        format!("/v1/orgs/{}/content{rest}", self.slug)
    }

    pub(crate) async fn create(&self, token: &str, title: &str) -> Value {
        let created = self.app.post_as(token, &self.path(""), draft(title, "Book your flu shot.")).await;
        assert_eq!(created.status, 201, "{}", created.body);
        created.body
    }

    pub async fn get(&self, token: &str, id: &str) -> Reply {
        self.app.get_as(token, &self.path(&format!("/{id}"))).await
    }

    /// `action` as `token`: a step's route name, or `edit` with a fresh text and the item's ETag.
    pub(crate) async fn act(&self, token: &str, id: &str, action: &str, nonce: usize) -> Reply {
        let current = self.get(token, id).await;
        if action == "edit" {
            let etag = current.headers.get("etag").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
            let body = draft("Flu shots", &format!("Version text {nonce}."));
            let request = self.app.http.patch(format!("{}{}", self.app.base, self.path(&format!("/{id}"))));
            return self.app.send(request.bearer_auth(token).header("if-match", etag).json(&body)).await;
        }
        let sha = current.body["version"]["sha256"].clone();
        let body = json!({ "sha256": sha, "note": format!("Note {nonce}") });
        self.app.post_as(token, &self.path(&format!("/{id}/{action}")), body).await
    }

    async fn ok(&self, token: &str, id: &str, action: &str) -> Value {
        let reply = self.act(token, id, action, 0).await;
        assert_eq!(reply.status, 200, "{action}: {}", reply.body);
        reply.body
    }

    /// A new item by the creator, brought to `state` by the steps that lead there.
    pub async fn item_in(&self, members: &Members, state: &str) -> String {
        let id = self.create(&members.creator, "Flu shots").await["id"].as_str().unwrap().to_owned();
        let steps: &[(&str, &str)] = match state {
            "draft" => &[],
            "in_review" => &[("creator", "submit")],
            "changes_requested" => &[("creator", "submit"), ("reviewer", "request-changes")],
            "approved" => &[("creator", "submit"), ("reviewer", "approve")],
            "published" => &[("creator", "submit"), ("reviewer", "approve"), ("admin", "publish")],
            "archived" => &[("admin", "archive")],
            other => panic!("no way to {other}"),
        };
        for (who, action) in steps {
            let token = if *who == "creator" {
                &members.creator
            } else if *who == "reviewer" {
                &members.reviewer
            } else {
                &members.admin
            };
            self.ok(token, &id, action).await;
        }
        assert_eq!(self.get(&members.admin, &id).await.body["state"], state);
        id
    }

    pub(crate) async fn history(&self, token: &str, id: &str) -> Vec<Value> {
        let reply = self.app.get_as(token, &self.path(&format!("/{id}/history"))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body.as_array().unwrap().clone()
    }
}

/// The organization with a second CREATOR, who owns nothing of what the first creates.
pub(crate) async fn org_with_two_creators(app: &TestApp, slug: &str) -> (Members, String) {
    let members = app.org_with_every_role(slug).await;
    let email = format!("other-creator@{slug}.example");
    let other = app.signed_in(&email).await;
    app.join(&members.admin, slug, &email, "CREATOR", &other).await;
    (members, other)
}

#[tokio::test]
async fn a_creator_drafts_a_reviewer_approves_and_an_admin_publishes_exactly_the_approved_text() {
    let app = TestApp::spawn().await;
    let members = app.org_with_every_role("acme").await;
    let org = Org::new(&app, &members);

    let created = org.create(&members.creator, "Flu shots are here").await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!((created["state"].as_str(), created["version"]["number"].as_i64()), (Some("draft"), Some(1)));
    let v1 = created["version"]["sha256"].as_str().unwrap().to_owned();
    let text =
        Text::parse("Flu shots are here", Channel::Email, "Patients 65+", "Book your flu shot.", &["flu".into()])
            .unwrap();
    assert_eq!(v1, text.hash().to_string(), "the hash is the canonical text's, which anyone can recompute");

    // A second version; the first stays as it was.
    let edited = org.ok(&members.creator, &id, "edit").await;
    assert_eq!(edited["version"]["number"], 2);
    let first = app.get_as(&members.viewer, &org.path(&format!("/{id}/versions/1"))).await;
    assert_eq!(
        (first.body["sha256"].as_str(), first.body["body"].as_str()),
        (Some(v1.as_str()), Some("Book your flu shot."))
    );
    let diff = app.get_as(&members.viewer, &org.path(&format!("/{id}/diff?from=1&to=2"))).await;
    assert_eq!(diff.status, 200, "{}", diff.body);
    let lines = diff.body["body"].as_str().unwrap();
    assert!(lines.contains("-Book your flu shot.\n") && lines.contains("+Version text 0.\n"), "{}", diff.body);
    assert_eq!(diff.body["fields"][0]["field"], "title");

    org.ok(&members.creator, &id, "submit").await;
    let sent_back = org.ok(&members.reviewer, &id, "request-changes").await;
    assert_eq!(sent_back["state"], "changes_requested");
    org.ok(&members.creator, &id, "submit").await;

    // Two approvals from now on; the author's own does not count and is refused.
    let policy = app.call_as("patch", &members.admin, "/v1/orgs/acme", json!({ "required_approvals": 2 })).await;
    assert_eq!((policy.status, policy.body["required_approvals"].as_i64()), (200, Some(2)), "{}", policy.body);
    let own = org.act(&members.creator, &id, "approve", 0).await;
    assert_eq!((own.status, own.problem_type()), (403, "urn:mos:problem:forbidden"));
    let stale = app.post_as(&members.reviewer, &org.path(&format!("/{id}/approve")), json!({ "sha256": v1 })).await;
    assert_eq!((stale.status, stale.problem_type()), (409, "urn:mos:problem:version_changed"), "an old version's hash");
    let once = org.ok(&members.reviewer, &id, "approve").await;
    assert_eq!((once["state"].as_str(), once["approvals"]["given"].as_i64()), (Some("in_review"), Some(1)));
    let twice = org.act(&members.reviewer, &id, "approve", 0).await;
    assert_eq!((twice.status, twice.problem_type()), (409, "urn:mos:problem:already_approved"));
    let approved = org.ok(&members.admin, &id, "approve").await;
    assert_eq!(approved["state"], "approved");
    let published = org.ok(&members.admin, &id, "publish").await;
    assert_eq!((published["state"].as_str(), published["published_version"].as_i64()), (Some("published"), Some(2)));
    let approved_hash = approved["version"]["sha256"].as_str().unwrap();
    assert_eq!(published["version"]["sha256"], approved_hash);

    let kinds: Vec<String> =
        org.history(&members.viewer, &id).await.iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect();
    assert_eq!(
        kinds,
        ["created", "edited", "submitted", "changes_requested", "submitted", "approved", "approved", "published"]
    );
    // The evidence in the tenant's audit trail: who approved which hash, and what was published.
    let trail =
        app.get_as(&members.admin, &format!("/v1/orgs/acme/audit-logs?resource_type=content&resource_id={id}")).await;
    let records = trail.body["items"].as_array().unwrap();
    let approvals: HashSet<&str> = records
        .iter()
        .filter(|r| r["action"] == "content.approved" && r["metadata"]["sha256"] == approved_hash)
        .map(|r| r["actor"].as_str().unwrap())
        .collect();
    assert_eq!(approvals.len(), 2);
    let publication = records.iter().find(|r| r["action"] == "content.published").unwrap();
    assert_eq!(publication["metadata"]["sha256"], approved_hash);
    assert_eq!(publication["changes"]["state"], json!({ "before": "approved", "after": "published" }));
    let denied = app.get_as(&members.admin, "/v1/orgs/acme/audit-logs?action=access.denied").await;
    assert!(!denied.body["items"].as_array().unwrap().is_empty(), "the author's attempt to approve is on record");
}

/// For each step: the state an item is put in first, and the roles whose members may take it
/// there (the creator as the item's creator and the latest version's author).
const ROLE_MATRIX: [(&str, &str, &[&str]); 8] = [
    ("edit", "draft", &["ADMIN", "CREATOR"]),
    ("submit", "draft", &["ADMIN", "CREATOR"]),
    ("withdraw", "in_review", &["ADMIN", "CREATOR"]),
    ("comments", "in_review", &["ADMIN", "REVIEWER"]),
    ("request-changes", "in_review", &["ADMIN", "REVIEWER"]),
    ("approve", "in_review", &["ADMIN", "REVIEWER"]),
    ("publish", "approved", &["ADMIN"]),
    ("archive", "published", &["ADMIN"]),
];

#[tokio::test]
async fn every_role_tries_every_step_and_may_take_it_exactly_where_the_table_says() {
    let app = TestApp::spawn().await;
    let (members, other_creator) = org_with_two_creators(&app, "acme").await;
    let org = Org::new(&app, &members);
    let mut actors: Vec<(&str, &str)> = members.by_role().to_vec();
    actors.push(("OTHER CREATOR", &other_creator));
    for (action, state, allowed) in ROLE_MATRIX {
        for (who, token) in &actors {
            let id = org.item_in(&members, state).await;
            let reply = org.act(token, &id, action, 1).await;
            let writes = ["edit", "submit", "withdraw"].contains(&action);
            if allowed.contains(who) {
                assert_eq!(reply.status, 200, "{who} {action} on {state}: {}", reply.body);
            } else if *who == "OTHER CREATOR" && writes {
                assert_eq!((reply.status, reply.problem_type()), (403, "urn:mos:problem:not_owner"), "{action}");
            } else {
                assert_eq!(
                    (reply.status, reply.problem_type()),
                    (403, "urn:mos:problem:forbidden"),
                    "{who} {action} on {state}: {}",
                    reply.body
                );
            }
            let after = org.get(&members.admin, &id).await.body;
            if reply.status != 200 {
                assert_eq!(after["state"], state, "a refused step changes nothing");
            }
        }
    }
}

/// For each step: the states in which it is possible at all.
const STATE_MATRIX: [(&str, &[&str]); 8] = [
    ("edit", &["draft", "changes_requested", "approved"]),
    ("submit", &["draft", "changes_requested"]),
    ("withdraw", &["in_review", "approved"]),
    ("comments", &["draft", "in_review", "changes_requested", "approved", "published"]),
    ("request-changes", &["in_review"]),
    ("approve", &["in_review"]),
    ("publish", &["approved"]),
    ("archive", &["draft", "changes_requested", "approved", "published"]),
];

#[tokio::test]
async fn every_step_is_possible_in_exactly_the_states_the_review_allows() {
    let app = TestApp::spawn().await;
    let members = app.org_with_every_role("acme").await;
    let org = Org::new(&app, &members);
    let states = ["draft", "in_review", "changes_requested", "approved", "published", "archived"];
    for (action, possible) in STATE_MATRIX {
        for state in states {
            let id = org.item_in(&members, state).await;
            // The ADMIN holds every permission and wrote none of these versions.
            let reply = org.act(&members.admin, &id, action, 2).await;
            if possible.contains(&state) {
                assert_eq!(reply.status, 200, "{action} on {state}: {}", reply.body);
            } else {
                assert_eq!(
                    (reply.status, reply.problem_type()),
                    (409, "urn:mos:problem:invalid_transition"),
                    "{action} on {state}: {}",
                    reply.body
                );
            }
        }
    }
}

#[tokio::test]
async fn an_edit_after_approval_needs_approval_again_and_nobody_approves_their_own_version() {
    let app = TestApp::spawn().await;
    let members = app.org_with_every_role("acme").await;
    let org = Org::new(&app, &members);
    let id = org.item_in(&members, "approved").await;
    // The ADMIN edits: the new version is theirs, the approval of the old one does not carry over.
    let edited = org.ok(&members.admin, &id, "edit").await;
    assert_eq!((edited["state"].as_str(), edited["approved_version"].as_i64()), (Some("draft"), None));
    let publish = org.act(&members.admin, &id, "publish", 0).await;
    assert_eq!((publish.status, publish.problem_type()), (409, "urn:mos:problem:invalid_transition"));
    org.ok(&members.admin, &id, "submit").await;
    let own = org.act(&members.admin, &id, "approve", 0).await;
    assert_eq!((own.status, own.problem_type()), (403, "urn:mos:problem:separation_of_duties"), "{}", own.body);
    let approved = org.ok(&members.reviewer, &id, "approve").await;
    let published = org.ok(&members.admin, &id, "publish").await;
    assert_eq!(published["published_version"], 2);
    assert_eq!(published["version"]["sha256"], approved["version"]["sha256"]);
    // Published: no more edits.
    let late = org.act(&members.creator, &id, "edit", 9).await;
    assert_eq!((late.status, late.problem_type()), (409, "urn:mos:problem:invalid_transition"));
}

#[tokio::test]
async fn of_two_edits_from_the_same_revision_one_wins_and_the_other_gets_412_never_a_lost_update() {
    let app = TestApp::spawn().await;
    let members = app.org_with_every_role("acme").await;
    let org = Org::new(&app, &members);
    let id = org.create(&members.creator, "Flu shots").await["id"].as_str().unwrap().to_owned();
    let etag = org.get(&members.creator, &id).await.headers["etag"].to_str().unwrap().to_owned();
    let url = format!("{}{}", app.base, org.path(&format!("/{id}")));
    let edit = |author: &str, body: &str| {
        let request = app.http.patch(&url).bearer_auth(author).header("if-match", &etag).json(&draft("Flu", body));
        app.send(request)
    };
    let (a, b) = tokio::join!(edit(&members.creator, "Creator's text"), edit(&members.admin, "Admin's text"));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 412], "{} / {}", a.body, b.body);
    let loser = if a.status == 412 { &a } else { &b };
    assert_eq!(loser.problem_type(), "urn:mos:problem:precondition_failed");
    let versions = app.get_as(&members.viewer, &org.path(&format!("/{id}/versions"))).await.body;
    assert_eq!(versions.as_array().unwrap().len(), 2, "exactly one edit was kept");

    let unconditional = app.send(app.http.patch(&url).bearer_auth(&members.creator).json(&draft("Flu", "x"))).await;
    assert_eq!((unconditional.status, unconditional.problem_type()), (428, "urn:mos:problem:precondition_required"));
    let stale = app
        .send(app.http.patch(&url).bearer_auth(&members.creator).header("if-match", &etag).json(&draft("Flu", "x")))
        .await;
    assert_eq!(stale.status, 412);
}

#[tokio::test]
async fn another_tenant_finds_none_of_this_tenants_content_by_any_route() {
    let app = TestApp::spawn().await;
    let members = app.org_with_every_role("acme").await;
    let org = Org::new(&app, &members);
    let id = org.item_in(&members, "in_review").await;
    let beta = app.signed_in("admin@beta.example").await;
    assert_eq!(app.post_as(&beta, "/v1/orgs", json!({ "slug": "beta", "name": "Beta" })).await.status, 201);
    for slug in ["acme", "beta"] {
        for (method, rest) in [
            ("get", String::new()),
            ("get", "/versions".into()),
            ("get", "/versions/1".into()),
            ("get", "/history".into()),
            ("get", "/diff?from=1&to=1".into()),
            ("patch", String::new()),
            ("post", "/approve".into()),
            ("post", "/publish".into()),
            ("post", "/archive".into()),
        ] {
            let url = format!("/v1/orgs/{slug}/content/{id}{rest}");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let request = app.http.request(method.clone(), format!("{}{url}", app.base)).bearer_auth(&beta);
            let body = if method == reqwest::Method::PATCH {
                draft("Hijack", "x")
            } else {
                json!({ "sha256": "0".repeat(64), "note": "Hijack" })
            };
            let reply = app.send(request.header("if-match", "\"1\"").json(&body)).await;
            assert_eq!((reply.status, reply.problem_type()), (404, "urn:mos:problem:not_found"), "{method} {url}");
        }
    }
    let listed = app.get_as(&beta, "/v1/orgs/beta/content").await;
    assert_eq!(listed.body["items"], json!([]));
    assert_eq!(org.get(&members.admin, &id).await.body["state"], "in_review", "nothing changed");
}

#[tokio::test]
async fn lists_filter_by_state_channel_tag_author_and_words_and_show_what_waits_for_my_review() {
    let app = TestApp::spawn().await;
    let (members, other) = org_with_two_creators(&app, "acme").await;
    let org = Org::new(&app, &members);
    let mut ids = HashMap::new();
    for (token, title, channel, tags, body) in [
        (&members.creator, "Flu clinic hours", "email", vec!["flu"], "Walk in on Saturdays."),
        (&members.creator, "Diabetes day", "web_page", vec!["diabetes", "events"], "Free glucose checks."),
        (&other, "Flu myths", "social_post", vec!["flu", "myths"], "Vaccines do not cause flu."),
        (&members.reviewer, "Skipped", "print", vec![], "Never created"),
    ] {
        let body = json!({ "title": title, "channel": channel, "body": body, "tags": tags });
        let reply = app.post_as(token, &org.path(""), body).await;
        if title == "Skipped" {
            assert_eq!(reply.status, 403, "a REVIEWER does not create");
            continue;
        }
        ids.insert(title, reply.body["id"].as_str().unwrap().to_owned());
    }
    org.ok(&members.creator, &ids["Diabetes day"], "submit").await;
    org.ok(&other, &ids["Flu myths"], "submit").await;
    org.ok(&members.reviewer, &ids["Flu myths"], "approve").await;

    assert_eq!(titles(&org, &members.viewer, "state=in_review").await, ["Diabetes day"]);
    assert_eq!(titles(&org, &members.viewer, "channel=social_post").await, ["Flu myths"]);
    assert_eq!(titles(&org, &members.viewer, "tag=flu").await, ["Flu clinic hours", "Flu myths"]);
    assert_eq!(titles(&org, &members.viewer, "q=glucose").await, ["Diabetes day"]);
    assert_eq!(titles(&org, &members.viewer, "q=flu%20-myths").await, ["Flu clinic hours"]);
    assert_eq!(
        titles(&org, &members.reviewer, "awaiting_my_review=true").await,
        ["Diabetes day"],
        "not the one already approved"
    );
    let me = app.get_as(&other, "/v1/me").await.body["id"].as_str().unwrap().to_owned();
    let mine = app.get_as(&members.viewer, &org.path(&format!("?author={me}"))).await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);
    let bad = app.get_as(&members.viewer, &org.path("?state=lost")).await;
    assert_eq!((bad.status, bad.body["field"].as_str()), (422, Some("state")));

    // Pages of two, newest first, each item once.
    let mut seen = Vec::new();
    let mut url = org.path("?limit=2");
    loop {
        let page = app.get_as(&members.viewer, &url).await.body;
        seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => url = org.path(&format!("?limit=2&cursor={cursor}")),
            None => break,
        }
    }
    let mut newest_first: Vec<String> = ids.values().cloned().collect();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, newest_first);
}

/// The titles a list query finds, sorted.
async fn titles(org: &Org<'_>, token: &str, query: &str) -> Vec<String> {
    let reply = org.app.get_as(token, &org.path(&format!("?{query}"))).await;
    assert_eq!(reply.status, 200, "{query}: {}", reply.body);
    let mut titles: Vec<String> =
        reply.body["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap().to_owned()).collect();
    titles.sort();
    titles
}

#[tokio::test]
async fn bad_input_names_its_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let members = app.org_with_every_role("acme").await;
    let org = Org::new(&app, &members);
    let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    for (body, field) in [
        (json!({ "title": "x", "channel": "fax", "body": "" }), "channel"),
        (json!({ "title": " ", "channel": "email", "body": "" }), "title"),
        (json!({ "title": "x", "channel": "email", "body": "bell \u{7}" }), "body"),
        (json!({ "title": "x", "channel": "email", "body": "", "tags": many }), "tags"),
        (json!({ "title": "x", "channel": "email", "body": "", "tags": ["two words"] }), "tags"),
    ] {
        let reply = app.post_as(&members.creator, &org.path(""), body).await;
        assert_eq!((reply.status, reply.body["field"].as_str()), (422, Some(field)), "{}", reply.body);
    }
    let id = org.item_in(&members, "in_review").await;
    let malformed =
        app.post_as(&members.reviewer, &org.path(&format!("/{id}/approve")), json!({ "sha256": "abc" })).await;
    assert_eq!((malformed.status, malformed.body["field"].as_str()), (422, Some("sha256")));
    let silent = app.post_as(&members.reviewer, &org.path(&format!("/{id}/request-changes")), json!({})).await;
    assert_eq!((silent.status, silent.body["field"].as_str()), (422, Some("note")), "say what to change");
    let missing = app.get_as(&members.viewer, &org.path(&format!("/{id}/diff?from=1&to=9"))).await;
    assert_eq!(missing.status, 404);
    let listed = app.get_as(&members.viewer, &org.path("")).await.body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "only the item made for the probe");
    assert_eq!(org.get(&members.viewer, &id).await.body["state"], "in_review");
}

#[tokio::test]
async fn refusals_for_authorship_are_on_the_tenants_record() {
    let app = TestApp::spawn().await;
    let (members, other) = org_with_two_creators(&app, "acme").await;
    let org = Org::new(&app, &members);
    let id = org.item_in(&members, "draft").await;
    assert_eq!(org.act(&other, &id, "edit", 1).await.problem_type(), "urn:mos:problem:not_owner");
    org.ok(&members.admin, &id, "edit").await;
    org.ok(&members.admin, &id, "submit").await;
    assert_eq!(org.act(&members.admin, &id, "approve", 2).await.problem_type(), "urn:mos:problem:separation_of_duties");
    let trail = app.get_as(&members.admin, "/v1/orgs/acme/audit-logs?action=access.denied&resource_type=content").await;
    let actions: Vec<&str> = trail.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resource_id"] == id.as_str() && r["outcome"] == "denied")
        .map(|r| r["metadata"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["approve", "edit"], "newest first");
}

#[tokio::test]
async fn if_match_follows_rfc_9110_a_weak_tag_never_matches_a_list_matches_by_any_member_and_a_star_is_refused() {
    let app = TestApp::spawn().await;
    let members = app.org_with_every_role("acme").await;
    let org = Org::new(&app, &members);
    let id = org.create(&members.creator, "Flu shots").await["id"].as_str().unwrap().to_owned();
    let url = format!("{}{}", app.base, org.path(&format!("/{id}")));
    let edit = |if_match: &str, body: &str| {
        let request = app.http.patch(&url).bearer_auth(&members.creator).header("if-match", if_match);
        app.send(request.json(&draft("Flu", body)))
    };
    let revision = || async { org.get(&members.creator, &id).await.body["revision"].as_i64().unwrap() };
    let current = revision().await;

    // `*` would match whatever is current: an edit needs the revision its author read.
    let star = edit("*", "Any revision").await;
    assert_eq!((star.status, star.problem_type()), (428, "urn:mos:problem:precondition_required"));
    assert!(star.body["detail"].as_str().unwrap().contains("If-Match: *"), "{}", star.body);
    // A weak tag never matches for a write (strong comparison), even the current one.
    let weak = edit(&format!("W/\"{current}\""), "Weak").await;
    assert_eq!((weak.status, weak.problem_type()), (412, "urn:mos:problem:precondition_failed"));
    // Tags we never issued match nothing either.
    let foreign = edit("\"abc\", W/\"xyz\"", "Foreign").await;
    assert_eq!(foreign.status, 412);
    assert_eq!(revision().await, current, "nothing was written");

    // A list matches if one member does, wherever it stands in the list.
    let listed = edit(&format!("\"{}\", W/\"{current}\", \"{current}\"", current + 7), "Listed").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["version"]["body"], "Listed");
    // ... also spread over several field lines.
    let now = revision().await;
    let request = app
        .http
        .patch(&url)
        .bearer_auth(&members.creator)
        .header("if-match", "\"999\"")
        .header("if-match", format!("\"{now}\""));
    assert_eq!(app.send(request.json(&draft("Flu", "Two lines"))).await.status, 200);
    // The revision it was before is stale now.
    assert_eq!(edit(&format!("\"{current}\""), "Stale").await.status, 412);

    for malformed in ["3", "\"3", "\"3\" \"4\"", "*, \"3\""] {
        let reply = edit(malformed, "Malformed").await;
        assert_eq!((reply.status, reply.body["field"].as_str()), (422, Some("If-Match")), "{malformed:?}");
    }

    // A step takes `*` as "whatever is current", as RFC 9110 says, and a weak tag as no match.
    let submit = |if_match: String| {
        let request = app.http.post(format!("{url}/submit")).bearer_auth(&members.creator);
        app.send(request.header("if-match", if_match))
    };
    assert_eq!(submit(format!("W/\"{}\"", revision().await)).await.status, 412);
    assert_eq!(submit("*".to_owned()).await.status, 200);
}

#[tokio::test]
async fn titles_audiences_and_tags_refuse_bidi_controls_and_look_alike_tags_are_one_tag() {
    let app = TestApp::spawn().await;
    let members = app.org_with_every_role("acme").await;
    let org = Org::new(&app, &members);
    for (body, field) in [
        (json!({ "title": "Invoice \u{202e}fdp.exe", "channel": "email" }), "title"),
        (json!({ "title": "Flu\u{200b}shots", "channel": "email" }), "title"),
        (json!({ "title": "Flu", "channel": "email", "audience": "\u{2067}Adults\u{2069}" }), "audience"),
        (json!({ "title": "Flu", "channel": "email", "audience": "Adults\u{e0041}" }), "audience"),
        (json!({ "title": "Flu", "channel": "email", "tags": ["flu\u{202e}"] }), "tags"),
    ] {
        let reply = app.post_as(&members.creator, &org.path(""), body).await;
        assert_eq!((reply.status, reply.body["field"].as_str()), (422, Some(field)), "{}", reply.body);
    }
    let looks_alike = json!({ "title": "Flu", "channel": "email",
        "tags": ["\u{ff26}\u{ff2c}\u{ff35}", "flu", "vaccine\u{17f}", "vaccines", "\u{131}mmunity", "immunity"] });
    let created = app.post_as(&members.creator, &org.path(""), looks_alike).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["version"]["tags"], json!(["flu", "immunity", "vaccines"]));
    let found = app.get_as(&members.viewer, &org.path("?tag=%EF%BC%A6lu")).await;
    assert_eq!(found.body["items"].as_array().map(Vec::len), Some(1), "a look-alike finds the one tag: {}", found.body);
}

#[tokio::test]
async fn a_body_keeps_bidi_controls_and_the_review_diff_shows_them() {
    let app = TestApp::spawn().await;
    let members = app.org_with_every_role("acme").await;
    let org = Org::new(&app, &members);
    let id = org.create(&members.creator, "Flu shots").await["id"].as_str().unwrap().to_owned();
    let etag = org.get(&members.creator, &id).await.headers["etag"].to_str().unwrap().to_owned();
    let hidden = "Dose: 1\u{202e}0 mg\u{202c}, free\u{200b} of charge.";
    let request = app.http.patch(format!("{}{}", app.base, org.path(&format!("/{id}")))).bearer_auth(&members.creator);
    let edited = app.send(request.header("if-match", &etag).json(&draft("Flu shots", hidden))).await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.body["version"]["body"], hidden, "the body is stored as written");

    let diff = app.get_as(&members.reviewer, &org.path(&format!("/{id}/diff?from=1&to=2"))).await;
    assert_eq!(diff.status, 200);
    let body = diff.body["body"].as_str().unwrap();
    assert!(body.contains("+Dose: 1<U+202E>0 mg<U+202C>, free<U+200B> of charge."), "{body}");
    assert!(!body.contains('\u{202e}'), "nothing of it is left invisible: {body:?}");

    // The console's pages show the same markers: the diff, and the version a reviewer approves.
    for page in [format!("/orgs/acme/content/{id}/diff?from=1&to=2"), format!("/orgs/acme/content/{id}")] {
        let request = app.http.get(format!("{}{page}", app.base));
        let session = format!("__Host-mos_session={}", members.reviewer);
        let html = request.header("cookie", session).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("1&lt;U+202E&gt;0 mg&lt;U+202C&gt;"), "{page}: {html}");
        assert!(!html.contains('\u{202e}'), "{page}");
    }
}

#[tokio::test]
async fn a_lone_carriage_return_in_a_body_is_stored_as_a_line_end_and_hashed_so() {
    let app = TestApp::spawn().await;
    let members = app.org_with_every_role("acme").await;
    let org = Org::new(&app, &members);
    let created = app.post_as(&members.creator, &org.path(""), draft("Flu shots", "Line one\rLine two\r\n")).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let version = &created.body["version"];
    assert_eq!(version["body"], "Line one\nLine two\n");
    let tags = ["flu".to_owned()];
    let text = Text::parse("Flu shots", Channel::Email, "Patients 65+", "Line one\nLine two\n", &tags).unwrap();
    assert_eq!(version["sha256"], text.hash().to_string(), "the hash is of the text as stored");
}

#[tokio::test]
async fn the_content_page_renders_the_markdown_body_and_shows_its_html_as_text() {
    let app = TestApp::spawn().await;
    let members = app.org_with_every_role("acme").await;
    let org = Org::new(&app, &members);
    let body = "Use **SPF 50** daily.\n\n<script>alert(1)</script>\n\n[Book](javascript:alert(2)) \
                <img src=x onerror=alert(3)>";
    let created = app.post_as(&members.creator, &org.path(""), draft("Sun care", body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let page = format!("/orgs/acme/content/{}", created.body["id"].as_str().unwrap());
    let request = app.http.get(format!("{}{page}", app.base));
    let session = format!("__Host-mos_session={}", members.reviewer);
    let html = request.header("cookie", session).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<p>Use <strong>SPF 50</strong> daily.</p>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    assert!(html.contains("&lt;img src=x onerror=alert(3)&gt;"), "{html}");
    for hostile in ["<script>alert", "javascript:", "<img src=x"] {
        assert!(!html.contains(hostile), "{hostile}: {html}");
    }
}

/// The user id behind a session.
async fn id_of(app: &TestApp, token: &str) -> String {
    app.get_as(token, "/v1/me").await.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_approval_whose_member_was_removed_or_demoted_stays_in_the_history_but_no_longer_counts() {
    let app = TestApp::spawn().await;
    let members = app.org_with_every_role("acme").await;
    let org = Org::new(&app, &members);
    let email = "second-reviewer@acme.example";
    let second = app.signed_in(email).await;
    app.join(&members.admin, "acme", email, "REVIEWER", &second).await;
    let reviewer_id = id_of(&app, &members.reviewer).await;
    let second_id = id_of(&app, &second).await;

    // Approved by the one approval required; then its member is removed.
    let id = org.item_in(&members, "approved").await;
    let removed =
        app.call_as("delete", &members.admin, &format!("/v1/orgs/acme/members/{reviewer_id}"), json!({})).await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let item = org.get(&members.admin, &id).await.body;
    assert_eq!((item["approvals"]["given"].as_i64(), item["approvals"]["lapsed"].as_i64()), (Some(0), Some(1)));
    let publish = org.act(&members.admin, &id, "publish", 0).await;
    assert_eq!((publish.status, publish.problem_type()), (409, "urn:mos:problem:approvals_lapsed"), "{}", publish.body);
    let page = app.http.get(format!("{}/orgs/acme/content/{id}", app.base));
    let page = page.header("cookie", format!("__Host-mos_session={}", members.admin)).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("(approvals 0 of 1; 1 no longer counted"), "the console says why: {html}");
    let history = org.history(&members.admin, &id).await;
    assert!(
        history.iter().any(|e| e["kind"] == "approved" && e["actor"] == reviewer_id.as_str()),
        "the approval stays in the history"
    );

    // The same text goes through review again; the second reviewer's approval carries it.
    org.ok(&members.creator, &id, "withdraw").await;
    org.ok(&members.creator, &id, "submit").await;
    assert_eq!(org.ok(&second, &id, "approve").await["state"], "approved");
    let published = org.ok(&members.admin, &id, "publish").await;
    assert_eq!(published["published_version"], 1, "the version first approved, never edited");
    let trail = app.get_as(&members.admin, "/v1/orgs/acme/audit-logs?action=content.published").await.body;
    let record = &trail["items"][0];
    assert_eq!(record["metadata"]["approvals"]["approvers"], json!([second_id]), "{record}");

    // Demoted below REVIEWER counts the same as removed: with two required, the demoted
    // member's approval and one more are not enough.
    let policy = app.call_as("patch", &members.admin, "/v1/orgs/acme", json!({ "required_approvals": 2 })).await;
    assert_eq!(policy.status, 200);
    let next = org.create(&members.creator, "Shingles").await["id"].as_str().unwrap().to_owned();
    org.ok(&members.creator, &next, "submit").await;
    assert_eq!(org.ok(&second, &next, "approve").await["approvals"]["given"], 1);
    let demoted = app
        .call_as("patch", &members.admin, &format!("/v1/orgs/acme/members/{second_id}"), json!({ "role": "VIEWER" }))
        .await;
    assert_eq!(demoted.status, 204, "{}", demoted.body);
    let after = org.ok(&members.admin, &next, "approve").await;
    assert_eq!(
        (after["state"].as_str(), after["approvals"]["given"].as_i64(), after["approvals"]["lapsed"].as_i64()),
        (Some("in_review"), Some(1), Some(1)),
        "{after}"
    );
}
