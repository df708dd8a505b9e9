//! The crate's error type.

/// What can go wrong in the PostgreSQL store. Converts into [`tollgate::Error`] keeping its
/// cause: a connection that cannot be made or was lost becomes
/// [`tollgate::Error::Unavailable`], so a guard answers 503 and never lets a request pass.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgStoreError {
    /// The database failed or could not be reached.
    #[error("PostgreSQL error")]
    Sqlx(#[from] sqlx::Error),
    /// The schema migrations failed.
    #[error("cannot migrate the Tollgate schema")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row does not hold a valid record.
    #[error("a stored token record is corrupt: {0}")]
    Corrupt(&'static str),
}

impl PgStoreError {
    /// Whether retrying later may succeed: the server is down, the connection dropped, the
    /// pool is exhausted.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Sqlx(err) | Self::Migrate(sqlx::migrate::MigrateError::Execute(err)) => {
                is_transient(err)
            }
            _ => false,
        }
    }
}

fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Connection failures, shutdowns and serialization failures (SQLSTATE classes 08 and
        // 57P, and 40001/40P01) clear on retry.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57P") || code == "40001" || code == "40P01"
        }),
        _ => false,
    }
}

impl From<PgStoreError> for tollgate::Error {
    fn from(err: PgStoreError) -> Self {
        if err.is_transient() {
            tollgate::Error::unavailable(err)
        } else {
            tollgate::Error::backend(err)
        }
    }
}
