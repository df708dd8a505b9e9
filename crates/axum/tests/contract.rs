//! The management API agrees with its OpenAPI document: each test is a regression test for
//! something the document promised and the server once did otherwise, as an API fuzzer
//! (schemathesis, `scripts/api-contract.sh`) or a reader found it. They drive the router
//! mounted under `/api/v1`, over a real loopback socket with reqwest, and with `oneshot`.
#![cfg(feature = "management")]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use reqwest::Client;
use serde_json::{Value, json};
use tollgate::{MemoryStore, NewToken, TokenManager};
use tollgate_axum::management::{self, DEFAULT_ADMIN_SCOPE, ManagementOptions};
use tower::ServiceExt as _;

/// A server as `tollgate serve` mounts it, with one admin token.
struct Server {
    base: String,
    api: String,
    admin: String,
    app: Router,
    client: Client,
}

impl Server {
    async fn start() -> Self {
        Self::start_with(ManagementOptions::new()).await
    }

    async fn start_with(options: ManagementOptions) -> Self {
        let manager = Arc::new(
            TokenManager::new(MemoryStore::new()).with_protected_scope(DEFAULT_ADMIN_SCOPE),
        );
        let admin = manager
            .apply(
                "default",
                NewToken::new("admin").scopes([DEFAULT_ADMIN_SCOPE]),
            )
            .await
            .unwrap()
            .token
            .expose_secret()
            .to_owned();
        let app = Router::new().nest("/api/v1", management::router(manager, options));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = app.clone();
        tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
        let base = format!("http://{addr}");
        Self {
            api: format!("{base}/api/v1"),
            base,
            admin,
            app,
            client: Client::new(),
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(&self.admin)
    }

    /// Issues a token for `owner` over HTTP; returns the response's body and headers.
    async fn apply(&self, owner: &str, name: &str) -> (Value, reqwest::header::HeaderMap) {
        let response = self
            .request(Method::POST, &format!("/tokens?owner={owner}"))
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let headers = response.headers().clone();
        (response.json().await.unwrap(), headers)
    }
}

/// `value` percent-encoded for a query string.
fn encoded(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Status, headers and JSON body (or `null`) of a response.
async fn read(response: reqwest::Response) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// The body is the documented error body, with this code; returns its message.
fn error(body: &Value, code: &str) -> String {
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap().to_owned();
    assert!(!message.is_empty());
    message
}

#[tokio::test]
async fn location_after_apply_and_regenerate_finds_a_token_of_another_owner() {
    let s = Server::start().await;
    for owner in ["acme", "ünïcødé%20team"] {
        let (token, headers) = s.apply(owner, "CI deploy").await;
        let location = headers[header::LOCATION].to_str().unwrap().to_owned();
        assert!(location.starts_with("/api/v1/tokens/"), "{location}");
        let found = s
            .client
            .get(format!("{}{location}", s.base))
            .bearer_auth(&s.admin)
            .send()
            .await
            .unwrap();
        let (status, _, body) = read(found).await;
        assert_eq!(status, 200, "{location}: {body}");
        assert_eq!(body["id"], token["id"]);

        let id = token["id"].as_str().unwrap();
        let owner = token["owner"].as_str().unwrap();
        let regenerated = s
            .request(
                Method::POST,
                &format!("/tokens/{id}/regenerate?owner={}", encoded(owner)),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(regenerated.status(), 200);
        let location = regenerated.headers()[header::LOCATION].to_str().unwrap();
        let found = s
            .client
            .get(format!("{}{location}", s.base))
            .bearer_auth(&s.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(found.status(), 200, "{location}");
    }
    // The owner named in the body works the same way.
    let response = s
        .request(Method::POST, "/tokens")
        .json(&json!({"name": "from the body", "owner": "globex"}))
        .send()
        .await
        .unwrap();
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(location.ends_with("?owner=globex"), "{location}");
}

#[tokio::test]
async fn every_405_carries_the_error_body_and_the_methods_of_its_resource() {
    let s = Server::start().await;
    let (token, _) = s.apply("default", "x").await;
    let id = token["id"].as_str().unwrap();
    for (path, methods) in [
        ("/tokens".to_owned(), "GET,HEAD,POST"),
        (format!("/tokens/{id}"), "GET,HEAD,DELETE,PATCH"),
        (format!("/tokens/{id}/regenerate"), "POST"),
        (format!("/tokens/{id}/download"), "GET,HEAD"),
    ] {
        for method in [Method::OPTIONS, Method::PUT, Method::TRACE] {
            let (status, headers, body) =
                read(s.request(method.clone(), &path).send().await.unwrap()).await;
            assert_eq!(status, 405, "{method} {path}");
            error(&body, "method_not_allowed");
            assert_eq!(headers[header::CONTENT_TYPE], "application/json");
            let mut allow: Vec<_> = headers[header::ALLOW]
                .to_str()
                .unwrap()
                .split(',')
                .map(str::trim)
                .collect();
            let mut expected: Vec<_> = methods.split(',').collect();
            allow.sort_unstable();
            expected.sort_unstable();
            assert_eq!(allow, expected, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn regenerate_over_the_body_limit_is_413_with_the_error_body() {
    let s = Server::start_with(ManagementOptions::new().body_limit(64)).await;
    let (token, _) = s.apply("default", "x").await;
    let id = token["id"].as_str().unwrap();
    let big = json!({"grace_seconds": 1, "padding": "x".repeat(200)});
    for (method, path) in [
        (Method::POST, format!("/tokens/{id}/regenerate")),
        (Method::PATCH, format!("/tokens/{id}")),
        (Method::POST, "/tokens".to_owned()),
    ] {
        let (status, _, body) =
            read(s.request(method, &path).json(&big).send().await.unwrap()).await;
        assert_eq!(status, 413, "{path}");
        error(&body, "payload_too_large");
    }
}

#[tokio::test]
async fn regenerate_takes_no_body_null_or_an_empty_object() {
    let s = Server::start().await;
    let (token, _) = s.apply("default", "x").await;
    let id = token["id"].as_str().unwrap();
    let path = format!("/tokens/{id}/regenerate");
    let empty = s.request(Method::POST, &path).send().await.unwrap();
    assert_eq!(empty.status(), 200);
    // JSON Schema's `integer` holds 600.0 as well as 600.
    for body in [
        "null",
        "{}",
        " null ",
        "{\"grace_seconds\": null}",
        "{\"grace_seconds\": 0.0}",
        "{\"grace_seconds\": 6e2}",
    ] {
        let response = s
            .request(Method::POST, &path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{body}");
    }
    // Something else than an object or null is refused, in our words.
    for body in ["[]", "5", "\"x\"", "[600]"] {
        let (status, _, answer) = read(
            s.request(Method::POST, &path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            error(&answer, "invalid_json"),
            "the body must be a JSON object"
        );
    }
}

#[tokio::test]
async fn if_match_star_matches_weak_tags_never_and_a_stale_tag_is_412() {
    let s = Server::start().await;
    let (token, headers) = s.apply("default", "conditional").await;
    let id = token["id"].as_str().unwrap();
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(etag, "\"1\"");
    let patch = |if_match: &str| {
        s.request(Method::PATCH, &format!("/tokens/{id}"))
            .header(header::IF_MATCH, if_match)
            .json(&json!({"description": if_match}))
            .send()
    };
    // A weak tag never matches, even the current version's (RFC 9110 §13.1.1).
    let (status, _, body) = read(patch("W/\"1\"").await.unwrap()).await;
    assert_eq!(status, 412);
    let message = error(&body, "version_conflict");
    assert!(message.contains("weak tags never match"), "{message}");
    // Strong comparison: the same characters as the ETag, nothing that parses alike.
    for stale in ["\"01\"", "\"+1\"", "\"2\"", "\"2\", W/\"1\""] {
        let (status, _, body) = read(patch(stale).await.unwrap()).await;
        assert_eq!(status, 412, "{stale}");
        error(&body, "version_conflict");
    }
    // The current tag, alone or in a list, matches.
    let response = patch("W/\"9\", \"1\"").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::ETAG], "\"2\"");
    // `*` matches whatever version exists.
    let response = patch("*").await.unwrap();
    assert_eq!(response.status(), 200);
    // What is not `*` or a list of entity tags is a 400, an empty header included.
    for malformed in ["", "2", "\"2", "*, \"2\"", "W/2", "\"a b\"", ","] {
        let (status, _, body) = read(patch(malformed).await.unwrap()).await;
        assert_eq!(status, 400, "{malformed:?}");
        error(&body, "invalid_if_match");
    }
    // Regenerate honours it too.
    let regenerate = |if_match: &'static str| {
        s.request(Method::POST, &format!("/tokens/{id}/regenerate"))
            .header(header::IF_MATCH, if_match)
            .send()
    };
    assert_eq!(regenerate("\"1\"").await.unwrap().status(), 412);
    assert_eq!(regenerate("*").await.unwrap().status(), 200);
}

#[tokio::test]
async fn delete_honours_if_match() {
    let s = Server::start().await;
    let (token, _) = s.apply("default", "doomed").await;
    let id = token["id"].as_str().unwrap();
    let delete = |if_match: &'static str| {
        s.request(Method::DELETE, &format!("/tokens/{id}"))
            .header(header::IF_MATCH, if_match)
            .send()
    };
    let (status, _, body) = read(delete("\"7\"").await.unwrap()).await;
    assert_eq!(status, 412);
    error(&body, "version_conflict");
    assert_eq!(delete("W/\"1\"").await.unwrap().status(), 412);
    assert_eq!(delete("bogus").await.unwrap().status(), 400);
    // Still there: a refused delete changed nothing.
    let get = s
        .request(Method::GET, &format!("/tokens/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(delete("\"1\"").await.unwrap().status(), 204);
    // `*` on a token that is gone: 404, as without the header.
    assert_eq!(delete("*").await.unwrap().status(), 404);
}

#[tokio::test]
async fn another_authentication_scheme_is_401_without_an_error_code() {
    let s = Server::start().await;
    for authorization in [
        "Basic YWRtaW46c2VjcmV0",
        "Digest username=\"admin\"",
        "Token abc",
    ] {
        let response = s
            .client
            .get(format!("{}/tokens", s.api))
            .header(header::AUTHORIZATION, authorization)
            .send()
            .await
            .unwrap();
        let (status, headers, body) = read(response).await;
        assert_eq!(status, 401, "{authorization}");
        let challenge = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with("Bearer realm="), "{challenge}");
        assert!(!challenge.contains("error="), "{challenge}");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
}

/// Messages say what is wrong in the API's terms: never a Rust type, a serde or standard
/// library phrase, or a parser's internals.
#[tokio::test]
async fn messages_carry_no_serde_or_rust_wording() {
    let s = Server::start().await;
    let (token, _) = s.apply("default", "x").await;
    let id = token["id"].as_str().unwrap();
    let bodies: [(Method, String, Value); 9] = [
        (
            Method::POST,
            "/tokens".into(),
            json!(["CI deploy", null, null, null, null]),
        ),
        (Method::POST, "/tokens".into(), json!(["CI deploy"])),
        (
            Method::POST,
            "/tokens".into(),
            json!({"name": "y", "expires_at": "2030-13-01T00:00:00Z"}),
        ),
        (
            Method::POST,
            "/tokens".into(),
            json!({"name": "y", "expires_at": "tomorrow"}),
        ),
        (
            Method::POST,
            "/tokens".into(),
            json!({"name": "y", "scopes": "deploy"}),
        ),
        (Method::POST, "/tokens".into(), json!({"name": 5})),
        (
            Method::PATCH,
            format!("/tokens/{id}"),
            json!({"enabled": "yes"}),
        ),
        (
            Method::POST,
            format!("/tokens/{id}/regenerate"),
            json!({"grace_seconds": -1}),
        ),
        (
            Method::POST,
            format!("/tokens/{id}/regenerate"),
            json!({"grace_seconds": 1.5}),
        ),
    ];
    let mut messages = Vec::new();
    for (method, path, body) in bodies {
        let (status, _, answer) =
            read(s.request(method, &path).json(&body).send().await.unwrap()).await;
        assert_eq!(status, 400, "{body}");
        messages.push(error(&answer, "invalid_json"));
    }
    for query in [
        "limit=abc",
        "limit=-1",
        "limit=99999999999999999999999",
        "enabled=yes",
        "nope=1",
    ] {
        let (status, _, answer) = read(
            s.request(Method::GET, &format!("/tokens?{query}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{query}");
        messages.push(error(&answer, "invalid_parameter"));
    }
    for message in &messages {
        for rust in [
            "struct",
            "u64",
            "usize",
            "u32",
            "i64",
            "four digit",
            "invalid digit",
            "provided string",
            "ApplyBody",
            "ModifyBody",
            "RegenerateBody",
            "Timestamp",
            "jiff",
            "serde",
        ] {
            assert!(!message.contains(rust), "{message:?} says {rust:?}");
        }
    }
    assert!(
        messages[0].contains("must be a JSON object"),
        "{}",
        messages[0]
    );
    assert!(messages[2].contains("RFC 3339"), "{}", messages[2]);
}

#[tokio::test]
async fn expiries_are_json_schema_date_times_before_the_year_9999() {
    let s = Server::start().await;
    let apply = |name: &str, expires_at: &str| {
        s.request(Method::POST, "/tokens")
            .json(&json!({"name": name, "expires_at": expires_at}))
            .send()
    };
    // Lower-case `t` and `z`, any number of fraction digits, offsets, a leap second.
    for (i, ok) in [
        "2099-01-02t03:04:05z",
        "2099-01-02T03:04:05.1234567891234Z",
        "2099-01-02T03:04:05+14:00",
        "2099-12-31T23:59:60Z",
        "9998-12-31T23:59:59-23:59",
    ]
    .into_iter()
    .enumerate()
    {
        let (status, _, body) = read(apply(&format!("ok {i}"), ok).await.unwrap()).await;
        assert_eq!(status, 201, "{ok}: {body}");
    }
    for bad in [
        "2099-01-02 03:04:05Z",
        "2099-01-02T03:04Z",
        "2099-01-02T03:04:05",
        "2099-02-29T00:00:00Z",
        "2099-01-02T12:00:60Z",
        "9999-01-01T00:00:00Z",
        "2099-01-02T03:04:05Z[UTC]",
    ] {
        let (status, _, body) = read(apply("bad", bad).await.unwrap()).await;
        assert_eq!(status, 400, "{bad}");
        error(&body, "invalid_json");
    }
    let (status, _, body) = read(apply("past", "2001-01-01T00:00:00Z").await.unwrap()).await;
    assert_eq!(status, 400);
    error(&body, "invalid_expiry");
}

#[tokio::test]
async fn lengths_and_lists_are_held_to_the_document_as_sent() {
    let s = Server::start().await;
    let (token, _) = s.apply("default", "x").await;
    let id = token["id"].as_str().unwrap();
    // 100 characters once trimmed, but 102 as sent: the document's maxLength counts as sent.
    let padded = format!(" {} ", "n".repeat(100));
    let (status, _, body) = read(
        s.request(Method::POST, "/tokens")
            .json(&json!({"name": padded}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    error(&body, "invalid_name");
    let (status, _, body) = read(
        s.request(Method::PATCH, &format!("/tokens/{id}"))
            .json(&json!({"description": format!("{}\n", "d".repeat(1000))}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    error(&body, "invalid_description");
    let owner = format!("{} ", "o".repeat(100));
    let (status, _, body) = read(
        s.request(Method::GET, &format!("/tokens?owner={}", encoded(&owner)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    error(&body, "invalid_owner");
    // 65 scopes listed are refused even when duplicates leave fewer than 64.
    let scopes: Vec<String> = (0..65).map(|i| format!("s{}", i % 3)).collect();
    let (status, _, body) = read(
        s.request(Method::POST, "/tokens")
            .json(&json!({"name": "many", "scopes": scopes}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    error(&body, "invalid_scope");
    // 64 are fine.
    let scopes: Vec<String> = (0..64).map(|i| format!("s{i}")).collect();
    let response = s
        .request(Method::POST, "/tokens")
        .json(&json!({"name": "many", "scopes": scopes}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn ids_are_32_lower_case_hexadecimal_characters_exactly() {
    let s = Server::start().await;
    let (token, _) = s.apply("default", "x").await;
    let id = token["id"].as_str().unwrap();
    for variant in [id.to_uppercase(), format!("%20{id}"), id[..31].to_owned()] {
        let (status, _, body) = read(
            s.request(Method::GET, &format!("/tokens/{variant}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{variant}");
        error(&body, "invalid_id");
    }
}

#[tokio::test]
async fn downloads_answer_the_token_file_with_the_documented_headers() {
    let s = Server::start().await;
    let response = s
        .request(Method::POST, "/tokens?download=true&owner=acme")
        .json(&json!({"name": "CI deploy"}))
        .send()
        .await
        .unwrap();
    let (status, headers, file) = read(response).await;
    assert_eq!(status, 201);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers[header::ETAG], "\"1\"");
    let disposition = headers[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"CI-deploy.token.json\""),
        "{disposition}"
    );
    assert_eq!(file["format"], "tollgate-token-file");
    assert_eq!(file["version"], 1);
    assert_eq!(file["secret_included"], true);
    let id = file["token"]["id"].as_str().unwrap().to_owned();
    let location = headers[header::LOCATION].to_str().unwrap();
    assert_eq!(location, format!("/api/v1/tokens/{id}?owner=acme"));

    let (status, headers, file) = read(
        s.request(Method::GET, &format!("/tokens/{id}/download?owner=acme"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers.contains_key(header::CONTENT_DISPOSITION));
    assert_eq!(file["secret_included"], false);
    assert!(file["secret"].is_null());
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
        assert!(file["token"].get(field).is_some(), "{field}");
    }
}

/// The document as a client generator and a fuzzer read it: every response described, the
/// statuses every operation can answer, the server's constraints, headers and links.
#[tokio::test]
async fn the_document_states_what_the_server_does() {
    let s = Server::start().await;
    // The document itself needs no token, and says where it is mounted.
    let request = Request::get("/api/v1/openapi.json")
        .body(Body::empty())
        .unwrap();
    let response = s.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], "/api/v1");

    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let what = format!("{method} {path}");
            let responses = operation["responses"].as_object().unwrap();
            for (status, response) in responses {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{what} {status}"
                );
            }
            for status in ["400", "401", "403", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{what} documents no {status}"
                );
            }
            assert!(
                responses["503"]["headers"].get("Retry-After").is_some(),
                "{what}"
            );
            if operation.get("requestBody").is_some() {
                for status in ["413", "415"] {
                    assert!(
                        responses.contains_key(status),
                        "{what} documents no {status}"
                    );
                }
            }
            if path.contains("{id}") {
                assert!(responses.contains_key("404"), "{what}");
                let id = operation["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == "id")
                    .unwrap();
                assert_eq!(id["schema"]["pattern"], "^[0-9a-f]{32}$", "{what}");
            }
            if method == "patch" || method == "delete" || path.ends_with("/regenerate") {
                assert!(responses.contains_key("412"), "{what}");
                let if_match = operation["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == "If-Match")
                    .unwrap();
                assert_eq!(if_match["in"], "header");
                assert_eq!(if_match["schema"]["type"], "string", "{what}: not nullable");
            }
        }
    }
    assert_eq!(operations, 8);

    let list = &doc["paths"]["/tokens"]["get"]["parameters"];
    let param = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(param("limit")["schema"]["minimum"], 1);
    assert_eq!(param("limit")["schema"]["maximum"], 1000);
    assert_eq!(param("q")["schema"]["maxLength"], 200);
    assert_eq!(
        param("owner")["schema"]["$ref"],
        "#/components/schemas/Label"
    );

    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["Label"]["maxLength"], 100);
    assert!(
        schemas["Label"]["pattern"]
            .as_str()
            .unwrap()
            .starts_with('^')
    );
    assert_eq!(schemas["Description"]["maxLength"], 1000);
    assert_eq!(
        schemas["Scope"]["pattern"],
        r"^[\x21\x23-\x5B\x5D-\x7E]{1,128}$"
    );
    assert_eq!(schemas["ApplyBody"]["properties"]["scopes"]["maxItems"], 64);
    assert_eq!(
        schemas["RegenerateBody"]["properties"]["grace_seconds"]["maximum"],
        2_592_000
    );
    assert_eq!(
        schemas["TokenFileView"]["properties"]["token"]["$ref"],
        "#/components/schemas/TokenFileToken"
    );

    // apply answers the token or the token file, with its headers, and links to the rest.
    let created = &doc["paths"]["/tokens"]["post"]["responses"]["201"];
    assert_eq!(
        created["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/IssuedOrTokenFile"
    );
    assert_eq!(
        schemas["IssuedOrTokenFile"]["oneOf"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    for header in ["Location", "ETag", "Cache-Control", "Content-Disposition"] {
        assert!(created["headers"].get(header).is_some(), "{header}");
    }
    for (name, operation_id) in [
        ("get", "get_token"),
        ("modify", "modify_token"),
        ("regenerate", "regenerate_token"),
        ("download", "download_token"),
        ("delete", "delete_token"),
    ] {
        let link = &created["links"][name];
        assert_eq!(link["operationId"], operation_id);
        assert_eq!(link["parameters"]["id"], "$response.body#/id");
        assert_eq!(link["parameters"]["owner"], "$response.body#/owner");
    }
    let download = &doc["paths"]["/tokens/{id}/download"]["get"]["responses"]["200"];
    assert!(download["headers"].get("Content-Disposition").is_some());
    assert_eq!(
        download["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/TokenFileView"
    );
}
