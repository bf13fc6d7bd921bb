//! The dashboard's aggregates: runs with their totals, tests ranked by their slowest or
//! hungriest run, one test's trend, the tag values for filter menus and the store's summary.
//!
//! Runs and the trend read a few rows through indexes. Ranking tests is the expensive one: it is
//! a `GROUP BY` over every metric of the selection (1,000,000 rows take about a second in
//! SQLite). So the per-test figures of a selection are kept in memory ([`Cache`]), computed
//! once by one pass over its metrics in Rust and then brought up to date, on each request, by
//! folding in only the metrics stored since: metrics ids only grow, so "new" is an id range. The
//! cached figures are checked against the store's counts at every request, in the request's own
//! read transaction; a deletion (or anything but additions) makes them be computed again.
//!
//! The queries here are plain `fn(&Connection, ...)`, like `db.rs`'s; handlers run them through
//! [`crate::db::Db::run`], each in one read transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::db::{Db, Selection};
use crate::error::ApiError;

/// `/runs` and `/tests` rows per page when the client sends no `per_page`.
pub const RUNS_PER_PAGE: u64 = 50;
/// See [`RUNS_PER_PAGE`].
pub const TESTS_PER_PAGE: u64 = 20;
/// The trend's points per context when the client sends no `limit`.
pub const TREND_LIMIT: u64 = 1000;
/// The most points per context a trend answers.
pub const MAX_TREND_LIMIT: u64 = 10_000;
/// The most values of one tag `/tags` lists.
pub const MAX_TAG_VALUES: u64 = 100;
/// The most `tag=` conditions one request may give (each is a condition of the query).
pub const MAX_TAGS: usize = 64;

/// The sessions (and, for tests, metrics) the filters of `/runs` and `/tests` select.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only sessions that reported metrics of this component (for tests: only its metrics).
    pub component: Option<String>,
    /// Only sessions tagged `pipeline_branch` with this value.
    pub pipeline: Option<String>,
    /// Only sessions tagged `pipeline_build_no` with this value.
    pub build: Option<String>,
    /// Only sessions whose tag NAME is VALUE, for every pair.
    pub tags: Vec<(String, String)>,
    /// Only sessions with this SCM reference, exactly.
    pub scm_ref: Option<String>,
}

impl RunFilter {
    /// The conditions on the session `s` and their bound values; with `with_component`, the
    /// component condition too (for runs: the session reported metrics of it).
    fn session_conditions(&self, with_component: bool) -> (Vec<&'static str>, Vec<SqlValue>) {
        let mut clauses = Vec::new();
        let mut values = Vec::new();
        let text = |v: &str| SqlValue::Text(v.to_owned());
        if let (true, Some(component)) = (with_component, &self.component) {
            clauses.push(
                "EXISTS (SELECT 1 FROM component_sessions cs \
                 WHERE cs.component = ? AND cs.session_h = s.session_h)",
            );
            values.push(text(component));
        }
        let tag = "EXISTS (SELECT 1 FROM session_tags t \
                   WHERE t.session_id = s.id AND t.name = ? AND t.value = ?)";
        for (name, value) in [
            ("pipeline_branch", &self.pipeline),
            ("pipeline_build_no", &self.build),
        ] {
            if let Some(value) = value {
                clauses.push(tag);
                values.extend([text(name), text(value)]);
            }
        }
        for (name, value) in &self.tags {
            clauses.push(tag);
            values.extend([text(name), text(value)]);
        }
        if let Some(scm_ref) = &self.scm_ref {
            clauses.push("s.scm_ref = ?");
            values.push(text(scm_ref));
        }
        (clauses, values)
    }
}

/// `WHERE a AND b` (empty for no condition).
fn where_all(clauses: &[&str]) -> String {
    if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    }
}

/// Sessions newest first: by `run_date` as a time (whatever offset or separator each client
/// wrote), then the latest stored first.
const NEWEST_FIRST: &str = " ORDER BY unixepoch(s.run_date, 'subsec') DESC, s.id DESC";

// ---------------------------------------------------------------- runs

/// One run (session) as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// The session's hash.
    pub session_h: String,
    /// As sent.
    pub run_date: String,
    /// As sent.
    pub scm_ref: String,
    /// The session's tags (its `description` object), as sent.
    pub tags: Map<String, Value>,
    /// The `pipeline_branch` tag, if any.
    pub pipeline: Option<String>,
    /// The `pipeline_build_no` tag, if any.
    pub build: Option<String>,
    /// How many metrics the session holds.
    pub tests: u64,
    /// The sum of their `total_time`, in seconds.
    pub total_time: f64,
    /// The execution contexts its metrics were measured on, first stored first.
    pub contexts: Vec<String>,
}

/// The runs a [`RunFilter`] selects, newest first: a listing for [`crate::routes::listing`],
/// with the server's [`Cache`] of each run's totals.
pub struct RunQuery(pub RunFilter, pub Arc<Cache>);

const RUN_COLUMNS: &str = "s.session_h, s.run_date, s.scm_ref, s.description, \
     (SELECT value FROM session_tags WHERE session_id = s.id AND name = 'pipeline_branch'), \
     (SELECT value FROM session_tags WHERE session_id = s.id AND name = 'pipeline_build_no')";

/// A session row of [`RUN_COLUMNS`], with its metrics' totals ([`Cache::run_totals`]).
fn run_from_row(conn: &Connection, cache: &Cache, row: &Row<'_>) -> rusqlite::Result<Run> {
    let description: String = row.get(3)?;
    let tags: Map<String, Value> = serde_json::from_str(&description).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(err))
    })?;
    let session_h: String = row.get(0)?;
    let totals = cache.run_totals(conn, &session_h)?;
    Ok(Run {
        run_date: row.get(1)?,
        scm_ref: row.get(2)?,
        tags,
        pipeline: row.get(4)?,
        build: row.get(5)?,
        tests: totals.tests,
        total_time: totals.total_time,
        contexts: totals.contexts,
        session_h,
    })
}

/// What a run's metrics add up to.
#[derive(Debug, Clone, PartialEq)]
struct RunTotals {
    /// How many metrics, the largest id among them and a [`fingerprint`] of that newest one: a
    /// run whose three are unchanged holds the same metrics (see [`StoreVersion`] for why the
    /// newest one's content).
    tests: u64,
    max_id: i64,
    newest: u64,
    total_time: f64,
    contexts: Vec<String>,
}

/// The most runs whose totals [`Cache`] keeps (about 150 bytes each); past it, it starts over.
const CACHED_RUNS: usize = 20_000;

impl Selection for RunQuery {
    type Row = Run;
    fn count(&self, conn: &Connection) -> rusqlite::Result<u64> {
        let (clauses, values) = self.0.session_conditions(true);
        let sql = format!("SELECT count(*) FROM sessions s{}", where_all(&clauses));
        conn.prepare_cached(&sql)?
            .query_row(params_from_iter(values), |row| row.get(0))
    }
    fn rows(&self, conn: &Connection, offset: u64, limit: u64) -> rusqlite::Result<Vec<Run>> {
        let (clauses, mut values) = self.0.session_conditions(true);
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM sessions s{}{NEWEST_FIRST} LIMIT ? OFFSET ?",
            where_all(&clauses)
        );
        values.push(SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        values.push(SqlValue::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(values))?;
        let mut runs = Vec::new();
        while let Some(row) = rows.next()? {
            runs.push(run_from_row(conn, &self.1, row)?);
        }
        Ok(runs)
    }
}

/// The run stored under exactly `session_h`.
pub fn find_run(
    conn: &Connection,
    cache: &Cache,
    session_h: &str,
) -> rusqlite::Result<Option<Run>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM sessions s WHERE s.session_h = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([session_h])?;
    match rows.next()? {
        Some(row) => Ok(Some(run_from_row(conn, cache, row)?)),
        None => Ok(None),
    }
}

// ---------------------------------------------------------------- tests

/// How `/tests` ranks: by each test's largest wall time or largest memory in the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    /// By the largest `total_time`.
    Slowest,
    /// By the largest `mem_usage`.
    Hungriest,
}

impl Ranking {
    fn slot(self) -> usize {
        match self {
            Ranking::Slowest => 0,
            Ranking::Hungriest => 1,
        }
    }
}

/// The metrics `/tests` ranks: those of the sessions the filter selects, of its component and
/// of one context when asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestFilter {
    /// The session filters; the component applies to the metrics themselves.
    pub runs: RunFilter,
    /// Only the metrics of this execution context.
    pub context_h: Option<String>,
}

impl TestFilter {
    /// The conditions on the metric `m` and their values.
    fn metric_conditions(&self) -> (Vec<String>, Vec<SqlValue>) {
        let (sessions, mut values) = self.runs.session_conditions(false);
        let mut clauses = Vec::new();
        if !sessions.is_empty() {
            clauses.push(format!(
                "m.session_h IN (SELECT s.session_h FROM sessions s{})",
                where_all(&sessions)
            ));
        }
        if let Some(component) = &self.runs.component {
            clauses.push("m.component = ?".into());
            values.push(SqlValue::Text(component.clone()));
        }
        if let Some(context_h) = &self.context_h {
            clauses.push("m.context_h = ?".into());
            values.push(SqlValue::Text(context_h.clone()));
        }
        (clauses, values)
    }

    /// Whether which metrics are selected depends on the sessions table (a session stored after
    /// its metrics brings them into the selection).
    fn depends_on_sessions(&self) -> bool {
        let r = &self.runs;
        r.pipeline.is_some() || r.build.is_some() || !r.tags.is_empty() || r.scm_ref.is_some()
    }
}

/// One test in `/tests`: its identity, what its latest run was, and its figures over the
/// selection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestSummary {
    /// The machine.
    pub context_h: String,
    /// The module.
    pub item_path: String,
    /// The name with parameters.
    pub item_variant: String,
    /// The name, as its latest metric gives it.
    pub item: String,
    /// The component, as its latest metric gives it.
    pub component: String,
    /// The item type, as its latest metric gives it.
    pub kind: String,
    /// How many metrics of it the selection holds.
    pub runs: u64,
    /// Seconds.
    pub max_total_time: f64,
    /// Seconds.
    pub mean_total_time: f64,
    /// Seconds, of the latest metric (by item_start_time).
    pub last_total_time: f64,
    /// MB.
    pub max_mem_usage: f64,
    /// MB.
    pub mean_mem_usage: f64,
    /// MB, of the latest metric.
    pub last_mem_usage: f64,
    /// The session of the latest metric.
    pub last_session_h: String,
    /// That session's run_date; null when the session was never stored.
    pub last_run_date: Option<String>,
}

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
struct StoreVersion {
    metrics: u64,
    max_metric_id: i64,
    newest_metric: u64,
    sessions: u64,
    max_session_id: i64,
    newest_session: u64,
}

/// A hash of the fields of a row, to tell it from another stored under the same id.
fn fingerprint(row: &Row<'_>, columns: std::ops::Range<usize>) -> rusqlite::Result<u64> {
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

fn store_version(conn: &Connection) -> rusqlite::Result<StoreVersion> {
    conn.prepare_cached(
        "SELECT coalesce((SELECT n FROM counters WHERE name = 'metrics'), 0), \
         coalesce(m.id, 0), m.session_h, m.context_h, m.item_path, m.item_variant, m.start_us, \
         m.total_time, m.mem_usage, \
         (SELECT count(*) FROM sessions), coalesce(s.id, 0), s.session_h \
         FROM (SELECT 1) \
         LEFT JOIN metrics m ON m.id = (SELECT max(id) FROM metrics) \
         LEFT JOIN sessions s ON s.id = (SELECT max(id) FROM sessions)",
    )?
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

/// Whether the newest metric and session of `old` are still stored, unchanged: with the counts,
/// what tells additions alone from a deletion followed by additions.
fn still_stored(conn: &Connection, old: &StoreVersion) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT m.session_h, m.context_h, m.item_path, m.item_variant, m.start_us, \
         m.total_time, m.mem_usage, s.session_h \
         FROM (SELECT 1) LEFT JOIN metrics m ON m.id = ?1 LEFT JOIN sessions s ON s.id = ?2",
    )?
    .query_row(params![old.max_metric_id, old.max_session_id], |row| {
        Ok(fingerprint(row, 0..7)? == old.newest_metric
            && fingerprint(row, 7..8)? == old.newest_session)
    })
}

/// One test's figures over a selection. Its identity and descriptive fields are read from its
/// latest metric when listed, so that the cache holds numbers and one key per test.
#[derive(Debug, Clone)]
struct TestFigures {
    key: Arc<str>,
    runs: u64,
    sum_time: f64,
    max_time: f64,
    sum_mem: f64,
    max_mem: f64,
    /// `(start_us, id)` of the latest metric.
    last: (i64, i64),
}

/// The per-test figures of one selection, as of `version`.
#[derive(Debug, Default)]
struct Catalogue {
    version: StoreVersion,
    index: HashMap<Arc<str>, usize>,
    tests: Vec<TestFigures>,
    /// Test positions in each [`Ranking`]'s order, computed on first use after a change.
    ranked: [Option<Vec<u32>>; 2],
}

/// The columns a catalogue reads of each metric.
const FIGURE_COLUMNS: &str =
    "m.id, m.context_h, m.item_path, m.item_variant, m.total_time, m.mem_usage, m.start_us";

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
                        sum_time: 0.0,
                        max_time: f64::NEG_INFINITY,
                        sum_mem: 0.0,
                        max_mem: f64::NEG_INFINITY,
                        last: (i64::MIN, i64::MIN),
                    });
                    self.tests.len() - 1
                }
            };
            let test = &mut self.tests[at];
            test.runs += 1;
            test.sum_time += time;
            test.sum_mem += mem;
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
    fn refresh(&mut self, conn: &Connection, filter: &TestFilter) -> rusqlite::Result<()> {
        let now = store_version(conn)?;
        if now == self.version && self.version != StoreVersion::default() {
            return Ok(());
        }
        let old = self.version;
        let (added_metrics, added_sessions): (u64, u64) = conn
            .prepare_cached(
                "SELECT (SELECT count(*) FROM metrics WHERE id > ?1), \
                 (SELECT count(*) FROM sessions WHERE id > ?2)",
            )?
            .query_row(params![old.max_metric_id, old.max_session_id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
        let only_grew = old != StoreVersion::default()
            && now.metrics == old.metrics + added_metrics
            && now.sessions == old.sessions + added_sessions
            && still_stored(conn, &old)?;
        let (clauses, values) = filter.metric_conditions();
        if !only_grew {
            *self = Catalogue::default();
            let sql = format!(
                "SELECT {FIGURE_COLUMNS} FROM metrics m{}",
                where_and(&clauses, None)
            );
            self.fold(conn, &sql, values)?;
        } else {
            if added_metrics > 0 {
                let sql = format!(
                    "SELECT {FIGURE_COLUMNS} FROM metrics m{}",
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
                let sql = format!(
                    "SELECT {FIGURE_COLUMNS} FROM metrics m INDEXED BY metrics_by_session{}",
                    where_and(
                        &clauses,
                        Some("m.id <= ? AND m.session_h IN (SELECT session_h FROM sessions WHERE id > ?)")
                    )
                );
                let mut all = vec![
                    SqlValue::Integer(old.max_metric_id),
                    SqlValue::Integer(old.max_session_id),
                ];
                all.extend(values);
                self.fold(conn, &sql, all)?;
            }
        }
        self.version = now;
        Ok(())
    }

    /// Test positions in `ranking`'s order: largest first, ties by key.
    fn ranked(&mut self, ranking: Ranking) -> &[u32] {
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
fn where_and(clauses: &[String], first: Option<&str>) -> String {
    let all: Vec<&str> = first
        .into_iter()
        .chain(clauses.iter().map(String::as_str))
        .collect();
    where_all(&all)
}

/// How many selections' figures [`Cache`] keeps (the least recently used goes first).
const CACHED_SELECTIONS: usize = 8;
/// How many tests' figures [`Cache`] keeps over all its selections (about 200 bytes each, so
/// at most about 40 MB); past it the least recently used selections go, and one selection with
/// more tests than this on its own is computed again at each request instead of being kept.
const MAX_CACHED_TESTS: usize = 200_000;

/// What the dashboard's routes keep in memory, one per server: the per-test figures of the
/// selections `/tests` was asked for lately, and each run's totals, each checked against the
/// store at every request (see the module's documentation).
#[derive(Default)]
pub struct Cache {
    entries: Mutex<Vec<CacheEntry>>,
    runs: Mutex<HashMap<String, RunTotals>>,
}

struct CacheEntry {
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
    fn run_totals(&self, conn: &Connection, session_h: &str) -> rusqlite::Result<RunTotals> {
        let (tests, max_id, newest): (u64, i64, u64) = conn
            .prepare_cached(
                "SELECT c.n, coalesce(m.id, 0), m.start_us, m.total_time, m.context_h \
                 FROM (SELECT count(*) AS n, max(id) AS newest FROM metrics WHERE session_h = ?1) c \
                 LEFT JOIN metrics m ON m.id = c.newest",
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
            "SELECT context_h, sum(total_time) FROM metrics WHERE session_h = ?1 \
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
    /// would, and the totals of the runs of `/runs`' first page.
    fn warm(self: &Arc<Self>, conn: &Connection) -> Result<(), ApiError> {
        self.with_fresh(conn, &TestFilter::default(), |_| Ok(()))?;
        RunQuery(RunFilter::default(), self.clone()).rows(conn, 0, RUNS_PER_PAGE)?;
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

/// Computes the figures of every test now, on a thread of its own, so that the dashboard's first
/// view (`/tests` unfiltered, slowest and hungriest, and `/runs`' first page) finds them ready
/// instead of waiting for a pass over every metric (about half a second for 1,000,000). A request that comes first
/// waits for this computation rather than doing it again. Returns the thread, if it started.
pub fn warm_up(db: &Db, cache: Arc<Cache>) -> Option<std::thread::JoinHandle<()>> {
    let db = db.clone();
    let spawned = std::thread::Builder::new()
        .name("tests-warm-up".into())
        .spawn(move || {
            let warmed = db.run_here(|conn| {
                let tx = conn.transaction()?;
                cache.warm(&tx)
            });
            if let Err(err) = warmed {
                log::warn!("could not compute the tests' figures ahead of time: {err}");
            }
        });
    match spawned {
        Ok(thread) => Some(thread),
        Err(err) => {
            log::warn!("could not start computing the tests' figures ahead of time: {err}");
            None
        }
    }
}

/// A test's row: its figures, and what its latest metric says of it.
fn summary(conn: &Connection, test: &TestFigures) -> rusqlite::Result<TestSummary> {
    let runs = test.runs.max(1) as f64;
    conn.prepare_cached(
        "SELECT m.context_h, m.item_path, m.item_variant, m.item, m.component, m.kind, \
         m.total_time, m.mem_usage, m.session_h, s.run_date \
         FROM metrics m LEFT JOIN sessions s ON s.session_h = m.session_h WHERE m.id = ?1",
    )?
    .query_row([test.last.1], |row| {
        Ok(TestSummary {
            context_h: row.get(0)?,
            item_path: row.get(1)?,
            item_variant: row.get(2)?,
            item: row.get(3)?,
            component: row.get(4)?,
            kind: row.get(5)?,
            runs: test.runs,
            max_total_time: test.max_time,
            mean_total_time: test.sum_time / runs,
            last_total_time: row.get(6)?,
            max_mem_usage: test.max_mem,
            mean_mem_usage: test.sum_mem / runs,
            last_mem_usage: row.get(7)?,
            last_session_h: row.get(8)?,
            last_run_date: row.get(9)?,
        })
    })
}

// ---------------------------------------------------------------- trend

/// One metric of a test, as a point of its trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendPoint {
    /// The run it belongs to.
    pub session_h: String,
    /// That run's date; null when the session was never stored.
    pub run_date: Option<String>,
    /// As sent.
    pub item_start_time: String,
    /// Seconds.
    pub total_time: f64,
    /// Seconds.
    pub user_time: f64,
    /// Seconds.
    pub kernel_time: f64,
    /// user_time + kernel_time, seconds.
    pub cpu_time: f64,
    /// MB.
    pub mem_usage: f64,
}

/// The points of one test on one execution context, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// The machine.
    pub context_h: String,
    /// Oldest first.
    pub points: Vec<TrendPoint>,
}

/// The latest `limit` points of the test (`item_path`, `item_variant`) on each context (or on
/// `context_h` only), oldest first, one series per context in the order of their hashes. Empty
/// when the test has no metric.
pub fn trend(
    conn: &Connection,
    item_path: &str,
    item_variant: &str,
    context_h: Option<&str>,
    limit: u64,
) -> rusqlite::Result<Vec<Series>> {
    // Newest first, so each context's series stops at `limit` points; turned around below.
    let mut stmt = conn.prepare_cached(
        "SELECT m.context_h, m.session_h, s.run_date, m.item_start_time, m.total_time, \
         m.user_time, m.kernel_time, m.mem_usage \
         FROM metrics m LEFT JOIN sessions s ON s.session_h = m.session_h \
         WHERE m.item_variant = ?1 AND +m.item_path = ?2 AND (?3 IS NULL OR +m.context_h = ?3) \
         ORDER BY m.context_h, m.start_us DESC, m.id DESC",
    )?;
    let mut rows = stmt.query(params![item_variant, item_path, context_h])?;
    let mut series: Vec<Series> = Vec::new();
    while let Some(row) = rows.next()? {
        let context: String = row.get(0)?;
        if series.last().is_none_or(|s| s.context_h != context) {
            series.push(Series {
                context_h: context,
                points: Vec::new(),
            });
        }
        let Some(current) = series.last_mut() else {
            continue;
        };
        if current.points.len() as u64 >= limit {
            continue;
        }
        let (user_time, kernel_time): (f64, f64) = (row.get(5)?, row.get(6)?);
        current.points.push(TrendPoint {
            session_h: row.get(1)?,
            run_date: row.get(2)?,
            item_start_time: row.get(3)?,
            total_time: row.get(4)?,
            user_time,
            kernel_time,
            cpu_time: user_time + kernel_time,
            mem_usage: row.get(7)?,
        });
    }
    for s in &mut series {
        s.points.reverse();
    }
    Ok(series)
}

// ---------------------------------------------------------------- tags and summary

/// One tag name and its most used values, for the filter menus.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagValues {
    /// The tag's name.
    pub name: String,
    /// At most [`MAX_TAG_VALUES`] values, the most used first (ties alphabetically).
    pub values: Vec<TagValue>,
}

/// A tag value and how many sessions carry it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagValue {
    /// As stored (JSON text when the session sent no string).
    pub value: String,
    /// How many sessions have the tag set to it.
    pub sessions: u64,
}

/// Every tag name, alphabetically, with its most used values: one pass over the tag index.
pub fn tags(conn: &Connection) -> rusqlite::Result<Vec<TagValues>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, value, count(*) AS n FROM session_tags GROUP BY name, value \
         ORDER BY name, n DESC, value",
    )?;
    let mut rows = stmt.query([])?;
    let mut all: Vec<TagValues> = Vec::new();
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        if all.last().is_none_or(|t| t.name != name) {
            all.push(TagValues {
                name,
                values: Vec::new(),
            });
        }
        if let Some(current) = all.last_mut() {
            if (current.values.len() as u64) < MAX_TAG_VALUES {
                current.values.push(TagValue {
                    value: row.get(1)?,
                    sessions: row.get(2)?,
                });
            }
        }
    }
    Ok(all)
}

/// The store at a glance, from counters, facets and the sessions table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Metrics stored.
    pub metrics: u64,
    /// Sessions stored.
    pub sessions: u64,
    /// Execution contexts stored.
    pub contexts: u64,
    /// Distinct non-empty components among the metrics.
    pub components: u64,
    /// Distinct `item_variant` values among the metrics (the same name in two modules or on
    /// two machines counts once).
    pub tests: u64,
    /// The earliest session's run_date, as sent; null without sessions.
    pub first_run_date: Option<String>,
    /// The latest session's run_date, as sent; null without sessions.
    pub last_run_date: Option<String>,
}

/// The summary; every figure is a counter, a count of a facet or of a small table, or one end of
/// the sessions in time.
pub fn summary_of_store(conn: &Connection) -> rusqlite::Result<Summary> {
    let (metrics, sessions, contexts, components, tests) = conn
        .prepare_cached(
            "SELECT coalesce((SELECT n FROM counters WHERE name = 'metrics'), 0), \
             (SELECT count(*) FROM sessions), (SELECT count(*) FROM contexts), \
             (SELECT count(*) FROM metric_facets WHERE field = 'component' AND value != ''), \
             (SELECT count(*) FROM metric_facets WHERE field = 'item_variant')",
        )?
        .query_row([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })?;
    let end = |order: &str| -> rusqlite::Result<Option<String>> {
        conn.prepare_cached(&format!(
            "SELECT run_date FROM sessions ORDER BY unixepoch(run_date, 'subsec') {order}, \
             id {order} LIMIT 1"
        ))?
        .query_row([], |row| row.get(0))
        .optional()
    };
    Ok(Summary {
        metrics,
        sessions,
        contexts,
        components,
        tests,
        first_run_date: end("ASC")?,
        last_run_date: end("DESC")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
