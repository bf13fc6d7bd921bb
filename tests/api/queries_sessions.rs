//! Metrics by session and by context, and the session tag filter of monitor-server-api
//! (`with_flags`, `restrict_flags`, `method`).

use serde_json::Value;

use crate::dataset::{
    assert_envelope, listed, listed_session, matching, seeded_app, CA, CB, S1, S2, S3, S4,
};
use crate::helpers::{assert_bad_field, TestApp};

/// `GET path` on a session listing: the hashes listed, `[]` for a 204; every session must be
/// listed exactly as stored, with its tags.
fn sessions(app: &TestApp, path: &str) -> Vec<String> {
    let (status, body) = app.get(path);
    match status {
        204 => {
            assert_eq!(body, Value::Null);
            vec![]
        }
        200 => {
            assert_envelope(&body, "sessions", &[]);
            body["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let h = s["session_h"].as_str().unwrap().to_owned();
                    assert_eq!(*s, listed_session(&h), "GET {path}");
                    h
                })
                .collect()
        }
        _ => panic!("GET {path} answered {status}: {body}"),
    }
}

#[test]
fn the_metrics_of_a_session_are_listed_in_the_order_stored() {
    let app = seeded_app();

    assert_eq!(
        listed(&app, &format!("/api/v1/sessions/{S2}/metrics")),
        [6, 7, 8, 9]
    );
    assert_eq!(
        listed(&app, &format!("/api/v1/sessions/{S1}/metrics/")),
        matching(|m| m.session_h == S1)
    );
}

#[test]
fn a_session_without_metrics_or_unknown_lists_nothing_with_204() {
    let app = seeded_app();

    assert!(listed(&app, &format!("/api/v1/sessions/{S4}/metrics")).is_empty());
    // The hash is exact: a prefix of S1 is not S1.
    assert!(listed(&app, "/api/v1/sessions/5e5510/metrics").is_empty());
}

#[test]
fn the_metrics_of_a_context_are_those_measured_on_that_machine() {
    let app = seeded_app();

    assert_eq!(
        listed(&app, &format!("/api/v1/contexts/{CB}/metrics")),
        [10, 11, 12]
    );
    assert_eq!(
        listed(&app, &format!("/api/v1/contexts/{CA}/metrics")),
        (1..=9).collect::<Vec<_>>()
    );
    assert!(listed(&app, "/api/v1/contexts/d8b2/metrics").is_empty());
}

#[test]
fn the_metrics_of_a_session_take_the_metric_filters_and_sort() {
    let app = seeded_app();

    assert_eq!(
        listed(
            &app,
            &format!("/api/v1/sessions/{S1}/metrics?kind=function&sort=mem_usage&order=desc")
        ),
        [3, 1, 2, 4]
    );
    assert_eq!(
        listed(
            &app,
            &format!("/api/v1/contexts/{CA}/metrics?session_h={S2}")
        ),
        [6, 7, 8, 9]
    );
}

#[test]
fn sessions_are_listed_by_hash_prefix() {
    let app = seeded_app();

    assert_eq!(sessions(&app, "/api/v1/sessions/5e55"), [S1, S2, S3, S4]);
    assert_eq!(sessions(&app, "/api/v1/sessions/5e5520"), [S2]);
    assert_eq!(sessions(&app, &format!("/api/v1/sessions/{S3}")), [S3]);
    assert!(sessions(&app, "/api/v1/sessions/ffff").is_empty());
    // Wildcards are text.
    assert!(sessions(&app, "/api/v1/sessions/5e55%25").is_empty());
    assert!(sessions(&app, "/api/v1/sessions/5e55_0").is_empty());
}

#[test]
fn with_flags_alone_lists_the_sessions_where_any_of_those_tags_is_set_to_something() {
    let app = seeded_app();

    assert_eq!(
        sessions(&app, "/api/v1/sessions/?with_flags=pipeline_branch"),
        [S1, S2, S3]
    );
    // S3's team is the empty string, which counts as not set.
    assert_eq!(sessions(&app, "/api/v1/sessions/?with_flags=team"), [S2]);
    assert_eq!(
        sessions(&app, "/api/v1/sessions/?with_flags=description,team"),
        [S1, S2]
    );
    assert!(sessions(&app, "/api/v1/sessions/?with_flags=no_such_tag").is_empty());
}

#[test]
fn restrict_flags_gives_the_values_of_the_flags_pairwise() {
    let app = seeded_app();

    assert_eq!(
        sessions(
            &app,
            "/api/v1/sessions/?with_flags=pipeline_branch&restrict_flags=main"
        ),
        [S1, S2]
    );
    assert_eq!(
        sessions(
            &app,
            "/api/v1/sessions/?with_flags=pipeline_branch&restrict_flags=release%2F2.0"
        ),
        [S3]
    );
    // A value of the wrong tag does not match, and values are exact.
    assert!(sessions(
        &app,
        "/api/v1/sessions/?with_flags=pipeline_build_no&restrict_flags=main"
    )
    .is_empty());
    assert!(sessions(
        &app,
        "/api/v1/sessions/?with_flags=pipeline_branch&restrict_flags=mai"
    )
    .is_empty());
}

#[test]
fn match_any_is_the_default_and_match_all_needs_every_condition() {
    let app = seeded_app();
    let flags = "with_flags=pipeline_branch,pipeline_build_no&restrict_flags=main,3";

    // main (S1, S2) or build 3 (S3).
    assert_eq!(
        sessions(&app, &format!("/api/v1/sessions/?{flags}")),
        [S1, S2, S3]
    );
    assert_eq!(
        sessions(&app, &format!("/api/v1/sessions/?{flags}&method=match_any")),
        [S1, S2, S3]
    );
    // main and build 3: no session.
    assert!(sessions(&app, &format!("/api/v1/sessions/?{flags}&method=match_all")).is_empty());
    assert_eq!(
        sessions(
            &app,
            "/api/v1/sessions/?with_flags=pipeline_branch,pipeline_build_no&restrict_flags=main,10&method=match_all"
        ),
        [S2]
    );
}

#[test]
fn a_flag_without_a_value_in_restrict_flags_means_set_to_anything_non_empty() {
    let app = seeded_app();

    // team must be non-empty (S2 only: S3's is empty), and the branch main.
    assert_eq!(
        sessions(
            &app,
            "/api/v1/sessions/?with_flags=team,pipeline_branch&restrict_flags=,main&method=match_all"
        ),
        [S2]
    );
    // Fewer values than flags: the missing ones are "non-empty".
    assert_eq!(
        sessions(
            &app,
            "/api/v1/sessions/?with_flags=pipeline_branch,team&restrict_flags=main&method=match_all"
        ),
        [S2]
    );
}

#[test]
fn the_tag_filter_combines_with_a_hash_prefix_and_pagination() {
    let app = seeded_app();

    assert_eq!(
        sessions(&app, "/api/v1/sessions/5e552?with_flags=pipeline_branch"),
        [S2]
    );
    let (status, page) = app.get("/api/v1/sessions/?with_flags=pipeline_branch&per_page=2&page=2");
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["sessions"][0], listed_session(S3));
    assert_eq!(page["total_page"], 2);
    assert_eq!(
        page["prev_url"],
        "/api/v1/sessions/?with_flags=pipeline_branch&per_page=2&page=1"
    );
}

#[test]
fn a_bad_method_or_an_unknown_session_parameter_is_a_400() {
    let app = seeded_app();

    let reason = assert_bad_field(
        &app.get("/api/v1/sessions/?with_flags=team&method=match_some"),
        "method",
    );
    assert!(reason.contains("match_all"), "{reason}");
    let reason = assert_bad_field(&app.get("/api/v1/sessions/?flags=team"), "flags");
    assert!(reason.contains("with_flags"), "{reason}");
    assert_bad_field(&app.get("/api/v1/sessions/5e55?colour=red"), "colour");
}

#[test]
fn sql_in_a_tag_filter_is_data() {
    let app = seeded_app();

    for path in [
        "/api/v1/sessions/?with_flags=team')%20OR%201=1%20--",
        "/api/v1/sessions/?with_flags=pipeline_branch&restrict_flags='%20OR%20'1'='1",
        "/api/v1/sessions/'%20OR%201=1%20--",
    ] {
        assert!(sessions(&app, path).is_empty(), "{path}");
    }
    assert_eq!(app.rows_in("sessions"), 4);
}

#[test]
fn flags_and_values_pair_by_position_even_around_an_empty_flag() {
    let app = seeded_app();

    // The empty first flag still takes the first value: pipeline_branch is paired with
    // release/2.0, as monitor-server-api zips the two lists.
    assert_eq!(
        sessions(
            &app,
            "/api/v1/sessions/?with_flags=,pipeline_branch&restrict_flags=main,release%2F2.0"
        ),
        [S3]
    );
}
