//! How `/tests` ranks and what it selects: the ranking, the filter and a test's row.

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;
use serde::Serialize;

use super::catalogue::TestFigures;
use super::runs::{where_all, RunFilter};
use crate::db::query::SESSION_HASH_ID;

/// How `/tests` ranks: by each test's largest wall time or largest memory in the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    /// By the largest `total_time`.
    Slowest,
    /// By the largest `mem_usage`.
    Hungriest,
}

impl Ranking {
    pub(super) fn slot(self) -> usize {
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
    pub(super) fn metric_conditions(&self) -> (Vec<String>, Vec<SqlValue>) {
        let (sessions, mut values) = self.runs.session_conditions(false);
        let mut clauses = Vec::new();
        if !sessions.is_empty() {
            clauses.push(format!(
                "m.session_id IN (SELECT {SESSION_HASH_ID} FROM sessions s{})",
                where_all(&sessions)
            ));
        }
        if let Some(component) = &self.runs.component {
            clauses.push("m.component_id = (SELECT id FROM components WHERE name = ?)".into());
            values.push(SqlValue::Text(component.clone()));
        }
        if let Some(context_h) = &self.context_h {
            clauses.push("m.context_id = (SELECT id FROM context_hashes WHERE h = ?)".into());
            values.push(SqlValue::Text(context_h.clone()));
        }
        (clauses, values)
    }

    /// Whether which metrics are selected depends on the sessions table (a session stored after
    /// its metrics brings them into the selection).
    pub(super) fn depends_on_sessions(&self) -> bool {
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

/// A test's row: its figures, and what its latest metric says of it.
pub(super) fn summary(conn: &Connection, test: &TestFigures) -> rusqlite::Result<TestSummary> {
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
            mean_total_time: test.sum_time.value() / runs,
            last_total_time: row.get(6)?,
            max_mem_usage: test.max_mem,
            mean_mem_usage: test.sum_mem.value() / runs,
            last_mem_usage: row.get(7)?,
            last_session_h: row.get(8)?,
            last_run_date: row.get(9)?,
        })
    })
}
