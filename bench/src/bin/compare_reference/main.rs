//! Compares this server's answers with the Python reference's, monitor-server-api 1.1.0, route by
//! route, on the same data.
//!
//! ```text
//! # the reference, on a fresh database, with the page size both servers will use
//! MONITOR_SERVER_PAGINATION_COUNT=5 bash /work/shared/anchor/monitor-server-api.sh 18600 /tmp/ref.db &
//! # ours, on a fresh database, same page size
//! cargo run -- --db /tmp/ours.db --bind 127.0.0.1:18601 --page-size 5 &
//! cargo run --example compare_reference -- http://127.0.0.1:18601/api/v1 http://127.0.0.1:18600/api/v1
//! ```
//!
//! It posts one data set to both servers (2 execution contexts, 3 sessions whose `description`
//! carries pipeline, CI and free tags and whose `scm_ref`s share prefixes or are empty, 30 metrics
//! over 3 components plus the empty one, 3 kinds, 6 items and their variants), in pytest-monitor's
//! spelling (`context_h`, `total_time`, `kernel_time`: the reference knows no other). A server
//! that already holds exactly this data set is not posted to again, so a comparison can be re-run;
//! one that holds anything else is compared anyway, with a warning, and the result means little.
//!
//! Then it asks both servers the same questions: every GET route of
//! `monitor_server::routes::ENDPOINTS`, path parameters replaced by values of the data set, each
//! listing also at `page=2` and `page=-1`, plus a few edge cases (unknown records, bad pages, tag
//! filters, every resource ranking). For each answer it compares the status code and the JSON body,
//! after normalising the known, deliberate differences listed in [`DELIBERATE`] (each with its
//! reason). The same is done for the answers to the POSTs.
//!
//! Both servers must use the same page size (5 above: small, so that pagination is exercised);
//! the reference ignores `per_page`, so it is never sent. Start both on fresh databases: the
//! reference cannot re-create a record it holds (it answers 500), and counts would differ.
//!
//! It prints one line per route: `SAME` (identical answers), `SAME*` (identical once the listed
//! deliberate differences are normalised), or `DIFFERENT` followed by a short diff of each
//! differing request, then a summary count. It is a report: the exit code is 0 whatever the
//! verdicts, and 2 only when a server cannot be reached.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use monitor_server::routes::{Answer as Shape, ENDPOINTS};
use serde_json::{json, Map, Value};

/// The known, deliberate differences between our answers and the reference's: an id (printed
/// after `SAME*`) and why the difference is deliberate. The normalisations are applied in
/// [`normalise_ours`], [`normalise_reference`] and [`normalise_both`]; where one relies on a fact
/// of the data set, its reason says so.
const DELIBERATE: &[(&str, &str)] = &[
    ("description", "we list a session's `description` object beside its `tags` (API.md); the reference lists only `tags`"),
    ("run_date", "the reference re-parses run_date and rewrites it (Z as +00:00, fraction padded to 6 digits); we return it exactly as sent (API.md)"),
    ("numbers", "the reference marshals cpu_frequency as an integer (2400), we as the number sent (2400.0): numbers compare by value"),
    ("cpu_frequency", "the reference truncates cpu_frequency to an integer (2893.202 -> 2893); we keep the number as sent (API.md: number, MHz)"),
    ("null_links", "the reference writes `prev_url`/`next_url: null` where a model is marshalled without skip_none; we omit them (API.md)"),
    ("link_form", "page links: Flask's url_for writes the path as the route declares it (no trailing slash, its own parameter order and escaping); ours keep the request's query and add `/` before `?`; both resolve on our server"),
    ("empty_204", "an empty result answers 204 (API.md); the reference answers 200 with an empty list where its handler sets no status (resources, /components/<c>/pipelines...)"),
    ("ranked_envelope", "resource rankings are not paged (API.md); the reference marshals them through a pageable model, adding total_page: 1 and null links"),
    ("empty_component", "components never include the empty one (API.md); the reference lists \"\" and counts it (its max(count, count - 1) is count) [the data set has metrics without component]"),
    ("null_pipeline", "a session without a pipeline_branch tag is not a pipeline; the reference's /components/<c>/pipelines lists it as null"),
    ("unordered", "lists of names (components, pipelines, builds, session hashes) compare as sets: the reference's SQL has no ORDER BY; ours sorts (builds numerically)"),
    ("unpaged_pipelines", "GET /pipelines/ is paged like every listing (API.md); the reference answers the whole list without total_page, whatever the page"),
    ("error_bodies", "error bodies are worded differently (ours add `errors`, the reference's are Flask's): when both answer the same error status, bodies are not compared"),
    ("unknown_resource", "an unknown resource is a 400 listing the valid names (API.md); the reference fails with 500 (KeyError)"),
    ("page_zero", "page=0 is a 400 (API.md); the reference answers 404"),
    ("page_not_integer", "a non-integer page is a 400 (API.md); the reference silently serves page 1"),
    ("scm_sessions_tags", "/filters/scm/<p>/sessions lists each session's tags as every session listing does (API.md); the reference marshals bare rows there and writes `tags: null`"),
    ("exact_match", "`<c>` in /components/<c>/metrics is matched exactly (API.md); the reference uses LIKE, so case and `_`/`%` are loose there"),
    ("literal_like", "`%`, `_` in a like/<p> pattern are plain characters (API.md: a substring match); the reference passes them to LIKE as wildcards"),
    ("unknown_params", "a query parameter a listing does not know is a 400 naming the valid ones, so a misspelt filter is not silently ignored; the reference ignores it"),
    ("bad_method", "a `method` other than match_any/match_all is a 400; the reference treats anything but match_any as match_all"),
    ("empty_any_page", "an empty collection answers 204 whatever the page asked (API.md, pytest-monitor's protocol); the reference's paginate 404s every page but the first"),
    ("idempotent_create", "re-creating an identical context or session answers 201 with the stored record (API.md: xdist workers race to create it); the reference fails with 500 (IntegrityError)"),
    ("empty_flag", "an empty name in with_flags (`a,,b`) is skipped, the others keeping their restrict_flags by position; the reference fails with 500 (JSON path `$.`), so it is asked the same without the empty name"),
    ("bad_direction", "a direction other than head/tail is a 400 naming both; the reference has no such route (404)"),
    ("bad_rows", "an n that is not a positive integer is a 400; the reference has no route for a non-integer (404) and answers n=0 with an empty list"),
    ("documents", "the API documents differ by design: ours is an OpenAPI 3 document at /openapi.json and a self-contained /docs page, the reference's a Swagger 2 /swagger.json and Swagger UI; only status and media type are compared"),
];

// ------------------------------------------------------------------------------------------
// The data set
// ------------------------------------------------------------------------------------------

const CTX_A: &str = "5a8e0c7f4b1d3e6a9c2f8b0d7e4a1c3f6b9d2e5a";
const CTX_B: &str = "b3c9e1a7d5f2084c6e1b9a3d7f5c2e8a0b4d6f1c";
const S1: &str = "1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f21";
const S2: &str = "1f7a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c";
const S3: &str = "9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b";

/// Components, items and variants: item `i % 6` of metric `i`, with its component.
const ITEMS: [(&str, &str); 6] = [
    ("test_insert", "core.db"),
    ("test_select", "core"),
    ("test_render", "ui"),
    ("test_login", "ui"),
    ("test_parse", "core"),
    ("test_export", ""),
];
const METRICS: usize = 30;

fn contexts() -> Vec<Value> {
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

/// Run dates in `T` form only: the reference stores a space-separated one (which API.md accepts)
/// but then fails with 500 on every listing that includes it, so it cannot be compared.
fn sessions() -> Vec<Value> {
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

fn metrics() -> Vec<Value> {
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
fn param_values(route: &str, name: &str) -> Vec<&'static str> {
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
const ASKED_ELSEWHERE: [(&str, &str, &str); 2] = [
    ("/openapi.json", "/swagger.json", "documents"),
    (
        "/sessions/?with_flags=team,,pipeline_branch&restrict_flags=core,x,main",
        "/sessions/?with_flags=team,pipeline_branch&restrict_flags=core,main",
        "empty_flag",
    ),
];

/// Path segments that name nothing in the data set: their listings are empty collections.
const ABSENT: [&str; 4] = ["ffff", "0000", "zzz", "nightly"];

/// More requests for some routes: edge cases and filters (query strings or whole paths).
fn extra_probes(route: &str) -> Vec<String> {
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
// Requests
// ------------------------------------------------------------------------------------------

/// One server's answer to one request.
#[derive(Debug, Clone, PartialEq)]
struct Reply {
    status: u16,
    content_type: String,
    /// The parsed JSON body; `Null` for an empty body, a string describing any other body.
    body: Value,
}

struct Server {
    label: &'static str,
    base: String,
    agent: ureq::Agent,
}

/// A server that could not be reached: the run stops with exit code 2.
struct Unreachable(String);

impl Server {
    fn new(label: &'static str, base: &str) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .redirects(0)
            .build();
        Server {
            label,
            base: base.trim_end_matches('/').to_owned(),
            agent,
        }
    }

    fn get(&self, path: &str) -> Result<Reply, Unreachable> {
        self.reply(self.agent.get(&format!("{}{path}", self.base)).call())
    }

    fn post(&self, path: &str, body: &Value) -> Result<Reply, Unreachable> {
        let request = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("Content-Type", "application/json");
        self.reply(request.send_string(&body.to_string()))
    }

    fn reply(&self, result: Result<ureq::Response, ureq::Error>) -> Result<Reply, Unreachable> {
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(err)) => {
                return Err(Unreachable(format!(
                    "{} ({}): {err}",
                    self.label, self.base
                )))
            }
        };
        let status = response.status();
        let content_type = response.content_type().to_owned();
        let text = response
            .into_string()
            .map_err(|err| Unreachable(format!("{} ({}): {err}", self.label, self.base)))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| {
                Value::String(format!("<{} bytes of {content_type}>", text.len()))
            })
        };
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }

    /// `(metrics, sessions, contexts)` counts, to tell an empty server from a loaded one.
    fn counts(&self) -> Result<[i64; 3], Unreachable> {
        let mut counts = [0; 3];
        for (slot, what) in counts.iter_mut().zip(["metrics", "sessions", "contexts"]) {
            let reply = self.get(&format!("/{what}/count"))?;
            *slot = reply.body["count"].as_i64().unwrap_or(-1);
        }
        Ok(counts)
    }
}

/// Percent-encodes a path segment or query value (everything but RFC 3986's unreserved set).
fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn asked_elsewhere(path: &str) -> Option<(String, &'static str)> {
    ASKED_ELSEWHERE
        .iter()
        .find(|(ours, _, _)| *ours == path)
        .map(|(_, reference, id)| (reference.to_string(), *id))
}

/// The concrete paths of one route pattern: every combination of its parameters' values.
fn expand(route: &str, shape: Shape) -> Result<Vec<String>, String> {
    let mut paths = vec![String::new()];
    for segment in route.split('/').filter(|s| !s.is_empty()) {
        let values: Vec<String> = match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
        {
            Some(name) => {
                let values = param_values(route, name);
                if values.is_empty() {
                    return Err(format!("no probe value for path parameter `{name}`"));
                }
                values.into_iter().map(encode).collect()
            }
            None => vec![segment.to_owned()],
        };
        paths = paths
            .iter()
            .flat_map(|p| values.iter().map(move |v| format!("{p}/{v}")))
            .collect();
    }
    // the reference declares its collection roots with a trailing slash (and redirects without)
    if route.matches('/').count() == 1 && !matches!(shape, Shape::Document(_)) {
        for path in &mut paths {
            path.push('/');
        }
    }
    Ok(paths)
}

// ------------------------------------------------------------------------------------------
// Normalisation
// ------------------------------------------------------------------------------------------

/// What a probe asks, as far as normalisation cares.
struct Probe {
    /// The ENDPOINTS path pattern.
    route: &'static str,
    /// The concrete path and query, relative to the base URL.
    path: String,
    /// Where the reference answers the same question, when elsewhere, and why (a [`DELIBERATE`] id).
    reference_path: Option<(String, &'static str)>,
    shape: Shape,
    /// For a re-created record: the reference's answer to its first creation.
    first_creation: Option<Reply>,
}

impl Probe {
    /// The path's segments, decoded (without the query).
    fn segments(&self) -> Vec<String> {
        let path = self.path.split('?').next().unwrap_or("");
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect()
    }

    /// The value of path parameter `name` of the route pattern, decoded.
    fn param(&self, name: &str) -> Option<String> {
        let pattern = self.route.split('/').filter(|s| !s.is_empty());
        pattern
            .zip(self.segments())
            .find(|(p, _)| p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) == Some(name))
            .map(|(_, value)| value)
    }

    fn query_keys(&self) -> Vec<String> {
        let query = self.path.split_once('?').map(|(_, q)| q).unwrap_or("");
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| percent_decode(p.split('=').next().unwrap_or("")))
            .collect()
    }

    fn query_value(&self, key: &str) -> Option<String> {
        let (_, query) = self.path.split_once('?')?;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v))
    }
}

/// Which normalisations may apply, and which did.
struct Rules<'a> {
    disabled: &'a BTreeSet<&'static str>,
    fired: BTreeSet<&'static str>,
}

impl Rules<'_> {
    /// True when deliberate difference `id` may be normalised; records that it was.
    fn allow(&mut self, id: &'static str) -> bool {
        debug_assert!(DELIBERATE.iter().any(|(known, _)| *known == id), "{id}");
        if self.disabled.contains(id) {
            return false;
        }
        self.fired.insert(id);
        true
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff][±HH:MM]` as Python's isoformat() writes a parsed time: `T`,
/// the fraction to 6 digits and only when not zero, `Z` as `+00:00`. Unparsable text is kept.
fn canonical_time(text: &str) -> String {
    let b = text.as_bytes();
    if !text.is_ascii() || b.len() < 19 || !(b[10] == b'T' || b[10] == b' ') {
        return text.to_owned();
    }
    let (date, clock) = (&text[..10], &text[11..19]);
    let mut rest = &text[19..];
    let mut fraction = String::new();
    if let Some(after_dot) = rest.strip_prefix('.') {
        let digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        fraction = after_dot[..digits].to_owned();
        rest = &after_dot[digits..];
    }
    while fraction.len() < 6 {
        fraction.push('0');
    }
    let fraction = if fraction.bytes().all(|d| d == b'0') {
        String::new()
    } else {
        format!(".{fraction}")
    };
    let offset = if rest == "Z" { "+00:00" } else { rest };
    format!("{date}T{clock}{fraction}{offset}")
}

/// A page link reduced to what a client follows: path without trailing slash, query decoded
/// and sorted.
fn canonical_link(link: &str) -> String {
    let (path, query) = link.split_once('?').unwrap_or((link, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(percent_decode)
        .collect();
    pairs.sort();
    format!(
        "{}?{}",
        percent_decode(path.trim_end_matches('/')),
        pairs.join("&")
    )
}

/// Every number as an f64, so that `2400` and `2400.0` compare equal.
fn numbers_as_floats(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(float) = n.as_f64().and_then(serde_json::Number::from_f64) {
                *n = float;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(numbers_as_floats),
        Value::Object(map) => map.values_mut().for_each(numbers_as_floats),
        _ => {}
    }
}

/// Visits every object of a body (the body itself, and nested ones).
fn each_object(value: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    match value {
        Value::Object(map) => {
            f(map);
            map.values_mut().for_each(|v| each_object(v, f));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| each_object(v, f)),
        _ => {}
    }
}

const RESOURCES: [&str; 5] = ["memory", "cpu", "user_time", "kernel_time", "total_time"];

/// Rewrites the reference's reply where it departs from API.md on purpose-known points.
fn normalise_reference(probe: &Probe, reply: &mut Reply, rules: &mut Rules) {
    if probe.route.starts_with("/resources/") {
        let resource = probe.param("resource").unwrap_or_default();
        if !RESOURCES.contains(&resource.as_str())
            && reply.status == 500
            && rules.allow("unknown_resource")
        {
            reply.status = 400;
        }
        let direction = probe.param("direction").unwrap_or_default();
        if !["head", "tail"].contains(&direction.as_str())
            && reply.status == 404
            && rules.allow("bad_direction")
        {
            reply.status = 400;
        }
        let rows = probe.param("n").map(|n| n.parse::<u64>().unwrap_or(0));
        if rows == Some(0) && reply.status != 400 && rules.allow("bad_rows") {
            reply.status = 400;
            reply.body = Value::Null;
        }
    }
    match probe.query_value("page").as_deref() {
        Some("0") if reply.status == 404 && rules.allow("page_zero") => reply.status = 400,
        Some(page)
            if page.parse::<i64>().is_err()
                && reply.status < 400
                && rules.allow("page_not_integer") =>
        {
            reply.status = 400;
            reply.body = Value::Null;
        }
        _ => {}
    }
    if let Some(first) = &probe.first_creation {
        if reply.status == 500 && rules.allow("idempotent_create") {
            *reply = first.clone();
        }
    }
    let empty_collection = probe
        .segments()
        .iter()
        .any(|s| ABSENT.contains(&s.as_str()));
    if empty_collection
        && reply.status == 404
        && probe.query_value("page").is_some()
        && rules.allow("empty_any_page")
    {
        reply.status = 204;
        reply.body = Value::Null;
    }
    if reply.status < 400 && probe.route.starts_with("/sessions") {
        let method = probe.query_value("method");
        let valid = ["match_any", "match_all"];
        if method.is_some_and(|m| !valid.contains(&m.as_str())) && rules.allow("bad_method") {
            reply.status = 400;
            reply.body = Value::Null;
        }
    }
    if reply.status < 400 && !matches!(probe.shape, Shape::Document(_)) {
        let known = ["page", "with_flags", "restrict_flags", "method"];
        if probe
            .query_keys()
            .iter()
            .any(|k| !known.contains(&k.as_str()))
            && rules.allow("unknown_params")
        {
            reply.status = 400;
            reply.body = Value::Null;
        }
    }
    if probe.route == "/pipelines" && reply.status == 200 {
        // the reference's unpaged list is our only page: its page=N (N > 1) is our 404
        let page = probe
            .query_value("page")
            .and_then(|p| p.parse::<i64>().ok());
        if page.is_some_and(|p| !(-1..=1).contains(&p)) && rules.allow("unpaged_pipelines") {
            reply.status = 404;
            reply.body = Value::Null;
        }
    }
    let Value::Object(map) = &mut reply.body else {
        return;
    };
    for key in ["prev_url", "next_url"] {
        if map.get(key) == Some(&Value::Null) && rules.allow("null_links") {
            map.remove(key);
        }
    }
    if matches!(probe.shape, Shape::Ranked)
        && map.contains_key("total_page")
        && rules.allow("ranked_envelope")
    {
        map.remove("total_page");
    }
    // keep only what an exact (or literal) match keeps: (rule, field, text, exact)
    let narrowing = match probe.route {
        "/components/{component}/metrics" => probe
            .param("component")
            .map(|c| ("exact_match", "component", c, true)),
        "/items/like/{pattern}/metrics" => probe
            .param("pattern")
            .map(|p| ("literal_like", "item", p.to_ascii_lowercase(), false)),
        _ => None,
    };
    if let (Some((id, field, text, exact)), Some(Value::Array(metrics))) =
        (narrowing, map.get_mut("metrics"))
    {
        let kept = |m: &Value| {
            let value = m[field].as_str().unwrap_or("");
            if exact {
                value == text
            } else {
                value.to_ascii_lowercase().contains(&text)
            }
        };
        if !metrics.iter().all(kept) && rules.allow(id) {
            metrics.retain(kept);
        }
    }
    if probe.route.starts_with("/components") {
        if let Some(Value::Array(names)) = map.get_mut("components") {
            if names.contains(&json!("")) && rules.allow("empty_component") {
                names.retain(|n| n != "");
            }
        }
    }
    if probe.route == "/components/count" && rules.allow("empty_component") {
        // the data set has metrics without a component, which the reference counts
        if let Some(n) = map.get("count").and_then(Value::as_i64) {
            map.insert("count".into(), (n - 1).into());
        }
    }
    if let Some(Value::Array(names)) = map.get_mut("pipelines") {
        if names.contains(&Value::Null) && rules.allow("null_pipeline") {
            names.retain(|n| !n.is_null());
        }
    }
    // an empty list answered 200: what API.md answers 204 for
    let empty = ["metrics", "components", "pipelines", "builds", "sessions"]
        .iter()
        .any(|key| {
            map.get(*key)
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
        });
    if empty && reply.status == 200 && rules.allow("empty_204") {
        reply.status = 204;
        reply.body = Value::Null;
    }
}

/// Rewrites our reply where we add to or keep more than the reference.
fn normalise_ours(probe: &Probe, reply: &mut Reply, rules: &mut Rules) {
    if probe.route == "/filters/scm/{scm_prefix}/sessions" {
        if let Some(Value::Array(sessions)) = reply.body.get_mut("sessions") {
            for session in sessions {
                if session.get("tags").is_some_and(|t| !t.is_null())
                    && rules.allow("scm_sessions_tags")
                {
                    session["tags"] = Value::Null;
                }
            }
        }
    }
    if probe.route == "/pipelines" {
        if let Value::Object(map) = &mut reply.body {
            if map.contains_key("total_page") && rules.allow("unpaged_pipelines") {
                map.remove("total_page");
            }
        }
    }
    each_object(&mut reply.body, &mut |map| {
        if map.contains_key("session_h")
            && map.contains_key("tags")
            && map.contains_key("description")
            && rules.allow("description")
        {
            map.remove("description");
        }
        if map.contains_key("cpu_count") {
            if let Some(f) = map.get("cpu_frequency").and_then(Value::as_f64) {
                if f.fract() != 0.0 && rules.allow("cpu_frequency") {
                    map.insert("cpu_frequency".into(), json!(f.trunc()));
                }
            }
        }
    });
}

/// Rewrites either side's reply into the forms compared.
fn normalise_both(probe: &Probe, reply: &mut Reply, rules: &mut Rules) {
    if matches!(probe.shape, Shape::Document(_)) && rules.allow("documents") {
        reply.body = Value::Null;
        let essence = reply.content_type.split(';').next().unwrap_or("").trim();
        reply.content_type = essence.to_owned();
        return;
    }
    each_object(&mut reply.body, &mut |map| {
        if let Some(Value::String(date)) = map.get_mut("run_date") {
            let canonical = canonical_time(date);
            if canonical != *date && rules.allow("run_date") {
                *date = canonical;
            }
        }
        for key in ["prev_url", "next_url"] {
            if let Some(Value::String(link)) = map.get_mut(key) {
                let canonical = canonical_link(link);
                if canonical != *link && rules.allow("link_form") {
                    *link = canonical;
                }
            }
        }
        for key in ["components", "pipelines", "builds", "sessions"] {
            if let Some(Value::Array(names)) = map.get_mut(key) {
                let mut sorted = names.clone();
                sorted.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                if names.iter().all(Value::is_string)
                    && sorted != *names
                    && rules.allow("unordered")
                {
                    *names = sorted;
                }
            }
        }
    });
    if rules.allow("numbers") {
        numbers_as_floats(&mut reply.body);
    }
}

/// Compares two replies with every normalisation but `disabled`: the first difference left,
/// if any, and the normalisations that applied.
fn compare(
    probe: &Probe,
    ours: &Reply,
    reference: &Reply,
    disabled: &BTreeSet<&'static str>,
) -> (Option<String>, BTreeSet<&'static str>) {
    let mut rules = Rules {
        disabled,
        fired: BTreeSet::new(),
    };
    let (mut ours, mut reference) = (ours.clone(), reference.clone());
    normalise_ours(probe, &mut ours, &mut rules);
    normalise_reference(probe, &mut reference, &mut rules);
    normalise_both(probe, &mut ours, &mut rules);
    normalise_both(probe, &mut reference, &mut rules);
    let diff = if ours.status != reference.status {
        Some(format!(
            "status ours {} {}, reference {} {}",
            ours.status,
            short(&ours.body),
            reference.status,
            short(&reference.body)
        ))
    } else if ours.status >= 400 {
        if ours.body != reference.body && !rules.allow("error_bodies") {
            first_difference("$", &ours.body, &reference.body)
        } else {
            None
        }
    } else if !ours.body.is_null()
        && ours.content_type.split(';').next() != reference.content_type.split(';').next()
    {
        Some(format!(
            "media type ours {}, reference {}",
            ours.content_type, reference.content_type
        ))
    } else {
        first_difference("$", &ours.body, &reference.body)
    };
    (diff, rules.fired)
}

/// How one request compared.
enum Verdict {
    /// The same status and body, byte for byte after parsing.
    Same,
    /// The same once these deliberate differences are normalised (each one needed).
    Explained(BTreeSet<&'static str>),
    /// Still different: where.
    Different(String),
}

fn judge(probe: &Probe, ours: &Reply, reference: &Reply) -> Verdict {
    let elsewhere = probe.reference_path.as_ref().map(|(_, id)| *id);
    if ours.status == reference.status && ours.body == reference.body {
        return match elsewhere {
            None => Verdict::Same,
            Some(id) => Verdict::Explained(BTreeSet::from([id])),
        };
    }
    let (diff, fired) = compare(probe, ours, reference, &BTreeSet::new());
    if let Some(diff) = diff {
        return Verdict::Different(diff);
    }
    // report only the normalisations without which the answers would differ
    let needed: BTreeSet<&'static str> = fired
        .iter()
        .copied()
        .filter(|id| {
            compare(probe, ours, reference, &BTreeSet::from([*id]))
                .0
                .is_some()
        })
        .collect();
    let mut explained = if needed.is_empty() { fired } else { needed };
    explained.extend(elsewhere);
    Verdict::Explained(explained)
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 90 {
        format!("{}...", text.chars().take(90).collect::<String>())
    } else {
        text
    }
}

/// Where two JSON values first differ, as `path: ours X, reference Y`.
fn first_difference(path: &str, ours: &Value, reference: &Value) -> Option<String> {
    match (ours, reference) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys()) {
                let here = format!("{path}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => {
                        if let Some(diff) = first_difference(&here, x, y) {
                            return Some(diff);
                        }
                    }
                    (Some(x), None) => {
                        return Some(format!("{here}: only ours has it ({})", short(x)))
                    }
                    (None, Some(y)) => {
                        return Some(format!("{here}: only the reference has it ({})", short(y)))
                    }
                    (None, None) => {}
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if let Some(diff) = first_difference(&format!("{path}[{i}]"), x, y) {
                    return Some(diff);
                }
            }
            (a.len() != b.len()).then(|| {
                format!(
                    "{path}: ours has {} items, the reference {}",
                    a.len(),
                    b.len()
                )
            })
        }
        (x, y) if x == y => None,
        (x, y) => Some(format!("{path}: ours {}, reference {}", short(x), short(y))),
    }
}

// ------------------------------------------------------------------------------------------
// The run
// ------------------------------------------------------------------------------------------

/// The verdict on one route: its requests, and how they compared.
struct RouteReport {
    name: String,
    requests: usize,
    differences: Vec<String>,
    normalised: BTreeSet<&'static str>,
    note: Option<String>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ours, reference] = args.as_slice() else {
        eprintln!("usage: cargo run --example compare_reference -- OURS_URL REFERENCE_URL");
        eprintln!("       (each like http://127.0.0.1:PORT/api/v1)");
        return ExitCode::from(2);
    };
    let ours = Server::new("ours", ours);
    let reference = Server::new("reference", reference);
    match run(&ours, &reference) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Unreachable(detail)) => {
            eprintln!("compare_reference: cannot reach {detail}");
            ExitCode::from(2)
        }
    }
}

fn run(ours: &Server, reference: &Server) -> Result<(), Unreachable> {
    let expected = [
        METRICS as i64,
        sessions().len() as i64,
        contexts().len() as i64,
    ];
    let mut posts = vec![];
    let mut loaded = [false; 2];
    for (i, server) in [ours, reference].into_iter().enumerate() {
        let counts = server.counts()?;
        if counts == expected {
            println!(
                "note: {} already holds the data set; not posting it again",
                server.label
            );
            loaded[i] = true;
        } else if counts != [0, 0, 0] {
            println!(
                "WARNING: {} holds other data (metrics, sessions, contexts = {counts:?}); \
                 start both servers on fresh databases for a meaningful comparison",
                server.label
            );
        }
    }
    // POST the data set, in the order pytest-monitor does: contexts, sessions, metrics
    let bodies: Vec<(&str, Value)> = contexts()
        .into_iter()
        .map(|c| ("/contexts/", c))
        .chain(sessions().into_iter().map(|s| ("/sessions/", s)))
        .chain(metrics().into_iter().map(|m| ("/metrics/", m)))
        .collect();
    for (path, body) in &bodies {
        let ours_reply = (!loaded[0]).then(|| ours.post(path, body)).transpose()?;
        let reference_reply = (!loaded[1])
            .then(|| reference.post(path, body))
            .transpose()?;
        posts.push((*path, ours_reply, reference_reply, None));
    }
    // what pytest-xdist workers do: create the same context and session again
    if loaded == [false, false] {
        for (i, (path, body)) in bodies.iter().enumerate() {
            let context_a = *path == "/contexts/" && body["h"] == CTX_A;
            let session_1 = *path == "/sessions/" && body["session_h"] == S1;
            if context_a || session_1 {
                let first = posts[i].2.clone();
                posts.push((
                    *path,
                    Some(ours.post(path, body)?),
                    Some(reference.post(path, body)?),
                    first,
                ));
            }
        }
    }

    let mut reports = Vec::new();
    for endpoint in ENDPOINTS {
        let route = endpoint.path;
        let name = format!("{} {route}", endpoint.method);
        if endpoint.method.as_str() == "POST" {
            let mut report = RouteReport {
                name,
                requests: 0,
                differences: vec![],
                normalised: BTreeSet::new(),
                note: None,
            };
            for (path, ours_reply, reference_reply, first) in &posts {
                if path.trim_end_matches('/') != route {
                    continue;
                }
                let probe = Probe {
                    route,
                    path: path.to_string(),
                    reference_path: None,
                    shape: endpoint.answer,
                    first_creation: first.clone(),
                };
                let (Some(a), Some(b)) = (ours_reply, reference_reply) else {
                    report.note = Some("not compared: a server already held the data set".into());
                    continue;
                };
                report.requests += 1;
                match judge(&probe, a, b) {
                    Verdict::Same => {}
                    Verdict::Explained(ids) => report.normalised.extend(ids),
                    Verdict::Different(diff) => {
                        let again = if first.is_some() { " (again)" } else { "" };
                        report
                            .differences
                            .push(format!("POST {path}{again}: {diff}"))
                    }
                }
            }
            reports.push(report);
            continue;
        }
        if matches!(endpoint.answer, Shape::Comparison) {
            reports.push(RouteReport {
                name,
                requests: 0,
                differences: vec![],
                normalised: BTreeSet::new(),
                note: Some("this server's own: monitor-server-api has no such route".into()),
            });
            continue;
        }
        let mut probes: Vec<Probe> = Vec::new();
        let paths = match expand(route, endpoint.answer) {
            Ok(paths) => paths,
            Err(why) => {
                reports.push(RouteReport {
                    name,
                    requests: 0,
                    differences: vec![format!("UNTESTED: {why}")],
                    normalised: BTreeSet::new(),
                    note: None,
                });
                continue;
            }
        };
        for path in paths {
            let paged = matches!(endpoint.answer, Shape::Page { .. });
            for query in if paged {
                &["", "?page=2", "?page=-1"][..]
            } else {
                &[""][..]
            } {
                let path = format!("{path}{query}");
                probes.push(Probe {
                    route,
                    reference_path: asked_elsewhere(&path),
                    path,
                    shape: endpoint.answer,
                    first_creation: None,
                });
            }
        }
        for path in extra_probes(route) {
            probes.push(Probe {
                route,
                reference_path: asked_elsewhere(&path),
                path,
                shape: endpoint.answer,
                first_creation: None,
            });
        }
        let mut report = RouteReport {
            name,
            requests: probes.len(),
            differences: vec![],
            normalised: BTreeSet::new(),
            note: None,
        };
        for probe in &probes {
            let a = ours.get(&probe.path)?;
            let asked = probe
                .reference_path
                .as_ref()
                .map_or(&probe.path, |(path, _)| path);
            let b = reference.get(asked)?;
            match judge(probe, &a, &b) {
                Verdict::Same => {}
                Verdict::Explained(ids) => report.normalised.extend(ids),
                Verdict::Different(diff) => report
                    .differences
                    .push(format!("GET {}: {diff}", probe.path)),
            }
        }
        reports.push(report);
    }

    let (mut same, mut explained, mut different, mut skipped) = (0, 0, 0, 0);
    let mut all_fired = BTreeSet::new();
    for report in &reports {
        let requests = format!(
            "[{} request{}]",
            report.requests,
            if report.requests == 1 { "" } else { "s" }
        );
        if report.requests == 0 && report.differences.is_empty() {
            skipped += 1;
            let note = report.note.as_deref().unwrap_or("no request");
            println!("SKIPPED    {} ({note})", report.name);
        } else if !report.differences.is_empty() {
            different += 1;
            println!("DIFFERENT  {} {requests}", report.name);
            for diff in &report.differences {
                println!("             {diff}");
            }
        } else if report.normalised.is_empty() {
            same += 1;
            println!("SAME       {} {requests}", report.name);
        } else {
            explained += 1;
            let ids: Vec<&str> = report.normalised.iter().copied().collect();
            println!(
                "SAME*      {} {requests} after: {}",
                report.name,
                ids.join(", ")
            );
            all_fired.extend(report.normalised.iter().copied());
        }
    }
    println!();
    let skipped = if skipped > 0 {
        format!(", {skipped} SKIPPED")
    } else {
        String::new()
    };
    println!(
        "{} routes: {same} SAME, {explained} SAME* (deliberate differences normalised), \
         {different} DIFFERENT{skipped}",
        reports.len()
    );
    if !all_fired.is_empty() {
        println!("deliberate differences seen:");
        for (id, reason) in DELIBERATE.iter().filter(|(id, _)| all_fired.contains(id)) {
            println!("  {id}: {reason}");
        }
    }
    Ok(())
}
