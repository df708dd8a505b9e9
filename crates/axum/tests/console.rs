//! The console over HTTP: headers, escaping, request forgery, sessions, sign-in throttling,
//! errors, and owner isolation in self-service.
#![cfg(feature = "console")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{HeaderMap, Request, StatusCode, header};
use tollgate::jiff::{SignedDuration, Timestamp};
use tollgate::testing::manager_with_clock;
use tollgate::{
    ActorKind, AuditAction, AuditEntry, AuditFilter, AuditRequest, Error, ListRequest, MemoryStore,
    NewToken, SearchHit, SearchRequest, SecretHash, TokenId, TokenManager, TokenRecord, TokenStore,
    TokenUpdate,
};
use tollgate_axum::console::{self, ConsoleOptions};
use tower::ServiceExt as _;

const ADMIN_SCOPE: &str = "tollgate:admin";
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// A memory store that can be made unavailable.
#[derive(Debug, Default)]
struct Switchable {
    inner: MemoryStore,
    down: AtomicBool,
}

impl Switchable {
    fn check(&self) -> Result<(), Error> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::unavailable(std::io::Error::other(
                "connection refused",
            )))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl TokenStore for Switchable {
    async fn insert_many(
        &self,
        records: &[TokenRecord],
        audit: &[AuditEntry],
    ) -> Result<(), Error> {
        self.check()?;
        self.inner.insert_many(records, audit).await
    }
    async fn get(&self, id: TokenId) -> Result<Option<TokenRecord>, Error> {
        self.check()?;
        self.inner.get(id).await
    }
    async fn find_by_hash(&self, hash: &SecretHash) -> Result<Option<TokenRecord>, Error> {
        self.check()?;
        self.inner.find_by_hash(hash).await
    }
    async fn find_by_name(&self, owner: &str, key: &str) -> Result<Option<TokenRecord>, Error> {
        self.check()?;
        self.inner.find_by_name(owner, key).await
    }
    async fn update(
        &self,
        record: &TokenRecord,
        expected: u64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), Error> {
        self.check()?;
        self.inner.update(record, expected, audit).await
    }
    async fn delete(&self, id: TokenId, audit: &AuditEntry) -> Result<bool, Error> {
        self.check()?;
        self.inner.delete(id, audit).await
    }
    async fn list(&self, request: &ListRequest<'_>) -> Result<Vec<TokenRecord>, Error> {
        self.check()?;
        self.inner.list(request).await
    }
    async fn search(&self, request: &SearchRequest<'_>) -> Result<Vec<SearchHit>, Error> {
        self.check()?;
        self.inner.search(request).await
    }
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), Error> {
        self.check()?;
        self.inner.append_audit(entry).await
    }
    async fn audit(&self, request: &AuditRequest<'_>) -> Result<Vec<AuditEntry>, Error> {
        self.check()?;
        self.inner.audit(request).await
    }
    async fn prune_audit(&self, before: Timestamp) -> Result<u64, Error> {
        self.check()?;
        self.inner.prune_audit(before).await
    }
}

/// An answer, read whole.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn set_cookie(&self) -> Option<&str> {
        self.headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
    }

    /// The page's form token.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form with a token") + marker.len();
        self.body[start..start + 64].to_owned()
    }
}

/// A browser: one cookie, same-origin requests unless told otherwise.
#[derive(Clone)]
struct Browser {
    app: Router,
    cookie: Option<String>,
    peer: SocketAddr,
}

impl Browser {
    fn new(app: Router) -> Self {
        Self {
            app,
            cookie: None,
            peer: "192.0.2.10:50000".parse().unwrap(),
        }
    }

    async fn send(&mut self, request: Request<Body>) -> Answer {
        let mut request = request;
        request.extensions_mut().insert(ConnectInfo(self.peer));
        if let Some(cookie) = &self.cookie {
            request
                .headers_mut()
                .insert(header::COOKIE, cookie.parse().unwrap());
        }
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(set) = headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
        {
            let pair = set.split(';').next().unwrap().to_owned();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    async fn post_with(&mut self, path: &str, form: &[(&str, &str)], site: Option<&str>) -> Answer {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::HOST, "console.test");
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.post_with(path, form, Some("same-origin")).await
    }

    async fn sign_in(&mut self, token: &str) -> Answer {
        self.post("/signin", &[("token", token)]).await
    }
}

struct Fixture {
    manager: Arc<TokenManager>,
    admin: String,
    store: Arc<Switchable>,
}

async fn fixture() -> Fixture {
    let store = Arc::new(Switchable::default());
    let manager =
        Arc::new(TokenManager::from_shared(store.clone()).with_protected_scope(ADMIN_SCOPE));
    let admin = manager
        .apply("default", NewToken::new("admin").scopes([ADMIN_SCOPE]))
        .await
        .unwrap();
    Fixture {
        manager,
        admin: admin.token.expose_secret().to_owned(),
        store,
    }
}

fn admin_console(manager: &Arc<TokenManager>) -> Router {
    console::router(manager.clone(), ConsoleOptions::new())
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let f = fixture().await;
    let mut browser = Browser::new(admin_console(&f.manager));
    let signin = browser.get("/signin").await;
    assert_eq!(signin.status, StatusCode::OK);
    for answer in [&signin, &browser.get("/").await] {
        assert_eq!(answer.headers["content-security-policy"], CSP);
        assert_eq!(answer.headers["x-content-type-options"], "nosniff");
        assert_eq!(answer.headers["referrer-policy"], "no-referrer");
        assert_eq!(answer.headers["x-frame-options"], "DENY");
        assert_eq!(answer.headers["cache-control"], "no-store");
    }
    // No inline script or style anywhere: the policy would block it.
    assert!(!signin.body.contains("<script>") && !signin.body.contains("style="));

    let css = browser.get("/assets/console.css").await;
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    assert!(
        css.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(css.headers["x-content-type-options"], "nosniff");
    let js = browser.get("/assets/console.js").await;
    assert_eq!(js.headers["content-type"], "text/javascript; charset=utf-8");
    assert!(
        !js.body.contains("innerHTML"),
        "the script never parses strings as HTML"
    );
    assert_eq!(
        browser.get("/assets/other.js").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn sign_in_sets_an_opaque_strict_cookie() {
    let f = fixture().await;
    let mut browser = Browser::new(admin_console(&f.manager));
    let first = browser.get("/").await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(first.location(), "/signin");

    let wrong = browser.sign_in("tg_not-a-token").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("This token is not valid"));
    assert!(wrong.set_cookie().is_none());
    let refusals = AuditFilter {
        action: Some(AuditAction::Refused),
        ..Default::default()
    };
    let refused = f
        .manager
        .audit(&refusals, None, None)
        .await
        .unwrap()
        .entries;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].actor.kind, ActorKind::Anonymous);
    assert!(!refused[0].to_json_line().contains("tg_not-a-token"));

    let signed_in = browser.sign_in(&f.admin).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location(), "/");
    let cookie = signed_in.set_cookie().unwrap();
    assert!(
        cookie.contains("; HttpOnly; SameSite=Strict; Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"));
    assert!(
        !cookie.contains(&f.admin),
        "the token never goes to the browser"
    );
    let list = browser.get("/").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.body.contains(&f.admin));

    // A token without the admin scope cannot sign in.
    let user = f
        .manager
        .apply("default", NewToken::new("user").scopes(["read"]))
        .await
        .unwrap();
    let mut other = Browser::new(admin_console(&f.manager));
    let refused = other.sign_in(user.token.expose_secret()).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("does not have the admin scope"));

    // Nor can a token of another owner that holds the admin scope: anyone who may issue
    // tokens into an owner of their own (a self-service user) could make one.
    let self_made = f
        .manager
        .apply(
            "user:mallory",
            NewToken::new("self-made").scopes(["tollgate:admin"]),
        )
        .await
        .unwrap();
    let mut mallory = Browser::new(admin_console(&f.manager));
    let refused = mallory.sign_in(self_made.token.expose_secret()).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.set_cookie().is_none());
}

#[tokio::test]
async fn nested_consoles_link_and_scope_the_cookie_to_their_path() {
    let f = fixture().await;
    let app = Router::new().nest(
        "/admin/tokens",
        console::router(f.manager.clone(), ConsoleOptions::new().secure_cookie(true)),
    );
    let mut browser = Browser::new(app);
    assert_eq!(
        browser.get("/admin/tokens").await.location(),
        "/admin/tokens/signin"
    );
    let signed_in = browser.sign_in_at("/admin/tokens/signin", &f.admin).await;
    let cookie = signed_in.set_cookie().unwrap();
    assert!(cookie.contains("Path=/admin/tokens; Secure"), "{cookie}");
    assert_eq!(signed_in.location(), "/admin/tokens");
    let list = browser.get("/admin/tokens").await;
    assert!(list.body.contains("href=\"/admin/tokens/new\""));
    assert!(list.body.contains("/admin/tokens/assets/console.css"));
}

impl Browser {
    async fn sign_in_at(&mut self, path: &str, token: &str) -> Answer {
        self.post(path, &[("token", token)]).await
    }
}

#[tokio::test]
async fn names_and_descriptions_render_as_text() {
    let f = fixture().await;
    let issued = f
        .manager
        .apply(
            "default",
            NewToken::new("<img src=x onerror=alert(1)>")
                .description("\"><script>alert(2)</script>")
                .scopes(["<b>bold</b>"]),
        )
        .await
        .unwrap();
    let mut browser = Browser::new(admin_console(&f.manager));
    browser.sign_in(&f.admin).await;
    for path in [
        "/".to_owned(),
        "/?q=img".to_owned(),
        format!("/tokens/{}", issued.record.id),
        format!("/tokens/{}/delete", issued.record.id),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            page.body.contains("&#60;img src=x onerror=alert(1)&#62;")
                || page.body.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{path}: {}",
            page.body
        );
        assert!(!page.body.contains("<img"), "{path}");
        assert!(!page.body.contains("<script>"), "{path}");
        assert!(!page.body.contains("<b>"), "{path}");
    }
    // A search that looks like markup is shown as typed, escaped.
    let page = browser.get("/?q=%3Cscript%3E").await;
    assert!(!page.body.contains("<script>"));
}

#[tokio::test]
async fn state_changes_need_the_same_origin_and_the_form_token() {
    let f = fixture().await;
    let mut browser = Browser::new(admin_console(&f.manager));
    browser.sign_in(&f.admin).await;
    let csrf = browser.get("/new").await.csrf();
    let count = || async {
        f.manager
            .list("default", Default::default())
            .await
            .unwrap()
            .items
            .len()
    };
    let before = count().await;

    let missing = browser.post("/new", &[("name", "a")]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let wrong = browser
        .post("/new", &[("name", "a"), ("csrf", &"0".repeat(64))])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    for site in ["cross-site", "same-site"] {
        let forged = browser
            .post_with("/new", &[("name", "a"), ("csrf", &csrf)], Some(site))
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{site}");
        assert!(forged.body.contains("came from another site"));
    }
    // Without fetch metadata, the Origin must name this host.
    let mut request = Request::post("/new")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "console.test")
        .header(header::ORIGIN, "https://evil.test")
        .body(Body::from(format!("name=a&csrf={csrf}")))
        .unwrap();
    assert_eq!(browser.send(request).await.status, StatusCode::FORBIDDEN);
    assert_eq!(count().await, before, "nothing was issued");

    request = Request::post("/new")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "console.test")
        .header(header::ORIGIN, "http://console.test")
        .body(Body::from(format!("name=a&csrf={csrf}")))
        .unwrap();
    let issued = browser.send(request).await;
    assert_eq!(issued.status, StatusCode::SEE_OTHER);
    assert!(issued.location().starts_with("/issued/"));
    assert_eq!(count().await, before + 1);

    // Another session's token does not do.
    let mut other = Browser::new(admin_console(&f.manager));
    other.sign_in(&f.admin).await;
    let refused = other.post("/new", &[("name", "b"), ("csrf", &csrf)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_new_token_is_shown_uncached_until_the_list_is_shown() {
    let f = fixture().await;
    let mut browser = Browser::new(admin_console(&f.manager));
    browser.sign_in(&f.admin).await;
    let csrf = browser.get("/new").await.csrf();
    let issued = browser
        .post(
            "/new",
            &[
                ("csrf", &csrf),
                ("name", "CI deploy"),
                ("expiry", "7d"),
                ("scopes", "deploy, read"),
            ],
        )
        .await;
    assert_eq!(issued.status, StatusCode::SEE_OTHER);
    let page_url = issued.location().to_owned();
    let page = browser.get(&page_url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["cache-control"], "no-store");
    let start = page.body.find("value=\"tg_").unwrap() + "value=\"".len();
    let secret = &page.body[start..start + 3 + 49];
    assert!(f.manager.verify(secret).await.unwrap().is_valid());
    let record = f
        .manager
        .verify(secret)
        .await
        .unwrap()
        .record()
        .unwrap()
        .clone();
    assert_eq!(record.scopes, ["deploy", "read"]);
    assert!(record.expires_at.is_some());
    // The audit log names the administrator who applied, and from where.
    let admin = f
        .manager
        .verify(&f.admin)
        .await
        .unwrap()
        .record()
        .unwrap()
        .clone();
    let applied = AuditFilter {
        action: Some(AuditAction::Apply),
        token: Some(record.id),
        ..Default::default()
    };
    let entry = f.manager.audit(&applied, None, None).await.unwrap().entries[0].clone();
    assert_eq!(entry.actor.kind, ActorKind::Token);
    assert_eq!(entry.actor.id, admin.id.to_string());
    assert_eq!(entry.client.address.as_deref(), Some("192.0.2.10:50000"));

    let file = browser.get(&format!("{page_url}/download")).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.headers["cache-control"], "no-store");
    assert!(
        file.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("CI-deploy.token.json")
    );
    assert!(file.body.contains(secret));

    // The list is the end of the success page.
    browser.get("/").await;
    let gone = browser.get(&page_url).await;
    assert_eq!(gone.status, StatusCode::GONE);
    assert!(!gone.body.contains(secret));
    assert_eq!(
        browser.get(&format!("{page_url}/download")).await.status,
        StatusCode::GONE
    );

    // A download from the list has no secret.
    let listed = browser
        .get(&format!("/tokens/{}/download", record.id))
        .await;
    assert!(listed.body.contains("\"secret_included\": false"));
    assert!(!listed.body.contains(secret));
}

#[tokio::test]
async fn a_session_ends_with_its_admin_token() {
    let (manager, clock) = manager_with_clock(Arc::new(MemoryStore::new()));
    let manager = Arc::new(manager.with_protected_scope(ADMIN_SCOPE));
    manager
        .apply("default", NewToken::new("keeper").scopes([ADMIN_SCOPE]))
        .await
        .unwrap();
    for ending in ["deleted", "disabled", "descoped", "expired"] {
        let second = manager
            .apply(
                "default",
                NewToken::new(format!("second {ending}"))
                    .scopes([ADMIN_SCOPE])
                    .expires_in(SignedDuration::from_hours(1)),
            )
            .await
            .unwrap();
        let mut browser = Browser::new(admin_console(&manager));
        browser.sign_in(second.token.expose_secret()).await;
        assert_eq!(browser.get("/").await.status, StatusCode::OK);
        let id = second.record.id;
        match ending {
            "deleted" => manager.delete("default", id).await.unwrap(),
            "disabled" => {
                manager
                    .modify("default", id, TokenUpdate::default().enabled(false))
                    .await
                    .unwrap();
            }
            "descoped" => {
                manager
                    .modify("default", id, TokenUpdate::default().scopes(["read"]))
                    .await
                    .unwrap();
            }
            _ => clock.advance(SignedDuration::from_hours(2)),
        }
        let ended = browser.get("/").await;
        assert_eq!(ended.status, StatusCode::SEE_OTHER, "{ending}");
        assert_eq!(ended.location(), "/signin?ended=token", "{ending}");
        assert!(ended.set_cookie().unwrap().contains("Max-Age=0"));
        let notice = browser.get("/signin?ended=token").await;
        assert!(notice.body.contains("Your session has ended"));
    }
}

#[tokio::test]
async fn sign_out_and_timeouts_end_sessions() {
    let f = fixture().await;
    let mut browser = Browser::new(admin_console(&f.manager));
    browser.sign_in(&f.admin).await;
    let old_cookie = browser.cookie.clone();
    let csrf = browser.get("/").await.csrf();
    let out = browser.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(out.location(), "/signin?ended=signed_out");
    assert!(out.set_cookie().unwrap().contains("Max-Age=0"));
    // The old id is worth nothing now.
    browser.cookie = old_cookie;
    assert_eq!(browser.get("/").await.location(), "/signin?ended=timeout");

    let app = console::router(
        f.manager.clone(),
        ConsoleOptions::new().idle_timeout(Duration::from_millis(100)),
    );
    let mut browser = Browser::new(app);
    browser.sign_in(&f.admin).await;
    assert_eq!(browser.get("/").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(browser.get("/").await.location(), "/signin?ended=timeout");
}

#[tokio::test]
async fn wrong_tokens_are_slowed_down_per_address() {
    let f = fixture().await;
    let app = admin_console(&f.manager);
    let mut browser = Browser::new(app.clone());
    for _ in 0..4 {
        assert_eq!(
            browser.sign_in("tg_wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let slowed = browser.sign_in(&f.admin).await;
    assert_eq!(slowed.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(slowed.headers.contains_key(header::RETRY_AFTER));
    assert!(slowed.body.contains("Too many wrong tokens"));
    // Another address is not slowed down.
    let mut other = Browser::new(app);
    other.peer = "198.51.100.7:40000".parse().unwrap();
    assert_eq!(other.sign_in(&f.admin).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn errors_show_next_to_their_fields_in_plain_words() {
    let f = fixture().await;
    let mut browser = Browser::new(admin_console(&f.manager));
    browser.sign_in(&f.admin).await;
    let csrf = browser.get("/new").await.csrf();
    let empty = browser
        .post("/new", &[("csrf", &csrf), ("name", " ")])
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.body.contains("id=\"name-error\">Enter a name.</p>"));
    let taken = browser
        .post("/new", &[("csrf", &csrf), ("name", "ADMIN")])
        .await;
    assert!(
        taken.body.contains("A token named “ADMIN” already exists"),
        "{}",
        taken.body
    );
    let scope = browser
        .post(
            "/new",
            &[("csrf", &csrf), ("name", "x"), ("scopes", "a\"b")],
        )
        .await;
    assert!(
        scope
            .body
            .contains("id=\"scopes-error\">The scope “a&#34;b”")
            || scope
                .body
                .contains("id=\"scopes-error\">The scope “a&quot;b”"),
        "{}",
        scope.body
    );
    let past = browser
        .post(
            "/new",
            &[
                ("csrf", &csrf),
                ("name", "x"),
                ("expiry", "date"),
                ("expiry_date", "2001-02-03"),
            ],
        )
        .await;
    assert!(past.body.contains("The expiry must be in the future."));
    assert!(past.body.contains("value=\"x\""), "what was typed is kept");

    // The last admin token cannot be disabled from the console.
    let admin = f
        .manager
        .verify(&f.admin)
        .await
        .unwrap()
        .record()
        .unwrap()
        .clone();
    let page = browser.get(&format!("/tokens/{}", admin.id)).await;
    let refused = browser
        .post(
            &format!("/tokens/{}", admin.id),
            &[
                ("csrf", &page.csrf()),
                ("name", "admin"),
                ("expiry", "keep"),
                ("scopes", ADMIN_SCOPE),
                ("version", &admin.version.to_string()),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("last enabled token with the scope"));

    // An unavailable store is a banner, not a blank page.
    f.store.down.store(true, Ordering::SeqCst);
    let down = browser.get("/").await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(down.body.contains("class=\"banner\" role=\"alert\""));
    assert!(down.body.contains("connection refused"));
    let apply = browser
        .post("/new", &[("csrf", &csrf), ("name", "while down")])
        .await;
    assert_eq!(apply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(apply.body.contains("class=\"banner\""));
    assert!(apply.body.contains("value=\"while down\""));
    f.store.down.store(false, Ordering::SeqCst);
}

#[tokio::test]
async fn a_stale_form_reloads_with_the_current_state() {
    let f = fixture().await;
    let issued = f
        .manager
        .apply("default", NewToken::new("ci"))
        .await
        .unwrap();
    let mut browser = Browser::new(admin_console(&f.manager));
    browser.sign_in(&f.admin).await;
    let path = format!("/tokens/{}", issued.record.id);
    let page = browser.get(&path).await;
    let version = issued.record.version.to_string();
    f.manager
        .modify(
            "default",
            issued.record.id,
            TokenUpdate::default().description("changed elsewhere"),
        )
        .await
        .unwrap();
    let stale = browser
        .post(
            &path,
            &[
                ("csrf", &page.csrf()),
                ("name", "ci 2"),
                ("expiry", "keep"),
                ("enabled", "on"),
                ("version", &version),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(stale.body.contains("Someone else changed this token"));
    assert!(stale.body.contains(">changed elsewhere</textarea>"));
    assert_eq!(
        f.manager
            .get("default", issued.record.id)
            .await
            .unwrap()
            .name,
        "ci"
    );
    // Deleting from a stale page asks again.
    let stale_delete = browser
        .post(
            &format!("{path}/delete"),
            &[("csrf", &page.csrf()), ("version", &version)],
        )
        .await;
    assert_eq!(stale_delete.status, StatusCode::CONFLICT);
    assert!(f.manager.get("default", issued.record.id).await.is_ok());
}

/// Self-service: the application's toy authentication puts the user in `x-user`.
fn self_service(manager: &Arc<TokenManager>) -> Router {
    console::router(
        manager.clone(),
        ConsoleOptions::new()
            .self_service(|parts: &http::request::Parts| {
                parts
                    .headers
                    .get("x-user")
                    .and_then(|v| v.to_str().ok())
                    .map(|user| format!("user:{user}"))
            })
            .scope_choices(["read", "write"]),
    )
}

impl Browser {
    fn signed_in_as(mut self, user: &str) -> UserBrowser {
        self.cookie = None;
        UserBrowser {
            browser: self,
            user: user.to_owned(),
        }
    }
}

struct UserBrowser {
    browser: Browser,
    user: String,
}

impl UserBrowser {
    fn request(&self, request: http::request::Builder) -> http::request::Builder {
        request.header("x-user", &self.user)
    }

    async fn get(&mut self, path: &str) -> Answer {
        let request = self
            .request(Request::get(path))
            .body(Body::empty())
            .unwrap();
        self.browser.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .request(Request::post(path))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(body))
            .unwrap();
        self.browser.send(request).await
    }
}

#[tokio::test]
async fn self_service_users_reach_only_their_own_tokens() {
    let (manager, _) = manager_with_clock(Arc::new(MemoryStore::new()));
    let manager = Arc::new(manager);
    let app = self_service(&manager);

    // Without a signed-in user: 401, and there is no sign-in of the console's own.
    let mut nobody = Browser::new(app.clone());
    assert_eq!(nobody.get("/").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(nobody.get("/signin").await.status, StatusCode::NOT_FOUND);

    let mut alice = Browser::new(app.clone()).signed_in_as("alice");
    let page = alice.get("/new").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.set_cookie()
            .unwrap()
            .contains("HttpOnly; SameSite=Strict")
    );
    assert!(
        page.body.contains("name=\"scope\" value=\"read\""),
        "scopes are check boxes"
    );
    let csrf = page.csrf();
    // Only the offered scopes.
    let refused = alice
        .post(
            "/new",
            &[("csrf", &csrf), ("name", "x"), ("scope", ADMIN_SCOPE)],
        )
        .await;
    assert!(refused.body.contains("is not offered here"));
    let issued = alice
        .post(
            "/new",
            &[
                ("csrf", &csrf),
                ("name", "alice's token"),
                ("scope", "read"),
            ],
        )
        .await;
    assert_eq!(issued.status, StatusCode::SEE_OTHER);
    let alices = manager
        .list("user:alice", Default::default())
        .await
        .unwrap()
        .items[0]
        .clone();
    assert_eq!(alices.scopes, ["read"]);
    let by_alice = AuditFilter {
        actor: Some("user:alice".into()),
        ..Default::default()
    };
    let entries = manager.audit(&by_alice, None, None).await.unwrap().entries;
    assert_eq!(entries[0].actor.kind, ActorKind::User);
    assert_eq!(entries[0].token_id, Some(alices.id));
    assert!(
        alice.get("/").await.body.contains("alice&#39;s token")
            || alice.get("/").await.body.contains("alice&#x27;s token")
    );

    let mut bob = Browser::new(app.clone()).signed_in_as("bob");
    let bob_page = bob.get("/").await;
    assert!(!bob_page.body.contains("alice"));
    let bob_csrf = bob_page.csrf();
    let id = alices.id;
    for path in [
        format!("/tokens/{id}"),
        format!("/tokens/{id}/download"),
        format!("/tokens/{id}/delete"),
    ] {
        assert_eq!(bob.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let version = alices.version.to_string();
    for path in [
        format!("/tokens/{id}"),
        format!("/tokens/{id}/regenerate"),
        format!("/tokens/{id}/delete"),
    ] {
        let answer = bob
            .post(
                &path,
                &[
                    ("csrf", &bob_csrf),
                    ("name", "bob's now"),
                    ("grace", "0"),
                    ("expiry", "keep"),
                    ("version", &version),
                ],
            )
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        manager.get("user:alice", id).await.unwrap(),
        alices,
        "unchanged"
    );
    // Bob cannot switch owners: there is no owner field in self-service.
    bob.post("/owner", &[("csrf", &bob_csrf), ("owner", "user:alice")])
        .await;
    assert!(!bob.get("/").await.body.contains("alice"));

    // Alice's cookie presented by bob starts a session of bob's own: alice's form token
    // does not work for him.
    let mut thief = Browser::new(app).signed_in_as("bob");
    thief.browser.cookie = alice.browser.cookie.clone();
    let answer = thief
        .post("/new", &[("csrf", &csrf), ("name", "planted")])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        manager
            .list("user:alice", Default::default())
            .await
            .unwrap()
            .items
            .len()
            == 1
    );
    assert!(
        manager
            .list("user:bob", Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// How many entries an activity page lists with this action.
fn count_action(body: &str, action: &str) -> usize {
    body.matches(&format!("class=\"action action-{action}\""))
        .count()
}

#[tokio::test]
async fn the_activity_shows_console_changes_with_the_acting_admin() {
    let f = fixture().await;
    let boss = f
        .manager
        .apply(
            "default",
            NewToken::new("<b>boss</b>").scopes([ADMIN_SCOPE]),
        )
        .await
        .unwrap();
    let mut browser = Browser::new(admin_console(&f.manager));
    browser.sign_in(boss.token.expose_secret()).await;

    // Apply, modify and delete through the console.
    let csrf = browser.get("/new").await.csrf();
    let issued = browser
        .post(
            "/new",
            &[
                ("csrf", &csrf),
                ("name", "<img src=x onerror=alert(1)>"),
                ("expiry", "never"),
                ("scopes", "read"),
            ],
        )
        .await;
    assert_eq!(issued.status, StatusCode::SEE_OTHER);
    let record = f
        .manager
        .list("default", Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|r| r.name.starts_with("<img"))
        .unwrap();
    let path = format!("/tokens/{}", record.id);
    let page = browser.get(&path).await;
    assert!(page.body.contains(&format!("href=\"{path}/activity\"")));
    let modified = browser
        .post(
            &path,
            &[
                ("csrf", &page.csrf()),
                ("name", "<img src=x onerror=alert(1)>"),
                ("description", "changed"),
                ("scopes", "read write"),
                ("expiry", "keep"),
                ("enabled", "on"),
                ("version", &record.version.to_string()),
            ],
        )
        .await;
    assert_eq!(modified.status, StatusCode::SEE_OTHER);
    let page = browser.get(&path).await;
    let version = f
        .manager
        .get("default", record.id)
        .await
        .unwrap()
        .version
        .to_string();
    let deleted = browser
        .post(
            &format!("{path}/delete"),
            &[("csrf", &page.csrf()), ("version", &version)],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);

    // The header links to the activity; it lists the three, newest first, by the admin,
    // from the browser's address, escaped.
    let home = browser.get("/").await;
    assert!(home.body.contains("href=\"/activity\""));
    let page = browser.get("/activity").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("aria-current=\"page\">Activity<"));
    assert_eq!(
        count_action(&page.body, "apply"),
        3,
        "admin, boss, the token"
    );
    assert_eq!(count_action(&page.body, "modify"), 1);
    assert_eq!(count_action(&page.body, "delete"), 1);
    let delete_at = page.body.find("action-delete").unwrap();
    let modify_at = page.body.find("action-modify").unwrap();
    assert!(delete_at < modify_at, "newest first");
    assert!(
        page.body.contains("&#60;b&#62;boss&#60;/b&#62;")
            || page.body.contains("&lt;b&gt;boss&lt;/b&gt;"),
        "{}",
        page.body
    );
    assert!(page.body.contains(&boss.record.id.to_string()));
    assert!(page.body.contains("admin token"));
    assert!(page.body.contains("192.0.2.10:50000"));
    assert!(page.body.contains(">description</code>"));
    assert!(page.body.contains(">scopes</code>"));
    assert!(!page.body.contains("<img"));
    assert!(!page.body.contains("<b>"));
    assert!(!page.body.contains("tg_"), "never a secret");

    // Filtered by action, with the choice kept in the select.
    let deletes = browser.get("/activity?action=delete").await;
    assert_eq!(count_action(&deletes.body, "delete"), 1);
    assert_eq!(count_action(&deletes.body, "apply"), 0);
    assert!(deletes.body.contains("<option value=\"delete\" selected>"));
    let refused = browser.get("/activity?action=nonsense").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("Choose an action from the list."));

    // The token's own activity, still readable after its deletion.
    let own = browser.get(&format!("{path}/activity")).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(count_action(&own.body, "apply"), 1);
    assert_eq!(count_action(&own.body, "modify"), 1);
    assert_eq!(count_action(&own.body, "delete"), 1);
    assert!(!own.body.contains("<img"));
    assert_eq!(
        browser
            .get(&format!("/tokens/{}/activity", "0".repeat(32)))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Another owner's entries are not shown until the admin switches to it.
    f.manager
        .apply("elsewhere", NewToken::new("far away"))
        .await
        .unwrap();
    assert!(!browser.get("/activity").await.body.contains("far away"));
    let csrf = browser.get("/").await.csrf();
    browser
        .post("/owner", &[("csrf", &csrf), ("owner", "elsewhere")])
        .await;
    let far = browser.get("/activity").await;
    assert!(far.body.contains("far away"));
    assert_eq!(count_action(&far.body, "apply"), 1);
}

#[tokio::test]
async fn the_activity_pages_with_more() {
    let f = fixture().await;
    for n in 0..60 {
        f.manager
            .apply("default", NewToken::new(format!("bulk {n}")))
            .await
            .unwrap();
    }
    let mut browser = Browser::new(admin_console(&f.manager));
    browser.sign_in(&f.admin).await;
    let first = browser.get("/activity?action=apply").await;
    assert_eq!(count_action(&first.body, "apply"), 50);
    assert!(first.body.contains("bulk 59"));
    let marker = "<p class=\"more\"><a class=\"button\" href=\"";
    let start = first.body.find(marker).expect("a More link") + marker.len();
    let end = start + first.body[start..].find('"').unwrap();
    let next = first.body[start..end]
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    assert!(next.starts_with("/activity?action=apply&cursor="), "{next}");
    let second = browser.get(&next).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(
        count_action(&second.body, "apply"),
        11,
        "60 and the admin's"
    );
    assert!(second.body.contains("bulk 0"));
    assert!(!second.body.contains("bulk 59"));
    assert!(second.body.contains("Back to the first page"));
    assert!(!second.body.contains(marker));
}

#[tokio::test]
async fn self_service_users_see_only_their_own_activity() {
    let (manager, _) = manager_with_clock(Arc::new(MemoryStore::new()));
    let manager = Arc::new(manager);
    let app = self_service(&manager);
    let mut alice = Browser::new(app.clone()).signed_in_as("alice");
    let mut bob = Browser::new(app).signed_in_as("bob");
    for (browser, name) in [(&mut alice, "alice's <token>"), (&mut bob, "bob's token")] {
        let csrf = browser.get("/new").await.csrf();
        let issued = browser
            .post(
                "/new",
                &[("csrf", &csrf), ("name", name), ("scope", "read")],
            )
            .await;
        assert_eq!(issued.status, StatusCode::SEE_OTHER);
    }
    // Refusals: one about bob's tokens, one without an owner.
    let anonymous = tollgate::Context::new(tollgate::Actor::anonymous());
    manager
        .record_refusal(&anonymous, "invalid token", Some("user:bob"))
        .await
        .unwrap();
    manager
        .record_refusal(&anonymous, "missing credentials", None)
        .await
        .unwrap();
    let bobs = manager
        .list("user:bob", Default::default())
        .await
        .unwrap()
        .items[0]
        .clone();

    let page = alice.get("/activity").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(count_action(&page.body, "apply"), 1);
    assert_eq!(count_action(&page.body, "refused"), 0);
    assert!(
        page.body.contains("alice&#39;s &#60;token&#62;")
            || page.body.contains("alice&#x27;s &lt;token&gt;")
            || page.body.contains("alice&#39;s &lt;token&gt;"),
        "{}",
        page.body
    );
    assert!(page.body.contains("(user"));
    assert!(!page.body.contains("bob"));
    assert!(!page.body.contains("missing credentials"));
    // No owner to pick, in the page or the query.
    assert!(!page.body.contains("owner-field"));
    let sneaky = alice.get("/activity?owner=user:bob&action=refused").await;
    assert_eq!(count_action(&sneaky.body, "refused"), 0);
    assert!(!sneaky.body.contains("bob"));
    let theirs = alice.get(&format!("/tokens/{}/activity", bobs.id)).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert!(!theirs.body.contains("bob"));

    // Bob sees his own, and the refusal about his tokens, but not the one without owner.
    let page = bob.get("/activity").await;
    assert_eq!(count_action(&page.body, "apply"), 1);
    assert_eq!(count_action(&page.body, "refused"), 1);
    assert!(!page.body.contains("alice"));
    assert!(!page.body.contains("missing credentials"));
}
