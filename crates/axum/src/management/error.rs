//! Failed requests, answered as `{"error": {"code", "message"}}`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tollgate::{Error, ErrorKind};

use super::views::{ErrorBody, ErrorDetail};

/// An error answered as [`ErrorBody`]. The status of a core [`Error`] follows from its
/// [`ErrorKind`] alone, as the CLI's exit code does.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        // A 405 gets its `Allow` from the router, which knows each resource's methods.
        response
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let kind = err.kind();
        let status =
            StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match kind {
            ErrorKind::Unavailable => {
                let message = err.report();
                tracing::warn!(error = %message, "token store unavailable");
                Self::new(status, err.code(), message)
            }
            ErrorKind::Internal => {
                tracing::error!(error = %err.report(), "management request failed");
                Self::new(status, "internal_error", "the request failed on the server")
            }
            _ => Self::new(status, err.code(), err.report()),
        }
    }
}
