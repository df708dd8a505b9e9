//! Fuzzy `list` with a query at 10k, 100k and 1M names, beside a naive scan that scores
//! every name with strsim.
//!
//! Also the index build at 100k names with random ids beside sequential ones (ids a store
//! imports need not be random).
//!
//! Times are the benchmarking thread's time on a CPU ([`OnCpu`]), not wall time.
//!
//! `cargo bench -p tollgate-benches --bench fuzzy`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tollgate::jiff::Timestamp;
use tollgate::{ListOptions, MemoryStore, NameIndex, NewToken, TokenId, TokenManager};
use tollgate_benches::{OnCpu, QUERIES, names, ready};

/// The naive way: lower-case names kept beforehand, Jaro-Winkler against every one, the
/// best 50 kept.
fn naive(names: &[String], query: &str) -> Vec<usize> {
    let query = query.to_lowercase();
    let mut scored: Vec<(f64, usize)> = names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let score = strsim::jaro_winkler(&query, name);
            (score > 0.7).then_some((score, i))
        })
        .collect();
    let keep = scored.len().min(50);
    if keep > 0 {
        scored.select_nth_unstable_by(keep - 1, |a, b| b.0.total_cmp(&a.0));
        scored.truncate(keep);
    }
    scored.into_iter().map(|(_, i)| i).collect()
}

fn fuzzy(c: &mut Criterion<OnCpu>) {
    let _runtime = tollgate_benches::enter();
    // `FUZZY_MAX_NAMES=100000` skips the larger sizes, for a quicker run.
    let max: usize = std::env::var("FUZZY_MAX_NAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    for n in [10_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|&n| n <= max)
    {
        let mut group = c.benchmark_group(format!("fuzzy_list_{n}"));
        group.sample_size(if n >= 1_000_000 { 10 } else { 20 });
        let all = names(n);
        let manager = TokenManager::new(MemoryStore::new());
        for chunk in all.chunks(10_000) {
            tollgate_benches::block_on(
                manager.apply_many("bench", chunk.iter().map(NewToken::new)),
            )
            .unwrap();
        }
        let lower: Vec<String> = all.iter().map(|s| s.to_lowercase()).collect();
        for (kind, query) in QUERIES {
            let id = format!("{kind}: {query}");
            group.bench_with_input(
                BenchmarkId::new("baseline_naive_strsim", &id),
                query,
                |b, q| {
                    b.iter(|| black_box(naive(&lower, q)));
                },
            );
            group.bench_with_input(BenchmarkId::new("tollgate_list", &id), query, |b, q| {
                b.iter(|| {
                    let options = ListOptions {
                        query: Some((*q).to_owned()),
                        ..Default::default()
                    };
                    black_box(ready(manager.list("bench", options)).unwrap())
                });
            });
        }
        group.finish();
    }
}

/// Building the index of 100k names keyed by random ids (the baseline) and by sequential
/// ones, which differ only in their last bytes.
fn index_build(c: &mut Criterion<OnCpu>) {
    let _runtime = tollgate_benches::enter();
    const N: usize = 100_000;
    let mut group = c.benchmark_group("index_build_100k");
    group.sample_size(10);
    let all = names(N);
    let at = Timestamp::UNIX_EPOCH;
    let random: Vec<TokenId> = (0..N).map(|_| TokenId::generate().unwrap()).collect();
    let sequential: Vec<TokenId> = (0..N as u128)
        .map(|i| TokenId::from_bytes(i.to_be_bytes()))
        .collect();
    for (label, ids) in [
        ("baseline_random_ids", &random),
        ("sequential_ids", &sequential),
    ] {
        group.bench_function(label, |b| {
            b.iter(|| {
                let index = NameIndex::new();
                for (id, name) in ids.iter().zip(&all) {
                    index.insert("bench", *id, at, name);
                }
                black_box(index)
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(OnCpu);
    targets = index_build, fuzzy
}
criterion_main!(benches);
