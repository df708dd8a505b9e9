//! The guard through `oneshot` and over a real loopback socket.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::routing::get;
use axum::{Extension, Router};
use http::{Request, StatusCode, header};
use tollgate::jiff::{SignedDuration, Timestamp};
use tollgate::testing::{ManualClock, manager_with_clock};
use tollgate::{
    AuditEntry, AuditRequest, Error, ListRequest, MemoryStore, NewToken, Regenerate, SecretHash,
    TokenId, TokenManager, TokenRecord, TokenStore, TokenUpdate,
};
use tollgate_axum::{Tollgate, VerifiedToken};
use tower::ServiceExt as _;

async fn whoami(token: VerifiedToken) -> String {
    format!(
        "{} {} {}",
        token.id(),
        token.name(),
        token.scopes().join(",")
    )
}

async fn maybe(token: Option<VerifiedToken>) -> String {
    token.map_or_else(|| "anonymous".to_owned(), |t| t.name().to_owned())
}

struct Fixture {
    manager: Arc<TokenManager>,
    clock: Arc<ManualClock>,
    tollgate: Tollgate,
}

impl Fixture {
    fn new() -> Self {
        let (manager, clock) = manager_with_clock(Arc::new(MemoryStore::new()));
        let manager = Arc::new(manager);
        let tollgate = Tollgate::new(manager.clone())
            .with_realm("test")
            .with_api_key_header(http::HeaderName::from_static("x-api-key"));
        Self {
            manager,
            clock,
            tollgate,
        }
    }

    /// Everything guarded by the layer; `/admin` also needs the `admin` scope.
    fn layered(&self) -> Router {
        Router::new()
            .route("/whoami", get(whoami))
            .route(
                "/admin",
                get(whoami).route_layer(self.tollgate.require(["admin"])),
            )
            .layer(self.tollgate.layer())
    }

    /// The extractor alone, with the guard as an extension.
    fn extension(&self) -> Router {
        Router::new()
            .route("/whoami", get(whoami))
            .route("/maybe", get(maybe))
            .layer(Extension(self.tollgate.clone()))
    }

    async fn issue(&self, name: &str, scopes: &[&str]) -> (TokenId, String) {
        let issued = self
            .manager
            .apply("acme", NewToken::new(name).scopes(scopes.iter().copied()))
            .await
            .unwrap();
        (issued.record.id, issued.token.expose_secret().to_owned())
    }
}

async fn call(
    app: &Router,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, String) {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn challenge(headers: &http::HeaderMap) -> &str {
    headers
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

#[tokio::test]
async fn a_valid_token_reaches_the_handler() {
    let f = Fixture::new();
    let (id, secret) = f.issue("reader", &["read"]).await;
    for app in [f.layered(), f.extension()] {
        let (status, _, body) = call(&app, "/whoami", &[("authorization", &bearer(&secret))]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, format!("{id} reader read"));
        let (status, _, _) = call(&app, "/whoami", &[("x-api-key", &secret)]).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn missing_credentials_get_a_bearer_challenge() {
    let f = Fixture::new();
    for app in [f.layered(), f.extension()] {
        let (status, headers, body) = call(&app, "/whoami", &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge(&headers), "Bearer realm=\"test\"");
        assert!(body.contains("\"unauthorized\""));
    }
}

#[tokio::test]
async fn every_invalid_token_gets_one_uniform_answer() {
    let f = Fixture::new();
    let (expired_id, expired) = f.issue("expired", &[]).await;
    f.manager
        .modify(
            "acme",
            expired_id,
            TokenUpdate::default().expires_at(Some(f.manager.now() + SignedDuration::from_mins(1))),
        )
        .await
        .unwrap();
    let (disabled_id, disabled) = f.issue("disabled", &[]).await;
    f.manager
        .modify("acme", disabled_id, TokenUpdate::default().enabled(false))
        .await
        .unwrap();
    let (deleted_id, deleted) = f.issue("deleted", &[]).await;
    f.manager.delete("acme", deleted_id).await.unwrap();
    f.clock.advance(SignedDuration::from_mins(2));
    let unknown = tollgate::TokenFormat::default().generate().unwrap();
    let mut typo = expired.clone().into_bytes();
    typo[8] = if typo[8] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).unwrap();

    let app = f.layered();
    let mut answers = Vec::new();
    for token in [
        "not-a-token",
        typo.as_str(),
        unknown.expose_secret(),
        expired.as_str(),
        disabled.as_str(),
        deleted.as_str(),
    ] {
        let (status, headers, body) =
            call(&app, "/whoami", &[("authorization", &bearer(token))]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(
            challenge(&headers),
            "Bearer realm=\"test\", error=\"invalid_token\""
        );
        answers.push(body);
    }
    answers.dedup();
    assert_eq!(
        answers.len(),
        1,
        "bodies must not tell which check failed: {answers:?}"
    );
}

#[tokio::test]
async fn another_scheme_is_answered_as_missing_credentials() {
    // RFC 6750 §3.1: a request using an unsupported authentication method gets the
    // challenge without an error code.
    let f = Fixture::new();
    let (_, secret) = f.issue("valid", &[]).await;
    let app = f.layered();
    for value in [
        format!("Basic {secret}"),
        "Basic dXNlcjpwYXNz".to_owned(),
        "Digest".to_owned(),
    ] {
        let (status, headers, _) = call(&app, "/whoami", &[("authorization", &value)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{value}");
        assert_eq!(challenge(&headers), "Bearer realm=\"test\"", "{value}");
    }
}

#[tokio::test]
async fn unreadable_credentials_are_a_bad_request() {
    let f = Fixture::new();
    let (_, secret) = f.issue("valid", &[]).await;
    let app = f.layered();
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![("authorization", "Bearer".to_owned())],
        vec![("authorization", format!("Bearer {secret} extra"))],
        vec![
            ("authorization", bearer(&secret)),
            ("authorization", bearer(&secret)),
        ],
        vec![
            ("authorization", bearer(&secret)),
            ("x-api-key", secret.clone()),
        ],
    ];
    for case in cases {
        let headers: Vec<(&str, &str)> = case.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let (status, response_headers, _) = call(&app, "/whoami", &headers).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case:?}");
        assert_eq!(
            challenge(&response_headers),
            "Bearer realm=\"test\", error=\"invalid_request\""
        );
    }
    // Bytes outside visible ASCII.
    let request = Request::get("/whoami")
        .header(
            "authorization",
            http::HeaderValue::from_bytes(b"Bearer tg_\xe9\xe9").unwrap(),
        )
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn scopes_are_enforced_per_route() {
    let f = Fixture::new();
    let (_, reader) = f.issue("reader", &["read"]).await;
    let (_, admin) = f.issue("admin", &["admin", "read"]).await;
    let app = f.layered();
    let (status, headers, body) =
        call(&app, "/admin", &[("authorization", &bearer(&reader))]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&headers),
        "Bearer realm=\"test\", error=\"insufficient_scope\", scope=\"admin\""
    );
    assert!(body.contains("admin"));
    let (status, _, _) = call(&app, "/admin", &[("authorization", &bearer(&admin))]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&app, "/whoami", &[("authorization", &bearer(&reader))]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn optional_tokens() {
    let f = Fixture::new();
    let (_, secret) = f.issue("someone", &[]).await;
    let app = f.extension();
    assert_eq!(call(&app, "/maybe", &[]).await.2, "anonymous");
    assert_eq!(
        call(&app, "/maybe", &[("authorization", &bearer(&secret))])
            .await
            .2,
        "someone"
    );
    let (status, _, _) = call(&app, "/maybe", &[("authorization", "Bearer tg_nope")]).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "bad credentials are not anonymous"
    );
}

#[tokio::test]
async fn the_extractor_without_its_layer_says_what_to_add() {
    let app = Router::new().route("/whoami", get(whoami));
    let (status, _, body) = call(&app, "/whoami", &[("authorization", "Bearer x")]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("tollgate.layer()"), "{body}");
    assert!(body.contains("Extension(tollgate)"), "{body}");
}

#[tokio::test]
async fn the_layer_guards_any_tower_service() {
    let f = Fixture::new();
    let (_, secret) = f.issue("svc", &[]).await;
    let service = tower::service_fn(|request: Request<Body>| async move {
        let name = request
            .extensions()
            .get::<VerifiedToken>()
            .unwrap()
            .name()
            .to_owned();
        Ok::<_, std::convert::Infallible>(http::Response::new(Body::from(name)))
    });
    let guarded = tower_layer::Layer::layer(&f.tollgate.layer(), service);
    let response = guarded
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = guarded
        .oneshot(
            Request::get("/")
                .header("authorization", bearer(&secret))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// A store whose server is down.
#[derive(Debug)]
struct DownStore;

fn down() -> Error {
    Error::unavailable(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "connection refused",
    ))
}

#[async_trait]
impl TokenStore for DownStore {
    async fn insert_many(&self, _: &[TokenRecord], _: &[AuditEntry]) -> Result<(), Error> {
        Err(down())
    }
    async fn get(&self, _: TokenId) -> Result<Option<TokenRecord>, Error> {
        Err(down())
    }
    async fn find_by_hash(&self, _: &SecretHash) -> Result<Option<TokenRecord>, Error> {
        Err(down())
    }
    async fn find_by_name(&self, _: &str, _: &str) -> Result<Option<TokenRecord>, Error> {
        Err(down())
    }
    async fn update(&self, _: &TokenRecord, _: u64, _: Option<&AuditEntry>) -> Result<(), Error> {
        Err(down())
    }
    async fn delete(&self, _: TokenId, _: &AuditEntry) -> Result<bool, Error> {
        Err(down())
    }
    async fn list(&self, _: &ListRequest<'_>) -> Result<Vec<TokenRecord>, Error> {
        Err(down())
    }
    async fn append_audit(&self, _: &AuditEntry) -> Result<(), Error> {
        Err(down())
    }
    async fn audit(&self, _: &AuditRequest<'_>) -> Result<Vec<AuditEntry>, Error> {
        Err(down())
    }
    async fn prune_audit(&self, _: Timestamp) -> Result<u64, Error> {
        Err(down())
    }
}

#[tokio::test]
async fn a_failing_store_fails_closed() {
    let tollgate = Tollgate::new(Arc::new(TokenManager::new(DownStore)));
    let app = Router::new()
        .route("/whoami", get(whoami))
        .layer(tollgate.layer());
    let token = tollgate::TokenFormat::default().generate().unwrap();
    let (status, headers, body) = call(
        &app,
        "/whoami",
        &[("authorization", &bearer(token.expose_secret()))],
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert!(!body.contains(token.expose_secret()));
    // A malformed token is still rejected as such: the store is never asked.
    let (status, _, _) = call(&app, "/whoami", &[("authorization", "Bearer tg_short")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Serves `app` on a loopback port; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn over_loopback_a_deleted_token_fails_on_the_very_next_request() {
    let f = Fixture::new();
    let (id, secret) = f.issue("short-lived", &[]).await;
    let base = serve(f.layered()).await;
    let client = reqwest::Client::new();
    let get = || {
        client
            .get(format!("{base}/whoami"))
            .bearer_auth(&secret)
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 200);
    f.manager.delete("acme", id).await.unwrap();
    let response = get().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        "Bearer realm=\"test\", error=\"invalid_token\""
    );
}

#[tokio::test]
async fn over_loopback_a_regenerated_secret_works_only_within_its_grace_period() {
    let f = Fixture::new();
    let (id, old) = f.issue("rotating", &[]).await;
    let base = serve(f.layered()).await;
    let client = reqwest::Client::new();
    let status = |token: String| {
        let request = client.get(format!("{base}/whoami")).bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    let fresh = f
        .manager
        .regenerate(
            "acme",
            id,
            Regenerate::default().grace(SignedDuration::from_mins(10)),
        )
        .await
        .unwrap();
    let new = fresh.token.expose_secret().to_owned();
    assert_eq!(status(old.clone()).await, 200);
    assert_eq!(status(new.clone()).await, 200);
    f.clock.advance(SignedDuration::from_mins(10));
    assert_eq!(status(old).await, 401);
    assert_eq!(status(new).await, 200);
}

#[tokio::test]
async fn last_use_is_recorded_in_batches_and_on_shutdown() {
    let f = Fixture::new();
    let (id, secret) = f.issue("busy", &[]).await;
    let flusher = f
        .tollgate
        .spawn_last_used_flusher(Duration::from_secs(3600));
    let app = f.layered();
    for _ in 0..5 {
        let (status, _, _) = call(&app, "/whoami", &[("authorization", &bearer(&secret))]).await;
        assert_eq!(status, StatusCode::OK);
    }
    let seen_at: Timestamp = f.manager.now();
    // Requests wrote nothing: the record is untouched until the flush.
    assert_eq!(f.manager.get("acme", id).await.unwrap().last_used_at, None);
    flusher.shutdown().await.unwrap();
    let record = f.manager.get("acme", id).await.unwrap();
    assert_eq!(record.last_used_at, Some(seen_at));
    assert_eq!(record.version, 1);
}
