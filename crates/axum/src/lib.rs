//! # tollgate-axum
//!
//! Guard [axum](https://docs.rs/axum) routes (or any tower service) with Tollgate API tokens.
//!
//! - [`VerifiedToken`]: an extractor handing handlers the verified token's record (id, owner,
//!   name, scopes); `Option<VerifiedToken>` for routes where a token is optional.
//! - [`Tollgate::layer`] guards a whole router; [`Tollgate::require`] also demands scopes, on
//!   a router or a single route.
//! - Rejections follow RFC 6750 and never tell which check failed ([`TokenRejection`]); a
//!   failing store answers 503, never a pass.
//! - `last_used_at` is recorded without a store write per request: uses are coalesced in
//!   memory and written in batches by [`Tollgate::spawn_last_used_flusher`].
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use axum::{Router, routing::get};
//! use tollgate::{MemoryStore, NewToken, TokenManager};
//! use tollgate_axum::{Tollgate, VerifiedToken};
//!
//! async fn whoami(token: VerifiedToken) -> String {
//!     format!("hello, {} ({})", token.name(), token.id())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let manager = Arc::new(TokenManager::new(MemoryStore::new()));
//! let tollgate = Tollgate::new(manager.clone()).with_realm("example");
//!
//! let app: Router = Router::new()
//!     .route("/whoami", get(whoami))
//!     .route("/deploy", get(|| async { "deploying" }).route_layer(tollgate.require(["deploy"])))
//!     .layer(tollgate.layer());
//!
//! // Issue a token and call the app with it.
//! let issued = manager.apply("acme", NewToken::new("ci")).await.unwrap();
//! let request = http::Request::get("/whoami")
//!     .header("authorization", format!("Bearer {}", issued.token.expose_secret()))
//!     .body(axum::body::Body::empty())
//!     .unwrap();
//! let response = tower::ServiceExt::oneshot(app, request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # }
//! ```
//!
//! Without a layer, put the guard in the request extensions and use the extractor where
//! needed: `Router::new().route("/me", get(whoami)).layer(axum::Extension(tollgate))`.

mod extract;
mod guard;
mod layer;
mod rejection;

#[cfg(feature = "console")]
pub mod console;
#[cfg(feature = "management")]
pub mod management;

pub use crate::guard::{LastUsedFlusher, Tollgate, VerifiedToken};
pub use crate::layer::{RequireToken, RequireTokenLayer};
pub use crate::rejection::{RejectionReason, TokenRejection};

/// The README's examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "management"))]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
