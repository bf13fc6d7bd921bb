//! `/changes`, `/changes/tests` and `/compare?baseline=auto`: a pipeline's history posted
//! through the API, in which one test gets twice as slow from build 20, and what the server
//! tells of it as builds arrive and are deleted.

use serde_json::{json, Value};

use crate::common::{assert_bad_field, spawn_app, TestApp};

const CTX: &str = "cccc0000cccc0000cccc0000cccc0000";

/// A small deterministic wobble of ±2 %, so that the series are not flat.
fn wobble(n: u32, phase: f64) -> f64 {
    1.0 + 0.02 * (f64::from(n) * 1.7 + phase).sin()
}

/// One build of `pipeline`: one session, with the tests `test_slowed` (1 s, 2 s from build
/// `slow_from` on), `test_steady` (3 s) and `test_tiny` (10 ms, 40 ms from build `slow_from`:
/// below the absolute floor), all of component `core`.
fn post_build(app: &TestApp, pipeline: &str, build: u32, slow_from: u32) {
    let session_h = format!("{pipeline}-{build}");
    app.create(
        "/api/v1/sessions/",
        &json!({"session_h": session_h, "run_date": format!("2024-01-01T00:{:02}:00", build),
                "scm_ref": format!("rev{build}"),
                "description": {"pipeline_branch": pipeline, "pipeline_build_no": build.to_string()}}),
    );
    let slowed = if build >= slow_from { 2.0 } else { 1.0 };
    let tiny = if build >= slow_from { 0.04 } else { 0.01 };
    let mut lines = String::new();
    for (variant, time) in [
        ("test_slowed", slowed * wobble(build, 0.0)),
        ("test_steady", 3.0 * wobble(build, 1.0)),
        ("test_tiny", tiny * wobble(build, 2.0)),
    ] {
        let metric = json!({
            "session_h": session_h, "context_h": CTX,
            "item_start_time": format!("2024-01-01T00:{:02}:01", build),
            "item_path": "tests.test_speed", "item": variant, "item_variant": variant,
            "item_fs_loc": "tests/test_speed.py", "kind": "function", "component": "core",
            "total_time": time, "user_time": time * 0.9, "kernel_time": time * 0.05,
            "cpu_usage": 0.95, "mem_usage": 20.0 * wobble(build, 3.0)
        });
        lines.push_str(&metric.to_string());
        lines.push('\n');
    }
    let (status, body) = app.post_raw(
        "/api/v1/metrics/batch",
        Some("application/x-ndjson"),
        lines.as_bytes(),
    );
    assert_eq!(status, 201, "{body}");
}

fn history(builds: std::ops::RangeInclusive<u32>) -> TestApp {
    let app = spawn_app();
    app.create("/api/v1/contexts/", &crate::common::context(CTX));
    for build in builds {
        post_build(&app, "main", build, 20);
    }
    app
}

fn changes(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/api/v1/changes?{query}"));
    match status {
        204 => Vec::new(),
        200 => body["changes"].as_array().cloned().unwrap_or_default(),
        _ => panic!("GET /changes?{query} answered {status}: {body}"),
    }
}

/// `(variant, metric, build)` of each change listed.
fn found(rows: &[Value]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|c| {
            (
                c["item_variant"].as_str().unwrap_or_default().to_owned(),
                c["metric"].as_str().unwrap_or_default().to_owned(),
                c["build"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_slowed_test_is_found_at_the_build_where_it_slowed_and_nothing_else() {
    let app = history(1..=30);

    let rows = changes(&app, "pipeline=main");

    assert_eq!(
        found(&rows),
        [
            ("test_slowed".into(), "wall".into(), "20".into()),
            ("test_slowed".into(), "cpu".into(), "20".into())
        ]
    );
    let wall = &rows[0];
    assert_eq!(wall["item_path"], "tests.test_speed");
    assert_eq!(wall["kind"], "function");
    assert_eq!(wall["component"], "core");
    assert_eq!(wall["context_h"], CTX);
    assert_eq!(wall["machine_node"], "ci-runner-3");
    assert_eq!(wall["scm_ref"], "rev20");
    assert_eq!(wall["sessions"], json!(["main-20"]));
    let (before, after) = (
        wall["before"].as_f64().unwrap(),
        wall["after"].as_f64().unwrap(),
    );
    assert!(
        (before - 1.0).abs() < 0.03 && (after - 2.0).abs() < 0.05,
        "{wall}"
    );
    let percent = wall["change_percent"].as_f64().unwrap();
    assert!((percent - 100.0).abs() < 5.0, "{wall}");
    assert!(wall["confidence"].as_f64().unwrap() > 0.99, "{wall}");
    assert_eq!(wall["noise"]["label"], "stable");
    assert_eq!(wall["trend"]["drifting"], false);
}

#[test]
fn changes_are_narrowed_by_metric_component_and_since() {
    let app = history(1..=30);

    assert_eq!(changes(&app, "pipeline=main&metric=wall").len(), 1);
    assert_eq!(changes(&app, "pipeline=main&metric=memory").len(), 0);
    assert_eq!(changes(&app, "pipeline=main&component=core").len(), 2);
    assert_eq!(changes(&app, "pipeline=main&component=io").len(), 0);
    assert_eq!(changes(&app, "pipeline=main&since=20").len(), 2);
    assert_eq!(changes(&app, "pipeline=main&since=21").len(), 0);
    assert_eq!(changes(&app, "pipeline=main&since=3").len(), 2);
    assert_eq!(changes(&app, "pipeline=develop").len(), 0);
}

#[test]
fn changes_are_paged_like_every_listing() {
    let app = history(1..=30);

    let (status, body) = app.get("/api/v1/changes?pipeline=main&per_page=1&page=2");

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total_page"], 2);
    assert_eq!(found(body["changes"].as_array().unwrap())[0].1, "cpu");
}

#[test]
fn a_change_appears_once_the_new_level_has_held_and_goes_when_its_builds_are_deleted() {
    let app = history(1..=21);
    assert_eq!(
        changes(&app, "pipeline=main").len(),
        0,
        "two builds are no new level"
    );

    for build in 22..=30 {
        post_build(&app, "main", build, 20);
    }
    assert_eq!(changes(&app, "pipeline=main&metric=wall").len(), 1);

    for build in 20..=30 {
        let (status, body) = app.send(
            "DELETE",
            &format!("/api/v1/sessions/main-{build}"),
            None,
            b"",
        );
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(changes(&app, "pipeline=main").len(), 0);
}

#[test]
fn sessions_without_pipeline_tags_are_the_empty_pipeline_in_run_date_order() {
    let app = spawn_app();
    for build in 1..=30u32 {
        let session_h = format!("local-{build}");
        app.create(
            "/api/v1/sessions/",
            &json!({"session_h": session_h, "run_date": format!("2024-02-01T00:{:02}:00", build),
                    "scm_ref": "", "description": {}}),
        );
        let time = if build >= 20 { 2.0 } else { 1.0 } * wobble(build, 0.0);
        app.create(
            "/api/v1/metrics/",
            &json!({"session_h": session_h, "context_h": CTX,
                    "item_start_time": "2024-02-01T00:00:00", "item_path": "t", "item": "x",
                    "item_variant": "x", "item_fs_loc": "t.py", "kind": "function",
                    "component": "", "total_time": time, "user_time": 0.0, "kernel_time": 0.0,
                    "cpu_usage": 0.0, "mem_usage": 1.0}),
        );
    }

    let rows = changes(&app, "metric=wall");

    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["build"], Value::Null);
    assert_eq!(rows[0]["sessions"], json!(["local-20"]));
    assert_eq!(rows[0]["machine_node"], Value::Null);
    assert_eq!(changes(&app, "pipeline=&since=2024-02-01T00:21").len(), 0);
}

#[test]
fn one_tests_changes_noise_and_drift_are_told_per_metric() {
    let app = history(1..=30);

    let (status, body) = app.get(
        "/api/v1/changes/tests?pipeline=main&item_path=tests.test_speed&item_variant=test_slowed",
    );

    assert_eq!(status, 200, "{body}");
    let tests = body["tests"].as_array().unwrap();
    let metrics: Vec<&str> = tests
        .iter()
        .map(|t| t["metric"].as_str().unwrap())
        .collect();
    assert_eq!(metrics, ["wall", "cpu", "memory"]);
    assert_eq!(tests[0]["builds"], 30);
    assert_eq!(tests[0]["changes"][0]["build"], "20");
    assert_eq!(tests[2]["changes"], json!([]));
    assert_eq!(tests[2]["noise"]["label"], "stable");
    let (status, body) = app.get(
        "/api/v1/changes/tests?pipeline=other&item_path=tests.test_speed&item_variant=test_slowed",
    );
    assert_eq!((status, &body["tests"]), (200, &json!([])));
}

#[test]
fn a_request_with_an_unknown_metric_is_refused() {
    let app = spawn_app();

    assert_bad_field(
        &app.get("/api/v1/changes?pipeline=main&metric=disk"),
        "metric",
    );
}

#[test]
fn the_auto_baseline_is_the_stable_segment_before_the_candidate() {
    let app = history(1..=30);
    // Build 31 is as slow as the segment since build 20: no regression against it, though it
    // is twice as slow as the builds before.
    post_build(&app, "main", 31, 20);

    let (status, body) = app.get("/api/v1/compare?baseline=auto&candidate=build:main/31");

    assert_eq!(status, 200, "{body}");
    let runs: Vec<&str> = body["baseline"]["run_names"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|r| r.as_str().unwrap_or_default())
        .collect();
    let expected: Vec<String> = (20..=30).map(|b| format!("main/{b}")).collect();
    assert_eq!(runs, expected);
    assert_eq!(body["summary"]["regressed"], 0, "{body}");

    let (status, body) = app.get("/api/v1/compare?baseline=auto&candidate=build:main/15");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["baseline"]["runs"], 14);

    assert_bad_field(
        &app.get("/api/v1/compare?baseline=auto&candidate=session:main-31"),
        "baseline",
    );
    assert_bad_field(
        &app.get("/api/v1/compare?baseline=build:main/3&candidate=auto"),
        "candidate",
    );
}
