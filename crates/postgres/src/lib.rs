//! # tollgate-postgres
//!
//! A [`TokenStore`](tollgate::TokenStore) in PostgreSQL, for applications that run on several
//! machines: every instance shares one store, and revocation reaches all of them at once.
//!
//! - Built on [sqlx](https://docs.rs/sqlx) with runtime-checked queries (building needs no
//!   database), a connection pool and embedded migrations that run on connect (idempotent,
//!   serialized by an advisory lock when several instances start together).
//! - Names are unique per owner by a unique index on `(owner, name_key)`; secret hashes are
//!   indexed; updates are conditional on the record version; every operation is one
//!   transaction. Only hashes are stored.
//! - **Fuzzy search runs in the database**: names containing every query word are found
//!   through a `pg_trgm` trigram GIN index; abbreviation and typo candidates, only when those
//!   do not fill a page, by a SQL function using `fuzzystrmatch`. The core matcher ranks the
//!   candidates, so results agree with every other store.
//! - **Revocation across instances**: delete and every update `NOTIFY` the channel
//!   [`CHANNEL`]; each store `LISTEN`s and hands the changes to its subscribers
//!   ([`TokenStore::subscribe`](tollgate::TokenStore::subscribe)), which evict what they
//!   hold. When the notification connection drops, subscribers get
//!   [`StoreEvent::Reset`](tollgate::StoreEvent::Reset) and must treat everything as stale:
//!   changes made while it was down are not replayed. Until the drop is noticed (a silent
//!   network partition can take as long as TCP keepalive), staleness is bounded only by the
//!   freshness window of the subscriber's cache.
//! - A server that is down or a dropped connection gives
//!   [`tollgate::Error::Unavailable`]; a guard answers 503, never a pass.
//!
//! The database needs the `pg_trgm` and `fuzzystrmatch` extensions (shipped with
//! PostgreSQL; both are trusted, so a database owner may create them).
//!
//! ## Example
//!
//! ```no_run
//! use tollgate::{NewToken, TokenManager};
//! use tollgate_postgres::PgStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgStore::connect("postgres://tollgate@db.internal/tollgate").await?;
//! let manager = TokenManager::new(store);
//! let issued = manager.apply("acme", NewToken::new("ci")).await?;
//! assert!(manager.verify(issued.token.expose_secret()).await?.is_valid());
//! # Ok(())
//! # }
//! ```
//!
//! ## Crate features
//!
//! - `tls-rustls`: TLS connections to the server with rustls (`sslmode` in the URL).
//! - `testing`: a schema per test on a real server, for this crate's tests and yours.

mod error;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use crate::error::PgStoreError;
pub use crate::store::{ACQUIRE_TIMEOUT, CHANNEL, LOCK_TIMEOUT, PgStore, STATEMENT_TIMEOUT};
