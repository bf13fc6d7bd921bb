//! The `monitor-server` executable as an operator meets it: help, version, usage errors, unusable
//! database files, and a real start-up, request and SIGTERM shutdown.

use std::path::Path;
use std::process::{Output, Stdio};

use crate::common::{monitor_server, Running, DEADLINE};

/// Runs the binary to completion with these arguments, in `dir`.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    monitor_server()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run monitor-server")
}

/// Asserts that stderr is one line naming the problem, with no panic or backtrace.
fn assert_one_line_error(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.contains(expected), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "stderr: {stderr}");
}

#[test]
fn help_shows_the_defaults_and_the_environment_variables() {
    let dir = tempfile::tempdir().unwrap();

    let output = run_in(dir.path(), &["--help"]);

    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "--db",
        "--bind",
        "--page-size",
        "--keep-alive <SECONDS>",
        "[default: ./monitor.db]",
        "[default: 127.0.0.1:8050]",
        "[default: 500]",
        "[default: 0]",
        "MONITOR_SERVER_DB",
        "MONITOR_SERVER_BIND",
        "MONITOR_SERVER_PAGINATION_COUNT",
        "MONITOR_SERVER_KEEP_ALIVE",
    ] {
        assert!(help.contains(expected), "{expected} missing from:\n{help}");
    }
    assert!(
        !dir.path().join("monitor.db").exists(),
        "--help must not create a database"
    );
}

#[test]
fn an_unknown_flag_exits_with_status_2_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();

    let output = run_in(dir.path(), &["--no-such-flag"]);

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_page_size_of_zero_exits_with_status_2() {
    let dir = tempfile::tempdir().unwrap();

    let output = run_in(dir.path(), &["--page-size", "0"]);

    assert_eq!(output.status.code(), Some(2));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_database_in_a_missing_directory_exits_with_status_2_and_one_line() {
    let dir = tempfile::tempdir().unwrap();

    let output = run_in(
        dir.path(),
        &["--db", "/nonexistent-dir/x.db", "--bind", "127.0.0.1:0"],
    );

    assert_one_line_error(&output, "/nonexistent-dir");
}

#[test]
fn a_file_that_is_not_sqlite_exits_with_status_2_and_is_left_byte_for_byte_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let content: Vec<u8> = b"Meeting notes, not a database.\n"
        .iter()
        .copied()
        .cycle()
        .take(64 * 1024)
        .collect();
    std::fs::write(&path, &content).unwrap();

    let output = run_in(
        dir.path(),
        &["--db", path.to_str().unwrap(), "--bind", "127.0.0.1:0"],
    );

    assert_one_line_error(&output, "not an SQLite database");
    assert_eq!(std::fs::read(&path).unwrap(), content);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        ["notes.txt"],
        "no journal or WAL file may be left behind"
    );
}

#[test]
fn serving_on_port_zero_logs_the_address_and_absolute_database_path_and_stops_cleanly_on_sigterm() {
    // Arrange: a relative --db, so the log line has to resolve it.
    let dir = tempfile::tempdir().unwrap();
    let mut command = monitor_server();
    command.args(["--db", "metrics.db", "--bind", "127.0.0.1:0"]);
    let mut server = Running::start(command, dir.path());

    // Act
    let line = server.wait_for_line("listening on http://");

    // Assert: the line names a real port and the file's absolute path.
    let url = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let base = url
        .strip_suffix("/api/v1")
        .unwrap_or_else(|| panic!("the address {url:?} does not end in /api/v1"));
    let port: u16 = base
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url:?}"));
    assert_ne!(port, 0, "{line}");
    let db_path = dir.path().canonicalize().unwrap().join("metrics.db");
    assert!(
        line.ends_with(&format!("database {}", db_path.display())),
        "{line:?} does not name {}",
        db_path.display()
    );
    assert!(db_path.exists());

    // The server answers at the logged address.
    let agent = ureq::AgentBuilder::new()
        .max_idle_connections(0)
        .timeout(DEADLINE)
        .build();
    let response = agent
        .get(&format!("{base}/api/v1/metrics/count"))
        .call()
        .expect("the server does not answer at the logged address");
    assert_eq!(response.status(), 200);
    assert_eq!(response.into_string().unwrap(), r#"{"count":0}"#);
    drop(agent);

    // SIGTERM stops it with a success status.
    server.terminate();
    let status = server.wait_for_exit(DEADLINE);
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn the_environment_variables_configure_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("from-env.db");
    let mut command = monitor_server();
    command
        .env("MONITOR_SERVER_DB", &db_path)
        .env("MONITOR_SERVER_BIND", "127.0.0.1:0");
    let mut server = Running::start(command, dir.path());

    let line = server.wait_for_line("listening on http://");

    assert!(line.contains("from-env.db"), "{line}");
    assert!(db_path.exists());
    server.terminate();
    let status = server.wait_for_exit(DEADLINE);
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
