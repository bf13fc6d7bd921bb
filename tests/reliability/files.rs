//! Hostile files at start-up, met by the real binary: a database path in a missing or read-only
//! directory, a file that is not SQLite, a corrupt database and one written by a newer binary each
//! end with one line on stderr and a non-zero exit, and leave the directory exactly as it was —
//! the file's bytes, and no `-wal`, `-shm` or `-journal` beside it. A version-1 database (the
//! first release's layout, `tests/common/fixtures/schema_v1.sql`) is migrated in place, in one
//! transaction: its data is then served by the routes that need the new layout, and a migration
//! that fails midway changes nothing.
//!
//! Read-only directories are read-only mounts (root ignores permission bits). Where mounting is
//! impossible those tests fail under `CI=true` and otherwise say `SKIPPED:` on stderr.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::RecvTimeoutError;

use monitor_server::db::{store_metrics, SCHEMA, SCHEMA_VERSION};
use monitor_server::models::{parse_iso8601, Metric};
use rusqlite::{params, Connection};
use serde_json::{json, Value};

use crate::common::fixtures::{SCHEMA_V1, SCHEMA_V2};
use crate::common::{agent, exchange, metric, monitor_server, Running, DEADLINE};

// ---------------------------------------------------------------- running the binary

/// Runs `monitor-server --db DB --bind 127.0.0.1:0` in `cwd` until it exits; a start that gets
/// as far as listening fails the test at once.
fn serve_expecting_refusal(cwd: &Path, db: &Path) -> Output {
    let mut child = monitor_server()
        .args(["--db", path_text(db), "--bind", "127.0.0.1:0"])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start monitor-server");
    let pipe = child.stderr.take().expect("stderr is piped");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = String::new();
    loop {
        match lines.recv_timeout(DEADLINE) {
            Ok(line) if line.contains("listening on") => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "monitor-server started on {} instead of refusing it",
                    db.display()
                );
            }
            Ok(line) => {
                stderr.push_str(&line);
                stderr.push('\n');
            }
            // The pipe closed: the process is exiting.
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("monitor-server neither started nor exited: {stderr}");
            }
        }
    }
    let status = child.wait().expect("cannot wait for monitor-server");
    Output {
        status,
        stdout: Vec::new(),
        stderr: stderr.into_bytes(),
    }
}

/// Asserts a non-zero exit with exactly one stderr line that contains `expected` and names the
/// file, and no panic.
fn assert_refused(output: &Output, db: &Path, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "exit {:?}; stderr: {stderr}",
        output.status
    );
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.contains(expected), "{expected:?} missing: {stderr}");
    assert!(
        stderr.contains(path_text(db)),
        "the path is missing: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn path_text(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Every file of a directory (not recursing) with its bytes: comparing two snapshots shows a
/// changed byte as well as a `-wal`, `-shm` or `-journal` left behind.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("cannot list the directory")
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = if entry.file_type().unwrap().is_file() {
                std::fs::read(entry.path()).unwrap()
            } else {
                b"<directory>".to_vec()
            };
            (name, bytes)
        })
        .collect()
}

/// Asserts the directory holds exactly what `before` recorded, naming what differs.
fn assert_unchanged(dir: &Path, before: &BTreeMap<String, Vec<u8>>) {
    let after = snapshot(dir);
    let names = |s: &BTreeMap<String, Vec<u8>>| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&after), names(before), "files appeared or vanished");
    for (name, bytes) in before {
        assert!(after[name] == *bytes, "{name} was modified");
    }
}

// ---------------------------------------------------------------- making databases

/// A current database (this binary's schema and version, in WAL mode as the server leaves it)
/// with a context, a session and three metrics, then closed: only the database file remains.
/// It is written directly rather than through `Db::open`, whose pool may close its connections
/// a moment after being dropped.
fn make_database(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)
        .unwrap();
    conn.execute_batch(
        "INSERT INTO contexts (h, cpu_count, cpu_frequency, cpu_type, ram_total, machine_node, \
         machine_type, machine_arch, system_info, python_info) \
         VALUES ('ctx1', 8, 2800.0, 'x86_64', 16384, 'node', 'x86_64', '64bit', 'Linux', '3.11');
         INSERT INTO sessions (session_h, run_date, scm_ref, description) \
         VALUES ('sess1', '2021-03-04T10:11:00', 'abc', '{}');",
    )
    .unwrap();
    let metrics: Vec<Metric> = [
        "2021-03-04T10:11:12",
        "2021-03-04T10:11:13",
        "2021-03-04T10:11:14",
    ]
    .iter()
    .enumerate()
    .map(|(i, start)| Metric {
        session_h: "sess1".into(),
        context_h: "ctx1".into(),
        item_start_time: start.to_string(),
        start_us: parse_iso8601(start).unwrap(),
        item_path: "tests.t".into(),
        item: format!("test_{i}"),
        item_variant: format!("test_{i}"),
        item_fs_loc: "t.py".into(),
        kind: "function".into(),
        component: "api".into(),
        total_time: 1.0,
        user_time: 1.0,
        kernel_time: 0.0,
        cpu_usage: 1.0,
        mem_usage: 10.0,
    })
    .collect();
    store_metrics(&conn, &metrics).unwrap();
    drop(conn);
    assert_only_file(path);
}

/// Asserts `path` is the only file of its directory (its WAL was folded in at close).
fn assert_only_file(path: &Path) {
    let names: Vec<String> = snapshot(path.parent().unwrap()).into_keys().collect();
    let own = path.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(names, [own], "side files were left behind");
}

/// One metric row of a version-1 database: (item, component, session_h, item_start_time).
type V1Metric = (&'static str, &'static str, &'static str, &'static str);

/// Metrics whose start times use every spelling `isoformat()` writes; listed here in the order
/// of the instants they name, which is not the order they are stored in.
const V1_METRICS: [V1Metric; 6] = [
    ("test_a", "api", "sess1", "2020-12-04T23:18:15.661016"),
    ("test_b", "api", "sess1", "2020-12-04 23:18:16"),
    ("test_c", "db", "sess2", "2020-12-04T23:18:15Z"),
    ("test_d", "db", "sess2", "2020-12-05T00:48:15.500000+01:30"),
    ("test_e", "", "sess2", "2020-12-04T22:18:17-01:00"),
    ("test_f", "api", "sess2", "2020-12-04T23:18:14.9"),
];

/// Sessions `sess1` and `sess2`, builds 41 and 42 of pipeline `main`, with their tags, as every
/// release stored them.
fn insert_build_sessions(conn: &Connection) {
    for (h, branch, build) in [("sess1", "main", "41"), ("sess2", "main", "42")] {
        let description = json!({"pipeline_branch": branch, "pipeline_build_no": build});
        conn.execute(
            "INSERT INTO sessions (session_h, run_date, scm_ref, description) \
             VALUES (?1, '2020-12-04T23:00:00', 'abc', ?2)",
            params![h, description.to_string()],
        )
        .unwrap();
        let id = conn.last_insert_rowid();
        for (name, value) in [("pipeline_branch", branch), ("pipeline_build_no", build)] {
            conn.execute(
                "INSERT INTO session_tags (session_id, name, value) VALUES (?1, ?2, ?3)",
                params![id, name, value],
            )
            .unwrap();
        }
    }
}

/// A database as the first release left it: its schema, `user_version` 1, WAL mode, two
/// contexts, two sessions with pipeline tags and [`V1_METRICS`] plus `extra` metrics.
fn make_v1_database(path: &Path, extra: &[V1Metric]) {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(SCHEMA_V1).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    for h in ["ctx1", "ctx2"] {
        conn.execute(
            "INSERT INTO contexts (h, cpu_count, cpu_frequency, cpu_type, ram_total, \
             machine_node, machine_type, machine_arch, system_info, python_info) \
             VALUES (?1, 4, 2000.0, 'x86_64', 8192, 'node', 'x86_64', '64bit', 'Linux', '3.9')",
            [h],
        )
        .unwrap();
    }
    insert_build_sessions(&conn);
    // Stored in an order other than the instants', so that sorting shows start_us is right.
    let mut rows: Vec<V1Metric> = V1_METRICS.iter().rev().copied().collect();
    rows.extend_from_slice(extra);
    for (item, component, session_h, start) in rows {
        conn.execute(
            "INSERT INTO metrics (session_h, context_h, item_start_time, item_path, item, \
             item_variant, item_fs_loc, kind, component, total_time, user_time, kernel_time, \
             cpu_usage, mem_usage) \
             VALUES (?1, 'ctx1', ?2, 'tests.t', ?3, ?3, 't.py', 'function', ?4, 1.5, 1, 0.5, \
             1, -2.5)",
            params![session_h, start, item, component],
        )
        .unwrap();
    }
    drop(conn);
    assert_only_file(path);
}

/// A database as the second release left it: its schema (whose trigger counts the metrics),
/// `user_version` 2, WAL mode, two sessions of build 41 and 42 of `main` and the metrics of
/// [`V1_METRICS`] (with their `start_us`).
fn make_v2_database(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(SCHEMA_V2).unwrap();
    conn.pragma_update(None, "user_version", 2).unwrap();
    insert_build_sessions(&conn);
    for (item, component, session_h, start) in V1_METRICS {
        conn.execute(
            "INSERT INTO metrics (session_h, context_h, item_start_time, start_us, item_path, \
             item, item_variant, item_fs_loc, kind, component, total_time, user_time, \
             kernel_time, cpu_usage, mem_usage) \
             VALUES (?1, 'ctx1', ?2, ?3, 'tests.t', ?4, ?4, 't.py', 'function', ?5, 1.5, 1, \
             0.5, 1, -2.5)",
            params![
                session_h,
                start,
                parse_iso8601(start).unwrap(),
                item,
                component
            ],
        )
        .unwrap();
    }
    drop(conn);
    assert_only_file(path);
}

fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

// ---------------------------------------------------------------- read-only mounts

/// A tmpfs mounted on a directory, unmounted (lazily, so a failing test never leaves it busy)
/// when dropped.
pub(super) struct Mount {
    dir: PathBuf,
}

impl Mount {
    /// Mounts a small tmpfs on `dir` with `options` (`ro` or `rw`); `None` after saying
    /// `SKIPPED:` when this machine cannot mount, which under `CI=true` fails the test instead.
    pub(super) fn tmpfs(dir: &Path, options: &str, test: &str) -> Option<Mount> {
        let outcome = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("{options},size=4m"), "tmpfs"])
            .arg(dir)
            .output();
        let why = match outcome {
            Ok(output) if output.status.success() => {
                return Some(Mount {
                    dir: dir.to_owned(),
                })
            }
            Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            Err(err) => err.to_string(),
        };
        assert!(
            !crate::common::on_ci(),
            "{test} needs a read-only mount, and mounting a tmpfs failed under CI: {why}"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {test}: cannot mount a read-only tmpfs here ({why}); \
             run as root on Linux to check read-only directories"
        );
        None
    }

    /// Makes the mount read-only.
    fn remount_read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.dir)
            .status()
            .expect("cannot run mount");
        assert!(
            status.success(),
            "remounting {} read-only failed",
            self.dir.display()
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

// ---------------------------------------------------------------- unusable paths

#[test]
fn a_database_in_a_missing_directory_is_refused_in_one_line_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("missing").join("deeper").join("monitor.db");

    let output = serve_expecting_refusal(dir.path(), &db);

    assert_refused(&output, &db, "does not exist");
    assert!(snapshot(dir.path()).is_empty(), "something was created");
}

#[test]
fn a_new_database_in_a_read_only_directory_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = dir.path().join("ro");
    std::fs::create_dir(&mounted).unwrap();
    let Some(_mount) = Mount::tmpfs(&mounted, "ro", "a_new_database_in_a_read_only_directory")
    else {
        return;
    };
    let db = mounted.join("monitor.db");

    let output = serve_expecting_refusal(dir.path(), &db);

    assert_refused(&output, &db, "read-only");
    assert!(snapshot(&mounted).is_empty());
}

#[test]
fn an_existing_database_on_a_read_only_file_system_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = dir.path().join("ro");
    std::fs::create_dir(&mounted).unwrap();
    let Some(mount) = Mount::tmpfs(&mounted, "rw", "an_existing_database_on_a_read_only_fs") else {
        return;
    };
    let db = mounted.join("monitor.db");
    make_database(&db);
    mount.remount_read_only();
    let before = snapshot(&mounted);

    let output = serve_expecting_refusal(dir.path(), &db);

    assert_refused(&output, &db, "read-only");
    assert_unchanged(&mounted, &before);
}

#[test]
fn a_directory_given_as_the_database_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    std::fs::create_dir(&db).unwrap();
    let before = snapshot(dir.path());

    let output = serve_expecting_refusal(dir.path(), &db);

    assert_refused(&output, &db, "is a directory");
    assert_unchanged(dir.path(), &before);
}

// ---------------------------------------------------------------- files that are not ours

#[test]
fn files_that_are_not_sqlite_are_refused_in_one_line_and_left_unchanged() {
    // Deterministic noise: a xorshift stream, so a failure can be reproduced.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..20_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "notes.txt",
            b"Meeting notes, not a database.\n".repeat(2000),
        ),
        ("noise.bin", noise),
        ("zeros.bin", vec![0; 8192]),
        (
            "png.db",
            [b"\x89PNG\r\n\x1a\n".as_slice(), &[7; 4096]].concat(),
        ),
    ];
    for (name, content) in cases {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(name);
        std::fs::write(&db, &content).unwrap();
        let before = snapshot(dir.path());

        let output = serve_expecting_refusal(dir.path(), &db);

        assert_refused(&output, &db, "not an SQLite database");
        assert_unchanged(dir.path(), &before);
    }
}

/// One way of damaging a database file, and the word its refusal must contain.
struct Damage {
    name: &'static str,
    expected: &'static str,
    apply: fn(&mut Vec<u8>, &Layout),
}

/// What [`Damage`] needs to know of the healthy file.
struct Layout {
    page_size: usize,
    /// The root page (1-based) of the metrics table.
    metrics_root: usize,
}

fn overwrite(bytes: &mut [u8], at: usize, with: &[u8]) {
    bytes[at..at + with.len()].copy_from_slice(with);
}

/// Replaces every occurrence of `from` with `to`, of the same length: the schema page may also
/// hold stale copies of a statement in its free space, and the live one must be hit.
fn replace_text(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut found = 0;
    for at in 0..=bytes.len() - from.len() {
        if bytes[at..].starts_with(from) {
            overwrite(bytes, at, to);
            found += 1;
        }
    }
    assert!(
        found > 0,
        "{:?} is not in the file",
        String::from_utf8_lossy(from)
    );
}

const DAMAGES: &[Damage] = &[
    Damage {
        name: "the magic string of the header",
        expected: "not an SQLite database",
        apply: |bytes, _| overwrite(bytes, 0, b"SQLite format 4\0"),
    },
    Damage {
        name: "the header's page size (not a power of two)",
        expected: "not an SQLite database",
        apply: |bytes, _| overwrite(bytes, 16, &[0x03, 0x00]),
    },
    Damage {
        name: "the header's payload fractions",
        expected: "not an SQLite database",
        apply: |bytes, _| overwrite(bytes, 21, &[0xff, 0xff, 0xff]),
    },
    Damage {
        name: "the schema page's b-tree page type",
        expected: "corrupt",
        apply: |bytes, _| overwrite(bytes, 100, &[0x07]),
    },
    Damage {
        name: "the schema page's cell pointers",
        expected: "corrupt",
        apply: |bytes, _| overwrite(bytes, 108, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    },
    Damage {
        name: "a table's SQL text in the schema",
        expected: "corrupt",
        apply: |bytes, _| {
            replace_text(
                bytes,
                b"CREATE TABLE metric_rows (",
                b"CREATE TABLE metric_rows )",
            )
        },
    },
    Damage {
        name: "a table's name in the schema (two tables named alike)",
        expected: "corrupt",
        apply: |bytes, _| replace_text(bytes, b"TABLE sessions", b"TABLE contexts"),
    },
    Damage {
        name: "the root page of the metrics table",
        expected: "corrupt",
        apply: |bytes, layout| {
            let at = (layout.metrics_root - 1) * layout.page_size;
            overwrite(bytes, at, &[0x07; 12]);
        },
    },
];

#[test]
fn a_corrupt_database_is_refused_in_one_line_and_left_unchanged() {
    let mut refused = 0;
    for damage in DAMAGES {
        eprintln!("damaging {}", damage.name);
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("monitor.db");
        make_database(&db);
        let layout = {
            let conn = Connection::open(&db).unwrap();
            let page_size: usize = conn
                .query_row("PRAGMA page_size", [], |row| row.get(0))
                .unwrap();
            let metrics_root: usize = conn
                .query_row(
                    "SELECT rootpage FROM sqlite_schema WHERE name = 'metric_rows'",
                    [],
                    |row| row.get(0),
                )
                .unwrap();
            Layout {
                page_size,
                metrics_root,
            }
        };
        assert_only_file(&db);
        let mut bytes = std::fs::read(&db).unwrap();
        (damage.apply)(&mut bytes, &layout);
        std::fs::write(&db, &bytes).unwrap();
        let before = snapshot(dir.path());

        let output = serve_expecting_refusal(dir.path(), &db);

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{}: started", damage.name);
        assert!(
            stderr.contains(damage.expected) && stderr.lines().count() == 1,
            "{}: expected one line with {:?}, got: {stderr}",
            damage.name,
            damage.expected
        );
        assert_refused(&output, &db, damage.expected);
        assert_unchanged(dir.path(), &before);
        refused += 1;
    }
    assert_eq!(refused, DAMAGES.len());
}

#[test]
fn a_database_from_a_newer_binary_is_refused_in_one_line_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    make_database(&db);
    let conn = Connection::open(&db).unwrap();
    // In rollback-journal mode, so that switching it to WAL would show as a changed header.
    conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    // What a newer binary might have added: it must not be touched either.
    conn.execute_batch("CREATE TABLE counters_v9 (x)").unwrap();
    drop(conn);
    let before = snapshot(dir.path());

    let output = serve_expecting_refusal(dir.path(), &db);

    assert_refused(&output, &db, "newer");
    assert_unchanged(dir.path(), &before);
}

// ---------------------------------------------------------------- migration

/// Starts the binary on `db` and returns it with its base URL once it listens.
fn serve(dir: &Path, db: &Path) -> (Running, String) {
    let mut command = monitor_server();
    command.args(["--db", path_text(db), "--bind", "127.0.0.1:0"]);
    let server = Running::start(command, dir);
    let base = server.wait_until_listening();
    (server, base)
}

fn get(base: &str, path: &str) -> (u16, Value) {
    let reply = exchange(agent().get(&format!("{base}{path}")), None);
    let body = if reply.body.is_empty() {
        Value::Null
    } else {
        reply.json()
    };
    (reply.status, body)
}

#[test]
fn a_version_1_database_is_migrated_in_place_and_its_data_served_by_the_new_routes() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    make_v1_database(&db, &[]);
    let original: Vec<(i64, String, String)> = {
        let conn = Connection::open(&db).unwrap();
        let mut stmt = conn
            .prepare("SELECT id, item, item_start_time FROM metrics ORDER BY id")
            .unwrap();
        let rows = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows
    };

    // Act
    let (mut server, base) = serve(dir.path(), &db);

    // Assert: the routes that read start_us, counters, facets and component_sessions answer.
    assert!(
        server
            .stderr()
            .iter()
            .any(|line| line.contains("migrated the database from schema version 1 to 2")),
        "no migration line: {:#?}",
        server.stderr()
    );
    assert_eq!(get(&base, "/metrics/count"), (200, json!({"count": 6})));
    assert_eq!(get(&base, "/components/count"), (200, json!({"count": 2})));
    let (status, components) = get(&base, "/components/");
    assert_eq!(status, 200, "{components}");
    assert_eq!(components["components"], json!(["api", "db"]));
    let (status, pipelines) = get(&base, "/components/db/pipelines/");
    assert_eq!(status, 200, "{pipelines}");
    assert_eq!(pipelines["pipelines"], json!(["main"]));
    let (status, builds) = get(&base, "/components/db/pipelines/main/builds");
    assert_eq!(status, 200, "{builds}");
    assert_eq!(builds["builds"], json!(["42"]));
    let (status, sorted) = get(&base, "/metrics/?sort=item_start_time&order=asc");
    assert_eq!(status, 200, "{sorted}");
    let by_instant: Vec<&str> = sorted["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["item"].as_str().unwrap())
        .collect();
    assert_eq!(
        by_instant,
        ["test_f", "test_c", "test_d", "test_a", "test_b", "test_e"]
    );
    let (status, since) = get(&base, "/metrics/count?from=2020-12-04T23:18:15.6Z");
    assert_eq!((status, since), (200, json!({"count": 3})));
    assert_eq!(
        get(&base, "/items/like/test_/metrics")
            .1
            .get("metrics")
            .map(|m| m.as_array().unwrap().len()),
        Some(6)
    );
    // The records are served exactly as they were stored.
    let (_, listed) = get(&base, "/metrics/");
    let times: Vec<&str> = listed["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["item_start_time"].as_str().unwrap())
        .collect();
    let stored: Vec<&str> = original.iter().map(|(_, _, t)| t.as_str()).collect();
    assert_eq!(times, stored);
    // New metrics are counted once the file is migrated.
    let posted = exchange(
        agent().post(&format!("{base}/metrics/")),
        Some(&metric("test_new")),
    );
    assert_eq!(posted.status, 201, "{}", posted.body);
    assert_eq!(get(&base, "/metrics/count"), (200, json!({"count": 7})));
    assert_eq!(get(&base, "/components/count"), (200, json!({"count": 2})));
    server.terminate();
    assert!(server.wait_for_exit(DEADLINE).success());

    // The file is at version 2, whole, with start_us computed from each original spelling.
    assert_eq!(user_version(&db), SCHEMA_VERSION);
    let conn = Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    for (id, item, start) in &original {
        let (now_item, now_start, start_us): (String, String, i64) = conn
            .query_row(
                "SELECT item, item_start_time, start_us FROM metrics WHERE id = ?1",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!((&now_item, &now_start), (item, start));
        assert_eq!(start_us, parse_iso8601(start).unwrap(), "{start}");
    }
}

#[test]
fn a_version_2_database_keeps_its_counts_and_counts_new_metrics_after_migrating() {
    // Arrange: the second release's file, its counts kept by its insert trigger.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    make_v2_database(&db);

    // Act
    let (mut server, base) = serve(dir.path(), &db);

    // Assert: the counts the trigger kept are served ...
    assert!(
        server
            .stderr()
            .iter()
            .any(|line| line.contains("migrated the database from schema version 2 to 3")),
        "no migration line: {:#?}",
        server.stderr()
    );
    assert_eq!(get(&base, "/metrics/count"), (200, json!({"count": 6})));
    assert_eq!(get(&base, "/components/count"), (200, json!({"count": 2})));
    let sess2 = "/sessions/sess2/metrics/count";
    assert_eq!(get(&base, sess2), (200, json!({"count": 4})));
    // ... and the metrics stored after the migration are counted once each (the trigger is
    // gone; with it still there they would count twice).
    let mut new = metric("test_new");
    new["session_h"] = json!("sess2");
    new["component"] = json!("db");
    let posted = exchange(agent().post(&format!("{base}/metrics/")), Some(&new));
    assert_eq!(posted.status, 201, "{}", posted.body);
    assert_eq!(get(&base, "/metrics/count"), (200, json!({"count": 7})));
    assert_eq!(get(&base, sess2), (200, json!({"count": 5})));
    assert_eq!(
        get(&base, "/metrics/count?component=db"),
        (200, json!({"count": 3}))
    );
    let (status, builds) = get(&base, "/components/db/pipelines/main/builds");
    assert_eq!(status, 200, "{builds}");
    assert_eq!(builds["builds"], json!(["42"]));
    // ... and so are the metrics deleted (with the delete trigger still there they would count
    // twice).
    let deleted = exchange(agent().delete(&format!("{base}/sessions/sess2")), None);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(get(&base, "/metrics/count"), (200, json!({"count": 2})));
    assert_eq!(get(&base, sess2), (200, json!({"count": 0})));
    assert_eq!(
        get(&base, "/metrics/count?component=db"),
        (200, json!({"count": 0}))
    );
    server.terminate();
    assert!(server.wait_for_exit(DEADLINE).success());

    assert_eq!(user_version(&db), SCHEMA_VERSION);
    let triggers: Vec<String> = Connection::open(&db)
        .unwrap()
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(triggers.is_empty(), "{triggers:?}");
}

#[test]
fn a_database_already_in_the_version_2_layout_but_marked_version_1_is_brought_up_to_date() {
    // Development builds before version 2 wrote the version-2 layout under user_version 1.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    make_v2_database(&db);
    let conn = Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    // A counter gone wrong is rebuilt from the rows, not trusted.
    conn.execute("UPDATE counters SET n = 99 WHERE name = 'metrics'", [])
        .unwrap();
    drop(conn);

    let (mut server, base) = serve(dir.path(), &db);

    assert_eq!(get(&base, "/metrics/count"), (200, json!({"count": 6})));
    assert_eq!(get(&base, "/components/count"), (200, json!({"count": 2})));
    server.terminate();
    assert!(server.wait_for_exit(DEADLINE).success());
    assert_eq!(user_version(&db), SCHEMA_VERSION);
}

#[test]
fn a_migration_that_fails_on_a_row_changes_nothing_and_names_the_row() {
    // Arrange: a time the first release did not check, stored after rows that convert fine, so
    // the migration has already altered the table and updated rows when it meets it.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    make_v1_database(&db, &[("test_bad", "api", "sess1", "yesterday\nat noon")]);
    let before = snapshot(dir.path());

    // Act
    let output = serve_expecting_refusal(dir.path(), &db);

    // Assert
    assert_refused(&output, &db, "nothing was changed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("metric 7"), "{stderr}");
    assert!(stderr.contains("version 1 to 2"), "{stderr}");
    assert_unchanged(dir.path(), &before);
    assert_eq!(user_version(&db), 1);
}

#[test]
fn a_migration_that_fails_at_its_last_step_changes_nothing() {
    // Arrange: a `counters` table of another shape, which the migration only trips over when
    // it fills the new tables, after adding start_us and creating the indexes and triggers.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    make_v1_database(&db, &[]);
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE counters (name TEXT PRIMARY KEY) WITHOUT ROWID")
        .unwrap();
    drop(conn);
    let before = snapshot(dir.path());

    // Act
    let output = serve_expecting_refusal(dir.path(), &db);

    // Assert
    assert_refused(&output, &db, "nothing was changed");
    assert_unchanged(dir.path(), &before);
    let conn = Connection::open(&db).unwrap();
    let columns: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('metrics') WHERE name = 'start_us'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(columns, 0, "start_us was added by a failed migration");
}
