//! The storage trait every backend implements.
//!
//! # Implementing a custom store
//!
//! A store keeps [`TokenRecord`]s and finds them by id, by secret hash and by (owner, name
//! key); it lists an owner's records newest first; and it keeps the audit log, writing each
//! change's [`AuditEntry`] in the same transaction as the change. Ten methods are required;
//! fuzzy [`search`](TokenStore::search), [`record_last_used`](TokenStore::record_last_used) and
//! the rest have defaults built on the others. The [`TokenManager`](crate::TokenManager) does
//! all validation and decides what a record looks like; a store only keeps what it is given,
//! atomically, and reports conflicts.
//!
//! Run the conformance suite (feature `testing`) against your store: see
//! [`store_conformance_tests!`](crate::store_conformance_tests).
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//!
//! use async_trait::async_trait;
//! use tollgate::jiff::Timestamp;
//! use tollgate::{
//!     AuditEntry, AuditPosition, AuditRequest, Error, ListRequest, SecretHash, TokenId,
//!     TokenRecord, TokenStore,
//! };
//!
//! /// A deliberately simple store: one mutex, linear scans.
//! #[derive(Debug, Default)]
//! struct VecStore(Mutex<(HashMap<TokenId, TokenRecord>, Vec<AuditEntry>)>);
//!
//! #[async_trait]
//! impl TokenStore for VecStore {
//!     async fn insert_many(&self, records: &[TokenRecord], audit: &[AuditEntry]) -> Result<(), Error> {
//!         let mut guard = self.0.lock().unwrap();
//!         let (map, log) = &mut *guard;
//!         // Check everything first: all or nothing.
//!         for (i, record) in records.iter().enumerate() {
//!             let key = record.name_key();
//!             let earlier = &records[..i];
//!             if map.values().chain(earlier).any(|r| r.owner == record.owner && r.name_key() == key) {
//!                 return Err(Error::NameTaken { name: record.name.clone() });
//!             }
//!             if map.values().chain(earlier).any(|r| r.id == record.id || r.secret_hash == record.secret_hash) {
//!                 return Err(Error::Duplicate(record.id));
//!             }
//!         }
//!         for record in records {
//!             map.insert(record.id, record.clone());
//!         }
//!         log.extend_from_slice(audit);
//!         Ok(())
//!     }
//!
//!     async fn get(&self, id: TokenId) -> Result<Option<TokenRecord>, Error> {
//!         Ok(self.0.lock().unwrap().0.get(&id).cloned())
//!     }
//!
//!     async fn find_by_hash(&self, hash: &SecretHash) -> Result<Option<TokenRecord>, Error> {
//!         Ok(self.0.lock().unwrap().0.values().find(|r| {
//!             r.secret_hash == *hash || r.previous_secret.as_ref().is_some_and(|p| p.hash == *hash)
//!         }).cloned())
//!     }
//!
//!     async fn find_by_name(&self, owner: &str, key: &str) -> Result<Option<TokenRecord>, Error> {
//!         Ok(self.0.lock().unwrap().0.values()
//!             .find(|r| r.owner == owner && r.name_key() == key).cloned())
//!     }
//!
//!     async fn update(
//!         &self,
//!         record: &TokenRecord,
//!         expected_version: u64,
//!         audit: Option<&AuditEntry>,
//!     ) -> Result<(), Error> {
//!         let mut guard = self.0.lock().unwrap();
//!         let (map, log) = &mut *guard;
//!         match map.get(&record.id) {
//!             None => return Err(Error::NotFound(record.id)),
//!             Some(r) if r.version != expected_version => {
//!                 return Err(Error::VersionConflict {
//!                     id: record.id, expected: expected_version, actual: r.version,
//!                 });
//!             }
//!             Some(_) => {}
//!         }
//!         let key = record.name_key();
//!         if map.values().any(|r| r.id != record.id && r.owner == record.owner && r.name_key() == key) {
//!             return Err(Error::NameTaken { name: record.name.clone() });
//!         }
//!         map.insert(record.id, record.clone());
//!         log.extend(audit.cloned());
//!         Ok(())
//!     }
//!
//!     async fn delete(&self, id: TokenId, audit: &AuditEntry) -> Result<bool, Error> {
//!         let mut guard = self.0.lock().unwrap();
//!         let (map, log) = &mut *guard;
//!         let deleted = map.remove(&id).is_some();
//!         if deleted {
//!             log.push(audit.clone());
//!         }
//!         Ok(deleted)
//!     }
//!
//!     async fn list(&self, request: &ListRequest<'_>) -> Result<Vec<TokenRecord>, Error> {
//!         let guard = self.0.lock().unwrap();
//!         let mut records: Vec<_> = guard.0.values()
//!             .filter(|r| r.owner == request.owner && request.admits(r))
//!             .cloned()
//!             .collect();
//!         records.sort_by(|a, b| tollgate::ListPosition::of(b).cmp(&tollgate::ListPosition::of(a)));
//!         records.truncate(request.limit);
//!         Ok(records)
//!     }
//!
//!     async fn append_audit(&self, entry: &AuditEntry) -> Result<(), Error> {
//!         self.0.lock().unwrap().1.push(entry.clone());
//!         Ok(())
//!     }
//!
//!     async fn audit(&self, request: &AuditRequest<'_>) -> Result<Vec<AuditEntry>, Error> {
//!         let guard = self.0.lock().unwrap();
//!         let mut entries: Vec<_> = guard.1.iter().filter(|e| request.admits(e)).cloned().collect();
//!         entries.sort_by_key(|e| std::cmp::Reverse(AuditPosition::of(e)));
//!         entries.truncate(request.limit);
//!         Ok(entries)
//!     }
//!
//!     async fn prune_audit(&self, before: Timestamp) -> Result<u64, Error> {
//!         let mut guard = self.0.lock().unwrap();
//!         let count = guard.1.len();
//!         guard.1.retain(|e| e.at >= before);
//!         Ok((count - guard.1.len()) as u64)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let manager = tollgate::TokenManager::new(VecStore::default());
//! let issued = manager.apply("default", tollgate::NewToken::new("ci")).await.unwrap();
//! assert!(manager.verify(issued.token.expose_secret()).await.unwrap().is_valid());
//! # }
//! ```

use std::fmt::Debug;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::audit::{AuditEntry, AuditRequest};
use crate::error::Error;
use crate::matcher::{Query, Score};
use crate::record::{TokenId, TokenRecord};
use crate::secret::SecretHash;

/// A change to a shared store made by any instance, announced so that in-process state
/// (caches) can be evicted. See [`TokenStore::subscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreEvent {
    /// This token was modified, regenerated or deleted.
    Changed(TokenId),
    /// Changes may have been missed, but the feed is still live: treat everything held in
    /// memory as stale.
    Reset,
    /// The feed is lost (the notification connection dropped): changes made from now on may
    /// not be announced. Nothing held in memory may be trusted until [`Live`](Self::Live).
    Lost,
    /// The feed is live again: every change committed from now on will be announced.
    /// Changes made while it was lost were not: drop what is held in memory, then trust it
    /// again.
    Live,
}

/// Filters a listing applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// `Some(true)`: only enabled tokens; `Some(false)`: only disabled ones.
    pub enabled: Option<bool>,
    /// `Some(true)`: only expired tokens; `Some(false)`: only unexpired ones.
    pub expired: Option<bool>,
}

impl ListFilter {
    /// Whether `record` passes the filter at `now`.
    pub fn matches(&self, record: &TokenRecord, now: Timestamp) -> bool {
        self.enabled.is_none_or(|e| record.enabled == e)
            && self.expired.is_none_or(|e| record.is_expired_at(now) == e)
    }
}

/// A record's place in the newest-first order: by creation time, then id, both descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListPosition {
    /// The record's `created_at`.
    pub created_at: Timestamp,
    /// The record's id.
    pub id: TokenId,
}

impl ListPosition {
    /// The position of `record`.
    pub fn of(record: &TokenRecord) -> Self {
        Self {
            created_at: record.created_at,
            id: record.id,
        }
    }
}

/// One page of an owner's records, newest first.
#[derive(Debug, Clone)]
pub struct ListRequest<'a> {
    /// Whose records.
    pub owner: &'a str,
    /// Only records strictly older than this position (the previous page's last record).
    pub after: Option<ListPosition>,
    /// At most this many records.
    pub limit: usize,
    /// Which records.
    pub filter: ListFilter,
    /// The time the expiry filter is evaluated at.
    pub now: Timestamp,
}

impl ListRequest<'_> {
    /// Whether `record` belongs on this page apart from the owner and limit: it passes the
    /// filter and lies after the cursor.
    pub fn admits(&self, record: &TokenRecord) -> bool {
        self.after
            .is_none_or(|after| ListPosition::of(record) < after)
            && self.filter.matches(record, self.now)
    }
}

/// A record's place in a search result: by score, then newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SearchPosition {
    /// The match score.
    pub score: Score,
    /// Then by creation time and id.
    pub position: ListPosition,
}

/// One page of a fuzzy search over an owner's token names.
#[derive(Debug, Clone)]
pub struct SearchRequest<'a> {
    /// Whose records.
    pub owner: &'a str,
    /// The prepared query.
    pub query: &'a Query,
    /// Only hits strictly after this position (the previous page's last hit).
    pub after: Option<SearchPosition>,
    /// At most this many hits.
    pub limit: usize,
    /// Which records.
    pub filter: ListFilter,
    /// The time the expiry filter is evaluated at.
    pub now: Timestamp,
}

/// A record matching a search, with its score.
#[derive(Debug, Clone)]
pub struct SearchHit {
    /// The record.
    pub record: TokenRecord,
    /// Its score for the query; higher is better.
    pub score: Score,
}

impl SearchHit {
    /// The hit's position in the result order.
    pub fn position(&self) -> SearchPosition {
        SearchPosition {
            score: self.score,
            position: ListPosition::of(&self.record),
        }
    }
}

/// Where tokens are kept. Object-safe: hold it as `Arc<dyn TokenStore>`.
///
/// Every method is atomic: it either happens completely or not at all, and a failed call
/// leaves the store as it was. Errors are [`Error::NotFound`], [`Error::NameTaken`],
/// [`Error::VersionConflict`] and [`Error::Duplicate`] as each method documents,
/// [`Error::Unavailable`] when the backend cannot be reached (the caller fails closed) and
/// [`Error::Backend`] otherwise.
#[async_trait]
pub trait TokenStore: Debug + Send + Sync + 'static {
    /// Adds a new record and its audit entry, in one transaction.
    ///
    /// Fails with [`Error::NameTaken`] when the owner has a record with the same
    /// [`name_key`](TokenRecord::name_key), and with [`Error::Duplicate`] when the id or the
    /// secret hash is already stored; then neither is written.
    async fn insert(&self, record: &TokenRecord, audit: &AuditEntry) -> Result<(), Error> {
        self.insert_many(std::slice::from_ref(record), std::slice::from_ref(audit))
            .await
    }

    /// Adds several new records and their audit entries (one per record), with the same
    /// errors as [`insert`](Self::insert): all of them, or on any error none.
    async fn insert_many(&self, records: &[TokenRecord], audit: &[AuditEntry])
    -> Result<(), Error>;

    /// The record with this id, or `None`.
    async fn get(&self, id: TokenId) -> Result<Option<TokenRecord>, Error>;

    /// The record whose current secret hash, or previous secret hash
    /// ([`TokenRecord::previous_secret`]), is `hash`; `None` when there is none. The caller
    /// checks the previous secret's grace period.
    async fn find_by_hash(&self, hash: &SecretHash) -> Result<Option<TokenRecord>, Error>;

    /// The owner's record whose [`name_key`](TokenRecord::name_key) is `name_key`, or `None`.
    async fn find_by_name(&self, owner: &str, name_key: &str)
    -> Result<Option<TokenRecord>, Error>;

    /// Replaces the record with `record.id` by `record`, if its stored version is
    /// `expected_version`. The new record's version is whatever `record` says.
    ///
    /// Fails with [`Error::NotFound`] when there is no such record, with
    /// [`Error::VersionConflict`] when the stored version differs, and with
    /// [`Error::NameTaken`] when another record of the same owner has the new name key. The
    /// owner and id never change. Hash lookups must follow the new `secret_hash` and
    /// `previous_secret` at once.
    ///
    /// `audit`, when given, is written in the same transaction, and only if the update is.
    async fn update(
        &self,
        record: &TokenRecord,
        expected_version: u64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), Error>;

    /// Removes the record and writes `audit`, in one transaction; `false` (and no entry)
    /// when there was none. Once this returns, neither [`get`](Self::get) nor
    /// [`find_by_hash`](Self::find_by_hash) finds it.
    async fn delete(&self, id: TokenId, audit: &AuditEntry) -> Result<bool, Error>;

    /// Removes the record if it is at `expected_version`: `false` when there is none,
    /// [`Error::VersionConflict`] when its version differs (nothing is removed).
    ///
    /// The default reads, compares and deletes, which a concurrent write can slip between;
    /// a store that can make the deletion conditional in one transaction overrides it.
    async fn delete_version(
        &self,
        id: TokenId,
        expected_version: u64,
        audit: &AuditEntry,
    ) -> Result<bool, Error> {
        match self.get(id).await? {
            None => Ok(false),
            Some(record) if record.version != expected_version => Err(Error::VersionConflict {
                id,
                expected: expected_version,
                actual: record.version,
            }),
            Some(_) => self.delete(id, audit).await,
        }
    }

    /// One page of `request.owner`'s records that [`ListRequest::admits`], newest first
    /// ([`ListPosition`] descending), at most `request.limit` of them.
    ///
    /// Because pages are keyed by position, not offset, records added or deleted between
    /// pages neither repeat nor push others off the next page.
    async fn list(&self, request: &ListRequest<'_>) -> Result<Vec<TokenRecord>, Error>;

    /// One page of the owner's records whose names match `request.query`, best first
    /// ([`SearchPosition`] descending).
    ///
    /// The default scans every record of the owner through [`list`](Self::list) and scores
    /// each name with [`Query::score`]. A backend that can find candidates faster (an index,
    /// trigram search) overrides it; its results must rank the same.
    async fn search(&self, request: &SearchRequest<'_>) -> Result<Vec<SearchHit>, Error> {
        const CHUNK: usize = 512;
        let mut hits = Vec::new();
        let mut page = ListRequest {
            owner: request.owner,
            after: None,
            limit: CHUNK,
            filter: request.filter,
            now: request.now,
        };
        loop {
            let records = self.list(&page).await?;
            let done = records.len() < CHUNK;
            page.after = records.last().map(ListPosition::of);
            for record in records {
                let Some(score) = request.query.score(&record.name) else {
                    continue;
                };
                let hit = SearchHit { record, score };
                if request.after.is_none_or(|after| hit.position() < after) {
                    hits.push(hit);
                }
            }
            // Keep memory bounded by what can still make the page.
            if hits.len() > request.limit.saturating_mul(4).max(CHUNK) {
                sort_hits(&mut hits);
                hits.truncate(request.limit);
            }
            if done {
                break;
            }
        }
        sort_hits(&mut hits);
        hits.truncate(request.limit);
        Ok(hits)
    }

    /// Records successful uses: for each `(id, at)`, sets `last_used_at` to `at` unless it is
    /// already later. Missing ids are skipped. Does not change `version` or `updated_at`.
    ///
    /// The default reads and conditionally rewrites each record; backends should override it
    /// with one batched write.
    async fn record_last_used(&self, uses: &[(TokenId, Timestamp)]) -> Result<(), Error> {
        for &(id, at) in uses {
            // A concurrent modification wins; its record is newer anyway and the next use
            // will be recorded again.
            for _ in 0..3 {
                let Some(mut record) = self.get(id).await? else {
                    break;
                };
                if record.last_used_at.is_some_and(|last| last >= at) {
                    break;
                }
                record.last_used_at = Some(at);
                match self.update(&record, record.version, None).await {
                    Ok(()) | Err(Error::NotFound(_)) => break,
                    Err(Error::VersionConflict { .. }) => continue,
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(())
    }

    /// Appends an entry that records no change of a token: a refused request.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), Error>;

    /// One page of the audit log: entries [`AuditRequest::admits`], newest first
    /// ([`AuditPosition`](crate::AuditPosition) descending), at most `request.limit`.
    async fn audit(&self, request: &AuditRequest<'_>) -> Result<Vec<AuditEntry>, Error>;

    /// Removes the entries older than `before`; returns how many. The only way entries
    /// leave the log.
    async fn prune_audit(&self, before: Timestamp) -> Result<u64, Error>;

    /// A setting kept with the tokens, such as [`PREFIX_SETTING`] (the prefix the store's
    /// tokens are issued with); `None` when it was never set.
    ///
    /// The default keeps no settings and always answers `None`; the conformance suite's
    /// `settings` check requires a store to keep them.
    async fn setting(&self, key: &str) -> Result<Option<String>, Error> {
        let _ = key;
        Ok(None)
    }

    /// Sets `key` to `value` unless it is set already, atomically: the first value written
    /// wins, even when several processes race. Returns the value the store holds now.
    ///
    /// The default keeps nothing and returns `value`.
    async fn init_setting(&self, key: &str, value: &str) -> Result<String, Error> {
        let _ = key;
        Ok(value.to_owned())
    }

    /// Changes made to the store by other processes sharing it, for caches to evict.
    ///
    /// `None` (the default) says that no other process writes to the store, so the
    /// [`TokenManager`](crate::TokenManager) sees every change itself. A store shared by
    /// several instances (PostgreSQL) returns a receiver of [`StoreEvent`]s.
    fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>> {
        None
    }

    /// Whether the feed of [`subscribe`](Self::subscribe) is live now: every change
    /// committed from now on will be announced. `true` (the default) for a store that no
    /// other process writes to. Read after subscribing; later changes of state arrive as
    /// [`StoreEvent::Lost`] and [`StoreEvent::Live`].
    fn feed_is_live(&self) -> bool {
        true
    }
}

/// The [setting](TokenStore::setting) that records the token prefix a store was created
/// with, so that every program working on the store issues and checks tokens alike.
pub const PREFIX_SETTING: &str = "token_prefix";

/// Sorts hits best first: score, then newest.
pub fn sort_hits(hits: &mut [SearchHit]) {
    hits.sort_unstable_by_key(|hit| std::cmp::Reverse(hit.position()));
}
