use serde_json::Value;

use crate::TestApp;

#[tokio::test]
async fn every_documented_operation_is_served_and_described() {
    let app = TestApp::spawn().await;
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
            let url = format!("{}{}", app.base, path.replace("{id}", "0190d6c2-0000-7000-8000-000000000000"));
            let request =
                app.http.request(method.to_uppercase().parse().unwrap(), url).json(&Value::Object(Default::default()));
            let reply = app.send(request).await;
            assert!(
                reply.status != 405 && reply.status != 404,
                "{method} {path} is documented but not served: {}",
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
}
