//! `tollgate serve`, run as the real binary and called over loopback.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Server, binary};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tokens.redb");
    (dir, db)
}

#[tokio::test]
async fn the_readme_walkthrough() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db).await;
    // Apply.
    let issued = server
        .apply(json!({"name": "my app", "scopes": ["read"], "description": "demo"}))
        .await;
    let id = issued["id"].as_str().unwrap().to_owned();
    let token = issued["token"].as_str().unwrap().to_owned();
    // Call the guarded demo API.
    let (status, _, me) = server
        .send(Method::GET, "/demo/whoami", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        json!({"id": id, "owner": "default", "name": "my app", "scopes": ["read"]})
    );
    // Download its token file.
    let response = server
        .client
        .get(server.url(&format!("/api/v1/tokens/{id}/download")))
        .bearer_auth(server.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"my-app.token.json\""),
        "{disposition}"
    );
    let file: Value = response.json().await.unwrap();
    assert_eq!(file["format"], "tollgate-token-file");
    assert_eq!(file["token"]["id"], id.as_str());
    assert_eq!(file["secret"], Value::Null);
    // Delete it: the very next call is rejected.
    let (status, _) = server
        .admin_call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, headers, body) = server
        .send(Method::GET, "/demo/whoami", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers["www-authenticate"],
        "Bearer realm=\"tollgate\", error=\"invalid_token\""
    );
    assert_eq!(body["error"]["code"], "invalid_token");
    server.terminate().await;
}

#[tokio::test]
async fn the_admin_token_is_printed_on_first_start_only() {
    let (_dir, db) = temp_db();
    let first = Server::start(&db).await;
    let admin = first.admin().to_owned();
    first.terminate().await;
    let second = Server::start(&db).await;
    assert_eq!(second.admin, None, "not printed again");
    let (status, _, page) = second
        .send(Method::GET, "/api/v1/tokens", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"][0]["scopes"], json!(["tollgate:admin"]));
    second.terminate().await;
}

#[tokio::test]
async fn the_management_api_needs_the_admin_scope() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db).await;
    let plain = server.apply(json!({"name": "plain"})).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, headers, body) = server
        .send(Method::GET, "/api/v1/tokens", Some(&plain), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        headers["www-authenticate"],
        "Bearer realm=\"tollgate\", error=\"insufficient_scope\", scope=\"tollgate:admin\""
    );
    assert_eq!(body["error"]["code"], "insufficient_scope");
    let (status, headers, _) = server.send(Method::GET, "/api/v1/tokens", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"tollgate\"");
    let (status, _, _) = server
        .send(Method::GET, "/api/v1/tokens", Some("tg_not_a_token"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The demo API takes any valid token; health needs none.
    let (status, _, _) = server
        .send(Method::GET, "/demo/whoami", Some(&plain), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = server.send(Method::GET, "/healthz", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    server.terminate().await;
}

#[tokio::test]
async fn bad_requests_get_json_errors_and_change_nothing() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db).await;
    let existing = server.apply(json!({"name": "existing"})).await;
    let id = existing["id"].as_str().unwrap().to_owned();
    let token_path = format!("/api/v1/tokens/{id}");
    let cases: Vec<(Method, String, Value, StatusCode, &str)> = vec![
        (
            Method::POST,
            "/api/v1/tokens".into(),
            json!({"name": ""}),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            json!({"name": "a\u{200B}b"}),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            json!({"name": "ok", "scopes": ["a b"]}),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            json!({"name": "ok", "expires_at": "2001-01-01T00:00:00Z"}),
            StatusCode::BAD_REQUEST,
            "invalid_expiry",
        ),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            json!({"name": "ok", "expires_at": "tomorrow"}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            json!({"name": "ok", "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            json!({"name": 42}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            json!({"name": "EXISTING"}),
            StatusCode::CONFLICT,
            "name_taken",
        ),
        (
            Method::PATCH,
            token_path.clone(),
            json!({"name": "  "}),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            Method::PATCH,
            token_path.clone(),
            json!({"enabled": "yes"}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::POST,
            format!("{token_path}/regenerate"),
            json!({"grace_seconds": 99_999_999}),
            StatusCode::BAD_REQUEST,
            "invalid_grace_period",
        ),
        (
            Method::GET,
            "/api/v1/tokens/0123456789abcdef0123456789abcdef".into(),
            Value::Null,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::DELETE,
            "/api/v1/tokens/0123456789abcdef0123456789abcdef".into(),
            Value::Null,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/api/v1/tokens/nope".into(),
            Value::Null,
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            Method::GET,
            "/api/v1/tokens?limit=abc".into(),
            Value::Null,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            Method::GET,
            "/api/v1/tokens?limit=0".into(),
            Value::Null,
            StatusCode::BAD_REQUEST,
            "invalid_limit",
        ),
        (
            Method::GET,
            "/api/v1/tokens?cursor=zzz".into(),
            Value::Null,
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            Method::GET,
            "/api/v1/tokens?colour=red".into(),
            Value::Null,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            Method::GET,
            "/api/v1/nothing-here".into(),
            Value::Null,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (method, path, body, expected, code) in cases {
        let body = (!body.is_null()).then_some(body);
        let (status, value) = server.admin_call(method.clone(), &path, body).await;
        assert_eq!(status, expected, "{method} {path}: {value}");
        assert_eq!(value["error"]["code"], code, "{method} {path}: {value}");
        assert!(
            value["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }

    // Not JSON at all, no content type, and too large.
    let raw = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = server
            .client
            .post(server.url("/api/v1/tokens"))
            .bearer_auth(server.admin())
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    let response = raw("{not json", Some("application/json")).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = raw("{\"name\":\"x\"}", None).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // The server answers before reading the rest of an oversized body and closes the
    // connection, so the client may see the connection reset while still sending: retry
    // until the answer itself is read.
    let huge = json!({"name": "big", "description": "x".repeat(20_000)});
    let mut answered = None;
    for _ in 0..20 {
        let sent = server
            .client
            .post(server.url("/api/v1/tokens"))
            .bearer_auth(server.admin())
            .json(&huge)
            .send()
            .await;
        if let Ok(response) = sent {
            let status = response.status();
            let value: Value = response.json().await.unwrap();
            answered = Some((status, value));
            break;
        }
    }
    let (status, value) = answered.expect("the server answered an oversized body");
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{value}");
    assert_eq!(value["error"]["code"], "payload_too_large");

    // Nothing changed.
    let (_, page) = server.admin_call(Method::GET, "/api/v1/tokens", None).await;
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["existing", "tollgate-admin"]);
    let (_, after) = server.admin_call(Method::GET, &token_path, None).await;
    let mut before = existing.clone();
    before.as_object_mut().unwrap().remove("token");
    assert_eq!(after, before);
    server.terminate().await;
}

#[tokio::test]
async fn list_search_pages_and_modify() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db).await;
    for name in [
        "prod-deploy",
        "staging-deploy",
        "billing-service",
        "生产环境密钥",
    ] {
        server.apply(json!({"name": name})).await;
    }
    let (status, page) = server
        .admin_call(Method::GET, "/api/v1/tokens?q=deply%20prod", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"][0]["name"], "prod-deploy");
    let (_, page) = server
        .admin_call(Method::GET, "/api/v1/tokens?q=%E7%94%9F%E4%BA%A7", None)
        .await;
    assert_eq!(page["items"][0]["name"], "生产环境密钥");
    let (_, page) = server
        .admin_call(Method::GET, "/api/v1/tokens?q=zzqx", None)
        .await;
    assert_eq!(page["items"], json!([]));

    let (_, first) = server
        .admin_call(Method::GET, "/api/v1/tokens?limit=3", None)
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = server
        .admin_call(
            Method::GET,
            &format!("/api/v1/tokens?limit=3&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 2);
    assert_eq!(second["next_cursor"], Value::Null);

    // PATCH: absent fields stay, null clears the expiry.
    let created = server
        .apply(json!({"name": "patched", "expires_at": "2999-01-01T00:00:00Z", "scopes": ["a"]}))
        .await;
    let path = format!("/api/v1/tokens/{}", created["id"].as_str().unwrap());
    let (status, value) = server
        .admin_call(
            Method::PATCH,
            &path,
            Some(json!({"description": "now described"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(value["expires_at"], "2999-01-01T00:00:00Z");
    assert_eq!(value["scopes"], json!(["a"]));
    let (_, value) = server
        .admin_call(
            Method::PATCH,
            &path,
            Some(json!({"expires_at": null, "enabled": false, "name": "renamed"})),
        )
        .await;
    assert_eq!(value["expires_at"], Value::Null);
    assert_eq!(value["enabled"], false);
    assert_eq!(value["name"], "renamed");
    let token = created["token"].as_str().unwrap();
    let (status, _, _) = server
        .send(Method::GET, "/demo/whoami", Some(token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "disabled at once");

    // If-Match: a stale version is refused.
    let response = server
        .client
        .patch(server.url(&path))
        .bearer_auth(server.admin())
        .header("if-match", "\"1\"")
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
    let etag = server
        .client
        .get(server.url(&path))
        .bearer_auth(server.admin())
        .send()
        .await
        .unwrap()
        .headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(etag, "\"3\"");
    let response = server
        .client
        .patch(server.url(&path))
        .bearer_auth(server.admin())
        .header("if-match", etag)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.terminate().await;
}

#[tokio::test]
async fn regeneration_and_its_grace_period() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db).await;
    let created = server.apply(json!({"name": "rotating"})).await;
    let id = created["id"].as_str().unwrap();
    let old = created["token"].as_str().unwrap().to_owned();
    let whoami = |token: String| {
        let server = &server;
        async move {
            server
                .send(Method::GET, "/demo/whoami", Some(&token), None)
                .await
                .0
        }
    };

    // Without a grace period the old secret fails on the next request.
    let (status, regenerated) = server
        .admin_call(
            Method::POST,
            &format!("/api/v1/tokens/{id}/regenerate"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let second = regenerated["token"].as_str().unwrap().to_owned();
    assert_eq!(whoami(old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(whoami(second.clone()).await, StatusCode::OK);

    // With one, the old secret works within it and stops after it.
    let (_, regenerated) = server
        .admin_call(
            Method::POST,
            &format!("/api/v1/tokens/{id}/regenerate"),
            Some(json!({"grace_seconds": 1})),
        )
        .await;
    let third = regenerated["token"].as_str().unwrap().to_owned();
    assert_eq!(whoami(second.clone()).await, StatusCode::OK);
    assert_eq!(whoami(third.clone()).await, StatusCode::OK);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while whoami(second.clone()).await == StatusCode::OK {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the grace period ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(whoami(third.clone()).await, StatusCode::OK);

    // The file offered right after regenerating carries the new secret.
    let response = server
        .client
        .post(server.url(&format!("/api/v1/tokens/{id}/regenerate?download=true")))
        .bearer_auth(server.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("rotating.token.json")
    );
    let file: Value = response.json().await.unwrap();
    let fourth = file["secret"].as_str().unwrap().to_owned();
    assert_eq!(whoami(fourth).await, StatusCode::OK);
    assert_eq!(whoami(third).await, StatusCode::UNAUTHORIZED);
    server.terminate().await;
}

#[tokio::test]
async fn last_use_is_flushed_on_shutdown() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db).await;
    let created = server.apply(json!({"name": "used"})).await;
    let token = created["token"].as_str().unwrap().to_owned();
    let (status, _, _) = server
        .send(Method::GET, "/demo/whoami", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    server.terminate().await;
    let output = std::process::Command::new(binary())
        .arg("--db")
        .arg(&db)
        .args(["show", created["id"].as_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(shown["last_used_at"].is_string(), "{shown}");
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db).await;
    let (status, _, doc) = server
        .send(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    // Paths are relative to where the management API is mounted.
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/tokens", &["get", "post"][..]),
        ("/tokens/{id}", &["get", "patch", "delete"][..]),
        ("/tokens/{id}/regenerate", &["post"][..]),
        ("/tokens/{id}/download", &["get"][..]),
    ] {
        for method in methods {
            assert!(
                paths[path].get(*method).is_some(),
                "{method} {path} is documented"
            );
        }
    }
    // The lock-out override and its refusal are documented.
    for method in ["delete", "patch"] {
        let operation = &paths["/tokens/{id}"][method];
        let parameters = operation["parameters"].as_array().unwrap();
        assert!(
            parameters
                .iter()
                .any(|p| p["name"] == "force" && p["in"] == "query"),
            "{method}: {operation}"
        );
        assert!(
            operation["responses"].get("409").is_some(),
            "{method}: {operation}"
        );
        assert!(
            operation["responses"].get("503").is_some(),
            "{method}: {operation}"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let token_fields: Vec<&str> = schemas["TokenView"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for field in [
        "id",
        "owner",
        "name",
        "description",
        "scopes",
        "enabled",
        "created_at",
        "updated_at",
        "expires_at",
        "last_used_at",
        "hint",
    ] {
        assert!(token_fields.contains(&field), "{field}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    server.terminate().await;
}

#[tokio::test]
async fn serve_issues_nothing_until_it_listens() {
    let (_dir, db) = temp_db();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(binary())
            .args(["serve", "--addr", &addr, "--db"])
            .arg(&db)
            .env_remove("TOLLGATE_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .output(),
    )
    .await
    .expect("serve gives up at once")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(!stdout.contains("tg_"), "no token was printed: {stdout}");
    drop(taken);
    // The one-time admin token was not spent.
    let server = Server::start(&db).await;
    assert!(
        server.admin.is_some(),
        "the next start prints the admin token"
    );
    let (status, _) = server.admin_call(Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(status, StatusCode::OK);
    server.terminate().await;
}

#[tokio::test]
async fn serve_whose_admin_token_cannot_be_shown_issues_none() {
    let (_dir, db) = temp_db();
    let mut command = common::tollgate(&db);
    command.args(["serve", "--addr", "127.0.0.1:0"]);
    let out = tokio::task::spawn_blocking(move || common::with_closed_stdout(&mut command))
        .await
        .unwrap();
    common::assert_no_panic(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("could not be written"), "{stderr}");
    let server = Server::start(&db).await;
    assert!(
        server.admin.is_some(),
        "the next start prints the admin token"
    );
    server.terminate().await;
}

#[tokio::test]
async fn the_api_and_the_cli_classify_errors_alike() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db).await;
    let id = server.apply(json!({"name": "existing"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let long = "q".repeat(300);
    let cases: Vec<(Method, String, &str)> = vec![
        (
            Method::GET,
            format!("/api/v1/tokens?q={long}"),
            "invalid_query",
        ),
        (
            Method::GET,
            "/api/v1/tokens?q=tab%09query".into(),
            "invalid_query",
        ),
        (
            Method::GET,
            "/api/v1/tokens?owner=%00".into(),
            "invalid_owner",
        ),
        (Method::GET, "/api/v1/tokens?owner=".into(), "invalid_owner"),
        (
            Method::GET,
            format!("/api/v1/tokens?owner={}", "o".repeat(10_000)),
            "invalid_owner",
        ),
        (
            Method::GET,
            format!("/api/v1/tokens/{id}?owner="),
            "invalid_owner",
        ),
        (
            Method::GET,
            format!("/api/v1/tokens/{id}/download?owner=%00"),
            "invalid_owner",
        ),
        (
            Method::DELETE,
            format!("/api/v1/tokens/{id}?owner="),
            "invalid_owner",
        ),
    ];
    for (method, path, code) in cases {
        let (status, body) = server.admin_call(method.clone(), &path, None).await;
        let shown = &path[..path.len().min(80)];
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {shown}: {body}");
        assert_eq!(body["error"]["code"], code, "{method} {shown}: {body}");
    }
    let (_, body) = server
        .admin_call(Method::GET, &format!("/api/v1/tokens?q={long}"), None)
        .await;
    assert_eq!(
        body["error"]["message"],
        "invalid search query: it is longer than 200 characters"
    );
    let (status, _) = server
        .admin_call(Method::GET, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "nothing was deleted");
    server.terminate().await;
}

/// The id of the token named `name`, as the admin sees it.
async fn id_of(server: &Server, name: &str) -> String {
    let (_, page) = server
        .admin_call(Method::GET, "/api/v1/tokens?limit=1000", None)
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_last_admin_token_cannot_lock_everyone_out() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db).await;
    let admin = id_of(&server, "tollgate-admin").await;
    let path = format!("/api/v1/tokens/{admin}");
    let refusals = [
        (Method::DELETE, path.clone(), None),
        (Method::DELETE, format!("{path}?force=false"), None),
        (Method::PATCH, path.clone(), Some(json!({"enabled": false}))),
        (Method::PATCH, path.clone(), Some(json!({"scopes": []}))),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"scopes": ["read"], "description": "x"})),
        ),
    ];
    for (method, path, body) in refusals {
        let (status, value) = server.admin_call(method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{method} {path}: {value}");
        assert_eq!(value["error"]["code"], "lockout", "{value}");
        assert!(
            value["error"]["message"]
                .as_str()
                .unwrap()
                .contains("last enabled token with the scope \"tollgate:admin\""),
            "{value}"
        );
    }
    // The admin token still works, unchanged.
    let (status, value) = server.admin_call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(value["enabled"], true);
    assert_eq!(value["scopes"], json!(["tollgate:admin"]));

    // With a second admin token, either may go.
    let second = server
        .apply(json!({"name": "second", "scopes": ["tollgate:admin"]}))
        .await;
    let second_path = format!("/api/v1/tokens/{}", second["id"].as_str().unwrap());
    let (status, value) = server
        .admin_call(Method::PATCH, &second_path, Some(json!({"enabled": false})))
        .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let (status, _) = server.admin_call(Method::DELETE, &second_path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Forced, descoping the last admin goes through: it loses the management API.
    let (status, value) = server
        .admin_call(
            Method::PATCH,
            &format!("{path}?force=true"),
            Some(json!({"scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["scopes"], json!(["read"]));
    let (status, _) = server.admin_call(Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.terminate().await;

    // Forced, deleting the last admin goes through too.
    let (_dir, db) = temp_db();
    let server = Server::start(&db).await;
    let admin = id_of(&server, "tollgate-admin").await;
    let (status, value) = server
        .admin_call(
            Method::DELETE,
            &format!("/api/v1/tokens/{admin}?force=true"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{value}");
    let (status, _) = server.admin_call(Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.terminate().await;
}

#[tokio::test]
async fn blind_patches_all_apply_and_if_match_names_both_versions() {
    let (_dir, db) = temp_db();
    let server = Server::start(&db).await;
    let issued = server.apply(json!({"name": "contended"})).await;
    let path = format!("/api/v1/tokens/{}", issued["id"].as_str().unwrap());
    let (_, headers, _) = server
        .send(Method::GET, &path, Some(server.admin()), None)
        .await;
    let first: u64 = headers["etag"]
        .to_str()
        .unwrap()
        .trim_matches('"')
        .parse()
        .unwrap();

    let mut patches = tokio::task::JoinSet::new();
    for i in 0..16 {
        let request = server
            .client
            .patch(server.url(&path))
            .bearer_auth(server.admin())
            .json(&json!({"description": format!("writer {i}")}));
        patches.spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.text().await.unwrap())
        });
    }
    while let Some(done) = patches.join_next().await {
        let (status, body) = done.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, headers, value) = server
        .send(Method::GET, &path, Some(server.admin()), None)
        .await;
    let last: u64 = headers["etag"]
        .to_str()
        .unwrap()
        .trim_matches('"')
        .parse()
        .unwrap();
    assert_eq!(last, first + 16, "every PATCH applied");
    assert!(
        value["description"]
            .as_str()
            .unwrap()
            .starts_with("writer ")
    );

    // A PATCH that names a version the token has moved past is refused, and says so.
    let response = server
        .client
        .patch(server.url(&path))
        .bearer_auth(server.admin())
        .header("if-match", format!("\"{first}\""))
        .json(&json!({"description": "stale"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
    let value: Value = response.json().await.unwrap();
    assert_eq!(value["error"]["code"], "version_conflict");
    let message = value["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("version {last}")), "{message}");
    assert!(
        message.contains(&format!("expected version {first}")),
        "{message}"
    );
    server.terminate().await;
}
