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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_store_is_a_503_that_names_its_cause() {
    use sqlx::Connection as _;
    let Some((_store, schema)) = tollgate_postgres::testing::fresh().await else {
        return;
    };
    let url = schema.url();
    let server = Server::start_with(&[OsStr::new("--store"), OsStr::new(&url)]).await;
    // Verified once, the admin token is cached: the guard lets the next request through
    // without the store.
    let (status, _) = server.admin_call(Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(status, StatusCode::OK);

    let mut locker = sqlx::PgConnection::connect_with(&schema.options())
        .await
        .unwrap();
    let mut transaction = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE tollgate_tokens IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *transaction)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (status, headers, body) = server
        .send(Method::GET, "/api/v1/tokens", Some(server.admin()), None)
        .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    let cause = message
        .strip_prefix("token store unavailable: ")
        .unwrap_or_else(|| panic!("{message}"));
    assert!(!cause.is_empty(), "{message}");
    transaction.rollback().await.unwrap();

    let (status, _) = server.admin_call(Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(status, StatusCode::OK);
    server.terminate().await;
}
