//! Several instances of an application sharing one database.

use std::sync::Arc;
use std::time::Duration;

use tollgate::{Error, NewToken, StoreEvent, TokenManager, TokenStore, TokenUpdate, Verification};
use tollgate_postgres::PgStore;

/// Verifies until `done` holds, for at most two seconds; returns how long it took.
async fn until(
    manager: &TokenManager,
    secret: &str,
    done: impl Fn(&Verification) -> bool,
) -> Duration {
    let start = tokio::time::Instant::now();
    loop {
        if done(&manager.verify(secret).await.unwrap()) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the change did not reach the other instance"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_deleted_on_one_instance_fails_on_the_other() {
    let Some((store_a, schema)) = tollgate_postgres::testing::fresh().await else {
        return;
    };
    let a = TokenManager::new(store_a);
    let b = TokenManager::new(schema.store().await);
    let issued = a.apply("acme", NewToken::new("shared")).await.unwrap();
    let secret = issued.token.expose_secret();
    // Verified (and cached) on B.
    assert!(b.verify(secret).await.unwrap().is_valid());
    a.delete("acme", issued.record.id).await.unwrap();
    // B's cache is evicted when the notification arrives.
    let took = until(&b, secret, |v| *v == Verification::Unknown).await;
    eprintln!("revocation reached the other instance in {took:?}");

    let other = a.apply("acme", NewToken::new("toggled")).await.unwrap();
    assert!(
        a.verify(other.token.expose_secret())
            .await
            .unwrap()
            .is_valid()
    );
    b.modify(
        "acme",
        other.record.id,
        TokenUpdate::default().enabled(false),
    )
    .await
    .unwrap();
    until(&a, other.token.expose_secret(), |v| {
        matches!(v, Verification::Disabled(_))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cache_revocation_is_immediate_on_every_instance() {
    let Some((store_a, schema)) = tollgate_postgres::testing::fresh().await else {
        return;
    };
    let a = TokenManager::new(store_a);
    let b = TokenManager::new(schema.store().await).with_cache(tollgate::CacheConfig {
        capacity: 0,
        ..Default::default()
    });
    let issued = a.apply("acme", NewToken::new("strict")).await.unwrap();
    let secret = issued.token.expose_secret();
    assert!(b.verify(secret).await.unwrap().is_valid());
    a.delete("acme", issued.record.id).await.unwrap();
    assert_eq!(b.verify(secret).await.unwrap(), Verification::Unknown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_taken_on_one_instance_conflicts_on_the_other() {
    let Some((store_a, schema)) = tollgate_postgres::testing::fresh().await else {
        return;
    };
    let a = TokenManager::new(store_a);
    let b = TokenManager::new(schema.store().await);
    a.apply("acme", NewToken::new("Deploy")).await.unwrap();
    let err = b.apply("acme", NewToken::new("deploy")).await.unwrap_err();
    assert!(matches!(err, Error::NameTaken { .. }), "{err:?}");
    // Concurrent applies for one name: exactly one wins.
    let (a, b) = (Arc::new(a), Arc::new(b));
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let manager = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { manager.apply("acme", NewToken::new("raced")).await })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(_) => won += 1,
            Err(Error::NameTaken { .. }) => {}
            Err(err) => panic!("{err}"),
        }
    }
    assert_eq!(won, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_announced_to_every_instance() {
    let Some((store_a, schema)) = tollgate_postgres::testing::fresh().await else {
        return;
    };
    let store_b = schema.store().await;
    let mut events = store_b
        .subscribe()
        .expect("a shared store announces changes");
    let a = TokenManager::new(store_a);
    let issued = a.apply("acme", NewToken::new("watched")).await.unwrap();
    let id = issued.record.id;
    a.modify("acme", id, TokenUpdate::default().description("changed"))
        .await
        .unwrap();
    a.delete("acme", id).await.unwrap();
    // Other tests share the database and its notifications: look for ours.
    let mut seen = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen < 2 {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("both changes arrive")
            .unwrap();
        if event == StoreEvent::Changed(id) {
            seen += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_unavailable_never_a_pass() {
    // Nothing listens on port 1.
    let err = PgStore::connect("postgres://postgres@127.0.0.1:1/test")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(matches!(tollgate::Error::from(err), Error::Unavailable(_)));

    let Some((store, _schema)) = tollgate_postgres::testing::fresh().await else {
        return;
    };
    let manager = TokenManager::new(store.clone());
    let issued = manager
        .apply("acme", NewToken::new("cut off"))
        .await
        .unwrap();
    store.close().await;
    let err = manager
        .verify(issued.token.expose_secret())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_when_instances_start_together() {
    let Some((_store, schema)) = tollgate_postgres::testing::fresh().await else {
        return;
    };
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let options = schema.options();
            tokio::spawn(async move { PgStore::connect_with(options).await })
        })
        .collect();
    for start in starts {
        start.await.unwrap().unwrap();
    }
}
