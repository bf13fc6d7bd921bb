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
//!   which they do not need ([`db::insert_metrics`] either stores all of them or fails the whole
//!   transaction) and which would cost more than the insert: a savepoint copies every page its
//!   change touches first, and a metric touches a dozen index pages. What they change in the
//!   counts is added up over the group ([`MetricTallies`]) and written once, before the commit
//!   — or before the next change that may read the counts;
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

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::db::{self, MetricTallies};
use crate::error::ApiError;
use crate::models::Metric;

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

/// How often, at most, the writer logs the size of its groups (at debug level).
const REPORT_EVERY: Duration = Duration::from_secs(10);

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

/// The writer thread and the queue in front of it. Dropping it closes the queue: the thread
/// writes what is still queued, closes its connection and ends, and the drop waits for that.
pub struct Writer {
    /// Where handlers queue their changes (bounded: `try_send` refuses rather than waits);
    /// `None` once closed.
    queue: Option<mpsc::SyncSender<Message>>,
    thread: Option<JoinHandle<()>>,
}

/// What the writer thread is asked to do.
enum Message {
    /// Make a change and answer its client.
    Change(Box<dyn Job>),
    /// Fold the WAL back into the database file, once everything queued before is written.
    Checkpoint(oneshot::Sender<rusqlite::Result<()>>),
}

impl Writer {
    /// Starts the writer thread on `conn`, the database at `path` (reopened if the connection
    /// ever gets stuck in a transaction), committing as `synchronous` says.
    pub fn start(
        conn: Connection,
        path: PathBuf,
        synchronous: Synchronous,
    ) -> Result<Writer, String> {
        set_up(&conn, synchronous)
            .map_err(|err| format!("cannot set up the writer connection: {err}"))?;
        let (queue, messages) = mpsc::sync_channel(MAX_QUEUED_WRITES);
        let thread = std::thread::Builder::new()
            .name("monitor-server-writer".into())
            .spawn(move || serve(conn, &path, synchronous, messages))
            .map_err(|err| format!("cannot start the writer thread: {err}"))?;
        Ok(Writer {
            queue: Some(queue),
            thread: Some(thread),
        })
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
    /// ([`db::insert_metrics`]).
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

    /// Queues `job` for the writer thread, or refuses it when the queue is full or closed.
    fn enqueue(&self, job: Box<dyn Job>) -> Result<(), ApiError> {
        let queue = self.queue.as_ref().ok_or_else(stopped)?;
        match queue.try_send(Message::Change(job)) {
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
    /// change queued before. Blocks until done: call it outside the async executor (at shutdown).
    pub fn checkpoint(&self) -> rusqlite::Result<()> {
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
/// - `synchronous` as asked;
/// - `temp_store = MEMORY`: SQLite keeps the undo record of each write's savepoint (and of each
///   statement inside the transaction) in a sub-journal that otherwise spills to a temporary file
///   past 64 KiB — a file created, written and deleted for every group, which took more time than
///   the inserts themselves. In memory it holds the pages of one write at a time: it is emptied
///   whenever a savepoint is released.
fn set_up(conn: &Connection, synchronous: Synchronous) -> rusqlite::Result<()> {
    conn.pragma_update(None, "synchronous", synchronous.pragma())?;
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

/// A change waiting for the writer, with the client waiting for its outcome.
trait Job: Send {
    /// Whether the job runs inside a savepoint of its own, which its failure rolls back. A job
    /// without one must either make its whole change or fail in a way that fails the group.
    fn guarded(&self) -> bool;
    /// Makes the change inside the group's transaction and keeps its outcome for the client; an
    /// error comes back (a copy) so that the writer rolls the change back. Metrics stored are
    /// counted in `tallies`, which the writer applies before committing.
    fn run(&mut self, conn: &Connection, tallies: &mut MetricTallies) -> Result<(), ApiError>;
    /// Answers the client once the group is over: the change's own outcome if the group was
    /// committed, else the error that stopped the group.
    fn answer(self: Box<Self>, group: Result<(), &ApiError>);
}

/// A [`Job`] made of a closure returning `T`.
struct Pending<T, F> {
    /// The change; taken when it runs.
    change: Option<F>,
    /// What it returned; `None` until it ran, and still `None` if it panicked.
    outcome: Option<Result<T, ApiError>>,
    reply: oneshot::Sender<Result<T, ApiError>>,
}

impl<T, F> Job for Pending<T, F>
where
    F: FnOnce(&Connection) -> Result<T, ApiError> + Send,
    T: Send,
{
    fn guarded(&self) -> bool {
        true
    }

    fn run(&mut self, conn: &Connection, _: &mut MetricTallies) -> Result<(), ApiError> {
        let outcome = match self.change.take() {
            Some(change) => change(conn),
            None => Err(ApiError::Internal),
        };
        let status = match &outcome {
            Ok(_) => Ok(()),
            Err(err) => Err(err.clone()),
        };
        self.outcome = Some(outcome);
        status
    }

    fn answer(self: Box<Self>, group: Result<(), &ApiError>) {
        let answer = match (group, self.outcome) {
            (Err(err), _) => Err(err.clone()),
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(ApiError::Internal),
        };
        // The client may have gone away; what it sent is stored all the same.
        let _ = self.reply.send(answer);
    }
}

/// A [`Job`] storing metrics: [`Writer::store_metrics`].
struct StoreMetrics {
    metrics: Vec<Metric>,
    /// Whether they were all inserted.
    stored: bool,
    reply: oneshot::Sender<Result<Vec<Metric>, ApiError>>,
}

impl Job for StoreMetrics {
    fn guarded(&self) -> bool {
        // db::insert_metrics stores every metric or fails the transaction.
        false
    }

    fn run(&mut self, conn: &Connection, tallies: &mut MetricTallies) -> Result<(), ApiError> {
        db::insert_metrics(conn, tallies, &self.metrics)?;
        self.stored = true;
        Ok(())
    }

    fn answer(self: Box<Self>, group: Result<(), &ApiError>) {
        let answer = match group {
            Err(err) => Err(err.clone()),
            Ok(()) if self.stored => Ok(self.metrics),
            Ok(()) => Err(ApiError::Internal),
        };
        let _ = self.reply.send(answer);
    }
}

/// The writer thread: waits for a change, takes whatever else is queued by then — waiting up to
/// [`COMMIT_DELAY`] for as many as the last group held — up to [`MAX_BATCH`], writes them as one
/// group, and again, until the queue is closed and empty.
fn serve(
    mut conn: Connection,
    path: &Path,
    synchronous: Synchronous,
    messages: mpsc::Receiver<Message>,
) {
    let mut tally = Tally::new();
    let mut tallies = MetricTallies::default();
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut last_group = 0;
    while let Ok(first) = messages.recv() {
        let deadline = Instant::now() + COMMIT_DELAY;
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Change(job) => group.push(job),
                Message::Checkpoint(reply) => {
                    // What was queued before the checkpoint is written before it.
                    write_group(
                        &mut conn,
                        path,
                        synchronous,
                        &mut group,
                        &mut tallies,
                        &mut tally,
                    );
                    let checkpoint =
                        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                    let _ = reply.send(checkpoint);
                }
            }
            next = if group.len() >= MAX_BATCH {
                None
            } else if group.len() < last_group {
                let left = deadline.saturating_duration_since(Instant::now());
                messages.recv_timeout(left).ok()
            } else {
                messages.try_recv().ok()
            };
        }
        last_group = group.len();
        write_group(
            &mut conn,
            path,
            synchronous,
            &mut group,
            &mut tallies,
            &mut tally,
        );
    }
    tally.report(true);
}

/// Writes `group` in one transaction and answers each of its clients; leaves `group` empty and
/// the connection outside any transaction.
fn write_group(
    conn: &mut Connection,
    path: &Path,
    synchronous: Synchronous,
    group: &mut Vec<Box<dyn Job>>,
    tallies: &mut MetricTallies,
    tally: &mut Tally,
) {
    if group.is_empty() {
        return;
    }
    let outcome = run_group(conn, group, tallies);
    if outcome.is_err() {
        leave_no_transaction_open(conn, path, synchronous);
    }
    tally.add(group.len());
    for job in group.drain(..) {
        job.answer(outcome.as_ref().map(|_| ()));
    }
}

/// Runs every job of `group` inside one `BEGIN IMMEDIATE` transaction — each guarded job in a
/// savepoint of its own that its failure rolls back — applies the counts of the metrics stored,
/// and commits. An error of the group, or of a job without a savepoint, stops the whole group:
/// nothing of it is committed.
fn run_group(
    conn: &Connection,
    group: &mut [Box<dyn Job>],
    tallies: &mut MetricTallies,
) -> Result<(), ApiError> {
    // Left over from a group that failed, whose metrics were rolled back.
    tallies.clear();
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    for job in group.iter_mut() {
        let guarded = job.guarded();
        if guarded {
            // A guarded change may read the counts (an import does): the metrics stored before
            // it in this group must be in them.
            tallies.apply(conn)?;
            conn.prepare_cached("SAVEPOINT job")?.execute([])?;
        }
        let outcome =
            catch_unwind(AssertUnwindSafe(|| job.run(conn, tallies))).unwrap_or_else(|_| {
                log::error!("a write panicked; it is rolled back and answered 500");
                Err(ApiError::Internal)
            });
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (as it may on a full disk or an I/O
            // error), undoing the changes made before this one too.
            return Err(outcome.err().unwrap_or(ApiError::Internal));
        }
        if !guarded {
            // Without a savepoint, what the job did cannot be undone alone.
            outcome?;
            continue;
        }
        if outcome.is_err() {
            conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
        }
        conn.prepare_cached("RELEASE job")?.execute([])?;
    }
    tallies.apply(conn)?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(())
}

/// Leaves the writer outside any transaction. A COMMIT that fails (the disk filled up) may leave
/// its transaction open, and every later BEGIN would then fail: rolling back here is what lets
/// writes succeed again once space is freed. If even the rollback fails, the connection is
/// replaced by a fresh one.
fn leave_no_transaction_open(conn: &mut Connection, path: &Path, synchronous: Synchronous) {
    if conn.is_autocommit() {
        return;
    }
    if let Err(err) = conn.execute_batch("ROLLBACK") {
        log::error!("cannot roll back a failed write: {err}");
    }
    if conn.is_autocommit() {
        return;
    }
    // No CREATE flag: if the file has vanished, a new empty database must not take its place.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    match Connection::open_with_flags(path, flags).and_then(|mut fresh| {
        crate::db::configure_connection(&mut fresh)?;
        set_up(&fresh, synchronous)?;
        Ok(fresh)
    }) {
        Ok(fresh) => {
            log::warn!("replaced the writer connection, which was stuck in a transaction");
            *conn = fresh;
        }
        Err(err) => log::error!("cannot reopen the writer connection: {err}"),
    }
}

/// How many groups the writer committed and how large they were, for the debug log: the
/// average group size tells whether commits are being shared.
struct Tally {
    since: Instant,
    groups: u64,
    writes: u64,
    largest: usize,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            since: Instant::now(),
            groups: 0,
            writes: 0,
            largest: 0,
        }
    }

    fn add(&mut self, size: usize) {
        self.groups += 1;
        self.writes += size as u64;
        self.largest = self.largest.max(size);
        self.report(false);
    }

    /// Logs the groups since the last report, every [`REPORT_EVERY`] (or now, with `now`).
    fn report(&mut self, now: bool) {
        let elapsed = self.since.elapsed();
        if self.groups == 0 || !(now || elapsed >= REPORT_EVERY) {
            return;
        }
        log::debug!(
            "writer: {} writes in {} commits over {:.1} s, {:.1} per commit on average, {} at most",
            self.writes,
            self.groups,
            elapsed.as_secs_f64(),
            self.writes as f64 / self.groups as f64,
            self.largest
        );
        *self = Tally::new();
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::mpsc as std_mpsc;
    use std::sync::Arc;

    use actix_web::ResponseError;

    use super::*;
    use crate::db::{self, Created, Db};
    use crate::models::{Context, Metric};

    /// A writer on a fresh database with the server's schema, in its own temporary directory.
    fn start_writer() -> (tempfile::TempDir, PathBuf, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        drop(Db::open(&path, 1).unwrap());
        let mut conn = Connection::open(&path).unwrap();
        db::configure_connection(&mut conn).unwrap();
        let writer = Writer::start(conn, path.clone(), Synchronous::Full).unwrap();
        (dir, path, writer)
    }

    fn context(h: &str, cpu_count: i64) -> Context {
        Context {
            h: h.into(),
            cpu_count,
            cpu_frequency: 2400.0,
            cpu_type: "x86_64".into(),
            cpu_vendor: String::new(),
            ram_total: 16384,
            machine_node: "ci-1".into(),
            machine_type: "x86_64".into(),
            machine_arch: "64bit".into(),
            system_info: "Linux".into(),
            python_info: "3.12".into(),
        }
    }

    /// How many contexts another connection sees committed.
    fn committed_contexts(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM contexts", [], |row| row.get(0))
            .unwrap()
    }

    type Write<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + 'a>>;

    /// Polls `write` once, which queues it; it must then be waiting for the writer.
    async fn queue<T>(write: &mut Write<'_, T>) {
        std::future::poll_fn(|cx| {
            assert!(write.as_mut().poll(cx).is_pending(), "a write did not wait");
            std::task::Poll::Ready(())
        })
        .await;
    }

    /// Occupies the writer with a write of its own until the returned sender is used (or
    /// dropped), so that the writes queued meanwhile are taken together as the next group.
    async fn hold(writer: &Writer) -> (Write<'_, ()>, std_mpsc::Sender<()>) {
        let (running, is_running) = std_mpsc::channel();
        let (release, released) = std_mpsc::channel::<()>();
        let mut held: Write<'_, ()> = Box::pin(writer.write(move |_| {
            running.send(()).unwrap();
            let _ = released.recv();
            Ok(())
        }));
        queue(&mut held).await;
        is_running
            .recv()
            .expect("the writer never ran the holding write");
        (held, release)
    }

    fn status(err: &ApiError) -> u16 {
        err.error_response().status().as_u16()
    }

    #[test]
    fn writes_queued_together_share_one_commit_and_a_conflicting_one_alone_gets_409() {
        let (_dir, path, writer) = start_writer();
        actix_web::rt::System::new().block_on(async {
            // Arrange: three writes queued while the writer is busy; the second one reuses the
            // first one's hash with other content.
            let (held, release) = hold(&writer).await;
            let mut first: Write<'_, _> =
                Box::pin(writer.write(|conn| db::insert_context(conn, &context("a", 1))));
            let mut clash: Write<'_, _> =
                Box::pin(writer.write(|conn| db::insert_context(conn, &context("a", 2))));
            let check_path = path.clone();
            let mut last: Write<'_, _> = Box::pin(writer.write(move |conn| {
                let stored = db::insert_context(conn, &context("b", 1))?;
                // Within the group's transaction the writer sees the first context, while
                // another connection sees nothing committed yet: one transaction, one commit.
                let seen: i64 =
                    conn.query_row("SELECT count(*) FROM contexts", [], |row| row.get(0))?;
                Ok((stored, seen, committed_contexts(&check_path)))
            }));
            for write in [&mut first, &mut clash] {
                queue(write).await;
            }
            queue(&mut last).await;

            // Act
            drop(release);
            held.await.unwrap();
            let (first, clash, last) = (first.await, clash.await, last.await);

            // Assert
            assert_eq!(first.unwrap(), Created::New(context("a", 1)));
            assert_eq!(status(&clash.unwrap_err()), 409);
            let (stored, seen, committed) = last.unwrap();
            assert_eq!(stored, Created::New(context("b", 1)));
            assert_eq!((seen, committed), (2, 0));
        });
        assert_eq!(committed_contexts(&path), 2);
    }

    #[test]
    fn a_commit_that_fails_fails_every_write_of_its_group_and_stores_none_of_them() {
        let (_dir, path, writer) = start_writer();
        actix_web::rt::System::new().block_on(async {
            // Arrange: a good write, then one that makes the COMMIT fail (a tag of a session that
            // does not exist, its foreign key checked only at COMMIT), queued as one group.
            let (held, release) = hold(&writer).await;
            let mut good: Write<'_, _> =
                Box::pin(writer.write(|conn| db::insert_context(conn, &context("good", 1))));
            let mut breaking: Write<'_, _> = Box::pin(writer.write(|conn| {
                conn.execute_batch(
                    "PRAGMA defer_foreign_keys = ON;
                     INSERT INTO session_tags (session_id, name, value) VALUES (999, 'n', 'v');",
                )?;
                Ok(())
            }));
            queue(&mut good).await;
            queue(&mut breaking).await;

            // Act
            drop(release);
            held.await.unwrap();
            let (good, breaking) = (good.await, breaking.await);

            // Assert: both answered the commit's error; then the writer takes writes again.
            assert_eq!(status(&good.unwrap_err()), 500);
            assert_eq!(status(&breaking.unwrap_err()), 500);
            writer
                .write(|conn| db::insert_context(conn, &context("after", 1)))
                .await
                .expect("the writer is stuck after a failed commit");
        });
        let conn = Connection::open(&path).unwrap();
        let hashes: Vec<String> = conn
            .prepare("SELECT h FROM contexts")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(hashes, ["after"]);
        let tags: i64 = conn
            .query_row("SELECT count(*) FROM session_tags", [], |row| row.get(0))
            .unwrap();
        assert_eq!(tags, 0);
    }

    fn metric(session_h: &str, item: &str, component: &str) -> Metric {
        Metric {
            session_h: session_h.into(),
            context_h: "ctx".into(),
            item_start_time: "2024-01-01T00:00:00".into(),
            start_us: 1_704_067_200_000_000,
            item_path: "tests.test_a".into(),
            item: item.into(),
            item_variant: format!("{item}[]"),
            item_fs_loc: "tests/test_a.py".into(),
            kind: "function".into(),
            component: component.into(),
            total_time: 1.0,
            user_time: 0.5,
            kernel_time: 0.1,
            cpu_usage: 0.6,
            mem_usage: 2.0,
        }
    }

    /// The kept counts as another connection sees them, and the same counts recomputed from the
    /// committed metrics: (what is kept, what it should be).
    fn kept_and_recomputed_counts(path: &Path) -> (Vec<String>, Vec<String>) {
        let conn = Connection::open(path).unwrap();
        let rows = |sql: &str| -> Vec<String> {
            conn.prepare(sql)
                .unwrap()
                .query_map([], |row| row.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let kept = rows(
            "SELECT 'metrics ' || n FROM counters WHERE name = 'metrics' \
             UNION ALL SELECT * FROM (SELECT field || ' ' || value || ' ' || n FROM metric_facets \
                                      ORDER BY field, value) \
             UNION ALL SELECT * FROM (SELECT 'pair ' || component || ' ' || session_h \
                                      FROM component_sessions ORDER BY 1)",
        );
        let mut facets = Vec::new();
        for field in [
            "component",
            "context_h",
            "item",
            "item_variant",
            "kind",
            "session_h",
        ] {
            facets.push(format!(
                "SELECT '{field}' AS f, {field} AS v, count(*) AS n FROM metrics GROUP BY {field}"
            ));
        }
        let recomputed = rows(&format!(
            "SELECT 'metrics ' || count(*) FROM metrics HAVING count(*) > 0 \
             UNION ALL SELECT * FROM (SELECT f || ' ' || v || ' ' || n FROM ({}) ORDER BY f, v) \
             UNION ALL SELECT * FROM (SELECT DISTINCT 'pair ' || component || ' ' || session_h \
                                      FROM metrics ORDER BY 1)",
            facets.join(" UNION ALL ")
        ));
        (kept, recomputed)
    }

    #[test]
    fn metrics_of_a_group_are_counted_once_before_the_commit_and_a_failed_change_leaves_no_count() {
        let (_dir, path, writer) = start_writer();
        actix_web::rt::System::new().block_on(async {
            // Arrange: queued together behind a held writer: metrics, a change that stores
            // metrics then fails, a change that reads the count, and more metrics.
            let (held, release) = hold(&writer).await;
            let mut first: Write<'_, _> = Box::pin(writer.store_metrics(vec![
                metric("s1", "test_a", "core"),
                metric("s1", "test_b", "core"),
                metric("s2", "test_a", ""),
            ]));
            let mut failing: Write<'_, ()> = Box::pin(writer.write(|conn| {
                db::store_metrics(conn, &[metric("s3", "test_x", "gone")])?;
                Err(ApiError::Conflict("refused after storing".into()))
            }));
            let mut reading: Write<'_, _> = Box::pin(writer.write(|conn| {
                Ok(db::count_metrics_by(
                    conn,
                    &crate::db::query::MetricQuery::all(),
                )?)
            }));
            let mut last: Write<'_, _> =
                Box::pin(writer.store_metrics(vec![metric("s2", "test_c", "core")]));
            queue(&mut first).await;
            queue(&mut failing).await;
            queue(&mut reading).await;
            queue(&mut last).await;

            // Act
            drop(release);
            held.await.unwrap();

            // Assert: the failed change was answered its error, the read saw the metrics stored
            // before it in the group, and every count agrees with the metrics committed.
            assert_eq!(first.await.unwrap().len(), 3);
            assert_eq!(status(&failing.await.unwrap_err()), 409);
            assert_eq!(reading.await.unwrap(), 3);
            assert_eq!(last.await.unwrap()[0].item, "test_c");
        });
        let (kept, recomputed) = kept_and_recomputed_counts(&path);
        assert!(kept.contains(&"metrics 4".to_owned()), "{kept:?}");
        assert!(kept.contains(&"session_h s2 2".to_owned()), "{kept:?}");
        assert!(!kept.iter().any(|row| row.contains("gone")), "{kept:?}");
        assert_eq!(kept, recomputed);
    }

    #[test]
    fn stores_and_a_delete_of_the_same_session_in_one_group_leave_every_count_exact() {
        let (_dir, path, writer) = start_writer();
        actix_web::rt::System::new().block_on(async {
            // Arrange: queued together behind a held writer: metrics of s1 and s2, the delete of
            // s1 (whose metrics are not counted yet when it is queued), and more metrics of s1.
            let (held, release) = hold(&writer).await;
            let mut before: Write<'_, _> = Box::pin(writer.store_metrics(vec![
                metric("s1", "test_a", "core"),
                metric("s1", "test_b", "core"),
                metric("s2", "test_a", ""),
            ]));
            let mut delete: Write<'_, _> =
                Box::pin(writer.write(|conn| Ok(db::delete_session(conn, "s1")?)));
            let mut after: Write<'_, _> = Box::pin(writer.store_metrics(vec![
                metric("s1", "test_c", "io"),
                metric("s2", "test_b", "core"),
            ]));
            queue(&mut before).await;
            queue(&mut delete).await;
            queue(&mut after).await;

            // Act
            drop(release);
            held.await.unwrap();

            // Assert
            assert_eq!(before.await.unwrap().len(), 3);
            assert_eq!(delete.await.unwrap().metrics, 2);
            assert_eq!(after.await.unwrap().len(), 2);
        });
        let (kept, recomputed) = kept_and_recomputed_counts(&path);
        assert!(kept.contains(&"metrics 3".to_owned()), "{kept:?}");
        assert!(kept.contains(&"session_h s1 1".to_owned()), "{kept:?}");
        assert!(!kept.contains(&"pair core s1".to_owned()), "{kept:?}");
        assert_eq!(kept, recomputed);
    }

    #[test]
    fn a_write_beyond_the_queue_bound_is_refused_at_once_with_503_and_the_queued_ones_still_run() {
        let (_dir, path, writer) = start_writer();
        actix_web::rt::System::new().block_on(async {
            // Arrange: the writer is busy and the queue full.
            let (held, release) = hold(&writer).await;
            let mut queued: Vec<Write<'_, _>> =
                (0..MAX_QUEUED_WRITES)
                    .map(|n| -> Write<'_, _> {
                        Box::pin(writer.write(move |conn| {
                            db::insert_context(conn, &context(&format!("q{n}"), 1))
                        }))
                    })
                    .collect();
            for write in &mut queued {
                queue(write).await;
            }

            // Act
            let refused =
                actix_web::rt::time::timeout(Duration::from_secs(10), writer.write(|_| Ok(())))
                    .await
                    .expect("the write waited in the full queue instead of being refused");

            // Assert: refused without waiting, as a 503 the client may retry ...
            let response = refused
                .expect_err("the queue is full, yet the write was accepted")
                .error_response();
            assert_eq!(response.status(), 503);
            assert!(response.headers().contains_key("retry-after"));
            // ... while every queued write is made once the writer is free, and frees its place.
            drop(release);
            held.await.unwrap();
            for write in queued {
                write.await.expect("a queued write failed");
            }
            writer
                .write(|conn| db::insert_context(conn, &context("after", 1)))
                .await
                .expect("the queue has room again");
        });
        assert_eq!(
            committed_contexts(&path),
            MAX_QUEUED_WRITES as i64 + 1,
            "every queued write and the one after are stored"
        );
    }

    #[test]
    fn a_write_that_panics_is_rolled_back_and_answered_500_while_the_rest_of_its_group_is_stored() {
        let (_dir, path, writer) = start_writer();
        actix_web::rt::System::new().block_on(async {
            // Arrange
            let (held, release) = hold(&writer).await;
            let mut before: Write<'_, _> =
                Box::pin(writer.write(|conn| db::insert_context(conn, &context("before", 1))));
            let mut panicking: Write<'_, ()> = Box::pin(writer.write(|conn| {
                db::insert_context(conn, &context("never", 1))?;
                panic!("a bug in a write");
            }));
            let mut after: Write<'_, _> =
                Box::pin(writer.write(|conn| db::insert_context(conn, &context("after", 1))));
            queue(&mut before).await;
            queue(&mut panicking).await;
            queue(&mut after).await;

            // Act
            drop(release);
            held.await.unwrap();

            // Assert
            before.await.expect("the write before the panic failed");
            assert_eq!(status(&panicking.await.unwrap_err()), 500);
            after.await.expect("the write after the panic failed");
        });
        assert_eq!(committed_contexts(&path), 2);
        let never: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM contexts WHERE h = 'never'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(never, 0);
    }

    /// Queues a write of context `h` whose future owns its handle on the writer.
    fn queued_context(writer: &Arc<Writer>, h: &str) -> Write<'static, Created<Context>> {
        let (writer, context) = (Arc::clone(writer), context(h, 1));
        Box::pin(async move {
            writer
                .write(move |conn| db::insert_context(conn, &context))
                .await
        })
    }

    #[test]
    fn dropping_the_writer_makes_the_writes_still_queued_before_its_thread_stops() {
        let (_dir, path, writer) = start_writer();
        let writer = Arc::new(writer);
        let (about_to_drop, dropping) = std_mpsc::channel();
        actix_web::rt::System::new().block_on(async {
            // Arrange: three writes queued behind a held writer, their clients gone.
            let (held, release) = hold(&writer).await;
            for n in 0..3 {
                let mut write = queued_context(&writer, &format!("q{n}"));
                queue(&mut write).await;
            }
            drop(held);

            // Act: the writer is dropped (on another thread, as the drop waits for the writer
            // thread), and let go.
            let dropper = std::thread::spawn(move || {
                about_to_drop.send(()).unwrap();
                drop(writer);
            });
            dropping.recv().unwrap();
            drop(release);
            dropper.join().expect("dropping the writer panicked");
        });

        // Assert: the drop returned once the queued writes were committed.
        assert_eq!(committed_contexts(&path), 3);
    }

    #[test]
    fn a_checkpoint_comes_after_the_writes_queued_before_it() {
        let (_dir, path, writer) = start_writer();
        let writer = Arc::new(writer);
        actix_web::rt::System::new().block_on(async {
            // Arrange: three writes queued behind a held writer, then a checkpoint, asked for
            // as `Writer::checkpoint` does (which then blocks for the answer).
            let (held, release) = hold(&writer).await;
            let mut queued: Vec<_> = (0..3)
                .map(|n| queued_context(&writer, &format!("q{n}")))
                .collect();
            for write in &mut queued {
                queue(write).await;
            }
            let (reply, checkpointed) = oneshot::channel();
            writer
                .queue
                .as_ref()
                .unwrap()
                .send(Message::Checkpoint(reply))
                .unwrap();

            // Act
            drop(release);
            held.await.unwrap();
            for write in queued {
                write.await.expect("a queued write failed");
            }
            checkpointed.await.unwrap().expect("the checkpoint failed");
            let wal = path.with_extension("db-wal");
            let wal_size = std::fs::metadata(&wal).map_or(0, |m| m.len());

            // Assert: the writes were in the database file, not the WAL, when it was truncated.
            assert_eq!(
                wal_size, 0,
                "the WAL still held something after the checkpoint"
            );
        });
        assert_eq!(committed_contexts(&path), 3);
    }
}
