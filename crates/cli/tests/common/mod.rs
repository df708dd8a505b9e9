//! Running `tollgate serve` as a real process.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

pub struct Server {
    child: Child,
    pub base: String,
    pub admin: Option<String>,
    pub client: Client,
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tollgate"))
}

/// `tollgate` on the redb file `db`, with no inherited settings.
pub fn tollgate(db: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(binary());
    command
        .env_remove("TOLLGATE_OWNER")
        .env_remove("TOLLGATE_PREFIX")
        .env_remove("TOLLGATE_PEPPER")
        .env_remove("TOLLGATE_ENCRYPTION_KEY")
        .env_remove("TOLLGATE_DATABASE_URL")
        .env_remove("TOLLGATE_SERVER")
        .env_remove("TOLLGATE_TOKEN")
        .env("TOLLGATE_DB", db)
        .env("RUST_LOG", "warn");
    command
}

/// Runs `tollgate --db DB ARGS` under a pseudo-terminal (util-linux `script`), feeding
/// `input`; `None` when `script` is not installed. Standard error arrives on standard output.
pub fn on_a_terminal(
    db: &std::path::Path,
    args: &str,
    input: &str,
) -> Option<std::process::Output> {
    use std::io::Write as _;
    let command = format!("{} --db {} {args}", binary().display(), db.display());
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("TOLLGATE_OWNER")
        .env_remove("TOLLGATE_PREFIX")
        .env_remove("TOLLGATE_DATABASE_URL")
        .env_remove("TOLLGATE_SERVER")
        .env_remove("TOLLGATE_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(input.as_bytes()).ok()?;
    child.wait_with_output().ok()
}

/// Runs `command` with its standard output connected to a pipe whose read end is closed
/// before the command starts, as in `tollgate list | true`: every write to standard output
/// fails with a broken pipe. Standard error is captured.
pub fn with_closed_stdout(command: &mut std::process::Command) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    command
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// Asserts that `output` is not a panic: no exit code 101, no "panicked" on standard error.
pub fn assert_no_panic(output: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(101), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

impl Server {
    /// Starts `tollgate serve` on a free port on the redb file `db`; waits until it listens.
    pub async fn start(db: &std::path::Path) -> Self {
        Self::start_with(&["--db".as_ref(), db.as_os_str()]).await
    }

    /// Starts `tollgate serve --addr 127.0.0.1:0` with more arguments.
    pub async fn start_with(args: &[&std::ffi::OsStr]) -> Self {
        let mut child = Command::new(binary())
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .env_remove("TOLLGATE_PEPPER")
            .env_remove("TOLLGATE_ENCRYPTION_KEY")
            .env_remove("TOLLGATE_PREFIX")
            .env_remove("TOLLGATE_DATABASE_URL")
            .env_remove("TOLLGATE_SERVER")
            .env_remove("TOLLGATE_TOKEN")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut admin = None;
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let trimmed = line.trim();
                if trimmed.starts_with("tg_") {
                    admin = Some(trimmed.to_owned());
                }
                if let Some(url) = trimmed.strip_prefix("Tollgate listening on ") {
                    return url.to_owned();
                }
            }
            panic!("the server exited before listening");
        })
        .await
        .expect("the server starts within 30 s");
        Self {
            child,
            base,
            admin,
            client: Client::new(),
        }
    }

    pub fn admin(&self) -> &str {
        self.admin.as_deref().expect("an admin token was printed")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, value)
    }

    pub async fn admin_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, value) = self.send(method, path, Some(self.admin()), body).await;
        (status, value)
    }

    pub async fn apply(&self, body: Value) -> Value {
        let (status, value) = self
            .admin_call(Method::POST, "/api/v1/tokens", Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{value}");
        value
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn terminate(mut self) {
        let pid = self.child.id().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server stops within 30 s")
            .unwrap();
        assert!(exit.success(), "{exit:?}");
    }
}
