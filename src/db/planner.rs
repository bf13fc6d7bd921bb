//! Listing a window of a metric selection, and the page planner that chooses how to read it
//! without reading the whole selection: a seek by id through the runs of deleted ids
//! (`metric_holes`), a read from the other end, a bounded walk of the sort index, or the window's
//! ids first.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection};

use crate::db::metrics::{count_metrics, count_metrics_by, METRIC_COLUMNS, METRIC_SOURCE};
use crate::db::page_names::PageNames;
use crate::db::query::MetricQuery;
use crate::db::sink::MetricSink;
use crate::db::sql::with_window;
use crate::models::Metric;

/// A window of a selection, in its order.
pub fn list_metrics_by(
    conn: &Connection,
    query: &MetricQuery,
    offset: u64,
    limit: u64,
) -> rusqlite::Result<Vec<Metric>> {
    let count = count_metrics_by(conn, query)?;
    list_metrics_page(conn, query, offset, limit, count)
}

/// A window of a selection that holds `count` metrics (as [`count_metrics_by`] answered in the
/// same transaction), in its order.
pub fn list_metrics_page(
    conn: &Connection,
    query: &MetricQuery,
    offset: u64,
    limit: u64,
    count: u64,
) -> rusqlite::Result<Vec<Metric>> {
    let mut metrics = Vec::new();
    read_metrics_page(conn, query, offset, limit, count, &mut metrics)?;
    Ok(metrics)
}

/// Metrics in the order stored, `limit` of them after skipping `offset`; a seek by id, so a deep
/// page costs what the first does.
pub fn list_metrics(conn: &Connection, offset: u64, limit: u64) -> rusqlite::Result<Vec<Metric>> {
    let count = count_metrics(conn)?;
    list_metrics_page(conn, &MetricQuery::all(), offset, limit, count)
}

/// Hands the metrics of a window of a selection that holds `count` metrics to `sink`, in the
/// selection's order.
///
/// SQLite keeps no statistics of this store, so it cannot tell a condition that keeps a few
/// hundred metrics from one that keeps most of them; how the window is read is chosen here,
/// from `count` and the number of metrics stored, so that no page reads the whole selection
/// when it need not:
/// - every metric in the order stored is a range of ids, found from the positions with the
///   deleted ids of `metric_holes` ([`ids_at_positions`]) and read by seeking (`by_id_range`);
/// - a window in the second half is read from the other end, in the exact reverse order
///   (every sort key flipped; ties are broken by id), then turned around, so the last page
///   costs what the first does;
/// - a selection holding a large share of the store is read by walking the sort column's index
///   (or the table, in the order stored) and testing each metric (`walk_in_order`);
/// - otherwise the window's ids are found first, from the indexes alone where they suffice,
///   and then only its rows are read (`by_ids`).
pub(super) fn read_metrics_page(
    conn: &Connection,
    query: &MetricQuery,
    offset: u64,
    limit: u64,
    count: u64,
    sink: &mut impl MetricSink,
) -> rusqlite::Result<()> {
    let rows = limit.min(count.saturating_sub(offset));
    if rows == 0 {
        return Ok(());
    }
    sink.expect(rows);
    let mut names = PageNames::new(conn);
    if query.is_everything_in_order() {
        if let Some((first, last)) = ids_at_positions(conn, count, offset, offset + rows - 1)? {
            return by_id_range(conn, first, last, sink, &mut names);
        }
    }
    let after = count - offset - rows;
    let (reversed, skip) = if after < offset {
        (true, after)
    } else {
        (false, offset)
    };
    let window = Window {
        reversed,
        skip,
        rows,
        count,
        stored: count_metrics(conn)?,
    };
    if !walk_in_order(conn, query, &window, sink, &mut names)? {
        by_ids(conn, query, &window, sink, &mut names)?;
    }
    if reversed {
        sink.reverse();
    }
    Ok(())
}

/// The ids of the metrics at positions `first` and `last` (from 0) of the order stored, when
/// `metric_holes` accounts for every deleted id: then the metric at position `p` has id
/// `p + 1` plus the ids deleted before it, which the last run of deleted ids with at most `p`
/// stored metrics before it gives — one index lookup, however deep the page and however many
/// metrics were deleted.
///
/// `None` when the `count` metrics stored do not fill the ids up to the largest one but for the
/// recorded runs — metrics deleted by another program, such as `sqlite3`, bypassing
/// [`record_deleted_metrics`](crate::db::record_deleted_metrics): the caller then reads the window
/// the slow, sure way.
fn ids_at_positions(
    conn: &Connection,
    count: u64,
    first: u64,
    last: u64,
) -> rusqlite::Result<Option<(i64, i64)>> {
    let (max_id, deleted): (i64, i64) = conn
        .prepare_cached(
            "SELECT coalesce((SELECT max(id) FROM metric_rows), 0), \
             coalesce((SELECT deleted_through FROM metric_holes ORDER BY first_id DESC LIMIT 1), 0)",
        )?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    if u64::try_from(max_id - deleted).ok() != Some(count) {
        return Ok(None);
    }
    let mut deleted_before = conn.prepare_cached(
        "SELECT coalesce((SELECT deleted_through FROM metric_holes WHERE live_before <= ?1 \
         ORDER BY live_before DESC LIMIT 1), 0)",
    )?;
    let mut id_at = |position: u64| -> rusqlite::Result<i64> {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        let skipped: i64 = deleted_before.query_row([position], |row| row.get(0))?;
        Ok(position + 1 + skipped)
    };
    Ok(Some((id_at(first)?, id_at(last)?)))
}

/// The metrics with ids from `first` to `last`, in the order stored, read by seeking, so a deep
/// page costs what the first does.
///
/// The range is given by both ends rather than with `LIMIT ?`: SQLite plans with the value
/// bound to a LIMIT, so a statement with one is prepared anew every time a value is bound.
fn by_id_range(
    conn: &Connection,
    first: i64,
    last: i64,
    sink: &mut impl MetricSink,
    names: &mut PageNames<'_>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {METRIC_COLUMNS} FROM {METRIC_SOURCE} WHERE m.id >= ?1 AND m.id <= ?2 ORDER BY m.id"
    ))?;
    let mut found = stmt.query(params![first, last])?;
    while let Some(row) = found.next()? {
        sink.push(row, names)?;
    }
    Ok(())
}

/// Where a page lies in a selection, as [`read_metrics_page`] reads it.
struct Window {
    /// Read in the reverse order.
    reversed: bool,
    /// Rows to skip, in the order read.
    skip: u64,
    /// Rows to read (all of them exist).
    rows: u64,
    /// The selection's size.
    count: u64,
    /// How many metrics are stored.
    stored: u64,
}

/// The least number of index entries [`walk_in_order`] is allowed to walk.
const MIN_WALK: u64 = 1_000;

/// Reads a window of a filtered selection by walking the sort column's index in the order read
/// (or the table, for the order stored) and testing each metric, when the selection holds so
/// large a share of the store that this finds the window quickly: the first `skip + rows`
/// matches come after about `(skip + rows) * stored / count` entries when the matches are
/// spread evenly along the column.
///
/// In the order stored this is only worth it for a set of tests (a pattern of names): found
/// through its index in no useful order, its first page would otherwise sort every id of the
/// selection (all the ids in the store for `/items/like/test/metrics`), while its metrics are
/// spread over the order stored ([`MetricQuery::is_spread_over_the_order_stored`]). A set of
/// sessions is not: a session's metrics are stored together, so a walk would meet none of them
/// for long stretches.
///
/// They may not be (a component whose tests all use much memory sits at one end of the memory
/// index), so the walk is bounded to 4 times that many entries, and to half the selection's
/// size, which sorting the selection would read anyway. `false` (and nothing left in `sink`)
/// when the walk is not worth it, or did not find the whole window within its bound: the caller
/// then sorts the selection, having spent at most half of what that costs. The rows found within
/// the bound are exactly the window: the bounded walk yields a prefix of the order, so its
/// matches are a prefix of the selection's.
fn walk_in_order(
    conn: &Connection,
    query: &MetricQuery,
    w: &Window,
    sink: &mut impl MetricSink,
    names: &mut PageNames<'_>,
) -> rusqlite::Result<bool> {
    let walked = match query.sort() {
        Some((column, _)) => format!(" INDEXED BY {}", column.index()),
        None if query.is_spread_over_the_order_stored() => String::new(),
        None => return Ok(false),
    };
    if query.is_unfiltered() {
        // SQLite walks the index by itself, with nothing to test.
        return Ok(false);
    }
    let expected = u128::from(w.skip + w.rows) * u128::from(w.stored) / u128::from(w.count);
    let bound = (expected * 4).max(u128::from(MIN_WALK));
    if bound * 2 > u128::from(w.count) {
        return Ok(false);
    }
    let order = query.order_by(w.reversed, true);
    // The conditions read only the row's own columns, so the walk and the tests need no names;
    // only the window's rows are then read whole, through the view.
    let sql = format!(
        "SELECT {METRIC_COLUMNS} FROM {METRIC_SOURCE} WHERE m.id IN (SELECT m.id FROM \
         (SELECT * FROM metric_rows m{walked}{order} LIMIT ?) m{}{order} LIMIT ? OFFSET ?)\
         {order}",
        query.where_sql()
    );
    let mut values = vec![SqlValue::Integer(bound as i64)];
    values.extend(query.params().iter().cloned());
    let values = with_window(values, w.skip, w.rows);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut found = stmt.query(params_from_iter(values))?;
    while let Some(row) = found.next()? {
        sink.push(row, names)?;
    }
    if sink.len() as u64 == w.rows {
        return Ok(true);
    }
    sink.clear();
    Ok(false)
}

/// Reads a window by finding its ids first (`id IN (SELECT id ... LIMIT ? OFFSET ?)`): the
/// rows skipped and sorted are then index entries, not whole metrics, and only the window's
/// metrics are read from the table.
///
/// When only ranges of numeric columns narrow the selection and they keep a small share of the
/// store, the order is written so that SQLite cannot follow it through an index or the table:
/// not knowing how few metrics a range keeps, it would walk every metric in order and test
/// each, rather than read the range and sort it.
fn by_ids(
    conn: &Connection,
    query: &MetricQuery,
    w: &Window,
    sink: &mut impl MetricSink,
    names: &mut PageNames<'_>,
) -> rusqlite::Result<()> {
    let order = query.order_by(w.reversed, true);
    let small_range = query.ranges_only() && w.count.saturating_mul(4) <= w.stored;
    let inner_order = if small_range {
        query.order_by(w.reversed, false)
    } else {
        order.clone()
    };
    let sql = format!(
        "SELECT {METRIC_COLUMNS} FROM {METRIC_SOURCE} WHERE m.id IN \
         (SELECT m.id FROM metric_rows m{}{inner_order} LIMIT ? OFFSET ?){order}",
        query.where_sql()
    );
    let values = with_window(query.params().to_vec(), w.skip, w.rows);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut found = stmt.query(params_from_iter(values))?;
    while let Some(row) = found.next()? {
        sink.push(row, names)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::metrics::metric_from_row;
    use crate::db::test_support::{erase_where, metric, open_temp};
    use crate::db::{store_metrics, Selection};

    /// The page `query` selects at `offset`, read the plain way: SQLite sorting the whole
    /// selection and skipping `offset` rows.
    fn page_by_offset(conn: &Connection, query: &MetricQuery, offset: u64) -> Vec<Metric> {
        let sql = format!(
            "SELECT {METRIC_COLUMNS} FROM {METRIC_SOURCE}{}{} LIMIT 7 OFFSET {offset}",
            query.where_sql(),
            query.order_sql()
        );
        let mut stmt = conn.prepare(&sql).unwrap();
        let mut names = PageNames::new(conn);
        let mut rows = stmt.query(params_from_iter(query.params())).unwrap();
        let mut page = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            page.push(metric_from_row(row, &mut names).unwrap());
        }
        page
    }

    #[test]
    fn every_way_of_reading_a_page_gives_the_page_and_writes_it_as_serde_json_would() {
        use crate::db::query::{Direction, NumericColumn, TextColumn};

        // Arrange: 3,000 metrics, the 2,000 of kind `function` holding the largest memory, so
        // that walking the memory index from its small end finds none of them for a while.
        let (_dir, db) = open_temp();
        let mut conn = db.pool.get().unwrap();
        let tx = conn.transaction().unwrap();
        for n in 0..3_000 {
            let kind = if n >= 1_000 { "function" } else { "class" };
            let mut m = metric(&format!("s{}", n % 7), kind, &format!("c{}", n % 5));
            m.mem_usage = f64::from(n);
            m.total_time = f64::from((n * 7_919) % 3_001) / 3.0;
            m.item = format!("test \"{n}\"\n");
            store_metrics(&tx, &[m]).unwrap();
        }
        tx.commit().unwrap();
        let queries = [
            MetricQuery::all(),
            MetricQuery::all().eq(TextColumn::Kind, "function"),
            // Every item and most items, in the order stored: a set of tests, walked.
            MetricQuery::all().contains(TextColumn::Item, "test"),
            MetricQuery::all().contains(TextColumn::Item, "1"),
            MetricQuery::all().sorted(NumericColumn::TotalTime, Direction::Desc),
            MetricQuery::all()
                .eq(TextColumn::Kind, "function")
                .sorted(NumericColumn::MemUsage, Direction::Asc),
            MetricQuery::all()
                .eq(TextColumn::Kind, "function")
                .sorted(NumericColumn::MemUsage, Direction::Desc),
        ];

        for deleted in [false, true] {
            if deleted {
                // Deleted behind `metric_holes`' back: the plain listing cannot find its page by
                // id any more and must fall back to skipping rows.
                erase_where(&mut conn, "id IN (2, 1500)");
                conn.execute("DELETE FROM metric_holes", []).unwrap();
            }
            for query in &queries {
                let count = count_metrics_by(&conn, query).unwrap();
                for offset in [0, 1, 100, count / 2, count - 100, count - 7] {
                    // Act
                    let metrics = list_metrics_page(&conn, query, offset, 7, count).unwrap();
                    let mut json = Vec::new();
                    query
                        .write_page(&conn, offset, 7, count, &mut json)
                        .unwrap();

                    // Assert
                    let expected = page_by_offset(&conn, query, offset);
                    assert_eq!(metrics, expected, "{query:?} at {offset}");
                    assert_eq!(
                        String::from_utf8(json).unwrap(),
                        serde_json::to_string(&expected).unwrap(),
                        "{query:?} at {offset}"
                    );
                }
            }
        }
    }

    /// The page of the order stored read by OFFSET, the slow, sure way.
    fn ids_by_offset(conn: &Connection) -> Vec<i64> {
        conn.prepare("SELECT id FROM metrics ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn after_any_deletes_and_inserts_every_position_is_found_by_lookup_and_is_right() {
        // Arrange: 400 metrics in 9 sessions, interleaved as pytest-xdist's workers post them.
        let (_dir, db) = open_temp();
        let mut conn = db.pool.get().unwrap();
        let insert = |conn: &Connection, n: u32| {
            for i in 0..n {
                store_metrics(conn, &[metric(&format!("s{}", i % 9), "function", "c")]).unwrap();
            }
        };
        insert(&conn, 400);
        let deletes = [
            "session_h = 's3'",                       // every 9th metric
            "id <= 20",                               // the oldest: a prefix
            "id BETWEEN 100 AND 130",                 // a run joining some of s3's holes
            "session_h = 's4'",                       // next to s3's: runs merge
            "id > (SELECT max(id) - 5 FROM metrics)", // the newest: ids to be reused
            "id % 7 = 0",
            "session_h IN ('s0', 's1', 's2')",
            "id > 0", // everything
        ];
        for (round, sql) in deletes.iter().enumerate() {
            // Act
            erase_where(&mut conn, sql);
            if round % 2 == 0 {
                insert(&conn, 25);
            }

            // Assert: every window of the order stored is found by id and is the right one.
            let expected = ids_by_offset(&conn);
            let count = count_metrics(&conn).unwrap();
            assert_eq!(count, expected.len() as u64, "after {sql}");
            for first in 0..count {
                for last in [first, (first + 6).min(count - 1)] {
                    let found = ids_at_positions(&conn, count, first, last).unwrap();
                    assert_eq!(
                        found,
                        Some((expected[first as usize], expected[last as usize])),
                        "after {sql}, positions {first}..={last}"
                    );
                }
            }
            let pages = list_metrics(&conn, 0, u64::MAX).unwrap();
            assert_eq!(pages.len(), expected.len(), "after {sql}");
        }
        // Only the runs of ids below the largest one left are kept: here, none at all.
        let holes: i64 = conn
            .query_row("SELECT count(*) FROM metric_holes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(holes, 0);
    }

    #[test]
    fn metrics_deleted_behind_the_servers_back_are_paged_the_slow_sure_way() {
        let (_dir, db) = open_temp();
        let mut conn = db.pool.get().unwrap();
        for n in 0..50 {
            store_metrics(&conn, &[metric(&format!("s{n}"), "function", "c")]).unwrap();
        }
        erase_where(&mut conn, "id IN (3, 30)");
        conn.execute("DELETE FROM metric_holes", []).unwrap();

        assert_eq!(ids_at_positions(&conn, 48, 0, 9).unwrap(), None);
        let page = list_metrics(&conn, 2, 2).unwrap();
        let sessions: Vec<&str> = page.iter().map(|m| m.session_h.as_str()).collect();
        assert_eq!(sessions, ["s3", "s4"]);
    }
}
