//! An import survives `mos serve` being killed: the server that starts next takes the job over
//! once its lease has lapsed and finishes it, every row imported exactly once.

use serde_json::{json, Value};

use crate::{data_dir, http_request, mos, serve, serve_command, text};
use mos_db::testing::TestDb;

/// Rows in the file: twenty batches of the import's 5,000, so the kill lands between two.
const ROWS: usize = 100_000;

/// A JSON request as `token`: the status and the body read as JSON.
pub(crate) fn call(addr: &str, token: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let auth = if token.is_empty() { String::new() } else { format!("Authorization: Bearer {token}\r\n") };
    let headers = format!("{auth}Content-Type: application/json\r\n");
    let (status, text) = http_request(addr, method, path, &headers, body.to_string().as_bytes());
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Polls the import until `done` says so, for up to two minutes; its last state.
pub(crate) fn until(addr: &str, token: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/v1/orgs/demo/imports/{id}");
    for _ in 0..12_000 {
        let (status, body) = call(addr, token, "GET", &path, &Value::Null);
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return body;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the import never got there");
}

pub(crate) fn kill(child: &mut std::process::Child, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    child.wait().unwrap();
}

/// Migrates the database at `url` and seeds its demo organization: the admin's password.
pub(crate) fn migrate_and_seed(url: &str) -> String {
    let out = mos().arg("migrate").env("DATABASE_URL", url).output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    let out = mos().arg("seed").env("DATABASE_URL", url).output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    text(&out).0.lines().find_map(|l| l.strip_prefix("password:")).unwrap().trim().to_owned()
}

/// The demo admin's session token.
pub(crate) fn sign_in(addr: &str, password: &str) -> String {
    let login = json!({ "email": "admin@demo.example.com", "password": password });
    let (status, body) = call(addr, "", "POST", "/v1/auth/login", &login);
    assert_eq!(status, 200, "{body}");
    body["session"]["token"].as_str().unwrap().to_owned()
}

/// Uploads `csv` to the demo organization and starts its import with the consent of a new
/// purpose's notice: the import's id.
pub(crate) fn upload_and_start(addr: &str, token: &str, csv: &str) -> String {
    let (status, purpose) = call(addr, token, "POST", "/v1/orgs/demo/purposes", &json!({ "name": "News" }));
    assert_eq!(status, 201, "{purpose}");
    let purpose = purpose["id"].as_str().unwrap().to_owned();
    let notices = format!("/v1/orgs/demo/purposes/{purpose}/notices");
    let (status, notice) = call(addr, token, "POST", &notices, &json!({ "text": "News now and then." }));
    assert_eq!(status, 201, "{notice}");
    let headers = format!("Authorization: Bearer {token}\r\nContent-Type: text/csv\r\n");
    let (status, uploaded) = http_request(addr, "POST", "/v1/orgs/demo/imports", &headers, csv.as_bytes());
    assert_eq!(status, 201, "{uploaded}");
    let uploaded: Value = serde_json::from_str(&uploaded).unwrap();
    let id = uploaded["import"]["id"].as_str().unwrap().to_owned();
    let start = json!({
        "mapping": uploaded["suggested_mapping"],
        "provenance": { "purpose": purpose, "lawful_basis": "consent", "notice_sha256": notice["sha256"],
                        "description": "The clinic's newsletter list" },
    });
    let (status, body) = call(addr, token, "POST", &format!("/v1/orgs/demo/imports/{id}/start"), &start);
    assert_eq!(status, 202, "{body}");
    id
}

#[tokio::test]
async fn an_import_cut_by_sigkill_is_finished_by_the_next_server_with_every_row_exactly_once() {
    let db = TestDb::empty().await;
    let url = db.database_url();
    let dir = data_dir();
    let password = migrate_and_seed(&url);
    // Both servers share the data directory and the key (and so the keys of addresses); the
    // shortest lease lets the second take the job over soon after the first died.
    let server = || {
        let mut command = serve_command(&url, dir.path());
        command.env("MOS_JOB_WORKERS", "1").env("MOS_JOB_LEASE_SECS", "6");
        serve(command)
    };

    let (mut first, addr, log) = server();
    let token = sign_in(&addr, &password);
    let mut csv = String::from("email,name,locale\n");
    for n in 0..ROWS {
        csv.push_str(&format!("person{n}@example.com,Person {n},en\n"));
    }
    let id = upload_and_start(&addr, &token, &csv);

    // Killed mid-way: some batches committed, not all.
    let partial = until(&addr, &token, &id, |b| b["rows_done"].as_i64().unwrap() > 0);
    kill(&mut first, nix::sys::signal::Signal::SIGKILL);
    let done_at_kill = partial["rows_done"].as_i64().unwrap();
    assert!(done_at_kill < ROWS as i64, "the kill came before the end: {partial}; {}", log.lock().unwrap());

    let (mut second, addr, log) = server();
    let done = until(&addr, &token, &id, |b| b["state"] != "running" && b["state"] != "queued");
    assert_eq!(done["state"], "succeeded", "{done}; {}", log.lock().unwrap());
    assert_eq!(
        (&done["imported"], &done["existing"], &done["invalid"], &done["rows_done"]),
        (&json!(ROWS), &json!(0), &json!(0), &json!(ROWS)),
        "no row twice, none lost: {done}"
    );
    kill(&mut second, nix::sys::signal::Signal::SIGTERM);

    let mut su = db.superuser().await;
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    assert_eq!(count("select count(*) from app.contacts").fetch_one(&mut su).await.unwrap(), ROWS as i64);
    assert_eq!(
        count("select count(*) from app.consent_events where source = 'import'").fetch_one(&mut su).await.unwrap(),
        ROWS as i64
    );
    assert_eq!(
        count("select count(*) from app.audit_logs where action = 'contacts.imported'")
            .fetch_one(&mut su)
            .await
            .unwrap(),
        1
    );
    // The grants' records: one a batch, none for a batch that the kill rolled back.
    let batches: (i64, i64) = sqlx::query_as(
        "select count(*), sum((metadata->>'events')::bigint)::bigint from app.audit_logs where action = 'consent.imported'",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(batches, ((ROWS / mos_db::audiences::import::BATCH_ROWS) as i64, ROWS as i64));
}
