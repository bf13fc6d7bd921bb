//! One test's trend: its points run after run, one series per execution context.

use rusqlite::{params, Connection};
use serde::Serialize;

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
         WHERE m.test_id IN (SELECT id FROM tests WHERE item_variant = ?1 AND item_path = ?2) \
         AND (?3 IS NULL OR +m.context_h = ?3) \
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
