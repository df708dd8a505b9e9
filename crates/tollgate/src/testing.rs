//! Test support: a manual clock and the store conformance suite.
//!
//! Every [`TokenStore`] runs the same suite. In a backend's `tests/conformance.rs`:
//!
//! ```ignore
//! tollgate::store_conformance_tests!(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = MyStore::open(dir.path().join("tokens.db")).unwrap();
//!     (store, dir) // the second value lives as long as the test: a guard for cleanup
//! });
//! ```

use std::sync::{Arc, Mutex, PoisonError};

use jiff::{SignedDuration, Timestamp};

use crate::{Clock, TokenManager, TokenStore};

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Mutex::new(start))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.checked_add(by).expect("clock stays in range");
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new("2026-01-01T00:00:00Z".parse().expect("valid timestamp"))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Token names of the relevance tests: the matcher's unit tests and the conformance suite's
/// agreement check use the same set.
pub const RELEVANCE_NAMES: &[&str] = &[
    "prod-deploy",
    "Prod Deploy Key",
    "staging-deploy",
    "github-actions-ci",
    "GitHubActions",
    "billing-service",
    "billing_service_readonly",
    "metrics-exporter",
    "customer-portal",
    "backup-nightly",
    "生产环境密钥",
    "测试环境 API",
    "データ同期",
    "terraform-cloud",
    "payment-gateway-webhook",
];

/// Queries of the relevance tests: substrings, word order, abbreviations, typos, CJK and
/// nonsense.
pub const RELEVANCE_QUERIES: &[&str] = &[
    "prod deploy",
    "deploy prod",
    "deploy",
    "github actions",
    "githubactions",
    "billing",
    "xport",
    "gac",
    "pgw",
    "pd",
    "custmer",
    "cuztomer portal",
    "bakcup",
    "metrcs",
    "terrafrom",
    "biling servce",
    "proddeplyo",
    "生产",
    "环境",
    "测试 api",
    "生产坏境",
    "同期",
    "zzqx",
    "qwerty",
    "kubernetes",
    "量子",
];

/// A manager over `store` with a [`ManualClock`], as the conformance suite uses.
pub fn manager_with_clock(store: Arc<dyn TokenStore>) -> (TokenManager, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let manager = TokenManager::from_shared(store).with_clock(clock.clone());
    (manager, clock)
}

/// Expands to one `#[tokio::test]` per conformance check. The argument is an expression
/// evaluating to a future of `(store, guard)`: a fresh, empty store, and a value kept alive
/// until the test ends (a temporary directory, a database schema handle, or `()`).
///
/// With `optional:` before it, the future yields `Option<(store, guard)>` and a test whose
/// fixture yields `None` (a database server that is not there) returns at once; print why
/// in the fixture.
///
/// The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
#[macro_export]
macro_rules! store_conformance_tests {
    (optional: $fixture:expr) => {
        $crate::store_conformance_tests!(@list (optional) $fixture);
    };
    ($fixture:expr) => {
        $crate::store_conformance_tests!(@list (required) $fixture);
    };
    (@list $mode:tt $fixture:expr) => {
        $crate::store_conformance_tests!(@tests $mode $fixture;
            lifecycle,
            owners_are_isolated,
            name_conflicts,
            version_conflicts,
            pagination,
            pagination_under_concurrent_changes,
            filters,
            verify_after_delete,
            verify_after_disable,
            verify_after_regenerate,
            grace_period,
            expiry,
            search,
            search_pagination,
            search_agrees_with_the_matcher,
            last_used,
            failed_operations_change_nothing,
            inputs_are_validated_on_every_operation,
            lock_out_guard,
            hints,
            settings,
            audit_log,
            hash_index_follows_updates,
            recoverable_secrets,
            apply_many_is_all_or_nothing,
            revocation_under_load_delete,
            revocation_under_load_disable,
            revocation_under_load_regenerate
        );
    };
    (@tests (required) $fixture:expr; $($check:ident),+) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (store, _guard) = $fixture.await;
                $crate::testing::conformance::$check(::std::sync::Arc::new(store)).await;
            }
        )+
    };
    (@tests (optional) $fixture:expr; $($check:ident),+) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some((store, _guard)) = $fixture.await else {
                    return;
                };
                $crate::testing::conformance::$check(::std::sync::Arc::new(store)).await;
            }
        )+
    };
}

/// The checks [`store_conformance_tests!`](crate::store_conformance_tests) runs, one
/// function each, for stores that prefer to call them by hand.
pub mod conformance {
    use std::collections::HashSet;
    use std::sync::Arc;

    use jiff::SignedDuration;

    use super::manager_with_clock;
    use crate::{
        EncryptionKey, Error, ListFilter, ListOptions, NewToken, Page, Regenerate, TokenId,
        TokenManager, TokenRecord, TokenStore, TokenUpdate, Verification,
    };

    const OWNER: &str = "acme";

    /// An audit entry for writing `record` straight to a store.
    fn entry_for(record: &TokenRecord) -> crate::AuditEntry {
        crate::AuditEntry {
            id: TokenId::generate().unwrap(),
            at: record.updated_at,
            actor: crate::Actor::application(),
            action: crate::AuditAction::Apply,
            token_id: Some(record.id),
            token_name: Some(record.name.clone()),
            owner: Some(record.owner.clone()),
            outcome: crate::Outcome::Success,
            changes: Vec::new(),
            grace_seconds: None,
            reason: None,
            client: crate::Client::default(),
        }
    }

    async fn issue(manager: &TokenManager, name: &str) -> crate::Issued {
        manager
            .apply(OWNER, NewToken::new(name))
            .await
            .unwrap_or_else(|e| panic!("apply {name:?}: {e}"))
    }

    /// Every page of a listing, following cursors from the first page to the last; yields
    /// between pages so that concurrent writers get a turn.
    async fn walk_pages(
        manager: &TokenManager,
        owner: &str,
        mut options: ListOptions,
    ) -> Vec<Page> {
        let mut pages = Vec::new();
        loop {
            let page = manager.list(owner, options.clone()).await.unwrap();
            let next = page.next_cursor.clone();
            pages.push(page);
            tokio::task::yield_now().await;
            match next {
                Some(next) => options.cursor = Some(next),
                None => return pages,
            }
        }
    }

    /// Every item of a listing, in order.
    async fn walk(manager: &TokenManager, owner: &str, options: ListOptions) -> Vec<TokenRecord> {
        walk_pages(manager, owner, options)
            .await
            .into_iter()
            .flat_map(|page| page.items)
            .collect()
    }

    async fn all_ids(manager: &TokenManager, owner: &str) -> Vec<TokenId> {
        let options = ListOptions {
            limit: Some(1000),
            ..Default::default()
        };
        walk(manager, owner, options)
            .await
            .iter()
            .map(|r| r.id)
            .collect()
    }

    fn minutes(m: i64) -> SignedDuration {
        SignedDuration::from_mins(m)
    }

    /// Apply, get, list, verify, modify, download and delete one token.
    pub async fn lifecycle(store: Arc<dyn TokenStore>) {
        let (manager, clock) = manager_with_clock(store);
        let issued = manager
            .apply(
                OWNER,
                NewToken::new("  Deploy Bot ")
                    .description("pushes releases")
                    .scopes(["write", "read", "write"])
                    .expires_in(SignedDuration::from_hours(24)),
            )
            .await
            .unwrap();
        let id = issued.record.id;
        assert_eq!(issued.record.name, "Deploy Bot");
        assert_eq!(issued.record.scopes, ["read", "write"]);
        assert_eq!(issued.record.version, 1);
        assert!(issued.record.enabled);
        assert_eq!(
            issued.record.expires_at,
            Some(manager.now() + SignedDuration::from_hours(24))
        );

        let stored = manager.get(OWNER, id).await.unwrap();
        assert_eq!(
            stored, issued.record,
            "a record reads back exactly as written"
        );

        let verified = manager.verify(issued.token.expose_secret()).await.unwrap();
        assert_eq!(verified.record(), Some(&issued.record));

        clock.advance(minutes(1));
        let modified = manager
            .modify(
                OWNER,
                id,
                TokenUpdate::default()
                    .name("Release Bot")
                    .description("")
                    .scopes(["deploy"]),
            )
            .await
            .unwrap();
        assert_eq!(modified.name, "Release Bot");
        assert_eq!(modified.description, "");
        assert_eq!(modified.scopes, ["deploy"]);
        assert_eq!(modified.version, 2);
        assert_eq!(modified.created_at, issued.record.created_at);
        assert!(modified.updated_at > issued.record.updated_at);
        assert_eq!(manager.get(OWNER, id).await.unwrap(), modified);
        let verified = manager.verify(issued.token.expose_secret()).await.unwrap();
        assert_eq!(
            verified.record().map(|r| r.name.as_str()),
            Some("Release Bot")
        );

        let file = manager.download(OWNER, id).await.unwrap();
        assert!(!file.secret_included());
        assert_eq!(file.token, modified.info());
        let json = file.to_json();
        assert!(!json.contains(issued.token.expose_secret()));
        let with_secret = issued.token_file(manager.now()).to_json();
        assert!(with_secret.contains(issued.token.expose_secret()));

        manager.delete(OWNER, id).await.unwrap();
        assert_eq!(
            manager.verify(issued.token.expose_secret()).await.unwrap(),
            Verification::Unknown
        );
        assert!(matches!(
            manager.get(OWNER, id).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            manager.delete(OWNER, id).await,
            Err(Error::NotFound(_))
        ));
        assert!(all_ids(&manager, OWNER).await.is_empty());
    }

    /// One owner can neither see nor touch another's tokens; names are unique per owner only.
    pub async fn owners_are_isolated(store: Arc<dyn TokenStore>) {
        let (manager, _clock) = manager_with_clock(store);
        let mine = issue(&manager, "shared-name").await;
        let theirs = manager
            .apply("globex", NewToken::new("shared-name"))
            .await
            .unwrap();
        assert_eq!(all_ids(&manager, OWNER).await, [mine.record.id]);
        assert_eq!(all_ids(&manager, "globex").await, [theirs.record.id]);
        let id = theirs.record.id;
        assert!(matches!(
            manager.get(OWNER, id).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            manager
                .modify(OWNER, id, TokenUpdate::default().enabled(false))
                .await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            manager.regenerate(OWNER, id, Regenerate::default()).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            manager.delete(OWNER, id).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            manager.download(OWNER, id).await,
            Err(Error::NotFound(_))
        ));
        assert!(
            manager
                .verify(theirs.token.expose_secret())
                .await
                .unwrap()
                .is_valid()
        );
    }

    /// Names are unique per owner, case- and width-insensitively, on apply and on rename.
    pub async fn name_conflicts(store: Arc<dyn TokenStore>) {
        let (manager, _clock) = manager_with_clock(store);
        let first = issue(&manager, "Deploy").await;
        for taken in ["deploy", " DEPLOY ", "ｄｅｐｌｏｙ"] {
            assert!(
                matches!(
                    manager.apply(OWNER, NewToken::new(taken)).await,
                    Err(Error::NameTaken { .. })
                ),
                "{taken:?}"
            );
        }
        let second = issue(&manager, "other").await;
        let err = manager
            .modify(
                OWNER,
                second.record.id,
                TokenUpdate::default().name("DePloy"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NameTaken { .. }), "{err:?}");
        assert_eq!(
            manager.get(OWNER, second.record.id).await.unwrap(),
            second.record
        );
        // Renaming to another case of its own name is fine.
        let renamed = manager
            .modify(
                OWNER,
                first.record.id,
                TokenUpdate::default().name("DEPLOY"),
            )
            .await
            .unwrap();
        assert_eq!(renamed.name, "DEPLOY");
        // A deleted token's name is free again; so is a renamed token's old name.
        manager
            .modify(
                OWNER,
                second.record.id,
                TokenUpdate::default().name("other-2"),
            )
            .await
            .unwrap();
        issue(&manager, "other").await;
        manager.delete(OWNER, first.record.id).await.unwrap();
        issue(&manager, "deploy").await;
    }

    /// Updates apply only at the expected version.
    pub async fn version_conflicts(store: Arc<dyn TokenStore>) {
        let (manager, _clock) = manager_with_clock(store.clone());
        let issued = issue(&manager, "versioned").await;
        let id = issued.record.id;
        let v2 = manager
            .modify(
                OWNER,
                id,
                TokenUpdate::default().description("a").expected_version(1),
            )
            .await
            .unwrap();
        assert_eq!(v2.version, 2);
        let err = manager
            .modify(
                OWNER,
                id,
                TokenUpdate::default().description("b").expected_version(1),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::VersionConflict {
                    expected: 1,
                    actual: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("version 2") && message.contains("version 1"),
            "{message}"
        );
        let err = manager
            .regenerate(OWNER, id, Regenerate::default().expected_version(1))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::VersionConflict { .. }), "{err:?}");
        assert_eq!(manager.get(OWNER, id).await.unwrap(), v2);
        // A deletion at a stale version deletes nothing.
        let err = manager
            .delete_with(
                OWNER,
                id,
                crate::DeleteOptions::default().expected_version(1),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::VersionConflict { actual: 2, .. }),
            "{err:?}"
        );
        assert_eq!(err.kind(), crate::ErrorKind::PreconditionFailed);
        let err = store
            .delete_version(id, 1, &entry_for(&v2))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::VersionConflict { .. }), "{err:?}");
        assert_eq!(manager.get(OWNER, id).await.unwrap(), v2);

        // The store itself refuses a stale write.
        let mut stale = issued.record.clone();
        stale.description = "stale".into();
        stale.version = 2;
        let err = store.update(&stale, 1, None).await.unwrap_err();
        assert!(matches!(err, Error::VersionConflict { .. }), "{err:?}");
        let mut missing = stale.clone();
        missing.id = TokenId::generate().unwrap();
        assert!(matches!(
            store.update(&missing, 1, None).await,
            Err(Error::NotFound(_))
        ));
        assert_eq!(manager.get(OWNER, id).await.unwrap(), v2);

        // Concurrent modifications that name no version all land, one after another: a
        // caller who sent no version is never refused for a race it did not know about.
        let manager = Arc::new(manager);
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let manager = manager.clone();
                tokio::spawn(async move {
                    manager
                        .modify(OWNER, id, TokenUpdate::default().scopes([format!("s{i}")]))
                        .await
                })
            })
            .collect();
        for task in tasks {
            if let Err(err) = task.await.unwrap() {
                panic!("a blind modification failed: {err}");
            }
        }
        let last = manager.get(OWNER, id).await.unwrap();
        assert_eq!(last.version, 2 + 16);
    }

    /// Owners, queries, limits and cursors are validated for every operation, and no store
    /// fails on the longest query allowed.
    pub async fn inputs_are_validated_on_every_operation(store: Arc<dyn TokenStore>) {
        let (manager, _clock) = manager_with_clock(store);
        let issued = issue(&manager, "validated").await;
        let id = issued.record.id;
        let long_owner = "o".repeat(10_000);
        for owner in ["", "   ", "a\u{0}b", "tab\there", long_owner.as_str()] {
            let invalid = |err: Error| {
                assert!(matches!(err, Error::InvalidOwner(_)), "{owner:?}: {err:?}");
            };
            invalid(
                manager
                    .list(owner, ListOptions::default())
                    .await
                    .unwrap_err(),
            );
            invalid(manager.get(owner, id).await.unwrap_err());
            invalid(
                manager
                    .modify(owner, id, TokenUpdate::default().description("x"))
                    .await
                    .unwrap_err(),
            );
            invalid(manager.delete(owner, id).await.unwrap_err());
            invalid(manager.download(owner, id).await.unwrap_err());
        }
        let query = |q: String| ListOptions {
            query: Some(q),
            ..Default::default()
        };
        let too_long = "deploy ".repeat(40);
        for bad in [too_long, "dep\u{0}loy".to_owned(), "line\nbreak".to_owned()] {
            let err = manager.list(OWNER, query(bad.clone())).await.unwrap_err();
            assert!(matches!(err, Error::InvalidQuery(_)), "{bad:?}: {err:?}");
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        }
        // The longest queries allowed, of every shape, never fail a store.
        let longest = [
            "a".repeat(crate::MAX_QUERY_CHARS),
            "validated ".repeat(20).trim_end().to_owned() + "x",
            "部署".repeat(crate::MAX_QUERY_CHARS / 2),
            "a-".repeat(crate::MAX_QUERY_CHARS / 2),
        ];
        for q in longest {
            assert!(q.chars().count() <= crate::MAX_QUERY_CHARS, "{q}");
            manager.list(OWNER, query(q)).await.unwrap();
        }
        for limit in [0, crate::MAX_PAGE_SIZE + 1] {
            let options = ListOptions {
                limit: Some(limit),
                ..Default::default()
            };
            let err = manager.list(OWNER, options).await.unwrap_err();
            assert!(matches!(err, Error::InvalidLimit { .. }), "{err:?}");
        }
        for cursor in ["", "l.x.y", &"9".repeat(5000)] {
            let options = ListOptions {
                cursor: Some(cursor.to_owned()),
                ..Default::default()
            };
            let err = manager.list(OWNER, options).await.unwrap_err();
            assert!(matches!(err, Error::InvalidCursor), "{err:?}");
        }
        assert_eq!(manager.get(OWNER, id).await.unwrap(), issued.record);
    }

    /// Every change writes exactly one audit entry, in the same transaction; a change that
    /// fails writes none; refusals are appended; filters and pages work; nothing in the log
    /// matches a secret or a hash; pruning removes old entries only.
    pub async fn audit_log(store: Arc<dyn TokenStore>) {
        use crate::{Actor, AuditAction, AuditFilter, Client, Context};

        let (manager, clock) = manager_with_clock(store);
        let tick = || clock.advance(SignedDuration::from_secs(1));
        let admin_id = TokenId::generate().unwrap();
        let admin = Context::new(Actor::token(admin_id, "root")).client(Client {
            address: Some("192.0.2.7:51000".into()),
            user_agent: Some("curl/8.5".into()),
        });
        let acting = manager.acting(&admin);
        let mut secrets = Vec::new();
        let mut hashes = Vec::new();

        let issued = acting
            .apply(OWNER, NewToken::new("audited").scopes(["read"]))
            .await
            .unwrap();
        let id = issued.record.id;
        secrets.push(issued.token.expose_secret().to_owned());
        hashes.push(issued.record.secret_hash);
        tick();
        acting
            .modify(OWNER, id, TokenUpdate::default().description("watched"))
            .await
            .unwrap();
        tick();
        acting
            .modify(OWNER, id, TokenUpdate::default().enabled(false))
            .await
            .unwrap();
        tick();
        acting
            .modify(
                OWNER,
                id,
                TokenUpdate::default().enabled(true).name("audited 2"),
            )
            .await
            .unwrap();
        tick();
        let regenerated = acting
            .regenerate(OWNER, id, Regenerate::default().grace(minutes(5)))
            .await
            .unwrap();
        secrets.push(regenerated.token.expose_secret().to_owned());
        hashes.push(regenerated.record.secret_hash);
        tick();
        // Changes that fail, or change nothing, write nothing.
        issue(&manager, "other").await;
        tick();
        let other_entries = 1;
        assert!(
            acting
                .modify(OWNER, id, TokenUpdate::default().name("OTHER"))
                .await
                .is_err()
        );
        acting
            .modify(OWNER, id, TokenUpdate::default())
            .await
            .unwrap();
        assert!(
            acting
                .modify(
                    OWNER,
                    id,
                    TokenUpdate::default().description("x").expected_version(1)
                )
                .await
                .is_err()
        );
        assert!(
            acting
                .delete(OWNER, TokenId::generate().unwrap())
                .await
                .is_err()
        );
        assert!(
            acting
                .apply_many(OWNER, [NewToken::new("fresh"), NewToken::new("Other")])
                .await
                .is_err()
        );
        tick();
        acting.delete(OWNER, id).await.unwrap();
        tick();
        let anonymous = Context::new(Actor::anonymous()).client(Client {
            address: Some("198.51.100.1:4000".into()),
            user_agent: None,
        });
        manager
            .record_refusal(&anonymous, "invalid token", None)
            .await
            .unwrap();

        // The token's history, newest first, two entries a page.
        let mut history = Vec::new();
        let filter = AuditFilter {
            token: Some(id),
            ..Default::default()
        };
        let mut cursor = None;
        loop {
            let page = manager
                .audit(&filter, cursor.as_deref(), Some(2))
                .await
                .unwrap();
            history.extend(page.entries);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let actions: Vec<AuditAction> = history.iter().map(|e| e.action).collect();
        assert_eq!(
            actions,
            [
                AuditAction::Delete,
                AuditAction::Regenerate,
                AuditAction::Enable,
                AuditAction::Disable,
                AuditAction::Modify,
                AuditAction::Apply,
            ]
        );
        for entry in &history {
            assert_eq!(entry.actor.id, admin_id.to_string());
            assert_eq!(entry.actor.name, "root");
            assert_eq!(entry.owner.as_deref(), Some(OWNER));
            assert_eq!(entry.client, admin.client);
            assert_eq!(entry.outcome, crate::Outcome::Success);
        }
        assert_eq!(history[0].token_name.as_deref(), Some("audited 2"));
        assert_eq!(history[1].changes, ["secret"]);
        assert_eq!(history[1].grace_seconds, Some(300));
        assert_eq!(history[2].changes, ["name", "enabled"]);
        assert_eq!(history[4].changes, ["description"]);
        assert_eq!(history[5].token_name.as_deref(), Some("audited"));

        // Everything: the token's six, the other token's apply, the refusal.
        let all = manager
            .audit(&AuditFilter::default(), None, Some(100))
            .await
            .unwrap()
            .entries;
        assert_eq!(all.len(), 6 + other_entries + 1, "{all:#?}");
        let refusal = &all[0];
        assert_eq!(refusal.action, AuditAction::Refused);
        assert_eq!(refusal.outcome, crate::Outcome::Refused);
        assert_eq!(refusal.reason.as_deref(), Some("invalid token"));
        assert_eq!(refusal.client.address.as_deref(), Some("198.51.100.1:4000"));

        // Filters.
        let by = |filter: AuditFilter| {
            let manager = &manager;
            async move {
                manager
                    .audit(&filter, None, Some(100))
                    .await
                    .unwrap()
                    .entries
            }
        };
        let disables = by(AuditFilter {
            action: Some(AuditAction::Disable),
            ..Default::default()
        })
        .await;
        assert_eq!(disables.len(), 1);
        let by_admin = by(AuditFilter {
            actor: Some(admin_id.to_string()),
            ..Default::default()
        })
        .await;
        assert_eq!(by_admin.len(), 6);
        let since_regeneration = by(AuditFilter {
            since: Some(history[1].at),
            ..Default::default()
        })
        .await;
        assert_eq!(
            since_regeneration.len(),
            4,
            "regenerate, other, delete, refusal"
        );
        let before_regeneration = by(AuditFilter {
            until: Some(history[1].at),
            ..Default::default()
        })
        .await;
        assert_eq!(before_regeneration.len(), 4);

        // No secret, token string or hash anywhere in the log.
        for entry in &all {
            let line = entry.to_json_line();
            for secret in &secrets {
                assert!(!line.contains(secret.as_str()), "{line}");
                let body = secret.split('_').nth(1).unwrap();
                assert!(!line.contains(body), "{line}");
            }
            for hash in &hashes {
                let hex: String = hash.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
                assert!(!line.contains(&hex), "{line}");
            }
        }

        // Bad filters and cursors are invalid input.
        let err = manager
            .audit(&AuditFilter::default(), Some("x.1.2"), None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCursor), "{err:?}");
        let backwards = manager
            .audit(
                &AuditFilter {
                    since: Some(history[0].at),
                    until: Some(history[5].at),
                    ..Default::default()
                },
                None,
                None,
            )
            .await
            .unwrap();
        assert!(backwards.entries.is_empty(), "a backwards range is empty");
        let err = manager
            .audit(
                &AuditFilter {
                    actor: Some("a".repeat(201)),
                    ..Default::default()
                },
                None,
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidAuditFilter(_)), "{err:?}");

        // Pruning removes what is older than the retention, and only that.
        clock.advance(SignedDuration::from_hours(24));
        manager
            .acting(&admin)
            .apply(OWNER, NewToken::new("late"))
            .await
            .unwrap();
        let pruned = manager
            .prune_audit(std::time::Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(pruned, all.len() as u64);
        let left = by(AuditFilter::default()).await;
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].token_name.as_deref(), Some("late"));
    }

    /// Settings are kept, and the first value written for a key wins, even in a race.
    pub async fn settings(store: Arc<dyn TokenStore>) {
        let key = format!("conformance_{}", TokenId::generate().unwrap());
        assert_eq!(store.setting(&key).await.unwrap(), None);
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move { store.init_setting(&key, &format!("v{i}")).await })
            })
            .collect();
        let mut winners = HashSet::new();
        for racer in racers {
            winners.insert(racer.await.unwrap().unwrap());
        }
        assert_eq!(winners.len(), 1, "{winners:?}");
        let winner = winners.into_iter().next().unwrap();
        assert_eq!(store.setting(&key).await.unwrap(), Some(winner.clone()));
        assert_eq!(store.init_setting(&key, "later").await.unwrap(), winner);
    }

    /// Every token keeps the hint of its current secret, through the store, in its public
    /// view and in its token file.
    pub async fn hints(store: Arc<dyn TokenStore>) {
        let (manager, _clock) = manager_with_clock(store);
        let issued = issue(&manager, "hinted").await;
        let secret = issued.token.expose_secret();
        let hint = issued.token.hint();
        assert_eq!(hint.chars().count(), crate::HINT_CHARS);
        assert!(secret.ends_with(&hint));
        let stored = manager.get(OWNER, issued.record.id).await.unwrap();
        assert_eq!(stored.hint, hint);
        assert_eq!(stored.info().hint, hint);
        let file = manager.download(OWNER, issued.record.id).await.unwrap();
        assert!(
            file.to_json().contains(&format!("\"hint\": \"{hint}\"")),
            "{}",
            file.to_json()
        );
        let regenerated = manager
            .regenerate(OWNER, issued.record.id, Regenerate::default())
            .await
            .unwrap();
        assert_eq!(regenerated.record.hint, regenerated.token.hint());
        assert_eq!(
            manager.get(OWNER, issued.record.id).await.unwrap().hint,
            regenerated.token.hint()
        );
    }

    /// The last enabled, unexpired token holding the protected scope cannot be deleted,
    /// disabled or descoped without force.
    pub async fn lock_out_guard(store: Arc<dyn TokenStore>) {
        const ADMIN: &str = "admin";
        let (manager, _clock) = manager_with_clock(store);
        let manager = manager.with_protected_scope(ADMIN);
        let first = manager
            .apply(OWNER, NewToken::new("first admin").scopes([ADMIN, "read"]))
            .await
            .unwrap();
        let id = first.record.id;
        // Tokens that do not count: another owner's admin, a disabled admin, a non-admin.
        manager
            .apply("elsewhere", NewToken::new("foreign admin").scopes([ADMIN]))
            .await
            .unwrap();
        let disabled = manager
            .apply(OWNER, NewToken::new("disabled admin").scopes([ADMIN]))
            .await
            .unwrap();
        manager
            .modify(
                OWNER,
                disabled.record.id,
                TokenUpdate::default().enabled(false),
            )
            .await
            .unwrap();
        issue(&manager, "reader").await;

        let refused = |err: Error| {
            assert!(matches!(err, Error::LockOut { .. }), "{err:?}");
            assert_eq!(err.kind(), crate::ErrorKind::Conflict);
        };
        refused(manager.delete(OWNER, id).await.unwrap_err());
        refused(
            manager
                .modify(OWNER, id, TokenUpdate::default().enabled(false))
                .await
                .unwrap_err(),
        );
        refused(
            manager
                .modify(OWNER, id, TokenUpdate::default().scopes(["read"]))
                .await
                .unwrap_err(),
        );
        assert_eq!(manager.get(OWNER, id).await.unwrap(), first.record);
        // Changes that keep the scope usable go through.
        manager
            .modify(
                OWNER,
                id,
                TokenUpdate::default().scopes([ADMIN]).description("kept"),
            )
            .await
            .unwrap();
        manager
            .regenerate(OWNER, id, Regenerate::default())
            .await
            .unwrap();
        // With a second admin, the first may go.
        let second = manager
            .apply(OWNER, NewToken::new("second admin").scopes([ADMIN]))
            .await
            .unwrap();
        manager.delete(OWNER, id).await.unwrap();
        refused(manager.delete(OWNER, second.record.id).await.unwrap_err());
        // Forced, the last one goes too.
        manager
            .modify(
                OWNER,
                second.record.id,
                TokenUpdate::default().enabled(false).force(true),
            )
            .await
            .unwrap();
        manager
            .delete_with(
                OWNER,
                second.record.id,
                crate::DeleteOptions::default().force(true),
            )
            .await
            .unwrap();
    }

    /// Cursor pagination walks every token once, newest first.
    pub async fn pagination(store: Arc<dyn TokenStore>) {
        let (manager, clock) = manager_with_clock(store);
        let mut issued = Vec::new();
        for i in 0..23 {
            // Some tokens share a creation time; the id breaks the tie.
            if i % 3 == 0 {
                clock.advance(SignedDuration::from_secs(1));
            }
            issued.push(issue(&manager, &format!("token-{i:02}")).await.record);
        }
        let mut expected = issued.clone();
        expected.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        let options = ListOptions {
            limit: Some(5),
            ..Default::default()
        };
        let pages = walk_pages(&manager, OWNER, options).await;
        assert_eq!(pages.len(), 5);
        assert!(pages.iter().all(|page| page.items.len() <= 5));
        let seen: Vec<TokenRecord> = pages.into_iter().flat_map(|page| page.items).collect();
        assert_eq!(seen, expected);
        // An exact multiple of the page size ends without an empty extra page.
        let page = manager
            .list(
                OWNER,
                ListOptions {
                    limit: Some(23),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items.len(), 23);
        assert_eq!(page.next_cursor, None);
        for limit in [0, crate::MAX_PAGE_SIZE + 1] {
            let err = manager
                .list(
                    OWNER,
                    ListOptions {
                        limit: Some(limit),
                        ..Default::default()
                    },
                )
                .await
                .unwrap_err();
            assert!(matches!(err, Error::InvalidLimit { .. }));
        }
        let err = manager
            .list(
                OWNER,
                ListOptions {
                    cursor: Some("not-a-cursor".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCursor));
    }

    /// Tokens added and deleted while a client pages through neither repeat nor push others
    /// out of the walk.
    pub async fn pagination_under_concurrent_changes(store: Arc<dyn TokenStore>) {
        let (manager, clock) = manager_with_clock(store);
        let manager = Arc::new(manager);
        let mut stable = HashSet::new();
        let mut doomed = Vec::new();
        for i in 0..40 {
            clock.advance(SignedDuration::from_millis(1));
            let record = issue(&manager, &format!("base-{i}")).await.record;
            if i % 4 == 1 {
                doomed.push(record.id);
            } else {
                stable.insert(record.id);
            }
        }
        let writer = {
            let manager = manager.clone();
            let clock = clock.clone();
            tokio::spawn(async move {
                for (i, id) in doomed.into_iter().enumerate() {
                    manager.delete(OWNER, id).await.unwrap();
                    clock.advance(SignedDuration::from_millis(1));
                    manager
                        .apply(OWNER, NewToken::new(format!("new-{i}")))
                        .await
                        .unwrap();
                    tokio::task::yield_now().await;
                }
            })
        };
        let options = ListOptions {
            limit: Some(3),
            ..Default::default()
        };
        let seen: Vec<TokenId> = walk(&manager, OWNER, options)
            .await
            .iter()
            .map(|r| r.id)
            .collect();
        writer.await.unwrap();
        let unique: HashSet<_> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "a token appeared twice");
        assert!(
            stable.is_subset(&unique),
            "a token that existed throughout was skipped"
        );
    }

    /// Enabled and expired filters, on their own and with a query.
    pub async fn filters(store: Arc<dyn TokenStore>) {
        let (manager, clock) = manager_with_clock(store);
        let on = issue(&manager, "alpha-on").await.record;
        let off = issue(&manager, "alpha-off").await.record;
        manager
            .modify(OWNER, off.id, TokenUpdate::default().enabled(false))
            .await
            .unwrap();
        let expiring = manager
            .apply(
                OWNER,
                NewToken::new("alpha-expiring").expires_in(minutes(5)),
            )
            .await
            .unwrap()
            .record;
        clock.advance(minutes(10));
        let ids = |filter: ListFilter, query: Option<&str>| {
            let manager = &manager;
            let query = query.map(str::to_owned);
            async move {
                let page = manager
                    .list(
                        OWNER,
                        ListOptions {
                            filter,
                            query,
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                page.items.iter().map(|r| r.id).collect::<HashSet<_>>()
            }
        };
        let enabled = ListFilter {
            enabled: Some(true),
            ..Default::default()
        };
        let expired = ListFilter {
            expired: Some(true),
            ..Default::default()
        };
        let live = ListFilter {
            expired: Some(false),
            enabled: Some(true),
        };
        for query in [None, Some("alpha")] {
            assert_eq!(
                ids(enabled, query).await,
                HashSet::from([on.id, expiring.id])
            );
            assert_eq!(ids(expired, query).await, HashSet::from([expiring.id]));
            assert_eq!(ids(live, query).await, HashSet::from([on.id]));
        }
    }

    /// Once delete returns, the token fails verification.
    pub async fn verify_after_delete(store: Arc<dyn TokenStore>) {
        let (manager, _clock) = manager_with_clock(store);
        let keep = issue(&manager, "keep").await;
        let gone = issue(&manager, "gone").await;
        assert!(
            manager
                .verify(gone.token.expose_secret())
                .await
                .unwrap()
                .is_valid()
        );
        // A deletion at the current version goes through.
        manager
            .delete_with(
                OWNER,
                gone.record.id,
                crate::DeleteOptions::default().expected_version(gone.record.version),
            )
            .await
            .unwrap();
        assert_eq!(
            manager.verify(gone.token.expose_secret()).await.unwrap(),
            Verification::Unknown
        );
        assert!(
            manager
                .verify(keep.token.expose_secret())
                .await
                .unwrap()
                .is_valid()
        );
    }

    /// A disabled token fails; enabling it again restores it.
    pub async fn verify_after_disable(store: Arc<dyn TokenStore>) {
        let (manager, _clock) = manager_with_clock(store);
        let issued = issue(&manager, "toggle").await;
        let id = issued.record.id;
        let secret = issued.token.expose_secret();
        manager
            .modify(OWNER, id, TokenUpdate::default().enabled(false))
            .await
            .unwrap();
        assert_eq!(
            manager.verify(secret).await.unwrap(),
            Verification::Disabled(id)
        );
        manager
            .modify(OWNER, id, TokenUpdate::default().enabled(true))
            .await
            .unwrap();
        assert!(manager.verify(secret).await.unwrap().is_valid());
    }

    /// Regeneration without grace: the old secret fails at once, the new one works.
    pub async fn verify_after_regenerate(store: Arc<dyn TokenStore>) {
        let (manager, _clock) = manager_with_clock(store);
        let issued = issue(&manager, "rotate").await;
        let fresh = manager
            .regenerate(OWNER, issued.record.id, Regenerate::default())
            .await
            .unwrap();
        assert_ne!(fresh.token, issued.token);
        assert_eq!(fresh.record.version, 2);
        assert_eq!(fresh.record.previous_secret, None);
        assert_eq!(
            manager.verify(issued.token.expose_secret()).await.unwrap(),
            Verification::Unknown
        );
        let verified = manager.verify(fresh.token.expose_secret()).await.unwrap();
        assert_eq!(verified.record().map(|r| r.id), Some(issued.record.id));
        assert!(fresh.token_file(manager.now()).secret_included());
    }

    /// With a grace period the old secret works until it ends, never past expiry, and a
    /// second regeneration ends the first grace period.
    pub async fn grace_period(store: Arc<dyn TokenStore>) {
        let (manager, clock) = manager_with_clock(store);
        let issued = issue(&manager, "graceful").await;
        let id = issued.record.id;
        let old = issued.token.expose_secret();
        let fresh = manager
            .regenerate(OWNER, id, Regenerate::default().grace(minutes(10)))
            .await
            .unwrap();
        assert!(manager.verify(old).await.unwrap().is_valid());
        assert!(
            manager
                .verify(fresh.token.expose_secret())
                .await
                .unwrap()
                .is_valid()
        );
        clock.advance(minutes(9));
        assert!(manager.verify(old).await.unwrap().is_valid());
        clock.advance(minutes(1));
        assert_eq!(manager.verify(old).await.unwrap(), Verification::Unknown);
        assert!(
            manager
                .verify(fresh.token.expose_secret())
                .await
                .unwrap()
                .is_valid()
        );

        // A grace period never outlives the token.
        let short = manager
            .apply(OWNER, NewToken::new("short-lived").expires_in(minutes(2)))
            .await
            .unwrap();
        let renewed = manager
            .regenerate(
                OWNER,
                short.record.id,
                Regenerate::default().grace(minutes(60)),
            )
            .await
            .unwrap();
        assert_eq!(
            renewed.record.previous_secret.map(|p| p.valid_until),
            short.record.expires_at
        );

        // Regenerating again drops the first grace period at once.
        let third = manager
            .regenerate(OWNER, id, Regenerate::default().grace(minutes(10)))
            .await
            .unwrap();
        let fourth = manager
            .regenerate(OWNER, id, Regenerate::default())
            .await
            .unwrap();
        assert_eq!(
            manager.verify(third.token.expose_secret()).await.unwrap(),
            Verification::Unknown
        );
        assert!(
            manager
                .verify(fourth.token.expose_secret())
                .await
                .unwrap()
                .is_valid()
        );

        for bad in [minutes(-1), crate::MAX_GRACE_PERIOD + minutes(1)] {
            let err = manager
                .regenerate(OWNER, id, Regenerate::default().grace(bad))
                .await
                .unwrap_err();
            assert!(matches!(err, Error::InvalidGracePeriod(_)), "{err:?}");
        }
    }

    /// Expired tokens fail; expiries must lie in the future; expiry can be lifted.
    pub async fn expiry(store: Arc<dyn TokenStore>) {
        let (manager, clock) = manager_with_clock(store);
        let issued = manager
            .apply(OWNER, NewToken::new("expiring").expires_in(minutes(60)))
            .await
            .unwrap();
        let id = issued.record.id;
        let secret = issued.token.expose_secret();
        clock.advance(minutes(59));
        assert!(manager.verify(secret).await.unwrap().is_valid());
        clock.advance(minutes(1));
        assert_eq!(
            manager.verify(secret).await.unwrap(),
            Verification::Expired(id)
        );

        let past = manager.now() - minutes(1);
        let err = manager
            .apply(OWNER, NewToken::new("already-expired").expires_at(past))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ExpiryInPast(_)));
        let err = manager
            .modify(OWNER, id, TokenUpdate::default().expires_at(Some(past)))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ExpiryInPast(_)));

        let lifted = manager
            .modify(OWNER, id, TokenUpdate::default().expires_at(None))
            .await
            .unwrap();
        assert_eq!(lifted.expires_at, None);
        assert!(manager.verify(secret).await.unwrap().is_valid());
        let later = manager.now() + minutes(5);
        manager
            .modify(OWNER, id, TokenUpdate::default().expires_at(Some(later)))
            .await
            .unwrap();
        clock.advance(minutes(5));
        assert_eq!(
            manager.verify(secret).await.unwrap(),
            Verification::Expired(id)
        );
    }

    async fn search_names(manager: &TokenManager, query: &str) -> Vec<String> {
        manager
            .list(
                OWNER,
                ListOptions {
                    query: Some(query.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|r| r.name)
            .collect()
    }

    /// Fuzzy search ranks by relevance and finds nothing for nonsense.
    pub async fn search(store: Arc<dyn TokenStore>) {
        let (manager, clock) = manager_with_clock(store);
        for name in [
            "prod-deploy",
            "test-deploy",
            "github-actions-ci",
            "customer-portal",
            "生产环境密钥",
        ] {
            clock.advance(SignedDuration::from_secs(1));
            issue(&manager, name).await;
        }
        assert_eq!(
            search_names(&manager, "prod deploy").await[0],
            "prod-deploy"
        );
        assert_eq!(
            search_names(&manager, "deploy prod").await[0],
            "prod-deploy"
        );
        assert_eq!(search_names(&manager, "custmer").await, ["customer-portal"]);
        assert_eq!(search_names(&manager, "gac").await, ["github-actions-ci"]);
        assert_eq!(search_names(&manager, "生产").await, ["生产环境密钥"]);
        // Equal scores come newest first.
        assert_eq!(
            search_names(&manager, "deploy").await,
            ["test-deploy", "prod-deploy"]
        );
        assert!(search_names(&manager, "zzqx").await.is_empty());
        // A blank query lists everything, newest first.
        assert_eq!(search_names(&manager, "  ").await.len(), 5);
    }

    /// Search results page by cursor, bound to their query.
    pub async fn search_pagination(store: Arc<dyn TokenStore>) {
        let (manager, clock) = manager_with_clock(store);
        for i in 0..12 {
            clock.advance(SignedDuration::from_secs(1));
            issue(&manager, &format!("service-{i:02}")).await;
            issue(&manager, &format!("unrelated-{i:02}")).await;
        }
        let options = ListOptions {
            query: Some("service".into()),
            limit: Some(5),
            ..Default::default()
        };
        let pages = walk_pages(&manager, OWNER, options).await;
        assert_eq!(pages.len(), 3);
        let err = manager
            .list(
                OWNER,
                ListOptions {
                    query: Some("unrelated".into()),
                    cursor: pages[0].next_cursor.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidCursor),
            "a cursor is bound to its query"
        );
        let names: Vec<String> = pages
            .into_iter()
            .flat_map(|page| page.items)
            .map(|r| r.name)
            .collect();
        let expected: Vec<String> = (0..12).rev().map(|i| format!("service-{i:02}")).collect();
        assert_eq!(names, expected);
    }

    /// A store that searches its own way ranks exactly as the core matcher does.
    pub async fn search_agrees_with_the_matcher(store: Arc<dyn TokenStore>) {
        let (manager, clock) = manager_with_clock(store);
        let mut issued = Vec::new();
        for name in super::RELEVANCE_NAMES {
            clock.advance(SignedDuration::from_secs(1));
            issued.push(issue(&manager, name).await.record);
        }
        for text in super::RELEVANCE_QUERIES {
            let query = crate::Query::new(text).unwrap();
            let mut expected: Vec<_> = issued
                .iter()
                .filter_map(|r| {
                    query
                        .score(&r.name)
                        .map(|s| (s, r.created_at, r.id, &r.name))
                })
                .collect();
            expected.sort_by(|a, b| b.cmp(a));
            let expected: Vec<String> = expected.into_iter().map(|e| e.3.clone()).collect();
            // Small pages, so that paging through lower tiers is exercised too.
            let options = ListOptions {
                query: Some((*text).to_owned()),
                limit: Some(2),
                ..Default::default()
            };
            let got: Vec<String> = walk(&manager, OWNER, options)
                .await
                .into_iter()
                .map(|r| r.name)
                .collect();
            assert_eq!(got, expected, "query {text:?}");
        }
    }

    /// Verification records use in memory; a flush writes it without bumping the version.
    pub async fn last_used(store: Arc<dyn TokenStore>) {
        let (manager, clock) = manager_with_clock(store);
        let issued = issue(&manager, "used").await;
        let id = issued.record.id;
        clock.advance(minutes(1));
        manager.verify(issued.token.expose_secret()).await.unwrap();
        let used_at = manager.now();
        clock.advance(minutes(1));
        manager.verify(issued.token.expose_secret()).await.unwrap();
        let later = manager.now();
        assert_eq!(manager.get(OWNER, id).await.unwrap().last_used_at, None);
        manager.flush_last_used().await.unwrap();
        let record = manager.get(OWNER, id).await.unwrap();
        assert_eq!(record.last_used_at, Some(later));
        assert_eq!(record.version, 1);
        assert_eq!(record.updated_at, issued.record.updated_at);
        // Never moves backwards.
        manager
            .store()
            .record_last_used(&[(id, used_at)])
            .await
            .unwrap();
        assert_eq!(
            manager.get(OWNER, id).await.unwrap().last_used_at,
            Some(later)
        );
        // Unknown ids are skipped.
        manager
            .store()
            .record_last_used(&[(TokenId::generate().unwrap(), later)])
            .await
            .unwrap();
    }

    /// Every rejected operation leaves the store exactly as it was.
    pub async fn failed_operations_change_nothing(store: Arc<dyn TokenStore>) {
        let (manager, _clock) = manager_with_clock(store);
        let issued = issue(&manager, "stable").await;
        let id = issued.record.id;
        let bad_new = [
            NewToken::new(""),
            NewToken::new("a\u{0}b"),
            NewToken::new("x".repeat(101)),
            NewToken::new("ok").scopes(["bad scope"]),
            NewToken::new("ok").description("\u{7}"),
            NewToken::new("ok").expires_in(minutes(-5)),
            NewToken::new("stable"),
        ];
        for new in bad_new {
            assert!(manager.apply(OWNER, new).await.is_err());
        }
        assert!(manager.apply("", NewToken::new("ok")).await.is_err());
        let bad_updates = [
            TokenUpdate::default().name(" "),
            TokenUpdate::default().name("zero\u{200B}width"),
            TokenUpdate::default().enabled(false).scopes(["\"quoted\""]),
            TokenUpdate::default().description("x".repeat(1001)),
        ];
        for update in bad_updates {
            let err = manager.modify(OWNER, id, update).await.unwrap_err();
            assert!(err.is_invalid_input(), "{err:?}");
        }
        assert_eq!(all_ids(&manager, OWNER).await, [id]);
        assert_eq!(manager.get(OWNER, id).await.unwrap(), issued.record);
        assert!(
            manager
                .verify(issued.token.expose_secret())
                .await
                .unwrap()
                .is_valid()
        );
        // An empty update writes nothing.
        let same = manager
            .modify(OWNER, id, TokenUpdate::default())
            .await
            .unwrap();
        assert_eq!(same, issued.record);
        // A rename that conflicts takes the regeneration down with it.
        issue(&manager, "other").await;
        let err = manager
            .modify_and_regenerate(
                OWNER,
                id,
                TokenUpdate::default().name("OTHER"),
                Regenerate::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NameTaken { .. }), "{err:?}");
        assert_eq!(manager.get(OWNER, id).await.unwrap(), issued.record);
        assert!(
            manager
                .verify(issued.token.expose_secret())
                .await
                .unwrap()
                .is_valid()
        );
    }

    /// The store's hash lookup follows regeneration and finds nothing for unknown hashes.
    pub async fn hash_index_follows_updates(store: Arc<dyn TokenStore>) {
        let (manager, _clock) = manager_with_clock(store.clone());
        let issued = issue(&manager, "indexed").await;
        let old_hash = issued.record.secret_hash;
        let fresh = manager
            .regenerate(OWNER, issued.record.id, Regenerate::default())
            .await
            .unwrap();
        assert_eq!(store.find_by_hash(&old_hash).await.unwrap(), None);
        assert_eq!(
            store.find_by_hash(&fresh.record.secret_hash).await.unwrap(),
            Some(fresh.record.clone())
        );
        assert_eq!(
            store
                .find_by_name(OWNER, "indexed")
                .await
                .unwrap()
                .map(|r| r.id),
            Some(issued.record.id)
        );
        assert_eq!(store.find_by_name("globex", "indexed").await.unwrap(), None);
        // Inserting the same record twice is refused.
        let err = store
            .insert(&fresh.record, &entry_for(&fresh.record))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::NameTaken { .. } | Error::Duplicate(_)),
            "{err:?}"
        );
        let mut twin = fresh.record.clone();
        twin.id = TokenId::generate().unwrap();
        twin.name = "twin".into();
        assert!(matches!(
            store.insert(&twin, &entry_for(&twin)).await,
            Err(Error::Duplicate(_))
        ));
    }

    /// A batch of applications lands whole or not at all.
    pub async fn apply_many_is_all_or_nothing(store: Arc<dyn TokenStore>) {
        let (manager, _clock) = manager_with_clock(store);
        issue(&manager, "taken").await;
        for batch in [
            vec![
                NewToken::new("one"),
                NewToken::new("TAKEN"),
                NewToken::new("three"),
            ],
            vec![NewToken::new("twin"), NewToken::new("Twin")],
            vec![
                NewToken::new("fine"),
                NewToken::new("bad scope").scopes(["a b"]),
            ],
        ] {
            assert!(manager.apply_many(OWNER, batch).await.is_err());
            assert_eq!(all_ids(&manager, OWNER).await.len(), 1, "nothing was added");
        }
        let issued = manager
            .apply_many(OWNER, (0..50).map(|i| NewToken::new(format!("batch-{i}"))))
            .await
            .unwrap();
        assert_eq!(issued.len(), 50);
        assert_eq!(all_ids(&manager, OWNER).await.len(), 51);
        for token in &issued {
            assert!(
                manager
                    .verify(token.token.expose_secret())
                    .await
                    .unwrap()
                    .is_valid()
            );
        }
    }

    /// Verifies `secret` from several tasks in a loop while `revoke` runs; once `revoke`
    /// has returned, no verification that starts afterwards may succeed.
    async fn hammer<F>(manager: Arc<TokenManager>, secret: String, revoke: F)
    where
        F: std::future::Future<Output = ()>,
    {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let revoked = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let verified = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (manager, secret) = (manager.clone(), secret.clone());
                let (revoked, stop, verified) = (revoked.clone(), stop.clone(), verified.clone());
                tokio::spawn(async move {
                    let mut after_revocation = 0;
                    while !stop.load(Ordering::SeqCst) || after_revocation < 20 {
                        let started_after = revoked.load(Ordering::SeqCst);
                        let valid = manager.verify(&secret).await.unwrap().is_valid();
                        assert!(
                            !(started_after && valid),
                            "a verification that started after the revocation returned succeeded"
                        );
                        if valid {
                            verified.fetch_add(1, Ordering::SeqCst);
                        }
                        after_revocation += usize::from(started_after);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        // Let the verifiers warm the cache before revoking.
        while verified.load(Ordering::SeqCst) < 200 {
            tokio::task::yield_now().await;
        }
        revoke.await;
        revoked.store(true, Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
        for task in tasks {
            task.await.unwrap();
        }
    }

    /// Issues a token, then revokes it with `revoke(manager, id)` while it is hammered.
    async fn revoke_under_load<F, Fut>(store: Arc<dyn TokenStore>, revoke: F)
    where
        F: FnOnce(Arc<TokenManager>, TokenId) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let (manager, _clock) = manager_with_clock(store);
        let manager = Arc::new(manager);
        let issued = issue(&manager, "hammered").await;
        let secret = issued.token.expose_secret().to_owned();
        hammer(manager.clone(), secret, revoke(manager, issued.record.id)).await;
    }

    /// Deletion under concurrent verification.
    pub async fn revocation_under_load_delete(store: Arc<dyn TokenStore>) {
        revoke_under_load(store, |manager, id| async move {
            manager.delete(OWNER, id).await.unwrap();
        })
        .await;
    }

    /// Disabling under concurrent verification.
    pub async fn revocation_under_load_disable(store: Arc<dyn TokenStore>) {
        revoke_under_load(store, |manager, id| async move {
            let disable = TokenUpdate::default().enabled(false);
            manager.modify(OWNER, id, disable).await.unwrap();
        })
        .await;
    }

    /// Regeneration under concurrent verification: without a grace period the old secret
    /// fails once regenerate returns; with one, once the grace period is over.
    pub async fn revocation_under_load_regenerate(store: Arc<dyn TokenStore>) {
        let (manager, clock) = manager_with_clock(store);
        let manager = Arc::new(manager);
        let issued = issue(&manager, "rotated now").await;
        let secret = issued.token.expose_secret().to_owned();
        let revoker = manager.clone();
        hammer(manager.clone(), secret, async move {
            revoker
                .regenerate(OWNER, issued.record.id, Regenerate::default())
                .await
                .unwrap();
        })
        .await;

        let issued = issue(&manager, "rotated later").await;
        let secret = issued.token.expose_secret().to_owned();
        manager
            .regenerate(
                OWNER,
                issued.record.id,
                Regenerate::default().grace(minutes(5)),
            )
            .await
            .unwrap();
        assert!(
            manager.verify(&secret).await.unwrap().is_valid(),
            "within the grace period"
        );
        hammer(manager.clone(), secret, async move {
            clock.advance(minutes(5));
        })
        .await;
    }

    /// In recoverable mode a download includes the secret; without the key it does not, and a
    /// wrong key is an error, not a wrong secret.
    pub async fn recoverable_secrets(store: Arc<dyn TokenStore>) {
        let key = EncryptionKey::generate().unwrap();
        let manager = TokenManager::from_shared(store.clone()).with_encryption_key(key);
        let issued = manager.apply(OWNER, NewToken::new("kept")).await.unwrap();
        let file = manager.download(OWNER, issued.record.id).await.unwrap();
        assert_eq!(file.secret.as_ref(), Some(&issued.token));
        let fresh = manager
            .regenerate(OWNER, issued.record.id, Regenerate::default())
            .await
            .unwrap();
        let file = manager.download(OWNER, issued.record.id).await.unwrap();
        assert_eq!(file.secret.as_ref(), Some(&fresh.token));

        let plain = TokenManager::from_shared(store.clone());
        assert!(
            !plain
                .download(OWNER, issued.record.id)
                .await
                .unwrap()
                .secret_included()
        );
        let wrong = TokenManager::from_shared(store)
            .with_encryption_key(EncryptionKey::generate().unwrap());
        assert!(matches!(
            wrong.download(OWNER, issued.record.id).await,
            Err(Error::SealedSecret(_))
        ));
    }
}
