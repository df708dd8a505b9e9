//! Revocation through failures, against a real PostgreSQL broken on purpose.
//!
//! Two instances, A and B, share a database of their own (so that refusing connections to it
//! disturbs no other test). B verifies a token, which caches it; then B's connections are
//! cut in various ways while A deletes the token at many moments around the recovery. B
//! must reject the token within the notification latency every time, and must never answer
//! from its cache while it cannot hear about revocations.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions as _};
use tokio::time::Instant;
use tollgate::{Error, NewToken, StoreTimeout, TokenManager, Verification};
use tollgate_postgres::PgStore;

/// How long a revocation may take to reach the other instance: the notification's latency
/// (about a millisecond on one host) with room for a loaded two-core machine.
const REVOCATION_BOUND: Duration = Duration::from_millis(500);

/// A database of its own, dropped at the end.
struct Database {
    admin: PgPool,
    name: String,
    base: PgConnectOptions,
}

impl Database {
    async fn create() -> Option<Self> {
        let url = std::env::var("TOLLGATE_TEST_DATABASE_URL");
        let required = url.is_ok();
        let url = url.unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let base: PgConnectOptions = url.parse().unwrap();
        let admin = match PgPoolOptions::new()
            .max_connections(2)
            .connect_with(base.clone())
            .await
        {
            Ok(pool) => pool,
            Err(err) if !required => {
                eprintln!("skipping: no PostgreSQL at {url} ({err})");
                return None;
            }
            Err(err) => panic!("TOLLGATE_TEST_DATABASE_URL is set but unreachable: {err}"),
        };
        let name = format!(
            "tollgate_failures_{}",
            &tollgate::TokenId::generate().unwrap().to_string()[..12]
        );
        admin.execute_sql(&format!("CREATE DATABASE {name}")).await;
        Some(Self { admin, name, base })
    }

    /// Options for an instance, recognisable by its application name.
    fn options(&self, instance: &str) -> PgConnectOptions {
        self.base
            .clone()
            .database(&self.name)
            .application_name(&format!("{}-{instance}", self.name))
    }

    async fn store(&self, instance: &str) -> PgStore {
        PgStore::connect_with(self.options(instance)).await.unwrap()
    }

    /// Terminates the instance's server processes; only its notification listener when
    /// `listener_only`. Returns how many were terminated.
    async fn terminate(&self, instance: &str, listener_only: bool) -> i64 {
        let filter = if listener_only {
            " AND query LIKE 'LISTEN%'"
        } else {
            ""
        };
        let sql = format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1{filter}"
        );
        sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(format!("{}-{instance}", self.name))
            .fetch_one(&self.admin)
            .await
            .unwrap()
    }

    async fn allow_connections(&self, allow: bool) {
        self.admin
            .execute_sql(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS {allow}",
                self.name
            ))
            .await;
    }

    async fn drop(self) {
        self.allow_connections(true).await;
        self.admin
            .execute_sql(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

trait ExecuteSql {
    async fn execute_sql(&self, sql: &str);
}

impl ExecuteSql for PgPool {
    async fn execute_sql(&self, sql: &str) {
        sqlx::query(AssertSqlSafe(sql.to_owned()))
            .execute(self)
            .await
            .unwrap();
    }
}

/// Verifies `secret` on `manager` until it is rejected (an error counts as a rejection:
/// the store being down is a 503, never a pass); returns how long that took after `since`.
async fn rejected_within(manager: &TokenManager, secret: &str, since: Instant) -> Duration {
    loop {
        match manager.verify(secret).await {
            Ok(Verification::Valid(_)) => {}
            Ok(_) | Err(_) => return since.elapsed(),
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "the deleted token still verifies on the other instance after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Keeps verifying `secret` on `manager` in the background, so that B re-caches the token
/// whenever it can, as a busy instance would.
fn hammer(
    manager: Arc<TokenManager>,
    secret: String,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        while !flag.load(Ordering::Relaxed) {
            let _ = manager.verify(&secret).await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    (stop, task)
}

/// How B's connections are cut.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// Only the backend of B's notification listener is terminated.
    Listener,
    /// Every backend of B is terminated.
    AllBackends,
    /// The database refuses connections, every backend of B is terminated, and connections
    /// are allowed again after a while.
    RefuseThenRestore,
}

/// One round: cache the token on B, cut B's connections, delete through A `delay` after the
/// recovery, and measure how long B keeps accepting the token.
async fn round(db: &Database, a: &TokenManager, b: &Arc<TokenManager>, cut: Cut, delay: Duration) {
    let issued = a
        .apply("acme", NewToken::new(format!("round {cut:?} {delay:?}")))
        .await
        .unwrap();
    let secret = issued.token.expose_secret().to_owned();
    assert!(b.verify(&secret).await.unwrap().is_valid());
    let (stop, hammering) = hammer(b.clone(), secret.clone());

    match cut {
        Cut::Listener => assert_eq!(db.terminate("b", true).await, 1),
        Cut::AllBackends => assert!(db.terminate("b", false).await >= 1),
        Cut::RefuseThenRestore => {
            db.allow_connections(false).await;
            assert!(db.terminate("b", false).await >= 1);
            // While B cannot hear revocations, its cache must not answer: the token is
            // checked against the store, which B cannot reach.
            let down = Instant::now();
            loop {
                match b.verify(&secret).await {
                    Err(err) => {
                        assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
                        break;
                    }
                    Ok(outcome) => assert!(
                        down.elapsed() < REVOCATION_BOUND,
                        "B kept answering {outcome:?} from its cache while cut off"
                    ),
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            db.allow_connections(true).await;
        }
    }
    tokio::time::sleep(delay).await;
    a.delete("acme", issued.record.id).await.unwrap();
    let took = rejected_within(b, &secret, Instant::now()).await;
    stop.store(true, Ordering::Relaxed);
    hammering.await.unwrap();
    assert!(
        took <= REVOCATION_BOUND,
        "{cut:?}, delete {delay:?} after recovery: B accepted the deleted token for {took:?}"
    );
    // Whatever happened, B recovers: a fresh token verifies there again.
    let fresh = a
        .apply("acme", NewToken::new(format!("after {cut:?} {delay:?}")))
        .await
        .unwrap();
    let start = Instant::now();
    while !matches!(
        b.verify(fresh.token.expose_secret()).await,
        Ok(Verification::Valid(_))
    ) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "B does not recover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_holds_through_connection_failures() {
    let Some(db) = Database::create().await else {
        return;
    };
    let a = TokenManager::new(db.store("a").await);
    let b = Arc::new(TokenManager::new(db.store("b").await));
    // Deletes right at the recovery, while B is reconnecting, and after it.
    let delays = [0, 5, 20, 50, 100, 200, 400, 700].map(Duration::from_millis);
    for cut in [Cut::Listener, Cut::AllBackends, Cut::RefuseThenRestore] {
        for delay in delays {
            round(&db, &a, &b, cut, delay).await;
        }
    }
    drop((a, b));
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_table_is_unavailable_within_the_deadline() {
    let Some(db) = Database::create().await else {
        return;
    };
    let a = TokenManager::new(db.store("a").await);
    let issued = a.apply("acme", NewToken::new("locked out")).await.unwrap();
    // Another session holds an exclusive lock for far longer than any deadline.
    let mut locker = db.options("locker").connect().await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE tollgate_tokens IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();

    let b = TokenManager::new(db.store("b").await);
    let start = Instant::now();
    let err = b.verify(issued.token.expose_secret()).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(err.report().contains("lock timeout"), "{}", err.report());

    let start = Instant::now();
    let err = b.list("acme", Default::default()).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    // A delete waits no longer either, and changes nothing.
    let err = b.delete("acme", issued.record.id).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");

    // A manager deadline shorter than the server's timeouts answers first.
    let hasty = TokenManager::new(db.store("c").await).with_deadlines(tollgate::Deadlines {
        read: Duration::from_millis(100),
        ..Default::default()
    });
    let err = hasty
        .verify(issued.token.expose_secret())
        .await
        .unwrap_err();
    let timeout = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<StoreTimeout>());
    assert!(timeout.is_some(), "{err:?}");

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    assert!(
        b.verify(issued.token.expose_secret())
            .await
            .unwrap()
            .is_valid()
    );
    drop((a, b, hasty, locker));
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_reported_with_their_cause() {
    let Some(db) = Database::create().await else {
        return;
    };
    let a = TokenManager::new(db.store("a").await);
    let issued = a.apply("acme", NewToken::new("refused")).await.unwrap();
    db.allow_connections(false).await;
    db.terminate("a", false).await;

    let start = Instant::now();
    let err = a.get("acme", issued.record.id).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(
        err.report().contains("not currently accepting connections"),
        "{}",
        err.report()
    );

    let start = Instant::now();
    let err = PgStore::connect_with(db.options("late")).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let report = tollgate::Error::from(err).report();
    assert!(
        report.contains("not currently accepting connections"),
        "{report}"
    );

    // Nothing listens on port 1: "connection refused", quickly.
    let start = Instant::now();
    let err = PgStore::connect("postgres://postgres@127.0.0.1:1/test")
        .await
        .unwrap_err();
    let report = tollgate::Error::from(err).report();
    assert!(report.to_lowercase().contains("refused"), "{report}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    drop(a);
    db.drop().await;
}
