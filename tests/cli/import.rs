//! `monitor-server import`, run as the real binary on `.pymon` files built here with
//! pytest-monitor 1.6.6's own `CREATE TABLE` statements: what it stores, that a second import adds
//! nothing (also after a live upload of the same run), that a damaged file or a bad row is refused
//! with one line and exit code 2 leaving the target as it was, and `--server` against a running
//! server. The real plugin's file is imported in `tests/e2e/pytest_monitor.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::{params, Connection};
use serde_json::{json, Value};

use crate::common::Server;

/// pytest-monitor 1.6.6's schema, exactly as `pytest_monitor/handler.py` creates it.
const PLUGIN_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS TEST_SESSIONS(
    SESSION_H varchar(64) primary key not null unique, -- Session identifier
    RUN_DATE varchar(64), -- Date of test run
    SCM_ID varchar(128), -- SCM change id
    RUN_DESCRIPTION json
);
CREATE TABLE IF NOT EXISTS TEST_METRICS (
    SESSION_H varchar(64), -- Session identifier
    ENV_H varchar(64), -- Environment description identifier
    ITEM_START_TIME varchar(64), -- Effective start time of the test
    ITEM_PATH varchar(4096), -- Path of the item, following Python import specification
    ITEM varchar(2048), -- Name of the item
    ITEM_VARIANT varchar(2048), -- Optional parametrization of an item.
    ITEM_FS_LOC varchar(2048), -- Relative path from pytest invocation directory to the item's module.
    KIND varchar(64), -- Package, Module or function
    COMPONENT varchar(512) NULL, -- Tested component if any
    TOTAL_TIME float, -- Total time spent running the item
    USER_TIME float, -- time spent in user space
    KERNEL_TIME float, -- time spent in kernel space
    CPU_USAGE float, -- cpu usage
    MEM_USAGE float, -- Max resident memory used.
    FOREIGN KEY (ENV_H) REFERENCES EXECUTION_CONTEXTS(ENV_H),
    FOREIGN KEY (SESSION_H) REFERENCES TEST_SESSIONS(SESSION_H)
);
CREATE TABLE IF NOT EXISTS EXECUTION_CONTEXTS (
   ENV_H varchar(64) primary key not null unique,
   CPU_COUNT integer,
   CPU_FREQUENCY_MHZ integer,
   CPU_TYPE varchar(64),
   CPU_VENDOR varchar(256),
   RAM_TOTAL_MB integer,
   MACHINE_NODE varchar(512),
   MACHINE_TYPE varchar(32),
   MACHINE_ARCH varchar(16),
   SYSTEM_INFO varchar(256),
   PYTHON_INFO varchar(512)
);
";

const CONTEXT_H: &str = "3ece2a37320abacf3081d6da8d4717fd";
const SESSION_A: &str = "38b4859c3a879ad04188853cfaca95b4";
const SESSION_B: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

/// One metric row as the plugin writes it (and, field for field, sends it).
#[derive(Debug, Clone)]
struct Row {
    session_h: &'static str,
    start: String,
    item: &'static str,
    variant: String,
    component: Option<&'static str>,
    total_time: f64,
    mem_usage: f64,
}

fn row(session_h: &'static str, n: usize) -> Row {
    Row {
        session_h,
        start: format!("2024-05-06T07:08:{:02}.{:06}", n % 60, 100 + n),
        item: "test_param",
        variant: format!("test_param[{n}, a]"),
        component: Some("storage"),
        total_time: 0.25 + n as f64 / 1000.0,
        mem_usage: -1.5 + n as f64,
    }
}

impl Row {
    /// The body pytest-monitor posts for this test (`--remote-server`).
    fn body(&self) -> Value {
        json!({
            "session_h": self.session_h,
            "context_h": CONTEXT_H,
            "item_start_time": self.start,
            "item_path": "tests.test_mod",
            "item": self.item,
            "item_variant": self.variant,
            "item_fs_loc": "tests/test_mod.py",
            "kind": "function",
            "component": self.component.unwrap_or(""),
            "total_time": self.total_time,
            "user_time": 0.125,
            "kernel_time": 0.0625,
            "cpu_usage": 0.75,
            "mem_usage": self.mem_usage,
        })
    }
}

fn context_body() -> Value {
    json!({
        "h": CONTEXT_H, "cpu_count": 8, "cpu_frequency": 2593.5, "cpu_type": "x86_64",
        "cpu_vendor": "Intel(R) Xeon(R)", "ram_total": 15889, "machine_node": "ci-runner-1",
        "machine_type": "x86_64", "machine_arch": "64bit", "system_info": "Linux - 6.1.0",
        "python_info": "3.11.2 (main, Mar 13 2023, 12:18:29) [GCC 12.2.0]",
    })
}

/// The session the plugin posts; locally it stores `description` as `json.dumps` text.
fn session_body(session_h: &str) -> Value {
    json!({
        "session_h": session_h,
        "run_date": "2024-05-06T07:08:00.000001",
        "scm_ref": "0f1e2d3c",
        "description": {"pipeline_branch": "main", "pipeline_build_no": "42",
                        "__ci__": "gitlabci", "description": "nightly", "team": "storage"},
    })
}

/// A `.pymon` as the plugin leaves it: the context, the given sessions and metric rows.
fn write_pymon(path: &Path, sessions: &[&str], rows: &[Row]) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(PLUGIN_SCHEMA).unwrap();
    let c = context_body();
    conn.execute(
        "insert into EXECUTION_CONTEXTS(CPU_COUNT,CPU_FREQUENCY_MHZ,CPU_TYPE,CPU_VENDOR,\
         RAM_TOTAL_MB,MACHINE_NODE,MACHINE_TYPE,MACHINE_ARCH,SYSTEM_INFO,PYTHON_INFO,ENV_H) \
         values (?,?,?,?,?,?,?,?,?,?,?)",
        params![
            8,
            2593.5,
            c["cpu_type"].as_str(),
            c["cpu_vendor"].as_str(),
            15889,
            c["machine_node"].as_str(),
            c["machine_type"].as_str(),
            c["machine_arch"].as_str(),
            c["system_info"].as_str(),
            c["python_info"].as_str(),
            CONTEXT_H
        ],
    )
    .unwrap();
    for h in sessions {
        let s = session_body(h);
        // What Python's json.dumps writes, separators included.
        let description = "{\"pipeline_branch\": \"main\", \"pipeline_build_no\": \"42\", \
             \"__ci__\": \"gitlabci\", \"description\": \"nightly\", \"team\": \"storage\"}";
        conn.execute(
            "insert into TEST_SESSIONS(SESSION_H, RUN_DATE, SCM_ID, RUN_DESCRIPTION) values (?,?,?,?)",
            params![h, s["run_date"].as_str(), s["scm_ref"].as_str(), description],
        )
        .unwrap();
    }
    let mut insert = conn
        .prepare(
            "insert into TEST_METRICS(SESSION_H,ENV_H,ITEM_START_TIME,ITEM,\
             ITEM_PATH,ITEM_VARIANT,ITEM_FS_LOC,KIND,COMPONENT,TOTAL_TIME,\
             USER_TIME,KERNEL_TIME,CPU_USAGE,MEM_USAGE) values (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        )
        .unwrap();
    conn.execute_batch("BEGIN").unwrap();
    for r in rows {
        insert
            .execute(params![
                r.session_h,
                CONTEXT_H,
                r.start,
                r.item,
                "tests.test_mod",
                r.variant,
                "tests/test_mod.py",
                "function",
                r.component,
                r.total_time,
                0.125,
                0.0625,
                0.75,
                r.mem_usage
            ])
            .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
}

/// Five metrics over two sessions; one metric has a NULL component, as the schema allows.
fn sample_rows() -> Vec<Row> {
    let mut rows: Vec<Row> = (0..3).map(|n| row(SESSION_A, n)).collect();
    rows.extend((3..5).map(|n| row(SESSION_B, n)));
    rows[4].component = None;
    rows
}

// ------------------------------------------------------------------------------ running it

/// The binary, with none of the caller's `MONITOR_SERVER_*` variables nor its log level: what
/// an import prints is checked.
fn monitor_server() -> Command {
    let mut command = crate::common::monitor_server();
    command.env_remove("RUST_LOG");
    command
}

fn import(args: &[&Path], extra: &[&str]) -> Output {
    monitor_server()
        .arg("import")
        .args(args)
        .args(extra)
        .output()
        .expect("cannot run monitor-server import")
}

fn import_into(db: &Path, files: &[&Path]) -> Output {
    import(files, &["--db", db.to_str().unwrap()])
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_imported(output: &Output, expected: &str) {
    assert!(
        output.status.success(),
        "exit {:?}, stderr: {}",
        output.status,
        stderr(output)
    );
    assert!(
        stdout(output).contains(expected),
        "expected {expected:?} in: {}",
        stdout(output)
    );
}

/// Asserts the refusal: exit code 2, one line on stderr naming the file and `expected`.
fn assert_refused(output: &Output, file: &Path, expected: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(
        err.contains(&format!("cannot import {}", file.display())),
        "{err}"
    );
    assert!(err.contains(expected), "expected {expected:?} in: {err}");
    assert!(err.contains("nothing was imported from it"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Every stored table, as text, to compare before and after.
fn dump(db: &Path) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut out = Vec::new();
    for (table, order) in [
        ("contexts", "id"),
        ("sessions", "id"),
        ("session_tags", "session_id, name"),
        ("metrics", "id"),
        ("counters", "name"),
        ("metric_facets", "field, value"),
    ] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))
            .unwrap();
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let values: Vec<String> = (0..columns)
                    .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                    .collect();
                Ok(format!("{table}: {}", values.join(" | ")))
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

fn count(db: &Path, table: &str) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// The real binary serving `db` on a free port, requiring `token` for writes when given.
fn serve(db: &Path, token: Option<&str>) -> Server {
    serve_with(db, token, &[])
}

/// [`serve`] with more arguments for the server.
fn serve_with(db: &Path, token: Option<&str>, args: &[&str]) -> Server {
    let mut all = args.to_vec();
    if let Some(token) = token {
        all.extend(["--token", token]);
    }
    Server::serve(db, &all)
}

/// `GET path` (under `/api/v1`), which must succeed: its JSON body, `Null` for a 204.
fn get(server: &Server, path: &str) -> Value {
    let (status, body) = server.get(path);
    assert!(
        status == 200 || status == 204,
        "GET {path}: {status} {body}"
    );
    body
}

// ------------------------------------------------------------------------------ tests

#[test]
fn a_pymon_is_stored_as_the_plugin_would_have_sent_it_and_a_second_import_adds_nothing() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let pymon = dir.path().join(".pymon");
    let db = dir.path().join("monitor.db");
    let rows = sample_rows();
    write_pymon(&pymon, &[SESSION_A, SESSION_B], &rows);

    // Act
    let first = import_into(&db, &[&pymon]);

    // Assert: everything stored, the metrics in the file's order ...
    assert_imported(
        &first,
        "2 sessions, 1 context, 5 metrics added; 0 sessions, 0 contexts, 0 metrics were already stored",
    );
    assert_eq!(stdout(&first).lines().count(), 1, "{}", stdout(&first));
    let stored = dump(&db);
    // ... exactly as the API stores what the plugin posts: the same records through the server.
    let live_db = dir.path().join("live.db");
    {
        let server = serve(&live_db, None);
        assert_eq!(server.post("/contexts/", &context_body()), 201);
        for h in [SESSION_A, SESSION_B] {
            assert_eq!(server.post("/sessions/", &session_body(h)), 201);
        }
        for r in &rows {
            assert_eq!(server.post("/metrics/", &r.body()), 201);
        }
    }
    assert_eq!(stored, dump(&live_db));

    // Act: again
    let second = import_into(&db, &[&pymon]);

    // Assert
    assert_imported(
        &second,
        "0 sessions, 0 contexts, 0 metrics added; 2 sessions, 1 context, 5 metrics were already stored",
    );
    assert_eq!(dump(&db), stored);
}

#[test]
fn a_run_uploaded_live_is_not_duplicated_and_a_partial_upload_is_completed() {
    // Arrange: the server got the context, session A and two of its three metrics live (the
    // plugin switched uploading off after them), and keeps running during the import.
    let dir = tempfile::tempdir().unwrap();
    let pymon = dir.path().join(".pymon");
    let db = dir.path().join("monitor.db");
    let rows = sample_rows();
    write_pymon(&pymon, &[SESSION_A, SESSION_B], &rows);
    let server = serve(&db, None);
    assert_eq!(server.post("/contexts/", &context_body()), 201);
    assert_eq!(server.post("/sessions/", &session_body(SESSION_A)), 201);
    for r in &rows[..2] {
        assert_eq!(server.post("/metrics/", &r.body()), 201);
    }

    // Act: into the database the server is serving.
    let output = import_into(&db, &[&pymon]);

    // Assert
    assert_imported(
        &output,
        "1 session, 0 contexts, 3 metrics added; 1 session, 1 context, 2 metrics were already stored",
    );
    let listed = get(&server, "/metrics/?per_page=100");
    let variants: Vec<&str> = listed["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["item_variant"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = rows.iter().map(|r| r.variant.clone()).collect();
    assert_eq!(variants, expected);
    // The server keeps writing afterwards.
    assert_eq!(server.post("/metrics/", &row(SESSION_B, 9).body()), 201);
}

#[test]
fn server_mode_sends_the_file_through_the_api_once() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let pymon = dir.path().join(".pymon");
    let db = dir.path().join("served.db");
    let rows = sample_rows();
    write_pymon(&pymon, &[SESSION_A, SESSION_B], &rows);
    let server = serve(&db, Some("s3cret"));
    let url = server.base.trim_end_matches("/api/v1").to_owned();

    // Act: without the token, then with it, twice.
    let refused = import(&[&pymon], &["--server", &url]);
    let first = monitor_server()
        .args(["import", "--server", &server.base])
        .arg(&pymon)
        .env("MONITOR_SERVER_TOKEN", "s3cret")
        .output()
        .unwrap();
    let second = import(&[&pymon], &["--server", &url, "--token", "s3cret"]);

    // Assert
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("401"), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("nothing of this file was stored"),
        "{}",
        stderr(&refused)
    );
    assert_imported(
        &first,
        "2 sessions, 1 context, 5 metrics added; 0 sessions, 0 contexts, 0 metrics were already stored",
    );
    assert_imported(
        &second,
        "0 sessions, 0 contexts, 0 metrics added; 2 sessions, 1 context, 5 metrics were already stored",
    );
    assert_eq!(get(&server, "/metrics/count"), json!({"count": 5}));
    assert_eq!(get(&server, "/sessions/count"), json!({"count": 2}));
    let sessions = get(&server, "/sessions/");
    assert_eq!(
        sessions["sessions"][0]["description"],
        session_body(SESSION_A)["description"]
    );

    // The same file into the server's database directly adds nothing either.
    drop(server);
    assert_imported(
        &import_into(&db, &[&pymon]),
        "0 sessions, 0 contexts, 0 metrics added; 2 sessions, 1 context, 5 metrics were already stored",
    );
}

#[test]
fn server_mode_sends_metrics_in_batches_and_stores_every_one_in_file_order() {
    // Arrange: more metrics than one batch holds, twice over.
    let dir = tempfile::tempdir().unwrap();
    let pymon = dir.path().join(".pymon");
    let rows: Vec<Row> = (0..2_500).map(|n| row(SESSION_A, n)).collect();
    write_pymon(&pymon, &[SESSION_A], &rows);
    let server = serve(&dir.path().join("served.db"), None);
    // A server whose batch limit no batch fits: the batch route is what the import uses.
    let small = serve_with(
        &dir.path().join("small.db"),
        None,
        &["--max-batch-bytes", "2000"],
    );

    // Act
    let output = import(&[&pymon], &["--server", &server.base]);
    let refused = import(&[&pymon], &["--server", &small.base]);

    // Assert
    assert_imported(
        &output,
        "1 session, 1 context, 2500 metrics added; 0 sessions, 0 contexts, 0 metrics were already stored",
    );
    assert_eq!(get(&server, "/metrics/count"), json!({"count": 2500}));
    let last = get(&server, "/metrics/?per_page=1&page=-1");
    assert_eq!(
        last["metrics"][0]["item_variant"],
        json!(rows[2_499].variant)
    );
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("/metrics/batch answered 413"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(get(&small, "/metrics/count"), json!({"count": 0}));
}

#[test]
fn server_mode_refuses_a_file_whose_session_conflicts_before_sending_anything() {
    // Arrange: the server holds session A with another SCM reference.
    let dir = tempfile::tempdir().unwrap();
    let pymon = dir.path().join(".pymon");
    write_pymon(&pymon, &[SESSION_A], &sample_rows()[..3]);
    let server = serve(&dir.path().join("served.db"), None);
    let mut other = session_body(SESSION_A);
    other["scm_ref"] = json!("ffffffff");
    assert_eq!(server.post("/sessions/", &other), 201);

    // Act
    let output = import(&[&pymon], &["--server", &server.base]);

    // Assert
    assert_refused(&output, &pymon, "TEST_SESSIONS rowid 1");
    assert!(stderr(&output).contains("different content"));
    assert_eq!(get(&server, "/contexts/"), Value::Null, "nothing was sent");
    assert_eq!(get(&server, "/metrics/count"), json!({"count": 0}));
}

/// Damages a copy of a good file in one way and checks that importing it is refused, names the
/// problem, and leaves an existing target byte for byte as it was.
fn check_refused(name: &str, expected: &str, damage: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.pymon");
    write_pymon(
        &good,
        &[SESSION_A],
        &(0..3).map(|n| row(SESSION_A, n)).collect::<Vec<_>>(),
    );
    let db = dir.path().join("monitor.db");
    assert!(import_into(&db, &[&good]).status.success());
    let before = std::fs::read(&db).unwrap();
    let bad = dir.path().join(format!("{name}.pymon"));
    let mut rows: Vec<Row> = (0..2000).map(|n| row(SESSION_B, n)).collect();
    rows[1999].variant = "the last row".into();
    write_pymon(&bad, &[SESSION_B], &rows);
    damage(&bad);

    let output = import_into(&db, &[&bad]);

    assert_refused(&output, &bad, expected);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "{name}: the target changed"
    );
    assert_eq!(count(&db, "metrics"), 3, "{name}");
    assert_eq!(count(&db, "sessions"), 1, "{name}");
}

fn execute(path: &Path, sql: &str) {
    Connection::open(path).unwrap().execute_batch(sql).unwrap();
}

#[test]
fn a_truncated_file_is_refused() {
    check_refused("truncated", "damaged", |path| {
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.len() > 100_000, "{} bytes", bytes.len());
        std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
    });
}

#[test]
fn a_file_that_is_not_sqlite_is_refused() {
    check_refused("garbage", "it is not an SQLite database", |path| {
        let garbage: Vec<u8> = (0..50_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        std::fs::write(path, garbage).unwrap();
    });
}

#[test]
fn a_file_with_a_damaged_page_is_refused() {
    check_refused("scribbled", "damaged", |path| {
        let mut bytes = std::fs::read(path).unwrap();
        let page = 4096;
        for byte in &mut bytes[5 * page..5 * page + 200] {
            *byte = 0xA5;
        }
        std::fs::write(path, bytes).unwrap();
    });
}

#[test]
fn a_file_without_the_metrics_table_is_refused() {
    check_refused("no_metrics", "it has no table TEST_METRICS", |path| {
        execute(path, "DROP TABLE TEST_METRICS");
    });
}

#[test]
fn a_file_whose_table_lacks_a_column_is_refused() {
    check_refused("no_column", "lacks the column MEM_USAGE", |path| {
        execute(path, "ALTER TABLE TEST_METRICS DROP COLUMN MEM_USAGE");
    });
}

#[test]
fn an_unparseable_start_time_in_the_last_row_refuses_the_whole_file() {
    check_refused(
        "bad_time",
        "TEST_METRICS rowid 2000: ITEM_START_TIME must be an ISO 8601 time such as \
         2020-12-04T23:18:15.661016 (too short or not ASCII), found \"yesterday\"",
        |path| {
            execute(
                path,
                "UPDATE TEST_METRICS SET ITEM_START_TIME = 'yesterday' WHERE rowid = 2000",
            );
        },
    );
}

#[test]
fn a_negative_time_refuses_the_whole_file() {
    check_refused(
        "negative",
        "TEST_METRICS rowid 7: TOTAL_TIME must be at least 0, found -0.5",
        |path| {
            execute(
                path,
                "UPDATE TEST_METRICS SET TOTAL_TIME = -0.5 WHERE rowid = 7",
            )
        },
    );
}

#[test]
fn a_description_that_is_not_json_refuses_the_whole_file() {
    check_refused(
        "bad_description",
        "TEST_SESSIONS rowid 1: RUN_DESCRIPTION is not valid JSON",
        |path| execute(path, "UPDATE TEST_SESSIONS SET RUN_DESCRIPTION = '{oops'"),
    );
}

#[test]
fn a_context_with_text_for_a_number_refuses_the_whole_file() {
    check_refused(
        "text_count",
        "EXECUTION_CONTEXTS rowid 1: CPU_COUNT must be an integer, not a string, found \"eight\"",
        |path| execute(path, "UPDATE EXECUTION_CONTEXTS SET CPU_COUNT = 'eight'"),
    );
}

#[test]
fn a_context_conflicting_with_the_stored_one_refuses_the_file_and_stores_nothing_of_it() {
    // Arrange: the target holds the context with another amount of memory.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    let first = dir.path().join("first.pymon");
    write_pymon(&first, &[SESSION_A], &sample_rows()[..3]);
    assert!(import_into(&db, &[&first]).status.success());
    execute(&db, "UPDATE contexts SET ram_total = 1");
    let before = dump(&db);
    let second = dir.path().join("second.pymon");
    write_pymon(&second, &[SESSION_B], &sample_rows()[3..]);

    // Act
    let output = import_into(&db, &[&second]);

    // Assert
    assert_refused(
        &output,
        &second,
        &format!("EXECUTION_CONTEXTS rowid 1: the database already holds a context with ENV_H {CONTEXT_H} and different content"),
    );
    assert_eq!(dump(&db), before);
}

#[test]
fn of_several_files_a_refused_one_is_reported_and_the_others_are_imported() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    let a = dir.path().join("a.pymon");
    let b = dir.path().join("b.pymon");
    let missing = dir.path().join("missing.pymon");
    write_pymon(&a, &[SESSION_A], &sample_rows()[..3]);
    write_pymon(&b, &[SESSION_B], &sample_rows()[3..]);

    // Act
    let output = import_into(&db, &[&a, &missing, &b]);

    // Assert
    assert_refused(&output, &missing, "no such file");
    assert_eq!(stdout(&output).lines().count(), 2, "{}", stdout(&output));
    assert_eq!(count(&db, "metrics"), 5);
    assert_eq!(count(&db, "sessions"), 2);
    assert_eq!(count(&db, "contexts"), 1);
}

#[test]
fn a_refused_file_does_not_create_the_target_database() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("notes.txt");
    std::fs::write(&garbage, "not a database\n".repeat(100)).unwrap();
    let db: PathBuf = dir.path().join("monitor.db");

    let output = import_into(&db, &[&garbage]);

    assert_refused(&output, &garbage, "not an SQLite database");
    assert!(!db.exists());
}

#[test]
fn db_and_server_cannot_be_given_together_but_the_db_variable_does_not_get_in_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let pymon = dir.path().join(".pymon");
    write_pymon(&pymon, &[SESSION_A], &sample_rows()[..3]);

    let both = import(
        &[&pymon],
        &["--db", "x.db", "--server", "http://127.0.0.1:9"],
    );
    let unreachable = monitor_server()
        .args(["import", "--server", "http://127.0.0.1:9"])
        .arg(&pymon)
        .env("MONITOR_SERVER_DB", dir.path().join("env.db"))
        .output()
        .unwrap();
    let through_env = monitor_server()
        .arg("import")
        .arg(&pymon)
        .env("MONITOR_SERVER_DB", dir.path().join("env.db"))
        .output()
        .unwrap();

    assert_eq!(both.status.code(), Some(2));
    assert!(
        stderr(&both).contains("cannot be used with"),
        "{}",
        stderr(&both)
    );
    assert_eq!(
        unreachable.status.code(),
        Some(1),
        "{}",
        stderr(&unreachable)
    );
    assert!(stderr(&unreachable).contains("cannot reach the server"));
    assert_imported(&through_env, "1 session, 1 context, 3 metrics added");
    assert_eq!(count(&dir.path().join("env.db"), "metrics"), 3);
}

#[test]
fn importing_into_the_database_of_a_busy_server_loses_none_of_the_servers_writes() {
    // Arrange: a file of 20,000 metrics, and a client posting to the server on the same database
    // for as long as the import runs.
    let dir = tempfile::tempdir().unwrap();
    let pymon = dir.path().join(".pymon");
    let db = dir.path().join("monitor.db");
    let rows: Vec<Row> = (0..20_000).map(|n| row(SESSION_A, n)).collect();
    write_pymon(&pymon, &[SESSION_A], &rows);
    let server = serve(&db, None);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let done = std::sync::Arc::clone(&done);
        let base = server.base.clone();
        std::thread::spawn(move || {
            let (mut created, mut n) = (0u64, 0);
            while !done.load(std::sync::atomic::Ordering::SeqCst) || n < 5 {
                let mut body = row(SESSION_B, n).body();
                body["item_start_time"] = json!(format!("2030-01-01T00:00:00.{n:06}"));
                n += 1;
                let status = match ureq::post(&format!("{base}/metrics/"))
                    .set("Content-Type", "application/json")
                    .send_string(&body.to_string())
                {
                    Ok(response) => response.status(),
                    Err(ureq::Error::Status(status, _)) => status,
                    Err(err) => panic!("POST: {err}"),
                };
                // 503 (retry later) is what a write may get if the import holds the lock for
                // longer than the server's busy timeout; nothing else is acceptable.
                assert!(status == 201 || status == 503, "{status}");
                created += u64::from(status == 201);
            }
            created
        })
    };

    // Act
    let output = import_into(&db, &[&pymon]);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let created = writer.join().unwrap();

    // Assert: the whole file, and every write the server acknowledged.
    assert_imported(&output, "1 session, 1 context, 20000 metrics added");
    let of_a = get(&server, &format!("/sessions/{SESSION_A}/metrics/count"));
    let of_b = get(&server, &format!("/sessions/{SESSION_B}/metrics/count"));
    assert_eq!(of_a, json!({"count": 20_000}));
    assert_eq!(of_b, json!({"count": created}));
    assert!(created >= 5);
}
