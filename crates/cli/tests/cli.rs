//! The real `tollgate` binary, driven end to end.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

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
    fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("tollgate").unwrap();
        cmd.current_dir(self.dir.path())
            .env_remove("TOLLGATE_OWNER")
            .env_remove("TOLLGATE_PREFIX")
            .env_remove("TOLLGATE_PEPPER")
            .env_remove("TOLLGATE_ENCRYPTION_KEY")
            .env_remove("TOLLGATE_DATABASE_URL")
            .env("TOLLGATE_DB", self.db());
        cmd
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.cmd().args(args).arg("--json").assert().success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    }

    /// Applies and returns (id, secret).
    fn apply(&self, name: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec!["apply", name];
        args.extend_from_slice(extra);
        let value = self.json(&args);
        (
            value["id"].as_str().unwrap().to_owned(),
            value["token"].as_str().unwrap().to_owned(),
        )
    }

    fn verify(&self, token: &str) -> assert_cmd::assert::Assert {
        self.cmd().args(["verify", token]).assert()
    }

    fn names(&self, args: &[&str]) -> Vec<String> {
        let mut full = vec!["list"];
        full.extend_from_slice(args);
        self.json(&full)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn apply_prints_the_token_once_and_json_has_every_field() {
    let env = Env::new();
    env.cmd()
        .args(["apply", "CI deploy", "--scope", "deploy"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Issued token \"CI deploy\""))
        .stdout(predicate::str::is_match(r"\n    tg_[0-9A-Za-z]{49}\n").unwrap());
    let value = env.json(&[
        "apply",
        "nightly backup",
        "--description",
        "cron job",
        "--expires-in",
        "30d",
        "--scope",
        "backup:write",
        "--scope",
        "backup:read",
    ]);
    let object = value.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
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
            "token",
            "updated_at"
        ]
    );
    assert_eq!(value["owner"], "default");
    assert_eq!(
        value["scopes"],
        serde_json::json!(["backup:read", "backup:write"])
    );
    assert!(value["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(value["last_used_at"], Value::Null);
    // Only apply and regenerate show the token.
    let shown = env.json(&["show", value["id"].as_str().unwrap()]);
    assert!(shown.get("token").is_none());
    assert_eq!(shown["name"], "nightly backup");
}

#[test]
fn the_database_holds_no_secret() {
    let env = Env::new();
    let (_, secret) = env.apply("hash-only", &[]);
    let bytes = std::fs::read(env.db()).unwrap();
    let needle = &secret.as_bytes()[3..43];
    assert!(!bytes.windows(needle.len()).any(|w| w == needle));
}

#[test]
fn list_searches_fuzzily_and_pages_by_cursor() {
    let env = Env::new();
    for name in [
        "prod-deploy",
        "staging-deploy",
        "billing-service",
        "生产环境密钥",
    ] {
        env.apply(name, &[]);
    }
    assert_eq!(env.names(&["deploy prod"])[0], "prod-deploy");
    assert_eq!(env.names(&["biling servce"]), ["billing-service"]);
    assert_eq!(env.names(&["生产"]), ["生产环境密钥"]);
    assert!(env.names(&["zzqx"]).is_empty());

    let first = env.json(&["list", "--limit", "3"]);
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = env.json(&["list", "--limit", "3", "--cursor", &cursor]);
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_cursor"], Value::Null);
    assert_eq!(second["items"][0]["name"], "prod-deploy", "oldest last");

    env.cmd()
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains("ID").and(predicate::str::contains("生产环境密钥")));
    env.cmd()
        .args(["list", "--limit", "3"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--cursor"));
}

#[test]
fn list_filters_by_status() {
    let env = Env::new();
    let (id, _) = env.apply("switched-off", &[]);
    env.apply("switched-on", &[]);
    env.cmd()
        .args(["modify", &id, "--disable"])
        .assert()
        .success();
    assert_eq!(env.names(&["--disabled"]), ["switched-off"]);
    assert_eq!(env.names(&["--enabled"]), ["switched-on"]);
    assert_eq!(env.names(&["--expired"]), Vec::<String>::new());
    assert_eq!(env.names(&["--active", "--enabled"]), ["switched-on"]);
}

#[test]
fn owners_see_only_their_tokens() {
    let env = Env::new();
    let (id, _) = env.apply("mine", &[]);
    env.cmd()
        .args(["--owner", "someone-else", "apply", "mine"])
        .assert()
        .success();
    let theirs = env.json(&["--owner", "someone-else", "list"]);
    assert_eq!(theirs["items"][0]["name"], "mine");
    assert_eq!(theirs["items"].as_array().unwrap().len(), 1);
    env.cmd()
        .args(["--owner", "someone-else", "show", &id])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no token with id"));
}

#[test]
fn download_writes_a_token_file_without_the_secret() {
    let env = Env::new();
    let (id, secret) = env.apply("CI / deploy: prod", &[]);
    env.cmd()
        .args(["download", &id])
        .assert()
        .success()
        .stdout(predicate::str::contains("CI-deploy-prod.token.json"));
    let path = env.path("CI-deploy-prod.token.json");
    let file = read_json(&path);
    assert_eq!(file["format"], "tollgate-token-file");
    assert_eq!(file["version"], 1);
    assert_eq!(file["secret_included"], false);
    assert_eq!(file["secret"], Value::Null);
    assert!(file["note"].as_str().unwrap().contains("regenerate"));
    assert_eq!(file["token"]["id"], id.as_str());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(&secret));
    assert!(!text.contains("secret_hash"));
    let hex_run = predicate::str::is_match("[0-9a-f]{64}").unwrap();
    assert!(!hex_run.eval(&text), "no hash in the file");

    // No overwrite without --force; the file stays as it was.
    std::fs::write(&path, "keep me").unwrap();
    env.cmd()
        .args(["download", &id])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists; pass --force"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    env.cmd()
        .args(["download", &id, "--force"])
        .assert()
        .success();
    assert_eq!(read_json(&path)["token"]["id"], id.as_str());

    // To standard output.
    let out = env
        .cmd()
        .args(["download", &id, "-o", "-"])
        .assert()
        .success();
    let file: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(file["token"]["name"], "CI / deploy: prod");
}

#[test]
fn the_file_offered_after_apply_and_regenerate_holds_the_secret() {
    let env = Env::new();
    let issued = env.path("issued.json");
    let out = env
        .cmd()
        .args(["apply", "fresh", "-o"])
        .arg(&issued)
        .arg("--json")
        .assert()
        .success();
    let value: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let file = read_json(&issued);
    assert_eq!(file["secret_included"], true);
    assert_eq!(file["secret"], value["token"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&issued).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "a file with a secret is private");
    }
    let id = value["id"].as_str().unwrap();
    let regenerated = env.path("regenerated.json");
    let out = env
        .cmd()
        .args(["modify", id, "--regenerate", "-o"])
        .arg(&regenerated)
        .arg("--json")
        .assert()
        .success();
    let value: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(read_json(&regenerated)["secret"], value["token"]);
    assert_ne!(value["token"], file["secret"]);
}

#[test]
fn apply_with_an_unwritable_output_issues_nothing() {
    let env = Env::new();
    let existing = env.path("exists.json");
    std::fs::write(&existing, "x").unwrap();
    env.cmd()
        .args(["apply", "never", "-o"])
        .arg(&existing)
        .assert()
        .code(2);
    env.cmd()
        .args(["apply", "never", "-o", "/nonexistent-dir/file.json"])
        .assert()
        .code(2);
    // The output is checked first: not even the store was created.
    assert!(!env.db().exists());
    env.apply("first", &[]);
    env.cmd()
        .args(["apply", "never", "-o"])
        .arg(&existing)
        .assert()
        .code(2);
    assert_eq!(env.names(&[]), ["first"]);
}

#[test]
fn modify_changes_fields_and_revocation_is_immediate() {
    let env = Env::new();
    let (id, secret) = env.apply("worker", &["--scope", "a"]);
    let value = env.json(&[
        "modify",
        &id,
        "--name",
        "Worker 2",
        "--description",
        "second",
        "--scope",
        "b",
        "--scope",
        "c",
        "--expires-at",
        "2999-01-01T00:00:00Z",
    ]);
    assert_eq!(value["name"], "Worker 2");
    assert_eq!(value["description"], "second");
    assert_eq!(value["scopes"], serde_json::json!(["b", "c"]));
    assert_eq!(value["expires_at"], "2999-01-01T00:00:00Z");
    let value = env.json(&["modify", &id, "--no-expiry", "--no-scopes"]);
    assert_eq!(value["expires_at"], Value::Null);
    assert_eq!(value["scopes"], serde_json::json!([]));

    env.verify(&secret).success();
    env.cmd()
        .args(["modify", &id, "--disable"])
        .assert()
        .success();
    env.verify(&secret)
        .code(1)
        .stderr(predicate::str::contains("is disabled"));
    env.cmd()
        .args(["modify", &id, "--enable"])
        .assert()
        .success();
    env.verify(&secret).success();

    let new_secret = env.json(&["modify", &id, "--regenerate"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    env.verify(&secret)
        .code(1)
        .stderr(predicate::str::contains("unknown token"));
    env.verify(&new_secret).success();

    // With a grace period the old secret still works for now.
    let newer = env.json(&["modify", &id, "--regenerate", "--grace", "10m"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    env.verify(&new_secret).success();
    env.verify(&newer).success();
}

#[test]
fn modify_rejects_bad_input_and_changes_nothing() {
    let env = Env::new();
    let (id, secret) = env.apply("stable", &[]);
    env.apply("taken", &[]);
    let before = env.json(&["show", &id]);
    let bad: &[&[&str]] = &[
        &["--name", "TAKEN"],
        &["--name", "TAKEN", "--regenerate"],
        &["--name", ""],
        &["--scope", "has space"],
        &["--expires-at", "2001-01-01T00:00:00Z"],
        &["--expires-in", "soon"],
        &["--expires-in", "1d", "--no-expiry"],
        &["--enable", "--disable"],
        &["--grace", "5m"],
        &["--regenerate", "--grace", "90d"],
        &["--if-version", "7", "--description", "x"],
    ];
    for args in bad {
        env.cmd()
            .args(["modify", &id])
            .args(*args)
            .assert()
            .code(2)
            .stderr(predicate::str::starts_with("error:").or(predicate::str::contains("Usage")));
    }
    assert_eq!(env.json(&["show", &id]), before);
    env.verify(&secret).success();
    env.cmd()
        .args(["modify", "0123456789abcdef0123456789abcdef", "--disable"])
        .assert()
        .code(1);
}

#[test]
fn bad_input_is_refused_with_exit_code_2() {
    let env = Env::new();
    env.apply("seed", &[]);
    let cases: &[(&[&str], &str)] = &[
        (&["apply", ""], "it is empty"),
        (&["apply", "   "], "it is empty"),
        (&["apply", "tab\there"], "control character U+0009"),
        (
            &["apply", "zero\u{200B}width"],
            "invisible formatting character U+200B",
        ),
        (&["apply", &"x".repeat(101)], "at most 100 are allowed"),
        (&["apply", "ok", "--scope", "a\"b"], "invalid scope"),
        (&["apply", "ok", "--expires-in=-3d"], "must be positive"),
        (
            &["apply", "ok", "--expires-in", "2 months"],
            "not months or years",
        ),
        (&["apply", "ok", "--expires-at", "yesterday"], "RFC 3339"),
        (
            &["apply", "ok", "--expires-at", "2001-01-01T00:00:00Z"],
            "not in the future",
        ),
        (
            &["apply", "ok", "--description", "bell\u{7}"],
            "invalid description",
        ),
        (&["list", "--limit", "0"], "between 1 and 1000"),
        (&["list", "--limit", "many"], "invalid value"),
        (
            &["list", "--cursor", "garbage"],
            "invalid pagination cursor",
        ),
        (&["show", "not-an-id"], "invalid token id"),
        (&["--prefix", "Bad Prefix", "list"], "invalid token prefix"),
        (&["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, message) in cases {
        env.cmd()
            .args(*args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(*message));
    }
    // Nothing was issued by any of them.
    assert_eq!(env.names(&[]), ["seed"]);
    env.apply("Deploy", &[]);
    env.cmd()
        .args(["apply", "deploy"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists"));
}

#[test]
fn a_bad_prefix_creates_no_database() {
    let env = Env::new();
    env.cmd()
        .args(["--prefix", "UPPER", "list"])
        .assert()
        .code(2);
    assert!(!env.db().exists());
}

#[test]
fn delete_asks_and_refuses_without_a_terminal() {
    let env = Env::new();
    let (id, secret) = env.apply("doomed", &[]);
    env.cmd()
        .args(["delete", &id])
        .write_stdin("y\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("pass --yes"));
    env.verify(&secret).success();
    env.cmd()
        .args(["delete", &id, "--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Deleted token \"doomed\""));
    env.verify(&secret)
        .code(1)
        .stderr(predicate::str::contains("unknown token"));
    env.cmd().args(["show", &id]).assert().code(1);
    env.cmd().args(["delete", &id, "--yes"]).assert().code(1);
}

#[test]
fn verify_reads_stdin_and_reports_why() {
    let env = Env::new();
    let (id, secret) = env.apply("checked", &["--scope", "read"]);
    env.cmd()
        .arg("verify")
        .write_stdin(format!("{secret}\n"))
        .assert()
        .success()
        .stdout(predicate::str::contains(&id).and(predicate::str::contains("read")))
        .stdout(predicate::str::contains(&secret).not());
    let out = env
        .cmd()
        .args(["verify", "--json"])
        .write_stdin(secret.clone())
        .assert()
        .success();
    let value: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(value["valid"], true);
    assert_eq!(value["token"]["id"], id.as_str());
    // The use was recorded.
    assert!(env.json(&["show", &id])["last_used_at"].is_string());

    let mut typo = secret.into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    env.verify(&typo)
        .code(1)
        .stderr(predicate::str::contains("checksum"));
    env.verify("hello")
        .code(1)
        .stderr(predicate::str::contains("malformed"));
    let out = env
        .cmd()
        .args(["verify", "hello", "--json"])
        .assert()
        .code(1);
    let value: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(value["valid"], false);
    env.cmd()
        .arg("verify")
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no token given"));
}

#[test]
fn secrets_do_not_leak_into_errors() {
    let env = Env::new();
    let (_, secret) = env.apply("quiet", &[]);
    // A secret pasted where an id belongs is not repeated.
    for command in ["show", "download", "delete"] {
        let out = env.cmd().args([command, &secret]).assert().code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(stderr.contains("invalid token id"), "{stderr}");
        assert!(!stderr.contains(&secret[3..]), "{stderr}");
    }
    let wrong_prefix = format!("xx{}", &secret[2..]);
    let out = env.verify(&wrong_prefix).code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(!stderr.contains(&secret[3..]), "{stderr}");
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let env = Env::new();
    let path = env.path("notes.txt");
    std::fs::write(&path, "my notes\n".repeat(100)).unwrap();
    env.cmd()
        .arg("--db")
        .arg(&path)
        .args(["apply", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a Tollgate token database"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "my notes\n".repeat(100)
    );
}

#[test]
fn a_database_held_by_another_process_is_reported() {
    let env = Env::new();
    env.apply("first", &[]);
    let _held = tollgate_redb::RedbStore::open(env.db()).unwrap();
    env.cmd()
        .arg("list")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("in use by another process"));
}

#[test]
fn the_database_defaults_to_the_working_directory() {
    let env = Env::new();
    let mut cmd = Command::cargo_bin("tollgate").unwrap();
    cmd.current_dir(env.dir.path())
        .env_remove("TOLLGATE_DB")
        .args(["apply", "here"])
        .assert()
        .success();
    assert!(env.path("tollgate.redb").exists());
}

#[test]
fn a_pepper_and_a_prefix_shape_tokens() {
    let env = Env::new();
    let out = env
        .cmd()
        .env("TOLLGATE_PEPPER", "a pepper of sixteen bytes or more")
        .args(["--prefix", "acme", "apply", "peppered", "--json"])
        .assert()
        .success();
    let value: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let secret = value["token"].as_str().unwrap();
    assert!(secret.starts_with("acme_"));
    env.cmd()
        .env("TOLLGATE_PEPPER", "a pepper of sixteen bytes or more")
        .args(["--prefix", "acme", "verify", secret])
        .assert()
        .success();
    // Without the pepper the hash differs: the token is unknown.
    env.cmd()
        .args(["--prefix", "acme", "verify", secret])
        .assert()
        .code(1);
    env.cmd()
        .env("TOLLGATE_PEPPER", "short")
        .arg("list")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("TOLLGATE_PEPPER"));
}

#[test]
fn recoverable_mode_downloads_the_secret_again() {
    let env = Env::new();
    let key = "7f".repeat(32);
    let out = env
        .cmd()
        .env("TOLLGATE_ENCRYPTION_KEY", &key)
        .args(["apply", "kept", "--json"])
        .assert()
        .success();
    let value: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let id = value["id"].as_str().unwrap();
    let out = env
        .cmd()
        .env("TOLLGATE_ENCRYPTION_KEY", &key)
        .args(["download", id, "-o", "-"])
        .assert()
        .success();
    let file: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(file["secret"], value["token"]);
    env.cmd()
        .env("TOLLGATE_ENCRYPTION_KEY", "nothex")
        .arg("list")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("TOLLGATE_ENCRYPTION_KEY"));
}

#[test]
fn delete_on_a_terminal_asks_first() {
    let env = Env::new();
    let (id, secret) = env.apply("asked", &[]);
    let Some(out) = common::on_a_terminal(&env.db(), &format!("delete {id}"), "n\n") else {
        eprintln!("skipping: util-linux `script` is not installed");
        return;
    };
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("cannot be restored. [y/N]"), "{shown}");
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("Nothing was deleted."), "{shown}");
    env.verify(&secret).success();

    let out = common::on_a_terminal(&env.db(), &format!("delete {id}"), "y\n").unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("Deleted token \"asked\""), "{shown}");
    env.verify(&secret).code(1);
}

#[test]
fn an_invalid_owner_or_search_query_exits_2() {
    let env = Env::new();
    let (id, _) = env.apply("mine", &[]);
    let query = "q".repeat(300);
    let cases: &[(&[&str], &str)] = &[
        (&["--owner", "", "list"], "invalid owner: it is empty"),
        (&["--owner", "   ", "list"], "invalid owner: it is empty"),
        (&["--owner", "a\u{1}b", "list"], "invalid owner"),
        (&["--owner", "", "show", &id], "invalid owner"),
        (&["--owner", "", "delete", &id, "--yes"], "invalid owner"),
        (
            &["list", &query],
            "invalid search query: it is longer than 200 characters",
        ),
        (&["list", "tab\tquery"], "invalid search query"),
    ];
    for (args, message) in cases {
        env.cmd()
            .args(*args)
            .assert()
            .code(2)
            .stderr(predicate::str::starts_with("error: ").and(predicate::str::contains(*message)));
    }
    assert_eq!(env.names(&[]), ["mine"]);
}

#[test]
fn the_last_admin_token_is_protected_unless_forced() {
    let env = Env::new();
    let (admin, secret) = env.apply("admin", &["--scope", "tollgate:admin"]);
    let refused = "refused: this is the last enabled token with the scope \"tollgate:admin\"";
    for args in [
        &["delete", &admin, "--yes"][..],
        &["modify", &admin, "--disable"],
        &["modify", &admin, "--no-scopes"],
        &["modify", &admin, "--scope", "read"],
        &["modify", &admin, "--scope", "read", "--regenerate"],
    ] {
        env.cmd()
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(refused));
    }
    env.verify(&secret).success();
    let shown = env.json(&["show", &admin]);
    assert_eq!(shown["enabled"], true);
    assert_eq!(shown["scopes"], serde_json::json!(["tollgate:admin"]));
    // What keeps it an enabled admin token is allowed.
    env.cmd()
        .args(["modify", &admin, "--description", "the first admin"])
        .assert()
        .success();
    // Tokens without the scope are not protected.
    let (plain, _) = env.apply("plain", &[]);
    env.cmd()
        .args(["delete", &plain, "--yes"])
        .assert()
        .success();

    // Another admin token: the first is no longer the last.
    let (second, _) = env.apply("second admin", &["--scope", "tollgate:admin"]);
    env.cmd()
        .args(["modify", &admin, "--disable"])
        .assert()
        .success();
    env.cmd()
        .args(["delete", &second, "--yes"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(refused));
    // Forced, it goes through.
    env.cmd()
        .args(["delete", &second, "--yes", "--force"])
        .assert()
        .success();
    env.cmd()
        .args(["modify", &admin, "--enable"])
        .assert()
        .success();
    env.cmd()
        .args(["modify", &admin, "--no-scopes"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(refused));
    env.cmd()
        .args(["modify", &admin, "--no-scopes", "--force"])
        .assert()
        .success();
    assert_eq!(env.json(&["show", &admin])["scopes"], serde_json::json!([]));

    // The flags are documented, with their warning.
    for command in ["delete", "modify"] {
        env.cmd()
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("--force").and(predicate::str::contains("lock")));
    }
}
