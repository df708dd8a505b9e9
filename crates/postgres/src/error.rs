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
    /// No connection could be made to the server; the source says why (connection refused,
    /// the database does not allow connections, authentication failed…).
    #[error("cannot connect to PostgreSQL")]
    Unreachable(#[source] sqlx::Error),
    /// Every pooled connection stayed busy for the whole acquire timeout.
    #[error("all {size} pooled PostgreSQL connections are busy")]
    PoolBusy {
        /// The pool's size.
        size: u32,
    },
}

impl PgStoreError {
    /// Whether retrying later may succeed: the server is down, the connection dropped, the
    /// pool is exhausted.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Sqlx(err) | Self::Migrate(sqlx::migrate::MigrateError::Execute(err)) => {
                is_transient(err)
            }
            Self::Unreachable(_) | Self::PoolBusy { .. } => true,
            Self::Migrate(_) | Self::Corrupt(_) => false,
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
        // Connection failures, shutdowns, serialization failures, a statement cancelled by
        // `statement_timeout` (57014), a lock not granted within `lock_timeout` (55P03), a
        // database not accepting connections (55000, 57P03) and too many connections (53300)
        // clear on retry.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08")
                || code.starts_with("57P")
                || matches!(
                    &*code,
                    "40001" | "40P01" | "57014" | "55P03" | "55000" | "53300"
                )
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
