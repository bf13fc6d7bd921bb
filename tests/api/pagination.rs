//! docs/api.md's Pagination: pages from 1, negative pages from the end, `per_page`, the envelope's
//! links, and the 204/404/400 answers around it.

use serde_json::{json, Value};

use crate::common::{
    assert_bad_field, assert_has_message, context, metric, spawn_app_with_page_size, TestApp,
};

/// A server with 2 rows per page holding the metrics `m1` .. `m5`.
fn app_with_five_metrics() -> TestApp {
    let app = spawn_app_with_page_size(2);
    for n in 1..=5 {
        app.create("/api/v1/metrics/", &metric(&format!("m{n}")));
    }
    app
}

/// The `item` of each metric on a page.
fn items(page: &Value) -> Vec<&str> {
    page["metrics"]
        .as_array()
        .unwrap_or_else(|| panic!("no metrics list in {page}"))
        .iter()
        .map(|m| m["item"].as_str().unwrap())
        .collect()
}

#[test]
fn the_first_page_is_served_by_default_and_links_only_forward() {
    let app = app_with_five_metrics();

    let (status, page) = app.get("/api/v1/metrics/");

    assert_eq!(status, 200);
    assert_eq!(items(&page), ["m1", "m2"]);
    assert_eq!(page["total_page"], 3);
    assert_eq!(page["next_url"], "/api/v1/metrics/?page=2");
    assert_eq!(page.get("prev_url"), Some(&Value::Null), "{page}");
    assert_eq!(app.get("/api/v1/metrics/?page=1"), (status, page));
}

#[test]
fn a_middle_page_links_both_ways() {
    let app = app_with_five_metrics();

    let (status, page) = app.get("/api/v1/metrics/?page=2");

    assert_eq!(status, 200);
    assert_eq!(items(&page), ["m3", "m4"]);
    assert_eq!(page["total_page"], 3);
    assert_eq!(page["prev_url"], "/api/v1/metrics/?page=1");
    assert_eq!(page["next_url"], "/api/v1/metrics/?page=3");
}

#[test]
fn the_last_page_links_only_back() {
    let app = app_with_five_metrics();

    let (status, page) = app.get("/api/v1/metrics/?page=3");

    assert_eq!(status, 200);
    assert_eq!(items(&page), ["m5"]);
    assert_eq!(page["total_page"], 3);
    assert_eq!(page["prev_url"], "/api/v1/metrics/?page=2");
    assert_eq!(page.get("next_url"), Some(&Value::Null), "{page}");
}

#[test]
fn the_envelope_has_exactly_the_documented_keys() {
    let app = app_with_five_metrics();

    let (_, page) = app.get("/api/v1/metrics/?page=2");

    let keys: Vec<&str> = page
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["metrics", "prev_url", "next_url", "total_page"]);
}

#[test]
fn negative_pages_count_from_the_end() {
    let app = app_with_five_metrics();

    let last = app.get("/api/v1/metrics/?page=-1");
    let first = app.get("/api/v1/metrics/?page=-3");

    assert_eq!(last.0, 200);
    assert_eq!(last, app.get("/api/v1/metrics/?page=3"));
    assert_eq!(items(&last.1), ["m5"]);
    assert_eq!(first.0, 200);
    assert_eq!(items(&first.1), ["m1", "m2"]);
}

#[test]
fn a_page_past_either_end_answers_a_json_404() {
    let app = app_with_five_metrics();

    for page in ["4", "-4", "1000", "-1000"] {
        let (status, body) = app.get(&format!("/api/v1/metrics/?page={page}"));
        assert_eq!(status, 404, "page={page}: {body}");
        assert_has_message(&body);
    }
}

#[test]
fn page_zero_or_a_page_that_is_not_an_integer_answers_400() {
    let app = app_with_five_metrics();

    for page in ["0", "abc", "1.5", "", "-0", "99999999999999999999999"] {
        let reply = app.get(&format!("/api/v1/metrics/?page={page}"));
        assert_bad_field(&reply, "page");
    }
}

#[test]
fn per_page_overrides_the_server_page_size() {
    let app = app_with_five_metrics();

    let (status, page) = app.get("/api/v1/metrics/?per_page=1&page=4");
    let (_, all) = app.get("/api/v1/metrics/?per_page=10000");

    assert_eq!(status, 200);
    assert_eq!(page["total_page"], 5);
    assert_eq!(items(&page), ["m4"]);
    assert_eq!(page["prev_url"], "/api/v1/metrics/?per_page=1&page=3");
    assert_eq!(page["next_url"], "/api/v1/metrics/?per_page=1&page=5");
    assert_eq!(all["total_page"], 1);
    assert_eq!(items(&all), ["m1", "m2", "m3", "m4", "m5"]);
}

#[test]
fn per_page_outside_one_to_ten_thousand_answers_400() {
    let app = app_with_five_metrics();

    for per_page in ["0", "10001", "-1", "many"] {
        let reply = app.get(&format!("/api/v1/metrics/?per_page={per_page}"));
        assert_bad_field(&reply, "per_page");
    }
}

#[test]
fn page_links_keep_every_other_query_parameter() {
    let app = app_with_five_metrics();

    let (status, page) = app.get("/api/v1/metrics/?per_page=2&page=2&kind=function");

    assert_eq!(status, 200);
    assert_eq!(
        page["prev_url"],
        "/api/v1/metrics/?per_page=2&page=1&kind=function"
    );
    assert_eq!(
        page["next_url"],
        "/api/v1/metrics/?per_page=2&page=3&kind=function"
    );
    // Following a link lands on the page it names.
    let next = page["next_url"].as_str().unwrap();
    let (next_status, next_page) = app.get(next);
    assert_eq!(next_status, 200);
    assert_eq!(items(&next_page), ["m5"]);
}

#[test]
fn page_links_are_relative_and_well_formed_without_a_trailing_slash_in_the_request() {
    let app = app_with_five_metrics();

    let (_, page) = app.get("/api/v1//metrics?page=2");

    assert_eq!(page["prev_url"], "/api/v1/metrics/?page=1");
    assert_eq!(page["next_url"], "/api/v1/metrics/?page=3");
}

#[test]
fn a_single_page_carries_both_links_as_null() {
    let app = app_with_five_metrics();

    let (status, page) = app.get("/api/v1/metrics/?per_page=10");

    assert_eq!(status, 200);
    assert_eq!(page["total_page"], 1);
    assert_eq!(page.get("prev_url"), Some(&Value::Null), "{page}");
    assert_eq!(page.get("next_url"), Some(&Value::Null), "{page}");
}

#[test]
fn links_below_a_collection_have_no_slash_before_the_query_as_monitor_server_api_writes_them() {
    let app = app_with_five_metrics();

    let (_, page) = app.get("/api/v1/filters/scope/function/metrics/?page=2");

    assert_eq!(
        page["prev_url"],
        "/api/v1/filters/scope/function/metrics?page=1"
    );
    let next = page["next_url"].as_str().unwrap();
    assert_eq!(next, "/api/v1/filters/scope/function/metrics?page=3");
    assert_eq!(app.get(next).0, 200);
}

#[test]
fn an_empty_collection_answers_204_with_no_body() {
    let app = spawn_app_with_page_size(2);

    for path in [
        "/api/v1/metrics/",
        "/api/v1/metrics/?page=1",
        "/api/v1/metrics/?page=-1",
        "/api/v1/contexts/",
        "/api/v1/sessions/",
    ] {
        assert_eq!(app.get(path), (204, Value::Null), "{path}");
    }
}

#[test]
fn context_listings_are_paginated_too() {
    let app = spawn_app_with_page_size(2);
    for h in ["c1", "c2", "c3"] {
        app.create("/api/v1/contexts/", &context(h));
    }

    let (status, page) = app.get("/api/v1/contexts/c?page=-1");

    assert_eq!(status, 200);
    assert_eq!(page["contexts"], json!([context("c3")]));
    assert_eq!(page["total_page"], 2);
    assert_eq!(page["prev_url"], "/api/v1/contexts/c?page=1");
}
