//! Crash consistency: a process applying and deleting tokens is killed with SIGKILL at random
//! moments, over and over, on one file. After each kill the file must open without repair,
//! every acknowledged apply must verify (unless its delete was acknowledged too), and every
//! acknowledged delete must hold.
//!
//! The worker is this test binary run again with [`WORKER_PATH`] set: it runs only the
//! `crash_worker` test, which uses the public API and prints an acknowledgement line after
//! each call returned `Ok`, and an intent line before it. A line the worker wrote is in the
//! pipe even when the worker dies right after, so the parent knows exactly what was
//! acknowledged; the one call in flight at the kill may or may not have taken effect, and the
//! parent finds out which from the file and checks that it took effect entirely or not at all.
//!
//! This covers process crashes, not power loss: the kernel keeps what the worker wrote, so the
//! file lives in memory (`/dev/shm`) when it can. A commit that was never written to the file
//! at all (redb's `Durability::None`) is still lost, and caught.
#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tollgate::{AuditAction, AuditFilter, Error, ListOptions, NewToken, TokenId, TokenManager};
use tollgate_redb::RedbStore;

/// Set in the worker's environment: the file to work on.
const WORKER_PATH: &str = "TOLLGATE_CRASH_WORKER_PATH";
/// The worker's seed, which picks its operations.
const WORKER_SEED: &str = "TOLLGATE_CRASH_WORKER_SEED";
/// The round, which makes the names the worker applies unique across rounds.
const WORKER_ROUND: &str = "TOLLGATE_CRASH_WORKER_ROUND";
/// Ids of live tokens from earlier rounds, which the worker may delete.
const WORKER_LIVE: &str = "TOLLGATE_CRASH_WORKER_LIVE";

const OWNER: &str = "crash";
/// Marks the worker's own lines, whatever the test harness prints around them.
const MARK: &str = "@@ ";
/// How many times the worker is killed.
const ROUNDS: u64 = 120;
/// The signal `Child::kill` sends on Unix.
const SIGKILL: i32 = 9;
/// Past this many operations the worker stops by itself (it is normally killed long before).
const WORKER_MAX_OPS: u64 = 500;

/// A small deterministic generator (SplitMix64): the same seed kills at the same points of
/// the worker's output, so a failure can be rerun.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The worker: does nothing in a normal test run.
#[test]
fn crash_worker() {
    let Ok(path) = std::env::var(WORKER_PATH) else {
        return;
    };
    let seed: u64 = std::env::var(WORKER_SEED).unwrap().parse().unwrap();
    let round: u64 = std::env::var(WORKER_ROUND).unwrap().parse().unwrap();
    let mut live: Vec<TokenId> = std::env::var(WORKER_LIVE)
        .unwrap()
        .split_whitespace()
        .map(|id| id.parse().unwrap())
        .collect();
    let mut rng = Rng(seed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let manager = TokenManager::new(RedbStore::open(&path).unwrap());
        say("O");
        for n in 0..WORKER_MAX_OPS {
            // Delete more eagerly as the file fills, so the live set stays small.
            let delete_percent = if live.len() > 40 { 70 } else { 35 };
            if !live.is_empty() && rng.below(100) < delete_percent {
                let id = live.swap_remove(rng.below(live.len() as u64) as usize);
                say(&format!("d {id}"));
                manager.delete(OWNER, id).await.unwrap();
                say(&format!("D {id}"));
            } else {
                let name = format!("r{round}-t{n}");
                say(&format!("a {name}"));
                let issued = manager.apply(OWNER, NewToken::new(&name)).await.unwrap();
                let id = issued.record.id;
                say(&format!("A {id} {name} {}", issued.token.expose_secret()));
                live.push(id);
            }
        }
    });
}

/// Writes one line for the parent, flushed. Exits when the parent is gone.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{MARK}{line}")
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// What the parent knows a token to be.
#[derive(Debug)]
struct Live {
    name: String,
    /// `None` for an apply that took effect without being acknowledged.
    secret: Option<String>,
}

#[derive(Debug, Default)]
struct Expected {
    live: BTreeMap<TokenId, Live>,
    /// Deleted tokens and their secrets.
    deleted: BTreeMap<TokenId, String>,
    /// Every deleted token, its secret known or not.
    deleted_ids: BTreeSet<TokenId>,
}

/// The call in flight when the worker died, if any.
#[derive(Debug, Default)]
struct InFlight {
    apply: Option<String>,
    delete: Option<TokenId>,
}

impl Expected {
    /// Takes in one worker line.
    fn record(&mut self, line: &str, in_flight: &mut InFlight) {
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["O"] => {}
            ["a", name] => in_flight.apply = Some(name.to_owned()),
            ["A", id, name, secret] => {
                assert_eq!(in_flight.apply.take().as_deref(), Some(name));
                let live = Live {
                    name: name.to_owned(),
                    secret: Some(secret.to_owned()),
                };
                assert!(self.live.insert(id.parse().unwrap(), live).is_none());
            }
            ["d", id] => in_flight.delete = Some(id.parse().unwrap()),
            ["D", id] => {
                let id: TokenId = id.parse().unwrap();
                assert_eq!(in_flight.delete.take(), Some(id));
                self.delete(id);
            }
            _ => panic!("unexpected worker line {line:?}"),
        }
    }

    fn delete(&mut self, id: TokenId) {
        let live = self
            .live
            .remove(&id)
            .expect("the worker deletes live tokens");
        self.deleted_ids.insert(id);
        if let Some(secret) = live.secret {
            self.deleted.insert(id, secret);
        }
    }
}

#[test]
fn killed_writers_lose_nothing_acknowledged() {
    let started = Instant::now();
    let dir = memory_backed_dir();
    let path = dir.path().join("tokens.redb");
    let mut rng = Rng(0x7011_6A7E);
    let mut expected = Expected::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut acknowledged = 0;
    let mut unacknowledged_landed = 0;
    // Checked last, so that a failure to open cleanly does not hide what the data checks
    // would say.
    let mut repaired = Vec::new();
    for round in 0..ROUNDS {
        let lines = run_worker_until_killed(&path, round, &mut rng, &expected);
        let mut in_flight = InFlight::default();
        for line in &lines {
            expected.record(line, &mut in_flight);
        }
        acknowledged += lines
            .iter()
            .filter(|l| l.starts_with('A') || l.starts_with('D'))
            .count();
        if needed_repair(&path, round) {
            repaired.push(round);
        }
        if runtime.block_on(check(&path, round, &mut expected, in_flight)) {
            unacknowledged_landed += 1;
        }
    }
    assert!(
        acknowledged >= ROUNDS as usize,
        "the worker got too little done to mean anything: {acknowledged} acknowledgements"
    );
    eprintln!(
        "{ROUNDS} kills, {acknowledged} acknowledged calls, {unacknowledged_landed} calls in \
         flight took effect, {} live and {} deleted tokens checked in the end, {:?}",
        expected.live.len(),
        expected.deleted.len(),
        started.elapsed(),
    );
    assert!(
        repaired.is_empty(),
        "the file needed a repair after {} of {ROUNDS} kills (rounds {repaired:?}): without \
         quick-repair, redb rebuilds its allocator state by walking the whole file after every \
         crash",
        repaired.len(),
    );
}

/// A directory in memory where there is one: a killed process loses nothing the kernel has,
/// so `fsync` plays no part in what this test checks, and on a busy disk it would be most of
/// the run time.
fn memory_backed_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

/// Kills the worker when the round's random point comes, then returns every line it wrote.
fn run_worker_until_killed(
    path: &Path,
    round: u64,
    rng: &mut Rng,
    expected: &Expected,
) -> Vec<String> {
    let live = expected
        .live
        .keys()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_worker", "--exact", "--nocapture", "--test-threads=1"])
        .env(WORKER_PATH, path)
        .env(WORKER_SEED, rng.next().to_string())
        .env(WORKER_ROUND, round.to_string())
        .env(WORKER_LIVE, live)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut worker = Worker(child);
    let stdout = worker.0.stdout.take().unwrap();
    let mut stderr = worker.0.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let seen = Arc::new(AtomicUsize::new(0));
    let (sender, receiver) = mpsc::channel();
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                if let Some((_, ours)) = line.split_once(MARK) {
                    lines.push(ours.to_owned());
                    seen.fetch_add(1, Ordering::SeqCst);
                    let _ = sender.send(());
                }
            }
            lines
        })
    };

    // Half the rounds kill as soon as the worker has written a number of lines, which lands
    // the kill early in the call announced or acknowledged last; the others kill after a delay
    // from the start, landing anywhere, opening included.
    if rng.below(2) == 0 {
        let lines = 1 + rng.below(24) as usize;
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen.load(Ordering::SeqCst) < lines {
            let left = deadline.saturating_duration_since(Instant::now());
            if receiver.recv_timeout(left).is_err() {
                break;
            }
        }
    } else {
        std::thread::sleep(Duration::from_micros(rng.below(40_000)));
    }
    let _ = worker.0.kill();
    let status = worker.0.wait().unwrap();
    let lines = reader.join().unwrap();
    let stderr = stderr.join().unwrap();
    if status.signal() != Some(SIGKILL) {
        assert!(
            status.success(),
            "round {round}: the worker failed on its own ({status}):\n{stderr}"
        );
    }
    lines
}

/// Kills and reaps the worker if the test panics.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Opens the file with redb directly, before the store does, and tells whether it needed a
/// repair: redb calls the repair callback only when the file was not left consistent, that is
/// when the last commit did not record the allocator state (redb's quick-repair).
fn needed_repair(path: &Path, round: u64) -> bool {
    let repairs = Arc::new(AtomicUsize::new(0));
    let counter = repairs.clone();
    let db = redb::Database::builder()
        .set_repair_callback(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .open(path)
        .unwrap_or_else(|err| panic!("round {round}: the file does not open: {err}"));
    drop(db);
    repairs.load(Ordering::SeqCst) > 0
}

/// Checks the file against what was acknowledged, settles the call in flight, and returns
/// whether that call took effect.
async fn check(path: &Path, round: u64, expected: &mut Expected, in_flight: InFlight) -> bool {
    let manager = TokenManager::new(RedbStore::open(path).unwrap());
    let stored = list_all(&manager).await;

    // The call in flight took effect entirely or not at all.
    let mut landed = false;
    if let Some(name) = in_flight.apply
        && let Some((&id, _)) = stored.iter().find(|(_, stored)| **stored == name)
    {
        let live = Live { name, secret: None };
        expected.live.insert(id, live);
        landed = true;
    }
    if let Some(id) = in_flight.delete {
        match manager.get(OWNER, id).await {
            Ok(_) => assert!(stored.contains_key(&id), "round {round}: {id} half deleted"),
            Err(Error::NotFound(_)) => {
                assert!(
                    !stored.contains_key(&id),
                    "round {round}: {id} half deleted"
                );
                expected.delete(id);
                landed = true;
            }
            Err(err) => panic!("round {round}: get {id}: {err}"),
        }
    }

    for (id, live) in &expected.live {
        let record = manager
            .get(OWNER, *id)
            .await
            .unwrap_or_else(|err| panic!("round {round}: acknowledged apply of {id}: {err}"));
        assert_eq!(record.name, live.name, "round {round}");
        if let Some(secret) = &live.secret {
            let verification = manager.verify(secret).await.unwrap();
            assert!(
                verification.is_valid(),
                "round {round}: acknowledged apply of {id} does not verify: {verification:?}"
            );
        }
    }
    for (id, secret) in &expected.deleted {
        assert!(
            matches!(manager.get(OWNER, *id).await, Err(Error::NotFound(_))),
            "round {round}: acknowledged delete of {id} is back"
        );
        let verification = manager.verify(secret).await.unwrap();
        assert!(
            !verification.is_valid(),
            "round {round}: acknowledged delete of {id} still verifies"
        );
    }
    let listed: BTreeSet<&TokenId> = stored.keys().collect();
    let live: BTreeSet<&TokenId> = expected.live.keys().collect();
    assert_eq!(listed, live, "round {round}: the list holds other tokens");
    check_audit(&manager, round, expected).await;
    landed
}

/// The audit log holds exactly one apply entry per token ever applied and one delete entry
/// per token deleted, and nothing else: a change never survives without its entry, nor an
/// entry without its change.
async fn check_audit(manager: &TokenManager, round: u64, expected: &Expected) {
    let mut applies: BTreeMap<TokenId, usize> = BTreeMap::new();
    let mut deletes: BTreeMap<TokenId, usize> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = manager
            .audit(&AuditFilter::default(), cursor.as_deref(), Some(1000))
            .await
            .unwrap();
        for entry in page.entries {
            let id = entry.token_id.expect("every change names its token");
            match entry.action {
                AuditAction::Apply => *applies.entry(id).or_default() += 1,
                AuditAction::Delete => *deletes.entry(id).or_default() += 1,
                other => panic!("round {round}: unexpected {other} entry"),
            }
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let ever: BTreeSet<TokenId> = expected
        .live
        .keys()
        .chain(&expected.deleted_ids)
        .copied()
        .collect();
    let applied: BTreeSet<TokenId> = applies.keys().copied().collect();
    assert_eq!(
        applied, ever,
        "round {round}: apply entries and applied tokens differ"
    );
    assert!(
        applies.values().all(|&n| n == 1),
        "round {round}: an apply was logged twice"
    );
    let deleted: BTreeSet<TokenId> = deletes.keys().copied().collect();
    assert_eq!(
        deleted, expected.deleted_ids,
        "round {round}: delete entries and deleted tokens differ"
    );
    assert!(
        deletes.values().all(|&n| n == 1),
        "round {round}: a delete was logged twice"
    );
}

/// Every token of the owner, by id, with its name.
async fn list_all(manager: &TokenManager) -> BTreeMap<TokenId, String> {
    let mut all = BTreeMap::new();
    let mut cursor = None;
    loop {
        let page = manager
            .list(
                OWNER,
                ListOptions {
                    limit: Some(1000),
                    cursor,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        for record in page.items {
            assert!(all.insert(record.id, record.name).is_none());
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}
