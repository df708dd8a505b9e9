//! Reading requests: JSON bodies, query strings, `If-Match`, with messages in our words.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use tollgate::jiff::Timestamp;

use super::error::ApiError;

/// A JSON body: 415 without `Content-Type: application/json`, 413 over the body limit, 400
/// for anything that is not the expected object, naming the field at fault.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = read_body(request, state).await?;
        parse(&bytes).map(Self)
    }
}

/// A body that may be absent: empty, `null` or the object. A body sent without a JSON
/// content type is refused unless it is empty.
pub(crate) struct OptionalJson<T>(pub(crate) Option<T>);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(request.headers());
        let bytes = read_body(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        parse::<Option<T>>(&bytes).map(Self)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            let essence = essence.trim();
            essence.eq_ignore_ascii_case("application/json")
                || (essence.len() > 5
                    && essence[..essence.len() - 5].contains('/')
                    && essence.to_ascii_lowercase().ends_with("+json"))
        })
}

async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is too large",
                )
            } else {
                ApiError::bad_request("invalid_body", "the request body could not be read")
            }
        })
}

/// Parses JSON with messages that name the field and say what it must be, never a Rust
/// type's name.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut json).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => format!(
                "the body is not valid JSON (line {}, column {})",
                inner.line(),
                inner.column()
            ),
            _ => {
                let reason = plain(&inner.to_string());
                if path == "." {
                    format!("the body must be a JSON object: {reason}")
                } else {
                    format!("`{path}`: {reason}")
                }
            }
        };
        ApiError::bad_request("invalid_json", message)
    })?;
    json.end().map_err(|_| {
        ApiError::bad_request(
            "invalid_json",
            "the body must hold one JSON value and nothing after it",
        )
    })?;
    Ok(value)
}

/// serde's message without its position suffix and without Rust type names.
fn plain(message: &str) -> String {
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    if message.starts_with("invalid type:") && message.contains("expected struct") {
        return "expected a JSON object".to_owned();
    }
    if let Some(at) = message.find("expected struct") {
        return format!("{}expected a JSON object", &message[..at]);
    }
    message
        .replace("expected a sequence", "expected a JSON array")
        .replace("expected a map", "expected a JSON object")
}

/// Query parameters: 400 `invalid_parameter` naming the parameter.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Self)
            .map_err(|err| {
                let path = err.path().to_string();
                let reason = plain(&err.into_inner().to_string());
                let message = if path == "." {
                    format!("invalid query string: {reason}")
                } else {
                    format!("invalid query parameter `{path}`: {reason}")
                };
                ApiError::bad_request("invalid_parameter", message)
            })
    }
}

/// An RFC 3339 timestamp, with a message that says so.
pub(crate) fn timestamp<'de, D>(deserializer: D) -> Result<Option<Timestamp>, D::Error>
where
    D: Deserializer<'de>,
{
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(
            "expected an RFC 3339 date and time with an offset, such as 2027-01-01T00:00:00Z",
        )
    })
}

/// [`timestamp`] where absent and `null` differ.
pub(crate) fn present_timestamp<'de, D>(
    deserializer: D,
) -> Result<Option<Option<Timestamp>>, D::Error>
where
    D: Deserializer<'de>,
{
    timestamp(deserializer).map(Some)
}

/// What an `If-Match` header asks (RFC 9110 §13.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IfMatch {
    /// No header: the change is unconditional.
    Absent,
    /// `*`: the token must exist, at whatever version.
    Any,
    /// One of these versions. Weak tags never match (`If-Match` compares strongly), so
    /// they are left out; an empty list matches nothing.
    Versions(Vec<u64>),
}

impl IfMatch {
    pub(crate) fn read(headers: &HeaderMap) -> Result<Self, ApiError> {
        let mut values = headers.get_all(header::IF_MATCH).iter().peekable();
        if values.peek().is_none() {
            return Ok(Self::Absent);
        }
        let invalid = || {
            ApiError::bad_request(
                "invalid_if_match",
                "If-Match must be `*` or entity tags this API returned, such as \"3\"",
            )
        };
        let mut versions = Vec::new();
        for value in values {
            let text = value.to_str().map_err(|_| invalid())?;
            for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if tag == "*" {
                    return Ok(Self::Any);
                }
                let (weak, quoted) = match tag.strip_prefix("W/") {
                    Some(rest) => (true, rest),
                    None => (false, tag),
                };
                let inner = quoted
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .filter(|t| !t.contains('"'))
                    .ok_or_else(invalid)?;
                // A well-formed tag this API never issued simply does not match.
                if !weak && let Ok(version) = inner.parse() {
                    versions.push(version);
                }
            }
        }
        Ok(Self::Versions(versions))
    }
}
