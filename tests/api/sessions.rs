//! Sessions: docs/api.md's Session record (description as tags, idempotent creation, prefix
//! lookup), the metrics of a session and of a context, and the session tag filter of
//! monitor-server-api (`with_flags`, `restrict_flags`, `method`).

use serde_json::{json, Value};

use crate::common::dataset::{
    assert_envelope, listed, listed_session, matching, seeded_app, CA, CB, S1, S2, S3, S4,
};
use crate::common::{assert_bad_field, assert_has_message, session, spawn_app, TestApp};

#[test]
fn posting_a_session_returns_201_with_the_stored_session_and_its_tags() {
    let app = spawn_app();

    let (status, stored) = app.post_json("/api/v1/sessions/", &session("s1"));

    assert_eq!(status, 201, "{stored}");
    assert_eq!(
        stored,
        json!({
            "session_h": "s1",
            "run_date": "2021-03-04T10:11:00.000001",
            "scm_ref": "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
            "description": {
                "description": "nightly run",
                "pipeline_branch": "main",
                "pipeline_build_no": "1234",
                "__ci__": "gitlab"
            },
            "tags": [
                {"name": "description", "value": "nightly run"},
                {"name": "pipeline_branch", "value": "main"},
                {"name": "pipeline_build_no", "value": "1234"},
                {"name": "__ci__", "value": "gitlab"}
            ]
        })
    );
    assert_eq!(app.rows_in("sessions"), 1);
    assert_eq!(app.rows_in("session_tags"), 4);
}

#[test]
fn a_listed_session_has_its_fields_in_the_documented_order() {
    let app = spawn_app();
    app.create("/api/v1/sessions/", &session("s1"));

    let (status, listing) = app.get("/api/v1/sessions/");

    assert_eq!(status, 200);
    let keys: Vec<&str> = listing["sessions"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["session_h", "run_date", "scm_ref", "description", "tags"]
    );
}

#[test]
fn the_description_object_round_trips_with_its_key_order() {
    let app = spawn_app();
    let mut sent = session("ordered");
    // Keys deliberately out of alphabetical order, with values of every JSON kind.
    sent["description"] = serde_json::from_str(
        r#"{"zeta": "last letter", "alpha": 1, "mid": 2.5, "flag": true, "none": null,
            "list": [1, "a"], "nested": {"b": 1, "a": 2}}"#,
    )
    .unwrap();

    app.create("/api/v1/sessions/", &sent);
    let (_, listing) = app.get("/api/v1/sessions/");

    let description = &listing["sessions"][0]["description"];
    assert_eq!(description, &sent["description"]);
    let keys: Vec<&str> = description
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["zeta", "alpha", "mid", "flag", "none", "list", "nested"]
    );
    let nested: Vec<&str> = description["nested"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(nested, ["b", "a"]);
}

#[test]
fn tags_are_listed_as_name_value_pairs_in_the_order_sent() {
    let app = spawn_app();
    let mut sent = session("tagged");
    sent["description"] = json!({"zeta": "z", "pipeline_build_no": 42, "alpha": "a"});

    app.create("/api/v1/sessions/", &sent);
    let (_, listing) = app.get("/api/v1/sessions/");

    assert_eq!(
        listing["sessions"][0]["tags"],
        json!([
            {"name": "zeta", "value": "z"},
            {"name": "pipeline_build_no", "value": "42"},
            {"name": "alpha", "value": "a"}
        ])
    );
}

#[test]
fn a_session_without_a_description_has_no_tags() {
    let app = spawn_app();
    let mut sent = session("bare");
    sent.as_object_mut().unwrap().remove("description");

    let (status, stored) = app.post_json("/api/v1/sessions/", &sent);

    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["description"], json!({}));
    assert_eq!(stored["tags"], json!([]));
}

#[test]
fn an_empty_scm_ref_is_accepted() {
    let app = spawn_app();
    let mut sent = session("no-scm");
    sent["scm_ref"] = json!("");

    let (status, stored) = app.post_json("/api/v1/sessions/", &sent);

    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["scm_ref"], "");
}

#[test]
fn a_description_that_is_not_an_object_is_refused_and_nothing_is_stored() {
    let app = spawn_app();

    for value in [
        json!("nightly run"),
        json!(["a", "b"]),
        json!(7),
        json!(true),
        Value::Null,
    ] {
        let mut sent = session("s1");
        sent["description"] = value.clone();
        let reply = app.post_json("/api/v1/sessions/", &sent);
        assert_bad_field(&reply, "description");
    }
    app.assert_nothing_stored();
}

#[test]
fn a_session_with_an_empty_hash_or_a_bad_run_date_is_refused_and_nothing_is_stored() {
    let app = spawn_app();
    let mut bad_date = session("s1");
    bad_date["run_date"] = json!("2021-02-30T10:00:00");

    assert_bad_field(
        &app.post_json("/api/v1/sessions/", &session("")),
        "session_h",
    );
    assert_bad_field(&app.post_json("/api/v1/sessions/", &bad_date), "run_date");
    app.assert_nothing_stored();
}

#[test]
fn a_run_date_is_returned_exactly_as_sent() {
    let app = spawn_app();
    let mut sent = session("s1");
    sent["run_date"] = json!("2021-03-04 10:11:00+05:30");

    let (status, stored) = app.post_json("/api/v1/sessions/", &sent);

    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["run_date"], "2021-03-04 10:11:00+05:30");
}

#[test]
fn re_posting_an_identical_session_answers_201_with_the_stored_session() {
    let app = spawn_app();
    let first = app.create("/api/v1/sessions/", &session("s1"));

    let (status, again) = app.post_json("/api/v1/sessions/", &session("s1"));

    assert_eq!(status, 201, "{again}");
    assert_eq!(again, first);
    assert_eq!(app.rows_in("sessions"), 1);
    assert_eq!(app.rows_in("session_tags"), 4);
}

#[test]
fn re_posting_a_session_with_different_content_answers_409_and_keeps_the_stored_one() {
    let app = spawn_app();
    let original = app.create("/api/v1/sessions/", &session("s1"));
    let mut changed_tag = session("s1");
    changed_tag["description"]["pipeline_build_no"] = json!("1235");
    let mut changed_ref = session("s1");
    changed_ref["scm_ref"] = json!("0000000000000000000000000000000000000000");

    for different in [changed_tag, changed_ref] {
        let (status, reply) = app.post_json("/api/v1/sessions/", &different);
        assert_eq!(status, 409, "{reply}");
        assert_has_message(&reply);
    }

    let (_, listing) = app.get("/api/v1/sessions/");
    assert_eq!(listing["sessions"], json!([original]));
    assert_eq!(app.rows_in("session_tags"), 4);
}

#[test]
fn getting_sessions_by_prefix_answers_200_for_a_match_and_204_for_none() {
    let app = spawn_app();
    app.create("/api/v1/sessions/", &session("0041724ff4e0"));
    app.create("/api/v1/sessions/", &session("0041aaaa"));
    app.create("/api/v1/sessions/", &session("9999"));

    let (status, found) = app.get("/api/v1/sessions/0041");
    let (exact_status, exact) = app.get("/api/v1/sessions/0041724ff4e0/");
    let none = app.get("/api/v1/sessions/0042");

    assert_eq!(status, 200, "{found}");
    let hashes: Vec<&str> = found["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_h"].as_str().unwrap())
        .collect();
    assert_eq!(hashes, ["0041724ff4e0", "0041aaaa"]);
    assert_eq!(exact_status, 200);
    assert_eq!(exact["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(none, (204, Value::Null));
}

#[test]
fn percent_and_underscore_in_a_session_prefix_match_literally() {
    let app = spawn_app();
    app.create("/api/v1/sessions/", &session("s%1"));
    app.create("/api/v1/sessions/", &session("s_2"));
    app.create("/api/v1/sessions/", &session("sx3"));

    let (_, percent) = app.get("/api/v1/sessions/s%25");
    let (_, underscore) = app.get("/api/v1/sessions/s_");

    assert_eq!(percent["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(percent["sessions"][0]["session_h"], "s%1");
    assert_eq!(underscore["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(underscore["sessions"][0]["session_h"], "s_2");
}

#[test]
fn listing_sessions_on_an_empty_database_answers_204() {
    let app = spawn_app();

    assert_eq!(app.get("/api/v1/sessions/"), (204, Value::Null));
}

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
fn with_tags_is_with_flags_under_the_name_the_official_client_sends() {
    let app = seeded_app();

    assert_eq!(
        sessions(
            &app,
            "/api/v1/sessions/?with_tags=pipeline_branch&restrict_flags=main"
        ),
        [S1, S2]
    );
    assert_eq!(
        sessions(&app, "/api/v1/sessions/?with_tags=description,team"),
        [S1, S2]
    );
    assert_eq!(
        sessions(
            &app,
            "/api/v1/sessions/?with_tags=team&with_flags=team&method=match_all"
        ),
        [S2]
    );
    assert_bad_field(
        &app.get("/api/v1/sessions/?with_tags=team&with_flags=description"),
        "with_tags",
    );
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
