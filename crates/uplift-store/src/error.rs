//! Typed storage errors. The HTTP edge maps each kind to a status code.

/// What went wrong in storage. Domain outcomes (not found, conflict, invalid input) are
/// distinct variants so the edge can answer 404/409/400 without parsing messages.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// One field's value is refused; `message` names the field and says why, so a
    /// form can show it at that field.
    #[error("{message}")]
    Field { field: String, message: String },
    /// The record changed since the caller read it (stale `If-Match`).
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("connection pool: {0}")]
    Pool(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored data is not as expected: {0}")]
    Corrupt(String),
    #[error("background task failed: {0}")]
    Task(String),
    /// The write waited at the gate while step 3 switched the environment to a new
    /// production database: it was not made, and goes again to the new one.
    #[error("the environment switched to a new production database while this write waited")]
    Retired,
}

impl StoreError {
    /// Whether a unique key refused the write: someone else made the same thing first
    /// (two first saves or publishes of one app at once).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            StoreError::Postgres(p) => {
                p.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            _ => false,
        }
    }

    /// Whether the database is busy, overloaded or unreachable, so that the same
    /// request may succeed later (a 503, not a fault of the request).
    pub fn is_unavailable(&self) -> bool {
        if self.is_transient() {
            return true;
        }
        match self {
            StoreError::Postgres(e) => {
                let gone = e.is_closed()
                    || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
                gone || e.code().is_some_and(|c| {
                    let c = c.code();
                    c.starts_with("08") || c.starts_with("53") || c.starts_with("57P")
                })
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(e.code, rusqlite::ErrorCode::CannotOpen)
            }
            _ => false,
        }
    }

    /// Whether a retry could succeed (a lock or serialisation failure), as opposed to a
    /// fault in the request or the data.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                )
            }
            StoreError::Postgres(e) => e.code().is_some_and(|c| {
                *c == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                    || *c == tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE
            }),
            StoreError::Pool(_) => true,
            _ => false,
        }
    }
}
