//! The store at a glance: the tag values for filter menus and the summary.

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::MAX_TAG_VALUES;

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
