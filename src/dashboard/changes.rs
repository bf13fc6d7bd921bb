//! Which build changed which test, per pipeline: the series of every test of a pipeline (one
//! value per build, in build order, for wall time, CPU time and memory), their analyses by
//! [`crate::changes::analyze`], and the detected changes newest first, kept in memory and brought
//! up to date as metrics arrive.
//!
//! A pipeline's history is read once (its sessions through the tag index, their metrics through
//! the session index) and then, at each request, the metrics stored since are folded in: only
//! the tests that got a value are analysed again. As for the other figures of the dashboard
//! ([`super::catalogue`]), the store's version is checked in the request's own read transaction,
//! and anything but additions (a delete, a prune) makes the history be read again.
//!
//! It runs a little over 600 lines: reading a history, folding new metrics in and listing the
//! changes all work on the same private per-pipeline state, which a split would have to expose.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::changes::{analyze, Analysis, Noise, Params, Trend};
use crate::error::ApiError;

use super::catalogue::{since, Since, StoreVersion};

/// How many pipelines' histories are kept (the least recently used goes first).
pub(super) const CACHED_PIPELINES: usize = 8;

/// The most recent builds of a test that are analysed: the detection is meant for the latest
/// few hundred builds (`docs/change-detection.md`, Cost).
pub const MAX_SERIES_POINTS: usize = 500;

/// The measures a series is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Wall time, seconds.
    Wall,
    /// User + kernel time, seconds.
    Cpu,
    /// Memory, MB.
    Memory,
}

impl Measure {
    /// Every measure, in the order answers list them.
    pub const ALL: [Measure; 3] = [Measure::Wall, Measure::Cpu, Measure::Memory];

    /// The measure of this name (`wall`, `cpu`, `memory`).
    pub fn named(name: &str) -> Option<Measure> {
        match name {
            "wall" => Some(Measure::Wall),
            "cpu" => Some(Measure::Cpu),
            "memory" => Some(Measure::Memory),
            _ => None,
        }
    }

    fn slot(self) -> usize {
        self as usize
    }

    fn params(self) -> Params {
        match self {
            Measure::Wall | Measure::Cpu => Params::time(),
            Measure::Memory => Params::memory(),
        }
    }
}

/// Where a point sits in a pipeline's order: builds by number (shorter first, then by text, so
/// that numbers sort numerically), sessions without pipeline tags by run date then hash.
type BuildKey = (usize, String);

/// One point of a pipeline: a build, or a session when the pipeline is the untagged one.
#[derive(Debug, Clone)]
struct Build {
    /// `pipeline_build_no`; `None` for an untagged session.
    build: Option<String>,
    /// Its sessions, first stored first.
    sessions: Vec<String>,
    scm_ref: String,
    run_date: String,
}

/// One test of a pipeline on one machine.
#[derive(Debug)]
struct TestHistory {
    context_h: String,
    item_path: String,
    item_variant: String,
    kind: String,
    component: String,
    /// `(start_us, id)` of the latest metric, whose kind and component are kept.
    last: (i64, i64),
    /// Per build, the values of each measure (several when a build ran the test more than once).
    points: BTreeMap<BuildKey, [Vec<f64>; 3]>,
    /// The analyses per measure and the build of each analysed value; `None` until analysed
    /// after the last new value.
    analysed: Option<Analysed>,
}

#[derive(Debug)]
struct Analysed {
    builds: Vec<BuildKey>,
    measures: [Analysis; 3],
}

impl TestHistory {
    /// Analyses the latest [`MAX_SERIES_POINTS`] builds, each build's value the median of its
    /// values.
    fn analyse(&mut self) -> &Analysed {
        self.analysed.get_or_insert_with(|| {
            let skip = self.points.len().saturating_sub(MAX_SERIES_POINTS);
            let builds: Vec<BuildKey> = self.points.keys().skip(skip).cloned().collect();
            let series = |slot: usize| -> Vec<f64> {
                self.points
                    .values()
                    .skip(skip)
                    .map(|values| median_of(&values[slot]))
                    .collect()
            };
            let measures = Measure::ALL.map(|m| analyze(&series(m.slot()), &m.params()));
            Analysed { builds, measures }
        })
    }
}

fn median_of(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A change as listed: which test, measure and change of its analysis.
#[derive(Debug, Clone)]
struct Listed {
    build: BuildKey,
    test: usize,
    measure: Measure,
    change: usize,
}

/// Everything known of one pipeline, as of `version`.
#[derive(Debug, Default)]
struct History {
    version: StoreVersion,
    /// Which point each session of the pipeline belongs to.
    sessions: HashMap<String, BuildKey>,
    builds: BTreeMap<BuildKey, Build>,
    index: HashMap<(String, String, String), usize>,
    tests: Vec<TestHistory>,
    /// Every change, newest first; `None` when a test was analysed again since.
    listed: Option<Vec<Listed>>,
}

const METRIC_COLUMNS: &str = "id, session_h, context_h, item_path, item_variant, kind, component, \
     start_us, total_time, user_time + kernel_time, mem_usage";

impl History {
    /// The sessions of `pipeline` (`""`: those without a `pipeline_branch` tag) stored after
    /// session id `after`.
    fn add_sessions(
        &mut self,
        conn: &Connection,
        pipeline: &str,
        after: i64,
    ) -> rusqlite::Result<Vec<String>> {
        let sql = if pipeline.is_empty() {
            "SELECT s.session_h, s.scm_ref, s.run_date, NULL FROM sessions s \
             WHERE s.id > ?2 AND ?1 = '' AND NOT EXISTS (SELECT 1 FROM session_tags p \
             WHERE p.session_id = s.id AND p.name = 'pipeline_branch') ORDER BY s.id"
        } else {
            "SELECT s.session_h, s.scm_ref, s.run_date, b.value FROM session_tags p \
             JOIN sessions s ON s.id = p.session_id \
             JOIN session_tags b ON b.session_id = s.id AND b.name = 'pipeline_build_no' \
             WHERE p.name = 'pipeline_branch' AND p.value = ?1 AND s.id > ?2 AND b.value != '' \
             ORDER BY s.id"
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![pipeline, after])?;
        let mut added = Vec::new();
        while let Some(row) = rows.next()? {
            let session_h: String = row.get(0)?;
            let scm_ref: String = row.get(1)?;
            let run_date: String = row.get(2)?;
            let build: Option<String> = row.get(3)?;
            let key = match &build {
                Some(b) => (b.len(), b.clone()),
                None => (0, format!("{run_date} {session_h}")),
            };
            let point = self.builds.entry(key.clone()).or_insert_with(|| Build {
                build,
                sessions: Vec::new(),
                scm_ref,
                run_date,
            });
            point.sessions.push(session_h.clone());
            self.sessions.insert(session_h.clone(), key);
            added.push(session_h);
        }
        Ok(added)
    }

    /// Folds in the metrics `rows` yields (rows of [`METRIC_COLUMNS`]) of the pipeline's
    /// sessions.
    fn fold(&mut self, mut rows: rusqlite::Rows<'_>) -> rusqlite::Result<()> {
        while let Some(row) = rows.next()? {
            let session_h: String = row.get(1)?;
            let Some(build) = self.sessions.get(&session_h).cloned() else {
                continue;
            };
            self.add_metric(row, build)?;
        }
        Ok(())
    }

    fn add_metric(&mut self, row: &Row<'_>, build: BuildKey) -> rusqlite::Result<()> {
        let id: i64 = row.get(0)?;
        let key: (String, String, String) = (row.get(2)?, row.get(3)?, row.get(4)?);
        let start: i64 = row.get(7)?;
        let values: [f64; 3] = [row.get(8)?, row.get(9)?, row.get(10)?];
        let at = match self.index.get(&key) {
            Some(&at) => at,
            None => {
                self.tests.push(TestHistory {
                    context_h: key.0.clone(),
                    item_path: key.1.clone(),
                    item_variant: key.2.clone(),
                    kind: String::new(),
                    component: String::new(),
                    last: (i64::MIN, i64::MIN),
                    points: BTreeMap::new(),
                    analysed: None,
                });
                self.index.insert(key, self.tests.len() - 1);
                self.tests.len() - 1
            }
        };
        let test = &mut self.tests[at];
        if (start, id) > test.last {
            test.last = (start, id);
            test.kind = row.get(5)?;
            test.component = row.get(6)?;
        }
        let point = test.points.entry(build).or_default();
        for (slot, value) in values.into_iter().enumerate() {
            point[slot].push(value);
        }
        test.analysed = None;
        self.listed = None;
        Ok(())
    }

    /// Brings the history of `pipeline` up to date with what `conn` sees.
    fn refresh(&mut self, conn: &Connection, pipeline: &str) -> rusqlite::Result<()> {
        let old = self.version;
        let now = match since(conn, &old)? {
            Since::Same => return Ok(()),
            Since::Grew { now, metrics, .. } => {
                let sessions = self.add_sessions(conn, pipeline, old.max_session_id)?;
                // Metrics stored before their session, which now brings them in.
                self.read_sessions_metrics(conn, &sessions, old.max_metric_id)?;
                if metrics > 0 {
                    let sql = format!("SELECT {METRIC_COLUMNS} FROM metrics WHERE id > ?1");
                    let mut stmt = conn.prepare_cached(&sql)?;
                    let rows = stmt.query([old.max_metric_id])?;
                    self.fold(rows)?;
                }
                now
            }
            Since::Changed(now) => {
                *self = History::default();
                let sessions = self.add_sessions(conn, pipeline, 0)?;
                self.read_sessions_metrics(conn, &sessions, i64::MAX)?;
                now
            }
        };
        self.version = now;
        Ok(())
    }

    /// The metrics of `sessions` with an id up to `up_to`, through the session index.
    fn read_sessions_metrics(
        &mut self,
        conn: &Connection,
        sessions: &[String],
        up_to: i64,
    ) -> rusqlite::Result<()> {
        let sql = format!(
            "SELECT {METRIC_COLUMNS} FROM metrics \
             WHERE session_id = (SELECT id FROM session_hashes WHERE h = ?1) AND id <= ?2 \
             ORDER BY id"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        for session_h in sessions {
            let rows = stmt.query(params![session_h, up_to])?;
            self.fold(rows)?;
        }
        Ok(())
    }

    /// Every change of every test, newest first (then the largest move first), analysing the
    /// tests that got values since.
    fn listed(&mut self) -> &[Listed] {
        if self.listed.is_none() {
            let mut all = Vec::new();
            for (at, test) in self.tests.iter_mut().enumerate() {
                let analysed = test.analyse();
                for measure in Measure::ALL {
                    for (n, change) in analysed.measures[measure.slot()].changes.iter().enumerate()
                    {
                        all.push((
                            change.change_percent.map_or(0.0, f64::abs),
                            Listed {
                                build: analysed.builds[change.index].clone(),
                                test: at,
                                measure,
                                change: n,
                            },
                        ));
                    }
                }
            }
            all.sort_by(|(a_size, a), (b_size, b)| {
                b.build
                    .cmp(&a.build)
                    .then_with(|| b_size.total_cmp(a_size))
                    .then_with(|| a.test.cmp(&b.test))
                    .then_with(|| a.measure.slot().cmp(&b.measure.slot()))
            });
            self.listed = Some(all.into_iter().map(|(_, listed)| listed).collect());
        }
        self.listed.as_deref().unwrap_or_default()
    }
}

/// What `/changes` selects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeFilter {
    /// `pipeline_branch`; empty for the sessions without one.
    pub pipeline: String,
    /// Only tests of this component.
    pub component: Option<String>,
    /// Only this measure.
    pub metric: Option<Measure>,
    /// Only changes starting at this build or later (a run date for the untagged sessions).
    pub since: Option<String>,
}

impl ChangeFilter {
    fn since_key(&self) -> Option<BuildKey> {
        self.since.as_ref().map(|since| {
            if self.pipeline.is_empty() {
                (0, since.clone())
            } else {
                (since.len(), since.clone())
            }
        })
    }
}

/// One detected change, as `/changes` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeRow {
    /// The test's module.
    pub item_path: String,
    /// The test's name with parameters.
    pub item_variant: String,
    /// Of the test's latest metric.
    pub kind: String,
    /// Of the test's latest metric; may be empty.
    pub component: String,
    /// The machine.
    pub context_h: String,
    /// The context's machine name; null when the context was never stored.
    pub machine_node: Option<String>,
    /// `wall`, `cpu` or `memory`.
    pub metric: Measure,
    /// The first build at the new level; null for the untagged sessions.
    pub build: Option<String>,
    /// That build's sessions.
    pub sessions: Vec<String>,
    /// That build's SCM reference (of its first session).
    pub scm_ref: String,
    /// That build's run date (of its first session).
    pub run_date: String,
    /// The median level before, in seconds or MB.
    pub before: f64,
    /// The median level from this build on.
    pub after: f64,
    /// `after` against `before`, percent; null when `before` is 0.
    pub change_percent: Option<f64>,
    /// 1 − the p-value of the test that found it.
    pub confidence: f64,
    /// The test's noise on this metric (the latest values).
    pub noise: Option<Noise>,
    /// The test's slope on this metric since its last change.
    pub trend: Option<Trend>,
}

/// One test's analysis on one measure, as `/changes/tests` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct TestChanges {
    /// The test's module.
    pub item_path: String,
    /// The test's name with parameters.
    pub item_variant: String,
    /// Of the test's latest metric.
    pub kind: String,
    /// Of the test's latest metric; may be empty.
    pub component: String,
    /// The machine.
    pub context_h: String,
    /// `wall`, `cpu` or `memory`.
    pub metric: Measure,
    /// How many builds were analysed.
    pub builds: usize,
    /// Oldest first.
    pub changes: Vec<ChangeRow>,
    /// The noise of the latest values.
    pub noise: Option<Noise>,
    /// The slope since the last change.
    pub trend: Option<Trend>,
}

type SharedHistory = Arc<Mutex<History>>;

/// The changes of every pipeline asked for lately, one per server.
#[derive(Default)]
pub struct ChangeCache {
    /// Per pipeline: its name, when it was last used, its history.
    entries: Mutex<Vec<(String, u64, SharedHistory)>>,
}

impl ChangeCache {
    /// The pipeline's history, shared with concurrent requests for it, so that they wait for
    /// one reading rather than each doing it.
    fn entry(&self, pipeline: &str) -> Arc<Mutex<History>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let tick = entries.iter().map(|e| e.1).max().unwrap_or(0) + 1;
        if let Some(entry) = entries.iter_mut().find(|e| e.0 == pipeline) {
            entry.1 = tick;
            return entry.2.clone();
        }
        if entries.len() >= CACHED_PIPELINES {
            if let Some(oldest) = (0..entries.len()).min_by_key(|&i| entries[i].1) {
                entries.swap_remove(oldest);
            }
        }
        let history = Arc::new(Mutex::new(History::default()));
        entries.push((pipeline.to_owned(), tick, history.clone()));
        history
    }

    /// Runs `read` on `pipeline`'s history, brought up to date with what `conn` sees.
    fn with_fresh<T>(
        &self,
        conn: &Connection,
        pipeline: &str,
        read: impl FnOnce(&mut History) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let shared = self.entry(pipeline);
        let mut history = shared.lock().unwrap_or_else(PoisonError::into_inner);
        history.refresh(conn, pipeline)?;
        read(&mut history)
    }

    /// Brings `pipeline`'s changes up to date now, so that the first request finds them ready.
    pub(super) fn warm(&self, conn: &Connection, pipeline: &str) -> Result<(), ApiError> {
        self.with_fresh(conn, pipeline, |history| {
            history.listed();
            Ok(())
        })
    }

    /// One page of the changes `filter` selects, newest first, as of `conn`'s read transaction;
    /// `window` lays the page over their number as [`super::Cache::page`]'s does.
    pub fn page<W>(
        &self,
        conn: &Connection,
        filter: &ChangeFilter,
        window: impl FnOnce(u64) -> Result<Option<(W, u64, u64)>, ApiError>,
    ) -> Result<Option<(W, Vec<ChangeRow>)>, ApiError> {
        self.with_fresh(conn, &filter.pipeline, |history| {
            let since = filter.since_key();
            history.listed();
            let History { tests, listed, .. } = &*history;
            let chosen: Vec<Listed> = listed
                .as_deref()
                .unwrap_or_default()
                .iter()
                .take_while(|l| since.as_ref().is_none_or(|s| l.build >= *s))
                .filter(|l| filter.metric.is_none_or(|m| m == l.measure))
                .filter(|l| {
                    filter
                        .component
                        .as_ref()
                        .is_none_or(|c| tests[l.test].component == *c)
                })
                .cloned()
                .collect();
            let Some((window, offset, limit)) = window(chosen.len() as u64)? else {
                return Ok(None);
            };
            let mut rows = Vec::new();
            for listed in chosen
                .into_iter()
                .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
            {
                rows.push(history.row(conn, listed.test, listed.measure, listed.change)?);
            }
            Ok(Some((window, rows)))
        })
    }

    /// One test's analyses in `pipeline`, per context and measure (`context_h` and `metric`
    /// narrow them); empty when the pipeline never ran it.
    pub fn test(
        &self,
        conn: &Connection,
        pipeline: &str,
        item_path: &str,
        item_variant: &str,
        context_h: Option<&str>,
        metric: Option<Measure>,
    ) -> Result<Vec<TestChanges>, ApiError> {
        self.with_fresh(conn, pipeline, |history| {
            let mut found: Vec<usize> = (0..history.tests.len())
                .filter(|&at| {
                    let t = &history.tests[at];
                    t.item_path == item_path
                        && t.item_variant == item_variant
                        && context_h.is_none_or(|c| t.context_h == c)
                })
                .collect();
            found.sort_by(|&a, &b| history.tests[a].context_h.cmp(&history.tests[b].context_h));
            let mut out = Vec::new();
            for at in found {
                for measure in Measure::ALL {
                    if metric.is_some_and(|m| m != measure) {
                        continue;
                    }
                    let count = history.tests[at].analyse().measures[measure.slot()]
                        .changes
                        .len();
                    let mut changes = Vec::with_capacity(count);
                    for n in 0..count {
                        changes.push(history.row(conn, at, measure, n)?);
                    }
                    let test = &mut history.tests[at];
                    let analysed = test.analyse();
                    let analysis = &analysed.measures[measure.slot()];
                    let (noise, trend, builds) = (
                        analysis.noise.clone(),
                        analysis.trend.clone(),
                        analysed.builds.len(),
                    );
                    out.push(TestChanges {
                        item_path: test.item_path.clone(),
                        item_variant: test.item_variant.clone(),
                        kind: test.kind.clone(),
                        component: test.component.clone(),
                        context_h: test.context_h.clone(),
                        metric: measure,
                        builds,
                        changes,
                        noise,
                        trend,
                    });
                }
            }
            Ok(out)
        })
    }

    /// The builds of `pipeline` from the start of the stable segment before `build` up to the
    /// build before it: the builds since the latest change, over every test, that starts before
    /// `build` (all the builds before it when there is none). `None` when the pipeline has no
    /// such build.
    pub fn stable_segment(
        &self,
        conn: &Connection,
        pipeline: &str,
        build: &str,
    ) -> Result<Option<Vec<String>>, ApiError> {
        if pipeline.is_empty() {
            return Ok(None);
        }
        self.with_fresh(conn, pipeline, |history| {
            let candidate: BuildKey = (build.len(), build.to_owned());
            let start = history
                .listed()
                .iter()
                .map(|l| &l.build)
                .find(|b| **b < candidate)
                .cloned();
            let builds: Vec<String> = history
                .builds
                .range(start.unwrap_or_default()..candidate)
                .filter_map(|(_, b)| b.build.clone())
                .collect();
            Ok((!builds.is_empty()).then_some(builds))
        })
    }
}

impl History {
    /// The `change`-th change of test `at` on `measure`, as listed.
    fn row(
        &mut self,
        conn: &Connection,
        at: usize,
        measure: Measure,
        change: usize,
    ) -> Result<ChangeRow, ApiError> {
        self.tests[at].analyse();
        let test = &self.tests[at];
        let Some(analysed) = test.analysed.as_ref() else {
            return Err(ApiError::Internal);
        };
        let analysis = &analysed.measures[measure.slot()];
        let found = &analysis.changes[change];
        let key = &analysed.builds[found.index];
        let build = self.builds.get(key).cloned().ok_or_else(|| {
            log::error!("a change starts at a build the pipeline does not know");
            ApiError::Internal
        })?;
        let machine_node: Option<String> = conn
            .prepare_cached("SELECT machine_node FROM contexts WHERE h = ?1")?
            .query_row([&test.context_h], |row| row.get(0))
            .optional()?;
        Ok(ChangeRow {
            item_path: test.item_path.clone(),
            item_variant: test.item_variant.clone(),
            kind: test.kind.clone(),
            component: test.component.clone(),
            context_h: test.context_h.clone(),
            machine_node,
            metric: measure,
            build: build.build,
            sessions: build.sessions,
            scm_ref: build.scm_ref,
            run_date: build.run_date,
            before: found.before,
            after: found.after,
            change_percent: found.change_percent,
            confidence: found.confidence,
            noise: analysis.noise.clone(),
            trend: analysis.trend.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builds_value_is_the_median_of_its_runs() {
        assert_eq!(median_of(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_of(&[4.0, 1.0]), 2.5);
    }
}
