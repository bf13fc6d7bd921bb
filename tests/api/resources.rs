//! `/resources/<r>/{head|tail}[/<n>]/metrics`: the metrics that used the most (head) or least
//! (tail) of a resource, overall and within a component, a pipeline or a build; `{"metrics":
//! [...]}` with no paging, 10 rows by default and at most 500.

use serde_json::Value;

use crate::common::dataset::{all, matching, numbers, ordered_by, seeded_app, Column, S1, S3};
use crate::common::{assert_bad_field, spawn_app, TestApp};

/// The resource names of the routes and the column each ranks by.
const RESOURCES: [(&str, Column); 5] = [
    ("memory", |m| m.mem_usage),
    ("cpu", |m| m.cpu_usage),
    ("user_time", |m| m.user_time),
    ("kernel_time", |m| m.kernel_time),
    ("total_time", |m| m.total_time),
];

/// `GET path` on a ranking: the metric numbers in its order, `[]` for a 204. A 200 body must be
/// exactly `{"metrics": [...]}`, not empty.
fn ranked(app: &TestApp, path: &str) -> Vec<usize> {
    let (status, body) = app.get(path);
    match status {
        204 => {
            assert_eq!(body, Value::Null, "GET {path}");
            vec![]
        }
        200 => {
            let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["metrics"], "GET {path}: {body}");
            let found = numbers(&body);
            assert!(!found.is_empty(), "GET {path}: 200 with no metric");
            found
        }
        _ => panic!("GET {path} answered {status}: {body}"),
    }
}

/// The first `n` of `numbers` ranked by `key`, most first for head.
fn top(numbers: &[usize], key: Column, head: bool, n: usize) -> Vec<usize> {
    let mut sorted = ordered_by(numbers, key, head);
    sorted.truncate(n);
    sorted
}

#[test]
fn head_and_tail_rank_ten_metrics_by_each_resource() {
    let app = seeded_app();

    for (resource, key) in RESOURCES {
        assert_eq!(
            ranked(&app, &format!("/api/v1/resources/{resource}/head/metrics")),
            top(&all(), key, true, 10),
            "{resource} head"
        );
        assert_eq!(
            ranked(&app, &format!("/api/v1/resources/{resource}/tail/metrics/")),
            top(&all(), key, false, 10),
            "{resource} tail"
        );
    }
}

#[test]
fn head_lists_the_biggest_first_and_tail_the_smallest_first() {
    let app = seeded_app();

    assert_eq!(
        ranked(&app, "/api/v1/resources/memory/head/3/metrics"),
        [10, 5, 8]
    );
    // A negative memory use is the smallest.
    assert_eq!(
        ranked(&app, "/api/v1/resources/memory/tail/3/metrics"),
        [4, 12, 9]
    );
}

#[test]
fn ties_are_ranked_in_the_order_stored_both_ways() {
    let app = seeded_app();

    // 1, 2, 4 and 6 all have cpu_usage 0.8.
    assert_eq!(
        ranked(&app, "/api/v1/resources/cpu/tail/metrics"),
        [11, 12, 9, 1, 2, 4, 6, 7, 8, 3]
    );
    assert_eq!(
        ranked(&app, "/api/v1/resources/cpu/head/metrics"),
        [5, 10, 3, 8, 7, 1, 2, 4, 6, 9]
    );
}

#[test]
fn n_is_capped_at_500_so_a_larger_n_returns_every_row_there_is() {
    let app = seeded_app();

    assert_eq!(
        ranked(&app, "/api/v1/resources/total_time/head/12/metrics").len(),
        12
    );
    assert_eq!(
        ranked(&app, "/api/v1/resources/total_time/head/1000/metrics"),
        top(&all(), |m| m.total_time, true, 12)
    );
    assert_eq!(
        ranked(&app, "/api/v1/resources/total_time/tail/500/metrics"),
        top(&all(), |m| m.total_time, false, 12)
    );
    assert_eq!(
        ranked(
            &app,
            "/api/v1/resources/total_time/tail/18446744073709551615/metrics"
        )
        .len(),
        12
    );
    assert_eq!(
        ranked(&app, "/api/v1/resources/total_time/head/1/metrics"),
        [11]
    );
}

#[test]
fn n_must_be_a_positive_integer() {
    let app = seeded_app();

    for n in ["0", "-1", "abc", "1.5", "%20", "18446744073709551616"] {
        let path = format!("/api/v1/resources/memory/head/{n}/metrics");
        assert_bad_field(&app.get(&path), "n");
    }
}

#[test]
fn an_unknown_resource_is_a_400_listing_the_valid_names() {
    let app = seeded_app();

    for path in [
        "/api/v1/resources/disk/head/metrics",
        "/api/v1/resources/mem_usage/tail/5/metrics",
        "/api/v1/resources/Memory/head/metrics",
        "/api/v1/resources/memory'%20OR%201=1%20--/head/metrics",
        "/api/v1/resources/disk/components/api/head/metrics",
        "/api/v1/resources/disk/pipelines/main/tail/2/metrics",
        "/api/v1/resources/disk/pipelines/main/builds/7/head/metrics",
    ] {
        let reply = app.get(path);
        let reason = assert_bad_field(&reply, "resource");
        for name in ["memory", "cpu", "user_time", "kernel_time", "total_time"] {
            assert!(reason.contains(name), "{path}: {reason}");
        }
    }
}

#[test]
fn a_direction_other_than_head_or_tail_is_a_400() {
    let app = seeded_app();

    let reason = assert_bad_field(
        &app.get("/api/v1/resources/memory/top/metrics"),
        "direction",
    );
    assert!(
        reason.contains("head") && reason.contains("tail"),
        "{reason}"
    );
    assert_bad_field(
        &app.get("/api/v1/resources/memory/HEAD/3/metrics"),
        "direction",
    );
    assert_bad_field(
        &app.get("/api/v1/resources/memory/components/api/middle/metrics"),
        "direction",
    );
}

#[test]
fn a_component_ranking_only_ranks_that_component() {
    let app = seeded_app();

    assert_eq!(
        ranked(
            &app,
            "/api/v1/resources/total_time/components/db%2Fcore/head/2/metrics"
        ),
        [11, 10]
    );
    assert_eq!(
        ranked(
            &app,
            "/api/v1/resources/total_time/components/db%2Fcore/tail/metrics"
        ),
        [9, 10, 11]
    );
    assert_eq!(
        ranked(&app, "/api/v1/resources/memory/components/api/head/metrics"),
        [6, 1, 2]
    );
    assert!(ranked(
        &app,
        "/api/v1/resources/memory/components/nope/head/metrics"
    )
    .is_empty());
    assert!(ranked(
        &app,
        "/api/v1/resources/memory/components/%25/tail/5/metrics"
    )
    .is_empty());
}

#[test]
fn a_pipeline_ranking_only_ranks_the_metrics_of_its_sessions() {
    let app = seeded_app();
    let main = matching(|m| m.session_h != S3);

    assert_eq!(
        ranked(
            &app,
            "/api/v1/resources/user_time/pipelines/main/tail/3/metrics"
        ),
        [9, 4, 2]
    );
    assert_eq!(
        ranked(
            &app,
            "/api/v1/resources/user_time/pipelines/main/head/metrics"
        ),
        top(&main, |m| m.user_time, true, 10)
    );
    assert_eq!(
        ranked(
            &app,
            "/api/v1/resources/memory/pipelines/release%2F2.0/head/metrics"
        ),
        [10, 11, 12]
    );
    assert!(ranked(&app, "/api/v1/resources/memory/pipelines/nope/head/metrics").is_empty());
}

#[test]
fn a_build_ranking_only_ranks_the_metrics_of_that_build_of_the_pipeline() {
    let app = seeded_app();

    assert_eq!(
        ranked(
            &app,
            "/api/v1/resources/kernel_time/pipelines/main/builds/7/head/metrics"
        ),
        top(
            &matching(|m| m.session_h == S1),
            |m| m.kernel_time,
            true,
            10
        )
    );
    assert_eq!(
        ranked(
            &app,
            "/api/v1/resources/kernel_time/pipelines/main/builds/7/head/2/metrics"
        ),
        [5, 3]
    );
    assert_eq!(
        ranked(
            &app,
            "/api/v1/resources/cpu/pipelines/release%2F2.0/builds/3/tail/1/metrics"
        ),
        [11]
    );
    // Build 3 is release/2.0's, not main's.
    assert!(ranked(
        &app,
        "/api/v1/resources/cpu/pipelines/main/builds/3/tail/metrics"
    )
    .is_empty());
}

#[test]
fn a_ranking_takes_no_query_parameters() {
    let app = seeded_app();

    assert_bad_field(
        &app.get("/api/v1/resources/memory/head/metrics?page=2"),
        "page",
    );
    assert_bad_field(
        &app.get("/api/v1/resources/memory/head/metrics?component=api"),
        "component",
    );
}

#[test]
fn every_ranking_answers_204_on_an_empty_database() {
    let app = spawn_app();

    for path in [
        "/api/v1/resources/memory/head/metrics",
        "/api/v1/resources/cpu/tail/5/metrics",
        "/api/v1/resources/total_time/components/api/head/metrics",
        "/api/v1/resources/user_time/components/api/tail/3/metrics",
        "/api/v1/resources/kernel_time/pipelines/main/head/metrics",
        "/api/v1/resources/memory/pipelines/main/tail/2/metrics",
        "/api/v1/resources/memory/pipelines/main/builds/7/head/metrics",
        "/api/v1/resources/memory/pipelines/main/builds/7/tail/4/metrics",
    ] {
        assert_eq!(app.get(path), (204, Value::Null), "{path}");
    }
}
