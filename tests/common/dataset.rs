//! A small, realistic data set for the query routes, built through the API itself: four
//! sessions (three of them CI runs of two pipelines, one run without tags), two execution
//! contexts, and twelve metrics spread over components (including the empty one), kinds and SCM
//! references, with `%`, `_`, `\` and `/` in test names.
//!
//! Tests name a metric by its number in [`METRICS`] (1 is the first stored), so an expectation
//! reads `[1, 2, 6]`; [`listed`] maps a listing back to those numbers and checks that every
//! record came back exactly as it was posted.

use serde_json::{json, Value};

use super::{context, spawn_app_with_page_size, TestApp};

/// Session of the `main` pipeline, build 7, SCM reference `3a32301aa`.
pub const S1: &str = "5e5510a1000000000000000000000000000000a1";
/// Session of the `main` pipeline, build 10, SCM reference `3a32302bb`, tag `team=backend`.
pub const S2: &str = "5e5520b2000000000000000000000000000000b2";
/// Session of the `release/2.0` pipeline, build 3, SCM reference `77e1f00`, tag `team=""`.
pub const S3: &str = "5e5530c3000000000000000000000000000000c3";
/// A local run: no tags, empty SCM reference, no metrics.
pub const S4: &str = "5e5540d4000000000000000000000000000000d4";
/// The machine of S1 and S2.
pub const CA: &str = "c7a1e0f2b3d4e5f60718293a4b5c6d7e8f9012ca";
/// The machine of S3.
pub const CB: &str = "d8b2f1a3c4e5f6071829304b5c6d7e8f90a123cb";

/// One stored metric.
pub struct Row {
    pub session_h: &'static str,
    pub context_h: &'static str,
    pub item_start_time: &'static str,
    pub item: &'static str,
    pub item_variant: &'static str,
    pub kind: &'static str,
    pub component: &'static str,
    pub total_time: f64,
    pub user_time: f64,
    pub kernel_time: f64,
    pub cpu_usage: f64,
    pub mem_usage: f64,
}

/// One numeric column of a [`Row`], to sort or rank by.
pub type Column = fn(&Row) -> f64;

/// `[session_h, context_h, item_start_time, item, item_variant, kind, component]` and
/// `[total_time, user_time, kernel_time, cpu_usage, mem_usage]`.
const fn row(text: [&'static str; 7], numbers: [f64; 5]) -> Row {
    let [session_h, context_h, item_start_time, item, item_variant, kind, component] = text;
    Row {
        session_h,
        context_h,
        item_start_time,
        item,
        item_variant,
        kind,
        component,
        total_time: numbers[0],
        user_time: numbers[1],
        kernel_time: numbers[2],
        cpu_usage: numbers[3],
        mem_usage: numbers[4],
    }
}

/// The metrics in the order they are stored; see [`row`] for the fields.
/// Every numeric column has distinct values except `cpu_usage`, where 1, 2, 4 and 6 tie (0.8)
/// so that ties show their order. Start times are given in every spelling the contract allows;
/// metric 2 started before metric 1, and 7 (at 07:59:59Z) before 6.
#[rustfmt::skip]
pub const METRICS: [Row; 12] = [
    /* 1 */ row([S1, CA, "2021-03-01T08:00:01", "test_login", "test_login[user]", "function", "api"],
                [1.5, 1.0, 0.2, 0.8, 12.0]),
    /* 2 */ row([S1, CA, "2021-03-01T08:00:00.500000", "test_login", "test_login[admin]", "function", "api"],
                [0.5, 0.3, 0.1, 0.8, 8.0]),
    /* 3 */ row([S1, CA, "2021-03-01T08:00:04.5", "test_100%_cover", "test_100%_cover[]", "function", "api_v2"],
                [2.5, 2.0, 0.3, 0.92, 30.0]),
    /* 4 */ row([S1, CA, "2021-03-01 08:00:07", "test_a_b", "test_a_b[x]", "function", "apiXv3"],
                [0.25, 0.15, 0.05, 0.8, -2.0]),
    /* 5 */ row([S1, CA, "2021-03-01T08:00:09", "TestSuite", "TestSuite", "class", ""],
                [4.0, 3.5, 0.4, 0.975, 64.0]),
    /* 6 */ row([S2, CA, "2021-03-02T08:00:01Z", "test_login", "test_login[user]", "function", "api"],
                [1.75, 1.25, 0.15, 0.8, 14.0]),
    /* 7 */ row([S2, CA, "2021-03-02T09:59:59+02:00", "testXaYb", "testXaYb[]", "function", "apiXv3"],
                [0.75, 0.5, 0.125, 0.8333, 5.0]),
    /* 8 */ row([S2, CA, "2021-03-02T08:00:03", "test_back\\slash", "test_back\\slash[1]", "function", ""],
                [3.0, 2.25, 0.5, 0.9166, 40.0]),
    /* 9 */ row([S2, CA, "2021-03-02T07:00:04-01:00", "test_backslash", "test_backslash[1]", "function", "db/core"],
                [0.1, 0.04, 0.02, 0.6, 1.0]),
    /* 10 */ row([S3, CB, "2021-03-03T08:00:01", "test_path/sep", "test_path/sep[a/b]", "function", "db/core"],
                 [5.0, 4.5, 0.35, 0.97, 100.0]),
    /* 11 */ row([S3, CB, "2021-03-03T08:00:02.250", "tests.test_mod", "tests.test_mod", "module", "db/core"],
                 [6.0, 0.6, 0.45, 0.175, 3.0]),
    /* 12 */ row([S3, CB, "2021-03-03T08:00:03", "test_login", "test_login[user]", "function", ""],
                 [0.05, 0.01, 0.0, 0.2, 0.5]),
];

/// Metric `n` (counted from 1) as it was posted and is listed back.
pub fn metric_json(n: usize) -> Value {
    let m = &METRICS[n - 1];
    json!({
        "session_h": m.session_h,
        "context_h": m.context_h,
        "item_start_time": m.item_start_time,
        "item_path": "tests.test_queries",
        "item": m.item,
        "item_variant": m.item_variant,
        "item_fs_loc": "tests/test_queries.py",
        "kind": m.kind,
        "component": m.component,
        "total_time": m.total_time,
        "user_time": m.user_time,
        "kernel_time": m.kernel_time,
        "cpu_usage": m.cpu_usage,
        "mem_usage": m.mem_usage
    })
}

/// The four sessions as posted.
pub fn session_json(session_h: &str) -> Value {
    match session_h {
        S1 => json!({"session_h": S1, "run_date": "2021-03-01T08:00:00", "scm_ref": "3a32301aa",
            "description": {"description": "nightly", "pipeline_branch": "main",
                            "pipeline_build_no": "7", "__ci__": "gitlab"}}),
        S2 => json!({"session_h": S2, "run_date": "2021-03-02T08:00:00", "scm_ref": "3a32302bb",
            "description": {"pipeline_branch": "main", "pipeline_build_no": "10",
                            "team": "backend", "__ci__": "gitlab"}}),
        S3 => json!({"session_h": S3, "run_date": "2021-03-03T08:00:00", "scm_ref": "77e1f00",
            "description": {"pipeline_branch": "release/2.0", "pipeline_build_no": "3",
                            "team": "", "__ci__": "gitlab"}}),
        S4 => json!({"session_h": S4, "run_date": "2021-03-04T08:00:00", "scm_ref": "",
            "description": {}}),
        other => panic!("no session {other} in the data set"),
    }
}

/// A session as the listings answer it: as posted, plus its tags.
pub fn listed_session(session_h: &str) -> Value {
    let mut session = session_json(session_h);
    let tags: Vec<Value> = session["description"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    session["tags"] = Value::Array(tags);
    session
}

/// A server holding the data set, with the default page size.
pub fn seeded_app() -> TestApp {
    seeded_app_with_page_size(500)
}

/// A server holding the data set, with `page_size` rows per page.
pub fn seeded_app_with_page_size(page_size: u64) -> TestApp {
    let app = spawn_app_with_page_size(page_size);
    for h in [CA, CB] {
        app.create("/api/v1/contexts/", &context(h));
    }
    for h in [S1, S2, S3, S4] {
        app.create("/api/v1/sessions/", &session_json(h));
    }
    for n in 1..=METRICS.len() {
        app.create("/api/v1/metrics/", &metric_json(n));
    }
    app
}

/// The numbers of the metrics `body["metrics"]` lists, in its order; panics on a metric that is
/// not exactly one of the data set's.
pub fn numbers(body: &Value) -> Vec<usize> {
    let list = body["metrics"]
        .as_array()
        .unwrap_or_else(|| panic!("no metrics array in {body}"));
    list.iter()
        .map(|m| {
            (1..=METRICS.len())
                .find(|n| metric_json(*n) == *m)
                .unwrap_or_else(|| panic!("not a metric of the data set, as posted: {m}"))
        })
        .collect()
}

/// `GET path` on a metric listing: the numbers of the metrics on that page, `[]` for a 204 with
/// no body. Any other status fails, as does a 200 whose envelope has keys other than the
/// documented ones or an empty list.
pub fn listed(app: &TestApp, path: &str) -> Vec<usize> {
    let (status, body) = app.get(path);
    match status {
        204 => {
            assert_eq!(body, Value::Null, "GET {path}: a 204 with a body");
            vec![]
        }
        200 => {
            assert_envelope(&body, "metrics", &[]);
            let found = numbers(&body);
            assert!(!found.is_empty(), "GET {path}: 200 with an empty list");
            found
        }
        _ => panic!("GET {path} answered {status}: {body}"),
    }
}

/// Asserts a page's keys are exactly `extra`, `key`, `total_page` and the links it may carry.
pub fn assert_envelope(body: &Value, key: &str, extra: &[&str]) {
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"));
    assert!(object[key].is_array(), "`{key}` is not an array: {body}");
    assert!(
        object["total_page"].as_u64().is_some_and(|n| n >= 1),
        "{body}"
    );
    for field in extra {
        assert!(object[*field].is_string(), "`{field}` missing: {body}");
    }
    for found in object.keys() {
        let known = found == key
            || extra.contains(&found.as_str())
            || ["total_page", "prev_url", "next_url"].contains(&found.as_str());
        assert!(known, "unexpected key `{found}` in {body}");
    }
}

/// Follows `next_url` from `path` to the last page, checking that every link keeps `keep` (the
/// query parameters other than `page`) and that `prev_url` leads back; returns every page's body.
pub fn walk_pages(app: &TestApp, path: &str, keep: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut next = Some(path.to_owned());
    while let Some(url) = next {
        let (status, body) = app.get(&url);
        assert_eq!(status, 200, "GET {url}: {body}");
        let page_no = pages.len() + 1;
        if page_no > 1 {
            let prev = body["prev_url"]
                .as_str()
                .unwrap_or_else(|| panic!("page {page_no} has no prev_url: {body}"));
            assert!(prev.contains(keep), "{prev} lost `{keep}`");
            assert!(prev.ends_with(&format!("page={}", page_no - 1)), "{prev}");
        } else {
            assert_eq!(
                body.get("prev_url"),
                Some(&Value::Null),
                "page 1 links back: {body}"
            );
        }
        next = body["next_url"].as_str().map(|link| {
            assert!(link.contains(keep), "{link} lost `{keep}`");
            assert!(link.ends_with(&format!("page={}", page_no + 1)), "{link}");
            link.to_owned()
        });
        pages.push(body);
        assert!(pages.len() <= 100, "more than 100 pages from {path}");
    }
    let total = pages[0]["total_page"].as_u64().unwrap();
    assert_eq!(pages.len() as u64, total, "{path}: total_page disagrees");
    pages
}

/// The data set's metric numbers for which `keep` holds, in the order stored.
pub fn matching(keep: impl Fn(&Row) -> bool) -> Vec<usize> {
    (1..=METRICS.len())
        .filter(|n| keep(&METRICS[n - 1]))
        .collect()
}

/// `numbers` ordered by `key` (descending when `desc`), ties in the order stored — the order
/// `sort=` and head/tail promise.
pub fn ordered_by(numbers: &[usize], key: impl Fn(&Row) -> f64, desc: bool) -> Vec<usize> {
    let mut sorted = numbers.to_vec();
    sorted.sort_by(|a, b| {
        let (ka, kb) = (key(&METRICS[a - 1]), key(&METRICS[b - 1]));
        let by_key = if desc {
            kb.partial_cmp(&ka)
        } else {
            ka.partial_cmp(&kb)
        };
        by_key.expect("no NaN in the data set").then(a.cmp(b))
    });
    sorted
}

/// Every metric number, in the order stored.
pub fn all() -> Vec<usize> {
    (1..=METRICS.len()).collect()
}
