//! The `mos` binary, run as a user would: on the embedded default in a fresh data directory,
//! and against the test cluster through DATABASE_URL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod backup;
mod consent;
mod embedded;
mod external;
mod feedback;
mod import;
mod sending;

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

/// The server key every `mos serve` of [`serve_command`] has (and so the keys of addresses and
/// the seal of a sender's DKIM key that a test arranges for it).
pub const SERVER_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// `mos serve` on a free port against the database at `url`, with `dir` as its data directory
/// and a fixed server key (and so fixed keys of addresses).
pub fn serve_command(url: &str, dir: &std::path::Path) -> Command {
    let mut command = mos();
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", url)
        .env("MOS_DATA_DIR", dir)
        .env("MOS_TOTP_KEY", SERVER_KEY);
    command
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
    http_get_with(addr, path, "")
}

/// A minimal HTTP/1.1 GET with `headers` (each line ending in CRLF): status line's code and the body.
pub fn http_get_with(addr: &str, path: &str, headers: &str) -> (u16, String) {
    http_request(addr, "GET", path, headers, b"")
}

/// A minimal HTTP/1.1 request with `headers` (each line ending in CRLF) and `body`: status
/// line's code and the body.
pub fn http_request(addr: &str, method: &str, path: &str, headers: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let length = if body.is_empty() { String::new() } else { format!("Content-Length: {}\r\n", body.len()) };
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}{length}Connection: close\r\n\r\n").unwrap();
    stream.write_all(body).unwrap();
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

/// Spawns `command`, a `mos serve`: the child, its address, and its log as it comes.
pub fn serve(mut command: Command) -> (std::process::Child, String, std::sync::Arc<std::sync::Mutex<String>>) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (stderr, sink) = (child.stderr.take().unwrap(), log.clone());
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on "), "{line}: {log:?}");
    let addr = listening_address(&line);
    (child, addr, log)
}

/// Polls `log` until it holds `text`, for up to a minute.
pub fn until_logged(log: &std::sync::Mutex<String>, text: &str) -> bool {
    (0..600).any(|_| {
        log.lock().unwrap().contains(text) || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            false
        }
    })
}
