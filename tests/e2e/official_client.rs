//! End to end with monitor-server-api's own client as the oracle: pytest-monitor writes a `.pymon`
//! (four sessions tagged by GitLab and Jenkins CI variables and `--tag`, components from
//! `pytest_monitor_component` and `--component-prefix`, function and module scopes,
//! parametrized tests, and a second machine added to the file), `monitor-server import` stores
//! it, and every public method of `monitor_api.monitor.Monitor` must give the same answer from
//! the served database (its remote dialect) as from the `.pymon` (its local dialect). The Python
//! side, and the list of differences that are the client's own bugs, is
//! `tests/e2e/official_client.py`.
//!
//! Prerequisites (python3 with `venv`, git, and PyPI for the first run): when they are missing
//! the test fails on CI (`CI=true`) and prints a loud `SKIPPED:` line elsewhere.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{client_python, run_bounded, server_bin, Server};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/official_client.py");

/// Four pytest runs, then every client method twice.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(600);

/// `python official_client.py ARGS`, asserting that it succeeded; its output.
fn run_script(python: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(python);
    cmd.arg(SCRIPT)
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // `requests` honours proxy variables: loopback must be reached directly.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    let (status, output) = run_bounded(cmd, SCRIPT_DEADLINE).unwrap_or_else(|err| panic!("{err}"));
    // Shown even when the test passes: the count of agreeing methods is the result.
    let _ = writeln!(
        std::io::stderr(),
        "official_client.py {}:\n{output}",
        args[0]
    );
    assert!(
        status.success(),
        "official_client.py {args:?} failed ({status}):\n{output}"
    );
    output
}

#[test]
fn every_method_of_the_official_client_answers_the_same_from_the_server_as_from_the_pymon() {
    let Some(python) = client_python("official_client") else {
        return;
    };
    let suite = tempfile::tempdir().expect("temp dir for the suite");
    run_script(&python, &["make", &suite.path().to_string_lossy()]);
    let pymon = suite.path().join(".pymon");
    let dir = tempfile::tempdir().expect("temp dir for the database");
    let imported = Command::new(server_bin())
        .arg("import")
        .arg(&pymon)
        .arg("--db")
        .arg(dir.path().join("monitor.db"))
        .env_remove("MONITOR_SERVER_DB")
        .stdin(Stdio::null())
        .output()
        .expect("run monitor-server import");
    let summary = String::from_utf8_lossy(&imported.stdout);
    assert!(
        imported.status.success(),
        "import failed: {summary}{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    // 7 function and 3 module metrics per run, and the first run's 7 function metrics again on
    // the second machine.
    assert!(
        summary.contains("4 sessions, 2 contexts, 47 metrics added"),
        "{summary}"
    );
    let server = Server::start_in(dir);

    let report = run_script(&python, &["check", &pymon.to_string_lossy(), &server.base]);

    assert!(
        report.contains("client methods agree between the dialects"),
        "{report}"
    );
}
