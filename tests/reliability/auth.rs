//! Access control: `--token` guards every write and `--read-token` every read, each accepted as
//! `Authorization: Bearer TOKEN` or as the password of HTTP Basic (which is what pytest-monitor
//! sends for `--remote-server http://ci:TOKEN@host:8050/api/v1`). A refusal is a JSON 401 with
//! `WWW-Authenticate` (or a 403 for a write presenting the read token) that stores nothing; tokens never reach the log or `--help`; and a server
//! reachable from other machines without a token says so when it starts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use monitor_server::routes::auth::{Secret, Tokens};

use crate::common::{
    agent, count_metrics, exchange, metric, monitor_server, spawn_app_with_tokens, status_of,
    Reply, Running, DEADLINE,
};

const WRITE_TOKEN: &str = "w-7f3a9c2e1b8d4f60a5c3e9d1b7f2a4c8";
const READ_TOKEN: &str = "r-2b9e4d7a1c6f3e8b5d0a7c4e9f1b3d6a";

/// The `Authorization` value `requests` sends for `http://user:password@host/`.
fn basic(user: &str, password: &str) -> String {
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {credentials}")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `POST url` with a metric named `item`, with this `Authorization` (none for `None`).
fn post_metric(url: &str, item: &str, authorization: Option<&str>) -> Reply {
    let mut request = agent().post(url);
    if let Some(value) = authorization {
        request = request.set("Authorization", value);
    }
    exchange(request, Some(&metric(item)))
}

/// `GET url` with this `Authorization` (none for `None`).
fn get(url: &str, authorization: Option<&str>) -> Reply {
    let mut request = agent().get(url);
    if let Some(value) = authorization {
        request = request.set("Authorization", value);
    }
    exchange(request, None)
}

/// Asserts a JSON 401 that tells the client how to authenticate.
fn assert_unauthorized(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {reply:?}");
    let challenge = reply
        .www_authenticate
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: no WWW-Authenticate: {reply:?}"));
    assert!(challenge.contains("Basic"), "{what}: {challenge}");
    assert!(challenge.contains("Bearer"), "{what}: {challenge}");
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {reply:?}"
    );
}

fn write_token_only() -> Tokens {
    Tokens {
        write: Some(Secret::new(WRITE_TOKEN)),
        read: None,
    }
}

#[test]
fn with_a_write_token_a_post_without_it_or_with_a_wrong_one_is_a_401_and_stores_nothing() {
    // Arrange
    let app = spawn_app_with_tokens(write_token_only());
    let url = app.url("/metrics/");
    let near_misses = [
        None,
        Some(bearer("wrong")),
        Some(bearer(&WRITE_TOKEN[..WRITE_TOKEN.len() - 1])),
        Some(bearer(&format!("{WRITE_TOKEN}x"))),
        Some(bearer(&WRITE_TOKEN.to_uppercase())),
        Some(basic("ci", "wrong")),
        Some(basic(WRITE_TOKEN, "")), // the token as the user name is not the password
        Some(format!("Token {WRITE_TOKEN}")),
        Some(WRITE_TOKEN.to_owned()),
    ];

    for authorization in &near_misses {
        // Act
        let reply = post_metric(&url, "refused", authorization.as_deref());

        // Assert
        assert_unauthorized(&reply, &format!("{authorization:?}"));
    }
    for path in ["/contexts/", "/sessions/"] {
        let reply = exchange(agent().post(&app.url(path)), Some(&metric("x")));
        assert_unauthorized(&reply, path);
    }
    assert_eq!(app.stored_metrics(), 0);
}

#[test]
fn with_a_write_token_bearer_and_the_basic_password_are_both_accepted_and_reads_stay_open() {
    // Arrange
    let app = spawn_app_with_tokens(write_token_only());
    let url = app.url("/metrics/");

    // Act
    let with_bearer = post_metric(&url, "bearer", Some(&bearer(WRITE_TOKEN)));
    let with_basic = post_metric(&url, "basic", Some(&basic("ci", WRITE_TOKEN)));
    let read = get(&app.url("/metrics/count"), None);

    // Assert
    assert_eq!(with_bearer.status, 201, "{with_bearer:?}");
    assert_eq!(with_basic.status, 201, "{with_basic:?}");
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.json()["count"], 2);
    assert_eq!(app.stored_metrics(), 2);
}

#[test]
fn a_post_without_the_token_is_refused_before_its_body_is_read() {
    // Arrange: a body far over the limit, declared but not sent.
    let app = spawn_app_with_tokens(write_token_only());
    let mut stream = TcpStream::connect(app.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();

    // Act
    stream
        .write_all(
            b"POST /api/v1/metrics/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 5000000\r\n\r\n{",
        )
        .unwrap();
    let started = Instant::now();
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).expect("no answer");

    // Assert: 401, not 413 and not a wait for 5 MB.
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert_eq!(status_of(&answer), 401, "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(app.stored_metrics(), 0);
}

#[test]
fn with_a_read_token_reads_need_it_or_the_write_token_and_it_does_not_allow_writes() {
    // Arrange
    let app = spawn_app_with_tokens(Tokens {
        write: Some(Secret::new(WRITE_TOKEN)),
        read: Some(Secret::new(READ_TOKEN)),
    });
    let count = app.url("/metrics/count");
    let url = app.url("/metrics/");

    // Act + Assert: reads.
    assert_unauthorized(&get(&count, None), "a read without a token");
    assert_unauthorized(&get(&count, Some(&bearer("wrong"))), "a wrong read token");
    assert_unauthorized(
        &get(&url, Some(&basic("ci", "wrong"))),
        "a wrong Basic password",
    );
    for authorization in [
        bearer(READ_TOKEN),
        basic("ci", READ_TOKEN),
        bearer(WRITE_TOKEN),
        basic("ci", WRITE_TOKEN),
    ] {
        let reply = get(&count, Some(&authorization));
        assert_eq!(reply.status, 200, "{authorization}: {reply:?}");
    }

    // Writes: the read token is not enough; it is known, so the answer is 403, not 401.
    let forbidden = post_metric(&url, "read-token", Some(&bearer(READ_TOKEN)));
    assert_eq!(
        forbidden.status, 403,
        "a write with the read token: {forbidden:?}"
    );
    assert_unauthorized(&post_metric(&url, "none", None), "a write without a token");
    let stored = post_metric(&url, "write-token", Some(&basic("ci", WRITE_TOKEN)));
    assert_eq!(stored.status, 201, "{stored:?}");
    assert_eq!(app.stored_metrics(), 1);
}

/// `DELETE url` with this `Authorization` (none for `None`).
fn delete(url: &str, authorization: Option<&str>) -> Reply {
    let mut request = agent().delete(url);
    if let Some(value) = authorization {
        request = request.set("Authorization", value);
    }
    exchange(request, None)
}

#[test]
fn deleting_a_session_needs_the_write_token_the_read_token_is_forbidden() {
    // Arrange: one metric of the session `metric` names.
    let app = spawn_app_with_tokens(Tokens {
        write: Some(Secret::new(WRITE_TOKEN)),
        read: Some(Secret::new(READ_TOKEN)),
    });
    let stored = post_metric(&app.url("/metrics/"), "kept", Some(&bearer(WRITE_TOKEN)));
    assert_eq!(stored.status, 201, "{stored:?}");
    let session_h = metric("kept")["session_h"].as_str().unwrap().to_owned();
    let url = app.url(&format!("/sessions/{session_h}"));

    // Act + Assert: refused without a token, with a wrong one, and with the read token.
    assert_unauthorized(&delete(&url, None), "a delete without a token");
    assert_unauthorized(&delete(&url, Some(&bearer("wrong"))), "a wrong token");
    for authorization in [bearer(READ_TOKEN), basic("ci", READ_TOKEN)] {
        let reply = delete(&url, Some(&authorization));
        assert_eq!(reply.status, 403, "{authorization}: {reply:?}");
        assert!(
            reply.json()["message"]
                .as_str()
                .is_some_and(|m| m.contains("write token")),
            "{reply:?}"
        );
    }
    assert_eq!(app.stored_metrics(), 1);
    // The write token deletes.
    let deleted = delete(&url, Some(&basic("ci", WRITE_TOKEN)));
    assert_eq!(deleted.status, 200, "{deleted:?}");
    assert_eq!(app.stored_metrics(), 0);
}

#[test]
fn with_the_write_token_only_a_delete_without_it_is_a_401() {
    let app = spawn_app_with_tokens(write_token_only());
    let url = app.url("/sessions/0000000000000000000000000000000000000000");

    assert_unauthorized(&delete(&url, None), "a delete without a token");
    // With the token the request reaches the route: nothing is stored under that hash.
    assert_eq!(delete(&url, Some(&bearer(WRITE_TOKEN))).status, 404);
}

#[test]
fn without_tokens_everything_is_open() {
    let app = spawn_app_with_tokens(Tokens::default());

    let stored = post_metric(&app.url("/metrics/"), "open", None);
    let read = get(&app.url("/metrics/count"), None);

    assert_eq!(stored.status, 201, "{stored:?}");
    assert_eq!(read.status, 200, "{read:?}");
}

/// Every form in which a token could show up in a log line: as given, and inside the Basic
/// credentials a client sends.
fn forms_of(token: &str) -> Vec<String> {
    let encode = |text: String| base64::engine::general_purpose::STANDARD.encode(text);
    vec![
        token.to_owned(),
        encode(format!("ci:{token}")),
        encode(format!(":{token}")),
    ]
}

#[test]
fn the_binary_takes_its_token_from_the_environment_and_never_logs_it_even_at_trace_level() {
    // Arrange: the token only in the environment, every log level on.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    let mut command = monitor_server();
    command
        .env("MONITOR_SERVER_TOKEN", WRITE_TOKEN)
        .env("RUST_LOG", "trace")
        .args(["--db", db.to_str().unwrap(), "--bind", "127.0.0.1:0"]);
    let mut server = Running::start(command, dir.path());
    let base = server.wait_until_listening();
    let url = format!("{base}/metrics/");
    let wrong = "w-0000-not-the-token-0000";

    // Act: what pytest-monitor sends for http://ci:TOKEN@host/api/v1, a Bearer token, nothing,
    // wrong tokens, and a refused body.
    let with_basic = post_metric(&url, "basic", Some(&basic("ci", WRITE_TOKEN)));
    let with_bearer = post_metric(&url, "bearer", Some(&bearer(WRITE_TOKEN)));
    let without = post_metric(&url, "none", None);
    let wrong_bearer = post_metric(&url, "wrong", Some(&bearer(wrong)));
    let wrong_basic = post_metric(&url, "wrong", Some(&basic("ci", wrong)));
    let invalid = exchange(
        agent()
            .post(&url)
            .set("Authorization", &bearer(WRITE_TOKEN)),
        Some(&serde_json::json!({"item": WRITE_TOKEN})),
    );
    server.terminate();
    let status = server.wait_for_exit(DEADLINE);

    // Assert
    assert_eq!(with_basic.status, 201, "{with_basic:?}");
    assert_eq!(with_bearer.status, 201, "{with_bearer:?}");
    assert_unauthorized(&without, "no token");
    assert_unauthorized(&wrong_bearer, "a wrong Bearer token");
    assert_unauthorized(&wrong_basic, "a wrong Basic password");
    assert_eq!(invalid.status, 400, "{invalid:?}");
    assert!(status.success(), "exit status: {status}");
    assert_eq!(count_metrics(&db), 2);
    let stderr = server.stderr().join("\n");
    assert!(stderr.contains("listening on"), "{stderr}");
    for secret in forms_of(WRITE_TOKEN).iter().chain(&forms_of(wrong)) {
        assert!(
            !stderr.contains(secret.as_str()),
            "{secret:?} appears in the log:\n{stderr}"
        );
    }
}

#[test]
fn help_names_the_token_variables_without_showing_their_values() {
    let dir = tempfile::tempdir().unwrap();

    let output = monitor_server()
        .env("MONITOR_SERVER_TOKEN", WRITE_TOKEN)
        .env("MONITOR_SERVER_READ_TOKEN", READ_TOKEN)
        .arg("--help")
        .current_dir(dir.path())
        .output()
        .unwrap();

    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "--token <TOKEN>",
        "--read-token <TOKEN>",
        "MONITOR_SERVER_TOKEN",
        "MONITOR_SERVER_READ_TOKEN",
        "[default: 127.0.0.1:8050]",
    ] {
        assert!(help.contains(expected), "{expected} missing from:\n{help}");
    }
    for secret in [WRITE_TOKEN, READ_TOKEN] {
        assert!(!help.contains(secret), "--help shows a token:\n{help}");
    }
}

/// Starts the binary on `bind` with `token` (if any), waits until it listens, stops it, and
/// returns its log lines up to the start-up line.
fn start_up_log(bind: &str, token: Option<&str>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut command = monitor_server();
    command.args(["--db", "monitor.db", "--bind", bind]);
    if let Some(token) = token {
        command.env("MONITOR_SERVER_TOKEN", token);
    }
    let mut server = Running::start(command, dir.path());
    server.wait_until_listening();
    let lines = server.stderr();
    server.terminate();
    let status = server.wait_for_exit(DEADLINE);
    assert!(status.success(), "exit status: {status}");
    lines
}

fn warnings(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|line| line.contains("WARN")).collect()
}

#[test]
fn binding_every_interface_without_a_token_warns_at_start_and_with_a_token_does_not() {
    let open = start_up_log("0.0.0.0:0", None);
    let guarded = start_up_log("0.0.0.0:0", Some(WRITE_TOKEN));
    let loopback = start_up_log("127.0.0.1:0", None);

    let warned = warnings(&open);
    assert_eq!(warned.len(), 1, "{open:#?}");
    assert!(warned[0].contains("--token"), "{}", warned[0]);
    assert!(warnings(&guarded).is_empty(), "{guarded:#?}");
    assert!(warnings(&loopback).is_empty(), "{loopback:#?}");
}
