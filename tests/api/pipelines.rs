//! `/pipelines`: CI pipelines and builds, read from the session tags `pipeline_branch` and
//! `pipeline_build_no`.

use serde_json::{json, Value};

use crate::common::dataset::{assert_envelope, seeded_app, seeded_app_with_page_size, S1, S2, S3};
use crate::common::{assert_bad_field, spawn_app};

#[test]
fn pipelines_are_the_distinct_pipeline_branch_tags_alphabetically() {
    let app = seeded_app();

    let (status, body) = app.get("/api/v1/pipelines/");

    assert_eq!(status, 200, "{body}");
    assert_envelope(&body, "pipelines", &[]);
    assert_eq!(
        body,
        json!({"pipelines": ["main", "release/2.0"], "prev_url": null, "next_url": null, "total_page": 1})
    );
}

#[test]
fn the_pipeline_list_is_paginated() {
    let app = seeded_app_with_page_size(1);

    let (_, first) = app.get("/api/v1/pipelines");
    let (_, second) = app.get(first["next_url"].as_str().unwrap());

    assert_eq!(
        first,
        json!({"pipelines": ["main"], "prev_url": null, "next_url": "/api/v1/pipelines/?page=2",
               "total_page": 2})
    );
    assert_eq!(
        second,
        json!({"pipelines": ["release/2.0"], "prev_url": "/api/v1/pipelines/?page=1",
               "next_url": null, "total_page": 2})
    );
}

#[test]
fn the_builds_of_a_pipeline_are_listed_in_numeric_order_with_the_pipeline() {
    let app = seeded_app();

    let (status, body) = app.get("/api/v1/pipelines/main/builds");

    assert_eq!(status, 200, "{body}");
    assert_envelope(&body, "builds", &["pipeline"]);
    // 7 before 10, although "10" < "7" as text.
    assert_eq!(
        body,
        json!({"pipeline": "main", "builds": ["7", "10"], "prev_url": null, "next_url": null, "total_page": 1})
    );
}

#[test]
fn a_pipeline_name_with_a_slash_is_sent_as_percent_2f() {
    let app = seeded_app();

    let (status, body) = app.get("/api/v1/pipelines/release%2F2.0/builds/");

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"pipeline": "release/2.0", "builds": ["3"], "prev_url": null, "next_url": null, "total_page": 1})
    );
    let (_, sessions) = app.get("/api/v1/pipelines/release%2F2.0/builds/3/sessions");
    assert_eq!(sessions["sessions"], json!([S3]));
}

#[test]
fn the_sessions_of_a_build_are_listed_by_hash() {
    let app = seeded_app();

    let (status, body) = app.get("/api/v1/pipelines/main/builds/10/sessions");

    assert_eq!(status, 200, "{body}");
    assert_envelope(&body, "sessions", &["pipeline", "build"]);
    assert_eq!(
        body,
        json!({"pipeline": "main", "build": "10", "sessions": [S2], "prev_url": null, "next_url": null, "total_page": 1})
    );
    let (_, seven) = app.get("/api/v1/pipelines/main/builds/7/sessions");
    assert_eq!(seven["sessions"], json!([S1]));
}

#[test]
fn an_unknown_pipeline_or_build_lists_nothing_with_204() {
    let app = seeded_app();

    for path in [
        "/api/v1/pipelines/nope/builds",
        "/api/v1/pipelines/MAIN/builds",
        "/api/v1/pipelines/main/builds/99/sessions",
        // Build 3 belongs to release/2.0, not to main.
        "/api/v1/pipelines/main/builds/3/sessions",
        "/api/v1/pipelines/%25/builds",
        "/api/v1/pipelines/main'%20OR%201=1%20--/builds",
        "/api/v1/pipelines/main/builds/7'%20OR%20'1'='1/sessions",
    ] {
        assert_eq!(app.get(path), (204, Value::Null), "{path}");
    }
}

#[test]
fn every_pipeline_route_answers_204_without_ci_sessions() {
    let app = spawn_app();
    app.create(
        "/api/v1/sessions/",
        &json!({"session_h": "local", "run_date": "2021-03-04T08:00:00", "scm_ref": "",
                "description": {"team": "backend"}}),
    );

    for path in [
        "/api/v1/pipelines/",
        "/api/v1/pipelines/main/builds",
        "/api/v1/pipelines/main/builds/1/sessions",
    ] {
        assert_eq!(app.get(path), (204, Value::Null), "{path}");
    }
}

#[test]
fn a_pipeline_listing_refuses_unknown_query_parameters() {
    let app = seeded_app();

    let reason = assert_bad_field(&app.get("/api/v1/pipelines/?branch=main"), "branch");
    assert!(reason.contains("per_page"), "{reason}");
    assert_bad_field(
        &app.get("/api/v1/pipelines/main/builds?sort=total_time"),
        "sort",
    );
    assert_bad_field(
        &app.get("/api/v1/pipelines/main/builds/7/sessions?with_flags=team"),
        "with_flags",
    );
}
