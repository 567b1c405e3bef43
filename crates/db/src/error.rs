use sqlx::error::ErrorKind;

/// What can go wrong talking to the database, sorted so that callers can answer a client
/// precisely (a conflict, an invalid value) without ever showing it a raw database message.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint refused the row; the name says which one.
    #[error("a row that conflicts with constraint {constraint} already exists")]
    Conflict { constraint: String },
    /// A CHECK, NOT NULL or foreign-key constraint refused the value.
    #[error("value rejected by constraint {constraint}")]
    Invalid { constraint: String },
    /// The audit log refused an UPDATE, DELETE or TRUNCATE, or RLS refused a row.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("migration {version} ({name}) was changed after it was applied: the database records checksum {applied}, this build has {embedded}")]
    ChecksumMismatch { version: i64, name: String, applied: String, embedded: String },
    #[error("the database has migration {version} ({name}) that this build does not know; refusing to run an older build against a newer schema")]
    UnknownMigration { version: i64, name: String },
    #[error("{count} migration(s) pending ({names}); run `mos migrate` first")]
    Pending { count: usize, names: String },
    #[error("the application connection runs as role {role:?}, which {why}; connect as {expected:?} instead", expected = crate::APP_ROLE)]
    UnsafeAppRole { role: String, why: &'static str },
    #[error(transparent)]
    Sqlx(sqlx::Error),
}

impl DbError {
    /// The database could not be reached or had no connection to spare: worth a 503 and a
    /// retry, unlike a bug.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Sqlx(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)))
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        let Some(db) = e.as_database_error() else {
            return DbError::Sqlx(e);
        };
        let constraint = || db.constraint().unwrap_or("unknown").to_owned();
        match db.kind() {
            ErrorKind::UniqueViolation => DbError::Conflict { constraint: constraint() },
            ErrorKind::CheckViolation | ErrorKind::ForeignKeyViolation | ErrorKind::NotNullViolation => {
                DbError::Invalid { constraint: constraint() }
            }
            _ if db.code().as_deref() == Some("42501") => DbError::PermissionDenied(db.message().to_owned()),
            _ => DbError::Sqlx(e),
        }
    }
}

/// A stored value that fails the rule its constraint enforces: the database was changed
/// behind the application's back.
pub(crate) fn stored(constraint: &str) -> DbError {
    DbError::Invalid { constraint: constraint.to_owned() }
}
