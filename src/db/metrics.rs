//! Reading metrics: the columns a listing reads, their rows as records, and how many metrics a
//! selection holds (the page planner reads its windows).

use rusqlite::{params_from_iter, Connection, Row};

use crate::db::page_names::{Name, PageNames};
use crate::db::query::MetricQuery;
use crate::models::{canonical_iso8601, Metric, MetricRecord};

/// The columns a listing reads of each metric, from [`METRIC_SOURCE`]: the ids of the names
/// [`PageNames`] looks up first (in its order), then the rest.
pub(super) const METRIC_COLUMNS: &str =
    "m.context_id, m.kind_id, m.component_id, s.h, m.item_start_time, t.item_path, \
     t.item, t.item_variant, t.item_fs_loc, m.total_time, m.user_time, m.kernel_time, \
     m.cpu_usage, m.mem_usage, m.start_us";

/// The metric rows `m` with their session hash and test's names; the other names come from
/// [`PageNames`].
pub(super) const METRIC_SOURCE: &str = "metric_rows m \
     LEFT JOIN session_hashes s ON s.id = m.session_id LEFT JOIN tests t ON t.id = m.test_id";

/// A text column of a row, borrowed.
fn text<'r>(row: &'r Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    row.get_ref(i)?.as_str().map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(err))
    })
}

/// The row's `item_start_time`: the text kept, or else `start_us` spelled into `spelled`.
fn start_time<'a>(row: &'a Row<'_>, spelled: &'a mut [u8; 26]) -> rusqlite::Result<&'a str> {
    if let Some(kept) = row.get_ref(4)?.as_str_or_null().map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(err))
    })? {
        return Ok(kept);
    }
    let micros: i64 = row.get(14)?;
    canonical_iso8601(micros, spelled)
        .ok_or_else(|| rusqlite::Error::IntegralValueOutOfRange(14, micros))
}

/// A row of [`METRIC_COLUMNS`] as listed, its text borrowed from SQLite's buffers and `names`,
/// whose [`PageNames::learn`] saw this row last.
pub(super) fn metric_record<'a>(
    row: &'a Row<'_>,
    names: &'a PageNames<'_>,
    spelled: &'a mut [u8; 26],
) -> rusqlite::Result<MetricRecord<'a>> {
    Ok(MetricRecord {
        session_h: text(row, 3)?,
        context_h: names.of(Name::Context),
        item_start_time: start_time(row, spelled)?,
        item_path: text(row, 5)?,
        item: text(row, 6)?,
        item_variant: text(row, 7)?,
        item_fs_loc: text(row, 8)?,
        kind: names.of(Name::Kind),
        component: names.of(Name::Component),
        total_time: row.get(9)?,
        user_time: row.get(10)?,
        kernel_time: row.get(11)?,
        cpu_usage: row.get(12)?,
        mem_usage: row.get(13)?,
    })
}

/// A row of [`METRIC_COLUMNS`] as a [`Metric`], its names learnt through `names`.
pub(super) fn metric_from_row(
    row: &Row<'_>,
    names: &mut PageNames<'_>,
) -> rusqlite::Result<Metric> {
    names.learn(row)?;
    let mut spelled = [0u8; 26];
    let record = metric_record(row, names, &mut spelled)?;
    Ok(Metric {
        session_h: record.session_h.to_owned(),
        context_h: record.context_h.to_owned(),
        item_start_time: record.item_start_time.to_owned(),
        item_path: record.item_path.to_owned(),
        item: record.item.to_owned(),
        item_variant: record.item_variant.to_owned(),
        item_fs_loc: record.item_fs_loc.to_owned(),
        kind: record.kind.to_owned(),
        component: record.component.to_owned(),
        total_time: record.total_time,
        user_time: record.user_time,
        kernel_time: record.kernel_time,
        cpu_usage: record.cpu_usage,
        mem_usage: record.mem_usage,
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

#[cfg(test)]
mod tests {
    use crate::db::test_support::{metric, open_temp};
    use crate::db::{list_metrics, store_metrics};
    use crate::models::parse_iso8601;

    #[test]
    fn a_time_not_stored_is_spelled_back_alike_by_the_view_and_by_a_listing() {
        let (_dir, db) = open_temp();
        let conn = db.pool.get().unwrap();
        let times = [
            "1970-01-01T00:00:00.000001",
            "2000-01-01T00:00:00.000000",
            "2024-02-29T23:59:59.999999",
            "2038-01-19T03:14:08.500000",
            "9999-12-31T23:59:59.999999",
        ];
        for time in times {
            let mut m = metric("s", "function", "c");
            m.item_start_time = time.into();
            m.start_us = parse_iso8601(time).unwrap();
            store_metrics(&conn, &[m]).unwrap();
        }

        let kept: i64 = conn
            .query_row(
                "SELECT count(*) FROM metric_rows WHERE item_start_time IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let through_view: Vec<String> = conn
            .prepare("SELECT item_start_time FROM metrics ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let listed: Vec<String> = list_metrics(&conn, 0, 10)
            .unwrap()
            .into_iter()
            .map(|m| m.item_start_time)
            .collect();

        assert_eq!(kept, 0);
        assert_eq!(through_view, times);
        assert_eq!(listed, times);
    }
}
