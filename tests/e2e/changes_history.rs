//! End to end, issue 15's promise on a real history: the real pytest-monitor 1.6.6 uploads 30
//! builds of a small suite to the real `monitor-server` binary (GitLab CI's variables tag each
//! run as a build of pipeline `main`); from build 20 on, `test_slowed` sleeps 0.8 s instead of
//! 0.1 s. `GET /changes?pipeline=main` must name that test, its wall time, at build 20, and
//! nothing else; and the gate with `--baseline auto` must judge build 31, as slow as the builds
//! since 20, against those builds: unchanged, where the builds before 20 would call it a
//! regression.
//!
//! The other tests take no time of their own: what they measure is the plugin's overhead, which
//! is below the 0.1 s floor a change must pass. `test_slowed` sleeps, so its CPU time does not
//! change. Same prerequisites as `tests/e2e/pytest_monitor.rs` (python3 with `venv`, PyPI on
//! the first run; the venv is shared): missing, the test fails on CI and prints `SKIPPED:`
//! elsewhere.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::common::{venv_python, Server};
use crate::regression::{self, SUITE};

/// How many builds are uploaded, and the first slow one.
const BUILDS: u32 = 30;
const SLOW_FROM: u32 = 20;

/// Runs the regression test's suite (`test_slowed` sleeps `E2E_SLOWED_SECONDS`) as build
/// `build` of pipeline `main`.
fn run_build(python: &Path, suite: &Path, server: &Server, build: u32) {
    let slowed = if build >= SLOW_FROM { "0.8" } else { "0.1" };
    regression::run_build(python, suite, server, &build.to_string(), slowed);
}

/// `(item_variant, metric, build)` of every change `/changes` lists for `main`.
fn listed_changes(server: &Server) -> (Vec<(String, String, String)>, Value) {
    let (status, body) = server.get("/changes?pipeline=main&per_page=100");
    assert!([200, 204].contains(&status), "/changes: {status} {body}");
    let found = body["changes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let text = |key: &str| c[key].as_str().unwrap_or_default().to_owned();
            (text("item_variant"), text("metric"), text("build"))
        })
        .collect();
    (found, body)
}

#[test]
fn thirty_real_builds_in_which_one_test_slows_at_build_20_show_that_change_and_no_other() {
    let Some(python) = venv_python("change detection on a real history") else {
        return;
    };
    let server = Server::start();
    let suite = tempfile::tempdir().expect("temp dir for the suite");
    fs::write(suite.path().join("pytest.ini"), "[pytest]\n").expect("write pytest.ini");
    fs::write(suite.path().join("test_changes_suite.py"), SUITE).expect("write the suite");

    for build in 1..=BUILDS {
        run_build(&python, suite.path(), &server, build);
    }
    let (found, body) = listed_changes(&server);

    assert_eq!(
        found,
        [(
            "test_slowed".to_owned(),
            "wall".to_owned(),
            SLOW_FROM.to_string()
        )],
        "{body:#}"
    );
    let change = &body["changes"][0];
    assert_eq!(change["item_path"], "test_changes_suite");
    let (before, after) = (
        change["before"].as_f64().unwrap_or(f64::NAN),
        change["after"].as_f64().unwrap_or(f64::NAN),
    );
    assert!(
        after - before > 0.5,
        "the level moved by the 0.7 s staged: {change}"
    );

    // The gate: build 31 is as slow as the builds since 20, which `auto` takes as baseline.
    run_build(&python, suite.path(), &server, BUILDS + 1);
    let output = regression::gate(&server, "auto", "build:main/31", &["--format", "json"]);
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "--format json is not JSON: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let baseline: Vec<String> = (SLOW_FROM..=BUILDS).map(|b| format!("main/{b}")).collect();
    assert_eq!(
        answer["baseline"]["run_names"],
        serde_json::json!(baseline),
        "{answer:#}"
    );
    let slowed = answer["tests"]
        .as_array()
        .and_then(|tests| tests.iter().find(|t| t["item_variant"] == "test_slowed"))
        .unwrap_or_else(|| panic!("no test_slowed in {answer:#}"));
    assert_eq!(slowed["total_time"]["verdict"], "unchanged", "{slowed:#}");
}
