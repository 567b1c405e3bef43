//! `mos backup` and `mos restore` of the embedded cluster, and the backups `mos serve` takes on
//! a schedule.
//!
//! A backup is PostgreSQL's own physical copy (`pg_basebackup` with the WAL it needs), not a
//! dump: it restores the cluster exactly, roles with their attributes, grants, row-level
//! security and its FORCE flag, the audit guard triggers and the migrations table included,
//! where a dump of the database leaves the roles behind (docs/operations.md says more). Beside
//! it lies a manifest with the SHA-256 of every file, so that a corrupted or truncated backup is
//! refused before anything is restored, and the organizations' chain heads at the start.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use chrono::{DateTime, SecondsFormat, Utc};
use mos_db::chain::{self, Head};
use mos_db::ops::embedded::{Cluster, PgBinaries};
use mos_db::ops::migrate;
use mos_db::{audit, PgConnectOptions};
use mos_domain::{events, AuditEvent, OrgId, RequestSource};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::ConnectOptions;

use crate::config::{DatabaseConfig, Settings};
use crate::database::Database;

/// The manifest's name inside a backup.
pub const MANIFEST: &str = "mos-backup.json";
const FORMAT: &str = "mos-backup-1";
const BASE: &str = "base.tar.gz";
const WAL: &str = "pg_wal.tar.gz";
/// What may already be in the data directory a restore goes into: the keys that are not in the
/// database, put back first so that no server ever generates new ones over the restored data.
const KEY_FILES: [&str; 2] = ["totp.key", "audit-signing.key"];
/// Scheduled backups are named so that their names sort by time.
const SCHEDULED_PREFIX: &str = "mos-backup-";

#[derive(Serialize, Deserialize)]
pub struct Manifest {
    format: String,
    /// When the copy began; every transaction committed before it is in the backup.
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    mos_version: String,
    /// The highest migration applied, and how many are.
    schema_version: i64,
    migrations: usize,
    postgresql_version: String,
    postgresql_major: u32,
    /// Each organization's chain head before the copy began: the backup holds at least these.
    organizations: Vec<OrgHead>,
    files: Vec<FileHash>,
}

#[derive(Serialize, Deserialize)]
struct OrgHead {
    id: uuid::Uuid,
    slug: String,
    seq: i64,
    hash: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct FileHash {
    path: String,
    bytes: u64,
    sha256: String,
}

/// A destination ending in `.tar` is one file; anything else, a directory.
fn is_single_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "tar")
}

fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// `mos backup DEST`: the embedded cluster, running or not, into `DEST`.
pub async fn run(db: &Database, dest: &Path) -> anyhow::Result<ExitCode> {
    let Some(cluster) = db.cluster() else {
        bail!(
            "mos backup copies the embedded database, and DATABASE_URL points at a server that someone else runs: \
             back that server up with its own tools (pg_basebackup as a role with REPLICATION, with pg_hba.conf \
             admitting it, or the provider's snapshots and point-in-time recovery), which keep its roles too; \
             docs/operations.md (With DATABASE_URL) says what a backup of it must hold"
        );
    };
    let manifest = take(cluster, &db.admin_options(), dest).await?;
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    println!("backup written to {}", dest.display());
    println!(
        "  taken {} (mos {}, schema version {}, PostgreSQL {}), {} file(s), {bytes} bytes",
        manifest.started_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        manifest.mos_version,
        manifest.schema_version,
        manifest.postgresql_version,
        manifest.files.len()
    );
    for org in &manifest.organizations {
        println!("  {}: audit chain head {} ({})", org.slug, org.seq, &org.hash[..16]);
    }
    Ok(ExitCode::SUCCESS)
}

/// Takes a backup into `dest`, which must not exist: written under a hidden name beside it,
/// its manifest verified against what is on disk, and only then renamed, so that a backup
/// under its final name is always complete.
pub async fn take(cluster: &Cluster, admin: &PgConnectOptions, dest: &Path) -> anyhow::Result<Manifest> {
    ensure!(!dest.exists(), "{} already exists; a backup never overwrites anything", dest.display());
    let parent = parent_of(dest);
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = dest.file_name().context("the backup's destination has no name")?.to_string_lossy();
    let staging = parent.join(format!(".{name}.partial"));
    let archive = parent.join(format!(".{name}.partial.tar"));
    // A leftover of an attempt that was interrupted is nobody's backup.
    remove_if_there(&staging)?;
    remove_if_there(&archive)?;
    let result = write(cluster, admin, dest, &staging, &archive).await;
    if result.is_err() {
        let _ = remove_if_there(&staging);
        let _ = remove_if_there(&archive);
    }
    result
}

async fn write(
    cluster: &Cluster,
    admin: &PgConnectOptions,
    dest: &Path,
    staging: &Path,
    archive: &Path,
) -> anyhow::Result<Manifest> {
    // The backup holds password hashes and sealed secrets: its owner's alone.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(staging)
        .with_context(|| format!("creating {}", staging.display()))?;
    let started_at = Utc::now();
    let mut conn = admin.connect().await.context("connecting to the embedded database")?;
    let status = migrate::status(&mut conn).await?;
    let (postgresql_version, postgresql_major): (String, i32) =
        sqlx::query_as("select current_setting('server_version'), current_setting('server_version_num')::int / 10000")
            .fetch_one(&mut conn)
            .await?;
    let organizations = org_heads(&mut conn).await?;
    sqlx::Connection::close(conn).await?;

    let label = format!("mos backup {}", started_at.to_rfc3339_opts(SecondsFormat::Secs, true));
    cluster.base_backup(staging, &label).await?;
    let dir = staging.to_owned();
    let files = tokio::task::spawn_blocking(move || hash_dir(&dir, true)).await??;
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        started_at,
        finished_at: Utc::now(),
        mos_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version: status.applied.iter().copied().max().unwrap_or(0),
        migrations: status.applied.len(),
        postgresql_version,
        postgresql_major: u32::try_from(postgresql_major).unwrap_or(0),
        organizations,
        files,
    };
    write_synced(&staging.join(MANIFEST), &serde_json::to_vec_pretty(&manifest)?)?;
    std::fs::File::open(staging)?.sync_all()?;
    let dir = staging.to_owned();
    tokio::task::spawn_blocking(move || verify(&dir))
        .await?
        .context("the backup just written does not match its manifest")?;

    if is_single_file(dest) {
        let out = tokio::process::Command::new("tar")
            .arg("--create")
            .arg("--file")
            .arg(archive)
            .arg("--directory")
            .arg(staging)
            .arg(".")
            .output()
            .await
            .context("running tar")?;
        ensure!(out.status.success(), "tar failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        std::fs::set_permissions(archive, std::fs::Permissions::from_mode(0o600))?;
        std::fs::File::open(archive)?.sync_all()?;
        std::fs::rename(archive, dest).with_context(|| format!("renaming to {}", dest.display()))?;
        std::fs::remove_dir_all(staging)?;
    } else {
        std::fs::rename(staging, dest).with_context(|| format!("renaming to {}", dest.display()))?;
    }
    std::fs::File::open(parent_of(dest))?.sync_all()?;
    Ok(manifest)
}

/// Every organization with its chain head (the genesis for one with nothing sealed yet).
async fn org_heads(conn: &mut sqlx::PgConnection) -> anyhow::Result<Vec<OrgHead>> {
    let rows: Vec<(uuid::Uuid, String, i64, Vec<u8>)> = sqlx::query_as(
        "select o.id, o.slug, coalesce(h.seq, 0), coalesce(h.hash, decode(repeat('00', 32), 'hex'))
           from app.organizations o left join app.audit_chain_heads h on h.organization_id = o.id
          order by o.slug",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(id, slug, seq, hash)| OrgHead { id, slug, seq, hash: hex::encode(hash) }).collect())
}

fn remove_if_there(path: &Path) -> anyhow::Result<()> {
    let removed = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// Every file under `dir` but the manifest, by path relative to `dir`, sorted; with `sync`, each
/// is flushed to disk first (a backup being written, not one being read).
fn hash_dir(dir: &Path, sync: bool) -> anyhow::Result<Vec<FileHash>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).with_context(|| format!("reading {}", current.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(dir)?.to_string_lossy().into_owned();
            if relative == MANIFEST {
                continue;
            }
            if sync {
                std::fs::File::open(&path)?.sync_all()?;
            }
            let (bytes, sha256) = hash_file(&path)?;
            files.push(FileHash { path: relative, bytes, sha256 });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn hash_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let (mut hasher, mut buffer, mut bytes) = (Sha256::new(), vec![0u8; 1 << 16], 0u64);
    loop {
        let n = file.read(&mut buffer).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// Reads the manifest of the backup in `dir` and checks every file against it: none missing,
/// none extra, each of its size and SHA-256. Reads everything; changes nothing.
fn verify(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read(&path).with_context(|| format!("no readable {MANIFEST} in {}", dir.display()))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).with_context(|| format!("{} is not a backup manifest", path.display()))?;
    ensure!(manifest.format == FORMAT, "{} is of format {:?}, not {FORMAT:?}", path.display(), manifest.format);
    for needed in [BASE, WAL] {
        ensure!(manifest.files.iter().any(|f| f.path == needed), "the manifest lists no {needed}");
    }
    let found = hash_dir(dir, false)?;
    for expected in &manifest.files {
        let Some(actual) = found.iter().find(|f| f.path == expected.path) else {
            bail!("{} is missing from the backup", expected.path);
        };
        ensure!(
            actual.bytes == expected.bytes,
            "{} has {} bytes where the manifest says {} (truncated or altered)",
            expected.path,
            actual.bytes,
            expected.bytes
        );
        ensure!(
            actual.sha256 == expected.sha256,
            "the SHA-256 of {} is not the manifest's (corrupted or altered)",
            expected.path
        );
    }
    if let Some(extra) = found.iter().find(|f| !manifest.files.iter().any(|e| e.path == f.path)) {
        bail!("{} is in the backup but not in its manifest", extra.path);
    }
    Ok(manifest)
}

/// The data directory must hold nothing a restore could overwrite: no cluster, nothing at all
/// but the key files.
fn ensure_vacant(data_dir: &Path) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(data_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", data_dir.display())),
    };
    for entry in entries {
        let name = entry?.file_name();
        if !KEY_FILES.iter().any(|k| name.as_os_str() == *k) {
            bail!(
                "refusing to restore into {}: it is not empty (it holds {}); a restore goes into an empty data \
                 directory (the key files {} may be there already), so that it never overwrites a database",
                data_dir.display(),
                name.to_string_lossy(),
                KEY_FILES.join(" and ")
            );
        }
    }
    Ok(())
}

/// The name of the operating-system user running this, for the record of a restore.
fn operator() -> String {
    let uid = nix::unistd::geteuid();
    nix::unistd::User::from_uid(uid).ok().flatten().map_or_else(|| format!("uid {uid}"), |u| u.name)
}

/// `mos restore SOURCE`: checks the backup whole, lays it down as the embedded cluster in the
/// empty data directory, starts it, checks the database and every chain, and records the
/// restore in every organization's chain. Exit 2 when a check finds a problem.
pub async fn restore(settings: &Settings, source: &Path, checkpoint: Option<&Path>) -> anyhow::Result<ExitCode> {
    let DatabaseConfig::Embedded { data_dir, pg_bin } = &settings.database else {
        bail!("mos restore restores the embedded database; unset DATABASE_URL (a server someone else runs is restored with its own tools)");
    };
    ensure!(source.exists(), "there is no backup at {}", source.display());
    ensure_vacant(data_dir)?;
    let refused = || format!("refusing to restore {}; nothing was restored", source.display());
    let mut unpacked = None;
    let dir = if source.is_file() {
        let parent = parent_of(data_dir);
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let into = tempfile::Builder::new().prefix(".mos-restore-").tempdir_in(parent)?;
        let out = tokio::process::Command::new("tar")
            .arg("--extract")
            .arg("--file")
            .arg(source)
            .arg("--directory")
            .arg(into.path())
            .output()
            .await
            .context("running tar")?;
        if !out.status.success() {
            bail!("{}: it is not a whole backup archive: {}", refused(), String::from_utf8_lossy(&out.stderr).trim());
        }
        let dir = into.path().to_owned();
        unpacked = Some(into);
        dir
    } else {
        source.to_owned()
    };
    let manifest = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || verify(&dir)).await?.with_context(refused)?
    };
    let manifest_sha256 = hash_file(&dir.join(MANIFEST))?.1;
    let bin = PgBinaries::locate(pg_bin.as_deref())?;
    let major = bin.major()?;
    ensure!(
        manifest.postgresql_major == major,
        "{}: it is a copy of a PostgreSQL {} cluster, and the binaries in {} are PostgreSQL {major}; restore it with \
         PostgreSQL {}'s binaries (PG_BIN), then upgrade as docs/operations.md describes",
        refused(),
        manifest.postgresql_major,
        bin.dir().display(),
        manifest.postgresql_major
    );
    // Read before anything is restored, so that an unusable checkpoint refuses the restore too.
    let signed = match checkpoint {
        Some(path) => Some(crate::audit_cmd::trusted_heads(path, data_dir).with_context(refused)?),
        None => None,
    };

    Cluster::restore(bin, data_dir, &dir.join(BASE), &dir.join(WAL)).await?;
    drop(unpacked);
    println!(
        "restored the backup taken {} (mos {}, schema version {}, PostgreSQL {}) into {}",
        manifest.started_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        manifest.mos_version,
        manifest.schema_version,
        manifest.postgresql_version,
        data_dir.display()
    );
    let db = Database::open(settings).await?;
    let result = after_restore(&db, settings, &manifest, &manifest_sha256, signed).await;
    db.close().await;
    result
}

/// What a restore does once the cluster runs again.
async fn after_restore(
    db: &Database,
    settings: &Settings,
    manifest: &Manifest,
    manifest_sha256: &str,
    signed: Option<(DateTime<Utc>, Vec<Head>)>,
) -> anyhow::Result<ExitCode> {
    let mut ok = crate::report_check(db).await?;
    if ok {
        println!("db check: ok");
    }
    let mut conn = db.admin().await?;
    let restored = org_heads(&mut conn).await?;
    for head in &manifest.organizations {
        let as_head = Head { organization_id: head.id, seq: head.seq, hash: parse_hash(&head.hash)? };
        if !chain::holds(&mut conn, &as_head).await? {
            ok = false;
            println!("{}: record {} of the backup's chain head is not in the restored chain", head.slug, head.seq);
        }
    }

    let pool = db.app_pool().await?;
    let by = operator();
    for org in &restored {
        let mut event = AuditEvent::new(events::BACKUP_RESTORED, events::BACKUP)
            .resource_id(manifest.started_at.to_rfc3339_opts(SecondsFormat::Micros, true))
            .source(RequestSource { user_agent: Some("mos restore".into()), ..RequestSource::default() })
            .meta("backup_started_at", manifest.started_at.to_rfc3339_opts(SecondsFormat::Micros, true).into())
            .meta("backup_finished_at", manifest.finished_at.to_rfc3339_opts(SecondsFormat::Micros, true).into())
            .meta("backup_manifest_sha256", manifest_sha256.into())
            .meta("backup_mos_version", manifest.mos_version.clone().into())
            .meta("restored_by", by.clone().into())
            .meta("chain_head_restored", serde_json::json!({ "seq": org.seq, "hash": org.hash }));
        let later = signed.as_ref().and_then(|(at, heads)| {
            heads.iter().find(|h| h.organization_id == org.id && h.seq > org.seq).map(|h| (at, h))
        });
        if let Some((at, head)) = later {
            println!(
                "{}: the backup ends at record {}, before record {} that the checkpoint of {at} signed: records {} to {} \
                 (and any after) are not restored; this rollback is recorded in the chain",
                org.slug,
                org.seq,
                head.seq,
                org.seq + 1,
                head.seq
            );
            event = event.meta(
                "rolled_back",
                serde_json::json!({
                    "checkpoint_created_at": at.to_rfc3339_opts(SecondsFormat::Micros, true),
                    "checkpoint_seq": head.seq,
                    "checkpoint_hash": hex::encode(head.hash),
                }),
            );
        }
        let mut tx = pool.begin_tenant(OrgId::from_uuid(org.id)?, None).await?;
        audit::record(&mut tx, &event).await?;
        tx.commit().await?;
    }
    chain::seal(&pool, None, chain::WINDOW).await?;
    pool.close().await;
    println!("recorded the restore in the audit chain of {} organization(s)", restored.len());
    ok &= crate::audit_cmd::verify(db, &settings.data_dir, None, crate::audit_cmd::Checks::default()).await?;
    if !settings.data_dir.join(KEY_FILES[0]).exists() {
        println!(
            "note: there is no {} in {}: put the one of the backed-up installation there before `mos serve`, which \
             would otherwise make a new one, and two-factor codes and device tokens would no longer check",
            KEY_FILES[0],
            settings.data_dir.display()
        );
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(crate::EXIT_PROBLEMS) })
}

fn parse_hash(text: &str) -> anyhow::Result<[u8; 32]> {
    hex::decode(text).ok().and_then(|b| b.try_into().ok()).context("a chain head in the manifest is malformed")
}

/// When `mos serve` takes backups: every `interval` into `dir`, keeping the newest `keep`.
pub struct Schedule {
    pub dir: PathBuf,
    pub interval: Duration,
    pub keep: usize,
}

/// Takes a backup every interval while the server runs, logging each start, end and failure;
/// the outcome of the last one shows in `/readyz`. Only complete backups count towards `keep`.
pub async fn scheduled(cluster: Cluster, admin: PgConnectOptions, schedule: Schedule, readiness: mos_http::Readiness) {
    loop {
        tokio::time::sleep(schedule.interval).await;
        let at = Utc::now();
        let dest = schedule.dir.join(format!("{SCHEDULED_PREFIX}{}", at.format("%Y%m%dT%H%M%S%.6fZ")));
        tracing::info!(path = %dest.display(), "scheduled backup started");
        match take(&cluster, &admin, &dest).await {
            Ok(manifest) => {
                let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
                let seconds = (Utc::now() - at).num_milliseconds() as f64 / 1000.0;
                tracing::info!(path = %dest.display(), bytes, seconds, "scheduled backup written and verified");
                readiness.record_backup(None);
                if let Err(e) = prune(&schedule.dir, schedule.keep) {
                    tracing::warn!(error = %format!("{e:#}"), "removing old scheduled backups failed");
                }
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), path = %dest.display(), "scheduled backup failed");
                readiness.record_backup(Some(at.to_rfc3339_opts(SecondsFormat::Secs, true)));
            }
        }
    }
}

/// Removes the oldest scheduled backups beyond the newest `keep`.
fn prune(dir: &Path, keep: usize) -> anyhow::Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(SCHEDULED_PREFIX))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(keep);
    for name in &names[..excess] {
        std::fs::remove_dir_all(dir.join(name)).with_context(|| format!("removing {name}"))?;
        tracing::info!(path = %dir.join(name).display(), "removed a scheduled backup beyond the number to keep");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_oldest_scheduled_backups_beyond_the_number_to_keep_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["mos-backup-20260101T000000Z", "mos-backup-20260102T000000Z", "mos-backup-20260103T000000Z"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::create_dir(dir.path().join(".mos-backup-20260104T000000Z.partial")).unwrap();
        std::fs::create_dir(dir.path().join("by-hand")).unwrap();
        prune(dir.path(), 2).unwrap();
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".mos-backup-20260104T000000Z.partial",
                "by-hand",
                "mos-backup-20260102T000000Z",
                "mos-backup-20260103T000000Z"
            ]
        );
    }
}
