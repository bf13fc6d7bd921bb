//! What the tests of the store share: a fresh database, a metric to store, the kept facet counts,
//! and a delete made the one way the server makes it.

use rusqlite::Connection;

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
