//! What each request costs the database, counted on the wire: statements (with `BEGIN` and
//! `COMMIT`) and round trips. Each budget is documented in docs/performance.md, and the test
//! keeps the two equal.

use serde_json::{json, Value};

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
}

#[tokio::test]
async fn each_route_stays_within_its_statement_and_round_trip_budget() {
    let (app, wire) = TestApp::spawn_counted().await;
    let admin = app.signed_in("admin@acme.example").await;
    assert_eq!(app.post_as(&admin, "/v1/orgs", json!({ "slug": "acme", "name": "Acme" })).await.status, 201);
    for budget in BUDGETS {
        let body: Value = budget.body.map_or(Value::Null, |b| serde_json::from_str(b).unwrap());
        // The first call prepares the statements; a later one is what every later one costs.
        // The pool hands a connection back after the response has left, so a call that follows
        // at once may find none idle and open one: its set-up is not the route's cost, and the
        // call is repeated until one runs on a connection the pool already had.
        let mut counted = None;
        for calls in 1..=20 {
            wire.take();
            let reply = app.call_as(budget.method, &admin, budget.path, body.clone()).await;
            assert!(reply.status < 300, "{} answered {}: {}", budget.route, reply.status, reply.body);
            let tally = wire.take();
            if calls > 1 && tally.connects == 0 {
                counted = Some((calls, tally));
                break;
            }
        }
        let (calls, tally) =
            counted.unwrap_or_else(|| panic!("{}: the pool opened a connection for each of 20 calls", budget.route));
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
