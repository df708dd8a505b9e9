//! A fixed workload for instruction-count profiling of the verify hot path:
//! `valgrind --tool=callgrind target/release/examples/profile_verify [hit|reject|wrong_length|check|hash] [tokens] [rounds]`.
//! Every token is verified once (so cached), then `rounds` (100 000) more verifications run in a fixed
//! order; divide the inclusive cost of `TokenManager::verify` by the calls.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::hint::black_box;

use sha2::{Digest, Sha256};

use tollgate::{MemoryStore, TokenManager};
use tollgate_benches::{enter, fill, names, order, ready};

fn main() {
    let _runtime = enter();
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "hit".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
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
    // Baseline, as in the verify bench: SHA-256 and one lookup in a map of the same size.
    let map: HashMap<[u8; 32], u64, BuildHasherDefault<Identity>> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (Sha256::digest(t.as_bytes()).into(), i as u64))
        .collect();
    let (cpu, wall) = (on_cpu_ns(), std::time::Instant::now());
    for k in 0..rounds {
        let token = &tokens[visit[k % visit.len()]];
        let hash: [u8; 32] = Sha256::digest(black_box(token).as_bytes()).into();
        black_box(map.get(&hash));
    }
    let baseline = report("baseline_sha256_hashmap", rounds, cpu, wall);
    let hasher = tollgate::TokenHasher::default();
    let (cpu, wall) = (on_cpu_ns(), std::time::Instant::now());
    for k in 0..rounds {
        let token = match case.as_str() {
            "reject" => &typo,
            "wrong_length" => "tg_short",
            _ => &tokens[visit[k % visit.len()]],
        };
        match case.as_str() {
            // Parts of a hit, alone.
            "check" => drop(black_box(manager.format().check(black_box(token)))),
            "hash" => drop(black_box(hasher.hash(black_box(token)))),
            _ => drop(black_box(ready(manager.verify(black_box(token))).unwrap())),
        }
    }
    let measured = report(&case, rounds, cpu, wall);
    eprintln!("ratio on CPU: {:.2}", measured / baseline);
}

/// Nanoseconds this thread has spent on a CPU (`/proc/thread-self/schedstat`): unlike wall
/// time, it leaves out the time other processes on a loaded machine take.
fn on_cpu_ns() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn report(what: &str, rounds: usize, cpu: f64, wall: std::time::Instant) -> f64 {
    let cpu = (on_cpu_ns() - cpu) / rounds as f64;
    let wall = wall.elapsed().as_nanos() as f64 / rounds as f64;
    eprintln!("{what}: {cpu:.1} ns on CPU a call ({wall:.1} ns wall)");
    cpu
}

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
