//! `mos db upgrade`: moves the embedded cluster to the PostgreSQL major version of the machine's
//! binaries, keeping the old cluster until the new one checks out.
//!
//! It dumps the whole cluster with the old major's `pg_dumpall` (roles, grants, row-level
//! security, triggers and all) and loads it into a cluster that the new binaries made. It does
//! not use `pg_upgrade`, which is faster on a large cluster but comes with the new major's client
//! programs, and the tested upgrade path has only its server binaries.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, ensure, Context};
use mos_db::ops::embedded::{self, Cluster, PgBinaries, Tuning};

use crate::config::{DatabaseConfig, Settings};
use crate::database::Database;

pub async fn run(settings: &Settings, old_bin: Option<&Path>) -> anyhow::Result<ExitCode> {
    let DatabaseConfig::Embedded { data_dir, pg_bin } = &settings.database else {
        bail!("mos db upgrade moves the embedded cluster; a server at DATABASE_URL is upgraded by whoever runs it");
    };
    let new_bin = PgBinaries::locate(pg_bin.as_deref())?;
    let to = new_bin.major()?;
    let pgdata = data_dir.join("pg");
    let Some(from) = embedded::cluster_major(&pgdata)? else {
        bail!("there is no cluster in {} to upgrade", pgdata.display());
    };
    if from == to {
        println!("the cluster is PostgreSQL {to} already, as the binaries in {} are", new_bin.dir().display());
        return Ok(ExitCode::SUCCESS);
    }
    ensure!(
        from < to,
        "the cluster is PostgreSQL {from}, newer than the binaries' {to}; a cluster is never moved to an older major"
    );
    let old_dir = old_bin.map_or_else(|| PathBuf::from(format!("/usr/lib/postgresql/{from}/bin")), Path::to_owned);
    let old_bin = PgBinaries::locate(Some(&old_dir)).with_context(|| {
        format!("reading the cluster takes PostgreSQL {from}'s binaries; install them, or name their directory with --old-bin")
    })?;
    ensure!(old_bin.major()? == from, "the binaries in {} are not PostgreSQL {from}", old_dir.display());
    let kept = data_dir.join(format!("pg-{from}"));
    ensure!(
        !kept.exists(),
        "{} already exists (the old cluster of an earlier upgrade?); move it away first",
        kept.display()
    );

    let dump = data_dir.join(format!("upgrade-from-{from}.sql"));
    if dump.exists() {
        std::fs::remove_file(&dump).with_context(|| format!("removing the leftover {}", dump.display()))?;
    }
    let old = Cluster::init(old_bin.clone(), data_dir, Tuning::Durable).await?;
    let claim = old.claim()?.context("another mos process looks after the cluster; stop `mos serve` first")?;
    ensure!(!old.running(), "the cluster is running; stop it (or the `mos serve` that runs it) first");
    old.start().await?;
    let dumped = old.dump_all(&dump).await;
    old.stop().await?;
    dumped?;
    claim.release()?;
    println!("dumped the PostgreSQL {from} cluster");

    std::fs::rename(&pgdata, &kept).with_context(|| format!("moving the old cluster to {}", kept.display()))?;
    let loaded = async {
        let new = Cluster::init(new_bin.clone(), data_dir, Tuning::Durable).await?;
        new.start().await?;
        let loaded = new.load_all(&dump, &old_bin).await;
        new.stop().await?;
        anyhow::Ok(loaded?)
    }
    .await;
    if let Err(e) = loaded {
        put_back(data_dir, &kept, to)?;
        bail!("loading the cluster into PostgreSQL {to} failed, and the PostgreSQL {from} cluster is back in place: {e:#}");
    }
    println!("loaded it into a new PostgreSQL {to} cluster");

    let db = Database::open(settings).await?;
    let checked = async {
        let clean = crate::report_check(&db).await?;
        let intact = crate::audit_cmd::verify(&db, data_dir, None, crate::audit_cmd::Checks::default()).await?;
        anyhow::Ok(clean && intact)
    }
    .await;
    db.close().await;
    let _ = std::fs::remove_file(&dump);
    match checked {
        Ok(true) => {
            println!(
                "upgraded the cluster from PostgreSQL {from} to {to}; the old one is kept in {} until you remove it",
                kept.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        outcome => {
            put_back(data_dir, &kept, to)?;
            if let Err(e) = outcome {
                eprintln!("error: {e:#}");
            }
            println!("the new cluster did not check out; the PostgreSQL {from} cluster is back in place");
            Ok(ExitCode::from(crate::EXIT_PROBLEMS))
        }
    }
}

/// Puts the old cluster back and the new one aside (as `pg-<new major>-failed`, for a look).
fn put_back(data_dir: &Path, kept: &Path, to: u32) -> anyhow::Result<()> {
    let pgdata = data_dir.join("pg");
    if pgdata.exists() {
        let failed = data_dir.join(format!("pg-{to}-failed"));
        if failed.exists() {
            std::fs::remove_dir_all(&failed)?;
        }
        std::fs::rename(&pgdata, &failed)?;
    }
    std::fs::rename(kept, &pgdata).with_context(|| format!("putting {} back", kept.display()))
}
