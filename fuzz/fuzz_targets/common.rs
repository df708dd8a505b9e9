//! What the targets share: one current-thread runtime, created once per process.

#![allow(dead_code)]

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

/// The process's runtime. The manager's deadlines need its time driver.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
    })
}

/// Runs `future` to completion on [`runtime`].
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// An independent reading of token format version 1: `<head><43 base62><6 base62 CRC32 of
/// everything before it>`. The targets compare `TokenFormat::check` against it.
pub fn oracle_accepts(head: &str, token: &str) -> bool {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let Some(body) = token.strip_prefix(head) else {
        return false;
    };
    if body.len() != 49 || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (payload, checksum) = token.split_at(token.len() - 6);
    let mut crc = u64::from(crc32fast::hash(payload.as_bytes()));
    let mut expected = [0u8; 6];
    for slot in expected.iter_mut().rev() {
        *slot = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    checksum.as_bytes() == expected
}
