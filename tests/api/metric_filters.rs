//! The query-string filters and sort of every metric listing (beyond monitor-server-api):
//! `session_h`, `context_h`, `component`, `component_prefix`, `item`, `item_variant`, `kind`,
//! `scm_ref`, `from`/`to`, `min_total_time`, `min_mem_usage`, `sort` + `order`, with `per_page`;
//! alone, together, across pages, and refused with a 400 naming the valid ones when unknown.

use monitor_server::routes::params::METRIC_FILTERS;

use crate::common::dataset::{
    all, listed, matching, numbers, ordered_by, seeded_app, seeded_app_with_page_size, walk_pages,
    Column, CA, CB, S1, S2, S3,
};
use crate::common::{assert_bad_field, TestApp};

/// Every metric listing route, with the metrics it lists unfiltered.
fn metric_listings() -> Vec<(String, Vec<usize>)> {
    vec![
        ("/api/v1/metrics/".into(), all()),
        (format!("/api/v1/sessions/{S2}/metrics"), vec![6, 7, 8, 9]),
        (format!("/api/v1/contexts/{CA}/metrics"), (1..=9).collect()),
        ("/api/v1/components/api/metrics".into(), vec![1, 2, 6]),
        ("/api/v1/components/metrics".into(), vec![5, 8, 12]),
        (
            "/api/v1/components/api/items/test_login/metrics".into(),
            vec![1, 2, 6],
        ),
        (
            "/api/v1/components/items/test_login/metrics".into(),
            vec![12],
        ),
        (
            "/api/v1/components/api/variants/test_login%5Buser%5D/metrics".into(),
            vec![1, 6],
        ),
        (
            "/api/v1/components/variants/test_login%5Buser%5D/metrics".into(),
            vec![12],
        ),
        ("/api/v1/items/test_login/metrics".into(), vec![1, 2, 6, 12]),
        (
            "/api/v1/items/like/_/metrics".into(),
            vec![1, 2, 3, 4, 6, 8, 9, 10, 11, 12],
        ),
        (
            "/api/v1/variants/test_login%5Buser%5D/metrics".into(),
            vec![1, 6, 12],
        ),
        (
            "/api/v1/variants/like/%5D/metrics".into(),
            vec![1, 2, 3, 4, 6, 7, 8, 9, 10, 12],
        ),
        (
            "/api/v1/filters/scope/function/metrics".into(),
            matching(|m| m.kind == "function"),
        ),
        (
            "/api/v1/filters/scm/3a323/metrics".into(),
            (1..=9).collect(),
        ),
    ]
}

/// The numeric fields `sort=` accepts, with their column.
const SORTABLE: [(&str, Column); 5] = [
    ("total_time", |m| m.total_time),
    ("user_time", |m| m.user_time),
    ("kernel_time", |m| m.kernel_time),
    ("cpu_usage", |m| m.cpu_usage),
    ("mem_usage", |m| m.mem_usage),
];

/// The metrics in item_start_time order (UTC), as the data set's comment explains.
const BY_START_TIME: [usize; 12] = [2, 1, 3, 4, 5, 7, 6, 8, 9, 10, 11, 12];

fn metrics(app: &TestApp, query: &str) -> Vec<usize> {
    listed(app, &format!("/api/v1/metrics/?{query}"))
}

#[test]
fn each_exact_text_filter_alone_selects_the_metrics_with_that_value() {
    let app = seeded_app();
    let cases: Vec<(String, Vec<usize>)> = vec![
        (format!("session_h={S1}"), matching(|m| m.session_h == S1)),
        (format!("context_h={CB}"), matching(|m| m.context_h == CB)),
        ("component=api".into(), matching(|m| m.component == "api")),
        (
            "component=db%2Fcore".into(),
            matching(|m| m.component == "db/core"),
        ),
        (
            "item=test_login".into(),
            matching(|m| m.item == "test_login"),
        ),
        ("item=test_back%5Cslash".into(), vec![8]),
        ("item_variant=test_login%5Buser%5D".into(), vec![1, 6, 12]),
        ("kind=class".into(), vec![5]),
        ("kind=module".into(), vec![11]),
        ("scm_ref=3a32301aa".into(), matching(|m| m.session_h == S1)),
        ("scm_ref=77e1f00".into(), matching(|m| m.session_h == S3)),
    ];

    for (query, expected) in cases {
        assert_eq!(metrics(&app, &query), expected, "?{query}");
        assert!(!expected.is_empty(), "?{query}: a case that proves nothing");
    }
}

#[test]
fn exact_filters_are_exact_not_prefixes_or_patterns() {
    let app = seeded_app();

    for query in [
        "session_h=5e5510",
        "component=ap",
        "component=API",
        "component=api%25",
        "item=test_%25",
        "item_variant=test_login",
        "kind=Function",
        // scm_ref is exact here; /filters/scm/<prefix> is the prefix match.
        "scm_ref=3a323",
    ] {
        assert!(metrics(&app, query).is_empty(), "?{query}");
    }
}

#[test]
fn an_empty_component_filter_selects_the_metrics_without_a_component() {
    let app = seeded_app();

    assert_eq!(metrics(&app, "component="), [5, 8, 12]);
}

#[test]
fn component_prefix_matches_the_start_in_either_ascii_case_with_wildcards_as_text() {
    let app = seeded_app();

    assert_eq!(
        metrics(&app, "component_prefix=api"),
        matching(|m| m.component.starts_with("api"))
    );
    assert_eq!(metrics(&app, "component_prefix=API"), [1, 2, 3, 4, 6, 7]);
    assert_eq!(metrics(&app, "component_prefix=api_"), [3]);
    assert_eq!(metrics(&app, "component_prefix=db%2F"), [9, 10, 11]);
    assert!(metrics(&app, "component_prefix=%25").is_empty());
    assert!(metrics(&app, "component_prefix=_").is_empty());
    assert!(metrics(&app, "component_prefix=%5C").is_empty());
    // The empty prefix is every metric, the empty component included.
    assert_eq!(metrics(&app, "component_prefix="), all());
}

#[test]
fn min_total_time_and_min_mem_usage_keep_the_metrics_at_or_above_the_threshold() {
    let app = seeded_app();

    assert_eq!(
        metrics(&app, "min_total_time=2.5"),
        matching(|m| m.total_time >= 2.5)
    );
    assert_eq!(metrics(&app, "min_total_time=6"), [11]);
    assert_eq!(metrics(&app, "min_total_time=0"), all());
    assert_eq!(metrics(&app, "min_mem_usage=30"), [3, 5, 8, 10]);
    // Memory can be negative, and so can its threshold; exponents are numbers too.
    assert_eq!(
        metrics(&app, "min_mem_usage=-1"),
        matching(|m| m.mem_usage >= -1.0)
    );
    assert_eq!(metrics(&app, "min_mem_usage=1e2"), [10]);
    assert!(metrics(&app, "min_total_time=6.01").is_empty());
}

#[test]
fn from_and_to_bound_item_start_time_inclusively_in_utc() {
    let app = seeded_app();

    assert_eq!(
        metrics(&app, "from=2021-03-02T00:00:00"),
        [6, 7, 8, 9, 10, 11, 12]
    );
    assert_eq!(metrics(&app, "to=2021-03-01T08:00:01"), [1, 2]);
    // 7 started at 07:59:59Z and 9 at 08:00:04Z, whatever offset they were sent with.
    assert_eq!(
        metrics(&app, "from=2021-03-02T08:00:00Z&to=2021-03-02T08:00:03"),
        [6, 8]
    );
    assert!(metrics(&app, "from=2021-03-03T00:00:00&to=2021-03-02T00:00:00").is_empty());
}

#[test]
fn from_and_to_accept_utc_offsets_and_fractions() {
    let app = seeded_app();

    // 09:59:59+02:00 is 07:59:59Z: metric 7 is included. `+` must be sent as %2B.
    assert_eq!(
        metrics(
            &app,
            "from=2021-03-02T09:59:59%2B02:00&to=2021-03-02T10:00:03.5%2B02:00"
        ),
        [6, 7, 8]
    );
    assert_eq!(
        metrics(
            &app,
            "from=2021-03-02T06:00:03.000001-02:00&to=2021-03-02T08:00:04Z"
        ),
        [9]
    );
    assert_eq!(
        metrics(
            &app,
            "from=2021-03-01T08:00:00.5&to=2021-03-01T08:00:00.500000"
        ),
        [2]
    );
}

#[test]
fn from_and_to_accept_a_space_instead_of_t() {
    let app = seeded_app();

    assert_eq!(
        metrics(&app, "from=2021-03-01%2008:00:04&to=2021-03-01+08:00:07"),
        [3, 4]
    );
}

#[test]
fn an_unencoded_plus_in_an_offset_is_a_space_and_is_refused_rather_than_misread() {
    let app = seeded_app();

    let reason = assert_bad_field(
        &app.get("/api/v1/metrics/?from=2021-03-02T09:59:59+02:00"),
        "from",
    );

    assert!(reason.contains("ISO 8601"), "{reason}");
}

#[test]
fn sort_orders_by_each_numeric_field_both_ways_with_ties_in_the_order_stored() {
    let app = seeded_app();

    for (field, key) in SORTABLE {
        assert_eq!(
            metrics(&app, &format!("sort={field}")),
            ordered_by(&all(), key, false),
            "sort={field}"
        );
        assert_eq!(
            metrics(&app, &format!("sort={field}&order=asc")),
            ordered_by(&all(), key, false),
            "sort={field}&order=asc"
        );
        assert_eq!(
            metrics(&app, &format!("order=desc&sort={field}")),
            ordered_by(&all(), key, true),
            "sort={field}&order=desc"
        );
    }
}

#[test]
fn sort_by_item_start_time_follows_the_instant_not_the_text() {
    let app = seeded_app();

    assert_eq!(metrics(&app, "sort=item_start_time"), BY_START_TIME);
    let mut newest_first = BY_START_TIME.to_vec();
    newest_first.reverse();
    assert_eq!(
        metrics(&app, "sort=item_start_time&order=desc"),
        newest_first
    );
}

#[test]
fn every_filter_combines_with_the_others() {
    let app = seeded_app();

    assert_eq!(
        metrics(
            &app,
            &format!(
                "session_h={S1}&context_h={CA}&component_prefix=api&kind=function\
                 &scm_ref=3a32301aa&min_total_time=0.3&min_mem_usage=9\
                 &from=2021-03-01T08:00:01&to=2021-03-01T09:00:00"
            )
        ),
        [1, 3]
    );
    assert_eq!(
        metrics(
            &app,
            "component=api&item=test_login&item_variant=test_login%5Buser%5D"
        ),
        [1, 6]
    );
    assert!(metrics(&app, &format!("session_h={S1}&context_h={CB}")).is_empty());
}

#[test]
fn filters_sort_and_per_page_walk_together_with_links_that_keep_them() {
    let app = seeded_app();
    let query = "component_prefix=api&min_mem_usage=0&sort=mem_usage&order=desc&per_page=2";

    let pages = walk_pages(&app, &format!("/api/v1/metrics/?{query}"), query);

    let pages: Vec<Vec<usize>> = pages.iter().map(numbers).collect();
    assert_eq!(pages, [vec![3, 6], vec![1, 2], vec![7]]);
    let (status, last) = app.get(&format!("/api/v1/metrics/?{query}&page=-1"));
    assert_eq!(status, 200);
    assert_eq!(numbers(&last), [7]);
    assert_eq!(last["prev_url"], format!("/api/v1/metrics/?{query}&page=2"));
    let (past, _) = app.get(&format!("/api/v1/metrics/?{query}&page=4"));
    assert_eq!(past, 404);
}

#[test]
fn filters_and_sort_apply_with_the_server_page_size_too() {
    let app = seeded_app_with_page_size(3);

    let pages = walk_pages(
        &app,
        "/api/v1/metrics/?kind=function&sort=item_start_time&order=desc",
        "kind=function&sort=item_start_time&order=desc",
    );

    let in_order: Vec<usize> = pages.iter().flat_map(numbers).collect();
    let expected: Vec<usize> = BY_START_TIME
        .iter()
        .rev()
        .copied()
        .filter(|n| ![5, 11].contains(n))
        .collect();
    assert_eq!(in_order, expected);
    assert_eq!(pages.len(), 4);
}

#[test]
fn every_metric_listing_takes_the_filters_sort_and_paging() {
    let app = seeded_app();

    for (path, unfiltered) in metric_listings() {
        // Unfiltered, the route lists what it should.
        assert_eq!(listed(&app, &path), unfiltered, "{path}");
        // Filtered and sorted: memory at least 5, biggest total_time first.
        let query = "min_mem_usage=5&sort=total_time&order=desc&per_page=2";
        let keep: Vec<usize> = unfiltered
            .iter()
            .copied()
            .filter(|n| crate::common::dataset::METRICS[n - 1].mem_usage >= 5.0)
            .collect();
        let expected = ordered_by(&keep, |m| m.total_time, true);
        let found: Vec<usize> = if expected.is_empty() {
            listed(&app, &format!("{path}?{query}"))
        } else {
            walk_pages(&app, &format!("{path}?{query}"), query)
                .iter()
                .flat_map(numbers)
                .collect()
        };
        assert_eq!(found, expected, "{path}?{query}");
    }
}

#[test]
fn an_unknown_filter_is_a_400_naming_every_valid_parameter() {
    let app = seeded_app();

    for (path, _) in metric_listings() {
        let reply = app.get(&format!("{path}?colour=red"));
        let reason = assert_bad_field(&reply, "colour");
        for name in METRIC_FILTERS.iter().chain(&["page", "per_page"]) {
            assert!(
                reason.contains(name),
                "{path}: `{name}` not named in {reason}"
            );
        }
    }
    // A misspelt filter is refused, not ignored.
    assert_bad_field(&app.get("/api/v1/metrics/?min_total=1"), "min_total");
    assert_bad_field(&app.get("/api/v1/metrics/?Component=api"), "Component");
}

#[test]
fn an_unknown_sort_field_is_a_400_naming_the_sortable_ones() {
    let app = seeded_app();

    for field in [
        "item",
        "component",
        "total",
        "total_time;DROP%20TABLE%20metrics",
        "m.id",
        "",
    ] {
        let reason = assert_bad_field(&app.get(&format!("/api/v1/metrics/?sort={field}")), "sort");
        for (name, _) in SORTABLE {
            assert!(reason.contains(name), "sort={field}: {reason}");
        }
        assert!(reason.contains("item_start_time"), "sort={field}: {reason}");
    }
    assert_eq!(app.rows_in("metrics"), 12);
}

#[test]
fn an_order_other_than_asc_or_desc_or_without_sort_is_a_400() {
    let app = seeded_app();

    let reason = assert_bad_field(
        &app.get("/api/v1/metrics/?sort=total_time&order=up"),
        "order",
    );
    assert!(
        reason.contains("asc") && reason.contains("desc"),
        "{reason}"
    );
    assert_bad_field(
        &app.get("/api/v1/metrics/?sort=total_time&order=DESC"),
        "order",
    );
    assert_bad_field(&app.get("/api/v1/metrics/?order=desc"), "order");
}

#[test]
fn a_filter_that_is_not_a_number_or_a_time_is_a_400_naming_it() {
    let app = seeded_app();

    for (query, field) in [
        ("min_total_time=fast", "min_total_time"),
        ("min_total_time=", "min_total_time"),
        ("min_mem_usage=NaN", "min_mem_usage"),
        ("min_mem_usage=inf", "min_mem_usage"),
        ("min_total_time=1%20OR%201=1", "min_total_time"),
        ("from=yesterday", "from"),
        ("from=", "from"),
        ("to=2021-02-30T00:00:00", "to"),
        ("to=2021-03-01T08:00:00%2B24:00", "to"),
    ] {
        assert_bad_field(&app.get(&format!("/api/v1/metrics/?{query}")), field);
    }
}

#[test]
fn a_filter_given_twice_is_a_400() {
    let app = seeded_app();

    assert_bad_field(
        &app.get("/api/v1/metrics/?component=api&component=db"),
        "component",
    );
    assert_bad_field(
        &app.get("/api/v1/metrics/?sort=total_time&sort=mem_usage"),
        "sort",
    );
    assert_bad_field(
        &app.get("/api/v1/metrics/?per_page=2&per_page=3"),
        "per_page",
    );
}

#[test]
fn sql_in_a_filter_value_selects_nothing_instead_of_everything() {
    let app = seeded_app();

    for query in [
        "component='%20OR%201=1%20--",
        "component=api'%20OR%20'1'='1",
        "session_h=x%22%20OR%20%221%22=%221",
        "item=test_login'--",
        "kind=function'%20OR%20kind%20LIKE%20'%25",
        "component_prefix='%20OR%201=1%20--",
        "scm_ref='%20OR%20''='",
    ] {
        assert!(metrics(&app, query).is_empty(), "?{query}");
    }
    assert_eq!(metrics(&app, ""), all());
}
