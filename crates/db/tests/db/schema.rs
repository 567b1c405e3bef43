use mos_db::testing::{requires, Backend, TestDb};

/// Set to write `docs/schema.sql` from a migrated database instead of comparing with it.
const WRITE: &str = "MOS_WRITE_SCHEMA";

/// How the file names the major version of the pg_dump that wrote it: each major prints the
/// same schema a little differently.
const MADE_BY: &str = "-- Made by pg_dump of PostgreSQL ";

fn header(major: u32) -> String {
    format!(
        "\
-- The schema after every migration of crates/db/migrations, as pg_dump --schema-only prints it
-- from a freshly migrated database: tables, indexes, policies, functions (each as the last
-- migration that replaced it left it), triggers, owners and grants. The roles it names are made
-- by the migrator's bootstrap (crates/db/src/ops/migrate.rs), and Citus placement is in
-- docs/scaling.md. Generated: do not edit. A test fails while a migrated database differs from
-- this file; after adding a migration, regenerate it by running
--   MOS_WRITE_SCHEMA=1 cargo test -p mos-db --test db schema::
{MADE_BY}{major}.
"
    )
}

#[tokio::test]
async fn docs_schema_sql_is_the_schema_a_migrated_database_has() {
    // A coordinator's dump holds Citus's own objects and the shards placed on it; the file
    // describes what the migrations make, which the plain PostgreSQL run compares.
    requires(Backend::Postgres, "a Citus coordinator's dump holds Citus's own objects and shards");
    let db = TestDb::new().await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schema.sql");
    let file = std::fs::read_to_string(path).unwrap_or_default();
    let made_by = file.lines().find_map(|l| l.strip_prefix(MADE_BY)?.trim_end_matches('.').parse::<u32>().ok());
    let major = db.major();
    // Another major's pg_dump prints the same schema in other words (and an older one refuses
    // a newer server): the run on the file's major compares.
    assert!(
        made_by.is_none_or(|made_by| made_by == major) || std::env::var_os(WRITE).is_some(),
        "this test cannot run on PostgreSQL {major}: docs/schema.sql was written by PostgreSQL {made_by:?}'s pg_dump"
    );
    let dumped = format!("{}{}", header(major), db.schema_sql().await);
    if std::env::var_os(WRITE).is_some() {
        std::fs::write(path, &dumped).unwrap();
    }
    let file = std::fs::read_to_string(path).unwrap_or_default();
    if file != dumped {
        let (ours, theirs): (Vec<&str>, Vec<&str>) = (file.lines().collect(), dumped.lines().collect());
        let at = (0..ours.len().max(theirs.len())).find(|&i| ours.get(i) != theirs.get(i)).unwrap_or(ours.len());
        panic!(
            "docs/schema.sql is not the schema of a migrated database; first difference at line {}:\n  \
             file:     {:?}\n  database: {:?}\nregenerate it with {WRITE}=1 cargo test -p mos-db --test db schema::",
            at + 1,
            ours.get(at),
            theirs.get(at)
        );
    }
}
