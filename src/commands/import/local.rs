//! `import --db`: stores a checked file into a monitor-server database, the whole file in one
//! savepoint on the database's writer connection, so that a failure at any point leaves the
//! database as it was.

use std::collections::HashSet;
use std::path::PathBuf;

use actix_web::rt::{System, SystemRunner};
use rusqlite::Connection;

use super::progress::Progress;
use super::reader::{Source, Table, CONTEXTS, SESSIONS};
use super::{Counts, Failure, MetricKey};
use crate::db::query::{MetricQuery, TextColumn};
use crate::db::{self, Created, Db, MetricTallies};
use crate::error::ApiError;

/// A database file as the target, opened on first use (so that a run refusing every file
/// creates none).
pub(super) struct Local {
    path: PathBuf,
    db: Option<Db>,
    runtime: Option<SystemRunner>,
}

impl Local {
    pub(super) fn new(path: PathBuf) -> Self {
        Local {
            path,
            db: None,
            runtime: None,
        }
    }

    /// Stores a checked file, all or nothing.
    pub(super) fn import(
        &mut self,
        source: Source,
        mut progress: Progress,
    ) -> Result<Counts, Failure> {
        let db = match &self.db {
            Some(db) => db.clone(),
            None => {
                let opened =
                    Db::open(&self.path, 1).map_err(|err| Failure::Target(err.to_string(), 2))?;
                self.db.insert(opened).clone()
            }
        };
        let runtime = self.runtime.get_or_insert_with(System::new);
        runtime
            .block_on(db.write(move |conn| Ok(store(conn, &source, &mut progress))))
            .map_err(|err| Failure::Target(write_failure(&err), 1))?
    }
}

/// What to tell the operator when the database could not be written.
fn write_failure(err: &ApiError) -> String {
    let cause = match err {
        ApiError::InsufficientStorage => "the disk holding the database is full".to_owned(),
        ApiError::Unavailable(_) => {
            "the database stayed locked by another program or cannot be written".to_owned()
        }
        // The cause has been logged on the line above.
        ApiError::Internal => "writing to the database failed".to_owned(),
        other => other.to_string().trim_end_matches('.').to_owned(),
    };
    format!("{cause}; nothing was imported from it")
}

/// Stores a checked file on the writer connection, inside a savepoint of its own: its contexts
/// and sessions (skipping identical ones), then its metrics not already stored. At the first
/// problem the savepoint is rolled back, so nothing of the file is kept.
fn store(conn: &Connection, source: &Source, progress: &mut Progress) -> Result<Counts, Failure> {
    let failed = |err: rusqlite::Error| Failure::Target(write_failure(&ApiError::from(err)), 1);
    conn.execute_batch("SAVEPOINT import_file")
        .map_err(failed)?;
    let outcome = store_all(conn, source, progress);
    let end = match outcome {
        Ok(_) => "RELEASE import_file",
        Err(_) => "ROLLBACK TO import_file; RELEASE import_file",
    };
    conn.execute_batch(end).map_err(failed)?;
    outcome
}

fn store_all(tx: &Connection, source: &Source, progress: &mut Progress) -> Result<Counts, Failure> {
    let failed = |err: rusqlite::Error| Failure::Target(write_failure(&ApiError::from(err)), 1);
    let mut counts = Counts::default();
    for (rowid, context) in &source.contexts {
        let created = db::insert_context(tx, context).map_err(|err| {
            stored_failure(err, &CONTEXTS, *rowid, "a context", "ENV_H", &context.h)
        })?;
        counts.contexts.count(matches!(created, Created::New(_)));
    }
    for (rowid, session) in &source.sessions {
        let created = db::insert_session(tx, session).map_err(|err| {
            stored_failure(
                err,
                &SESSIONS,
                *rowid,
                "a session",
                "SESSION_H",
                &session.session_h,
            )
        })?;
        counts.sessions.count(matches!(created, Created::New(_)));
    }

    let mut stored = HashSet::new();
    for session_h in &source.metric_sessions {
        let of_session = MetricQuery::all().eq(TextColumn::SessionH, session_h);
        if db::count_metrics_by(tx, &of_session).map_err(failed)? > 0 {
            let metrics = db::list_metrics_by(tx, &of_session, 0, u64::MAX).map_err(failed)?;
            stored.extend(metrics.iter().map(MetricKey::of));
        }
    }
    let mut done = 0;
    let mut tallies = MetricTallies::default();
    source.for_each_metric(|metric| {
        let new = !stored.contains(&MetricKey::of(&metric));
        if new {
            db::insert_metrics(tx, &mut tallies, std::slice::from_ref(&metric)).map_err(failed)?;
        }
        counts.metrics.count(new);
        done += 1;
        progress.show("storing", done, source.metrics);
        Ok(())
    })?;
    // Inside the file's savepoint, so that a failure rolls the counts back with the rows.
    tallies.apply(tx).map_err(failed)?;
    Ok(counts)
}

/// A context or session the database refused: a conflict is the file's fault, anything else the
/// database's.
fn stored_failure(
    err: ApiError,
    table: &Table,
    rowid: i64,
    record: &str,
    column: &str,
    h: &str,
) -> Failure {
    match err {
        ApiError::Conflict(_) => Failure::Refused(format!(
            "{} rowid {rowid}: the database already holds {record} with {column} {h} and \
             different content",
            table.name
        )),
        other => Failure::Target(write_failure(&other), 1),
    }
}
