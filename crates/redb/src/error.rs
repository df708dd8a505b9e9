//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong in the redb store. Converts into [`tollgate::Error`] keeping its cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedbStoreError {
    /// Another process (or another handle in this one) has the file open.
    #[error("the token database {} is in use by another process", path.display())]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a redb database, or is damaged.
    #[error("{} is not a Tollgate token database (not a redb file, or damaged)", path.display())]
    NotRedb {
        /// The file.
        path: PathBuf,
        /// What redb reported.
        #[source]
        source: redb::DatabaseError,
    },
    /// The file is a redb database of another application.
    #[error("{} is a redb database of another application, not a Tollgate token database", path.display())]
    Foreign {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a newer Tollgate.
    #[error(
        "{} has token schema version {found}, but this build reads version {supported}; upgrade Tollgate",
        path.display()
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u64,
        /// The version this build writes and reads.
        supported: u64,
    },
    /// Opening the database failed.
    #[error("cannot open the token database")]
    Database(#[from] redb::DatabaseError),
    /// A transaction could not begin.
    #[error("cannot begin a transaction")]
    Transaction(#[from] redb::TransactionError),
    /// A table could not be opened.
    #[error("cannot open a table")]
    Table(#[from] redb::TableError),
    /// Reading or writing failed.
    #[error("storage error")]
    Storage(#[from] redb::StorageError),
    /// A commit failed; nothing was written.
    #[error("commit failed")]
    Commit(#[from] redb::CommitError),
    /// A stored record could not be decoded.
    #[error("a stored token record is corrupt")]
    Corrupt(#[source] postcard::Error),
    /// The blocking task running a write panicked or was cancelled.
    #[error("the write task did not complete")]
    Join(#[from] tokio::task::JoinError),
}

impl From<RedbStoreError> for tollgate::Error {
    fn from(err: RedbStoreError) -> Self {
        match &err {
            // A lock held elsewhere or an I/O failure may clear; corrupt data will not.
            RedbStoreError::Locked { .. }
            | RedbStoreError::Storage(redb::StorageError::Io(_))
            | RedbStoreError::Commit(redb::CommitError::Storage(redb::StorageError::Io(_))) => {
                tollgate::Error::unavailable(err)
            }
            _ => tollgate::Error::backend(err),
        }
    }
}
