//! # tollgate-redb
//!
//! A [`TokenStore`](tollgate::TokenStore) in an embedded [redb](https://docs.rs/redb) file: the
//! default store of Tollgate. One file, no server, ACID transactions.
//!
//! - Every operation is one transaction: a failed call leaves the file as it was.
//! - Secondary indexes make lookups by secret hash and by (owner, name) point reads, and
//!   listing walks an (owner, created, id) index page by page instead of loading every record.
//! - The file records its schema version; opening a file written by a newer Tollgate, a redb
//!   file of another application, a file that is not redb, or a file another process holds,
//!   fails with a clear [`RedbStoreError`].
//!
//! Reads run on the calling task (a point read takes microseconds); writes wait for the disk
//! and run on Tokio's blocking pool when a Tokio runtime is present.
//!
//! ## Example
//!
//! ```
//! use tollgate::{NewToken, TokenManager};
//! use tollgate_redb::RedbStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = RedbStore::open(dir.path().join("tokens.redb"))?;
//! let manager = TokenManager::new(store);
//! let issued = manager.apply("default", NewToken::new("ci")).await?;
//! assert!(manager.verify(issued.token.expose_secret()).await?.is_valid());
//! # Ok(())
//! # }
//! ```

mod error;
mod row;
mod store;

pub use crate::error::RedbStoreError;
pub use crate::store::{RedbStore, SCHEMA_VERSION};
