//! `tollgate audit`: every change the CLI makes on a store is recorded as made by the person
//! at the terminal, and the log reads the same on a store and through `--server`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Server, tollgate};
use serde_json::Value;
use tollgate::{Actor, AuditEntry, Context, NewToken, TokenHasher, TokenManager};
use tollgate_redb::RedbStore;

/// The host the CLI records: the kernel's name for this machine, else `HOSTNAME` (which the
/// tests set to `testhost`).
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "testhost".to_owned())
}

/// `tollgate` on `db`, run by `user` at this terminal.
fn as_user(db: &Path, user: &str) -> Command {
    let mut command = tollgate(db);
    command
        .env("USER", user)
        .env_remove("LOGNAME")
        .env("HOSTNAME", "testhost");
    command
}

fn run(mut command: Command, args: &[&str]) -> Output {
    command.args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs and asserts success; the JSON on standard output.
fn json(command: Command, args: &[&str]) -> Value {
    let output = run(command, args);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Every entry of the log, newest first (`audit --json` with the largest page).
fn entries(db: &Path, filter: &[&str]) -> Vec<Value> {
    let mut args = vec!["audit", "--json", "--limit", "1000"];
    args.extend_from_slice(filter);
    let page = json(as_user(db, "reader"), &args);
    assert_eq!(page["next_cursor"], Value::Null);
    page["entries"].as_array().unwrap().clone()
}

/// Issues a token as `user`; its id and secret.
fn apply(db: &Path, user: &str, args: &[&str]) -> (String, String) {
    let mut all = vec!["apply", "--json"];
    all.extend_from_slice(args);
    let issued = json(as_user(db, user), &all);
    (
        issued["id"].as_str().unwrap().to_owned(),
        issued["token"].as_str().unwrap().to_owned(),
    )
}

/// Asserts that `text` holds none of `secrets`, their parts after the prefix, nor the hex of
/// their hashes.
fn assert_no_secret(text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(!text.contains(secret.as_str()), "a secret in the log");
        let body = secret.split_once('_').unwrap().1;
        assert!(!text.contains(body), "a secret's body in the log");
        let hash: String = TokenHasher::default()
            .hash(secret)
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!text.contains(&hash), "a secret's hash in the log");
    }
}

#[test]
fn each_change_is_one_entry_by_the_person_at_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tokens.redb");
    let alice = format!("alice@{}", host());
    let (id, _) = apply(&db, "alice", &["ci", "--scope", "deploy"]);

    // Each command, and the entry it must add: action, changes, grace period.
    let steps: [(&[&str], &str, &[&str], Value); 6] = [
        (&[], "apply", &[], Value::Null),
        (
            &["modify", &id, "--description", "the CI"],
            "modify",
            &["description"],
            Value::Null,
        ),
        (
            &["modify", &id, "--disable"],
            "disable",
            &["enabled"],
            Value::Null,
        ),
        (
            &["modify", &id, "--enable"],
            "enable",
            &["enabled"],
            Value::Null,
        ),
        (
            &["modify", &id, "--regenerate", "--grace", "10m"],
            "regenerate",
            &["secret"],
            Value::from(600),
        ),
        (&["delete", &id, "--yes"], "delete", &[], Value::Null),
    ];
    for (count, (args, action, changes, grace)) in steps.into_iter().enumerate() {
        if !args.is_empty() {
            let output = run(as_user(&db, "alice"), args);
            assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        }
        let log = entries(&db, &[]);
        assert_eq!(log.len(), count + 1, "{args:?} adds exactly one entry");
        let entry = &log[0];
        assert_eq!(entry["action"], *action, "{args:?}");
        assert_eq!(
            entry["actor"],
            serde_json::json!({"kind": "local", "id": alice, "name": "alice"}),
            "{args:?}"
        );
        assert_eq!(entry["token_id"], *id);
        assert_eq!(entry["token_name"], "ci");
        assert_eq!(entry["owner"], "default");
        assert_eq!(entry["outcome"], "success");
        assert_eq!(entry["changes"], serde_json::json!(changes), "{args:?}");
        assert_eq!(entry["grace_seconds"], grace, "{args:?}");
        assert_eq!(
            entry["client"],
            serde_json::json!({"address": null, "user_agent": null})
        );
    }

    // A refused change records nothing.
    let (admin, _) = apply(&db, "alice", &["admin", "--scope", "tollgate:admin"]);
    let before = entries(&db, &[]).len();
    for args in [
        vec!["delete", admin.as_str(), "--yes"],
        vec!["modify", admin.as_str(), "--disable"],
        vec!["modify", admin.as_str(), "--if-version", "7", "--name", "x"],
        vec!["apply", "admin"],
    ] {
        let output = run(as_user(&db, "alice"), &args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(entries(&db, &[]).len(), before);

    // The user comes from USER, else LOGNAME, else `unknown`.
    let mut logname = tollgate(&db);
    logname
        .env_remove("USER")
        .env("LOGNAME", "bob")
        .env("HOSTNAME", "testhost");
    assert!(run(logname, &["apply", "by bob"]).status.success());
    let mut nobody = tollgate(&db);
    nobody
        .env_remove("USER")
        .env_remove("LOGNAME")
        .env("HOSTNAME", "testhost");
    assert!(run(nobody, &["apply", "by nobody"]).status.success());
    let log = entries(&db, &[]);
    assert_eq!(log[1]["actor"]["id"], format!("bob@{}", host()));
    assert_eq!(log[0]["actor"]["id"], format!("unknown@{}", host()));
}

#[test]
fn jsonl_round_trips_and_holds_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tokens.redb");
    let mut secrets = Vec::new();
    let (first, secret) = apply(&db, "alice", &["first", "--expires-in", "30d"]);
    secrets.push(secret);
    let (second, secret) = apply(&db, "alice", &["second", "--scope", "a", "--scope", "b"]);
    secrets.push(secret);
    // A secret written to a token file as well.
    let file = dir.path().join("third.token.json");
    let (_, secret) = apply(&db, "alice", &["third", "-o", file.to_str().unwrap()]);
    secrets.push(secret);
    for (id, args) in [
        (&first, vec!["--regenerate", "--grace", "1h"]),
        (&second, vec!["--regenerate", "--name", "second (rotated)"]),
    ] {
        let mut all = vec!["modify", id.as_str(), "--json"];
        all.extend(args);
        let fresh = json(as_user(&db, "alice"), &all);
        secrets.push(fresh["token"].as_str().unwrap().to_owned());
    }
    let output = run(as_user(&db, "alice"), &["verify", &secrets[3]]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        run(as_user(&db, "alice"), &["delete", &first, "--yes"])
            .status
            .success()
    );

    let export = run(as_user(&db, "alice"), &["audit", "--jsonl"]);
    assert!(export.status.success(), "{}", stderr(&export));
    assert!(export.stderr.is_empty());
    let text = stdout(&export);
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    // Three applies, two regenerations, one delete; verifying changes nothing.
    assert_eq!(lines.len(), 6, "{text}");
    let log = entries(&db, &[]);
    for (line, listed) in lines.iter().zip(&log) {
        let entry: AuditEntry = serde_json::from_str(line).unwrap();
        assert_eq!(
            entry.to_json_line(),
            *line,
            "the line is the entry's own JSON"
        );
        assert_eq!(serde_json::to_value(&entry).unwrap(), *listed);
    }
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "delete",
            "regenerate",
            "regenerate",
            "apply",
            "apply",
            "apply"
        ]
    );
    assert_eq!(log[1]["changes"], serde_json::json!(["name", "secret"]));
    assert_eq!(log[1]["grace_seconds"], 0);
    assert_eq!(log[2]["grace_seconds"], 3600);

    // No secret anywhere in any form of the log.
    let table = run(as_user(&db, "alice"), &["audit"]);
    let page = run(as_user(&db, "alice"), &["audit", "--json"]);
    for output in [&export, &table, &page] {
        assert!(output.status.success());
        assert_no_secret(&stdout(output), &secrets);
        assert_no_secret(&stderr(output), &secrets);
    }
}

/// Writes `count` apply entries straight into the store, as `alice` at `laptop`.
async fn many_entries(db: &Path, count: usize) {
    let manager = TokenManager::new(RedbStore::open(db).unwrap());
    let ctx = Context::new(Actor::local("alice", "laptop"));
    let tokens = (0..count).map(|i| NewToken::new(format!("token {i}")));
    manager
        .acting(&ctx)
        .apply_many("default", tokens)
        .await
        .unwrap();
}

#[tokio::test]
async fn jsonl_follows_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tokens.redb");
    many_entries(&db, 1100).await;

    let lines = |args: &[&str]| -> Vec<AuditEntry> {
        let output = run(as_user(&db, "alice"), args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout(&output)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let all = lines(&["audit", "--jsonl"]);
    assert_eq!(all.len(), 1100, "every entry, over two pages");
    let mut ids: Vec<_> = all.iter().map(|e| e.id).collect();
    assert!(
        all.windows(2)
            .all(|w| (w[0].at, w[0].id) > (w[1].at, w[1].id))
    );
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1100, "no entry twice");

    // --limit caps an export; --cursor starts it after a page.
    assert_eq!(lines(&["audit", "--jsonl", "--limit", "1050"]), all[..1050]);
    assert_eq!(lines(&["audit", "--jsonl", "--limit", "3"]), all[..3]);
    let page = json(as_user(&db, "alice"), &["audit", "--json"]);
    assert_eq!(page["entries"].as_array().unwrap().len(), 50);
    let cursor = page["next_cursor"].as_str().unwrap();
    assert_eq!(lines(&["audit", "--jsonl", "--cursor", cursor]), all[50..]);

    // The table says where the next page starts.
    let table = stdout(&run(as_user(&db, "alice"), &["audit", "--limit", "2"]));
    assert_eq!(table.lines().count(), 5, "{table}");
    let next = table.lines().last().unwrap();
    assert!(next.starts_with("More entries: add --cursor a."), "{table}");

    // A reader that goes away early ends the export quietly.
    let mut closed = as_user(&db, "alice");
    closed.args(["audit", "--jsonl"]);
    let output = common::with_closed_stdout(&mut closed);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(output.stderr.is_empty(), "{}", stderr(&output));
}

#[test]
fn filters_select_entries() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tokens.redb");
    let (ci, _) = apply(&db, "alice", &["ci"]);
    let (web, _) = apply(&db, "bob", &["web"]);
    let mut elsewhere = as_user(&db, "bob");
    elsewhere.args(["--owner", "acme"]);
    assert!(run(elsewhere, &["apply", "acme key"]).status.success());
    for args in [
        ["modify", ci.as_str(), "--disable"],
        ["modify", web.as_str(), "--description=x"],
        ["delete", ci.as_str(), "--yes"],
    ] {
        assert!(run(as_user(&db, "alice"), &args).status.success());
    }
    let names = |filter: &[&str]| -> Vec<String> {
        entries(&db, filter)
            .iter()
            .map(|e| format!("{} {}", e["action"].as_str().unwrap(), e["token_name"]))
            .collect()
    };

    // The log spans owners unless one is given.
    assert_eq!(names(&[]).len(), 6);
    assert_eq!(
        names(&["--token", &ci]),
        ["delete \"ci\"", "disable \"ci\"", "apply \"ci\""]
    );
    assert_eq!(names(&["--action", "apply"]).len(), 3);
    assert_eq!(names(&["--action", "disable"]), ["disable \"ci\""]);
    let bob = format!("bob@{}", host());
    assert_eq!(
        names(&["--actor", &bob]),
        ["apply \"acme key\"", "apply \"web\""]
    );
    assert_eq!(names(&["--owner", "acme"]), ["apply \"acme key\""]);
    let mut before_the_command = as_user(&db, "alice");
    before_the_command.args(["--owner", "acme"]);
    let page = json(before_the_command, &["audit", "--json"]);
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    let mut by_env = as_user(&db, "alice");
    by_env.env("TOLLGATE_OWNER", "acme");
    let page = json(by_env, &["audit", "--json"]);
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    assert_eq!(
        names(&["--action", "apply", "--owner", "default", "--actor", &bob]),
        ["apply \"web\""]
    );

    // Times: RFC 3339 or a duration back from now.
    assert_eq!(names(&["--since", "1h"]).len(), 6);
    assert!(names(&["--until", "1h"]).is_empty());
    assert!(names(&["--since", "2999-01-01T00:00:00Z"]).is_empty());
    assert_eq!(names(&["--until", "2999-01-01T00:00:00+02:00"]).len(), 6);
    let all = entries(&db, &[]);
    let middle = all[2]["at"].as_str().unwrap();
    assert_eq!(names(&["--since", middle]).len(), 3, "since is inclusive");
    assert_eq!(names(&["--until", middle]).len(), 3, "until is exclusive");

    // The table: newest first, the short id, who, and what changed.
    let table = stdout(&run(as_user(&db, "alice"), &["audit", "--token", &web]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for header in [
        "TIME", "ACTION", "TOKEN", "NAME", "OWNER", "ACTOR", "DETAILS",
    ] {
        assert!(lines[0].contains(header), "{table}");
    }
    assert!(lines[1].contains(" UTC  modify "), "{table}");
    assert!(lines[1].contains(&format!("{}…", &web[..8])), "{table}");
    assert!(!lines[1].contains(&web), "the id is shortened: {table}");
    assert!(lines[1].contains(&format!("alice@{}", host())), "{table}");
    assert!(lines[1].ends_with("changed description"), "{table}");
    assert!(lines[2].contains(&bob), "{table}");
    let none = run(as_user(&db, "alice"), &["audit", "--action", "refused"]);
    assert_eq!(stdout(&none), "No audit entries found.\n");
}

/// What bad input to `audit` says: the exit code, and the error body with `--json`.
fn refusals(mut base: impl FnMut() -> Command) -> Vec<(Option<i32>, String, String)> {
    let cases: [&[&str]; 11] = [
        &["--action", "remove"],
        &["--since", "yesterday"],
        &["--until", "2027-01-31"],
        &["--since", "-7d"],
        &["--limit", "0"],
        &["--limit", "1001"],
        &["--jsonl", "--limit", "0"],
        &["--token", "abc"],
        &["--cursor", "nonsense"],
        &["--since", "1h", "--until", "2h"],
        &["--owner", "bad\nowner"],
    ];
    cases
        .iter()
        .map(|args| {
            let mut all = vec!["audit", "--json"];
            all.extend_from_slice(args);
            let output = run(base(), &all);
            let text = run(
                base(),
                &all[..1]
                    .iter()
                    .chain(&all[2..])
                    .copied()
                    .collect::<Vec<_>>(),
            );
            assert_eq!(text.status.code(), output.status.code(), "{args:?}");
            assert!(text.stdout.is_empty(), "{args:?}");
            // Times counted back from now differ by the second they were read at.
            let time = regex::Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC").unwrap();
            let said = time.replace_all(&stderr(&output), "TIME").into_owned();
            let body: Value =
                serde_json::from_str(&said).unwrap_or_else(|e| panic!("{args:?}: {said} {e}"));
            (
                output.status.code(),
                body["error"]["code"].as_str().unwrap().to_owned(),
                body["error"]["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn bad_input_exits_2_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tokens.redb");
    apply(&db, "alice", &["ci"]);
    let said = refusals(|| as_user(&db, "alice"));
    for (code, error, message) in &said {
        assert_eq!(*code, Some(2), "{error}: {message}");
    }
    let codes: Vec<&str> = said.iter().map(|(_, code, _)| code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "usage",
            "usage",
            "usage",
            "usage",
            "invalid_limit",
            "invalid_limit",
            "invalid_limit",
            "invalid_id",
            "invalid_cursor",
            "invalid_audit_filter",
            "invalid_owner",
        ]
    );
    assert!(said[0].2.contains("apply, modify, enable"), "{}", said[0].2);
    assert!(
        said[1].2.contains("RFC 3339") && said[1].2.contains("7d"),
        "{}",
        said[1].2
    );
    assert!(said[9].2.contains("--since") && said[9].2.contains("--until"));

    // No store: said, and none created.
    let missing = dir.path().join("missing.redb");
    let output = run(as_user(&missing, "alice"), &["audit"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no token store"));
    assert!(!missing.exists());
}

/// `tollgate --server URL` with the admin token.
fn remote(server: &Server, dir: &Path) -> Command {
    let mut command = as_user(&dir.join("unused.redb"), "alice");
    command
        .env_remove("TOLLGATE_DB")
        .env("TOLLGATE_TOKEN", server.admin())
        .args(["--server", &server.base]);
    command
}

#[tokio::test]
async fn the_same_through_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tokens.redb");
    let server = Server::start(&db).await;
    let admin_id = {
        let (_, value) = server
            .admin_call(reqwest::Method::GET, "/api/v1/tokens", None)
            .await;
        value["items"][0]["id"].as_str().unwrap().to_owned()
    };
    let dir_path = dir.path().to_owned();
    let cli = || remote(&server, &dir_path);

    // Changes through the server are the admin token's, from this machine's address.
    let issued = json(cli(), &["apply", "--json", "ci", "--scope", "deploy"]);
    let id = issued["id"].as_str().unwrap().to_owned();
    let mut secrets = vec![
        server.admin().to_owned(),
        issued["token"].as_str().unwrap().to_owned(),
    ];
    json(cli(), &["modify", "--json", &id, "--description", "the CI"]);
    let fresh = json(
        cli(),
        &["modify", "--json", &id, "--regenerate", "--grace", "10m"],
    );
    secrets.push(fresh["token"].as_str().unwrap().to_owned());
    json(cli(), &["delete", "--json", &id, "--yes"]);
    // A refused request: recorded without the token presented.
    let (status, _, _) = server
        .send(
            reqwest::Method::GET,
            "/api/v1/tokens",
            Some("tg_not_a_real_token"),
            None,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);

    let page = json(cli(), &["audit", "--json", "--limit", "1000"]);
    let log = page["entries"].as_array().unwrap().clone();
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "refused",
            "delete",
            "regenerate",
            "modify",
            "apply",
            "apply"
        ]
    );
    for entry in &log[1..5] {
        assert_eq!(entry["actor"]["kind"], "token");
        assert_eq!(entry["actor"]["id"], *admin_id);
        assert_eq!(entry["actor"]["name"], "tollgate-admin");
        let address = entry["client"]["address"].as_str().unwrap();
        assert!(address.starts_with("127.0.0.1:"), "{address}");
        assert!(
            entry["client"]["user_agent"]
                .as_str()
                .unwrap()
                .starts_with("tollgate-cli/")
        );
    }
    assert_eq!(log[0]["actor"]["kind"], "anonymous");
    assert_eq!(log[0]["reason"], "invalid token");
    assert_eq!(log[2]["grace_seconds"], 600);
    // The admin token `serve` issued on first start: the person who started it.
    assert_eq!(log[5]["token_id"], *admin_id);
    assert_eq!(log[5]["actor"]["kind"], "local");

    // Filters go through the query.
    let deletes = json(
        cli(),
        &["audit", "--json", "--action", "delete", "--token", &id],
    );
    assert_eq!(deletes["entries"].as_array().unwrap().len(), 1);
    let refused = stdout(&run(cli(), &["audit", "--action", "refused"]));
    assert!(
        refused.contains("reason: invalid token; from 127.0.0.1:"),
        "{refused}"
    );
    let mine = json(
        cli(),
        &["audit", "--json", "--actor", &admin_id, "--since", "1h"],
    );
    assert_eq!(mine["entries"].as_array().unwrap().len(), 4);

    // What the server answers, and what a store answers, read the same.
    let views: Vec<Vec<&str>> = vec![
        vec!["audit"],
        vec!["audit", "--json"],
        vec!["audit", "--jsonl"],
        vec!["audit", "--limit", "2"],
        vec!["audit", "--json", "--limit", "2"],
        vec!["audit", "--action", "regenerate", "--token", &id],
        vec!["audit", "--owner", "default"],
    ];
    let through: Vec<Output> = views.iter().map(|args| run(cli(), args)).collect();
    let refused_remotely = refusals(cli);
    for output in &through {
        assert!(output.status.success(), "{}", stderr(output));
        assert_no_secret(&stdout(output), &secrets);
    }
    let export = stdout(&through[2]);
    for (line, entry) in export.lines().zip(&log) {
        assert_eq!(serde_json::from_str::<Value>(line).unwrap(), *entry);
    }

    server.terminate().await;
    for (args, remote) in views.iter().zip(&through) {
        let local = run(as_user(&db, "alice"), args);
        assert_eq!(stdout(&local), stdout(remote), "{args:?}");
        assert_eq!(local.status.code(), remote.status.code(), "{args:?}");
    }
    assert_eq!(refusals(|| as_user(&db, "alice")), refused_remotely);
}
