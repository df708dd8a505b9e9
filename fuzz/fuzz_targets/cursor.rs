//! The list cursor decoder (private), driven through `TokenManager::list`: whatever the
//! cursor, no panic; a refused one is an invalid-input error; an accepted one gives a page
//! of the owner's tokens no longer than the limit.

#![no_main]

mod common;

use std::fmt::Write;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tollgate::{ErrorKind, ListOptions, MemoryStore, NewToken, Query, TokenManager};

const NAMES: &[&str] = &[
    "CI deploy",
    "prod-deploy-key",
    "staging metrics",
    "billing_service",
    "生产环境密钥",
    "🚀 launch",
];

fn manager() -> &'static TokenManager {
    static MANAGER: OnceLock<TokenManager> = OnceLock::new();
    MANAGER.get_or_init(|| {
        common::block_on(async {
            let manager = TokenManager::new(MemoryStore::new());
            for name in NAMES {
                manager
                    .apply("default", NewToken::new(*name))
                    .await
                    .unwrap();
            }
            manager
                .apply("other", NewToken::new("CI deploy"))
                .await
                .unwrap();
            manager
        })
    })
}

/// A cursor: raw text, or pieces in the shape the manager writes (`l.<µs>.<id>`,
/// `s.<score>.<µs>.<id>.<crc of the query>`), so that the fuzzer reaches the decoder's
/// later checks and the stores' handling of any position.
#[derive(Arbitrary, Debug)]
enum CursorInput<'a> {
    Raw(&'a str),
    List {
        micros: i64,
        id: [u8; 16],
    },
    Search {
        score: u32,
        micros: i64,
        id: [u8; 16],
        /// Use the query's own tag rather than `tag`.
        right_tag: bool,
        tag: u32,
    },
    Pieces(Vec<&'a str>),
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    query: Option<&'a str>,
    cursor: CursorInput<'a>,
    limit: Option<u16>,
}

fn hex(bytes: &[u8; 16]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fuzz_target!(|input: Input<'_>| {
    let query = input.query.map(str::to_owned);
    let cursor = match &input.cursor {
        CursorInput::Raw(text) => (*text).to_owned(),
        CursorInput::List { micros, id } => format!("l.{micros}.{}", hex(id)),
        CursorInput::Search {
            score,
            micros,
            id,
            right_tag,
            tag,
        } => {
            let tag = match (right_tag, query.as_deref().and_then(Query::new)) {
                (true, Some(q)) => crc32fast::hash(q.as_str().as_bytes()),
                _ => *tag,
            };
            format!("s.{score}.{micros}.{}.{tag:08x}", hex(id))
        }
        CursorInput::Pieces(pieces) => pieces.join("."),
    };
    let limit = input.limit.map(usize::from);
    let options = ListOptions {
        query,
        cursor: Some(cursor.clone()),
        limit,
        ..Default::default()
    };
    match common::block_on(manager().list("default", options)) {
        Ok(page) => {
            assert!(page.items.len() <= limit.unwrap_or(tollgate::DEFAULT_PAGE_SIZE));
            assert!(page.items.len() <= NAMES.len());
            assert!(page.items.iter().all(|r| r.owner == "default"));
        }
        Err(err) => assert_eq!(
            err.kind(),
            ErrorKind::InvalidInput,
            "cursor {cursor:?}: {err:?}"
        ),
    }
});
