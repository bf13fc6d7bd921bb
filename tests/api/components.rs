//! `/components`: the list of components (never the empty one), prefix lookup, a component's
//! metrics, pipelines, builds and sessions, and its items and variants.

use serde_json::{json, Value};

use crate::common::dataset::{
    assert_envelope, listed, matching, seeded_app, seeded_app_with_page_size, S1, S2, S3,
};
use crate::common::{assert_bad_field, TestApp};

/// `GET path` on a list of names under `key` after `extra` string fields: the whole body for a
/// 200 (checked against the envelope), `Value::Null` for a 204.
fn names(app: &TestApp, path: &str, key: &str, extra: &[&str]) -> Value {
    let (status, body) = app.get(path);
    match status {
        204 => assert_eq!(body, Value::Null, "GET {path}"),
        200 => assert_envelope(&body, key, extra),
        _ => panic!("GET {path} answered {status}: {body}"),
    }
    body
}

#[test]
fn components_are_listed_alphabetically_without_the_empty_one() {
    let app = seeded_app();

    let body = names(&app, "/api/v1/components/", "components", &[]);

    // Byte order: 'X' (0x58) sorts before '_' (0x5F).
    assert_eq!(
        body,
        json!({"components": ["api", "apiXv3", "api_v2", "db/core"], "prev_url": null, "next_url": null, "total_page": 1})
    );
}

#[test]
fn the_component_list_is_paginated_with_links() {
    let app = seeded_app_with_page_size(3);

    let first = names(&app, "/api/v1/components", "components", &[]);
    let last = names(&app, "/api/v1/components/?page=-1", "components", &[]);

    assert_eq!(first["components"], json!(["api", "apiXv3", "api_v2"]));
    assert_eq!(first["next_url"], "/api/v1/components/?page=2");
    assert_eq!(first["total_page"], 2);
    assert_eq!(last["components"], json!(["db/core"]));
    assert_eq!(last["prev_url"], "/api/v1/components/?page=1");
    let (status, _) = app.get("/api/v1/components/?page=3");
    assert_eq!(status, 404);
}

#[test]
fn components_are_found_by_prefix_with_wildcards_matching_themselves() {
    let app = seeded_app();
    let prefix = |p: &str| names(&app, &format!("/api/v1/components/{p}"), "components", &[]);

    assert_eq!(
        prefix("api")["components"],
        json!(["api", "apiXv3", "api_v2"])
    );
    // `_` is an underscore, not "any character": apiXv3 does not start with api_.
    assert_eq!(prefix("api_")["components"], json!(["api_v2"]));
    // ASCII letters match either case, as the reference's SQL LIKE does.
    assert_eq!(
        prefix("API")["components"],
        json!(["api", "apiXv3", "api_v2"])
    );
    // A `%` does not match everything; a `/` can be sent encoded.
    assert_eq!(prefix("%25"), Value::Null);
    assert_eq!(prefix("db%2F")["components"], json!(["db/core"]));
    assert_eq!(prefix("zzz"), Value::Null);
}

#[test]
fn the_metrics_of_a_component_match_its_name_exactly() {
    let app = seeded_app();

    assert_eq!(listed(&app, "/api/v1/components/api/metrics"), [1, 2, 6]);
    assert_eq!(listed(&app, "/api/v1/components/api_v2/metrics"), [3]);
    assert_eq!(
        listed(&app, "/api/v1/components/db%2Fcore/metrics"),
        [9, 10, 11]
    );
    assert!(listed(&app, "/api/v1/components/ap/metrics").is_empty());
    // `api%` is not a pattern: no component is literally named so.
    assert!(listed(&app, "/api/v1/components/api%25/metrics").is_empty());
    assert!(listed(&app, "/api/v1/components/api_v%5F/metrics").is_empty());
}

#[test]
fn the_metrics_without_a_component_are_under_components_metrics() {
    let app = seeded_app();

    assert_eq!(
        listed(&app, "/api/v1/components/metrics"),
        matching(|m| m.component.is_empty())
    );
    assert_eq!(listed(&app, "/api/v1/components/metrics/"), [5, 8, 12]);
}

#[test]
fn component_listings_take_the_metric_filters_and_sort() {
    let app = seeded_app();

    assert_eq!(
        listed(
            &app,
            "/api/v1/components/api/metrics?sort=total_time&order=desc"
        ),
        [6, 1, 2]
    );
    assert_eq!(
        listed(&app, &format!("/api/v1/components/metrics?session_h={S3}")),
        [12]
    );
}

#[test]
fn the_pipelines_of_a_component_are_those_of_the_sessions_that_reported_it() {
    let app = seeded_app();

    assert_eq!(
        names(
            &app,
            "/api/v1/components/api/pipelines",
            "pipelines",
            &["component"]
        ),
        json!({"component": "api", "pipelines": ["main"], "prev_url": null, "next_url": null, "total_page": 1})
    );
    assert_eq!(
        names(
            &app,
            "/api/v1/components/db%2Fcore/pipelines/",
            "pipelines",
            &["component"]
        ),
        json!({"component": "db/core", "pipelines": ["main", "release/2.0"], "prev_url": null, "next_url": null, "total_page": 1})
    );
    assert_eq!(
        names(
            &app,
            "/api/v1/components/nope/pipelines",
            "pipelines",
            &["component"]
        ),
        Value::Null
    );
}

#[test]
fn the_builds_of_a_component_pipeline_are_listed_in_numeric_order() {
    let app = seeded_app();
    let extra = ["component", "pipeline"];

    assert_eq!(
        names(
            &app,
            "/api/v1/components/api/pipelines/main/builds",
            "builds",
            &extra
        ),
        json!({"component": "api", "pipeline": "main", "builds": ["7", "10"], "prev_url": null, "next_url": null, "total_page": 1})
    );
    // db/core was reported on main only by S2 (build 10), and on release/2.0 by S3 (build 3).
    assert_eq!(
        names(
            &app,
            "/api/v1/components/db%2Fcore/pipelines/release%2F2.0/builds",
            "builds",
            &extra
        ),
        json!({"component": "db/core", "pipeline": "release/2.0", "builds": ["3"], "prev_url": null, "next_url": null, "total_page": 1})
    );
    assert_eq!(
        names(
            &app,
            "/api/v1/components/api_v2/pipelines/release%2F2.0/builds",
            "builds",
            &extra
        ),
        Value::Null
    );
}

#[test]
fn the_sessions_of_a_component_build_are_listed_by_hash() {
    let app = seeded_app();
    let extra = ["component", "pipeline", "build"];

    assert_eq!(
        names(
            &app,
            "/api/v1/components/api/pipelines/main/builds/10/sessions",
            "sessions",
            &extra
        ),
        json!({"component": "api", "pipeline": "main", "build": "10", "sessions": [S2],
               "prev_url": null, "next_url": null, "total_page": 1})
    );
    assert_eq!(
        names(
            &app,
            "/api/v1/components/apiXv3/pipelines/main/builds/7/sessions",
            "sessions",
            &extra
        )["sessions"],
        json!([S1])
    );
    // db/core has no metric in build 7.
    assert_eq!(
        names(
            &app,
            "/api/v1/components/db%2Fcore/pipelines/main/builds/7/sessions",
            "sessions",
            &extra
        ),
        Value::Null
    );
}

#[test]
fn the_items_and_variants_of_a_component_match_both_exactly() {
    let app = seeded_app();

    assert_eq!(
        listed(&app, "/api/v1/components/api/items/test_login/metrics"),
        [1, 2, 6]
    );
    assert_eq!(
        listed(
            &app,
            "/api/v1/components/api/variants/test_login%5Buser%5D/metrics"
        ),
        [1, 6]
    );
    assert_eq!(
        listed(
            &app,
            "/api/v1/components/db%2Fcore/items/test_path%2Fsep/metrics"
        ),
        [10]
    );
    assert!(listed(&app, "/api/v1/components/api_v2/items/test_login/metrics").is_empty());
}

#[test]
fn the_items_and_variants_without_a_component_are_under_components_items_and_variants() {
    let app = seeded_app();

    assert_eq!(
        listed(&app, "/api/v1/components/items/test_login/metrics"),
        [12]
    );
    assert_eq!(
        listed(&app, "/api/v1/components/items/test_back%5Cslash/metrics"),
        [8]
    );
    assert_eq!(
        listed(
            &app,
            "/api/v1/components/variants/test_login%5Buser%5D/metrics?sort=mem_usage"
        ),
        [12]
    );
    assert!(listed(
        &app,
        "/api/v1/components/variants/test_login%5Badmin%5D/metrics"
    )
    .is_empty());
}

#[test]
fn sql_in_a_component_is_data() {
    let app = seeded_app();

    assert!(listed(&app, "/api/v1/components/api'%20OR%201=1%20--/metrics").is_empty());
    assert_eq!(
        names(&app, "/api/v1/components/'%20OR%20''='", "components", &[]),
        Value::Null
    );
    assert_eq!(
        names(
            &app,
            "/api/v1/components/x'%20OR%201=1%20--/pipelines",
            "pipelines",
            &["component"]
        ),
        Value::Null
    );
    assert_eq!(app.rows_in("metrics"), 12);
}

#[test]
fn a_name_listing_refuses_a_metric_filter_it_cannot_apply() {
    let app = seeded_app();

    assert_bad_field(&app.get("/api/v1/components/?component=api"), "component");
    assert_bad_field(
        &app.get("/api/v1/components/api/pipelines?sort=total_time"),
        "sort",
    );
    assert_eq!(
        names(
            &app,
            "/api/v1/components/api/pipelines/main/builds/7/sessions?per_page=1",
            "sessions",
            &["component", "pipeline", "build"]
        )["sessions"],
        json!([S1])
    );
}
