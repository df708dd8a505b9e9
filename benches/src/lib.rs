//! Shared pieces of the benchmarks: realistic token names, search queries, and helpers that
//! fill stores. See `BENCHMARKS.md` at the repository root for what each bench measures.

use std::future::Future;

use futures_util::FutureExt as _;
use rand::RngExt as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use tollgate::{Issued, NewToken, TokenManager};

const ENVIRONMENTS: &[&str] = &["prod", "staging", "dev", "test", "qa", "sandbox", "edge"];
const TEAMS: &[&str] = &[
    "billing",
    "payments",
    "search",
    "checkout",
    "inventory",
    "shipping",
    "analytics",
    "marketing",
    "support",
    "identity",
    "platform",
    "mobile",
    "frontend",
    "backend",
    "data",
    "ml",
    "security",
    "growth",
    "partner",
    "finance",
    "reporting",
    "catalog",
    "pricing",
    "notifications",
    "messaging",
    "media",
    "storage",
    "network",
    "observability",
    "release",
    "customer",
    "merchant",
    "loyalty",
    "fraud",
    "risk",
    "compliance",
    "audit",
    "ledger",
    "warehouse",
    "logistics",
];
const PURPOSES: &[&str] = &[
    "deploy",
    "webhook",
    "exporter",
    "importer",
    "sync",
    "backup",
    "reader",
    "writer",
    "admin",
    "monitor",
    "scanner",
    "crawler",
    "worker",
    "scheduler",
    "gateway",
    "proxy",
    "bot",
    "cli",
    "ci",
    "integration",
    "dashboard",
    "collector",
    "publisher",
    "consumer",
    "migration",
    "replica",
    "cache",
    "indexer",
    "notifier",
    "uploader",
    "downloader",
    "reconciler",
    "validator",
    "auditor",
    "archiver",
    "terraform",
    "github",
    "actions",
    "grafana",
    "prometheus",
];

/// `n` distinct, realistic token names such as `prod-billing-webhook-4821`, in a fixed
/// pseudo-random order.
pub fn names(n: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(42);
    (0..n)
        .map(|i| {
            let env = ENVIRONMENTS[rng.random_range(0..ENVIRONMENTS.len())];
            let team = TEAMS[rng.random_range(0..TEAMS.len())];
            let purpose = PURPOSES[rng.random_range(0..PURPOSES.len())];
            match rng.random_range(0..4) {
                0 => format!("{env}-{team}-{purpose}-{i}"),
                1 => format!("{team}_{purpose}_{i}"),
                2 => format!("{team} {purpose} {env} {i}"),
                _ => format!("{env}{team}{purpose}{i}"),
            }
        })
        .collect()
}

/// The query mix: substrings, word order, typos (substituted, dropped, swapped letters) and
/// abbreviations.
pub const QUERIES: &[(&str, &str)] = &[
    ("substring", "webhook"),
    ("substring", "billing"),
    ("word order", "deploy prod"),
    ("word order", "exporter analytics"),
    ("typo: substituted", "paymemts"),
    ("typo: dropped", "reconcler"),
    ("typo: swapped", "wbehook"),
    ("abbreviation", "pbw"),
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a Tokio runtime")
    })
}

/// Enters a Tokio runtime for as long as the guard lives: the manager bounds store calls with
/// Tokio timers, which need one, even when the call completes at once. Benches drive reads
/// with [`ready`] on the current thread inside it, and writes with [`block_on`].
pub fn enter() -> tokio::runtime::EnterGuard<'static> {
    runtime().enter()
}

/// Runs a future to completion on the benches' runtime: for writes, which the redb store
/// runs on Tokio's blocking pool when it finds a runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// Runs a future that completes without waiting (in-memory and redb reads do).
pub fn ready<F: Future>(future: F) -> F::Output {
    future
        .now_or_never()
        .expect("the future completes without waiting")
}

/// Issues `names` for `owner` in batches, returning the issued tokens.
pub fn fill(manager: &TokenManager, owner: &str, names: &[String]) -> Vec<Issued> {
    let mut issued = Vec::with_capacity(names.len());
    for chunk in names.chunks(10_000) {
        let batch = chunk.iter().map(NewToken::new);
        issued.extend(block_on(manager.apply_many(owner, batch)).expect("apply"));
    }
    issued
}

/// A fixed pseudo-random visiting order over `n` items.
pub fn order(n: usize) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..n.max(1) * 4).map(|_| rng.random_range(0..n)).collect()
}

/// A criterion measurement of the time the benchmarking thread spends on a CPU
/// (`CLOCK_THREAD_CPUTIME_ID`), for benches whose work runs on that thread. On a machine
/// shared with builds, wall time also counts the time other processes hold the core (with a
/// load of 5 on 2 cores, every wall-clock figure came out 2–3× too high, and by different
/// factors for a bench and its baseline); time on the CPU does not.
#[derive(Debug, Default)]
pub struct OnCpu;

impl OnCpu {
    fn now() -> f64 {
        let mut at = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `clock_gettime` writes one `timespec`, which `at` is.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut at) };
        assert_eq!(rc, 0, "the thread CPU clock is readable");
        at.tv_sec as f64 * 1e9 + at.tv_nsec as f64
    }
}

impl criterion::measurement::Measurement for OnCpu {
    type Intermediate = f64;
    type Value = f64;

    fn start(&self) -> f64 {
        Self::now()
    }

    fn end(&self, start: f64) -> f64 {
        Self::now() - start
    }

    fn add(&self, a: &f64, b: &f64) -> f64 {
        a + b
    }

    fn zero(&self) -> f64 {
        0.0
    }

    fn to_f64(&self, value: &f64) -> f64 {
        *value
    }

    fn formatter(&self) -> &dyn criterion::measurement::ValueFormatter {
        // Nanoseconds, shown as durations, as wall time is.
        static WALL: criterion::measurement::WallTime = criterion::measurement::WallTime;
        WALL.formatter()
    }
}
