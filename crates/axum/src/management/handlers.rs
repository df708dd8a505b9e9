//! The routes.

use std::sync::Arc;

use axum::extract::{NestedPath, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use tollgate::jiff::{SignedDuration, Timestamp};
use tollgate::{
    DeleteOptions, Error, Issued, ListFilter, ListOptions, NewToken, Regenerate, TokenId,
    TokenManager, TokenRecord, TokenUpdate,
};

use super::access::{Principal, owner_of};
use super::error::ApiError;
use super::input::{ApiJson, ApiQuery, IfMatch, OptionalJson, present_timestamp, timestamp};
use super::views::{ErrorBody, IssuedView, PageView, TokenFileView, TokenView};

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) manager: Arc<TokenManager>,
    pub(crate) default_owner: String,
}

type St = State<Arc<Shared>>;

fn parse_id(id: &str) -> Result<TokenId, ApiError> {
    id.parse().map_err(ApiError::from)
}

/// `ETag: "<version>"`, so that clients can send `If-Match` back.
fn etag(record: &TokenRecord) -> (header::HeaderName, HeaderValue) {
    let value = HeaderValue::from_str(&format!("\"{}\"", record.version))
        .expect("a number is a valid header value");
    (header::ETAG, value)
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The version a conditional change must find, from `If-Match`: `None` for an
/// unconditional one. Tags that cannot match fail with the token's current version named.
async fn expected_version(
    manager: &TokenManager,
    owner: &str,
    id: TokenId,
    if_match: IfMatch,
) -> Result<Option<u64>, ApiError> {
    match if_match {
        IfMatch::Absent => Ok(None),
        // `*` matches whatever version exists; a missing token is a 404 either way.
        IfMatch::Any => Ok(None),
        IfMatch::Versions(versions) => {
            let current = manager.get(owner, id).await?.version;
            if versions.contains(&current) {
                Ok(Some(current))
            } else {
                let expected = versions.first().copied().unwrap_or(0);
                Err(Error::VersionConflict {
                    id,
                    expected,
                    actual: current,
                }
                .into())
            }
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct OwnerQuery {
    /// Whose tokens; the router's default owner when omitted. Administrators only: with
    /// self-service, the signed-in user's.
    #[param(min_length = 1, max_length = 100)]
    owner: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ChangeQuery {
    /// Whose tokens; the router's default owner when omitted.
    #[param(min_length = 1, max_length = 100)]
    owner: Option<String>,
    /// Go ahead even if this removes the last enabled token with the admin scope.
    /// **This can lock every administrator out.**
    force: Option<bool>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Fuzzy search over names (typos, missing separators, any word order,
    /// abbreviations); results are ranked by relevance.
    #[param(max_length = 200)]
    q: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 512)]
    cursor: Option<String>,
    /// Whose tokens; the router's default owner when omitted.
    #[param(min_length = 1, max_length = 100)]
    owner: Option<String>,
    /// Only enabled (`true`) or disabled (`false`) tokens.
    enabled: Option<bool>,
    /// Only expired (`true`) or unexpired (`false`) tokens.
    expired: Option<bool>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct IssueQuery {
    /// Whose token; the router's default owner when omitted.
    #[param(min_length = 1, max_length = 100)]
    owner: Option<String>,
    /// Answer with the token file (secret included) as an attachment instead of JSON.
    download: Option<bool>,
}

/// A new token.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "CI deploy", "description": "Pushes releases",
    "scopes": ["deploy"], "expires_at": "2027-12-31T00:00:00Z"}))]
pub(crate) struct ApplyBody {
    /// Unique for the owner, compared case-insensitively; no control or invisible characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// At most 1000 characters; newlines and tabs allowed.
    #[schema(max_length = 1000)]
    description: Option<String>,
    /// When it stops working (RFC 3339, in the future); `null` or absent for never.
    #[serde(default, deserialize_with = "timestamp")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Timestamp>,
    /// What the token may do: each 1–128 visible ASCII characters other than `"` and `\`.
    #[schema(max_items = 64, value_type = Option<Vec<String>>)]
    scopes: Option<Vec<String>>,
    /// Whose token (instead of the `owner` query parameter).
    #[schema(min_length = 1, max_length = 100)]
    owner: Option<String>,
}

/// Changes to a token; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "the demo client", "enabled": false}))]
pub(crate) struct ModifyBody {
    /// A new name, unique for the owner.
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// A new description.
    #[schema(max_length = 1000)]
    description: Option<String>,
    /// A new expiry in the future, or `null` to remove it.
    #[serde(default, deserialize_with = "present_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Option<Timestamp>>,
    /// Replaces every scope.
    #[schema(max_items = 64, value_type = Option<Vec<String>>)]
    scopes: Option<Vec<String>>,
    /// Enables or disables the token.
    enabled: Option<bool>,
}

/// How to regenerate; the whole body may be omitted (no grace period).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grace_seconds": 600}))]
pub(crate) struct RegenerateBody {
    /// Keep the old secret working this many seconds (at most 30 days, never past the
    /// token's expiry).
    #[schema(minimum = 0, maximum = 2_592_000)]
    grace_seconds: Option<u64>,
}

/// `{base}/tokens/{id}`, with the owner when an administrator named one other than the
/// default, so that the URL finds the token.
fn location(
    base: Option<&NestedPath>,
    shared: &Shared,
    principal: &Principal,
    record: &TokenRecord,
) -> String {
    let base = base.map_or("", |p| p.as_str()).trim_end_matches('/');
    let mut url = format!("{base}/tokens/{}", record.id);
    if matches!(principal, Principal::Admin) && record.owner != shared.default_owner {
        url.push_str("?owner=");
        url.extend(form_urlencoded::byte_serialize(record.owner.as_bytes()));
    }
    url
}

/// Lists tokens, newest first, or ranked by a fuzzy query.
#[utoipa::path(get, path = "/tokens", params(ListQuery), tag = "tokens",
    responses(
        (status = 200, body = PageView, description = "One page of tokens."),
        (status = 400, body = ErrorBody, description = "An invalid parameter: owner, query (over 200 characters), limit (1–1000), cursor."),
        (status = 401, body = ErrorBody, description = "No valid credentials."),
        (status = 403, body = ErrorBody, description = "The token lacks the admin scope, or another owner's tokens were asked for."),
        (status = 503, body = ErrorBody, description = "The token store is unavailable.", headers(("Retry-After" = u32, description = "Seconds to wait.")))
    ))]
pub(crate) async fn list_tokens(
    State(shared): St,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let owner = owner_of(
        &principal,
        &shared.default_owner,
        query.owner.as_deref(),
        None,
    )?;
    let page = shared
        .manager
        .list(
            &owner,
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
    Ok(Json(PageView::new(&page, shared.manager.now())).into_response())
}

fn issued_response(
    status: StatusCode,
    issued: &Issued,
    download: bool,
    location: &str,
    now: Timestamp,
) -> Response {
    let mut response = if download {
        attachment(&issued.record, issued.token_file(now).to_json())
    } else {
        Json(IssuedView::new(issued, now)).into_response()
    };
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let (name, value) = etag(&issued.record);
    headers.insert(name, value);
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, location);
    }
    // The body holds a secret.
    no_store(&mut response);
    response
}

/// Issues a token. The response carries its secret, this once.
#[utoipa::path(post, path = "/tokens", params(IssueQuery), request_body = ApplyBody, tag = "tokens",
    responses(
        (status = 201, description = "Issued; `token` is the secret, shown this once. With `download=true`, the token file (secret included) as an attachment.",
            content(
                (IssuedView = "application/json"),
            ),
            headers(
                ("Location" = String, description = "The token's URL."),
                ("ETag" = String, description = "The token's version, for `If-Match`."),
                ("Cache-Control" = String, description = "`no-store`: the body holds a secret."),
                ("Content-Disposition" = String, description = "With `download=true`: the token file's name.")
            )),
        (status = 400, body = ErrorBody, description = "Invalid input: name, description, scopes, expiry, owner, JSON."),
        (status = 401, body = ErrorBody, description = "No valid credentials."),
        (status = 403, body = ErrorBody, description = "The token lacks the admin scope, or another owner was named."),
        (status = 409, body = ErrorBody, description = "The owner already has a token with this name."),
        (status = 413, body = ErrorBody, description = "The body is over the size limit."),
        (status = 415, body = ErrorBody, description = "The body is not sent as `application/json`."),
        (status = 503, body = ErrorBody, description = "The token store is unavailable.", headers(("Retry-After" = u32, description = "Seconds to wait.")))
    ))]
pub(crate) async fn apply_token(
    State(shared): St,
    Extension(principal): Extension<Principal>,
    base: Option<Extension<NestedPath>>,
    ApiQuery(query): ApiQuery<IssueQuery>,
    ApiJson(body): ApiJson<ApplyBody>,
) -> Result<Response, ApiError> {
    let owner = owner_of(
        &principal,
        &shared.default_owner,
        query.owner.as_deref(),
        body.owner.as_deref(),
    )?;
    let mut new = NewToken::new(body.name)
        .description(body.description.unwrap_or_default())
        .scopes(body.scopes.unwrap_or_default());
    if let Some(at) = body.expires_at {
        new = new.expires_at(at);
    }
    let issued = shared.manager.apply(&owner, new).await?;
    let location = location(base.as_deref(), &shared, &principal, &issued.record);
    Ok(issued_response(
        StatusCode::CREATED,
        &issued,
        query.download.unwrap_or(false),
        &location,
        shared.manager.now(),
    ))
}

/// One token.
#[utoipa::path(get, path = "/tokens/{id}", params(("id" = String, Path, description = "The token's id: 32 lower-case hexadecimal characters.", pattern = "^[0-9a-f]{32}$"), OwnerQuery), tag = "tokens",
    responses(
        (status = 200, body = TokenView, description = "The token.", headers(("ETag" = String, description = "The token's version, for `If-Match`."))),
        (status = 400, body = ErrorBody, description = "An invalid id or owner."),
        (status = 401, body = ErrorBody, description = "No valid credentials."),
        (status = 403, body = ErrorBody, description = "The token lacks the admin scope, or another owner was named."),
        (status = 404, body = ErrorBody, description = "The owner has no token with this id."),
        (status = 503, body = ErrorBody, description = "The token store is unavailable.", headers(("Retry-After" = u32, description = "Seconds to wait.")))
    ))]
pub(crate) async fn get_token(
    State(shared): St,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<OwnerQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let owner = owner_of(
        &principal,
        &shared.default_owner,
        query.owner.as_deref(),
        None,
    )?;
    let record = shared.manager.get(&owner, id).await?;
    Ok((
        [etag(&record)],
        Json(TokenView::new(&record, shared.manager.now())),
    )
        .into_response())
}

/// Changes a token. Send `If-Match` with the `ETag` you read to refuse a concurrent change.
#[utoipa::path(patch, path = "/tokens/{id}", params(("id" = String, Path, description = "The token's id.", pattern = "^[0-9a-f]{32}$"), ChangeQuery,
        ("If-Match" = Option<String>, Header, description = "Change only if the token is at this `ETag` (or `*`: at any version).")),
    request_body = ModifyBody, tag = "tokens",
    responses(
        (status = 200, body = TokenView, description = "The changed token.", headers(("ETag" = String, description = "The new version."))),
        (status = 400, body = ErrorBody, description = "Invalid input, or a malformed `If-Match`."),
        (status = 401, body = ErrorBody, description = "No valid credentials."),
        (status = 403, body = ErrorBody, description = "The token lacks the admin scope, or another owner was named."),
        (status = 404, body = ErrorBody, description = "The owner has no token with this id."),
        (status = 409, body = ErrorBody, description = "The new name is taken, or the change would lock every administrator out (`lockout`; see `force`)."),
        (status = 412, body = ErrorBody, description = "The token is not at the version `If-Match` names."),
        (status = 413, body = ErrorBody, description = "The body is over the size limit."),
        (status = 415, body = ErrorBody, description = "The body is not sent as `application/json`."),
        (status = 503, body = ErrorBody, description = "The token store is unavailable.", headers(("Retry-After" = u32, description = "Seconds to wait.")))
    ))]
pub(crate) async fn modify_token(
    State(shared): St,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ChangeQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ModifyBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let owner = owner_of(
        &principal,
        &shared.default_owner,
        query.owner.as_deref(),
        None,
    )?;
    let if_match = IfMatch::read(&headers)?;
    let mut update = TokenUpdate::default().force(query.force.unwrap_or(false));
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
    if let Some(version) = expected_version(&shared.manager, &owner, id, if_match).await? {
        update = update.expected_version(version);
    }
    let record = shared.manager.modify(&owner, id, update).await?;
    Ok((
        [etag(&record)],
        Json(TokenView::new(&record, shared.manager.now())),
    )
        .into_response())
}

/// Replaces a token's secret. The response carries the new one, this once.
#[utoipa::path(post, path = "/tokens/{id}/regenerate", params(("id" = String, Path, description = "The token's id.", pattern = "^[0-9a-f]{32}$"), IssueQuery,
        ("If-Match" = Option<String>, Header, description = "Regenerate only if the token is at this `ETag` (or `*`).")),
    request_body(content = Option<RegenerateBody>, description = "Optional: omit it, send `null` or `{}` for no grace period."), tag = "tokens",
    responses(
        (status = 200, description = "The token with its new secret, shown this once; `grace_until` says until when the old one works. With `download=true`, the token file as an attachment.",
            content((IssuedView = "application/json")),
            headers(
                ("Location" = String, description = "The token's URL."),
                ("ETag" = String, description = "The new version."),
                ("Cache-Control" = String, description = "`no-store`: the body holds a secret."),
                ("Content-Disposition" = String, description = "With `download=true`: the token file's name.")
            )),
        (status = 400, body = ErrorBody, description = "Invalid input: grace period, JSON, `If-Match`."),
        (status = 401, body = ErrorBody, description = "No valid credentials."),
        (status = 403, body = ErrorBody, description = "The token lacks the admin scope, or another owner was named."),
        (status = 404, body = ErrorBody, description = "The owner has no token with this id."),
        (status = 412, body = ErrorBody, description = "The token is not at the version `If-Match` names."),
        (status = 413, body = ErrorBody, description = "The body is over the size limit."),
        (status = 415, body = ErrorBody, description = "A body not sent as `application/json`."),
        (status = 503, body = ErrorBody, description = "The token store is unavailable.", headers(("Retry-After" = u32, description = "Seconds to wait.")))
    ))]
pub(crate) async fn regenerate_token(
    State(shared): St,
    Extension(principal): Extension<Principal>,
    base: Option<Extension<NestedPath>>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<IssueQuery>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<RegenerateBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let owner = owner_of(
        &principal,
        &shared.default_owner,
        query.owner.as_deref(),
        None,
    )?;
    let if_match = IfMatch::read(&headers)?;
    let body = body.unwrap_or_default();
    let mut options = Regenerate::default();
    if let Some(seconds) = body.grace_seconds {
        let seconds = i64::try_from(seconds)
            .map_err(|_| Error::InvalidGracePeriod("it is longer than 30 days"))?;
        options = options.grace(SignedDuration::from_secs(seconds));
    }
    if let Some(version) = expected_version(&shared.manager, &owner, id, if_match).await? {
        options = options.expected_version(version);
    }
    let issued = shared.manager.regenerate(&owner, id, options).await?;
    let location = location(base.as_deref(), &shared, &principal, &issued.record);
    Ok(issued_response(
        StatusCode::OK,
        &issued,
        query.download.unwrap_or(false),
        &location,
        shared.manager.now(),
    ))
}

/// Deletes a token for good; it fails verification from this response on.
#[utoipa::path(delete, path = "/tokens/{id}", params(("id" = String, Path, description = "The token's id.", pattern = "^[0-9a-f]{32}$"), ChangeQuery,
        ("If-Match" = Option<String>, Header, description = "Delete only if the token is at this `ETag` (or `*`).")),
    tag = "tokens",
    responses(
        (status = 204, description = "Deleted: API calls with the token fail from now on."),
        (status = 400, body = ErrorBody, description = "An invalid id, owner or `If-Match`."),
        (status = 401, body = ErrorBody, description = "No valid credentials."),
        (status = 403, body = ErrorBody, description = "The token lacks the admin scope, or another owner was named."),
        (status = 404, body = ErrorBody, description = "The owner has no token with this id."),
        (status = 409, body = ErrorBody, description = "It is the last enabled token with the admin scope (`lockout`; see `force`)."),
        (status = 412, body = ErrorBody, description = "The token is not at the version `If-Match` names."),
        (status = 503, body = ErrorBody, description = "The token store is unavailable.", headers(("Retry-After" = u32, description = "Seconds to wait.")))
    ))]
pub(crate) async fn delete_token(
    State(shared): St,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ChangeQuery>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let owner = owner_of(
        &principal,
        &shared.default_owner,
        query.owner.as_deref(),
        None,
    )?;
    let if_match = IfMatch::read(&headers)?;
    let mut options = DeleteOptions::default().force(query.force.unwrap_or(false));
    if let Some(version) = expected_version(&shared.manager, &owner, id, if_match).await? {
        options = options.expected_version(version);
    }
    shared.manager.delete_with(&owner, id, options).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The token file as an attachment. It holds no secret unless the server runs in
/// recoverable mode; regenerate with `download=true` for a file with a fresh secret.
#[utoipa::path(get, path = "/tokens/{id}/download", params(("id" = String, Path, description = "The token's id.", pattern = "^[0-9a-f]{32}$"), OwnerQuery), tag = "tokens",
    responses(
        (status = 200, body = TokenFileView, description = "A `tollgate-token-file` document.",
            headers(
                ("Content-Disposition" = String, description = "`attachment` with the file's name."),
                ("Cache-Control" = String, description = "`no-store` when the file holds the secret.")
            )),
        (status = 400, body = ErrorBody, description = "An invalid id or owner."),
        (status = 401, body = ErrorBody, description = "No valid credentials."),
        (status = 403, body = ErrorBody, description = "The token lacks the admin scope, or another owner was named."),
        (status = 404, body = ErrorBody, description = "The owner has no token with this id."),
        (status = 503, body = ErrorBody, description = "The token store is unavailable.", headers(("Retry-After" = u32, description = "Seconds to wait.")))
    ))]
pub(crate) async fn download_token(
    State(shared): St,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<OwnerQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let owner = owner_of(
        &principal,
        &shared.default_owner,
        query.owner.as_deref(),
        None,
    )?;
    let record = shared.manager.get(&owner, id).await?;
    let file = shared.manager.download(&owner, id).await?;
    let mut response = attachment(&record, file.to_json());
    if file.secret_included() {
        no_store(&mut response);
    }
    Ok(response)
}

/// The file name a token's file is offered under: its name made safe for any file
/// system, `.token.json`.
pub fn token_file_name(record: &TokenRecord) -> String {
    let stem: String = record
        .name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let stem = stem.trim_matches('-');
    let mut squeezed = String::with_capacity(stem.len());
    for c in stem.chars() {
        if !(c == '-' && squeezed.ends_with('-')) {
            squeezed.push(c);
        }
    }
    if squeezed.is_empty() {
        squeezed = record.id.to_string();
    }
    format!("{squeezed}.token.json")
}

/// A token file response: JSON, `Content-Disposition: attachment` with an ASCII `filename`
/// and the UTF-8 name in `filename*` (RFC 6266).
fn attachment(record: &TokenRecord, json: String) -> Response {
    let name = token_file_name(record);
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
