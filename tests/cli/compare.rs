//! `monitor-server compare`, the CI gate, as a CI script meets it: the real binary against a
//! server on a free port. It exits 1 when a test regressed, 0 when none did, and 2 with one line
//! on stderr when it cannot tell (usage, connection, an HTTP error such as a side that matches
//! no session or a missing token).

use std::process::{Command, Output};

use monitor_server::routes::auth::{Secret, Tokens};
use serde_json::{json, Value};

use crate::common::{agent, exchange, spawn_app_with_tokens, TestApp};

/// The binary, with none of the caller's `MONITOR_SERVER_*` variables nor its log level: the
/// gate's output is what is checked.
fn monitor_server() -> Command {
    let mut command = crate::common::monitor_server();
    command.env_remove("RUST_LOG");
    command
}

fn gate(args: &[&str]) -> Output {
    monitor_server()
        .arg("compare")
        .args(args)
        .output()
        .expect("cannot run monitor-server")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts exit code 2 and one line on stderr containing `expected`, and nothing on stdout.
fn assert_fails_with_one_line(output: &Output, expected: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    assert!(err.contains(expected), "`{expected}` not in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(output.stdout.is_empty(), "stdout: {}", stdout(output));
}

fn post(app: &TestApp, token: Option<&str>, path: &str, body: Value) {
    let mut request = agent().post(&app.url(path));
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    let reply = exchange(request, Some(&body));
    assert_eq!(reply.status, 201, "POST {path}: {}", reply.body);
}

/// Stores build `build` of pipeline `main`: one session, one metric per `(test, wall time)`.
fn store_build(app: &TestApp, token: Option<&str>, build: &str, tests: &[(&str, f64)]) {
    let session_h = format!("session-of-build-{build}");
    post(
        app,
        token,
        "/sessions/",
        json!({
            "session_h": session_h,
            "run_date": "2024-05-01T10:00:00",
            "scm_ref": format!("commit-{build}"),
            "description": {"pipeline_branch": "main", "pipeline_build_no": build},
        }),
    );
    for (test, wall) in tests {
        post_metric(app, token, &session_h, test, *wall);
    }
}

/// Stores one measure of `test` in session `session_h`, on one machine.
fn post_metric(app: &TestApp, token: Option<&str>, session_h: &str, test: &str, wall: f64) {
    post(
        app,
        token,
        "/metrics/",
        json!({
            "session_h": session_h,
            "context_h": "c7a1e0f2b3d4e5f60718293a4b5c6d7e8f901234",
            "item_start_time": "2024-05-01T10:00:01",
            "item_path": "tests.test_perf",
            "item": test,
            "item_variant": test,
            "item_fs_loc": "tests/test_perf.py",
            "kind": "function",
            "component": "",
            "total_time": wall,
            "user_time": 0.01,
            "kernel_time": 0.0,
            "cpu_usage": 0.1,
            "mem_usage": 2.0,
        }),
    );
}

/// Builds 1 (the baseline), 2 (`test_slowed` twice as slow) and 3 (like 2, and `test_sped_up`
/// twice as fast).
fn three_builds(app: &TestApp, token: Option<&str>) {
    store_build(
        app,
        token,
        "1",
        &[
            ("test_slowed", 0.4),
            ("test_steady", 1.0),
            ("test_sped_up", 1.0),
        ],
    );
    store_build(
        app,
        token,
        "2",
        &[
            ("test_slowed", 0.8),
            ("test_steady", 1.0),
            ("test_sped_up", 1.0),
        ],
    );
    store_build(
        app,
        token,
        "3",
        &[
            ("test_slowed", 0.8),
            ("test_steady", 1.02),
            ("test_sped_up", 0.5),
        ],
    );
}

#[test]
fn a_test_made_twice_as_slow_fails_the_gate_with_exit_1_and_the_table_names_it_first() {
    // Arrange
    let app = spawn_app_with_tokens(Tokens::default());
    three_builds(&app, None);

    // Act
    let output = gate(&[
        "--server",
        &app.address,
        "--baseline",
        "build:main/1",
        "--candidate",
        "build:main/2",
    ]);

    // Assert
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}{}", stderr(&output));
    assert!(output.stderr.is_empty(), "{}", stderr(&output));
    let lines: Vec<&str> = out.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("VERDICT"))
        .unwrap_or_else(|| panic!("no table header in:\n{out}"));
    assert!(lines[header + 1].starts_with("regressed"), "{out}");
    assert!(
        lines[header + 1].contains("tests/test_perf.py::test_slowed"),
        "{out}"
    );
    assert!(lines[header + 1].contains("(+100.0%)"), "{out}");
    // Aligned: every row's test column starts where the header's does.
    let column = lines[header].find("TEST").unwrap();
    for row in &lines[header + 1..header + 4] {
        assert_eq!(&row[column..column + 6], "tests/", "{out}");
    }
    assert!(
        out.contains("baseline   build:main/1 (1 run, 1 session)"),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with("1 regressed, 0 improved, 0 missing, 0 new, 2 unchanged (3 tests)"),
        "{out}"
    );
}

#[test]
fn a_candidate_with_no_regression_passes_the_gate_with_exit_0() {
    // Arrange
    let app = spawn_app_with_tokens(Tokens::default());
    three_builds(&app, None);

    // Act: build 3 is build 2 with one test faster; the server is given with /api/v1/.
    let output = gate(&[
        "--server",
        &format!("{}/api/v1/", app.address),
        "--baseline",
        "build:main/2",
        "--candidate",
        "build:main/3",
    ]);

    // Assert
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}{}", stderr(&output));
    assert!(out.contains("0 regressed, 1 improved"), "{out}");
}

#[test]
fn thresholds_given_on_the_command_line_decide_the_verdicts() {
    // Arrange
    let app = spawn_app_with_tokens(Tokens::default());
    three_builds(&app, None);

    // Act
    let lenient = gate(&[
        "--server",
        &app.address,
        "--baseline",
        "build:main/1",
        "--candidate",
        "build:main/2",
        "--max-slowdown",
        "150%",
        "--format",
        "json",
    ]);
    let strict = gate(&[
        "--server",
        &app.address,
        "--baseline",
        "build:main/2",
        "--candidate",
        "build:main/3",
        "--max-slowdown",
        "1",
        "--min-time",
        "0.01",
    ]);

    // Assert
    assert_eq!(lenient.status.code(), Some(0), "{}", stderr(&lenient));
    let answer: Value = serde_json::from_slice(&lenient.stdout).expect("--format json is JSON");
    assert_eq!(answer["thresholds"]["max_slowdown"], 150.0);
    assert_eq!(answer["summary"]["regressed"], 0);
    assert_eq!(strict.status.code(), Some(1), "{}", stdout(&strict));
    assert!(stdout(&strict).contains("test_steady"));
}

#[test]
fn json_prints_the_servers_comparison() {
    // Arrange
    let app = spawn_app_with_tokens(Tokens::default());
    three_builds(&app, None);

    // Act
    let output = gate(&[
        "--server",
        &app.address,
        "--baseline",
        "build:main/1",
        "--candidate",
        "build:main/2",
        "--format",
        "json",
    ]);

    // Assert
    assert_eq!(output.status.code(), Some(1));
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let served = exchange(
        agent().get(&app.url("/compare?baseline=build:main/1&candidate=build:main/2")),
        None,
    )
    .json();
    assert_eq!(printed, served);
}

#[test]
fn markdown_is_a_pull_request_comment_with_the_regressions_first() {
    // Arrange
    let app = spawn_app_with_tokens(Tokens::default());
    three_builds(&app, None);

    // Act
    let output = gate(&[
        "--server",
        &app.address,
        "--baseline",
        "build:main/1",
        "--candidate",
        "build:main/3",
        "--format",
        "markdown",
    ]);

    // Assert
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(out.starts_with("### ❌ 1 test regressed\n"), "{out}");
    assert!(
        out.contains("Baseline `build:main/1` (1 run, 1 session); candidate `build:main/3`"),
        "{out}"
    );
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 3, "header and 2 tests:\n{out}");
    assert_eq!(rows[0], "| | Test | Wall time | CPU time | Memory |");
    assert!(rows[1].starts_with("| ❌ regressed | `tests/test_perf.py::test_slowed` | **0.400 s → 0.800 s (+100.0%)** |"), "{out}");
    assert!(
        rows[2].starts_with("| ✅ improved | `tests/test_perf.py::test_sped_up` |"),
        "{out}"
    );
    assert!(out.contains("\n1 test unchanged.\n"), "{out}");
    assert!(out.contains("<sub>Thresholds: wall time +20%"), "{out}");

    // And with nothing regressed, the headline says so.
    let calm = gate(&[
        "--server",
        &app.address,
        "--baseline",
        "build:main/2",
        "--candidate",
        "build:main/2",
        "--format",
        "markdown",
    ]);
    assert_eq!(calm.status.code(), Some(0));
    let calm = stdout(&calm);
    assert!(calm.starts_with("### ✅ No test regressed\n"), "{calm}");
    assert!(
        !calm.contains("| "),
        "no table when nothing changed:\n{calm}"
    );
}

#[test]
fn a_side_that_matches_no_session_exits_2_with_one_line_naming_it() {
    // Arrange
    let app = spawn_app_with_tokens(Tokens::default());
    three_builds(&app, None);

    // Act
    let output = gate(&[
        "--server",
        &app.address,
        "--baseline",
        "build:main/41",
        "--candidate",
        "build:main/2",
    ]);

    // Assert
    assert_fails_with_one_line(&output, "404");
    assert!(stderr(&output).contains("build:main/41"));
}

#[test]
fn a_spec_the_server_refuses_exits_2_with_its_reason() {
    let app = spawn_app_with_tokens(Tokens::default());

    let output = gate(&[
        "--server",
        &app.address,
        "--baseline",
        "main/41",
        "--candidate",
        "build:main/2",
    ]);

    assert_fails_with_one_line(&output, "400");
    assert!(stderr(&output).contains("main/41"));
}

#[test]
fn bare_session_hashes_name_the_sides_and_an_ambiguous_prefix_exits_2() {
    // Arrange
    let app = spawn_app_with_tokens(Tokens::default());
    let baseline = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
    let candidate = "0a1b99990000111122223333aaaabbbb";
    for (h, wall) in [(baseline, 0.4), (candidate, 0.8)] {
        post(
            &app,
            None,
            "/sessions/",
            json!({"session_h": h, "run_date": "2024-05-01T10:00:00", "scm_ref": h,
                   "description": {}}),
        );
        post_metric(&app, None, h, "test_slowed", wall);
    }

    // Act
    let judged = gate(&[
        "--server",
        &app.address,
        "--baseline",
        baseline,
        "--candidate",
        "0a1b9",
    ]);
    let ambiguous = gate(&[
        "--server",
        &app.address,
        "--baseline",
        "0a1b",
        "--candidate",
        candidate,
    ]);

    // Assert
    assert_eq!(judged.status.code(), Some(1), "{}", stderr(&judged));
    assert!(
        stdout(&judged).contains("test_slowed"),
        "{}",
        stdout(&judged)
    );
    assert_fails_with_one_line(&ambiguous, "ambiguous");
}

#[test]
fn a_server_that_cannot_be_reached_exits_2_with_one_line() {
    // A port that was free a moment ago: nothing listens on it.
    let port = crate::common::free_port();

    let output = gate(&[
        "--server",
        &format!("http://127.0.0.1:{port}"),
        "--baseline",
        "build:main/1",
        "--candidate",
        "build:main/2",
    ]);

    assert_fails_with_one_line(&output, "cannot reach");
}

#[test]
fn usage_errors_exit_2() {
    for (args, expected) in [
        (
            &[
                "--server",
                "http://127.0.0.1:1",
                "--baseline",
                "build:main/1",
            ][..],
            "--candidate",
        ),
        (
            &[
                "--server",
                "http://127.0.0.1:1",
                "--baseline",
                "b",
                "--candidate",
                "c",
                "--max-slowdown",
                "fast",
            ][..],
            "--max-slowdown",
        ),
        (
            &[
                "--server",
                "http://127.0.0.1:1",
                "--baseline",
                "b",
                "--candidate",
                "c",
                "--format",
                "html",
            ][..],
            "--format",
        ),
        (
            &["--server", "ftp://h", "--baseline", "b", "--candidate", "c"][..],
            "http://",
        ),
    ] {
        let output = gate(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn a_server_that_requires_a_read_token_gets_it_from_the_flag_or_the_environment() {
    // Arrange
    let tokens = Tokens {
        write: Some(Secret::new("write-secret")),
        read: Some(Secret::new("read-secret")),
    };
    let app = spawn_app_with_tokens(tokens);
    three_builds(&app, Some("write-secret"));
    let args = [
        "compare",
        "--server",
        &app.address,
        "--baseline",
        "build:main/1",
        "--candidate",
        "build:main/2",
    ];

    // Act
    let without = monitor_server().args(args).output().unwrap();
    let from_env = monitor_server()
        .args(args)
        .env("MONITOR_SERVER_TOKEN", "read-secret")
        .output()
        .unwrap();
    let from_flag = monitor_server()
        .args(args)
        .args(["--token", "write-secret"])
        .output()
        .unwrap();

    // Assert
    assert_fails_with_one_line(&without, "401");
    assert_eq!(from_env.status.code(), Some(1), "{}", stderr(&from_env));
    assert_eq!(from_flag.status.code(), Some(1), "{}", stderr(&from_flag));
}

#[test]
fn help_documents_every_flag_and_the_exit_codes() {
    let output = monitor_server()
        .args(["compare", "--help"])
        .output()
        .unwrap();

    assert!(output.status.success());
    let help = stdout(&output);
    for flag in [
        "--server",
        "--baseline",
        "--candidate",
        "--max-slowdown",
        "--max-memory-growth",
        "--max-cpu-slowdown",
        "--min-time",
        "--min-memory",
        "--sigma",
        "--ignore-context",
        "--format",
        "--token",
        "MONITOR_SERVER_URL",
        "MONITOR_SERVER_TOKEN",
        "build:<pipeline>/<build>",
        "exit 1",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn a_comparison_in_which_no_test_ran_on_both_sides_exits_2_after_printing_it() {
    // Arrange: build 2's metrics were measured on another machine (another context hash).
    let app = spawn_app_with_tokens(Tokens::default());
    store_build(&app, None, "1", &[("test_x", 1.0)]);
    post(
        &app,
        None,
        "/sessions/",
        json!({"session_h": "elsewhere", "run_date": "2024-05-02T10:00:00", "scm_ref": "c",
               "description": {"pipeline_branch": "main", "pipeline_build_no": "2"}}),
    );
    let mut metric = crate::common::metric("test_x");
    metric["session_h"] = json!("elsewhere");
    metric["context_h"] = json!("another-machine");
    metric["item_path"] = json!("tests.test_perf");
    metric["item_variant"] = json!("test_x");
    metric["total_time"] = json!(1.0);
    metric["mem_usage"] = json!(2.0);
    post(&app, None, "/metrics/", metric);
    let args = [
        "--server",
        &app.address,
        "--baseline",
        "build:main/1",
        "--candidate",
        "build:main/2",
    ];

    // Act
    let within = gate(&args);
    let across = gate(&[&args[..], &["--ignore-context"]].concat());

    // Assert: a gate that passed here would pass whatever the candidate did.
    let err = stderr(&within);
    assert_eq!(within.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--ignore-context"), "{err}");
    assert!(
        stdout(&within).contains("1 missing, 1 new"),
        "the report is printed all the same"
    );
    assert_eq!(across.status.code(), Some(0), "{}", stderr(&across));
}
