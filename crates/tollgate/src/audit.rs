//! The audit log: who changed which token, when, and every refused management request.
//!
//! Every change the [`TokenManager`](crate::TokenManager) makes is written by the store in
//! the same transaction as its [`AuditEntry`], so a change without its entry (or an entry
//! without its change) cannot exist, even when the process is killed between the two.
//! Entries never hold a secret, a token string or a hash.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::record::TokenId;

/// An audit entry's id: 128 random bits, 32 hexadecimal characters.
pub type AuditId = TokenId;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// A token was issued.
    Apply,
    /// A token's name, description, expiry or scopes changed.
    Modify,
    /// A disabled token was enabled (perhaps with other changes).
    Enable,
    /// A token was disabled (perhaps with other changes).
    Disable,
    /// A token's secret was replaced (perhaps with other changes).
    Regenerate,
    /// A token was deleted.
    Delete,
    /// A management request was refused: missing, invalid or under-scoped credentials.
    Refused,
}

impl AuditAction {
    /// Every action, in a stable order.
    pub const ALL: [Self; 7] = [
        Self::Apply,
        Self::Modify,
        Self::Enable,
        Self::Disable,
        Self::Regenerate,
        Self::Delete,
        Self::Refused,
    ];

    /// The lower-case word: `apply`, `modify`, `enable`, `disable`, `regenerate`,
    /// `delete`, `refused`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "apply",
            Self::Modify => "modify",
            Self::Enable => "enable",
            Self::Disable => "disable",
            Self::Regenerate => "regenerate",
            Self::Delete => "delete",
            Self::Refused => "refused",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditAction {
    type Err = crate::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == text)
            .ok_or(crate::Error::InvalidAuditFilter(
                "the action must be apply, modify, enable, disable, regenerate, delete or refused",
            ))
    }
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActorKind {
    /// An administrator's Tollgate token (management API, console): `id` is the token's id.
    Token,
    /// A signed-in user of the application (self-service): `id` is their owner.
    User,
    /// A person at a terminal working on the store directly (the CLI): `id` is
    /// `user@host`.
    Local,
    /// The application itself, calling the library.
    Application,
    /// Nobody identified (a refused request without valid credentials).
    Anonymous,
}

/// Who made a change or a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Actor {
    /// What kind of actor.
    pub kind: ActorKind,
    /// Its identifier (a token id, an owner, `user@host`); empty when unknown.
    pub id: String,
    /// A name for people (the admin token's name); may be empty.
    pub name: String,
}

impl Actor {
    /// The application itself: what the manager records when no actor is given.
    pub fn application() -> Self {
        Self {
            kind: ActorKind::Application,
            id: String::new(),
            name: String::new(),
        }
    }

    /// An administrator's token.
    pub fn token(id: TokenId, name: impl Into<String>) -> Self {
        Self {
            kind: ActorKind::Token,
            id: id.to_string(),
            name: name.into(),
        }
    }

    /// A signed-in user, by their owner.
    pub fn user(owner: impl Into<String>) -> Self {
        let owner = owner.into();
        Self {
            kind: ActorKind::User,
            name: owner.clone(),
            id: owner,
        }
    }

    /// A person at a terminal: `user@host`.
    pub fn local(user: &str, host: &str) -> Self {
        Self {
            kind: ActorKind::Local,
            id: format!("{user}@{host}"),
            name: user.to_owned(),
        }
    }

    /// Nobody identified.
    pub fn anonymous() -> Self {
        Self {
            kind: ActorKind::Anonymous,
            id: String::new(),
            name: String::new(),
        }
    }
}

/// Where an HTTP request came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Client {
    /// The client's address, as the server saw it.
    pub address: Option<String>,
    /// Its `User-Agent`.
    pub user_agent: Option<String>,
}

/// Who is acting, and from where: what the manager records with each change made through
/// [`TokenManager::acting`](crate::TokenManager::acting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Who.
    pub actor: Actor,
    /// From where (HTTP only).
    pub client: Client,
}

impl Context {
    /// `actor`, from no particular client.
    pub fn new(actor: Actor) -> Self {
        Self {
            actor,
            client: Client::default(),
        }
    }

    /// With the client's address and user agent.
    pub fn client(mut self, client: Client) -> Self {
        self.client = client;
        self
    }
}

/// Whether the action took place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The change was made.
    Success,
    /// The request was turned away; nothing changed.
    Refused,
}

/// One line of the audit log. Holds no secret, token string or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Unique: 32 hexadecimal characters.
    #[cfg_attr(feature = "utoipa", schema(value_type = String))]
    pub id: AuditId,
    /// When, to the microsecond.
    #[cfg_attr(feature = "utoipa", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// What.
    pub action: AuditAction,
    /// The token concerned, if any.
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<String>))]
    pub token_id: Option<TokenId>,
    /// Its name at that time.
    pub token_name: Option<String>,
    /// Its owner.
    pub owner: Option<String>,
    /// Whether it happened.
    pub outcome: Outcome,
    /// The fields a change touched (`name`, `description`, `expires_at`, `scopes`, `enabled`,
    /// `secret`), never their secret parts.
    pub changes: Vec<String>,
    /// After a regeneration: how long the previous secret keeps working, in seconds.
    pub grace_seconds: Option<i64>,
    /// Why a request was refused (`missing credentials`, `invalid token`, `insufficient
    /// scope`…).
    pub reason: Option<String>,
    /// Where an HTTP request came from.
    pub client: Client,
}

impl AuditEntry {
    /// The entry as one line of JSON (for JSON Lines exports), without the newline.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("an audit entry always serializes")
    }
}

/// Which entries to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only entries about this token.
    pub token: Option<TokenId>,
    /// Only entries by this actor id (a token id, an owner, `user@host`).
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only entries at or after this time.
    pub since: Option<Timestamp>,
    /// Only entries before this time.
    pub until: Option<Timestamp>,
    /// Only entries about this owner's tokens.
    pub owner: Option<String>,
}

impl AuditFilter {
    /// Whether `entry` passes the filter.
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        self.token.is_none_or(|t| entry.token_id == Some(t))
            && self.actor.as_ref().is_none_or(|a| entry.actor.id == *a)
            && self.action.is_none_or(|a| entry.action == a)
            && self.since.is_none_or(|s| entry.at >= s)
            && self.until.is_none_or(|u| entry.at < u)
            && self
                .owner
                .as_ref()
                .is_none_or(|o| entry.owner.as_ref() == Some(o))
    }
}

/// An entry's place in the newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuditPosition {
    /// The entry's time.
    pub at: Timestamp,
    /// Its id.
    pub id: AuditId,
}

impl AuditPosition {
    /// The position of `entry`.
    pub fn of(entry: &AuditEntry) -> Self {
        Self {
            at: entry.at,
            id: entry.id,
        }
    }
}

/// One page of entries, as a store is asked for it: newest first, strictly older than
/// `after`, at most `limit`.
#[derive(Debug, Clone)]
pub struct AuditRequest<'a> {
    /// Which entries.
    pub filter: &'a AuditFilter,
    /// Only entries strictly older than this position.
    pub after: Option<AuditPosition>,
    /// At most this many.
    pub limit: usize,
}

impl AuditRequest<'_> {
    /// Whether `entry` belongs on this page apart from the limit.
    pub fn admits(&self, entry: &AuditEntry) -> bool {
        self.after
            .is_none_or(|after| AuditPosition::of(entry) < after)
            && self.filter.matches(entry)
    }
}

/// One page of the audit log.
#[derive(Debug, Clone)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as the cursor to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}
