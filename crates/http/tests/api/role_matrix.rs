//! Who may call which tenant route, written down by hand: the table below is what a reviewer
//! reads and signs off, and it is held against the live server (each role calls each route)
//! and against the roles the OpenAPI document states. It is deliberately not read from the
//! permission table or the route list that enforce access: a wrong cell there must make this
//! test fail, not move with it.

use std::collections::BTreeSet;

use mos_domain::Role;
use serde_json::json;

use crate::orgs::{documented_tenant_operations, RANDOM_ID};
use crate::TestApp;

const YES: bool = true;
const NO: bool = false;

/// The columns of [`MATRIX`], in the order of its rows' cells.
const ROLES: [&str; 4] = ["ADMIN", "REVIEWER", "CREATOR", "VIEWER"];

/// Every tenant route, and whether each role may use it.
#[rustfmt::skip]
const MATRIX: &[(&str, &str, [bool; 4])] = &[
    //                                                           ADMIN REVIEWER CREATOR VIEWER
    ("get",    "/v1/orgs/{slug}",                                 [YES,  YES,     YES,    YES]),
    ("patch",  "/v1/orgs/{slug}",                                 [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/members",                         [YES,  YES,     YES,    YES]),
    ("patch",  "/v1/orgs/{slug}/members/{user_id}",               [YES,  NO,      NO,     NO ]),
    ("delete", "/v1/orgs/{slug}/members/{user_id}",               [YES,  NO,      NO,     NO ]),
    ("post",   "/v1/orgs/{slug}/invitations",                     [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/invitations",                     [YES,  NO,      NO,     NO ]),
    ("delete", "/v1/orgs/{slug}/invitations/{id}",                [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/audit-logs",                      [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/audit-logs/export",               [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/audit-logs/chain",                [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/content",                         [YES,  YES,     YES,    YES]),
    ("post",   "/v1/orgs/{slug}/content",                         [YES,  NO,      YES,    NO ]),
    ("get",    "/v1/orgs/{slug}/content/{id}",                    [YES,  YES,     YES,    YES]),
    ("patch",  "/v1/orgs/{slug}/content/{id}",                    [YES,  NO,      YES,    NO ]),
    ("get",    "/v1/orgs/{slug}/content/{id}/versions",           [YES,  YES,     YES,    YES]),
    ("get",    "/v1/orgs/{slug}/content/{id}/versions/{number}",  [YES,  YES,     YES,    YES]),
    ("get",    "/v1/orgs/{slug}/content/{id}/diff",               [YES,  YES,     YES,    YES]),
    ("get",    "/v1/orgs/{slug}/content/{id}/history",            [YES,  YES,     YES,    YES]),
    ("get",    "/v1/orgs/{slug}/content/{id}/first-use",          [YES,  YES,     YES,    YES]),
    ("get",    "/v1/orgs/{slug}/content/{id}/first-use/evidence", [YES,  YES,     YES,    YES]),
    ("post",   "/v1/orgs/{slug}/content/{id}/submit",             [YES,  NO,      YES,    NO ]),
    ("post",   "/v1/orgs/{slug}/content/{id}/withdraw",           [YES,  NO,      YES,    NO ]),
    ("post",   "/v1/orgs/{slug}/content/{id}/comments",           [YES,  YES,     NO,     NO ]),
    ("post",   "/v1/orgs/{slug}/content/{id}/request-changes",    [YES,  YES,     NO,     NO ]),
    ("post",   "/v1/orgs/{slug}/content/{id}/approve",            [YES,  YES,     NO,     NO ]),
    ("post",   "/v1/orgs/{slug}/content/{id}/publish",            [YES,  NO,      NO,     NO ]),
    ("post",   "/v1/orgs/{slug}/content/{id}/archive",            [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/audience",                        [YES,  YES,     YES,    YES]),
    ("get",    "/v1/orgs/{slug}/purposes",                        [YES,  YES,     YES,    YES]),
    ("post",   "/v1/orgs/{slug}/purposes",                        [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/purposes/{id}/notices",           [YES,  YES,     YES,    YES]),
    ("post",   "/v1/orgs/{slug}/purposes/{id}/notices",           [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/attributes",                      [YES,  YES,     YES,    YES]),
    ("post",   "/v1/orgs/{slug}/attributes",                      [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/contacts",                        [YES,  NO,      YES,    NO ]),
    ("post",   "/v1/orgs/{slug}/contacts",                        [YES,  NO,      YES,    NO ]),
    ("get",    "/v1/orgs/{slug}/contacts/{id}",                   [YES,  NO,      YES,    NO ]),
    ("patch",  "/v1/orgs/{slug}/contacts/{id}",                   [YES,  NO,      YES,    NO ]),
    ("post",   "/v1/orgs/{slug}/contacts/{id}/consent",           [YES,  NO,      YES,    NO ]),
    ("post",   "/v1/orgs/{slug}/contacts/{id}/erase",             [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/contacts/{id}/export",            [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/contacts/{id}/consent-receipt",   [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/suppressions",                    [YES,  NO,      YES,    NO ]),
    ("post",   "/v1/orgs/{slug}/suppressions",                    [YES,  NO,      YES,    NO ]),
    ("post",   "/v1/orgs/{slug}/suppressions/check",              [YES,  NO,      YES,    NO ]),
    ("get",    "/v1/orgs/{slug}/segments",                        [YES,  YES,     YES,    YES]),
    ("post",   "/v1/orgs/{slug}/segments",                        [YES,  NO,      YES,    NO ]),
    ("post",   "/v1/orgs/{slug}/segments/count",                  [YES,  YES,     YES,    YES]),
    ("post",   "/v1/orgs/{slug}/segments/preview",                [YES,  NO,      YES,    NO ]),
    ("get",    "/v1/orgs/{slug}/segments/{id}",                   [YES,  YES,     YES,    YES]),
    ("post",   "/v1/orgs/{slug}/segments/{id}/versions",          [YES,  NO,      YES,    NO ]),
    ("get",    "/v1/orgs/{slug}/segments/{id}/versions/{number}", [YES,  YES,     YES,    YES]),
    ("get",    "/v1/orgs/{slug}/imports",                         [YES,  NO,      YES,    NO ]),
    ("post",   "/v1/orgs/{slug}/imports",                         [YES,  NO,      YES,    NO ]),
    ("get",    "/v1/orgs/{slug}/imports/{id}",                    [YES,  NO,      YES,    NO ]),
    ("get",    "/v1/orgs/{slug}/imports/{id}/preview",            [YES,  NO,      YES,    NO ]),
    ("post",   "/v1/orgs/{slug}/imports/{id}/start",              [YES,  NO,      YES,    NO ]),
    ("post",   "/v1/orgs/{slug}/imports/{id}/cancel",             [YES,  NO,      YES,    NO ]),
    ("get",    "/v1/orgs/{slug}/imports/{id}/problems",           [YES,  NO,      YES,    NO ]),
    ("get",    "/v1/orgs/{slug}/senders",                         [YES,  NO,      YES,    NO ]),
    ("post",   "/v1/orgs/{slug}/senders",                         [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/senders/{id}",                    [YES,  NO,      YES,    NO ]),
    ("patch",  "/v1/orgs/{slug}/senders/{id}",                    [YES,  NO,      NO,     NO ]),
    ("post",   "/v1/orgs/{slug}/senders/{id}/keys",               [YES,  NO,      NO,     NO ]),
    ("post",   "/v1/orgs/{slug}/senders/{id}/keys/{key}/retire",  [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/campaigns",                       [YES,  YES,     YES,    YES]),
    ("post",   "/v1/orgs/{slug}/campaigns",                       [YES,  NO,      YES,    NO ]),
    ("get",    "/v1/orgs/{slug}/campaigns/{id}",                  [YES,  YES,     YES,    YES]),
    ("get",    "/v1/orgs/{slug}/campaigns/{id}/report.csv",       [YES,  YES,     YES,    YES]),
    ("put",    "/v1/orgs/{slug}/campaigns/{id}",                  [YES,  NO,      YES,    NO ]),
    ("post",   "/v1/orgs/{slug}/campaigns/{id}/launch",           [YES,  NO,      NO,     NO ]),
    ("post",   "/v1/orgs/{slug}/campaigns/{id}/pause",            [YES,  NO,      NO,     NO ]),
    ("post",   "/v1/orgs/{slug}/campaigns/{id}/resume",           [YES,  NO,      NO,     NO ]),
    ("post",   "/v1/orgs/{slug}/campaigns/{id}/cancel",           [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/campaigns/{id}/messages",         [YES,  YES,     YES,    YES]),
    ("get",    "/v1/orgs/{slug}/campaigns/{id}/preview",          [YES,  NO,      YES,    NO ]),
    ("get",    "/v1/orgs/{slug}/sending-breaker",                 [YES,  YES,     YES,    YES]),
    ("patch",  "/v1/orgs/{slug}/sending-breaker",                 [YES,  NO,      NO,     NO ]),
    ("post",   "/v1/orgs/{slug}/sending-breaker/resume",          [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/reports/sending.csv",             [YES,  YES,     YES,    YES]),
    ("get",    "/v1/orgs/{slug}/webhooks",                        [YES,  NO,      NO,     NO ]),
    ("post",   "/v1/orgs/{slug}/webhooks",                        [YES,  NO,      NO,     NO ]),
    ("get",    "/v1/orgs/{slug}/webhooks/{id}",                   [YES,  NO,      NO,     NO ]),
    ("post",   "/v1/orgs/{slug}/webhooks/{id}/disable",           [YES,  NO,      NO,     NO ]),
    ("post",   "/v1/orgs/{slug}/webhooks/{id}/enable",            [YES,  NO,      NO,     NO ]),
    ("post",   "/v1/orgs/{slug}/webhooks/{id}/rotate-secret",     [YES,  NO,      NO,     NO ]),
    // Last: after it, the roles that may leave are no longer members.
    ("post",   "/v1/orgs/{slug}/leave",                           [YES,  YES,     YES,    YES]),
];

/// The roles of `row` that may use its route.
fn allowed(row: &[bool; 4]) -> BTreeSet<&'static str> {
    ROLES.iter().zip(row).filter(|(_, yes)| **yes).map(|(role, _)| *role).collect()
}

#[tokio::test]
async fn every_role_gets_exactly_what_the_written_matrix_allows_on_every_tenant_route() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    // A real item, so that an allowed read of it answers 200 and not only "not found".
    let created = app
        .post_as(
            &org.creator,
            "/v1/orgs/acme/content",
            json!({ "title": "Flu shots", "channel": "email", "audience": "", "body": "Book now.", "tags": [] }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let item = created.body["id"].as_str().unwrap().to_owned();

    let mut cells = 0;
    for (method, path, row) in MATRIX {
        let url = path
            .replace("{slug}", &org.slug)
            .replace("{user_id}", RANDOM_ID)
            .replace("{key}", RANDOM_ID)
            .replace("{id}", if path.contains("/content/") { &item } else { RANDOM_ID })
            .replace("{number}", "1");
        for (role, token) in org.by_role() {
            let may = allowed(row).contains(role);
            let reply = app.call_as(method, token, &url, json!({})).await;
            if may {
                assert!(
                    !matches!(reply.status, 401 | 403) && reply.status < 500,
                    "{role} {method} {path} is allowed by the matrix, got {}: {}",
                    reply.status,
                    reply.body
                );
            } else {
                assert_eq!(
                    (reply.status, reply.problem_type()),
                    (403, "urn:mos:problem:forbidden"),
                    "{role} {method} {path} is refused by the matrix: {}",
                    reply.body
                );
            }
            if may && *method == "get" && path.ends_with("/content/{id}") {
                assert_eq!(reply.status, 200, "{role} reads the item: {}", reply.body);
            }
            cells += 1;
        }
    }
    assert_eq!(cells, MATRIX.len() * ROLES.len());
    let gone = app.get_as(&org.viewer, "/v1/orgs/acme").await;
    assert_eq!(gone.status, 404, "the VIEWER's allowed leave took effect: {}", gone.body);
}

#[tokio::test]
async fn the_openapi_document_states_exactly_the_written_matrix() {
    let app = TestApp::spawn().await;
    assert_eq!(ROLES, Role::ALL.map(Role::as_str), "the matrix has a column for every role, in order");
    let documented = documented_tenant_operations(&app).await;
    let written: BTreeSet<(String, String)> =
        MATRIX.iter().map(|(method, path, _)| ((*method).to_owned(), (*path).to_owned())).collect();
    let stated: BTreeSet<(String, String)> = documented.iter().map(|(m, p, _)| (m.clone(), p.clone())).collect();
    assert_eq!(written.len(), MATRIX.len(), "each route once in the matrix");
    assert_eq!(stated, written, "the document lists exactly the routes of the matrix");
    for (method, path, roles) in &documented {
        let (_, _, row) = MATRIX.iter().find(|(m, p, _)| m == method && p == path).unwrap();
        let roles: BTreeSet<&str> = roles.iter().map(String::as_str).collect();
        assert_eq!(roles, allowed(row), "{method} {path}");
    }
}
