//! What the tests of the store share: a fresh database, a metric to store, the kept facet counts,
//! and a delete made the one way the server makes it.

use std::path::Path;

use rusqlite::{params, Connection};

use crate::db::{Db, MetricEraser};
use crate::models::Metric;

pub(super) fn open_temp() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("m.db"), 2).unwrap();
    (dir, db)
}

pub(super) fn metric(session_h: &str, kind: &str, component: &str) -> Metric {
    Metric {
        session_h: session_h.into(),
        context_h: "ctx".into(),
        item_start_time: "2024-01-01T00:00:00".into(),
        start_us: 1_704_067_200_000_000,
        item_path: "tests.test_a".into(),
        item: "test_a".into(),
        item_variant: "test_a".into(),
        item_fs_loc: "tests/test_a.py".into(),
        kind: kind.into(),
        component: component.into(),
        total_time: 1.0,
        user_time: 0.5,
        kernel_time: 0.1,
        cpu_usage: 0.6,
        mem_usage: 2.0,
    }
}

pub(super) fn facets(conn: &Connection) -> Vec<(String, String, i64)> {
    conn.prepare("SELECT field, value, n FROM metric_facets ORDER BY field, value")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// Deletes the metrics `condition` selects the one way the server does, in one transaction.
pub(super) fn erase_where(conn: &mut Connection, condition: &str) {
    let tx = conn.transaction().unwrap();
    let ids: Vec<i64> = tx
        .prepare(&format!(
            "SELECT id FROM metrics WHERE {condition} ORDER BY id"
        ))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut eraser = MetricEraser::new(&tx);
    for id in ids {
        assert!(eraser.erase(id).unwrap());
    }
    eraser.finish().unwrap();
    tx.commit().unwrap();
}

/// The layout of schema version 3, the last with a `metrics` table.
const SCHEMA_V3: &str = include_str!("../../tests/common/fixtures/schema_v3.sql");

/// Writes a file of schema version 3 at `path` holding `metrics`, with the counts beside them as
/// that version kept them.
pub(super) fn v3_file(path: &Path, metrics: &[Metric]) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(SCHEMA_V3).unwrap();
    for m in metrics {
        conn.execute(
            "INSERT INTO metrics (session_h, context_h, item_start_time, start_us, item_path, \
             item, item_variant, item_fs_loc, kind, component, total_time, user_time, \
             kernel_time, cpu_usage, mem_usage) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                m.session_h,
                m.context_h,
                m.item_start_time,
                m.start_us,
                m.item_path,
                m.item,
                m.item_variant,
                m.item_fs_loc,
                m.kind,
                m.component,
                m.total_time,
                m.user_time,
                m.kernel_time,
                m.cpu_usage,
                m.mem_usage
            ],
        )
        .unwrap();
    }
    conn.execute_batch(crate::db::migrate::V2_REBUILD_DERIVED)
        .unwrap();
    conn.pragma_update(None, "user_version", 3).unwrap();
}
