//! Runs: the sessions `/runs` lists, newest first, with their totals, and the filters that
//! select them.

use std::sync::Arc;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, Row};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::db::Selection;

use super::cache::Cache;

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
    pub(super) fn session_conditions(
        &self,
        with_component: bool,
    ) -> (Vec<&'static str>, Vec<SqlValue>) {
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
pub(super) fn where_all(clauses: &[&str]) -> String {
    if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    }
}

/// Sessions newest first: by `run_date` as a time (whatever offset or separator each client
/// wrote), then the latest stored first.
pub(super) const NEWEST_FIRST: &str = " ORDER BY unixepoch(s.run_date, 'subsec') DESC, s.id DESC";

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

pub(super) const RUN_COLUMNS: &str = "s.session_h, s.run_date, s.scm_ref, s.description, \
     (SELECT value FROM session_tags WHERE session_id = s.id AND name = 'pipeline_branch'), \
     (SELECT value FROM session_tags WHERE session_id = s.id AND name = 'pipeline_build_no')";

/// A session row of [`RUN_COLUMNS`], with its metrics' totals ([`Cache::run_totals`]).
pub(super) fn run_from_row(
    conn: &Connection,
    cache: &Cache,
    row: &Row<'_>,
) -> rusqlite::Result<Run> {
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
pub(super) struct RunTotals {
    /// How many metrics, the largest id among them and a [`fingerprint`] of that newest one: a
    /// run whose three are unchanged holds the same metrics (see [`StoreVersion`] for why the
    /// newest one's content).
    pub(super) tests: u64,
    pub(super) max_id: i64,
    pub(super) newest: u64,
    pub(super) total_time: f64,
    pub(super) contexts: Vec<String>,
}

/// The most runs whose totals [`Cache`] keeps (about 150 bytes each); past it, it starts over.
pub(super) const CACHED_RUNS: usize = 20_000;

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
