//! A fixed workload for instruction-count profiling of the verify hot path:
//! `valgrind --tool=callgrind target/release/examples/profile_verify [hit|reject|wrong_length] [tokens]`.
//! Every token is verified once (so cached), then `ROUNDS` more verifications run in a fixed
//! order; divide the inclusive cost of `TokenManager::verify` by the calls.

use std::hint::black_box;

use tollgate::{MemoryStore, TokenManager};
use tollgate_benches::{enter, fill, names, order, ready};

const ROUNDS: usize = 100_000;

fn main() {
    let _runtime = enter();
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "hit".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let manager = TokenManager::new(MemoryStore::new());
    let tokens: Vec<String> = fill(&manager, "bench", &names(n))
        .iter()
        .map(|i| i.token.expose_secret().to_owned())
        .collect();
    for token in &tokens {
        assert!(ready(manager.verify(token)).unwrap().is_valid());
    }
    let mut typo = tokens[0].clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let visit = order(n);
    for k in 0..ROUNDS {
        let token = match case.as_str() {
            "reject" => &typo,
            "wrong_length" => "tg_short",
            _ => &tokens[visit[k % visit.len()]],
        };
        black_box(ready(manager.verify(black_box(token))).unwrap());
    }
}
