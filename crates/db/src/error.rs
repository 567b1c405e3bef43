use sqlx::error::ErrorKind;

/// What can go wrong talking to the database, sorted so that callers can answer a client
/// precisely (a conflict, an invalid value) without ever showing it a raw database message.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database does not answer (the pool's probe found it away).
    #[error("the database does not answer")]
    Away,
    /// A unique constraint refused the row; the name says which one.
    #[error("a row that conflicts with constraint {constraint} already exists")]
    Conflict { constraint: String },
    /// A CHECK, NOT NULL or foreign-key constraint refused the value.
    #[error("value rejected by constraint {constraint}")]
    Invalid { constraint: String },
    /// The audit log refused an UPDATE, DELETE or TRUNCATE, or RLS refused a row.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A connection of the pool runs as a role that row-level security does not bind. Checked
    /// on every connection the pool opens, so a request can meet it too (and gets a 500).
    #[error("the application connection runs as role {role:?}, which {why}; connect as {expected:?} instead", expected = crate::APP_ROLE)]
    UnsafeAppRole { role: String, why: &'static str },
    /// A concurrent transaction took what this one needed (a deadlock, or a serialization
    /// failure), and PostgreSQL aborted this one: nothing it did was kept, and doing it again
    /// may succeed.
    #[error("a concurrent change to the same rows won; nothing was changed")]
    Contention,
    /// The statement ran past the time its caller allowed it (`statement_timeout`) and was
    /// cancelled; the transaction is aborted.
    #[error("the statement took longer than it was allowed and was cancelled")]
    Cancelled,
    /// A sealed secret (a DKIM private key) did not open with the server's key: the key changed,
    /// or the row was altered or copied onto another. The secret itself is never in the message.
    #[error("a sealed secret did not open with the server's key")]
    Unsealable(#[source] mos_auth::SealError),
    #[error(transparent)]
    Sqlx(sqlx::Error),
}

impl DbError {
    /// The database could not be reached or had no connection to spare: worth a 503 and a
    /// retry, unlike a bug.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DbError::Away => true,
            DbError::Sqlx(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)) => true,
            // The server going away mid-connection: shutting down, crashed, starting up
            // (class 57, operator intervention), or the connection broken (class 08).
            DbError::Sqlx(e) => e
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|code| code.starts_with("57") || code.starts_with("08")),
            _ => false,
        }
    }

    /// The database server cannot use its own files: a library it loads (PL/pgSQL's, after a
    /// package upgrade replaced it under the running server) or another file of its own is
    /// missing or does not match (class 58, system error, or a library that does not load).
    /// Such a server fails every request that reaches the broken part, and nothing but a
    /// restart mends it.
    pub fn is_server_broken(&self) -> bool {
        let DbError::Sqlx(e) = self else { return false };
        let Some(db) = e.as_database_error() else { return false };
        let code = db.code().unwrap_or_default();
        code.starts_with("58")
            || (code == "XX000"
                && (db.message().starts_with("could not load library")
                    || db.message().starts_with("incompatible library")))
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        let Some(db) = e.as_database_error() else {
            return DbError::Sqlx(e);
        };
        let constraint = || constraint_name(db.constraint(), db.message());
        match db.kind() {
            ErrorKind::UniqueViolation => DbError::Conflict { constraint: constraint() },
            ErrorKind::CheckViolation | ErrorKind::ForeignKeyViolation | ErrorKind::NotNullViolation => {
                DbError::Invalid { constraint: constraint() }
            }
            _ if db.code().as_deref() == Some("42501") => DbError::PermissionDenied(db.message().to_owned()),
            _ if matches!(db.code().as_deref(), Some("40P01" | "40001")) => DbError::Contention,
            _ if db.code().as_deref() == Some("57014") => DbError::Cancelled,
            _ => DbError::Sqlx(e),
        }
    }
}

/// The constraint behind a violation. An error that Citus relays from a worker carries only the
/// message, which names the shard's copy of the constraint (`organizations_slug_key_102008`):
/// the name is taken from the message and the shard's number dropped.
fn constraint_name(field: Option<&str>, message: &str) -> String {
    // A Citus-local table's shard reports its own constraint's name in the field too.
    let quoted = message.split(" constraint \"").nth(1).and_then(|rest| rest.split('"').next());
    let Some(name) = field.or(quoted) else {
        return "unknown".to_owned();
    };
    match name.rsplit_once('_') {
        Some((base, shard)) if !base.is_empty() && !shard.is_empty() && shard.bytes().all(|b| b.is_ascii_digit()) => {
            base.to_owned()
        }
        _ => name.to_owned(),
    }
}

/// A stored value that fails the rule its constraint enforces: the database was changed
/// behind the application's back.
pub(crate) fn stored(constraint: &str) -> DbError {
    DbError::Invalid { constraint: constraint.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::constraint_name;

    #[test]
    fn a_constraint_relayed_from_a_shard_is_named_as_on_the_table() {
        let message = "duplicate key value violates unique constraint \"organizations_slug_key_102008\"";
        assert_eq!(constraint_name(None, message), "organizations_slug_key");
        let message = "new row for relation \"users_102009\" violates check constraint \"users_id_v7\"";
        assert_eq!(constraint_name(None, message), "users_id_v7");
        assert_eq!(constraint_name(Some("users_email_key"), "whatever"), "users_email_key");
        assert_eq!(constraint_name(Some("notices_sha256_102276"), "whatever"), "notices_sha256");
        assert_eq!(constraint_name(None, "no constraint named here"), "unknown");
    }
}
