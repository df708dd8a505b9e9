//! What a new user runs into, tried as one would: each test drives the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{binary, on_a_terminal};
use serde_json::Value;
use tollgate_axum::management::{ErrorBody, IssuedView, PageView, TokenView};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("tokens.redb")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `tollgate` in the temporary directory, on its database, with no inherited settings.
    fn cmd(&self) -> std::process::Command {
        let mut cmd = common::tollgate(&self.db());
        cmd.current_dir(self.dir.path())
            .stdin(std::process::Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// Applies and returns (id, secret).
    fn apply(&self, name: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec!["apply", name, "--json"];
        args.extend_from_slice(extra);
        let value = self.json(&args);
        (
            value["id"].as_str().unwrap().to_owned(),
            value["token"].as_str().unwrap().to_owned(),
        )
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file in `dir`, by name.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn commands_that_need_tokens_create_no_store() {
    let env = Env::new();
    let id = "0123456789abcdef0123456789abcdef";
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["show", id],
        &["download", id],
        &["download", id, "-o", "-"],
        &["verify", "tg_nothing"],
        &["modify", id, "--disable"],
        &["delete", id, "--yes"],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let said = stderr(&out);
        assert!(said.contains("no token store at"), "{args:?}: {said}");
        assert!(said.contains("tokens.redb"), "{args:?}: {said}");
        assert_eq!(files(env.dir.path()), Vec::<String>::new(), "{args:?}");
    }
    // In the working directory, as a new user runs it.
    let out = std::process::Command::new(binary())
        .current_dir(env.dir.path())
        .env_remove("TOLLGATE_DB")
        .env_remove("TOLLGATE_DATABASE_URL")
        .env_remove("TOLLGATE_SERVER")
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tollgate.redb"), "{}", stderr(&out));
    assert_eq!(files(env.dir.path()), Vec::<String>::new());
    // apply creates it.
    env.apply("first", &[]);
    assert!(env.db().exists());
    assert!(env.ok(&["list"]).contains("first"));
}

#[test]
fn the_prefix_belongs_to_the_store() {
    let env = Env::new();
    let out = env.json(&["--prefix", "acme", "apply", "first", "--json"]);
    let secret = out["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("acme_"), "{secret}");
    // A later plain command reads the prefix from the store.
    env.ok(&["verify", &secret]);
    let (_, second) = env.apply("second", &[]);
    assert!(second.starts_with("acme_"), "{second}");
    env.ok(&["--prefix", "acme", "list"]);
    // Another prefix is refused, naming the store's.
    for (args, variable) in [
        (&["--prefix", "other", "list"][..], None),
        (&["--prefix", "tg", "apply", "third"], None),
        (&["verify", &secret], Some("other")),
    ] {
        let mut cmd = env.cmd();
        if let Some(value) = variable {
            cmd.env("TOLLGATE_PREFIX", value);
        }
        let out = cmd.args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("\"acme\""), "{}", stderr(&out));
    }
    assert!(!env.ok(&["list"]).contains("third"));
}

#[test]
fn modify_without_a_change_writes_nothing() {
    let env = Env::new();
    let (id, _) = env.apply("unchanged", &[]);
    let before = env.json(&["show", &id, "--json"]);
    for extra in [&[][..], &["--force"], &["--if-version", "1"], &["--json"]] {
        let mut args = vec!["modify", id.as_str()];
        args.extend_from_slice(extra);
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains("nothing to change"),
            "{}",
            stderr(&out)
        );
        assert!(!stdout(&out).contains("Modified"));
    }
    assert_eq!(env.json(&["show", &id, "--json"]), before);
}

#[test]
fn answering_no_at_the_delete_prompt_is_no_error() {
    let env = Env::new();
    let (id, secret) = env.apply("kept", &[]);
    let Some(out) = on_a_terminal(&env.db(), &format!("delete {id}"), "n\n") else {
        eprintln!("skipping: util-linux `script` is not installed");
        return;
    };
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("[y/N]"), "{shown}");
    assert!(shown.contains("Nothing was deleted."), "{shown}");
    assert_eq!(out.status.code(), Some(0), "{shown}");
    env.ok(&["verify", &secret]);
}

#[test]
fn a_commands_help_shows_its_own_options() {
    let env = Env::new();
    let global = [
        "--db",
        "--store",
        "--owner",
        "--prefix",
        "--server",
        "--token-file",
        "TOLLGATE_DB",
    ];
    for command in [
        "apply", "list", "show", "download", "modify", "delete", "verify",
    ] {
        let help = env.ok(&[command, "--help"]);
        for option in global {
            assert!(
                !help.contains(option),
                "`{command} --help` shows {option}:\n{help}"
            );
        }
        assert!(help.contains("--json"), "{command}: {help}");
    }
    let help = env.ok(&["list", "--help"]);
    assert!(
        help.contains("--limit") && help.contains("--cursor"),
        "{help}"
    );
    let help = env.ok(&["serve", "--help"]);
    assert!(help.contains("--addr") && help.contains("--db"), "{help}");
    let help = env.ok(&["--help"]);
    for option in global {
        assert!(help.contains(option), "`--help` lacks {option}:\n{help}");
    }
}

/// The error body a `--json` command printed on standard error.
fn error_body(out: &Output) -> ErrorBody {
    let text = stderr(out);
    serde_json::from_str(text.trim_end())
        .unwrap_or_else(|e| panic!("not an error body ({e}): {text:?}"))
}

#[test]
fn json_errors_are_error_bodies() {
    let env = Env::new();
    let out = env.run(&["list", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(error_body(&out).error.code, "no_store");
    let (id, _) = env.apply("taken", &[]);
    let missing = "0123456789abcdef0123456789abcdef";
    let cases: &[(&[&str], i32, &str)] = &[
        (&["show", missing, "--json"], 1, "not_found"),
        (&["--json", "show", missing], 1, "not_found"),
        (&["apply", "taken", "--json"], 2, "name_taken"),
        (&["apply", "", "--json"], 2, "invalid_name"),
        (&["show", "not-an-id", "--json"], 2, "invalid_id"),
        (&["modify", &id, "--json"], 2, "nothing_to_change"),
        (&["list", "--limit", "many", "--json"], 2, "usage"),
        (&["verify", "tg_nothing", "--json"], 1, "invalid_token"),
        (&["delete", &id, "--json"], 2, "confirmation_required"),
    ];
    for (args, code, error) in cases {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {}", stderr(&out));
        let body = error_body(&out);
        assert_eq!(body.error.code, *error, "{args:?}");
        assert!(!body.error.message.is_empty());
        assert!(!body.error.message.starts_with("error:"), "{args:?}");
    }
    // Without --json, one sentence.
    let out = env.run(&["show", missing]);
    assert!(stderr(&out).starts_with("error: no token with id"));
}

#[test]
fn json_shapes_are_the_management_apis() {
    let env = Env::new();
    let applied = env.json(&["apply", "shaped", "--scope", "read", "--json"]);
    let issued: IssuedView = serde_json::from_value(applied.clone()).unwrap();
    assert_eq!(serde_json::to_value(&issued).unwrap(), applied);
    let id = issued.record.id.to_string();

    let shown = env.json(&["show", &id, "--json"]);
    let view: TokenView = serde_json::from_value(shown.clone()).unwrap();
    assert_eq!(serde_json::to_value(&view).unwrap(), shown);
    let mut keys: Vec<&str> = shown
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "description",
            "enabled",
            "expires_at",
            "grace_until",
            "hint",
            "id",
            "last_used_at",
            "name",
            "owner",
            "scopes",
            "status",
            "updated_at"
        ]
    );
    assert_eq!(shown["status"], "active");

    let listed = env.json(&["list", "--json"]);
    let page: PageView = serde_json::from_value(listed.clone()).unwrap();
    assert_eq!(serde_json::to_value(&page).unwrap(), listed);

    let modified = env.json(&["modify", &id, "--disable", "--json"]);
    assert_eq!(modified["status"], "disabled");
    let _: TokenView = serde_json::from_value(modified).unwrap();
    env.ok(&["modify", &id, "--enable"]);

    let regenerated = env.json(&["modify", &id, "--regenerate", "--grace", "10m", "--json"]);
    let issued: IssuedView = serde_json::from_value(regenerated).unwrap();
    assert_eq!(issued.record.status.as_str(), "grace");
    assert!(issued.record.grace_until.is_some());

    // verify: {"valid": true, "token": TokenView} or {"valid": false, "reason": "…"}.
    let verified = env.json(&["verify", &issued.token, "--json"]);
    assert_eq!(verified["valid"], true);
    assert_eq!(verified.as_object().unwrap().len(), 2, "{verified}");
    let _: TokenView = serde_json::from_value(verified["token"].clone()).unwrap();
    let out = env.run(&["verify", "tg_nothing", "--json"]);
    let failed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(failed["valid"], false);
    assert!(failed["reason"].as_str().unwrap().contains("malformed"));
    assert_eq!(failed.as_object().unwrap().len(), 2, "{failed}");

    // download: {"path": "…", "secret_included": false}.
    let downloaded = env.json(&["download", &id, "--json"]);
    assert_eq!(
        downloaded,
        serde_json::json!({"path": "shaped.token.json", "secret_included": false})
    );
    assert!(env.path("shaped.token.json").exists());

    // delete: {"deleted": "<id>"}.
    let deleted = env.json(&["delete", &id, "--yes", "--json"]);
    assert_eq!(deleted, serde_json::json!({ "deleted": id }));
}

#[test]
fn list_and_show_say_the_time_zone() {
    let env = Env::new();
    let (id, _) = env.apply("zoned", &["--expires-at", "2999-01-01T00:00:00Z"]);
    let list = env.ok(&["list"]);
    assert!(list.contains("2999-01-01 00:00 UTC"), "{list}");
    let show = env.ok(&["show", &id]);
    assert!(show.contains("2999-01-01 00:00 UTC"), "{show}");
}

#[test]
fn the_list_tells_tokens_apart_by_their_hint() {
    let env = Env::new();
    let (_, first) = env.apply("twin-a", &[]);
    let (id, second) = env.apply("twin-b", &[]);
    let list = env.ok(&["list"]);
    let header = list.lines().next().unwrap();
    assert!(header.contains("TOKEN"), "{list}");
    for secret in [&first, &second] {
        let hint = format!("tg_…{}", &secret[secret.len() - 4..]);
        assert!(list.contains(&hint), "{hint} in\n{list}");
        assert!(!list.contains(&secret[3..20]), "no more of the secret");
    }
    let show = env.ok(&["show", &id]);
    assert!(show.contains(&format!("tg_…{}", &second[second.len() - 4..])));
}

#[test]
fn a_store_in_use_names_the_ways_out() {
    let env = Env::new();
    env.apply("first", &[]);
    let _held = tollgate_redb::RedbStore::open(env.db()).unwrap();
    let out = env.run(&["list"]);
    assert_eq!(out.status.code(), Some(3));
    let said = stderr(&out);
    for way in [
        "in use by another process",
        "stop",
        "--server",
        "TOLLGATE_TOKEN",
        "PostgreSQL",
    ] {
        assert!(said.contains(way), "{way}: {said}");
    }
}

#[test]
fn the_readme_says_how_to_install_the_cli() {
    let readme = include_str!("../../../README.md");
    assert!(readme.contains("cargo install --path crates/cli"));
    assert!(readme.contains("cargo run -p tollgate-cli -- serve"));
    assert!(readme.contains("cargo test --workspace --all-features"));
    for text in [
        "--server URL",
        "TOLLGATE_TOKEN",
        "--token-file",
        "\"deleted\"",
        "\"secret_included\"",
        "\"valid\"",
        "\"error\"",
    ] {
        assert!(readme.contains(text), "README lacks {text}");
    }
}
