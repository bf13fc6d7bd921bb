//! `GET /healthz`, `GET /readyz` and `GET /metrics` at the root: the probes answer without a
//! token, the Prometheus exposition counts requests by route pattern and passes
//! `promtool check metrics` after real traffic, and it takes the read or the metrics token.
//! (Readiness failing on a full or read-only disk is in the reliability tests.)

use std::io::Write;
use std::process::{Command, Stdio};

use monitor_server::routes::auth::{Secret, Tokens};
use monitor_server::server::Options;
use serde_json::json;

use crate::common::{context, metric, on_ci, session, spawn_app, spawn_app_with_options, TestApp};

#[test]
fn healthz_and_readyz_answer_ok_on_a_healthy_server() {
    let app = spawn_app();

    assert_eq!(app.get("/healthz"), (200, json!({"status": "ok"})));
    assert_eq!(app.get("/readyz"), (200, json!({"status": "ok"})));
    // The path normaliser applies to them too.
    assert_eq!(app.get("/readyz/").0, 200);
}

#[test]
fn the_probes_need_no_token_but_metrics_takes_the_read_token() {
    let app = spawn_app_with_options(Options {
        tokens: Tokens {
            write: Some(Secret::new("w")),
            read: Some(Secret::new("r")),
        },
        ..Options::default()
    });

    assert_eq!(app.get("/healthz").0, 200);
    assert_eq!(app.get("/readyz").0, 200);
    assert_eq!(app.get("/metrics").0, 401);
    let with = |token: &str| status_with_token(&app, "/metrics", token);
    assert_eq!(with("r"), 200);
    assert_eq!(with("w"), 200);
    assert_eq!(with("x"), 401);
}

#[test]
fn a_metrics_token_replaces_the_read_token_for_metrics_only() {
    let app = spawn_app_with_options(Options {
        tokens: Tokens {
            write: None,
            read: Some(Secret::new("r")),
        },
        metrics_token: Some(Secret::new("m")),
        ..Options::default()
    });

    let status = |path: &str, token: &str| status_with_token(&app, path, token);
    assert_eq!(status("/metrics", "m"), 200);
    assert_eq!(status("/metrics", "r"), 401);
    assert_eq!(status("/api/v1/sessions", "m"), 401);
    assert_eq!(status("/api/v1/sessions", "r"), 204);
}

#[test]
fn metrics_count_requests_by_route_pattern_and_pass_promtool_after_real_traffic() {
    let app = spawn_app();
    app.create("/api/v1/contexts", &context("ctx"));
    app.create(
        "/api/v1/sessions",
        &session("5e55107b2a4d0c1e9f1a6f0e6d39b3f6f5c8a7b1"),
    );
    for item in ["test_a", "test_b", "test_c"] {
        app.create("/api/v1/metrics", &metric(item));
    }
    let (status, _) = app.get("/api/v1/sessions/5e55107b2a4d0c1e9f1a6f0e6d39b3f6f5c8a7b1/metrics");
    assert_eq!(status, 200);
    assert_eq!(app.get("/api/v1/no/such/route").0, 404);

    let (status, content_type, text) = app.get_text("/metrics");

    assert_eq!(status, 200, "{text}");
    // Prometheus' text format unless OpenMetrics is asked for.
    assert_eq!(content_type, "text/plain", "{text}");
    for expected in [
        r#"monitor_server_http_requests_total{method="POST",route="/api/v1/metrics",status="201"} 3"#,
        r#"monitor_server_http_requests_total{method="GET",route="/api/v1/sessions/{session_h}/metrics",status="200"} 1"#,
        r#"monitor_server_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"monitor_server_http_request_duration_seconds_count{method="POST",route="/api/v1/metrics"} 3"#,
        "monitor_server_metrics_stored_total 3",
        "monitor_server_writer_queue_depth 0",
        "# TYPE monitor_server_writer_metrics_per_commit histogram",
        "# TYPE monitor_server_writer_commit_duration_seconds histogram",
        "# TYPE monitor_server_database_size_bytes gauge",
        "# TYPE monitor_server_wal_size_bytes gauge",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    assert!(
        !text.contains("5e55107b"),
        "a raw path leaked into the labels:\n{text}"
    );
    promtool_accepts(&text);
}

#[test]
fn prometheus_asking_for_openmetrics_gets_it() {
    let app = spawn_app();
    app.create("/api/v1/metrics", &metric("test_a"));

    let response = ureq::get(&format!("{}/metrics", app.address))
        .set(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .call()
        .expect("GET /metrics");

    assert_eq!(response.content_type(), "application/openmetrics-text");
    let text = response.into_string().expect("a readable body");
    assert!(text.ends_with("# EOF\n"), "{text}");
    // OpenMetrics names a counter's family without `_total`, and its sample with it.
    assert!(
        text.contains("# TYPE monitor_server_metrics_stored counter"),
        "{text}"
    );
    assert!(
        text.contains("monitor_server_metrics_stored_total 1"),
        "{text}"
    );
}

/// The status of `GET path` presenting `token` as a Bearer token.
fn status_with_token(app: &TestApp, path: &str, token: &str) -> u16 {
    let request = ureq::get(&format!("{}{path}", app.address))
        .set("Authorization", &format!("Bearer {token}"));
    match request.call() {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response.status(),
        Err(err) => panic!("GET {path}: no answer: {err}"),
    }
}

/// Runs `promtool check metrics` on `text`; a missing promtool fails under CI and is reported
/// loudly elsewhere.
fn promtool_accepts(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => {
            assert!(
                !on_ci(),
                "promtool is needed to check the exposition and cannot run: {err} \
                 (apt-get install prometheus)"
            );
            eprintln!("SKIPPED: promtool check metrics: promtool cannot run ({err})");
            return;
        }
    };
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(text.as_bytes())
        .expect("cannot feed promtool");
    let output = child.wait_with_output().expect("promtool did not finish");
    assert!(
        output.status.success(),
        "promtool check metrics refused the exposition:\n{}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
