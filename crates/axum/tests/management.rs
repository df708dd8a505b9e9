//! Who may manage which tokens through the mounted management router: administrators with
//! the admin scope, and self-service users who only ever reach their own tokens.
#![cfg(feature = "management")]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::request::Parts;
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tollgate::{MemoryStore, NewToken, TokenManager};
use tollgate_axum::management::{self, ManagementOptions};
use tower::ServiceExt as _;

/// The signed-in user of the toy application: the `x-user` header (a real application
/// would read its session cookie).
fn signed_in(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get("x-user")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, http::HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = match body {
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, value)
}

#[tokio::test]
async fn self_service_users_reach_only_their_own_tokens() {
    let manager = Arc::new(TokenManager::new(MemoryStore::new()));
    let app = Router::new().nest(
        "/settings/tokens",
        management::router(
            manager.clone(),
            ManagementOptions::new().self_service(signed_in),
        ),
    );
    let alice = [("x-user", "alice")];
    let bob = [("x-user", "bob")];

    // Without a signed-in user: 401, and nothing is issued.
    let (status, _, body) = call(
        &app,
        Method::POST,
        "/settings/tokens/tokens",
        &[],
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // Alice issues a token; it is hers.
    let (status, headers, issued) = call(
        &app,
        Method::POST,
        "/settings/tokens/tokens",
        &alice,
        Some(json!({"name": "alice's CI"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!(issued["owner"], "alice");
    let id = issued["id"].as_str().unwrap().to_owned();
    let location = headers[header::LOCATION].to_str().unwrap().to_owned();
    assert_eq!(location, format!("/settings/tokens/tokens/{id}"));
    let (status, _, _) = call(&app, Method::GET, &location, &alice, None).await;
    assert_eq!(status, StatusCode::OK, "Location resolves");

    // Bob cannot see, download, modify, regenerate or delete it, through any route.
    let path = format!("/settings/tokens/tokens/{id}");
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, path.clone(), None),
        (Method::GET, format!("{path}/download"), None),
        (Method::PATCH, path.clone(), Some(json!({"enabled": false}))),
        (Method::POST, format!("{path}/regenerate"), None),
        (Method::DELETE, path.clone(), None),
    ];
    for (method, uri, body) in &attempts {
        let (status, _, answer) = call(&app, method.clone(), uri, &bob, body.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}: {answer}");
        // Naming Alice as the owner does not help.
        let named = format!("{uri}?owner=alice");
        let (status, _, answer) = call(&app, method.clone(), &named, &bob, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {named}: {answer}");
        assert_eq!(answer["error"]["code"], "forbidden_owner");
    }
    // Bob's list does not show it, and he cannot issue into Alice's account.
    // A user who gives their own token the admin scope gains nothing on an admin router.
    let (status, _, own_admin) = call(
        &app,
        Method::POST,
        "/settings/tokens/tokens",
        &bob,
        Some(json!({"name": "escalate", "scopes": ["tollgate:admin"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{own_admin}");
    let admin_app = Router::new().nest(
        "/admin",
        management::router(manager.clone(), ManagementOptions::new()),
    );
    let escalation = format!("Bearer {}", own_admin["token"].as_str().unwrap());
    let (status, _, _) = call(
        &admin_app,
        Method::GET,
        "/admin/tokens?owner=alice",
        &[("authorization", &escalation)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, _, list) = call(&app, Method::GET, "/settings/tokens/tokens", &bob, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "only bob's own");
    assert_eq!(list["items"][0]["name"], "escalate");
    let (status, _, _) = call(
        &app,
        Method::POST,
        "/settings/tokens/tokens",
        &bob,
        Some(json!({"name": "sneaky", "owner": "alice"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Alice's token is untouched and still verifies.
    let record = manager.get("alice", id.parse().unwrap()).await.unwrap();
    assert!(record.enabled);
    assert_eq!(record.version, 1);
    let secret = issued["token"].as_str().unwrap();
    assert!(manager.verify(secret).await.unwrap().is_valid());
    // The document of a self-service router asks for no Tollgate token.
    let (_, _, doc) = call(
        &app,
        Method::GET,
        "/settings/tokens/openapi.json",
        &[],
        None,
    )
    .await;
    assert_eq!(doc["servers"][0]["url"], "/settings/tokens");
    assert!(doc.get("security").is_none_or(Value::is_null), "{doc}");
}

#[tokio::test]
async fn administrators_need_the_admin_scope_and_name_any_owner() {
    let manager = Arc::new(TokenManager::new(MemoryStore::new()));
    let app = Router::new().nest(
        "/admin",
        management::router(
            manager.clone(),
            ManagementOptions::new().admin_scope("acme:admin"),
        ),
    );
    let admin = manager
        .apply("default", NewToken::new("root").scopes(["acme:admin"]))
        .await
        .unwrap();
    // A token of another owner with the admin scope is no administrator: otherwise anyone who
    // may issue tokens into their own owner (a self-service user) could make themselves one.
    let foreign = manager
        .apply("ops", NewToken::new("self-made").scopes(["acme:admin"]))
        .await
        .unwrap();
    let plain = manager
        .apply("ops", NewToken::new("reader").scopes(["read"]))
        .await
        .unwrap();
    let bearer = |secret: &str| format!("Bearer {secret}");
    let admin_auth = bearer(admin.token.expose_secret());
    let plain_auth = bearer(plain.token.expose_secret());

    let (status, headers, _) = call(&app, Method::GET, "/admin/tokens", &[], None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    let (status, _, body) = call(
        &app,
        Method::GET,
        "/admin/tokens",
        &[("authorization", &plain_auth)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let foreign_auth = bearer(foreign.token.expose_secret());
    let (status, _, body) = call(
        &app,
        Method::GET,
        "/admin/tokens?owner=ops",
        &[("authorization", &foreign_auth)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // An administrator issues for another owner; the Location names that owner.
    let (status, headers, issued) = call(
        &app,
        Method::POST,
        "/admin/tokens?owner=tenant%2F42",
        &[("authorization", &admin_auth)],
        Some(json!({"name": "tenant key"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!(issued["owner"], "tenant/42");
    let location = headers[header::LOCATION].to_str().unwrap();
    let (status, _, fetched) = call(
        &app,
        Method::GET,
        location,
        &[("authorization", &admin_auth)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{location}: {fetched}");
    assert_eq!(fetched["id"], issued["id"]);

    // Query and body naming different owners is ambiguous: 400, nothing issued.
    let (status, _, body) = call(
        &app,
        Method::POST,
        "/admin/tokens?owner=a",
        &[("authorization", &admin_auth)],
        Some(json!({"name": "ambiguous", "owner": "b"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "conflicting_owner");
    for owner in ["a", "b"] {
        let page = manager.list(owner, Default::default()).await.unwrap();
        assert!(page.items.is_empty());
    }
    // The document asks for the admin scope.
    let (_, _, doc) = call(&app, Method::GET, "/admin/openapi.json", &[], None).await;
    assert_eq!(doc["security"][0]["bearer"][0], "acme:admin");
}

#[tokio::test]
async fn changes_and_refusals_are_in_the_audit_log() {
    let manager = Arc::new(TokenManager::new(MemoryStore::new()));
    let app = Router::new().nest(
        "/admin",
        management::router(manager.clone(), ManagementOptions::new()),
    );
    let admin = manager
        .apply("default", NewToken::new("root").scopes(["tollgate:admin"]))
        .await
        .unwrap();
    let reader = manager
        .apply("default", NewToken::new("reader").scopes(["read"]))
        .await
        .unwrap();
    let auth = format!("Bearer {}", admin.token.expose_secret());
    let headers = [
        ("authorization", auth.as_str()),
        ("user-agent", "audit-test/1.0"),
    ];
    let (status, _, issued) = call(
        &app,
        Method::POST,
        "/admin/tokens?owner=acme",
        &headers,
        Some(json!({"name": "audited"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = issued["id"].as_str().unwrap().to_owned();
    let path = format!("/admin/tokens/{id}?owner=acme");
    let (status, _, _) = call(
        &app,
        Method::PATCH,
        &path,
        &headers,
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&app, Method::DELETE, &path, &headers, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Two refusals: no credentials, and a token without the admin scope.
    let (status, _, _) = call(&app, Method::GET, "/admin/tokens", &[], None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let reader_auth = format!("Bearer {}", reader.token.expose_secret());
    let (status, _, _) = call(
        &app,
        Method::GET,
        "/admin/tokens",
        &[("authorization", &reader_auth)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _, log) = call(
        &app,
        Method::GET,
        &format!("/admin/audit?token={id}"),
        &headers,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let entries = log["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["delete", "disable", "apply"]);
    for entry in entries {
        assert_eq!(entry["actor"]["id"], admin.record.id.to_string());
        assert_eq!(entry["actor"]["name"], "root");
        assert_eq!(entry["owner"], "acme");
        assert_eq!(entry["client"]["user_agent"], "audit-test/1.0");
    }
    let (_, _, refused) = call(
        &app,
        Method::GET,
        "/admin/audit?action=refused",
        &headers,
        None,
    )
    .await;
    let refused = refused["entries"].as_array().unwrap();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[0]["actor"]["id"], reader.record.id.to_string());
    assert_eq!(refused[1]["reason"], "missing credentials");
    // Nothing in the log is a secret.
    let everything = call(&app, Method::GET, "/admin/audit", &headers, None)
        .await
        .2
        .to_string();
    for secret in [
        admin.token.expose_secret(),
        reader.token.expose_secret(),
        issued["token"].as_str().unwrap(),
    ] {
        assert!(!everything.contains(secret));
    }
    // Bad filters are a 400, whatever else the request says (schemathesis found a bad cursor
    // accepted next to a backwards time range).
    for query in [
        "action=explode",
        "cursor=nonsense",
        "cursor=nonsense&since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z",
        "since=yesterday",
    ] {
        let (status, _, body) = call(
            &app,
            Method::GET,
            &format!("/admin/audit?{query}"),
            &headers,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
    // Every date-time JSON Schema accepts is read: lower-case separators, a backwards range
    // (empty), the year 9999.
    for query in [
        "since=2020-01-01t00:00:00z",
        "since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z",
        "until=9999-12-31T23:59:59Z",
        "since=0000-01-01T00:00:00%2B01:00",
    ] {
        let (status, _, body) = call(
            &app,
            Method::GET,
            &format!("/admin/audit?{query}"),
            &headers,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
    }
}
