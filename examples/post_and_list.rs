//! Feeds a running monitor-server the way pytest-monitor does, then shows what it stored.
//!
//! ```text
//! cargo run --release                      # in one terminal: the server on 127.0.0.1:8050
//! cargo run --example post_and_list        # in another: post, then list
//! cargo run --example post_and_list -- http://10.0.0.5:8050/api/v1
//! ```
//!
//! It posts one execution context, one session whose `description` carries tags, and three
//! metrics — the first in the seed documentation's spelling (`ctx_h`, `wall_time`, `krnl_time`),
//! the others in pytest-monitor's (`context_h`, `total_time`, `kernel_time`) — then prints the
//! first page of `GET /metrics/` pretty-printed. It is a smoke test for a deployment and a
//! worked example of the request bodies; the API's contract is `docs/api.md`.
//!
//! The server's base URL is the first argument, else `MONITOR_SERVER_URL`, else
//! `http://127.0.0.1:8050/api/v1` (plain HTTP only). Running it again against the same server
//! is fine: the context is the same each time, and re-creating an identical context answers 201
//! with the stored record, while the session hash is new on every run (taken from the clock).
//!
//! Exit codes: 0 on success, 1 when the server answers something unexpected, 2 when it cannot
//! be reached or the URL is not usable.

use std::hash::BuildHasher;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

const DEFAULT_URL: &str = "http://127.0.0.1:8050/api/v1";

/// A fixed context of this example's own: posting it again with the same content is answered
/// 201, not 409 (the README's curl examples use another hash, so they cannot collide).
const CONTEXT_H: &str = "7d3f5b0c9e2a4c6e8a1b3d5f7092b4d6f8a0c2e4";

/// Why the example stopped early, and with which exit code.
enum Failure {
    /// The server could not be reached at all.
    Unreachable(String),
    /// The base URL is not one this example can use.
    BadUrl(String),
    /// The server answered, but not as the contract says it should.
    Unexpected(String),
}

fn main() -> ExitCode {
    let base = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("MONITOR_SERVER_URL").ok())
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    let base = base.trim_end_matches('/');
    match run(base) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Unreachable(detail)) => {
            eprintln!(
                "post_and_list: cannot reach {base} ({detail}); is the server running? \
                 start it with `cargo run --release`"
            );
            ExitCode::from(2)
        }
        Err(Failure::BadUrl(detail)) => {
            eprintln!(
                "post_and_list: {base} is not a usable base URL (plain http:// only): {detail}"
            );
            ExitCode::from(2)
        }
        Err(Failure::Unexpected(message)) => {
            eprintln!("post_and_list: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(base: &str) -> Result<(), Failure> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let session_h = fresh_hash();

    let context = json!({
        "h": CONTEXT_H,
        "cpu_count": 8,
        "cpu_frequency": 2900.0,
        "cpu_type": "x86_64",
        "cpu_vendor": "GenuineIntel",
        "ram_total": 16384,
        "machine_node": "example-host",
        "machine_type": "x86_64",
        "machine_arch": "64bit",
        "system_info": "Linux - 6.1.0",
        "python_info": "3.11.7 (main) [GCC 12.2.0]"
    });
    post(&agent, base, "contexts", &context)?;

    let session = json!({
        "session_h": session_h,
        "run_date": "2020-12-04T23:18:14.112233",
        "scm_ref": "3a32301",
        "description": {
            "description": "post_and_list example run",
            "team": "backend",
            "pipeline_branch": "main",
            "pipeline_build_no": "42"
        }
    });
    post(&agent, base, "sessions", &session)?;

    let metrics = [
        // The seed documentation's spelling.
        json!({
            "session_h": session_h, "ctx_h": CONTEXT_H,
            "item_start_time": "2020-12-04T23:18:15.661016",
            "item_path": "tests.test_file", "item": "test_that",
            "item_variant": "test_that[]", "item_fs_loc": "tests/test_file.py",
            "kind": "function", "component": "test_component",
            "wall_time": 0.12, "user_time": 0.1, "krnl_time": 0.01,
            "cpu_usage": 0.92, "mem_usage": 1.5
        }),
        // pytest-monitor's spelling, as its `--remote-server` upload sends it.
        json!({
            "session_h": session_h, "context_h": CONTEXT_H,
            "item_start_time": "2020-12-04T23:18:15.801002",
            "item_path": "tests.test_file", "item": "test_other",
            "item_variant": "test_other[2-4]", "item_fs_loc": "tests/test_file.py",
            "kind": "function", "component": "test_component",
            "total_time": 1.5, "user_time": 1.25, "kernel_time": 0.5,
            "cpu_usage": 1.1666, "mem_usage": -0.25
        }),
        json!({
            "session_h": session_h, "context_h": CONTEXT_H,
            "item_start_time": "2020-12-04T23:18:17.3+00:00",
            "item_path": "tests", "item": "tests",
            "item_variant": "tests", "item_fs_loc": "tests",
            "kind": "package", "component": "",
            "total_time": 1.7, "user_time": 1.4, "kernel_time": 0.52,
            "cpu_usage": 1.13, "mem_usage": 3.0
        }),
    ];
    for metric in &metrics {
        post(&agent, base, "metrics", metric)?;
    }
    println!(
        "posted 1 context, 1 session ({session_h}) and {} metrics",
        metrics.len()
    );

    let url = format!("{base}/metrics/");
    let response = agent.get(&url).call().map_err(|err| describe(&url, err))?;
    if response.status() != 200 {
        return Err(Failure::Unexpected(format!(
            "GET {url} answered {} where 200 was expected",
            response.status()
        )));
    }
    let page = read_json(&url, response)?;
    let pretty = serde_json::to_string_pretty(&page)
        .map_err(|err| Failure::Unexpected(format!("cannot print the page: {err}")))?;
    println!("GET {url}\n{pretty}");
    Ok(())
}

/// Posts `body` to `<base>/<collection>/` and insists on 201, as pytest-monitor does.
fn post(agent: &ureq::Agent, base: &str, collection: &str, body: &Value) -> Result<(), Failure> {
    let url = format!("{base}/{collection}/");
    let response = agent
        .post(&url)
        .set("Content-Type", "application/json")
        .send_string(&body.to_string())
        .map_err(|err| describe(&url, err))?;
    if response.status() != 201 {
        return Err(Failure::Unexpected(format!(
            "POST {url} answered {} where 201 was expected",
            response.status()
        )));
    }
    println!("POST {url} -> 201");
    Ok(())
}

fn read_json(url: &str, response: ureq::Response) -> Result<Value, Failure> {
    let text = response
        .into_string()
        .map_err(|err| Failure::Unexpected(format!("cannot read the answer of {url}: {err}")))?;
    serde_json::from_str(&text)
        .map_err(|err| Failure::Unexpected(format!("{url} did not answer JSON: {err}")))
}

/// Sorts a ureq error into "not reachable" and "answered badly", keeping the server's message.
fn describe(url: &str, err: ureq::Error) -> Failure {
    match err {
        ureq::Error::Status(status, response) => {
            let body = response.into_string().unwrap_or_default();
            Failure::Unexpected(format!("{url} answered {status}: {}", body.trim()))
        }
        ureq::Error::Transport(transport) => match transport.kind() {
            ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => {
                Failure::BadUrl(transport.to_string())
            }
            _ => Failure::Unreachable(transport.to_string()),
        },
    }
}

/// A 40-hex-digit hash, like pytest-monitor's SHA-1s, that differs on every run: the clock
/// hashed with the standard library's per-process random keys.
fn fresh_hash() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let keys = std::collections::hash_map::RandomState::new();
    let (high, low) = (keys.hash_one((nanos, 1u8)), keys.hash_one((nanos, 2u8)));
    format!("{high:016x}{low:016x}{:08x}", nanos as u32)
}
