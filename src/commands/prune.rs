//! `monitor-server prune --db PATH --older-than AGE [--dry-run]`: deletes the sessions that ran
//! before now minus AGE, with their tags and metrics, and the metrics that started before then
//! whose session is not stored.
//!
//! It runs beside a server using the same file: what goes is found first without any lock (in a
//! WAL read), then deleted in short transactions — at most [`CHUNK_METRICS`] metrics and about
//! [`CHUNK_TIME`] each, in the order stored, so that the deleted ids stay a few runs for paging
//! ([`crate::db::record_deleted_metrics`]) — with a pause of [`PAUSE`] between them in which a
//! server's writer, waiting in its busy timeout, takes its turn. A server's write therefore waits
//! about one chunk, never the whole prune; and a prune stopped halfway (Ctrl-C, a full disk)
//! leaves every count exact, and running it again deletes the rest.

use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

use crate::commands::cli::{Age, PruneArgs};
use crate::commands::text::counted;
use crate::db::{self, Db, MetricEraser, Removed, Synchronous};
use crate::error::ApiError;
use crate::models::parse_iso8601;

/// The most metrics one transaction deletes.
pub const CHUNK_METRICS: usize = 5_000;

/// How long one transaction may go on deleting before it commits (the last metric it started on
/// is finished first). Below the 100 ms between two retries of a waiting writer's busy handler,
/// so a server's write waits at most about this long plus [`PAUSE`].
pub const CHUNK_TIME: Duration = Duration::from_millis(50);

/// The pause between two transactions: longer than the longest sleep of SQLite's busy handler
/// (100 ms), so that a server's writer waiting for the lock finds it free at its next try.
pub const PAUSE: Duration = Duration::from_millis(110);

/// The page cache of the deleting connection, in KiB. Each metric deleted changes a page of
/// each of the table's 13 b-trees; SQLite's default 2 MiB would read most of them from the
/// file again at every chunk.
const CACHE_KIB: i64 = 64 * 1024;

/// What is older than the cut-off: the sessions (hash) and the ids of the metrics to delete.
#[derive(Debug, Default)]
struct Doomed {
    sessions: Vec<String>,
    /// Ascending.
    metric_ids: Vec<i64>,
}

/// Runs `monitor-server prune`; returns the exit code: 0 done, 1 the database could not be
/// written (what was deleted so far stays deleted, counts exact), 2 the file cannot be used.
pub fn run(args: &PruneArgs) -> u8 {
    let path = args.db.clone();
    if !path.is_file() {
        eprintln!(
            "monitor-server: cannot prune {}: there is no such database file",
            path.display()
        );
        return 2;
    }
    // A delete lost to a power cut is harmless (the next prune makes it again), so commits are
    // not fsynced one by one: a chunk's commit then holds the write lock for less time.
    let db = match Db::open_with(&path, 1, Synchronous::Normal) {
        Ok(db) => db,
        Err(err) => {
            eprintln!("monitor-server: {err}");
            return 2;
        }
    };
    let started = Instant::now();
    let cutoff_us = now_us() - args.older_than.micros();
    let runtime = actix_web::rt::System::new();
    let doomed = match runtime.block_on(db.run(move |conn| Ok(find_doomed(conn, cutoff_us)?))) {
        Ok(doomed) => doomed,
        Err(err) => {
            eprintln!(
                "monitor-server: cannot read {}: {}",
                path.display(),
                failure(&err)
            );
            return 1;
        }
    };
    let what = format!(
        "older than {} (before {})",
        args.older_than,
        iso8601(cutoff_us)
    );
    if args.dry_run {
        println!(
            "would prune {}: {} and {} {what}; nothing was deleted (--dry-run)",
            path.display(),
            counted(doomed.sessions.len() as u64, "session"),
            counted(doomed.metric_ids.len() as u64, "metric")
        );
        return 0;
    }
    match runtime.block_on(delete(&db, doomed, cutoff_us)) {
        Ok(removed) => {
            println!(
                "pruned {}: {} and {} {what} deleted in {:.1} s",
                path.display(),
                counted(removed.sessions, "session"),
                counted(removed.metrics, "metric"),
                started.elapsed().as_secs_f64()
            );
            0
        }
        Err((removed, err)) => {
            eprintln!(
                "monitor-server: pruning {} stopped: {}; {} and {} were deleted, \
                 run it again to delete the rest",
                path.display(),
                failure(&err),
                counted(removed.sessions, "session"),
                counted(removed.metrics, "metric")
            );
            1
        }
    }
}

/// What to tell the operator when the database could not be read or written.
fn failure(err: &ApiError) -> String {
    match err {
        ApiError::InsufficientStorage => "the disk holding the database is full".into(),
        ApiError::Unavailable(_) => {
            "the database stayed locked by another program or cannot be written".into()
        }
        ApiError::Internal => "the database failed (see the line above)".into(),
        other => other.to_string(),
    }
}

/// Finds the sessions run before `cutoff_us`, and the metrics to delete: theirs and those that
/// started before it under a session that is not stored.
fn find_doomed(conn: &Connection, cutoff_us: i64) -> rusqlite::Result<Doomed> {
    let tx = conn.unchecked_transaction()?;
    let mut doomed = Doomed::default();
    // Each run_date in its own spelling and offset, so compared as an instant, not as text.
    let mut sessions = tx.prepare("SELECT session_h, run_date FROM sessions")?;
    let mut rows = sessions.query([])?;
    while let Some(row) = rows.next()? {
        let run_date: String = row.get(1)?;
        if parse_iso8601(&run_date).is_ok_and(|us| us < cutoff_us) {
            doomed.sessions.push(row.get(0)?);
        }
    }
    let mut of_session = tx.prepare(
        "SELECT id FROM metric_rows WHERE session_id = (SELECT id FROM session_hashes WHERE h = ?1)",
    )?;
    for session_h in &doomed.sessions {
        let ids = of_session.query_map([session_h], |row| row.get(0))?;
        for id in ids {
            doomed.metric_ids.push(id?);
        }
    }
    let mut orphans = tx.prepare(
        "SELECT id FROM metrics m WHERE start_us < ?1 \
         AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.session_h = m.session_h)",
    )?;
    for id in orphans.query_map([cutoff_us], |row| row.get(0))? {
        doomed.metric_ids.push(id?);
    }
    doomed.metric_ids.sort_unstable();
    doomed.metric_ids.dedup();
    Ok(doomed)
}

/// Deletes what [`find_doomed`] found, a chunk per transaction, then the sessions (with any
/// metric of theirs stored meanwhile). On failure, also what was deleted until then.
async fn delete(db: &Db, doomed: Doomed, cutoff_us: i64) -> Result<Removed, (Removed, ApiError)> {
    let mut removed = Removed::default();
    // The hashes the delete re-checks each metric against: an id found in the read may have
    // been deleted and given to a new metric since (ids above the largest one are reused).
    let sessions = doomed.sessions.clone();
    db.write(move |conn| Ok(remember_sessions(conn, &sessions)?))
        .await
        .map_err(|err| (removed, err))?;
    let mut left = doomed.metric_ids.as_slice();
    while !left.is_empty() {
        let chunk = left[..left.len().min(CHUNK_METRICS)].to_vec();
        let (tried, deleted) = db
            .write(move |conn| Ok(delete_chunk(conn, &chunk, cutoff_us)?))
            .await
            .map_err(|err| (removed, err))?;
        removed.metrics += deleted;
        left = &left[tried..];
        if !left.is_empty() {
            std::thread::sleep(PAUSE);
        }
    }
    let sessions = doomed.sessions;
    let rest = db
        .write(move |conn| {
            let mut rest = Removed::default();
            for session_h in &sessions {
                let one = db::delete_session(conn, session_h)?;
                rest.sessions += one.sessions;
                rest.metrics += one.metrics;
            }
            Ok(rest)
        })
        .await
        .map_err(|err| (removed, err))?;
    removed.sessions += rest.sessions;
    removed.metrics += rest.metrics;
    Ok(removed)
}

/// Keeps the hashes of the sessions being pruned in a temporary table of the writer connection,
/// and gives that connection a page cache of [`CACHE_KIB`].
fn remember_sessions(conn: &Connection, sessions: &[String]) -> rusqlite::Result<()> {
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS pruned_sessions (session_h TEXT PRIMARY KEY);
         DELETE FROM temp.pruned_sessions;",
    )?;
    let mut insert = conn.prepare("INSERT OR IGNORE INTO temp.pruned_sessions VALUES (?1)")?;
    for session_h in sessions {
        insert.execute([session_h])?;
    }
    Ok(())
}

/// Deletes the metrics of `ids` (ascending) that are still to go, until [`CHUNK_TIME`] is over;
/// returns how many ids it went through and how many metrics it deleted.
fn delete_chunk(conn: &Connection, ids: &[i64], cutoff_us: i64) -> rusqlite::Result<(usize, u64)> {
    let started = Instant::now();
    let mut doomed = conn.prepare_cached(
        "SELECT 1 FROM metrics WHERE id = ?1 \
         AND (session_h IN (SELECT session_h FROM temp.pruned_sessions) \
              OR (start_us < ?2 AND NOT EXISTS \
                  (SELECT 1 FROM sessions s WHERE s.session_h = metrics.session_h)))",
    )?;
    let mut eraser = MetricEraser::new(conn);
    let mut tried = 0;
    for &id in ids {
        tried += 1;
        if doomed.exists(params![id, cutoff_us])? {
            eraser.erase(id)?;
        }
        if started.elapsed() >= CHUNK_TIME {
            break;
        }
    }
    Ok((tried, eraser.finish()?))
}

/// Now, in microseconds since 1970 UTC.
fn now_us() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// `us` (microseconds since 1970 UTC) as `2025-08-27T11:00:00Z`, for the operator.
fn iso8601(us: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(us.div_euclid(1_000_000)) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{us} µs since 1970"),
    }
}

impl Age {
    /// The age in microseconds.
    pub fn micros(&self) -> i64 {
        i64::try_from(self.seconds)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_written_as_an_utc_time() {
        assert_eq!(iso8601(1_607_123_895_661_016), "2020-12-04T23:18:15Z");
    }
}
