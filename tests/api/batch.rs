//! `POST /api/v1/metrics/batch`: many metrics in one `application/x-ndjson` body, stored all or
//! none, counted and listed exactly as if each had been posted alone.

use monitor_server::routes::auth::{Secret, Tokens};
use monitor_server::server::Options;
use serde_json::{json, Value};

use crate::common::{
    assert_has_message, metric, metric_with, seed_metric, spawn_app, spawn_app_with_options,
};

const NDJSON: &str = "application/x-ndjson";
const BATCH: &str = "/api/v1/metrics/batch";

/// `bodies` as newline-delimited JSON, one per line, with a final newline.
fn ndjson(bodies: &[Value]) -> Vec<u8> {
    let mut text = String::new();
    for body in bodies {
        text.push_str(&body.to_string());
        text.push('\n');
    }
    text.into_bytes()
}

#[test]
fn a_batch_stores_every_metric_and_answers_201_with_the_count() {
    // Arrange: pytest-monitor's and the seed's spellings, a blank line and a CRLF ending.
    let app = spawn_app();
    let mut body = ndjson(&[metric("test_one"), metric("test_two")]);
    body.extend_from_slice(b"\n  \r\n");
    body.extend_from_slice(seed_metric().to_string().as_bytes());
    body.extend_from_slice(b"\r\n");

    // Act
    let reply = app.post_raw(BATCH, Some(NDJSON), &body);

    // Assert
    assert_eq!(reply, (201, json!({"count": 3})));
    assert_eq!(app.rows_in("metrics"), 3);
    let (status, listed) = app.get("/api/v1/metrics/");
    assert_eq!(status, 200, "{listed}");
    let items: Vec<&str> = listed["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["item"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["test_one", "test_two", "test_that"]);
    // Listed exactly as a single POST answers it.
    let single = app.post_json("/api/v1/metrics/", &metric("test_one")).1;
    assert_eq!(listed["metrics"][0], single);
}

#[test]
fn a_bad_line_in_the_middle_refuses_the_whole_batch_naming_the_line_and_stores_nothing() {
    // Arrange: line 3 has a negative duration; line 5 is not JSON at all.
    let app = spawn_app();
    let mut body = ndjson(&[
        metric("test_one"),
        metric("test_two"),
        metric_with("total_time", json!(-1)),
        metric("test_four"),
    ]);
    body.extend_from_slice(b"{not json\n");

    // Act
    let (status, reply) = app.post_raw(BATCH, Some(NDJSON), &body);

    // Assert: the first bad line is named, with the field at fault, and nothing is stored.
    assert_eq!(status, 400, "{reply}");
    assert_has_message(&reply);
    let message = reply["message"].as_str().unwrap();
    assert!(message.starts_with("line 3: "), "{reply}");
    assert_eq!(reply["errors"]["line"], "3", "{reply}");
    assert!(reply["errors"]["total_time"].is_string(), "{reply}");
    app.assert_nothing_stored();
    assert_eq!(app.get("/api/v1/metrics/count").1, json!({"count": 0}));
}

#[test]
fn a_line_that_is_not_json_is_named_counting_blank_lines() {
    let app = spawn_app();
    let mut body = ndjson(&[metric("test_one")]);
    body.extend_from_slice(b"\n[1, 2]\n");

    let (status, reply) = app.post_raw(BATCH, Some(NDJSON), &body);

    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["errors"]["line"], "3", "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.starts_with("line 3: The line must be a JSON object"),
        "{reply}"
    );
    app.assert_nothing_stored();
}

#[test]
fn a_batch_not_declared_as_ndjson_is_refused_with_415_and_nothing_is_stored() {
    let app = spawn_app();
    let body = ndjson(&[metric("test_one")]);
    for content_type in [Some("application/json"), Some("text/plain"), None] {
        let (status, reply) = app.post_raw(BATCH, content_type, &body);

        assert_eq!(status, 415, "{content_type:?}: {reply}");
        assert!(
            reply["message"].as_str().unwrap().contains(NDJSON),
            "{reply}"
        );
    }
    app.assert_nothing_stored();
}

#[test]
fn a_batch_larger_than_the_limit_is_refused_with_413_and_nothing_is_stored() {
    // Arrange: a limit smaller than the body, though far above a single POST's 1 MiB.
    let options = Options {
        max_batch_bytes: 2 << 20,
        ..Options::default()
    };
    let app = spawn_app_with_options(options);
    let line = metric("test_one").to_string();
    let lines = (2 << 20) / line.len() + 1;
    let big = ndjson(&vec![metric("test_one"); lines]);
    let fits = ndjson(&vec![metric("test_one"); lines / 2]);

    // Act
    let declared = app.post_raw(BATCH, Some(NDJSON), &big);
    let chunked = app.send_chunked(BATCH, NDJSON, &big);
    let within = app.post_raw(BATCH, Some(NDJSON), &fits);

    // Assert: refused whether the length is declared or found by reading; more than 1 MiB
    // within the limit is taken.
    assert_eq!(declared.0, 413, "{:?}", declared.1);
    assert_eq!(chunked.0, 413, "{:?}", chunked.1);
    assert_eq!(within, (201, json!({"count": lines / 2})));
    assert_eq!(app.rows_in("metrics"), (lines / 2) as i64);
}

#[test]
fn a_batch_needs_the_write_token_when_one_is_set() {
    // Arrange
    let options = Options {
        tokens: Tokens {
            write: Some(Secret::new("w-token")),
            read: None,
        },
        ..Options::default()
    };
    let app = spawn_app_with_options(options);
    let body = ndjson(&[metric("test_one")]);
    let post = |token: Option<&str>| {
        let mut request =
            ureq::post(&format!("{}{BATCH}", app.address)).set("Content-Type", NDJSON);
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        match request.send_bytes(&body) {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response.status(),
            Err(err) => panic!("no answer: {err}"),
        }
    };

    // Act
    let without = post(None);
    let wrong = post(Some("guess"));
    let with = post(Some("w-token"));

    // Assert
    assert_eq!((without, wrong, with), (401, 401, 201));
    assert_eq!(app.rows_in("metrics"), 1);
}

#[test]
fn counts_facets_and_listings_after_a_batch_are_those_of_the_same_metrics_posted_one_by_one() {
    // Arrange: the same metrics, over two sessions and components, into two servers.
    let metrics: Vec<Value> = (0..30)
        .map(|i| {
            let mut m = metric(&format!("test_{}", i % 7));
            m["session_h"] = json!(format!("session{}", i % 2));
            m["component"] = json!(["api", "db", ""][i % 3]);
            m["kind"] = json!(["function", "module"][i % 2]);
            m
        })
        .collect();
    let batched = spawn_app();
    let single = spawn_app();

    // Act
    let reply = batched.post_raw(BATCH, Some(NDJSON), &ndjson(&metrics));
    for m in &metrics {
        single.create("/api/v1/metrics/", m);
    }

    // Assert
    assert_eq!(reply, (201, json!({"count": 30})));
    for path in [
        "/api/v1/metrics/count",
        "/api/v1/metrics/count?kind=module",
        "/api/v1/metrics/count?component=",
        "/api/v1/sessions/session1/metrics/count",
        "/api/v1/components/",
        "/api/v1/components/count",
        "/api/v1/components/db/metrics",
        "/api/v1/items/like/test_3/metrics",
        "/api/v1/metrics/?sort=item_start_time",
    ] {
        let (from_batch, from_singles) = (batched.get(path), single.get(path));
        assert_eq!(from_batch.0, 200, "{path}: {:?}", from_batch.1);
        assert_eq!(from_batch, from_singles, "{path}");
    }
    assert_eq!(
        batched.get("/api/v1/metrics/count?component=db").1,
        json!({"count": 10})
    );
}

#[test]
fn an_empty_batch_stores_nothing_and_answers_a_count_of_0() {
    let app = spawn_app();

    let reply = app.post_raw(BATCH, Some(NDJSON), b"\n\n");

    assert_eq!(reply, (201, json!({"count": 0})));
    app.assert_nothing_stored();
}

#[test]
fn in_a_batch_of_several_mebibytes_the_bad_line_near_the_end_is_named_by_its_number() {
    // Arrange: large enough to be parsed in pieces, with blank lines early on and the bad line
    // in the last piece.
    let app = spawn_app();
    let good = metric("test_one").to_string();
    let lines = (3 << 20) / good.len();
    let mut body = Vec::new();
    for i in 1..=lines {
        if i % 1000 == 0 {
            body.extend_from_slice(b"\n");
        } else if i == lines - 10 {
            body.extend_from_slice(metric_with("kind", json!("")).to_string().as_bytes());
            body.push(b'\n');
        } else {
            body.extend_from_slice(good.as_bytes());
            body.push(b'\n');
        }
    }

    // Act
    let (status, reply) = app.post_raw(BATCH, Some(NDJSON), &body);

    // Assert
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["errors"]["line"], (lines - 10).to_string(), "{reply}");
    assert!(reply["errors"]["kind"].is_string(), "{reply}");
    app.assert_nothing_stored();
}

#[test]
fn a_batch_refused_at_a_late_line_takes_none_of_the_single_posts_sent_meanwhile_with_it() {
    // Arrange: a batch whose last line is at fault, long enough to be stored in many pieces
    // before the fault is found.
    let app = spawn_app();
    let good = metric("test_one").to_string();
    let mut body = Vec::new();
    for _ in 0..20_000 {
        body.extend_from_slice(good.as_bytes());
        body.push(b'\n');
    }
    body.extend_from_slice(b"not json\n");

    // Act: single posts while the batch is written.
    let (batch, singles) = std::thread::scope(|scope| {
        let batch = scope.spawn(|| app.post_raw(BATCH, Some(NDJSON), &body).0);
        let singles: Vec<u16> = (0..20)
            .map(|i| {
                app.post_json("/api/v1/metrics/", &metric(&format!("test_{i}")))
                    .0
            })
            .collect();
        (batch.join().unwrap(), singles)
    });

    // Assert: the batch stored nothing, every single post is stored and counted.
    assert_eq!(batch, 400);
    assert_eq!(singles, vec![201; 20]);
    assert_eq!(app.rows_in("metrics"), 20);
    assert_eq!(
        app.get("/api/v1/metrics/count"),
        (200, json!({"count": 20}))
    );
    assert_eq!(
        app.get("/api/v1/items/test_one/metrics/count"),
        (200, json!({"count": 0}))
    );
}
