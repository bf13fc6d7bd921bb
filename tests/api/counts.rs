//! The count routes of monitor-server-api: `{"count": N}`, 200 even when N is 0, and the metric
//! filters of the listings narrowing the metric counts.

use serde_json::json;

use crate::common::dataset::{matching, seeded_app, CB, S1, S2, S3, S4};
use crate::common::{assert_bad_field, spawn_app, TestApp};

/// `GET path`, asserting a 200 whose body is exactly `{"count": N}`; returns N.
fn count(app: &TestApp, path: &str) -> u64 {
    let (status, body) = app.get(path);
    assert_eq!(status, 200, "GET {path}: {body}");
    let n = body["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("GET {path}: no count in {body}"));
    assert_eq!(body, json!({ "count": n }), "GET {path}: extra keys");
    n
}

#[test]
fn the_collection_counts_answer_how_many_records_are_stored() {
    let app = seeded_app();

    assert_eq!(count(&app, "/api/v1/metrics/count"), 12);
    assert_eq!(count(&app, "/api/v1/sessions/count"), 4);
    assert_eq!(count(&app, "/api/v1/contexts/count"), 2);
    // api, apiXv3, api_v2 and db/core: the empty component is not one.
    assert_eq!(count(&app, "/api/v1/components/count"), 4);
}

#[test]
fn every_count_route_answers_200_with_zero_on_an_empty_database() {
    let app = spawn_app();

    for path in [
        "/api/v1/metrics/count",
        "/api/v1/sessions/count",
        "/api/v1/contexts/count",
        "/api/v1/components/count",
        "/api/v1/sessions/abc/metrics/count",
        "/api/v1/contexts/abc/metrics/count",
        "/api/v1/items/test_x/metrics/count",
        "/api/v1/variants/test_x/metrics/count",
        "/api/v1/filters/scope/function/metrics/count",
        "/api/v1/filters/scm/abc/metrics/count",
    ] {
        assert_eq!(count(&app, path), 0, "{path}");
    }
}

#[test]
fn a_session_or_context_metric_count_counts_only_its_metrics() {
    let app = seeded_app();

    assert_eq!(
        count(&app, &format!("/api/v1/sessions/{S1}/metrics/count")),
        5
    );
    assert_eq!(
        count(&app, &format!("/api/v1/sessions/{S2}/metrics/count/")),
        4
    );
    // A session with no metrics, and one the server never saw, count 0 rather than 404.
    assert_eq!(
        count(&app, &format!("/api/v1/sessions/{S4}/metrics/count")),
        0
    );
    assert_eq!(count(&app, "/api/v1/sessions/nope/metrics/count"), 0);
    assert_eq!(
        count(&app, &format!("/api/v1/contexts/{CB}/metrics/count")),
        3
    );
    // The hash is matched exactly, not as a prefix.
    assert_eq!(count(&app, "/api/v1/contexts/d8b2/metrics/count"), 0);
}

#[test]
fn item_and_variant_counts_match_the_name_exactly() {
    let app = seeded_app();

    assert_eq!(count(&app, "/api/v1/items/test_login/metrics/count"), 4);
    assert_eq!(count(&app, "/api/v1/items/TEST_LOGIN/metrics/count"), 0);
    assert_eq!(count(&app, "/api/v1/items/test_log/metrics/count"), 0);
    assert_eq!(
        count(&app, "/api/v1/variants/test_login%5Buser%5D/metrics/count"),
        3
    );
    assert_eq!(
        count(&app, "/api/v1/items/test_path%2Fsep/metrics/count"),
        1
    );
    assert_eq!(
        count(&app, "/api/v1/items/test_back%5Cslash/metrics/count"),
        1
    );
}

#[test]
fn scope_and_scm_counts_follow_the_kind_and_the_scm_prefix() {
    let app = seeded_app();

    assert_eq!(
        count(&app, "/api/v1/filters/scope/function/metrics/count"),
        10
    );
    assert_eq!(count(&app, "/api/v1/filters/scope/class/metrics/count"), 1);
    assert_eq!(count(&app, "/api/v1/filters/scope/module/metrics/count"), 1);
    assert_eq!(
        count(&app, "/api/v1/filters/scope/package/metrics/count"),
        0
    );
    // S1 and S2 share the prefix 3a323; S3 is 77e1f00.
    assert_eq!(count(&app, "/api/v1/filters/scm/3a323/metrics/count"), 9);
    assert_eq!(count(&app, "/api/v1/filters/scm/3a32301/metrics/count"), 5);
    assert_eq!(count(&app, "/api/v1/filters/scm/77e1f00/metrics/count"), 3);
    // A `%` or `_` is a character, not a wildcard.
    assert_eq!(count(&app, "/api/v1/filters/scm/%25/metrics/count"), 0);
    assert_eq!(count(&app, "/api/v1/filters/scm/3a_2/metrics/count"), 0);
}

#[test]
fn the_metric_filters_narrow_every_metric_count() {
    let app = seeded_app();

    assert_eq!(
        count(&app, "/api/v1/metrics/count?component=api"),
        matching(|m| m.component == "api").len() as u64
    );
    assert_eq!(
        count(
            &app,
            "/api/v1/metrics/count?min_total_time=2.5&kind=function"
        ),
        matching(|m| m.total_time >= 2.5 && m.kind == "function").len() as u64
    );
    assert_eq!(
        count(
            &app,
            &format!("/api/v1/sessions/{S1}/metrics/count?kind=class")
        ),
        1
    );
    assert_eq!(
        count(
            &app,
            &format!("/api/v1/items/test_login/metrics/count?session_h={S3}")
        ),
        1
    );
    assert_eq!(
        count(
            &app,
            "/api/v1/filters/scm/3a323/metrics/count?component_prefix=API"
        ),
        matching(|m| m.session_h != S3 && m.component.starts_with("api")).len() as u64
    );
}

#[test]
fn an_unknown_filter_on_a_metric_count_is_a_400_naming_the_valid_ones() {
    let app = seeded_app();

    let reason = assert_bad_field(&app.get("/api/v1/metrics/count?colour=red"), "colour");

    assert!(reason.contains("component_prefix"), "{reason}");
    assert!(reason.contains("min_mem_usage"), "{reason}");
    assert_bad_field(
        &app.get("/api/v1/items/test_login/metrics/count?min_total_time=fast"),
        "min_total_time",
    );
}

#[test]
fn an_unknown_query_parameter_on_a_collection_count_is_a_400() {
    let app = seeded_app();

    // A filter the count cannot apply must not be silently ignored (the total would look filtered).
    for path in [
        "/api/v1/sessions/count?with_flags=pipeline_branch",
        "/api/v1/contexts/count?colour=red",
        "/api/v1/components/count?component_prefix=api",
    ] {
        let (status, body) = app.get(path);
        assert_eq!(status, 400, "GET {path}: {body}");
    }
}
