//! Test support: a PostgreSQL schema of its own for each test.
//!
//! Tests find the server in `TOLLGATE_TEST_DATABASE_URL`, else at the local default
//! `postgres://postgres@127.0.0.1:5432/test`. When the variable is unset and no server
//! answers, [`fresh`] prints a notice and returns `None` so a developer's `cargo test` skips
//! these tests; with the variable set (as CI does), a missing server fails them.

use sqlx::postgres::PgConnectOptions;

use crate::PgStore;

/// The server the tests use: `TOLLGATE_TEST_DATABASE_URL`, else the local default.
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn url() -> (String, bool) {
    match std::env::var("TOLLGATE_TEST_DATABASE_URL") {
        Ok(url) => (url, true),
        Err(_) => (DEFAULT_URL.to_owned(), false),
    }
}

/// A schema that is dropped, with everything in it, when this value is.
#[derive(Debug)]
pub struct Schema {
    url: String,
    name: String,
}

impl Schema {
    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection URL whose `search_path` puts this schema first, for programs that take
    /// a URL (the `tollgate` CLI).
    pub fn url(&self) -> String {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options=-c%20search_path%3D{}%2Cpublic",
            self.url, self.name
        )
    }

    /// Connection options whose `search_path` puts this schema first.
    pub fn options(&self) -> PgConnectOptions {
        self.url
            .parse::<PgConnectOptions>()
            .unwrap()
            .options([("search_path", format!("{},public", self.name))])
    }

    /// Another store on the same schema: a second instance of the application.
    pub async fn store(&self) -> PgStore {
        PgStore::connect_with(self.options()).await.unwrap()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; clean up from a runtime of our own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                    let sql = format!("DROP SCHEMA IF EXISTS {name} CASCADE");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A fresh schema with a migrated store in it; `None` (with a notice) when no server is
/// reachable and `TOLLGATE_TEST_DATABASE_URL` is unset.
///
/// # Panics
///
/// When `TOLLGATE_TEST_DATABASE_URL` is set and the server cannot be reached.
pub async fn fresh() -> Option<(PgStore, Schema)> {
    let (url, required) = url();
    let pool = match sqlx::PgPool::connect(&url).await {
        Ok(pool) => pool,
        Err(err) if !required => {
            eprintln!(
                "skipping: no PostgreSQL at {url} ({err}); set TOLLGATE_TEST_DATABASE_URL to require one"
            );
            return None;
        }
        Err(err) => panic!("TOLLGATE_TEST_DATABASE_URL is set but {url} is unreachable: {err}"),
    };
    let name = format!(
        "tollgate_test_{}",
        tollgate::TokenId::generate()
            .unwrap()
            .to_string()
            .get(..16)
            .unwrap()
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let schema = Schema { url, name };
    let store = schema.store().await;
    Some((store, schema))
}
