//! The store.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, StorageError, TableDefinition,
    TableHandle, WriteTransaction,
};
use tollgate::jiff::Timestamp;
use tollgate::{
    AuditEntry, AuditRequest, Error, ListRequest, NameIndex, SearchHit, SearchRequest, SecretHash,
    TokenId, TokenRecord, TokenStore,
};

use crate::error::RedbStoreError;
use crate::row::{decode, decode_v1, encode, micros};

/// The schema version this build writes and reads.
///
/// - 1: records by id, and indexes by secret hash, by name and by owner.
/// - 2: rows gain the hint.
/// - 3: the secret-hash index holds the record's id and row itself (`tollgate_secrets`,
///   replacing `tollgate_by_hash`), so that verification reads one B-tree, not two.
pub const SCHEMA_VERSION: u64 = 3;

const META: TableDefinition<'_, &str, u64> = TableDefinition::new("tollgate_meta");
const RECORDS: TableDefinition<'_, [u8; 16], &[u8]> = TableDefinition::new("tollgate_records");
/// Secret hash (current and previous) → the record's id, then its row as in [`RECORDS`]: a
/// copy, written in the same transaction as the record, so that verification finds the
/// record with one lookup.
const SECRETS: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("tollgate_secrets");
/// Schema versions 1 and 2: secret hash → id.
const BY_HASH_V2: TableDefinition<'_, [u8; 32], [u8; 16]> =
    TableDefinition::new("tollgate_by_hash");
const BY_NAME: TableDefinition<'_, (&str, &str), [u8; 16]> =
    TableDefinition::new("tollgate_by_name");
const BY_OWNER: TableDefinition<'_, (&str, i64, [u8; 16]), ()> =
    TableDefinition::new("tollgate_by_owner");

const SCHEMA_KEY: &str = "schema_version";
const SETTINGS: TableDefinition<'_, &str, &str> = TableDefinition::new("tollgate_settings");
/// The audit log: (time in µs, entry id) → the entry as JSON, which later versions can
/// still read as fields are added.
const AUDIT: TableDefinition<'_, (i64, [u8; 16]), &[u8]> = TableDefinition::new("tollgate_audit");

/// A [`TokenStore`] in a redb file.
///
/// Clone it freely: clones share one open database.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    path: Arc<PathBuf>,
    /// The search index, built from the file on the first search and kept in step by every
    /// write after its commit. Writes hold the read side while updating, and the build holds
    /// the write side from its snapshot to publishing, so no commit is missed.
    names: Arc<RwLock<Option<NameIndex>>>,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A write's result: the outer error is the storage failing, the inner one the operation being
/// refused (a name conflict, say). Only `Ok(Ok(_))` commits.
type WriteResult<T> = Result<Result<T, Error>, RedbStoreError>;

impl RedbStore {
    /// Opens the token database at `path`, creating it (and its tables) when the file does not
    /// exist or is empty.
    ///
    /// Fails with [`RedbStoreError::Locked`] when another process has it open,
    /// [`RedbStoreError::NotRedb`] when it is not a redb file, [`RedbStoreError::Foreign`]
    /// when it is another application's redb file and [`RedbStoreError::NewerSchema`] when a
    /// newer Tollgate wrote it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RedbStoreError> {
        let path = path.as_ref().to_path_buf();
        let db = Database::builder()
            // The OS page cache holds the file; a large private cache only duplicates it.
            .set_cache_size(64 * 1024 * 1024)
            .create(&path)
            .map_err(|err| match err {
                DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
                    RedbStoreError::Locked { path: path.clone() }
                }
                DatabaseError::Storage(StorageError::Io(ref io))
                    if io.kind() == std::io::ErrorKind::InvalidData =>
                {
                    RedbStoreError::NotRedb {
                        path: path.clone(),
                        source: err,
                    }
                }
                DatabaseError::Storage(StorageError::Corrupted(_))
                | DatabaseError::UpgradeRequired(_) => RedbStoreError::NotRedb {
                    path: path.clone(),
                    source: err,
                },
                other => RedbStoreError::Database(other),
            })?;
        Self::init_schema(&db, &path)?;
        Ok(Self {
            db: Arc::new(db),
            path: Arc::new(path),
            names: Arc::default(),
        })
    }

    /// The file this store keeps its tokens in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn init_schema(db: &Database, path: &Path) -> Result<(), RedbStoreError> {
        let mut txn = db.begin_write()?;
        txn.set_quick_repair(true);
        let found = {
            let meta_exists = txn.list_tables()?.any(|t| t.name() == META.name());
            let other_tables = txn
                .list_tables()?
                .any(|t| !t.name().starts_with("tollgate_"));
            if !meta_exists && other_tables {
                return Err(RedbStoreError::Foreign {
                    path: path.to_path_buf(),
                });
            }
            let mut meta = txn.open_table(META)?;
            let found = meta.get(SCHEMA_KEY)?.map(|v| v.value());
            if found.is_none() {
                meta.insert(SCHEMA_KEY, SCHEMA_VERSION)?;
            }
            found
        };
        match found {
            Some(found) if found > SCHEMA_VERSION => Err(RedbStoreError::NewerSchema {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            }),
            Some(SCHEMA_VERSION) => Ok(()),
            Some(older) => {
                Self::upgrade(&txn, older)?;
                txn.open_table(META)?.insert(SCHEMA_KEY, SCHEMA_VERSION)?;
                txn.commit()?;
                Ok(())
            }
            None => {
                // Create every table now so reads never meet a missing one.
                txn.open_table(RECORDS)?;
                txn.open_table(SECRETS)?;
                txn.open_table(BY_NAME)?;
                txn.open_table(BY_OWNER)?;
                txn.commit()?;
                Ok(())
            }
        }
    }

    /// Rewrites every record of schema version `from` in the current one, in the opening
    /// transaction: a file is upgraded completely or not at all.
    fn upgrade(txn: &WriteTransaction, from: u64) -> Result<(), RedbStoreError> {
        debug_assert!(from == 1 || from == 2);
        let mut records = txn.open_table(RECORDS)?;
        let mut rows = Vec::new();
        for entry in records.iter()? {
            let (id, bytes) = entry?;
            let record = if from == 1 {
                // Version 1 kept no hint: rows gain an empty one.
                decode_v1(id.value(), bytes.value())?
            } else {
                decode(id.value(), bytes.value())?
            };
            rows.push((id.value(), record));
        }
        // Version 3 keeps the row beside each secret hash, in a table of its own.
        txn.delete_table(BY_HASH_V2)?;
        let mut secrets = txn.open_table(SECRETS)?;
        for (id, record) in rows {
            let row = encode(&record);
            if from == 1 {
                records.insert(id, row.as_slice())?;
            }
            put_secrets(&mut secrets, &record, &row)?;
        }
        Ok(())
    }

    /// Deletes a record, if it is at `expected` when one is given, in one transaction.
    async fn remove(
        &self,
        id: TokenId,
        expected: Option<u64>,
        audit: &AuditEntry,
    ) -> Result<bool, Error> {
        let entry = audit.clone();
        let owner = self
            .write(move |txn| {
                let key = *id.as_bytes();
                let mut records = txn.open_table(RECORDS)?;
                let old = match records.get(key)? {
                    Some(bytes) => decode(key, bytes.value())?,
                    None => return Ok(Ok(None)),
                };
                if let Some(expected) = expected
                    && old.version != expected
                {
                    return Ok(Err(Error::VersionConflict {
                        id,
                        expected,
                        actual: old.version,
                    }));
                }
                records.remove(key)?;
                let mut secrets = txn.open_table(SECRETS)?;
                for hash in hashes(&old) {
                    secrets.remove(hash)?;
                }
                txn.open_table(BY_NAME)?
                    .remove((old.owner.as_str(), old.name_key().as_str()))?;
                txn.open_table(BY_OWNER)?.remove(owner_key(&old))?;
                log(txn, std::slice::from_ref(&entry))?;
                Ok(Ok(Some(old.owner)))
            })
            .await?;
        let Some(owner) = owner else {
            return Ok(false);
        };
        self.reindex(|names| names.remove(&owner, id));
        Ok(true)
    }

    /// Runs `op` in one write transaction, committing only when it succeeds. Runs on Tokio's
    /// blocking pool when called inside a Tokio runtime, since a commit waits for the disk.
    async fn write<T, F>(&self, op: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> WriteResult<T> + Send + 'static,
    {
        let db = self.db.clone();
        let run = move || -> WriteResult<T> {
            let mut txn = db.begin_write()?;
            // Each commit also saves the allocator state, so that a process killed at any
            // moment leaves a file that opens at once, without redb's full repair pass.
            txn.set_quick_repair(true);
            match op(&txn)? {
                Ok(value) => {
                    txn.commit()?;
                    Ok(Ok(value))
                }
                // Dropping the transaction aborts it.
                Err(refused) => Ok(Err(refused)),
            }
        };
        let result = match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(run)
                .await
                .map_err(RedbStoreError::from)?,
            Err(_) => run(),
        };
        result?
    }

    /// Applies a committed change to the search index, if it has been built.
    fn reindex(&self, change: impl FnOnce(&NameIndex)) {
        let names = self.names.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(names) = names.as_ref() {
            change(names);
        }
    }

    /// Builds the search index from every record, unless it is built.
    fn build_index(&self) -> Result<(), RedbStoreError> {
        let mut names = self.names.write().unwrap_or_else(PoisonError::into_inner);
        if names.is_some() {
            return Ok(());
        }
        let index = NameIndex::new();
        let txn = self.db.begin_read()?;
        for entry in txn.open_table(RECORDS)?.iter()? {
            let (id, bytes) = entry?;
            index.upsert(&decode(id.value(), bytes.value())?);
        }
        *names = Some(index);
        Ok(())
    }

    /// Looks `key` up in an index table and reads the record it points to, in one read
    /// transaction.
    fn follow_index<'k, K: redb::Key + 'static>(
        &self,
        index: TableDefinition<'_, K, [u8; 16]>,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
    ) -> Result<Option<TokenRecord>, RedbStoreError> {
        let txn = self.db.begin_read()?;
        let Some(id) = txn.open_table(index)?.get(key)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let records = txn.open_table(RECORDS)?;
        records
            .get(id)?
            .map(|bytes| decode(id, bytes.value()))
            .transpose()
    }

    /// The record whose current or previous secret has `hash`: one lookup in [`SECRETS`].
    fn read_secret(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>, RedbStoreError> {
        let txn = self.db.begin_read()?;
        let secrets = txn.open_table(SECRETS)?;
        let Some(value) = secrets.get(hash)? else {
            return Ok(None);
        };
        let (id, row) = split_secret(value.value())?;
        decode(id, row).map(Some)
    }

    fn read_record(&self, id: [u8; 16]) -> Result<Option<TokenRecord>, RedbStoreError> {
        let txn = self.db.begin_read()?;
        let records = txn.open_table(RECORDS)?;
        records
            .get(id)?
            .map(|bytes| decode(id, bytes.value()))
            .transpose()
    }
}

fn hashes(record: &TokenRecord) -> impl Iterator<Item = [u8; 32]> + '_ {
    std::iter::once(*record.secret_hash.as_bytes())
        .chain(record.previous_secret.iter().map(|p| *p.hash.as_bytes()))
}

/// Writes `row`, the record's encoded row, under each of its secret hashes, after its id.
/// Returns whether one of them held another token's entry (which it replaced).
fn put_secrets(
    secrets: &mut redb::Table<'_, [u8; 32], &[u8]>,
    record: &TokenRecord,
    row: &[u8],
) -> Result<bool, RedbStoreError> {
    let id = record.id.as_bytes();
    let mut value = Vec::with_capacity(id.len() + row.len());
    value.extend_from_slice(id);
    value.extend_from_slice(row);
    let mut conflict = false;
    for hash in hashes(record) {
        if let Some(old) = secrets.insert(hash, value.as_slice())? {
            conflict |= old.value().get(..16) != Some(&id[..]);
        }
    }
    Ok(conflict)
}

/// A [`SECRETS`] value: the id, then the row.
fn split_secret(value: &[u8]) -> Result<([u8; 16], &[u8]), RedbStoreError> {
    match value.split_first_chunk::<16>() {
        Some((id, row)) => Ok((*id, row)),
        None => Err(RedbStoreError::Corrupt(
            postcard::Error::DeserializeUnexpectedEnd,
        )),
    }
}

fn owner_key(record: &TokenRecord) -> (&str, i64, [u8; 16]) {
    (
        record.owner.as_str(),
        micros(record.created_at),
        *record.id.as_bytes(),
    )
}

#[async_trait]
impl TokenStore for RedbStore {
    /// One transaction for all of them and their audit entries: all are added, or none.
    async fn insert_many(
        &self,
        records: &[TokenRecord],
        audit: &[AuditEntry],
    ) -> Result<(), Error> {
        let batch = records.to_vec();
        let entries = audit.to_vec();
        self.write(move |txn| {
            let mut by_name = txn.open_table(BY_NAME)?;
            let mut records = txn.open_table(RECORDS)?;
            let mut secrets = txn.open_table(SECRETS)?;
            let mut by_owner = txn.open_table(BY_OWNER)?;
            // Insert, and look at what each insert replaced: a conflict aborts the whole
            // transaction, so nothing needs checking beforehand.
            for record in &batch {
                let id = *record.id.as_bytes();
                let name_key = record.name_key();
                if by_name
                    .insert((record.owner.as_str(), name_key.as_str()), id)?
                    .is_some()
                {
                    return Ok(Err(Error::NameTaken {
                        name: record.name.clone(),
                    }));
                }
                let row = encode(record);
                if records.insert(id, row.as_slice())?.is_some() {
                    return Ok(Err(Error::Duplicate(record.id)));
                }
                if put_secrets(&mut secrets, record, &row)? {
                    return Ok(Err(Error::Duplicate(record.id)));
                }
                by_owner.insert(owner_key(record), ())?;
            }
            log(txn, &entries)?;
            Ok(Ok(()))
        })
        .await?;
        self.reindex(|names| {
            for record in records {
                names.upsert(record);
            }
        });
        Ok(())
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, Error> {
        let read = || -> Result<Option<String>, RedbStoreError> {
            let txn = self.db.begin_read()?;
            let table = match txn.open_table(SETTINGS) {
                Ok(table) => table,
                // Files written before settings were kept have no such table.
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(err) => return Err(err.into()),
            };
            Ok(table.get(key)?.map(|v| v.value().to_owned()))
        };
        Ok(read()?)
    }

    async fn init_setting(&self, key: &str, value: &str) -> Result<String, Error> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |txn| {
            let mut table = txn.open_table(SETTINGS)?;
            let current = table.get(key.as_str())?.map(|v| v.value().to_owned());
            if let Some(current) = current {
                return Ok(Ok(current));
            }
            table.insert(key.as_str(), value.as_str())?;
            Ok(Ok(value))
        })
        .await
    }

    async fn get(&self, id: TokenId) -> Result<Option<TokenRecord>, Error> {
        Ok(self.read_record(*id.as_bytes())?)
    }

    async fn find_by_hash(&self, hash: &SecretHash) -> Result<Option<TokenRecord>, Error> {
        Ok(self.read_secret(hash.as_bytes())?)
    }

    async fn find_by_name(
        &self,
        owner: &str,
        name_key: &str,
    ) -> Result<Option<TokenRecord>, Error> {
        Ok(self.follow_index(BY_NAME, (owner, name_key))?)
    }

    async fn update(
        &self,
        record: &TokenRecord,
        expected_version: u64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), Error> {
        let indexed = record.clone();
        let record = record.clone();
        let entry = audit.cloned();
        self.write(move |txn| {
            let id = *record.id.as_bytes();
            let mut records = txn.open_table(RECORDS)?;
            let old = match records.get(id)? {
                Some(bytes) => decode(id, bytes.value())?,
                None => return Ok(Err(Error::NotFound(record.id))),
            };
            if old.version != expected_version {
                return Ok(Err(Error::VersionConflict {
                    id: record.id,
                    expected: expected_version,
                    actual: old.version,
                }));
            }
            let (old_key, new_key) = (old.name_key(), record.name_key());
            let mut by_name = txn.open_table(BY_NAME)?;
            if old.owner != record.owner || old_key != new_key {
                let taken = by_name
                    .get((record.owner.as_str(), new_key.as_str()))?
                    .is_some_and(|other| other.value() != id);
                if taken {
                    return Ok(Err(Error::NameTaken {
                        name: record.name.clone(),
                    }));
                }
                by_name.remove((old.owner.as_str(), old_key.as_str()))?;
                by_name.insert((record.owner.as_str(), new_key.as_str()), id)?;
            }
            let mut secrets = txn.open_table(SECRETS)?;
            for hash in hashes(&record) {
                if secrets
                    .get(hash)?
                    .is_some_and(|other| other.value().get(..16) != Some(&id[..]))
                {
                    return Ok(Err(Error::Duplicate(record.id)));
                }
            }
            for hash in hashes(&old) {
                secrets.remove(hash)?;
            }
            let row = encode(&record);
            put_secrets(&mut secrets, &record, &row)?;
            if owner_key(&old) != owner_key(&record) {
                let mut by_owner = txn.open_table(BY_OWNER)?;
                by_owner.remove(owner_key(&old))?;
                by_owner.insert(owner_key(&record), ())?;
            }
            records.insert(id, row.as_slice())?;
            log(txn, entry.as_slice())?;
            Ok(Ok(()))
        })
        .await?;
        self.reindex(|names| names.upsert(&indexed));
        Ok(())
    }

    async fn delete(&self, id: TokenId, audit: &AuditEntry) -> Result<bool, Error> {
        self.remove(id, None, audit).await
    }

    async fn delete_version(
        &self,
        id: TokenId,
        expected_version: u64,
        audit: &AuditEntry,
    ) -> Result<bool, Error> {
        self.remove(id, Some(expected_version), audit).await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), Error> {
        let entry = entry.clone();
        self.write(move |txn| {
            log(txn, std::slice::from_ref(&entry))?;
            Ok(Ok(()))
        })
        .await
    }

    async fn audit(&self, request: &AuditRequest<'_>) -> Result<Vec<AuditEntry>, Error> {
        let read = || -> Result<Vec<AuditEntry>, RedbStoreError> {
            let txn = self.db.begin_read()?;
            let table = match txn.open_table(AUDIT) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(err) => return Err(err.into()),
            };
            let range = match request.after {
                Some(after) => table.range(..(micros(after.at), *after.id.as_bytes()))?,
                None => table.range::<(i64, [u8; 16])>(..)?,
            };
            let mut entries = Vec::new();
            for item in range.rev() {
                let (_, bytes) = item?;
                let entry: AuditEntry = serde_json::from_slice(bytes.value()).map_err(|_| {
                    RedbStoreError::Corrupt(postcard::Error::DeserializeBadEncoding)
                })?;
                if request.filter.matches(&entry) {
                    entries.push(entry);
                    if entries.len() == request.limit {
                        break;
                    }
                }
            }
            Ok(entries)
        };
        Ok(read()?)
    }

    async fn prune_audit(&self, before: Timestamp) -> Result<u64, Error> {
        let before = micros(before);
        self.write(move |txn| {
            let mut table = txn.open_table(AUDIT)?;
            let old: Vec<(i64, [u8; 16])> = table
                .range(..(before, [0u8; 16]))?
                .map(|item| item.map(|(key, _)| key.value()))
                .collect::<Result<_, _>>()?;
            for key in &old {
                table.remove(key)?;
            }
            Ok(Ok(old.len() as u64))
        })
        .await
    }

    /// Searches the name index (built from the file on first use) instead of scoring every
    /// name of the owner.
    async fn search(&self, request: &SearchRequest<'_>) -> Result<Vec<SearchHit>, Error> {
        self.build_index()?;
        let names = self.names.read().unwrap_or_else(PoisonError::into_inner);
        let index = names.as_ref().expect("built above");
        let txn = self.db.begin_read().map_err(RedbStoreError::from)?;
        let records = txn.open_table(RECORDS).map_err(RedbStoreError::from)?;
        let mut failure = None;
        let hits = index.search(request, |id| {
            let key = *id.as_bytes();
            match records
                .get(key)
                .map_err(RedbStoreError::from)
                .and_then(|bytes| bytes.map(|b| decode(key, b.value())).transpose())
            {
                Ok(record) => record,
                Err(err) => {
                    failure.get_or_insert(err);
                    None
                }
            }
        });
        match failure {
            Some(err) => Err(err.into()),
            None => Ok(hits),
        }
    }

    async fn list(&self, request: &ListRequest<'_>) -> Result<Vec<TokenRecord>, Error> {
        let scan = || -> Result<Vec<TokenRecord>, RedbStoreError> {
            let txn = self.db.begin_read()?;
            let by_owner = txn.open_table(BY_OWNER)?;
            let records = txn.open_table(RECORDS)?;
            let start = (request.owner, i64::MIN, [0u8; 16]);
            let range = match request.after {
                Some(after) => by_owner.range(
                    start
                        ..(
                            request.owner,
                            micros(after.created_at),
                            *after.id.as_bytes(),
                        ),
                )?,
                None => by_owner.range(start..=(request.owner, i64::MAX, [0xFF; 16]))?,
            };
            let mut out = Vec::with_capacity(request.limit.min(1024));
            for entry in range.rev() {
                if out.len() == request.limit {
                    break;
                }
                let (key, _) = entry?;
                let id = key.value().2;
                let Some(bytes) = records.get(id)? else {
                    continue;
                };
                let record = decode(id, bytes.value())?;
                if request.filter.matches(&record, request.now) {
                    out.push(record);
                }
            }
            Ok(out)
        };
        Ok(scan()?)
    }

    async fn record_last_used(&self, uses: &[(TokenId, Timestamp)]) -> Result<(), Error> {
        let uses = uses.to_vec();
        self.write(move |txn| {
            let mut records = txn.open_table(RECORDS)?;
            let mut secrets = txn.open_table(SECRETS)?;
            for (id, at) in uses {
                let key = *id.as_bytes();
                let mut record = match records.get(key)? {
                    Some(bytes) => decode(key, bytes.value())?,
                    None => continue,
                };
                if record.last_used_at.is_some_and(|last| last >= at) {
                    continue;
                }
                record.last_used_at = Some(at);
                let row = encode(&record);
                records.insert(key, row.as_slice())?;
                put_secrets(&mut secrets, &record, &row)?;
            }
            Ok(Ok(()))
        })
        .await
    }
}

/// Appends audit entries in the write transaction of the change they record.
fn log(txn: &WriteTransaction, entries: &[AuditEntry]) -> Result<(), RedbStoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut table = txn.open_table(AUDIT)?;
    for entry in entries {
        let json = serde_json::to_vec(entry).expect("an audit entry always serializes");
        table.insert((micros(entry.at), *entry.id.as_bytes()), json.as_slice())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tollgate::{NewToken, TokenManager};

    use super::*;

    /// Rewrites a current file as schema version 2 wrote it: the secret-hash index holds
    /// only ids, in its own table.
    fn downgrade_to_v2(path: &Path) {
        let db = Database::open(path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let records = txn.open_table(RECORDS).unwrap();
            let mut by_hash = txn.open_table(BY_HASH_V2).unwrap();
            for entry in records.iter().unwrap() {
                let (id, bytes) = entry.unwrap();
                for hash in hashes(&decode(id.value(), bytes.value()).unwrap()) {
                    by_hash.insert(hash, id.value()).unwrap();
                }
            }
            txn.open_table(META).unwrap().insert(SCHEMA_KEY, 2).unwrap();
        }
        assert!(txn.delete_table(SECRETS).unwrap());
        txn.commit().unwrap();
    }

    /// Rewrites a current file as schema version 1 wrote it: rows without hints.
    fn downgrade_to_v1(path: &Path) {
        downgrade_to_v2(path);
        let db = Database::open(path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut records = txn.open_table(RECORDS).unwrap();
            let rows: Vec<_> = records
                .iter()
                .unwrap()
                .map(|entry| {
                    let (id, bytes) = entry.unwrap();
                    (
                        id.value(),
                        crate::row::encode_v1(&decode(id.value(), bytes.value()).unwrap()),
                    )
                })
                .collect();
            for (id, bytes) in rows {
                records.insert(id, bytes.as_slice()).unwrap();
            }
            txn.open_table(META).unwrap().insert(SCHEMA_KEY, 1).unwrap();
        }
        txn.commit().unwrap();
    }

    #[tokio::test]
    async fn version_1_files_are_upgraded_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.redb");
        let issued = {
            let manager = TokenManager::new(RedbStore::open(&path).unwrap());
            manager.apply("acme", NewToken::new("old")).await.unwrap()
        };
        assert_eq!(issued.record.hint.chars().count(), tollgate::HINT_CHARS);
        downgrade_to_v1(&path);

        let manager = TokenManager::new(RedbStore::open(&path).unwrap());
        let record = manager.get("acme", issued.record.id).await.unwrap();
        assert_eq!(record.hint, "", "version 1 kept no hint");
        let expected = TokenRecord {
            hint: String::new(),
            ..issued.record.clone()
        };
        assert_eq!(record, expected);
        assert!(
            manager
                .verify(issued.token.expose_secret())
                .await
                .unwrap()
                .is_valid()
        );
        // A regeneration gives it a hint.
        let regenerated = manager
            .regenerate("acme", issued.record.id, tollgate::Regenerate::default())
            .await
            .unwrap();
        assert_eq!(
            manager.get("acme", issued.record.id).await.unwrap().hint,
            regenerated.token.hint()
        );
        drop(manager);
        let db = Database::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        assert_eq!(
            meta.get(SCHEMA_KEY).unwrap().unwrap().value(),
            SCHEMA_VERSION
        );
    }

    #[tokio::test]
    async fn version_2_files_are_upgraded_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.redb");
        let (kept, old_secret, regenerated) = {
            let manager = TokenManager::new(RedbStore::open(&path).unwrap());
            let kept = manager.apply("acme", NewToken::new("kept")).await.unwrap();
            let rotated = manager
                .apply("acme", NewToken::new("rotated"))
                .await
                .unwrap();
            let grace = tollgate::Regenerate::default()
                .grace(tollgate::jiff::SignedDuration::from_hours(1));
            let regenerated = manager
                .regenerate("acme", rotated.record.id, grace)
                .await
                .unwrap();
            (kept, rotated.token, regenerated)
        };
        downgrade_to_v2(&path);

        let manager = TokenManager::new(RedbStore::open(&path).unwrap());
        for token in [&kept.token, &old_secret, &regenerated.token] {
            assert!(
                manager
                    .verify(token.expose_secret())
                    .await
                    .unwrap()
                    .is_valid(),
                "the current secrets and the one in its grace period verify"
            );
        }
        assert_eq!(
            manager.get("acme", kept.record.id).await.unwrap(),
            kept.record
        );
        // Deleting removes every secret of the token from the new table.
        manager.delete("acme", regenerated.record.id).await.unwrap();
        for token in [&old_secret, &regenerated.token] {
            assert!(
                !manager
                    .verify(token.expose_secret())
                    .await
                    .unwrap()
                    .is_valid()
            );
        }
        drop(manager);
        let db = Database::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        assert_eq!(
            txn.open_table(META)
                .unwrap()
                .get(SCHEMA_KEY)
                .unwrap()
                .unwrap()
                .value(),
            SCHEMA_VERSION
        );
        assert!(
            txn.list_tables()
                .unwrap()
                .all(|t| t.name() != BY_HASH_V2.name()),
            "the old index is gone"
        );
        assert_eq!(txn.open_table(SECRETS).unwrap().iter().unwrap().count(), 1);
    }
}
