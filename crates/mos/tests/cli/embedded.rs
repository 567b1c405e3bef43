use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{data_dir, http_get, http_get_with, listening_address, migration_names, mos, serve, text, until_logged};

#[test]
fn on_the_embedded_default_migrate_seed_and_check_work_and_repeat_safely() {
    let dir = data_dir();
    let run = |args: &[&str]| mos().args(args).env("MOS_DATA_DIR", dir.path().join(".mos")).output().unwrap();

    let out = run(&["migrate"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let applied: String = migration_names().iter().map(|name| format!("applied {name}\n")).collect();
    assert_eq!(text(&out).0, applied);
    let out = run(&["migrate"]);
    assert_eq!(text(&out).0, format!("schema is up to date ({} migrations)\n", migration_names().len()));

    let out = run(&["seed"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(stdout.contains("admin@demo.example.com") && stdout.contains("password:     "), "{stdout}");
    let out = run(&["seed"]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("already there") && stdout.contains("unchanged since the first"), "{stdout}");

    let out = run(&["db", "check"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(!dir.path().join(".mos/pg/postmaster.pid").exists(), "each command stops the cluster it started");
}

#[test]
fn serve_answers_health_checks_and_stops_cleanly_on_sigterm() {
    let dir = data_dir();
    let mut child = mos()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("MOS_DATA_DIR", dir.path().join(".mos"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = listening_address(&line);
    let port = addr.rsplit(':').next().unwrap();
    assert!(line.trim().ends_with(&format!(", open http://localhost:{port}")), "the address passkeys work at: {line}");

    assert_eq!(http_get(&addr, "/healthz"), (200, r#"{"status":"ok"}"#.to_owned()));
    assert_eq!(http_get(&addr, "/readyz"), (200, r#"{"status":"ready"}"#.to_owned()));
    assert!(dir.path().join(".mos/pg/postmaster.pid").exists());

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!dir.path().join(".mos/pg/postmaster.pid").exists(), "the cluster it started was stopped");
    assert!(std::net::TcpStream::connect(&addr).is_err(), "nothing listens any more");
}

#[test]
fn serve_on_a_taken_port_says_so_before_it_creates_or_migrates_anything() {
    let dir = data_dir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = mos().args(["serve", "--listen", &addr]).env("MOS_DATA_DIR", dir.path().join(".mos")).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.starts_with(&format!("error: cannot listen on {addr}")), "{stderr}");
    assert!(stderr.contains("--listen") && stderr.contains("Address already in use"), "{stderr}");
    assert!(!dir.path().join(".mos").exists(), "no data directory, so no cluster and no migration");
    assert!(!stdout.contains("listening"), "{stdout}");
}

#[test]
fn missing_postgres_binaries_fail_with_one_line_naming_the_package() {
    let dir = data_dir();
    let out = mos().arg("migrate").env("MOS_DATA_DIR", dir.path()).env("PG_BIN", "/nonexistent").output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("apt-get install postgresql"), "{stderr}");
}

#[test]
fn unknown_keys_in_the_configuration_file_are_an_error() {
    let dir = data_dir();
    let file = dir.path().join("mos.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:9000\"\ndatabase_ulr = \"postgres://x\"\n").unwrap();
    let out = mos().args(["db", "check"]).env("MOS_CONFIG", &file).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("unknown field `database_ulr`"), "{stderr}");
}

/// `mos serve` on the embedded default in `dir`: the child, its address, and its log as it
/// comes (warnings and errors).
pub fn serve_in(
    dir: &std::path::Path,
    extra_env: &[(&str, &str)],
) -> (std::process::Child, String, Arc<Mutex<String>>) {
    let mut command = mos();
    command.args(["serve", "--listen", "127.0.0.1:0"]).env("MOS_DATA_DIR", dir.join(".mos"));
    for (key, value) in extra_env {
        command.env(key, value);
    }
    serve(command)
}

pub(crate) fn postmaster_pid(dir: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(dir.join(".mos/pg/postmaster.pid")).ok()?.lines().next()?.trim().parse().ok()
}

/// Polls `path` until it answers `status`, for up to a minute.
fn until_status(addr: &str, path: &str, status: u16) -> bool {
    (0..600).any(|_| {
        let answered = std::panic::catch_unwind(|| http_get(addr, path).0).ok();
        answered == Some(status) || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            false
        }
    })
}

#[test]
fn a_killed_postgres_is_started_again_and_the_server_recovers() {
    let dir = data_dir();
    let (mut child, addr, log) = serve_in(dir.path(), &[]);
    assert_eq!(http_get(&addr, "/readyz").0, 200);
    let postmaster = postmaster_pid(dir.path()).unwrap();
    kill(Pid::from_raw(postmaster), Signal::SIGKILL).unwrap();

    // Its backends may serve their connections a moment longer; the supervisor notices the
    // postmaster gone and starts a new one.
    let restarted = (0..600).any(|_| {
        let now = postmaster_pid(dir.path());
        now.is_some() && now != Some(postmaster) || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            false
        }
    });
    assert!(restarted, "a new postmaster; log: {}", log.lock().unwrap());
    assert!(until_status(&addr, "/readyz", 200), "ready again; log: {}", log.lock().unwrap());
    // A well-formed session token is looked up in the database before it is refused: 401, not
    // the 503 of a database away.
    let unknown_session = format!("Authorization: Bearer {}\r\n", "A".repeat(43));
    assert_eq!(http_get_with(&addr, "/v1/orgs", &unknown_session).0, 401, "database routes answer again");
    assert!(until_logged(&log, "restarted the embedded PostgreSQL"), "each restart is logged: {}", log.lock().unwrap());

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(postmaster_pid(dir.path()).is_none(), "and stopped on exit");
}

#[test]
fn serve_stops_cleanly_on_sigint_and_stops_its_cluster() {
    let dir = data_dir();
    let (mut child, addr, log) = serve_in(dir.path(), &[("MOS_LOG", "info")]);
    assert_eq!(http_get(&addr, "/readyz").0, 200);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}; log: {}", log.lock().unwrap());
    assert!(until_logged(&log, "SIGINT received, shutting down"), "{}", log.lock().unwrap());
    assert!(postmaster_pid(dir.path()).is_none(), "the cluster it started was stopped");
}

#[test]
fn the_cluster_of_a_mos_that_died_is_adopted_and_stopped_by_the_next() {
    let dir = data_dir();
    let (mut first, _, _) = serve_in(dir.path(), &[]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(postmaster_pid(dir.path()).is_some(), "left running by the mos that died");

    let (mut next, addr, log) = serve_in(dir.path(), &[]);
    assert_eq!(http_get(&addr, "/readyz").0, 200);
    assert!(log.lock().unwrap().contains("adopting the embedded PostgreSQL"), "{}", log.lock().unwrap());
    kill(Pid::from_raw(next.id() as i32), Signal::SIGTERM).unwrap();
    let status = next.wait().unwrap();
    assert!(status.success(), "{status:?}; log: {}", log.lock().unwrap());
    assert!(postmaster_pid(dir.path()).is_none(), "the adopted cluster stops with its new owner");
}

#[test]
fn readyz_says_not_ready_while_an_audit_guard_is_off() {
    let dir = data_dir();
    let (mut child, addr, log) = serve_in(dir.path(), &[("MOS_CHECK_INTERVAL_SECS", "1")]);
    assert_eq!(http_get(&addr, "/readyz").0, 200);
    let superuser = |sql: &'static str| {
        let options = mos_db::PgConnectOptions::new_without_pgpass()
            .socket(dir.path().join(".mos/pg"))
            .port(mos_db::ops::embedded::PORT)
            .username(mos_db::ops::embedded::SUPERUSER)
            .database(mos_db::ops::embedded::DATABASE);
        tokio::runtime::Runtime::new().unwrap().block_on(async move {
            let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
            sqlx::Executor::execute(&mut conn, sql).await.unwrap();
        });
    };
    superuser("alter table app.audit_logs disable trigger audit_logs_append_only_rows");
    assert!(until_status(&addr, "/readyz", 503), "not ready while the guard is off");
    assert!(log.lock().unwrap().contains("not ready until it is fixed"), "{}", log.lock().unwrap());
    superuser("alter table app.audit_logs enable always trigger audit_logs_append_only_rows");
    assert!(until_status(&addr, "/readyz", 200), "ready again once it is back on");

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
}
