//! docs/api.md's General rules: paths, bodies, errors, and the count routes every resource has.

use serde_json::{json, Value};

use crate::common::{
    assert_bad_field, assert_has_message, context, metric, seed_metric, session, spawn_app,
};

// ---------------------------------------------------------------- paths

#[test]
fn a_trailing_slash_is_optional_when_listing() {
    // Arrange
    let app = spawn_app();
    app.create("/api/v1/metrics/", &metric("test_one"));

    // Act
    let with_slash = app.get("/api/v1/metrics/");
    let without_slash = app.get("/api/v1/metrics");

    // Assert
    assert_eq!(with_slash.0, 200);
    assert_eq!(with_slash, without_slash);
    assert_eq!(with_slash.1["metrics"][0]["item"], "test_one");
}

#[test]
fn a_trailing_slash_is_optional_when_posting() {
    let app = spawn_app();

    let (status, _) = app.post_json("/api/v1/metrics", &metric("no_slash"));
    assert_eq!(status, 201);
    let (status, _) = app.post_json("/api/v1/contexts", &context("ctx-no-slash"));
    assert_eq!(status, 201);
    let (status, _) = app.post_json("/api/v1/sessions", &session("session-no-slash"));
    assert_eq!(status, 201);

    assert_eq!(app.rows_in("metrics"), 1);
    assert_eq!(app.rows_in("contexts"), 1);
    assert_eq!(app.rows_in("sessions"), 1);
}

#[test]
fn doubled_slashes_are_folded_when_posting_as_pytest_monitor_does_with_a_trailing_slash_base_url() {
    // `--remote-server http://host:8050/api/v1/` makes the plugin post to `/api/v1//contexts/`.
    let app = spawn_app();

    let (status, stored) = app.post_json("/api/v1//contexts/", &context("abc123"));
    assert_eq!(status, 201, "{stored}");
    let (status, _) = app.post_json("/api/v1//sessions/", &session("s1"));
    assert_eq!(status, 201);
    let (status, _) = app.post_json("//api//v1//metrics//", &metric("test_one"));
    assert_eq!(status, 201);

    assert_eq!(stored["h"], "abc123");
    assert_eq!(app.rows_in("contexts"), 1);
    assert_eq!(app.rows_in("sessions"), 1);
    assert_eq!(app.rows_in("metrics"), 1);
}

#[test]
fn doubled_slashes_are_folded_when_getting() {
    let app = spawn_app();
    app.create("/api/v1/contexts/", &context("abc123"));

    let (listing_status, listing) = app.get("/api/v1//contexts/");
    let (lookup_status, lookup) = app.get("/api/v1//contexts/abc");
    let (count_status, count) = app.get("/api/v1//contexts//count");

    assert_eq!(listing_status, 200);
    assert_eq!(listing["contexts"][0]["h"], "abc123");
    assert_eq!(lookup_status, 200);
    assert_eq!(lookup["contexts"][0]["h"], "abc123");
    assert_eq!(count_status, 200);
    assert_eq!(count, json!({"count": 1}));
}

#[test]
fn an_unknown_route_answers_a_json_404() {
    let app = spawn_app();

    for path in [
        "/nothing-here",
        "/dashboard/nothing-here.js",
        "/api/v1/nothing-here",
        "/api/v2/metrics/",
        "/api/v1/metrics/x/y",
    ] {
        let (status, body) = app.get(path);
        assert_eq!(status, 404, "GET {path}: {body}");
        assert_has_message(&body);
    }
    let (status, body) = app.post_json("/api/v1/nothing-here", &json!({}));
    assert_eq!(status, 404);
    assert_has_message(&body);
}

#[test]
fn a_known_route_with_the_wrong_method_answers_a_json_405() {
    let app = spawn_app();

    let cases = [
        ("DELETE", "/api/v1/metrics/"),
        ("PUT", "/api/v1/contexts/"),
        ("PATCH", "/api/v1/sessions/"),
        ("POST", "/api/v1/metrics/count"),
        ("POST", "/api/v1/contexts/abc"),
        ("PUT", "/api/v1/sessions/abc"),
        ("DELETE", "/api/v1/sessions/abc/metrics"),
    ];
    for (method, path) in cases {
        let (status, body) = app.send(method, path, Some("application/json"), b"{}");
        assert_eq!(status, 405, "{method} {path}: {body}");
        assert_has_message(&body);
    }
    app.assert_nothing_stored();
}

#[test]
fn a_405_lists_in_its_allow_header_the_methods_the_path_accepts() {
    let app = spawn_app();

    let cases = [
        ("DELETE", "/api/v1/metrics/", "POST, GET, HEAD"),
        ("POST", "/api/v1/metrics/count", "GET, HEAD"),
        ("PUT", "/api/v1/sessions/abc", "GET, HEAD, DELETE"),
        ("PATCH", "/api/v1/sessions/", "POST, GET, HEAD"),
        ("POST", "/api/v1/openapi.json", "GET, HEAD"),
    ];
    for (method, path, allowed) in cases {
        let url = format!("{}{path}", app.address);
        let response = match ureq::request(method, &url).call() {
            Err(ureq::Error::Status(_, response)) => response,
            other => panic!("{method} {path}: expected a 405, got {other:?}"),
        };
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.header("Allow"), Some(allowed), "{method} {path}");
        // Every method the header lists is one the path takes: none answers 405.
        for listed in allowed.split(", ") {
            let (status, body) = app.send(listed, path, Some("application/json"), b"{}");
            assert_ne!(status, 405, "{listed} {path}: {body}");
        }
    }
}

#[test]
fn head_answers_every_get_route_like_get_without_a_body() {
    let app = spawn_app();
    app.create("/api/v1/metrics/", &crate::common::metric("test_head"));

    for path in [
        "/api/v1/metrics/",
        "/api/v1/metrics/count",
        "/api/v1/sessions/",
        "/api/v1/components/",
        "/api/v1/openapi.json",
        "/api/v1/docs",
        "/api/v1/metrics/?page=9",
    ] {
        let url = format!("{}{path}", app.address);
        let (get_status, get_type, get_body) = match ureq::get(&url).call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => {
                let (status, kind) = (r.status(), r.content_type().to_owned());
                (status, kind, r.into_string().unwrap())
            }
            Err(err) => panic!("GET {path}: {err}"),
        };
        let head = match ureq::head(&url).call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(err) => panic!("HEAD {path}: {err}"),
        };
        assert_eq!(head.status(), get_status, "HEAD {path}");
        assert_eq!(head.content_type(), get_type, "HEAD {path}");
        if get_status == 200 {
            assert_eq!(
                head.header("Content-Length")
                    .and_then(|n| n.parse::<usize>().ok()),
                Some(get_body.len()),
                "HEAD {path}: the length of GET's body"
            );
        }
        assert_eq!(head.into_string().unwrap(), "", "HEAD {path} sent a body");
    }
    // HEAD reads: it stores nothing, and it is refused where GET is.
    let (status, _) = app.send("HEAD", "/api/v1/nowhere", None, b"");
    assert_eq!(status, 404);
}

// ---------------------------------------------------------------- bodies

#[test]
fn a_body_without_a_content_type_is_refused_with_415_and_nothing_is_stored() {
    let app = spawn_app();
    let body = metric("test_one").to_string();

    for path in ["/api/v1/metrics/", "/api/v1/contexts/", "/api/v1/sessions/"] {
        let (status, reply) = app.post_raw(path, None, body.as_bytes());
        assert_eq!(status, 415, "{path}: {reply}");
        assert_has_message(&reply);
    }
    app.assert_nothing_stored();
}

#[test]
fn a_body_declared_as_something_other_than_json_is_refused_with_415_and_nothing_is_stored() {
    let app = spawn_app();
    let body = metric("test_one").to_string();

    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "text/json",
        "application/jsonx",
    ] {
        let (status, reply) = app.post_raw("/api/v1/metrics/", Some(content_type), body.as_bytes());
        assert_eq!(status, 415, "{content_type}: {reply}");
        assert_has_message(&reply);
    }
    app.assert_nothing_stored();
}

#[test]
fn a_json_content_type_with_a_charset_parameter_is_accepted() {
    let app = spawn_app();
    let body = metric("test_one").to_string();

    let (status, reply) = app.post_raw(
        "/api/v1/metrics/",
        Some("application/json; charset=utf-8"),
        body.as_bytes(),
    );

    assert_eq!(status, 201, "{reply}");
    assert_eq!(app.rows_in("metrics"), 1);
}

/// A metric padded with an unknown field so that its JSON text is exactly `size` bytes.
fn metric_of_size(size: usize) -> Vec<u8> {
    let mut body = metric("test_one");
    body["padding"] = json!("");
    let overhead = body.to_string().len();
    body["padding"] = json!("x".repeat(size - overhead));
    let text = body.to_string().into_bytes();
    assert_eq!(text.len(), size);
    text
}

#[test]
fn a_body_of_exactly_one_mebibyte_is_accepted() {
    let app = spawn_app();

    let (status, reply) = app.post_raw(
        "/api/v1/metrics/",
        Some("application/json"),
        &metric_of_size(1 << 20),
    );

    assert_eq!(status, 201, "{reply}");
    assert_eq!(app.rows_in("metrics"), 1);
}

#[test]
fn a_body_above_one_mebibyte_is_refused_with_a_json_413_and_nothing_is_stored() {
    let app = spawn_app();

    let (status, reply) = app.post_raw(
        "/api/v1/metrics/",
        Some("application/json"),
        &metric_of_size((1 << 20) + 1),
    );

    assert_eq!(status, 413, "{reply}");
    assert_has_message(&reply);
    app.assert_nothing_stored();
}

#[test]
fn unknown_fields_are_ignored_on_every_record() {
    let app = spawn_app();
    let extra = |mut body: Value| {
        body["added_by_a_newer_plugin"] = json!({"nested": [1, 2, 3]});
        body["another_one"] = json!(null);
        body
    };

    let (metric_status, stored_metric) =
        app.post_json("/api/v1/metrics/", &extra(metric("test_one")));
    let (context_status, stored_context) =
        app.post_json("/api/v1/contexts/", &extra(context("c1")));
    let (session_status, stored_session) =
        app.post_json("/api/v1/sessions/", &extra(session("s1")));

    assert_eq!(metric_status, 201, "{stored_metric}");
    assert_eq!(context_status, 201, "{stored_context}");
    assert_eq!(session_status, 201, "{stored_session}");
    for stored in [&stored_metric, &stored_context, &stored_session] {
        assert!(stored.get("added_by_a_newer_plugin").is_none(), "{stored}");
    }
    assert_eq!(app.rows_in("metrics"), 1);
}

#[test]
fn a_key_given_twice_is_refused_with_a_400_naming_it_and_nothing_is_stored() {
    let app = spawn_app();
    let text = metric("test_one").to_string();
    let doubled = text.replacen('{', r#"{"item": "first","#, 1);

    let reply = app.post_raw(
        "/api/v1/metrics/",
        Some("application/json"),
        doubled.as_bytes(),
    );

    let reason = assert_bad_field(&reply, "item");
    assert!(reason.contains("more than once"), "{reason}");
    app.assert_nothing_stored();
}

#[test]
fn a_context_key_given_twice_is_refused_even_with_equal_values() {
    let app = spawn_app();
    let text = context("c1").to_string();
    let doubled = text.replacen('{', r#"{"h": "c1","#, 1);

    let reply = app.post_raw(
        "/api/v1/contexts/",
        Some("application/json"),
        doubled.as_bytes(),
    );

    assert_bad_field(&reply, "h");
    app.assert_nothing_stored();
}

#[test]
fn a_field_given_under_both_spellings_is_refused_with_a_400_and_nothing_is_stored() {
    let app = spawn_app();
    let cases = [
        (
            "ctx_h",
            json!("e9188c68dd9ddeccd0a2f59422d16a2bf7337683"),
            "context_h",
        ),
        ("wall_time", json!(1.25), "total_time"),
        ("krnl_time", json!(0.25), "kernel_time"),
    ];

    for (alias, value, output_name) in cases {
        let mut body = metric("test_one");
        body[alias] = value;

        let reply = app.post_json("/api/v1/metrics/", &body);

        let reason = assert_bad_field(&reply, output_name);
        assert!(reason.contains(alias), "{alias}: {reason}");
    }
    app.assert_nothing_stored();
}

#[test]
fn a_body_that_is_not_json_is_refused_with_a_json_400_and_nothing_is_stored() {
    let app = spawn_app();

    for body in [
        &b"{\"session_h\": "[..],
        b"not json at all",
        b"",
        b"{\"a\": 1} trailing",
        b"\xff\xfe{}",
    ] {
        let (status, reply) = app.post_raw("/api/v1/metrics/", Some("application/json"), body);
        assert_eq!(status, 400, "{:?}: {reply}", String::from_utf8_lossy(body));
        assert_has_message(&reply);
    }
    app.assert_nothing_stored();
}

#[test]
fn json_that_is_not_an_object_is_refused_with_a_json_400_and_nothing_is_stored() {
    let app = spawn_app();

    for body in ["null", "[]", "[{\"h\": \"c1\"}]", "42", "\"text\"", "true"] {
        for path in ["/api/v1/metrics/", "/api/v1/contexts/", "/api/v1/sessions/"] {
            let (status, reply) = app.post_raw(path, Some("application/json"), body.as_bytes());
            assert_eq!(status, 400, "{path} {body}: {reply}");
            assert_has_message(&reply);
        }
    }
    app.assert_nothing_stored();
}

#[test]
fn every_field_at_fault_is_reported_in_one_400() {
    let app = spawn_app();
    let body = json!({
        "session_h": "",
        "item_start_time": "yesterday",
        "item_path": "tests.test_file",
        "item": "test_that",
        "item_variant": "test_that[]",
        "item_fs_loc": "tests/test_file.py",
        "kind": "function",
        "component": "",
        "total_time": -1,
        "user_time": "fast",
        "kernel_time": 0,
        "cpu_usage": 0,
        "mem_usage": 0
    });

    let (status, reply) = app.post_json("/api/v1/metrics/", &body);

    assert_eq!(status, 400);
    assert_has_message(&reply);
    let errors = reply["errors"].as_object().expect("errors is an object");
    let mut fields: Vec<&str> = errors.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "context_h",
            "item_start_time",
            "session_h",
            "total_time",
            "user_time"
        ]
    );
    assert!(errors.values().all(|reason| reason.is_string()), "{reply}");
    app.assert_nothing_stored();
}

#[test]
fn a_missing_required_field_is_named_in_errors() {
    let app = spawn_app();
    let mut body = seed_metric();
    body.as_object_mut().unwrap().remove("item");

    let reply = app.post_json("/api/v1/metrics/", &body);

    let reason = assert_bad_field(&reply, "item");
    assert!(reason.contains("required"), "{reason}");
    app.assert_nothing_stored();
}

// ---------------------------------------------------------------- counts

#[test]
fn the_count_routes_answer_the_number_of_stored_records() {
    let app = spawn_app();
    for item in ["a", "b", "c"] {
        app.create("/api/v1/metrics/", &metric(item));
    }
    for h in ["c1", "c2"] {
        app.create("/api/v1/contexts/", &context(h));
    }
    app.create("/api/v1/sessions/", &session("s1"));

    assert_eq!(app.get("/api/v1/metrics/count"), (200, json!({"count": 3})));
    assert_eq!(
        app.get("/api/v1/contexts/count"),
        (200, json!({"count": 2}))
    );
    assert_eq!(
        app.get("/api/v1/sessions/count/"),
        (200, json!({"count": 1}))
    );
}

#[test]
fn the_count_routes_answer_zero_on_an_empty_database() {
    let app = spawn_app();

    for path in [
        "/api/v1/metrics/count",
        "/api/v1/contexts/count",
        "/api/v1/sessions/count",
    ] {
        assert_eq!(app.get(path), (200, json!({"count": 0})), "{path}");
    }
}

#[test]
fn a_chunked_body_above_one_mebibyte_is_refused_with_a_json_413_and_nothing_is_stored() {
    // Without a Content-Length the server only learns the size by reading.
    let app = spawn_app();

    let (status, reply) = app.post_chunked("/api/v1/metrics/", &metric_of_size((1 << 20) + 1));

    assert_eq!(status, 413, "{reply}");
    assert_has_message(&reply);
    app.assert_nothing_stored();
}

#[test]
fn a_chunked_body_within_the_limit_is_accepted() {
    let app = spawn_app();

    let (status, reply) = app.post_chunked("/api/v1/metrics/", &metric_of_size(1 << 20));

    assert_eq!(status, 201, "{reply}");
    assert_eq!(app.rows_in("metrics"), 1);
}
