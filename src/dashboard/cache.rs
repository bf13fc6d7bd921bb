//! What the dashboard keeps in memory between requests: the catalogues of the selections asked
//! for lately and each run's totals.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;

use crate::db::Selection;
use crate::error::ApiError;

use super::catalogue::{fingerprint, Catalogue};
use super::changes::{ChangeCache, CACHED_PIPELINES};
use super::ranking::{summary, Ranking, TestFilter, TestSummary};
use super::runs::{RunFilter, RunQuery, RunTotals, CACHED_RUNS};
use super::RUNS_PER_PAGE;

/// How many selections' figures [`Cache`] keeps (the least recently used goes first).
pub(super) const CACHED_SELECTIONS: usize = 8;
/// How many tests' figures [`Cache`] keeps over all its selections (about 200 bytes each, so
/// at most about 40 MB); past it the least recently used selections go, and one selection with
/// more tests than this on its own is computed again at each request instead of being kept.
pub(super) const MAX_CACHED_TESTS: usize = 200_000;

/// What the dashboard's routes keep in memory, one per server: the per-test figures of the
/// selections `/tests` was asked for lately, and each run's totals, each checked against the
/// store at every request (see the module's documentation).
#[derive(Default)]
pub struct Cache {
    entries: Mutex<Vec<CacheEntry>>,
    runs: Mutex<HashMap<String, RunTotals>>,
    /// The detected changes of the pipelines `/changes` was asked for lately.
    pub changes: ChangeCache,
}

pub(super) struct CacheEntry {
    filter: TestFilter,
    used: u64,
    catalogue: Arc<Mutex<Catalogue>>,
    /// How many tests the catalogue held when last brought up to date.
    tests: usize,
}

impl Cache {
    /// A run's metric count, total wall time and contexts (first stored first), as of `conn`'s
    /// read transaction: reading a run's metrics costs a few hundred rows, a page of 50 runs
    /// tens of milliseconds, so they are kept, and checked by their count and largest id,
    /// which the session index gives without reading the metrics.
    pub(super) fn run_totals(
        &self,
        conn: &Connection,
        session_h: &str,
    ) -> rusqlite::Result<RunTotals> {
        let (tests, max_id, newest): (u64, i64, u64) = conn
            .prepare_cached(
                "SELECT c.n, coalesce(m.id, 0), m.start_us, m.total_time, x.h \
                 FROM (SELECT count(*) AS n, max(id) AS newest FROM metric_rows \
                       WHERE session_id = (SELECT id FROM session_hashes WHERE h = ?1)) c \
                 LEFT JOIN metric_rows m ON m.id = c.newest \
                 LEFT JOIN context_hashes x ON x.id = m.context_id",
            )?
            .query_row([session_h], |row| {
                Ok((row.get(0)?, row.get(1)?, fingerprint(row, 2..5)?))
            })?;
        let runs = || self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = runs().get(session_h) {
            if (known.tests, known.max_id, known.newest) == (tests, max_id, newest) {
                return Ok(known.clone());
            }
        }
        let mut stmt = conn.prepare_cached(
            "SELECT context_h, sum(total_time) FROM metrics \
             WHERE session_id = (SELECT id FROM session_hashes WHERE h = ?1) \
             GROUP BY context_h ORDER BY min(id)",
        )?;
        let mut rows = stmt.query([session_h])?;
        let mut totals = RunTotals {
            tests,
            max_id,
            newest,
            total_time: 0.0,
            contexts: Vec::new(),
        };
        while let Some(row) = rows.next()? {
            totals.contexts.push(row.get(0)?);
            totals.total_time += row.get::<_, f64>(1)?;
        }
        let mut runs = runs();
        if runs.len() >= CACHED_RUNS {
            runs.clear();
        }
        runs.insert(session_h.to_owned(), totals.clone());
        Ok(totals)
    }

    /// The selection's catalogue, shared with concurrent requests for the same selection, so
    /// that they wait for one computation rather than each doing it.
    fn entry(&self, filter: &TestFilter) -> Arc<Mutex<Catalogue>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let tick = entries.iter().map(|e| e.used).max().unwrap_or(0) + 1;
        if let Some(entry) = entries.iter_mut().find(|e| e.filter == *filter) {
            entry.used = tick;
            return entry.catalogue.clone();
        }
        if entries.len() >= CACHED_SELECTIONS {
            if let Some(oldest) = (0..entries.len()).min_by_key(|&i| entries[i].used) {
                entries.swap_remove(oldest);
            }
        }
        let catalogue = Arc::new(Mutex::new(Catalogue::default()));
        entries.push(CacheEntry {
            filter: filter.clone(),
            used: tick,
            catalogue: catalogue.clone(),
            tests: 0,
        });
        catalogue
    }

    /// Brings the figures of every test (no filter) up to date, as `/tests` without a filter
    /// would, the totals of the runs of `/runs`' first page, and then the changes of the
    /// pipelines with the most sessions (as many as are kept).
    pub(super) fn warm(self: &Arc<Self>, conn: &Connection) -> Result<(), ApiError> {
        self.with_fresh(conn, &TestFilter::default(), |_| Ok(()))?;
        RunQuery(RunFilter::default(), self.clone()).rows(conn, 0, RUNS_PER_PAGE)?;
        let pipelines: Vec<String> = conn
            .prepare(
                "SELECT value FROM session_tags WHERE name = 'pipeline_branch' \
                 GROUP BY value ORDER BY count(*) DESC LIMIT ?1",
            )?
            .query_map([CACHED_PIPELINES as i64], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for pipeline in pipelines {
            self.changes.warm(conn, &pipeline)?;
        }
        Ok(())
    }

    /// Runs `read` on the figures of `filter`'s selection, brought up to date with what `conn`
    /// sees; a selection too large to keep is forgotten afterwards.
    fn with_fresh<T>(
        &self,
        conn: &Connection,
        filter: &TestFilter,
        read: impl FnOnce(&mut Catalogue) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let shared = self.entry(filter);
        let mut catalogue = shared.lock().unwrap_or_else(PoisonError::into_inner);
        catalogue.refresh(conn, filter)?;
        let found = read(&mut catalogue);
        if !self.make_room(filter, catalogue.tests.len()) {
            *catalogue = Catalogue::default();
        }
        found
    }

    /// Records that `filter`'s selection holds `tests` tests and drops the least recently used
    /// other selections until every one kept fits in [`MAX_CACHED_TESTS`]; `false`, and the
    /// selection forgotten too, when it does not fit on its own.
    fn make_room(&self, filter: &TestFilter, tests: usize) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.iter_mut().find(|e| e.filter == *filter) {
            entry.tests = tests;
        }
        while entries.iter().map(|e| e.tests).sum::<usize>() > MAX_CACHED_TESTS {
            let oldest = (0..entries.len())
                .filter(|&i| entries[i].filter != *filter)
                .min_by_key(|&i| entries[i].used);
            match oldest {
                Some(i) => {
                    entries.swap_remove(i);
                }
                None => {
                    entries.retain(|e| e.filter != *filter);
                    return false;
                }
            }
        }
        true
    }

    /// One page of the tests `filter` selects, in `ranking`'s order, as of `conn`'s read
    /// transaction. `window` lays the page over the number of tests: `None` for no page (the
    /// selection holds no test), else what the caller keeps of it with the rows to skip and the
    /// most to answer.
    pub fn page<W>(
        &self,
        conn: &Connection,
        filter: &TestFilter,
        ranking: Ranking,
        window: impl FnOnce(u64) -> Result<Option<(W, u64, u64)>, ApiError>,
    ) -> Result<Option<(W, Vec<TestSummary>)>, ApiError> {
        self.with_fresh(conn, filter, |catalogue| {
            let Some((window, offset, limit)) = window(catalogue.tests.len() as u64)? else {
                return Ok(None);
            };
            let order = catalogue.ranked(ranking);
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(order.len());
            let end = start
                .saturating_add(usize::try_from(limit).unwrap_or(usize::MAX))
                .min(order.len());
            let chosen = order[start..end].to_vec();
            let mut rows = Vec::with_capacity(chosen.len());
            for at in chosen {
                rows.push(summary(conn, &catalogue.tests[at as usize])?);
            }
            Ok(Some((window, rows)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::warm_up;
    use crate::db::Db;
    use crate::models::Metric;

    fn of_context(h: &str) -> TestFilter {
        TestFilter {
            context_h: Some(h.into()),
            ..TestFilter::default()
        }
    }

    #[test]
    fn the_cache_keeps_at_most_max_cached_tests_dropping_the_least_recently_used() {
        let cache = Cache::default();
        let (a, b, c, d) = (
            of_context("a"),
            of_context("b"),
            of_context("c"),
            of_context("d"),
        );
        let kept = |cache: &Cache| -> Vec<Option<String>> {
            let entries = cache.entries.lock().unwrap();
            entries.iter().map(|e| e.filter.context_h.clone()).collect()
        };

        cache.entry(&a);
        assert!(cache.make_room(&a, MAX_CACHED_TESTS / 2));
        cache.entry(&b);
        assert!(cache.make_room(&b, MAX_CACHED_TESTS / 4));
        cache.entry(&a);
        cache.entry(&c);
        assert!(cache.make_room(&c, MAX_CACHED_TESTS / 2));
        assert_eq!(kept(&cache), [Some("a".into()), Some("c".into())]);

        cache.entry(&d);
        assert!(!cache.make_room(&d, MAX_CACHED_TESTS + 1));
        assert!(!kept(&cache).contains(&Some("d".into())));
    }

    #[test]
    fn the_warm_up_leaves_every_tests_figures_and_the_newest_runs_totals_ready() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("m.db"), 2).unwrap();
        db.run_here(|conn| {
            conn.execute(
                "INSERT INTO sessions (session_h, run_date, scm_ref, description) \
                 VALUES ('s', '2024-01-01T00:00:00', '', '{}')",
                [],
            )?;
            let metrics: Vec<Metric> = ["a", "b", "a"]
                .iter()
                .enumerate()
                .map(|(n, variant)| Metric {
                    session_h: "s".into(),
                    context_h: "c".into(),
                    item_start_time: "2024-01-01T00:00:00".into(),
                    start_us: n as i64,
                    item_path: "p".into(),
                    item: (*variant).into(),
                    item_variant: (*variant).into(),
                    item_fs_loc: "p.py".into(),
                    kind: "function".into(),
                    component: String::new(),
                    total_time: 1.0,
                    user_time: 0.5,
                    kernel_time: 0.1,
                    cpu_usage: 0.6,
                    mem_usage: 2.0,
                })
                .collect();
            // Through the writer's own insert, so the kept counts the cache checks are right.
            crate::db::store_metrics(conn, &metrics)?;
            Ok(())
        })
        .unwrap();
        let cache = Arc::new(Cache::default());

        warm_up(&db, cache.clone()).unwrap().join().unwrap();

        assert_eq!(cache.runs.lock().unwrap()["s"].tests, 3);
        let entries = cache.entries.lock().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].filter, TestFilter::default());
        let catalogue = entries[0].catalogue.lock().unwrap();
        assert_eq!(catalogue.tests.len(), 2);
        assert_eq!(catalogue.version.metrics, 3);
    }
}
