//! Last-used times, coalesced in memory between flushes.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use jiff::Timestamp;

use crate::cache::IdBuild;
use crate::record::TokenId;

const SHARDS: usize = 16;

type Shard = Mutex<HashMap<TokenId, Timestamp, IdBuild>>;

/// The latest use of each token seen since the last flush. Sharded so that concurrent
/// verifications rarely wait for each other; one entry per token however often it is used.
#[derive(Debug)]
pub(crate) struct UsageTracker {
    shards: Box<[Shard]>,
}

impl Default for UsageTracker {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl UsageTracker {
    fn shard(&self, id: &TokenId) -> &Shard {
        &self.shards[usize::from(id.as_bytes()[15]) % SHARDS]
    }

    /// Records a use at `at`; times only move forward.
    pub(crate) fn note(&self, id: TokenId, at: Timestamp) {
        let mut map = self
            .shard(&id)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let slot = map.entry(id).or_insert(at);
        *slot = (*slot).max(at);
    }

    /// Forgets a deleted token.
    pub(crate) fn forget(&self, id: TokenId) {
        self.shard(&id)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Takes everything recorded so far.
    pub(crate) fn drain(&self) -> Vec<(TokenId, Timestamp)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            out.extend(shard.lock().unwrap_or_else(PoisonError::into_inner).drain());
        }
        out
    }

    /// Puts back what a failed flush took.
    pub(crate) fn restore(&self, uses: Vec<(TokenId, Timestamp)>) {
        for (id, at) in uses {
            self.note(id, at);
        }
    }
}
