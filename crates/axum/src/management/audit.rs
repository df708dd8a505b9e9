//! The audit log over HTTP, and who the audit log says acted.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, header};
use serde::{Deserialize, Serialize};
use tollgate::jiff::Timestamp;
use tollgate::{Actor, AuditAction, AuditEntry, AuditFilter, Client, Context};

use super::access::{Principal, owner_of};
use super::error::ApiError;
use super::handlers::{Shared, named, parse_id};
use super::input::{ApiQuery, parse_timestamp};
use super::openapi::Label;
use super::views::ErrorBody;
use crate::VerifiedToken;

/// Who is acting and from where, for the audit log: the admin token the guard verified, or
/// the signed-in user; the client's address (when the server was started with
/// `into_make_service_with_connect_info`) and its `User-Agent`.
pub(crate) fn context(parts: &Parts) -> Context {
    let actor = match parts.extensions.get::<Principal>() {
        Some(Principal::User(owner)) => Actor::user(owner.clone()),
        _ => match parts.extensions.get::<VerifiedToken>() {
            Some(token) => Actor::token(token.id(), token.name()),
            None => Actor::anonymous(),
        },
    };
    Context::new(actor).client(client(parts.extensions.get(), &parts.headers))
}

/// The client of a request: its address and user agent.
pub(crate) fn client(address: Option<&ConnectInfo<SocketAddr>>, headers: &HeaderMap) -> Client {
    Client {
        address: address.map(|ConnectInfo(address)| address.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect()),
    }
}

/// The audit context of a request, as an extractor.
pub(crate) struct Acting(pub(crate) Context);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Acting {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(context(parts)))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only entries about this token.
    #[param(pattern = "^[0-9a-f]{32}$")]
    token: Option<String>,
    /// Only entries by this actor: an admin token's id, a user's owner, `user@host`.
    #[param(max_length = 200)]
    actor: Option<String>,
    /// Only this action.
    #[param(inline)]
    action: Option<AuditAction>,
    /// Only entries at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Only entries before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
    /// Only entries about this owner's tokens (administrators; a user sees their own).
    #[param(value_type = Option<Label>, example = "default")]
    owner: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 512)]
    cursor: Option<String>,
}

/// One page of the audit log.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPageView {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A `date-time` as JSON Schema reads it. The instants of years 0000 and 9999 lie before and
/// after every entry, and not all of them fit a timestamp: they read as the start and the end
/// of time.
fn time(field: &'static str, text: Option<String>) -> Result<Option<Timestamp>, ApiError> {
    let edge = |t: &str| {
        let shifted = |from: &str, to: &str| {
            t.starts_with(from) && parse_timestamp(&t.replacen(from, to, 1)).is_ok()
        };
        if shifted("9999-", "9998-") {
            Some(Timestamp::MAX)
        } else if shifted("0000-", "0001-") {
            Some(Timestamp::MIN)
        } else {
            None
        }
    };
    text.map(|t| match parse_timestamp(&t) {
        Ok(at) => Ok(at),
        Err(reason) => edge(&t).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_parameter",
                format!("invalid query parameter `{field}`: {reason}"),
            )
        }),
    })
    .transpose()
}

/// The audit log: every change and every refused request, newest first.
#[utoipa::path(get, path = "/audit", params(AuditQuery), tag = "audit",
    responses(
        (status = 200, body = AuditPageView, description = "One page of entries."),
        (status = 400, body = ErrorBody, description = "An invalid filter, limit or cursor."),
        (status = 401, body = ErrorBody, description = "No valid credentials."),
        (status = 403, body = ErrorBody, description = "The token lacks the admin scope, or another owner was named."),
        (status = 503, body = ErrorBody, description = "The token store is unavailable.", headers(("Retry-After" = u32, description = "Seconds to wait.")))
    ))]
pub(crate) async fn read_audit(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    named(query.owner.as_deref())?;
    let owner = match principal {
        // An administrator's log spans owners unless one is named.
        Principal::Admin => query.owner,
        // A user reads their own tokens' activity: the rule every route follows.
        Principal::User(_) => Some(owner_of(&principal, "", query.owner.as_deref(), None)?),
    };
    let token = query.token.as_deref().map(parse_id).transpose()?;
    let filter = AuditFilter {
        token,
        actor: query.actor,
        action: query.action,
        since: time("since", query.since)?,
        until: time("until", query.until)?,
        owner,
    };
    let page = shared
        .manager
        .audit(&filter, query.cursor.as_deref(), query.limit)
        .await?;
    Ok(Json(AuditPageView {
        entries: page.entries,
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// Records every request the access check turned away (401, 403) in the audit log: who, if
/// the presented token is known (an under-scoped admin token), from where, and why — never
/// the presented token.
pub(crate) async fn record_refusals(
    State(manager): State<Arc<tollgate::TokenManager>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers.clone();
    let address = parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned();
    let response = next
        .run(axum::extract::Request::from_parts(parts, body))
        .await;
    let status = response.status();
    if status != http::StatusCode::UNAUTHORIZED && status != http::StatusCode::FORBIDDEN {
        return response;
    }
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let reason = if status == http::StatusCode::FORBIDDEN {
        "insufficient scope or another owner"
    } else if challenge.contains("invalid_token") {
        "invalid token"
    } else {
        "missing credentials"
    };
    // Name the token when it is a valid one that lacks the scope.
    let mut actor = Actor::anonymous();
    if status == http::StatusCode::FORBIDDEN
        && let Some(presented) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        && let Ok(tollgate::Verification::Valid(record)) = manager.verify(presented.trim()).await
    {
        actor = Actor::token(record.id, record.name.clone());
    }
    let ctx = Context::new(actor).client(client(address.as_ref(), &headers));
    if let Err(err) = manager.record_refusal(&ctx, reason, None).await {
        tracing::warn!(error = %err.report(), "could not record a refused management request");
    }
    response
}
