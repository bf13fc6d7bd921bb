//! The writer thread's loop: gathering the queued changes into a group, running the group in one
//! transaction, committing it once, and recovering from a commit that failed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::jobs::Job;
use super::{set_up, Checkpointed, Durability, Message, COMMIT_DELAY, MAX_BATCH};
use crate::db::connection::configure_connection;
use crate::db::insert::MetricTallies;
use crate::error::ApiError;
use crate::telemetry::WriterStats;

/// How often, at most, the writer logs the size of its groups (at debug level).
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The writer thread: waits for a change, takes whatever else is queued by then — waiting up to
/// [`COMMIT_DELAY`] for as many as the last group held — up to [`MAX_BATCH`], writes them as one
/// group, and again, until the queue is closed and empty.
pub(super) fn serve(
    mut conn: Connection,
    path: &Path,
    durability: Durability,
    messages: mpsc::Receiver<Message>,
    stats: &WriterStats,
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
                Message::Change(job) if job.alone() => {
                    stats.queued.dec();
                    // Written after the changes queued before it, and before those after it.
                    for writes in [&mut group, &mut vec![job]] {
                        write_group(
                            &mut conn,
                            path,
                            durability,
                            writes,
                            &mut tallies,
                            &mut tally,
                            stats,
                        );
                    }
                }
                Message::Change(job) => {
                    stats.queued.dec();
                    group.push(job);
                }
                Message::Checkpoint(reply) => {
                    // What was queued before the checkpoint is written before it.
                    write_group(
                        &mut conn,
                        path,
                        durability,
                        &mut group,
                        &mut tallies,
                        &mut tally,
                        stats,
                    );
                    let _ = reply.send(checkpoint(&conn));
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
            durability,
            &mut group,
            &mut tallies,
            &mut tally,
            stats,
        );
    }
    tally.report(true);
}

/// Writes `group` in one transaction and answers each of its clients; leaves `group` empty and
/// the connection outside any transaction.
fn write_group(
    conn: &mut Connection,
    path: &Path,
    durability: Durability,
    group: &mut Vec<Box<dyn Job>>,
    tallies: &mut MetricTallies,
    tally: &mut Tally,
    stats: &WriterStats,
) {
    if group.is_empty() {
        return;
    }
    let started = Instant::now();
    let outcome = run_group(conn, group, tallies);
    if outcome.is_ok() {
        stats.commit_seconds.observe_duration(started.elapsed());
        let metrics: usize = group.iter().map(|job| job.metrics_stored()).sum();
        // Commits of sessions, contexts or readiness probes alone would only crowd bucket 0.
        if metrics > 0 {
            stats.metrics_per_commit.observe(metrics as u64);
            stats.metrics_stored.inc_by(metrics as u64);
        }
    } else {
        stats.failed_commits.inc();
        // Ids given to new names in the transaction rolled back no longer exist.
        tallies.rolled_back();
        leave_no_transaction_open(conn, path, durability);
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
            // The counts are the job's alone (applied before its savepoint); ids it gave are gone.
            tallies.rolled_back();
        }
        conn.prepare_cached("RELEASE job")?.execute([])?;
    }
    tallies.apply(conn)?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(())
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` and its one row: busy, frames in the WAL, frames folded back.
fn checkpoint(conn: &Connection) -> rusqlite::Result<Checkpointed> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        Ok(Checkpointed {
            busy: row.get::<_, i64>(0)? != 0,
            log_frames: row.get(1)?,
            checkpointed_frames: row.get(2)?,
        })
    })
}

/// Leaves the writer outside any transaction. A COMMIT that fails (the disk filled up) may leave
/// its transaction open, and every later BEGIN would then fail: rolling back here is what lets
/// writes succeed again once space is freed. If even the rollback fails, the connection is
/// replaced by a fresh one.
fn leave_no_transaction_open(conn: &mut Connection, path: &Path, durability: Durability) {
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
        configure_connection(&mut fresh)?;
        set_up(&fresh, durability)?;
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
