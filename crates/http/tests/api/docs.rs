use serde_json::{json, Value};

use crate::TestApp;

#[tokio::test]
async fn every_documented_operation_is_served_and_described() {
    let app = TestApp::spawn().await;
    // The public routes answer without a session: they are reached on an organization with a
    // sign-up form, or they would answer 404 for want of one.
    let form = crate::signup::form_of(&app, "acme", "Monthly newsletter").await;
    let doc = app.send(app.http.get(format!("{}/openapi.json", app.base))).await.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 19 && paths.contains_key("/healthz"), "{:?}", paths.keys());
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            assert!(operation["summary"].is_string(), "{method} {path} has no summary");
            let responses = operation["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path} documents no response");
            // Served: whatever the answer (401 without a session, 4xx for an empty body), it is
            // not the router's 404 or 405.
            let mut url = format!("{}{}", app.base, path.replace("{id}", "0190d6c2-0000-7000-8000-000000000000"));
            if path.starts_with("/v1/public/") {
                url = url.replace("{slug}", &form.slug).replace("{purpose}", &form.purpose.to_string());
            }
            let request =
                app.http.request(method.to_uppercase().parse().unwrap(), url).json(&Value::Object(Default::default()));
            let reply = app.send(request).await;
            assert!(
                reply.status != 405 && reply.status != 404,
                "{method} {path} is documented but not served: {}",
                reply.status
            );
            // The document says which operations take a session; without one, exactly those
            // answer 401 (the others refuse the empty body, or answer).
            let needs_session = operation.get("security").is_some();
            assert_eq!(
                reply.status == 401,
                needs_session,
                "{method} {path}: the document says it {} a session, and without one it answered {}",
                if needs_session { "takes" } else { "does not take" },
                reply.status
            );
        }
    }
}

#[tokio::test]
async fn the_docs_page_lists_every_path_without_scripts() {
    let app = TestApp::spawn().await;
    let doc = app.send(app.http.get(format!("{}/openapi.json", app.base))).await.body;
    let page = app.http.get(format!("{}/docs", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert!(!page.contains("<script"));
    for path in doc["paths"].as_object().unwrap().keys() {
        assert!(page.contains(&format!("<code>{path}</code>")), "{path} missing from /docs");
    }
    for (shown, what) in [
        ("<code>new_password</code>", "a request field"),
        ("12 to 256 characters", "a length rule"),
        ("<code>cursor</code>", "a query parameter"),
        ("1 to 500", "a range rule"),
        ("matches <code>^[a-z0-9]+(-[a-z0-9]+)*$</code>", "a pattern"),
        ("one of <code>ADMIN</code>, <code>REVIEWER</code>, <code>CREATOR</code>, <code>VIEWER</code>", "an enum"),
        ("<code>application/problem+json</code>", "an answer's media type"),
        ("<h3 id=\"schema-Problem\">Problem</h3>", "a schema"),
    ] {
        assert!(page.contains(shown), "{what} not shown: {shown}");
    }
    assert!(!page.contains('`'), "Markdown code spans are rendered, not printed raw");
}

/// Runs a Python module of the test tools (installed by `scripts/test`), failing the test with
/// what the module printed.
fn python(module: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .arg("-m")
        .arg(module)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 -m {module}: {e}; scripts/test installs it"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python3 -m {module} {args:?} failed:\n{text}");
    text
}

#[tokio::test]
async fn an_independent_validator_accepts_the_openapi_document() {
    let app = TestApp::spawn().await;
    let doc = app.http.get(format!("{}/openapi.json", app.base)).send().await.unwrap().text().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, doc).unwrap();
    let said =
        tokio::task::spawn_blocking(move || python("openapi_spec_validator", &[path.to_str().unwrap()])).await.unwrap();
    assert!(said.contains("OK"), "{said}");
}

/// Schemathesis generates requests from the document, a bounded number per operation, with a
/// signed-in member of an organization, and checks every answer against the document: no 5xx,
/// no status, content type or body that the document does not describe. Logout is left out, so
/// that the session lives through the run; the seed is fixed, so a failure can be replayed.
#[tokio::test]
async fn generated_requests_get_only_documented_answers() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("fuzz@example.com").await;
    assert_eq!(app.post_as(&token, "/v1/orgs", json!({ "slug": "acme", "name": "Acme" })).await.status, 201);
    let schema = format!("{}/openapi.json", app.base);
    let header = format!("Authorization: Bearer {token}");
    let said = tokio::task::spawn_blocking(move || {
        python(
            "schemathesis.cli",
            &[
                "run",
                &schema,
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "--max-examples",
                "20",
                "--seed",
                "20261126",
                "--exclude-path",
                "/v1/auth/logout",
                "-H",
                &header,
                "--no-color",
            ],
        )
    })
    .await
    .unwrap();
    // "1234 generated, 1234 passed": the run tested something, and all of it passed.
    let counts = said.lines().find(|l| l.contains(" generated, ")).unwrap_or_else(|| panic!("no summary:\n{said}"));
    let numbers: Vec<u64> = counts.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
    assert!(numbers.len() == 2 && numbers[0] > 500 && numbers[0] == numbers[1], "{counts}\n{said}");
}

/// Whether `value` is valid by the document's schema at `pointer` (a JSON pointer into the
/// document), as an independent validator (Python's `jsonschema`) reads it.
fn valid_by_the_document(doc: &Value, cases: &[(&str, Value)]) -> Vec<bool> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cases.json");
    let cases: Vec<Value> =
        cases.iter().map(|(pointer, value)| json!({ "pointer": pointer, "value": value })).collect();
    std::fs::write(&input, json!({ "doc": doc, "cases": cases }).to_string()).unwrap();
    let script = "import json, sys, jsonschema
data = json.load(open(sys.argv[1]))
doc = data['doc']
out = []
for case in data['cases']:
    node = doc
    for part in case['pointer'].lstrip('/').split('/'):
        node = node[int(part)] if isinstance(node, list) else node[part.replace('~1', '/').replace('~0', '~')]
    schema = dict(node, components=doc['components'])
    out.append(jsonschema.Draft202012Validator(schema).is_valid(case['value']))
print(json.dumps(out))";
    let out = std::process::Command::new("python3").arg("-c").arg(script).arg(&input).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn the_document_refuses_what_the_server_refuses_in_texts_names_tags_cursors_and_step_bodies() {
    let app = TestApp::spawn().await;
    let token = app.signed_in("ada@example.com").await;
    assert_eq!(app.post_as(&token, "/v1/orgs", json!({ "slug": "acme", "name": "Acme" })).await.status, 201);
    let doc = app.send(app.http.get(format!("{}/openapi.json", app.base))).await.body;
    let text = |title: &str, audience: &str, body: &str, tags: Value| json!({ "title": title, "channel": "email", "audience": audience, "body": body, "tags": tags });
    let content_text = "/components/schemas/ContentText";
    let new_org = "/components/schemas/NewOrg";
    let submit = "/paths/~1v1~1orgs~1{slug}~1content~1{id}~1submit/post/requestBody/content/application~1json/schema";
    let cursor = |path: &str| {
        let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        let at = params.iter().position(|p| p["name"] == "cursor").unwrap();
        format!("/paths/{}/get/parameters/{at}/schema", path.replace('/', "~1"))
    };
    let (orgs, content, audit) =
        (cursor("/v1/orgs"), cursor("/v1/orgs/{slug}/content"), cursor("/v1/orgs/{slug}/audit-logs"));
    let refused: Vec<(&str, Value)> = vec![
        (content_text, text("\u{7}Flu", "", "", json!([]))),
        (content_text, text("   ", "", "", json!([]))),
        (content_text, text("Flu", "Adults\u{1b}[2J", "", json!([]))),
        (content_text, text("Flu", "", "Book\u{0}now", json!([]))),
        (content_text, text("Flu", "", "", json!([""]))),
        (content_text, text("Flu", "", "", json!(["two words"]))),
        (content_text, text("Flu", "", "", json!((0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()))),
        (new_org, json!({ "slug": "beta", "name": "Beta\u{0}" })),
        (new_org, json!({ "slug": "beta", "name": "\u{85}" })),
        (submit, Value::Null),
        (&orgs, json!("")),
        (&content, json!("")),
        (&audit, json!("")),
    ];
    // The server refuses each.
    let item = app.post_as(&token, "/v1/orgs/acme/content", text("Flu", "", "", json!([]))).await;
    let id = item.body["id"].as_str().unwrap();
    for (pointer, value) in &refused {
        let reply = match *pointer {
            p if p == content_text => app.post_as(&token, "/v1/orgs/acme/content", value.clone()).await,
            p if p == new_org => app.post_as(&token, "/v1/orgs", value.clone()).await,
            p if p == submit => app.post_as(&token, &format!("/v1/orgs/acme/content/{id}/submit"), Value::Null).await,
            p => {
                let path = if p == orgs {
                    "/v1/orgs"
                } else if p == content {
                    "/v1/orgs/acme/content"
                } else {
                    "/v1/orgs/acme/audit-logs"
                };
                app.get_as(&token, &format!("{path}?cursor=")).await
            }
        };
        assert!([400, 422].contains(&reply.status), "the server accepts {value} at {pointer}: {}", reply.body);
    }
    // And so does the document.
    let valid = valid_by_the_document(&doc, &refused);
    for ((pointer, value), valid) in refused.iter().zip(valid) {
        assert!(!valid, "the document allows {value} at {pointer}, which the server refuses");
    }
    // What the server accepts, the document allows.
    let accepted: Vec<(&str, Value)> = vec![
        (
            content_text,
            text(" Flu shots ", "Patients 65+", "Line one\n\tLine two\r\nLine three\r", json!(["flu", "flu-2026"])),
        ),
        (new_org, json!({ "slug": "beta", "name": "Beta Health" })),
        (submit, json!({ "note": "ready" })),
    ];
    for ((pointer, value), valid) in accepted.iter().zip(valid_by_the_document(&doc, &accepted)) {
        assert!(valid, "the document refuses {value} at {pointer}, which the server accepts");
    }
}
