use crate::TestApp;

#[tokio::test]
async fn healthz_answers_while_the_process_runs() {
    let app = TestApp::spawn().await;
    let reply = app.send(app.http.get(format!("{}/healthz", app.base))).await;
    assert_eq!((reply.status, reply.body), (200, serde_json::json!({ "status": "ok" })));
}

#[tokio::test]
async fn readyz_is_ready_while_the_database_answers_and_unavailable_after() {
    let app = TestApp::spawn().await;
    let reply = app.send(app.http.get(format!("{}/readyz", app.base))).await;
    assert_eq!((reply.status, reply.body), (200, serde_json::json!({ "status": "ready" })));

    app.pool.close().await;
    let reply = app.send(app.http.get(format!("{}/readyz", app.base))).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    assert_eq!(reply.problem_type(), "urn:mos:problem:unavailable");
}

#[tokio::test]
async fn unknown_paths_are_problem_documents_with_a_request_id() {
    let app = TestApp::spawn().await;
    let reply = app.send(app.http.get(format!("{}/v1/nope", app.base)).header("x-request-id", "trace-me-42")).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    assert_eq!(reply.problem_type(), "urn:mos:problem:not_found");
    let ours = reply.headers["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(ours).is_ok(), "every answer names the request by our own id: {ours}");
}

#[tokio::test]
async fn readyz_says_not_ready_while_the_database_check_finds_a_problem() {
    let app = TestApp::spawn().await;
    app.readiness.record(vec!["audit_guard_disabled".into()]);
    let reply = app.send(app.http.get(format!("{}/readyz", app.base))).await;
    assert_eq!((reply.status, reply.problem_type()), (503, "urn:mos:problem:not_ready"));
    assert!(reply.headers.contains_key("retry-after"));
    assert!(!reply.body.to_string().contains("audit_guard"), "which protection is off is for the log, not the world");
    app.readiness.record(Vec::new());
    assert_eq!(app.send(app.http.get(format!("{}/readyz", app.base))).await.status, 200);
}

#[tokio::test]
async fn while_the_database_is_away_requests_fail_fast_with_retry_after() {
    let (app, wire) = TestApp::spawn_counted().await;
    let token = app.signed_in("ada@example.com").await;
    wire.cut();
    // Bounded far below the ten seconds a request used to hang; a failure here is a hang.
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(8)).build().unwrap();
    // Twice over: the pool's open connections fail at their first statement; after them, each
    // request has to connect anew, which is where a request used to wait out the whole timeout.
    let requests = (0..2).flat_map(|_| {
        [
            client.get(format!("{}/v1/me", app.base)).bearer_auth(&token),
            client.get(format!("{}/readyz", app.base)),
            client
                .post(format!("{}/v1/auth/login", app.base))
                .json(&serde_json::json!({ "email": "ada@example.com", "password": crate::PASSWORD })),
        ]
    });
    for request in requests {
        let reply = app.send(request).await;
        assert_eq!((reply.status, reply.problem_type()), (503, "urn:mos:problem:unavailable"), "{}", reply.body);
        assert!(reply.headers.contains_key("retry-after"));
    }
}

/// Makes the function `signature` fail as it would on a PostgreSQL whose libraries were
/// replaced under it (SQLSTATE 58P01, as the superuser, keeping the function's signature and
/// attributes); returns its definition as it was, for [`restore_function`].
async fn break_function(app: &TestApp, signature: &str) -> String {
    use sqlx::Row;
    let mut superuser = app.db.superuser().await;
    let definition: String = sqlx::query("select pg_get_functiondef($1::regprocedure)")
        .bind(signature)
        .fetch_one(&mut superuser)
        .await
        .unwrap()
        .get(0);
    let start = definition.find("AS $function$").unwrap() + "AS $function$".len();
    let end = definition.rfind("$function$").unwrap();
    let broken = format!(
        "{}\nbegin raise exception using errcode = '58P01', message = 'could not access file \"$libdir/plpgsql\": No such file or directory'; end\n{}",
        &definition[..start],
        &definition[end..]
    );
    sqlx::raw_sql(&broken).execute(&mut superuser).await.unwrap();
    definition
}

async fn restore_function(app: &TestApp, definition: &str) {
    sqlx::raw_sql(definition).execute(&mut app.db.superuser().await).await.unwrap();
}

#[tokio::test]
async fn readyz_runs_the_plpgsql_function_every_request_starts_with() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    let saved = break_function(&app, "app.request_context(bytea,text,timestamptz,interval,interval)").await;
    // What requests meet: a server that answers `select 1` but not the function.
    assert_eq!(app.get_as(&token, "/v1/me").await.status, 500);
    let reply = app.send(app.http.get(format!("{}/readyz", app.base))).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(reply.headers.contains_key("retry-after"));
    assert!(!reply.body.to_string().contains("libdir"), "the cause is for the log: {}", reply.body);

    // Mended underneath, the process still is not ready: a restart clears what the broken
    // server may have left in its connections.
    restore_function(&app, &saved).await;
    assert_eq!(app.get_as(&token, "/v1/me").await.status, 200);
    assert_eq!(app.send(app.http.get(format!("{}/readyz", app.base))).await.status, 503);
}

#[tokio::test]
async fn a_request_that_meets_the_servers_broken_files_makes_readyz_fail_until_restart() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin@acme.example").await;
    assert_eq!(
        app.post_as(&admin, "/v1/orgs", serde_json::json!({ "slug": "acme", "name": "Acme" })).await.status,
        201
    );
    assert_eq!(app.send(app.http.get(format!("{}/readyz", app.base))).await.status, 200);

    // The content trigger, which readyz's probe never reaches.
    let saved = break_function(&app, "app.content_items_guard()").await;
    let body = serde_json::json!({ "title": "Flu shots", "channel": "email", "body": "Book now." });
    let created = app.post_as(&admin, "/v1/orgs/acme/content", body.clone()).await;
    assert_eq!((created.status, created.problem_type()), (500, "urn:mos:problem:internal"), "{}", created.body);

    let reply = app.send(app.http.get(format!("{}/readyz", app.base))).await;
    assert_eq!((reply.status, reply.problem_type()), (503, "urn:mos:problem:not_ready"), "{}", reply.body);
    restore_function(&app, &saved).await;
    assert_eq!(app.post_as(&admin, "/v1/orgs/acme/content", body).await.status, 201);
    assert_eq!(app.send(app.http.get(format!("{}/readyz", app.base))).await.status, 503, "until restart");
    assert_eq!(app.send(app.http.get(format!("{}/healthz", app.base))).await.status, 200, "alive all along");
}

#[tokio::test]
async fn an_ordinary_server_error_leaves_readyz_ready() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin@acme.example").await;
    assert_eq!(
        app.post_as(&admin, "/v1/orgs", serde_json::json!({ "slug": "acme", "name": "Acme" })).await.status,
        201
    );
    let mut superuser = app.db.superuser().await;
    sqlx::raw_sql(
        "create or replace function app.content_items_guard() returns trigger language plpgsql as \
         $$ begin raise exception 'a bug'; end $$",
    )
    .execute(&mut superuser)
    .await
    .unwrap();
    let body = serde_json::json!({ "title": "Flu shots", "channel": "email", "body": "Book now." });
    assert_eq!(app.post_as(&admin, "/v1/orgs/acme/content", body).await.status, 500);
    assert_eq!(
        app.send(app.http.get(format!("{}/readyz", app.base))).await.status,
        200,
        "a bug is not a broken server"
    );
}

#[tokio::test]
async fn readyz_does_not_wait_on_a_database_that_cannot_answer() {
    let app = TestApp::spawn().await;
    // Every request starts by reading its session; with the sessions table locked, the probe
    // of /readyz waits on the lock like any request would, for as long as it is held.
    let mut blocker = app.db.superuser().await;
    sqlx::raw_sql("begin").execute(&mut blocker).await.unwrap();
    sqlx::raw_sql("lock table app.sessions in access exclusive mode").execute(&mut blocker).await.unwrap();
    // Bounded only to turn a hang into a failure: the answer must come while the lock is held.
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60)).build().unwrap();
    let reply = app.send(client.get(format!("{}/readyz", app.base))).await;
    assert_eq!((reply.status, reply.problem_type()), (503, "urn:mos:problem:unavailable"), "{}", reply.body);
    assert!(reply.headers.contains_key("retry-after"));
    sqlx::raw_sql("rollback").execute(&mut blocker).await.unwrap();
    assert_eq!(app.send(app.http.get(format!("{}/readyz", app.base))).await.status, 200);
}

#[tokio::test]
async fn a_request_waits_for_a_busy_pool_and_is_served_once_a_connection_is_free() {
    let app = TestApp::spawn_with_pool_size(1).await;
    let token = app.signed_in("ada@example.com").await;
    // The pool's only connection, held outside any request.
    let held = app.pool.begin_lookup().await.unwrap();
    let waiting = tokio::spawn(app.http.get(format!("{}/v1/me", app.base)).bearer_auth(&token).send());
    // The server answers what needs no connection meanwhile, and the request still waits:
    // refused at once, it would have been answered already.
    for _ in 0..20 {
        assert_eq!(app.send(app.http.get(format!("{}/healthz", app.base))).await.status, 200);
        tokio::task::yield_now().await;
    }
    assert!(!waiting.is_finished(), "the request waits for the pool instead of being refused");
    drop(held);
    let reply = waiting.await.unwrap().unwrap();
    assert_eq!(reply.status(), 200, "served once the connection was free");
}
