//! Console sessions: kept in server memory, named by an opaque random id in a cookie.
//!
//! The browser holds only the id. The map is keyed by the id's SHA-256, so that neither a
//! lookup's timing nor a memory dump of the keys gives a usable id away. An administrator's
//! token and the secrets waiting on a success page are wiped when their session ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{NestedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, header};
use rand::TryRng;
use rand::rngs::SysRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tollgate::{Actor, Client, Context, Issued, Verification};
use zeroize::Zeroizing;

use super::pages::{self, Flash};
use super::{Access, Console};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "tollgate_console";
/// At most this many sessions are kept; past it the least recently used one ends.
const MAX_SESSIONS: usize = 10_000;
/// How long a new token waits on its success page for the copy or the download.
pub(crate) const ISSUED_TTL: Duration = Duration::from_secs(10 * 60);
/// At most this many new tokens wait per session.
const MAX_ISSUED: usize = 8;
/// At most this many owners are offered to an administrator.
const MAX_OWNERS: usize = 20;

/// The map key: SHA-256 of the cookie's value.
pub(crate) type SessionKey = [u8; 32];

/// Who a session belongs to.
enum Principal {
    /// Signed in with this admin token.
    Admin(Zeroizing<String>),
    /// The application's user, resolved to this owner.
    User(String),
}

/// A token just issued or regenerated, waiting on its success page.
pub(crate) struct Pending {
    pub(crate) issued: Issued,
    pub(crate) regenerated: bool,
    since: Instant,
}

struct Session {
    principal: Principal,
    csrf: String,
    owner: String,
    owners: Vec<String>,
    created: Instant,
    last_seen: Instant,
    pending: HashMap<String, Pending>,
    flash: Option<Flash>,
}

/// The sessions of one console router.
pub(crate) struct Sessions {
    map: Mutex<HashMap<SessionKey, Session>>,
    idle: Duration,
    lifetime: Duration,
}

/// What a page handler knows about the request it serves, put in the request extensions by
/// [`authenticate`].
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) key: SessionKey,
    /// Where the console is mounted, without a trailing slash: `""` at the root.
    pub(crate) base: String,
    pub(crate) csrf: String,
    /// Whose tokens this request manages.
    pub(crate) owner: String,
    /// The owners an administrator may pick from; empty in self-service.
    pub(crate) owners: Vec<String>,
    pub(crate) admin: bool,
    /// Who acts and from where, for the audit log.
    pub(crate) audit: Context,
}

impl Ctx {
    /// Whether `presented` is this session's form token (in constant time).
    pub(crate) fn csrf_matches(&self, presented: &str) -> bool {
        presented.len() == self.csrf.len()
            && bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// 32 random bytes, hex-encoded.
pub(crate) fn random_hex() -> Option<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    SysRng.try_fill_bytes(bytes.as_mut_slice()).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn key_of(id: &str) -> SessionKey {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    pub(crate) fn new(idle: Duration, lifetime: Duration) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            idle,
            lifetime,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SessionKey, Session>> {
        // A panic while the lock was held leaves a consistent map: every change is a
        // single insert or remove.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn alive(&self, session: &Session, now: Instant) -> bool {
        now.duration_since(session.last_seen) < self.idle
            && now.duration_since(session.created) < self.lifetime
    }

    /// Starts a session; returns the cookie's value and the key.
    fn start(&self, principal: Principal, owner: String) -> Option<(String, SessionKey)> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let key = key_of(&id);
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| self.alive(s, now));
        }
        if map.len() >= MAX_SESSIONS {
            let oldest = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        map.insert(
            key,
            Session {
                principal,
                csrf,
                owners: vec![owner.clone()],
                owner,
                created: now,
                last_seen: now,
                pending: HashMap::new(),
                flash: None,
            },
        );
        Some((id, key))
    }

    /// Signs an administrator in.
    pub(crate) fn start_admin(
        &self,
        token: Zeroizing<String>,
        owner: String,
        own_owner: String,
    ) -> Option<String> {
        let (id, key) = self.start(Principal::Admin(token), owner)?;
        self.remember_owner(&key, own_owner);
        Some(id)
    }

    /// Ends a session, wiping what it held.
    pub(crate) fn end(&self, key: &SessionKey) {
        self.lock().remove(key);
    }

    /// A copy of a live session's admin token, touching the session; `None` when there is
    /// no such session or it timed out (then it ends).
    fn admin_token(&self, key: &SessionKey) -> Option<Zeroizing<String>> {
        let now = Instant::now();
        let mut map = self.lock();
        let session = map.get_mut(key)?;
        if !self.alive(session, now) {
            map.remove(key);
            return None;
        }
        session.last_seen = now;
        match &session.principal {
            Principal::Admin(token) => Some(token.clone()),
            Principal::User(_) => None,
        }
    }

    /// Whether a live self-service session of `owner` has this key, touching it.
    fn user_session(&self, key: &SessionKey, owner: &str) -> bool {
        let now = Instant::now();
        let mut map = self.lock();
        let Some(session) = map.get_mut(key) else {
            return false;
        };
        let same = matches!(&session.principal, Principal::User(o) if o == owner);
        if !same || !self.alive(session, now) {
            // Another user signed in on this browser, or it timed out: start afresh.
            map.remove(key);
            return false;
        }
        session.last_seen = now;
        true
    }

    fn context(&self, key: &SessionKey, base: String, audit: Context) -> Option<Ctx> {
        let map = self.lock();
        let session = map.get(key)?;
        let admin = matches!(session.principal, Principal::Admin(_));
        Some(Ctx {
            key: *key,
            base,
            csrf: session.csrf.clone(),
            owner: session.owner.clone(),
            owners: if admin {
                session.owners.clone()
            } else {
                Vec::new()
            },
            admin,
            audit,
        })
    }

    /// Offers `owner` to the administrator from now on.
    fn remember_owner(&self, key: &SessionKey, owner: String) {
        if let Some(session) = self.lock().get_mut(key)
            && !session.owners.contains(&owner)
        {
            if session.owners.len() >= MAX_OWNERS {
                session.owners.remove(1);
            }
            session.owners.push(owner);
        }
    }

    /// Switches an administrator's session to `owner`.
    pub(crate) fn switch_owner(&self, key: &SessionKey, owner: String) {
        self.remember_owner(key, owner.clone());
        if let Some(session) = self.lock().get_mut(key) {
            session.owner = owner;
        }
    }

    /// Shows `flash` on the session's next page.
    pub(crate) fn flash(&self, key: &SessionKey, flash: Flash) {
        if let Some(session) = self.lock().get_mut(key) {
            session.flash = Some(flash);
        }
    }

    /// The message waiting for this page, if any.
    pub(crate) fn take_flash(&self, key: &SessionKey) -> Option<Flash> {
        self.lock().get_mut(key).and_then(|s| s.flash.take())
    }

    /// Keeps a new token for its success page; returns the page's key.
    pub(crate) fn keep_issued(
        &self,
        key: &SessionKey,
        issued: Issued,
        regenerated: bool,
    ) -> Option<String> {
        let page = random_hex()?;
        let now = Instant::now();
        let mut map = self.lock();
        let session = map.get_mut(key)?;
        session
            .pending
            .retain(|_, p| now.duration_since(p.since) < ISSUED_TTL);
        if session.pending.len() >= MAX_ISSUED {
            let oldest = session
                .pending
                .iter()
                .min_by_key(|(_, p)| p.since)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                session.pending.remove(&oldest);
            }
        }
        session.pending.insert(
            page.clone(),
            Pending {
                issued,
                regenerated,
                since: now,
            },
        );
        Some(page)
    }

    /// Runs `f` on a new token still waiting on its success page.
    pub(crate) fn with_issued<T>(
        &self,
        key: &SessionKey,
        page: &str,
        f: impl FnOnce(&Pending) -> T,
    ) -> Option<T> {
        let now = Instant::now();
        let map = self.lock();
        let pending = map.get(key)?.pending.get(page)?;
        (now.duration_since(pending.since) < ISSUED_TTL).then(|| f(pending))
    }

    /// Forgets every new token of the session: its success pages have been left.
    pub(crate) fn forget_issued(&self, key: &SessionKey) {
        if let Some(session) = self.lock().get_mut(key) {
            session.pending.clear();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Where a request comes from, for the audit log: the client's address (when the server
/// provides [`ConnectInfo`](axum::extract::ConnectInfo)) and its `User-Agent`.
pub(crate) fn client_of(parts: &Parts) -> Client {
    Client {
        address: parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.to_string()),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect()),
    }
}

/// The mount path of the console, without a trailing slash.
pub(crate) fn base_path(parts: &Parts) -> String {
    parts
        .extensions
        .get::<NestedPath>()
        .map(|p| p.as_str().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// The session id the browser sent, if well-formed.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `Set-Cookie` for a session id; `None` clears the cookie.
pub(crate) fn cookie(console: &Console, base: &str, id: Option<&str>) -> HeaderValue {
    let path = if base.is_empty() { "/" } else { base };
    let secure = if console.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    let value = match id {
        Some(id) => format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path={path}{secure}"),
        None => format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path={path}; Max-Age=0{secure}"),
    };
    // The mount path comes from the application's own routes; a path that cannot be a
    // header value cannot be one either.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Why an administrator must sign in (again).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ended {
    /// No session: signed out, never signed in, timed out, or the server restarted.
    NoSession,
    /// The session's admin token no longer verifies or lost the admin scope.
    TokenRevoked,
}

fn to_sign_in(console: &Console, base: &str, ended: Option<Ended>, had_cookie: bool) -> Response {
    let query = match ended {
        Some(Ended::TokenRevoked) => "?ended=token",
        Some(Ended::NoSession) => "?ended=timeout",
        None => "",
    };
    let mut response = pages::see_other(&format!("{base}/signin{query}"));
    if had_cookie {
        response
            .headers_mut()
            .append(header::SET_COOKIE, cookie(console, base, None));
    }
    response
}

/// Middleware in front of every page: finds (or, in self-service, starts) the session and
/// puts a [`Ctx`] in the request extensions; an administrator's token is verified again on
/// every request.
pub(crate) async fn authenticate(
    State(console): State<Arc<Console>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let base = base_path(&parts);
    let presented = session_cookie(&parts.headers).map(str::to_owned);
    let mut set_cookie = None;
    let ctx = match &console.access {
        Access::Admin { scope, owner } => {
            let Some(id) = presented else {
                return to_sign_in(&console, &base, None, false);
            };
            let key = key_of(&id);
            let Some(token) = console.sessions.admin_token(&key) else {
                return to_sign_in(&console, &base, Some(Ended::NoSession), true);
            };
            let actor = match console.manager.verify(&token).await {
                Ok(Verification::Valid(record))
                    if record.has_scope(scope) && *record.owner == **owner =>
                {
                    Actor::token(record.id, record.name.clone())
                }
                Ok(_) => {
                    console.sessions.end(&key);
                    return to_sign_in(&console, &base, Some(Ended::TokenRevoked), true);
                }
                Err(err) => return pages::failure_page(&console, &base, &err),
            };
            let audit = Context::new(actor).client(client_of(&parts));
            console.sessions.context(&key, base, audit)
        }
        Access::SelfService(resolver) => {
            let owner = match resolver.resolve(&mut parts).await {
                Ok(owner) => owner,
                Err(response) => return response,
            };
            let audit = Context::new(Actor::user(owner.clone())).client(client_of(&parts));
            let existing = presented
                .map(|id| key_of(&id))
                .filter(|key| console.sessions.user_session(key, &owner));
            let key = match existing {
                Some(key) => Some(key),
                None => console
                    .sessions
                    .start(Principal::User(owner.clone()), owner)
                    .map(|(id, key)| {
                        set_cookie = Some(cookie(&console, &base, Some(&id)));
                        key
                    }),
            };
            key.and_then(|key| console.sessions.context(&key, base, audit))
        }
    };
    let Some(ctx) = ctx else {
        // The session ended between two lines, or the system's random source failed.
        return pages::internal_error_page(&console);
    };
    parts.extensions.insert(ctx);
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(value) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_time_out_and_wipe() {
        let sessions = Sessions::new(Duration::from_millis(50), Duration::from_secs(60));
        let id = sessions
            .start_admin(
                Zeroizing::new("tg_x".into()),
                "default".into(),
                "default".into(),
            )
            .unwrap();
        let key = key_of(&id);
        assert!(sessions.admin_token(&key).is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(sessions.admin_token(&key).is_none());
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn cookie_value_must_look_like_an_id() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; tollgate_console=zz"),
        );
        assert_eq!(session_cookie(&headers), None);
        let id = "ab".repeat(32);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; tollgate_console={id}")).unwrap(),
        );
        assert_eq!(session_cookie(&headers), Some(id.as_str()));
    }

    #[test]
    fn csrf_compares_whole_tokens() {
        let ctx = Ctx {
            key: [0; 32],
            base: String::new(),
            csrf: "abc".into(),
            owner: "o".into(),
            owners: Vec::new(),
            admin: false,
            audit: Context::new(Actor::user("o")),
        };
        assert!(ctx.csrf_matches("abc"));
        assert!(!ctx.csrf_matches("ab"));
        assert!(!ctx.csrf_matches(""));
    }
}
