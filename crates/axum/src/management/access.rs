//! Who may manage which tokens.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use super::error::ApiError;

/// Resolves each management request to the one owner whose tokens it may manage, for
/// self-service ([`ManagementOptions::self_service`](super::ManagementOptions::self_service)).
///
/// Implemented for closures `Fn(&Parts) -> Option<String>` (reading, say, the user your
/// session middleware put in the request extensions; `None` answers 401), and by
/// [`FromExtractor`] for any extractor of yours that implements [`Owner`].
pub trait OwnerResolver: Send + Sync + 'static {
    /// The owner, or the response that turns the request away.
    fn resolve<'a>(
        &'a self,
        parts: &'a mut Parts,
    ) -> Pin<Box<dyn Future<Output = Result<String, Response>> + Send + 'a>>;
}

impl<F> OwnerResolver for F
where
    F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
{
    fn resolve<'a>(
        &'a self,
        parts: &'a mut Parts,
    ) -> Pin<Box<dyn Future<Output = Result<String, Response>> + Send + 'a>> {
        let owner = self(parts).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "sign in to manage your tokens",
            )
            .into_response()
        });
        Box::pin(std::future::ready(owner))
    }
}

/// An extractor of yours that says who the signed-in user is.
pub trait Owner {
    /// The owner whose tokens this user manages: their account or user id.
    fn owner(&self) -> String;
}

/// An [`OwnerResolver`] that runs extractor `E` (with state `()`): its rejection turns the
/// request away, its [`Owner::owner`] is the owner.
pub struct FromExtractor<E>(PhantomData<fn() -> E>);

impl<E> FromExtractor<E> {
    /// The resolver.
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<E> Default for FromExtractor<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> fmt::Debug for FromExtractor<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FromExtractor")
    }
}

impl<E> OwnerResolver for FromExtractor<E>
where
    E: FromRequestParts<()> + Owner + Send + 'static,
    E::Rejection: IntoResponse,
{
    fn resolve<'a>(
        &'a self,
        parts: &'a mut Parts,
    ) -> Pin<Box<dyn Future<Output = Result<String, Response>> + Send + 'a>> {
        Box::pin(async move {
            E::from_request_parts(parts, &())
                .await
                .map(|user| user.owner())
                .map_err(IntoResponse::into_response)
        })
    }
}

/// How requests are authorized.
#[derive(Clone)]
pub(crate) enum Access {
    /// A Tollgate token of owner `owner` with the admin scope; may manage every owner,
    /// named by the request.
    Admin { scope: Arc<str>, owner: Arc<str> },
    /// The application's own authentication; one owner per request.
    SelfService(Arc<dyn OwnerResolver>),
}

impl Access {
    /// Administrators with a token of [`DEFAULT_OWNER`](super::DEFAULT_OWNER) holding
    /// [`DEFAULT_ADMIN_SCOPE`](super::DEFAULT_ADMIN_SCOPE).
    pub(crate) fn admin() -> Self {
        Self::Admin {
            scope: super::DEFAULT_ADMIN_SCOPE.into(),
            owner: super::DEFAULT_OWNER.into(),
        }
    }

    /// The admin scope and owner: these, or the defaults for self-service.
    fn admin_parts(&self) -> (Arc<str>, Arc<str>) {
        match self {
            Self::Admin { scope, owner } => (scope.clone(), owner.clone()),
            Self::SelfService(_) => (
                super::DEFAULT_ADMIN_SCOPE.into(),
                super::DEFAULT_OWNER.into(),
            ),
        }
    }

    /// Administrators whose tokens hold `scope`.
    pub(crate) fn with_scope(&self, scope: String) -> Self {
        let (_, owner) = self.admin_parts();
        Self::Admin {
            scope: scope.into(),
            owner,
        }
    }

    /// Administrators whose tokens belong to `owner`.
    pub(crate) fn with_owner(&self, owner: String) -> Self {
        let (scope, _) = self.admin_parts();
        Self::Admin {
            scope,
            owner: owner.into(),
        }
    }
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Admin { scope, owner } => f
                .debug_struct("Admin")
                .field("scope", scope)
                .field("owner", owner)
                .finish(),
            Self::SelfService(_) => f.write_str("SelfService"),
        }
    }
}

/// Who is asking, as the access middleware resolved it.
#[derive(Debug, Clone)]
pub(crate) enum Principal {
    /// An administrator: the request names the owner.
    Admin,
    /// A signed-in user: this owner only.
    User(String),
}

/// The one place that decides whose tokens a request concerns: the query's `owner`, the
/// body's `owner`, the signed-in user, or the default.
pub(crate) fn owner_of(
    principal: &Principal,
    default_owner: &str,
    query: Option<&str>,
    body: Option<&str>,
) -> Result<String, ApiError> {
    let named = match (query, body) {
        (Some(q), Some(b)) if q != b => {
            return Err(ApiError::bad_request(
                "conflicting_owner",
                format!("the query names owner {q:?} and the body owner {b:?}; name one"),
            ));
        }
        (q, b) => q.or(b),
    };
    match principal {
        Principal::Admin => Ok(named.unwrap_or(default_owner).to_owned()),
        Principal::User(owner) => match named {
            Some(named) if named != owner => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_owner",
                "you may manage only your own tokens",
            )),
            _ => Ok(owner.clone()),
        },
    }
}
