//! The records pytest-monitor sends (a metric, an execution context, a session), as JSON bodies
//! the tests post and vary.

use serde_json::{json, Value};

/// The seed documentation's example metric, in the seed's spelling (`ctx_h`, `wall_time`,
/// `krnl_time`).
pub fn seed_metric() -> Value {
    json!({
        "session_h": "0041724ff4e0adac62b70b4f810c79fc5ad8ba5b",
        "ctx_h": "e9188c68dd9ddeccd0a2f59422d16a2bf7337683",
        "item_start_time": "2020-12-04T23:18:15.661016",
        "item_path": "tests.test_file",
        "item": "test_that",
        "item_variant": "test_that[]",
        "item_fs_loc": "tests/test_file.py",
        "kind": "function",
        "component": "test_component",
        "wall_time": 0,
        "user_time": 0,
        "krnl_time": 0,
        "cpu_usage": 0,
        "mem_usage": 0
    })
}

/// A metric as pytest-monitor sends it (`context_h`, `total_time`, `kernel_time`); `item` names it.
pub fn metric(item: &str) -> Value {
    json!({
        "session_h": "5e55107b2a4d0c1e9f1a6f0e6d39b3f6f5c8a7b1",
        "context_h": "c7a1e0f2b3d4e5f60718293a4b5c6d7e8f901234",
        "item_start_time": "2021-03-04T10:11:12.131415",
        "item_path": "tests.test_api",
        "item": item,
        "item_variant": format!("{item}[1]"),
        "item_fs_loc": "tests/test_api.py",
        "kind": "function",
        "component": "api",
        "total_time": 1.25,
        "user_time": 0.75,
        "kernel_time": 0.25,
        "cpu_usage": 0.8,
        "mem_usage": 12.5
    })
}

/// `metric("test_one")` with `field` replaced by `value`.
pub fn metric_with(field: &str, value: Value) -> Value {
    let mut body = metric("test_one");
    body[field] = value;
    body
}

/// An execution context as pytest-monitor sends it.
pub fn context(h: &str) -> Value {
    json!({
        "h": h,
        "cpu_count": 8,
        "cpu_frequency": 2800.5,
        "cpu_type": "x86_64",
        "cpu_vendor": "GenuineIntel",
        "ram_total": 16384,
        "machine_node": "ci-runner-3",
        "machine_type": "x86_64",
        "machine_arch": "64bit",
        "system_info": "Linux - 5.15.0",
        "python_info": "3.11.4 (main, Jun  7 2023, 00:00:00) [GCC 12.2.0]"
    })
}

/// A session as pytest-monitor sends it, with a description, a tag and CI facts.
pub fn session(session_h: &str) -> Value {
    json!({
        "session_h": session_h,
        "run_date": "2021-03-04T10:11:00.000001",
        "scm_ref": "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
        "description": {
            "description": "nightly run",
            "pipeline_branch": "main",
            "pipeline_build_no": "1234",
            "__ci__": "gitlab"
        }
    })
}
