//! The store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt as _;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Row as _};
use time::OffsetDateTime;
use tokio::sync::broadcast;
use tollgate::jiff::Timestamp;
use tollgate::{
    AuditEntry, AuditRequest, Error, ListPosition, ListRequest, PreviousSecret, SealedSecret,
    SearchHit, SearchRequest, SecretHash, StoreEvent, Terms, TokenId, TokenRecord, TokenStore,
    sort_hits, typo_budget,
};

use crate::error::PgStoreError;

/// The channel changes are announced on (`NOTIFY`), with the token id in hex as payload.
pub const CHANNEL: &str = "tollgate_token_changes";

/// The record columns, in the order `push_values` binds them.
macro_rules! columns {
    () => {
        "id, owner, name, description, scopes, enabled, created_at, updated_at, expires_at, \
         last_used_at, secret_hash, previous_hash, previous_valid_until, sealed_secret, version, hint"
    };
}
const COLUMNS: &str = columns!();

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a query may run on the server (`statement_timeout`) with [`PgStore::connect`]
/// and [`PgStore::connect_with`]: shorter than the manager's read deadline, so that the server
/// cancels a stuck statement (and rolls back its transaction) and says why.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long a statement waits for a lock (`lock_timeout`).
pub const LOCK_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a call waits for a pooled connection before it fails.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(750);
/// How long a connection attempt made to explain a failure may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// A [`TokenStore`] in PostgreSQL, shared by every instance of an application.
///
/// Clone it freely: clones share one connection pool and one notification listener.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    events: broadcast::Sender<StoreEvent>,
    /// Whether the listener is listening now: every change committed from now on will be
    /// announced.
    live: Arc<AtomicBool>,
    listener: Arc<ListenerTask>,
}

/// Stops the notification listener when the last clone of the store is dropped.
#[derive(Debug)]
struct ListenerTask(tokio::task::JoinHandle<()>);

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PgStore {
    /// Connects to `url` (e.g. `postgres://user@host/db`), runs the migrations and starts
    /// listening for changes made by other instances.
    pub async fn connect(url: &str) -> Result<Self, PgStoreError> {
        let options: PgConnectOptions = url.parse()?;
        Self::connect_with(options).await
    }

    /// Like [`connect`](Self::connect), with connection options (a `search_path`, TLS…).
    ///
    /// Every wait is bounded: a pooled connection is waited for at most [`ACQUIRE_TIMEOUT`],
    /// a statement runs at most [`STATEMENT_TIMEOUT`] and waits for a lock at most
    /// [`LOCK_TIMEOUT`] (unless `options` sets `statement_timeout` or `lock_timeout`
    /// itself). Past them a call fails with [`tollgate::Error::Unavailable`], naming the
    /// cause.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, PgStoreError> {
        let given = options.get_options().unwrap_or_default().to_owned();
        let defaults = [
            ("statement_timeout", millis(STATEMENT_TIMEOUT)),
            ("lock_timeout", millis(LOCK_TIMEOUT)),
        ];
        let options = options.options(defaults.into_iter().filter(|(key, _)| !given.contains(key)));
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Self::from_pool(pool).await
    }

    /// Uses an existing pool: runs the migrations (idempotent, and serialized by an advisory
    /// lock when several instances start at once) and starts the listener. The pool's own
    /// timeouts apply; see [`connect_with`](Self::connect_with) for the ones recommended.
    pub async fn from_pool(pool: PgPool) -> Result<Self, PgStoreError> {
        if let Err(err) = MIGRATOR.run(&pool).await {
            return Err(match err {
                sqlx::migrate::MigrateError::Execute(err) => explain(&pool, err).await,
                err => err.into(),
            });
        }
        let (events, _) = broadcast::channel(1024);
        let listener = match start_listening(&pool).await {
            Ok(listener) => listener,
            Err(err) => return Err(explain(&pool, err).await),
        };
        let live = Arc::new(AtomicBool::new(true));
        let task = tokio::spawn(listen(pool.clone(), listener, events.clone(), live.clone()));
        Ok(Self {
            pool,
            events,
            live,
            listener: Arc::new(ListenerTask(task)),
        })
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Stops listening and closes every connection, waiting for the ones in use. Every clone
    /// of this store answers [`tollgate::Error::Unavailable`] from then on.
    pub async fn close(&self) {
        self.listener.0.abort();
        self.live.store(false, Ordering::SeqCst);
        let _ = self.events.send(StoreEvent::Lost);
        self.pool.close().await;
    }

    /// Turns a sqlx error into the core's, with the real cause when the pool only says it
    /// timed out.
    async fn fail(&self, err: sqlx::Error) -> Error {
        explain(&self.pool, err).await.into()
    }
}

fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// When the pool gave up waiting for a connection, finds out why: a connection attempt of
/// its own reports "connection refused", "database does not allow connections"… and that
/// becomes the error's source. When a connection can be made, the pool was simply busy.
async fn explain(pool: &PgPool, err: sqlx::Error) -> PgStoreError {
    if !matches!(err, sqlx::Error::PoolTimedOut) {
        return err.into();
    }
    let options = pool.connect_options();
    match tokio::time::timeout(PROBE_TIMEOUT, sqlx::ConnectOptions::connect(&*options)).await {
        Ok(Ok(conn)) => {
            drop(conn);
            PgStoreError::PoolBusy {
                size: pool.options().get_max_connections(),
            }
        }
        Ok(Err(cause)) => PgStoreError::Unreachable(cause),
        Err(_) => PgStoreError::Unreachable(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the server did not answer a connection attempt",
        ))),
    }
}

async fn start_listening(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection is re-established here, explicitly, so that the feed's state is
    // known at every moment.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Forwards notifications to subscribers, and the feed's state with them: when the
/// connection drops, [`StoreEvent::Lost`] at once (changes made from then on are not
/// announced); once a new connection is `LISTEN`ing, [`StoreEvent::Live`] (what was missed
/// in between must be dropped).
async fn listen(
    pool: PgPool,
    mut listener: PgListener,
    events: broadcast::Sender<StoreEvent>,
    live: Arc<AtomicBool>,
) {
    loop {
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    let event = match notification.payload().parse::<TokenId>() {
                        Ok(id) => StoreEvent::Changed(id),
                        Err(_) => StoreEvent::Reset,
                    };
                    let _ = events.send(event);
                }
                Ok(None) => {
                    tracing::warn!("lost the token change notification connection");
                    break;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "token change notifications failed");
                    break;
                }
            }
        }
        live.store(false, Ordering::SeqCst);
        let _ = events.send(StoreEvent::Lost);
        drop(listener);
        let mut pause = Duration::from_millis(50);
        listener = loop {
            match start_listening(&pool).await {
                Ok(listener) => break listener,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot LISTEN for token changes; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        };
        tracing::info!("listening for token changes again");
        live.store(true, Ordering::SeqCst);
        let _ = events.send(StoreEvent::Live);
    }
}

fn to_pg(at: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(at.as_nanosecond())
        .expect("jiff and time cover the same years")
}

fn from_pg(at: OffsetDateTime) -> Result<Timestamp, PgStoreError> {
    Timestamp::from_nanosecond(at.unix_timestamp_nanos())
        .map_err(|_| PgStoreError::Corrupt("a timestamp is out of range"))
}

fn decode(row: &PgRow) -> Result<TokenRecord, PgStoreError> {
    let id: Vec<u8> = row.try_get("id")?;
    let hash: Vec<u8> = row.try_get("secret_hash")?;
    let previous_hash: Option<Vec<u8>> = row.try_get("previous_hash")?;
    let previous_until: Option<OffsetDateTime> = row.try_get("previous_valid_until")?;
    let hash_of = |bytes: Vec<u8>| {
        <[u8; 32]>::try_from(bytes)
            .map(SecretHash::from_bytes)
            .map_err(|_| PgStoreError::Corrupt("a hash is not 32 bytes"))
    };
    let previous_secret = match (previous_hash, previous_until) {
        (Some(hash), Some(until)) => Some(PreviousSecret {
            hash: hash_of(hash)?,
            valid_until: from_pg(until)?,
        }),
        _ => None,
    };
    let version: i64 = row.try_get("version")?;
    Ok(TokenRecord {
        id: TokenId::from_bytes(
            id.try_into()
                .map_err(|_| PgStoreError::Corrupt("an id is not 16 bytes"))?,
        ),
        owner: row.try_get("owner")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        scopes: row.try_get("scopes")?,
        enabled: row.try_get("enabled")?,
        created_at: from_pg(row.try_get("created_at")?)?,
        updated_at: from_pg(row.try_get("updated_at")?)?,
        expires_at: row
            .try_get::<Option<OffsetDateTime>, _>("expires_at")?
            .map(from_pg)
            .transpose()?,
        last_used_at: row
            .try_get::<Option<OffsetDateTime>, _>("last_used_at")?
            .map(from_pg)
            .transpose()?,
        secret_hash: hash_of(hash)?,
        previous_secret,
        sealed_secret: row
            .try_get::<Option<Vec<u8>>, _>("sealed_secret")?
            .map(SealedSecret),
        version: u64::try_from(version).map_err(|_| PgStoreError::Corrupt("negative version"))?,
        hint: row.try_get("hint")?,
    })
}

fn version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// What a unique-index violation means for the caller.
fn conflict(err: &sqlx::Error, record: &TokenRecord) -> Option<Error> {
    let constraint = err.as_database_error()?.constraint()?;
    Some(match constraint {
        "tollgate_tokens_owner_name" => Error::NameTaken {
            name: record.name.clone(),
        },
        "tollgate_tokens_pkey"
        | "tollgate_tokens_secret_hash"
        | "tollgate_tokens_previous_hash" => Error::Duplicate(record.id),
        _ => return None,
    })
}

fn store_error(err: sqlx::Error) -> Error {
    PgStoreError::from(err).into()
}

/// `?` for sqlx results inside the store: the error becomes the core's, explained.
trait OrExplain<T> {
    async fn or_explain(self, store: &PgStore) -> Result<T, Error>;
}

impl<T> OrExplain<T> for Result<T, sqlx::Error> {
    async fn or_explain(self, store: &PgStore) -> Result<T, Error> {
        match self {
            Ok(value) => Ok(value),
            Err(err) => Err(store.fail(err).await),
        }
    }
}

/// Binds a record's columns in `COLUMNS` order, plus the search columns.
fn push_values(builder: &mut QueryBuilder<Postgres>, record: &TokenRecord) {
    let terms = Terms::of(&record.name);
    let mut values = builder.separated(", ");
    values
        .push_bind(record.id.as_bytes().to_vec())
        .push_bind(record.owner.clone())
        .push_bind(record.name.clone())
        .push_bind(record.description.clone())
        .push_bind(record.scopes.clone())
        .push_bind(record.enabled)
        .push_bind(to_pg(record.created_at))
        .push_bind(to_pg(record.updated_at))
        .push_bind(record.expires_at.map(to_pg))
        .push_bind(record.last_used_at.map(to_pg))
        .push_bind(record.secret_hash.as_bytes().to_vec())
        .push_bind(
            record
                .previous_secret
                .as_ref()
                .map(|p| p.hash.as_bytes().to_vec()),
        )
        .push_bind(
            record
                .previous_secret
                .as_ref()
                .map(|p| to_pg(p.valid_until)),
        )
        .push_bind(record.sealed_secret.as_ref().map(|s| s.0.clone()))
        .push_bind(version(record.version))
        .push_bind(record.hint.clone())
        .push_bind(record.name_key())
        .push_bind(terms.compact)
        .push_bind(terms.words);
}

/// Appends an audit entry on `conn`: inside the change's transaction when there is one.
async fn log(conn: &mut sqlx::PgConnection, entry: &AuditEntry) -> Result<(), sqlx::Error> {
    let json = serde_json::to_string(entry).expect("an audit entry always serializes");
    sqlx::query(
        "INSERT INTO tollgate_audit (id, at, actor_id, action, token_id, owner, entry) \
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
    )
    .bind(entry.id.as_bytes().to_vec())
    .bind(to_pg(entry.at))
    .bind(entry.actor.id.clone())
    .bind(entry.action.as_str())
    .bind(entry.token_id.map(|id| id.as_bytes().to_vec()))
    .bind(entry.owner.clone())
    .bind(json)
    .execute(conn)
    .await
    .map(drop)
}

async fn notify(conn: &mut sqlx::PgConnection, id: TokenId) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(id.to_string())
        .execute(conn)
        .await
        .map(drop)
}

/// Adds the owner, cursor and filter conditions of a listing.
fn push_filters(
    builder: &mut QueryBuilder<Postgres>,
    owner: &str,
    filter: tollgate::ListFilter,
    now: Timestamp,
) {
    builder.push(" WHERE owner = ").push_bind(owner.to_owned());
    if let Some(enabled) = filter.enabled {
        builder.push(" AND enabled = ").push_bind(enabled);
    }
    if let Some(expired) = filter.expired {
        builder
            .push(" AND (expires_at IS NOT NULL AND expires_at <= ")
            .push_bind(to_pg(now))
            .push(") = ")
            .push_bind(expired);
    }
}

impl PgStore {
    /// Deletes a record, if it is at `expected` when one is given, in one transaction that
    /// also announces the change.
    async fn remove(
        &self,
        id: TokenId,
        expected: Option<u64>,
        audit: &AuditEntry,
    ) -> Result<bool, Error> {
        let mut tx = self.pool.begin().await.or_explain(self).await?;
        let deleted = sqlx::query(
            "DELETE FROM tollgate_tokens WHERE id = $1 AND ($2::bigint IS NULL OR version = $2)",
        )
        .bind(id.as_bytes().to_vec())
        .bind(expected.map(version))
        .execute(&mut *tx)
        .await
        .or_explain(self)
        .await?
        .rows_affected();
        if deleted == 0 {
            let Some(expected) = expected else {
                return Ok(false);
            };
            let actual: Option<i64> =
                sqlx::query_scalar("SELECT version FROM tollgate_tokens WHERE id = $1")
                    .bind(id.as_bytes().to_vec())
                    .fetch_optional(&mut *tx)
                    .await
                    .or_explain(self)
                    .await?;
            return match actual {
                None => Ok(false),
                Some(actual) => Err(Error::VersionConflict {
                    id,
                    expected,
                    actual: u64::try_from(actual).unwrap_or(0),
                }),
            };
        }
        log(&mut tx, audit).await.or_explain(self).await?;
        notify(&mut tx, id).await.or_explain(self).await?;
        tx.commit().await.or_explain(self).await?;
        Ok(true)
    }

    async fn fetch_candidates(
        &self,
        builder: &mut QueryBuilder<Postgres>,
        request: &SearchRequest<'_>,
        hits: &mut Vec<SearchHit>,
    ) -> Result<(), Error> {
        let mut rows = builder.build().fetch(&self.pool);
        while let Some(row) = rows.try_next().await.or_explain(self).await? {
            let record = decode(&row)?;
            let Some(score) = request.query.score(&record.name) else {
                continue;
            };
            let hit = SearchHit { record, score };
            if request.after.is_none_or(|after| hit.position() < after) {
                hits.push(hit);
            }
            if hits.len() > request.limit.saturating_mul(4).max(512) {
                sort_hits(hits);
                hits.truncate(request.limit);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl TokenStore for PgStore {
    /// One transaction: all are added, or none.
    async fn insert_many(
        &self,
        records: &[TokenRecord],
        audit: &[AuditEntry],
    ) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.or_explain(self).await?;
        for record in records {
            let mut builder = QueryBuilder::new(format!(
                "INSERT INTO tollgate_tokens ({COLUMNS}, name_key, name_compact, name_words) VALUES ("
            ));
            push_values(&mut builder, record);
            builder.push(")");
            if let Err(err) = builder.build().execute(&mut *tx).await {
                // Dropping the transaction rolls it back.
                return Err(conflict(&err, record).unwrap_or_else(|| store_error(err)));
            }
        }
        for entry in audit {
            log(&mut tx, entry).await.or_explain(self).await?;
        }
        tx.commit().await.or_explain(self).await
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, Error> {
        sqlx::query_scalar("SELECT value FROM tollgate_settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .or_explain(self)
            .await
    }

    async fn init_setting(&self, key: &str, value: &str) -> Result<String, Error> {
        // Insert-if-absent, then read: whoever inserted first wins. A racing insert that
        // committed after this statement's snapshot is seen by the next attempt.
        for _ in 0..3 {
            let stored: Option<String> = sqlx::query_scalar(
                "WITH inserted AS (INSERT INTO tollgate_settings (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO NOTHING RETURNING value) \
                 SELECT value FROM inserted UNION ALL \
                 SELECT value FROM tollgate_settings WHERE key = $1 LIMIT 1",
            )
            .bind(key)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .or_explain(self)
            .await?;
            if let Some(stored) = stored {
                return Ok(stored);
            }
        }
        Err(PgStoreError::Corrupt("a setting vanished while it was being written").into())
    }

    async fn get(&self, id: TokenId) -> Result<Option<TokenRecord>, Error> {
        let sql = concat!("SELECT ", columns!(), " FROM tollgate_tokens WHERE id = $1");
        let row = sqlx::query(sql)
            .bind(id.as_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await
            .or_explain(self)
            .await?;
        Ok(row.as_ref().map(decode).transpose()?)
    }

    async fn find_by_hash(&self, hash: &SecretHash) -> Result<Option<TokenRecord>, Error> {
        // Two index lookups; the previous hash only during a regeneration grace period.
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM tollgate_tokens WHERE secret_hash = $1 UNION ALL ",
            "SELECT ",
            columns!(),
            " FROM tollgate_tokens WHERE previous_hash = $1 LIMIT 1"
        );
        let row = sqlx::query(sql)
            .bind(hash.as_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await
            .or_explain(self)
            .await?;
        Ok(row.as_ref().map(decode).transpose()?)
    }

    async fn find_by_name(
        &self,
        owner: &str,
        name_key: &str,
    ) -> Result<Option<TokenRecord>, Error> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM tollgate_tokens WHERE owner = $1 AND name_key = $2"
        );
        let row = sqlx::query(sql)
            .bind(owner)
            .bind(name_key)
            .fetch_optional(&self.pool)
            .await
            .or_explain(self)
            .await?;
        Ok(row.as_ref().map(decode).transpose()?)
    }

    async fn update(
        &self,
        record: &TokenRecord,
        expected_version: u64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.or_explain(self).await?;
        let mut builder = QueryBuilder::new(format!(
            "UPDATE tollgate_tokens SET ({COLUMNS}, name_key, name_compact, name_words) = ("
        ));
        push_values(&mut builder, record);
        builder
            .push(") WHERE id = ")
            .push_bind(record.id.as_bytes().to_vec())
            .push(" AND owner = ")
            .push_bind(record.owner.clone())
            .push(" AND version = ")
            .push_bind(version(expected_version));
        let updated = match builder.build().execute(&mut *tx).await {
            Ok(result) => result.rows_affected(),
            Err(err) => return Err(conflict(&err, record).unwrap_or_else(|| store_error(err))),
        };
        if updated == 0 {
            let actual: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM tollgate_tokens WHERE id = $1 AND owner = $2",
            )
            .bind(record.id.as_bytes().to_vec())
            .bind(record.owner.clone())
            .fetch_optional(&mut *tx)
            .await
            .or_explain(self)
            .await?;
            return Err(match actual {
                Some(actual) => Error::VersionConflict {
                    id: record.id,
                    expected: expected_version,
                    actual: u64::try_from(actual).unwrap_or(0),
                },
                None => Error::NotFound(record.id),
            });
        }
        if let Some(entry) = audit {
            log(&mut tx, entry).await.or_explain(self).await?;
        }
        notify(&mut tx, record.id).await.or_explain(self).await?;
        tx.commit().await.or_explain(self).await
    }

    async fn delete(&self, id: TokenId, audit: &AuditEntry) -> Result<bool, Error> {
        self.remove(id, None, audit).await
    }

    async fn delete_version(
        &self,
        id: TokenId,
        expected_version: u64,
        audit: &AuditEntry,
    ) -> Result<bool, Error> {
        self.remove(id, Some(expected_version), audit).await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await.or_explain(self).await?;
        log(&mut conn, entry).await.or_explain(self).await
    }

    async fn audit(&self, request: &AuditRequest<'_>) -> Result<Vec<AuditEntry>, Error> {
        let filter = request.filter;
        let mut builder = QueryBuilder::new("SELECT entry::text FROM tollgate_audit WHERE TRUE");
        if let Some(token) = filter.token {
            builder
                .push(" AND token_id = ")
                .push_bind(token.as_bytes().to_vec());
        }
        if let Some(actor) = &filter.actor {
            builder.push(" AND actor_id = ").push_bind(actor.clone());
        }
        if let Some(action) = filter.action {
            builder.push(" AND action = ").push_bind(action.as_str());
        }
        if let Some(owner) = &filter.owner {
            builder.push(" AND owner = ").push_bind(owner.clone());
        }
        if let Some(since) = filter.since {
            builder.push(" AND at >= ").push_bind(to_pg(since));
        }
        if let Some(until) = filter.until {
            builder.push(" AND at < ").push_bind(to_pg(until));
        }
        if let Some(after) = request.after {
            builder
                .push(" AND (at, id) < (")
                .push_bind(to_pg(after.at))
                .push(", ")
                .push_bind(after.id.as_bytes().to_vec())
                .push(")");
        }
        builder
            .push(" ORDER BY at DESC, id DESC LIMIT ")
            .push_bind(i64::try_from(request.limit).unwrap_or(i64::MAX));
        let rows: Vec<String> = builder
            .build_query_scalar()
            .fetch_all(&self.pool)
            .await
            .or_explain(self)
            .await?;
        rows.iter()
            .map(|json| {
                serde_json::from_str(json)
                    .map_err(|_| PgStoreError::Corrupt("an audit entry is not valid").into())
            })
            .collect()
    }

    async fn prune_audit(&self, before: Timestamp) -> Result<u64, Error> {
        let result = sqlx::query("DELETE FROM tollgate_audit WHERE at < $1")
            .bind(to_pg(before))
            .execute(&self.pool)
            .await
            .or_explain(self)
            .await?;
        Ok(result.rows_affected())
    }

    async fn list(&self, request: &ListRequest<'_>) -> Result<Vec<TokenRecord>, Error> {
        let mut builder = QueryBuilder::new(format!("SELECT {COLUMNS} FROM tollgate_tokens"));
        push_filters(&mut builder, request.owner, request.filter, request.now);
        if let Some(ListPosition { created_at, id }) = request.after {
            builder
                .push(" AND (created_at, id) < (")
                .push_bind(to_pg(created_at))
                .push(", ")
                .push_bind(id.as_bytes().to_vec())
                .push(")");
        }
        builder
            .push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::try_from(request.limit).unwrap_or(i64::MAX));
        let rows = builder
            .build()
            .fetch_all(&self.pool)
            .await
            .or_explain(self)
            .await?;
        Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
    }

    /// Finds candidates in the database, then ranks them with the core matcher.
    ///
    /// First the names that contain every query word (the exact, prefix, word and substring
    /// tiers), found through the trigram index. Only when those do not fill the page are the
    /// lower tiers (abbreviations, typos) looked for, by `tollgate_word_candidate` in the
    /// database. Either way only candidates leave the server.
    async fn search(&self, request: &SearchRequest<'_>) -> Result<Vec<SearchHit>, Error> {
        let terms = request.query.terms();
        let mut hits = Vec::new();
        let contains_all = |builder: &mut QueryBuilder<Postgres>| {
            builder.push("(TRUE");
            for word in &terms.words {
                builder
                    .push(" AND name_compact LIKE ")
                    .push_bind(format!("%{word}%"));
            }
            builder.push(")");
        };

        let mut upper = QueryBuilder::new(format!("SELECT {COLUMNS} FROM tollgate_tokens"));
        push_filters(&mut upper, request.owner, request.filter, request.now);
        upper.push(" AND ");
        contains_all(&mut upper);
        self.fetch_candidates(&mut upper, request, &mut hits)
            .await?;
        if hits.len() >= request.limit {
            sort_hits(&mut hits);
            hits.truncate(request.limit);
            return Ok(hits);
        }

        let mut lower = QueryBuilder::new(format!("SELECT {COLUMNS} FROM tollgate_tokens"));
        push_filters(&mut lower, request.owner, request.filter, request.now);
        lower.push(" AND NOT ");
        contains_all(&mut lower);
        lower.push(" AND ((TRUE");
        for word in &terms.words {
            lower
                .push(" AND tollgate_word_candidate(name_compact, name_words, ")
                .push_bind(word.clone())
                .push(", ")
                .push_bind(i32::try_from(typo_budget(word.chars().count())).unwrap_or(0))
                .push(")");
        }
        lower
            .push(") OR tollgate_word_candidate(name_compact, name_words, ")
            .push_bind(terms.compact.clone())
            .push(", ")
            .push_bind(i32::try_from(typo_budget(terms.compact.chars().count())).unwrap_or(0))
            .push("))");
        self.fetch_candidates(&mut lower, request, &mut hits)
            .await?;
        sort_hits(&mut hits);
        hits.truncate(request.limit);
        Ok(hits)
    }

    async fn record_last_used(&self, uses: &[(TokenId, Timestamp)]) -> Result<(), Error> {
        if uses.is_empty() {
            return Ok(());
        }
        let ids: Vec<Vec<u8>> = uses.iter().map(|(id, _)| id.as_bytes().to_vec()).collect();
        let times: Vec<OffsetDateTime> = uses.iter().map(|(_, at)| to_pg(*at)).collect();
        sqlx::query(
            "UPDATE tollgate_tokens AS t SET last_used_at = u.at \
             FROM unnest($1::bytea[], $2::timestamptz[]) AS u(id, at) \
             WHERE t.id = u.id AND (t.last_used_at IS NULL OR t.last_used_at < u.at)",
        )
        .bind(ids)
        .bind(times)
        .execute(&self.pool)
        .await
        .or_explain(self)
        .await?;
        Ok(())
    }

    fn subscribe(&self) -> Option<broadcast::Receiver<StoreEvent>> {
        Some(self.events.subscribe())
    }

    fn feed_is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }
}
