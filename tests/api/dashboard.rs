//! The dashboard's aggregate routes — `/runs`, `/runs/<h>`, `/tests`, `/tests/trend`, `/tags`,
//! `/summary` — on a small data set posted through the API, whose sums, counts and orders are
//! worked out by hand below.

use serde_json::{json, Value};

use crate::common::{
    assert_bad_field, assert_has_message, spawn_app, spawn_app_with_page_size, TestApp,
};

const A: &str = "aaaa0000aaaa0000aaaa0000aaaa0000";
const B: &str = "bbbb1111bbbb1111bbbb1111bbbb1111";

/// A session; `tags` is its description object.
fn session(h: &str, run_date: &str, scm_ref: &str, tags: Value) -> Value {
    json!({"session_h": h, "run_date": run_date, "scm_ref": scm_ref, "description": tags})
}

/// A metric of test `variant` of module `tests.t1`.
#[allow(clippy::too_many_arguments)]
fn metric(
    session_h: &str,
    context_h: &str,
    variant: &str,
    component: &str,
    start: &str,
    total_time: f64,
    mem_usage: f64,
) -> Value {
    json!({
        "session_h": session_h, "context_h": context_h, "item_start_time": start,
        "item_path": "tests.t1", "item": variant, "item_variant": variant,
        "item_fs_loc": "tests/t1.py", "kind": "function", "component": component,
        "total_time": total_time, "user_time": total_time / 2.0, "kernel_time": total_time / 4.0,
        "cpu_usage": 0.75, "mem_usage": mem_usage
    })
}

/// Four runs:
/// - s1, 2024-01-01 10:00 UTC, main/1, team core: test_a (A) 1.0 s 10 MB [core], test_b (A)
///   2.0 s 5 MB [io];
/// - s2, 2024-01-02 10:00+01:00 (09:00 UTC), main/2, team web: test_a (A) 3.0 s 4 MB,
///   test_b (A) 1.5 s 30 MB, test_a (B) 0.5 s 1 MB;
/// - s3, `2024-01-02 09:30:00` (a space, UTC: the newest, though it sorts first as text),
///   develop/1, team core: test_a (A) 2.0 s 6 MB, stored before s2's metrics;
/// - s4, 2023-12-31, no tags, no metric.
fn dashboard_app(page_size: u64) -> TestApp {
    let app = spawn_app_with_page_size(page_size);
    for h in [A, B] {
        app.create("/api/v1/contexts/", &crate::common::context(h));
    }
    let ci = |pipeline: &str, build: &str, team: &str| json!({"pipeline_branch": pipeline, "pipeline_build_no": build, "team": team});
    let sessions = [
        session("s1", "2024-01-01T10:00:00", "r1", ci("main", "1", "core")),
        session(
            "s2",
            "2024-01-02T10:00:00+01:00",
            "r2",
            ci("main", "2", "web"),
        ),
        session(
            "s3",
            "2024-01-02 09:30:00",
            "r3",
            ci("develop", "1", "core"),
        ),
        session("s4", "2023-12-31T00:00:00", "", json!({})),
    ];
    for s in &sessions {
        app.create("/api/v1/sessions/", s);
    }
    let metrics = [
        metric("s1", A, "test_a", "core", "2024-01-01T10:00:01", 1.0, 10.0),
        metric("s1", A, "test_b", "io", "2024-01-01T10:00:02", 2.0, 5.0),
        metric("s3", A, "test_a", "core", "2024-01-02T09:30:01Z", 2.0, 6.0),
        metric("s2", A, "test_a", "core", "2024-01-02T09:00:01Z", 3.0, 4.0),
        metric("s2", A, "test_b", "io", "2024-01-02T09:00:02Z", 1.5, 30.0),
        metric("s2", B, "test_a", "core", "2024-01-02T09:00:03Z", 0.5, 1.0),
    ];
    for m in &metrics {
        app.create("/api/v1/metrics/", m);
    }
    app
}

/// Deletes the metrics `condition` selects straight in the database file, through the
/// library's `MetricEraser` as retention would: the API has no route for it.
fn delete_directly(app: &TestApp, condition: &str) {
    let mut conn = rusqlite::Connection::open(&app.db_path).unwrap();
    let tx = conn.transaction().unwrap();
    let ids: Vec<i64> = tx
        .prepare(&format!("SELECT id FROM metrics WHERE {condition}"))
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(!ids.is_empty(), "nothing matched {condition}");
    let mut eraser = monitor_server::db::MetricEraser::new(&tx);
    for id in ids {
        eraser.erase(id).unwrap();
    }
    eraser.finish().unwrap();
    tx.commit().unwrap();
}

fn ok(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.get(path);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// The `field` of every row under `key`.
fn column(body: &Value, key: &str, field: &str) -> Vec<Value> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {body}"))
        .iter()
        .map(|row| row[field].clone())
        .collect()
}

fn hashes(app: &TestApp, path: &str) -> Vec<Value> {
    column(&ok(app, path), "runs", "session_h")
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

// ---------------------------------------------------------------- runs

#[test]
fn runs_are_listed_newest_first_by_time_whatever_the_spelling_of_run_date() {
    let app = dashboard_app(500);

    let body = ok(&app, "/api/v1/runs");

    assert_eq!(column(&body, "runs", "session_h"), ["s3", "s2", "s1", "s4"]);
    assert_eq!(body["total_page"], 1);
}

#[test]
fn a_run_carries_its_tags_pipeline_build_metric_count_total_time_and_contexts() {
    let app = dashboard_app(500);

    let body = ok(&app, "/api/v1/runs");

    let runs = body["runs"].as_array().unwrap();
    let s2 = &runs[1];
    assert_eq!(s2["run_date"], "2024-01-02T10:00:00+01:00");
    assert_eq!(s2["scm_ref"], "r2");
    assert_eq!(
        s2["tags"],
        json!({"pipeline_branch": "main", "pipeline_build_no": "2", "team": "web"})
    );
    assert_eq!(
        (&s2["pipeline"], &s2["build"]),
        (&json!("main"), &json!("2"))
    );
    assert_eq!(s2["tests"], 3);
    assert!(close(&s2["total_time"], 5.0), "{s2}");
    assert_eq!(s2["contexts"], json!([A, B]));
    let s1 = &runs[2];
    assert_eq!(
        (s1["tests"].clone(), s1["contexts"].clone()),
        (json!(2), json!([A]))
    );
    assert!(close(&s1["total_time"], 3.0), "{s1}");
    let s4 = &runs[3];
    assert_eq!(
        (&s4["pipeline"], &s4["build"], &s4["tests"], &s4["contexts"]),
        (&Value::Null, &Value::Null, &json!(0), &json!([]))
    );
    assert!(close(&s4["total_time"], 0.0), "{s4}");
}

#[test]
fn runs_are_filtered_by_component_pipeline_build_scm_ref_and_every_tag_given() {
    let app = dashboard_app(500);

    let cases: [(&str, &[&str]); 9] = [
        ("component=io", &["s2", "s1"]),
        ("component=core", &["s3", "s2", "s1"]),
        ("pipeline=main", &["s2", "s1"]),
        ("build=1", &["s3", "s1"]),
        ("pipeline=main&build=1", &["s1"]),
        ("scm_ref=r2", &["s2"]),
        ("tag=team:core", &["s3", "s1"]),
        ("tag=team:core&tag=pipeline_branch:main", &["s1"]),
        ("tag=team:core&component=io", &["s1"]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            hashes(&app, &format!("/api/v1/runs?{query}")),
            expected,
            "{query}"
        );
    }
}

#[test]
fn runs_are_paged_50_at_a_time_whatever_the_server_page_size_with_links_and_204_when_none_match() {
    let app = dashboard_app(2);

    assert_eq!(
        ok(&app, "/api/v1/runs")["runs"].as_array().unwrap().len(),
        4
    );
    let (status, body) = app.get("/api/v1/runs?pipeline=nowhere");
    assert_eq!((status, body), (204, Value::Null));

    let page = ok(&app, "/api/v1/runs?per_page=1&page=2&tag=team:core");
    assert_eq!(column(&page, "runs", "session_h"), ["s1"]);
    assert_eq!(page["total_page"], 2);
    assert_eq!(
        page["prev_url"],
        "/api/v1/runs/?per_page=1&page=1&tag=team:core"
    );
    assert_eq!(page["next_url"], Value::Null, "{page}");
    assert_eq!(hashes(&app, "/api/v1/runs?per_page=3&page=-1"), ["s4"]);
}

#[test]
fn one_run_is_the_same_object_as_in_the_listing_and_an_unknown_one_is_a_404() {
    let app = dashboard_app(500);
    let listed = ok(&app, "/api/v1/runs")["runs"][1].clone();

    assert_eq!(ok(&app, "/api/v1/runs/s2"), listed);
    let (status, body) = app.get("/api/v1/runs/s9");
    assert_eq!(status, 404, "{body}");
    assert_has_message(&body);
    assert_bad_field(&app.get("/api/v1/runs/s2?page=1"), "page");
}

#[test]
fn a_runs_totals_follow_its_metrics_as_they_arrive_and_are_deleted() {
    let app = dashboard_app(500);
    assert_eq!(ok(&app, "/api/v1/runs/s2")["tests"], 3);

    app.create(
        "/api/v1/metrics/",
        &metric("s2", B, "test_b", "io", "2024-01-02T09:00:04Z", 4.0, 1.0),
    );
    let grown = ok(&app, "/api/v1/runs/s2");
    assert_eq!(grown["tests"], 4);
    assert!(close(&grown["total_time"], 9.0), "{grown}");
    assert_eq!(ok(&app, "/api/v1/runs")["runs"][1], grown);

    // One deleted and one added: as many metrics as before and the same largest id (SQLite
    // gives the next row the largest id plus one), not the same metrics.
    delete_directly(
        &app,
        &format!("session_h = 's2' AND item_variant = 'test_b' AND context_h = '{B}'"),
    );
    app.create(
        "/api/v1/metrics/",
        &metric("s2", A, "test_c", "io", "2024-01-02T09:00:05Z", 0.5, 1.0),
    );
    let replaced = ok(&app, "/api/v1/runs/s2");
    assert_eq!(replaced["tests"], 4);
    assert!(close(&replaced["total_time"], 5.5), "{replaced}");
}

#[test]
fn runs_refuse_unknown_repeated_and_malformed_parameters() {
    let app = dashboard_app(500);

    assert_bad_field(&app.get("/api/v1/runs?colour=red"), "colour");
    assert_bad_field(&app.get("/api/v1/runs?pipeline=a&pipeline=b"), "pipeline");
    assert_bad_field(&app.get("/api/v1/runs?tag=team"), "tag");
    assert_bad_field(&app.get("/api/v1/runs?tag=:core"), "tag");
    assert_bad_field(&app.get("/api/v1/runs?per_page=0"), "per_page");
    let many: Vec<String> = (0..65).map(|n| format!("tag=t{n}:v")).collect();
    assert_bad_field(&app.get(&format!("/api/v1/runs?{}", many.join("&"))), "tag");
}

// ---------------------------------------------------------------- tests

/// `(context, variant)` of each row of a `/tests` answer.
fn tests_of(body: &Value) -> Vec<(String, String)> {
    body["tests"]
        .as_array()
        .unwrap_or_else(|| panic!("no tests in {body}"))
        .iter()
        .map(|t| {
            let context = if t["context_h"] == A { "A" } else { "B" };
            (
                context.to_owned(),
                t["item_variant"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn slowest_ranks_each_test_by_its_largest_wall_time_and_is_the_default() {
    let app = dashboard_app(500);

    let slowest = ok(&app, "/api/v1/tests?sort=slowest");

    let expected = pairs(&[("A", "test_a"), ("A", "test_b"), ("B", "test_a")]);
    assert_eq!(tests_of(&slowest), expected);
    assert_eq!(ok(&app, "/api/v1/tests"), slowest);
    assert_eq!(slowest["total_page"], 1);
}

#[test]
fn hungriest_ranks_each_test_by_its_largest_memory() {
    let app = dashboard_app(500);

    let body = ok(&app, "/api/v1/tests?sort=hungriest");

    let expected = pairs(&[("A", "test_b"), ("A", "test_a"), ("B", "test_a")]);
    assert_eq!(tests_of(&body), expected);
}

#[test]
fn a_test_row_has_its_runs_max_mean_and_latest_by_start_time_not_by_storage() {
    let app = dashboard_app(500);

    let body = ok(&app, "/api/v1/tests");

    let a = &body["tests"][0];
    assert_eq!(
        (
            &a["context_h"],
            &a["item_path"],
            &a["item_variant"],
            &a["item"]
        ),
        (
            &json!(A),
            &json!("tests.t1"),
            &json!("test_a"),
            &json!("test_a")
        )
    );
    assert_eq!(
        (&a["component"], &a["kind"], &a["runs"]),
        (&json!("core"), &json!("function"), &json!(3))
    );
    assert!(close(&a["max_total_time"], 3.0), "{a}");
    assert!(close(&a["mean_total_time"], 2.0), "{a}");
    assert!(close(&a["max_mem_usage"], 10.0), "{a}");
    assert!(close(&a["mean_mem_usage"], 20.0 / 3.0), "{a}");
    // s3's metric was stored before s2's, but started later.
    assert!(close(&a["last_total_time"], 2.0), "{a}");
    assert!(close(&a["last_mem_usage"], 6.0), "{a}");
    assert_eq!(a["last_session_h"], "s3");
    assert_eq!(a["last_run_date"], "2024-01-02 09:30:00");
    let b = &body["tests"][1];
    assert_eq!(b["runs"], 2);
    assert!(close(&b["mean_total_time"], 1.75), "{b}");
    assert!(close(&b["last_mem_usage"], 30.0), "{b}");
}

#[test]
fn tests_are_filtered_by_the_metrics_component_and_context_and_by_the_runs_filters() {
    let app = dashboard_app(500);

    // Only the metrics of the component: s1 and s2 also hold test_a, of `core`.
    let io = ok(&app, "/api/v1/tests?component=io");
    assert_eq!(tests_of(&io), pairs(&[("A", "test_b")]));
    assert_eq!(io["tests"][0]["runs"], 2);
    let on_b = ok(&app, &format!("/api/v1/tests?context_h={B}"));
    assert_eq!(tests_of(&on_b), pairs(&[("B", "test_a")]));
    let main = ok(&app, "/api/v1/tests?pipeline=main");
    assert_eq!(
        tests_of(&main),
        pairs(&[("A", "test_a"), ("A", "test_b"), ("B", "test_a")])
    );
    assert_eq!(main["tests"][0]["runs"], 2);
    assert_eq!(main["tests"][0]["last_session_h"], "s2");
    let develop = ok(
        &app,
        "/api/v1/tests?tag=team:core&tag=pipeline_branch:develop",
    );
    assert_eq!(tests_of(&develop), pairs(&[("A", "test_a")]));
    assert!(close(&develop["tests"][0]["max_total_time"], 2.0));
    let build = ok(&app, "/api/v1/tests?build=1&sort=hungriest");
    assert_eq!(tests_of(&build), pairs(&[("A", "test_a"), ("A", "test_b")]));
    assert_eq!(tests_of(&ok(&app, "/api/v1/tests?scm_ref=r1")).len(), 2);
}

#[test]
fn tests_are_paged_20_at_a_time_whatever_the_server_page_size_and_204_when_none_match() {
    let app = dashboard_app(1);

    assert_eq!(tests_of(&ok(&app, "/api/v1/tests")).len(), 3);
    let second = ok(&app, "/api/v1/tests?sort=hungriest&per_page=2&page=2");
    assert_eq!(tests_of(&second), pairs(&[("B", "test_a")]));
    assert_eq!(second["total_page"], 2);
    assert_eq!(
        second["prev_url"],
        "/api/v1/tests/?sort=hungriest&per_page=2&page=1"
    );
    let (status, body) = app.get("/api/v1/tests?pipeline=nowhere");
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(app.get("/api/v1/tests?per_page=2&page=3").0, 404);
}

#[test]
fn tests_refuse_unknown_rankings_and_parameters() {
    let app = dashboard_app(500);

    assert_bad_field(&app.get("/api/v1/tests?sort=fastest"), "sort");
    assert_bad_field(&app.get("/api/v1/tests?sort=total_time"), "sort");
    assert_bad_field(&app.get("/api/v1/tests?sort=slowest&sort=slowest"), "sort");
    assert_bad_field(&app.get("/api/v1/tests?order=desc"), "order");
    assert_bad_field(&app.get("/api/v1/tests?tag=nocolon"), "tag");
}

#[test]
fn tests_follow_the_store_as_metrics_arrive_sessions_arrive_late_and_metrics_are_deleted() {
    let app = dashboard_app(500);
    assert_eq!(
        tests_of(&ok(&app, "/api/v1/tests"))[0],
        ("A".into(), "test_a".into())
    );
    let main_before = ok(&app, "/api/v1/tests?pipeline=main");

    // A new metric makes test_b the slowest.
    app.create(
        "/api/v1/metrics/",
        &metric("s3", A, "test_b", "io", "2024-01-02T09:30:02Z", 9.0, 1.0),
    );
    let after = ok(&app, "/api/v1/tests");
    assert_eq!(tests_of(&after)[0], ("A".into(), "test_b".into()));
    assert_eq!(after["tests"][0]["runs"], 3);
    assert!(close(&after["tests"][0]["max_total_time"], 9.0));

    // A metric of a session not stored yet is in no pipeline, until its session arrives.
    app.create(
        "/api/v1/metrics/",
        &metric("s5", B, "test_c", "", "2024-01-03T00:00:01", 0.25, 2.0),
    );
    assert_eq!(ok(&app, "/api/v1/tests?pipeline=main"), main_before);
    app.create(
        "/api/v1/sessions/",
        &session(
            "s5",
            "2024-01-03T00:00:00",
            "r5",
            json!({"pipeline_branch": "main"}),
        ),
    );
    let main_after = ok(&app, "/api/v1/tests?pipeline=main");
    assert!(
        tests_of(&main_after).contains(&("B".into(), "test_c".into())),
        "{main_after}"
    );

    // Deleting metrics (as retention would) is seen too.
    delete_directly(&app, "item_variant = 'test_b'");
    let deleted = ok(&app, "/api/v1/tests");
    assert!(
        !tests_of(&deleted).iter().any(|(_, v)| v == "test_b"),
        "{deleted}"
    );
    assert_eq!(deleted["tests"][0]["runs"], 3);
}

#[test]
fn tests_notice_the_newest_metric_deleted_and_another_stored_in_its_place() {
    let app = dashboard_app(500);
    let before = ok(&app, "/api/v1/tests?sort=hungriest");
    assert_eq!(tests_of(&before)[0], ("A".into(), "test_b".into()));

    // The newest metric (s2's test_a on B) goes; the next one stored takes its id.
    delete_directly(&app, "id = (SELECT max(id) FROM metrics)");
    app.create(
        "/api/v1/metrics/",
        &metric("s2", B, "test_d", "io", "2024-01-02T09:00:03Z", 0.5, 99.0),
    );

    let after = ok(&app, "/api/v1/tests?sort=hungriest");
    assert_eq!(
        tests_of(&after),
        pairs(&[("B", "test_d"), ("A", "test_b"), ("A", "test_a")])
    );
}

// ---------------------------------------------------------------- trend

#[test]
fn a_trend_has_one_series_per_context_oldest_first_with_cpu_time() {
    let app = dashboard_app(500);

    let body = ok(
        &app,
        "/api/v1/tests/trend?item_path=tests.t1&item_variant=test_a",
    );

    assert_eq!(
        (&body["item_path"], &body["item_variant"]),
        (&json!("tests.t1"), &json!("test_a"))
    );
    let series = body["series"].as_array().unwrap();
    assert_eq!(column(&body, "series", "context_h"), [A, B]);
    let on_a = &series[0]["points"];
    assert_eq!(
        column(&json!({"p": on_a}), "p", "session_h"),
        ["s1", "s2", "s3"]
    );
    let s2 = &on_a[1];
    assert_eq!(s2["run_date"], "2024-01-02T10:00:00+01:00");
    assert_eq!(s2["item_start_time"], "2024-01-02T09:00:01Z");
    assert!(close(&s2["total_time"], 3.0) && close(&s2["user_time"], 1.5));
    assert!(close(&s2["kernel_time"], 0.75) && close(&s2["cpu_time"], 2.25));
    assert!(close(&s2["mem_usage"], 4.0));
    assert_eq!(series[1]["points"].as_array().unwrap().len(), 1);
}

#[test]
fn a_trend_keeps_the_latest_limit_points_of_each_context_and_filters_by_context() {
    let app = dashboard_app(500);

    let last_two = ok(
        &app,
        "/api/v1/tests/trend?item_path=tests.t1&item_variant=test_a&limit=2",
    );
    let on_a = json!({"p": last_two["series"][0]["points"]});
    assert_eq!(column(&on_a, "p", "session_h"), ["s2", "s3"]);
    let only_b = ok(
        &app,
        &format!("/api/v1/tests/trend?item_path=tests.t1&item_variant=test_a&context_h={B}"),
    );
    assert_eq!(column(&only_b, "series", "context_h"), [B]);
}

#[test]
fn a_trend_of_an_unknown_test_is_a_404_and_bad_parameters_are_400s() {
    let app = dashboard_app(500);

    for query in [
        "item_path=tests.t1&item_variant=test_z",
        "item_path=tests.t2&item_variant=test_a",
        "item_path=tests.t1&item_variant=test_b&context_h=bbbb1111bbbb1111bbbb1111bbbb1111",
    ] {
        let (status, body) = app.get(&format!("/api/v1/tests/trend?{query}"));
        assert_eq!(status, 404, "{query}: {body}");
        assert_has_message(&body);
    }
    let base = "/api/v1/tests/trend?item_path=tests.t1&item_variant=test_a";
    assert_bad_field(
        &app.get("/api/v1/tests/trend?item_path=tests.t1"),
        "item_variant",
    );
    assert_bad_field(
        &app.get("/api/v1/tests/trend?item_variant=test_a"),
        "item_path",
    );
    for limit in ["0", "10001", "abc", "-1"] {
        assert_bad_field(&app.get(&format!("{base}&limit={limit}")), "limit");
    }
    assert_eq!(app.get(&format!("{base}&limit=10000")).0, 200);
    assert_bad_field(&app.get(&format!("{base}&page=1")), "page");
    assert_bad_field(&app.get(&format!("{base}&item_path=x")), "item_path");
}

// ---------------------------------------------------------------- tags and summary

#[test]
fn tags_list_every_name_with_its_values_most_used_first() {
    let app = dashboard_app(500);

    let body = ok(&app, "/api/v1/tags");

    assert_eq!(
        body,
        json!({"tags": [
            {"name": "pipeline_branch", "values": [
                {"value": "main", "sessions": 2}, {"value": "develop", "sessions": 1}]},
            {"name": "pipeline_build_no", "values": [
                {"value": "1", "sessions": 2}, {"value": "2", "sessions": 1}]},
            {"name": "team", "values": [
                {"value": "core", "sessions": 2}, {"value": "web", "sessions": 1}]}
        ]})
    );
    assert_bad_field(&app.get("/api/v1/tags?name=team"), "name");
}

#[test]
fn tags_list_at_most_100_values_of_a_name() {
    let app = spawn_app();
    for n in 0..101 {
        let tags = json!({"build": format!("{n:03}"), "team": "core"});
        app.create(
            "/api/v1/sessions/",
            &session(&format!("s{n}"), "2024-01-01T00:00:00", "", tags),
        );
    }

    let body = ok(&app, "/api/v1/tags");

    let build = &body["tags"][0];
    assert_eq!(build["name"], "build");
    let values = build["values"].as_array().unwrap();
    assert_eq!(values.len(), 100);
    assert_eq!(values[0], json!({"value": "000", "sessions": 1}));
    assert_eq!(
        body["tags"][1]["values"],
        json!([{"value": "core", "sessions": 101}])
    );
}

#[test]
fn the_summary_counts_the_store_and_gives_its_first_and_last_run_dates() {
    let app = dashboard_app(500);

    let body = ok(&app, "/api/v1/summary");

    assert_eq!(
        body,
        json!({"metrics": 6, "sessions": 4, "contexts": 2, "components": 2, "tests": 2,
               "first_run_date": "2023-12-31T00:00:00",
               "last_run_date": "2024-01-02 09:30:00"})
    );
    assert_bad_field(&app.get("/api/v1/summary?x=1"), "x");
}

#[test]
fn an_empty_store_has_a_zero_summary_no_tags_no_runs_and_no_tests() {
    let app = spawn_app();

    assert_eq!(
        ok(&app, "/api/v1/summary"),
        json!({"metrics": 0, "sessions": 0, "contexts": 0, "components": 0, "tests": 0,
               "first_run_date": null, "last_run_date": null})
    );
    assert_eq!(ok(&app, "/api/v1/tags"), json!({"tags": []}));
    assert_eq!(app.get("/api/v1/runs"), (204, Value::Null));
    assert_eq!(app.get("/api/v1/tests?sort=hungriest"), (204, Value::Null));
    assert_eq!(app.get("/api/v1/runs/s1").0, 404);
}

#[test]
fn the_document_says_what_slowest_and_hungriest_rank_by() {
    let app = spawn_app();

    let doc = ok(&app, "/api/v1/openapi.json");

    let operation = &doc["paths"]["/api/v1/tests"]["get"];
    let sort = operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "sort")
        .unwrap();
    let text = sort["description"].as_str().unwrap();
    assert!(
        text.contains("largest total_time") && text.contains("largest mem_usage"),
        "{text}"
    );
    let tag = operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tag")
        .unwrap();
    assert_eq!(tag["schema"]["type"], "array");
    for path in [
        "/runs",
        "/runs/{session_h}",
        "/tests/trend",
        "/tags",
        "/summary",
    ] {
        assert!(
            doc["paths"][format!("/api/v1{path}")]["get"].is_object(),
            "{path}"
        );
    }
}
