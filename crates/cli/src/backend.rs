//! Where the commands' tokens are: a store this process opens (redb or PostgreSQL), or a
//! running `tollgate serve` reached over its management API. Both answer with the
//! management API's views, so every command prints the same either way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tollgate::jiff::{SignedDuration, Timestamp};
use tollgate::{
    Actor, AuditFilter, Context, DeleteOptions, EncryptionKey, Expiry, ListOptions, NewToken,
    PREFIX_SETTING, Regenerate, TokenFormat, TokenHasher, TokenId, TokenInfo, TokenManager,
    TokenStore, TokenUpdate, Verification,
};
use tollgate_axum::management::{AuditPageView, IssuedView, PageView, TokenView, token_file_name};
use tollgate_postgres::PgStore;
use tollgate_redb::{RedbStore, RedbStoreError};
use zeroize::{Zeroize as _, Zeroizing};

use crate::api::ADMIN_SCOPE;
use crate::remote::Remote;
use crate::{Failure, sentence};

/// The prefix a store without a recorded one issues with.
const DEFAULT_PREFIX: &str = "tg";

/// A just-issued or regenerated token with its secret, wiped from memory when dropped.
pub(crate) struct Fresh(pub(crate) IssuedView);

impl Drop for Fresh {
    fn drop(&mut self) {
        self.0.token.zeroize();
    }
}

impl std::fmt::Debug for Fresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fresh")
            .field("record", &self.0.record)
            .finish_non_exhaustive()
    }
}

impl Fresh {
    /// The token file with the secret, as `Issued::token_file` makes it.
    pub(crate) fn token_file(&self, exported_at: Timestamp) -> Result<Zeroizing<String>, Failure> {
        let view = &self.0.record;
        let token = TokenInfo {
            id: view.id,
            owner: view.owner.clone(),
            name: view.name.clone(),
            description: view.description.clone(),
            scopes: view.scopes.clone(),
            enabled: view.enabled,
            created_at: view.created_at,
            updated_at: view.updated_at,
            expires_at: view.expires_at,
            last_used_at: view.last_used_at,
            hint: view.hint.clone(),
        };
        // The core makes a token file with a secret only from an `Issued` or by reading one,
        // and a server's answer is no `Issued`: read it, so that the layout and the note are
        // the core's either way.
        #[derive(serde::Serialize)]
        struct Wire<'a> {
            format: &'static str,
            version: u32,
            exported_at: Timestamp,
            token: &'a TokenInfo,
            secret_included: bool,
            secret: &'a str,
            note: &'static str,
        }
        let wire = Zeroizing::new(
            serde_json::to_string(&Wire {
                format: tollgate::TOKEN_FILE_FORMAT,
                version: tollgate::TOKEN_FILE_VERSION,
                exported_at,
                token: &token,
                secret_included: true,
                secret: &self.0.token,
                note: "",
            })
            .expect("a token file always serializes"),
        );
        let file: tollgate::TokenFile = serde_json::from_str(&wire).map_err(|err| {
            Failure::system(
                "internal_error",
                format!("cannot make the token file: {err}"),
            )
        })?;
        Ok(Zeroizing::new(file.to_json()))
    }
}

/// A token file as downloaded.
#[derive(Debug)]
pub(crate) struct Download {
    /// The file's content.
    pub(crate) json: Zeroizing<String>,
    /// Whether it holds the secret (recoverable mode).
    pub(crate) secret_included: bool,
    /// The name the management API offers it under.
    pub(crate) offered_name: String,
}

/// The changes `modify` asks for; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub(crate) struct Change {
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) expires_at: Option<Option<Timestamp>>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) enabled: Option<bool>,
}

impl Change {
    pub(crate) fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.expires_at.is_none()
            && self.scopes.is_none()
            && self.enabled.is_none()
    }

    fn update(self) -> TokenUpdate {
        let mut update = TokenUpdate::default();
        if let Some(name) = self.name {
            update = update.name(name);
        }
        if let Some(description) = self.description {
            update = update.description(description);
        }
        if let Some(expires_at) = self.expires_at {
            update = update.expires_at(expires_at);
        }
        if let Some(scopes) = self.scopes {
            update = update.scopes(scopes);
        }
        if let Some(enabled) = self.enabled {
            update = update.enabled(enabled);
        }
        update
    }
}

/// A new token, as `apply` asks for it.
#[derive(Debug)]
pub(crate) struct Application {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) expires_at: Option<Timestamp>,
    pub(crate) expires_in: Option<SignedDuration>,
    pub(crate) scopes: Vec<String>,
}

/// How a verification ended.
#[derive(Debug)]
pub(crate) enum Checked {
    Valid(Box<TokenView>),
    Invalid(String),
}

/// The person at this terminal, as the audit log records changes made on a store: `user@host`,
/// the user from `USER` (or `LOGNAME`, else `unknown`), the host from the kernel (or
/// `HOSTNAME`, else `localhost`).
///
/// Only what the environment says: whoever can open the store can write anything to it, so
/// this tells honest people apart, it does not authenticate them.
pub(crate) fn local_actor() -> Actor {
    /// Trimmed, without control characters, at most 64 characters; `None` when empty.
    fn word(text: &str) -> Option<String> {
        let word: String = text
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect();
        (!word.is_empty()).then_some(word)
    }
    let env = |name: &str| std::env::var(name).ok().as_deref().and_then(word);
    let user = env("USER")
        .or_else(|| env("LOGNAME"))
        .unwrap_or_else(|| "unknown".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .as_deref()
        .and_then(word)
        .or_else(|| env("HOSTNAME"))
        .unwrap_or_else(|| "localhost".to_owned());
    Actor::local(&user, &host)
}

/// A store this process opened, and who the audit log says is changing it.
#[derive(Debug)]
pub(crate) struct Local {
    pub(crate) manager: TokenManager,
    pub(crate) ctx: Context,
}

/// The tokens the commands work on.
#[derive(Debug)]
pub(crate) enum Backend {
    // One per process: its size does not matter.
    Local(Box<Local>),
    Remote(Remote),
}

impl Backend {
    /// The current time, by the clock that decides expiry.
    pub(crate) fn now(&self) -> Timestamp {
        match self {
            Self::Local(local) => local.manager.now(),
            Self::Remote(_) => Timestamp::now(),
        }
    }

    /// The prefix of the store's tokens, to show hints with; `None` when not known.
    pub(crate) fn prefix(&self) -> Option<&str> {
        match self {
            Self::Local(local) => Some(local.manager.format().prefix()),
            Self::Remote(remote) => remote.prefix(),
        }
    }

    pub(crate) async fn list(
        &self,
        owner: &str,
        options: ListOptions,
    ) -> Result<PageView, Failure> {
        match self {
            Self::Local(local) => {
                let page = local.manager.list(owner, options).await?;
                Ok(PageView::new(&page, local.manager.now()))
            }
            Self::Remote(remote) => remote.list(owner, &options).await,
        }
    }

    /// A token and its version.
    pub(crate) async fn get(&self, owner: &str, id: TokenId) -> Result<(TokenView, u64), Failure> {
        match self {
            Self::Local(local) => {
                let record = local.manager.get(owner, id).await?;
                Ok((TokenView::new(&record, local.manager.now()), record.version))
            }
            Self::Remote(remote) => remote.get(owner, id).await,
        }
    }

    pub(crate) async fn apply(&self, owner: &str, new: Application) -> Result<Fresh, Failure> {
        match self {
            Self::Local(local) => {
                let expiry = match (new.expires_in, new.expires_at) {
                    (Some(duration), _) => Some(Expiry::In(duration)),
                    (None, Some(at)) => Some(Expiry::At(at)),
                    (None, None) => None,
                };
                let mut token = NewToken::new(new.name).expiry(expiry).scopes(new.scopes);
                if let Some(description) = new.description {
                    token = token.description(description);
                }
                let issued = local.manager.acting(&local.ctx).apply(owner, token).await?;
                Ok(Fresh(IssuedView::new(&issued, local.manager.now())))
            }
            Self::Remote(remote) => {
                let expires_at = match (new.expires_in, new.expires_at) {
                    (Some(duration), _) => Some(later(Timestamp::now(), duration)?),
                    (None, at) => at,
                };
                remote
                    .apply(
                        owner,
                        &new.name,
                        new.description.as_deref(),
                        expires_at,
                        &new.scopes,
                    )
                    .await
            }
        }
    }

    pub(crate) async fn download(&self, owner: &str, id: TokenId) -> Result<Download, Failure> {
        match self {
            Self::Local(local) => {
                let record = local.manager.get(owner, id).await?;
                let file = local.manager.download(owner, id).await?;
                Ok(Download {
                    json: Zeroizing::new(file.to_json()),
                    secret_included: file.secret_included(),
                    offered_name: token_file_name(&record),
                })
            }
            Self::Remote(remote) => remote.download(owner, id).await,
        }
    }

    /// Changes a token; `expected_version` makes the change conditional.
    pub(crate) async fn modify(
        &self,
        owner: &str,
        id: TokenId,
        change: Change,
        expected_version: Option<u64>,
        force: bool,
    ) -> Result<TokenView, Failure> {
        match self {
            Self::Local(local) => {
                let mut update = change.update().force(force);
                if let Some(version) = expected_version {
                    update = update.expected_version(version);
                }
                let record = local
                    .manager
                    .acting(&local.ctx)
                    .modify(owner, id, update)
                    .await?;
                Ok(TokenView::new(&record, local.manager.now()))
            }
            Self::Remote(remote) => remote
                .modify(owner, id, &change, expected_version, force)
                .await
                .map(|(view, _)| view),
        }
    }

    /// Changes a token and replaces its secret. On a local store this is one atomic write;
    /// through a server, the change (if any) and the regeneration are two requests, the
    /// second conditional on the version the first produced.
    pub(crate) async fn modify_and_regenerate(
        &self,
        owner: &str,
        id: TokenId,
        change: Change,
        grace: Option<SignedDuration>,
        expected_version: Option<u64>,
        force: bool,
    ) -> Result<Fresh, Failure> {
        match self {
            Self::Local(local) => {
                let mut update = change.update().force(force);
                if let Some(version) = expected_version {
                    update = update.expected_version(version);
                }
                let mut regenerate = Regenerate::default();
                if let Some(grace) = grace {
                    regenerate = regenerate.grace(grace);
                }
                let issued = local
                    .manager
                    .acting(&local.ctx)
                    .modify_and_regenerate(owner, id, update, regenerate)
                    .await?;
                Ok(Fresh(IssuedView::new(&issued, local.manager.now())))
            }
            Self::Remote(remote) => {
                let expected_version = if change.is_empty() {
                    expected_version
                } else {
                    let (_, version) = remote
                        .modify(owner, id, &change, expected_version, force)
                        .await?;
                    Some(version)
                };
                remote.regenerate(owner, id, grace, expected_version).await
            }
        }
    }

    pub(crate) async fn delete(
        &self,
        owner: &str,
        id: TokenId,
        force: bool,
    ) -> Result<(), Failure> {
        match self {
            Self::Local(local) => Ok(local
                .manager
                .acting(&local.ctx)
                .delete_with(owner, id, DeleteOptions::default().force(force))
                .await?),
            Self::Remote(remote) => remote.delete(owner, id, force).await,
        }
    }

    pub(crate) async fn verify(&self, presented: &str) -> Result<Checked, Failure> {
        match self {
            Self::Local(local) => {
                let manager = &local.manager;
                let outcome = manager.verify(presented).await?;
                // Record the use now: a CLI process does not live to flush later.
                manager.flush_last_used().await?;
                Ok(match outcome {
                    Verification::Valid(record) => {
                        Checked::Valid(Box::new(TokenView::new(&record, manager.now())))
                    }
                    other => Checked::Invalid(other.failure_reason().unwrap_or_default()),
                })
            }
            Self::Remote(remote) => remote.verify(presented).await,
        }
    }

    /// One page of the audit log, newest first; `limit` is 1 to 1000.
    pub(crate) async fn audit(
        &self,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<AuditPageView, Failure> {
        match self {
            Self::Local(local) => {
                let page = local.manager.audit(filter, cursor, Some(limit)).await?;
                Ok(AuditPageView {
                    entries: page.entries,
                    next_cursor: page.next_cursor,
                })
            }
            Self::Remote(remote) => remote.audit(filter, cursor, limit).await,
        }
    }
}

/// `now + duration`, or an error when that is past the end of time.
pub(crate) fn later(now: Timestamp, duration: SignedDuration) -> Result<Timestamp, Failure> {
    now.checked_add(duration)
        .map_err(|_| Failure::usage("invalid_expiry", "the expiry is too far in the future"))
}

/// What a command does to the store it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reads or changes tokens that must exist already: a store that does not exist is an
    /// error, and none is created.
    Existing,
    /// Changes tokens and may issue secrets (`modify --regenerate`): as `Existing`, and
    /// records the prefix when the store has none yet.
    Issuing,
    /// Issues tokens (`apply`, `serve`): creates the store when it does not exist and
    /// records its prefix.
    Creating,
}

/// Where the tokens are and how they are made: everything needed to reach them.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) db: PathBuf,
    pub(crate) store: Option<String>,
    pub(crate) server: Option<String>,
    pub(crate) token_file: Option<PathBuf>,
    pub(crate) prefix: Option<TokenFormat>,
    pub(crate) hasher: TokenHasher,
    pub(crate) key: Option<EncryptionKey>,
}

impl Settings {
    /// Reaches the tokens: through the server when one is set, else by opening the store
    /// (only once the input has been checked, so that bad input never creates a file).
    pub(crate) async fn open(&self, access: Access) -> Result<Backend, Failure> {
        match &self.server {
            Some(url) => Ok(Backend::Remote(Remote::connect(
                url,
                self.token_file.as_deref(),
            )?)),
            None => Ok(Backend::Local(Box::new(Local {
                manager: self.open_store(access, false).await?,
                ctx: Context::new(local_actor()),
            }))),
        }
    }

    /// Opens the store this process works on (redb by default, PostgreSQL with `--store`).
    pub(crate) async fn open_store(
        &self,
        access: Access,
        serving: bool,
    ) -> Result<TokenManager, Failure> {
        let store: Arc<dyn TokenStore> = match &self.store {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Arc::new(PgStore::connect(url).await.map_err(|err| {
                    let message = format!("cannot use the PostgreSQL store: {}", sentence(&err));
                    if err.is_transient() {
                        Failure::system("unavailable", message)
                    } else {
                        Failure::usage("invalid_store", message)
                    }
                })?)
            }
            Some(_) => {
                return Err(Failure::usage(
                    "invalid_store",
                    "--store must be a postgres:// URL; leave it out to use the redb file given by --db",
                ));
            }
            None => Arc::new(open_redb(&self.db, access, serving)?),
        };
        let format = self.store_format(store.as_ref(), access).await?;
        // The CLI refuses, as `serve` does, to remove the last way into the management API.
        let mut manager = TokenManager::from_shared(store)
            .with_format(format)
            .with_hasher(self.hasher.clone())
            .with_protected_scope(ADMIN_SCOPE);
        if let Some(key) = &self.key {
            manager = manager.with_encryption_key(key.clone());
        }
        Ok(manager)
    }

    /// The format of the store's tokens: the prefix it records. A store without one takes
    /// `--prefix` (or `tg`), recorded by the first command that issues tokens; a `--prefix`
    /// other than the recorded one is refused.
    async fn store_format(
        &self,
        store: &dyn TokenStore,
        access: Access,
    ) -> Result<TokenFormat, Failure> {
        let given = self.prefix.as_ref().map(TokenFormat::prefix);
        let recorded = match store.setting(PREFIX_SETTING).await? {
            Some(prefix) => Some(prefix),
            None if access != Access::Existing => Some(
                store
                    .init_setting(PREFIX_SETTING, given.unwrap_or(DEFAULT_PREFIX))
                    .await?,
            ),
            None => None,
        };
        match (recorded, given) {
            (Some(recorded), Some(given)) if recorded != given => Err(Failure::usage(
                "prefix_mismatch",
                format!(
                    "this store issues tokens with the prefix {recorded:?}, recorded when it was created, not {given:?}; leave out --prefix (and TOLLGATE_PREFIX), or use another store"
                ),
            )),
            (Some(recorded), _) => Ok(TokenFormat::new(&recorded)?),
            (None, _) => Ok(self.prefix.clone().unwrap_or_default()),
        }
    }
}

/// Opens the redb file at `path`. Only commands that issue tokens create it; the others say
/// that there is no store there.
fn open_redb(path: &Path, access: Access, serving: bool) -> Result<RedbStore, Failure> {
    if access != Access::Creating && !path.exists() {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        return Err(Failure::usage(
            "no_store",
            format!(
                "no token store at {}: the file does not exist. Give the store's path with --db (or TOLLGATE_DB), or create one there with `tollgate apply NAME` or `tollgate serve`",
                absolute.display()
            ),
        ));
    }
    RedbStore::open(path).map_err(|err| {
        let message = sentence(&err);
        match err {
            RedbStoreError::Locked { .. } if serving => Failure::system(
                "unavailable",
                format!(
                    "{message}. Stop that process (another `tollgate serve`?), or keep tokens in PostgreSQL (--store postgres://…), which several servers share"
                ),
            ),
            RedbStoreError::Locked { .. } => Failure::system(
                "unavailable",
                format!(
                    "{message}; redb lets one process open it at a time. If `tollgate serve` holds it: stop the server, or run this command through it with `--server URL` and an admin token in TOLLGATE_TOKEN (or --token-file), or keep tokens in PostgreSQL (--store postgres://…), which several processes share"
                ),
            ),
            _ => Failure::usage("invalid_store", message),
        }
    })
}
