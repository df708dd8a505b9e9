//! The management API as a router any application can mount (feature `management`).
//!
//! [`router`] answers the token list (with fuzzy search), apply, download, modify,
//! regenerate and delete over REST, and its own OpenAPI 3.1 document at `/openapi.json`.
//! Nest it under any path:
//!
//! ```
//! use std::sync::Arc;
//!
//! use axum::Router;
//! use tollgate::{MemoryStore, TokenManager};
//! use tollgate_axum::management::{self, ManagementOptions};
//!
//! let manager = Arc::new(TokenManager::new(MemoryStore::new()));
//! let app: Router = Router::new()
//!     .nest("/tokens-admin", management::router(manager, ManagementOptions::new()));
//! ```
//!
//! ## Who may manage which tokens
//!
//! - **Administrators** (the default): each request needs a Tollgate token with the admin
//!   scope ([`ManagementOptions::admin_scope`], `tollgate:admin` unless set) and may manage
//!   every owner's tokens, naming the owner in the `owner` query parameter (or the body of an
//!   apply); without one, the [default owner](ManagementOptions::default_owner).
//! - **Self-service** ([`ManagementOptions::self_service`]): the application authenticates
//!   its users its own way (a session cookie, its user extractor) and says which owner each
//!   request acts for; the router then serves only that owner's tokens, as a token settings
//!   page does. Naming another owner is a 403; every token of another owner is a 404.
//!
//! ## The contract
//!
//! - Errors are `{"error": {"code", "message"}}` ([`ErrorBody`]), their status derived from
//!   the core's [`ErrorKind`](tollgate::ErrorKind): 400 invalid input, 401/403
//!   authentication, 404 unknown id, 409 a taken name or a lock-out, 412 an `If-Match` that
//!   does not hold, 413/415 bodies, 503 (with `Retry-After`) an unavailable store.
//! - `GET`, `PATCH` and the answers of `POST` carry `ETag: "<version>"`; `PATCH`, `DELETE`
//!   and regenerate honour `If-Match` (strong comparison, `*` for any version).
//! - Responses that hold a secret carry `Cache-Control: no-store`.

pub(crate) mod access;
mod audit;
mod error;
mod handlers;
mod input;
mod openapi;
mod views;

use std::sync::Arc;

use axum::extract::{NestedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use http::StatusCode;
use tollgate::TokenManager;

pub use self::access::{FromExtractor, Owner, OwnerResolver};
pub use self::audit::AuditPageView;
pub use self::handlers::token_file_name;
pub use self::openapi::openapi;
pub use self::views::{
    ErrorBody, ErrorDetail, IssuedView, PageView, TokenFileView, TokenStatus, TokenView,
};

use self::access::{Access, Principal};
use self::error::ApiError;
use self::handlers::Shared;
use crate::Tollgate;

/// The scope an administrator's token needs unless [`ManagementOptions::admin_scope`] says
/// otherwise.
pub const DEFAULT_ADMIN_SCOPE: &str = "tollgate:admin";
/// The owner a request acts for when it names none, unless
/// [`ManagementOptions::default_owner`] says otherwise.
pub const DEFAULT_OWNER: &str = "default";
/// The largest request body accepted by default, in bytes.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;

/// How the management router authorizes requests and what it accepts.
#[derive(Debug, Clone)]
pub struct ManagementOptions {
    access: Access,
    default_owner: String,
    body_limit: usize,
    realm: String,
}

impl Default for ManagementOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ManagementOptions {
    /// Administrators with a Tollgate token holding [`DEFAULT_ADMIN_SCOPE`], every owner,
    /// [`DEFAULT_OWNER`] when a request names none, bodies up to [`DEFAULT_BODY_LIMIT`].
    pub fn new() -> Self {
        Self {
            access: Access::admin(),
            default_owner: DEFAULT_OWNER.to_owned(),
            body_limit: DEFAULT_BODY_LIMIT,
            realm: "tollgate".to_owned(),
        }
    }

    /// Administrators need a Tollgate token with `scope`.
    ///
    /// ```
    /// use tollgate_axum::management::ManagementOptions;
    ///
    /// let options = ManagementOptions::new().admin_scope("acme:tokens-admin");
    /// # let _ = options;
    /// ```
    pub fn admin_scope(mut self, scope: impl Into<String>) -> Self {
        self.access = self.access.with_scope(scope.into());
        self
    }

    /// Administrators' tokens must belong to `owner` ([`DEFAULT_OWNER`] unless set), so that
    /// nobody becomes an administrator by giving a token of their own the admin scope (a
    /// self-service user can issue tokens with any scope into their own owner). A token of
    /// another owner is answered 403.
    pub fn admin_owner(mut self, owner: impl Into<String>) -> Self {
        self.access = self.access.with_owner(owner.into());
        self
    }

    /// Self-service: `resolver` says which owner each request acts for, from the
    /// application's own authentication, and the router serves that owner's tokens only.
    /// No Tollgate token is needed to manage them.
    ///
    /// **The resolver is the only check**: whatever it accepts may issue and delete that
    /// owner's tokens. Return `None` (401) for a request without a signed-in user.
    ///
    /// ```
    /// use tollgate_axum::management::ManagementOptions;
    ///
    /// #[derive(Clone)]
    /// struct User { id: String }
    ///
    /// // Your session middleware put the signed-in user in the request extensions.
    /// let options = ManagementOptions::new()
    ///     .self_service(|parts: &http::request::Parts| {
    ///         parts.extensions.get::<User>().map(|user| user.id.clone())
    ///     });
    /// # let _ = options;
    /// ```
    pub fn self_service(mut self, resolver: impl OwnerResolver) -> Self {
        self.access = Access::SelfService(Arc::new(resolver));
        self
    }

    /// The owner an administrator's request acts for when it names none.
    pub fn default_owner(mut self, owner: impl Into<String>) -> Self {
        self.default_owner = owner.into();
        self
    }

    /// The largest request body accepted, in bytes (413 past it).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The realm named in `WWW-Authenticate` challenges (`tollgate` by default).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// The admin scope, or `None` for self-service.
    pub fn required_scope(&self) -> Option<&str> {
        match &self.access {
            Access::Admin { scope, .. } => Some(scope),
            Access::SelfService(_) => None,
        }
    }
}

/// The management API: `/tokens…` and `/openapi.json`, to be nested under any path.
pub fn router(manager: Arc<TokenManager>, options: ManagementOptions) -> Router {
    let scope = options.required_scope().map(str::to_owned);
    let ManagementOptions {
        access,
        default_owner,
        body_limit,
        realm,
    } = options;
    let manager_for_audit = manager.clone();
    let shared = Arc::new(Shared {
        manager: manager.clone(),
        default_owner,
    });
    let tokens = Router::new()
        .route(
            "/tokens",
            get(handlers::list_tokens).post(handlers::apply_token),
        )
        .route(
            "/tokens/{id}",
            get(handlers::get_token)
                .patch(handlers::modify_token)
                .delete(handlers::delete_token),
        )
        .route("/tokens/{id}/regenerate", post(handlers::regenerate_token))
        .route("/tokens/{id}/download", get(handlers::download_token))
        .route("/audit", get(audit::read_audit))
        .with_state(shared);
    let tokens = match access {
        Access::Admin { scope, owner } => {
            let tollgate = Tollgate::new(manager).with_realm(&realm);
            tokens
                .route_layer(middleware::from_fn_with_state(owner, admin))
                .route_layer(tollgate.require([scope.to_string()]))
                .route_layer(middleware::from_fn_with_state(
                    manager_for_audit,
                    audit::record_refusals,
                ))
        }
        Access::SelfService(resolver) => tokens
            .route_layer(middleware::from_fn_with_state(resolver, self_service))
            .route_layer(middleware::from_fn_with_state(
                manager_for_audit,
                audit::record_refusals,
            )),
    };
    Router::new()
        .merge(tokens)
        .route(
            "/openapi.json",
            get(move |base: Option<Extension<NestedPath>>| {
                let scope = scope.clone();
                async move {
                    let base = base.as_deref().map_or("", NestedPath::as_str).to_owned();
                    Json(openapi(&base, scope.as_deref()))
                }
            }),
        )
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this method is not allowed here",
            )
        })
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
}

/// Marks a request that passed the admin-scope guard as an administrator's, if its token
/// belongs to the administrators' owner.
async fn admin(State(owner): State<Arc<str>>, mut request: Request, next: Next) -> Response {
    let is_admin = request
        .extensions()
        .get::<crate::VerifiedToken>()
        .is_some_and(|token| token.owner() == &*owner);
    if !is_admin {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("administrators' tokens belong to the owner {owner:?}"),
        )
        .into_response();
    }
    request.extensions_mut().insert(Principal::Admin);
    next.run(request).await
}

/// Resolves the signed-in user's owner, or turns the request away.
async fn self_service(
    State(resolver): State<Arc<dyn OwnerResolver>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    match resolver.resolve(&mut parts).await {
        Ok(owner) => {
            parts.extensions.insert(Principal::User(owner));
            next.run(Request::from_parts(parts, body)).await
        }
        Err(response) => response.into_response(),
    }
}
