//! Opening files: persistence, locks, foreign and damaged files, schema versions.

use redb::{Database, TableDefinition};
use tollgate::{Error as CoreError, NewToken, TokenManager};
use tollgate_redb::{RedbStore, RedbStoreError, SCHEMA_VERSION};

#[tokio::test]
async fn tokens_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.redb");
    let (issued, secret) = {
        let manager = TokenManager::new(RedbStore::open(&path).unwrap());
        let issued = manager
            .apply("default", NewToken::new("kept"))
            .await
            .unwrap();
        let secret = issued.token.expose_secret().to_owned();
        (issued.record, secret)
    };
    let manager = TokenManager::new(RedbStore::open(&path).unwrap());
    assert_eq!(manager.get("default", issued.id).await.unwrap(), issued);
    assert!(manager.verify(&secret).await.unwrap().is_valid());
}

#[test]
fn the_file_holds_hashes_not_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.redb");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let secret = runtime.block_on(async {
        let manager = TokenManager::new(RedbStore::open(&path).unwrap());
        let issued = manager
            .apply("default", NewToken::new("secretive"))
            .await
            .unwrap();
        issued.token.expose_secret().to_owned()
    });
    drop(runtime);
    let bytes = std::fs::read(&path).unwrap();
    let random_part = &secret.as_bytes()[3..40];
    assert!(!bytes.windows(random_part.len()).any(|w| w == random_part));
    assert!(
        bytes.windows(9).any(|w| w == b"secretive"),
        "the name is stored"
    );
}

#[test]
fn a_second_open_is_refused_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.redb");
    let _first = RedbStore::open(&path).unwrap();
    let err = RedbStore::open(&path).unwrap_err();
    assert!(matches!(err, RedbStoreError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains("in use by another process"));
    assert!(matches!(CoreError::from(err), CoreError::Unavailable(_)));
}

#[test]
fn a_file_that_is_not_redb_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    for (file, content) in [
        (
            "notes.txt",
            "these are my notes, not a database\n".repeat(200),
        ),
        ("short.txt", "hi".to_owned()),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, &content).unwrap();
        let err = RedbStore::open(&path).unwrap_err();
        assert!(
            matches!(err, RedbStoreError::NotRedb { .. }),
            "{file}: {err:?}"
        );
        assert!(err.to_string().contains("is not a Tollgate token database"));
        assert!(
            std::error::Error::source(&err).is_some(),
            "the cause is kept"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
    }
}

#[test]
fn another_applications_redb_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(TableDefinition::<&str, u64>::new("users"))
            .unwrap()
            .insert("alice", &1)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = RedbStore::open(&path).unwrap_err();
    assert!(matches!(err, RedbStoreError::Foreign { .. }), "{err:?}");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.redb");
    drop(RedbStore::open(&path).unwrap());
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(TableDefinition::<&str, u64>::new("tollgate_meta"))
            .unwrap()
            .insert("schema_version", &(SCHEMA_VERSION + 1))
            .unwrap();
        txn.commit().unwrap();
    }
    let err = RedbStore::open(&path).unwrap_err();
    assert!(
        matches!(err, RedbStoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade Tollgate"));
}

#[tokio::test]
async fn search_after_reopening_finds_stored_names_and_follows_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.redb");
    {
        let manager = TokenManager::new(RedbStore::open(&path).unwrap());
        for name in ["prod-deploy", "billing-service"] {
            manager.apply("default", NewToken::new(name)).await.unwrap();
        }
    }
    let manager = TokenManager::new(RedbStore::open(&path).unwrap());
    let search = |query: &str| {
        let manager = &manager;
        let query = query.to_owned();
        async move {
            manager
                .list(
                    "default",
                    tollgate::ListOptions {
                        query: Some(query),
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|r| r.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search("depoly").await, ["prod-deploy"]);
    let added = manager
        .apply("default", NewToken::new("deploy-bot"))
        .await
        .unwrap();
    assert_eq!(search("deploy").await.len(), 2);
    manager.delete("default", added.record.id).await.unwrap();
    assert_eq!(search("deploy").await, ["prod-deploy"]);
}
