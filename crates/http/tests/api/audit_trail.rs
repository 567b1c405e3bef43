use std::collections::HashSet;

use serde_json::{json, Value};

use crate::TestApp;

/// Adds `n` records to the organization's log as the superuser, as if written over time.
async fn add_records(app: &TestApp, slug: &str, n: i64) {
    let mut su = app.db.superuser().await;
    sqlx::query(
        "insert into app.audit_logs (organization_id, id, action, resource_type, resource_id, outcome, user_agent, created_at)
         select o.id, (lpad(to_hex((extract(epoch from now()) * 1000)::bigint + g), 12, '0') || '7000' || '8000' || lpad(to_hex(g), 12, '0'))::uuid,
                case when g % 2 = 0 then 'doc.created' else 'doc.approved' end, 'document', 'doc-' || g,
                'success', '=cmd|'' /C calc''!A0', now() - make_interval(secs => g)
           from app.organizations o, generate_series(1, $2) g
          where o.slug = $1",
    )
    .bind(slug)
    .bind(n)
    .execute(&mut su)
    .await
    .unwrap();
}

#[tokio::test]
async fn pages_follow_the_cursor_through_every_record_once_newest_first() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    add_records(&app, "acme", 120).await;
    let mut seen = Vec::new();
    let mut url = "/v1/orgs/acme/audit-logs?limit=50&resource_type=document".to_owned();
    loop {
        let page = app.get_as(&org.admin, &url).await.body;
        let items = page["items"].as_array().unwrap();
        seen.extend(
            items.iter().map(|r| (r["created_at"].as_str().unwrap().to_owned(), r["id"].as_str().unwrap().to_owned())),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("/v1/orgs/acme/audit-logs?limit=50&resource_type=document&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 120);
    assert_eq!(seen.iter().map(|(_, id)| id).collect::<HashSet<_>>().len(), 120, "no record twice");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
}

#[tokio::test]
async fn filters_narrow_by_action_actor_resource_and_time() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    add_records(&app, "acme", 10).await;
    let approved = app.get_as(&org.admin, "/v1/orgs/acme/audit-logs?action=doc.approved").await.body;
    assert_eq!(approved["items"].as_array().unwrap().len(), 5);
    let one = app.get_as(&org.admin, "/v1/orgs/acme/audit-logs?resource_type=document&resource_id=doc-3").await.body;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);

    let me = app.get_as(&org.admin, "/v1/me").await.body["id"].as_str().unwrap().to_owned();
    let mine = app.get_as(&org.admin, &format!("/v1/orgs/acme/audit-logs?actor={me}")).await.body;
    let actions: HashSet<&str> =
        mine["items"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert!(
        actions.contains("org.created") && actions.contains("invitation.created") && !actions.contains("doc.created"),
        "{actions:?}"
    );

    let window =
        app.get_as(&org.admin, "/v1/orgs/acme/audit-logs?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z").await.body;
    assert_eq!(window["items"], json!([]));
    for bad in ["limit=0", "limit=501", "cursor=garbage", "from=yesterday", "colour=blue"] {
        let reply = app.get_as(&org.admin, &format!("/v1/orgs/acme/audit-logs?{bad}")).await;
        assert_eq!((reply.status, reply.problem_type()), (422, "urn:mos:problem:invalid_field"), "{bad}");
    }
}

#[tokio::test]
async fn exports_stream_every_record_as_ndjson_or_csv_with_formulas_defused() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    add_records(&app, "acme", 3000).await;
    let total = 3000 + 1 + 1 + 3 * 3; // org and admin, then an invitation, acceptance and membership per member

    let response = app
        .http
        .get(format!("{}/v1/orgs/acme/audit-logs/export", app.base))
        .bearer_auth(&org.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert!(response.headers().get("content-length").is_none(), "streamed, not buffered");
    let body = response.text().await.unwrap();
    let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), total);

    let response = app
        .http
        .get(format!("{}/v1/orgs/acme/audit-logs/export?format=csv&action=doc.created", app.base))
        .bearer_auth(&org.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = response.text().await.unwrap();
    let rows: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(rows[0].starts_with("id,created_at,actor,action"));
    assert_eq!(rows.len(), 1 + 1500);
    assert!(rows[1].contains(",'=cmd|' /C calc'!A0,"), "a formula is defused: {}", rows[1]);

    let unknown = app.get_as(&org.admin, "/v1/orgs/acme/audit-logs/export?format=xlsx").await;
    assert_eq!(unknown.status, 422);
}

#[tokio::test]
async fn one_tenants_admin_never_sees_another_tenants_records() {
    let app = TestApp::spawn().await;
    let acme = app.org_with_every_role("acme").await;
    let globex = app.org_with_every_role("globex").await;
    add_records(&app, "globex", 5).await;
    let acme_page = app.get_as(&acme.admin, "/v1/orgs/acme/audit-logs?limit=500").await.body;
    let acme_records = acme_page["items"].as_array().unwrap();
    assert!(acme_records.iter().any(|r| r["action"] == "org.created"), "acme's own records are listed: {acme_page}");
    assert!(acme_records.iter().all(|r| r["action"] != "doc.created" && r["action"] != "doc.approved"));
    assert_eq!(app.get_as(&acme.admin, "/v1/orgs/globex/audit-logs").await.status, 404);
    let export = app
        .http
        .get(format!("{}/v1/orgs/globex/audit-logs/export", app.base))
        .bearer_auth(&acme.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 404);
    assert_eq!(
        app.get_as(&globex.admin, "/v1/orgs/globex/audit-logs?resource_type=document").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn an_admin_sees_the_chain_intact_and_then_the_link_a_superuser_changed() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    mos_db::chain::seal(&app.pool, None, chrono::Duration::minutes(5)).await.unwrap();
    let state = app.get_as(&org.admin, "/v1/orgs/acme/audit-logs/chain").await;
    assert_eq!(state.status, 200, "{}", state.body);
    assert_eq!(state.body["intact"], true, "{}", state.body);
    let sealed = state.body["records"].as_i64().unwrap();
    assert!(sealed >= 8, "the organization's records are sealed: {}", state.body);
    assert_eq!(state.body["head_seq"].as_i64(), Some(sealed));
    assert_eq!(app.get_as(&org.viewer, "/v1/orgs/acme/audit-logs/chain").await.status, 403);

    let acme: uuid::Uuid = sqlx::query_scalar("select id from app.organizations where slug = 'acme'")
        .fetch_one(&mut app.db.superuser().await)
        .await
        .unwrap();
    app.db
        .tamper(
            acme,
            &["audit_logs"],
            &format!("update {{audit_logs}} set action = 'org.renamed' where organization_id = '{acme}' and action = 'org.created'"),
        )
        .await;
    let state = app.get_as(&org.admin, "/v1/orgs/acme/audit-logs/chain").await.body;
    assert_eq!(state["intact"], false, "{state}");
    assert_eq!(state["broken"]["reason"], "changed", "{state}");
}
