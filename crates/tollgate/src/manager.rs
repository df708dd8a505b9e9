//! The lifecycle service.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::audit::{
    Actor, AuditAction, AuditEntry, AuditFilter, AuditPage, AuditPosition, AuditRequest, Client,
    Context, Outcome,
};
use crate::cache::{CacheConfig, CoarseClock, Lookup, Ticket, VerifyCache};
use crate::clock::{Clock, SystemClock, truncate_to_micros};
use crate::error::{Error, StoreTimeout};
use crate::file::TokenFile;
use crate::matcher::Query;
use crate::name::{
    TokenName, normalize_scopes, validate_description, validate_owner, validate_query,
};
use crate::record::{PreviousSecret, SealedSecret, TokenId, TokenRecord};
use crate::secret::{
    EncryptionKey, Malformed, PlaintextToken, SecretHash, TokenFormat, TokenHasher,
};
use crate::store::{
    ListFilter, ListPosition, ListRequest, SearchPosition, SearchRequest, StoreEvent, TokenStore,
};
use crate::usage::UsageTracker;

/// The most items one page may hold.
pub const MAX_PAGE_SIZE: usize = 1000;
/// The page size when none is given.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The longest grace period a regenerated token's old secret may get.
pub const MAX_GRACE_PERIOD: SignedDuration = SignedDuration::from_hours(24 * 30);
/// How often a modification is retried when another writer changed the record in between
/// and the caller did not ask for a specific version. Each round of concurrent writers lets at
/// least one through, so this is far more than contention needs; it only stops a livelock.
const MODIFY_ATTEMPTS: usize = 1000;

/// The longest actor id an audit filter may name.
const MAX_ACTOR_CHARS: usize = 200;

/// How long audit entries are kept unless [`TokenManager::with_audit_retention`] says
/// otherwise: 400 days.
pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(400 * 24 * 3600);

/// The context of changes made through the plain [`TokenManager`] methods.
static APPLICATION: Context = Context {
    actor: Actor {
        kind: crate::audit::ActorKind::Application,
        id: String::new(),
        name: String::new(),
    },
    client: Client {
        address: None,
        user_agent: None,
    },
};

/// How long the [`TokenManager`] waits for its store before it gives up with
/// [`Error::Unavailable`] (whose source is a [`StoreTimeout`]).
///
/// The defaults keep a guarded request under two seconds when the store hangs (a lock held
/// by someone else, a server that accepts connections and never answers).
///
/// A *read* past its deadline changed nothing. A *write* past its deadline has an unknown
/// outcome: the store may still complete it. Stores with timeouts of their own that are
/// shorter (the PostgreSQL store's `statement_timeout` and `lock_timeout`) fail such a write
/// cleanly, rolled back, before this deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Verification, get, list and search. Default 1.5 s.
    pub read: Duration,
    /// Apply, modify, regenerate, delete and the last-used flush. Default 5 s.
    pub write: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            read: Duration::from_millis(1500),
            write: Duration::from_secs(5),
        }
    }
}

/// The one type an application holds: issues, lists, searches, modifies, regenerates, deletes,
/// verifies and exports tokens over a [`TokenStore`].
///
/// Cheap to share: wrap it in an `Arc`.
pub struct TokenManager {
    store: Arc<dyn TokenStore>,
    format: TokenFormat,
    hasher: TokenHasher,
    encryption: Option<EncryptionKey>,
    clock: Arc<dyn Clock>,
    /// Verified records by secret hash.
    cache: Option<Arc<VerifyCache>>,
    /// The time for cache hits, while the clock is the system's and there is a cache.
    coarse: Option<Arc<CoarseClock>>,
    /// Whether `clock` is the system clock (no [`with_clock`](Self::with_clock)).
    system_clock: bool,
    /// Uses seen since the last flush, coalesced per token.
    last_used: UsageTracker,
    deadlines: Deadlines,
    /// A scope whose last enabled holder may not be removed without force.
    protected_scope: Option<String>,
    audit_retention: Duration,
    /// When the audit log was last pruned, in Unix seconds.
    last_prune: std::sync::atomic::AtomicI64,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("store", &self.store)
            .field("format", &self.format)
            .field("hasher", &self.hasher)
            .field("recoverable", &self.encryption.is_some())
            .field("clock", &self.clock)
            .field("cached", &self.cache.as_ref().map(|c| c.len()))
            .field("deadlines", &self.deadlines)
            .field("protected_scope", &self.protected_scope)
            .finish_non_exhaustive()
    }
}

/// When a new token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// At this instant.
    At(Timestamp),
    /// This long after it is issued.
    In(SignedDuration),
}

/// What to issue: a name and optional description, expiry and scopes.
///
/// ```
/// use jiff::SignedDuration;
/// use tollgate::NewToken;
///
/// let request = NewToken::new("deploy bot")
///     .description("Pushes releases")
///     .expires_in(SignedDuration::from_hours(24 * 30))
///     .scopes(["deploy", "read"]);
/// # let _ = request;
/// ```
#[derive(Debug, Clone)]
pub struct NewToken {
    name: String,
    description: String,
    expiry: Option<Expiry>,
    scopes: Vec<String>,
}

impl NewToken {
    /// A token with this name and nothing else.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            expiry: None,
            scopes: Vec::new(),
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Expires at `at`, which must be in the future.
    pub fn expires_at(mut self, at: Timestamp) -> Self {
        self.expiry = Some(Expiry::At(at));
        self
    }

    /// Expires `duration` after issue; `duration` must be positive.
    pub fn expires_in(mut self, duration: SignedDuration) -> Self {
        self.expiry = Some(Expiry::In(duration));
        self
    }

    /// Sets the expiry (or none).
    pub fn expiry(mut self, expiry: Option<Expiry>) -> Self {
        self.expiry = expiry;
        self
    }

    /// Sets the scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}

/// Changes to a token; fields left `None` stay as they are.
///
/// ```
/// use tollgate::TokenUpdate;
///
/// let update = TokenUpdate::default().name("deploy-bot-2").enabled(false).expires_at(None);
/// # let _ = update;
/// ```
#[derive(Debug, Clone, Default)]
pub struct TokenUpdate {
    name: Option<String>,
    description: Option<String>,
    expires_at: Option<Option<Timestamp>>,
    scopes: Option<Vec<String>>,
    enabled: Option<bool>,
    expected_version: Option<u64>,
    force: bool,
}

impl TokenUpdate {
    /// Renames the token.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Replaces the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets (`Some`, in the future) or removes (`None`) the expiry.
    pub fn expires_at(mut self, expires_at: Option<Timestamp>) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Replaces the scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Enables or disables the token. A disabled token fails verification until enabled.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// Applies the update only if the record is still at `version` (optimistic concurrency);
    /// otherwise [`Error::VersionConflict`].
    pub fn expected_version(mut self, version: u64) -> Self {
        self.expected_version = Some(version);
        self
    }

    /// Goes ahead even when this disables or descopes the last enabled token holding the
    /// [protected scope](TokenManager::with_protected_scope).
    ///
    /// **This can lock every administrator out**: only a new token issued with direct access
    /// to the store (the CLI on the store itself) lets anyone in again.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.expires_at.is_none()
            && self.scopes.is_none()
            && self.enabled.is_none()
    }
}

/// How to regenerate a token's secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct Regenerate {
    grace: Option<SignedDuration>,
    expected_version: Option<u64>,
}

impl Regenerate {
    /// Keeps the old secret working for `grace` (at most [`MAX_GRACE_PERIOD`], and never past
    /// the token's expiry), so callers can switch over without downtime. Without it the old
    /// secret stops working when regenerate returns.
    pub fn grace(mut self, grace: SignedDuration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// Regenerates only if the record is still at `version`.
    pub fn expected_version(mut self, version: u64) -> Self {
        self.expected_version = Some(version);
        self
    }
}

/// How to delete a token; see [`TokenManager::delete_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DeleteOptions {
    force: bool,
    expected_version: Option<u64>,
}

impl DeleteOptions {
    /// Deletes only if the token is still at `version` (optimistic concurrency); otherwise
    /// [`Error::VersionConflict`] and nothing is deleted.
    pub fn expected_version(mut self, version: u64) -> Self {
        self.expected_version = Some(version);
        self
    }

    /// Deletes even the last enabled token holding the
    /// [protected scope](TokenManager::with_protected_scope).
    ///
    /// **This can lock every administrator out.**
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }
}

/// A token just issued or regenerated: the record and the plaintext, shown this once.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The stored record.
    pub record: TokenRecord,
    /// The secret token string. It is not stored; hand it to the caller now.
    pub token: PlaintextToken,
}

impl Issued {
    /// The token file with the secret included: the download offered right after apply and
    /// regenerate.
    pub fn token_file(&self, exported_at: Timestamp) -> TokenFile {
        TokenFile {
            exported_at,
            token: self.record.info(),
            secret: Some(self.token.clone()),
        }
    }
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// A fuzzy query over names; results are ranked by relevance instead of age.
    pub query: Option<String>,
    /// Page size, 1 to [`MAX_PAGE_SIZE`]; [`DEFAULT_PAGE_SIZE`] when `None`.
    pub limit: Option<usize>,
    /// The previous page's [`Page::next_cursor`].
    pub cursor: Option<String>,
    /// Which tokens.
    pub filter: ListFilter,
}

/// One page of tokens.
#[derive(Debug, Clone)]
pub struct Page {
    /// The tokens, newest first (or best match first with a query).
    pub items: Vec<TokenRecord>,
    /// Pass this as [`ListOptions::cursor`] to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// The outcome of verifying a presented token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verification {
    /// The token is valid; here is its record.
    Valid(Arc<TokenRecord>),
    /// Not a well-formed token (rejected without touching the store).
    Malformed(Malformed),
    /// Well-formed, but no token has this secret: never issued, deleted, or replaced by
    /// regeneration (after its grace period).
    Unknown,
    /// The token has expired.
    Expired(TokenId),
    /// The token is disabled.
    Disabled(TokenId),
}

impl Verification {
    /// Whether the token is valid.
    pub fn is_valid(&self) -> bool {
        matches!(self, Self::Valid(_))
    }

    /// The record of a valid token.
    pub fn record(&self) -> Option<&TokenRecord> {
        match self {
            Self::Valid(record) => Some(record),
            _ => None,
        }
    }

    /// A sentence saying why verification failed; `None` when valid.
    pub fn failure_reason(&self) -> Option<String> {
        match self {
            Self::Valid(_) => None,
            Self::Malformed(reason) => Some(format!("malformed token: {reason}")),
            Self::Unknown => Some(
                "unknown token: it was never issued, was deleted, or was regenerated".to_owned(),
            ),
            Self::Expired(id) => Some(format!("token {id} has expired")),
            Self::Disabled(id) => Some(format!("token {id} is disabled")),
        }
    }
}

impl TokenManager {
    /// A manager over `store` with the default format (`tg_` prefix), unpeppered SHA-256 and
    /// no recoverable secrets.
    pub fn new<S: TokenStore>(store: S) -> Self {
        Self::from_shared(Arc::new(store))
    }

    /// A manager over a store shared with other code.
    pub fn from_shared(store: Arc<dyn TokenStore>) -> Self {
        Self {
            store,
            format: TokenFormat::default(),
            hasher: TokenHasher::default(),
            encryption: None,
            clock: Arc::new(SystemClock),
            cache: None,
            coarse: None,
            system_clock: true,
            last_used: UsageTracker::default(),
            deadlines: Deadlines::default(),
            protected_scope: None,
            audit_retention: DEFAULT_AUDIT_RETENTION,
            last_prune: std::sync::atomic::AtomicI64::new(0),
        }
        .with_cache(CacheConfig::default())
    }

    /// Sizes the verification cache; a capacity of `0` turns it off.
    ///
    /// Records that verified are served from memory for at most `config.ttl`. This
    /// manager's own changes evict them before they return; changes by other instances are
    /// evicted when the store announces them ([`TokenStore::subscribe`]).
    ///
    /// **Cache trust follows the change feed.** The cache answers only while the store's
    /// feed of changes is live ([`TokenStore::feed_is_live`]) and has been since the entry
    /// was cached: when the feed is lost ([`StoreEvent::Lost`]) every verification goes to
    /// the store (which, if it is down too, fails: a guard answers 503); when it is live
    /// again ([`StoreEvent::Live`]) the cache is emptied and trusted again. A store that
    /// announces changes needs a Tokio runtime to listen: created outside one, the manager
    /// runs without a cache rather than serve revoked tokens.
    ///
    /// **Precision of expiry on a hit.** With the system clock (the default), a cache hit
    /// checks expiry and grace periods against a clock refreshed every millisecond by a
    /// background thread (reading the system clock costs more than the rest of a hit on some
    /// virtual machines): a cached token may verify up to about a millisecond after it
    /// expires, longer only while that thread waits for a core on an overloaded machine. A
    /// store read uses the exact time; a clock set with [`with_clock`](Self::with_clock) is
    /// always read exactly.
    pub fn with_cache(mut self, config: CacheConfig) -> Self {
        self.cache = VerifyCache::new(config).map(Arc::new);
        self.coarse = match (&self.cache, self.coarse.take()) {
            (None, _) => None,
            (Some(_), Some(coarse)) => Some(coarse),
            // Only the system clock is read coarsely; `with_clock` turns it off.
            (Some(_), None) if self.system_clock => CoarseClock::shared(),
            (Some(_), None) => None,
        };
        // Subscribe before reading the feed's state: a change of state after the read is
        // then in the subscription.
        if let Some(events) = self.store.subscribe() {
            match (&self.cache, tokio::runtime::Handle::try_current()) {
                (Some(cache), Ok(runtime)) => {
                    cache.set_trusted(self.store.feed_is_live());
                    runtime.spawn(follow(events, Arc::downgrade(cache)));
                }
                _ => self.cache = None,
            }
        }
        self
    }

    /// Sets how long store calls may take; see [`Deadlines`].
    ///
    /// Deadlines need a Tokio runtime with its time driver (`#[tokio::main]` has it).
    pub fn with_deadlines(mut self, deadlines: Deadlines) -> Self {
        self.deadlines = deadlines;
        self
    }

    /// Protects the tokens holding `scope` (an administrator scope such as
    /// `tollgate:admin`) from a lock-out: deleting, disabling or removing the scope from the
    /// owner's last enabled, unexpired token holding it fails with [`Error::LockOut`], unless
    /// forced ([`TokenUpdate::force`], [`DeleteOptions::force`]).
    ///
    /// The check counts the tokens of the same owner. Two administrators removing each
    /// other's tokens at the same instant can both succeed; the guard is against mistakes,
    /// not against a determined administrator.
    pub fn with_protected_scope(mut self, scope: impl Into<String>) -> Self {
        self.protected_scope = Some(scope.into());
        self
    }

    /// Issues tokens with this format (prefix). Tokens issued under another prefix stop
    /// verifying.
    pub fn with_format(mut self, format: TokenFormat) -> Self {
        self.format = format;
        self
    }

    /// Hashes with this hasher, e.g. [`TokenHasher::with_pepper`].
    ///
    /// **Every token issued under a different hasher stops verifying.**
    pub fn with_hasher(mut self, hasher: TokenHasher) -> Self {
        self.hasher = hasher;
        self
    }

    /// Turns on recoverable secrets: each new or regenerated secret is also stored encrypted
    /// under `key`, and [`download`](Self::download) includes it.
    ///
    /// **This weakens the default**: whoever holds the key and a copy of the store can read
    /// every token issued while this was on.
    pub fn with_encryption_key(mut self, key: EncryptionKey) -> Self {
        self.encryption = Some(key);
        self
    }

    /// Reads the time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self.system_clock = false;
        self.coarse = None;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.store
    }

    /// The token format.
    pub fn format(&self) -> &TokenFormat {
        &self.format
    }

    /// The current time, truncated to microseconds.
    pub fn now(&self) -> Timestamp {
        truncate_to_micros(self.clock.now())
    }

    /// Issues a new token for `owner`. The plaintext is in the result, and nowhere else.
    ///
    /// Errors: `Invalid*` for bad input, [`Error::ExpiryInPast`], [`Error::NameTaken`] when the
    /// owner already has a token by that name (case-insensitively).
    pub async fn apply(&self, owner: &str, new: NewToken) -> Result<Issued, Error> {
        self.apply_in(&APPLICATION, owner, new).await
    }

    async fn apply_in(&self, ctx: &Context, owner: &str, new: NewToken) -> Result<Issued, Error> {
        let now = self.now();
        let issued = self.prepare(owner, new, now)?;
        let entry = self.entry(ctx, AuditAction::Apply, &issued.record, now)?;
        self.write(self.store.insert(&issued.record, &entry))
            .await?;
        Ok(issued)
    }

    /// Issues several tokens for `owner` at once: all of them or, on any error, none (in
    /// stores whose [`TokenStore::insert_many`] is atomic, as the bundled ones are). Much
    /// faster than one [`apply`](Self::apply) each on a store that commits to disk.
    pub async fn apply_many(
        &self,
        owner: &str,
        tokens: impl IntoIterator<Item = NewToken>,
    ) -> Result<Vec<Issued>, Error> {
        self.apply_many_in(&APPLICATION, owner, tokens).await
    }

    async fn apply_many_in(
        &self,
        ctx: &Context,
        owner: &str,
        tokens: impl IntoIterator<Item = NewToken>,
    ) -> Result<Vec<Issued>, Error> {
        let now = self.now();
        let issued = tokens
            .into_iter()
            .map(|new| self.prepare(owner, new, now))
            .collect::<Result<Vec<_>, _>>()?;
        let records: Vec<TokenRecord> = issued.iter().map(|i| i.record.clone()).collect();
        let entries = records
            .iter()
            .map(|record| self.entry(ctx, AuditAction::Apply, record, now))
            .collect::<Result<Vec<_>, _>>()?;
        self.write(self.store.insert_many(&records, &entries))
            .await?;
        Ok(issued)
    }

    /// Validates a request and makes its record and secret.
    fn prepare(&self, owner: &str, new: NewToken, now: Timestamp) -> Result<Issued, Error> {
        let owner = validate_owner(owner)?;
        let name = TokenName::new(&new.name)?;
        let description = validate_description(&new.description)?;
        let scopes = normalize_scopes(new.scopes)?;
        let expires_at = match new.expiry {
            None => None,
            Some(Expiry::At(at)) => Some(self.future(now, at)?),
            Some(Expiry::In(duration)) => {
                let at = now
                    .checked_add(duration)
                    .map_err(|_| Error::ExpiryInPast(now))?;
                Some(self.future(now, at)?)
            }
        };
        let id = TokenId::generate()?;
        let token = self.format.generate()?;
        let record = TokenRecord {
            id,
            owner,
            name: name.as_str().to_owned(),
            description,
            scopes,
            enabled: true,
            created_at: now,
            updated_at: now,
            expires_at,
            last_used_at: None,
            secret_hash: self.hasher.hash(token.expose_secret()),
            previous_secret: None,
            sealed_secret: self.seal(&id, &token)?,
            hint: token.hint(),
            version: 1,
        };
        Ok(Issued { record, token })
    }

    /// The owner's token with this id; [`Error::NotFound`] when there is none.
    pub async fn get(&self, owner: &str, id: TokenId) -> Result<TokenRecord, Error> {
        let owner = validate_owner(owner)?;
        match self.read(self.store.get(id)).await? {
            Some(record) if record.owner == owner => Ok(record),
            _ => Err(Error::NotFound(id)),
        }
    }

    /// One page of the owner's tokens: newest first, or ranked by the fuzzy matcher when
    /// `options.query` is given (ties newest first).
    ///
    /// Pagination is by cursor over a stable order, so tokens added or deleted between pages
    /// do not make the next page repeat or skip others.
    ///
    /// Errors: [`Error::InvalidOwner`], [`Error::InvalidLimit`], [`Error::InvalidQuery`] (longer
    /// than [`MAX_QUERY_CHARS`](crate::MAX_QUERY_CHARS), control characters),
    /// [`Error::InvalidCursor`].
    pub async fn list(&self, owner: &str, options: ListOptions) -> Result<Page, Error> {
        let owner = &validate_owner(owner)?;
        let limit = match options.limit {
            None => DEFAULT_PAGE_SIZE,
            Some(limit @ 1..=MAX_PAGE_SIZE) => limit,
            Some(_) => return Err(Error::InvalidLimit { max: MAX_PAGE_SIZE }),
        };
        let now = self.now();
        let query = options
            .query
            .as_deref()
            .map(validate_query)
            .transpose()?
            .and_then(Query::new);
        let cursor = options
            .cursor
            .as_deref()
            .map(|c| Cursor::decode(c, query.as_ref()))
            .transpose()?;
        match query {
            None => {
                let after = match cursor {
                    None => None,
                    Some(Cursor::List(position)) => Some(position),
                    Some(Cursor::Search(..)) => return Err(Error::InvalidCursor),
                };
                let request = ListRequest {
                    owner,
                    after,
                    limit: limit + 1,
                    filter: options.filter,
                    now,
                };
                let mut items = self.read(self.store.list(&request)).await?;
                let next_cursor = (items.len() > limit).then(|| {
                    items.truncate(limit);
                    Cursor::List(ListPosition::of(&items[limit - 1])).encode(None)
                });
                Ok(Page { items, next_cursor })
            }
            Some(query) => {
                let after = match cursor {
                    None => None,
                    Some(Cursor::Search(position)) => Some(position),
                    Some(Cursor::List(_)) => return Err(Error::InvalidCursor),
                };
                let request = SearchRequest {
                    owner,
                    query: &query,
                    after,
                    limit: limit + 1,
                    filter: options.filter,
                    now,
                };
                let mut hits = self.read(self.store.search(&request)).await?;
                let next_cursor = (hits.len() > limit).then(|| {
                    hits.truncate(limit);
                    Cursor::Search(hits[limit - 1].position()).encode(Some(&query))
                });
                let items = hits.into_iter().map(|hit| hit.record).collect();
                Ok(Page { items, next_cursor })
            }
        }
    }

    /// Changes a token. Returns the new record.
    ///
    /// Errors: `Invalid*` for bad input, [`Error::ExpiryInPast`] for a new expiry that is not in
    /// the future, [`Error::NotFound`], [`Error::NameTaken`] on a rename to a name the owner
    /// already uses, [`Error::VersionConflict`] when [`TokenUpdate::expected_version`] no longer
    /// matches. On error nothing changes. A token disabled here fails verification as soon as
    /// this returns.
    pub async fn modify(
        &self,
        owner: &str,
        id: TokenId,
        update: TokenUpdate,
    ) -> Result<TokenRecord, Error> {
        Ok(self.change(&APPLICATION, owner, id, update, None).await?.0)
    }

    /// Replaces a token's secret and returns the new one, shown this once.
    ///
    /// Without a grace period the old secret fails verification as soon as this returns. With
    /// one, the old secret keeps working until the grace period ends (or the token expires,
    /// whichever comes first); a second regeneration ends the first one's grace period.
    pub async fn regenerate(
        &self,
        owner: &str,
        id: TokenId,
        options: Regenerate,
    ) -> Result<Issued, Error> {
        self.modify_and_regenerate(owner, id, TokenUpdate::default(), options)
            .await
    }

    /// [`modify`](Self::modify) and [`regenerate`](Self::regenerate) in one atomic write:
    /// either both happen or neither does.
    pub async fn modify_and_regenerate(
        &self,
        owner: &str,
        id: TokenId,
        update: TokenUpdate,
        options: Regenerate,
    ) -> Result<Issued, Error> {
        self.modify_and_regenerate_in(&APPLICATION, owner, id, update, options)
            .await
    }

    async fn modify_and_regenerate_in(
        &self,
        ctx: &Context,
        owner: &str,
        id: TokenId,
        update: TokenUpdate,
        options: Regenerate,
    ) -> Result<Issued, Error> {
        let (record, token) = self.change(ctx, owner, id, update, Some(options)).await?;
        let token = token.expect("a regeneration always yields a token");
        Ok(Issued { record, token })
    }

    /// Validates everything first, then rewrites the record in one conditional write.
    async fn change(
        &self,
        ctx: &Context,
        owner: &str,
        id: TokenId,
        update: TokenUpdate,
        regenerate: Option<Regenerate>,
    ) -> Result<(TokenRecord, Option<PlaintextToken>), Error> {
        let name = update.name.as_deref().map(TokenName::new).transpose()?;
        let description = update
            .description
            .as_deref()
            .map(validate_description)
            .transpose()?;
        let scopes = update.scopes.clone().map(normalize_scopes).transpose()?;
        let expected_version = update
            .expected_version
            .or(regenerate.and_then(|r| r.expected_version));
        let fresh = match regenerate {
            None => None,
            Some(options) => {
                let grace = options.grace.unwrap_or(SignedDuration::ZERO);
                if grace.is_negative() {
                    return Err(Error::InvalidGracePeriod("it is negative"));
                }
                if grace > MAX_GRACE_PERIOD {
                    return Err(Error::InvalidGracePeriod("it is longer than 30 days"));
                }
                let token = self.format.generate()?;
                let hash = self.hasher.hash(token.expose_secret());
                let sealed = self.seal(&id, &token)?;
                Some((grace, token, hash, sealed))
            }
        };
        let grace_seconds = fresh.as_ref().map(|(grace, ..)| grace.as_secs());
        let record = self
            .rewrite(
                ctx,
                owner,
                id,
                expected_version,
                update.force,
                grace_seconds,
                |record, now| {
                    if update.is_empty() && fresh.is_none() {
                        return Ok(false);
                    }
                    if let Some(name) = &name {
                        record.name = name.as_str().to_owned();
                    }
                    if let Some(description) = &description {
                        record.description.clone_from(description);
                    }
                    if let Some(scopes) = &scopes {
                        record.scopes.clone_from(scopes);
                    }
                    if let Some(enabled) = update.enabled {
                        record.enabled = enabled;
                    }
                    if let Some(expires_at) = update.expires_at {
                        record.expires_at =
                            expires_at.map(|at| self.future(now, at)).transpose()?;
                    }
                    if let Some((grace, token, hash, sealed)) = &fresh {
                        let valid_until =
                            truncate_to_micros(now.checked_add(*grace).unwrap_or(Timestamp::MAX));
                        record.previous_secret = grace.is_positive().then_some(PreviousSecret {
                            hash: record.secret_hash,
                            valid_until,
                        });
                        record.secret_hash = *hash;
                        record.hint = token.hint();
                        record.sealed_secret.clone_from(sealed);
                    }
                    // A grace period never outlives the token.
                    if let (Some(previous), Some(expires_at)) =
                        (&mut record.previous_secret, record.expires_at)
                    {
                        previous.valid_until = previous.valid_until.min(expires_at);
                    }
                    Ok(true)
                },
            )
            .await?;
        Ok((record, fresh.map(|(_, token, _, _)| token)))
    }

    /// Deletes a token for good. Once this returns, the token fails verification.
    ///
    /// Errors: [`Error::NotFound`]; [`Error::LockOut`] for the last token holding the
    /// [protected scope](Self::with_protected_scope) (see [`delete_with`](Self::delete_with)).
    pub async fn delete(&self, owner: &str, id: TokenId) -> Result<(), Error> {
        self.delete_with(owner, id, DeleteOptions::default()).await
    }

    /// [`delete`](Self::delete) with options.
    pub async fn delete_with(
        &self,
        owner: &str,
        id: TokenId,
        options: DeleteOptions,
    ) -> Result<(), Error> {
        self.delete_in(&APPLICATION, owner, id, options).await
    }

    async fn delete_in(
        &self,
        ctx: &Context,
        owner: &str,
        id: TokenId,
        options: DeleteOptions,
    ) -> Result<(), Error> {
        let record = self.get(owner, id).await?;
        if !options.force && self.guards(&record, self.now()) {
            self.ensure_another_guardian(&record).await?;
        }
        if let Some(expected) = options.expected_version
            && record.version != expected
        {
            return Err(Error::VersionConflict {
                id,
                expected,
                actual: record.version,
            });
        }
        let entry = self.entry(ctx, AuditAction::Delete, &record, self.now())?;
        let deleted = match options.expected_version {
            Some(expected) => {
                self.write(self.store.delete_version(id, expected, &entry))
                    .await?
            }
            None => self.write(self.store.delete(id, &entry)).await?,
        };
        if deleted {
            self.evict(id);
            self.last_used.forget(id);
            Ok(())
        } else {
            Err(Error::NotFound(id))
        }
    }

    /// The token file for a token in the list. It includes the secret only in recoverable
    /// mode (see [`with_encryption_key`](Self::with_encryption_key)); otherwise it says how
    /// to get a new one.
    pub async fn download(&self, owner: &str, id: TokenId) -> Result<TokenFile, Error> {
        let record = self.get(owner, id).await?;
        let secret = match (&self.encryption, &record.sealed_secret) {
            (Some(key), Some(sealed)) => Some(key.open(&id, &sealed.0)?),
            _ => None,
        };
        Ok(TokenFile {
            exported_at: self.now(),
            token: record.info(),
            secret,
        })
    }

    /// Verifies a presented token string.
    ///
    /// Malformed strings are rejected by format and checksum before the store is touched.
    /// Store failures are errors, never a pass: a guard must treat `Err` as "deny".
    pub fn verify<'a>(
        &'a self,
        presented: &'a str,
    ) -> impl Future<Output = Result<Verification, Error>> + Send + 'a {
        // Everything that needs no store runs now, so that a rejected or cached token costs
        // no more than a small, already finished future: the store read is boxed, only on a
        // miss. (Kept inline, its state made every call's future hundreds of bytes, copied
        // on each return: about 20 ns a call.)
        match self.verify_in_memory(presented) {
            Step::Done(outcome) => VerifyFuture::Done(Some(outcome)),
            Step::Read { hash, now, ticket } => {
                VerifyFuture::Read(Box::pin(self.verify_from_store(hash, now, ticket)))
            }
        }
    }

    /// The format check and the cache.
    fn verify_in_memory(&self, presented: &str) -> Step {
        if let Err(reason) = self.format.check(presented) {
            return Step::Done(Verification::Malformed(reason));
        }
        let hash = self.hasher.hash(presented);
        let ticket = match &self.cache {
            None => None,
            Some(cache) => {
                let now = match &self.coarse {
                    Some(coarse) => coarse.now_micros(),
                    None => self.clock.now().as_microsecond(),
                };
                match cache.lookup(&hash, now) {
                    Lookup::Hit(outcome) => return Step::Done(outcome),
                    Lookup::Miss(ticket) => Some(ticket),
                }
            }
        };
        // What is read from the store is checked against the exact time.
        let now = self.clock.now();
        Step::Read { hash, now, ticket }
    }

    /// The store, for a token the cache does not hold.
    async fn verify_from_store(
        &self,
        hash: SecretHash,
        now: Timestamp,
        ticket: Option<Ticket>,
    ) -> Result<Verification, Error> {
        let Some(record) = self.read(self.store.find_by_hash(&hash)).await? else {
            return Ok(Verification::Unknown);
        };
        let record = Arc::new(record);
        match (&self.cache, ticket) {
            (Some(cache), Some(ticket)) => {
                let failure = check(&record, &hash, now);
                // Only what verifies is cached: made-up tokens cannot fill the cache. The use
                // is recorded in the new entry.
                if failure.is_none()
                    && !cache.insert(&hash, record.clone(), ticket, now.as_microsecond(), true)
                {
                    // Not cached (something was evicted meanwhile): keep the use elsewhere.
                    self.last_used.note(record.id, now);
                }
                Ok(failure.unwrap_or(Verification::Valid(record)))
            }
            _ => Ok(self.conclude(record, &hash, now)),
        }
    }

    /// The outcome for a record read from the store, noting a successful use.
    fn conclude(
        &self,
        record: Arc<TokenRecord>,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Verification {
        match check(&record, hash, now) {
            Some(failure) => failure,
            None => {
                self.last_used.note(record.id, now);
                Verification::Valid(record)
            }
        }
    }

    /// Writes the coalesced `last_used_at` times of verified tokens to the store. Call it
    /// periodically and at shutdown; verification itself never writes.
    pub async fn flush_last_used(&self) -> Result<(), Error> {
        let mut pending = self.last_used.drain();
        if let Some(cache) = &self.cache {
            cache.take_uses(&mut pending);
        }
        // One entry per token, the latest use, in whole microseconds.
        pending.sort_unstable_by(|a, b| b.cmp(a));
        pending.dedup_by_key(|(id, _)| *id);
        for (_, at) in &mut pending {
            *at = truncate_to_micros(*at);
        }
        if pending.is_empty() {
            return Ok(());
        }
        if let Err(err) = self.write(self.store.record_last_used(&pending)).await {
            // Put them back so the next flush retries them.
            self.last_used.restore(pending);
            return Err(err);
        }
        Ok(())
    }

    /// Forgets what is held in memory about a token that just changed in the store.
    fn evict(&self, id: TokenId) {
        if let Some(cache) = &self.cache {
            cache.evict(id);
        }
    }

    fn future(&self, now: Timestamp, at: Timestamp) -> Result<Timestamp, Error> {
        let at = truncate_to_micros(at);
        if at <= now {
            return Err(Error::ExpiryInPast(at));
        }
        Ok(at)
    }

    fn seal(&self, id: &TokenId, token: &PlaintextToken) -> Result<Option<SealedSecret>, Error> {
        self.encryption
            .as_ref()
            .map(|key| key.seal(id, token).map(SealedSecret))
            .transpose()
    }

    /// Reads the record, lets `change` edit it, and writes it back conditionally on its
    /// version. Retries on a concurrent change unless the caller pinned a version, so a
    /// change that names no version is never refused for a race it did not know about.
    #[allow(clippy::too_many_arguments)]
    async fn rewrite<F>(
        &self,
        ctx: &Context,
        owner: &str,
        id: TokenId,
        expected_version: Option<u64>,
        force: bool,
        grace_seconds: Option<i64>,
        change: F,
    ) -> Result<TokenRecord, Error>
    where
        F: Fn(&mut TokenRecord, Timestamp) -> Result<bool, Error> + Send + Sync,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let old = self.get(owner, id).await?;
            if let Some(expected) = expected_version
                && old.version != expected
            {
                return Err(Error::VersionConflict {
                    id,
                    expected,
                    actual: old.version,
                });
            }
            let now = self.now();
            let mut record = old.clone();
            if !change(&mut record, now)? {
                return Ok(old);
            }
            if !force && self.guards(&old, now) && !self.guards(&record, now) {
                self.ensure_another_guardian(&old).await?;
            }
            record.version = old.version + 1;
            record.updated_at = now.max(old.updated_at);
            let entry = self.change_entry(ctx, &old, &record, grace_seconds, now)?;
            match self
                .write(self.store.update(&record, old.version, Some(&entry)))
                .await
            {
                Ok(()) => {
                    self.evict(id);
                    return Ok(record);
                }
                Err(Error::VersionConflict { .. })
                    if expected_version.is_none() && attempts < MODIFY_ATTEMPTS =>
                {
                    // Let the writer that won finish before reading again.
                    tokio::task::yield_now().await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Whether `record` is one of the tokens that keep the protected scope usable: enabled,
    /// unexpired and holding it.
    fn guards(&self, record: &TokenRecord, now: Timestamp) -> bool {
        self.protected_scope.as_deref().is_some_and(|scope| {
            record.enabled && !record.is_expired_at(now) && record.has_scope(scope)
        })
    }

    /// Fails with [`Error::LockOut`] unless a token other than `record` of the same owner
    /// guards the protected scope.
    async fn ensure_another_guardian(&self, record: &TokenRecord) -> Result<(), Error> {
        let Some(scope) = self.protected_scope.as_deref() else {
            return Ok(());
        };
        let now = self.now();
        let mut request = ListRequest {
            owner: &record.owner,
            after: None,
            limit: 500,
            filter: ListFilter {
                enabled: Some(true),
                expired: Some(false),
            },
            now,
        };
        loop {
            let page = self.read(self.store.list(&request)).await?;
            if page
                .iter()
                .any(|other| other.id != record.id && self.guards(other, now))
            {
                return Ok(());
            }
            if page.len() < request.limit {
                return Err(Error::LockOut {
                    scope: scope.to_owned(),
                });
            }
            request.after = page.last().map(ListPosition::of);
        }
    }

    /// The audit entry of a change to `record` at `now`.
    fn entry(
        &self,
        ctx: &Context,
        action: AuditAction,
        record: &TokenRecord,
        now: Timestamp,
    ) -> Result<AuditEntry, Error> {
        Ok(AuditEntry {
            id: TokenId::generate()?,
            at: now,
            actor: ctx.actor.clone(),
            action,
            token_id: Some(record.id),
            token_name: Some(record.name.clone()),
            owner: Some(record.owner.clone()),
            outcome: Outcome::Success,
            changes: Vec::new(),
            grace_seconds: None,
            reason: None,
            client: ctx.client.clone(),
        })
    }

    /// The audit entry of a rewrite from `old` to `new`: which fields changed, and the
    /// action that best names it (regenerate, enable, disable or modify).
    fn change_entry(
        &self,
        ctx: &Context,
        old: &TokenRecord,
        new: &TokenRecord,
        grace_seconds: Option<i64>,
        now: Timestamp,
    ) -> Result<AuditEntry, Error> {
        let mut changes = Vec::new();
        let fields = [
            ("name", old.name != new.name),
            ("description", old.description != new.description),
            ("expires_at", old.expires_at != new.expires_at),
            ("scopes", old.scopes != new.scopes),
            ("enabled", old.enabled != new.enabled),
            ("secret", old.secret_hash != new.secret_hash),
        ];
        for (field, changed) in fields {
            if changed {
                changes.push(field.to_owned());
            }
        }
        let action = if old.secret_hash != new.secret_hash {
            AuditAction::Regenerate
        } else if old.enabled != new.enabled {
            if new.enabled {
                AuditAction::Enable
            } else {
                AuditAction::Disable
            }
        } else {
            AuditAction::Modify
        };
        let mut entry = self.entry(ctx, action, new, now)?;
        entry.changes = changes;
        entry.grace_seconds = grace_seconds;
        Ok(entry)
    }

    /// Records a management request that was turned away (missing, invalid or
    /// under-scoped credentials): `reason` says why, in a few words. Never pass the
    /// presented token.
    pub async fn record_refusal(
        &self,
        ctx: &Context,
        reason: &str,
        owner: Option<&str>,
    ) -> Result<(), Error> {
        let entry = AuditEntry {
            id: TokenId::generate()?,
            at: self.now(),
            actor: ctx.actor.clone(),
            action: AuditAction::Refused,
            token_id: None,
            token_name: None,
            owner: owner.map(str::to_owned),
            outcome: Outcome::Refused,
            changes: Vec::new(),
            grace_seconds: None,
            reason: Some(reason.to_owned()),
            client: ctx.client.clone(),
        };
        self.write(self.store.append_audit(&entry)).await
    }

    /// One page of the audit log, newest first, filtered. `cursor` is the previous page's
    /// [`AuditPage::next_cursor`]; `limit` is 1 to [`MAX_PAGE_SIZE`] ([`DEFAULT_PAGE_SIZE`]
    /// when `None`).
    pub async fn audit(
        &self,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<AuditPage, Error> {
        let limit = match limit {
            None => DEFAULT_PAGE_SIZE,
            Some(limit @ 1..=MAX_PAGE_SIZE) => limit,
            Some(_) => return Err(Error::InvalidLimit { max: MAX_PAGE_SIZE }),
        };
        if filter
            .actor
            .as_ref()
            .is_some_and(|actor| actor.chars().count() > MAX_ACTOR_CHARS)
        {
            return Err(Error::InvalidAuditFilter(
                "the actor is longer than 200 characters",
            ));
        }
        if let Some(owner) = &filter.owner {
            validate_owner(owner)?;
        }
        let after = cursor.map(decode_audit_cursor).transpose()?;
        // A range that ends before it starts is empty, not an error.
        if let (Some(since), Some(until)) = (filter.since, filter.until)
            && since >= until
        {
            return Ok(AuditPage {
                entries: Vec::new(),
                next_cursor: None,
            });
        }
        let request = AuditRequest {
            filter,
            after,
            limit: limit + 1,
        };
        let mut entries = self.read(self.store.audit(&request)).await?;
        let next_cursor = (entries.len() > limit).then(|| {
            entries.truncate(limit);
            let last = AuditPosition::of(&entries[limit - 1]);
            format!("a.{}.{}", last.at.as_microsecond(), last.id)
        });
        Ok(AuditPage {
            entries,
            next_cursor,
        })
    }

    /// Removes audit entries older than `retention`; returns how many. Run it
    /// periodically (the guard's flusher in `tollgate-axum` does, with the retention set by
    /// [`with_audit_retention`](Self::with_audit_retention)).
    pub async fn prune_audit(&self, retention: Duration) -> Result<u64, Error> {
        let retention = SignedDuration::try_from(retention).unwrap_or(SignedDuration::MAX);
        let before = self.now().checked_sub(retention).unwrap_or(Timestamp::MIN);
        self.write(self.store.prune_audit(before)).await
    }

    /// How long audit entries are kept by [`maintain`](Self::maintain): 400 days unless set
    /// here.
    pub fn with_audit_retention(mut self, retention: Duration) -> Self {
        self.audit_retention = retention;
        self
    }

    /// The audit retention.
    pub fn audit_retention(&self) -> Duration {
        self.audit_retention
    }

    /// Periodic upkeep: writes the coalesced last-used times
    /// ([`flush_last_used`](Self::flush_last_used)) and, at most once an hour, prunes the
    /// audit log to its retention. Background tasks call this.
    pub async fn maintain(&self) -> Result<(), Error> {
        let flushed = self.flush_last_used().await;
        let now = self.now().as_second();
        let last = self.last_prune.load(std::sync::atomic::Ordering::Relaxed);
        if now - last >= 3600
            && self
                .last_prune
                .compare_exchange(
                    last,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
        {
            self.prune_audit(self.audit_retention).await?;
        }
        flushed
    }

    /// The manager acting for `ctx`: its changes are recorded in the audit log as made by
    /// that actor, from that client.
    ///
    /// ```
    /// use tollgate::{Actor, Context, MemoryStore, NewToken, TokenManager};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tollgate::Error> {
    /// let manager = TokenManager::new(MemoryStore::new());
    /// let alice = Context::new(Actor::user("alice"));
    /// manager.acting(&alice).apply("alice", NewToken::new("laptop")).await?;
    /// let log = manager.audit(&Default::default(), None, None).await?;
    /// assert_eq!(log.entries[0].actor.id, "alice");
    /// # Ok(())
    /// # }
    /// ```
    pub fn acting<'a>(&'a self, ctx: &'a Context) -> Acting<'a> {
        Acting { manager: self, ctx }
    }

    /// Runs a store read within the read deadline.
    async fn read<T>(&self, call: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        within(self.deadlines.read, call).await
    }

    /// Runs a store write within the write deadline.
    async fn write<T>(&self, call: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        within(self.deadlines.write, call).await
    }
}

async fn within<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => Err(Error::Unavailable(Box::new(StoreTimeout::new(limit)))),
    }
}

/// A [`TokenManager`] acting for someone: the same changes, recorded in the audit log as
/// theirs. See [`TokenManager::acting`].
#[derive(Debug, Clone, Copy)]
pub struct Acting<'a> {
    manager: &'a TokenManager,
    ctx: &'a Context,
}

impl Acting<'_> {
    /// [`TokenManager::apply`].
    pub async fn apply(&self, owner: &str, new: NewToken) -> Result<Issued, Error> {
        self.manager.apply_in(self.ctx, owner, new).await
    }

    /// [`TokenManager::apply_many`].
    pub async fn apply_many(
        &self,
        owner: &str,
        tokens: impl IntoIterator<Item = NewToken>,
    ) -> Result<Vec<Issued>, Error> {
        self.manager.apply_many_in(self.ctx, owner, tokens).await
    }

    /// [`TokenManager::modify`].
    pub async fn modify(
        &self,
        owner: &str,
        id: TokenId,
        update: TokenUpdate,
    ) -> Result<TokenRecord, Error> {
        Ok(self
            .manager
            .change(self.ctx, owner, id, update, None)
            .await?
            .0)
    }

    /// [`TokenManager::regenerate`].
    pub async fn regenerate(
        &self,
        owner: &str,
        id: TokenId,
        options: Regenerate,
    ) -> Result<Issued, Error> {
        self.modify_and_regenerate(owner, id, TokenUpdate::default(), options)
            .await
    }

    /// [`TokenManager::modify_and_regenerate`].
    pub async fn modify_and_regenerate(
        &self,
        owner: &str,
        id: TokenId,
        update: TokenUpdate,
        options: Regenerate,
    ) -> Result<Issued, Error> {
        self.manager
            .modify_and_regenerate_in(self.ctx, owner, id, update, options)
            .await
    }

    /// [`TokenManager::delete`].
    pub async fn delete(&self, owner: &str, id: TokenId) -> Result<(), Error> {
        self.delete_with(owner, id, DeleteOptions::default()).await
    }

    /// [`TokenManager::delete_with`].
    pub async fn delete_with(
        &self,
        owner: &str,
        id: TokenId,
        options: DeleteOptions,
    ) -> Result<(), Error> {
        self.manager.delete_in(self.ctx, owner, id, options).await
    }

    /// Records a refused request by this actor; see [`TokenManager::record_refusal`].
    pub async fn record_refusal(&self, reason: &str, owner: Option<&str>) -> Result<(), Error> {
        self.manager.record_refusal(self.ctx, reason, owner).await
    }
}

fn decode_audit_cursor(text: &str) -> Result<AuditPosition, Error> {
    let parts: Vec<&str> = text.split('.').collect();
    let position = match parts.as_slice() {
        ["a", micros, id] => micros
            .parse()
            .ok()
            .and_then(|m| Timestamp::from_microsecond(m).ok())
            .zip(id.parse().ok())
            .map(|(at, id)| AuditPosition { at, id }),
        _ => None,
    };
    position.ok_or(Error::InvalidCursor)
}

/// What [`TokenManager::verify`] returns: already decided, or the boxed store read.
enum VerifyFuture<'a> {
    /// `None` once taken.
    Done(Option<Verification>),
    Read(std::pin::Pin<Box<dyn Future<Output = Result<Verification, Error>> + Send + 'a>>),
}

impl Future for VerifyFuture<'_> {
    type Output = Result<Verification, Error>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            Self::Done(outcome) => {
                std::task::Poll::Ready(Ok(outcome.take().expect("polled after completion")))
            }
            Self::Read(read) => read.as_mut().poll(cx),
        }
    }
}

/// How far verification got without the store.
enum Step {
    /// Decided: malformed, or answered by the cache.
    Done(Verification),
    /// The store must be read; `ticket` allows caching what it returns.
    Read {
        hash: SecretHash,
        now: Timestamp,
        ticket: Option<Ticket>,
    },
}

/// Why `record`, found by `hash`, does not verify at `now`; `None` when it does.
fn check(record: &TokenRecord, hash: &SecretHash, now: Timestamp) -> Option<Verification> {
    // The record was found by this hash; comparing again, in constant time, guards against a
    // store whose index and records disagree, and tells the current secret from the previous.
    let current = record.secret_hash == *hash;
    let in_grace = !current
        && record
            .previous_secret
            .as_ref()
            .is_some_and(|p| p.hash == *hash && now < p.valid_until);
    if !current && !in_grace {
        return Some(Verification::Unknown);
    }
    if !record.enabled {
        return Some(Verification::Disabled(record.id));
    }
    if record.is_expired_at(now) {
        return Some(Verification::Expired(record.id));
    }
    None
}

/// Evicts what other instances change, for as long as the cache lives.
async fn follow(
    mut events: tokio::sync::broadcast::Receiver<StoreEvent>,
    cache: std::sync::Weak<VerifyCache>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let event = events.recv().await;
        let Some(cache) = cache.upgrade() else {
            return;
        };
        match event {
            Ok(StoreEvent::Changed(id)) => cache.evict(id),
            Ok(StoreEvent::Reset) | Err(RecvError::Lagged(_)) => cache.clear(),
            Ok(StoreEvent::Lost) => cache.set_trusted(false),
            Ok(StoreEvent::Live) => cache.set_trusted(true),
            Err(RecvError::Closed) => {
                // Nobody will tell us about changes any more: stop caching.
                cache.set_trusted(false);
                return;
            }
        }
    }
}

/// A position in a listing, as handed to clients.
///
/// Format: `l.<created µs>.<id>` for plain listings, `s.<score>.<created µs>.<id>.<query
/// crc>` for searches; the crc binds a search cursor to its query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    List(ListPosition),
    Search(SearchPosition),
}

impl Cursor {
    fn encode(&self, query: Option<&Query>) -> String {
        match self {
            Self::List(p) => format!("l.{}.{}", p.created_at.as_microsecond(), p.id),
            Self::Search(s) => format!(
                "s.{}.{}.{}.{:08x}",
                s.score,
                s.position.created_at.as_microsecond(),
                s.position.id,
                query.map_or(0, query_tag)
            ),
        }
    }

    fn decode(text: &str, query: Option<&Query>) -> Result<Self, Error> {
        let parts: Vec<&str> = text.split('.').collect();
        let position = |created: &str, id: &str| -> Option<ListPosition> {
            let micros: i64 = created.parse().ok()?;
            Some(ListPosition {
                created_at: Timestamp::from_microsecond(micros).ok()?,
                id: id.parse().ok()?,
            })
        };
        let cursor = match parts.as_slice() {
            ["l", created, id] => position(created, id).map(Self::List),
            ["s", score, created, id, tag] => {
                let tag_matches =
                    query.is_some_and(|q| u32::from_str_radix(tag, 16).ok() == Some(query_tag(q)));
                match (tag_matches, score.parse(), position(created, id)) {
                    (true, Ok(score), Some(position)) => {
                        Some(Self::Search(SearchPosition { score, position }))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        cursor.ok_or(Error::InvalidCursor)
    }
}

fn query_tag(query: &Query) -> u32 {
    crc32fast::hash(query.as_str().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bind_their_query() {
        let position = ListPosition {
            created_at: Timestamp::from_microsecond(1_700_000_000_123_456).unwrap(),
            id: TokenId::from_bytes([3; 16]),
        };
        let list = Cursor::List(position);
        assert_eq!(Cursor::decode(&list.encode(None), None).unwrap(), list);

        let q = Query::new("deploy").unwrap();
        let other = Query::new("billing").unwrap();
        let search = Cursor::Search(SearchPosition {
            score: 4321,
            position,
        });
        let text = search.encode(Some(&q));
        assert_eq!(Cursor::decode(&text, Some(&q)).unwrap(), search);
        assert!(Cursor::decode(&text, Some(&other)).is_err());
        assert!(Cursor::decode(&text, None).is_err());
        for bad in ["", "l", "l.x.y", "s.1.2.3.4", "l.1.zz", "q.1.2"] {
            assert!(Cursor::decode(bad, None).is_err(), "{bad:?}");
        }
    }
}
