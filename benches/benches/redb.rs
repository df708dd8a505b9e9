//! redb at scale: verification that misses the cache at 1M tokens, and `apply`, one token per
//! transaction and in batches, each beside the bare redb operation.
//!
//! `cargo bench -p tollgate-benches --bench redb`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use redb::{Database, ReadableDatabase, TableDefinition};
use tollgate::{CacheConfig, NewToken, TokenHasher, TokenManager};
use tollgate_benches::{OnCpu, block_on, fill, names, order, ready};
use tollgate_redb::RedbStore;

/// Tollgate's secret-hash index (schema version 3): the hash → the id and the record's row.
const SECRETS: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("tollgate_secrets");
const BARE: TableDefinition<'_, [u8; 16], &[u8]> = TableDefinition::new("bare");

fn no_cache() -> CacheConfig {
    CacheConfig {
        capacity: 0,
        ..CacheConfig::default()
    }
}

fn verify_miss(c: &mut Criterion<OnCpu>) {
    let _runtime = tollgate_benches::enter();
    const N: usize = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.redb");
    let tokens: Vec<String> = {
        let manager = TokenManager::new(RedbStore::open(&path).unwrap());
        fill(&manager, "bench", &names(N))
            .iter()
            .map(|i| i.token.expose_secret().to_owned())
            .collect()
    };
    let hashes: Vec<[u8; 32]> = tokens
        .iter()
        .map(|t| *TokenHasher::default().hash(t).as_bytes())
        .collect();
    let visit = order(N);
    let mut group = c.benchmark_group("redb_verify_miss_1m");
    group.sample_size(30);
    {
        // Baseline: the bare read of the same key.
        let db = Database::open(&path).unwrap();
        let mut k = 0;
        group.bench_function("baseline_redb_read", |b| {
            b.iter(|| {
                k = (k + 1) % visit.len();
                let txn = db.begin_read().unwrap();
                let table = txn.open_table(SECRETS).unwrap();
                let value = table.get(hashes[visit[k]]).unwrap();
                black_box(value.map(|v| black_box(v.value()).len()))
            });
        });
    }
    let manager = TokenManager::new(RedbStore::open(&path).unwrap()).with_cache(no_cache());
    let mut k = 0;
    group.bench_function("tollgate_verify_no_cache", |b| {
        b.iter(|| {
            k = (k + 1) % visit.len();
            black_box(ready(manager.verify(&tokens[visit[k]])).unwrap())
        });
    });
    group.finish();
}

fn apply(c: &mut Criterion) {
    let _runtime = tollgate_benches::enter();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("redb_apply");
    group.sample_size(20);
    // A stored record's size, for the baseline's values.
    let record_len = {
        let manager = TokenManager::new(RedbStore::open(dir.path().join("size.redb")).unwrap());
        let issued =
            block_on(manager.apply("bench", NewToken::new("prod-billing-webhook-123456"))).unwrap();
        // id, owner, name, empty description, no scopes, 4 times, 32-byte hash, version.
        16 + 5 + issued.record.name.len() + 1 + 1 + 4 * 8 + 32 + 8
    };
    let value = vec![7u8; record_len];

    let bare = Database::create(dir.path().join("bare.redb")).unwrap();
    let mut n = 0u64;
    group.bench_function("baseline_redb_commit_1", |b| {
        b.iter(|| {
            n += 1;
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&n.to_le_bytes());
            let txn = bare.begin_write().unwrap();
            txn.open_table(BARE)
                .unwrap()
                .insert(key, value.as_slice())
                .unwrap();
            txn.commit().unwrap();
        });
    });
    let manager = TokenManager::new(RedbStore::open(dir.path().join("apply.redb")).unwrap());
    let mut i = 0u64;
    group.bench_function("tollgate_apply_1", |b| {
        b.iter(|| {
            i += 1;
            block_on(manager.apply("bench", NewToken::new(format!("prod-billing-webhook-{i}"))))
                .unwrap()
        });
    });

    const BATCH: u64 = 1000;
    group.throughput(criterion::Throughput::Elements(BATCH));
    group.bench_function("baseline_redb_commit_1000", |b| {
        b.iter(|| {
            let txn = bare.begin_write().unwrap();
            {
                let mut table = txn.open_table(BARE).unwrap();
                for _ in 0..BATCH {
                    n += 1;
                    let mut key = [0u8; 16];
                    key[..8].copy_from_slice(&n.to_le_bytes());
                    table.insert(key, value.as_slice()).unwrap();
                }
            }
            txn.commit().unwrap();
        });
    });
    group.bench_function("tollgate_apply_many_1000", |b| {
        b.iter_batched(
            || {
                (0..BATCH)
                    .map(|_| {
                        i += 1;
                        NewToken::new(format!("prod-billing-webhook-{i}"))
                    })
                    .collect::<Vec<_>>()
            },
            |batch| block_on(manager.apply_many("bench", batch)).unwrap(),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

// Reads run on the benchmarking thread: timed on the CPU. Writes commit on Tokio's blocking
// pool and wait for the disk: timed by the wall clock.
criterion_group! {
    name = reads;
    config = Criterion::default().with_measurement(OnCpu);
    targets = verify_miss
}
criterion_group!(writes, apply);
criterion_main!(reads, writes);
