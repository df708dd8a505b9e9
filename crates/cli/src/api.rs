//! The application `tollgate serve` runs: the management API of `tollgate-axum` mounted at
//! `/api/v1`, the token console at `/`, a guarded demo route and a health check.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Serialize;
use tollgate::{TokenId, TokenManager};
use tollgate_axum::console::{self, ConsoleOptions};
use tollgate_axum::management::{self, ManagementOptions};
use tollgate_axum::{Tollgate, VerifiedToken};

pub(crate) use tollgate_axum::management::{DEFAULT_ADMIN_SCOPE as ADMIN_SCOPE, DEFAULT_OWNER};

/// The whole application: `/healthz`, `/demo/whoami`, `/api/v1/…`, and the console's pages.
pub(crate) fn router(manager: Arc<TokenManager>, tollgate: Tollgate) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/demo/whoami", get(whoami))
        .layer(Extension(tollgate))
        .nest(
            "/api/v1",
            management::router(
                manager.clone(),
                ManagementOptions::new().admin_scope(ADMIN_SCOPE),
            ),
        )
        .merge(console::router(
            manager,
            ConsoleOptions::new().admin_scope(ADMIN_SCOPE),
        ))
        .fallback(|| async {
            let body =
                serde_json::json!({"error": {"code": "not_found", "message": "no such route"}});
            (StatusCode::NOT_FOUND, Json(body))
        })
}

/// The caller's token, as the guard verified it.
#[derive(Debug, Serialize)]
struct WhoAmI {
    id: TokenId,
    owner: String,
    name: String,
    scopes: Vec<String>,
}

/// A route guarded by the extractor: who is calling?
async fn whoami(token: VerifiedToken) -> Json<WhoAmI> {
    Json(WhoAmI {
        id: token.id(),
        owner: token.owner().to_owned(),
        name: token.name().to_owned(),
        scopes: token.scopes().to_vec(),
    })
}
