//! Memory per cached token and per indexed name at 1M, counted by a global allocator.
//!
//! `cargo bench -p tollgate-benches --bench memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use tollgate::{MemoryStore, NameIndex, TokenManager, TokenRecord};
use tollgate_benches::{fill, names, ready};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same pointer and layout, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    let _runtime = tollgate_benches::enter();
    const N: usize = 1_000_000;
    let all = names(N);
    let name_bytes: usize = all.iter().map(String::len).sum();

    // Per indexed name: an index alone, filled from records.
    let manager = TokenManager::new(MemoryStore::new());
    let issued = fill(&manager, "bench", &all);
    let records: Vec<TokenRecord> = issued.iter().map(|i| i.record.clone()).collect();
    let before = live();
    let index = NameIndex::new();
    for record in &records {
        index.upsert(record);
    }
    let index_bytes = live() - before;
    println!(
        "indexed names: {N}; heap {:.1} MiB; {:.0} bytes per name (names average {:.1} bytes of UTF-8)",
        index_bytes as f64 / 1048576.0,
        index_bytes as f64 / N as f64,
        name_bytes as f64 / N as f64
    );
    drop(index);
    drop(records);

    // Per cached token: verify every token once (each miss caches the record), flush the
    // last-used times, and count what stayed.
    let tokens: Vec<String> = issued
        .iter()
        .map(|i| i.token.expose_secret().to_owned())
        .collect();
    drop(issued);
    let before = live();
    for token in &tokens {
        assert!(ready(manager.verify(token)).unwrap().is_valid());
    }
    tollgate_benches::block_on(manager.flush_last_used()).unwrap();
    let cache_bytes = live() - before;
    println!(
        "cached tokens: {N}; heap {:.1} MiB; {:.0} bytes per cached token (record copy, entry, id index, drained last-used maps)",
        cache_bytes as f64 / 1048576.0,
        cache_bytes as f64 / N as f64
    );
}
