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
use super::audit::Acting;
use super::error::ApiError;
use super::input::{
    ApiJson, ApiQuery, IfMatch, OptionalJson, present_timestamp, timestamp, whole_number,
};
use super::openapi::{Description, Label, Scope};
use super::views::{ErrorBody, IssuedOrTokenFile, IssuedView, PageView, TokenFileView, TokenView};

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) manager: Arc<TokenManager>,
    pub(crate) default_owner: String,
}

type St = State<Arc<Shared>>;

/// A token id exactly as the document's pattern says: 32 lower-case hexadecimal characters.
pub(crate) fn parse_id(id: &str) -> Result<TokenId, ApiError> {
    let canonical = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !canonical {
        return Err(Error::InvalidId.into());
    }
    id.parse().map_err(ApiError::from)
}

/// Text as sent, held to the document's `maxLength` before the core trims it: the core counts
/// characters after trimming, a limit JSON Schema cannot state.
pub(crate) fn at_most(
    code: &'static str,
    what: &str,
    text: &str,
    max: usize,
) -> Result<(), ApiError> {
    let len = text.chars().count();
    if len > max {
        return Err(ApiError::bad_request(
            code,
            format!("invalid {what}: it has {len} characters; at most {max} are allowed"),
        ));
    }
    Ok(())
}

/// An owner named by the request, held to the document's `maxLength`.
pub(crate) fn named(owner: Option<&str>) -> Result<Option<&str>, ApiError> {
    if let Some(owner) = owner {
        at_most("invalid_owner", "owner", owner, tollgate::MAX_NAME_CHARS)?;
    }
    Ok(owner)
}

/// Scopes as sent: at most [`tollgate::MAX_SCOPES`] listed, duplicates included, as the
/// document's `maxItems` says (the core counts them after removing duplicates).
fn scopes(scopes: Vec<String>) -> Result<Vec<String>, ApiError> {
    if scopes.len() > tollgate::MAX_SCOPES {
        return Err(ApiError::bad_request(
            "invalid_scope",
            format!(
                "at most {} scopes may be listed; {} were",
                tollgate::MAX_SCOPES,
                scopes.len()
            ),
        ));
    }
    Ok(scopes)
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
            match versions.first() {
                _ if versions.contains(&current) => Ok(Some(current)),
                Some(&expected) => Err(Error::VersionConflict {
                    id,
                    expected,
                    actual: current,
                }
                .into()),
                None => Err(ApiError::new(
                    StatusCode::PRECONDITION_FAILED,
                    "version_conflict",
                    format!(
                        "token {id} is at version {current}, which If-Match does not name (weak tags never match): read it again and retry"
                    ),
                )),
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
    #[param(value_type = Option<Label>, example = "default")]
    owner: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ChangeQuery {
    /// Whose tokens; the router's default owner when omitted.
    #[param(value_type = Option<Label>, example = "default")]
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
    /// abbreviations); results are ranked by relevance. At most 200 characters, no control
    /// characters.
    #[param(
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$",
        example = "deply"
    )]
    q: Option<String>,
    /// Page size, 50 when omitted.
    #[param(minimum = 1, maximum = 1000, example = 20)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page, with the same `q`. Opaque: any other string
    /// is refused (`invalid_cursor`).
    #[param(max_length = 512)]
    cursor: Option<String>,
    /// Whose tokens; the router's default owner when omitted.
    #[param(value_type = Option<Label>, example = "default")]
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
    #[param(value_type = Option<Label>, example = "default")]
    owner: Option<String>,
    /// Answer with the token file (secret included) as an attachment instead of the token.
    download: Option<bool>,
}

/// A new token.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "CI deploy", "description": "Pushes releases",
    "scopes": ["deploy"], "expires_at": "2027-12-31T00:00:00Z"}))]
pub(crate) struct ApplyBody {
    /// Unique for the owner, compared case-insensitively (after Unicode NFKC
    /// normalization).
    #[schema(value_type = Label)]
    name: String,
    /// Newlines and tabs allowed; empty when omitted.
    #[schema(value_type = Option<Description>)]
    description: Option<String>,
    /// When it stops working: RFC 3339, in the future, before the year 9999. `null` or
    /// absent for never.
    #[serde(default, deserialize_with = "timestamp")]
    #[schema(value_type = Option<String>, format = DateTime,
        pattern = "^(?:[0-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-")]
    expires_at: Option<Timestamp>,
    /// What the token may do: at most 64; duplicates are dropped.
    #[schema(max_items = 64, value_type = Option<Vec<Scope>>)]
    scopes: Option<Vec<String>>,
    /// Whose token (instead of the `owner` query parameter; if both are given, they must
    /// be the same).
    #[schema(value_type = Option<Label>)]
    owner: Option<String>,
}

/// Changes to a token; absent (or `null`) fields stay as they are, except `expires_at`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "the demo client", "enabled": false}))]
pub(crate) struct ModifyBody {
    /// A new name, unique for the owner.
    #[schema(value_type = Option<Label>)]
    name: Option<String>,
    /// A new description.
    #[schema(value_type = Option<Description>)]
    description: Option<String>,
    /// A new expiry (RFC 3339, in the future, before the year 9999), or `null` to remove it.
    #[serde(default, deserialize_with = "present_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime,
        pattern = "^(?:[0-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-")]
    expires_at: Option<Option<Timestamp>>,
    /// Replaces every scope: at most 64; duplicates are dropped.
    #[schema(max_items = 64, value_type = Option<Vec<Scope>>)]
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
    #[serde(default, deserialize_with = "whole_number")]
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
        (status = 200, body = PageView, description = "One page of tokens. For the next one, send `next_cursor` as `cursor` with the same `q`, `owner` and filters."),
        (status = 400, body = ErrorBody, description = "An invalid parameter: `owner`, `q` (over 200 characters or with control characters), `limit` (1–1000), `cursor` (not one this server issued for this `q`), or an unknown one."),
        (status = 401, body = ErrorBody, description = "No credentials, another scheme than `Bearer`, or a token that is malformed, unknown, expired, disabled or deleted (`invalid_token`).", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"…\"`, with `error=\"invalid_token\"` for a token that does not verify."))),
        (status = 403, body = ErrorBody, description = "The token lacks the admin scope (`insufficient_scope`), or a self-service user named another owner (`forbidden_owner`)."),
        (status = 503, body = ErrorBody, description = "The token store is unavailable; the message names the cause.", headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    ))]
pub(crate) async fn list_tokens(
    State(shared): St,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let owner = owner_of(
        &principal,
        &shared.default_owner,
        named(query.owner.as_deref())?,
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
        (status = 201, body = IssuedOrTokenFile, content_type = "application/json",
            description = "Issued: the token with `token`, its secret, shown this once. With `download=true`, the token file (secret included) as an attachment instead.",
            headers(
                ("Location" = String, description = "The token's URL (with `owner` when it is not the default owner)."),
                ("ETag" = String, description = "The token's version, for `If-Match`."),
                ("Cache-Control" = String, description = "`no-store`: the body holds a secret."),
                ("Content-Disposition" = String, description = "With `download=true`: `attachment` with the file's name.")
            ),
            links(("get" = (operation_id = "get_token", description = "The token.", parameters(("id" = "$response.body#/id"), ("owner" = "$response.body#/owner")))), ("modify" = (operation_id = "modify_token", description = "Change the token.", parameters(("id" = "$response.body#/id"), ("owner" = "$response.body#/owner")))), ("regenerate" = (operation_id = "regenerate_token", description = "Replace its secret.", parameters(("id" = "$response.body#/id"), ("owner" = "$response.body#/owner")))), ("download" = (operation_id = "download_token", description = "Its token file.", parameters(("id" = "$response.body#/id"), ("owner" = "$response.body#/owner")))), ("delete" = (operation_id = "delete_token", description = "Delete it.", parameters(("id" = "$response.body#/id"), ("owner" = "$response.body#/owner")))))),
        (status = 400, body = ErrorBody, description = "Invalid input (`invalid_name`, `invalid_description`, `invalid_scope`, `invalid_expiry` for an expiry not in the future, `invalid_owner`, `invalid_json`), or owners that differ between the query and the body (`conflicting_owner`)."),
        (status = 401, body = ErrorBody, description = "No credentials, another scheme than `Bearer`, or a token that is malformed, unknown, expired, disabled or deleted (`invalid_token`).", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"…\"`, with `error=\"invalid_token\"` for a token that does not verify."))),
        (status = 403, body = ErrorBody, description = "The token lacks the admin scope (`insufficient_scope`), or a self-service user named another owner (`forbidden_owner`)."),
        (status = 409, body = ErrorBody, description = "The owner already has a token with this name (`name_taken`)."),
        (status = 413, body = ErrorBody, description = "The body is over the size limit (16 KiB unless the application set another)."),
        (status = 415, body = ErrorBody, description = "The body is not sent as `application/json`."),
        (status = 503, body = ErrorBody, description = "The token store is unavailable; the message names the cause.", headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    ))]
pub(crate) async fn apply_token(
    State(shared): St,
    Extension(principal): Extension<Principal>,
    Acting(ctx): Acting,
    base: Option<Extension<NestedPath>>,
    ApiQuery(query): ApiQuery<IssueQuery>,
    ApiJson(body): ApiJson<ApplyBody>,
) -> Result<Response, ApiError> {
    let owner = owner_of(
        &principal,
        &shared.default_owner,
        named(query.owner.as_deref())?,
        named(body.owner.as_deref())?,
    )?;
    at_most(
        "invalid_name",
        "token name",
        &body.name,
        tollgate::MAX_NAME_CHARS,
    )?;
    if let Some(description) = &body.description {
        at_most(
            "invalid_description",
            "description",
            description,
            tollgate::MAX_DESCRIPTION_CHARS,
        )?;
    }
    let mut new = NewToken::new(body.name)
        .description(body.description.unwrap_or_default())
        .scopes(scopes(body.scopes.unwrap_or_default())?);
    if let Some(at) = body.expires_at {
        new = new.expires_at(at);
    }
    let issued = shared.manager.acting(&ctx).apply(&owner, new).await?;
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
#[utoipa::path(get, path = "/tokens/{id}", params(("id" = String, Path, description = "The token's id: 32 lower-case hexadecimal characters.", pattern = "^[0-9a-f]{32}$", example = "5c0d8a7e4b1f4e0f9a3c2b1d0e9f8a7b"), OwnerQuery), tag = "tokens",
    responses(
        (status = 200, body = TokenView, description = "The token.", headers(("ETag" = String, description = "The token's version, for `If-Match`."))),
        (status = 400, body = ErrorBody, description = "An invalid id or owner."),
        (status = 401, body = ErrorBody, description = "No credentials, another scheme than `Bearer`, or a token that is malformed, unknown, expired, disabled or deleted (`invalid_token`).", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"…\"`, with `error=\"invalid_token\"` for a token that does not verify."))),
        (status = 403, body = ErrorBody, description = "The token lacks the admin scope (`insufficient_scope`), or a self-service user named another owner (`forbidden_owner`)."),
        (status = 404, body = ErrorBody, description = "The owner has no token with this id."),
        (status = 503, body = ErrorBody, description = "The token store is unavailable; the message names the cause.", headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
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
        named(query.owner.as_deref())?,
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
#[utoipa::path(patch, path = "/tokens/{id}", params(("id" = String, Path, description = "The token's id: 32 lower-case hexadecimal characters.", pattern = "^[0-9a-f]{32}$", example = "5c0d8a7e4b1f4e0f9a3c2b1d0e9f8a7b"), ChangeQuery, ("If-Match" = Option<String>, Header, nullable = false, description = "Change only if the token is at this `ETag` (strong comparison: weak tags never match), or `*`: at any version. A list of tags matches any of them.", pattern = r#"^[ \t]*(?:\*|(?:,[ \t]*)*(?:W/)?"[\x21\x23-\x7E]*"(?:[ \t]*,(?:[ \t]*(?:W/)?"[\x21\x23-\x7E]*")?)*)[ \t]*$"#, example = "\"3\"")),
    request_body = ModifyBody, tag = "tokens",
    responses(
        (status = 200, body = TokenView, description = "The changed token.", headers(("ETag" = String, description = "The new version.")),
            links(("get" = (operation_id = "get_token", description = "The token.", parameters(("id" = "$response.body#/id"), ("owner" = "$response.body#/owner")))))),
        (status = 400, body = ErrorBody, description = "Invalid input, or a malformed `If-Match`."),
        (status = 401, body = ErrorBody, description = "No credentials, another scheme than `Bearer`, or a token that is malformed, unknown, expired, disabled or deleted (`invalid_token`).", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"…\"`, with `error=\"invalid_token\"` for a token that does not verify."))),
        (status = 403, body = ErrorBody, description = "The token lacks the admin scope (`insufficient_scope`), or a self-service user named another owner (`forbidden_owner`)."),
        (status = 404, body = ErrorBody, description = "The owner has no token with this id."),
        (status = 409, body = ErrorBody, description = "The new name is taken (`name_taken`), or the change would leave no enabled token with the admin scope (`lockout`; see `force`)."),
        (status = 412, body = ErrorBody, description = "`If-Match` names no tag the token is at now (`version_conflict`): read it again and retry."),
        (status = 413, body = ErrorBody, description = "The body is over the size limit (16 KiB unless the application set another)."),
        (status = 415, body = ErrorBody, description = "The body is not sent as `application/json`."),
        (status = 503, body = ErrorBody, description = "The token store is unavailable; the message names the cause.", headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    ))]
pub(crate) async fn modify_token(
    State(shared): St,
    Extension(principal): Extension<Principal>,
    Acting(ctx): Acting,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ChangeQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ModifyBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let owner = owner_of(
        &principal,
        &shared.default_owner,
        named(query.owner.as_deref())?,
        None,
    )?;
    let if_match = IfMatch::read(&headers)?;
    let mut update = TokenUpdate::default().force(query.force.unwrap_or(false));
    if let Some(name) = body.name {
        at_most(
            "invalid_name",
            "token name",
            &name,
            tollgate::MAX_NAME_CHARS,
        )?;
        update = update.name(name);
    }
    if let Some(description) = body.description {
        at_most(
            "invalid_description",
            "description",
            &description,
            tollgate::MAX_DESCRIPTION_CHARS,
        )?;
        update = update.description(description);
    }
    if let Some(expires_at) = body.expires_at {
        update = update.expires_at(expires_at);
    }
    if let Some(list) = body.scopes {
        update = update.scopes(scopes(list)?);
    }
    if let Some(enabled) = body.enabled {
        update = update.enabled(enabled);
    }
    if let Some(version) = expected_version(&shared.manager, &owner, id, if_match).await? {
        update = update.expected_version(version);
    }
    let record = shared
        .manager
        .acting(&ctx)
        .modify(&owner, id, update)
        .await?;
    Ok((
        [etag(&record)],
        Json(TokenView::new(&record, shared.manager.now())),
    )
        .into_response())
}

/// Replaces a token's secret. The response carries the new one, this once.
#[utoipa::path(post, path = "/tokens/{id}/regenerate", params(("id" = String, Path, description = "The token's id: 32 lower-case hexadecimal characters.", pattern = "^[0-9a-f]{32}$", example = "5c0d8a7e4b1f4e0f9a3c2b1d0e9f8a7b"), IssueQuery, ("If-Match" = Option<String>, Header, nullable = false, description = "Regenerate only if the token is at this `ETag` (strong comparison: weak tags never match), or `*`: at any version. A list of tags matches any of them.", pattern = r#"^[ \t]*(?:\*|(?:,[ \t]*)*(?:W/)?"[\x21\x23-\x7E]*"(?:[ \t]*,(?:[ \t]*(?:W/)?"[\x21\x23-\x7E]*")?)*)[ \t]*$"#, example = "\"3\"")),
    request_body(content = Option<RegenerateBody>, description = "Optional: omit it, or send `null` or `{}`, for no grace period."), tag = "tokens",
    responses(
        (status = 200, body = IssuedOrTokenFile, content_type = "application/json",
            description = "The token with its new secret in `token`, shown this once; `grace_until` says until when the old one still works. With `download=true`, the token file (new secret included) as an attachment instead.",
            headers(
                ("Location" = String, description = "The token's URL (with `owner` when it is not the default owner)."),
                ("ETag" = String, description = "The new version."),
                ("Cache-Control" = String, description = "`no-store`: the body holds a secret."),
                ("Content-Disposition" = String, description = "With `download=true`: `attachment` with the file's name.")
            ),
            links(("get" = (operation_id = "get_token", description = "The token.", parameters(("id" = "$response.body#/id"), ("owner" = "$response.body#/owner")))), ("download" = (operation_id = "download_token", description = "Its token file.", parameters(("id" = "$response.body#/id"), ("owner" = "$response.body#/owner")))))),
        (status = 400, body = ErrorBody, description = "Invalid input: `grace_seconds`, the JSON, `If-Match`."),
        (status = 401, body = ErrorBody, description = "No credentials, another scheme than `Bearer`, or a token that is malformed, unknown, expired, disabled or deleted (`invalid_token`).", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"…\"`, with `error=\"invalid_token\"` for a token that does not verify."))),
        (status = 403, body = ErrorBody, description = "The token lacks the admin scope (`insufficient_scope`), or a self-service user named another owner (`forbidden_owner`)."),
        (status = 404, body = ErrorBody, description = "The owner has no token with this id."),
        (status = 412, body = ErrorBody, description = "`If-Match` names no tag the token is at now (`version_conflict`): read it again and retry."),
        (status = 413, body = ErrorBody, description = "The body is over the size limit (16 KiB unless the application set another)."),
        (status = 415, body = ErrorBody, description = "A body not sent as `application/json`."),
        (status = 503, body = ErrorBody, description = "The token store is unavailable; the message names the cause.", headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    ))]
#[allow(clippy::too_many_arguments)] // one extractor per part of the request
pub(crate) async fn regenerate_token(
    State(shared): St,
    Extension(principal): Extension<Principal>,
    Acting(ctx): Acting,
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
        named(query.owner.as_deref())?,
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
    let issued = shared
        .manager
        .acting(&ctx)
        .regenerate(&owner, id, options)
        .await?;
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
#[utoipa::path(delete, path = "/tokens/{id}", params(("id" = String, Path, description = "The token's id: 32 lower-case hexadecimal characters.", pattern = "^[0-9a-f]{32}$", example = "5c0d8a7e4b1f4e0f9a3c2b1d0e9f8a7b"), ChangeQuery, ("If-Match" = Option<String>, Header, nullable = false, description = "Delete only if the token is at this `ETag` (strong comparison: weak tags never match), or `*`: at any version. A list of tags matches any of them.", pattern = r#"^[ \t]*(?:\*|(?:,[ \t]*)*(?:W/)?"[\x21\x23-\x7E]*"(?:[ \t]*,(?:[ \t]*(?:W/)?"[\x21\x23-\x7E]*")?)*)[ \t]*$"#, example = "\"3\"")),
    tag = "tokens",
    responses(
        (status = 204, description = "Deleted: API calls with the token fail from now on."),
        (status = 400, body = ErrorBody, description = "An invalid id, owner or `If-Match`."),
        (status = 401, body = ErrorBody, description = "No credentials, another scheme than `Bearer`, or a token that is malformed, unknown, expired, disabled or deleted (`invalid_token`).", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"…\"`, with `error=\"invalid_token\"` for a token that does not verify."))),
        (status = 403, body = ErrorBody, description = "The token lacks the admin scope (`insufficient_scope`), or a self-service user named another owner (`forbidden_owner`)."),
        (status = 404, body = ErrorBody, description = "The owner has no token with this id."),
        (status = 409, body = ErrorBody, description = "It is the last enabled token with the admin scope (`lockout`; see `force`)."),
        (status = 412, body = ErrorBody, description = "`If-Match` names no tag the token is at now (`version_conflict`): read it again and retry."),
        (status = 503, body = ErrorBody, description = "The token store is unavailable; the message names the cause.", headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    ))]
pub(crate) async fn delete_token(
    State(shared): St,
    Extension(principal): Extension<Principal>,
    Acting(ctx): Acting,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ChangeQuery>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let owner = owner_of(
        &principal,
        &shared.default_owner,
        named(query.owner.as_deref())?,
        None,
    )?;
    let if_match = IfMatch::read(&headers)?;
    let mut options = DeleteOptions::default().force(query.force.unwrap_or(false));
    if let Some(version) = expected_version(&shared.manager, &owner, id, if_match).await? {
        options = options.expected_version(version);
    }
    shared
        .manager
        .acting(&ctx)
        .delete_with(&owner, id, options)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The token file as an attachment. It holds no secret unless the server runs in
/// recoverable mode; regenerate with `download=true` for a file with a fresh secret.
#[utoipa::path(get, path = "/tokens/{id}/download", params(("id" = String, Path, description = "The token's id: 32 lower-case hexadecimal characters.", pattern = "^[0-9a-f]{32}$", example = "5c0d8a7e4b1f4e0f9a3c2b1d0e9f8a7b"), OwnerQuery), tag = "tokens",
    responses(
        (status = 200, body = TokenFileView, description = "A `tollgate-token-file` document.",
            headers(
                ("Content-Disposition" = String, description = "`attachment` with the file's name, in ASCII (`filename`) and UTF-8 (`filename*`)."),
                ("Cache-Control" = String, description = "`no-store` when the file holds the secret.")
            )),
        (status = 400, body = ErrorBody, description = "An invalid id or owner."),
        (status = 401, body = ErrorBody, description = "No credentials, another scheme than `Bearer`, or a token that is malformed, unknown, expired, disabled or deleted (`invalid_token`).", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"…\"`, with `error=\"invalid_token\"` for a token that does not verify."))),
        (status = 403, body = ErrorBody, description = "The token lacks the admin scope (`insufficient_scope`), or a self-service user named another owner (`forbidden_owner`)."),
        (status = 404, body = ErrorBody, description = "The owner has no token with this id."),
        (status = 503, body = ErrorBody, description = "The token store is unavailable; the message names the cause.", headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
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
        named(query.owner.as_deref())?,
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
