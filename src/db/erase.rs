//! Deleting metrics and sessions: [`MetricEraser`], which keeps every count exact, and the runs of
//! deleted ids (`metric_holes`) that keep paging a lookup.

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension};

use crate::db::insert::MetricTallies;

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
///
/// [`Db::write`]: crate::db::Db::write
pub fn delete_session(conn: &Connection, session_h: &str) -> rusqlite::Result<Removed> {
    let doomed: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM metric_rows \
             WHERE session_id = (SELECT id FROM session_hashes WHERE h = ?1) ORDER BY id",
        )?
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
/// Each delete reads the row's facet values first (through the `metrics` view) and counts them
/// in memory; the counts are written once, one update per distinct
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

    /// Deletes the metric `id`; `false` when there is no such id. The names it carried are read
    /// first, to be counted off; the names themselves stay stored (see `schema.sql`).
    pub fn erase(&mut self, id: i64) -> rusqlite::Result<bool> {
        let row: Option<[String; 6]> = self
            .conn
            .prepare_cached(
                "SELECT component, item, item_variant, kind, context_h, session_h \
                 FROM metrics WHERE id = ?1",
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
        if row.is_some() {
            self.conn
                .prepare_cached("DELETE FROM metric_rows WHERE id = ?1")?
                .execute([id])?;
        }
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
             AND NOT EXISTS (SELECT 1 FROM metric_rows INDEXED BY metric_rows_by_session \
                 WHERE session_id = (SELECT id FROM session_hashes WHERE h = ?2) \
                 AND component_id = (SELECT id FROM components WHERE name = ?1))",
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
/// lookup (the page planner's). Every delete of metrics must call it ([`MetricEraser`] does).
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
        .prepare_cached("SELECT coalesce(max(id), 0) FROM metric_rows")?
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::{facets, metric, open_temp};
    use crate::db::{count_metrics, store_metrics};

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
}
