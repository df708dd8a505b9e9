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
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use jiff::Timestamp;

use crate::manager::Verification;
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

/// How often the [`CoarseClock`] is refreshed.
pub(crate) const COARSE_TICK: Duration = Duration::from_millis(1);

/// The time for the cache-hit path, refreshed every [`COARSE_TICK`] by a thread while any
/// manager uses it. Reading the system clock took 90–130 ns on the benchmark machine (a
/// Firecracker VM, where the vDSO clock falls back to a system call): more than the rest of a
/// cache hit. Reading this one is a load.
///
/// Its precision is the tick, 1 ms, plus however long the refreshing thread waits for a core
/// on an overloaded machine: a cached token may verify that long after its expiry or the end
/// of its grace period. Revocation does not depend on it (eviction does), and a store read
/// uses the exact time.
#[derive(Debug)]
pub(crate) struct CoarseClock {
    micros: AtomicI64,
}

impl CoarseClock {
    /// The process's coarse clock, started if no one holds it; `None` if no thread could be
    /// started (then the caller reads its exact clock).
    pub(crate) fn shared() -> Option<Arc<Self>> {
        static SHARED: Mutex<Weak<CoarseClock>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(clock) = shared.upgrade() {
            return Some(clock);
        }
        let clock = Arc::new(Self {
            micros: AtomicI64::new(Timestamp::now().as_microsecond()),
        });
        let weak = Arc::downgrade(&clock);
        // The thread holds only a weak reference: it ends once every manager is dropped.
        std::thread::Builder::new()
            .name("tollgate-clock".into())
            .spawn(move || {
                while let Some(clock) = weak.upgrade() {
                    clock
                        .micros
                        .store(Timestamp::now().as_microsecond(), Ordering::Relaxed);
                    drop(clock);
                    std::thread::sleep(COARSE_TICK);
                }
            })
            .ok()?;
        *shared = Arc::downgrade(&clock);
        Some(clock)
    }

    /// The time at the last tick, in microseconds since the Unix epoch.
    pub(crate) fn now_micros(&self) -> i64 {
        self.micros.load(Ordering::Relaxed)
    }
}

/// The key is already a uniform hash (a SHA-256 digest): use its first eight bytes instead of
/// hashing again. Only for keys that are uniform whatever their source; see [`IdHasher`].
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

/// For token ids. Generated ids are random, but a store may import ids, or a caller build
/// them sequentially, so that they differ only in a few bytes: every byte is mixed in, and
/// the result is finalized, so that such ids still spread over the table's buckets (taking
/// eight bytes as they are put sequential ids into one bucket chain, and building an index
/// of 1M names took minutes instead of seconds). Not keyed: ids are chosen by whoever issues
/// tokens, not by whoever presents them.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // The finalizer of MurmurHash3: every input bit affects every output bit.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 33;
        h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        h ^ (h >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(29) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.write(&n.to_le_bytes());
    }
}

pub(crate) type IdBuild = BuildHasherDefault<IdHasher>;

impl std::fmt::Debug for IdHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdHasher")
    }
}

/// A cached record with what verification checks kept inline, so that a hit reads the entry
/// and touches the record only to hand out a reference to it.
#[derive(Debug)]
struct Entry {
    record: Arc<TokenRecord>,
    /// When it was read from the store, in microseconds of the manager's clock.
    fetched: i64,
    /// The latest successful use not yet flushed, in microseconds; 0 when none. Kept here so
    /// that a cache hit records its use without touching any shared map.
    used: AtomicI64,
    /// The record's expiry in microseconds; `i64::MAX` for none.
    expires: i64,
    /// Until when this secret verifies, in microseconds: `i64::MAX` for the record's current
    /// secret, the end of the grace period for its previous one.
    secret_until: i64,
    enabled: bool,
}

impl Entry {
    /// The outcome of presenting this entry's secret at `now` (microseconds), checked in
    /// the order `manager::check` checks a record read from the store.
    fn verify(&self, now: i64) -> Verification {
        if now >= self.secret_until {
            Verification::Unknown
        } else if !self.enabled {
            Verification::Disabled(self.record.id)
        } else if now >= self.expires {
            Verification::Expired(self.record.id)
        } else {
            Verification::Valid(Arc::clone(&self.record))
        }
    }
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

    /// Looks `hash` up at `now` (microseconds). A fresh hit is answered from the entry alone
    /// (expiry, enabled, grace period); a successful one is recorded as a use in the entry.
    pub(crate) fn lookup(&self, hash: &SecretHash, now: i64) -> Lookup<Verification> {
        let shard = self
            .shard(hash.as_bytes())
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let trusted = self.trusted.load(Ordering::Acquire);
        match shard.by_hash.get(hash.as_bytes()) {
            Some(entry) if trusted && now.saturating_sub(entry.fetched) < self.ttl_micros => {
                let outcome = entry.verify(now);
                // Racing hits may store out of order; last-used is advisory and the flush
                // keeps the later of what it sees and what is stored.
                if outcome.is_valid() && entry.used.load(Ordering::Relaxed) < now {
                    entry.used.store(now, Ordering::Relaxed);
                }
                Lookup::Hit(outcome)
            }
            _ => Lookup::Miss(Ticket(shard.epoch)),
        }
    }

    /// Caches `record` under `hash`, read from the store at `now` (microseconds), unless an
    /// eviction happened since `ticket` was taken or `hash` is neither the record's current
    /// secret nor its previous one; returns whether it did. `used` records this lookup as a
    /// use in the new entry.
    pub(crate) fn insert(
        &self,
        hash: &SecretHash,
        record: Arc<TokenRecord>,
        ticket: Ticket,
        now: i64,
        used: bool,
    ) -> bool {
        let secret_until = if record.secret_hash == *hash {
            i64::MAX
        } else {
            match &record.previous_secret {
                Some(previous) if previous.hash == *hash => previous.valid_until.as_microsecond(),
                _ => return false,
            }
        };
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
        let entry = Entry {
            fetched: now,
            used: AtomicI64::new(if used { now } else { 0 }),
            expires: record
                .expires_at
                .map_or(i64::MAX, Timestamp::as_microsecond),
            secret_until,
            enabled: record.enabled,
            record,
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

    const NOW: i64 = 0;

    /// Looks up; `Ok` with the cached record's id on a hit.
    fn get(cache: &VerifyCache, hash: &SecretHash) -> Result<TokenId, Ticket> {
        match cache.lookup(hash, NOW) {
            Lookup::Hit(Verification::Valid(record)) => Ok(record.id),
            Lookup::Hit(other) => panic!("cached, but {other:?}"),
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
        let later = NOW + 5_000_000;
        assert!(matches!(
            cache.lookup(&r.secret_hash, later),
            Lookup::Hit(Verification::Valid(_))
        ));
        cache.take_uses(&mut uses);
        assert_eq!(uses, [(r.id, Timestamp::from_microsecond(later).unwrap())]);
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

    /// Ids that differ only in a few bytes (sequential, imported) must still spread over a
    /// table's buckets: the index and the last-used map key on them.
    #[test]
    fn sequential_ids_spread_over_buckets() {
        use std::collections::HashSet;
        use std::hash::BuildHasher;
        const N: u64 = 1 << 14;
        let layouts: [fn(u64) -> [u8; 16]; 3] = [
            |i| {
                let mut id = [0; 16];
                id[..8].copy_from_slice(&i.to_le_bytes());
                id
            },
            |i| {
                let mut id = [0; 16];
                id[8..].copy_from_slice(&i.to_be_bytes());
                id
            },
            |i| u128::from(i).to_be_bytes(),
        ];
        for (layout, make) in layouts.iter().enumerate() {
            let buckets: HashSet<u64> = (0..N)
                .map(|i| IdBuild::default().hash_one(TokenId::from_bytes(make(i))) % N)
                .collect();
            // A random function fills 1 - 1/e (63 %) of the buckets; the identity filled one.
            assert!(
                buckets.len() as u64 > N / 2,
                "layout {layout}: {} of {N} buckets",
                buckets.len()
            );
        }
    }

    #[test]
    fn the_coarse_clock_is_shared_and_follows_the_system_clock() {
        let clock = CoarseClock::shared().unwrap();
        assert!(Arc::ptr_eq(&clock, &CoarseClock::shared().unwrap()));
        let before = clock.now_micros();
        let start = Timestamp::now().as_microsecond();
        // Wait (without timing anything) until a tick after `start` has been published.
        while clock.now_micros() < start {
            std::thread::sleep(COARSE_TICK);
        }
        assert!(clock.now_micros() >= before);
        assert!(clock.now_micros() <= Timestamp::now().as_microsecond());
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
