//! The one connection that changes the database, on a thread of its own, committing the writes
//! that arrive together in one transaction (group commit).
//!
//! With `synchronous = FULL` a commit waits for the disk, and that wait, not the insert, is what
//! a write costs; one commit per request capped the server at a few hundred writes a second.
//! Here a handler hands its change to [`Writer::write`], which queues it for the writer thread
//! and waits for the answer without holding any thread. The writer takes every change queued by
//! the time it is free (at most [`MAX_BATCH`]), makes each inside its own savepoint of a single
//! `BEGIN IMMEDIATE` transaction, commits once — one fsync for the whole group — and only then
//! answers each client. So a 201 still means "on disk", and:
//! - a change that fails (a 409 conflict, a constraint) is rolled back to its savepoint alone and
//!   answered its error, while the others of its group are committed;
//! - metrics are stored by a job of their own ([`Writer::store_metrics`]) without a savepoint,
//!   which they do not need ([`insert_metrics`] either stores all of them or fails the whole
//!   transaction) and which would cost more than the insert: a savepoint copies every page its
//!   change touches first, and a metric touches a dozen index pages. What they change in the
//!   counts is added up over the group ([`MetricTallies`]) and written once, before the commit
//!   — or before the next change that may read the counts;
//! - a batch of metrics ([`Writer::store_batch`]) is a group of its own, in its own transaction:
//!   a line at fault found once part of it is inserted rolls back that transaction, which holds
//!   no one else's write;
//! - a commit that fails (the disk is full: 507) fails every change of the group, none of which is
//!   stored; the writer rolls back and goes on with the next group.
//!
//! Clients under load send their next write as soon as the last one is answered, so right after
//! a commit the writer waits a moment ([`COMMIT_DELAY`]) for them, until as many writes are
//! queued as the group it just answered held: the next commit then carries them too, instead of
//! a group of the few that happened to be queued already, followed by another. A lone client is
//! not delayed: its write alone is as many as its last group held.
//!
//! Only this thread writes, so writes never contend for SQLite's write lock and a busy database
//! never reaches a client, and no SQLite call runs on the async executor. WAL mode lets the
//! readers of [`crate::db::Db::run`] go on meanwhile.
//!
//! [`insert_metrics`]: crate::db::insert_metrics
//! [`MetricTallies`]: crate::db::MetricTallies

mod group;
mod jobs;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::mpsc::{self, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::models::Metric;
use crate::telemetry::WriterStats;
use group::serve;
use jobs::{Job, Pending, StoreBatch, StoreMetrics};

/// How many changes may wait for the writer. One more is answered 503 with `Retry-After` at once
/// instead of being queued: that is a few groups of work, and an unbounded queue would only turn
/// overload into client timeouts and growing memory. (The group being written, at most
/// [`MAX_BATCH`] changes, has left the queue.)
pub const MAX_QUEUED_WRITES: usize = 1024;

/// The most changes committed together. Bigger groups save little once the fsync is shared by
/// hundreds, and the first client of a group waits for all of them.
pub const MAX_BATCH: usize = 512;

/// How long, at most, the writer waits after a commit for the clients it just answered to send
/// their next writes (see the module's documentation). Without it, 16 clients posting in a loop
/// split into two alternating groups of about 8, each waiting for the other's flush. Measured
/// with 16 keep-alive connections on a disk made to take 2 ms more per flush (an `fsync` shim):
/// 15.5 writes per commit instead of 8.3, and 5,000 writes a second instead of 3,000; 0.5 ms did
/// no better. Where a flush is quick (0.2 ms) it changes little either way.
pub const COMMIT_DELAY: Duration = Duration::from_micros(200);

/// When a commit counts as done, and so when a write is answered: SQLite's `synchronous` setting
/// for the writer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Synchronous {
    /// `synchronous = FULL`: every commit is fsynced before it is answered, so a 201 survives a
    /// power loss or an OS crash. A commit then costs the disk's flush latency (from a fraction of
    /// a millisecond to several, depending on the disk), shared by the writes of a group.
    #[default]
    Full,
    /// `synchronous = NORMAL`: a commit is written to the WAL and answered without waiting for the
    /// disk (only checkpoints fsync). A 201 still survives the server's crash or `kill -9`, but
    /// the last commits before a power loss or an OS crash may be lost.
    Normal,
}

impl Synchronous {
    /// The value of `PRAGMA synchronous`.
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// SQLite's own default for `wal_autocheckpoint`, in pages: past this many pages in the WAL, the
/// commit that grew it folds it back into the database file.
pub const DEFAULT_WAL_AUTOCHECKPOINT: u32 = 1000;

/// When the writer's commits count as done and when it folds the WAL back into the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    /// When a commit is answered.
    pub synchronous: Synchronous,
    /// The WAL's size, in pages, past which a commit checkpoints it (`PRAGMA wal_autocheckpoint`);
    /// 0 never does, leaving checkpoints to another process: Litestream, whose documentation asks
    /// this of applications under write load, checkpoints once it has copied the frames.
    pub wal_autocheckpoint: u32,
}

impl From<Synchronous> for Durability {
    /// `synchronous`, with SQLite's default checkpoints.
    fn from(synchronous: Synchronous) -> Durability {
        Durability {
            synchronous,
            wal_autocheckpoint: DEFAULT_WAL_AUTOCHECKPOINT,
        }
    }
}

/// What `PRAGMA wal_checkpoint(TRUNCATE)` answered: whether it had to give up on a reader or
/// writer it waited for, and how far it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpointed {
    /// Another connection (a reader that began before the last commit, such as Litestream's)
    /// kept the checkpoint from finishing, even after the busy timeout.
    pub busy: bool,
    /// Frames in the WAL when the checkpoint ran.
    pub log_frames: i64,
    /// How many of them reached the database file.
    pub checkpointed_frames: i64,
}

impl Checkpointed {
    /// Whether the WAL was folded back whole (and so truncated).
    pub fn complete(&self) -> bool {
        !self.busy && self.checkpointed_frames >= self.log_frames
    }
}

/// The writer thread and the queue in front of it. Dropping it closes the queue: the thread
/// writes what is still queued, closes its connection and ends, and the drop waits for that.
pub struct Writer {
    /// Where handlers queue their changes (bounded: `try_send` refuses rather than waits);
    /// `None` once closed.
    queue: Option<mpsc::SyncSender<Message>>,
    thread: Option<JoinHandle<()>>,
    /// What the writer reports to `/metrics`.
    stats: WriterStats,
}

/// What the writer thread is asked to do.
enum Message {
    /// Make a change and answer its client.
    Change(Box<dyn Job>),
    /// Fold the WAL back into the database file, once everything queued before is written.
    Checkpoint(oneshot::Sender<rusqlite::Result<Checkpointed>>),
}

impl Writer {
    /// Starts the writer thread on `conn`, the database at `path` (reopened if the connection
    /// ever gets stuck in a transaction), committing and checkpointing as `durability` says.
    pub fn start(
        conn: Connection,
        path: PathBuf,
        durability: Durability,
    ) -> Result<Writer, String> {
        set_up(&conn, durability)
            .map_err(|err| format!("cannot set up the writer connection: {err}"))?;
        let (queue, messages) = mpsc::sync_channel(MAX_QUEUED_WRITES);
        let stats = WriterStats::default();
        let reported = stats.clone();
        let thread = std::thread::Builder::new()
            .name("monitor-server-writer".into())
            .spawn(move || serve(conn, &path, durability, messages, &reported))
            .map_err(|err| format!("cannot start the writer thread: {err}"))?;
        Ok(Writer {
            queue: Some(queue),
            thread: Some(thread),
            stats,
        })
    }

    /// The queue depth, commit sizes and latencies the writer reports.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Runs `change` on the writer connection, inside the transaction of its group and a
    /// savepoint of its own, and returns its outcome once the group is committed. `change` must
    /// not begin, commit or roll back a transaction itself: an error it returns is what undoes it.
    ///
    /// Refused at once with 503 and `Retry-After` when [`MAX_QUEUED_WRITES`] changes are
    /// waiting already. If the client goes away meanwhile, the change is made all the same.
    pub async fn write<T, F>(&self, change: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Box::new(Pending {
            change: Some(change),
            outcome: None,
            reply,
        }))?;
        answered(answer).await
    }

    /// Stores `metrics` (all or none: one job, in the transaction of its group) and returns
    /// them once the group is committed; the one way the server stores metrics. Their counts
    /// are added to those of the other metrics of the group and written once
    /// ([`crate::db::insert_metrics`]).
    ///
    /// Refused at once with 503 and `Retry-After` when [`MAX_QUEUED_WRITES`] changes are
    /// waiting already.
    pub async fn store_metrics(&self, metrics: Vec<Metric>) -> Result<Vec<Metric>, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Box::new(StoreMetrics {
            metrics,
            stored: false,
            reply,
        }))?;
        answered(answer).await
    }

    /// Stores the metrics of a newline-delimited JSON `body`, one per line, all or none, and
    /// returns how many once they are committed; the first line at fault refuses them all
    /// ([`crate::models::metrics_from_ndjson`]). The batch is a transaction of its own, parsed
    /// and inserted a few thousand lines at a time, so that its records are never all in memory
    /// at once.
    ///
    /// Refused at once with 503 and `Retry-After` when [`MAX_QUEUED_WRITES`] changes are
    /// waiting already.
    pub async fn store_batch(&self, body: Vec<u8>) -> Result<usize, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Box::new(StoreBatch {
            body,
            stored: None,
            reply,
        }))?;
        answered(answer).await
    }

    /// Queues `job` for the writer thread, or refuses it when the queue is full or closed.
    fn enqueue(&self, job: Box<dyn Job>) -> Result<(), ApiError> {
        let queue = self.queue.as_ref().ok_or_else(stopped)?;
        // Counted before it is sent, so that the writer never takes it off the count first.
        self.stats.queued.inc();
        let sent = queue.try_send(Message::Change(job));
        if sent.is_err() {
            self.stats.queued.dec();
        }
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                log::warn!("{MAX_QUEUED_WRITES} writes are queued already; refusing one more");
                return Err(ApiError::Unavailable(
                    "Too many writes are waiting; retry shortly.".into(),
                ));
            }
            Err(TrySendError::Disconnected(_)) => return Err(stopped()),
        }
        Ok(())
    }

    /// Folds the write-ahead log back into the database file and truncates it, after every
    /// change queued before, and says how far it got. Blocks until done: call it outside the
    /// async executor (at shutdown).
    pub fn checkpoint(&self) -> rusqlite::Result<Checkpointed> {
        let failed = || {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISUSE),
                Some("the writer has stopped".into()),
            )
        };
        let (reply, answer) = oneshot::channel();
        let queue = self.queue.as_ref().ok_or_else(failed)?;
        queue
            .send(Message::Checkpoint(reply))
            .map_err(|_| failed())?;
        answer.blocking_recv().map_err(|_| failed())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has written what is queued.
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            // A change holding the last handle would be dropped on the writer thread itself.
            if thread.thread().id() != std::thread::current().id() && thread.join().is_err() {
                log::error!("the writer thread panicked");
            }
        }
    }
}

/// Sets up the writer connection, beyond what every connection gets
/// ([`crate::db::configure_connection`]):
/// - `synchronous` and `wal_autocheckpoint` as asked;
/// - `temp_store = MEMORY`: SQLite keeps the undo record of each write's savepoint (and of each
///   statement inside the transaction) in a sub-journal that otherwise spills to a temporary file
///   past 64 KiB — a file created, written and deleted for every group, which took more time than
///   the inserts themselves. In memory it holds the pages of one write at a time: it is emptied
///   whenever a savepoint is released.
fn set_up(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.pragma_update(None, "synchronous", durability.synchronous.pragma())?;
    conn.pragma_update(None, "wal_autocheckpoint", durability.wal_autocheckpoint)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
}

/// What the writer answered to a write.
async fn answered<T>(answer: oneshot::Receiver<Result<T, ApiError>>) -> Result<T, ApiError> {
    answer.await.map_err(|_| {
        log::error!("the writer dropped a write without answering it");
        ApiError::Internal
    })?
}

/// The answer to a write when the writer thread is gone (it never should be).
fn stopped() -> ApiError {
    log::error!("the writer thread has stopped; refusing a write");
    ApiError::Unavailable("The database cannot be written right now.".into())
}
