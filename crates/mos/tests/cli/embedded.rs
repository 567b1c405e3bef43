use std::io::{BufRead, BufReader};
use std::process::Stdio;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{data_dir, http_get, mos, text};

#[test]
fn on_the_embedded_default_migrate_seed_and_check_work_and_repeat_safely() {
    let dir = data_dir();
    let run = |args: &[&str]| mos().args(args).env("MOS_DATA_DIR", dir.path().join(".mos")).output().unwrap();

    let out = run(&["migrate"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(
        text(&out).0,
        "applied 0001_foundation\napplied 0002_identity\napplied 0003_organizations\napplied 0004_audit_chain\napplied 0005_citus_plannable\napplied 0006_request_context\napplied 0007_hardening\n"
    );
    let out = run(&["migrate"]);
    assert_eq!(text(&out).0, "schema is up to date (7 migrations)\n");

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
    let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line}")).to_owned();

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
