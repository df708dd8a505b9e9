//! The management API (`/api/v1`), the demo API and the OpenAPI document.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Deserializer, Serialize};
use tollgate::jiff::{SignedDuration, Timestamp};
use tollgate::{
    DeleteOptions, Error, Issued, ListFilter, ListOptions, NewToken, Regenerate, TokenId,
    TokenManager, TokenRecord, TokenUpdate,
};
use tollgate_axum::{Tollgate, VerifiedToken};
use utoipa::OpenApi as _;

use crate::output::file_name;

/// The scope a token needs to use the management API.
pub(crate) const ADMIN_SCOPE: &str = "tollgate:admin";
/// The owner used when a request names none, as in the CLI.
pub(crate) const DEFAULT_OWNER: &str = "default";
/// The largest request body accepted.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// How the OpenAPI document describes a 503.
const UNAVAILABLE: &str = "`unavailable`: the token store cannot answer now; the message names the cause. Retry after `Retry-After` seconds.";

/// The whole application: `/healthz`, `/demo/whoami`, `/api/v1/…`.
pub(crate) fn router(manager: Arc<TokenManager>, tollgate: Tollgate) -> Router {
    let management = Router::new()
        .route("/tokens", get(list_tokens).post(apply_token))
        .route(
            "/tokens/{id}",
            get(get_token).patch(modify_token).delete(delete_token),
        )
        .route("/tokens/{id}/regenerate", post(regenerate_token))
        .route("/tokens/{id}/download", get(download_token))
        .route_layer(tollgate.require([ADMIN_SCOPE]))
        .route("/openapi.json", get(openapi_json))
        .with_state(manager);
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/demo/whoami", get(whoami))
        .nest("/api/v1", management)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(Extension(tollgate))
}

/// A token as the API shows it: the same fields as the CLI's `--json`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TokenView {
    /// 32 hexadecimal characters.
    #[schema(value_type = String, example = "5c0d8a7e4b1f4e0f9a3c2b1d0e9f8a7b")]
    id: TokenId,
    owner: String,
    name: String,
    description: String,
    scopes: Vec<String>,
    enabled: bool,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    last_used_at: Option<Timestamp>,
    /// The last characters of the token, to tell it apart from others (not secret); empty
    /// when unknown.
    hint: String,
}

impl From<&TokenRecord> for TokenView {
    fn from(record: &TokenRecord) -> Self {
        let info = record.info();
        Self {
            id: info.id,
            owner: info.owner,
            name: info.name,
            description: info.description,
            scopes: info.scopes,
            enabled: info.enabled,
            created_at: info.created_at,
            updated_at: info.updated_at,
            expires_at: info.expires_at,
            last_used_at: info.last_used_at,
            hint: info.hint,
        }
    }
}

/// A token just issued or regenerated, with its secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct IssuedView {
    #[serde(flatten)]
    record: TokenView,
    /// The secret token. It is not stored: keep it now.
    token: String,
}

/// One page of tokens.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct PageView {
    items: Vec<TokenView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// The error body of every failed request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    /// A stable, machine-readable code such as `name_taken`.
    code: &'static str,
    /// One sentence for people.
    message: String,
}

/// An error answered as `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// What a 503 asks clients to wait before retrying, in seconds.
const RETRY_AFTER_SECONDS: &str = "1";

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// The status and the code come from the core's classification ([`Error::kind`],
/// [`Error::code`]), the same one the CLI's exit codes come from.
impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let status = StatusCode::from_u16(err.kind().http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = err.report();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // The cause (refused, timed out, locked) tells an operator what to look at.
            tracing::warn!(error = %message, "token store unavailable");
        } else if status.is_server_error() {
            // Internal details stay in the log.
            tracing::error!(error = %message, "request failed");
            return Self::new(status, "internal_error", "the request failed on the server");
        }
        Self::new(status, err.code(), message)
    }
}

/// `Json` whose rejections are [`ApiError`]s: 400 for bad JSON or unknown fields, 413 for a
/// body over the limit, 415 for a missing `Content-Type: application/json`.
struct ApiJson<T>(T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
                ),
                StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the body as JSON with `Content-Type: application/json`",
                ),
                _ => ApiError::bad_request("invalid_json", rejection.body_text()),
            }),
        }
    }
}

/// `Query` whose rejections are [`ApiError`]s.
struct ApiQuery<T>(T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    axum::extract::Query<T>: FromRequestParts<S, Rejection = QueryRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
    }
}

fn parse_id(id: &str) -> Result<TokenId, ApiError> {
    id.parse().map_err(ApiError::from)
}

/// `ETag: "<version>"`, so clients can send `If-Match` back.
fn etag(record: &TokenRecord) -> [(header::HeaderName, HeaderValue); 1] {
    let value = HeaderValue::from_str(&format!("\"{}\"", record.version))
        .expect("a number is a valid header value");
    [(header::ETAG, value)]
}

/// The version an `If-Match: "<version>"` header asks for.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_if_match",
                "If-Match must be an ETag this API returned, such as \"3\"",
            )
        })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct OwnerQuery {
    /// Whose tokens; `default` when omitted.
    owner: Option<String>,
}

impl OwnerQuery {
    fn owner(&self) -> &str {
        self.owner.as_deref().unwrap_or(DEFAULT_OWNER)
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ForceQuery {
    /// Whose tokens; `default` when omitted.
    owner: Option<String>,
    /// Go ahead even if this deletes, disables or takes `tollgate:admin` from the last
    /// enabled token holding that scope. **Nobody can then use this API** until a new admin
    /// token is issued on the store itself (`tollgate apply NAME --scope tollgate:admin`).
    force: Option<bool>,
}

impl ForceQuery {
    fn owner(&self) -> &str {
        self.owner.as_deref().unwrap_or(DEFAULT_OWNER)
    }

    fn force(&self) -> bool {
        self.force.unwrap_or(false)
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Fuzzy search over names; results are ranked by relevance.
    q: Option<String>,
    /// Page size, 1–1000 (default 50).
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Whose tokens; `default` when omitted.
    owner: Option<String>,
    /// Only enabled (`true`) or disabled (`false`) tokens.
    enabled: Option<bool>,
    /// Only expired (`true`) or unexpired (`false`) tokens.
    expired: Option<bool>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct IssueQuery {
    /// Whose tokens; `default` when omitted.
    owner: Option<String>,
    /// Answer with the token file (secret included) as an attachment instead of JSON.
    download: Option<bool>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ApplyBody {
    /// 1–100 characters, unique for the owner (case-insensitively).
    name: String,
    description: Option<String>,
    /// RFC 3339; must be in the future.
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Timestamp>,
    scopes: Option<Vec<String>>,
    /// Whose token; `default` when omitted (or the `owner` query parameter).
    owner: Option<String>,
}

/// Absent means "leave as is"; `null` means "clear".
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ModifyBody {
    name: Option<String>,
    description: Option<String>,
    /// RFC 3339 in the future, or `null` to remove the expiry.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Option<Timestamp>>,
    /// Replaces every scope.
    scopes: Option<Vec<String>>,
    enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RegenerateBody {
    /// Keep the old secret working this many seconds (at most 30 days).
    grace_seconds: Option<u64>,
}

/// Lists tokens, newest first, or ranked by a fuzzy query.
#[utoipa::path(get, path = "/api/v1/tokens", params(ListQuery), tag = "tokens",
    security(("bearer" = ["tollgate:admin"])),
    responses(
        (status = 200, body = PageView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody, description = UNAVAILABLE)
    ))]
async fn list_tokens(
    State(manager): State<Arc<TokenManager>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<PageView>, ApiError> {
    let owner = query.owner.as_deref().unwrap_or(DEFAULT_OWNER);
    let page = manager
        .list(
            owner,
            ListOptions {
                query: query.q,
                limit: query.limit,
                cursor: query.cursor,
                filter: ListFilter {
                    enabled: query.enabled,
                    expired: query.expired,
                },
            },
        )
        .await?;
    Ok(Json(PageView {
        items: page.items.iter().map(TokenView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

fn issued_response(
    status: StatusCode,
    issued: &Issued,
    download: bool,
    now: Timestamp,
) -> Response {
    let location = format!("/api/v1/tokens/{}", issued.record.id);
    let mut response = if download {
        attachment(&issued.record, issued.token_file(now).to_json())
    } else {
        Json(IssuedView {
            record: TokenView::from(&issued.record),
            token: issued.token.expose_secret().to_owned(),
        })
        .into_response()
    };
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.extend(etag(&issued.record));
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, location);
    }
    // The body holds a secret.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Issues a token. The response carries its secret, this once.
#[utoipa::path(post, path = "/api/v1/tokens", params(IssueQuery), request_body = ApplyBody, tag = "tokens",
    security(("bearer" = ["tollgate:admin"])),
    responses(
        (status = 201, body = IssuedView, description = "Issued; `token` is the secret."),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "Name taken."),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 503, body = ErrorBody, description = UNAVAILABLE)
    ))]
async fn apply_token(
    State(manager): State<Arc<TokenManager>>,
    ApiQuery(query): ApiQuery<IssueQuery>,
    ApiJson(body): ApiJson<ApplyBody>,
) -> Result<Response, ApiError> {
    let owner = body
        .owner
        .as_deref()
        .or(query.owner.as_deref())
        .unwrap_or(DEFAULT_OWNER);
    let mut new = NewToken::new(body.name)
        .description(body.description.unwrap_or_default())
        .scopes(body.scopes.unwrap_or_default());
    if let Some(at) = body.expires_at {
        new = new.expires_at(at);
    }
    let issued = manager.apply(owner, new).await?;
    Ok(issued_response(
        StatusCode::CREATED,
        &issued,
        query.download.unwrap_or(false),
        manager.now(),
    ))
}

/// One token.
#[utoipa::path(get, path = "/api/v1/tokens/{id}", params(("id" = String, Path), OwnerQuery), tag = "tokens",
    security(("bearer" = ["tollgate:admin"])),
    responses((status = 200, body = TokenView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody, description = UNAVAILABLE)))]
async fn get_token(
    State(manager): State<Arc<TokenManager>>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<OwnerQuery>,
) -> Result<Response, ApiError> {
    let record = manager.get(query.owner(), parse_id(&id)?).await?;
    Ok((etag(&record), Json(TokenView::from(&record))).into_response())
}

/// Changes a token. Without `If-Match` the change always applies, whatever else changed the
/// token meanwhile; send `If-Match` with the `ETag` you read to refuse a concurrent change.
#[utoipa::path(patch, path = "/api/v1/tokens/{id}", params(("id" = String, Path), ForceQuery), request_body = ModifyBody, tag = "tokens",
    security(("bearer" = ["tollgate:admin"])),
    responses(
        (status = 200, body = TokenView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`name_taken`; `version_conflict`: the token changed since If-Match (the message names both versions); `lockout`: it would disable or descope the last admin token (see `force`)."),
        (status = 503, body = ErrorBody, description = UNAVAILABLE)
    ))]
async fn modify_token(
    State(manager): State<Arc<TokenManager>>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ForceQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ModifyBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let mut update = TokenUpdate::default();
    if let Some(name) = body.name {
        update = update.name(name);
    }
    if let Some(description) = body.description {
        update = update.description(description);
    }
    if let Some(expires_at) = body.expires_at {
        update = update.expires_at(expires_at);
    }
    if let Some(scopes) = body.scopes {
        update = update.scopes(scopes);
    }
    if let Some(enabled) = body.enabled {
        update = update.enabled(enabled);
    }
    if let Some(version) = if_match(&headers)? {
        update = update.expected_version(version);
    }
    update = update.force(query.force());
    let record = manager.modify(query.owner(), id, update).await?;
    Ok((etag(&record), Json(TokenView::from(&record))).into_response())
}

/// Replaces a token's secret. The response carries the new one, this once.
#[utoipa::path(post, path = "/api/v1/tokens/{id}/regenerate", params(("id" = String, Path), IssueQuery), request_body(content = Option<RegenerateBody>), tag = "tokens",
    security(("bearer" = ["tollgate:admin"])),
    responses(
        (status = 200, body = IssuedView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The token changed since If-Match."),
        (status = 503, body = ErrorBody, description = UNAVAILABLE)
    ))]
async fn regenerate_token(
    State(manager): State<Arc<TokenManager>>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<IssueQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    // An empty body means no grace period.
    let body: RegenerateBody = if body.iter().all(u8::is_ascii_whitespace) {
        RegenerateBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?
    };
    let mut options = Regenerate::default();
    if let Some(seconds) = body.grace_seconds {
        let seconds = i64::try_from(seconds).map_err(|_| {
            ApiError::bad_request("invalid_grace_period", "grace_seconds is too large")
        })?;
        options = options.grace(SignedDuration::from_secs(seconds));
    }
    if let Some(version) = if_match(&headers)? {
        options = options.expected_version(version);
    }
    let owner = query.owner.as_deref().unwrap_or(DEFAULT_OWNER);
    let issued = manager.regenerate(owner, id, options).await?;
    Ok(issued_response(
        StatusCode::OK,
        &issued,
        query.download.unwrap_or(false),
        manager.now(),
    ))
}

/// Deletes a token for good; it fails verification from this response on.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", params(("id" = String, Path), ForceQuery), tag = "tokens",
    security(("bearer" = ["tollgate:admin"])),
    responses(
        (status = 204, description = "Deleted."), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`lockout`: this is the last enabled admin token (see `force`)."),
        (status = 503, body = ErrorBody, description = UNAVAILABLE)
    ))]
async fn delete_token(
    State(manager): State<Arc<TokenManager>>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ForceQuery>,
) -> Result<StatusCode, ApiError> {
    let options = DeleteOptions::default().force(query.force());
    manager
        .delete_with(query.owner(), parse_id(&id)?, options)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The token file as an attachment. It holds no secret unless the server runs in recoverable
/// mode; use `POST …/regenerate?download=true` for a file with a fresh secret.
#[utoipa::path(get, path = "/api/v1/tokens/{id}/download", params(("id" = String, Path), OwnerQuery), tag = "tokens",
    security(("bearer" = ["tollgate:admin"])),
    responses((status = 200, content_type = "application/json", description = "A tollgate-token-file document."),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody, description = UNAVAILABLE)))]
async fn download_token(
    State(manager): State<Arc<TokenManager>>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<OwnerQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let file = manager.download(query.owner(), id).await?;
    let record = manager.get(query.owner(), id).await?;
    let mut response = attachment(&record, file.to_json());
    if file.secret_included() {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}

/// A token file response: JSON, `Content-Disposition: attachment` with an ASCII `filename`
/// and the UTF-8 name in `filename*` (RFC 6266).
fn attachment(record: &TokenRecord, json: String) -> Response {
    let name = file_name(&record.name, &record.id.to_string());
    let name = name.to_string_lossy();
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    let mut response = json.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The caller's token, as the guard verified it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct WhoAmI {
    #[schema(value_type = String)]
    id: TokenId,
    owner: String,
    name: String,
    scopes: Vec<String>,
}

/// Demo route guarded by the extractor: who is calling?
#[utoipa::path(get, path = "/demo/whoami", tag = "demo", security(("bearer" = [])),
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)))]
async fn whoami(token: VerifiedToken) -> Json<WhoAmI> {
    Json(WhoAmI {
        id: token.id(),
        owner: token.owner().to_owned(),
        name: token.name().to_owned(),
        scopes: token.scopes().to_vec(),
    })
}

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A Tollgate token, `Authorization: Bearer tg_…`."))
                    .build(),
            ),
        );
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Tollgate", description = "Manage API tokens: list, apply, download, modify, regenerate, delete."),
    paths(list_tokens, apply_token, get_token, modify_token, regenerate_token, delete_token, download_token, whoami),
    modifiers(&BearerScheme),
    tags((name = "tokens", description = "Token management; needs the `tollgate:admin` scope."),
         (name = "demo", description = "A route guarded by Tollgate."))
)]
struct ApiDoc;

/// The OpenAPI document, generated from the handlers above.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}
