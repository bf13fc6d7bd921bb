//! End to end with the real client: pytest-monitor 1.6.6, installed in a Python venv cached under
//! the target directory, runs a small pytest suite and uploads to the real `monitor-server` binary
//! (`--remote-server http://127.0.0.1:PORT/api/v1`); the test then reads back what was stored
//! through the API and checks it against what the plugin measured and sent. Without
//! `--remote-server` the plugin keeps its history in `.pymon`: `monitor-server import` must then
//! store exactly what a live upload would have, and nothing more when the run was uploaded too.
//!
//! Prerequisites (python3 with `venv`, and PyPI for the first run): when they are missing the
//! tests fail on CI (`CI=true`) and print a loud `SKIPPED:` line elsewhere; they never pass
//! silently without having run.
//!
//! What the plugin sends, read off its source (pytest_monitor/session.py, 1.6.6) and checked here:
//! - every pytest process (the controller and each pytest-xdist worker) computes its own session
//!   hash, md5(scm_ref + run_date + description), so an `-n 2` run stores 3 sessions;
//! - each process looks its context up with `GET /contexts/<h>` and creates it with
//!   `POST /contexts/` only when that answers 204;
//! - one `POST /metrics/` per test function, `item` being the function's name, `item_variant` the
//!   pytest node name with every `-` replaced by `, ` (`test_param[1-a]` -> `test_param[1, a]`),
//!   `item_path` the module's import path (no class name), `item_fs_loc` the file;
//! - a session's `description` object is the CI facts (`pipeline_branch`, `pipeline_build_no`,
//!   `__ci__`), then `description`, then each `--tag k=v`, in that order.
//! - any status but 201 switches uploading off with a "... Deactivating..." warning.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{run_bounded, venv_python, Server};

const PYTEST_DEADLINE: Duration = Duration::from_secs(240);

/// The suite's module; `pytest_monitor_component` is the plugin's per-module component.
const SUITE_MODULE: &str = "test_e2e_suite";
const SUITE: &str = r#""""The suite that pytest-monitor measures in monitor-server's end-to-end test."""
import time

import pytest

pytest_monitor_component = "suite"


@pytest.mark.parametrize("size,label", [(1, "a"), (2, "b"), (3, "c")])
def test_param(size, label):
    assert len(label * size) == size


class TestGroup:
    def test_first(self):
        assert sorted([3, 1, 2]) == [1, 2, 3]

    def test_second(self):
        assert sum(range(100)) == 4950


def test_plain():
    assert "monitor" in "pytest-monitor"


def test_memory():
    block = bytearray(50 * 1024 * 1024)
    for i in range(0, len(block), 4096):  # touch every page so that it is resident
        block[i] = 1
    time.sleep(0.5)  # memory_profiler samples every 0.1 s: hold the peak long enough to be seen
    assert block[4096] == 1
"#;

/// `(item, item_variant)` of every metric the suite must produce, as the plugin sends them.
const EXPECTED_ITEMS: [(&str, &str); 7] = [
    ("test_param", "test_param[1, a]"),
    ("test_param", "test_param[2, b]"),
    ("test_param", "test_param[3, c]"),
    ("test_first", "test_first"),
    ("test_second", "test_second"),
    ("test_plain", "test_plain"),
    ("test_memory", "test_memory"),
];

/// The plugin hashes the CPU frequency into the context's `h`. Where the CPU scales its
/// frequency, each pytest process would read another one and create its own context; the plugin's
/// documented override pins it so that all processes of a run share one context.
const FORCED_CPU_FREQ: &str = "2593.5";

/// The suite written into a temporary directory, which is also pytest's rootdir and cwd.
fn write_suite() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir for the suite");
    fs::write(dir.path().join("pytest.ini"), "[pytest]\n").expect("write pytest.ini");
    fs::write(dir.path().join(format!("{SUITE_MODULE}.py")), SUITE).expect("write the suite");
    dir
}

/// Runs the suite under the plugin; asserts that pytest passed and that the plugin never
/// switched its upload off. Returns pytest's combined output.
fn run_pytest(python: &Path, suite: &Path, remote: Option<&str>, extra: &[&str]) -> String {
    let mut cmd = Command::new(python);
    cmd.current_dir(suite)
        .args(["-m", "pytest", "-p", "no:cacheprovider", "--color=no"])
        .args(
            remote
                .into_iter()
                .flat_map(|remote| ["--remote-server", remote]),
        )
        .args(["--tag", "team=storage", "--description", "e2e run"])
        .args(extra)
        // The session's pipeline tags, through the plugin's GitLab CI detection.
        .env("CI_JOB_NAME", "e2e-branch")
        .env("CI_PIPELINE_ID", "4242")
        .env("PYTEST_MONITOR_FORCE_CPU_FREQ", "1")
        .env("PYTEST_MONITOR_CPU_FREQ", FORCED_CPU_FREQ)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // `requests` honours proxy variables: loopback must be reached directly.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    for var in [
        "PYTEST_ADDOPTS",
        "PYTEST_PLUGINS",
        "PYTHONPATH",
        "PYTHONWARNINGS",
        "http_proxy",
        "HTTP_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    let started = Instant::now();
    let (status, output) = run_bounded(cmd, PYTEST_DEADLINE).unwrap_or_else(|err| panic!("{err}"));
    eprintln!(
        "e2e: pytest {} took {:.1} s",
        extra.join(" "),
        started.elapsed().as_secs_f64()
    );
    assert!(status.success(), "pytest failed ({status}):\n{output}");
    assert!(
        !output.contains("Deactivating"),
        "the plugin switched remote upload off, so the server answered a status it does not \
         expect:\n{output}"
    );
    let passed = format!("{} passed", EXPECTED_ITEMS.len());
    assert!(output.contains(&passed), "expected `{passed}`:\n{output}");
    output
}

// ---------------------------------------------------------------------------- checks

/// What a run stored, read back through the API.
struct Stored {
    metrics: Vec<Value>,
    sessions: Vec<Value>,
    context: Value,
}

fn str_of<'a>(record: &'a Value, field: &str) -> &'a str {
    record[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is not a string in {record}"))
}

fn f64_of(record: &Value, field: &str) -> f64 {
    record[field]
        .as_f64()
        .unwrap_or_else(|| panic!("`{field}` is not a number in {record}"))
}

/// The checks every run shares: one metric per test as the plugin names them, one context, and
/// sessions tagged from the command line and the CI environment.
fn check_stored(server: &Server, component: &str) -> Stored {
    let metrics = server.list("metrics");
    let sessions = server.list("sessions");
    let contexts = server.list("contexts");

    // Exactly one context, even though every pytest process looked it up and may create it.
    assert_eq!(contexts.len(), 1, "contexts: {contexts:#?}");
    let context = contexts[0].clone();
    let h = str_of(&context, "h");
    assert_eq!(
        f64_of(&context, "cpu_frequency"),
        FORCED_CPU_FREQ.parse::<f64>().unwrap()
    );
    let (status, by_prefix) = server.get(&format!("/contexts/{}", &h[..8]));
    assert_eq!(status, 200);
    assert_eq!(by_prefix["contexts"], json!([context]));

    // Every session carries the same tags: workers inherit the controller's options and env.
    let expected_description = json!({
        "pipeline_branch": "e2e-branch",
        "pipeline_build_no": "4242",
        "__ci__": "gitlabci",
        "description": "e2e run",
        "team": "storage",
    });
    let expected_tags: Vec<Value> = expected_description
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect();
    let mut session_hs = BTreeSet::new();
    for session in &sessions {
        assert_eq!(session["description"], expected_description, "{session}");
        // `tags` lists the description's keys in the order the plugin sent them.
        assert_eq!(
            session["tags"],
            Value::Array(expected_tags.clone()),
            "{session}"
        );
        assert!(session_hs.insert(str_of(session, "session_h").to_owned()));
    }

    // One metric per test, named as the plugin names them.
    let mut seen: Vec<(String, String)> = metrics
        .iter()
        .map(|m| {
            (
                str_of(m, "item").to_owned(),
                str_of(m, "item_variant").to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut expected: Vec<(String, String)> = EXPECTED_ITEMS
        .iter()
        .map(|(i, v)| (i.to_string(), v.to_string()))
        .collect();
    expected.sort();
    assert_eq!(seen, expected, "one metric per test");

    for m in &metrics {
        assert_eq!(str_of(m, "kind"), "function", "{m}");
        assert_eq!(str_of(m, "item_path"), SUITE_MODULE, "{m}");
        assert_eq!(
            str_of(m, "item_fs_loc"),
            format!("{SUITE_MODULE}.py"),
            "{m}"
        );
        assert_eq!(str_of(m, "component"), component, "{m}");
        assert_eq!(str_of(m, "context_h"), h, "{m}");
        assert!(session_hs.contains(str_of(m, "session_h")), "{m}");
        assert!(f64_of(m, "total_time") > 0.0, "{m}");
        for field in ["user_time", "kernel_time", "cpu_usage"] {
            assert!(f64_of(m, field) >= 0.0, "{field}: {m}");
        }
        assert!(m["mem_usage"].is_number(), "{m}");
        assert!(str_of(m, "item_start_time").len() >= 19, "{m}");
    }

    // The 50 MB test shows, and holds its peak for 0.5 s of wall time.
    let memory = metrics
        .iter()
        .find(|m| str_of(m, "item") == "test_memory")
        .unwrap();
    let memory_mb = f64_of(memory, "mem_usage");
    assert!(memory_mb > 30.0, "test_memory's mem_usage: {memory}");
    for m in metrics
        .iter()
        .filter(|m| str_of(m, "item") != "test_memory")
    {
        assert!(
            f64_of(m, "mem_usage") < memory_mb - 25.0,
            "test_memory ({memory_mb} MB) must use visibly more than {m}"
        );
    }
    assert!(f64_of(memory, "total_time") >= 0.45, "{memory}");

    Stored {
        metrics,
        sessions,
        context,
    }
}

/// True when serde_json parses decimal numbers with correct rounding (its `float_roundtrip`
/// feature, which the server binary then shares). Without it the server stores about one float
/// in four that the plugin sends one ULP off (0.020000000000000018 comes back as
/// 0.020000000000000014); enabling the feature in Cargo.toml makes the comparison exact.
fn json_floats_round_trip() -> bool {
    serde_json::from_str::<f64>("0.020000000000000018").ok() == Some(0.020000000000000018)
}

/// Compares a float the plugin measured with what the server returns: bit for bit when JSON
/// numbers round-trip, else within a few ULPs. Returns whether they were identical.
fn same_float(what: &str, local: f64, served: f64) -> bool {
    if json_floats_round_trip() {
        assert_eq!(
            local.to_bits(),
            served.to_bits(),
            "{what}: {local:?} vs {served:?}"
        );
    } else {
        let tolerance = 1e-14 * local.abs().max(served.abs()) + f64::MIN_POSITIVE;
        assert!(
            (local - served).abs() <= tolerance,
            "{what}: {local:?} vs {served:?}"
        );
    }
    local.to_bits() == served.to_bits()
}

/// The plugin also wrote everything into its own SQLite file (`--db`): the server must hold the
/// same session, context and metrics.
fn compare_with_local_db(db: &Path, stored: &Stored) {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the plugin's local database");

    let (session_h, run_date, scm, description): (String, String, String, String) = conn
        .query_row(
            "SELECT SESSION_H, RUN_DATE, SCM_ID, RUN_DESCRIPTION FROM TEST_SESSIONS",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("one local session");
    let [session] = stored.sessions.as_slice() else {
        panic!("one stored session expected: {:#?}", stored.sessions)
    };
    assert_eq!(str_of(session, "session_h"), session_h);
    assert_eq!(
        str_of(session, "run_date"),
        run_date,
        "stored exactly as sent"
    );
    assert_eq!(str_of(session, "scm_ref"), scm);
    let description: Value = serde_json::from_str(&description).unwrap();
    let local_keys: Vec<&String> = description.as_object().unwrap().keys().collect();
    let served_keys: Vec<&String> = session["description"].as_object().unwrap().keys().collect();
    assert_eq!(served_keys, local_keys, "description keys keep their order");

    let context = &stored.context;
    let local_context: (
        String,
        i64,
        f64,
        String,
        String,
        i64,
        String,
        String,
        String,
        String,
        String,
    ) = conn
        .query_row(
            "SELECT ENV_H, CPU_COUNT, CPU_FREQUENCY_MHZ, CPU_TYPE, CPU_VENDOR, RAM_TOTAL_MB, \
             MACHINE_NODE, MACHINE_TYPE, MACHINE_ARCH, SYSTEM_INFO, PYTHON_INFO \
             FROM EXECUTION_CONTEXTS",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                ))
            },
        )
        .expect("one local context");
    let served_context = (
        str_of(context, "h").to_owned(),
        context["cpu_count"].as_i64().unwrap(),
        f64_of(context, "cpu_frequency"),
        str_of(context, "cpu_type").to_owned(),
        str_of(context, "cpu_vendor").to_owned(),
        context["ram_total"].as_i64().unwrap(),
        str_of(context, "machine_node").to_owned(),
        str_of(context, "machine_type").to_owned(),
        str_of(context, "machine_arch").to_owned(),
        str_of(context, "system_info").to_owned(),
        str_of(context, "python_info").to_owned(),
    );
    assert_eq!(served_context, local_context);

    let mut stmt = conn
        .prepare(
            "SELECT ITEM_VARIANT, SESSION_H, ENV_H, ITEM_START_TIME, ITEM, ITEM_PATH, ITEM_FS_LOC, \
             KIND, COMPONENT, TOTAL_TIME, USER_TIME, KERNEL_TIME, CPU_USAGE, MEM_USAGE \
             FROM TEST_METRICS",
        )
        .unwrap();
    let mut local: BTreeMap<String, Vec<rusqlite::types::Value>> = BTreeMap::new();
    let rows = stmt
        .query_map([], |r| {
            let values = (1..14)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((r.get::<_, String>(0)?, values))
        })
        .unwrap();
    for row in rows {
        let (variant, values) = row.unwrap();
        assert!(local.insert(variant, values).is_none());
    }
    assert_eq!(
        local.len(),
        stored.metrics.len(),
        "local metrics: {local:#?}"
    );

    const TEXT: [&str; 8] = [
        "session_h",
        "context_h",
        "item_start_time",
        "item",
        "item_path",
        "item_fs_loc",
        "kind",
        "component",
    ];
    const FLOATS: [&str; 5] = [
        "total_time",
        "user_time",
        "kernel_time",
        "cpu_usage",
        "mem_usage",
    ];
    let (mut floats, mut off) = (0, Vec::new());
    for m in &stored.metrics {
        let variant = str_of(m, "item_variant");
        let row = local
            .get(variant)
            .unwrap_or_else(|| panic!("{variant} is not in the plugin's local database"));
        for (field, value) in TEXT.iter().zip(&row[..8]) {
            let rusqlite::types::Value::Text(text) = value else {
                panic!("local {field} of {variant}: {value:?}")
            };
            assert_eq!(str_of(m, field), text, "{field} of {variant}");
        }
        for (field, value) in FLOATS.iter().zip(&row[8..]) {
            let local = match value {
                rusqlite::types::Value::Real(x) => *x,
                rusqlite::types::Value::Integer(n) => *n as f64,
                other => panic!("local {field} of {variant}: {other:?}"),
            };
            floats += 1;
            if !same_float(&format!("{field} of {variant}"), local, f64_of(m, field)) {
                off.push(format!(
                    "{field} of {variant}: sent {local:?}, served {}",
                    m[field]
                ));
            }
        }
    }
    if !off.is_empty() {
        eprintln!(
            "e2e: NOTE: {} of {floats} floats came back within a few ULPs but not bit for bit \
             (serde_json parses without its `float_roundtrip` feature):\n  {}",
            off.len(),
            off.join("\n  ")
        );
    }
}

// ------------------------------------------------------------------------------- tests

/// One pytest process; the URL ends in `/`, so the plugin requests `/api/v1//contexts/...`.
#[test]
fn plain_run_stores_one_metric_per_test_tagged_from_the_command_line_and_ci() {
    let Some(python) = venv_python("plain_run") else {
        return;
    };
    let server = Server::start();
    let suite = write_suite();
    let remote = format!("{}/", server.base);
    run_pytest(
        &python,
        suite.path(),
        Some(&remote),
        &["--db", "pymon.db", "--force-component", "storage"],
    );

    let stored = check_stored(&server, "storage");
    assert_eq!(stored.sessions.len(), 1, "{:#?}", stored.sessions);
    let session_h = str_of(&stored.sessions[0], "session_h");
    assert!(stored
        .metrics
        .iter()
        .all(|m| str_of(m, "session_h") == session_h));
    compare_with_local_db(&suite.path().join("pymon.db"), &stored);
}

/// `pytest -n 2`: the controller and both workers each run the plugin's session start.
#[test]
fn xdist_run_stores_one_metric_per_test_and_one_context() {
    let Some(python) = venv_python("xdist_run") else {
        return;
    };
    let server = Server::start();
    let suite = write_suite();
    run_pytest(
        &python,
        suite.path(),
        Some(&server.base),
        &["-n", "2", "--no-db", "--component-prefix", "storage"],
    );

    // `--component-prefix storage` + the module's `pytest_monitor_component = "suite"`.
    let stored = check_stored(&server, "storage.suite");

    // What the plugin does under xdist: each of the 3 processes (controller + 2 workers) posts a
    // session of its own (its hash covers its own run_date), all with the same tags. Only workers
    // run tests, and xdist's initial batch gives each of the 2 workers some of the 7 tests, so the
    // metrics name exactly 2 sessions; the controller's, created before it starts the workers,
    // is the earliest and holds no metric.
    assert_eq!(stored.sessions.len(), 3, "{:#?}", stored.sessions);
    let with_metrics: BTreeSet<&str> = stored
        .metrics
        .iter()
        .map(|m| str_of(m, "session_h"))
        .collect();
    assert_eq!(with_metrics.len(), 2, "sessions named by metrics");
    let idle: Vec<&Value> = stored
        .sessions
        .iter()
        .filter(|s| !with_metrics.contains(str_of(s, "session_h")))
        .collect();
    assert_eq!(idle.len(), 1, "the controller's session");
    let earliest = stored
        .sessions
        .iter()
        .map(|s| str_of(s, "run_date"))
        .min()
        .unwrap();
    assert_eq!(str_of(idle[0], "run_date"), earliest);

    // The context was created once. Observed through a logging proxy: the controller's
    // `GET /contexts/<h>` answers 204 and it posts the context before it starts the workers; each
    // worker's GET then answers 200, so the workers never post it (no race on POST /contexts/).
    let h = str_of(&stored.context, "h");
    assert!(stored.metrics.iter().all(|m| str_of(m, "context_h") == h));
}

// ------------------------------------------------------------------------------ import

/// `monitor-server import FILE --db DB` (or any other target arguments), returning its stdout
/// after asserting that it succeeded.
fn import(file: &Path, target: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(crate::common::server_bin())
        .arg("import")
        .arg(file)
        .args(target)
        .env_remove("MONITOR_SERVER_DB")
        .env_remove("MONITOR_SERVER_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run monitor-server import");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "import failed ({}): {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

const NOTHING_NEW: &str = "0 sessions, 0 contexts, 0 metrics added; \
                           1 session, 1 context, 7 metrics were already stored";

/// The plugin without `--remote-server` keeps its history in `.pymon`; imported, it is served
/// exactly as a live upload would have been.
#[test]
fn a_local_pymon_imported_with_the_import_command_is_served_like_a_live_upload() {
    let Some(python) = venv_python("local_pymon_import") else {
        return;
    };
    let suite = write_suite();
    run_pytest(
        &python,
        suite.path(),
        None,
        &["--force-component", "storage"],
    );
    let pymon = suite.path().join(".pymon");
    assert!(pymon.is_file(), "the plugin wrote no .pymon");
    let dir = tempfile::tempdir().expect("temp dir for the database");
    let db = dir.path().join("monitor.db");

    let summary = import(&pymon, &["--db".as_ref(), db.as_os_str()]);

    assert!(
        summary.contains("1 session, 1 context, 7 metrics added"),
        "{summary}"
    );
    let server = Server::start_in(dir);
    let stored = check_stored(&server, "storage");
    compare_with_local_db(&pymon, &stored);
    // Again, while the server is running on the same file: nothing new.
    let again = import(&pymon, &["--db".as_ref(), db.as_os_str()]);
    assert!(again.contains(NOTHING_NEW), "{again}");
    assert_eq!(server.list("metrics"), stored.metrics);
    assert_eq!(server.list("sessions"), stored.sessions);
}

/// A run uploaded live that also kept its `.pymon`: importing that file afterwards, through the
/// API or into the database, adds nothing, because the plugin sends what it writes locally.
#[test]
fn a_run_uploaded_live_and_imported_afterwards_is_stored_once() {
    let Some(python) = venv_python("live_then_import") else {
        return;
    };
    let server = Server::start();
    let suite = write_suite();
    run_pytest(
        &python,
        suite.path(),
        Some(&server.base),
        &["--db", "pymon.db", "--force-component", "storage"],
    );
    let pymon = suite.path().join("pymon.db");
    let stored = check_stored(&server, "storage");

    let through_api = import(&pymon, &["--server".as_ref(), server.base.as_ref()]);
    let db = server.db_path();
    let into_db = import(&pymon, &["--db".as_ref(), db.as_os_str()]);

    assert!(through_api.contains(NOTHING_NEW), "{through_api}");
    assert!(into_db.contains(NOTHING_NEW), "{into_db}");
    assert_eq!(server.list("metrics"), stored.metrics);
    assert_eq!(server.list("sessions"), stored.sessions);
    assert_eq!(server.list("contexts"), vec![stored.context]);
}
