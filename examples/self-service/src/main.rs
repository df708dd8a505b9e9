//! An application whose signed-in users manage their own API tokens, as on a token settings
//! page: the management API and the token console of `tollgate-axum`, mounted in
//! self-service mode next to the application's own (toy) sign-in.
//!
//! ```sh
//! cargo run -p example-self-service
//! # open http://127.0.0.1:3000, sign in as alice, apply for a token at /tokens, then:
//! curl -H "Authorization: Bearer tg_…" http://127.0.0.1:3000/api/me
//! ```
//!
//! Each user is the owner `user:<name>`: alice never sees bob's tokens, in the console or
//! through the API at `/api/tokens`. The console needs no sign-in of its own: it asks the
//! application who is signed in, through the same resolver the API uses.
//!
//! The sign-in here is a toy (anyone may be anyone); put your real one in its place. Tokens
//! live in memory: use `tollgate_redb::RedbStore` to keep them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use tollgate::{MemoryStore, TokenId, TokenManager};
use tollgate_axum::console::{self, ConsoleOptions};
use tollgate_axum::management::{self, FromExtractor, ManagementOptions, Owner};
use tollgate_axum::{Tollgate, VerifiedToken};

/// The application's signed-in user, put in the request extensions by [`sessions`].
#[derive(Debug, Clone)]
struct User(String);

/// The application's sessions: a random id in a cookie → the user's name.
#[derive(Debug, Clone, Default)]
struct Sessions(Arc<Mutex<HashMap<String, String>>>);

const COOKIE: &str = "app_session";

fn session_id(request: &Request) -> Option<String> {
    request
        .headers()
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The application's own authentication middleware: whoever holds a session cookie is that
/// user. Tollgate knows nothing about it.
async fn sessions(State(sessions): State<Sessions>, mut request: Request, next: Next) -> Response {
    let user = session_id(&request).and_then(|id| {
        let map = sessions.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&id).cloned()
    });
    if let Some(user) = user {
        request.extensions_mut().insert(User(user));
    }
    next.run(request).await
}

/// The extractor the console resolves owners with: a signed-in user, else a redirect to
/// the application's sign-in page (a page, not an error, since people see it).
struct SignedIn(String);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = Redirect;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Redirect> {
        parts
            .extensions
            .get::<User>()
            .map(|user| Self(user.0.clone()))
            .ok_or_else(|| Redirect::to("/login"))
    }
}

impl Owner for SignedIn {
    fn owner(&self) -> String {
        format!("user:{}", self.0)
    }
}

async fn home(user: Option<axum::Extension<User>>) -> Html<String> {
    let body = match user {
        Some(axum::Extension(User(name))) => format!(
            "<p>Signed in as <strong>{name}</strong>.</p>\
             <p><a href=\"/tokens\">Your API tokens</a></p>\
             <form method=\"post\" action=\"/logout\"><button>Sign out</button></form>"
        ),
        None => "<p><a href=\"/login\">Sign in</a></p>".to_owned(),
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><title>Acme</title><h1>Acme</h1>{body}</html>"
    ))
}

async fn login_page() -> Html<&'static str> {
    Html(
        "<!doctype html><html lang=\"en\"><title>Sign in · Acme</title><h1>Sign in</h1>\
         <form method=\"post\" action=\"/login\">\
         <label for=\"user\">User</label> \
         <select id=\"user\" name=\"user\"><option>alice</option><option>bob</option></select> \
         <button>Sign in</button></form></html>",
    )
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

async fn login(State(sessions): State<Sessions>, Form(login): Form<Login>) -> Response {
    if !matches!(login.user.as_str(), "alice" | "bob") {
        return Redirect::to("/login").into_response();
    }
    // A token id is 128 random bits from the operating system: good enough for a toy.
    let Ok(id) = TokenId::generate() else {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "no randomness",
        )
            .into_response();
    };
    let id = id.to_string();
    sessions
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), login.user);
    (
        [(
            axum::http::header::SET_COOKIE,
            format!("{COOKIE}={id}; HttpOnly; SameSite=Lax; Path=/"),
        )],
        Redirect::to("/tokens"),
    )
        .into_response()
}

async fn logout(State(sessions): State<Sessions>, request: Request) -> Response {
    if let Some(id) = session_id(&request) {
        sessions
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
    (
        [(
            axum::http::header::SET_COOKIE,
            format!("{COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"),
        )],
        Redirect::to("/"),
    )
        .into_response()
}

/// The application's own API, guarded by the tokens its users issued themselves.
async fn me(token: VerifiedToken) -> String {
    format!("{} calls as {}\n", token.name(), token.owner())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Arc::new(TokenManager::new(MemoryStore::new()));
    let sessions_state = Sessions::default();
    let tollgate = Tollgate::new(manager.clone());

    // The management API for scripts: the signed-in user's tokens (401 without one).
    let api = management::router(
        manager.clone(),
        ManagementOptions::new().self_service(|parts: &axum::http::request::Parts| {
            parts
                .extensions
                .get::<User>()
                .map(|user| format!("user:{}", user.0))
        }),
    );
    // The console for people: the same owners, a redirect to /login without a user, and
    // only the scopes this application defines.
    let pages = console::router(
        manager.clone(),
        ConsoleOptions::new()
            .self_service(FromExtractor::<SignedIn>::new())
            .scope_choices(["orders:read", "orders:write"])
            .title("Acme"),
    );

    let app = Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .with_state(sessions_state.clone())
        .nest("/api/tokens", api)
        .nest("/tokens", pages)
        .route("/api/me", get(me).route_layer(tollgate.layer()))
        .layer(middleware::from_fn_with_state(sessions_state, sessions));

    let addr: SocketAddr = "127.0.0.1:3000".parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("Acme listening on http://{addr}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.unwrap_or_default() })
    .await?;
    Ok(())
}
