//! The `mos` binary, run as a user would: on the embedded default in a fresh data directory,
//! and against the test cluster through DATABASE_URL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod backup;
mod embedded;
mod external;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

/// `mos` with a clean environment of its own settings.
pub fn mos() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mos"));
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("MOS_") || k == "DATABASE_URL") {
            cmd.env_remove(key);
        }
    }
    cmd.env("MOS_LOG", "warn");
    cmd
}

/// A data directory that the `postgres` system user can reach when the tests run as root.
pub fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The migrations this build applies, named as `mos migrate` prints them (`0001_foundation`).
pub fn migration_names() -> Vec<String> {
    mos_db::ops::migrate::MIGRATIONS.iter().map(|m| format!("{m:?}")).collect()
}

pub fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A minimal HTTP/1.1 GET: status line's code and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.split_whitespace().nth(1).unwrap().parse().unwrap(), body.to_owned())
}

/// The socket address in `mos serve`'s first line, `listening on ADDR, open URL`.
pub fn listening_address(line: &str) -> String {
    let rest = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{line}"));
    rest.split(", open ").next().unwrap().to_owned()
}
