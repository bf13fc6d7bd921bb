//! The data set posted to both servers, and the values and probes each route is asked with.

use serde_json::{json, Value};

pub(crate) const CTX_A: &str = "5a8e0c7f4b1d3e6a9c2f8b0d7e4a1c3f6b9d2e5a";
pub(crate) const CTX_B: &str = "b3c9e1a7d5f2084c6e1b9a3d7f5c2e8a0b4d6f1c";
pub(crate) const S1: &str = "1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f21";
pub(crate) const S2: &str = "1f7a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c";
pub(crate) const S3: &str = "9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b";

/// Components, items and variants: item `i % 6` of metric `i`, with its component.
pub(crate) const ITEMS: [(&str, &str); 6] = [
    ("test_insert", "core.db"),
    ("test_select", "core"),
    ("test_render", "ui"),
    ("test_login", "ui"),
    ("test_parse", "core"),
    ("test_export", ""),
];
pub(crate) const METRICS: usize = 30;

pub(crate) fn contexts() -> Vec<Value> {
    vec![
        json!({
            "h": CTX_A, "cpu_count": 8, "cpu_frequency": 2400.0, "cpu_type": "x86_64",
            "cpu_vendor": "GenuineIntel", "ram_total": 15923, "machine_node": "ci-runner-1",
            "machine_type": "x86_64", "machine_arch": "64bit",
            "system_info": "Linux - 5.10.0-21-amd64", "python_info": "3.9.2 (default, Feb 28 2021)"
        }),
        // no cpu_vendor (optional) and a fractional frequency, as psutil reports it
        json!({
            "h": CTX_B, "cpu_count": 4, "cpu_frequency": 2893.202, "cpu_type": "arm64",
            "ram_total": 8192, "machine_node": "laptop.local", "machine_type": "arm64",
            "machine_arch": "64bit", "system_info": "Darwin - 22.1.0",
            "python_info": "3.11.1 (main, Dec 23 2022)"
        }),
    ]
}

/// Run dates in `T` form only: the reference stores a space-separated one (which docs/api.md accepts)
/// but then fails with 500 on every listing that includes it, so it cannot be compared.
pub(crate) fn sessions() -> Vec<Value> {
    vec![
        json!({
            "session_h": S1, "run_date": "2021-03-01T10:00:00.123456",
            "scm_ref": "8f14e45fceea167a5a36dedd4bea2543",
            "description": {"description": "nightly run", "pipeline_branch": "main",
                            "pipeline_build_no": "41", "__ci__": "jenkinsci", "team": "core"}
        }),
        json!({
            "session_h": S2, "run_date": "2021-03-02T11:30:00Z",
            "scm_ref": "8f1ab52c0d9e8f7a6b5c4d3e2f1a0b9c",
            "description": {"pipeline_branch": "main", "pipeline_build_no": "42",
                            "__ci__": "gitlab_ci", "team": "ui", "attempt": "2"}
        }),
        // a local run: no CI tags, no SCM reference
        json!({
            "session_h": S3, "run_date": "2021-03-03T08:15:30.5+02:00", "scm_ref": "",
            "description": {"description": "local run", "team": "core"}
        }),
    ]
}

pub(crate) fn metrics() -> Vec<Value> {
    (0..METRICS)
        .map(|i| {
            let (item, component) = ITEMS[i % 6];
            let session = [S1, S2, S3][i / 10];
            let context = if i < 20 { CTX_A } else { CTX_B };
            let variant = if item == "test_parse" {
                format!("{item}[{}]", if (i / 6) % 2 == 0 { "a" } else { "b" })
            } else {
                item.to_owned()
            };
            let kind = match i % 7 {
                5 => "class",
                6 => "module",
                _ => "function",
            };
            // each resource a different permutation of distinct values, so rankings have no ties
            let spread = |k: usize| ((i * k) % METRICS) as f64;
            json!({
                "session_h": session,
                "context_h": context,
                "item_start_time": format!("2021-03-0{}T10:{:02}:{:02}.{:06}", i / 10 + 1, i, i * 2, i * 1234),
                "item_path": format!("tests.test_{}", component.replace('.', "_")),
                "item": item,
                "item_variant": variant,
                "item_fs_loc": format!("tests/test_{}.py", component.replace('.', "_")),
                "kind": kind,
                "component": component,
                "total_time": spread(7) * 0.5,
                "user_time": spread(11) * 0.25 + 0.01,
                "kernel_time": spread(13) * 0.125,
                "cpu_usage": spread(17) * 0.03 + 0.2,
                "mem_usage": spread(19) - 10.5,
            })
        })
        .collect()
}

/// The value a path parameter takes in the probes of `route` (several values, several probes).
pub(crate) fn param_values(route: &str, name: &str) -> Vec<&'static str> {
    let without_component =
        route.starts_with("/components/items") || route.starts_with("/components/variants");
    match name {
        "context_h" => vec![CTX_B],
        "session_h" => vec![S2],
        "prefix" if route.starts_with("/contexts") => vec!["5a8e0c"],
        "prefix" if route.starts_with("/sessions") => vec!["1f"],
        "prefix" => vec!["core"],
        "component" if route.contains("pipelines") => vec!["ui"],
        "component" => vec!["core"],
        "item" if without_component => vec!["test_export"],
        "item" => vec!["test_parse"],
        "variant" if without_component => vec!["test_export"],
        "variant" => vec!["test_parse[b]"],
        "pattern" if route.starts_with("/items") => vec!["pars"],
        "pattern" => vec!["[b"],
        "kind" => vec!["function"],
        "scm_prefix" => vec!["8f1"],
        "pipeline" => vec!["main"],
        "build" => vec!["42"],
        "resource" => vec!["memory"],
        "direction" => vec!["head", "tail"],
        "n" => vec!["3"],
        _ => vec![],
    }
}

/// Requests the reference is asked differently: (our path, the reference's, a [`DELIBERATE`] id).
pub(crate) const ASKED_ELSEWHERE: [(&str, &str, &str); 2] = [
    ("/openapi.json", "/swagger.json", "documents"),
    (
        "/sessions/?with_flags=team,,pipeline_branch&restrict_flags=core,x,main",
        "/sessions/?with_flags=team,pipeline_branch&restrict_flags=core,main",
        "empty_flag",
    ),
];

/// Path segments that name nothing in the data set: their listings are empty collections.
pub(crate) const ABSENT: [&str; 4] = ["ffff", "0000", "zzz", "nightly"];

/// More requests for some routes: edge cases and filters (query strings or whole paths).
pub(crate) fn extra_probes(route: &str) -> Vec<String> {
    let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
    match route {
        "/metrics" => strings(&[
            "/metrics/?page=0",
            "/metrics/?page=99",
            "/metrics/?page=abc",
            "/metrics/?page=-6",
            "/metrics/?page=-7",
            "/metrics/?foo=1",
        ]),
        "/sessions" => strings(&[
            "/sessions/?with_flags=pipeline_branch",
            "/sessions/?with_flags=team,pipeline_branch&restrict_flags=core,main&method=match_all",
            "/sessions/?with_flags=team,__ci__&restrict_flags=core,gitlab_ci&method=match_any",
            "/sessions/?with_flags=description",
            "/sessions/?with_flags=team&method=any",
            "/sessions/?with_flags=team,,pipeline_branch&restrict_flags=core,x,main",
        ]),
        "/contexts/{prefix}" => {
            strings(&["/contexts/ffff", "/contexts/ffff?page=2", "/contexts/b3c9"])
        }
        "/sessions/{prefix}" => strings(&["/sessions/ffff", "/sessions/1f7?with_flags=team"]),
        "/sessions/{session_h}/metrics" => {
            strings(&["/sessions/0000/metrics", "/sessions/0000/metrics?page=-1"])
        }
        "/sessions/{session_h}/metrics/count" => strings(&["/sessions/0000/metrics/count"]),
        "/components/{prefix}" => strings(&["/components/u", "/components/zzz"]),
        "/components/{component}/metrics" => {
            strings(&["/components/core.db/metrics", "/components/CORE/metrics"])
        }
        "/items/like/{pattern}/metrics" => strings(&["/items/like/t%25l/metrics"]),
        "/filters/scm/{scm_prefix}/sessions" => strings(&["/filters/scm/8f14/sessions"]),
        "/filters/scope/{kind}/metrics" => strings(&["/filters/scope/module/metrics"]),
        "/pipelines/{pipeline}/builds" => strings(&["/pipelines/nightly/builds"]),
        "/resources/{resource}/{direction}/{n}/metrics" => {
            let mut probes: Vec<String> =
                ["memory", "cpu", "user_time", "kernel_time", "total_time"]
                    .iter()
                    .flat_map(|r| {
                        ["head", "tail"]
                            .iter()
                            .map(move |d| format!("/resources/{r}/{d}/4/metrics"))
                    })
                    .collect();
            probes.push("/resources/memory/head/600/metrics".into());
            probes.push("/resources/disk/head/3/metrics".into());
            probes.push("/resources/memory/middle/3/metrics".into());
            probes.push("/resources/memory/head/0/metrics".into());
            probes.push("/resources/memory/head/abc/metrics".into());
            probes
        }
        "/resources/{resource}/pipelines/{pipeline}/{direction}/metrics" => {
            strings(&["/resources/cpu/pipelines/nightly/head/metrics"])
        }
        _ => vec![],
    }
}

// ------------------------------------------------------------------------------------------
