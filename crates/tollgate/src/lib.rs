//! # Tollgate
//!
//! API token management for Rust applications: issue named tokens, list and fuzzy-search
//! them, export them as token files, modify, regenerate and delete them, and verify them on
//! every request.
//!
//! - **Secure by default.** Tokens are 256 random bits from the OS CSPRNG in a checksummed,
//!   prefixed, versioned format ([`TokenFormat`]). Only a SHA-256 hash is stored (optionally
//!   peppered, [`TokenHasher`]); the plaintext exists only in the [`Issued`] value returned by
//!   [`TokenManager::apply`] and [`TokenManager::regenerate`], which redacts itself and is
//!   wiped on drop. Hashes compare in constant time.
//! - **Pluggable storage.** A small async [`TokenStore`] trait; [`MemoryStore`] here,
//!   `tollgate-redb` (embedded, the default) and `tollgate-postgres` beside it.
//! - **Fuzzy search** over names ([`Query`]): typos, missing separators, any word order,
//!   abbreviations, CJK.
//! - **Revocation is immediate**: once [`TokenManager::delete`], a disabling
//!   [`TokenManager::modify`] or [`TokenManager::regenerate`] returns, the old state no longer
//!   verifies.
//!
//! ## Example
//!
//! ```
//! use tollgate::{ListOptions, MemoryStore, NewToken, TokenManager, TokenUpdate, Verification};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tollgate::Error> {
//! let manager = TokenManager::new(MemoryStore::new());
//!
//! // Apply: the plaintext is returned once.
//! let issued = manager.apply("acme", NewToken::new("CI deploy").scopes(["deploy"])).await?;
//! let secret = issued.token.expose_secret().to_owned();
//!
//! // Verify, as middleware would on each request.
//! let outcome = manager.verify(&secret).await?;
//! assert!(outcome.record().is_some_and(|r| r.has_scope("deploy")));
//!
//! // Fuzzy list: a typo still finds it.
//! let page = manager
//!     .list("acme", ListOptions { query: Some("deply".into()), ..Default::default() })
//!     .await?;
//! assert_eq!(page.items[0].name, "CI deploy");
//!
//! // Download: the file offered right after apply carries the secret…
//! let file = issued.token_file(manager.now());
//! assert!(file.secret_included());
//! // …a later download does not, unless recoverable mode is on.
//! assert!(!manager.download("acme", issued.record.id).await?.secret_included());
//!
//! // Disable, then delete: each takes effect when the call returns.
//! manager.modify("acme", issued.record.id, TokenUpdate::default().enabled(false)).await?;
//! assert!(matches!(manager.verify(&secret).await?, Verification::Disabled(_)));
//! manager.delete("acme", issued.record.id).await?;
//! assert_eq!(manager.verify(&secret).await?, Verification::Unknown);
//! # Ok(())
//! # }
//! ```
//!
//! ## Crate features
//!
//! - `testing`: the store conformance suite ([`store_conformance_tests!`]) and a
//!   `ManualClock`, for testing [`TokenStore`] implementations.
//! - `utoipa`: OpenAPI schemas for the audit log's types, for the management API.

mod audit;
mod cache;
mod clock;
mod error;
mod file;
mod index;
mod manager;
mod matcher;
mod memory;
mod name;
mod record;
mod secret;
mod store;
mod usage;

#[cfg(feature = "testing")]
pub mod testing;

pub use crate::audit::{
    Actor, ActorKind, AuditAction, AuditEntry, AuditFilter, AuditId, AuditPage, AuditPosition,
    AuditRequest, Client, Context, Outcome,
};
pub use crate::cache::CacheConfig;
pub use crate::clock::{Clock, SystemClock};
pub use crate::error::{BoxError, Error, ErrorKind, NameError, StoreTimeout};
pub use crate::file::{TOKEN_FILE_FORMAT, TOKEN_FILE_VERSION, TokenFile};
pub use crate::index::NameIndex;
pub use crate::manager::{
    Acting, DEFAULT_AUDIT_RETENTION, DEFAULT_PAGE_SIZE, Deadlines, DeleteOptions, Expiry, Issued,
    ListOptions, MAX_GRACE_PERIOD, MAX_PAGE_SIZE, NewToken, Page, Regenerate, TokenManager,
    TokenUpdate, Verification,
};
pub use crate::matcher::{PreparedName, Query, Score, Terms, typo_budget};
pub use crate::memory::MemoryStore;
pub use crate::name::{
    MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MAX_QUERY_CHARS, MAX_SCOPE_CHARS, MAX_SCOPES, TokenName,
};
pub use crate::record::{PreviousSecret, SealedSecret, TokenId, TokenInfo, TokenRecord};
pub use crate::secret::{
    EncryptionKey, HINT_CHARS, Malformed, PlaintextToken, SecretHash, TOKEN_FORMAT_VERSION,
    TokenFormat, TokenHasher,
};
pub use crate::store::{
    ListFilter, ListPosition, ListRequest, PREFIX_SETTING, SearchHit, SearchPosition,
    SearchRequest, StoreEvent, TokenStore, sort_hits,
};

pub use jiff;
