//! The token console: pages for people, next to the management API (feature `console`).
//!
//! [`router`] serves the token list with fuzzy search, apply (with a page that shows the new
//! token once, with copy and download), download from the list, modify, regenerate and delete
//! with a confirmation, and the activity (the audit log) of the owner being viewed and of
//! each token. Pages are rendered on the server by templates that escape every value;
//! a small script adds the copy button, the delete dialog and "more" without reloading, and
//! everything works without it.
//!
//! Mount it where people should find it: `merge` it at the root, or `nest` it under a path
//! (links, forms and the session cookie follow the path).
//!
//! ```
//! use std::sync::Arc;
//!
//! use axum::Router;
//! use tollgate::{MemoryStore, TokenManager};
//! use tollgate_axum::console::{self, ConsoleOptions};
//! use tollgate_axum::management::{self, ManagementOptions};
//!
//! let manager = Arc::new(TokenManager::new(MemoryStore::new()));
//! let app: Router = Router::new()
//!     .nest("/api/v1", management::router(manager.clone(), ManagementOptions::new()))
//!     .nest("/tokens", console::router(manager, ConsoleOptions::new()));
//! ```
//!
//! ## Who may manage which tokens
//!
//! The same two modes as the management API:
//!
//! - **Administrators** (the default): the console asks for a Tollgate token with the admin
//!   scope ([`ConsoleOptions::admin_scope`], `tollgate:admin` unless set) once, keeps it in
//!   server memory for the browser session (wiped when the session ends) and gives the
//!   browser only an opaque, random session id in an `HttpOnly`, `SameSite=Strict` cookie.
//!   The token is verified again on every request: deleting, disabling or expiring it, or
//!   taking the admin scope away, ends the session. Sessions also end after
//!   [an idle time](ConsoleOptions::idle_timeout), [a lifetime](ConsoleOptions::session_lifetime)
//!   and on sign-out. An administrator may manage every owner's tokens and switches owner
//!   with a field at the top of each page (there is no list of owners: the console offers
//!   the ones used in this session).
//! - **Self-service** ([`ConsoleOptions::self_service`]): the application's own
//!   authentication says which owner each request acts for (the same
//!   [`OwnerResolver`] the management API takes), and the
//!   console shows that owner's tokens only, with no sign-in of its own.
//!
//! ## Security
//!
//! - Every value is rendered as text. Pages carry a strict `Content-Security-Policy` (scripts
//!   and styles from the console's own assets only, no inline code, no framing),
//!   `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
//!   `Cache-Control: no-store` (the pages that show a new token included).
//! - Every state-changing request must come from the console's own pages: the browser's
//!   `Sec-Fetch-Site` or `Origin` must say so, and each form carries a per-session token.
//! - Sign-in attempts with a wrong token are slowed down per client address, read from
//!   axum's [`ConnectInfo`](axum::extract::ConnectInfo) when the server provides it
//!   (`into_make_service_with_connect_info::<SocketAddr>()`); without it every client
//!   shares one allowance.

mod assets;
mod forms;
mod pages;
mod problem;
mod security;
mod session;
mod throttle;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use tollgate::TokenManager;

use self::session::Sessions;
use self::throttle::Throttle;
use crate::management::access::Access;
use crate::management::{DEFAULT_OWNER, OwnerResolver};

/// How long a session may go unused by default before it ends.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long a session lasts at most by default, in use or not.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// How the console authorizes people and what it offers.
#[derive(Clone)]
pub struct ConsoleOptions {
    access: Access,
    default_owner: String,
    secure_cookie: bool,
    idle_timeout: Duration,
    session_lifetime: Duration,
    scope_choices: Option<Vec<String>>,
    title: String,
}

impl std::fmt::Debug for ConsoleOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleOptions")
            .field("access", &self.access)
            .field("default_owner", &self.default_owner)
            .field("secure_cookie", &self.secure_cookie)
            .field("idle_timeout", &self.idle_timeout)
            .field("session_lifetime", &self.session_lifetime)
            .field("scope_choices", &self.scope_choices)
            .field("title", &self.title)
            .finish()
    }
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleOptions {
    /// Sign-in with a Tollgate token holding [`DEFAULT_ADMIN_SCOPE`](crate::management::DEFAULT_ADMIN_SCOPE); [`DEFAULT_OWNER`]'s
    /// tokens until the administrator picks another owner; cookies without `Secure`; the
    /// default idle timeout and lifetime; scopes typed freely.
    pub fn new() -> Self {
        Self {
            access: Access::admin(),
            default_owner: DEFAULT_OWNER.to_owned(),
            secure_cookie: false,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            scope_choices: None,
            title: "Tollgate".to_owned(),
        }
    }

    /// Sign-in needs a Tollgate token with `scope`.
    pub fn admin_scope(mut self, scope: impl Into<String>) -> Self {
        self.access = self.access.with_scope(scope.into());
        self
    }

    /// Sign-in needs a token of `owner` ([`DEFAULT_OWNER`] unless set): administrators'
    /// tokens live with one owner, so that a self-service user who gives their own token the
    /// admin scope gains nothing.
    pub fn admin_owner(mut self, owner: impl Into<String>) -> Self {
        self.access = self.access.with_owner(owner.into());
        self
    }

    /// Self-service: `resolver` says which owner each request acts for, from the
    /// application's own authentication, and the console shows that owner's tokens only,
    /// without a sign-in of its own. Pass the same resolver as to
    /// [`ManagementOptions::self_service`](crate::management::ManagementOptions::self_service).
    ///
    /// **The resolver is the only check**: whoever it accepts may issue and delete that
    /// owner's tokens. Return `None` for a request without a signed-in user (the console
    /// answers 401), or, from an extractor, a redirect to your sign-in page.
    ///
    /// ```
    /// use tollgate_axum::console::ConsoleOptions;
    ///
    /// #[derive(Clone)]
    /// struct User { id: String }
    ///
    /// let options = ConsoleOptions::new()
    ///     .self_service(|parts: &http::request::Parts| {
    ///         parts.extensions.get::<User>().map(|user| user.id.clone())
    ///     })
    ///     .scope_choices(["read", "write"]);
    /// # let _ = options;
    /// ```
    pub fn self_service(mut self, resolver: impl OwnerResolver) -> Self {
        self.access = Access::SelfService(Arc::new(resolver));
        self
    }

    /// The owner an administrator sees after signing in.
    pub fn default_owner(mut self, owner: impl Into<String>) -> Self {
        self.default_owner = owner.into();
        self
    }

    /// Marks the session cookie `Secure`, so that browsers send it over HTTPS only. Turn it
    /// on whenever the console is served over TLS (directly or behind a proxy).
    pub fn secure_cookie(mut self, secure: bool) -> Self {
        self.secure_cookie = secure;
        self
    }

    /// A session that is not used for this long ends.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// A session ends this long after it began, in use or not.
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_lifetime = lifetime;
        self
    }

    /// Offers these scopes as check boxes and accepts no other, instead of a free text
    /// field. Use it for self-service, so that users cannot give their tokens scopes your
    /// application reserves (such as the admin scope).
    pub fn scope_choices<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        scopes.sort_unstable();
        scopes.dedup();
        self.scope_choices = Some(scopes);
        self
    }

    /// The product name shown in the page header and titles (`Tollgate` by default).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }
}

/// What every page handler shares.
pub(crate) struct Console {
    pub(crate) manager: Arc<TokenManager>,
    pub(crate) access: Access,
    pub(crate) default_owner: String,
    pub(crate) secure_cookie: bool,
    pub(crate) scope_choices: Option<Vec<String>>,
    pub(crate) title: String,
    pub(crate) sessions: Sessions,
    pub(crate) throttle: Throttle,
}

impl Console {
    pub(crate) fn is_admin(&self) -> bool {
        matches!(self.access, Access::Admin { .. })
    }
}

/// The console's pages, to be merged at the root or nested under any path.
///
/// It has no fallback of its own, so that it merges with an application that has one.
pub fn router(manager: Arc<TokenManager>, options: ConsoleOptions) -> Router {
    let ConsoleOptions {
        access,
        default_owner,
        secure_cookie,
        idle_timeout,
        session_lifetime,
        scope_choices,
        title,
    } = options;
    let console = Arc::new(Console {
        manager,
        access,
        default_owner,
        secure_cookie,
        scope_choices,
        title,
        sessions: Sessions::new(idle_timeout, session_lifetime),
        throttle: Throttle::default(),
    });

    // Pages that need a signed-in person (or the application's user).
    let pages = Router::new()
        .route("/", get(pages::list::list))
        .route("/owner", post(pages::list::switch_owner))
        .route("/new", get(pages::apply::form).post(pages::apply::submit))
        .route("/issued/{key}", get(pages::issued::show))
        .route("/issued/{key}/download", get(pages::issued::download))
        .route(
            "/tokens/{id}",
            get(pages::token::show).post(pages::token::modify),
        )
        .route("/tokens/{id}/regenerate", post(pages::token::regenerate))
        .route(
            "/tokens/{id}/delete",
            get(pages::token::confirm_delete).post(pages::token::delete),
        )
        .route("/tokens/{id}/download", get(pages::token::download))
        .route("/tokens/{id}/activity", get(pages::activity::token))
        .route("/activity", get(pages::activity::all))
        .route("/signout", post(pages::signin::sign_out))
        .route_layer(middleware::from_fn_with_state(
            console.clone(),
            session::authenticate,
        ));

    let mut router = Router::new().merge(pages);
    if console.is_admin() {
        router = router.route(
            "/signin",
            get(pages::signin::form).post(pages::signin::submit),
        );
    }
    router
        .with_state(console)
        .route("/assets/{file}", get(assets::serve))
        .layer(middleware::from_fn(security::same_origin))
        .layer(middleware::from_fn(security::headers))
}
