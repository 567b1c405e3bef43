use std::os::unix::fs::PermissionsExt;

use mos_db::ops::embedded::{Cluster, ClusterError, PgBinaries, Tuning, SUPERUSER};
use sqlx::ConnectOptions;

fn binaries() -> PgBinaries {
    PgBinaries::locate(std::env::var_os("PG_BIN").as_deref().map(std::path::Path::new)).unwrap()
}

#[test]
fn missing_binaries_are_reported_in_one_line_naming_the_package() {
    let err = PgBinaries::locate(Some(std::path::Path::new("/nonexistent/pg/bin"))).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ClusterError::NoBinaries { .. }));
    assert!(
        message.contains("apt-get install postgresql") && message.contains("PG_BIN=/nonexistent/pg/bin"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1);
}

#[tokio::test]
async fn the_embedded_cluster_starts_is_reused_and_recovers_from_a_stale_pid_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path().join("data");
    let cluster = Cluster::init(binaries(), &root, Tuning::Durable).await.unwrap();

    assert!(cluster.start().await.unwrap(), "the first start starts the server");
    assert!(!cluster.start().await.unwrap(), "a second start reuses it");
    let mut conn = cluster.connect_options(SUPERUSER, "postgres").connect().await.unwrap();
    let listen: String = sqlx::query_scalar("show listen_addresses").fetch_one(&mut conn).await.unwrap();
    assert_eq!(listen, "", "no TCP listener at all");
    let rules: Vec<String> = sqlx::query_scalar(
        "select format('%s %s %s %s', type, database, user_name, auth_method) from pg_hba_file_rules",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    // The socket only, peer only; replication (what `mos backup` streams) for the superuser only.
    assert_eq!(rules, ["local {all} {all} peer", "local {replication} {postgres} peer"]);
    drop(conn);
    cluster.stop().await.unwrap();
    assert!(!cluster.running());

    // A crash leaves postmaster.pid behind, naming a pid that now belongs to someone else.
    let pidfile = cluster.pgdata().join("postmaster.pid");
    std::fs::write(&pidfile, format!("{}\n{}\n", std::process::id(), cluster.pgdata().display())).unwrap();
    assert!(!cluster.running());
    assert!(cluster.start().await.unwrap(), "started despite the stale pid file");
    cluster.ensure_database("mos").await.unwrap();
    cluster.connect_options(SUPERUSER, "mos").connect().await.unwrap();
    cluster.stop().await.unwrap();
}
