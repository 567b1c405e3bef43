use chrono::Duration;
use serde_json::{json, Value};

use crate::{token_in, TestApp, PASSWORD};

pub(crate) const RANDOM_ID: &str = "0190d6c2-0000-7000-8000-000000000000";

/// Every tenant operation of the OpenAPI document with the roles its description says may use it.
pub(crate) async fn documented_tenant_operations(app: &TestApp) -> Vec<(String, String, Vec<String>)> {
    let doc = app.send(app.http.get(format!("{}/openapi.json", app.base))).await.body;
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/orgs/{slug}") {
            continue;
        }
        for (method, operation) in item.as_object().unwrap() {
            let description = operation["description"].as_str().unwrap_or_default();
            let roles = description
                .split("(roles: ")
                .nth(1)
                .and_then(|rest| rest.split(')').next())
                .unwrap_or_else(|| panic!("{method} {path} does not say which roles may use it: {description:?}"));
            operations.push((method.clone(), path.clone(), roles.split(", ").map(str::to_owned).collect()));
        }
    }
    // Leaving last, so that every other call still finds each member in the organization.
    operations.sort_by_key(|(_, path, _)| path.ends_with("/leave"));
    operations
}

#[tokio::test]
async fn a_non_member_gets_404_on_every_tenant_endpoint_exactly_as_for_a_slug_that_does_not_exist() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let stranger = app.signed_in("stranger@example.com").await;
    for (method, path, _) in documented_tenant_operations(&app).await {
        for slug in [org.slug.as_str(), "no-such-org", "NOT A SLUG"] {
            let url = path.replace("{slug}", slug).replace("{user_id}", RANDOM_ID).replace("{id}", RANDOM_ID);
            let reply = app.call_as(&method, &stranger, &url, json!({})).await;
            assert_eq!((reply.status, reply.problem_type()), (404, "urn:mos:problem:not_found"), "{method} {url}");
        }
    }
}

#[tokio::test]
async fn creating_an_organization_makes_its_creator_admin_and_slugs_are_unique_and_well_formed() {
    let app = TestApp::spawn().await;
    let ada = app.signed_in("ada@example.com").await;
    let created = app.post_as(&ada, "/v1/orgs", json!({ "slug": "acme", "name": "  Acme Health " })).await;
    assert_eq!((created.status, created.body["name"].as_str()), (201, Some("Acme Health")));
    let mine = app.get_as(&ada, "/v1/orgs").await.body["items"].clone();
    assert_eq!((mine[0]["slug"].as_str(), mine[0]["role"].as_str()), (Some("acme"), Some("ADMIN")));

    let bob = app.signed_in("bob@example.com").await;
    let taken = app.post_as(&bob, "/v1/orgs", json!({ "slug": "acme", "name": "Other" })).await;
    assert_eq!((taken.status, taken.problem_type()), (409, "urn:mos:problem:conflict"));
    let bad = app.post_as(&bob, "/v1/orgs", json!({ "slug": "Acme--Health", "name": "Other" })).await;
    assert_eq!((bad.status, bad.body["field"].as_str()), (422, Some("slug")));
    assert_eq!(app.get_as(&bob, "/v1/orgs").await.body, json!({ "items": [], "next_cursor": null }));
}

#[tokio::test]
async fn my_organizations_come_a_page_at_a_time_by_slug() {
    let app = TestApp::spawn().await;
    let ada = app.signed_in("ada@example.com").await;
    let bob = app.signed_in("bob@example.com").await;
    for i in (0..7).rev() {
        let created = app.post_as(&ada, "/v1/orgs", json!({ "slug": format!("org-{i}"), "name": "Org" })).await;
        assert_eq!(created.status, 201);
    }
    app.post_as(&bob, "/v1/orgs", json!({ "slug": "org-3a", "name": "Not Ada's" })).await;

    let mut seen = Vec::new();
    let mut url = "/v1/orgs?limit=3".to_owned();
    loop {
        let page = app.get_as(&ada, &url).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|o| o["slug"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => url = format!("/v1/orgs?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("org-{i}")).collect();
    assert_eq!(seen, expected, "every one once, in order, and nobody else's");

    for bad in ["/v1/orgs?limit=0", "/v1/orgs?limit=501", "/v1/orgs?cursor=%21%21", "/v1/orgs?page=2"] {
        let refused = app.get_as(&ada, bad).await;
        assert_eq!(refused.status, 422, "{bad}: {}", refused.body);
    }
}

#[tokio::test]
async fn the_last_admin_can_be_neither_demoted_nor_removed_nor_leave() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let members = app.get_as(&org.admin, "/v1/orgs/acme/members").await.body;
    let admin_id = members.as_array().unwrap().iter().find(|m| m["role"] == "ADMIN").unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let demote = app
        .call_as("patch", &org.admin, &format!("/v1/orgs/acme/members/{admin_id}"), json!({ "role": "VIEWER" }))
        .await;
    assert_eq!((demote.status, demote.problem_type()), (409, "urn:mos:problem:last_admin"));
    let remove = app.call_as("delete", &org.admin, &format!("/v1/orgs/acme/members/{admin_id}"), json!({})).await;
    assert_eq!(remove.problem_type(), "urn:mos:problem:last_admin");
    let leave = app.post_as(&org.admin, "/v1/orgs/acme/leave", json!({})).await;
    assert_eq!(leave.problem_type(), "urn:mos:problem:last_admin");
    assert_eq!(app.post_as(&org.viewer, "/v1/orgs/acme/leave", json!({})).await.status, 204);
    assert_eq!(app.get_as(&org.viewer, "/v1/orgs/acme").await.status, 404, "gone after leaving");
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_exactly_one_admin() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let members = app.get_as(&org.admin, "/v1/orgs/acme/members").await.body;
    let id_of = |role: &str| {
        members.as_array().unwrap().iter().find(|m| m["role"] == role).unwrap()["user_id"].as_str().unwrap().to_owned()
    };
    let mut pair = [(org.admin.clone(), id_of("ADMIN")), (org.reviewer.clone(), id_of("REVIEWER"))];
    // Several rounds, since the two requests meet in a different order each time.
    for _ in 0..8 {
        let [(winner, winner_id), (other, other_id)] = &pair;
        let promoted = app
            .call_as("patch", winner, &format!("/v1/orgs/acme/members/{other_id}"), json!({ "role": "ADMIN" }))
            .await;
        assert_eq!(promoted.status, 204, "{}", promoted.body);
        app.post_as(winner, "/v1/me/reauthenticate", json!({ "password": PASSWORD })).await;
        app.post_as(other, "/v1/me/reauthenticate", json!({ "password": PASSWORD })).await;

        let (other_path, winner_path) =
            (format!("/v1/orgs/acme/members/{other_id}"), format!("/v1/orgs/acme/members/{winner_id}"));
        let first = app.call_as("patch", winner, &other_path, json!({ "role": "VIEWER" }));
        let second = app.call_as("patch", other, &winner_path, json!({ "role": "VIEWER" }));
        let (a, b) = tokio::join!(first, second);
        // One wins. The other is refused either by the last-admin rule (409), or because the
        // winner's change reached it first and it is no longer an ADMIN (403).
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert!(statuses == [204, 403] || statuses == [204, 409], "{statuses:?}: {} {}", a.body, b.body);
        let admins = app.get_as(&org.creator, "/v1/orgs/acme/members").await.body;
        let admins: Vec<String> = admins
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "ADMIN")
            .map(|m| m["user_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(admins.len(), 1);
        if admins[0] != pair[0].1 {
            pair.swap(0, 1);
        }
    }
}

#[tokio::test]
async fn changing_a_role_needs_a_recent_sign_in_and_is_audited_with_before_and_after() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let members = app.get_as(&org.admin, "/v1/orgs/acme/members").await.body;
    let viewer_id = members.as_array().unwrap().iter().find(|m| m["role"] == "VIEWER").unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        app.clock.advance(Duration::minutes(6));
        app.get_as(&org.admin, "/v1/me").await;
    }
    let path = format!("/v1/orgs/acme/members/{viewer_id}");
    let stale = app.call_as("patch", &org.admin, &path, json!({ "role": "CREATOR" })).await;
    assert_eq!(stale.problem_type(), "urn:mos:problem:reauthentication_required");
    assert_eq!(app.post_as(&org.admin, "/v1/me/reauthenticate", json!({ "password": PASSWORD })).await.status, 204);
    assert_eq!(app.call_as("patch", &org.admin, &path, json!({ "role": "CREATOR" })).await.status, 204);

    let changed = app.get_as(&org.admin, "/v1/orgs/acme/audit-logs?action=member.role_changed").await.body;
    let record = &changed["items"][0];
    assert_eq!(record["resource_id"], viewer_id.as_str());
    assert_eq!(record["changes"], json!({ "role": { "before": "VIEWER", "after": "CREATOR" } }));
}

#[tokio::test]
async fn setting_the_role_a_member_already_has_changes_and_records_nothing() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let members = app.get_as(&org.admin, "/v1/orgs/acme/members").await.body;
    let viewer_id = members.as_array().unwrap().iter().find(|m| m["role"] == "VIEWER").unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/orgs/acme/members/{viewer_id}");
    let trail = "/v1/orgs/acme/audit-logs?action=member.role_changed";

    assert_eq!(app.call_as("patch", &org.admin, &path, json!({ "role": "VIEWER" })).await.status, 204);
    assert_eq!(app.get_as(&org.admin, trail).await.body["items"], json!([]), "no record whose before equals its after");

    // A real change after it is recorded, once: the filter above would have found one.
    assert_eq!(app.call_as("patch", &org.admin, &path, json!({ "role": "CREATOR" })).await.status, 204);
    let changed = app.get_as(&org.admin, trail).await.body;
    assert_eq!(changed["items"].as_array().map(Vec::len), Some(1), "{changed}");
    assert_eq!(changed["items"][0]["changes"], json!({ "role": { "before": "VIEWER", "after": "CREATOR" } }));
}

#[tokio::test]
async fn an_invitation_is_for_one_address_single_use_and_expires_after_seven_days() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin@example.com").await;
    app.post_as(&admin, "/v1/orgs", json!({ "slug": "acme", "name": "Acme" })).await;

    // The invitee has no account yet when invited.
    let mail = app.invite(&admin, "acme", "grace@example.com", "CREATOR").await;
    assert!(mail.contains("as CREATOR") && mail.contains("/accept-invitation?token="), "{mail}");
    let token = token_in(&mail);
    let eve = app.signed_in("eve@example.com").await;
    let stolen = app.post_as(&eve, "/v1/invitations/accept", json!({ "token": token })).await;
    assert_eq!((stolen.status, stolen.problem_type()), (403, "urn:mos:problem:invitation_for_another_address"));

    let grace = app.signed_in("grace@example.com").await;
    let accepted = app.post_as(&grace, "/v1/invitations/accept", json!({ "token": token })).await;
    assert_eq!((accepted.status, accepted.body["role"].as_str()), (200, Some("CREATOR")));
    let again = app.post_as(&grace, "/v1/invitations/accept", json!({ "token": token })).await;
    assert_eq!(again.problem_type(), "urn:mos:problem:invalid_token", "single use");

    let late = token_in(&app.invite(&admin, "acme", "heidi@example.com", "VIEWER").await);
    app.clock.advance(Duration::days(7) + Duration::seconds(1));
    let heidi = app.signed_in("heidi@example.com").await;
    assert_eq!(
        app.post_as(&heidi, "/v1/invitations/accept", json!({ "token": late })).await.problem_type(),
        "urn:mos:problem:invalid_token"
    );
}

#[tokio::test]
async fn revoking_or_reinviting_voids_an_invitation() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin@example.com").await;
    app.post_as(&admin, "/v1/orgs", json!({ "slug": "acme", "name": "Acme" })).await;
    let first = token_in(&app.invite(&admin, "acme", "grace@example.com", "VIEWER").await);
    let second = token_in(&app.invite(&admin, "acme", "grace@example.com", "REVIEWER").await);
    let pending = app.get_as(&admin, "/v1/orgs/acme/invitations").await.body;
    assert_eq!(pending.as_array().unwrap().len(), 1);
    assert_eq!(pending[0]["role"], "REVIEWER");

    let grace = app.signed_in("grace@example.com").await;
    assert_eq!(app.post_as(&grace, "/v1/invitations/accept", json!({ "token": first })).await.status, 400, "replaced");
    let id = pending[0]["id"].as_str().unwrap();
    assert_eq!(app.call_as("delete", &admin, &format!("/v1/orgs/acme/invitations/{id}"), json!({})).await.status, 204);
    assert_eq!(app.post_as(&grace, "/v1/invitations/accept", json!({ "token": second })).await.status, 400, "revoked");
    assert_eq!(app.get_as(&admin, "/v1/orgs/acme/invitations").await.body, json!([]));
}

#[tokio::test]
async fn requiring_two_factor_blocks_members_without_it_until_they_enroll() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let refused = app.call_as("patch", &org.admin, "/v1/orgs/acme", json!({ "require_two_factor": true })).await;
    assert_eq!(refused.status, 409, "an admin without two-factor would lock themselves out");

    let admin = enroll(&app, &org.admin).await;
    let set = app.call_as("patch", &admin, "/v1/orgs/acme", json!({ "require_two_factor": true })).await;
    assert_eq!((set.status, set.body["require_two_factor"].as_bool()), (200, Some(true)), "{}", set.body);

    let blocked = app.get_as(&org.viewer, "/v1/orgs/acme/members").await;
    assert_eq!((blocked.status, blocked.problem_type()), (403, "urn:mos:problem:two_factor_required"));
    let viewer = enroll(&app, &org.viewer).await;
    assert_eq!(app.get_as(&viewer, "/v1/orgs/acme/members").await.status, 200);
    assert_eq!(app.get_as(&admin, "/v1/orgs/acme").await.status, 200);

    let creator_leaves = app.post_as(&org.creator, "/v1/orgs/acme/leave", json!({})).await;
    assert_eq!(creator_leaves.status, 204, "leaving is always possible: {}", creator_leaves.body);
    let members = app.get_as(&admin, "/v1/orgs/acme/members").await.body;
    assert!(members.as_array().unwrap().iter().all(|m| m["role"] != "CREATOR"), "{members}");
    let blocked_still = app.get_as(&org.reviewer, "/v1/orgs/acme").await;
    assert_eq!(blocked_still.problem_type(), "urn:mos:problem:two_factor_required", "and nothing else is");
}

/// Turns two-factor on for the user of `token`; their new session token.
pub(crate) async fn enroll(app: &TestApp, token: &str) -> String {
    enroll_totp(app, token).await.0
}

/// Turns two-factor on for the account of `token`: the session that replaced it, and the
/// authenticator app's key.
pub(crate) async fn enroll_totp(app: &TestApp, token: &str) -> (String, mos_auth::Totp) {
    let enrollment: Value = app.post_as(token, "/v1/me/two-factor/setup", json!({})).await.body;
    let secret = data_encoding::BASE32_NOPAD.decode(enrollment["secret"].as_str().unwrap().as_bytes()).unwrap();
    let totp = mos_auth::Totp::from_bytes(&secret).unwrap();
    let code = totp.code(mos_auth::totp::step_at(mos_auth::Clock::now(&app.clock).timestamp()));
    let confirmed = app.post_as(token, "/v1/me/two-factor/confirm", json!({ "code": code })).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    (confirmed.session_token(), totp)
}

#[tokio::test]
async fn a_denied_attempt_is_recorded_in_the_tenants_audit_trail() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    assert_eq!(app.get_as(&org.viewer, "/v1/orgs/acme/audit-logs").await.status, 403);
    let denied = app.get_as(&org.admin, "/v1/orgs/acme/audit-logs?action=access.denied").await.body;
    let record = &denied["items"][0];
    assert_eq!(
        (record["outcome"].as_str(), record["metadata"]["permission"].as_str()),
        (Some("denied"), Some("audit.read"))
    );
    assert_eq!(record["metadata"]["path"], "/v1/orgs/acme/audit-logs");
}

/// The number of `app_user` backends of this test's database waiting on a lock, on any node.
async fn waiting_on_a_lock(app: &TestApp) -> i64 {
    let mut conn = app.db.superuser().await;
    let activity = if mos_db::testing::backend() == mos_db::testing::Backend::Citus {
        "citus_stat_activity"
    } else {
        "pg_stat_activity"
    };
    let waiting = format!(
        "select count(*) from {activity}
          where datname = current_database() and usename = 'app_user' and wait_event_type = 'Lock'"
    );
    sqlx::query_scalar(&waiting).fetch_one(&mut conn).await.unwrap()
}

#[tokio::test]
async fn a_role_change_waits_for_a_change_its_member_was_already_allowed_and_the_next_request_sees_it() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let admin_id = app.get_as(&org.admin, "/v1/me").await.body["id"].as_str().unwrap().to_owned();
    let org_id = app.get_as(&org.admin, "/v1/orgs/acme").await.body["id"].as_str().unwrap().to_owned();

    // Another transaction holds the organization's row, so that the rename, once authorized,
    // waits inside its own transaction.
    let mut blocker = app.db.superuser().await;
    sqlx::raw_sql("begin; select 1 from app.organizations where slug = 'acme' for update")
        .execute(&mut blocker)
        .await
        .unwrap();
    let rename = app
        .http
        .patch(format!("{}/v1/orgs/acme", app.base))
        .bearer_auth(&org.admin)
        .json(&json!({ "name": "Renamed" }));
    let rename = tokio::spawn(rename.send());
    let waits = async {
        while waiting_on_a_lock(&app).await == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), waits)
        .await
        .expect("the rename, once authorized, waits on the held row");

    // The demotion cannot slip between the rename's check and its change: the member's row is
    // held until the rename commits.
    let mut demoter = app.db.superuser().await;
    let demote = format!(
        "update app.user_organizations set role = 'VIEWER'
          where organization_id = '{org_id}' and user_id = '{admin_id}'"
    );
    // On Citus the row is on a worker, which hears of the timeout only through `SET LOCAL`.
    sqlx::raw_sql("set citus.propagate_set_commands = 'local'").execute(&mut demoter).await.unwrap();
    sqlx::raw_sql("begin").execute(&mut demoter).await.unwrap();
    sqlx::raw_sql("set local lock_timeout = '200ms'").execute(&mut demoter).await.unwrap();
    let refused = sqlx::raw_sql(&demote).execute(&mut demoter).await.unwrap_err();
    assert_eq!(refused.as_database_error().and_then(|e| e.code()).as_deref(), Some("55P03"), "{refused}");
    sqlx::raw_sql("rollback").execute(&mut demoter).await.unwrap();

    sqlx::raw_sql("rollback").execute(&mut blocker).await.unwrap();
    assert_eq!(rename.await.unwrap().unwrap().status(), 200);

    // Once the rename has committed, the demotion goes through, and the next change sees it.
    sqlx::raw_sql(&demote).execute(&mut demoter).await.unwrap();
    let after = app.call_as("PATCH", &org.admin, "/v1/orgs/acme", json!({ "name": "Again" })).await;
    assert_eq!(after.status, 403, "{}", after.body);
    assert_eq!(app.get_as(&org.viewer, "/v1/orgs/acme").await.body["name"], "Renamed");
}

#[tokio::test]
async fn every_privilege_change_needs_a_recent_sign_in_and_changes_nothing_without_one() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let members = app.get_as(&org.admin, "/v1/orgs/acme/members").await.body;
    let id_of = |role: &str| {
        members.as_array().unwrap().iter().find(|m| m["role"] == role).unwrap()["user_id"].as_str().unwrap().to_owned()
    };
    let (viewer, creator) = (id_of("VIEWER"), id_of("CREATOR"));
    app.invite(&org.admin, "acme", "pending@example.com", "VIEWER").await;
    let pending = app.get_as(&org.admin, "/v1/orgs/acme/invitations").await.body[0]["id"].as_str().unwrap().to_owned();
    // Eleven minutes since sign-in, active all along.
    for _ in 0..2 {
        app.clock.advance(Duration::seconds(330));
        app.get_as(&org.admin, "/v1/me").await;
    }

    let attempts = [
        ("post", "/v1/orgs/acme/invitations".to_owned(), json!({ "email": "new-admin@example.com", "role": "ADMIN" })),
        ("delete", format!("/v1/orgs/acme/invitations/{pending}"), json!({})),
        ("delete", format!("/v1/orgs/acme/members/{creator}"), json!({})),
        ("patch", format!("/v1/orgs/acme/members/{viewer}"), json!({ "role": "ADMIN" })),
        ("patch", "/v1/orgs/acme".to_owned(), json!({ "require_two_factor": false })),
    ];
    let before = app.get_as(&org.admin, "/v1/orgs/acme/members").await.body;
    for (method, path, body) in &attempts {
        let stale = app.call_as(method, &org.admin, path, body.clone()).await;
        assert_eq!(
            (stale.status, stale.problem_type()),
            (403, "urn:mos:problem:reauthentication_required"),
            "{method} {path}: {}",
            stale.body
        );
    }
    assert_eq!(app.get_as(&org.admin, "/v1/orgs/acme/members").await.body, before, "nobody's access changed");
    assert_eq!(app.get_as(&org.admin, "/v1/orgs/acme/invitations").await.body.as_array().unwrap().len(), 1);
    assert!(app.inbox.all_to("new-admin@example.com").is_empty(), "no invitation went out");
    let rename = app.call_as("patch", &org.admin, "/v1/orgs/acme", json!({ "name": "Acme Health Inc" })).await;
    assert_eq!(rename.status, 200, "a rename changes nobody's access");

    assert_eq!(app.post_as(&org.admin, "/v1/me/reauthenticate", json!({ "password": PASSWORD })).await.status, 204);
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for (method, path, body) in &attempts {
            out.push(app.call_as(method, &org.admin, path, body.clone()).await.status);
        }
        out
    };
    assert_eq!(statuses, [201, 204, 204, 204, 200], "each goes through after signing in again");
}

#[tokio::test]
async fn an_invitation_is_void_once_its_sender_may_no_longer_invite() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let (deputy, fired) = (app.signed_in("deputy@example.com").await, app.signed_in("fired@example.com").await);
    app.join(&org.admin, "acme", "deputy@example.com", "ADMIN", &deputy).await;
    app.join(&org.admin, "acme", "fired@example.com", "ADMIN", &fired).await;
    let from_deputy = token_in(&app.invite(&deputy, "acme", "grace@example.com", "ADMIN").await);
    let from_fired = token_in(&app.invite(&fired, "acme", "heidi@example.com", "VIEWER").await);

    let members = app.get_as(&org.admin, "/v1/orgs/acme/members").await.body;
    let id_of = |email: &str| {
        members.as_array().unwrap().iter().find(|m| m["email"] == email).unwrap()["user_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let demoted = app
        .call_as(
            "patch",
            &org.admin,
            &format!("/v1/orgs/acme/members/{}", id_of("deputy@example.com")),
            json!({ "role": "VIEWER" }),
        )
        .await;
    let removed = app
        .call_as("delete", &org.admin, &format!("/v1/orgs/acme/members/{}", id_of("fired@example.com")), json!({}))
        .await;
    assert_eq!((demoted.status, removed.status), (204, 204));

    for (email, token) in [("grace@example.com", &from_deputy), ("heidi@example.com", &from_fired)] {
        let session = app.signed_in(email).await;
        let refused = app.post_as(&session, "/v1/invitations/accept", json!({ "token": token })).await;
        assert_eq!(
            (refused.status, refused.problem_type()),
            (403, "urn:mos:problem:inviter_lacks_authority"),
            "{email}"
        );
        assert_eq!(app.get_as(&session, "/v1/orgs/acme").await.status, 404, "{email} did not get in");
    }
    let still = app.get_as(&org.admin, "/v1/orgs/acme/members").await.body;
    assert!(still
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["email"] != "grace@example.com" && m["email"] != "heidi@example.com"));
}
