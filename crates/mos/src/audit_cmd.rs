//! `mos audit`: verify the tenants' hash chains, sign checkpoints of their heads, and measure
//! what chaining costs.

use std::path::{Path, PathBuf};

use anyhow::Context;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use mos_db::chain::{self, Head};
use mos_db::first_use;
use serde::{Deserialize, Serialize};

use crate::database::Database;

const KEY_FILE: &str = "audit-signing.key";

/// A signed statement of every tenant's chain head at one moment.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    created_at: chrono::DateTime<chrono::Utc>,
    heads: Vec<SignedHead>,
    /// Hex of the Ed25519 public key that signed it.
    public_key: String,
    /// Hex of the Ed25519 signature over the canonical text of `created_at` and `heads`.
    signature: String,
}

#[derive(Serialize, Deserialize)]
struct SignedHead {
    organization_id: uuid::Uuid,
    seq: i64,
    hash: String,
}

impl Checkpoint {
    /// What is signed: a fixed domain line, the time, then one line per head.
    fn message(created_at: &chrono::DateTime<chrono::Utc>, heads: &[SignedHead]) -> Vec<u8> {
        chain::checkpoint_text(created_at, heads.iter().map(|h| (h.organization_id, h.seq, h.hash.as_str())))
    }
}

/// The signing key: `MOS_AUDIT_SIGNING_KEY` (hex of 32 bytes), else `<data dir>/audit-signing.key`,
/// generated there the first time one is signed with (`create`); checking a signature never
/// makes one, which could only fail to match.
pub(crate) fn signing_key(data_dir: &Path, create: bool) -> anyhow::Result<SigningKey> {
    let text = match std::env::var("MOS_AUDIT_SIGNING_KEY") {
        Ok(text) => text,
        Err(_) => {
            let path = data_dir.join(KEY_FILE);
            anyhow::ensure!(
                create || path.exists(),
                "there is no checkpoint signing key to check the checkpoint with: set MOS_AUDIT_SIGNING_KEY or put \
                 the installation's {KEY_FILE} in {}",
                data_dir.display()
            );
            if !path.exists() {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut seed = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut seed);
                std::fs::create_dir_all(data_dir)?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                file.write_all(hex::encode(seed).as_bytes())?;
                eprintln!("generated the checkpoint signing key {}; keep it apart from the database", path.display());
            }
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?
        }
    };
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("the checkpoint signing key must be 32 bytes in hex")?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// The key a running server signs consent receipts' checkpoints with: the installation's audit
/// signing key. On the embedded database it is made on first use, as `mos audit checkpoint`
/// makes it; with DATABASE_URL only a configured one is taken (MOS_AUDIT_SIGNING_KEY, or the
/// file in the data directory), so that the servers of one database never each make their own.
pub(crate) fn server_key(data_dir: &Path, embedded: bool) -> Option<SigningKey> {
    match signing_key(data_dir, embedded) {
        Ok(key) => Some(key),
        Err(e) => {
            tracing::warn!(error = %e, "consent receipts are handed out without a signed checkpoint");
            None
        }
    }
}

/// Prints the public key that verifies checkpoints and consent receipts (hex).
pub fn public_key(data_dir: &Path) -> anyhow::Result<String> {
    Ok(hex::encode(signing_key(data_dir, false)?.verifying_key().as_bytes()))
}

/// A connection that reads every tenant's records: RLS binds everyone else, and a verifier that
/// saw no rows would call every chain intact.
async fn all_seeing(db: &Database) -> anyhow::Result<sqlx::PgConnection> {
    let mut conn = db.admin().await?;
    let sees_all: bool =
        sqlx::query_scalar("select rolsuper or rolbypassrls from pg_roles where rolname = current_user")
            .fetch_one(&mut conn)
            .await?;
    anyhow::ensure!(
        sees_all,
        "the audit tools read every organization's records, which row-level security hides from this role; \
         point DATABASE_URL at a superuser or a BYPASSRLS role for them"
    );
    Ok(conn)
}

pub async fn checkpoint(db: &Database, data_dir: &Path, out: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let key = signing_key(data_dir, true)?;
    let heads = chain::heads(&mut all_seeing(db).await?).await?;
    let created_at = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    let heads: Vec<SignedHead> = heads
        .into_iter()
        .map(|h| SignedHead { organization_id: h.organization_id, seq: h.seq, hash: hex::encode(h.hash) })
        .collect();
    let signature = key.sign(&Checkpoint::message(&created_at, &heads));
    let checkpoint = Checkpoint {
        created_at,
        heads,
        public_key: hex::encode(key.verifying_key().as_bytes()),
        signature: hex::encode(signature.to_bytes()),
    };
    let path = out.unwrap_or_else(|| {
        data_dir.join("checkpoints").join(format!("{}.json", created_at.format("%Y%m%dT%H%M%S%.6fZ")))
    });
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&checkpoint)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Reads a checkpoint and proves it was signed by our key; the heads it vouches for.
pub(crate) fn trusted_heads(
    path: &Path,
    data_dir: &Path,
) -> anyhow::Result<(chrono::DateTime<chrono::Utc>, Vec<Head>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let checkpoint: Checkpoint =
        serde_json::from_str(&text).with_context(|| format!("{} is not a checkpoint", path.display()))?;
    let ours: VerifyingKey = signing_key(data_dir, false)?.verifying_key();
    anyhow::ensure!(
        hex::encode(ours.as_bytes()) == checkpoint.public_key,
        "{} was signed with another key than this installation's",
        path.display()
    );
    let signature: [u8; 64] =
        hex::decode(&checkpoint.signature).ok().and_then(|b| b.try_into().ok()).context("malformed signature")?;
    ours.verify(&Checkpoint::message(&checkpoint.created_at, &checkpoint.heads), &Signature::from_bytes(&signature))
        .map_err(|_| anyhow::anyhow!("the signature of {} does not match its contents", path.display()))?;
    let heads = checkpoint
        .heads
        .iter()
        .map(|h| {
            let hash: [u8; 32] =
                hex::decode(&h.hash).ok().and_then(|b| b.try_into().ok()).context("malformed head hash")?;
            Ok(Head { organization_id: h.organization_id, seq: h.seq, hash })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((checkpoint.created_at, heads))
}

/// What `verify` checks besides the chains.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checks<'a> {
    /// A signed checkpoint whose heads every chain must still reach.
    pub checkpoint: Option<&'a Path>,
    /// A first-use evidence document whose claims the database must back.
    pub evidence: Option<&'a Path>,
}

/// Prints what it finds; true when every chain holds (and, with a checkpoint, still reaches
/// every head the checkpoint signed; with evidence, backs every claim of it).
pub async fn verify(db: &Database, data_dir: &Path, org: Option<&str>, checks: Checks<'_>) -> anyhow::Result<bool> {
    let Checks { checkpoint, evidence } = checks;
    let mut conn = all_seeing(db).await?;
    let reports = chain::verify(&mut conn, org, chrono::Utc::now()).await?;
    anyhow::ensure!(org.is_none() || !reports.is_empty(), "no organization has the slug {:?}", org.unwrap_or_default());
    let mut ok = true;
    for r in &reports {
        match &r.broken {
            None => {
                println!(
                    "{}: {} records, chain intact to {} ({})",
                    r.slug,
                    r.records,
                    r.head.0,
                    hex::encode(&r.head.1[..8])
                );
                ok &= approvals_proven(&mut conn, r).await?;
                ok &= campaigns_proven(&mut conn, r).await?;
            }
            Some(b) => {
                ok = false;
                println!("{}: broken at record {}: {} ({})", r.slug, b.seq, b.reason, b.detail);
            }
        }
    }
    if let Some(path) = evidence {
        ok &= evidence_backed(&mut conn, &reports, path).await?;
    }
    if let Some(path) = checkpoint {
        let (signed_at, heads) = trusted_heads(path, data_dir)?;
        for head in heads.iter().filter(|h| reports.iter().any(|r| r.organization_id == h.organization_id)) {
            let slug =
                reports.iter().find(|r| r.organization_id == head.organization_id).map_or("?", |r| r.slug.as_str());
            if chain::holds(&mut conn, head).await? {
                println!("{slug}: record {} signed at {signed_at} is still in place", head.seq);
            } else {
                ok = false;
                println!("{slug}: broken at record {}: deleted (the record the checkpoint of {signed_at} signed is gone or altered)", head.seq);
                for restore in restores(&mut conn, head.organization_id).await? {
                    println!("{slug}: {restore}");
                }
            }
        }
    }
    Ok(ok)
}

/// Checks the first-use evidence at `path` against the database, once its organization's chain
/// verified; prints each problem, or what it backs.
async fn evidence_backed(
    conn: &mut sqlx::PgConnection,
    reports: &[chain::Report],
    path: &Path,
) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let evidence: first_use::Evidence = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a first-use evidence document", path.display()))?;
    let name = path.display();
    let Some(report) = reports.iter().find(|r| r.organization_id == evidence.organization_id) else {
        println!("{name}: not backed: its organization is not among those verified");
        return Ok(false);
    };
    if report.broken.is_some() {
        println!("{name}: not backed: the chain of {} is broken", report.slug);
        return Ok(false);
    }
    let problems = first_use::check(conn, &evidence).await?;
    for problem in &problems {
        println!("{name}: not backed: {problem}");
    }
    if problems.is_empty() {
        let records: usize = evidence.versions.iter().map(|v| v.records.len()).sum();
        println!(
            "{name}: backed: the first use of {} version(s) of content {} in {}, by {records} sealed records",
            evidence.versions.len(),
            evidence.content_id,
            report.slug
        );
    }
    Ok(problems.is_empty())
}

/// The restores that the organization's own chain records, described for the reader of a cut
/// tail: an honest restore to before a checkpoint cuts the chain and says so in it, right after
/// the record the backup ended at (docs/operations.md, "Restores and the audit chain").
async fn restores(conn: &mut sqlx::PgConnection, org: uuid::Uuid) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(chrono::DateTime<chrono::Utc>, serde_json::Value)> = sqlx::query_as(
        "select created_at, metadata from app.audit_logs
          where organization_id = $1 and action = $2 order by created_at",
    )
    .bind(org)
    .bind(mos_domain::events::BACKUP_RESTORED.as_str())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(at, meta)| {
            let field = |key: &str| meta.get(key).and_then(|v| v.as_str()).unwrap_or("?").to_owned();
            let kept = meta.pointer("/chain_head_restored/seq").and_then(serde_json::Value::as_i64).unwrap_or(0);
            format!(
                "the chain records a restore at {at} by {} from the backup of {} (manifest SHA-256 {}), which kept records up to {kept}; the records after it that a checkpoint signed were lost in that restore",
                field("restored_by"),
                field("backup_started_at"),
                field("backup_manifest_sha256"),
            )
        })
        .collect())
}

/// Prints what the (verified) chain proves about each published content version of the
/// tenant of `report`; true when it proves every one.
async fn approvals_proven(conn: &mut sqlx::PgConnection, report: &chain::Report) -> anyhow::Result<bool> {
    let proofs = mos_db::content::evidence(conn, report.organization_id).await?;
    let unproven: Vec<_> = proofs.iter().filter(|p| p.problem.is_some()).collect();
    if !proofs.is_empty() && unproven.is_empty() {
        println!(
            "{}: {} published content version(s), each approved in the chain by members other than its author",
            report.slug,
            proofs.len()
        );
    }
    for p in &unproven {
        println!(
            "{}: content {} version {} ({}) is not proven: {}",
            report.slug,
            p.item,
            p.version,
            &p.sha256.to_string()[..16],
            p.problem.as_deref().unwrap_or_default()
        );
    }
    Ok(unproven.is_empty())
}

/// Prints what the (verified) chain and the send ledger prove about each launched campaign of
/// the tenant of `report` (docs/campaigns.md, "Proof"); true when they prove every one.
async fn campaigns_proven(conn: &mut sqlx::PgConnection, report: &chain::Report) -> anyhow::Result<bool> {
    let proofs = mos_db::campaigns::evidence(conn, report.organization_id).await?;
    for p in &proofs {
        let campaign = format!("campaign {} version {} ({})", p.campaign, p.version, &p.sha256.to_string()[..16]);
        if p.problems.is_empty() {
            println!(
                "{}: {campaign}: {} message(s) sent in {} sealed batch(es), each proven from the ledger; none handed over after a withdrawal, without a live consent or to a suppressed address",
                report.slug, p.sent, p.batches
            );
        }
        for problem in &p.problems {
            println!("{}: {campaign} is not proven: {problem}", report.slug);
        }
    }
    Ok(proofs.iter().all(|p| p.problems.is_empty()))
}

/// Seals everything pending, once; for operators and for servers that do not run `serve`.
pub async fn seal(db: &Database) -> anyhow::Result<chain::Sweep> {
    let pool = db.app_pool().await?;
    let sweep = chain::seal(&pool, None, chain::WINDOW).await;
    pool.close().await;
    Ok(sweep?)
}

/// How often `serve` seals.
pub const SEAL_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A sealing lag worth a warning: records this old were waiting for their place in the chain.
const LAG_WARNING: chrono::Duration = chrono::Duration::seconds(10);

/// Every how many quick sweeps a full one looks back over the whole window.
const FULL_EVERY: u32 = 60;

/// How far back sweep number `n` of a server looks: over the whole window first and every
/// [`FULL_EVERY`]th sweep, a few seconds otherwise.
fn window_of_sweep(n: u32) -> chrono::Duration {
    if n.is_multiple_of(FULL_EVERY) {
        chain::WINDOW
    } else {
        chain::QUICK_WINDOW
    }
}

/// Whether records that waited `lag` for their seal are worth a warning.
fn too_late(lag: chrono::Duration) -> bool {
    lag > LAG_WARNING
}

/// The audit sealing of a running server: every [`SEAL_EVERY`], it seals what was written since its
/// last sweep, looking back a few seconds for late commits; once a minute (and first) it looks
/// back over the whole window. Errors are logged and retried on the next tick.
pub async fn seal_continuously(pool: mos_db::AppPool) {
    let mut since = None;
    for sweep_number in 0u32.. {
        let started = chrono::Utc::now();
        let window = window_of_sweep(sweep_number);
        match chain::seal(&pool, since, window).await {
            Ok(sweep) => {
                let lag = sweep.oldest.map(|oldest| started - oldest);
                match lag {
                    Some(lag) if too_late(lag) => tracing::warn!(
                        lag_ms = lag.num_milliseconds(),
                        sealed = sweep.sealed,
                        "audit records waited long for their seal; is the database overloaded?"
                    ),
                    Some(lag) => {
                        tracing::debug!(lag_ms = lag.num_milliseconds(), sealed = sweep.sealed, "sealed audit records")
                    }
                    None => {}
                }
                since = Some(started);
            }
            Err(e) => tracing::error!(error = %e, "sealing the audit log failed; retrying"),
        }
        tokio::time::sleep(SEAL_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_sweeps_the_whole_window_first_and_once_a_minute_and_a_few_seconds_otherwise() {
        let full: Vec<u32> = (0..=180).filter(|n| window_of_sweep(*n) == chain::WINDOW).collect();
        assert_eq!(full, [0, 60, 120, 180]);
        assert_eq!((chain::WINDOW.num_minutes(), chain::QUICK_WINDOW.num_seconds()), (10, 5));
        assert_eq!(window_of_sweep(1), chain::QUICK_WINDOW);
        assert_eq!((SEAL_EVERY.as_secs(), FULL_EVERY), (1, 60), "a sweep a second: a full one each minute");
    }

    #[test]
    fn records_that_waited_more_than_ten_seconds_for_their_seal_are_warned_about() {
        assert!(!too_late(chrono::Duration::seconds(10)));
        assert!(too_late(chrono::Duration::seconds(10) + chrono::Duration::milliseconds(1)));
    }
}
