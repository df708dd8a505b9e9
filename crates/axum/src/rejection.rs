//! Why a request was turned away, and the RFC 6750 response that says so.

use std::fmt;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// Why a request was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionReason {
    /// No credentials were sent.
    Missing,
    /// The token is malformed, unknown, expired, disabled or deleted. Which one is never told
    /// to the client.
    InvalidToken,
    /// The request carries credentials in a form that cannot be read: several
    /// `Authorization` headers, a scheme other than Bearer, characters outside visible ASCII.
    InvalidRequest,
    /// The token lacks a scope the route requires.
    InsufficientScope,
    /// The token store failed; the request is denied (fail closed).
    Unavailable,
    /// The extractor found neither a verified token nor a [`Tollgate`](crate::Tollgate) in
    /// the request extensions: the application forgot a layer.
    MissingLayer,
}

/// The rejection of [`VerifiedToken`](crate::VerifiedToken) and
/// [`RequireToken`](crate::RequireToken). Converts into the response RFC 6750 prescribes:
///
/// | reason | status | `WWW-Authenticate` |
/// |---|---|---|
/// | missing | 401 | `Bearer realm="…"` |
/// | invalid token | 401 | `Bearer realm="…", error="invalid_token"` |
/// | invalid request | 400 | `Bearer realm="…", error="invalid_request"` |
/// | insufficient scope | 403 | `Bearer realm="…", error="insufficient_scope", scope="…"` |
/// | store unavailable | 503 | — |
/// | missing layer | 500 | — |
///
/// The JSON body is `{"error": {"code": "…", "message": "…"}}`, the same for every invalid
/// token whatever made it invalid.
#[derive(Debug, Clone)]
pub struct TokenRejection {
    reason: RejectionReason,
    realm: std::sync::Arc<str>,
    scope: Option<String>,
}

impl TokenRejection {
    pub(crate) fn new(reason: RejectionReason, realm: std::sync::Arc<str>) -> Self {
        Self {
            reason,
            realm,
            scope: None,
        }
    }

    pub(crate) fn missing_layer() -> Self {
        Self::new(RejectionReason::MissingLayer, "".into())
    }

    pub(crate) fn insufficient_scope(realm: std::sync::Arc<str>, scope: String) -> Self {
        Self {
            reason: RejectionReason::InsufficientScope,
            realm,
            scope: Some(scope),
        }
    }

    /// Why the request was rejected.
    pub fn reason(&self) -> RejectionReason {
        self.reason
    }

    /// The scopes the route requires, space-separated, for
    /// [`RejectionReason::InsufficientScope`].
    pub fn required_scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The HTTP status this rejection answers with.
    pub fn status(&self) -> StatusCode {
        match self.reason {
            RejectionReason::Missing | RejectionReason::InvalidToken => StatusCode::UNAUTHORIZED,
            RejectionReason::InvalidRequest => StatusCode::BAD_REQUEST,
            RejectionReason::InsufficientScope => StatusCode::FORBIDDEN,
            RejectionReason::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            RejectionReason::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self.reason {
            RejectionReason::Missing => "unauthorized",
            RejectionReason::InvalidToken => "invalid_token",
            RejectionReason::InvalidRequest => "invalid_request",
            RejectionReason::InsufficientScope => "insufficient_scope",
            RejectionReason::Unavailable => "unavailable",
            RejectionReason::MissingLayer => "internal_error",
        }
    }

    fn www_authenticate(&self) -> Option<String> {
        let realm = &self.realm;
        match self.reason {
            RejectionReason::Missing => Some(format!("Bearer realm=\"{realm}\"")),
            RejectionReason::InvalidToken => {
                Some(format!("Bearer realm=\"{realm}\", error=\"invalid_token\""))
            }
            RejectionReason::InvalidRequest => Some(format!(
                "Bearer realm=\"{realm}\", error=\"invalid_request\""
            )),
            RejectionReason::InsufficientScope => Some(format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{}\"",
                self.scope.as_deref().unwrap_or_default()
            )),
            RejectionReason::Unavailable | RejectionReason::MissingLayer => None,
        }
    }
}

impl fmt::Display for TokenRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            RejectionReason::Missing => {
                f.write_str("authentication required: send `Authorization: Bearer <token>`")
            }
            RejectionReason::InvalidToken => {
                f.write_str("the token is invalid, expired or revoked")
            }
            RejectionReason::InvalidRequest => f.write_str(
                "the credentials could not be read: send one `Authorization: Bearer <token>` header",
            ),
            RejectionReason::InsufficientScope => write!(
                f,
                "the token lacks the required scope: {}",
                self.scope.as_deref().unwrap_or_default()
            ),
            RejectionReason::Unavailable => {
                f.write_str("the token service is unavailable; try again later")
            }
            RejectionReason::MissingLayer => f.write_str(
                "tollgate-axum is not set up for this route: add `.layer(tollgate.layer())` or \
                 `.layer(axum::Extension(tollgate))` to the router",
            ),
        }
    }
}

impl std::error::Error for TokenRejection {}

impl IntoResponse for TokenRejection {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code(), "message": self.to_string() }
        });
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(challenge) = self.www_authenticate()
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if self.reason == RejectionReason::Unavailable {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(
            self.reason,
            RejectionReason::Missing | RejectionReason::InvalidToken
        ) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        response
    }
}
