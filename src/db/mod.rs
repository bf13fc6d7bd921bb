//! The SQLite store: opening and checking the file, the connection pool, and the queries.
//!
//! Query functions are plain `fn(&Connection, ...)` so they can be tested without actix; handlers
//! reach them through [`Db::run`] (reads: a pooled connection, on actix's blocking pool, in one
//! step) or [`Db::write`] (every change: the one writer connection, on a thread of its own that
//! commits the writes queued together in one transaction, see [`crate::db::writer`]), so that no
//! SQLite call ever runs on the async executor.
//!
//! Writes never contend for SQLite's write lock: they queue in-process, in arrival order, in
//! front of the single writer, so a busy database cannot reach a client under load. WAL mode lets
//! the pooled readers run meanwhile.

pub mod migrate;
pub mod query;
pub mod writer;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::Value as SqlValue;
use rusqlite::{
    params, params_from_iter, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior,
};
use serde_json::{Map, Value};

use crate::db::query::{like_escape, MetricQuery};
pub use crate::db::writer::Synchronous;
use crate::db::writer::Writer;
use crate::error::ApiError;
use crate::models::{tag_value, Context, Metric, MetricRecord, Session};

/// The schema, applied at every start-up; each statement is idempotent.
pub const SCHEMA: &str = include_str!("../../schema.sql");

/// The schema version this binary writes, kept in `PRAGMA user_version`. Older files are
/// migrated at start-up by the steps of [`crate::db::migrate::MIGRATIONS`].
pub const SCHEMA_VERSION: i64 = 3;

/// The tables this binary owns; a file holding any other table belongs to someone else.
const OWN_TABLES: [&str; 8] = [
    "contexts",
    "sessions",
    "session_tags",
    "metrics",
    "counters",
    "metric_facets",
    "component_sessions",
    "metric_holes",
];

/// How long a statement waits for another connection's write lock before giving up with BUSY.
/// The server's own writes never wait on each other (they share one connection); this covers
/// another process, such as `sqlite3` or a backup, holding the lock for a moment.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the database could not be opened at start-up; shown to the operator as one line.
#[derive(Debug)]
pub struct OpenError {
    path: PathBuf,
    reason: String,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot use database {}: {}",
            self.path.display(),
            self.reason
        )
    }
}

impl std::error::Error for OpenError {}

/// The connections to one database file, shared by every worker: a pool for reads and the one
/// connection that writes.
#[derive(Clone)]
pub struct Db {
    /// Read connections; in WAL mode they never wait for the writer.
    pool: r2d2::Pool<SqliteConnectionManager>,
    /// The only connection that changes the database, on its own thread behind a bounded queue;
    /// it goes away (its queue written, its connection closed) with the last clone of the `Db`.
    writer: Arc<Writer>,
    path: PathBuf,
}

/// Sets up a connection the way every connection of the server must be: WAL (so readers never
/// wait for the writer), a busy timeout instead of instant BUSY errors, fsync at every commit so
/// a 201 survives power loss, and foreign keys enforced.
pub(crate) fn configure_connection(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )
}

/// How much of the database each pooled reader keeps in memory, in KiB. A page of 500 metrics
/// spans about 60 pages of 4 KiB, which this holds with the top of every b-tree. SQLite's default,
/// 2 MiB per connection, would make the pool's caches most of the server's memory for little
/// gain: the rest of the file is read from the OS's file cache, and a listing seldom reads the
/// same pages twice.
///
/// The file is not memory-mapped (`mmap_size` stays 0): mapped pages count in the server's
/// resident memory, and serving pages all over a large store maps hundreds of megabytes of it.
const READER_CACHE_KIB: i64 = 512;

/// Sets up a pooled reader: [`configure_connection`], with a small page cache.
fn configure_reader(conn: &mut Connection) -> rusqlite::Result<()> {
    configure_connection(conn)?;
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
}

impl Db {
    /// Opens (creating if needed) the database at `path`, checks that it is ours and not newer
    /// than this binary, brings its schema up to date, and builds a pool of `pool_size` connections.
    /// Commits are fsynced ([`Synchronous::Full`]).
    pub fn open(path: &Path, pool_size: u32) -> Result<Db, OpenError> {
        Db::open_with(path, pool_size, Synchronous::Full)
    }

    /// [`Db::open`], with the writer committing as `synchronous` says.
    pub fn open_with(
        path: &Path,
        pool_size: u32,
        synchronous: Synchronous,
    ) -> Result<Db, OpenError> {
        let fail = |reason: String| OpenError {
            path: path.to_owned(),
            reason,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(fail(format!(
                    "directory {} does not exist",
                    parent.display()
                )));
            }
        }
        if path.is_dir() {
            return Err(fail("it is a directory, not a file".into()));
        }
        let existed = path.exists();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(|err| {
            if !existed && err.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen) {
                fail(
                    "the file cannot be created: its directory is read-only or not writable".into(),
                )
            } else {
                fail(describe(&err))
            }
        })?;
        prepare_schema(&mut conn).map_err(fail)?;
        configure_connection(&mut conn).map_err(|err| fail(describe(&err)))?;

        let manager = SqliteConnectionManager::file(path)
            .with_flags(flags)
            .with_init(configure_reader);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(|err| fail(err.to_string()))?;
        let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        // The connection that checked the file and prepared the schema stays as the writer.
        let writer = Writer::start(conn, path.clone(), synchronous).map_err(fail)?;
        Ok(Db {
            pool,
            writer: Arc::new(writer),
            path,
        })
    }

    /// The database file's absolute path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Folds the write-ahead log back into the database file and truncates it; called at shutdown,
    /// once no request is running. Like every change it goes through the writer, after the writes
    /// still queued. Blocks until done: call it outside the async executor.
    pub fn checkpoint(&self) -> rusqlite::Result<()> {
        self.writer.checkpoint()
    }

    /// Runs `query` with a pooled connection on the blocking thread pool: the way handlers read.
    /// Anything that changes the database goes through [`Db::write`] instead.
    pub async fn run<T, F>(&self, query: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get()?;
            query(&mut conn)
        })
        .await
        .map_err(|err| {
            log::error!("blocking task failed: {err}");
            ApiError::Internal
        })?
    }

    /// Runs `query` with a pooled connection on the calling thread: for reads done on a thread
    /// of their own rather than for a request (handlers use [`Db::run`]).
    pub fn run_here<T>(
        &self,
        query: impl FnOnce(&mut Connection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut conn = self.pool.get()?;
        query(&mut conn)
    }

    /// Runs `change` on the writer connection: the one way handlers change the database.
    ///
    /// Changes queue, in the order they arrived, in front of the writer thread, which makes those
    /// queued together in one transaction, each in a savepoint of its own, and commits them with
    /// one fsync ([`crate::db::writer`]). This returns once the change is committed (with
    /// `synchronous = FULL`, on disk) — or with its own error, its savepoint rolled back, or with
    /// the error of a commit that failed (a full disk), nothing of its group stored. `change`
    /// must not begin, commit or roll back a transaction itself.
    ///
    /// At most [`crate::db::writer::MAX_QUEUED_WRITES`] changes may wait; past that the write is
    /// refused at once with 503 and `Retry-After`.
    pub async fn write<T, F>(&self, change: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        self.writer.write(change).await
    }

    /// Stores `metrics`, all or none, through the writer ([`crate::db::writer::Writer::store_metrics`]):
    /// the way handlers store metrics. Returns them once committed.
    pub async fn store_metrics(&self, metrics: Vec<Metric>) -> Result<Vec<Metric>, ApiError> {
        self.writer.store_metrics(metrics).await
    }
}

/// A short, operator-facing reason for an SQLite failure at start-up.
fn describe(err: &rusqlite::Error) -> String {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => "the file is not an SQLite database".into(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => "the database file is corrupt".into(),
        Some(rusqlite::ErrorCode::CannotOpen) => "the file cannot be opened or created".into(),
        Some(rusqlite::ErrorCode::ReadOnly) => "the file or its directory is read-only".into(),
        Some(rusqlite::ErrorCode::PermissionDenied) => "permission denied".into(),
        _ => err.to_string(),
    }
}

/// Checks that the file is an SQLite database this binary may write: writable, readable where
/// it matters (header, schema and the first page of each table: a few pages, whatever the file's
/// size), holding no table of another application, and not newer than this binary. Only then,
/// in one transaction, migrates an older file ([`crate::db::migrate`]), applies `schema.sql` and sets
/// the version. Nothing is written to a file that is refused, nor to one a migration fails on.
fn prepare_schema(conn: &mut Connection) -> Result<(), String> {
    if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
        return Err(
            "the file or its directory is read-only; monitor-server must write to it".into(),
        );
    }
    let version = schema_version(conn)?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .map_err(|err| describe(&err))?;
    if let Some(foreign) = tables.iter().find(|t| !OWN_TABLES.contains(&t.as_str())) {
        return Err(format!(
            "it holds a table `{foreign}` that monitor-server did not create; \
             refusing to write into another application's database"
        ));
    }
    for table in &tables {
        // Reads the table's root and first leaf: a damaged table is found now, not by a request.
        conn.prepare(&format!("SELECT * FROM \"{table}\" LIMIT 1"))
            .and_then(|mut stmt| stmt.exists([]))
            .map_err(|err| describe(&err))?;
    }
    // Development builds of version 3 left the delete trigger, which schema.sql drops: such a
    // file is not done yet.
    let stale_trigger = conn
        .prepare(
            "SELECT 1 FROM sqlite_schema WHERE type = 'trigger' AND name = 'metrics_uncounted'",
        )
        .and_then(|mut stmt| stmt.exists([]))
        .map_err(|err| describe(&err))?;
    if version == SCHEMA_VERSION && tables.len() == OWN_TABLES.len() && !stale_trigger {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|err| describe(&err))?;
    // Another process may have upgraded the file between the read above and the lock.
    let version = schema_version(&tx)?;
    crate::db::migrate::upgrade(&tx, version)?;
    tx.execute_batch(SCHEMA).map_err(|err| describe(&err))?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(|err| describe(&err))?;
    tx.commit().map_err(|err| describe(&err))
}

/// The file's schema version; an error when it is newer than this binary's.
fn schema_version(conn: &Connection) -> Result<i64, String> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|err| describe(&err))?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "its schema version {version} is newer than this binary's ({SCHEMA_VERSION}); \
             use a newer monitor-server"
        ));
    }
    if version < 0 {
        return Err(format!(
            "its schema version {version} is not one monitor-server writes"
        ));
    }
    Ok(version)
}

/// The outcome of creating a record that may already exist.
#[derive(Debug, PartialEq)]
pub enum Created<T> {
    /// The record is new.
    New(T),
    /// An identical record was already stored; it is returned as stored.
    Existing(T),
}

impl<T> Created<T> {
    /// The stored record, whichever way it came to be.
    pub fn into_inner(self) -> T {
        match self {
            Created::New(record) | Created::Existing(record) => record,
        }
    }
}

/// Re-creating a record under a taken id with other content.
fn conflict(record: &str, id: &str) -> ApiError {
    ApiError::Conflict(format!(
        "A {record} with id {id} is already stored with different content."
    ))
}

// ---------------------------------------------------------------- metrics

const METRIC_COLUMNS: &str = "m.session_h, m.context_h, m.item_start_time, m.item_path, m.item, \
     m.item_variant, m.item_fs_loc, m.kind, m.component, m.total_time, m.user_time, \
     m.kernel_time, m.cpu_usage, m.mem_usage, m.start_us";

/// A row of [`METRIC_COLUMNS`] as listed, its text borrowed from SQLite's buffers.
fn metric_record<'r>(row: &'r Row<'_>) -> rusqlite::Result<MetricRecord<'r>> {
    let text = |i: usize| -> rusqlite::Result<&'r str> {
        row.get_ref(i)?.as_str().map_err(|err| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(err))
        })
    };
    Ok(MetricRecord {
        session_h: text(0)?,
        context_h: text(1)?,
        item_start_time: text(2)?,
        item_path: text(3)?,
        item: text(4)?,
        item_variant: text(5)?,
        item_fs_loc: text(6)?,
        kind: text(7)?,
        component: text(8)?,
        total_time: row.get(9)?,
        user_time: row.get(10)?,
        kernel_time: row.get(11)?,
        cpu_usage: row.get(12)?,
        mem_usage: row.get(13)?,
    })
}

fn metric_from_row(row: &Row<'_>) -> rusqlite::Result<Metric> {
    Ok(Metric {
        session_h: row.get(0)?,
        context_h: row.get(1)?,
        item_start_time: row.get(2)?,
        item_path: row.get(3)?,
        item: row.get(4)?,
        item_variant: row.get(5)?,
        item_fs_loc: row.get(6)?,
        kind: row.get(7)?,
        component: row.get(8)?,
        total_time: row.get(9)?,
        user_time: row.get(10)?,
        kernel_time: row.get(11)?,
        cpu_usage: row.get(12)?,
        mem_usage: row.get(13)?,
        start_us: row.get(14)?,
    })
}

/// The changes that stored and deleted metrics make to the rows kept beside them — the
/// `metrics` counter, the `metric_facets` counts and the `component_sessions` pairs of stored
/// metrics — added up in memory by [`insert_metrics`] (+1 a metric) and [`MetricEraser`] (−1)
/// and written by [`MetricTallies::apply`].
///
/// Adding up first is what makes a write cheap: the writer applies the tallies of a whole group
/// of requests once, before it commits, so ten metrics of one session, component and kind cost
/// one upsert per distinct value instead of eight per metric (what an insert trigger did), and a
/// session of 10,000 metrics deleted costs a few hundred updates instead of 40,000 (what the
/// delete trigger did). The pairs of `component_sessions` a delete may end are the eraser's to
/// check, since only a look at the metrics left can tell.
#[derive(Debug, Default)]
pub struct MetricTallies {
    /// Metrics stored minus metrics deleted.
    metrics: i64,
    /// For each facet field (the order of [`FACET_FIELDS`]), the change in metrics per value.
    facets: [HashMap<String, i64>; 6],
    /// Component → the sessions that stored metrics of it.
    component_sessions: HashMap<String, HashSet<String>>,
}

/// The `field` names of `metric_facets`, in the order of [`MetricTallies`]'s maps and of the
/// columns [`MetricEraser`] reads back from a deleted row.
const FACET_FIELDS: [&str; 6] = [
    "component",
    "item",
    "item_variant",
    "kind",
    "context_h",
    "session_h",
];

impl MetricTallies {
    /// Counts one stored metric.
    fn count(&mut self, m: &Metric) {
        self.add(
            [
                m.component.as_str(),
                &m.item,
                &m.item_variant,
                &m.kind,
                &m.context_h,
                &m.session_h,
            ],
            1,
        );
        match self.component_sessions.get_mut(m.component.as_str()) {
            Some(sessions) => {
                if !sessions.contains(m.session_h.as_str()) {
                    sessions.insert(m.session_h.clone());
                }
            }
            None => {
                let sessions = HashSet::from([m.session_h.clone()]);
                self.component_sessions
                    .insert(m.component.clone(), sessions);
            }
        }
    }

    /// Counts one deleted metric, given its values in the order of [`FACET_FIELDS`].
    fn uncount(&mut self, values: [&str; 6]) {
        self.add(values, -1);
    }

    /// Adds `delta` metrics to the counter and to the count of each of `values` (in the order of
    /// [`FACET_FIELDS`]): the one path by which stores and deletes change the counts.
    fn add(&mut self, values: [&str; 6], delta: i64) {
        self.metrics += delta;
        for (counts, value) in self.facets.iter_mut().zip(values) {
            // Looked up by `&str` first: most values repeat, and a hit allocates nothing.
            match counts.get_mut(value) {
                Some(n) => *n += delta,
                None => {
                    counts.insert(value.to_owned(), delta);
                }
            }
        }
    }

    /// True when nothing was counted since the last [`MetricTallies::apply`].
    pub fn is_empty(&self) -> bool {
        self.metrics == 0
            && self.facets.iter().all(HashMap::is_empty)
            && self.component_sessions.is_empty()
    }

    /// Writes what was counted into `counters`, `metric_facets` and `component_sessions`, in the
    /// transaction `conn` is in, and starts counting afresh. A value whose count falls to 0
    /// leaves `metric_facets`, as no metric carries it any more. Each statement changes a single
    /// row, so none needs a statement journal.
    pub fn apply(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        if self.metrics != 0 {
            conn.prepare_cached(
                "INSERT INTO counters (name, n) VALUES ('metrics', ?1) \
                 ON CONFLICT (name) DO UPDATE SET n = n + excluded.n",
            )?
            .execute([self.metrics])?;
        }
        let mut facet = conn.prepare_cached(
            "INSERT INTO metric_facets (field, value, n) VALUES (?1, ?2, ?3) \
             ON CONFLICT (field, value) DO UPDATE SET n = n + excluded.n",
        )?;
        let mut emptied = conn.prepare_cached(
            "DELETE FROM metric_facets WHERE field = ?1 AND value = ?2 AND n <= 0",
        )?;
        for (field, counts) in FACET_FIELDS.iter().zip(&self.facets) {
            for (value, &n) in counts {
                if n == 0 {
                    continue;
                }
                facet.execute(params![field, value, n])?;
                if n < 0 {
                    emptied.execute(params![field, value])?;
                }
            }
        }
        let mut pair = conn.prepare_cached(
            "INSERT OR IGNORE INTO component_sessions (component, session_h) VALUES (?1, ?2)",
        )?;
        for (component, sessions) in &self.component_sessions {
            for session_h in sessions {
                pair.execute(params![component, session_h])?;
            }
        }
        self.clear();
        Ok(())
    }

    /// Forgets what was counted (its metrics were rolled back).
    pub fn clear(&mut self) {
        self.metrics = 0;
        self.facets.iter_mut().for_each(HashMap::clear);
        self.component_sessions.clear();
    }
}

/// Stores metrics: the one way a metric reaches the `metrics` table. Each row is inserted (in the
/// transaction `conn` is in) and counted in `tallies`, which must then be applied in the same
/// transaction before it commits ([`MetricTallies::apply`]); the writer does so for its groups,
/// [`store_metrics`] at once.
///
/// Every statement is a single-row INSERT into a table without unique constraints or triggers,
/// so SQLite needs no statement journal for it: a failure (a full disk, an I/O error) rolls the
/// whole transaction back, never leaving part of a statement behind.
pub fn insert_metrics(
    conn: &Connection,
    tallies: &mut MetricTallies,
    metrics: &[Metric],
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO metrics (session_h, context_h, item_start_time, item_path, item, \
         item_variant, item_fs_loc, kind, component, total_time, user_time, kernel_time, \
         cpu_usage, mem_usage, start_us) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    for m in metrics {
        stmt.execute(params![
            m.session_h,
            m.context_h,
            m.item_start_time,
            m.item_path,
            m.item,
            m.item_variant,
            m.item_fs_loc,
            m.kind,
            m.component,
            m.total_time,
            m.user_time,
            m.kernel_time,
            m.cpu_usage,
            m.mem_usage,
            m.start_us
        ])?;
        tallies.count(m);
    }
    Ok(())
}

/// Stores metrics and their tallies at once, in the transaction `conn` is in: [`insert_metrics`]
/// for a caller that is not the writer's group (an import, a test).
pub fn store_metrics(conn: &Connection, metrics: &[Metric]) -> rusqlite::Result<()> {
    let mut tallies = MetricTallies::default();
    insert_metrics(conn, &mut tallies, metrics)?;
    tallies.apply(conn)
}

/// How many metrics are stored, read from the kept counter (no scan).
pub fn count_metrics(conn: &Connection) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT coalesce((SELECT n FROM counters WHERE name = 'metrics'), 0)")?
        .query_row([], |row| row.get(0))
}

/// How many metrics a selection covers: from the kept counts when the selection is
/// everything, or one condition they answer (a component, item, variant, kind, context or
/// session; a set of sessions; an item or variant pattern), else by counting.
pub fn count_metrics_by(conn: &Connection, query: &MetricQuery) -> rusqlite::Result<u64> {
    conn.prepare_cached(&query.count_sql())?
        .query_row(params_from_iter(query.params()), |row| row.get(0))
}

/// A window of a selection, in its order.
pub fn list_metrics_by(
    conn: &Connection,
    query: &MetricQuery,
    offset: u64,
    limit: u64,
) -> rusqlite::Result<Vec<Metric>> {
    let count = count_metrics_by(conn, query)?;
    list_metrics_page(conn, query, offset, limit, count)
}

/// A window of a selection that holds `count` metrics (as [`count_metrics_by`] answered in the
/// same transaction), in its order.
pub fn list_metrics_page(
    conn: &Connection,
    query: &MetricQuery,
    offset: u64,
    limit: u64,
    count: u64,
) -> rusqlite::Result<Vec<Metric>> {
    let mut metrics = Vec::new();
    read_metrics_page(conn, query, offset, limit, count, &mut metrics)?;
    Ok(metrics)
}

/// Hands the metrics of a window of a selection that holds `count` metrics to `sink`, in the
/// selection's order.
///
/// SQLite keeps no statistics of this store, so it cannot tell a condition that keeps a few
/// hundred metrics from one that keeps most of them; how the window is read is chosen here,
/// from `count` and the number of metrics stored, so that no page reads the whole selection
/// when it need not:
/// - every metric in the order stored is a range of ids, found from the positions with the
///   deleted ids of `metric_holes` ([`ids_at_positions`]) and read by seeking (`by_id_range`);
/// - a window in the second half is read from the other end, in the exact reverse order
///   (every sort key flipped; ties are broken by id), then turned around, so the last page
///   costs what the first does;
/// - a sorted selection holding a large share of the store is read by walking the sort
///   column's index and testing each metric (`walk_sort_index`);
/// - otherwise the window's ids are found first, from the indexes alone where they suffice,
///   and then only its rows are read (`by_ids`).
fn read_metrics_page(
    conn: &Connection,
    query: &MetricQuery,
    offset: u64,
    limit: u64,
    count: u64,
    sink: &mut impl MetricSink,
) -> rusqlite::Result<()> {
    let rows = limit.min(count.saturating_sub(offset));
    if rows == 0 {
        return Ok(());
    }
    sink.expect(rows);
    if query.is_everything_in_order() {
        if let Some((first, last)) = ids_at_positions(conn, count, offset, offset + rows - 1)? {
            return by_id_range(conn, first, last, sink);
        }
    }
    let after = count - offset - rows;
    let (reversed, skip) = if after < offset {
        (true, after)
    } else {
        (false, offset)
    };
    let window = Window {
        reversed,
        skip,
        rows,
        count,
        stored: count_metrics(conn)?,
    };
    if !walk_sort_index(conn, query, &window, sink)? {
        by_ids(conn, query, &window, sink)?;
    }
    if reversed {
        sink.reverse();
    }
    Ok(())
}

/// Takes the metrics of a page as SQLite yields them, one row of [`METRIC_COLUMNS`] at a time.
trait MetricSink {
    /// Learns how many rows are coming, to make room for them at once.
    fn expect(&mut self, rows: u64);
    /// Takes the next row.
    fn push(&mut self, row: &Row<'_>) -> rusqlite::Result<()>;
    /// How many rows it took.
    fn len(&self) -> usize;
    /// Forgets every row taken (a walk that did not find its whole window).
    fn clear(&mut self);
    /// Turns the rows taken around (a window read from the other end).
    fn reverse(&mut self);
}

impl MetricSink for Vec<Metric> {
    fn expect(&mut self, rows: u64) {
        self.reserve(usize::try_from(rows).unwrap_or(0));
    }
    fn push(&mut self, row: &Row<'_>) -> rusqlite::Result<()> {
        Vec::push(self, metric_from_row(row)?);
        Ok(())
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn clear(&mut self) {
        Vec::clear(self);
    }
    fn reverse(&mut self) {
        self.as_mut_slice().reverse();
    }
}

/// A page of metrics written as a JSON array, each row serialised from SQLite's own buffers as
/// it is read: a page costs no `String` per field, no [`Metric`] and no `serde_json::Value`.
/// The output is what serialising the page's [`Metric`]s gives, byte for byte.
struct JsonRows<'a> {
    out: &'a mut Vec<u8>,
    /// Where the array's `[` is in `out`.
    open: usize,
    /// Where each row's object starts in `out`.
    starts: Vec<usize>,
    /// How many rows are coming ([`MetricSink::expect`]).
    expected: usize,
}

impl<'a> JsonRows<'a> {
    /// Opens the array at the end of `out`.
    fn new(out: &'a mut Vec<u8>) -> Self {
        let open = out.len();
        out.push(b'[');
        JsonRows {
            out,
            open,
            starts: Vec::new(),
            expected: 0,
        }
    }

    /// Closes the array.
    fn finish(self) {
        self.out.push(b']');
    }
}

impl MetricSink for JsonRows<'_> {
    fn expect(&mut self, rows: u64) {
        self.expected = usize::try_from(rows).unwrap_or(0);
        self.starts.reserve(self.expected);
    }
    fn push(&mut self, row: &Row<'_>) -> rusqlite::Result<()> {
        if !self.starts.is_empty() {
            self.out.push(b',');
        }
        let start = self.out.len();
        self.starts.push(start);
        metric_record(row)?
            .write_json(self.out)
            // Cannot happen: finite numbers (SQLite stores no NaN) written to memory.
            .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))?;
        if self.starts.len() == 1 {
            // Room for the rest of the page, guessed from its first row, so that the buffer
            // is not copied over and over as it grows.
            let guess = (self.out.len() - start + 1) * 9 / 8;
            self.out.reserve(guess * self.expected.saturating_sub(1));
        }
        Ok(())
    }
    fn len(&self) -> usize {
        self.starts.len()
    }
    fn clear(&mut self) {
        self.out.truncate(self.open + 1);
        self.starts.clear();
    }
    fn reverse(&mut self) {
        let Some(&first) = self.starts.first() else {
            return;
        };
        let mut reversed = Vec::with_capacity(self.out.len() - first);
        let mut starts = Vec::with_capacity(self.starts.len());
        let mut end = self.out.len();
        for &start in self.starts.iter().rev() {
            if !starts.is_empty() {
                reversed.push(b',');
            }
            starts.push(first + reversed.len());
            reversed.extend_from_slice(&self.out[start..end]);
            // The previous row's object ends before the comma that precedes this one's (every
            // object follows the `[` or a comma, so `start` is at least 1).
            end = start - 1;
        }
        self.out.truncate(first);
        self.out.extend_from_slice(&reversed);
        self.starts = starts;
    }
}

/// The ids of the metrics at positions `first` and `last` (from 0) of the order stored, when
/// `metric_holes` accounts for every deleted id: then the metric at position `p` has id
/// `p + 1` plus the ids deleted before it, which the last run of deleted ids with at most `p`
/// stored metrics before it gives — one index lookup, however deep the page and however many
/// metrics were deleted.
///
/// `None` when the `count` metrics stored do not fill the ids up to the largest one but for the
/// recorded runs — metrics deleted by another program, such as `sqlite3`, bypassing
/// [`record_deleted_metrics`]: the caller then reads the window the slow, sure way.
fn ids_at_positions(
    conn: &Connection,
    count: u64,
    first: u64,
    last: u64,
) -> rusqlite::Result<Option<(i64, i64)>> {
    let (max_id, deleted): (i64, i64) = conn
        .prepare_cached(
            "SELECT coalesce((SELECT max(id) FROM metrics), 0), \
             coalesce((SELECT deleted_through FROM metric_holes ORDER BY first_id DESC LIMIT 1), 0)",
        )?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    if u64::try_from(max_id - deleted).ok() != Some(count) {
        return Ok(None);
    }
    let mut deleted_before = conn.prepare_cached(
        "SELECT coalesce((SELECT deleted_through FROM metric_holes WHERE live_before <= ?1 \
         ORDER BY live_before DESC LIMIT 1), 0)",
    )?;
    let mut id_at = |position: u64| -> rusqlite::Result<i64> {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        let skipped: i64 = deleted_before.query_row([position], |row| row.get(0))?;
        Ok(position + 1 + skipped)
    };
    Ok(Some((id_at(first)?, id_at(last)?)))
}

/// The metrics with ids from `first` to `last`, in the order stored, read by seeking, so a deep
/// page costs what the first does.
///
/// The range is given by both ends rather than with `LIMIT ?`: SQLite plans with the value
/// bound to a LIMIT, so a statement with one is prepared anew every time a value is bound.
fn by_id_range(
    conn: &Connection,
    first: i64,
    last: i64,
    sink: &mut impl MetricSink,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {METRIC_COLUMNS} FROM metrics m WHERE m.id >= ?1 AND m.id <= ?2 ORDER BY m.id"
    ))?;
    let mut found = stmt.query(params![first, last])?;
    while let Some(row) = found.next()? {
        sink.push(row)?;
    }
    Ok(())
}

/// Where a page lies in a selection, as [`read_metrics_page`] reads it.
struct Window {
    /// Read in the reverse order.
    reversed: bool,
    /// Rows to skip, in the order read.
    skip: u64,
    /// Rows to read (all of them exist).
    rows: u64,
    /// The selection's size.
    count: u64,
    /// How many metrics are stored.
    stored: u64,
}

/// The least number of index entries [`walk_sort_index`] is allowed to walk.
const MIN_WALK: u64 = 1_000;

/// Reads a window of a filtered, sorted selection by walking the sort column's index in the
/// order read and testing each metric, when the selection holds so large a share of the store
/// that this finds the window quickly: the first `skip + rows` matches come after about
/// `(skip + rows) * stored / count` entries when the matches are spread evenly along the column.
///
/// They may not be (a component whose tests all use much memory sits at one end of the memory
/// index), so the walk is bounded to 4 times that many entries, and to half the selection's
/// size, which sorting the selection would read anyway. `false` (and nothing left in `sink`)
/// when the walk is not worth it, or did not find the whole window within its bound: the caller
/// then sorts the selection, having spent at most half of what that costs. The rows found within
/// the bound are exactly the window: the bounded walk yields a prefix of the order, so its
/// matches are a prefix of the selection's.
fn walk_sort_index(
    conn: &Connection,
    query: &MetricQuery,
    w: &Window,
    sink: &mut impl MetricSink,
) -> rusqlite::Result<bool> {
    let Some((column, _)) = query.sort() else {
        return Ok(false);
    };
    if query.is_unfiltered() {
        // SQLite walks the index by itself, with nothing to test.
        return Ok(false);
    }
    let expected = u128::from(w.skip + w.rows) * u128::from(w.stored) / u128::from(w.count);
    let bound = (expected * 4).max(u128::from(MIN_WALK));
    if bound * 2 > u128::from(w.count) {
        return Ok(false);
    }
    let order = query.order_by(w.reversed, true);
    let sql = format!(
        "SELECT {METRIC_COLUMNS} FROM \
         (SELECT * FROM metrics m INDEXED BY {}{order} LIMIT ?) m{}{order} LIMIT ? OFFSET ?",
        column.index(),
        query.where_sql()
    );
    let mut values = vec![SqlValue::Integer(bound as i64)];
    values.extend(query.params().iter().cloned());
    let values = with_window(values, w.skip, w.rows);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut found = stmt.query(params_from_iter(values))?;
    while let Some(row) = found.next()? {
        sink.push(row)?;
    }
    if sink.len() as u64 == w.rows {
        return Ok(true);
    }
    sink.clear();
    Ok(false)
}

/// Reads a window by finding its ids first (`id IN (SELECT id ... LIMIT ? OFFSET ?)`): the
/// rows skipped and sorted are then index entries, not whole metrics, and only the window's
/// metrics are read from the table.
///
/// When only ranges of numeric columns narrow the selection and they keep a small share of the
/// store, the order is written so that SQLite cannot follow it through an index or the table:
/// not knowing how few metrics a range keeps, it would walk every metric in order and test
/// each, rather than read the range and sort it.
fn by_ids(
    conn: &Connection,
    query: &MetricQuery,
    w: &Window,
    sink: &mut impl MetricSink,
) -> rusqlite::Result<()> {
    let order = query.order_by(w.reversed, true);
    let small_range = query.ranges_only() && w.count.saturating_mul(4) <= w.stored;
    let inner_order = if small_range {
        query.order_by(w.reversed, false)
    } else {
        order.clone()
    };
    let sql = format!(
        "SELECT {METRIC_COLUMNS} FROM metrics m WHERE m.id IN \
         (SELECT m.id FROM metrics m{}{inner_order} LIMIT ? OFFSET ?){order}",
        query.where_sql()
    );
    let values = with_window(query.params().to_vec(), w.skip, w.rows);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut found = stmt.query(params_from_iter(values))?;
    while let Some(row) = found.next()? {
        sink.push(row)?;
    }
    Ok(())
}

/// Metrics in the order stored, `limit` of them after skipping `offset`; a seek by id, so a deep
/// page costs what the first does.
pub fn list_metrics(conn: &Connection, offset: u64, limit: u64) -> rusqlite::Result<Vec<Metric>> {
    let count = count_metrics(conn)?;
    list_metrics_page(conn, &MetricQuery::all(), offset, limit, count)
}

// ---------------------------------------------------------------- deleting

/// What a delete removed, as `DELETE /sessions/<h>` and `monitor-server prune` report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Removed {
    /// Sessions deleted (with their tags).
    pub sessions: u64,
    /// Metrics deleted.
    pub metrics: u64,
}

/// Deletes the session stored as exactly `session_h`, its tags, and every metric naming it
/// (also when no such session is stored: a metric may name a session the server never saw).
/// Every kept count follows ([`MetricEraser`]), and the deleted ids are recorded for paging
/// ([`record_deleted_metrics`]). Meant to run through [`Db::write`], so that all of it is one
/// transaction.
pub fn delete_session(conn: &Connection, session_h: &str) -> rusqlite::Result<Removed> {
    let doomed: Vec<i64> = conn
        .prepare_cached("SELECT id FROM metrics WHERE session_h = ?1 ORDER BY id")?
        .query_map([session_h], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut eraser = MetricEraser::new(conn);
    for &id in &doomed {
        eraser.erase(id)?;
    }
    let metrics = eraser.finish()?;
    // Explicitly rather than by the foreign key's cascade, which needs `foreign_keys = ON` on
    // whichever connection deletes.
    conn.prepare_cached(
        "DELETE FROM session_tags WHERE session_id IN \
         (SELECT id FROM sessions WHERE session_h = ?1)",
    )?
    .execute([session_h])?;
    let sessions = conn
        .prepare_cached("DELETE FROM sessions WHERE session_h = ?1")?
        .execute([session_h])?;
    Ok(Removed {
        sessions: sessions as u64,
        metrics,
    })
}

/// Deletes metrics one by one and keeps every table beside them exact, at
/// [`MetricEraser::finish`], which must be called in the same transaction: the `metrics` counter
/// and `metric_facets` (through [`MetricTallies`], as stores are counted), `component_sessions`,
/// and `metric_holes`. Every delete of metrics goes through it: no trigger counts deletes, so a
/// metric deleted any other way stays counted.
///
/// Each delete reads back the row's facet values (`RETURNING`, from the page the delete reads
/// anyway) and counts them in memory; the counts are written once, one update per distinct
/// value. The `metrics_uncounted` trigger this replaces made a counter update and an UPDATE and
/// a DELETE over six facet rows for every metric. A (component, session) pair of
/// `component_sessions` goes at the end if the session has no metric of the component left: a
/// walk of the session's metrics, which meets one soon when there is one.
pub struct MetricEraser<'c> {
    conn: &'c Connection,
    /// The counts of the metrics deleted, negative.
    tallies: MetricTallies,
    /// The (component, session) pairs of the metrics deleted.
    touched: BTreeSet<(String, String)>,
    /// The ids deleted.
    deleted: Vec<i64>,
}

impl<'c> MetricEraser<'c> {
    /// Starts deleting on `conn`, inside a transaction.
    pub fn new(conn: &'c Connection) -> Self {
        MetricEraser {
            conn,
            tallies: MetricTallies::default(),
            touched: BTreeSet::new(),
            deleted: Vec::new(),
        }
    }

    /// Deletes the metric `id`; `false` when there is no such id.
    pub fn erase(&mut self, id: i64) -> rusqlite::Result<bool> {
        let row: Option<[String; 6]> = self
            .conn
            .prepare_cached(
                "DELETE FROM metrics WHERE id = ?1 \
                 RETURNING component, item, item_variant, kind, context_h, session_h",
            )?
            .query_row([id], |row| {
                Ok([
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ])
            })
            .optional()?;
        let Some(values) = row else {
            return Ok(false);
        };
        self.tallies.uncount(values.each_ref().map(String::as_str));
        let [component, _, _, _, _, session_h] = values;
        self.touched.insert((component, session_h));
        self.deleted.push(id);
        Ok(true)
    }

    /// Writes the counts of the metrics deleted, takes out the `component_sessions` pairs whose
    /// session has no metric of the component left, records the deleted ids for paging
    /// ([`record_deleted_metrics`]), and returns how many metrics were deleted.
    pub fn finish(mut self) -> rusqlite::Result<u64> {
        self.tallies.apply(self.conn)?;
        let mut ended = self.conn.prepare_cached(
            "DELETE FROM component_sessions WHERE component = ?1 AND session_h = ?2 \
             AND NOT EXISTS (SELECT 1 FROM metrics INDEXED BY metrics_by_session \
                             WHERE session_h = ?2 AND component = ?1)",
        )?;
        for (component, session_h) in &self.touched {
            ended.execute([component, session_h])?;
        }
        self.deleted.sort_unstable();
        record_deleted_metrics(self.conn, &self.deleted)?;
        Ok(self.deleted.len() as u64)
    }
}

/// Records in `metric_holes`, in the transaction that deleted them, that the metrics with ids
/// `deleted` (ascending, each one deleted) are gone, so that paging in the order stored stays a
/// lookup ([`ids_at_positions`]). Every delete of metrics must call it ([`MetricEraser`] does).
///
/// The new ids are merged with the runs they touch or follow into maximal runs, and the counts
/// of every run from the first one changed on are written anew: deletes of the oldest metrics
/// (a prune) keep one run at the start, deletes of whole sessions a few runs. Ids above the
/// largest one left are not recorded: SQLite gives them to the next metrics stored.
pub fn record_deleted_metrics(conn: &Connection, deleted: &[i64]) -> rusqlite::Result<()> {
    let Some(&lowest) = deleted.first() else {
        return Ok(());
    };
    let max_id: i64 = conn
        .prepare_cached("SELECT coalesce(max(id), 0) FROM metrics")?
        .query_row([], |row| row.get(0))?;
    // The run just before the lowest new id: it is kept as it is unless the new ids extend it.
    let previous: Option<(i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT first_id, last_id, deleted_through FROM metric_holes WHERE first_id < ?1 \
             ORDER BY first_id DESC LIMIT 1",
        )?
        .query_row([lowest], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?;
    let (from, mut deleted_through) = match previous {
        Some((first, last, through)) if last + 1 >= lowest => (first, through - (last - first + 1)),
        Some((_, _, through)) => (lowest, through),
        None => (lowest, 0),
    };
    let mut runs: Vec<(i64, i64)> = conn
        .prepare_cached("SELECT first_id, last_id FROM metric_holes WHERE first_id >= ?1")?
        .query_map([from], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    conn.prepare_cached("DELETE FROM metric_holes WHERE first_id >= ?1")?
        .execute([from])?;
    runs.extend(deleted.iter().map(|&id| (id, id)));
    runs.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (first, last) in runs {
        match merged.last_mut() {
            Some(run) if first <= run.1 + 1 => run.1 = run.1.max(last),
            _ => merged.push((first, last)),
        }
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO metric_holes (first_id, last_id, live_before, deleted_through) \
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (first, last) in merged.into_iter().filter(|(first, _)| *first < max_id) {
        let live_before = first - 1 - deleted_through;
        deleted_through += last - first + 1;
        insert.execute(params![first, last, live_before, deleted_through])?;
    }
    Ok(())
}

// ---------------------------------------------------------------- lists of names

/// A query that yields one text column (components, pipelines, builds, session hashes), paged
/// like any listing.
#[derive(Debug, Clone)]
pub struct NameQuery {
    sql: &'static str,
    params: Vec<SqlValue>,
}

impl NameQuery {
    fn new(sql: &'static str, params: Vec<String>) -> Self {
        NameQuery {
            sql,
            params: params.into_iter().map(SqlValue::Text).collect(),
        }
    }

    /// Components (never the empty one), alphabetically; with a prefix, those starting with it.
    pub fn components(prefix: Option<&str>) -> Self {
        match prefix {
            None => Self::new(
                "SELECT value FROM metric_facets WHERE field = 'component' AND value != '' \
                 ORDER BY value",
                vec![],
            ),
            Some(prefix) => Self::new(
                "SELECT value FROM metric_facets WHERE field = 'component' AND value != '' \
                 AND value LIKE ? ESCAPE '\\' ORDER BY value",
                vec![format!("{}%", like_escape(prefix))],
            ),
        }
    }

    /// Pipelines (`pipeline_branch` tags), alphabetically.
    pub fn pipelines() -> Self {
        Self::new(
            "SELECT DISTINCT value FROM session_tags WHERE name = 'pipeline_branch' \
             AND value != '' ORDER BY value",
            vec![],
        )
    }

    /// Builds (`pipeline_build_no` tags) of a pipeline, numbers in numeric order.
    pub fn builds(pipeline: &str) -> Self {
        Self::new(
            "SELECT DISTINCT b.value FROM session_tags p \
             JOIN session_tags b ON b.session_id = p.session_id AND b.name = 'pipeline_build_no' \
             WHERE p.name = 'pipeline_branch' AND p.value = ? AND b.value != '' \
             ORDER BY length(b.value), b.value",
            vec![pipeline.to_owned()],
        )
    }

    /// Hashes of the sessions of one build of a pipeline, in the order stored.
    pub fn build_sessions(pipeline: &str, build: &str) -> Self {
        Self::new(
            "SELECT s.session_h FROM sessions s \
             JOIN session_tags p ON p.session_id = s.id AND p.name = 'pipeline_branch' \
             JOIN session_tags b ON b.session_id = s.id AND b.name = 'pipeline_build_no' \
             WHERE p.value = ? AND b.value = ? ORDER BY s.id",
            vec![pipeline.to_owned(), build.to_owned()],
        )
    }

    /// Pipelines whose sessions reported metrics of `component`.
    pub fn component_pipelines(component: &str) -> Self {
        Self::new(
            "SELECT DISTINCT p.value FROM component_sessions cs \
             JOIN sessions s ON s.session_h = cs.session_h \
             JOIN session_tags p ON p.session_id = s.id AND p.name = 'pipeline_branch' \
             WHERE cs.component = ? AND p.value != '' ORDER BY p.value",
            vec![component.to_owned()],
        )
    }

    /// Builds of `pipeline` whose sessions reported metrics of `component`.
    pub fn component_builds(component: &str, pipeline: &str) -> Self {
        Self::new(
            "SELECT DISTINCT b.value FROM component_sessions cs \
             JOIN sessions s ON s.session_h = cs.session_h \
             JOIN session_tags p ON p.session_id = s.id AND p.name = 'pipeline_branch' \
             JOIN session_tags b ON b.session_id = s.id AND b.name = 'pipeline_build_no' \
             WHERE cs.component = ? AND p.value = ? AND b.value != '' \
             ORDER BY length(b.value), b.value",
            vec![component.to_owned(), pipeline.to_owned()],
        )
    }

    /// Sessions of one build of `pipeline` that reported metrics of `component`.
    pub fn component_build_sessions(component: &str, pipeline: &str, build: &str) -> Self {
        Self::new(
            "SELECT s.session_h FROM component_sessions cs \
             JOIN sessions s ON s.session_h = cs.session_h \
             JOIN session_tags p ON p.session_id = s.id AND p.name = 'pipeline_branch' \
             JOIN session_tags b ON b.session_id = s.id AND b.name = 'pipeline_build_no' \
             WHERE cs.component = ? AND p.value = ? AND b.value = ? ORDER BY s.id",
            vec![component.to_owned(), pipeline.to_owned(), build.to_owned()],
        )
    }
}

/// How many names a [`NameQuery`] yields.
pub fn count_names(conn: &Connection, query: &NameQuery) -> rusqlite::Result<u64> {
    let sql = format!("SELECT count(*) FROM ({})", query.sql);
    conn.prepare_cached(&sql)?
        .query_row(params_from_iter(&query.params), |row| row.get(0))
}

/// A window of the names a [`NameQuery`] yields.
pub fn list_names(
    conn: &Connection,
    query: &NameQuery,
    offset: u64,
    limit: u64,
) -> rusqlite::Result<Vec<String>> {
    let sql = format!("{} LIMIT ? OFFSET ?", query.sql);
    let values = with_window(query.params.clone(), offset, limit);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(values), |row| row.get(0))?;
    rows.collect()
}

// ---------------------------------------------------------------- contexts

const CONTEXT_COLUMNS: &str = "h, cpu_count, cpu_frequency, cpu_type, cpu_vendor, ram_total, \
     machine_node, machine_type, machine_arch, system_info, python_info";

fn context_from_row(row: &Row<'_>) -> rusqlite::Result<Context> {
    Ok(Context {
        h: row.get(0)?,
        cpu_count: row.get(1)?,
        cpu_frequency: row.get(2)?,
        cpu_type: row.get(3)?,
        cpu_vendor: row.get(4)?,
        ram_total: row.get(5)?,
        machine_node: row.get(6)?,
        machine_type: row.get(7)?,
        machine_arch: row.get(8)?,
        system_info: row.get(9)?,
        python_info: row.get(10)?,
    })
}

/// Stores a context, or finds the identical one already stored (pytest-xdist workers race to
/// create the same context); a different one under the same hash is a conflict.
pub fn insert_context(conn: &Connection, c: &Context) -> Result<Created<Context>, ApiError> {
    let inserted = conn
        .prepare_cached(&format!(
            "INSERT INTO contexts ({CONTEXT_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (h) DO NOTHING"
        ))?
        .execute(params![
            c.h,
            c.cpu_count,
            c.cpu_frequency,
            c.cpu_type,
            c.cpu_vendor,
            c.ram_total,
            c.machine_node,
            c.machine_type,
            c.machine_arch,
            c.system_info,
            c.python_info
        ])?;
    let outcome = if inserted == 1 {
        Created::New(c.clone())
    } else {
        let stored = conn
            .prepare_cached(&format!(
                "SELECT {CONTEXT_COLUMNS} FROM contexts WHERE h = ?1"
            ))?
            .query_row([&c.h], context_from_row)?;
        if stored != *c {
            return Err(conflict("context", &c.h));
        }
        Created::Existing(stored)
    };
    Ok(outcome)
}

/// How many contexts are stored.
pub fn count_contexts(conn: &Connection) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT count(*) FROM contexts")?
        .query_row([], |row| row.get(0))
}

/// How many contexts have a hash starting with `prefix` (all of them for an empty prefix).
pub fn count_contexts_by_prefix(conn: &Connection, prefix: &str) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT count(*) FROM contexts WHERE h LIKE ?1 ESCAPE '\\'")?
        .query_row([prefix_pattern(prefix)], |row| row.get(0))
}

/// Contexts whose hash starts with `prefix`, in the order they were stored.
pub fn list_contexts_by_prefix(
    conn: &Connection,
    prefix: &str,
    offset: u64,
    limit: u64,
) -> rusqlite::Result<Vec<Context>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CONTEXT_COLUMNS} FROM contexts WHERE h LIKE ?1 ESCAPE '\\' \
         ORDER BY id LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt.query_map(
        params![prefix_pattern(prefix), limit, offset],
        context_from_row,
    )?;
    rows.collect()
}

/// The LIKE pattern for "starts with `prefix`", wildcards in `prefix` matching themselves.
fn prefix_pattern(prefix: &str) -> String {
    format!("{}%", like_escape(prefix))
}

// ---------------------------------------------------------------- sessions

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    let description: String = row.get(3)?;
    let description: Map<String, Value> = serde_json::from_str(&description).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(err))
    })?;
    Ok(Session {
        session_h: row.get(0)?,
        run_date: row.get(1)?,
        scm_ref: row.get(2)?,
        description,
    })
}

/// Stores a session with its tags, or finds the identical one already stored; a different one
/// under the same hash is a conflict.
///
/// Meant to run through [`Db::write`], whose savepoint keeps the session and its tags together:
/// an error after the session row (a full disk) rolls both back.
pub fn insert_session(conn: &Connection, s: &Session) -> Result<Created<Session>, ApiError> {
    let description = Value::Object(s.description.clone()).to_string();
    let inserted = conn
        .prepare_cached(
            "INSERT INTO sessions (session_h, run_date, scm_ref, description) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (session_h) DO NOTHING",
        )?
        .execute(params![s.session_h, s.run_date, s.scm_ref, description])?;
    let outcome = if inserted == 1 {
        let id = conn.last_insert_rowid();
        let mut tag = conn.prepare_cached(
            "INSERT INTO session_tags (session_id, name, value) VALUES (?1, ?2, ?3)",
        )?;
        for (name, value) in &s.description {
            tag.execute(params![id, name, tag_value(value)])?;
        }
        Created::New(s.clone())
    } else {
        let stored = find_session(conn, &s.session_h)?
            .ok_or_else(|| rusqlite::Error::QueryReturnedNoRows)?;
        if stored != *s {
            return Err(conflict("session", &s.session_h));
        }
        Created::Existing(stored)
    };
    Ok(outcome)
}

/// The session stored under exactly `session_h`.
pub fn find_session(conn: &Connection, session_h: &str) -> rusqlite::Result<Option<Session>> {
    conn.prepare_cached(
        "SELECT session_h, run_date, scm_ref, description FROM sessions WHERE session_h = ?1",
    )?
    .query_row([session_h], session_from_row)
    .optional()
}

/// How many sessions are stored.
pub fn count_sessions(conn: &Connection) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT count(*) FROM sessions")?
        .query_row([], |row| row.get(0))
}

/// A selection of sessions: by hash prefix, SCM reference prefix and tags.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    clauses: Vec<String>,
    params: Vec<SqlValue>,
}

/// One tag condition of a session query: the tag is set to `value`, or to anything non-empty.
#[derive(Debug, Clone, PartialEq)]
pub struct TagCondition {
    /// The tag's name.
    pub name: String,
    /// The value it must have; `None` for any non-empty value.
    pub value: Option<String>,
}

impl SessionQuery {
    /// Every session, in the order stored.
    pub fn all() -> Self {
        Self::default()
    }

    /// Sessions whose hash starts with `prefix`.
    pub fn hash_prefix(mut self, prefix: &str) -> Self {
        self.clauses.push("s.session_h LIKE ? ESCAPE '\\'".into());
        self.params.push(SqlValue::Text(prefix_pattern(prefix)));
        self
    }

    /// Sessions whose SCM reference starts with `prefix`.
    pub fn scm_prefix(mut self, prefix: &str) -> Self {
        self.clauses.push("s.scm_ref LIKE ? ESCAPE '\\'".into());
        self.params.push(SqlValue::Text(prefix_pattern(prefix)));
        self
    }

    /// Sessions meeting any (or, with `all`, every) one of `conditions`.
    pub fn tags(mut self, conditions: &[TagCondition], all: bool) -> Self {
        if conditions.is_empty() {
            return self;
        }
        let mut parts = Vec::new();
        for condition in conditions {
            self.params.push(SqlValue::Text(condition.name.clone()));
            match &condition.value {
                Some(value) => {
                    parts.push(
                        "EXISTS (SELECT 1 FROM session_tags t WHERE t.session_id = s.id \
                         AND t.name = ? AND t.value = ?)",
                    );
                    self.params.push(SqlValue::Text(value.clone()));
                }
                None => parts.push(
                    "EXISTS (SELECT 1 FROM session_tags t WHERE t.session_id = s.id \
                     AND t.name = ? AND t.value != '')",
                ),
            }
        }
        let joiner = if all { " AND " } else { " OR " };
        self.clauses.push(format!("({})", parts.join(joiner)));
        self
    }

    fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// How many sessions a selection covers.
pub fn count_sessions_by(conn: &Connection, query: &SessionQuery) -> rusqlite::Result<u64> {
    let sql = format!("SELECT count(*) FROM sessions s{}", query.where_sql());
    conn.prepare_cached(&sql)?
        .query_row(params_from_iter(&query.params), |row| row.get(0))
}

/// A window of a session selection, in the order stored.
pub fn list_sessions_by(
    conn: &Connection,
    query: &SessionQuery,
    offset: u64,
    limit: u64,
) -> rusqlite::Result<Vec<Session>> {
    let sql = format!(
        "SELECT s.session_h, s.run_date, s.scm_ref, s.description FROM sessions s{} \
         ORDER BY s.id LIMIT ? OFFSET ?",
        query.where_sql()
    );
    let values = with_window(query.params.clone(), offset, limit);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(values), session_from_row)?;
    rows.collect()
}

// ---------------------------------------------------------------- selections

/// Something a listing can page through: it knows its size and can fetch a window of itself.
pub trait Selection: Send + 'static {
    /// One listed record.
    type Row: serde::Serialize + Send + 'static;
    /// How many records the selection covers.
    fn count(&self, conn: &Connection) -> rusqlite::Result<u64>;
    /// `limit` records after skipping `offset`, in the selection's order.
    fn rows(&self, conn: &Connection, offset: u64, limit: u64) -> rusqlite::Result<Vec<Self::Row>>;
    /// The same window of a selection that [`Selection::count`] found to hold `count` records in
    /// the same transaction, which may let it be read faster.
    fn page(
        &self,
        conn: &Connection,
        offset: u64,
        limit: u64,
        count: u64,
    ) -> rusqlite::Result<Vec<Self::Row>> {
        let _ = count;
        self.rows(conn, offset, limit)
    }
    /// The window [`Selection::page`] reads, written to `out` as a JSON array.
    fn write_page(
        &self,
        conn: &Connection,
        offset: u64,
        limit: u64,
        count: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), ApiError> {
        let rows = self.page(conn, offset, limit, count)?;
        serde_json::to_writer(out, &rows).map_err(|err| {
            log::error!("cannot serialise a page: {err}");
            ApiError::Internal
        })
    }
}

impl Selection for MetricQuery {
    type Row = Metric;
    fn count(&self, conn: &Connection) -> rusqlite::Result<u64> {
        count_metrics_by(conn, self)
    }
    fn rows(&self, conn: &Connection, offset: u64, limit: u64) -> rusqlite::Result<Vec<Metric>> {
        list_metrics_by(conn, self, offset, limit)
    }
    fn page(
        &self,
        conn: &Connection,
        offset: u64,
        limit: u64,
        count: u64,
    ) -> rusqlite::Result<Vec<Metric>> {
        list_metrics_page(conn, self, offset, limit, count)
    }
    fn write_page(
        &self,
        conn: &Connection,
        offset: u64,
        limit: u64,
        count: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), ApiError> {
        let mut rows = JsonRows::new(out);
        read_metrics_page(conn, self, offset, limit, count, &mut rows)?;
        rows.finish();
        Ok(())
    }
}

impl Selection for SessionQuery {
    type Row = Session;
    fn count(&self, conn: &Connection) -> rusqlite::Result<u64> {
        count_sessions_by(conn, self)
    }
    fn rows(&self, conn: &Connection, offset: u64, limit: u64) -> rusqlite::Result<Vec<Session>> {
        list_sessions_by(conn, self, offset, limit)
    }
}

impl Selection for NameQuery {
    type Row = String;
    fn count(&self, conn: &Connection) -> rusqlite::Result<u64> {
        count_names(conn, self)
    }
    fn rows(&self, conn: &Connection, offset: u64, limit: u64) -> rusqlite::Result<Vec<String>> {
        list_names(conn, self, offset, limit)
    }
}

/// The contexts whose hash starts with a prefix (every context for an empty one).
#[derive(Debug, Clone)]
pub struct ContextPrefix(pub String);

impl Selection for ContextPrefix {
    type Row = Context;
    fn count(&self, conn: &Connection) -> rusqlite::Result<u64> {
        count_contexts_by_prefix(conn, &self.0)
    }
    fn rows(&self, conn: &Connection, offset: u64, limit: u64) -> rusqlite::Result<Vec<Context>> {
        list_contexts_by_prefix(conn, &self.0, offset, limit)
    }
}

/// `values` followed by LIMIT and OFFSET, as SQLite's signed integers.
fn with_window(mut values: Vec<SqlValue>, offset: u64, limit: u64) -> Vec<SqlValue> {
    values.push(SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    values.push(SqlValue::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_temp() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("m.db"), 2).unwrap();
        (dir, db)
    }

    #[test]
    fn opening_twice_keeps_the_schema_version() {
        let (dir, db) = open_temp();
        drop(db);
        let db = Db::open(&dir.path().join("m.db"), 2).unwrap();
        let conn = db.pool.get().unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    fn metric(session_h: &str, kind: &str, component: &str) -> Metric {
        Metric {
            session_h: session_h.into(),
            context_h: "ctx".into(),
            item_start_time: "2024-01-01T00:00:00".into(),
            start_us: 1_704_067_200_000_000,
            item_path: "tests.test_a".into(),
            item: "test_a".into(),
            item_variant: "test_a".into(),
            item_fs_loc: "tests/test_a.py".into(),
            kind: kind.into(),
            component: component.into(),
            total_time: 1.0,
            user_time: 0.5,
            kernel_time: 0.1,
            cpu_usage: 0.6,
            mem_usage: 2.0,
        }
    }

    fn facets(conn: &Connection) -> Vec<(String, String, i64)> {
        conn.prepare("SELECT field, value, n FROM metric_facets ORDER BY field, value")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// The page `query` selects at `offset`, read the plain way: SQLite sorting the whole
    /// selection and skipping `offset` rows.
    fn page_by_offset(conn: &Connection, query: &MetricQuery, offset: u64) -> Vec<Metric> {
        let sql = format!(
            "SELECT {METRIC_COLUMNS} FROM metrics m{}{} LIMIT 7 OFFSET {offset}",
            query.where_sql(),
            query.order_sql()
        );
        let mut stmt = conn.prepare(&sql).unwrap();
        let rows = stmt.query_map(params_from_iter(query.params()), metric_from_row);
        rows.unwrap().collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn every_way_of_reading_a_page_gives_the_page_and_writes_it_as_serde_json_would() {
        use crate::db::query::{Direction, NumericColumn, TextColumn};

        // Arrange: 3,000 metrics, the 2,000 of kind `function` holding the largest memory, so
        // that walking the memory index from its small end finds none of them for a while.
        let (_dir, db) = open_temp();
        let mut conn = db.pool.get().unwrap();
        let tx = conn.transaction().unwrap();
        for n in 0..3_000 {
            let kind = if n >= 1_000 { "function" } else { "class" };
            let mut m = metric(&format!("s{}", n % 7), kind, &format!("c{}", n % 5));
            m.mem_usage = f64::from(n);
            m.total_time = f64::from((n * 7_919) % 3_001) / 3.0;
            m.item = format!("test \"{n}\"\n");
            store_metrics(&tx, &[m]).unwrap();
        }
        tx.commit().unwrap();
        let queries = [
            MetricQuery::all(),
            MetricQuery::all().eq(TextColumn::Kind, "function"),
            MetricQuery::all().sorted(NumericColumn::TotalTime, Direction::Desc),
            MetricQuery::all()
                .eq(TextColumn::Kind, "function")
                .sorted(NumericColumn::MemUsage, Direction::Asc),
            MetricQuery::all()
                .eq(TextColumn::Kind, "function")
                .sorted(NumericColumn::MemUsage, Direction::Desc),
        ];

        for deleted in [false, true] {
            if deleted {
                // Deleted behind `metric_holes`' back: the plain listing cannot find its page by
                // id any more and must fall back to skipping rows.
                erase_where(&mut conn, "id IN (2, 1500)");
                conn.execute("DELETE FROM metric_holes", []).unwrap();
            }
            for query in &queries {
                let count = count_metrics_by(&conn, query).unwrap();
                for offset in [0, 1, 100, count / 2, count - 100, count - 7] {
                    // Act
                    let metrics = list_metrics_page(&conn, query, offset, 7, count).unwrap();
                    let mut json = Vec::new();
                    query
                        .write_page(&conn, offset, 7, count, &mut json)
                        .unwrap();

                    // Assert
                    let expected = page_by_offset(&conn, query, offset);
                    assert_eq!(metrics, expected, "{query:?} at {offset}");
                    assert_eq!(
                        String::from_utf8(json).unwrap(),
                        serde_json::to_string(&expected).unwrap(),
                        "{query:?} at {offset}"
                    );
                }
            }
        }
    }

    /// The page of the order stored read by OFFSET, the slow, sure way.
    fn ids_by_offset(conn: &Connection) -> Vec<i64> {
        conn.prepare("SELECT id FROM metrics ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// Deletes the metrics `condition` selects the one way the server does, in one transaction.
    fn erase_where(conn: &mut Connection, condition: &str) {
        let tx = conn.transaction().unwrap();
        let ids: Vec<i64> = tx
            .prepare(&format!(
                "SELECT id FROM metrics WHERE {condition} ORDER BY id"
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut eraser = MetricEraser::new(&tx);
        for id in ids {
            assert!(eraser.erase(id).unwrap());
        }
        eraser.finish().unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn after_any_deletes_and_inserts_every_position_is_found_by_lookup_and_is_right() {
        // Arrange: 400 metrics in 9 sessions, interleaved as pytest-xdist's workers post them.
        let (_dir, db) = open_temp();
        let mut conn = db.pool.get().unwrap();
        let insert = |conn: &Connection, n: u32| {
            for i in 0..n {
                store_metrics(conn, &[metric(&format!("s{}", i % 9), "function", "c")]).unwrap();
            }
        };
        insert(&conn, 400);
        let deletes = [
            "session_h = 's3'",                       // every 9th metric
            "id <= 20",                               // the oldest: a prefix
            "id BETWEEN 100 AND 130",                 // a run joining some of s3's holes
            "session_h = 's4'",                       // next to s3's: runs merge
            "id > (SELECT max(id) - 5 FROM metrics)", // the newest: ids to be reused
            "id % 7 = 0",
            "session_h IN ('s0', 's1', 's2')",
            "id > 0", // everything
        ];
        for (round, sql) in deletes.iter().enumerate() {
            // Act
            erase_where(&mut conn, sql);
            if round % 2 == 0 {
                insert(&conn, 25);
            }

            // Assert: every window of the order stored is found by id and is the right one.
            let expected = ids_by_offset(&conn);
            let count = count_metrics(&conn).unwrap();
            assert_eq!(count, expected.len() as u64, "after {sql}");
            for first in 0..count {
                for last in [first, (first + 6).min(count - 1)] {
                    let found = ids_at_positions(&conn, count, first, last).unwrap();
                    assert_eq!(
                        found,
                        Some((expected[first as usize], expected[last as usize])),
                        "after {sql}, positions {first}..={last}"
                    );
                }
            }
            let pages = list_metrics(&conn, 0, u64::MAX).unwrap();
            assert_eq!(pages.len(), expected.len(), "after {sql}");
        }
        // Only the runs of ids below the largest one left are kept: here, none at all.
        let holes: i64 = conn
            .query_row("SELECT count(*) FROM metric_holes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(holes, 0);
    }

    #[test]
    fn metrics_deleted_behind_the_servers_back_are_paged_the_slow_sure_way() {
        let (_dir, db) = open_temp();
        let mut conn = db.pool.get().unwrap();
        for n in 0..50 {
            store_metrics(&conn, &[metric(&format!("s{n}"), "function", "c")]).unwrap();
        }
        erase_where(&mut conn, "id IN (3, 30)");
        conn.execute("DELETE FROM metric_holes", []).unwrap();

        assert_eq!(ids_at_positions(&conn, 48, 0, 9).unwrap(), None);
        let page = list_metrics(&conn, 2, 2).unwrap();
        let sessions: Vec<&str> = page.iter().map(|m| m.session_h.as_str()).collect();
        assert_eq!(sessions, ["s3", "s4"]);
    }

    #[test]
    fn a_version_1_file_is_migrated_with_its_metrics_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let expected = {
            let db = Db::open(&path, 1).unwrap();
            let conn = db.pool.get().unwrap();
            for m in [
                metric("s1", "function", "core"),
                metric("s1", "class", ""),
                metric("s2", "function", "core"),
            ] {
                store_metrics(&conn, &[m]).unwrap();
            }
            let expected = facets(&conn);
            // What version 1 left: no kind, context or session facets, the old index, its
            // version number.
            conn.execute_batch(
                "DELETE FROM metric_facets WHERE field IN ('kind', 'context_h', 'session_h');
                 DROP INDEX metrics_by_component;
                 CREATE INDEX metrics_by_component_item ON metrics (component, item);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
            expected
        };
        let db = Db::open(&path, 1).unwrap();
        let conn = db.pool.get().unwrap();
        assert_eq!(facets(&conn), expected);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'metrics'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(indexes.contains(&"metrics_by_component".to_owned()));
        assert!(!indexes.contains(&"metrics_by_component_item".to_owned()));
        // What comes next is counted too.
        store_metrics(&conn, &[metric("s2", "module", "io")]).unwrap();
        let kinds = MetricQuery::all().eq(crate::db::query::TextColumn::Kind, "function");
        assert_eq!(count_metrics_by(&conn, &kinds).unwrap(), 2);
        let session = MetricQuery::all().eq(crate::db::query::TextColumn::SessionH, "s2");
        assert_eq!(count_metrics_by(&conn, &session).unwrap(), 2);
    }

    #[test]
    fn deleting_metrics_keeps_every_facet_count() {
        let (_dir, db) = open_temp();
        let conn = db.pool.get().unwrap();
        store_metrics(&conn, &[metric("s1", "function", "core")]).unwrap();
        let one = facets(&conn);
        store_metrics(&conn, &[metric("s2", "class", "io")]).unwrap();
        store_metrics(&conn, &[metric("s2", "class", "core")]).unwrap();
        delete_session(&conn, "s2").unwrap();
        assert_eq!(facets(&conn), one);
        assert_eq!(count_metrics(&conn).unwrap(), 1);
    }

    #[test]
    fn a_version_3_file_still_counting_deletes_by_trigger_loses_the_trigger_and_counts_once() {
        // Arrange: a file of a development build of version 3, which kept the delete trigger.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        {
            let db = Db::open(&path, 1).unwrap();
            let conn = db.pool.get().unwrap();
            store_metrics(&conn, &[metric("s1", "function", "core")]).unwrap();
            store_metrics(&conn, &[metric("s2", "class", "io")]).unwrap();
            conn.execute_batch(
                "CREATE TRIGGER metrics_uncounted AFTER DELETE ON metrics BEGIN
                     UPDATE counters SET n = n - 1 WHERE name = 'metrics';
                 END;",
            )
            .unwrap();
        }

        // Act
        let db = Db::open(&path, 1).unwrap();
        let conn = db.pool.get().unwrap();
        delete_session(&conn, "s2").unwrap();

        // Assert
        let triggers: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(triggers, 0);
        assert_eq!(count_metrics(&conn).unwrap(), 1);
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        let text = "these are not the pages you are looking for\n".repeat(200);
        std::fs::write(&path, &text).unwrap();
        let err = Db::open(&path, 1).err().expect("must refuse");
        assert!(err.to_string().contains("not an SQLite database"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = Db::open(&path, 1).err().expect("must refuse");
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn prefix_search_treats_like_wildcards_as_text() {
        let (_dir, db) = open_temp();
        let conn = db.pool.get().unwrap();
        conn.execute_batch(
            "INSERT INTO contexts (h, cpu_count, cpu_frequency, cpu_type, ram_total, machine_node, \
             machine_type, machine_arch, system_info, python_info) VALUES \
             ('ab%x', 1, 1, '', 1, '', '', '', '', ''), ('abcd', 1, 1, '', 1, '', '', '', '', '')",
        )
        .unwrap();
        assert_eq!(count_contexts_by_prefix(&conn, "ab%").unwrap(), 1);
        assert_eq!(count_contexts_by_prefix(&conn, "ab").unwrap(), 2);
        assert_eq!(count_contexts_by_prefix(&conn, "ab_").unwrap(), 0);
    }
}
