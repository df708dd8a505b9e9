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
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use jiff::Timestamp;

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
    /// When it was read from the store, in microseconds of the manager's clock.
    fetched: i64,
    /// The latest successful use not yet flushed, in microseconds; 0 when none. Kept here so
    /// that a cache hit records its use without touching any shared map.
    used: AtomicI64,
}

/// What the cache says about a presented secret.
#[derive(Debug)]
pub(crate) enum Lookup<T> {
    /// A fresh record was cached; here is what the check made of it.
    Hit(T),
    /// Nothing fresh: read the store, then insert with this ticket.
    Miss(Ticket),
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
    /// Whether the store's change feed is live, so that what is cached would be evicted on
    /// a change. While it is not, nothing is answered from or added to the cache.
    trusted: AtomicBool,
    shards: Box<[RwLock<Shard>]>,
    per_shard: usize,
    ttl_micros: i64,
}

impl VerifyCache {
    pub(crate) fn new(config: CacheConfig) -> Option<Self> {
        if config.capacity == 0 {
            return None;
        }
        Some(Self {
            trusted: AtomicBool::new(true),
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            per_shard: config.capacity.div_ceil(SHARDS),
            ttl_micros: i64::try_from(config.ttl.as_micros()).unwrap_or(i64::MAX),
        })
    }

    fn shard(&self, hash: &[u8; 32]) -> &RwLock<Shard> {
        // The hash map uses the first bytes; pick the shard from the last one.
        &self.shards[usize::from(hash[31]) % SHARDS]
    }

    /// Looks `hash` up at `now`. On a fresh hit, `check` decides the outcome and says
    /// whether it is a successful use, which is then recorded in the entry.
    pub(crate) fn lookup<T>(
        &self,
        hash: &SecretHash,
        now: Timestamp,
        check: impl FnOnce(&Arc<TokenRecord>) -> (T, bool),
    ) -> Lookup<T> {
        let now = now.as_microsecond();
        let shard = self
            .shard(hash.as_bytes())
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let trusted = self.trusted.load(Ordering::Acquire);
        match shard.by_hash.get(hash.as_bytes()) {
            Some(entry) if trusted && now.saturating_sub(entry.fetched) < self.ttl_micros => {
                let (outcome, used) = check(&entry.record);
                // Racing hits may store out of order; last-used is advisory and the flush
                // keeps the later of what it sees and what is stored.
                if used && entry.used.load(Ordering::Relaxed) < now {
                    entry.used.store(now, Ordering::Relaxed);
                }
                Lookup::Hit(outcome)
            }
            _ => Lookup::Miss(Ticket(shard.epoch)),
        }
    }

    /// Caches `record` under `hash`, read from the store at `now`, unless an eviction
    /// happened since `ticket` was taken; returns whether it did. `used` records this lookup
    /// as a use in the new entry.
    pub(crate) fn insert(
        &self,
        hash: &SecretHash,
        record: Arc<TokenRecord>,
        ticket: Ticket,
        now: Timestamp,
        used: bool,
    ) -> bool {
        let key = *hash.as_bytes();
        let mut shard = self
            .shard(&key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // Checked under the shard's lock: `set_trusted(false)` stores the flag before it
        // takes the locks to clear, so an insert either sees the flag or is cleared after.
        if shard.epoch != ticket.0 || !self.trusted.load(Ordering::Acquire) {
            return false;
        }
        if shard.by_hash.len() >= self.per_shard && !shard.by_hash.contains_key(&key) {
            let victim = shard.by_hash.iter().next().map(|(k, e)| (*k, e.record.id));
            if let Some((victim, id)) = victim {
                shard.by_hash.remove(&victim);
                remove_hash(&mut shard.by_id, id, &victim);
            }
        }
        let id = record.id;
        let now = now.as_microsecond();
        let entry = Entry {
            record,
            fetched: now,
            used: AtomicI64::new(if used { now } else { 0 }),
        };
        if let Some(old) = shard.by_hash.insert(key, entry) {
            remove_hash(&mut shard.by_id, old.record.id, &key);
        }
        shard.by_id.entry(id).or_default().push(key);
        true
    }

    /// Takes the uses recorded in entries since the last call.
    pub(crate) fn take_uses(&self, out: &mut Vec<(TokenId, Timestamp)>) {
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
            for entry in shard.by_hash.values() {
                let used = entry.used.swap(0, Ordering::Relaxed);
                if used != 0
                    && let Ok(at) = Timestamp::from_microsecond(used)
                {
                    out.push((entry.record.id, at));
                }
            }
        }
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

    /// Follows the state of the store's change feed. Lost (`false`): stop answering and
    /// caching at once, and drop everything. Live again (`true`): drop everything read while
    /// it was down, then trust again; lookups that missed before cannot insert (their ticket
    /// is older than the clear).
    pub(crate) fn set_trusted(&self, live: bool) {
        if live {
            self.clear();
            self.trusted.store(true, Ordering::Release);
        } else {
            self.trusted.store(false, Ordering::Release);
            self.clear();
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
            hint: String::new(),
            version: 1,
        })
    }

    fn cache(capacity: usize, ttl: Duration) -> VerifyCache {
        VerifyCache::new(CacheConfig { capacity, ttl }).unwrap()
    }

    const NOW: Timestamp = Timestamp::UNIX_EPOCH;

    /// Looks up; `Ok` with the cached record's id on a hit.
    fn get(cache: &VerifyCache, hash: &SecretHash) -> Result<TokenId, Ticket> {
        match cache.lookup(hash, NOW, |r| (r.id, true)) {
            Lookup::Hit(id) => Ok(id),
            Lookup::Miss(ticket) => Err(ticket),
        }
    }

    #[test]
    fn hits_after_insert_and_misses_after_evict() {
        let cache = cache(100, Duration::from_secs(60));
        let r = record(1);
        let ticket = get(&cache, &r.secret_hash).unwrap_err();
        assert!(cache.insert(&r.secret_hash, r.clone(), ticket, NOW, false));
        assert_eq!(get(&cache, &r.secret_hash).unwrap(), r.id);
        cache.evict(r.id);
        assert!(get(&cache, &r.secret_hash).is_err());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_read_from_before_an_eviction_is_not_cached() {
        let cache = cache(100, Duration::from_secs(60));
        let r = record(2);
        let ticket = get(&cache, &r.secret_hash).unwrap_err();
        // The token is revoked while the lookup reads the store...
        cache.evict(r.id);
        // ...so what it read must not be cached.
        assert!(!cache.insert(&r.secret_hash, r.clone(), ticket, NOW, false));
        assert!(get(&cache, &r.secret_hash).is_err());
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = cache(100, Duration::ZERO);
        let r = record(3);
        let ticket = get(&cache, &r.secret_hash).unwrap_err();
        assert!(cache.insert(&r.secret_hash, r.clone(), ticket, NOW, false));
        assert!(get(&cache, &r.secret_hash).is_err());
    }

    #[test]
    fn size_is_bounded() {
        let cache = cache(SHARDS, Duration::from_secs(60));
        for i in 0..=255u8 {
            let r = record(i);
            let hash = r.secret_hash;
            let ticket = get(&cache, &hash).unwrap_err();
            cache.insert(&hash, r, ticket, NOW, false);
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
    fn uses_are_kept_in_entries_until_taken() {
        let cache = cache(100, Duration::from_secs(60));
        let r = record(5);
        let ticket = get(&cache, &r.secret_hash).unwrap_err();
        assert!(cache.insert(&r.secret_hash, r.clone(), ticket, NOW, false));
        let mut uses = Vec::new();
        cache.take_uses(&mut uses);
        assert!(uses.is_empty());
        let later = NOW + jiff::SignedDuration::from_secs(5);
        assert!(matches!(
            cache.lookup(&r.secret_hash, later, |_| ((), true)),
            Lookup::Hit(())
        ));
        cache.take_uses(&mut uses);
        assert_eq!(uses, [(r.id, later)]);
        uses.clear();
        cache.take_uses(&mut uses);
        assert!(uses.is_empty(), "taken once");
    }

    #[test]
    fn an_untrusted_cache_neither_answers_nor_caches() {
        let cache = cache(100, Duration::from_secs(60));
        let r = record(6);
        let ticket = get(&cache, &r.secret_hash).unwrap_err();
        assert!(cache.insert(&r.secret_hash, r.clone(), ticket, NOW, false));
        cache.set_trusted(false);
        let ticket = get(&cache, &r.secret_hash).unwrap_err();
        assert!(!cache.insert(&r.secret_hash, r.clone(), ticket, NOW, false));
        // A lookup that missed while the feed was down cannot cache after it is back…
        cache.set_trusted(true);
        assert!(!cache.insert(&r.secret_hash, r.clone(), ticket, NOW, false));
        assert!(get(&cache, &r.secret_hash).is_err());
        // …one that missed after it is back can.
        let ticket = get(&cache, &r.secret_hash).unwrap_err();
        assert!(cache.insert(&r.secret_hash, r.clone(), ticket, NOW, false));
        assert!(get(&cache, &r.secret_hash).is_ok());
    }

    #[test]
    fn clear_drops_everything() {
        let cache = cache(100, Duration::from_secs(60));
        let r = record(4);
        let ticket = get(&cache, &r.secret_hash).unwrap_err();
        assert!(cache.insert(&r.secret_hash, r.clone(), ticket, NOW, false));
        cache.clear();
        assert!(get(&cache, &r.secret_hash).is_err());
    }
}
