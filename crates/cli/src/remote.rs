//! `--server URL`: the commands through the management API of a running `tollgate serve`.
//!
//! Answers come back as the same views a local store's are rendered from; errors come back
//! as the management API's error body, and the HTTP status maps back to the
//! [`ErrorKind`] it was derived from, so the exit code is the one a local store would give.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{CONTENT_DISPOSITION, ETAG, HeaderMap, IF_MATCH};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;
use tollgate::jiff::{SignedDuration, Timestamp};
use tollgate::{AuditFilter, ErrorKind, ListOptions, TokenFormat, TokenId};
use tollgate_axum::management::{AuditPageView, ErrorBody, IssuedView, PageView, TokenView};
use zeroize::Zeroizing;

use crate::Failure;
use crate::backend::{Change, Checked, Download, Fresh};

/// The environment variable holding the admin token.
pub(crate) const TOKEN_ENV: &str = "TOLLGATE_TOKEN";
/// Where `tollgate serve` mounts the management API.
const API: &str = "/api/v1";
/// The guarded route of `tollgate serve` that any valid token may call; `verify` asks it.
const WHOAMI: &str = "/demo/whoami";
/// The longest a request may take, store deadlines included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest token file `--token-file` reads.
const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// A running `tollgate serve` and the admin token to call it with.
pub(crate) struct Remote {
    client: reqwest::Client,
    /// The server's root, without a trailing `/`, e.g. `http://127.0.0.1:8080`.
    base: String,
    token: Zeroizing<String>,
    /// The server store's token format, as the admin token shows it.
    format: Option<TokenFormat>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("base", &self.base)
            .field("token", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

/// `url` as the root of a `tollgate serve`: plain HTTP, no query; `…/api/v1` is accepted
/// too.
fn server_root(url: &str) -> Result<String, Failure> {
    let parsed = Url::parse(url.trim()).map_err(|err| {
        Failure::usage(
            "invalid_server",
            format!("--server {url:?} is not a URL ({err}); write e.g. http://127.0.0.1:8080"),
        )
    })?;
    match parsed.scheme() {
        "http" => {}
        "https" => {
            return Err(Failure::usage(
                "invalid_server",
                format!(
                    "--server {url}: this build of tollgate speaks plain HTTP only, as `tollgate serve` does; reach a remote server through an SSH tunnel or a proxy on this machine (http://127.0.0.1:PORT)"
                ),
            ));
        }
        other => {
            return Err(Failure::usage(
                "invalid_server",
                format!(
                    "--server {url}: a {other}: URL is no HTTP server; write e.g. http://127.0.0.1:8080"
                ),
            ));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty)
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || !parsed.username().is_empty()
    {
        return Err(Failure::usage(
            "invalid_server",
            format!("--server {url}: give the server's root, e.g. http://127.0.0.1:8080"),
        ));
    }
    let text = parsed.as_str().trim_end_matches('/');
    Ok(text.strip_suffix(API).unwrap_or(text).to_owned())
}

/// The admin token: from `--token-file` (the token on a line, or a token file with its
/// secret), else from `TOLLGATE_TOKEN`.
fn admin_token(token_file: Option<&Path>) -> Result<Zeroizing<String>, Failure> {
    let token = match token_file {
        Some(path) => {
            let unreadable = |err: &dyn std::fmt::Display| {
                Failure::usage(
                    "invalid_token_file",
                    format!("cannot read the admin token from {}: {err}", path.display()),
                )
            };
            let mut text = Zeroizing::new(String::new());
            let file = std::fs::File::open(path).map_err(|e| unreadable(&e))?;
            std::io::Read::read_to_string(
                &mut std::io::Read::take(file, MAX_TOKEN_FILE),
                &mut text,
            )
            .map_err(|e| unreadable(&e))?;
            if text.trim_start().starts_with('{') {
                let file: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| unreadable(&e))?;
                match file.get("secret") {
                    Some(serde_json::Value::String(secret)) => Zeroizing::new(secret.clone()),
                    Some(serde_json::Value::Null) => {
                        return Err(Failure::usage(
                            "invalid_token_file",
                            format!(
                                "{} is a token file with no secret in it (only a hash is stored, so downloads leave it out); use the file written by `apply -o` or `modify --regenerate -o`",
                                path.display()
                            ),
                        ));
                    }
                    _ => return Err(unreadable(&"it is JSON, but not a token file")),
                }
            } else {
                Zeroizing::new(text.trim().to_owned())
            }
        }
        None => match std::env::var(TOKEN_ENV) {
            Ok(token) => Zeroizing::new(token.trim().to_owned()),
            Err(std::env::VarError::NotPresent) => {
                return Err(Failure::usage(
                    "missing_token",
                    format!(
                        "--server needs an admin token (a token with the scope tollgate:admin): put it in {TOKEN_ENV}, or pass --token-file PATH"
                    ),
                ));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(Failure::usage(
                    "invalid_token",
                    format!("{TOKEN_ENV} is not a token"),
                ));
            }
        },
    };
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Failure::usage(
            "invalid_token",
            "the admin token is not a token: it is empty or has characters no token has",
        ));
    }
    Ok(token)
}

/// The format a token was made with, judged by its prefix.
fn format_of(token: &str) -> Option<TokenFormat> {
    let (prefix, _) = token.split_once('_')?;
    let format = TokenFormat::new(prefix).ok()?;
    format.check(token).is_ok().then_some(format)
}

/// The `ETag: "<version>"` of an answer.
fn version(headers: &HeaderMap) -> u64 {
    headers
        .get(ETAG)
        .and_then(|value| value.to_str().ok())
        .and_then(|tag| tag.trim_matches('"').parse().ok())
        .unwrap_or(0)
}

/// The UTF-8 file name of `Content-Disposition` (RFC 6266: `filename*`, else `filename`).
fn offered_name(headers: &HeaderMap) -> String {
    let Some(value) = headers
        .get(CONTENT_DISPOSITION)
        .and_then(|value| value.to_str().ok())
    else {
        return String::new();
    };
    let mut plain = String::new();
    for part in value.split(';').map(str::trim) {
        if let Some(encoded) = part.strip_prefix("filename*=UTF-8''") {
            let bytes: Vec<u8> = form_percent_decode(encoded);
            if let Ok(name) = String::from_utf8(bytes) {
                return name;
            }
        } else if let Some(quoted) = part.strip_prefix("filename=") {
            quoted.trim_matches('"').clone_into(&mut plain);
        }
    }
    plain
}

/// Percent-decoding (`%E7%94%9F` → bytes); a `%` not followed by two hex digits stays.
fn form_percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// The kind of failure an HTTP status was derived from (see
/// [`ErrorKind::http_status`]); 401 and 403 are bad input: a token the server refused.
fn kind_of(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        412 => ErrorKind::PreconditionFailed,
        503 => ErrorKind::Unavailable,
        400..=499 => ErrorKind::InvalidInput,
        _ => ErrorKind::Internal,
    }
}

impl Remote {
    /// Checks the URL and reads the admin token; nothing is sent yet.
    pub(crate) fn connect(url: &str, token_file: Option<&Path>) -> Result<Self, Failure> {
        let base = server_root(url)?;
        let token = admin_token(token_file)?;
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("tollgate-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| {
                Failure::system(
                    "internal_error",
                    format!("cannot set up HTTP: {}", crate::sentence(&err)),
                )
            })?;
        let format = format_of(&token);
        Ok(Self {
            client,
            base,
            token,
            format,
        })
    }

    /// The prefix of the server store's tokens, as the admin token (issued by that store)
    /// shows it.
    pub(crate) fn prefix(&self) -> Option<&str> {
        self.format.as_ref().map(TokenFormat::prefix)
    }

    /// A request to the management API, with the admin token.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{API}{path}", self.base))
            .bearer_auth(self.token.as_str())
    }

    /// Sends `request`; an answer other than a success becomes the failure it reports.
    async fn send(&self, request: RequestBuilder) -> Result<Response, Failure> {
        let response = request.send().await.map_err(|err| self.unreachable(&err))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.refusal(response).await)
    }

    fn unreachable(&self, err: &reqwest::Error) -> Failure {
        let base = &self.base;
        let message = if err.is_timeout() {
            format!(
                "the server at {base} did not answer within {} s",
                REQUEST_TIMEOUT.as_secs()
            )
        } else {
            format!(
                "cannot reach the server at {base}: {}",
                crate::sentence(err)
            )
        };
        Failure::Said {
            kind: ErrorKind::Unavailable,
            code: "unavailable".into(),
            message,
        }
    }

    /// The failure a refused request reports: the server's error body, classified by its
    /// status.
    async fn refusal(&self, response: Response) -> Failure {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => (body.error.code, body.error.message),
            Err(_) => (
                match kind_of(status) {
                    ErrorKind::NotFound => "not_found",
                    ErrorKind::Unavailable => "unavailable",
                    ErrorKind::Internal => "internal_error",
                    _ => "invalid_request",
                }
                .to_owned(),
                format!("the server answered {status}"),
            ),
        };
        let base = &self.base;
        let message = match status {
            StatusCode::UNAUTHORIZED => {
                format!("the server at {base} did not accept the admin token: {message}")
            }
            StatusCode::FORBIDDEN => format!(
                "the server at {base} refused the admin token: {message} (manage tokens with a token that has the scope tollgate:admin)"
            ),
            StatusCode::INTERNAL_SERVER_ERROR => {
                format!("{message} (the server at {base} logs the details)")
            }
            _ => message,
        };
        Failure::Said {
            kind: kind_of(status),
            code: code.into(),
            message,
        }
    }

    async fn read<T: DeserializeOwned>(&self, response: Response) -> Result<T, Failure> {
        let text = Zeroizing::new(
            response
                .text()
                .await
                .map_err(|err| self.unreachable(&err))?,
        );
        serde_json::from_str(&text).map_err(|err| {
            Failure::system(
                "invalid_response",
                format!(
                    "the server at {} answered with something other than the management API's JSON: {err}",
                    self.base
                ),
            )
        })
    }

    pub(crate) async fn list(
        &self,
        owner: &str,
        options: &ListOptions,
    ) -> Result<PageView, Failure> {
        let mut query: Vec<(&str, String)> = vec![("owner", owner.to_owned())];
        if let Some(q) = &options.query {
            query.push(("q", q.clone()));
        }
        if let Some(limit) = options.limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(cursor) = &options.cursor {
            query.push(("cursor", cursor.clone()));
        }
        if let Some(enabled) = options.filter.enabled {
            query.push(("enabled", enabled.to_string()));
        }
        if let Some(expired) = options.filter.expired {
            query.push(("expired", expired.to_string()));
        }
        let response = self
            .send(self.request(Method::GET, "/tokens").query(&query))
            .await?;
        self.read(response).await
    }

    pub(crate) async fn get(&self, owner: &str, id: TokenId) -> Result<(TokenView, u64), Failure> {
        let response = self
            .send(
                self.request(Method::GET, &format!("/tokens/{id}"))
                    .query(&[("owner", owner)]),
            )
            .await?;
        let version = version(response.headers());
        Ok((self.read(response).await?, version))
    }

    pub(crate) async fn apply(
        &self,
        owner: &str,
        name: &str,
        description: Option<&str>,
        expires_at: Option<Timestamp>,
        scopes: &[String],
    ) -> Result<Fresh, Failure> {
        let mut body = serde_json::json!({ "name": name, "scopes": scopes });
        if let Some(description) = description {
            body["description"] = description.into();
        }
        if let Some(at) = expires_at {
            body["expires_at"] = at.to_string().into();
        }
        let response = self
            .send(
                self.request(Method::POST, "/tokens")
                    .query(&[("owner", owner)])
                    .json(&body),
            )
            .await?;
        Ok(Fresh(self.read::<IssuedView>(response).await?))
    }

    pub(crate) async fn download(&self, owner: &str, id: TokenId) -> Result<Download, Failure> {
        let response = self
            .send(
                self.request(Method::GET, &format!("/tokens/{id}/download"))
                    .query(&[("owner", owner)]),
            )
            .await?;
        let offered_name = offered_name(response.headers());
        let json = Zeroizing::new(
            response
                .text()
                .await
                .map_err(|err| self.unreachable(&err))?,
        );
        let file: serde_json::Value = serde_json::from_str(&json).map_err(|err| {
            Failure::system(
                "invalid_response",
                format!(
                    "the server at {} answered with no token file: {err}",
                    self.base
                ),
            )
        })?;
        let secret_included = file["secret_included"] == true;
        Ok(Download {
            json,
            secret_included,
            offered_name,
        })
    }

    /// Changes a token; returns it with its new version.
    pub(crate) async fn modify(
        &self,
        owner: &str,
        id: TokenId,
        change: &Change,
        expected_version: Option<u64>,
        force: bool,
    ) -> Result<(TokenView, u64), Failure> {
        let mut body = serde_json::Map::new();
        if let Some(name) = &change.name {
            body.insert("name".into(), name.clone().into());
        }
        if let Some(description) = &change.description {
            body.insert("description".into(), description.clone().into());
        }
        if let Some(expires_at) = change.expires_at {
            body.insert(
                "expires_at".into(),
                expires_at.map(|at| at.to_string()).into(),
            );
        }
        if let Some(scopes) = &change.scopes {
            body.insert("scopes".into(), scopes.clone().into());
        }
        if let Some(enabled) = change.enabled {
            body.insert("enabled".into(), enabled.into());
        }
        let mut query = vec![("owner", owner.to_owned())];
        if force {
            query.push(("force", "true".to_owned()));
        }
        let mut request = self
            .request(Method::PATCH, &format!("/tokens/{id}"))
            .query(&query)
            .json(&body);
        if let Some(version) = expected_version {
            request = request.header(IF_MATCH, format!("\"{version}\""));
        }
        let response = self.send(request).await?;
        let version = version(response.headers());
        Ok((self.read(response).await?, version))
    }

    pub(crate) async fn regenerate(
        &self,
        owner: &str,
        id: TokenId,
        grace: Option<SignedDuration>,
        expected_version: Option<u64>,
    ) -> Result<Fresh, Failure> {
        let mut request = self
            .request(Method::POST, &format!("/tokens/{id}/regenerate"))
            .query(&[("owner", owner)]);
        if let Some(grace) = grace {
            // Rounded up: a grace period is never shorter than asked for.
            let seconds = grace.as_secs() + i64::from(grace.subsec_nanos() > 0);
            request = request.json(&serde_json::json!({ "grace_seconds": seconds }));
        }
        if let Some(version) = expected_version {
            request = request.header(IF_MATCH, format!("\"{version}\""));
        }
        let response = self.send(request).await?;
        Ok(Fresh(self.read::<IssuedView>(response).await?))
    }

    pub(crate) async fn delete(
        &self,
        owner: &str,
        id: TokenId,
        force: bool,
    ) -> Result<(), Failure> {
        let mut query = vec![("owner", owner.to_owned())];
        if force {
            query.push(("force", "true".to_owned()));
        }
        self.send(
            self.request(Method::DELETE, &format!("/tokens/{id}"))
                .query(&query),
        )
        .await?;
        Ok(())
    }

    /// One page of the audit log: `GET /api/v1/audit` with the filter as its query.
    pub(crate) async fn audit(
        &self,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<AuditPageView, Failure> {
        let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if let Some(token) = filter.token {
            query.push(("token", token.to_string()));
        }
        if let Some(actor) = &filter.actor {
            query.push(("actor", actor.clone()));
        }
        if let Some(action) = filter.action {
            query.push(("action", action.as_str().to_owned()));
        }
        if let Some(since) = filter.since {
            query.push(("since", since.to_string()));
        }
        if let Some(until) = filter.until {
            query.push(("until", until.to_string()));
        }
        if let Some(owner) = &filter.owner {
            query.push(("owner", owner.clone()));
        }
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        let response = self
            .request(Method::GET, "/audit")
            .query(&query)
            .send()
            .await
            .map_err(|err| self.unreachable(&err))?;
        match response.status() {
            status if status.is_success() => self.read(response).await,
            // The route takes no id: a 404 means the server has no audit log.
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => Err(Failure::usage(
                "invalid_server",
                format!(
                    "the server at {} has no audit log (GET {API}/audit): it runs a tollgate from before the audit log",
                    self.base
                ),
            )),
            _ => Err(self.refusal(response).await),
        }
    }

    /// Verifies `presented` as a request with it would be: `GET /demo/whoami` of `tollgate
    /// serve` answers any valid token with its id and owner, and the management API then
    /// shows its record. The shape and checksum are checked here first, as a store would,
    /// so a mistyped token is told apart without asking the server; the server does not say
    /// why it refused a token, only that it did.
    pub(crate) async fn verify(&self, presented: &str) -> Result<Checked, Failure> {
        let format = self
            .format
            .clone()
            .or_else(|| {
                presented
                    .split_once('_')
                    .and_then(|(prefix, _)| TokenFormat::new(prefix).ok())
            })
            .unwrap_or_default();
        if let Err(reason) = format.check(presented) {
            return Ok(Checked::Invalid(format!("malformed token: {reason}")));
        }
        let request = self
            .client
            .get(format!("{}{WHOAMI}", self.base))
            .bearer_auth(presented);
        let response = request.send().await.map_err(|err| self.unreachable(&err))?;
        match response.status() {
            status if status.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST => {
                let text = response.text().await.unwrap_or_default();
                let said = serde_json::from_str::<ErrorBody>(&text)
                    .map_or_else(|_| "the token is invalid".to_owned(), |b| b.error.message);
                return Ok(Checked::Invalid(format!(
                    "the server rejected the token ({said}; it does not say which)"
                )));
            }
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
                return Err(Failure::usage(
                    "invalid_server",
                    format!(
                        "the server at {} has no {WHOAMI}: `verify` through --server needs `tollgate serve`",
                        self.base
                    ),
                ));
            }
            _ => return Err(self.refusal(response).await),
        }
        #[derive(serde::Deserialize)]
        struct WhoAmI {
            id: TokenId,
            owner: String,
        }
        let who: WhoAmI = self.read(response).await?;
        let (view, _) = self.get(&who.owner, who.id).await?;
        Ok(Checked::Valid(Box::new(view)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_roots() {
        assert_eq!(
            server_root("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            server_root("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            server_root("http://localhost:8080/api/v1/").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            server_root("http://host/tokens").unwrap(),
            "http://host/tokens"
        );
        for bad in [
            "https://host",
            "ftp://host",
            "127.0.0.1:8080",
            "http://host/?q=1",
            "http://user@host",
            "",
        ] {
            assert!(server_root(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn offered_names_are_decoded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_DISPOSITION,
            "attachment; filename=\"___.token.json\"; filename*=UTF-8''%E7%94%9F%E4%BA%A7.token.json"
                .parse()
                .unwrap(),
        );
        assert_eq!(offered_name(&headers), "生产.token.json");
        headers.insert(
            CONTENT_DISPOSITION,
            "attachment; filename=\"ci.token.json\"".parse().unwrap(),
        );
        assert_eq!(offered_name(&headers), "ci.token.json");
        assert_eq!(offered_name(&HeaderMap::new()), "");
    }

    #[test]
    fn statuses_map_back_to_kinds() {
        for kind in [
            ErrorKind::InvalidInput,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::PreconditionFailed,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ] {
            let status = StatusCode::from_u16(kind.http_status()).unwrap();
            assert_eq!(kind_of(status), kind);
        }
        for status in [401, 403, 413, 415] {
            assert_eq!(
                kind_of(StatusCode::from_u16(status).unwrap()).exit_code(),
                2
            );
        }
        assert_eq!(kind_of(StatusCode::BAD_GATEWAY).exit_code(), 3);
    }
}
