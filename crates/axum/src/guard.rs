//! The guard: reads credentials, verifies them, checks scopes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, header};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tollgate::{TokenId, TokenManager, TokenRecord, Verification};

use crate::layer::RequireTokenLayer;
use crate::rejection::{RejectionReason, TokenRejection};

/// The longest credential read from a request; longer ones are rejected unread.
const MAX_CREDENTIAL_LEN: usize = 512;

/// Guards routes with Tollgate tokens. Cheap to clone.
///
/// Hand it to the router either as a layer that guards everything below it
/// ([`layer`](Self::layer), [`require`](Self::require)) or as an `Extension` so that handlers
/// can use the [`VerifiedToken`] extractor on chosen routes.
#[derive(Clone)]
pub struct Tollgate {
    inner: Arc<Inner>,
}

struct Inner {
    manager: Arc<TokenManager>,
    realm: Arc<str>,
    api_key_header: Option<HeaderName>,
}

impl fmt::Debug for Tollgate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tollgate")
            .field("manager", &self.inner.manager)
            .field("realm", &self.inner.realm)
            .field("api_key_header", &self.inner.api_key_header)
            .finish()
    }
}

impl Tollgate {
    /// A guard verifying with `manager`, realm `api`, reading `Authorization: Bearer`.
    pub fn new(manager: Arc<TokenManager>) -> Self {
        Self {
            inner: Arc::new(Inner {
                manager,
                realm: "api".into(),
                api_key_header: None,
            }),
        }
    }

    /// Sets the realm named in `WWW-Authenticate` challenges.
    ///
    /// # Panics
    ///
    /// When `realm` has characters other than visible ASCII and spaces, or a `"` or `\`:
    /// they cannot appear in the header.
    pub fn with_realm(mut self, realm: &str) -> Self {
        assert!(
            realm
                .bytes()
                .all(|b| (b == b' ' || b.is_ascii_graphic()) && b != b'"' && b != b'\\'),
            "a realm must be visible ASCII without '\"' or '\\', got {realm:?}"
        );
        self.edit().realm = realm.into();
        self
    }

    /// Also accepts the token in this header (e.g. `X-API-Key`), as the whole header value.
    /// A request may carry credentials in one place only: both headers at once is an invalid
    /// request.
    ///
    /// ```
    /// # let manager = std::sync::Arc::new(tollgate::TokenManager::new(tollgate::MemoryStore::new()));
    /// let tollgate = tollgate_axum::Tollgate::new(manager)
    ///     .with_api_key_header(http::HeaderName::from_static("x-api-key"));
    /// # let _ = tollgate;
    /// ```
    pub fn with_api_key_header(mut self, header: HeaderName) -> Self {
        self.edit().api_key_header = Some(header);
        self
    }

    fn edit(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner).expect("configure a Tollgate before cloning it")
    }

    /// The token manager.
    pub fn manager(&self) -> &Arc<TokenManager> {
        &self.inner.manager
    }

    /// A layer that verifies every request and puts the [`VerifiedToken`] in its extensions;
    /// requests without a valid token never reach the service.
    pub fn layer(&self) -> RequireTokenLayer {
        RequireTokenLayer::new(self.clone(), Vec::new())
    }

    /// Like [`layer`](Self::layer), and the token must carry every scope in `scopes`
    /// (otherwise 403). Under an outer layer that already verified the token, only the scopes
    /// are checked.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// # let manager = std::sync::Arc::new(tollgate::TokenManager::new(tollgate::MemoryStore::new()));
    /// let tollgate = tollgate_axum::Tollgate::new(manager);
    /// let app: Router = Router::new()
    ///     .route("/reports", get(|| async { "reports" }))
    ///     .route("/admin", get(|| async { "admin" }).route_layer(tollgate.require(["admin"])))
    ///     .layer(tollgate.layer());
    /// ```
    pub fn require<I, S>(&self, scopes: I) -> RequireTokenLayer
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RequireTokenLayer::new(self.clone(), scopes.into_iter().map(Into::into).collect())
    }

    /// Reads and verifies the credentials in `headers`.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<VerifiedToken, TokenRejection> {
        let reject = |reason| TokenRejection::new(reason, self.inner.realm.clone());
        let presented = match credentials(headers, self.inner.api_key_header.as_ref()) {
            Ok(Some(token)) => token,
            Ok(None) => {
                tracing::trace!("rejected: no credentials");
                return Err(reject(RejectionReason::Missing));
            }
            Err(reason) => {
                tracing::trace!(?reason, "rejected: unreadable credentials");
                return Err(reject(reason));
            }
        };
        match self.inner.manager.verify(presented).await {
            Ok(Verification::Valid(record)) => Ok(VerifiedToken(record)),
            Ok(outcome) => {
                tracing::trace!(
                    reason = outcome.failure_reason().unwrap_or_default(),
                    "rejected: invalid token"
                );
                Err(reject(RejectionReason::InvalidToken))
            }
            Err(err) => {
                tracing::warn!(error = %err, "token store failed; request denied");
                Err(reject(RejectionReason::Unavailable))
            }
        }
    }

    /// Checks that `token` has every scope in `required`.
    pub fn check_scopes(
        &self,
        token: &VerifiedToken,
        required: &[String],
    ) -> Result<(), TokenRejection> {
        if required.iter().all(|scope| token.has_scope(scope)) {
            return Ok(());
        }
        tracing::trace!(token = %token.id(), "rejected: insufficient scope");
        Err(TokenRejection::insufficient_scope(
            self.inner.realm.clone(),
            required.join(" "),
        ))
    }

    /// Writes `last_used_at` of the tokens seen since the last flush, in one batch. Requests
    /// never write to the store themselves.
    pub async fn flush_last_used(&self) -> Result<(), tollgate::Error> {
        self.inner.manager.flush_last_used().await
    }

    /// Flushes `last_used_at` every `period` on a background task until
    /// [`LastUsedFlusher::shutdown`] flushes one last time and stops it. The same task prunes
    /// the audit log to the manager's retention, at most once an hour
    /// ([`TokenManager::maintain`](tollgate::TokenManager::maintain)).
    pub fn spawn_last_used_flusher(&self, period: Duration) -> LastUsedFlusher {
        let stop = Arc::new(Notify::new());
        let task = {
            let tollgate = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = ticks.tick() => {
                            if let Err(err) = tollgate.inner.manager.maintain().await {
                                tracing::warn!(error = %err, "could not record token use or prune the audit log; will retry");
                            }
                        }
                        () = stop.notified() => break,
                    }
                }
            })
        };
        LastUsedFlusher {
            tollgate: self.clone(),
            stop,
            task,
        }
    }
}

/// The background task of [`Tollgate::spawn_last_used_flusher`].
#[derive(Debug)]
pub struct LastUsedFlusher {
    tollgate: Tollgate,
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

impl LastUsedFlusher {
    /// Stops the task and flushes what is left: call it on shutdown.
    pub async fn shutdown(self) -> Result<(), tollgate::Error> {
        self.stop.notify_one();
        let _ = self.task.await;
        self.tollgate.flush_last_used().await
    }
}

/// Finds the presented token: `Authorization: Bearer <token>` (RFC 6750 §2.1) or the
/// configured API-key header. `Ok(None)` when there are no credentials.
fn credentials<'h>(
    headers: &'h HeaderMap,
    api_key_header: Option<&HeaderName>,
) -> Result<Option<&'h str>, RejectionReason> {
    let single = |name: &HeaderName| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(value), None) => Ok(Some(value)),
            (Some(_), Some(_)) => Err(RejectionReason::InvalidRequest),
        }
    };
    let authorization = single(&header::AUTHORIZATION)?;
    let api_key = match api_key_header {
        Some(name) => single(name)?,
        None => None,
    };
    let (value, bearer) = match (authorization, api_key) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => return Err(RejectionReason::InvalidRequest),
        (Some(value), None) => (value, true),
        (None, Some(value)) => (value, false),
    };
    let bytes = value.as_bytes();
    if bytes.len() > MAX_CREDENTIAL_LEN + 16
        || !bytes.iter().all(|&b| b == b' ' || b.is_ascii_graphic())
    {
        return Err(RejectionReason::InvalidRequest);
    }
    // Visible ASCII, so valid UTF-8.
    let text = std::str::from_utf8(bytes).map_err(|_| RejectionReason::InvalidRequest)?;
    let token = if bearer {
        let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            // Another scheme (`Basic …`) carries no Bearer credentials: RFC 6750 §3.1 answers
            // as for a request without any, 401 without an error code.
            return Ok(None);
        }
        rest.trim_start_matches(' ')
    } else {
        text.trim_matches(' ')
    };
    // RFC 6750 b64token: one word of token68 characters.
    let is_b64token = !token.is_empty()
        && token.len() <= MAX_CREDENTIAL_LEN
        && token.trim_end_matches('=').bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    if !is_b64token {
        return Err(RejectionReason::InvalidRequest);
    }
    Ok(Some(token))
}

/// A verified caller's token, handed to handlers by the extractor and put in request
/// extensions by [`RequireToken`](crate::RequireToken). Holds the record, never the secret.
#[derive(Debug, Clone)]
pub struct VerifiedToken(Arc<TokenRecord>);

impl VerifiedToken {
    /// The token's id.
    pub fn id(&self) -> TokenId {
        self.0.id
    }

    /// The account or tenant the token belongs to.
    pub fn owner(&self) -> &str {
        &self.0.owner
    }

    /// The token's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The token's scopes, sorted.
    pub fn scopes(&self) -> &[String] {
        &self.0.scopes
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.has_scope(scope)
    }

    /// The whole record as verified.
    pub fn record(&self) -> &TokenRecord {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn reads_bearer_tokens() {
        let api_key = HeaderName::from_static("x-api-key");
        let read = |pairs: &[(&str, &[u8])]| {
            credentials(&headers(pairs), Some(&api_key)).map(|t| t.map(str::to_owned))
        };
        assert_eq!(read(&[]), Ok(None));
        assert_eq!(
            read(&[("authorization", b"Bearer tg_abc")]),
            Ok(Some("tg_abc".into()))
        );
        assert_eq!(
            read(&[("authorization", b"bearer  tg_abc")]),
            Ok(Some("tg_abc".into()))
        );
        assert_eq!(read(&[("x-api-key", b"tg_abc")]), Ok(Some("tg_abc".into())));
        let invalid = Err(RejectionReason::InvalidRequest);
        // Another scheme is no Bearer credential at all (RFC 6750 §3.1).
        assert_eq!(read(&[("authorization", b"Basic dXNlcjpwYXNz")]), Ok(None));
        assert_eq!(read(&[("authorization", b"Negotiate")]), Ok(None));
        assert_eq!(read(&[("authorization", b"Bearer")]), invalid);
        assert_eq!(read(&[("authorization", b"Bearer ")]), invalid);
        assert_eq!(read(&[("authorization", b"Bearer a b")]), invalid);
        assert_eq!(read(&[("authorization", b"Bearer t\xc3\xa9")]), invalid);
        assert_eq!(read(&[("authorization", b"Bearer a\tb")]), invalid);
        assert_eq!(
            read(&[
                ("authorization", b"Bearer a"),
                ("authorization", b"Bearer b")
            ]),
            invalid
        );
        assert_eq!(
            read(&[("authorization", b"Bearer a"), ("x-api-key", b"b")]),
            invalid
        );
        let long = format!("Bearer {}", "a".repeat(600));
        assert_eq!(read(&[("authorization", long.as_bytes())]), invalid);
    }
}
