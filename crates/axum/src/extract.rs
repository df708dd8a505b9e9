//! The extractor.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

use crate::guard::{Tollgate, VerifiedToken};
use crate::rejection::{RejectionReason, TokenRejection};

/// Takes the token a [`RequireToken`](crate::RequireToken) layer verified, or verifies the
/// request itself with the [`Tollgate`] found in the request extensions.
impl<S: Send + Sync> FromRequestParts<S> for VerifiedToken {
    type Rejection = TokenRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(token) = parts.extensions.get::<VerifiedToken>() {
            return Ok(token.clone());
        }
        let Some(tollgate) = parts.extensions.get::<Tollgate>().cloned() else {
            tracing::error!(
                "VerifiedToken used on a route without `tollgate.layer()` or `Extension(tollgate)`"
            );
            return Err(TokenRejection::missing_layer());
        };
        let token = tollgate.authenticate(&parts.headers).await?;
        parts.extensions.insert(token.clone());
        Ok(token)
    }
}

/// `Option<VerifiedToken>`: `None` when the request carries no credentials at all; a request
/// with bad credentials is still rejected.
impl<S: Send + Sync> OptionalFromRequestParts<S> for VerifiedToken {
    type Rejection = TokenRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <Self as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(token) => Ok(Some(token)),
            Err(rejection) if rejection.reason() == RejectionReason::Missing => Ok(None),
            Err(rejection) => Err(rejection),
        }
    }
}
