//! Latency of every query route on a large store: the check that the indexes keep every route
//! fast as the store grows.
//!
//! ```text
//! cargo run --release -p monitor-server-bench --bin query_bench                     # 1,000,000 metrics
//! cargo run --release -p monitor-server-bench --bin query_bench -- --metrics 100000 # a quicker run
//! cargo run --release -p monitor-server-bench --bin query_bench -- --db /tmp/big.db # keep, reuse
//! ```
//!
//! It fills a database in a temporary directory straight through the library (the schema of
//! [`Db::open`], then one plain SQLite connection inserting into the same `contexts`, `sessions`
//! and `session_tags` tables `db::insert_*` write, and metrics through `db::insert_metrics`, in
//! large transactions, so that the kept counts are filled as in production): 1,000 sessions over 5 pipelines and 4 machines,
//! 1,000 metrics each over ~2,000 test items in 50 components (5 of them empty), with
//! parametrized variants, four kinds of item and log-normal timings and memory. The metrics
//! table's indexes are dropped while loading and rebuilt from `schema.sql` afterwards, which is
//! much faster than maintaining them row by row and ends in the same file.
//!
//! Then it starts the real server in-process on a free port (opening the file again with
//! [`Db::open`], as `monitor-server` does at start-up), sends at once the four requests of the
//! dashboard's first view (`/summary`, `/runs?page=1`, `/tests?sort=slowest|hungriest`) and
//! prints how long each took — the server has computed nothing yet, so this is the worst case
//! of a dashboard opened as the server starts — and, for every GET route of
//! [`ENDPOINTS`] with real values in its path, plus variants that stress deep pages, filters
//! and sorts, sends 3 warm-up requests and then `--iterations` (default 30) sequential requests
//! over one keep-alive connection, and prints the p50 and p99 latency, the status and how many
//! rows the answer held. The last line counts the routes whose p50 is 20 ms or more.
//!
//! Options: `--metrics N` (default 1,000,000), `--sessions N` (default 1,000; metrics are spread
//! evenly over them), `--iterations N` (default 30), `--db PATH` (use this file instead of a
//! temporary one and keep it; an existing file that already holds metrics is reused as is,
//! without loading), `--only TEXT` (measure only the routes whose URL or label contains TEXT).
//! Exits with 1 when any route answers a 5xx or cannot be reached.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use monitor_server::db::Db;
use monitor_server::routes::{QueryKind, API_PREFIX, ENDPOINTS};
use monitor_server::state::AppState;
use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;

use monitor_server_bench::count::parse as number;
use monitor_server_bench::store::{load, size_of_store, stored_metrics};

/// The p50 every route must stay under.
const TARGET_MS: f64 = 20.0;
/// Requests sent before timing a route.
const WARM_UPS: usize = 3;
/// A route whose warm-up takes longer than this is timed this many times only, so that a slow
/// route does not make the run take forever.
const SLOW: Duration = Duration::from_secs(1);
const SLOW_ITERATIONS: usize = 5;

struct Options {
    metrics: u64,
    sessions: u64,
    iterations: usize,
    db: Option<PathBuf>,
    only: Option<String>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        metrics: 1_000_000,
        sessions: 1_000,
        iterations: 30,
        db: None,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--metrics" => options.metrics = number(&value()?)?,
            "--sessions" => options.sessions = number(&value()?)?.max(1),
            "--iterations" => options.iterations = number(&value()?)?.max(1) as usize,
            "--db" => options.db = Some(PathBuf::from(value()?)),
            "--only" => options.only = Some(value()?),
            "-h" | "--help" => {
                return Err(
                    "usage: query_bench [--metrics N] [--sessions N] [--iterations N] \
                            [--db PATH] [--only TEXT]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other}; try --help")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    // The temporary directory lives until the end of main.
    let (_dir, path) = match &options.db {
        Some(path) => (None, path.clone()),
        None => {
            let dir = tempfile::tempdir().expect("cannot create a temporary directory");
            let path = dir.path().join("monitor.db");
            (Some(dir), path)
        }
    };

    let stored = stored_metrics(&path);
    if stored > 0 {
        println!("reusing {} with {stored} metrics", path.display());
    } else {
        let started = Instant::now();
        if let Err(err) = load(&path, options.metrics, options.sessions) {
            eprintln!(
                "query_bench: loading the store into {} failed: {err}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
        println!(
            "loaded {} metrics over {} sessions in {:.1} s",
            options.metrics,
            options.sessions.min(options.metrics.max(1)),
            started.elapsed().as_secs_f64()
        );
    }
    println!("database: {} ({})", path.display(), size_of_store(&path));

    let values = Values::discover(&path).expect("cannot read back the loaded store");
    let cases = cases(&values);

    let started = Instant::now();
    let db = Db::open(&path, 16).expect("cannot open the store");
    println!(
        "server start-up (Db::open): {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let server = Server::start(db);
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(120))
        .build();
    first_view(&server.address);

    println!();
    println!(
        "{:<92} {:>6} {:>9} {:>9} {:>8}",
        "route", "status", "p50 ms", "p99 ms", "rows"
    );
    let mut slow = Vec::new();
    let mut failed = false;
    let mut measured = 0;
    for case in &cases {
        if let Some(only) = &options.only {
            if !case.url.contains(only.as_str()) && !case.label.contains(only.as_str()) {
                continue;
            }
        }
        measured += 1;
        let url = format!("{}{API_PREFIX}{}", server.address, case.url);
        let mut warm_up = Duration::ZERO;
        for _ in 0..WARM_UPS {
            let started = Instant::now();
            request(&agent, &url);
            warm_up = warm_up.max(started.elapsed());
        }
        let iterations = if warm_up > SLOW {
            SLOW_ITERATIONS.min(options.iterations)
        } else {
            options.iterations
        };
        let mut times = Vec::with_capacity(iterations);
        let mut last = (0, String::new());
        for _ in 0..iterations {
            let started = Instant::now();
            last = request(&agent, &url);
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let p50 = percentile(&times, 50.0);
        let p99 = percentile(&times, 99.0);
        let (status, rows) = last;
        failed |= status == 0 || status >= 500;
        let flag = if p50 >= TARGET_MS { "  <-- slow" } else { "" };
        let shown = if iterations < options.iterations {
            format!("{} (n={iterations})", case.label)
        } else {
            case.label.clone()
        };
        println!("{shown:<92} {status:>6} {p50:>9.2} {p99:>9.2} {rows:>8}{flag}");
        if p50 >= TARGET_MS {
            slow.push(case.label.clone());
        }
    }
    println!();
    println!(
        "{} of {measured} routes have a p50 of {TARGET_MS} ms or more{}",
        slow.len(),
        if slow.is_empty() {
            String::new()
        } else {
            format!(": {}", slow.join(", "))
        }
    );
    drop(agent);
    server.stop();
    if failed {
        eprintln!("some route answered a 5xx or could not be reached");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The dashboard's first view on the server just started, before anything else asked it
/// anything: its four requests sent at once, as a browser does, each on its own connection.
/// Prints how long each took and how long until the last answered.
fn first_view(address: &str) {
    let urls = [
        "/summary",
        "/runs?page=1",
        "/tests?sort=slowest",
        "/tests?sort=hungriest",
    ];
    let started = Instant::now();
    let answers: Vec<(String, u16, f64)> = std::thread::scope(|scope| {
        let running: Vec<_> = urls
            .iter()
            .map(|url| {
                let url = format!("{address}{API_PREFIX}{url}");
                scope.spawn(move || {
                    let agent = ureq::AgentBuilder::new()
                        .timeout(Duration::from_secs(120))
                        .build();
                    let started = Instant::now();
                    let (status, _) = request(&agent, &url);
                    (status, started.elapsed().as_secs_f64() * 1e3)
                })
            })
            .collect();
        running
            .into_iter()
            .zip(urls)
            .map(|(thread, url)| {
                let (status, ms) = thread.join().unwrap_or((0, f64::NAN));
                (url.to_owned(), status, ms)
            })
            .collect()
    });
    let total = started.elapsed().as_secs_f64() * 1e3;
    let each: Vec<String> = answers
        .iter()
        .map(|(url, status, ms)| format!("{url} {status} in {ms:.0} ms"))
        .collect();
    println!(
        "dashboard first view on the cold server (4 requests at once): all answered in {total:.0} ms ({})",
        each.join(", ")
    );
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One GET: the status and what the answer held (rows of its list, or its count).
fn request(agent: &ureq::Agent, url: &str) -> (u16, String) {
    let response = match agent.get(url).call() {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(err) => return (0, format!("error: {err}")),
    };
    let status = response.status();
    let body = response.into_string().unwrap_or_default();
    let held = match serde_json::from_str::<Value>(&body) {
        Ok(Value::Object(object)) => match object.get("count") {
            Some(count) => count.to_string(),
            // A comparison's rows are its tests, not its notes.
            None => object
                .get("tests")
                .and_then(Value::as_array)
                .or_else(|| object.values().find_map(Value::as_array))
                .map(|rows| rows.len().to_string())
                .unwrap_or_else(|| "-".into()),
        },
        _ if status == 204 => "0".into(),
        _ => "-".into(),
    };
    (status, held)
}

// ---------------------------------------------------------------- the server

struct Server {
    address: String,
    handle: actix_web::dev::ServerHandle,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// The real server on a free port of 127.0.0.1, on its own thread and actix system.
    fn start(db: Db) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind a free port");
        let port = listener.local_addr().expect("no local address").port();
        let (handle_tx, handle_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let state = AppState { db, page_size: 500 };
                let server = monitor_server::server::run(listener, state)?;
                handle_tx
                    .send(server.handle())
                    .expect("main stopped waiting");
                server.await
            })
        });
        let handle = handle_rx.recv().expect("the server failed to start");
        Server {
            address: format!("http://127.0.0.1:{port}"),
            handle,
            thread,
        }
    }

    fn stop(self) {
        drop(self.handle.stop(false));
        let _ = self.thread.join();
    }
}

// ---------------------------------------------------------------- what is measured

struct Case {
    /// The route's pattern with the extra query string, as printed.
    label: String,
    /// The path and query under the API prefix, values substituted and encoded.
    url: String,
}

/// Real values of the loaded store for the routes' path segments.
struct Values {
    by_name: HashMap<&'static str, String>,
    /// An item and a variant of the empty component, for `/components/items|variants/...`.
    item_without: String,
    variant_without: String,
    context_prefix: String,
    session_prefix: String,
    component_prefix: String,
    broad_scm_prefix: String,
    scm_ref: String,
    from: String,
    to: String,
    /// The run date of the session in the middle of the store.
    middle: String,
    /// The middle page (of 500 rows) of all metrics, and of the metrics of kind `function`.
    middle_page: u64,
    middle_function_page: u64,
}

impl Values {
    fn discover(path: &Path) -> rusqlite::Result<Values> {
        let conn = Connection::open(path)?;
        let text = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<String> {
            Ok(conn
                .query_row(sql, params, |row| row.get::<_, String>(0))
                .optional()?
                .unwrap_or_default())
        };
        // The pipeline with the most sessions, and one of its sessions from the middle.
        let pipeline = text(
            "SELECT value FROM session_tags WHERE name = 'pipeline_branch' \
             GROUP BY value ORDER BY count(*) DESC LIMIT 1",
            &[],
        )?;
        let session_id: i64 = conn.query_row(
            "SELECT s.id FROM sessions s JOIN session_tags p ON p.session_id = s.id \
             AND p.name = 'pipeline_branch' WHERE p.value = ?1 ORDER BY s.id \
             LIMIT 1 OFFSET (SELECT count(*) / 2 FROM session_tags \
                             WHERE name = 'pipeline_branch' AND value = ?1)",
            [&pipeline],
            |row| row.get(0),
        )?;
        let session_h = text(
            "SELECT session_h FROM sessions WHERE id = ?1",
            &[&session_id],
        )?;
        let scm_ref = text("SELECT scm_ref FROM sessions WHERE id = ?1", &[&session_id])?;
        let build = text(
            "SELECT value FROM session_tags WHERE session_id = ?1 AND name = 'pipeline_build_no'",
            &[&session_id],
        )?;
        let context_h = text(
            "SELECT context_h FROM metrics WHERE session_h = ?1 LIMIT 1",
            &[&session_h],
        )?;
        let component = text(
            "SELECT component FROM metrics WHERE session_h = ?1 AND component != '' \
             GROUP BY component ORDER BY count(*) DESC LIMIT 1",
            &[&session_h],
        )?;
        let (item, variant, item_path) = conn
            .query_row(
                "SELECT item, item_variant, item_path FROM metrics \
                 WHERE session_h = ?1 AND component = ?2 \
                 ORDER BY item_variant = item, id LIMIT 1",
                [&session_h, &component],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get(2)?,
                    ))
                },
            )
            .optional()?
            .unwrap_or_default();
        let (item_without, variant_without) = conn
            .query_row(
                "SELECT item, item_variant FROM metrics WHERE component = '' \
                 ORDER BY item_variant = item, id LIMIT 1",
                [],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()?
            .unwrap_or_default();
        // A word of the item's name (test_<word>_<n>), shared by many items.
        let pattern = item.split('_').nth(1).unwrap_or("a").to_owned();
        // Two run dates apart by 2% of the sessions: a window of about 2% of the metrics.
        let sessions: i64 = conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?;
        let run_date = |nth: i64| {
            text(
                "SELECT run_date FROM sessions ORDER BY id LIMIT 1 OFFSET ?1",
                &[&nth],
            )
        };
        let from = run_date(sessions * 40 / 100)?;
        let to = run_date(sessions * 42 / 100)?;
        let middle = run_date(sessions / 2)?;
        let count = |sql: &str| -> rusqlite::Result<u64> { conn.query_row(sql, [], |r| r.get(0)) };
        let stored = count("SELECT count(*) FROM metrics")?;
        let functions = count("SELECT count(*) FROM metrics WHERE kind = 'function'")?;

        let mut by_name = HashMap::new();
        by_name.insert("session_h", session_h.clone());
        by_name.insert("context_h", context_h.clone());
        by_name.insert("component", component.clone());
        by_name.insert("pipeline", pipeline);
        by_name.insert("build", build);
        by_name.insert("item", item);
        by_name.insert("variant", variant);
        by_name.insert("item_path", item_path);
        by_name.insert("pattern", pattern);
        by_name.insert("kind", "function".into());
        by_name.insert("scm_prefix", scm_ref.chars().take(7).collect());
        by_name.insert("resource", "memory".into());
        by_name.insert("direction", "head".into());
        by_name.insert("n", "50".into());
        Ok(Values {
            by_name,
            item_without,
            variant_without,
            context_prefix: context_h.chars().take(4).collect(),
            session_prefix: session_h.chars().take(4).collect(),
            component_prefix: component.chars().take(2).collect(),
            broad_scm_prefix: scm_ref.chars().take(1).collect(),
            scm_ref,
            from,
            to,
            middle,
            middle_page: stored.div_ceil(500).div_ceil(2).max(1),
            middle_function_page: functions.div_ceil(500).div_ceil(2).max(1),
        })
    }

    fn get(&self, name: &str) -> &str {
        self.by_name.get(name).map_or("", String::as_str)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A route pattern with its `{segments}` replaced by `values` (chosen by the route for the
/// segments whose meaning depends on it).
fn fill(pattern: &str, values: &Values) -> String {
    let mut url = String::new();
    for segment in pattern.split('/').filter(|s| !s.is_empty()) {
        url.push('/');
        let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            url.push_str(segment);
            continue;
        };
        let value = match name {
            "prefix" if pattern.starts_with("/contexts") => &values.context_prefix,
            "prefix" if pattern.starts_with("/sessions") => &values.session_prefix,
            "prefix" => &values.component_prefix,
            "item" if pattern.starts_with("/components/items") => &values.item_without,
            "variant" if pattern.starts_with("/components/variants") => &values.variant_without,
            other => values.get(other),
        };
        url.push_str(&encode(value));
    }
    url.push('/');
    url
}

fn cases(values: &Values) -> Vec<Case> {
    let mut cases: Vec<Case> = ENDPOINTS
        .iter()
        // `/compare` and `/tests/trend` need their parameters: they are measured below, with
        // them.
        .filter(|e| {
            e.method == Method::GET && e.query != QueryKind::Comparison && e.path != "/tests/trend"
        })
        .map(|e| Case {
            label: e.path.to_owned(),
            url: fill(e.path, values),
        })
        .collect();
    // Encoded for the URL; the label shows the values as they are.
    let query = |pairs: &[(&str, &str)]| {
        let join = |encoded: bool| {
            pairs
                .iter()
                .map(|(k, v)| match encoded {
                    true => format!("{k}={}", encode(v)),
                    false => format!("{k}={v}"),
                })
                .collect::<Vec<_>>()
                .join("&")
        };
        (join(false), join(true))
    };
    let component = values.get("component");
    let pipeline = values.get("pipeline");
    let build = values.get("build");
    let one_build = format!("build:{pipeline}/{build}");
    let last_builds = format!("last:{pipeline}/10");
    let extra: Vec<(&str, (String, String))> = vec![
        (
            "/compare",
            query(&[("baseline", &one_build), ("candidate", &one_build)]),
        ),
        (
            "/compare",
            query(&[("baseline", &last_builds), ("candidate", &one_build)]),
        ),
        ("/metrics", query(&[("page", "-1")])),
        ("/metrics", query(&[("page", "1000")])),
        (
            "/metrics",
            query(&[
                ("component", component),
                ("sort", "mem_usage"),
                ("order", "desc"),
            ]),
        ),
        (
            "/metrics",
            query(&[("from", &values.from), ("to", &values.to)]),
        ),
        (
            "/metrics",
            query(&[("from", &values.from), ("to", &values.to), ("page", "-1")]),
        ),
        (
            "/metrics",
            query(&[("sort", "total_time"), ("order", "desc")]),
        ),
        (
            "/metrics",
            query(&[("sort", "item_start_time"), ("page", "-1")]),
        ),
        ("/metrics", query(&[("min_total_time", "5")])),
        ("/metrics", query(&[("scm_ref", &values.scm_ref)])),
        (
            "/metrics",
            query(&[("component_prefix", &values.component_prefix)]),
        ),
        (
            "/metrics",
            query(&[("kind", "function"), ("sort", "cpu_usage"), ("page", "2")]),
        ),
        (
            "/metrics/count",
            query(&[("from", &values.from), ("to", &values.to)]),
        ),
        ("/metrics/count", query(&[("kind", "function")])),
        (
            "/sessions/{session_h}/metrics",
            query(&[("sort", "total_time"), ("order", "desc")]),
        ),
        ("/contexts/{context_h}/metrics", query(&[("page", "-1")])),
        ("/components/{component}/metrics", query(&[("page", "-1")])),
        ("/components/metrics", query(&[("page", "-1")])),
        ("/items/like/{pattern}/metrics", query(&[("page", "-1")])),
        ("/variants/like/{pattern}/metrics", query(&[("page", "-1")])),
        ("/filters/scope/{kind}/metrics", query(&[("page", "-1")])),
        (
            "/filters/scm/{scm_prefix}/metrics",
            query(&[("page", "-1")]),
        ),
        (
            "/sessions",
            query(&[
                ("with_flags", "pipeline_branch,pipeline_build_no"),
                ("restrict_flags", pipeline),
                ("method", "match_all"),
            ]),
        ),
        ("/sessions", query(&[("page", "-1"), ("per_page", "10")])),
        // The dashboard's first view, and its filters.
        ("/runs", query(&[("page", "1")])),
        ("/runs", query(&[("component", component)])),
        ("/runs", query(&[("pipeline", pipeline)])),
        ("/runs", query(&[("page", "-1")])),
        ("/tests", query(&[("sort", "slowest")])),
        ("/tests", query(&[("sort", "hungriest")])),
        ("/tests", query(&[("sort", "slowest"), ("page", "-1")])),
        (
            "/tests",
            query(&[("sort", "slowest"), ("component", component)]),
        ),
        (
            "/tests",
            query(&[("sort", "hungriest"), ("component", component)]),
        ),
        (
            "/tests",
            query(&[("sort", "slowest"), ("pipeline", pipeline)]),
        ),
        (
            "/tests",
            query(&[("sort", "hungriest"), ("pipeline", pipeline)]),
        ),
        (
            "/tests",
            query(&[
                ("sort", "slowest"),
                ("pipeline", pipeline),
                ("build", build),
            ]),
        ),
        (
            "/tests",
            query(&[("tag", &format!("pipeline_branch:{pipeline}"))]),
        ),
        (
            "/tests/trend",
            query(&[
                ("item_path", values.get("item_path")),
                ("item_variant", values.get("variant")),
            ]),
        ),
        (
            "/tests/trend",
            query(&[
                ("item_path", values.get("item_path")),
                ("item_variant", values.get("variant")),
                ("context_h", values.get("context_h")),
                ("limit", "10000"),
            ]),
        ),
    ];
    for (pattern, (shown, query)) in extra {
        cases.push(Case {
            label: format!("{pattern}?{shown}"),
            url: format!("{}?{query}", fill(pattern, values)),
        });
    }
    // Pages in the middle of large selections, and selections holding most of the store.
    let middle = values.middle_page.to_string();
    let middle_function = values.middle_function_page.to_string();
    let no_query = (String::new(), String::new());
    let deep: Vec<(&str, (String, String), &str)> = vec![
        // The order stored: page 1, the middle and the last (`page=-1` above) cost the same,
        // also after deletes (`monitor-server prune`) have left gaps in the ids.
        ("/metrics", query(&[("page", "1")]), ""),
        ("/metrics", query(&[("page", &middle)]), " (middle page)"),
        (
            "/metrics",
            query(&[("sort", "mem_usage"), ("page", &middle)]),
            " (middle page)",
        ),
        (
            "/filters/scope/function/metrics",
            query(&[("page", &middle_function)]),
            " (middle page)",
        ),
        (
            "/metrics",
            query(&[("kind", "function"), ("sort", "cpu_usage"), ("page", "-1")]),
            "",
        ),
        (
            "/metrics",
            query(&[
                ("kind", "function"),
                ("sort", "cpu_usage"),
                ("page", &middle_function),
            ]),
            " (middle page)",
        ),
        ("/items/like/test/metrics", no_query, " (every item)"),
        (
            "/items/like/test/metrics",
            query(&[("page", &middle)]),
            " (every item, middle page)",
        ),
        ("/metrics", query(&[("from", &values.middle)]), ""),
        (
            "/metrics",
            query(&[("to", &values.middle), ("page", "-1")]),
            "",
        ),
    ];
    for (pattern, (shown, query), note) in deep {
        let (label, url) = if query.is_empty() {
            (pattern.to_owned(), fill(pattern, values))
        } else {
            let url = format!("{}?{query}", fill(pattern, values));
            (format!("{pattern}?{shown}"), url)
        };
        cases.push(Case {
            label: format!("{label}{note}"),
            url,
        });
    }
    // Broad SCM prefix: a sixteenth of the sessions.
    let broad = encode(&values.broad_scm_prefix);
    for suffix in ["metrics", "metrics/count"] {
        cases.push(Case {
            label: format!("/filters/scm/{{scm_prefix}}/{suffix} (1-char prefix)"),
            url: format!("/filters/scm/{broad}/{suffix}/"),
        });
    }
    // Every resource both ways, over everything, a component, a pipeline and a build.
    for resource in ["memory", "cpu", "user_time", "kernel_time", "total_time"] {
        for direction in ["head", "tail"] {
            for (scope, path) in [
                ("", String::new()),
                (
                    "/components/{component}",
                    format!("/components/{}", encode(component)),
                ),
                (
                    "/pipelines/{pipeline}",
                    format!("/pipelines/{}", encode(pipeline)),
                ),
                (
                    "/pipelines/{pipeline}/builds/{build}",
                    format!("/pipelines/{}/builds/{}", encode(pipeline), encode(build)),
                ),
            ] {
                if resource == "memory" && direction == "head" {
                    continue; // measured above, from ENDPOINTS
                }
                cases.push(Case {
                    label: format!("/resources/{resource}{scope}/{direction}/500/metrics"),
                    url: format!("/resources/{resource}{path}/{direction}/500/metrics/"),
                });
            }
        }
    }
    cases
}
