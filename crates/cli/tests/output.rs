//! What the CLI does when its standard output cannot be written: a closed pipe
//! (`tollgate list | true`) or a full disk (`> /dev/full`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{assert_no_panic, tollgate, with_closed_stdout};
use serde_json::Value;

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tokens.redb");
    (dir, db)
}

/// Runs `tollgate ARGS` normally and returns its JSON output.
fn json(db: &Path, args: &[&str]) -> Value {
    let out = tollgate(db).args(args).arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Applies and returns (id, secret).
fn apply(db: &Path, name: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["apply", name];
    args.extend_from_slice(extra);
    let value = json(db, &args);
    (
        value["id"].as_str().unwrap().to_owned(),
        value["token"].as_str().unwrap().to_owned(),
    )
}

fn names(db: &Path) -> Vec<String> {
    json(db, &["list"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap().to_owned())
        .collect()
}

fn verifies(db: &Path, secret: &str) -> bool {
    let out = tollgate(db).args(["verify", secret]).output().unwrap();
    out.status.success()
}

fn closed(db: &Path, args: &[&str]) -> Output {
    let out = with_closed_stdout(tollgate(db).args(args));
    assert_no_panic(&out);
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `tollgate ARGS > /dev/full`: every write fails with "no space left on device".
fn to_dev_full(db: &Path, args: &[&str]) -> Option<Output> {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .ok()?;
    let out = tollgate(db)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(full)
        .output()
        .unwrap();
    assert_no_panic(&out);
    Some(out)
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let (_dir, db) = temp_db();
    for i in 0..30 {
        apply(&db, &format!("token {i}"), &[]);
    }
    let (id, secret) = apply(&db, "watched", &["--scope", "read"]);
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["list", "tokn"],
        &["show", &id],
        &["show", &id, "--json"],
        &["download", &id, "-o", "-"],
        &["verify", &secret],
        &["verify", &secret, "--json"],
        &["--help"],
        &["list", "--help"],
    ] {
        let out = closed(&db, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}: nothing to say");
    }
    // A failed verification still says so by its exit code.
    let out = closed(&db, &["verify", "tg_nothing", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // A change that shows no secret is made; its confirmation is simply not read.
    let out = closed(&db, &["modify", &id, "--description", "changed"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&db, &["show", &id])["description"], "changed");
    let out = closed(&db, &["delete", &id, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!verifies(&db, &secret));
}

#[test]
fn a_full_disk_is_an_error_for_a_read_only_command() {
    let (_dir, db) = temp_db();
    apply(&db, "one", &[]);
    let Some(out) = to_dev_full(&db, &["list"]) else {
        eprintln!("skipping: no /dev/full");
        return;
    };
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot write to standard output"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn apply_whose_secret_cannot_be_shown_issues_nothing() {
    let (_dir, db) = temp_db();
    for (name, extra) in [("plain", &[][..]), ("as json", &["--json"][..])] {
        let mut args = vec!["apply", name, "--scope", "tollgate:admin"];
        args.extend_from_slice(extra);
        let out = closed(&db, &args);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        let message = stderr(&out);
        assert!(message.contains("could not be written"), "{message}");
        assert!(message.contains("deleted"), "{message}");
        assert!(
            !message.contains("tg_"),
            "no secret on standard error: {message}"
        );
    }
    assert!(names(&db).is_empty(), "{:?}", names(&db));
    if let Some(out) = to_dev_full(&db, &["apply", "full"]) {
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(names(&db).is_empty(), "{:?}", names(&db));
    }
}

#[test]
fn apply_keeps_the_token_when_its_file_holds_the_secret() {
    let (dir, db) = temp_db();
    let file = dir.path().join("kept.token.json");
    let out = closed(&db, &["apply", "kept", "-o", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(file.to_str().unwrap()),
        "says where the secret is: {}",
        stderr(&out)
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(verifies(&db, saved["secret"].as_str().unwrap()));
    assert_eq!(names(&db), ["kept"]);
}

#[test]
fn a_regenerated_secret_that_cannot_be_shown_is_reported() {
    let (dir, db) = temp_db();
    let (id, old) = apply(&db, "rotated", &[]);
    for extra in [&[][..], &["--json"]] {
        let mut args = vec!["modify", &id, "--regenerate"];
        args.extend_from_slice(extra);
        let out = closed(&db, &args);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        let message = stderr(&out);
        assert!(message.contains("could not be written"), "{message}");
        assert!(message.contains("regenerate"), "{message}");
        assert!(message.contains(&id), "{message}");
        assert!(
            !message.contains("tg_"),
            "no secret on standard error: {message}"
        );
    }
    assert!(!verifies(&db, &old), "the old secret was replaced");

    // With a token file, the new secret is in the file: say so and succeed.
    let file = dir.path().join("rotated.token.json");
    let out = closed(
        &db,
        &["modify", &id, "--regenerate", "-o", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(file.to_str().unwrap()),
        "{}",
        stderr(&out)
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(verifies(&db, saved["secret"].as_str().unwrap()));
}
