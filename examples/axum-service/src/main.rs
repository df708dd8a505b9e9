//! An axum application that guards its own API with Tollgate tokens kept in a redb file.
//!
//! ```sh
//! cargo run -p example-axum-service          # prints a token on first start
//! curl -H "Authorization: Bearer tg_…" http://127.0.0.1:3000/api/me
//! curl -H "Authorization: Bearer tg_…" http://127.0.0.1:3000/api/reports
//! ```
//!
//! Manage its tokens with the CLI on the same file once the service is stopped:
//! `tollgate --db axum-service.redb list` (redb allows one process at a time).

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tollgate::{ListOptions, NewToken, TokenManager};
use tollgate_axum::{Tollgate, VerifiedToken};
use tollgate_redb::RedbStore;

/// Any valid token.
async fn me(token: VerifiedToken) -> Json<Value> {
    Json(json!({ "id": token.id(), "name": token.name(), "scopes": token.scopes() }))
}

/// Needs the `reports:read` scope (checked by the route layer).
async fn reports(token: VerifiedToken) -> Json<Value> {
    Json(json!({ "reports": ["2026-q3", "2026-q4"], "for": token.name() }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Arc::new(TokenManager::new(RedbStore::open("axum-service.redb")?));

    // First start: issue a token to try the API with.
    let empty = manager
        .list(
            "default",
            ListOptions {
                limit: Some(1),
                ..Default::default()
            },
        )
        .await?
        .items
        .is_empty();
    if empty {
        let issued = manager
            .apply(
                "default",
                NewToken::new("example client").scopes(["reports:read"]),
            )
            .await?;
        println!(
            "Try the API with this token (shown once): {}",
            issued.token.expose_secret()
        );
    }

    let tollgate = Tollgate::new(manager).with_realm("example");
    let api = Router::new()
        .route("/me", get(me))
        .route(
            "/reports",
            get(reports).route_layer(tollgate.require(["reports:read"])),
        )
        .layer(tollgate.layer());
    let app = Router::new()
        .route("/", get(|| async { "public: no token needed\n" }))
        .nest("/api", api);

    // Record when tokens were last used, in batches, without a write per request.
    let flusher = tollgate.spawn_last_used_flusher(Duration::from_secs(10));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("Listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    flusher.shutdown().await?;
    Ok(())
}
