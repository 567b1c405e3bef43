//! What each request costs the database, counted on the wire: statements (with `BEGIN` and
//! `COMMIT`) and round trips. Each budget is documented in docs/performance.md, and the test
//! keeps the two equal.

use serde_json::{json, Value};

use crate::wire::{Tally, Wire};
use crate::TestApp;

/// A route as docs/performance.md names it, how to call it, and its budget.
struct Budget {
    route: &'static str,
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    statements: usize,
    round_trips: usize,
}

const BUDGETS: &[Budget] = &[
    Budget { route: "GET /v1/me", method: "GET", path: "/v1/me", body: None, statements: 5, round_trips: 5 },
    Budget { route: "GET /v1/orgs", method: "GET", path: "/v1/orgs", body: None, statements: 5, round_trips: 5 },
    Budget {
        route: "GET /v1/orgs/{slug}",
        method: "GET",
        path: "/v1/orgs/acme",
        body: None,
        statements: 6,
        round_trips: 5,
    },
    Budget {
        route: "GET /v1/orgs/{slug}/members",
        method: "GET",
        path: "/v1/orgs/acme/members",
        body: None,
        statements: 6,
        round_trips: 5,
    },
    Budget {
        route: "GET /v1/orgs/{slug}/audit-logs?limit=20",
        method: "GET",
        path: "/v1/orgs/acme/audit-logs?limit=20",
        body: None,
        statements: 6,
        round_trips: 5,
    },
    Budget {
        route: "GET /v1/orgs/{slug}/invitations",
        method: "GET",
        path: "/v1/orgs/acme/invitations",
        body: None,
        statements: 6,
        round_trips: 5,
    },
    Budget {
        route: "PATCH /v1/orgs/{slug} (rename)",
        method: "PATCH",
        path: "/v1/orgs/acme",
        body: Some(r#"{"name": "Acme Renamed"}"#),
        statements: 9,
        round_trips: 8,
    },
];

/// A console page as docs/performance.md names it, its address (`{id}`: a piece of content,
/// `{contact}` and `{purpose}`: a contact and a purpose), and its budget. Every page is one
/// transaction, like an API request.
struct PageBudget {
    page: &'static str,
    path: &'static str,
    statements: usize,
    round_trips: usize,
    /// The page shows contacts' personal data, so it writes the one audit record that says so.
    records_its_reads: bool,
}

const PAGES: &[PageBudget] = &[
    PageBudget {
        page: "/orgs/{slug} (organization, its first 50 members, pending invitations)",
        path: "/orgs/acme",
        statements: 8,
        round_trips: 7,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/audit (records, the members to filter by, the names of the actors)",
        path: "/orgs/acme/audit",
        statements: 8,
        round_trips: 7,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/content",
        path: "/orgs/acme/content",
        statements: 6,
        round_trips: 5,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/content/{id} (item, versions, history, the names of their people)",
        path: "/orgs/acme/content/{id}",
        statements: 10,
        round_trips: 9,
        records_its_reads: false,
    },
    PageBudget { page: "/account", path: "/account", statements: 10, round_trips: 10, records_its_reads: false },
    PageBudget {
        page: "/orgs/{slug}/audience (counts)",
        path: "/orgs/acme/audience",
        statements: 7,
        round_trips: 6,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/contacts (a page of contacts, and the record of who was shown)",
        path: "/orgs/acme/contacts",
        statements: 7,
        round_trips: 6,
        records_its_reads: true,
    },
    PageBudget {
        page: "/orgs/{slug}/contacts/{id} (contact, attributes, consent history and now, purposes, definitions, the record)",
        path: "/orgs/acme/contacts/{contact}",
        statements: 13,
        round_trips: 12,
        records_its_reads: true,
    },
    PageBudget {
        page: "/orgs/{slug}/contacts/{id}/export (the download: contact, attributes, consent events, notices, evidence, the record)",
        path: "/orgs/acme/contacts/{contact}/export",
        statements: 11,
        round_trips: 10,
        records_its_reads: true,
    },
    PageBudget {
        page: "/orgs/{slug}/contacts/{id}/erase (the confirmation: the check and nothing else)",
        path: "/orgs/acme/contacts/{contact}/erase",
        statements: 5,
        round_trips: 5,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/purposes (purposes and attributes)",
        path: "/orgs/acme/purposes",
        statements: 7,
        round_trips: 6,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/purposes/{id} (purpose and its notice versions)",
        path: "/orgs/acme/purposes/{purpose}",
        statements: 7,
        round_trips: 6,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/segments (saved segments)",
        path: "/orgs/acme/segments",
        statements: 6,
        round_trips: 5,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/segments/{id} (the segment and its versions)",
        path: "/orgs/acme/segments/{segment}",
        statements: 6,
        round_trips: 5,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/segments/new (editor: attributes and purposes)",
        path: "/orgs/acme/segments/new",
        statements: 7,
        round_trips: 6,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/segments/{id}/edit (segment, attributes and purposes, the catalog, the count)",
        path: "/orgs/acme/segments/{segment}/edit",
        statements: 11,
        round_trips: 10,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/senders (a page of senders)",
        path: "/orgs/acme/senders",
        statements: 6,
        round_trips: 5,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/senders/new (the form)",
        path: "/orgs/acme/senders/new",
        statements: 5,
        round_trips: 4,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/senders/{id} (the sender, its keys and their DNS records)",
        path: "/orgs/acme/senders/{sender}",
        statements: 7,
        round_trips: 6,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/webhooks (the endpoints)",
        path: "/orgs/acme/webhooks",
        statements: 6,
        round_trips: 5,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/webhooks/{id} (the endpoint and its latest deliveries)",
        path: "/orgs/acme/webhooks/{webhook}",
        statements: 7,
        round_trips: 6,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/suppressions",
        path: "/orgs/acme/suppressions",
        statements: 6,
        round_trips: 5,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/imports (a page of imports with their jobs)",
        path: "/orgs/acme/imports",
        statements: 7,
        round_trips: 6,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/imports/new (the upload form)",
        path: "/orgs/acme/imports/new",
        statements: 5,
        round_trips: 4,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/imports/{id} before the start (first rows, attributes, purposes and notices, the record)",
        path: "/orgs/acme/imports/{uploaded}",
        statements: 12,
        round_trips: 11,
        records_its_reads: true,
    },
    PageBudget {
        page: "/orgs/{slug}/imports/{id} once started (progress)",
        path: "/orgs/acme/imports/{started}",
        statements: 7,
        round_trips: 6,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/campaigns (a page of campaigns and their runs, and whether sending is held back)",
        path: "/orgs/acme/campaigns",
        statements: 8,
        round_trips: 7,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/sending (the breaker, its window, 30 days and 12 months of counts)",
        path: "/orgs/acme/sending",
        statements: 8,
        round_trips: 7,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/campaigns/new (editor: pieces, templates, segments, senders, purposes, attributes)",
        path: "/orgs/acme/campaigns/new",
        statements: 11,
        round_trips: 10,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/campaigns/{id} (campaign, approvals, run and progress, the names its definition refers to)",
        path: "/orgs/acme/campaigns/{campaign}",
        statements: 14,
        round_trips: 13,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/campaigns/{id}/edit (campaign, the names it refers to, the editor's choices)",
        path: "/orgs/acme/campaigns/{campaign}/edit",
        statements: 18,
        round_trips: 17,
        records_its_reads: false,
    },
    PageBudget {
        page: "/orgs/{slug}/campaigns/{id}/preview (campaign, its versions, sender and key, the first contact, the record)",
        path: "/orgs/acme/campaigns/{campaign}/preview",
        statements: 18,
        round_trips: 17,
        records_its_reads: true,
    },
    PageBudget {
        page: "/orgs/{slug}/campaigns/{id}/messages (a page of the send ledger)",
        path: "/orgs/acme/campaigns/{campaign}/messages",
        statements: 7,
        round_trips: 6,
        records_its_reads: false,
    },
    PageBudget {
        page: "/u/{token} (a message's preference centre, with no session: the contact, its purposes and consent, the record)",
        path: "/u/{unsubscribe}",
        statements: 6,
        round_trips: 6,
        records_its_reads: true,
    },
];

/// The console's budget table as docs/performance.md shows it.
fn pages_markdown() -> String {
    let mut table = String::from("| Page | Statements | Round trips |\n|---|---|---|\n");
    for b in PAGES {
        table.push_str(&format!("| `{}` | {} | {} |\n", b.page, b.statements, b.round_trips));
    }
    table
}

/// The budget table as docs/performance.md shows it.
fn markdown() -> String {
    let mut table = String::from("| Route | Statements | Round trips |\n|---|---|---|\n");
    for b in BUDGETS {
        table.push_str(&format!("| `{}` | {} | {} |\n", b.route, b.statements, b.round_trips));
    }
    table
}

#[test]
fn the_performance_doc_shows_the_budgets_the_test_holds() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/performance.md")).unwrap();
    assert!(doc.contains(&markdown()), "docs/performance.md must contain:\n{}", markdown());
    assert!(doc.contains(&pages_markdown()), "docs/performance.md must contain:\n{}", pages_markdown());
}

/// What `call` costs on the wire, and on which call it was counted. The first call prepares
/// the statements; a later one is what every later one costs. The pool hands a connection back
/// after the response has left, so a call that follows at once may find none idle and open
/// one: its set-up is not the call's cost, and the call is repeated until one runs on a
/// connection the pool already had.
async fn on_a_pooled_connection<F, Fut>(wire: &Wire, name: &str, call: F) -> (usize, Tally)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for calls in 1..=20 {
        wire.take();
        call().await;
        let tally = wire.take();
        if calls > 1 && tally.connects == 0 {
            return (calls, tally);
        }
    }
    panic!("{name}: the pool opened a connection for each of 20 calls")
}

#[tokio::test]
async fn each_route_stays_within_its_statement_and_round_trip_budget() {
    let (app, wire) = TestApp::spawn_counted().await;
    let admin = app.signed_in("admin@acme.example").await;
    assert_eq!(app.post_as(&admin, "/v1/orgs", json!({ "slug": "acme", "name": "Acme" })).await.status, 201);
    for budget in BUDGETS {
        let body: Value = budget.body.map_or(Value::Null, |b| serde_json::from_str(b).unwrap());
        let (app, admin, body) = (&app, &admin, &body);
        let (calls, tally) = on_a_pooled_connection(&wire, budget.route, || async move {
            let reply = app.call_as(budget.method, admin, budget.path, body.clone()).await;
            assert!(reply.status < 300, "{} answered {}: {}", budget.route, reply.status, reply.body);
        })
        .await;
        assert!(
            tally.statements <= budget.statements && tally.round_trips <= budget.round_trips,
            "{}: {} statements in {} round trips, over its budget of {} in {}:\n{}",
            budget.route,
            tally.statements,
            tally.round_trips,
            budget.statements,
            budget.round_trips,
            tally.log.join("\n")
        );
        if budget.method == "GET" {
            let writes: Vec<&String> = tally
                .log
                .iter()
                .filter(|s| ["insert", "update", "delete"].iter().any(|w| s.to_lowercase().contains(w)))
                .collect();
            assert!(writes.is_empty(), "{} writes: {writes:?}", budget.route);
        }
        println!(
            "{}: {} statements, {} round trips ({} prepares, {} pings; call {calls})",
            budget.route, tally.statements, tally.round_trips, tally.prepares, tally.pings
        );
    }
}

#[tokio::test]
async fn each_console_page_is_one_transaction_within_its_budget() {
    let (app, wire) = TestApp::spawn_counted().await;
    let admin = app.signed_in("admin@acme.example").await;
    assert_eq!(app.post_as(&admin, "/v1/orgs", json!({ "slug": "acme", "name": "Acme" })).await.status, 201);
    let text = json!({ "title": "Flu shots", "channel": "email", "body": "Book now.", "tags": ["flu"] });
    let created = app.post_as(&admin, "/v1/orgs/acme/content", text).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let purpose = app.post_as(&admin, "/v1/orgs/acme/purposes", json!({ "name": "News" })).await;
    let purpose = purpose.body["id"].as_str().unwrap().to_owned();
    let notice = app
        .post_as(&admin, &format!("/v1/orgs/acme/purposes/{purpose}/notices"), json!({ "text": "Now and then." }))
        .await;
    let contact = app.post_as(&admin, "/v1/orgs/acme/contacts", json!({ "address": "ana@example.com" })).await;
    let contact = contact.body["id"].as_str().unwrap().to_owned();
    let grant =
        json!({ "action": "grant", "purpose": purpose, "basis": "consent", "notice_sha256": notice.body["sha256"] });
    let granted = app.post_as(&admin, &format!("/v1/orgs/acme/contacts/{contact}/consent"), grant).await;
    assert_eq!(granted.status, 201, "{}", granted.body);
    let segment = json!({ "name": "Consenting", "definition": { "all": [{ "consent": "live", "purpose": purpose }] } });
    let segment = app.post_as(&admin, "/v1/orgs/acme/segments", segment).await;
    assert_eq!(segment.status, 201, "{}", segment.body);
    let segment = segment.body["segment"].as_str().unwrap().to_owned();
    let sender = json!({ "from_name": "Acme", "from_address": "news@acme.example", "postal_address": "1 Main St",
                         "dkim_domain": "acme.example", "selector": "s1" });
    let sender = app.post_as(&admin, "/v1/orgs/acme/senders", sender).await;
    assert_eq!(sender.status, 201, "{}", sender.body);
    let sender = sender.body["id"].as_str().unwrap().to_owned();
    let layout = json!({ "title": "Plain", "channel": "email_template",
                         "body": "{{content}}\n\n{{postal_address}} [Unsubscribe]({{unsubscribe_url}})" });
    let template = app.post_as(&admin, "/v1/orgs/acme/content", layout).await;
    assert_eq!(template.status, 201, "{}", template.body);
    let campaign = json!({ "name": "Flu shots", "content": { "item": id, "version": 1 },
                           "template": { "item": template.body["id"], "version": 1 },
                           "segment": { "id": segment, "version": 1 }, "sender": sender, "purpose": purpose,
                           "schedule": { "kind": "now" }, "fields": [] });
    let campaign = app.post_as(&admin, "/v1/orgs/acme/campaigns", campaign).await;
    assert_eq!(campaign.status, 201, "{}", campaign.body);
    let campaign = campaign.body["id"].as_str().unwrap().to_owned();
    let webhook = json!({ "url": "http://127.0.0.1:9/hooks", "events": ["message.sent"] });
    let webhook = app.post_as(&admin, "/v1/orgs/acme/webhooks", webhook).await;
    assert_eq!(webhook.status, 201, "{}", webhook.body);
    let webhook = webhook.body["webhook"]["id"].as_str().unwrap().to_owned();
    let mut imports = Vec::new();
    for _ in 0..2 {
        let url = format!("{}/v1/orgs/acme/imports", app.base);
        let csv = "email,name\nana@example.com,Ana\n";
        let uploaded = app.send(app.http.post(url).bearer_auth(&admin).body(csv)).await;
        assert_eq!(uploaded.status, 201, "{}", uploaded.body);
        imports.push(uploaded.body["import"]["id"].as_str().unwrap().to_owned());
    }
    let mapping = json!({ "mapping": [{ "field": "address" }, null] });
    let started = app.post_as(&admin, &format!("/v1/orgs/acme/imports/{}/start", imports[1]), mapping).await;
    assert_eq!(started.status, 202, "{}", started.body);
    let link = mos_auth::Unsubscribe {
        organization: crate::erasure::org_id(&app, "acme").await,
        contact: mos_domain::ContactId::parse(&contact).unwrap(),
        purpose: mos_domain::PurposeId::parse(&purpose).unwrap(),
        campaign: uuid::Uuid::now_v7(),
    };
    let unsubscribe = app.sealer.unsubscribe_tokens().issue(&link);
    let cookie = format!("__Host-mos_session={admin}");
    for budget in PAGES {
        let path = budget
            .path
            .replace("{id}", &id)
            .replace("{contact}", &contact)
            .replace("{purpose}", &purpose)
            .replace("{segment}", &segment)
            .replace("{sender}", &sender)
            .replace("{campaign}", &campaign)
            .replace("{webhook}", &webhook)
            .replace("{uploaded}", &imports[0])
            .replace("{started}", &imports[1])
            .replace("{unsubscribe}", &unsubscribe);
        let (app, cookie, path) = (&app, &cookie, &path);
        let (calls, tally) = on_a_pooled_connection(&wire, budget.page, || async move {
            let page = app.http.get(format!("{}{path}", app.base)).header("cookie", cookie).send().await.unwrap();
            let status = page.status().as_u16();
            let html = page.text().await.unwrap();
            assert_eq!(status, 200, "{}: {html}", budget.page);
        })
        .await;
        let transactions = tally.log.iter().filter(|s| s.to_lowercase().ends_with("begin")).count();
        assert_eq!(transactions, 1, "{}: one transaction:\n{}", budget.page, tally.log.join("\n"));
        assert!(
            tally.statements <= budget.statements && tally.round_trips <= budget.round_trips,
            "{}: {} statements in {} round trips, over its budget of {} in {}:\n{}",
            budget.page,
            tally.statements,
            tally.round_trips,
            budget.statements,
            budget.round_trips,
            tally.log.join("\n")
        );
        // Words, not substrings: a page reads `updated_at`.
        let writes: Vec<&String> = tally
            .log
            .iter()
            .filter(|s| {
                s.to_lowercase()
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .any(|w| ["insert", "update", "delete"].contains(&w))
            })
            .collect();
        // A page that shows personal data writes its audit record, and nothing else.
        let audit: Vec<&&String> = writes.iter().filter(|s| s.contains("insert into app.audit_logs")).collect();
        let expected = usize::from(budget.records_its_reads);
        assert!(
            writes.len() == expected && audit.len() == expected,
            "{} writes {writes:?}; it should write {expected} audit record",
            budget.page
        );
        println!(
            "{}: {} statements, {} round trips ({} prepares, {} pings; call {calls})",
            budget.page, tally.statements, tally.round_trips, tally.prepares, tally.pings
        );
    }
}

#[tokio::test]
async fn a_forged_click_or_unsubscribe_link_costs_no_query() {
    let (app, wire) = TestApp::spawn_counted().await;
    // Genuine in form, ids and length, but signed by another server's key; then garbage.
    let other = mos_auth::Sealer::from_base64(&mos_auth::Sealer::generate_key_base64(&mut rand::thread_rng())).unwrap();
    let (org, contact) = (mos_domain::OrgId::new(), mos_domain::ContactId::new());
    let click = mos_auth::Click { organization: org, campaign: mos_domain::ContentId::new(), contact, link: 0 };
    let unsubscribe = mos_auth::Unsubscribe {
        organization: org,
        contact,
        purpose: mos_domain::PurposeId::new(),
        campaign: uuid::Uuid::now_v7(),
    };
    let (click, unsubscribe) = (other.click_tokens().issue(&click), other.unsubscribe_tokens().issue(&unsubscribe));
    let garbage = "A".repeat(111);
    wire.take();
    for path in [
        format!("/c/{click}"),
        format!("/c/{garbage}"),
        "/c/x".to_owned(),
        format!("/u/{unsubscribe}"),
        "/u/x".to_owned(),
    ] {
        let reply = app.send(app.http.get(format!("{}{path}", app.base))).await;
        assert_eq!(reply.status, 404, "{path}");
    }
    let one_click = app
        .http
        .post(format!("{}/u/{unsubscribe}", app.base))
        .header("content-type", "application/x-www-form-urlencoded");
    assert_eq!(app.send(one_click.body("List-Unsubscribe=One-Click")).await.status, 404);
    let tally = wire.take();
    assert_eq!((tally.statements, tally.round_trips), (0, 0), "{:?}", tally.log);
}

#[tokio::test]
async fn a_campaigns_links_are_read_once_then_a_head_costs_no_query_and_a_click_only_its_record() {
    use mos_db::testing::campaign::{self, approved, launch, new_campaign, sent};
    let (app, wire) = TestApp::spawn_counted().await;
    let o = campaign::org(&app.pool, "acme", &app.sealer, &app.address_keys).await;
    campaign::consenting(&app.pool, &o, &app.address_keys, 3).await;
    let id = new_campaign(&app.pool, &o, &o.definition).await;
    approved(&app.pool, &o, id).await;
    launch(&app.pool, &o, id).await;
    let contacts = sent(&app.pool, &o, id, 10).await;
    let link = |n: usize, link: u16| {
        let click = mos_auth::Click { organization: o.org, campaign: id, contact: contacts[n], link };
        format!("{}/c/{}", app.base, app.sealer.click_tokens().issue(&click))
    };
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    wire.take();
    let first = app.send(http.get(link(0, 0))).await;
    assert_eq!(first.status, 302);
    let read = wire.take();
    assert!(
        read.log.iter().any(|s| s.contains("content_versions")),
        "the first click reads the bodies: {:?}",
        read.log
    );

    let scanned = app.send(http.head(link(1, 1))).await;
    assert_eq!(scanned.status, 302);
    let tally = wire.take();
    assert_eq!((tally.statements, tally.round_trips), (0, 0), "{:?}", tally.log);
    let clicked = app.send(http.get(link(2, 1))).await;
    assert_eq!(clicked.headers["location"], scanned.headers["location"]);
    let tally = wire.take();
    assert!(tally.log.iter().all(|s| !s.contains("content_versions")), "{:?}", tally.log);
    assert!(tally.log.iter().any(|s| s.contains("campaign_clicks")), "{:?}", tally.log);
}
