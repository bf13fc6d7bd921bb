//! `monitor-server prune` as an operator runs it (the real binary): what it deletes and keeps,
//! `--dry-run`, usage and file errors, and a prune while the real server serves and stores
//! metrics in the same file — every write answered 201, every count and page exact afterwards.

use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monitor_server::db::{self, Db};
use monitor_server::models::{parse_iso8601, Metric, Session};
use rusqlite::Connection;
use serde_json::{json, Value};

use crate::common::{agent, exchange, metric, monitor_server, Running};

/// A run date far in the past and one far in the future, whatever day the test runs.
const OLD: &str = "2020-12-04T23:18:14.512317";
const NEW: &str = "2099-01-01T00:00:00+01:00";

fn session_hash(n: usize) -> String {
    format!("{n:040x}")
}

/// Stores `sessions` (hash number, run date) and `per_session` metrics of each — the sessions
/// taken 4 at a time as the workers of one pytest-xdist run, whose metrics interleave — plus `orphans` metrics started at `orphan_start` under a
/// session that is not stored; through the library's own insert functions, so every
/// table kept beside the metrics is filled as the server fills it.
fn store(path: &Path, sessions: &[(usize, &str)], per_session: usize, orphans: &[&str]) {
    drop(Db::open(path, 1).expect("cannot create the database"));
    let mut conn = Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    for (n, run_date) in sessions {
        let description = json!({"pipeline_branch": "main", "pipeline_build_no": n.to_string()});
        let session = Session {
            session_h: session_hash(*n),
            run_date: (*run_date).to_owned(),
            scm_ref: "abc".into(),
            description: description.as_object().unwrap().clone(),
        };
        db::insert_session(&tx, &session).unwrap();
    }
    let metric_of = |session_h: String, start: &str, i: usize| Metric {
        session_h,
        context_h: "ctx".into(),
        item_start_time: start.to_owned(),
        start_us: parse_iso8601(start).unwrap(),
        item_path: "tests.test_a".into(),
        item: format!("test_{}", i % 50),
        item_variant: format!("test_{}[{}]", i % 50, i % 3),
        item_fs_loc: "tests/test_a.py".into(),
        kind: if i % 10 == 0 { "class" } else { "function" }.into(),
        component: format!("c{}", i % 7),
        total_time: i as f64,
        user_time: 1.0,
        kernel_time: 0.5,
        cpu_usage: 0.5,
        mem_usage: 3.0,
    };
    for run in sessions.chunks(4) {
        for i in 0..per_session {
            for (n, run_date) in run {
                db::store_metrics(&tx, &[metric_of(session_hash(*n), run_date, i)]).unwrap();
            }
        }
    }
    for (i, start) in orphans.iter().enumerate() {
        db::store_metrics(&tx, &[metric_of("f".repeat(40), start, i)]).unwrap();
    }
    tx.commit().unwrap();
}

fn prune(dir: &Path, args: &[&str]) -> Output {
    monitor_server()
        .arg("prune")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run monitor-server prune")
}

fn query_i64(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

fn rows(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    let found = stmt.query_map([], |row| row.get::<_, String>(0)).unwrap();
    found.collect::<rusqlite::Result<_>>().unwrap()
}

/// Asserts that every table kept beside the metrics agrees with them, and that the deleted ids
/// are all recorded, so that paging stays a lookup.
fn assert_consistent(conn: &Connection) {
    let stored = query_i64(conn, "SELECT count(*) FROM metrics");
    assert_eq!(
        query_i64(conn, "SELECT n FROM counters WHERE name = 'metrics'"),
        stored
    );
    let facets = "SELECT field || '=' || value || ':' || n FROM metric_facets ORDER BY 1";
    let mut expected = Vec::new();
    for field in [
        "component",
        "item",
        "item_variant",
        "kind",
        "context_h",
        "session_h",
    ] {
        expected.extend(rows(
            conn,
            &format!(
                "SELECT '{field}=' || {field} || ':' || count(*) FROM metrics GROUP BY {field}"
            ),
        ));
    }
    expected.sort();
    assert_eq!(rows(conn, facets), expected, "metric_facets");
    assert_eq!(
        rows(
            conn,
            "SELECT component || '/' || session_h FROM component_sessions ORDER BY 1"
        ),
        rows(
            conn,
            "SELECT DISTINCT component || '/' || session_h FROM metrics ORDER BY 1"
        ),
        "component_sessions"
    );
    assert_eq!(
        query_i64(
            conn,
            "SELECT count(*) FROM session_tags WHERE session_id NOT IN (SELECT id FROM sessions)"
        ),
        0,
        "tags of deleted sessions"
    );
    let deleted = query_i64(
        conn,
        "SELECT coalesce((SELECT deleted_through FROM metric_holes ORDER BY first_id DESC LIMIT 1), 0)",
    );
    let max_id = query_i64(conn, "SELECT coalesce(max(id), 0) FROM metrics");
    assert_eq!(max_id - deleted, stored, "metric_holes misses deleted ids");
}

#[test]
fn prune_deletes_old_sessions_with_their_metrics_and_old_metrics_of_no_session() {
    // Arrange: 3 old sessions and 2 new ones, 40 metrics each, and 8 metrics of no stored
    // session, 2 of them old; the first (old) and the last (new) of those share a component.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitor.db");
    let sessions = [
        (1, OLD),
        (2, NEW),
        (3, OLD),
        (4, NEW),
        (5, "2021-06-01 10:00:00Z"),
    ];
    let orphans = [OLD, NEW, "2019-01-01T00:00:00", NEW, NEW, NEW, NEW, NEW];
    store(&path, &sessions, 40, &orphans);

    // Act
    let output = prune(dir.path(), &["--db", "monitor.db", "--older-than", "90d"]);

    // Assert
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(
        stdout.starts_with("pruned monitor.db: 3 sessions and 122 metrics older than 90d"),
        "{stdout}"
    );
    assert!(stdout.contains(" deleted in "), "{stdout}");
    let conn = Connection::open(&path).unwrap();
    assert_eq!(
        rows(&conn, "SELECT session_h FROM sessions ORDER BY id"),
        [session_hash(2), session_hash(4)]
    );
    assert_eq!(query_i64(&conn, "SELECT count(*) FROM metrics"), 86);
    assert_eq!(
        query_i64(
            &conn,
            &format!(
                "SELECT count(*) FROM metrics WHERE session_h IN ('{}', '{}')",
                session_hash(2),
                session_hash(4)
            )
        ),
        80
    );
    assert_eq!(query_i64(&conn, "SELECT count(*) FROM session_tags"), 4);
    assert_consistent(&conn);
    // Every page of the order stored is the right one.
    let ids = |sql: &str| -> Vec<String> { rows(&conn, sql) };
    let all = ids("SELECT item_variant || session_h FROM metrics ORDER BY id");
    for offset in [0, 1, 40, 79, 83] {
        let page = db::list_metrics(&conn, offset, 3).unwrap();
        let got: Vec<String> = page
            .iter()
            .map(|m| format!("{}{}", m.item_variant, m.session_h))
            .collect();
        let end = (offset as usize + 3).min(all.len());
        assert_eq!(got, all[offset as usize..end], "offset {offset}");
    }

    // Running it again finds nothing more.
    let again = prune(dir.path(), &["--db", "monitor.db", "--older-than", "90d"]);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stdout).contains(": 0 sessions and 0 metrics"),
        "{again:?}"
    );
}

#[test]
fn a_dry_run_says_what_would_go_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitor.db");
    store(&path, &[(1, OLD), (2, NEW)], 10, &[OLD]);
    let before = std::fs::read(&path).unwrap();

    let output = prune(
        dir.path(),
        &["--db", "monitor.db", "--older-than", "2w", "--dry-run"],
    );

    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("would prune monitor.db: 1 session and 11 metrics older than 2w"),
        "{stdout}"
    );
    assert!(stdout.contains("nothing was deleted"), "{stdout}");
    let conn = Connection::open(&path).unwrap();
    assert_eq!(query_i64(&conn, "SELECT count(*) FROM metrics"), 21);
    assert_eq!(query_i64(&conn, "SELECT count(*) FROM sessions"), 2);
    drop(conn);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn prune_takes_the_database_from_the_environment_and_ages_in_hours() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("elsewhere.db");
    store(&path, &[(1, OLD), (2, NEW)], 5, &[]);

    let output = monitor_server()
        .args(["prune", "--older-than", "12h"])
        .env("MONITOR_SERVER_DB", &path)
        .current_dir(dir.path())
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let conn = Connection::open(&path).unwrap();
    assert_eq!(query_i64(&conn, "SELECT count(*) FROM metrics"), 5);
    assert!(!dir.path().join("monitor.db").exists());
}

#[test]
fn usage_and_file_errors_exit_with_status_2_and_one_line_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.db"), "not a database\n".repeat(100)).unwrap();
    store(&dir.path().join("monitor.db"), &[(1, OLD)], 3, &[]);

    let cases: [(&[&str], &str); 6] = [
        (
            &["--db", "monitor.db", "--older-than", "90"],
            "is not an age",
        ),
        (
            &["--db", "monitor.db", "--older-than", "0d"],
            "is not an age",
        ),
        (
            &["--db", "monitor.db", "--older-than", "3 months"],
            "is not an age",
        ),
        (&["--db", "monitor.db"], "--older-than"),
        (
            &["--db", "missing.db", "--older-than", "90d"],
            "no such database file",
        ),
        (
            &["--db", "notes.db", "--older-than", "90d"],
            "not an SQLite database",
        ),
    ];
    for (args, expected) in cases {
        let output = prune(dir.path(), args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert!(!dir.path().join("missing.db").exists());
    let conn = Connection::open(dir.path().join("monitor.db")).unwrap();
    assert_eq!(query_i64(&conn, "SELECT count(*) FROM metrics"), 3);
}

#[test]
fn pruning_while_the_server_stores_metrics_in_the_same_file_loses_no_write_and_keeps_pages_exact() {
    // Arrange: 6 old runs of 4 sessions and 2 new ones, 500 metrics a session; the real server
    // serving the file, and a client storing metrics one after another.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitor.db");
    let sessions: Vec<(usize, &str)> = (0..32)
        .map(|n| (n, if n < 24 { OLD } else { NEW }))
        .collect();
    store(&path, &sessions, 500, &[]);
    let server = Running::start(
        {
            let mut command = monitor_server();
            command.args(["--db", "monitor.db", "--bind", "127.0.0.1:0"]);
            command
        },
        dir.path(),
    );
    let base = server.wait_until_listening();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (done, url) = (Arc::clone(&done), format!("{base}/metrics/"));
        // Metrics of a new run: none of them is the prune's to delete.
        let mut body = metric("during_prune");
        body["session_h"] = json!(session_hash(24));
        body["item_start_time"] = json!(NEW);
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            let mut slowest = Duration::ZERO;
            while !done.load(Ordering::Relaxed) {
                let started = Instant::now();
                let reply = exchange(agent().post(&url), Some(&body));
                slowest = slowest.max(started.elapsed());
                answers.push(reply.status);
            }
            (answers, slowest)
        })
    };

    // Act
    let started = Instant::now();
    let output = prune(dir.path(), &["--db", "monitor.db", "--older-than", "90d"]);
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let (answers, slowest) = writer.join().unwrap();

    // Assert: the prune did its work, and every write was stored.
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(": 24 sessions and 12000 metrics older than 90d"),
        "{stdout}"
    );
    assert!(!answers.is_empty());
    assert!(
        answers.iter().all(|status| *status == 201),
        "not every write was stored: {:?}",
        answers.iter().filter(|s| **s != 201).collect::<Vec<_>>()
    );
    eprintln!(
        "prune of 12,000 metrics took {took:?}; {} writes meanwhile, the slowest {slowest:?}",
        answers.len()
    );
    // The server's writes wait for one short transaction of the prune, not for the prune: about
    // 0.1 s measured (a debug build); without the pauses between transactions, 1.7 s. The bound
    // leaves room for a loaded machine.
    assert!(
        slowest < Duration::from_secs(1),
        "a write waited {slowest:?} for the prune"
    );
    let expected = 8 * 500 + answers.len();
    let count = exchange(agent().get(&format!("{base}/metrics/count")), None).json();
    assert_eq!(count, json!({"count": expected}));
    let conn = Connection::open(&path).unwrap();
    assert_consistent(&conn);
    // The server's pages, walked from the first and from the last, are the rows in the order
    // stored, none twice or missing.
    let all = rows(&conn, "SELECT item || session_h FROM metrics ORDER BY id");
    let page = |n: i64| -> Value {
        let url = format!("{base}/metrics/?per_page=1000&page={n}");
        exchange(agent().get(&url), None).json()
    };
    let total = page(1)["total_page"].as_i64().unwrap();
    assert_eq!(total as usize, expected.div_ceil(1000));
    for n in 1..=total {
        let (forward, backward) = (page(n), page(n - total - 1));
        assert_eq!(forward["metrics"], backward["metrics"], "page {n}");
        let listed: Vec<String> = forward["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                format!(
                    "{}{}",
                    m["item"].as_str().unwrap(),
                    m["session_h"].as_str().unwrap()
                )
            })
            .collect();
        let from = (n as usize - 1) * 1000;
        assert_eq!(listed, all[from..(from + 1000).min(all.len())], "page {n}");
    }
    // A few runs of deleted ids, not one per metric: paging stays a lookup in a small table.
    let holes = query_i64(&conn, "SELECT count(*) FROM metric_holes");
    assert!(holes <= 10, "{holes} runs of deleted ids");
}
