//! The dashboard at `GET /`, in a real headless Chromium: a server on a free port with a fresh
//! database is fed through the API (twelve runs of one pipeline on two machines, one test made
//! twice as slow in the last build, and — when the venv of `tests/common/venv.rs` can be had — one
//! run of the real pytest-monitor, as a newcomer's first run), then each view is opened and
//! checked for what a person sees: the runs and their test counts, a filter narrowing them, a
//! sort reordering a run's metrics, a test's charts with one point per run on one line per
//! machine and labelled axes, the slowest and hungriest tests, and the regression in red in a
//! comparison. An empty store and a server that wants a token for reading are checked too.
//!
//! Every view is saved as a PNG under `<target>/tmp/dashboard-screenshots/`, and also into the
//! directory `MONITOR_SERVER_SCREENSHOTS` names (the README's pictures come from
//! `MONITOR_SERVER_SCREENSHOTS=docs/screenshots cargo test --test e2e dashboard`).
//!
//! Prerequisites: `chromium` and `chromedriver` on the PATH (Debian: `chromium`,
//! `chromium-driver`). Missing, the tests fail on CI (`CI=true`) and print `SKIPPED:` elsewhere.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use monitor_server::routes::auth::{Secret, Tokens};
use serde_json::{json, Value};

use crate::browser::{self, Browser};
use crate::common::{spawn_app_with_tokens, Home, Setup, TestApp};
use crate::store;

// ------------------------------------------------------------------------------ the server

/// `POST /api/v1{path}` with the write token, which must be answered 201.
fn post(app: &TestApp, path: &str, body: Value) {
    let url = app.url(path);
    let answer = ureq::post(&url)
        .set("Authorization", "Bearer write-token")
        .set("Content-Type", "application/json")
        .send_string(&body.to_string());
    match answer {
        Ok(response) => assert_eq!(response.status(), 201, "POST {path}: {body}"),
        Err(err) => panic!("POST {path} {body}: {err}"),
    }
}

/// The status of `GET path`, sent without a token.
fn get_status(app: &TestApp, path: &str) -> u16 {
    match ureq::get(&format!("{}{path}", app.address)).call() {
        Ok(response) => response.status(),
        Err(ureq::Error::Status(status, _)) => status,
        Err(err) => panic!("GET {path}: {err}"),
    }
}

// -------------------------------------------------------------------------------- the data

const MACHINES: [(&str, &str, &str); 2] = [
    ("a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", "ci-runner-1", "backend"),
    (
        "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2",
        "ci-runner-2",
        "frontend",
    ),
];
const BUILDS: u32 = 6;

/// The suite every synthetic run measures: (module, test, component, wall time s, memory MB).
/// In the last build `test_copy` takes twice as long and `test_parse` 60% less; on the second
/// machine everything takes 30% longer and uses 30% more memory.
const TESTS: [(&str, &str, &str, f64, f64); 5] = [
    ("tests.test_io", "test_copy", "storage", 1.0, 40.0),
    ("tests.test_io", "test_parse", "storage", 0.5, 30.0),
    ("tests.test_math", "test_sum", "math", 0.2, 20.0),
    ("tests.test_math", "test_alloc", "math", 0.3, 512.0),
    ("tests.test_math", "test_power[2]", "math", 0.1, 25.0),
];

fn session_of(build: u32, machine: usize) -> String {
    format!("5e55{build:02}{machine:02}{}", "0".repeat(24))
}

/// Stores the execution context `h`, a machine called `node`.
fn post_machine(app: &TestApp, h: &str, node: &str) {
    post(
        app,
        "/contexts/",
        json!({"h": h, "cpu_count": 4, "cpu_frequency": 2900.0, "cpu_type": "x86_64",
               "cpu_vendor": "GenuineIntel", "ram_total": 16384, "machine_node": node,
               "machine_type": "x86_64", "machine_arch": "64bit",
               "system_info": "Linux - 6.1.0", "python_info": "3.11.2"}),
    );
}

/// Twelve runs: builds 1 to 6 of pipeline `main`, each on both machines, a day apart.
fn load_history(app: &TestApp) {
    for (h, node, _) in MACHINES {
        post_machine(app, h, node);
    }
    for build in 1..=BUILDS {
        for (machine, (context, _, team)) in MACHINES.iter().enumerate() {
            let session = session_of(build, machine);
            let day = 10 + build;
            post(
                app,
                "/sessions/",
                json!({"session_h": session, "run_date": format!("2026-11-{day}T0{machine}:30:00"),
                       "scm_ref": format!("{:07x}", 0xabc0000 + build),
                       "description": {"team": team, "pipeline_branch": "main",
                                       "pipeline_build_no": build.to_string()}}),
            );
            for (i, (path, test, component, wall, memory)) in TESTS.iter().enumerate() {
                let slowdown = match (build == BUILDS, *test) {
                    (true, "test_copy") => 2.0,
                    (true, "test_parse") => 0.4,
                    _ => 1.0,
                };
                // A little variation from run to run, as real measurements have.
                let jitter = 1.0 + 0.02 * f64::from((build + i as u32) % 3);
                // The second machine is slower and uses more memory, so its line stands apart.
                let machine_factor = 1.0 + 0.3 * machine as f64;
                let wall = wall * slowdown * jitter * machine_factor;
                let item = test.split('[').next().unwrap_or(test);
                post(
                    app,
                    "/metrics/",
                    json!({"session_h": session, "context_h": context,
                           "item_start_time": format!("2026-11-{day}T0{machine}:30:{:02}", 10 + i),
                           "item_path": path, "item": item, "item_variant": test,
                           "item_fs_loc": format!("{}.py", path.replace('.', "/")),
                           "kind": "function", "component": component,
                           "total_time": wall, "user_time": wall * 0.7, "kernel_time": wall * 0.1,
                           "cpu_usage": 0.8, "mem_usage": memory * jitter * machine_factor}),
                );
            }
        }
    }
}

/// A newcomer's project, run once under the real pytest-monitor.
const NEWCOMER_SUITE: &str = r#"import time


def test_sleeps():
    time.sleep(0.3)


def test_builds_a_list():
    assert len(list(range(200000))) == 200000


def test_quick():
    assert 1 + 1 == 2
"#;

/// What the newcomer's run holds: its session and its test variants.
struct Newcomer {
    session: String,
    tests: Vec<String>,
}

/// `pytest --remote-server <origin>/api/v1` with the real plugin; `None` (after `SKIPPED:`)
/// without its venv outside CI.
fn run_newcomer(app: &TestApp) -> Option<Newcomer> {
    let python = crate::common::venv_python("dashboard: a newcomer's pytest-monitor run")?;
    let suite = tempfile::tempdir().expect("a temp dir for the suite");
    fs::write(suite.path().join("test_newcomer.py"), NEWCOMER_SUITE).expect("write the suite");
    // A newcomer's first run is untagged: nothing in the environment may make it a CI build.
    let cmd =
        crate::common::pytest_command(&python, suite.path(), &format!("{}/api/v1", app.address));
    let (status, output) = crate::common::run_bounded(cmd, Duration::from_secs(240))
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(status.success(), "pytest failed ({status}):\n{output}");
    assert!(
        !output.contains("Deactivating"),
        "the plugin stopped uploading:\n{output}"
    );
    let sessions: Value = ureq::get(&format!("{}/api/v1/sessions/?per_page=100", app.address))
        .call()
        .expect("list sessions")
        .into_string()
        .ok()
        .and_then(|body| serde_json::from_str(&body).ok())
        .expect("the sessions as JSON");
    let session = sessions["sessions"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .map(|s| s["session_h"].as_str().unwrap_or_default())
                .find(|h| !h.starts_with("5e55"))
        })
        .expect("the plugin's session is stored")
        .to_owned();
    let tests = vec![
        "test_sleeps".into(),
        "test_builds_a_list".into(),
        "test_quick".into(),
    ];
    Some(Newcomer { session, tests })
}

// --------------------------------------------------------------------------- screenshots

/// The views the README shows; the others are saved under the target directory only.
const DOCUMENTED: [&str; 11] = [
    "changes",
    "test-changes",
    "runs-changes",
    "runs",
    "run",
    "test",
    "slowest",
    "hungriest",
    "compare",
    "empty",
    "token",
];

/// Saves the window as `<name>.png` in the target's temp dir, and in `MONITOR_SERVER_SCREENSHOTS`
/// when it is set and the view is [`DOCUMENTED`]; the window grows to the page's height first
/// (within reason), so a picture shows the whole view.
fn screenshot(browser: &Browser, name: &str) {
    let height = browser
        .execute("return document.documentElement.scrollHeight", json!([]))
        .as_u64()
        .unwrap_or(u64::from(browser::WINDOW.1)) as u32;
    let height = height.clamp(600, 1800);
    browser.resize(browser::WINDOW.0, height + browser_chrome(browser));
    let mut dirs = vec![PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots")];
    if let Some(dir) = std::env::var_os("MONITOR_SERVER_SCREENSHOTS") {
        if DOCUMENTED.contains(&name) {
            dirs.push(PathBuf::from(dir));
        }
    }
    for dir in dirs {
        fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
        browser.screenshot(&dir.join(format!("{name}.png")));
    }
    browser.resize(browser::WINDOW.0, browser::WINDOW.1);
}

/// The height the window adds around the page (none in headless mode, but not assumed).
fn browser_chrome(browser: &Browser) -> u32 {
    browser
        .execute("return window.outerHeight - window.innerHeight", json!([]))
        .as_u64()
        .unwrap_or(0) as u32
}

// ---------------------------------------------------------------------------------- checks

/// The `data-session` of each row of the runs table, top to bottom.
fn listed_runs(browser: &Browser) -> Vec<String> {
    serde_json::from_value(browser.execute(
        "return [...document.querySelectorAll('tbody tr[data-session]')].map(r => r.dataset.session)",
        json!([]),
    ))
    .expect("a list")
}

/// The `data-variant` of each row of the view's table, top to bottom.
fn listed_variants(browser: &Browser) -> Vec<String> {
    serde_json::from_value(browser.execute(
        "return [...document.querySelectorAll('tbody tr[data-variant]')].map(r => r.dataset.variant)",
        json!([]),
    ))
    .expect("a list")
}

/// The text of the cell in `column` (its header) of the row with `data-<key>="<value>"`.
fn cell(browser: &Browser, key: &str, value: &str, column: &str) -> String {
    browser
        .execute(
            "const [key, value, column] = arguments;
             const headers = [...document.querySelectorAll('thead th')].map(th => th.innerText.replace(/[▲▼]/g, '').trim());
             const index = headers.indexOf(column);
             const row = [...document.querySelectorAll('tbody tr')].find(r => r.dataset[key] === value);
             return row && index >= 0 ? row.cells[index].innerText.trim() : null",
            json!([key, value, column]),
        )
        .as_str()
        .unwrap_or_else(|| panic!("no cell {column} in the row {key}={value}"))
        .to_owned()
}

fn wall_times(browser: &Browser) -> Vec<f64> {
    let header = "Wall time";
    listed_variants(browser)
        .iter()
        .map(|v| {
            cell(browser, "variant", v, header)
                .trim_end_matches(" s")
                .parse::<f64>()
                .unwrap_or(f64::NAN)
        })
        .collect()
}

#[test]
fn every_view_shows_the_stored_runs_as_a_person_would_read_them() {
    let Some(browser) = Browser::start("dashboard views") else {
        return;
    };
    let app = spawn_app_with_tokens(Tokens::default());
    load_history(&app);
    let newcomer = run_newcomer(&app);
    let runs_total = 12 + usize::from(newcomer.is_some());
    let origin = app.address.as_str();

    // Runs, newest first, each with its test count; the summary counts them.
    let text = browser.open_view(origin, "/runs");
    let runs = listed_runs(&browser);
    assert_eq!(runs.len(), runs_total, "every run is listed:\n{text}");
    let last_a = session_of(BUILDS, 0);
    let previous_a = session_of(BUILDS - 1, 0);
    if let Some(newcomer) = &newcomer {
        assert_eq!(
            runs[0], newcomer.session,
            "the newcomer's run is the newest"
        );
        assert_eq!(cell(&browser, "session", &newcomer.session, "Tests"), "3");
        assert_eq!(
            cell(&browser, "session", &newcomer.session, "Pipeline / build"),
            "–"
        );
    }
    let synthetic = &runs[runs_total - 12..];
    assert_eq!(synthetic[0], session_of(BUILDS, 1), "newest first:\n{text}");
    assert_eq!(synthetic[11], session_of(1, 0), "oldest last:\n{text}");
    assert_eq!(cell(&browser, "session", &last_a, "Tests"), "5");
    assert_eq!(
        cell(&browser, "session", &last_a, "Pipeline / build"),
        "main / 6"
    );
    assert!(cell(&browser, "session", &last_a, "Tags").contains("team=backend"));
    assert!(
        browser
            .text("#summary")
            .contains(&format!("{runs_total} runs")),
        "the summary: {}",
        browser.text("#summary")
    );
    screenshot(&browser, "runs");

    // A filter narrows the list: the backend team's runs only.
    browser.choose("select[name=tag]", "team:backend");
    browser.wait_ready("/runs?tag=team%3Abackend");
    let backend = listed_runs(&browser);
    assert_eq!(backend.len(), 6, "six runs on the backend team's machine");
    assert!(backend
        .iter()
        .all(|h| h.ends_with(&format!("00{}", "0".repeat(24)))));
    browser.choose("select[name=component]", "math");
    browser.wait_ready("/runs?tag=team%3Abackend&component=math");
    assert_eq!(listed_runs(&browser).len(), 6);
    screenshot(&browser, "runs-filtered");

    // Two runs ticked and compared: the slowed test is first, red, and called a regression.
    browser.open_view(origin, "/runs");
    browser.click(&format!("input[type=checkbox][data-session=\"{last_a}\"]"));
    browser.click(&format!(
        "input[type=checkbox][data-session=\"{previous_a}\"]"
    ));
    browser.click("#compare-button");
    let compare = format!("/compare?baseline=session%3A{previous_a}&candidate=session%3A{last_a}");
    let text = browser.wait_ready(&compare);
    assert_eq!(
        listed_variants(&browser).first().map(String::as_str),
        Some("test_copy"),
        "the regression comes first:\n{text}"
    );
    assert_eq!(
        cell(&browser, "variant", "test_copy", "Verdict"),
        "regressed"
    );
    let background = browser.execute(
        "return getComputedStyle(document.querySelector('tr[data-variant=\"test_copy\"]')).backgroundColor",
        json!([]),
    );
    assert_eq!(
        background,
        json!("rgb(253, 236, 234)"),
        "the regressed row is red"
    );
    assert_eq!(
        browser.count("tbody tr.verdict-regressed"),
        1,
        "only the slowed test regressed:\n{text}"
    );
    assert!(browser
        .text("[data-count=regressed]")
        .starts_with("1 regressed"));
    assert_eq!(
        cell(&browser, "variant", "test_parse", "Verdict"),
        "improved"
    );
    let background = browser.execute(
        "return getComputedStyle(document.querySelector('tr[data-variant=\"test_parse\"]')).backgroundColor",
        json!([]),
    );
    assert_eq!(
        background,
        json!("rgb(230, 244, 234)"),
        "the improved row is green"
    );
    assert!(cell(&browser, "variant", "test_copy", "Wall time").contains('+'));
    screenshot(&browser, "compare");
    // Ordered by the wall time's change instead, in the page: the largest growth first, then
    // (clicked again) the largest drop.
    browser.click("th button[data-sort=total_time]");
    browser.wait_for(
        "the comparison ordered by wall time",
        "return document.querySelector('th[aria-sort=descending] button[data-sort=total_time]') !== null",
        json!([]),
    );
    assert_eq!(listed_variants(&browser)[0], "test_copy");
    browser.click("th button[data-sort=total_time]");
    browser.wait_for(
        "the comparison ordered by wall time, smallest first",
        "return document.querySelector('th[aria-sort=ascending] button[data-sort=total_time]') !== null",
        json!([]),
    );
    let by_drop = listed_variants(&browser);
    assert_eq!(by_drop.first().map(String::as_str), Some("test_parse"));
    assert_eq!(by_drop.last().map(String::as_str), Some("test_copy"));

    // A run's metrics: sorted by the server on a header's click.
    let text = browser.open_view(origin, &format!("/runs/{last_a}"));
    assert!(text.contains("main / 6"), "{text}");
    let stored_order = listed_variants(&browser);
    assert_eq!(stored_order.len(), 5, "{text}");
    assert_eq!(stored_order[0], "test_copy", "in the order stored");
    browser.click("th button[data-sort=total_time]");
    browser.wait_ready(&format!("/runs/{last_a}?sort=total_time&order=desc"));
    let slowest_first = listed_variants(&browser);
    let times = wall_times(&browser);
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "descending: {times:?}"
    );
    browser.click("th button[data-sort=total_time]");
    browser.wait_ready(&format!("/runs/{last_a}?sort=total_time&order=asc"));
    let mut fastest_first = listed_variants(&browser);
    assert_ne!(fastest_first, slowest_first, "the sort changed the order");
    fastest_first.reverse();
    assert_eq!(fastest_first, slowest_first);
    browser.click("th button[data-sort=total_time]");
    browser.wait_ready(&format!("/runs/{last_a}?sort=total_time&order=desc"));
    screenshot(&browser, "run");
    browser.type_into("input[name=q]", "power\n");
    browser.wait_ready(&format!(
        "/runs/{last_a}?sort=total_time&order=desc&q=power"
    ));
    assert_eq!(listed_variants(&browser), ["test_power[2]"]);
    // From a run, a comparison with another one typed in.
    browser.click("#compare-this-run");
    browser.wait_ready(&format!("/compare?baseline=&candidate=session%3A{last_a}"));
    browser.type_into("input[name=baseline]", &format!("session:{previous_a}\n"));
    browser.wait_ready(&compare);
    assert_eq!(browser.count("tbody tr.verdict-regressed"), 1);

    // A test's trend: three charts, a line per machine, a point per run, labelled axes.
    let hash = "/test?item_path=tests.test_io&item_variant=test_copy";
    let text = browser.open_view(origin, hash);
    for (chart, label) in [
        ("#chart-wall", "Wall time (s)"),
        ("#chart-cpu", "CPU time (s)"),
        ("#chart-memory", "Memory (MB)"),
    ] {
        assert_eq!(browser.text(&format!("{chart} .y-label")), label);
        assert_eq!(browser.text(&format!("{chart} .x-label")), "Run date");
        for (context, node, _) in MACHINES {
            let points = format!("{chart} g.series[data-context=\"{context}\"] circle");
            assert_eq!(browser.count(&points), BUILDS as usize, "{points}");
            let legend = browser.text(&format!("{chart} .legend li[data-context=\"{context}\"]"));
            assert!(
                legend.contains(node) && legend.contains("6 runs"),
                "{legend}"
            );
        }
        assert!(
            browser.count(&format!("{chart} .y-tick")) >= 3,
            "{chart} has a scale"
        );
    }
    assert!(text.contains("test_copy"));
    screenshot(&browser, "test");
    // The last point of machine 1 is the last build's run.
    browser.click(&format!(
        "#chart-wall g.series[data-context=\"{}\"] a.point:last-of-type",
        MACHINES[0].0
    ));
    browser.wait_ready(&format!("/runs/{last_a}"));

    // The slowest and the hungriest tests.
    let text = browser.open_view(origin, "/slowest");
    let slowest = listed_variants(&browser);
    assert_eq!(
        slowest.first().map(String::as_str),
        Some("test_copy"),
        "{text}"
    );
    if let Some(newcomer) = &newcomer {
        for test in &newcomer.tests {
            assert!(
                slowest.contains(test),
                "{test} is among the slowest tests:\n{text}"
            );
        }
    }
    screenshot(&browser, "slowest");
    browser.choose("select[name=component]", "math");
    browser.wait_ready("/slowest?component=math");
    let math = listed_variants(&browser);
    assert_eq!(
        math.first().map(String::as_str),
        Some("test_alloc"),
        "the slowest of math"
    );
    assert!(math
        .iter()
        .all(|v| ["test_sum", "test_alloc", "test_power[2]"].contains(&v.as_str())));
    let text = browser.open_view(origin, "/hungriest");
    let hungriest = listed_variants(&browser);
    assert_eq!(
        hungriest.first().map(String::as_str),
        Some("test_alloc"),
        "{text}"
    );
    assert!(text.contains("MB"));
    if let Some(newcomer) = &newcomer {
        for test in &newcomer.tests {
            assert!(
                hungriest.contains(test),
                "{test} is among the hungriest:\n{text}"
            );
        }
    }
    screenshot(&browser, "hungriest");

    // Nothing went wrong behind the scenes: no script error, no refused file, no request the
    // Content-Security-Policy blocked.
    assert_eq!(browser.console_errors(), Vec::<String>::new());

    // The newcomer's own run, and one of their tests over time: a single point.
    if let Some(newcomer) = &newcomer {
        let text = browser.open_view(origin, &format!("/runs/{}", newcomer.session));
        let listed = listed_variants(&browser);
        for test in &newcomer.tests {
            assert!(
                listed.contains(test),
                "{test} in the newcomer's run:\n{text}"
            );
        }
        screenshot(&browser, "newcomer-run");
        let text = browser.open_view(
            origin,
            "/test?item_path=test_newcomer&item_variant=test_sleeps",
        );
        assert_eq!(browser.count("#chart-wall circle"), 1, "{text}");
        assert_eq!(browser.count("#chart-memory circle"), 1, "{text}");
    }
}

#[test]
fn an_empty_store_says_how_to_send_the_first_run_and_a_read_token_is_asked_for() {
    let Some(browser) = Browser::start("dashboard: empty store and token") else {
        return;
    };
    let empty = spawn_app_with_tokens(Tokens::default());
    let text = browser.open_view(&empty.address, "/runs");
    assert!(text.contains("No runs yet"), "{text}");
    assert!(
        text.contains(&format!("pytest --remote-server {}/api/v1", empty.address)),
        "{text}"
    );
    screenshot(&browser, "empty");
    // An error of the API is shown with its message and the request, not swallowed.
    let shown = browser.open_failing_view(
        &empty.address,
        "/compare?baseline=session%3Anothing&candidate=session%3Aelse",
    );
    assert!(
        shown.contains("Error 404") && shown.contains("`session:else` matches no session"),
        "{shown}"
    );
    assert!(shown.contains("GET /api/v1/compare?"), "{shown}");

    let guarded = spawn_app_with_tokens(Tokens {
        write: Some(Secret::new("write-token")),
        read: Some(Secret::new("read-token")),
    });
    assert_eq!(
        get_status(&guarded, "/"),
        200,
        "the page itself needs no token"
    );
    assert_eq!(get_status(&guarded, "/dashboard/app.js"), 200);
    assert_eq!(get_status(&guarded, "/api/v1/runs"), 401, "the data does");
    post(
        &guarded,
        "/contexts/",
        json!({"h": "c0ffee", "cpu_count": 1, "cpu_frequency": 1.0, "cpu_type": "x", "cpu_vendor": "x",
               "ram_total": 1, "machine_node": "n", "machine_type": "x", "machine_arch": "x",
               "system_info": "x", "python_info": "x"}),
    );
    post(
        &guarded,
        "/sessions/",
        json!({"session_h": "guarded-run", "run_date": "2026-11-20T10:00:00", "scm_ref": "1234567",
               "description": {}}),
    );
    browser.goto(&format!("{}/#/runs", guarded.address));
    browser.wait_for(
        "the token form",
        "return document.querySelector('.token-form input[name=token]') !== null",
        json!([]),
    );
    screenshot(&browser, "token");
    browser.type_into(".token-form input[name=token]", "read-token\n");
    browser.wait_ready("/runs");
    assert_eq!(listed_runs(&browser), ["guarded-run"]);
    assert!(browser.text("#token-slot").contains("Forget token"));
}

/// The first view against a bigger store: how long from opening `/` to the runs drawn, the first
/// time (the page's files fetched and compiled) and the second. 50,000 metrics over 200 runs by
/// default; `MONITOR_SERVER_FIRST_VIEW_METRICS` and `MONITOR_SERVER_FIRST_VIEW_RUNS` set others
/// (the README's 1,000,000-metric figure: `cargo test --release --test e2e
/// first_view -- --nocapture` with 1000000 and 1000).
#[test]
fn the_first_view_of_a_big_store_renders_quickly() {
    let Some(browser) = Browser::start("dashboard: first view timing") else {
        return;
    };
    let size = |var: &str, default: u64| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let metrics = size("MONITOR_SERVER_FIRST_VIEW_METRICS", 50_000);
    let runs = size("MONITOR_SERVER_FIRST_VIEW_RUNS", 200);
    let dir = tempfile::tempdir().expect("a temp dir");
    let loading = Instant::now();
    store::load(&dir.path().join("monitor.db"), metrics, runs).expect("load the store");
    let loaded = loading.elapsed();
    let app = TestApp::start(Setup {
        home: Some(Home::Dir(dir)),
        ..Setup::default()
    });
    // Milliseconds from the start of the navigation to the runs drawn, as the page measured it.
    let ready_at = |browser: &Browser| {
        browser
            .execute("return Number(document.body.dataset.readyAt)", json!([]))
            .as_u64()
            .unwrap_or(u64::MAX)
    };
    browser.open_view(&app.address, "/runs");
    let first = ready_at(&browser);
    assert_eq!(listed_runs(&browser).len(), 50, "one page of runs");
    browser.open_view(&app.address, "/runs");
    let second = ready_at(&browser);
    println!(
        "dashboard first view on {metrics} metrics / {runs} runs (loaded in {:.1} s): \
         {first} ms the first time, {second} ms the second, from navigation to the runs drawn",
        loaded.as_secs_f64()
    );
    // The slowest tests rank every test of the store, which the server computes once and then
    // keeps up to date: the first visit pays for it.
    browser.open_view(&app.address, "/slowest");
    let slowest_first = ready_at(&browser);
    browser.open_view(&app.address, "/slowest");
    let slowest_second = ready_at(&browser);
    println!(
        "dashboard slowest tests on the same store: {slowest_first} ms the first time, \
         {slowest_second} ms the second"
    );
    // Loose on purpose (a debug build on a shared machine): it catches unbounded work; the
    // README reports the release build's figures.
    assert!(first < 3000, "the runs view took {first} ms to draw");
}

/// A test measured in 1,000 runs: each chart draws its 1,000 points, and quickly.
#[test]
fn a_test_with_a_thousand_runs_draws_every_point_quickly() {
    let Some(browser) = Browser::start("dashboard: 1,000-point charts") else {
        return;
    };
    let app = spawn_app_with_tokens(Tokens::default());
    let (context, node, _) = MACHINES[0];
    post_machine(&app, context, node);
    const RUNS: u32 = 1000;
    for run in 0..RUNS {
        let session = format!("{run:032x}");
        // One run an hour, from 2026-10-01 on.
        let (day, hour) = (1 + run / 24, run % 24);
        let (month, day) = if day > 31 { (11, day - 31) } else { (10, day) };
        let at = format!("2026-{month:02}-{day:02}T{hour:02}:00:00");
        post(
            &app,
            "/sessions/",
            json!({"session_h": session, "run_date": at, "scm_ref": "abc", "description": {}}),
        );
        let wall = 1.0 + f64::from(run % 50) / 100.0;
        post(
            &app,
            "/metrics/",
            json!({"session_h": session, "context_h": context, "item_start_time": at,
                   "item_path": "tests.test_long", "item": "test_history",
                   "item_variant": "test_history", "item_fs_loc": "tests/test_long.py",
                   "kind": "function", "component": "", "total_time": wall,
                   "user_time": wall / 2.0, "kernel_time": 0.1, "cpu_usage": 0.6,
                   "mem_usage": 10.0 + wall}),
        );
    }
    let hash = "/test?item_path=tests.test_long&item_variant=test_history";
    browser.open_view(&app.address, hash);
    for chart in ["#chart-wall", "#chart-cpu", "#chart-memory"] {
        assert_eq!(
            browser.count(&format!("{chart} circle")),
            RUNS as usize,
            "{chart} draws every run"
        );
    }
    let drawn: u64 = browser
        .execute("return Number(document.body.dataset.renderMs)", json!([]))
        .as_u64()
        .unwrap_or(u64::MAX);
    println!("dashboard: 3 charts of {RUNS} points drawn in {drawn} ms, the request included");
    screenshot(&browser, "test-1000-points");
    assert_eq!(browser.console_errors(), Vec::<String>::new());
    assert!(drawn < 3000, "drawing 1,000 points took {drawn} ms");
}

/// Without a browser: what `/` and its files are, and that they need no token.
#[test]
fn the_page_and_its_files_are_served_with_a_same_origin_policy_and_without_a_token() {
    let app = spawn_app_with_tokens(Tokens {
        write: Some(Secret::new("write-token")),
        read: Some(Secret::new("read-token")),
    });
    for (path, media_type) in [
        ("/", "text/html"),
        ("/index.html", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
    ] {
        let response = ureq::get(&format!("{}{path}", app.address))
            .call()
            .unwrap_or_else(|err| panic!("GET {path}: {err}"));
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.content_type().starts_with(media_type), "{path}");
        let policy = response
            .header("Content-Security-Policy")
            .unwrap_or_default()
            .to_owned();
        assert!(
            policy.contains("default-src 'none'") && policy.contains("script-src 'self'"),
            "{path}: {policy}"
        );
        let body = response.into_string().expect("a body");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} refers to no other origin"
        );
    }
    // Every module the page imports is served.
    let index = ureq::get(&format!("{}/dashboard/app.js", app.address))
        .call()
        .expect("app.js")
        .into_string()
        .expect("text");
    for module in index.lines().filter_map(|line| {
        line.strip_prefix("import ")
            .and_then(|rest| rest.split("from \"./").nth(1))
            .and_then(|rest| rest.split('"').next())
    }) {
        assert_eq!(
            get_status(&app, &format!("/dashboard/{module}")),
            200,
            "{module}"
        );
    }
    assert_eq!(
        get_status(&app, "/dashboard/nothing.js"),
        401,
        "only the known files are public"
    );
    assert_eq!(
        get_status(&app, "/api/v1/runs"),
        401,
        "the data needs the token"
    );
    let head = ureq::head(&format!("{}/", app.address))
        .call()
        .expect("HEAD /");
    assert_eq!(head.status(), 200);
    // Other methods are refused as the API refuses them: 405 with a JSON message.
    let post = ureq::post(&format!("{}/", app.address))
        .set("Authorization", "Bearer write-token")
        .send_string("");
    match post {
        Err(ureq::Error::Status(405, response)) => {
            let body = response.into_string().unwrap_or_default();
            assert!(body.contains("\"message\""), "{body}");
        }
        other => panic!("POST / answered {other:?}"),
    }
}

/// Thirty builds of pipeline `main` on one machine: `test_copy` 1.0 s, 1.6 s from build 20 on;
/// `test_alloc` 100 MB, 160 MB from build 12 on; `test_sum` steady. CPU times do not move.
fn load_changing_history(app: &TestApp) {
    let (context, node, _) = MACHINES[0];
    post_machine(app, context, node);
    for build in 1..=30u32 {
        let session = format!("c4a9{build:02}{}", "0".repeat(26));
        post(
            app,
            "/sessions/",
            json!({"session_h": session,
                   "run_date": format!("2026-11-{:02}T{:02}:00:00", 1 + build / 24, build % 24),
                   "scm_ref": format!("{:07x}", 0xc0de000 + build),
                   "description": {"pipeline_branch": "main", "pipeline_build_no": build.to_string()}}),
        );
        let jitter = 1.0 + 0.02 * (f64::from(build) * 1.3).sin();
        for (test, wall, memory) in [
            ("test_copy", if build >= 20 { 1.6 } else { 1.0 }, 40.0),
            ("test_alloc", 0.3, if build >= 12 { 160.0 } else { 100.0 }),
            ("test_sum", 0.5, 20.0),
        ] {
            post(
                app,
                "/metrics/",
                json!({"session_h": session, "context_h": context,
                       "item_start_time": format!("2026-11-{:02}T{:02}:00:01", 1 + build / 24, build % 24),
                       "item_path": "tests.test_io", "item": test, "item_variant": test,
                       "item_fs_loc": "tests/test_io.py", "kind": "function", "component": "storage",
                       "total_time": wall * jitter, "user_time": 0.05, "kernel_time": 0.01,
                       "cpu_usage": 0.1, "mem_usage": memory * jitter}),
            );
        }
    }
}

#[test]
fn the_changes_view_lists_detected_changes_and_the_charts_and_runs_mark_them() {
    let Some(browser) = Browser::start("dashboard: changes") else {
        return;
    };
    let app = spawn_app_with_tokens(Tokens::default());
    load_changing_history(&app);

    browser.open_view(&app.address, "/changes");
    assert_eq!(
        listed_variants(&browser),
        ["test_copy", "test_alloc"],
        "newest first"
    );
    assert_eq!(
        cell(&browser, "variant", "test_copy", "Build"),
        "20\nc0de014"
    );
    assert_eq!(
        cell(&browser, "variant", "test_copy", "Metric"),
        "Wall time"
    );
    assert_eq!(cell(&browser, "variant", "test_alloc", "Change"), "+58.6 %");
    screenshot(&browser, "changes");

    browser.choose("select[name=metric]", "memory");
    browser.wait_ready("/changes?pipeline=main&metric=memory");
    assert_eq!(listed_variants(&browser), ["test_alloc"]);

    browser.open_view(&app.address, "/changes");
    browser.click("tr[data-variant=test_copy] td.test a");
    browser.wait_for(
        "the test's charts",
        "return document.body.dataset.view === 'test' && document.body.dataset.state === 'ready'",
        json!([]),
    );
    assert_eq!(browser.count("#chart-wall .changes .change-mark"), 1);
    assert_eq!(browser.count("#chart-wall .changes .level"), 2);
    assert_eq!(browser.count("#chart-memory .changes .change-mark"), 0);
    assert!(browser
        .text("#chart-wall .change-label")
        .starts_with("#20 "));
    screenshot(&browser, "test-changes");

    browser.open_view(&app.address, "/runs");
    browser.wait_for(
        "the change badges",
        "return document.querySelector('section.view[data-badges=done]') !== null",
        json!([]),
    );
    assert_eq!(
        browser.texts(".change-badge"),
        ["1 change", "1 change"],
        "builds 20 and 12 start a change"
    );
    screenshot(&browser, "runs-changes");
    assert_eq!(browser.console_errors(), Vec::<String>::new());
}
