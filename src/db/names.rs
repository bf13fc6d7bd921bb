//! Lists of names — components, pipelines, builds, session hashes — each one text column, paged
//! like any listing.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};

use crate::db::query::like_escape;
use crate::db::sql::with_window;

/// A query that yields one text column (components, pipelines, builds, session hashes), paged
/// like any listing.
#[derive(Debug, Clone)]
pub struct NameQuery {
    sql: &'static str,
    params: Vec<SqlValue>,
}

impl NameQuery {
    fn new(sql: &'static str, params: Vec<String>) -> Self {
        NameQuery {
            sql,
            params: params.into_iter().map(SqlValue::Text).collect(),
        }
    }

    /// Components (never the empty one), alphabetically; with a prefix, those starting with it.
    pub fn components(prefix: Option<&str>) -> Self {
        match prefix {
            None => Self::new(
                "SELECT value FROM metric_facets WHERE field = 'component' AND value != '' \
                 ORDER BY value",
                vec![],
            ),
            Some(prefix) => Self::new(
                "SELECT value FROM metric_facets WHERE field = 'component' AND value != '' \
                 AND value LIKE ? ESCAPE '\\' ORDER BY value",
                vec![format!("{}%", like_escape(prefix))],
            ),
        }
    }

    /// Pipelines (`pipeline_branch` tags), alphabetically.
    pub fn pipelines() -> Self {
        Self::new(
            "SELECT DISTINCT value FROM session_tags WHERE name = 'pipeline_branch' \
             AND value != '' ORDER BY value",
            vec![],
        )
    }

    /// Builds (`pipeline_build_no` tags) of a pipeline, numbers in numeric order.
    pub fn builds(pipeline: &str) -> Self {
        Self::new(
            "SELECT DISTINCT b.value FROM session_tags p \
             JOIN session_tags b ON b.session_id = p.session_id AND b.name = 'pipeline_build_no' \
             WHERE p.name = 'pipeline_branch' AND p.value = ? AND b.value != '' \
             ORDER BY length(b.value), b.value",
            vec![pipeline.to_owned()],
        )
    }

    /// Hashes of the sessions of one build of a pipeline, in the order stored.
    pub fn build_sessions(pipeline: &str, build: &str) -> Self {
        Self::new(
            "SELECT s.session_h FROM sessions s \
             JOIN session_tags p ON p.session_id = s.id AND p.name = 'pipeline_branch' \
             JOIN session_tags b ON b.session_id = s.id AND b.name = 'pipeline_build_no' \
             WHERE p.value = ? AND b.value = ? ORDER BY s.id",
            vec![pipeline.to_owned(), build.to_owned()],
        )
    }

    /// Pipelines whose sessions reported metrics of `component`.
    pub fn component_pipelines(component: &str) -> Self {
        Self::new(
            "SELECT DISTINCT p.value FROM component_sessions cs \
             JOIN sessions s ON s.session_h = cs.session_h \
             JOIN session_tags p ON p.session_id = s.id AND p.name = 'pipeline_branch' \
             WHERE cs.component = ? AND p.value != '' ORDER BY p.value",
            vec![component.to_owned()],
        )
    }

    /// Builds of `pipeline` whose sessions reported metrics of `component`.
    pub fn component_builds(component: &str, pipeline: &str) -> Self {
        Self::new(
            "SELECT DISTINCT b.value FROM component_sessions cs \
             JOIN sessions s ON s.session_h = cs.session_h \
             JOIN session_tags p ON p.session_id = s.id AND p.name = 'pipeline_branch' \
             JOIN session_tags b ON b.session_id = s.id AND b.name = 'pipeline_build_no' \
             WHERE cs.component = ? AND p.value = ? AND b.value != '' \
             ORDER BY length(b.value), b.value",
            vec![component.to_owned(), pipeline.to_owned()],
        )
    }

    /// Sessions of one build of `pipeline` that reported metrics of `component`.
    pub fn component_build_sessions(component: &str, pipeline: &str, build: &str) -> Self {
        Self::new(
            "SELECT s.session_h FROM component_sessions cs \
             JOIN sessions s ON s.session_h = cs.session_h \
             JOIN session_tags p ON p.session_id = s.id AND p.name = 'pipeline_branch' \
             JOIN session_tags b ON b.session_id = s.id AND b.name = 'pipeline_build_no' \
             WHERE cs.component = ? AND p.value = ? AND b.value = ? ORDER BY s.id",
            vec![component.to_owned(), pipeline.to_owned(), build.to_owned()],
        )
    }
}

/// How many names a [`NameQuery`] yields.
pub fn count_names(conn: &Connection, query: &NameQuery) -> rusqlite::Result<u64> {
    let sql = format!("SELECT count(*) FROM ({})", query.sql);
    conn.prepare_cached(&sql)?
        .query_row(params_from_iter(&query.params), |row| row.get(0))
}

/// A window of the names a [`NameQuery`] yields.
pub fn list_names(
    conn: &Connection,
    query: &NameQuery,
    offset: u64,
    limit: u64,
) -> rusqlite::Result<Vec<String>> {
    let sql = format!("{} LIMIT ? OFFSET ?", query.sql);
    let values = with_window(query.params.clone(), offset, limit);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(values), |row| row.get(0))?;
    rows.collect()
}
