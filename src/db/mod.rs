//! The SQLite store: [`Db`], the connections to one database file, and the queries, a file per
//! concern.
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
//!
//! | file | its job |
//! |---|---|
//! | `connection.rs` | opening the file, every connection's pragmas, the pool, [`BUSY_TIMEOUT`] |
//! | `schema.rs`, `migrate.rs` | `schema.sql`, its version, the start-up checks, the migrations |
//! | `insert.rs` | storing metrics and the counts kept beside them ([`MetricTallies`]) |
//! | `metrics.rs`, `planner.rs`, `sink.rs` | reading metrics: counts, the page planner, rows |
//! | `erase.rs` | deleting metrics and sessions ([`MetricEraser`]) and the runs of deleted ids |
//! | `contexts.rs`, `sessions.rs`, `names.rs` | the other records and the lists of names |
//! | `selection.rs`, `sql.rs` | [`Selection`], what a listing pages through; shared SQL pieces |
//! | `query.rs` | a metric selection ([`query::MetricQuery`]) and its query-string filters |
//! | `writer/` | the writer thread and its group commits |

mod connection;
mod contexts;
mod created;
mod erase;
pub mod health;
mod ids;
mod insert;
mod metrics;
pub mod migrate;
mod names;
mod page_names;
mod planner;
pub mod query;
mod schema;
mod selection;
mod sessions;
mod sink;
mod sql;
pub mod writer;

#[cfg(test)]
mod test_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::web;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use crate::error::ApiError;
use crate::models::Metric;

pub(crate) use connection::configure_connection;
pub use connection::{OpenError, BUSY_TIMEOUT};
pub use contexts::{
    count_contexts, count_contexts_by_prefix, insert_context, list_contexts_by_prefix,
};
pub use created::Created;
pub use erase::{delete_session, record_deleted_metrics, MetricEraser, Removed};
pub use insert::{insert_metrics, store_metrics, MetricTallies};
pub use metrics::{count_metrics, count_metrics_by};
pub use names::{count_names, list_names, NameQuery};
pub use planner::{list_metrics, list_metrics_by, list_metrics_page};
pub use schema::{SCHEMA, SCHEMA_VERSION};
pub use selection::{ContextPrefix, Selection};
pub use sessions::{
    count_sessions, count_sessions_by, find_session, insert_session, list_sessions_by,
    SessionQuery, TagCondition,
};
use writer::Writer;
pub use writer::{Checkpointed, Durability, Synchronous, DEFAULT_WAL_AUTOCHECKPOINT};

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

impl Db {
    /// Opens (creating if needed) the database at `path`, checks that it is ours and not newer
    /// than this binary, brings its schema up to date, and builds a pool of `pool_size` connections.
    /// Commits are fsynced ([`Synchronous::Full`]).
    pub fn open(path: &Path, pool_size: u32) -> Result<Db, OpenError> {
        Db::open_with(path, pool_size, Synchronous::Full)
    }

    /// [`Db::open`], with the writer committing and checkpointing as `durability` says (a bare
    /// [`Synchronous`] keeps SQLite's default checkpoints).
    pub fn open_with(
        path: &Path,
        pool_size: u32,
        durability: impl Into<Durability>,
    ) -> Result<Db, OpenError> {
        let fail = |reason: String| OpenError::new(path, reason);
        let mut conn = connection::open_file(path).map_err(fail)?;
        schema::prepare_schema(&mut conn).map_err(fail)?;
        configure_connection(&mut conn).map_err(|err| fail(connection::describe(&err)))?;
        let pool = connection::reader_pool(path, pool_size).map_err(fail)?;
        let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        // The connection that checked the file and prepared the schema stays as the writer.
        let writer = Writer::start(conn, path.clone(), durability.into()).map_err(fail)?;
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

    /// What the writer reports to `/metrics`: its queue, commits and metrics stored.
    pub fn writer_stats(&self) -> &crate::telemetry::WriterStats {
        self.writer.stats()
    }

    /// Folds the write-ahead log back into the database file and truncates it; called at shutdown,
    /// once no request is running. Like every change it goes through the writer, after the writes
    /// still queued. Blocks until done: call it outside the async executor.
    ///
    /// A checkpoint that another connection kept from finishing (Litestream holds a read
    /// transaction on the file it replicates) is logged as a warning with its numbers: nothing
    /// is lost, but the WAL stays beside the database file.
    pub fn checkpoint(&self) -> rusqlite::Result<Checkpointed> {
        let outcome = self.writer.checkpoint()?;
        if outcome.complete() {
            log::debug!(
                "checkpointed {} WAL frames into {}",
                outcome.checkpointed_frames,
                self.path.display()
            );
        } else if outcome.checkpointed_frames < outcome.log_frames {
            log::warn!(
                "the checkpoint of {} was {}: {} of {} WAL frames folded back into the database \
                 file; the others stay in the WAL, intact, for a later checkpoint",
                self.path.display(),
                if outcome.busy { "busy" } else { "partial" },
                outcome.checkpointed_frames,
                outcome.log_frames
            );
        } else {
            log::warn!(
                "the checkpoint of {} was busy: all {} WAL frames folded back into the database \
                 file, but the WAL was not truncated: another connection (such as Litestream's) \
                 was reading it",
                self.path.display(),
                outcome.log_frames
            );
        }
        Ok(outcome)
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

    /// Stores the metrics of a newline-delimited JSON body, all or none, through the writer
    /// ([`crate::db::writer::Writer::store_batch`]); returns how many once committed.
    pub async fn store_batch(&self, body: Vec<u8>) -> Result<usize, ApiError> {
        self.writer.store_batch(body).await
    }
}
