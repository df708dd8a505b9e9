//! Property tests of the inputs every entry point takes: the token format check, list
//! cursors, names, owners, descriptions and scopes, and search queries. They mirror the fuzz
//! targets in `fuzz/` (which run on nightly for minutes); these run in the normal test
//! suite, with modest case counts. Inputs the fuzzer found are explicit tests at the end.

use std::collections::HashSet;
use std::future::Future;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tollgate::{
    Error, ErrorKind, ListOptions, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MAX_QUERY_CHARS,
    MAX_SCOPE_CHARS, MAX_SCOPES, MemoryStore, NewToken, Query, TokenFormat, TokenId, TokenManager,
    TokenName, TokenRecord, TokenUpdate, Verification,
};

const BASE62: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Runs `test` on `cases` values of `strategy`, shrinking a failure to a minimal input. No
/// regression file is written: a failure found here becomes an explicit test below.
fn check<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value)) {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new(config)
        .run(&strategy, |value| {
            test(value);
            Ok(())
        })
        .unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// Text as people and attackers type it: anything, printable text, separators and words,
/// CJK and emoji, white space around it, control and invisible characters, and lengths
/// around the limits.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 _.-]{0,12}",
        "\\PC{0,30}",
        "[ \t\n]{0,2}[a-z生产环境🚀 ]{1,8}[ \t\n\u{3000}]{0,2}",
        "[a-z]{0,5}[\u{0}-\u{1f}\u{7f}\u{200b}\u{202e}\u{feff}\u{e000}\u{2028}][a-z]{0,5}",
        "[a-z字]{95,105}",
        " {0,3}",
    ]
}

// ---------------------------------------------------------------------------------------
// Token format

/// An independent reading of format version 1: `<head><43 base62><6 base62 digits of the
/// CRC32 of everything before them>`.
fn oracle_accepts(head: &str, token: &str) -> bool {
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
        *slot = BASE62.as_bytes()[(crc % 62) as usize];
        crc /= 62;
    }
    checksum.as_bytes() == expected
}

#[test]
fn format_check_agrees_with_the_format_on_any_input() {
    let format = TokenFormat::default();
    let candidates = prop_oneof![
        any::<String>(),
        "tg_[0-9A-Za-z]{49}",
        "tg_[0-9A-Za-z_ é-]{45,52}",
        "[a-z]{1,3}_[0-9A-Za-z]{49}",
    ];
    check(512, candidates, |candidate| {
        let accepted = format.check(&candidate).is_ok();
        assert_eq!(accepted, oracle_accepts("tg_", &candidate), "{candidate:?}");
    });
}

#[test]
fn format_accepts_every_generated_token_and_no_one_character_change_of_it() {
    let replacements: Vec<char> = BASE62.chars().chain(['_', '-', ' ', 'é', '\0']).collect();
    check(16, "[a-z][a-z0-9]{0,15}", |prefix| {
        let format = TokenFormat::new(&prefix).unwrap();
        let token = format.generate().unwrap();
        let token = token.expose_secret();
        assert_eq!(format.check(token), Ok(()));
        assert!(oracle_accepts(&format!("{prefix}_"), token));
        assert_eq!(token.len(), prefix.len() + 1 + 49);
        for (index, original) in token.char_indices() {
            for &replacement in &replacements {
                if replacement == original {
                    continue;
                }
                let mut mutated = token.to_owned();
                mutated.replace_range(index..index + 1, replacement.encode_utf8(&mut [0; 4]));
                assert!(
                    format.check(&mutated).is_err(),
                    "{mutated:?}: {original:?} at {index} became {replacement:?}"
                );
            }
        }
        // Truncated and extended tokens too.
        assert!(format.check(&token[..token.len() - 1]).is_err());
        assert!(format.check(&format!("{token}0")).is_err());
    });
}

#[test]
fn format_prefixes_follow_the_documented_rule() {
    let prefixes = prop_oneof![any::<String>(), "[a-zA-Z0-9_ -]{0,18}"];
    check(512, prefixes, |prefix| {
        let rule = (1..=16).contains(&prefix.len())
            && prefix.as_bytes()[0].is_ascii_lowercase()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        match TokenFormat::new(&prefix) {
            Ok(format) => {
                assert!(rule, "{prefix:?} accepted");
                assert_eq!(format.prefix(), prefix);
            }
            Err(err) => {
                assert!(!rule, "{prefix:?} refused");
                assert_eq!(err.kind(), ErrorKind::InvalidInput);
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// Cursors

const CURSOR_NAMES: &[&str] = &["CI deploy", "prod-deploy-key", "生产环境密钥", "🚀 launch"];

async fn cursor_manager() -> TokenManager {
    let manager = TokenManager::new(MemoryStore::new());
    for name in CURSOR_NAMES {
        manager
            .apply("default", NewToken::new(*name))
            .await
            .unwrap();
    }
    manager
}

#[test]
fn cursors_from_arbitrary_strings_are_invalid_input() {
    let runtime = runtime();
    let manager = runtime.block_on(cursor_manager());
    let cursors = prop_oneof![
        any::<String>(),
        "[ls.0-9a-f-]{0,40}",
        "l\\.-?[0-9]{0,20}\\.[0-9a-fA-F ]{30,34}",
        "s\\.[0-9]{0,11}\\.-?[0-9]{0,20}\\.[0-9a-f]{32}\\.[0-9a-f]{0,9}",
    ];
    let queries = proptest::option::of(prop_oneof!["[a-z ]{0,8}", any::<String>()]);
    let limits = proptest::option::of(0usize..1200);
    check(512, (cursors, queries, limits), |(cursor, query, limit)| {
        let options = ListOptions {
            query,
            cursor: Some(cursor.clone()),
            limit,
            ..Default::default()
        };
        match runtime.block_on(manager.list("default", options)) {
            Ok(page) => {
                // Only text in the manager's own shape can decode.
                assert!(
                    cursor.starts_with("l.") || cursor.starts_with("s."),
                    "{cursor:?} accepted"
                );
                assert!(page.items.len() <= limit.unwrap_or(50));
                assert!(page.items.iter().all(|r| r.owner == "default"));
            }
            Err(err) => assert_eq!(err.kind(), ErrorKind::InvalidInput, "{cursor:?}"),
        }
    });
}

#[test]
fn cursors_handed_out_walk_the_whole_list_once() {
    block_on(async {
        let manager = cursor_manager().await;
        for query in [None, Some("deploy"), Some("生产")] {
            let mut seen = Vec::new();
            let mut cursor = None;
            loop {
                let page = manager
                    .list(
                        "default",
                        ListOptions {
                            query: query.map(str::to_owned),
                            cursor: cursor.take(),
                            limit: Some(1),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                seen.extend(page.items.iter().map(|r| r.id));
                let Some(next) = page.next_cursor else { break };
                // A cursor belongs to its query.
                let other = manager
                    .list(
                        "default",
                        ListOptions {
                            query: Some("billing".to_owned()),
                            cursor: Some(next.clone()),
                            ..Default::default()
                        },
                    )
                    .await;
                assert!(matches!(other, Err(Error::InvalidCursor)), "{other:?}");
                cursor = Some(next);
            }
            let distinct: HashSet<TokenId> = seen.iter().copied().collect();
            assert_eq!(distinct.len(), seen.len(), "{query:?}: a token twice");
            if query.is_none() {
                assert_eq!(seen.len(), CURSOR_NAMES.len());
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// Names, owners, descriptions and scopes

fn description_ok(description: &str) -> bool {
    let trimmed = description.trim();
    trimmed.chars().count() <= MAX_DESCRIPTION_CHARS
        && !trimmed
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
}

fn scope_ok(scope: &str) -> bool {
    !scope.is_empty()
        && scope.chars().count() <= MAX_SCOPE_CHARS
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

fn scopes_ok(scopes: &[String]) -> bool {
    let distinct: HashSet<&String> = scopes.iter().collect();
    scopes.iter().all(|s| scope_ok(s)) && distinct.len() <= MAX_SCOPES
}

fn scopes() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        proptest::collection::vec("[a-z:/]{1,8}", 0..4),
        proptest::collection::vec(
            prop_oneof![any::<String>(), "[!-~]{0,130}", "[a-z]{1,3}"],
            0..4
        ),
        proptest::collection::vec("[a-z]{1,2}", 60..70),
    ]
}

/// Everything the store holds for `owners`, in a comparable form.
async fn snapshot(manager: &TokenManager, owners: &[&str]) -> Vec<String> {
    let mut all = Vec::new();
    for owner in owners {
        let options = ListOptions {
            limit: Some(1000),
            ..Default::default()
        };
        let Ok(page) = manager.list(owner, options).await else {
            continue;
        };
        all.extend(page.items.iter().map(|r| {
            format!(
                "{owner}|{}|{}|{:?}|{:?}|{}|{}",
                r.id, r.name, r.description, r.scopes, r.enabled, r.version
            )
        }));
    }
    all
}

#[test]
fn names_are_trimmed_non_empty_and_bounded() {
    check(1024, text(), |name| match TokenName::new(&name) {
        Ok(valid) => {
            assert_eq!(valid.as_str(), name.trim());
            assert!(!valid.as_str().is_empty());
            assert!(valid.as_str().chars().count() <= MAX_NAME_CHARS);
            assert!(!valid.as_str().chars().any(char::is_control));
        }
        Err(err) => assert_eq!(Error::from(err).kind(), ErrorKind::InvalidInput),
    });
}

#[test]
fn apply_accepts_exactly_valid_input_and_a_refusal_changes_nothing() {
    let inputs = (
        prop_oneof![Just("acme".to_owned()), text()],
        prop_oneof![
            Just("existing".to_owned()),
            Just("EXISTING ".to_owned()),
            text()
        ],
        prop_oneof![Just(String::new()), text()],
        scopes(),
    );
    check(256, inputs, |(owner, name, description, scopes)| {
        block_on(async {
            let manager = TokenManager::new(MemoryStore::new());
            let existing = manager
                .apply("acme", NewToken::new("existing"))
                .await
                .unwrap();
            let owner_ok = TokenName::new(&owner).is_ok();
            let name_ok = TokenName::new(&name).is_ok();
            let expected =
                owner_ok && name_ok && description_ok(&description) && scopes_ok(&scopes);

            // Listing validates the owner as apply does.
            match manager.list(&owner, ListOptions::default()).await {
                Ok(_) => assert!(owner_ok, "list accepted the owner {owner:?}"),
                Err(err) => {
                    assert!(!owner_ok, "list refused the owner {owner:?}: {err:?}");
                    assert_eq!(err.kind(), ErrorKind::InvalidInput);
                }
            }

            let owners = ["acme", owner.as_str()];
            let before = snapshot(&manager, &owners).await;
            let request = NewToken::new(name.clone())
                .description(description.clone())
                .scopes(scopes.clone());
            match manager.apply(&owner, request).await {
                Ok(issued) => {
                    assert!(
                        expected,
                        "accepted {owner:?} {name:?} {description:?} {scopes:?}"
                    );
                    let record = &issued.record;
                    assert_eq!(record.owner, owner.trim());
                    assert!(!record.owner.is_empty());
                    assert!(record.owner.chars().count() <= MAX_NAME_CHARS);
                    assert_eq!(record.name, name.trim());
                    assert_eq!(record.description, description.trim());
                    let mut given = scopes.clone();
                    given.sort_unstable();
                    given.dedup();
                    assert_eq!(record.scopes, given);
                    let verified = manager.verify(issued.token.expose_secret()).await.unwrap();
                    assert!(matches!(verified, Verification::Valid(_)));
                    if Query::new(&record.name).is_some() {
                        let found = manager
                            .list(
                                &owner,
                                ListOptions {
                                    query: Some(record.name.clone()),
                                    ..Default::default()
                                },
                            )
                            .await
                            .unwrap();
                        assert!(found.items.iter().any(|r| r.id == record.id));
                    }
                }
                Err(Error::NameTaken { .. }) => {
                    assert!(expected);
                    assert_eq!(owner.trim(), "acme");
                    assert_eq!(before, snapshot(&manager, &owners).await);
                }
                Err(err) => {
                    assert!(!expected, "refused valid input: {err:?}");
                    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
                    assert_eq!(before, snapshot(&manager, &owners).await, "{err:?}");
                }
            }

            // A rename, description and scopes through modify follow the same rules.
            let before = snapshot(&manager, &owners).await;
            let update = TokenUpdate::default()
                .name(name.clone())
                .description(description.clone())
                .scopes(scopes.clone());
            let valid_update = name_ok && description_ok(&description) && scopes_ok(&scopes);
            match manager.modify("acme", existing.record.id, update).await {
                Ok(record) => {
                    assert!(valid_update);
                    assert_eq!(record.name, name.trim());
                }
                Err(Error::NameTaken { .. }) => {
                    assert_eq!(before, snapshot(&manager, &owners).await);
                }
                Err(err) => {
                    assert!(!valid_update, "modify refused valid input: {err:?}");
                    assert_eq!(err.kind(), ErrorKind::InvalidInput);
                    assert_eq!(before, snapshot(&manager, &owners).await, "{err:?}");
                }
            }
        });
    });
}

// ---------------------------------------------------------------------------------------
// Search queries

const SEARCH_NAMES: &[&str] = &[
    "CI deploy",
    "prod-deploy-key",
    "Prod Deploy",
    "staging metrics",
    "billing_service",
    "DeployBot",
    "deployment.pipeline",
    "release.v2.0",
    "readOnlyReplica",
    "Ünïcødé Bot",
    "ｆｕｌｌｗｉｄｔｈ",
    "Русский токен",
    "생산 키",
    "生产环境密钥",
    "测试 令牌",
    "日本語のトークン",
    "🚀 launch",
    "🔥hotfix🔥",
    "emoji 🎉 party",
    "a",
    "x1",
];

/// The known gap in `NameIndex` (crates/tollgate/src/index.rs, the lower-tier candidate
/// filter): a name that one query word matches in the substring tier or above, while another
/// word matches only as an abbreviation or a typo, is never a candidate, so the search misses
/// it although `Query::score` scores it (`search_finds_the_names_one_word_contains_and_another_abbreviates`).
/// While it is open, the property below tolerates such misses; set this to `false` once it
/// is fixed.
const TOLERATE_INDEX_GAP: bool = false;

/// Whether `name` falls in that gap: it scores below the substring tier, yet one of the
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

/// Searches `owner`'s tokens for `query` and checks the result against scoring every name.
async fn check_search(manager: &TokenManager, owner: &str, query: &str, tolerate_gap: bool) {
    let owned: Vec<TokenRecord> = manager
        .list(
            owner,
            ListOptions {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items;
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
        Err(err) => panic!("{query:?}: {err:?}"),
        Ok(_) if invalid => panic!("{query:?} accepted"),
        Ok(page) => page.items,
    };
    let ids: HashSet<TokenId> = owned.iter().map(|r| r.id).collect();
    let hit_ids: HashSet<TokenId> = hits.iter().map(|r| r.id).collect();
    assert_eq!(hit_ids.len(), hits.len(), "{query:?}: a token twice");
    assert!(hit_ids.is_subset(&ids), "{query:?}: not the owner's tokens");
    let Some(prepared) = Query::new(query) else {
        assert_eq!(
            hit_ids, ids,
            "{query:?} has no letters or digits, yet filters"
        );
        return;
    };
    let scores: Vec<u32> = hits
        .iter()
        .map(|r| {
            prepared
                .score(&r.name)
                .unwrap_or_else(|| panic!("{query:?} found {:?}, which it does not score", r.name))
        })
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "{query:?}: {scores:?}"
    );
    let missed: Vec<&str> = owned
        .iter()
        .filter(|r| prepared.score(&r.name).is_some() && !hit_ids.contains(&r.id))
        .filter(|r| !(tolerate_gap && in_known_gap(&prepared, &r.name)))
        .map(|r| r.name.as_str())
        .collect();
    assert!(
        missed.is_empty(),
        "{query:?} scores {missed:?} but does not find them"
    );
}

fn queries() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z]{1,6}( [a-zA-Z]{1,6}){0,2}",
        "(de|pro|ply|dpl|bil|srv|生产|密钥|🚀|ü|x|1)( ?[a-z]{0,3}){0,2}",
        "[a-z ]{190,210}",
        "[a-z]{0,3}[\u{0}\n\t\u{7f}\u{85}][a-z]{0,3}",
        "[ _.-]{0,4}",
    ]
}

#[test]
fn search_results_are_the_owners_tokens_that_score_best_first() {
    let runtime = runtime();
    let manager = TokenManager::new(MemoryStore::new());
    runtime.block_on(async {
        for name in SEARCH_NAMES {
            manager.apply("acme", NewToken::new(*name)).await.unwrap();
        }
        for name in &SEARCH_NAMES[..4] {
            manager.apply("other", NewToken::new(*name)).await.unwrap();
        }
    });
    check(384, queries(), |query| {
        if let Some(q) = Query::new(&query) {
            for name in SEARCH_NAMES {
                let _ = q.score(name);
            }
        }
        runtime.block_on(check_search(&manager, "acme", &query, TOLERATE_INDEX_GAP));
    });
}

#[test]
fn search_over_arbitrary_names_matches_scoring() {
    let inputs = (queries(), proptest::collection::vec(text(), 1..6));
    check(128, inputs, |(query, names)| {
        block_on(async {
            let manager = TokenManager::new(MemoryStore::new());
            for name in &names {
                let _ = manager.apply("acme", NewToken::new(name.clone())).await;
            }
            check_search(&manager, "acme", &query, TOLERATE_INDEX_GAP).await;
        });
    });
}

// ---------------------------------------------------------------------------------------
// Inputs found by the fuzzer (fuzz/regressions/)

/// Found by `fuzz/fuzz_targets/fuzzy_query.rs` (fuzz/regressions/fuzzy_query/index-gap-lDK):
/// `Query::new("lDK")` scores `prod-deploy-key` (2375: the word `l` is inside the name, `dk`
/// abbreviates `deploy-key`), but the search finds nothing. The name index's lower-tier
/// filter (crates/tollgate/src/index.rs, `OwnerIndex::candidates`) admits a name only if
/// every query word could be an abbreviation or a typo of it, and `l` is neither, while the
/// upper-tier pass drops the name because its score is below the substring tier.
#[test]
fn search_finds_the_names_one_word_contains_and_another_abbreviates() {
    block_on(async {
        let manager = TokenManager::new(MemoryStore::new());
        manager
            .apply("acme", NewToken::new("prod-deploy-key"))
            .await
            .unwrap();
        assert!(
            Query::new("lDK")
                .unwrap()
                .score("prod-deploy-key")
                .is_some()
        );
        check_search(&manager, "acme", "lDK", false).await;
        check_search(&manager, "acme", "ey dk", false).await;
    });
}
