//! docs/api.md's Metric record: both spellings, numbers, lengths, times, and the order of listing.

use serde_json::{json, Value};

use crate::common::{assert_bad_field, metric, metric_with, seed_metric, spawn_app};

#[test]
fn posting_a_metric_with_the_seed_field_names_returns_201_and_lists_it_with_pytest_monitor_names() {
    // Arrange
    let app = spawn_app();

    // Act
    let (status, stored) = app.post_json("/api/v1/metrics/", &seed_metric());
    let (list_status, listing) = app.get("/api/v1/metrics/");

    // Assert: the seed's example response, field for field and in its order.
    let expected = json!({
        "session_h": "0041724ff4e0adac62b70b4f810c79fc5ad8ba5b",
        "context_h": "e9188c68dd9ddeccd0a2f59422d16a2bf7337683",
        "item_start_time": "2020-12-04T23:18:15.661016",
        "item_path": "tests.test_file",
        "item": "test_that",
        "item_variant": "test_that[]",
        "item_fs_loc": "tests/test_file.py",
        "kind": "function",
        "component": "test_component",
        "total_time": 0.0,
        "user_time": 0.0,
        "kernel_time": 0.0,
        "cpu_usage": 0.0,
        "mem_usage": 0.0
    });
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored, expected);
    assert_eq!(list_status, 200);
    assert_eq!(
        listing,
        json!({"metrics": [expected], "prev_url": null, "next_url": null, "total_page": 1})
    );
    let keys: Vec<&String> = listing["metrics"][0].as_object().unwrap().keys().collect();
    let expected_keys: Vec<&String> = expected.as_object().unwrap().keys().collect();
    assert_eq!(keys, expected_keys);
}

#[test]
fn posting_a_metric_with_pytest_monitor_field_names_returns_201_with_the_stored_record() {
    let app = spawn_app();
    let sent = metric("test_pytest_monitor");

    let (status, stored) = app.post_json("/api/v1/metrics/", &sent);

    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored, sent);
    let (_, listing) = app.get("/api/v1/metrics/");
    assert_eq!(listing["metrics"], json!([sent]));
}

#[test]
fn a_metric_naming_an_unknown_session_and_context_is_stored() {
    let app = spawn_app();
    let body = metric_with("session_h", json!("never-posted-session"));

    let (status, _) = app.post_json("/api/v1/metrics/", &body);

    assert_eq!(status, 201);
    assert_eq!(app.rows_in("sessions"), 0);
    assert_eq!(app.rows_in("contexts"), 0);
    let (_, listing) = app.get("/api/v1/metrics/");
    assert_eq!(listing["metrics"][0]["session_h"], "never-posted-session");
}

#[test]
fn metrics_are_listed_in_the_order_they_were_stored() {
    let app = spawn_app();
    // Names that sort differently from their order of arrival.
    let items = [
        "test_zeta",
        "test_alpha",
        "test_mu",
        "test_beta",
        "test_omega",
    ];
    for item in items {
        app.create("/api/v1/metrics/", &metric(item));
    }

    let (_, listing) = app.get("/api/v1/metrics/");

    let listed: Vec<&str> = listing["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["item"].as_str().unwrap())
        .collect();
    assert_eq!(listed, items);
}

// ---------------------------------------------------------------- numbers

#[test]
fn integers_are_accepted_where_floats_are_documented() {
    let app = spawn_app();
    let mut body = metric("test_ints");
    for (field, value) in [
        ("total_time", 3),
        ("user_time", 2),
        ("kernel_time", 1),
        ("cpu_usage", 1),
        ("mem_usage", -7),
    ] {
        body[field] = json!(value);
    }

    let (status, stored) = app.post_json("/api/v1/metrics/", &body);

    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["total_time"].as_f64(), Some(3.0));
    assert_eq!(stored["kernel_time"].as_f64(), Some(1.0));
    assert_eq!(stored["mem_usage"].as_f64(), Some(-7.0));
}

#[test]
fn fractional_values_are_kept_exactly() {
    let app = spawn_app();
    let body = metric_with("total_time", json!(0.1 + 0.2));

    app.create("/api/v1/metrics/", &body);

    let (_, listing) = app.get("/api/v1/metrics/");
    assert_eq!(
        listing["metrics"][0]["total_time"].as_f64(),
        Some(0.1 + 0.2)
    );
    assert_eq!(listing["metrics"][0]["cpu_usage"].as_f64(), Some(0.8));
}

#[test]
fn a_cpu_usage_above_one_is_accepted() {
    let app = spawn_app();

    let (status, stored) = app.post_json("/api/v1/metrics/", &metric_with("cpu_usage", json!(3.7)));

    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["cpu_usage"].as_f64(), Some(3.7));
}

#[test]
fn negative_durations_and_cpu_usage_are_refused_and_nothing_is_stored() {
    let app = spawn_app();

    for field in [
        "total_time",
        "user_time",
        "kernel_time",
        "cpu_usage",
        "wall_time",
        "krnl_time",
    ] {
        let mut body = metric("test_negative");
        // Send the alias instead of the output name where the field is an alias.
        let output = match field {
            "wall_time" => "total_time",
            "krnl_time" => "kernel_time",
            other => other,
        };
        let value = body.as_object_mut().unwrap().remove(output).unwrap();
        assert!(value.as_f64().unwrap() > 0.0);
        body[field] = json!(-0.5);

        let reply = app.post_json("/api/v1/metrics/", &body);

        assert_bad_field(&reply, field);
    }
    app.assert_nothing_stored();
}

#[test]
fn a_negative_memory_usage_is_accepted() {
    let app = spawn_app();

    let (status, stored) =
        app.post_json("/api/v1/metrics/", &metric_with("mem_usage", json!(-42.5)));

    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["mem_usage"].as_f64(), Some(-42.5));
}

#[test]
fn a_number_sent_as_a_string_is_refused() {
    let app = spawn_app();

    for field in ["total_time", "mem_usage"] {
        let reply = app.post_json("/api/v1/metrics/", &metric_with(field, json!("1.5")));
        assert_bad_field(&reply, field);
    }
    let reply = app.post_json("/api/v1/metrics/", &metric_with("cpu_usage", Value::Null));
    assert_bad_field(&reply, "cpu_usage");
    app.assert_nothing_stored();
}

// ---------------------------------------------------------------- strings

#[test]
fn a_session_h_of_128_characters_is_accepted() {
    let app = spawn_app();
    let h = "a".repeat(128);

    let (status, stored) = app.post_json("/api/v1/metrics/", &metric_with("session_h", json!(h)));

    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["session_h"], json!(h));
}

#[test]
fn a_session_h_of_129_characters_is_refused_and_nothing_is_stored() {
    let app = spawn_app();

    let reply = app.post_json(
        "/api/v1/metrics/",
        &metric_with("session_h", json!("a".repeat(129))),
    );

    let reason = assert_bad_field(&reply, "session_h");
    assert!(reason.contains("128"), "{reason}");
    app.assert_nothing_stored();
}

#[test]
fn each_documented_length_limit_is_enforced() {
    let app = spawn_app();
    let limits = [
        ("context_h", 128),
        ("item_path", 4096),
        ("item", 2048),
        ("item_variant", 2048),
        ("item_fs_loc", 2048),
        ("kind", 64),
        ("component", 512),
    ];

    for (field, max) in limits {
        let at_limit = app.post_json(
            "/api/v1/metrics/",
            &metric_with(field, json!("k".repeat(max))),
        );
        assert_eq!(at_limit.0, 201, "{field} at {max}: {}", at_limit.1);
        let over = app.post_json(
            "/api/v1/metrics/",
            &metric_with(field, json!("k".repeat(max + 1))),
        );
        assert_bad_field(&over, field);
    }
    assert_eq!(app.rows_in("metrics"), limits.len() as i64);
}

#[test]
fn empty_required_identifiers_are_refused_and_nothing_is_stored() {
    let app = spawn_app();

    for field in ["session_h", "context_h", "item", "kind"] {
        let reply = app.post_json("/api/v1/metrics/", &metric_with(field, json!("")));
        let reason = assert_bad_field(&reply, field);
        assert!(reason.contains("empty"), "{field}: {reason}");
    }
    let mut body = seed_metric();
    body["ctx_h"] = json!("");
    assert_bad_field(&app.post_json("/api/v1/metrics/", &body), "ctx_h");
    app.assert_nothing_stored();
}

#[test]
fn an_empty_item_path_component_variant_and_file_location_are_accepted() {
    let app = spawn_app();
    let mut body = metric("test_bare");
    // pytest-monitor sends an empty item_path for a module-scope metric of a test module that is
    // in no package: refusing it would make the plugin stop uploading.
    for field in ["item_path", "component", "item_variant", "item_fs_loc"] {
        body[field] = json!("");
    }

    let (status, stored) = app.post_json("/api/v1/metrics/", &body);

    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["item_path"], "");
    assert_eq!(stored["component"], "");
    assert_eq!(stored["item_variant"], "");
}

#[test]
fn a_string_field_sent_as_another_type_is_refused() {
    let app = spawn_app();

    for value in [
        json!(12),
        json!(null),
        json!(["a"]),
        json!({"a": 1}),
        json!(true),
    ] {
        let reply = app.post_json("/api/v1/metrics/", &metric_with("item", value.clone()));
        assert_bad_field(&reply, "item");
    }
    app.assert_nothing_stored();
}

#[test]
fn text_outside_ascii_is_stored_and_listed_unchanged() {
    let app = spawn_app();
    let body = metric_with("item", json!("test_ünïcødé[😀-∑]"));

    app.create("/api/v1/metrics/", &body);

    let (_, listing) = app.get("/api/v1/metrics/");
    assert_eq!(listing["metrics"][0]["item"], "test_ünïcødé[😀-∑]");
}

// ---------------------------------------------------------------- times

#[test]
fn python_isoformat_times_are_accepted_and_returned_exactly_as_sent() {
    let app = spawn_app();
    let times = [
        "2020-12-04T23:18:15.661016",
        "2020-12-04T23:18:15",
        "2020-12-04 23:18:15.661016",
        "2020-12-04 23:18:15",
        "2020-12-04T23:18:15Z",
        "2020-12-04T23:18:15.661016Z",
        "2020-12-04T23:18:15+05:30",
        "2020-12-04T23:18:15.661016-08:00",
        "2020-12-04T23:18:15.5",
        "2024-02-29T00:00:00",
    ];

    for time in times {
        let (status, stored) = app.post_json(
            "/api/v1/metrics/",
            &metric_with("item_start_time", json!(time)),
        );
        assert_eq!(status, 201, "{time}: {stored}");
        assert_eq!(stored["item_start_time"], time);
    }

    let (_, listing) = app.get("/api/v1/metrics/");
    let listed: Vec<&str> = listing["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["item_start_time"].as_str().unwrap())
        .collect();
    assert_eq!(listed, times);
}

#[test]
fn impossible_dates_and_garbage_times_are_refused_with_errors_item_start_time() {
    let app = spawn_app();

    for time in [
        "2021-02-30T10:00:00",
        "2021-02-29T10:00:00",
        "2021-13-01T10:00:00",
        "2021-01-01T25:00:00",
        "2021-01-01T10:61:00",
        "2021-01-01",
        "2021-01-01T10:00",
        "2021-01-01T10:00:00+5:30",
        "2021-01-01T10:00:00 UTC",
        "04/12/2020 23:18:15",
        "yesterday",
        "",
    ] {
        let reply = app.post_json(
            "/api/v1/metrics/",
            &metric_with("item_start_time", json!(time)),
        );
        assert_bad_field(&reply, "item_start_time");
    }
    let reply = app.post_json(
        "/api/v1/metrics/",
        &metric_with("item_start_time", json!(1607123895)),
    );
    assert_bad_field(&reply, "item_start_time");
    app.assert_nothing_stored();
}
