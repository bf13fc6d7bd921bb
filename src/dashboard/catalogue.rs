//! The per-test figures of one selection, computed by one pass over its metrics and brought up
//! to date by folding in the metrics stored since, checked against the store's version.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, Row};

use super::ranking::{Ranking, TestFilter};
use super::runs::where_all;
use super::sum::Sum;
use crate::db::query::SESSION_HASH_ID;

/// What the store held when a [`Catalogue`] was brought up to date: enough to tell, cheaply,
/// whether anything but additions happened since.
///
/// Metric and session ids only grow while nothing is deleted, but SQLite gives the next row the
/// largest id plus one, so deleting the newest rows and adding as many others brings back the
/// same count and largest id: the newest row's content is part of the version too (its
/// [`fingerprint`]). What that cannot tell apart — the newest rows deleted and replaced by as
/// many, the newest one identical in every field — needs a delete of the newest metrics to begin
/// with, which retention (deleting the oldest) never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct StoreVersion {
    pub(super) metrics: u64,
    pub(super) max_metric_id: i64,
    pub(super) newest_metric: u64,
    pub(super) sessions: u64,
    pub(super) max_session_id: i64,
    pub(super) newest_session: u64,
}

/// A hash of the fields of a row, to tell it from another stored under the same id.
pub(super) fn fingerprint(row: &Row<'_>, columns: std::ops::Range<usize>) -> rusqlite::Result<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for i in columns {
        match row.get_ref(i)? {
            rusqlite::types::ValueRef::Null => 0u8.hash(&mut hasher),
            rusqlite::types::ValueRef::Integer(n) => n.hash(&mut hasher),
            rusqlite::types::ValueRef::Real(x) => x.to_bits().hash(&mut hasher),
            rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                t.hash(&mut hasher)
            }
        }
    }
    Ok(hasher.finish())
}

/// The names of the one metric row `m` (which may be missing), for the queries below. Written
/// against `metric_rows` rather than the `metrics` view: SQLite cannot flatten a view that is a
/// join into the right side of a LEFT JOIN, and would read the whole view to find one row.
const NEWEST_NAMES: &str = "LEFT JOIN session_hashes mh ON mh.id = m.session_id \
     LEFT JOIN context_hashes mx ON mx.id = m.context_id LEFT JOIN tests mt ON mt.id = m.test_id";

pub(super) fn store_version(conn: &Connection) -> rusqlite::Result<StoreVersion> {
    conn.prepare_cached(&format!(
        "SELECT coalesce((SELECT n FROM counters WHERE name = 'metrics'), 0), \
         coalesce(m.id, 0), mh.h, mx.h, mt.item_path, mt.item_variant, m.start_us, \
         m.total_time, m.mem_usage, \
         (SELECT count(*) FROM sessions), coalesce(s.id, 0), s.session_h \
         FROM (SELECT 1) \
         LEFT JOIN metric_rows m ON m.id = (SELECT max(id) FROM metric_rows) \
         {NEWEST_NAMES} \
         LEFT JOIN sessions s ON s.id = (SELECT max(id) FROM sessions)"
    ))?
    .query_row([], |row| {
        Ok(StoreVersion {
            metrics: row.get(0)?,
            max_metric_id: row.get(1)?,
            newest_metric: fingerprint(row, 2..9)?,
            sessions: row.get(9)?,
            max_session_id: row.get(10)?,
            newest_session: fingerprint(row, 11..12)?,
        })
    })
}

/// What happened to the store since `old` was read.
pub(super) enum Since {
    /// Nothing.
    Same,
    /// Only additions: these many metrics and sessions, stored after `old`'s largest ids.
    Grew {
        now: StoreVersion,
        metrics: u64,
        sessions: u64,
    },
    /// Something else (a deletion), or `old` is no version at all: everything must be read again.
    Changed(StoreVersion),
}

/// Tells, cheaply, whether the store only grew since `old` (see [`StoreVersion`]).
pub(super) fn since(conn: &Connection, old: &StoreVersion) -> rusqlite::Result<Since> {
    let now = store_version(conn)?;
    if *old == StoreVersion::default() {
        return Ok(Since::Changed(now));
    }
    if now == *old {
        return Ok(Since::Same);
    }
    let (metrics, sessions): (u64, u64) = conn
        .prepare_cached(
            "SELECT (SELECT count(*) FROM metric_rows WHERE id > ?1), \
             (SELECT count(*) FROM sessions WHERE id > ?2)",
        )?
        .query_row(params![old.max_metric_id, old.max_session_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    if now.metrics == old.metrics + metrics
        && now.sessions == old.sessions + sessions
        && still_stored(conn, old)?
    {
        Ok(Since::Grew {
            now,
            metrics,
            sessions,
        })
    } else {
        Ok(Since::Changed(now))
    }
}

/// Whether the newest metric and session of `old` are still stored, unchanged: with the counts,
/// what tells additions alone from a deletion followed by additions.
pub(super) fn still_stored(conn: &Connection, old: &StoreVersion) -> rusqlite::Result<bool> {
    conn.prepare_cached(&format!(
        "SELECT mh.h, mx.h, mt.item_path, mt.item_variant, m.start_us, \
         m.total_time, m.mem_usage, s.session_h \
         FROM (SELECT 1) LEFT JOIN metric_rows m ON m.id = ?1 {NEWEST_NAMES} \
         LEFT JOIN sessions s ON s.id = ?2"
    ))?
    .query_row(params![old.max_metric_id, old.max_session_id], |row| {
        Ok(fingerprint(row, 0..7)? == old.newest_metric
            && fingerprint(row, 7..8)? == old.newest_session)
    })
}

/// One test's figures over a selection. Its identity and descriptive fields are read from its
/// latest metric when listed, so that the cache holds numbers and one key per test.
#[derive(Debug, Clone)]
pub(super) struct TestFigures {
    pub(super) key: Arc<str>,
    pub(super) runs: u64,
    pub(super) sum_time: Sum,
    pub(super) max_time: f64,
    pub(super) sum_mem: Sum,
    pub(super) max_mem: f64,
    /// `(start_us, id)` of the latest metric.
    pub(super) last: (i64, i64),
}

/// The per-test figures of one selection, as of `version`.
#[derive(Debug, Default)]
pub(super) struct Catalogue {
    pub(super) version: StoreVersion,
    pub(super) index: HashMap<Arc<str>, usize>,
    pub(super) tests: Vec<TestFigures>,
    /// Test positions in each [`Ranking`]'s order, computed on first use after a change.
    pub(super) ranked: [Option<Vec<u32>>; 2],
}

/// The columns a catalogue reads of each metric, from [`FIGURE_SOURCE`].
pub(super) const FIGURE_COLUMNS: &str =
    "m.id, x.h, t.item_path, t.item_variant, m.total_time, m.mem_usage, m.start_us";

/// The metric rows with the two names a catalogue needs: the `metrics` view would look up all
/// five for every metric of the store.
const FIGURE_SOURCE: &str = "metric_rows m LEFT JOIN context_hashes x ON x.id = m.context_id \
     LEFT JOIN tests t ON t.id = m.test_id";

impl Catalogue {
    /// Adds the metrics `sql` yields (rows of [`FIGURE_COLUMNS`]).
    fn fold(
        &mut self,
        conn: &Connection,
        sql: &str,
        values: Vec<SqlValue>,
    ) -> rusqlite::Result<()> {
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params_from_iter(values))?;
        let mut key = String::new();
        while let Some(row) = rows.next()? {
            let text = |i: usize| -> rusqlite::Result<&str> {
                row.get_ref(i)?.as_str().map_err(|err| {
                    rusqlite::Error::FromSqlConversionFailure(
                        i,
                        rusqlite::types::Type::Text,
                        Box::new(err),
                    )
                })
            };
            let id: i64 = row.get(0)?;
            let (context_h, item_path, item_variant) = (text(1)?, text(2)?, text(3)?);
            let (time, mem, start): (f64, f64, i64) = (row.get(4)?, row.get(5)?, row.get(6)?);
            // Lengths first, so that no text can make two tests share a key.
            key.clear();
            use std::fmt::Write as _;
            let _ = write!(
                key,
                "{}:{context_h}{}:{item_path}{item_variant}",
                context_h.len(),
                item_path.len()
            );
            let at = match self.index.get(key.as_str()) {
                Some(&at) => at,
                None => {
                    let shared: Arc<str> = Arc::from(key.as_str());
                    self.index.insert(shared.clone(), self.tests.len());
                    self.tests.push(TestFigures {
                        key: shared,
                        runs: 0,
                        sum_time: Sum::default(),
                        max_time: f64::NEG_INFINITY,
                        sum_mem: Sum::default(),
                        max_mem: f64::NEG_INFINITY,
                        last: (i64::MIN, i64::MIN),
                    });
                    self.tests.len() - 1
                }
            };
            let test = &mut self.tests[at];
            test.runs += 1;
            test.sum_time.add(time);
            test.sum_mem.add(mem);
            test.max_time = test.max_time.max(time);
            test.max_mem = test.max_mem.max(mem);
            test.last = test.last.max((start, id));
        }
        self.ranked = [None, None];
        Ok(())
    }

    /// Brings the figures of `filter`'s selection up to date with what `conn` sees: nothing to
    /// do when the store has not changed, the new metrics folded in when it only grew, all
    /// computed again otherwise.
    pub(super) fn refresh(
        &mut self,
        conn: &Connection,
        filter: &TestFilter,
    ) -> rusqlite::Result<()> {
        let old = self.version;
        let (now, growth) = match since(conn, &old)? {
            Since::Same => return Ok(()),
            Since::Grew {
                now,
                metrics,
                sessions,
            } => (now, Some((metrics, sessions))),
            Since::Changed(now) => (now, None),
        };
        let (clauses, values) = filter.metric_conditions();
        if let Some((added_metrics, added_sessions)) = growth {
            if added_metrics > 0 {
                let sql = format!(
                    "SELECT {FIGURE_COLUMNS} FROM {FIGURE_SOURCE}{}",
                    where_and(&clauses, Some("m.id > ?"))
                );
                let mut all = vec![SqlValue::Integer(old.max_metric_id)];
                all.extend(values.iter().cloned());
                self.fold(conn, &sql, all)?;
            }
            if added_sessions > 0 && filter.depends_on_sessions() {
                // Metrics stored before their session, which now brings them in: read through
                // the session index, the new sessions' few metrics, whatever else the filter
                // names (a context's index would read a large share of the store).
                let of_new_sessions = format!(
                    "m.id <= ? AND m.session_id IN \
                     (SELECT {SESSION_HASH_ID} FROM sessions s WHERE s.id > ?)"
                );
                let sql = format!(
                    "SELECT {FIGURE_COLUMNS} FROM {FIGURE_SOURCE}{}",
                    where_and(&clauses, Some(&of_new_sessions))
                );
                let mut all = vec![
                    SqlValue::Integer(old.max_metric_id),
                    SqlValue::Integer(old.max_session_id),
                ];
                all.extend(values);
                self.fold(conn, &sql, all)?;
            }
        } else {
            *self = Catalogue::default();
            let sql = format!(
                "SELECT {FIGURE_COLUMNS} FROM {FIGURE_SOURCE}{}",
                where_and(&clauses, None)
            );
            self.fold(conn, &sql, values)?;
        }
        self.version = now;
        Ok(())
    }

    /// Test positions in `ranking`'s order: largest first, ties by key.
    pub(super) fn ranked(&mut self, ranking: Ranking) -> &[u32] {
        let tests = &self.tests;
        self.ranked[ranking.slot()].get_or_insert_with(|| {
            let value = |t: &TestFigures| match ranking {
                Ranking::Slowest => t.max_time,
                Ranking::Hungriest => t.max_mem,
            };
            let mut order: Vec<u32> = (0..tests.len() as u32).collect();
            order.sort_by(|&a, &b| {
                let (a, b) = (&tests[a as usize], &tests[b as usize]);
                value(b)
                    .total_cmp(&value(a))
                    .then_with(|| a.key.cmp(&b.key))
            });
            order
        })
    }
}

/// `WHERE first AND the rest` (empty for no condition).
pub(super) fn where_and(clauses: &[String], first: Option<&str>) -> String {
    let all: Vec<&str> = first
        .into_iter()
        .chain(clauses.iter().map(String::as_str))
        .collect();
    where_all(&all)
}
