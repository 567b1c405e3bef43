//! What an operator command can run into. None of it reaches a request: the server runs these
//! commands before it serves (or an operator runs them by hand), and reports them to a person.

use crate::ops::citus::Placement;

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("migration {version} ({name}) was changed after it was applied: the database records checksum {applied}, this build has {embedded}")]
    ChecksumMismatch { version: i64, name: String, applied: String, embedded: String },
    #[error("the database has migration {version} ({name}) that this build does not know; refusing to run an older build against a newer schema")]
    UnknownMigration { version: i64, name: String },
    #[error("{count} migration(s) pending ({names}); run `mos migrate` first")]
    Pending { count: usize, names: String },
    #[error("this database has no Citus extension; `mos db distribute` runs against a Citus coordinator")]
    NotCitus,
    #[error(
        "the Citus plan (mos_db::ops::citus::PLAN) does not name table(s) {0}; add them to it before distributing"
    )]
    Unplanned(String),
    #[error("table app.{table} is {found}, but the plan says {planned}; undo that by hand (undistribute_table) and run again")]
    Misplaced { table: &'static str, planned: Placement, found: Placement },
    #[error("function(s) {0} no longer exist after distributing; restore them (re-create from the migrations) before serving")]
    FunctionsLost(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

pub type Result<T, E = OpsError> = std::result::Result<T, E>;
