//! Fuzzy search: `Query::new`, `Query::score` and `TokenManager::list` with a query over a
//! store of a few dozen names (ASCII, CJK, emoji), plus a few names of the fuzzer's own:
//! never a panic; a query over the length limit or with control characters is
//! `InvalidQuery`; otherwise the hits are exactly the owner's tokens whose name scores, best
//! first, and walking the pages gives the same hits.

#![no_main]

mod common;

use std::collections::HashSet;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tollgate::{
    Error, ListOptions, MAX_QUERY_CHARS, MemoryStore, NewToken, Query, TokenId, TokenManager,
    TokenRecord,
};

const NAMES: &[&str] = &[
    "CI deploy",
    "prod-deploy-key",
    "Prod Deploy",
    "staging metrics",
    "billing_service",
    "billing-service-v2",
    "DeployBot",
    "deployment.pipeline",
    "release.v2.0",
    "backup 2024",
    "a",
    "x1",
    "API",
    "read only",
    "readOnlyReplica",
    "Ünïcødé Bot",
    "ｆｕｌｌｗｉｄｔｈ",
    "Ελληνικά κλειδί",
    "Русский токен",
    "생산 키",
    "生产环境密钥",
    "测试 令牌",
    "日本語のトークン",
    "ﾊﾝｶｸ",
    "🚀 launch",
    "🔥hotfix🔥",
    "emoji 🎉 party",
    "👩💻 dev",
    "🇯🇵 tokyo ❤️",
    "🦀",
    "tg_sk_live",
    "a-b-c-d-e-f-g",
    "MixedCase_With-Separators.and spaces",
];

fn manager() -> &'static TokenManager {
    static MANAGER: OnceLock<TokenManager> = OnceLock::new();
    MANAGER.get_or_init(|| {
        common::block_on(async {
            let manager = TokenManager::new(MemoryStore::new());
            for name in NAMES {
                manager.apply("acme", NewToken::new(*name)).await.unwrap();
            }
            for name in &NAMES[..5] {
                manager.apply("other", NewToken::new(*name)).await.unwrap();
            }
            manager
        })
    })
}

/// The known gap in `NameIndex` (crates/tollgate/src/index.rs, the lower-tier candidate
/// filter): a name that one query word matches in the substring tier or above while another
/// word matches only as an abbreviation or a typo is never a candidate, so the search misses
/// it although `Query::score` scores it (query `lDK`, name `prod-deploy-key`). While it is
/// open, such misses are tolerated so that the target can look for other bugs; set this to
/// `false` once it is fixed.
const TOLERATE_INDEX_GAP: bool = false;

/// Whether `name` falls in the known gap: it scores below the substring tier, yet one of the
/// query's words alone scores it in the substring tier or above.
fn in_known_gap(query: &Query, name: &str) -> bool {
    query.score(name).is_some_and(|s| s < 3000)
        && query
            .terms()
            .words
            .iter()
            .filter_map(|w| Query::new(w))
            .any(|w| w.score(name).is_some_and(|s| s >= 3000))
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    query: &'a str,
    /// Page size for the walk through the pages, 1 to 8.
    page: u8,
    /// Names of a fresh owner's tokens, searched with the same query.
    names: Vec<&'a str>,
}

async fn all_tokens(manager: &TokenManager, owner: &str) -> Vec<TokenRecord> {
    manager
        .list(
            owner,
            ListOptions {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items
}

async fn check(manager: &TokenManager, owner: &str, query: &str, page_size: usize) {
    let prepared = Query::new(query);
    let owned = all_tokens(manager, owner).await;
    let result = manager
        .list(
            owner,
            ListOptions {
                query: Some(query.to_owned()),
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await;
    let invalid = query.chars().count() > MAX_QUERY_CHARS || query.chars().any(char::is_control);
    let hits = match result {
        Err(Error::InvalidQuery(_)) if invalid => return,
        Err(err) => panic!("query {query:?}: {err:?}"),
        Ok(_) if invalid => panic!("query {query:?} accepted"),
        Ok(page) => page.items,
    };

    let ids: HashSet<TokenId> = owned.iter().map(|r| r.id).collect();
    assert!(hits.iter().all(|r| ids.contains(&r.id) && r.owner == owner));
    let hit_ids: HashSet<TokenId> = hits.iter().map(|r| r.id).collect();
    assert_eq!(hit_ids.len(), hits.len(), "a token twice in the results");
    match &prepared {
        None => assert_eq!(hit_ids, ids, "a query without letters or digits filters"),
        Some(q) => {
            let scores: Vec<u32> = hits
                .iter()
                .map(|r| {
                    q.score(&r.name).unwrap_or_else(|| {
                        panic!("{query:?} found {:?}, which does not score", r.name)
                    })
                })
                .collect();
            assert!(
                scores.windows(2).all(|w| w[0] >= w[1]),
                "{query:?}: not best first: {scores:?}"
            );
            let scoring: HashSet<TokenId> = owned
                .iter()
                .filter(|r| q.score(&r.name).is_some())
                .map(|r| r.id)
                .collect();
            let missed: Vec<(&str, Option<u32>)> = owned
                .iter()
                .filter(|r| scoring.contains(&r.id) != hit_ids.contains(&r.id))
                .filter(|r| !(TOLERATE_INDEX_GAP && in_known_gap(q, &r.name)))
                .map(|r| (r.name.as_str(), q.score(&r.name)))
                .collect();
            assert!(
                missed.is_empty(),
                "{query:?}: search and Query::score disagree on {missed:?}"
            );
        }
    }

    // The same hits, page by page.
    let mut walked = Vec::new();
    let mut cursor = None;
    loop {
        let page = manager
            .list(
                owner,
                ListOptions {
                    query: Some(query.to_owned()),
                    limit: Some(page_size),
                    cursor: cursor.take(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(page.items.len() <= page_size);
        walked.extend(page.items.iter().map(|r| r.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(walked.len() <= hits.len(), "{query:?}: the pages never end");
    }
    let expected: Vec<TokenId> = hits.iter().map(|r| r.id).collect();
    assert_eq!(walked, expected, "{query:?}: pages differ from one page");
}

fuzz_target!(|input: Input<'_>| {
    let query = input.query;
    let page = usize::from(input.page % 8) + 1;
    if let Some(q) = Query::new(query) {
        for name in NAMES.iter().chain(&input.names) {
            let _ = q.score(name);
        }
    }
    let manager = manager();
    common::block_on(async {
        check(manager, "acme", query, page).await;
        if !input.names.is_empty() {
            let fresh = TokenManager::new(MemoryStore::new());
            for name in input.names.iter().take(8) {
                let _ = fresh.apply("acme", NewToken::new(*name)).await;
            }
            check(&fresh, "acme", query, page).await;
        }
    });
});
