//! docs/api.md's Execution context record and steps 1–2 of the pytest-monitor remote protocol.

use serde_json::json;

use crate::common::{assert_bad_field, assert_has_message, context, spawn_app};

#[test]
fn posting_a_context_returns_201_with_the_stored_context_including_h() {
    let app = spawn_app();
    let sent = context("e9188c68dd9ddeccd0a2f59422d16a2bf7337683");

    let (status, stored) = app.post_json("/api/v1/contexts/", &sent);

    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["h"], "e9188c68dd9ddeccd0a2f59422d16a2bf7337683");
    assert_eq!(stored, sent);
    assert_eq!(app.rows_in("contexts"), 1);
}

#[test]
fn a_context_without_cpu_vendor_is_stored_with_an_empty_vendor() {
    let app = spawn_app();
    let mut sent = context("no-vendor");
    sent.as_object_mut().unwrap().remove("cpu_vendor");

    let (status, stored) = app.post_json("/api/v1/contexts/", &sent);

    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["cpu_vendor"], "");
    let (_, listing) = app.get("/api/v1/contexts/");
    assert_eq!(listing["contexts"][0]["cpu_vendor"], "");
}

#[test]
fn an_integral_float_is_accepted_for_cpu_count_and_ram_total() {
    let app = spawn_app();
    let mut sent = context("float-counts");
    sent["cpu_count"] = json!(4.0);
    sent["ram_total"] = json!(16384.0);

    let (status, stored) = app.post_json("/api/v1/contexts/", &sent);

    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["cpu_count"], json!(4));
    assert_eq!(stored["ram_total"], json!(16384));
}

#[test]
fn a_fractional_or_negative_cpu_count_is_refused_and_nothing_is_stored() {
    let app = spawn_app();

    for value in [json!(4.5), json!(-1), json!("4"), json!(null)] {
        let mut sent = context("bad-count");
        sent["cpu_count"] = value.clone();
        let reply = app.post_json("/api/v1/contexts/", &sent);
        assert_bad_field(&reply, "cpu_count");
    }
    app.assert_nothing_stored();
}

#[test]
fn an_integer_cpu_frequency_is_accepted_as_pytest_monitor_may_send_either() {
    let app = spawn_app();
    let mut sent = context("int-frequency");
    sent["cpu_frequency"] = json!(3000);

    let (status, stored) = app.post_json("/api/v1/contexts/", &sent);

    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["cpu_frequency"].as_f64(), Some(3000.0));
}

#[test]
fn an_empty_or_missing_h_is_refused_and_nothing_is_stored() {
    let app = spawn_app();
    let mut missing = context("x");
    missing.as_object_mut().unwrap().remove("h");

    assert_bad_field(&app.post_json("/api/v1/contexts/", &context("")), "h");
    assert_bad_field(&app.post_json("/api/v1/contexts/", &missing), "h");
    assert_bad_field(
        &app.post_json("/api/v1/contexts/", &context(&"h".repeat(129))),
        "h",
    );
    app.assert_nothing_stored();
}

#[test]
fn re_posting_an_identical_context_answers_201_with_the_stored_context() {
    // pytest-xdist workers on one machine race to create the same context.
    let app = spawn_app();
    let sent = context("shared-by-workers");
    app.create("/api/v1/contexts/", &sent);

    let (status, stored) = app.post_json("/api/v1/contexts/", &sent);

    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored, sent);
    assert_eq!(app.rows_in("contexts"), 1);
}

#[test]
fn re_posting_a_context_with_different_content_under_the_same_h_answers_409_and_keeps_the_stored_one(
) {
    let app = spawn_app();
    let original = context("taken");
    app.create("/api/v1/contexts/", &original);
    let mut different = original.clone();
    different["machine_node"] = json!("another-host");

    let (status, reply) = app.post_json("/api/v1/contexts/", &different);

    assert_eq!(status, 409, "{reply}");
    assert_has_message(&reply);
    let (_, listing) = app.get("/api/v1/contexts/");
    assert_eq!(listing["contexts"], json!([original]));
}

#[test]
fn getting_contexts_by_a_matching_prefix_answers_200_with_a_contexts_list() {
    let app = spawn_app();
    app.create("/api/v1/contexts/", &context("abc111"));
    app.create("/api/v1/contexts/", &context("abc222"));
    app.create("/api/v1/contexts/", &context("xyz333"));

    let (status, body) = app.get("/api/v1/contexts/abc");

    assert_eq!(status, 200, "{body}");
    let hashes: Vec<&str> = body["contexts"]
        .as_array()
        .expect("a contexts list, which the plugin needs")
        .iter()
        .map(|c| c["h"].as_str().unwrap())
        .collect();
    assert_eq!(hashes, ["abc111", "abc222"]);
    assert_eq!(body["contexts"][0], context("abc111"));
    assert_eq!(body["total_page"], 1);
}

#[test]
fn getting_a_context_by_its_full_hash_answers_200_with_it() {
    let app = spawn_app();
    let h = "e9188c68dd9ddeccd0a2f59422d16a2bf7337683";
    app.create("/api/v1/contexts/", &context(h));

    let (status, body) = app.get(&format!("/api/v1/contexts/{h}"));

    assert_eq!(status, 200);
    assert_eq!(body["contexts"], json!([context(h)]));
}

#[test]
fn getting_contexts_by_a_prefix_nothing_matches_answers_204_with_no_body() {
    let app = spawn_app();
    app.create("/api/v1/contexts/", &context("abc111"));

    assert_eq!(
        app.get("/api/v1/contexts/abd"),
        (204, serde_json::Value::Null)
    );
    assert_eq!(
        app.get("/api/v1/contexts/abc1110"),
        (204, serde_json::Value::Null)
    );
    // The prefix is matched from the start of the hash, not anywhere in it.
    assert_eq!(
        app.get("/api/v1/contexts/bc1"),
        (204, serde_json::Value::Null)
    );
}

#[test]
fn percent_and_underscore_in_a_context_prefix_match_literally() {
    let app = spawn_app();
    app.create("/api/v1/contexts/", &context("ab%x"));
    app.create("/api/v1/contexts/", &context("ab_y"));
    app.create("/api/v1/contexts/", &context("abcd"));

    let (percent_status, percent) = app.get("/api/v1/contexts/ab%25");
    let (underscore_status, underscore) = app.get("/api/v1/contexts/ab_");

    assert_eq!(percent_status, 200, "{percent}");
    assert_eq!(percent["contexts"].as_array().unwrap().len(), 1);
    assert_eq!(percent["contexts"][0]["h"], "ab%x");
    assert_eq!(underscore_status, 200, "{underscore}");
    assert_eq!(underscore["contexts"].as_array().unwrap().len(), 1);
    assert_eq!(underscore["contexts"][0]["h"], "ab_y");
}

#[test]
fn listing_contexts_on_an_empty_database_answers_204() {
    let app = spawn_app();

    assert_eq!(app.get("/api/v1/contexts/"), (204, serde_json::Value::Null));
}

#[test]
fn the_pytest_monitor_session_start_handshake_succeeds() {
    // Steps 1–4 of docs/api.md's remote protocol, as the plugin performs them.
    let app = spawn_app();
    let h = "e9188c68dd9ddeccd0a2f59422d16a2bf7337683";

    let (lookup, _) = app.get(&format!("/api/v1//contexts/{h}"));
    assert_eq!(lookup, 204, "an unknown context must answer 204");
    let (created, stored) = app.post_json("/api/v1//contexts/", &context(h));
    assert_eq!(created, 201);
    assert_eq!(stored["h"], h, "the plugin reads h back");
    let (session_created, _) = app.post_json("/api/v1//sessions/", &crate::common::session("s1"));
    assert_eq!(session_created, 201);
    let mut m = crate::common::metric("test_handshake");
    m["context_h"] = json!(h);
    m["session_h"] = json!("s1");
    let (metric_created, _) = app.post_json("/api/v1//metrics/", &m);
    assert_eq!(metric_created, 201);

    // A second worker starting on the same machine finds the context.
    let (found, body) = app.get(&format!("/api/v1//contexts/{h}"));
    assert_eq!(found, 200);
    assert_eq!(body["contexts"][0]["h"], h);
}
