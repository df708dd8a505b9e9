//! A fixed workload for instruction-count profiling of `verify` on redb without a cache:
//! `valgrind --tool=callgrind target/release/examples/profile_redb [tokens]`, after the file
//! is filled (outside valgrind it takes seconds; inside, minutes: keep `tokens` small).
//! Divide the inclusive cost of `TokenManager::verify` and the future's poll by the calls.

use std::hint::black_box;

use std::time::Duration;

use tollgate::{CacheConfig, Deadlines, TokenManager};
use tollgate_benches::{enter, fill, names, order, ready};
use tollgate_redb::RedbStore;

const ROUNDS: usize = 20_000;

fn main() {
    let _runtime = enter();
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.redb");
    let tokens: Vec<String> = {
        // Under valgrind a batch of writes outlasts the default deadline.
        let patient = Deadlines {
            read: Duration::from_secs(3600),
            write: Duration::from_secs(3600),
        };
        let manager = TokenManager::new(RedbStore::open(&path).unwrap()).with_deadlines(patient);
        fill(&manager, "bench", &names(n))
            .iter()
            .map(|i| i.token.expose_secret().to_owned())
            .collect()
    };
    let manager = TokenManager::new(RedbStore::open(&path).unwrap()).with_cache(CacheConfig {
        capacity: 0,
        ..CacheConfig::default()
    });
    let visit = order(n);
    for k in 0..ROUNDS {
        let token = &tokens[visit[k % visit.len()]];
        black_box(ready(manager.verify(black_box(token))).unwrap());
    }
}
