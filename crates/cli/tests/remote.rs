//! `tollgate --server URL`: every command through the management API of a running
//! `tollgate serve`, with the same output and exit codes as on a local store.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{Server, binary};
use regex::Regex;
use serde_json::Value;

/// Where a command runs: on a redb file, or through a server.
enum Place {
    Local { db: PathBuf },
    Remote { url: String, token: String },
}

/// One side of the comparison: a working directory (for token files), the ids and secrets
/// of the tokens issued there by name.
struct World {
    dir: tempfile::TempDir,
    place: Place,
    ids: HashMap<String, String>,
    secrets: HashMap<String, String>,
}

fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir)
        .env_remove("TOLLGATE_OWNER")
        .env_remove("TOLLGATE_PREFIX")
        .env_remove("TOLLGATE_PEPPER")
        .env_remove("TOLLGATE_ENCRYPTION_KEY")
        .env_remove("TOLLGATE_DATABASE_URL")
        .env_remove("TOLLGATE_DB")
        .env_remove("TOLLGATE_SERVER")
        .env_remove("TOLLGATE_TOKEN")
        .env("RUST_LOG", "warn");
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl World {
    fn new(place: Place) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            place,
            ids: HashMap::new(),
            secrets: HashMap::new(),
        }
    }

    fn cmd(&self) -> Command {
        let mut cmd = command(self.dir.path());
        // The admin token the server is called with is the default owner's: its last use,
        // which only the server records, stays out of the lists compared.
        cmd.env("TOLLGATE_OWNER", "work");
        match &self.place {
            Place::Local { db } => {
                cmd.arg("--db").arg(db);
            }
            Place::Remote { url, token } => {
                cmd.args(["--server", url]).env("TOLLGATE_TOKEN", token);
            }
        }
        cmd
    }

    /// `{id:NAME}` and `{secret:NAME}` replaced by what this world knows.
    fn expand(&self, arg: &str) -> String {
        let mut text = arg.to_owned();
        for (name, id) in &self.ids {
            text = text.replace(&format!("{{id:{name}}}"), id);
        }
        for (name, secret) in &self.secrets {
            text = text.replace(&format!("{{secret:{name}}}"), secret);
        }
        assert!(
            !text.contains("{id:") && !text.contains("{secret:"),
            "unknown: {text}"
        );
        text
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write as _;
        let args: Vec<String> = args.iter().map(|a| self.expand(a)).collect();
        let mut child = self
            .cmd()
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Remembers the id and secret a successful apply or regeneration printed.
    fn learn(&mut self, args: &[&str], out: &Output) {
        if !out.status.success() {
            return;
        }
        let text = stdout(out);
        let Some(secret) = secret_pattern().find(&text) else {
            return;
        };
        let name = match args {
            ["apply", name, ..] => (*name).to_owned(),
            ["modify", id, ..] => id
                .strip_prefix("{id:")
                .and_then(|rest| rest.strip_suffix('}'))
                .unwrap()
                .to_owned(),
            _ => return,
        };
        if args[0] == "apply" {
            let id = Regex::new(r"\b[0-9a-f]{32}\b")
                .unwrap()
                .find(&text)
                .unwrap();
            self.ids.insert(name.clone(), id.as_str().to_owned());
        }
        self.secrets.insert(name, secret.as_str().to_owned());
    }
}

fn secret_pattern() -> Regex {
    Regex::new(r"\b[a-z][a-z0-9]*_[0-9A-Za-z]{49}\b").unwrap()
}

/// Text with what differs between two equivalent stores replaced: ids (numbered by first
/// appearance), secrets, hints, times and cursors.
fn normalise(text: &str) -> String {
    let mut ids: HashMap<String, usize> = HashMap::new();
    let text = Regex::new(r"\b[0-9a-f]{32}\b")
        .unwrap()
        .replace_all(text, |c: &regex::Captures<'_>| {
            let next = ids.len() + 1;
            let n = *ids.entry(c[0].to_owned()).or_insert(next);
            format!("<id{n:02}{}>", " ".repeat(32 - 6))
        })
        .into_owned();
    let rules = [
        (r"\b[a-z][a-z0-9]*_[0-9A-Za-z]{49}\b", "<secret>"),
        (r"…[0-9A-Za-z]{4}\b", "…HINT"),
        (r#""hint": "[0-9A-Za-z]{4}""#, r#""hint": "HINT""#),
        (
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
            "<rfc3339>",
        ),
        (
            r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? UTC",
            "YYYY-MM-DD HH:MM UTC",
        ),
        (r"--cursor \S+", "--cursor CURSOR"),
        (r#""next_cursor": "[^"]+""#, r#""next_cursor": "CURSOR""#),
    ];
    let mut text = text;
    for (pattern, replacement) in rules {
        text = Regex::new(pattern)
            .unwrap()
            .replace_all(&text, replacement)
            .into_owned();
    }
    text
}

/// A step: its arguments, what it reads on standard input, whether its standard error
/// (and the reason a verification failed) must match too, and a file it writes whose
/// content must match.
struct Step {
    args: &'static [&'static str],
    stdin: Option<&'static str>,
    same_stderr: bool,
    file: Option<&'static str>,
}

const fn step(args: &'static [&'static str]) -> Step {
    Step {
        args,
        stdin: None,
        same_stderr: true,
        file: None,
    }
}

/// A store with one admin token, and a copy of it a server holds.
async fn two_equivalent_stores() -> (tempfile::TempDir, PathBuf, Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local.redb");
    let out = command(dir.path())
        .arg("--db")
        .arg(&local)
        .args(["apply", "admin", "--scope", "tollgate:admin", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let admin: Value = serde_json::from_slice(&out.stdout).unwrap();
    let admin = admin["token"].as_str().unwrap().to_owned();
    let served = dir.path().join("served.redb");
    std::fs::copy(&local, &served).unwrap();
    let server = Server::start(&served).await;
    assert!(server.admin.is_none(), "the store was not empty");
    (dir, local, server, admin)
}

#[tokio::test]
async fn every_command_answers_alike_through_the_server() {
    let (_dir, db, server, admin) = two_equivalent_stores().await;
    let mut local = World::new(Place::Local { db });
    let mut remote = World::new(Place::Remote {
        url: server.base.clone(),
        token: admin.clone(),
    });

    let steps = [
        step(&["apply", "work admin", "--scope", "tollgate:admin"]),
        step(&[
            "apply",
            "CI deploy",
            "--scope",
            "deploy",
            "--expires-in",
            "90d",
        ]),
        step(&["apply", "CI deploy"]),
        step(&["apply", "ci DEPLOY", "--json"]),
        step(&["apply", ""]),
        step(&["apply", "bad scope", "--scope", "a b"]),
        step(&["apply", "past", "--expires-at", "2001-01-01T00:00:00Z"]),
        step(&[
            "apply",
            "nightly backup",
            "--description",
            "cron",
            "--scope",
            "backup:read",
            "--scope",
            "backup:write",
            "--json",
        ]),
        Step {
            file: Some("issued.json"),
            ..step(&["apply", "with file", "-o", "issued.json"])
        },
        step(&["apply", "生产环境密钥"]),
        step(&["list"]),
        step(&["list", "deply"]),
        step(&["list", "--json"]),
        step(&["list", "--limit", "2"]),
        step(&["list", "--limit", "2", "--json"]),
        step(&["list", "--limit", "0"]),
        step(&["list", "--cursor", "garbage"]),
        step(&["list", "zzqx"]),
        step(&["list", "--disabled"]),
        step(&["--owner", "someone-else", "list"]),
        step(&["--owner", "", "list"]),
        step(&["show", "{id:CI deploy}"]),
        step(&["show", "{id:nightly backup}", "--json"]),
        step(&["show", "0123456789abcdef0123456789abcdef"]),
        step(&["show", "0123456789abcdef0123456789abcdef", "--json"]),
        step(&["show", "not-an-id"]),
        step(&["--owner", "someone-else", "show", "{id:CI deploy}"]),
        step(&[
            "modify",
            "{id:nightly backup}",
            "--description",
            "the nightly job",
        ]),
        step(&["modify", "{id:nightly backup}", "--disable", "--json"]),
        step(&["list", "--disabled"]),
        step(&[
            "modify",
            "{id:nightly backup}",
            "--enable",
            "--scope",
            "backup:read",
            "--no-expiry",
        ]),
        step(&["modify", "{id:nightly backup}"]),
        step(&["modify", "{id:nightly backup}", "--name", "ci deploy"]),
        step(&[
            "modify",
            "{id:nightly backup}",
            "--expires-at",
            "2001-01-01T00:00:00Z",
        ]),
        step(&[
            "modify",
            "{id:nightly backup}",
            "--if-version",
            "99",
            "--description",
            "x",
        ]),
        step(&[
            "modify",
            "{id:nightly backup}",
            "--if-version",
            "4",
            "--description",
            "versioned",
        ]),
        step(&["modify", "0123456789abcdef0123456789abcdef", "--disable"]),
        step(&["modify", "{id:work admin}", "--disable"]),
        step(&["modify", "{id:work admin}", "--no-scopes"]),
        step(&["show", "{id:nightly backup}"]),
        step(&["modify", "{id:CI deploy}", "--regenerate", "--grace", "10m"]),
        step(&["modify", "{id:nightly backup}", "--regenerate", "--json"]),
        Step {
            file: Some("regenerated.json"),
            ..step(&[
                "modify",
                "{id:with file}",
                "--name",
                "with file 2",
                "--regenerate",
                "-o",
                "regenerated.json",
            ])
        },
        step(&["modify", "{id:with file}", "--regenerate", "--grace", "90d"]),
        step(&["show", "{id:CI deploy}", "--json"]),
        step(&["list"]),
        Step {
            file: Some("CI-deploy.token.json"),
            ..step(&["download", "{id:CI deploy}"])
        },
        step(&["download", "{id:CI deploy}"]),
        Step {
            file: Some("nightly.json"),
            ..step(&[
                "download",
                "{id:nightly backup}",
                "-o",
                "nightly.json",
                "--json",
            ])
        },
        step(&["download", "{id:nightly backup}", "-o", "-"]),
        Step {
            file: Some("生产环境密钥.token.json"),
            ..step(&["download", "{id:生产环境密钥}"])
        },
        step(&["download", "0123456789abcdef0123456789abcdef"]),
        step(&["verify", "{secret:nightly backup}", "--json"]),
        step(&["verify", "{secret:CI deploy}"]),
        Step {
            stdin: Some("{secret:with file}\n"),
            ..step(&["verify"])
        },
        step(&["verify", "tg_nothing"]),
        step(&["verify", "tg_nothing", "--json"]),
        step(&["verify"]),
        step(&["delete", "{id:nightly backup}", "--yes"]),
        Step {
            same_stderr: false,
            ..step(&["verify", "{secret:nightly backup}"])
        },
        Step {
            same_stderr: false,
            ..step(&["verify", "{secret:nightly backup}", "--json"])
        },
        step(&["delete", "{id:nightly backup}", "--yes"]),
        step(&["delete", "{id:CI deploy}"]),
        step(&["delete", "{id:CI deploy}", "--yes", "--json"]),
        step(&["delete", "{id:work admin}", "--yes"]),
        step(&["delete", "{id:work admin}", "--yes", "--json"]),
        // (Not the list again: a local verify records the use at once, a server within 10 s.)
        step(&["list", "--disabled", "--json"]),
    ];
    let reason = Regex::new(r#""reason": "[^"]*""#).unwrap();
    let mut codes = std::collections::BTreeSet::new();
    for step in &steps {
        let stdin_local = step.stdin.map(|s| local.expand(s));
        let stdin_remote = step.stdin.map(|s| remote.expand(s));
        let here = local.run(step.args, stdin_local.as_deref());
        let there = remote.run(step.args, stdin_remote.as_deref());
        local.learn(step.args, &here);
        remote.learn(step.args, &there);
        let what = format!(
            "{:?}\n--- local: {}\n{}\n--- server: {}\n{}",
            step.args,
            stdout(&here),
            stderr(&here),
            stdout(&there),
            stderr(&there)
        );
        assert_eq!(here.status.code(), there.status.code(), "{what}");
        codes.insert(here.status.code().unwrap_or(-1));
        let answer = |out: &Output| {
            let text = normalise(&stdout(out));
            if step.same_stderr {
                return text;
            }
            // The server does not say why it refused a token.
            reason
                .replace_all(&text, r#""reason": "REASON""#)
                .into_owned()
        };
        assert_eq!(answer(&here), answer(&there), "{what}");
        if step.same_stderr {
            assert_eq!(
                normalise(&stderr(&here)),
                normalise(&stderr(&there)),
                "{what}"
            );
        }
        if let Some(file) = step.file {
            let read = |world: &World| {
                normalise(&std::fs::read_to_string(world.dir.path().join(file)).unwrap())
            };
            assert_eq!(read(&local), read(&remote), "{what}");
        }
    }
    // Every kind of answer was compared.
    assert!(codes.is_superset(&[0, 1, 2].into()), "{codes:?}");
    server.terminate().await;
}

#[tokio::test]
async fn the_admin_token_comes_from_the_environment_or_a_file() {
    let (dir, _db, server, admin) = two_equivalent_stores().await;
    let cmd = || {
        let mut cmd = command(dir.path());
        cmd.args(["--server", &server.base]);
        cmd
    };
    // None at all.
    let out = cmd().arg("list").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("TOLLGATE_TOKEN"), "{}", stderr(&out));
    // The environment, and TOLLGATE_SERVER instead of --server.
    let out = command(dir.path())
        .env("TOLLGATE_SERVER", &server.base)
        .env("TOLLGATE_TOKEN", &admin)
        .args(["apply", "from env", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // A file with the token on a line.
    let plain = dir.path().join("admin.txt");
    std::fs::write(&plain, format!("{admin}\n")).unwrap();
    let out = cmd()
        .arg("--token-file")
        .arg(&plain)
        .args([
            "apply",
            "second admin",
            "--scope",
            "tollgate:admin",
            "-o",
            "second.json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // A token file, as apply -o writes it.
    let out = cmd()
        .arg("--token-file")
        .arg(dir.path().join("second.json"))
        .arg("list")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("from env"));
    // A token file without its secret cannot authenticate.
    let out = cmd()
        .arg("--token-file")
        .arg(&plain)
        .args(["list", "from env", "--json"])
        .output()
        .unwrap();
    let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = cmd()
        .arg("--token-file")
        .arg(&plain)
        .args(["download", &id, "-o", "plain.json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cmd()
        .arg("--token-file")
        .arg(dir.path().join("plain.json"))
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no secret"), "{}", stderr(&out));
    // A missing file.
    let out = cmd()
        .args(["--token-file", "/nonexistent/admin.txt", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/admin.txt"));
    server.terminate().await;
}

#[tokio::test]
async fn the_server_refusing_the_token_exits_2() {
    let (dir, _db, server, admin) = two_equivalent_stores().await;
    let run = |token: &str, args: &[&str]| {
        command(dir.path())
            .args(["--server", &server.base])
            .env("TOLLGATE_TOKEN", token)
            .args(args)
            .output()
            .unwrap()
    };
    // Well-formed but unknown.
    let unknown = "tg_0000000000000000000000000000000000000000000000000";
    let out = run(unknown, &["list"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did not accept the admin token"),
        "{}",
        stderr(&out)
    );
    let out = run(unknown, &["list", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let body: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(body["error"]["code"], "invalid_token", "{body}");
    // Valid, without the admin scope.
    let out = run(&admin, &["apply", "reader", "--scope", "read", "--json"]);
    assert!(out.status.success());
    let reader: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reader = reader["token"].as_str().unwrap();
    let out = run(reader, &["list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tollgate:admin"), "{}", stderr(&out));
    // verify needs no more than the token it checks… but the admin token reads its record.
    let out = run(&admin, &["verify", reader]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("valid: token \"reader\""));
    server.terminate().await;
}

#[tokio::test]
async fn an_unreachable_server_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    for args in [
        &["list"][..],
        &["verify", "tg_nothing"],
        &["show", "0123456789abcdef0123456789abcdef"],
    ] {
        let out = command(dir.path())
            .args(["--server", &url])
            .env(
                "TOLLGATE_TOKEN",
                "tg_0000000000000000000000000000000000000000000000000",
            )
            .args(args)
            .output()
            .unwrap();
        if args[0] == "verify" {
            // A malformed token is told without asking anyone.
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            continue;
        }
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
        assert!(stderr(&out).contains(&url), "{}", stderr(&out));
    }
}

#[tokio::test]
async fn a_server_and_a_store_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let token = "tg_0000000000000000000000000000000000000000000000000";
    for args in [
        &["--server", "http://127.0.0.1:1", "--db", "x.redb", "list"][..],
        &[
            "--server",
            "http://127.0.0.1:1",
            "--store",
            "postgres://x/y",
            "list",
        ],
        &["--server", "http://127.0.0.1:1", "--prefix", "acme", "list"],
        &["--server", "http://127.0.0.1:1", "serve"],
        &["--server", "https://tokens.example/", "list"],
        &["--server", "not a url", "list"],
        &["--token-file", "x", "list"],
    ] {
        let out = command(dir.path())
            .env("TOLLGATE_TOKEN", token)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with("error: "),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[tokio::test]
async fn the_cli_works_next_to_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tokens.redb");
    // A store made with another prefix: the server issues with it too.
    let out = command(dir.path())
        .arg("--db")
        .arg(&db)
        .args([
            "--prefix",
            "acme",
            "apply",
            "admin",
            "--scope",
            "tollgate:admin",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let admin: Value = serde_json::from_slice(&out.stdout).unwrap();
    let admin = admin["token"].as_str().unwrap().to_owned();
    let server = Server::start(&db).await;

    // The file is held: the error says what to do instead.
    let out = command(dir.path())
        .arg("--db")
        .arg(&db)
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("--server"), "{}", stderr(&out));

    // A second server on the same file cannot start, and says why.
    let out = command(dir.path())
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("PostgreSQL"), "{}", stderr(&out));

    let through = |args: &[&str]| {
        command(dir.path())
            .env("TOLLGATE_SERVER", &server.base)
            .env("TOLLGATE_TOKEN", &admin)
            .env("TOLLGATE_DB", &db)
            .args(args)
            .output()
            .unwrap()
    };
    let out = through(&["apply", "next to serve", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let issued: Value = serde_json::from_slice(&out.stdout).unwrap();
    let secret = issued["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("acme_"), "{secret}");
    let out = through(&["verify", &secret]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = through(&["list"]);
    assert!(stdout(&out).contains("acme_…"), "{}", stdout(&out));
    server.terminate().await;

    // Stopped, the plain CLI verifies the token with the store's prefix.
    let out = command(dir.path())
        .arg("--db")
        .arg(&db)
        .args(["verify", &secret])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}
