//! The console in a real browser: Debian's headless Chromium driven through chromedriver,
//! against the application `tollgate serve` runs (the console at `/`, the management API at
//! `/api/v1`, the guarded `/demo/whoami`), built here over a real loopback socket.
//!
//! Needs `chromium`, `chromedriver` and axe-core (`scripts/console-browser-deps.sh` installs
//! them). Without them the test prints a notice and passes, unless `TOLLGATE_BROWSER_TESTS=1`
//! is set (as `.ci/run` does): then it fails. `TOLLGATE_UPDATE_SCREENSHOTS=1` also writes the
//! screenshots to `docs/screenshots/`; they always go to `target/screenshots/`.
#![cfg(feature = "console")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::{Extension, Router};
use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tollgate::{ListOptions, MemoryStore, NewToken, TokenManager, TokenUpdate};
use tollgate_axum::console::{self, ConsoleOptions};
use tollgate_axum::management::{self, ManagementOptions};
use tollgate_axum::{Tollgate, VerifiedToken};

const ADMIN_SCOPE: &str = "tollgate:admin";
const XSS_NAME: &str = "<img src=x onerror=alert(1)>";
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--lang=en-US",
];

/// The screenshots README shows, in `docs/screenshots/`.
const DOC_SCREENSHOTS: &[&str] = &[
    "console-list.png",
    "console-issued.png",
    "console-delete-dialog.png",
    "console-list-dark.png",
    "console-list-phone.png",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What the test needs from the machine.
struct Deps {
    chromedriver: PathBuf,
    chromium: PathBuf,
    axe: String,
}

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn deps() -> Result<Deps, String> {
    let chromedriver = std::env::var_os("TOLLGATE_CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| which(&["chromedriver"]))
        .filter(|path| path.is_file())
        .ok_or("chromedriver is not installed")?;
    let chromium = std::env::var_os("TOLLGATE_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| which(&["chromium", "chromium-browser"]))
        .filter(|path| path.is_file())
        .ok_or("chromium is not installed")?;
    let axe_path = std::env::var_os("TOLLGATE_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            workspace().join("target/browser-deps/node_modules/axe-core/axe.min.js")
        });
    let axe = std::fs::read_to_string(&axe_path)
        .map_err(|e| format!("axe-core is not at {}: {e}", axe_path.display()))?;
    Ok(Deps {
        chromedriver,
        chromium,
        axe,
    })
}

/// chromedriver, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start_driver(deps: &Deps) -> (Driver, u16) {
    let port = free_port();
    let child = Command::new(&deps.chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (driver, port)
}

/// Standard base64, as the DevTools protocol sends images.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut buffer = 0u32;
        for (i, digit) in chunk.iter().enumerate() {
            buffer |= u32::from(*digit) << (18 - 6 * i);
        }
        let bytes = buffer.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

/// A chromedriver-specific command: a Chrome DevTools Protocol call.
#[derive(Debug)]
struct Cdp(Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.0.to_string()))
    }
}

/// The application `tollgate serve` runs.
fn app(manager: Arc<TokenManager>) -> Router {
    let tollgate = Tollgate::new(manager.clone());
    Router::new()
        .route(
            "/demo/whoami",
            get(|token: VerifiedToken| async move { token.name().to_owned() }),
        )
        .layer(Extension(tollgate))
        .nest(
            "/api/v1",
            management::router(manager.clone(), ManagementOptions::new()),
        )
        .merge(console::router(manager, ConsoleOptions::new()))
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

/// Everything a step needs.
struct Session {
    client: Client,
    base: String,
    axe: String,
    downloads: PathBuf,
    http: reqwest::Client,
}

impl Session {
    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        if !value.is_empty() {
            field.send_keys(value).await.unwrap();
        }
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Clicks something that loads another page, and waits for that page.
    async fn follow(&self, css: &str) {
        self.js("window.leaving = true").await;
        self.click(css).await;
        self.next_page().await;
    }

    async fn next_page(&self) {
        self.wait_until("the next page loads", || async {
            self.client
                .execute(
                    "return window.leaving === undefined && document.readyState === 'complete'",
                    Vec::new(),
                )
                .await
                .is_ok_and(|v| v == Value::Bool(true))
        })
        .await;
    }

    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.unwrap()
    }

    /// The status badge of the token page.
    async fn status(&self) -> String {
        let status = self
            .js("return document.querySelector('.page-head .status').textContent")
            .await;
        status.as_str().unwrap_or_default().to_owned()
    }

    async fn h1(&self) -> String {
        self.text("h1").await
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// The names in the list, in order.
    async fn names(&self) -> Vec<String> {
        let names = self
            .js("return Array.from(document.querySelectorAll('#token-rows th a')).map(a => a.textContent)")
            .await;
        serde_json::from_value(names).unwrap()
    }

    /// Searches by typing in the box and pressing Enter, as a person does.
    async fn search(&self, query: &str) {
        self.fill("#q", query).await;
        self.js("window.leaving = true").await;
        self.find("#q").await.send_keys("\u{E007}").await.unwrap();
        self.next_page().await;
    }

    async fn wait_until<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check().await {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// No serious or critical accessibility violation on the page as it is now.
    async fn accessible(&self, page: &str) {
        let loaded = self.js("return typeof window.axe !== 'undefined'").await;
        if loaded != Value::Bool(true) {
            self.client.execute(&self.axe, Vec::new()).await.unwrap();
        }
        let violations = self
            .js("return axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => v.id + ': ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', ')))")
            .await;
        let violations: Vec<String> = serde_json::from_value(violations).unwrap();
        assert!(
            violations.is_empty(),
            "accessibility violations on the {page} page:\n{}",
            violations.join("\n")
        );
    }

    async fn screenshot(&self, name: &str) {
        // Through the DevTools protocol: WebDriver's own screenshot leaves out the backdrop
        // of a modal dialog.
        let shot = self
            .client
            .issue_cmd(Cdp(
                json!({"cmd": "Page.captureScreenshot", "params": {"format": "png"}}),
            ))
            .await
            .unwrap();
        let png = base64_decode(shot["data"].as_str().expect("a screenshot"));
        let target = workspace().join("target/screenshots");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join(name), &png).unwrap();
        let for_docs = DOC_SCREENSHOTS.contains(&name);
        if for_docs && std::env::var_os("TOLLGATE_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
            let docs = workspace().join("docs/screenshots");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join(name), &png).unwrap();
        }
    }

    /// The downloaded token file named `name`, once the download is complete.
    async fn downloaded(&self, name: &str) -> Value {
        let path = self.downloads.join(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(json) = serde_json::from_str::<Value>(&text)
            {
                std::fs::remove_file(&path).unwrap();
                return json;
            }
            assert!(
                Instant::now() < deadline,
                "no download {name}; the folder holds {:?}",
                std::fs::read_dir(&self.downloads)
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The status `/demo/whoami` answers for `token`.
    async fn whoami(&self, token: &str) -> u16 {
        self.http
            .get(format!("{}/demo/whoami", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Whether a JavaScript alert is open (one would mean injected script ran).
    async fn alert_open(&self) -> bool {
        self.client.get_alert_text().await.is_ok()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_browser() {
    let required = std::env::var_os("TOLLGATE_BROWSER_TESTS").is_some_and(|v| v == "1");
    let deps = match deps() {
        Ok(deps) => deps,
        Err(why) if required => {
            panic!("TOLLGATE_BROWSER_TESTS=1 but {why}; run scripts/console-browser-deps.sh")
        }
        Err(why) => {
            eprintln!(
                "notice: skipping the console's browser test: {why} (scripts/console-browser-deps.sh installs what it needs; TOLLGATE_BROWSER_TESTS=1 makes this a failure)"
            );
            return;
        }
    };

    let manager = Arc::new(TokenManager::new(MemoryStore::new()).with_protected_scope(ADMIN_SCOPE));
    let admin = manager
        .apply(
            "default",
            NewToken::new("tollgate-admin").scopes([ADMIN_SCOPE]),
        )
        .await
        .unwrap();
    let base = serve(app(manager.clone())).await;

    let (_driver, driver_port) = start_driver(&deps).await;
    let profile = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": deps.chromium,
            "args": args,
            "prefs": {
                "download.default_directory": downloads.path(),
                "download.prompt_for_download": false,
            },
        },
    });
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities.as_object().unwrap().clone())
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a chromedriver session");
    // Downloads land in the folder without asking.
    client
        .issue_cmd(Cdp(
            json!({"cmd": "Browser.setDownloadBehavior", "params": {
                "behavior": "allow", "downloadPath": downloads.path(), "eventsEnabled": false
            }}),
        ))
        .await
        .unwrap();
    let s = Arc::new(Session {
        client,
        base,
        axe: deps.axe,
        downloads: downloads.path().to_owned(),
        http: reqwest::Client::new(),
    });

    // The flows run as a task so that the browser is closed whatever they find.
    let outcome = tokio::spawn({
        let s = s.clone();
        let manager = manager.clone();
        let admin = admin.token.expose_secret().to_owned();
        async move { flows(&s, &manager, &admin).await }
    })
    .await;
    s.client.clone().close().await.unwrap();
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

async fn flows(s: &Session, manager: &Arc<TokenManager>, admin: &str) {
    eprintln!("sign in");
    s.goto("/").await;
    assert_eq!(s.path().await, "/signin");
    s.accessible("sign-in").await;
    s.fill("#token", "tg_not-a-real-token").await;
    s.follow("button[type=submit].primary").await;
    assert!(s.text("#token-error").await.contains("not valid"));
    s.fill("#token", admin).await;
    s.follow("button[type=submit].primary").await;
    assert_eq!(s.h1().await, "Tokens");
    assert_eq!(s.names().await, ["tollgate-admin"]);

    eprintln!("apply");
    s.follow("a[href='/new']").await;
    assert_eq!(s.h1().await, "New token");
    // The date field shows only with "On a date…".
    assert!(
        !s.find("#expiry-date-field")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    s.fill("#name", "CI deploy").await;
    s.fill("#description", "Pushes releases").await;
    s.find("#expiry")
        .await
        .select_by_value("30d")
        .await
        .unwrap();
    s.fill("#scopes", "deploy, read").await;
    s.accessible("apply").await;
    s.follow("form button.primary").await;
    assert_eq!(s.h1().await, "Token created");
    let secret = s
        .find("#secret")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(secret.starts_with("tg_"), "{secret}");
    assert!(s.text(".callout").await.contains("only time it is shown"));
    let issued_page = s.path().await;

    eprintln!("copy and download");
    s.click("button[data-copy]").await;
    s.wait_until("the copy is confirmed", || async {
        s.text("#copy-status").await == "Copied."
    })
    .await;
    s.accessible("success").await;
    s.screenshot("console-issued.png").await;
    s.click("a[href$='/download']").await;
    let file = s.downloaded("CI-deploy.token.json").await;
    assert_eq!(file["secret"], secret.as_str());
    assert_eq!(file["token"]["name"], "CI deploy");
    assert_eq!(s.whoami(&secret).await, 200);

    eprintln!("return to list");
    s.follow("#return").await;
    assert_eq!(s.h1().await, "Tokens");
    assert_eq!(s.names().await, ["CI deploy", "tollgate-admin"]);
    // Leaving the success page was the last chance to see the token.
    s.goto(&issued_page).await;
    assert_eq!(s.h1().await, "This token is no longer shown");
    assert!(
        !s.js("return document.body.textContent")
            .await
            .to_string()
            .contains(&secret)
    );

    eprintln!("errors next to their fields");
    s.goto("/new").await;
    s.follow("form button.primary").await;
    assert_eq!(s.text("#name-error").await, "Enter a name.");
    assert_eq!(
        s.find("#name")
            .await
            .attr("aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    s.fill("#name", "ci DEPLOY").await;
    s.follow("form button.primary").await;
    assert!(s.text("#name-error").await.contains("already exists"));
    s.fill("#name", "expired already").await;
    s.find("#expiry")
        .await
        .select_by_value("date")
        .await
        .unwrap();
    assert!(
        s.find("#expiry-date-field")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    s.js("document.getElementById('expiry_date').value = '2020-01-01'")
        .await;
    s.follow("form button.primary").await;
    assert_eq!(
        s.text("#expiry-error").await,
        "The expiry must be in the future."
    );
    s.accessible("apply, with an error").await;
    s.screenshot("console-apply-error.png").await;
    // What was typed is kept.
    assert_eq!(
        s.find("#name")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("expired already")
    );

    eprintln!("names in any script, and one that tries to inject a script");
    let others = [
        (
            "支付服务 gateway",
            "Payments gateway, Shanghai region",
            "payments:write",
        ),
        ("מפתח בדיקה", "בדיקות אינטגרציה", "read"),
        ("🚀 launch bot", "Posts release announcements", "chat:write"),
        (
            XSS_NAME,
            "<script>alert('description')</script> <b>not bold</b>",
            "read",
        ),
        (
            "billing-export",
            "Nightly export to the warehouse",
            "billing:read",
        ),
        (
            "staging read-only",
            "Shared by the staging services",
            "read",
        ),
    ];
    for (name, description, scope) in others {
        let issued = manager
            .apply(
                "default",
                NewToken::new(name).scopes([scope]).description(description),
            )
            .await
            .unwrap();
        if name == "billing-export" {
            assert_eq!(s.whoami(issued.token.expose_secret()).await, 200);
            manager.flush_last_used().await.unwrap();
        }
        if name == "staging read-only" {
            manager
                .modify(
                    "default",
                    issued.record.id,
                    TokenUpdate::default().enabled(false),
                )
                .await
                .unwrap();
        }
    }
    s.goto("/").await;
    let names = s.names().await;
    assert_eq!(names.len(), 8);
    assert!(names.iter().any(|n| n == XSS_NAME), "{names:?}");
    assert_eq!(
        s.js("return document.querySelectorAll('main img, main b, main script').length")
            .await,
        0
    );
    assert!(!s.alert_open().await);
    s.accessible("list").await;
    s.screenshot("console-list.png").await;

    eprintln!("search: a typo, CJK, an empty box");
    s.search("deply").await;
    assert_eq!(
        s.names().await.first().map(String::as_str),
        Some("CI deploy")
    );
    s.search("支付").await;
    assert_eq!(
        s.names().await.first().map(String::as_str),
        Some("支付服务 gateway")
    );
    s.search("").await;
    assert_eq!(s.names().await.len(), 8);

    eprintln!("download from the list");
    assert_eq!(s.names().await[0], "staging read-only");
    s.click("#token-rows a[href$='/download']").await;
    let file = s.downloaded("staging-read-only.token.json").await;
    assert_eq!(file["secret_included"], false);
    assert_eq!(file["secret"], Value::Null);

    eprintln!("modify");
    let ci = manager
        .list(
            "default",
            ListOptions {
                query: Some("CI deploy".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items[0]
        .clone();
    s.goto(&format!("/tokens/{}", ci.id)).await;
    s.accessible("token").await;
    s.screenshot("console-token.png").await;
    s.fill("#description", "Pushes releases to production")
        .await;
    s.fill("#scopes", "deploy").await;
    s.follow("section[aria-labelledby=modify-title] button.primary")
        .await;
    s.wait_until("the change is saved", || async {
        s.js("return document.querySelector('.flash-success') !== null")
            .await
            .as_bool()
            .unwrap_or(false)
    })
    .await;
    assert!(
        s.text(".flash-success")
            .await
            .contains("Saved the changes to “CI deploy”")
    );
    let changed = manager.get("default", ci.id).await.unwrap();
    assert_eq!(changed.description, "Pushes releases to production");
    assert_eq!(changed.scopes, ["deploy"]);
    // Disable, then enable again: the API follows.
    s.click("#enabled").await;
    s.follow("section[aria-labelledby=modify-title] button.primary")
        .await;
    assert_eq!(s.status().await, "disabled");
    assert_eq!(s.whoami(&secret).await, 401);
    s.click("#enabled").await;
    s.follow("section[aria-labelledby=modify-title] button.primary")
        .await;
    assert_eq!(s.status().await, "active");
    assert_eq!(s.whoami(&secret).await, 200);

    eprintln!("a version conflict reloads the form");
    manager
        .modify(
            "default",
            ci.id,
            TokenUpdate::default().description("changed elsewhere"),
        )
        .await
        .unwrap();
    s.fill("#name", "CI deploy v2").await;
    s.follow("section[aria-labelledby=modify-title] button.primary")
        .await;
    assert!(
        s.text("section[aria-labelledby=modify-title] .flash-error")
            .await
            .contains("Someone else changed this token")
    );
    assert_eq!(
        s.find("#description")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("changed elsewhere")
    );
    assert_eq!(
        s.find("#name")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("CI deploy")
    );

    eprintln!("regenerate");
    s.find("#grace").await.select_by_value("600").await.unwrap();
    s.follow("section[aria-labelledby=regenerate-title] button")
        .await;
    assert_eq!(s.h1().await, "Token regenerated");
    let new_secret = s
        .find("#secret")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(new_secret, secret);
    assert!(
        s.text("main")
            .await
            .contains("previous token keeps working until")
    );
    assert_eq!(s.whoami(&new_secret).await, 200);
    assert_eq!(
        s.whoami(&secret).await,
        200,
        "the old token works during the grace period"
    );
    s.click("a[href$='/download']").await;
    let file = s.downloaded("CI-deploy.token.json").await;
    assert_eq!(file["secret"], new_secret.as_str());
    s.follow("#return").await;

    eprintln!("delete, with the dialog");
    let delete_link = "a[data-delete='CI deploy']";
    s.click(delete_link).await;
    s.wait_until("the dialog opens", || async {
        s.js("return document.getElementById('delete-dialog').open")
            .await
            == Value::Bool(true)
    })
    .await;
    assert_eq!(s.text("#delete-title").await, "Delete “CI deploy”?");
    assert!(
        s.text("#delete-text")
            .await
            .contains("API calls using this token will fail at once")
    );
    assert_eq!(
        s.js("return document.activeElement.hasAttribute('data-cancel')")
            .await,
        true,
        "the safe choice has the focus"
    );
    let backdrop = s
        .js("return getComputedStyle(document.getElementById('delete-dialog'), '::backdrop').backgroundColor")
        .await;
    eprintln!("  backdrop: {backdrop}");
    s.screenshot("console-delete-dialog.png").await;
    s.accessible("delete dialog").await;
    s.click("#delete-dialog [data-cancel]").await;
    assert_eq!(
        s.js("return document.getElementById('delete-dialog').open")
            .await,
        false
    );
    assert!(s.names().await.contains(&"CI deploy".to_owned()));
    // With the keyboard: Enter on the link opens it, Escape closes it and gives the focus back.
    s.js(&format!(
        "document.querySelector(\"{delete_link}\").focus()"
    ))
    .await;
    s.client
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    assert_eq!(
        s.js("return document.getElementById('delete-dialog').open")
            .await,
        true
    );
    s.client
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E00C}")
        .await
        .unwrap();
    s.wait_until("the dialog closes", || async {
        s.js("return document.getElementById('delete-dialog').open")
            .await
            == Value::Bool(false)
    })
    .await;
    assert_eq!(
        s.js("return document.activeElement.getAttribute('data-delete')")
            .await,
        "CI deploy"
    );
    s.click(delete_link).await;
    s.follow("#delete-dialog button.danger").await;
    assert!(
        s.text(".flash-success")
            .await
            .contains("Deleted “CI deploy”")
    );
    assert!(!s.names().await.contains(&"CI deploy".to_owned()));
    assert_eq!(s.whoami(&new_secret).await, 401);
    assert_eq!(s.whoami(&secret).await, 401);

    eprintln!("a form posted from another origin is refused");
    let attacker = serve(Router::new().route(
        "/",
        get({
            let target = format!("{}/new", s.base);
            move || async move {
                axum::response::Html(format!(
                    "<!doctype html><title>win a prize</title><form id=f method=post action='{target}'>\
                     <input name=name value=planted><input name=csrf value=guess></form>\
                     <script>document.getElementById('f').submit()</script>"
                ))
            }
        }),
    ))
    .await;
    s.client.goto(&attacker).await.unwrap();
    s.wait_until("the forged post is answered", || async {
        s.client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&s.base)
    })
    .await;
    assert_eq!(s.h1().await, "Request refused");
    // A same-origin post without the form's token is refused too.
    s.goto("/").await;
    s.js("window.leaving = true; const f = document.createElement('form'); f.method = 'post'; f.action = '/new'; const i = document.createElement('input'); i.name = 'name'; i.value = 'planted'; f.appendChild(i); document.body.appendChild(f); f.submit();").await;
    s.next_page().await;
    assert_eq!(s.h1().await, "Form expired");
    let planted = manager
        .list(
            "default",
            ListOptions {
                query: Some("planted".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(planted.items.iter().all(|r| r.name != "planted"));

    eprintln!("a thousand tokens, another owner");
    let bulk: Vec<NewToken> = (0..1000)
        .map(|i| NewToken::new(format!("service-{i:04} worker")).scopes(["read"]))
        .collect();
    manager.apply_many("bulk", bulk).await.unwrap();
    s.goto("/").await;
    s.fill("#owner-field", "bulk").await;
    s.follow("form.owner-switch button").await;
    assert!(
        s.text(".flash-info")
            .await
            .contains("Showing the tokens of “bulk”")
    );
    assert_eq!(s.names().await.len(), 50);
    let load = s
        .js("return performance.getEntriesByType('navigation')[0].duration")
        .await
        .as_f64()
        .unwrap();
    eprintln!("  the first page of 1000 tokens loaded in {load:.0} ms");
    assert!(load < 1500.0, "{load} ms");
    let started = Instant::now();
    s.click("#more").await;
    s.wait_until("the next page is appended", || async {
        s.names().await.len() == 100
    })
    .await;
    eprintln!(
        "  the next page appended in {} ms",
        started.elapsed().as_millis()
    );
    assert!(s.text("#count").await.starts_with("100 tokens shown"));
    s.search("srvice 0999").await;
    let load = s
        .js("return performance.getEntriesByType('navigation')[0].duration")
        .await
        .as_f64()
        .unwrap();
    eprintln!("  a search over 1000 tokens loaded in {load:.0} ms");
    assert!(load < 1500.0, "{load} ms");
    assert_eq!(
        s.names().await.first().map(String::as_str),
        Some("service-0999 worker")
    );
    s.fill("#owner-field", "default").await;
    s.follow("form.owner-switch button").await;

    eprintln!("phone width, dark appearance");
    s.client.set_window_size(390, 844).await.unwrap();
    s.goto("/").await;
    let overflow = s
        .js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await
        .as_i64()
        .unwrap();
    let wide = s
        .js("return Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))")
        .await;
    assert!(
        overflow <= 0,
        "the page is {overflow} px wider than a phone: {wide}"
    );
    s.accessible("list on a phone").await;
    s.screenshot("console-list-phone.png").await;
    s.client.set_window_size(1280, 900).await.unwrap();
    s.client
        .issue_cmd(Cdp(json!({"cmd": "Emulation.setEmulatedMedia", "params": {
            "features": [{"name": "prefers-color-scheme", "value": "dark"}]
        }})))
        .await
        .unwrap();
    s.goto("/").await;
    assert_eq!(
        s.js("return matchMedia('(prefers-color-scheme: dark)').matches")
            .await,
        true
    );
    s.accessible("list, dark").await;
    s.screenshot("console-list-dark.png").await;
    s.client
        .issue_cmd(Cdp(
            json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": []}}),
        ))
        .await
        .unwrap();

    eprintln!("sign out; a session ends with its admin token");
    s.follow("form[action='/signout'] button").await;
    assert!(s.text(".flash-info").await.contains("signed out"));
    s.goto("/").await;
    assert_eq!(s.path().await, "/signin");
    let second = manager
        .apply(
            "default",
            NewToken::new("second admin").scopes([ADMIN_SCOPE]),
        )
        .await
        .unwrap();
    s.fill("#token", second.token.expose_secret()).await;
    s.follow("button[type=submit].primary").await;
    assert_eq!(s.h1().await, "Tokens");
    manager.delete("default", second.record.id).await.unwrap();
    s.goto("/").await;
    assert_eq!(s.path().await, "/signin");
    assert!(
        s.text(".flash-info")
            .await
            .contains("Your session has ended")
    );
}
