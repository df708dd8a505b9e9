//! The CLI and `tollgate serve` on PostgreSQL: several processes sharing one store.

mod common;

use std::ffi::OsStr;

use common::{Server, binary};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn cli(url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(binary())
        .args(["--store", url])
        .args(args)
        .env_remove("TOLLGATE_DATABASE_URL")
        .env_remove("TOLLGATE_PEPPER")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_works_on_postgres() {
    let Some((_store, schema)) = tollgate_postgres::testing::fresh().await else {
        return;
    };
    let url = schema.url();
    let out = cli(
        &url,
        &["apply", "from the cli", "--scope", "read", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issued: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = issued["token"].as_str().unwrap();
    let out = cli(&url, &["list", "clii", "--json"]);
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["items"][0]["name"], "from the cli");
    assert!(cli(&url, &["verify", token]).status.success());
    let id = issued["id"].as_str().unwrap();
    assert!(cli(&url, &["delete", id, "--yes"]).status.success());
    assert_eq!(cli(&url, &["verify", token]).status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_urls_are_checked() {
    let out = cli("mysql://localhost/x", &["list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--store must be a postgres:// URL"));
    let out = cli("postgres://postgres@127.0.0.1:1/test", &["list"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a server that is not there is a store failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_store() {
    let Some((_store, schema)) = tollgate_postgres::testing::fresh().await else {
        return;
    };
    let url = schema.url();
    let args = [OsStr::new("--store"), OsStr::new(&url)];
    let first = Server::start_with(&args).await;
    let admin = first.admin().to_owned();
    let second = Server::start_with(&args).await;
    assert_eq!(second.admin, None, "the store is no longer empty");

    // Issued through one instance, used on the other.
    let issued = first
        .apply(json!({"name": "shared", "scopes": ["read"]}))
        .await;
    let token = issued["token"].as_str().unwrap().to_owned();
    let id = issued["id"].as_str().unwrap().to_owned();
    let (status, _, me) = second
        .send(Method::GET, "/demo/whoami", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], id.as_str());

    // A name taken on one conflicts on the other.
    let (status, _, body) = second
        .send(
            Method::POST,
            "/api/v1/tokens",
            Some(&admin),
            Some(json!({"name": "SHARED"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "name_taken");

    // Deleted through the second, rejected by the first on its very next request.
    let (status, _, _) = second
        .send(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = first
        .send(Method::GET, "/demo/whoami", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    first.terminate().await;
    second.terminate().await;
}
