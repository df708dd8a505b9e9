//! Verification on the hot path: a valid token served from the cache at 10k and 1M tokens,
//! and the rejection of a mistyped token, each beside its baseline.
//!
//! Times are the benchmarking thread's time on a CPU ([`OnCpu`]), not wall time.
//!
//! `cargo bench -p tollgate-benches --bench verify`

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sha2::{Digest, Sha256};
use tollgate::{CacheConfig, MemoryStore, TokenManager};
use tollgate_benches::{OnCpu, fill, names, order, ready};

/// Uses the first eight bytes of an already uniform key, as the cache does.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_usize(&mut self, _: usize) {}
}

fn verify_hit(c: &mut Criterion<OnCpu>) {
    let _runtime = tollgate_benches::enter();
    let mut group = c.benchmark_group("verify_cache_hit");
    group.sample_size(30);
    // `VERIFY_MAX_TOKENS=10000` skips the 1M case, for a quicker run.
    let max: usize = std::env::var("VERIFY_MAX_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    for n in [10_000, 1_000_000].into_iter().filter(|&n| n <= max) {
        // Entries stay fresh for the whole run: this measures hits. (With the default TTL of
        // 10 s, the 1M case spent much of its time re-reading expired entries.)
        let manager = TokenManager::new(MemoryStore::new()).with_cache(CacheConfig {
            ttl: std::time::Duration::from_secs(3600),
            ..CacheConfig::default()
        });
        let issued = fill(&manager, "bench", &names(n));
        let tokens: Vec<String> = issued
            .iter()
            .map(|i| i.token.expose_secret().to_owned())
            .collect();
        drop(issued);
        // Warm the cache: every token verified once.
        for token in &tokens {
            assert!(ready(manager.verify(token)).unwrap().is_valid());
        }
        tollgate_benches::block_on(manager.flush_last_used()).unwrap();
        let visit = order(n);

        // Baseline: SHA-256 of the token and one lookup in a map of the same size.
        let map: HashMap<[u8; 32], u64, BuildHasherDefault<Identity>> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (Sha256::digest(t.as_bytes()).into(), i as u64))
            .collect();
        let mut k = 0;
        group.bench_with_input(
            BenchmarkId::new("baseline_sha256_hashmap", n),
            &n,
            |b, _| {
                b.iter(|| {
                    k = (k + 1) % visit.len();
                    let hash: [u8; 32] = Sha256::digest(tokens[visit[k]].as_bytes()).into();
                    black_box(map.get(&hash))
                });
            },
        );
        let mut k = 0;
        group.bench_with_input(BenchmarkId::new("tollgate_verify", n), &n, |b, _| {
            b.iter(|| {
                k = (k + 1) % visit.len();
                black_box(ready(manager.verify(&tokens[visit[k]])).unwrap())
            });
        });
    }
    group.finish();
}

fn reject(c: &mut Criterion<OnCpu>) {
    let _runtime = tollgate_benches::enter();
    let mut group = c.benchmark_group("reject_mistyped");
    let manager = TokenManager::new(MemoryStore::new());
    let token = tollgate::TokenFormat::default().generate().unwrap();
    let mut typo = token.expose_secret().to_owned().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    group.bench_function("baseline_sha256", |b| {
        b.iter(|| black_box(Sha256::digest(black_box(typo.as_bytes()))));
    });
    group.bench_function("tollgate_verify_bad_checksum", |b| {
        b.iter(|| black_box(ready(manager.verify(black_box(&typo))).unwrap()));
    });
    group.bench_function("tollgate_verify_wrong_length", |b| {
        b.iter(|| black_box(ready(manager.verify(black_box("tg_short"))).unwrap()));
    });
    // The synchronous check alone, which a caller can run before `verify`.
    group.bench_function("tollgate_format_check_bad_checksum", |b| {
        b.iter(|| black_box(manager.format().check(black_box(&typo))));
    });
    // What driving an already-finished future costs in this harness.
    group.bench_function("harness_ready_future", |b| {
        b.iter(|| black_box(ready(async { black_box(1u8) })));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(OnCpu);
    targets = verify_hit, reject
}
criterion_main!(benches);
