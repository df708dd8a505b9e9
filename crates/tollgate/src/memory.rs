//! An in-memory [`TokenStore`], for tests and small programs.

use std::collections::{BTreeSet, HashMap};
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;
use jiff::Timestamp;

use crate::audit::{AuditEntry, AuditPosition, AuditRequest};
use crate::error::Error;
use crate::index::NameIndex;
use crate::record::{TokenId, TokenRecord};
use crate::secret::SecretHash;
use crate::store::{ListPosition, ListRequest, SearchHit, SearchRequest, TokenStore};

/// A [`TokenStore`] in a `RwLock`ed set of maps. Nothing survives the process.
///
/// Lookups by id, hash and name are hash-map reads; listing walks an ordered index of the
/// owner's records; search uses a [`NameIndex`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    names: NameIndex,
    records: HashMap<TokenId, TokenRecord>,
    by_hash: HashMap<[u8; 32], TokenId>,
    by_name: HashMap<(String, String), TokenId>,
    by_owner: HashMap<String, BTreeSet<ListPosition>>,
    settings: HashMap<String, String>,
    /// The audit log, by position (time, then id).
    audit: std::collections::BTreeMap<AuditPosition, AuditEntry>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records the store holds.
    pub fn len(&self) -> usize {
        self.read().records.len()
    }

    /// Whether the store holds no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // Every write completes its map updates before it can panic, so a poisoned lock still
        // guards consistent data.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn hashes(record: &TokenRecord) -> impl Iterator<Item = [u8; 32]> + '_ {
    std::iter::once(*record.secret_hash.as_bytes())
        .chain(record.previous_secret.iter().map(|p| *p.hash.as_bytes()))
}

impl Inner {
    fn log<'a>(&mut self, entries: impl IntoIterator<Item = &'a AuditEntry>) {
        for entry in entries {
            self.audit.insert(AuditPosition::of(entry), entry.clone());
        }
    }

    fn index(&mut self, record: &TokenRecord) {
        self.names.upsert(record);
        for hash in hashes(record) {
            self.by_hash.insert(hash, record.id);
        }
        self.by_name
            .insert((record.owner.clone(), record.name_key()), record.id);
        self.by_owner
            .entry(record.owner.clone())
            .or_default()
            .insert(ListPosition::of(record));
    }

    fn unindex(&mut self, record: &TokenRecord) {
        self.names.remove(&record.owner, record.id);
        for hash in hashes(record) {
            self.by_hash.remove(&hash);
        }
        self.by_name
            .remove(&(record.owner.clone(), record.name_key()));
        if let Some(set) = self.by_owner.get_mut(&record.owner) {
            set.remove(&ListPosition::of(record));
            if set.is_empty() {
                self.by_owner.remove(&record.owner);
            }
        }
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    /// Checks every record first, then adds them all under one lock.
    async fn insert_many(
        &self,
        records: &[TokenRecord],
        audit: &[AuditEntry],
    ) -> Result<(), Error> {
        let mut inner = self.write();
        let mut names = std::collections::HashSet::new();
        let mut ids = std::collections::HashSet::new();
        let mut new_hashes = std::collections::HashSet::new();
        for record in records {
            let name = (record.owner.clone(), record.name_key());
            if inner.by_name.contains_key(&name) || !names.insert(name) {
                return Err(Error::NameTaken {
                    name: record.name.clone(),
                });
            }
            if inner.records.contains_key(&record.id)
                || !ids.insert(record.id)
                || hashes(record).any(|h| inner.by_hash.contains_key(&h) || !new_hashes.insert(h))
            {
                return Err(Error::Duplicate(record.id));
            }
        }
        for record in records {
            inner.index(record);
            inner.records.insert(record.id, record.clone());
        }
        inner.log(audit);
        Ok(())
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, Error> {
        Ok(self.read().settings.get(key).cloned())
    }

    async fn init_setting(&self, key: &str, value: &str) -> Result<String, Error> {
        let mut inner = self.write();
        Ok(inner
            .settings
            .entry(key.to_owned())
            .or_insert_with(|| value.to_owned())
            .clone())
    }

    async fn get(&self, id: TokenId) -> Result<Option<TokenRecord>, Error> {
        Ok(self.read().records.get(&id).cloned())
    }

    async fn find_by_hash(&self, hash: &SecretHash) -> Result<Option<TokenRecord>, Error> {
        let inner = self.read();
        Ok(inner
            .by_hash
            .get(hash.as_bytes())
            .and_then(|id| inner.records.get(id))
            .cloned())
    }

    async fn find_by_name(
        &self,
        owner: &str,
        name_key: &str,
    ) -> Result<Option<TokenRecord>, Error> {
        let inner = self.read();
        Ok(inner
            .by_name
            .get(&(owner.to_owned(), name_key.to_owned()))
            .and_then(|id| inner.records.get(id))
            .cloned())
    }

    async fn update(
        &self,
        record: &TokenRecord,
        expected_version: u64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), Error> {
        let mut inner = self.write();
        let Some(old) = inner.records.get(&record.id) else {
            return Err(Error::NotFound(record.id));
        };
        if old.version != expected_version {
            return Err(Error::VersionConflict {
                id: record.id,
                expected: expected_version,
                actual: old.version,
            });
        }
        let taken = inner
            .by_name
            .get(&(record.owner.clone(), record.name_key()))
            .is_some_and(|other| *other != record.id);
        if taken {
            return Err(Error::NameTaken {
                name: record.name.clone(),
            });
        }
        let clash = hashes(record).any(|h| {
            inner
                .by_hash
                .get(&h)
                .is_some_and(|other| *other != record.id)
        });
        if clash {
            return Err(Error::Duplicate(record.id));
        }
        let old = old.clone();
        inner.unindex(&old);
        inner.index(record);
        inner.records.insert(record.id, record.clone());
        inner.log(audit);
        Ok(())
    }

    async fn delete(&self, id: TokenId, audit: &AuditEntry) -> Result<bool, Error> {
        let mut inner = self.write();
        let Some(old) = inner.records.remove(&id) else {
            return Ok(false);
        };
        inner.unindex(&old);
        inner.log([audit]);
        Ok(true)
    }

    async fn delete_version(
        &self,
        id: TokenId,
        expected_version: u64,
        audit: &AuditEntry,
    ) -> Result<bool, Error> {
        let mut inner = self.write();
        match inner.records.get(&id) {
            None => return Ok(false),
            Some(old) if old.version != expected_version => {
                return Err(Error::VersionConflict {
                    id,
                    expected: expected_version,
                    actual: old.version,
                });
            }
            Some(_) => {}
        }
        if let Some(old) = inner.records.remove(&id) {
            inner.unindex(&old);
        }
        inner.log([audit]);
        Ok(true)
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), Error> {
        self.write().log([entry]);
        Ok(())
    }

    async fn audit(&self, request: &AuditRequest<'_>) -> Result<Vec<AuditEntry>, Error> {
        let inner = self.read();
        let range = match request.after {
            Some(after) => inner.audit.range(..after),
            None => inner.audit.range(..),
        };
        Ok(range
            .rev()
            .map(|(_, entry)| entry)
            .filter(|entry| request.filter.matches(entry))
            .take(request.limit)
            .cloned()
            .collect())
    }

    async fn prune_audit(&self, before: Timestamp) -> Result<u64, Error> {
        let mut inner = self.write();
        let keep = inner.audit.split_off(&AuditPosition {
            at: before,
            id: TokenId::from_bytes([0; 16]),
        });
        let pruned = inner.audit.len();
        inner.audit = keep;
        Ok(pruned as u64)
    }

    async fn list(&self, request: &ListRequest<'_>) -> Result<Vec<TokenRecord>, Error> {
        let inner = self.read();
        let Some(positions) = inner.by_owner.get(request.owner) else {
            return Ok(Vec::new());
        };
        let range = match request.after {
            Some(after) => positions.range(..after),
            None => positions.range(..),
        };
        Ok(range
            .rev()
            .filter_map(|position| inner.records.get(&position.id))
            .filter(|record| request.filter.matches(record, request.now))
            .take(request.limit)
            .cloned()
            .collect())
    }

    /// Searches the name index instead of scoring every name.
    async fn search(&self, request: &SearchRequest<'_>) -> Result<Vec<SearchHit>, Error> {
        let inner = self.read();
        Ok(inner
            .names
            .search(request, |id| inner.records.get(&id).cloned()))
    }

    async fn record_last_used(&self, uses: &[(TokenId, Timestamp)]) -> Result<(), Error> {
        let mut inner = self.write();
        for &(id, at) in uses {
            if let Some(record) = inner.records.get_mut(&id)
                && record.last_used_at.is_none_or(|last| last < at)
            {
                record.last_used_at = Some(at);
            }
        }
        Ok(())
    }
}
