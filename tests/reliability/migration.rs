//! Migrating a large schema-3 file to schema 4 in place: progress on standard error, and a
//! `kill -9` midway leaves the old file exactly as it was and usable, then a restart migrates it.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::{json, Value};

use crate::common::binary::{monitor_server, Running};
use crate::common::fixtures::SCHEMA_V3;
use crate::common::http::{agent, exchange};

/// Enough metrics that the migration takes a while even in a release build.
const METRICS: i64 = 400_000;

/// Writes a schema-3 file of [`METRICS`] metrics over 400 sessions, 40 tests and 3 machines,
/// with the counts that version kept beside them.
fn make_v3_store(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(SCHEMA_V3).unwrap();
    conn.execute_batch(&format!(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {METRICS})
         INSERT INTO metrics (session_h, context_h, item_start_time, start_us, item_path, item,
             item_variant, item_fs_loc, kind, component, total_time, user_time, kernel_time,
             cpu_usage, mem_usage)
         SELECT printf('%040x', i / 1000), printf('%040x', 7 + i % 3),
             strftime('%Y-%m-%dT%H:%M:%S', 1700000000 + i, 'unixepoch')
                 || CASE WHEN i % 2 THEN printf('.%06d', i % 1000000) ELSE '+00:00' END,
             (1700000000 + i) * 1000000 + CASE WHEN i % 2 THEN i % 1000000 ELSE 0 END,
             'tests.test_' || (i % 40), 'test_' || (i % 40), 'test_' || (i % 40) || '[x]',
             'tests/test_' || (i % 40) || '.py', 'function', 'c' || (i % 4),
             (i % 997) / 100.0, 0.5, 0.1, 0.6, i % 50
         FROM n;
         INSERT INTO counters (name, n) SELECT 'metrics', count(*) FROM metrics;
         INSERT INTO metric_facets (field, value, n)
             SELECT 'session_h', session_h, count(*) FROM metrics GROUP BY session_h;
         INSERT INTO metric_facets (field, value, n)
             SELECT 'component', component, count(*) FROM metrics GROUP BY component;
         INSERT INTO metric_facets (field, value, n)
             SELECT 'kind', kind, count(*) FROM metrics GROUP BY kind;
         COMMIT;
         PRAGMA user_version = 3;
         PRAGMA wal_checkpoint(TRUNCATE);"
    ))
    .unwrap();
}

/// The schema version, the metrics table's row count and the integrity check of `path`.
fn state(path: &Path) -> (i64, i64, String) {
    let conn = Connection::open(path).unwrap();
    let version = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let rows = conn
        .query_row("SELECT count(*) FROM metrics", [], |r| r.get(0))
        .unwrap();
    let check = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    (version, rows, check)
}

fn serve(dir: &Path, db: &Path) -> Running {
    let mut command = monitor_server();
    command.args(["--db", db.to_str().unwrap(), "--bind", "127.0.0.1:0"]);
    Running::start(command, dir)
}

fn get(base: &str, path: &str) -> (u16, Value) {
    let reply = exchange(agent().get(&format!("{base}{path}")), None);
    (reply.status, reply.json())
}

#[test]
fn a_migration_killed_midway_leaves_the_old_file_usable_and_a_restart_completes_it() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    make_v3_store(&db);
    let before = state(&db);
    let size_before = std::fs::metadata(&db).unwrap().len();
    assert_eq!(before, (3, METRICS, "ok".to_owned()));

    // Act: kill -9 once the migration reports progress.
    let mut server = serve(dir.path(), &db);
    let line = server.wait_for_line("migrating to schema 4");
    assert!(
        line.contains(&format!("of {METRICS} metrics copied")),
        "{line}"
    );
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    server.wait_for_exit(Duration::from_secs(10));

    // Assert: the file is still version 3, whole, with every metric.
    assert_eq!(state(&db), before);

    // And a restart migrates it, reporting every step, and serves what it held.
    let server = serve(dir.path(), &db);
    let base = server.wait_until_listening();
    let stderr = server.stderr().join("\n");
    for expected in [
        "building index 11 of 11",
        &format!("{METRICS} metrics copied and indexed"),
        "migrated the database from schema version 3 to 4",
        "compacting the file",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in {stderr}");
    }
    assert_eq!(
        get(&base, "/metrics/count"),
        (200, json!({"count": METRICS}))
    );
    // The old layout's pages went back to the file system: the file is smaller than before.
    let size_after = std::fs::metadata(&db).unwrap().len();
    assert!(
        size_after * 2 < size_before,
        "{size_before} -> {size_after} bytes"
    );
    let session = format!("/sessions/{:040x}/metrics/count", 7);
    assert_eq!(get(&base, &session), (200, json!({"count": 1000})));
    let (status, page) = get(&base, "/metrics/?page=1&per_page=2");
    assert_eq!(status, 200);
    assert_eq!(
        page["metrics"][0]["item_start_time"],
        json!("2023-11-14T22:13:21.000001")
    );
    assert_eq!(
        page["metrics"][1]["item_start_time"],
        json!("2023-11-14T22:13:22+00:00")
    );
}
