//! The verification cache: verified records by secret hash, in memory.
//!
//! - Only records that verified are cached; unknown, malformed, expired or disabled tokens
//!   never are, so made-up tokens cannot flood it.
//! - Bounded: each shard holds at most its share of the capacity and drops an arbitrary entry
//!   when full.
//! - Entries are fresh for a short time (the TTL); the caller checks expiry, enabled and the
//!   grace period against the clock on every hit.
//! - Eviction is by id and bumps the shard's epoch. A lookup that missed takes a ticket (the
//!   epoch) before reading the store and may insert only if no eviction happened since, so a
//!   record read before a revocation can never be cached after it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::record::{TokenId, TokenRecord};
use crate::secret::SecretHash;

/// How the verification cache is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// The most records held. `0` turns the cache off.
    pub capacity: usize,
    /// How long a cached record is used before it is read from the store again. This bounds
    /// how stale a record can be when a change by another instance was not announced.
    pub ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 1 << 20,
            ttl: Duration::from_secs(10),
        }
    }
}

const SHARDS: usize = 64;

/// The key is already a uniform hash: use its first eight bytes instead of hashing again.
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its length, then its bytes; keep the first eight bytes seen
        // after the length.
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_usize(&mut self, _: usize) {}
}

pub(crate) type IdentityBuild = BuildHasherDefault<IdentityHasher>;

#[derive(Debug)]
struct Entry {
    record: Arc<TokenRecord>,
    fetched: Instant,
}

#[derive(Debug, Default)]
struct Shard {
    by_hash: HashMap<[u8; 32], Entry, IdentityBuild>,
    /// Which cached hashes belong to a token (its current and previous secret).
    by_id: HashMap<TokenId, Vec<[u8; 32]>>,
    epoch: u64,
}

impl std::fmt::Debug for IdentityHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityHasher")
    }
}

/// A lookup's permission to insert what it read, valid while no eviction happens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

#[derive(Debug)]
pub(crate) struct VerifyCache {
    shards: Box<[RwLock<Shard>]>,
    per_shard: usize,
    ttl: Duration,
}

impl VerifyCache {
    pub(crate) fn new(config: CacheConfig) -> Option<Self> {
        if config.capacity == 0 {
            return None;
        }
        Some(Self {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            per_shard: config.capacity.div_ceil(SHARDS),
            ttl: config.ttl,
        })
    }

    fn shard(&self, hash: &[u8; 32]) -> &RwLock<Shard> {
        // The hash map uses the first bytes; pick the shard from the last one.
        &self.shards[usize::from(hash[31]) % SHARDS]
    }

    /// A fresh cached record for `hash`, or the ticket to insert one after reading the store.
    pub(crate) fn get(&self, hash: &SecretHash) -> Result<Arc<TokenRecord>, Ticket> {
        let shard = self
            .shard(hash.as_bytes())
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        match shard.by_hash.get(hash.as_bytes()) {
            Some(entry) if entry.fetched.elapsed() < self.ttl => Ok(entry.record.clone()),
            _ => Err(Ticket(shard.epoch)),
        }
    }

    /// Caches `record` under `hash`, unless an eviction happened since `ticket` was taken.
    pub(crate) fn insert(&self, hash: &SecretHash, record: Arc<TokenRecord>, ticket: Ticket) {
        let key = *hash.as_bytes();
        let mut shard = self
            .shard(&key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.epoch != ticket.0 {
            return;
        }
        if shard.by_hash.len() >= self.per_shard && !shard.by_hash.contains_key(&key) {
            let victim = shard.by_hash.iter().next().map(|(k, e)| (*k, e.record.id));
            if let Some((victim, id)) = victim {
                shard.by_hash.remove(&victim);
                remove_hash(&mut shard.by_id, id, &victim);
            }
        }
        let id = record.id;
        let entry = Entry {
            record,
            fetched: Instant::now(),
        };
        if let Some(old) = shard.by_hash.insert(key, entry) {
            remove_hash(&mut shard.by_id, old.record.id, &key);
        }
        shard.by_id.entry(id).or_default().push(key);
    }

    /// Drops every cached secret of token `id`. Call after the change is in the store and
    /// before telling anyone it happened.
    pub(crate) fn evict(&self, id: TokenId) {
        for shard in &self.shards {
            let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
            // Bump even when nothing is cached: a lookup in flight may be about to insert.
            shard.epoch += 1;
            if let Some(hashes) = shard.by_id.remove(&id) {
                for hash in hashes {
                    shard.by_hash.remove(&hash);
                }
            }
        }
    }

    /// Drops everything.
    pub(crate) fn clear(&self) {
        for shard in &self.shards {
            let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
            shard.epoch += 1;
            shard.by_hash.clear();
            shard.by_id.clear();
        }
    }

    /// How many records are cached.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .by_hash
                    .len()
            })
            .sum()
    }
}

fn remove_hash(by_id: &mut HashMap<TokenId, Vec<[u8; 32]>>, id: TokenId, hash: &[u8; 32]) {
    if let Some(hashes) = by_id.get_mut(&id) {
        hashes.retain(|h| h != hash);
        if hashes.is_empty() {
            by_id.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TokenHasher;

    fn record(id: u8) -> Arc<TokenRecord> {
        let now = jiff::Timestamp::UNIX_EPOCH;
        Arc::new(TokenRecord {
            id: TokenId::from_bytes([id; 16]),
            owner: "o".into(),
            name: format!("n{id}"),
            description: String::new(),
            scopes: Vec::new(),
            enabled: true,
            created_at: now,
            updated_at: now,
            expires_at: None,
            last_used_at: None,
            secret_hash: TokenHasher::default().hash(&id.to_string()),
            previous_secret: None,
            sealed_secret: None,
            version: 1,
        })
    }

    fn cache(capacity: usize, ttl: Duration) -> VerifyCache {
        VerifyCache::new(CacheConfig { capacity, ttl }).unwrap()
    }

    #[test]
    fn hits_after_insert_and_misses_after_evict() {
        let cache = cache(100, Duration::from_secs(60));
        let r = record(1);
        let ticket = cache.get(&r.secret_hash).unwrap_err();
        cache.insert(&r.secret_hash, r.clone(), ticket);
        assert_eq!(cache.get(&r.secret_hash).unwrap().id, r.id);
        cache.evict(r.id);
        assert!(cache.get(&r.secret_hash).is_err());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_read_from_before_an_eviction_is_not_cached() {
        let cache = cache(100, Duration::from_secs(60));
        let r = record(2);
        let ticket = cache.get(&r.secret_hash).unwrap_err();
        // The token is revoked while the lookup reads the store...
        cache.evict(r.id);
        // ...so what it read must not be cached.
        cache.insert(&r.secret_hash, r.clone(), ticket);
        assert!(cache.get(&r.secret_hash).is_err());
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = cache(100, Duration::ZERO);
        let r = record(3);
        let ticket = cache.get(&r.secret_hash).unwrap_err();
        cache.insert(&r.secret_hash, r.clone(), ticket);
        assert!(cache.get(&r.secret_hash).is_err());
    }

    #[test]
    fn size_is_bounded() {
        let cache = cache(SHARDS, Duration::from_secs(60));
        for i in 0..=255u8 {
            let r = record(i);
            let hash = r.secret_hash;
            let ticket = cache.get(&hash).unwrap_err();
            cache.insert(&hash, r, ticket);
        }
        assert!(cache.len() <= SHARDS, "{}", cache.len());
        let by_id: usize = cache
            .shards
            .iter()
            .map(|s| {
                s.read()
                    .unwrap()
                    .by_id
                    .values()
                    .map(Vec::len)
                    .sum::<usize>()
            })
            .sum();
        assert_eq!(by_id, cache.len(), "the id index follows evictions");
    }

    #[test]
    fn clear_drops_everything() {
        let cache = cache(100, Duration::from_secs(60));
        let r = record(4);
        let ticket = cache.get(&r.secret_hash).unwrap_err();
        cache.insert(&r.secret_hash, r.clone(), ticket);
        cache.clear();
        assert!(cache.get(&r.secret_hash).is_err());
    }
}
