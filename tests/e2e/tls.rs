//! End to end over HTTPS: the real `monitor-server` serves with a certificate signed by a
//! certificate authority made in the test; the real pytest-monitor uploads two builds to it,
//! trusting that authority through `REQUESTS_CA_BUNDLE`, and `monitor-server compare
//! --ca-cert` gates on them.
//!
//! Same prerequisites as `tests/e2e/pytest_monitor.rs` (python3 with `venv`, PyPI on the first
//! run; the venv is shared): missing, the test fails on CI and prints `SKIPPED:` elsewhere.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::{pytest_command, run_bounded, venv_python, Server, TestCerts};

const PYTEST_DEADLINE: Duration = Duration::from_secs(240);

const SUITE: &str = r#""""The suite monitor-server's HTTPS end-to-end test uploads."""


def test_one():
    assert 1 + 1 == 2


def test_two():
    assert "tls" in "rustls"
"#;

/// Runs the suite under the plugin as build `build` of pipeline `main`, uploading to `server`
/// and trusting `ca`; asserts that every upload was accepted.
fn upload_build(python: &Path, suite: &Path, server: &Server, ca: &Path, build: &str) {
    let mut cmd = pytest_command(python, suite, &server.base);
    cmd.env("CI_JOB_NAME", "main")
        .env("CI_PIPELINE_ID", build)
        .env("REQUESTS_CA_BUNDLE", ca);
    let (status, output) = run_bounded(cmd, PYTEST_DEADLINE).unwrap_or_else(|err| panic!("{err}"));
    assert!(status.success(), "pytest (build {build}) failed:\n{output}");
    assert!(
        !output.contains("Deactivating"),
        "the plugin stopped uploading over HTTPS (build {build}):\n{output}\nserver:\n{}",
        server.stderr()
    );
    assert!(output.contains("2 passed"), "build {build}:\n{output}");
}

#[test]
fn pytest_monitor_uploads_over_https_and_compare_gates_on_it_with_ca_cert() {
    let Some(python) = venv_python("HTTPS upload") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = TestCerts::make(dir.path());
    let server = Server::serve(
        &dir.path().join("monitor.db"),
        &[
            "--tls-cert",
            certs.cert.to_str().unwrap(),
            "--tls-key",
            certs.key.to_str().unwrap(),
        ],
    );
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let suite = tempfile::tempdir().expect("temp dir for the suite");
    fs::write(suite.path().join("pytest.ini"), "[pytest]\n").unwrap();
    fs::write(suite.path().join("test_tls_suite.py"), SUITE).unwrap();

    upload_build(&python, suite.path(), &server, &certs.ca, "1");
    upload_build(&python, suite.path(), &server, &certs.ca, "2");
    let output = Command::new(crate::common::server_bin())
        .args(["compare", "--server", &server.base])
        .args(["--baseline", "build:main/1", "--candidate", "build:main/2"])
        // Whatever the machine's noise, nothing regresses: the gate is what is checked.
        .args([
            "--max-slowdown",
            "100000%",
            "--max-memory-growth",
            "100000%",
        ])
        .args(["--format", "json", "--ca-cert"])
        .arg(&certs.ca)
        .env_remove("MONITOR_SERVER_TOKEN")
        .env_remove("SSL_CERT_FILE")
        .output()
        .expect("cannot run monitor-server compare");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let answer: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(answer["summary"]["total"], 2, "{answer:#}");
    assert_eq!(answer["baseline"]["runs"], 1, "{answer:#}");
    assert_eq!(answer["candidate"]["runs"], 1, "{answer:#}");
}
