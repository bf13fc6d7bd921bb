//! `/filters`: metrics by item kind (`scope`) and by SCM reference prefix, and the sessions of an
//! SCM reference prefix.

use serde_json::{json, Value};

use crate::common::dataset::{
    assert_envelope, listed, listed_session, matching, seeded_app, S1, S2, S3,
};

#[test]
fn the_metrics_of_a_scope_are_those_of_that_kind_of_item() {
    let app = seeded_app();

    assert_eq!(listed(&app, "/api/v1/filters/scope/class/metrics"), [5]);
    assert_eq!(listed(&app, "/api/v1/filters/scope/module/metrics/"), [11]);
    assert_eq!(
        listed(&app, "/api/v1/filters/scope/function/metrics"),
        matching(|m| m.kind == "function")
    );
    assert!(listed(&app, "/api/v1/filters/scope/package/metrics").is_empty());
    // The kind is exact.
    assert!(listed(&app, "/api/v1/filters/scope/func/metrics").is_empty());
    assert!(listed(&app, "/api/v1/filters/scope/%25/metrics").is_empty());
}

#[test]
fn the_metrics_of_an_scm_prefix_are_those_of_the_sessions_whose_reference_starts_with_it() {
    let app = seeded_app();

    assert_eq!(
        listed(&app, "/api/v1/filters/scm/3a323/metrics"),
        matching(|m| m.session_h == S1 || m.session_h == S2)
    );
    assert_eq!(
        listed(&app, "/api/v1/filters/scm/3a32302bb/metrics"),
        [6, 7, 8, 9]
    );
    assert_eq!(
        listed(&app, "/api/v1/filters/scm/77E/metrics"),
        [10, 11, 12]
    );
    assert!(listed(&app, "/api/v1/filters/scm/3a32303/metrics").is_empty());
}

#[test]
fn wildcards_in_an_scm_prefix_are_text() {
    let app = seeded_app();

    for prefix in ["%25", "3a_23", "_", "%5C", "3a323%25bb"] {
        let path = format!("/api/v1/filters/scm/{prefix}/metrics");
        assert!(listed(&app, &path).is_empty(), "{path}");
        let path = format!("/api/v1/filters/scm/{prefix}/sessions");
        assert_eq!(app.get(&path), (204, Value::Null), "{path}");
    }
}

#[test]
fn scope_and_scm_listings_take_the_metric_filters_and_sort() {
    let app = seeded_app();

    assert_eq!(
        listed(
            &app,
            "/api/v1/filters/scope/function/metrics?component_prefix=db&sort=user_time&order=desc"
        ),
        [10, 9]
    );
    assert_eq!(
        listed(&app, "/api/v1/filters/scm/3a323/metrics?kind=class"),
        [5]
    );
}

#[test]
fn the_sessions_of_an_scm_prefix_are_listed_with_their_tags() {
    let app = seeded_app();

    let (status, body) = app.get("/api/v1/filters/scm/3a3230/sessions");

    assert_eq!(status, 200, "{body}");
    assert_envelope(&body, "sessions", &[]);
    assert_eq!(
        body,
        json!({"sessions": [listed_session(S1), listed_session(S2)], "prev_url": null, "next_url": null, "total_page": 1})
    );
    let (_, one) = app.get("/api/v1/filters/scm/77e1f00/sessions/");
    assert_eq!(one["sessions"], json!([listed_session(S3)]));
    let (_, page) = app.get("/api/v1/filters/scm/3/sessions?per_page=1&page=-1");
    assert_eq!(page["sessions"], json!([listed_session(S2)]));
    assert_eq!(
        page["prev_url"],
        "/api/v1/filters/scm/3/sessions?per_page=1&page=1"
    );
}

#[test]
fn sql_in_a_scope_or_scm_prefix_is_data() {
    let app = seeded_app();

    assert!(listed(
        &app,
        "/api/v1/filters/scope/function'%20OR%201=1%20--/metrics"
    )
    .is_empty());
    assert!(listed(&app, "/api/v1/filters/scm/'%20OR%201=1%20--/metrics").is_empty());
    assert_eq!(
        app.get("/api/v1/filters/scm/x')%20OR%20('1'='1/sessions"),
        (204, Value::Null)
    );
}
