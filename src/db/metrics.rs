//! Reading metrics: the columns a listing reads, their rows as records, and how many metrics a
//! selection holds (the page planner reads its windows).

use rusqlite::{params_from_iter, Connection, Row};

use crate::db::query::MetricQuery;
use crate::models::{Metric, MetricRecord};

pub(super) const METRIC_COLUMNS: &str =
    "m.session_h, m.context_h, m.item_start_time, m.item_path, m.item, \
     m.item_variant, m.item_fs_loc, m.kind, m.component, m.total_time, m.user_time, \
     m.kernel_time, m.cpu_usage, m.mem_usage, m.start_us";

/// A row of [`METRIC_COLUMNS`] as listed, its text borrowed from SQLite's buffers.
pub(super) fn metric_record<'r>(row: &'r Row<'_>) -> rusqlite::Result<MetricRecord<'r>> {
    let text = |i: usize| -> rusqlite::Result<&'r str> {
        row.get_ref(i)?.as_str().map_err(|err| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(err))
        })
    };
    Ok(MetricRecord {
        session_h: text(0)?,
        context_h: text(1)?,
        item_start_time: text(2)?,
        item_path: text(3)?,
        item: text(4)?,
        item_variant: text(5)?,
        item_fs_loc: text(6)?,
        kind: text(7)?,
        component: text(8)?,
        total_time: row.get(9)?,
        user_time: row.get(10)?,
        kernel_time: row.get(11)?,
        cpu_usage: row.get(12)?,
        mem_usage: row.get(13)?,
    })
}

pub(super) fn metric_from_row(row: &Row<'_>) -> rusqlite::Result<Metric> {
    Ok(Metric {
        session_h: row.get(0)?,
        context_h: row.get(1)?,
        item_start_time: row.get(2)?,
        item_path: row.get(3)?,
        item: row.get(4)?,
        item_variant: row.get(5)?,
        item_fs_loc: row.get(6)?,
        kind: row.get(7)?,
        component: row.get(8)?,
        total_time: row.get(9)?,
        user_time: row.get(10)?,
        kernel_time: row.get(11)?,
        cpu_usage: row.get(12)?,
        mem_usage: row.get(13)?,
        start_us: row.get(14)?,
    })
}

/// How many metrics are stored, read from the kept counter (no scan).
pub fn count_metrics(conn: &Connection) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT coalesce((SELECT n FROM counters WHERE name = 'metrics'), 0)")?
        .query_row([], |row| row.get(0))
}

/// How many metrics a selection covers: from the kept counts when the selection is
/// everything, or one condition they answer (a component, item, variant, kind, context or
/// session; a set of sessions; an item or variant pattern), else by counting.
pub fn count_metrics_by(conn: &Connection, query: &MetricQuery) -> rusqlite::Result<u64> {
    conn.prepare_cached(&query.count_sql())?
        .query_row(params_from_iter(query.params()), |row| row.get(0))
}
