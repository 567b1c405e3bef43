//! CPU-bound work runs off the async workers, a bounded number of jobs at a time: diffs of long
//! versions with nothing in common leave the rest of the server answering, and a diff that ran
//! out of time says so.

use std::time::Duration;

use serde_json::{json, Value};

use crate::{Reply, TestApp};

/// An organization of one ADMIN, who writes an item as `first` and edits it to `second`: the
/// admin's token and the path of the diff of the two versions.
async fn two_versions(app: &TestApp, slug: &str, first: &str, second: &str) -> (String, String) {
    let admin = app.signed_in(&format!("admin@{slug}.example")).await;
    let created = app.post_as(&admin, "/v1/orgs", json!({ "slug": slug, "name": "Acme Health" })).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let text = |body: &str| json!({ "title": "Flu shots", "channel": "email", "body": body });
    let item = app.post_as(&admin, &format!("/v1/orgs/{slug}/content"), text(first)).await;
    assert_eq!(item.status, 201, "{}", item.body);
    let path = format!("/v1/orgs/{slug}/content/{}", item.body["id"].as_str().unwrap());
    let edit = app.http.patch(format!("{}{path}", app.base)).bearer_auth(&admin).header("if-match", "\"1\"");
    let edited = app.send(edit.json(&text(second))).await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    (admin, format!("{path}/diff?from=1&to=2"))
}

/// A body of `lines` lines, each `word`: two such bodies of different words share no line, the
/// costliest case of a line diff.
fn lines_of(word: &str, lines: usize) -> String {
    format!("{word}\n").repeat(lines)
}

// Two workers, as on a small machine: two diffs on them would leave none for anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_long_diffs_at_once_leave_healthz_and_reads_answering() {
    let app = TestApp::spawn_on(mos_db::testing::TestDb::new().await, mos_auth::PasswordHasher::new(4), |s| {
        s.heavy_jobs = 2;
        s.heavy_wait = Duration::ZERO;
        s.diff_deadline = Duration::from_secs(5);
    })
    .await;
    // 49,000 lines, as long as a body may be.
    let (admin, long) = two_versions(&app, "acme", &lines_of("a", 49_000), &lines_of("b", 49_000)).await;
    let (other, short) = two_versions(&app, "beta", "one\n", "two\n").await;

    let diffs: Vec<_> = (0..2)
        .map(|_| {
            let request = app.http.get(format!("{}{long}", app.base)).bearer_auth(&admin);
            tokio::spawn(async move { request.send().await.unwrap().json::<Value>().await.unwrap() })
        })
        .collect();
    // Both slots are taken once a short diff, which needs one, is turned away.
    let busy = |reply: &Reply| reply.status == 503 && reply.problem_type() == "urn:mos:problem:busy";
    let mut probe = app.get_as(&other, &short).await;
    for _ in 0..3000 {
        if busy(&probe) {
            break;
        }
        assert_eq!(probe.status, 200, "{}", probe.body);
        tokio::time::sleep(Duration::from_millis(10)).await;
        probe = app.get_as(&other, &short).await;
    }
    assert!(busy(&probe), "the two long diffs never held both slots: {}", probe.body);
    assert!(probe.headers.contains_key("retry-after"));

    let health = app.send(app.http.get(format!("{}/healthz", app.base))).await;
    assert_eq!(health.status, 200);
    assert_eq!(app.get_as(&admin, "/v1/me").await.status, 200);
    // Still both taken: the answers above came while the long diffs were running.
    let after = app.get_as(&other, &short).await;
    assert!(busy(&after), "a long diff ended before the answers above: {}", after.body);

    for diff in diffs {
        let body = diff.await.unwrap();
        let text = body["body"].as_str().unwrap_or_else(|| panic!("{body}"));
        assert!(text.contains("\n-a\n") && text.contains("\n+b\n"), "every change is shown");
    }
}

#[tokio::test]
async fn a_diff_that_runs_out_of_time_says_so_in_the_api_and_on_the_console_page() {
    let app = TestApp::spawn_on(mos_db::testing::TestDb::new().await, mos_auth::PasswordHasher::new(4), |s| {
        s.diff_deadline = Duration::ZERO;
    })
    .await;
    let (admin, diff) = two_versions(&app, "acme", "same\none\ntwo\n", "same\nuno\ntwo\n").await;

    let reply = app.get_as(&admin, &diff).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["deadline_reached"], true);
    let body = reply.body["body"].as_str().unwrap();
    assert!(body.contains("-one\n") && body.contains("+uno\n"), "still every change: {body}");

    let page = app
        .http
        .get(format!("{}{}", app.base, diff.trim_start_matches("/v1")))
        .header("cookie", format!("__Host-mos_session={admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("took too long to compare"), "{html}");
    assert!(html.contains("+uno"), "{html}");
}

#[tokio::test]
async fn a_diff_within_its_time_does_not_claim_to_have_run_out() {
    let app = TestApp::spawn().await;
    let (admin, diff) = two_versions(&app, "acme", "same\none\n", "same\nuno\n").await;
    let reply = app.get_as(&admin, &diff).await;
    assert_eq!((reply.status, &reply.body["deadline_reached"]), (200, &json!(false)), "{}", reply.body);
}

#[tokio::test]
async fn a_word_search_past_its_deadline_is_answered_503_and_the_server_goes_on() {
    let app = TestApp::spawn_on(mos_db::testing::TestDb::new().await, mos_auth::PasswordHasher::new(4), |s| {
        s.search_deadline = Duration::from_millis(1);
    })
    .await;
    let (admin, _) = two_versions(&app, "acme", "one\n", "two\n").await;
    // Long bodies, and only an excluded word, which the word index cannot serve.
    let body = "flu shot ".repeat(11_000);
    for i in 0..20 {
        let text = json!({ "title": format!("Item {i}"), "channel": "email", "body": body });
        assert_eq!(app.post_as(&admin, "/v1/orgs/acme/content", text).await.status, 201);
    }
    let search = app.get_as(&admin, "/v1/orgs/acme/content?q=-vaccine").await;
    assert_eq!((search.status, search.problem_type()), (503, "urn:mos:problem:timeout"), "{}", search.body);
    assert!(search.headers.contains_key("retry-after"));
    // Without words to search, the list is not cut short.
    let list = app.get_as(&admin, "/v1/orgs/acme/content").await;
    assert_eq!((list.status, list.body["items"].as_array().map(Vec::len)), (200, Some(21)));
}
