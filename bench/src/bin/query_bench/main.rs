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
//! without loading), `--only TEXT` (measure only the routes whose URL or label contains TEXT),
//! `--baseline URL` (an older release already serving the same metrics, e.g. the schema-3 file
//! this store was migrated from: each request is sent to both servers in turn, alternating which
//! goes first, so that both see the same machine; the table then adds the baseline's p50, the
//! ratio, and whether the two answers differ, and the last lines list the routes slower than
//! the baseline).
//! Exits with 1 when any route answers a 5xx or cannot be reached.

mod cases;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use monitor_server::db::Db;
use monitor_server::routes::API_PREFIX;
use monitor_server::state::AppState;
use monitor_server_bench::count::parse as number;
use monitor_server_bench::store::{load, size_of_store, stored_metrics};
use serde_json::Value;

use crate::cases::{cases, Values};

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
    baseline: Option<String>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        metrics: 1_000_000,
        sessions: 1_000,
        iterations: 30,
        db: None,
        only: None,
        baseline: None,
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
            "--baseline" => options.baseline = Some(value()?.trim_end_matches('/').to_owned()),
            "-h" | "--help" => {
                return Err(
                    "usage: query_bench [--metrics N] [--sessions N] [--iterations N] \
                            [--db PATH] [--only TEXT] [--baseline URL]"
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
    print!(
        "{:<92} {:>6} {:>9} {:>9} {:>8}",
        "route", "status", "p50 ms", "p99 ms", "rows"
    );
    if options.baseline.is_some() {
        print!(" {:>11} {:>6}", "baseline ms", "ratio");
    }
    println!();
    let mut slow = Vec::new();
    let mut compared = Vec::new();
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
        let baseline = options
            .baseline
            .as_ref()
            .map(|address| format!("{address}{API_PREFIX}{}", case.url));
        let mut warm_up = Duration::ZERO;
        for _ in 0..WARM_UPS {
            let started = Instant::now();
            request(&agent, &url);
            warm_up = warm_up.max(started.elapsed());
            if let Some(baseline) = &baseline {
                request(&agent, baseline);
            }
        }
        let iterations = if warm_up > SLOW {
            SLOW_ITERATIONS.min(options.iterations)
        } else {
            options.iterations
        };
        let mut times = Vec::with_capacity(iterations);
        let mut baseline_times = Vec::with_capacity(iterations);
        let mut last = Answer::default();
        let mut baseline_last = Answer::default();
        let timed = |url: &str, times: &mut Vec<f64>| {
            let started = Instant::now();
            let answer = request(&agent, url);
            times.push(started.elapsed().as_secs_f64() * 1e3);
            answer
        };
        for i in 0..iterations {
            match &baseline {
                Some(baseline) if i % 2 == 1 => {
                    baseline_last = timed(baseline, &mut baseline_times);
                    last = timed(&url, &mut times);
                }
                Some(baseline) => {
                    last = timed(&url, &mut times);
                    baseline_last = timed(baseline, &mut baseline_times);
                }
                None => last = timed(&url, &mut times),
            }
        }
        times.sort_by(f64::total_cmp);
        baseline_times.sort_by(f64::total_cmp);
        let p50 = percentile(&times, 50.0);
        let p99 = percentile(&times, 99.0);
        let status = last.status;
        failed |= status == 0 || status >= 500;
        let flag = if p50 >= TARGET_MS { "  <-- slow" } else { "" };
        let shown = if iterations < options.iterations {
            format!("{} (n={iterations})", case.label)
        } else {
            case.label.clone()
        };
        print!(
            "{shown:<92} {status:>6} {p50:>9.2} {p99:>9.2} {:>8}",
            last.rows
        );
        if baseline.is_some() {
            let base = percentile(&baseline_times, 50.0);
            let differs = if baseline_last.body == last.body {
                ""
            } else {
                "  (answers differ)"
            };
            print!(" {base:>11.2} {:>6.2}{differs}", p50 / base);
            compared.push((shown.clone(), p50, base));
        }
        println!("{flag}");
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
    if !compared.is_empty() {
        report_against_baseline(&compared);
    }
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
                    let status = request(&agent, &url).status;
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

/// The routes slower than the baseline: by more than 10%, and by more than 10% and 0.5 ms (a
/// difference a user could notice, not the jitter of a sub-millisecond answer); and the median
/// ratio over all routes.
fn report_against_baseline(compared: &[(String, f64, f64)]) {
    let mut ratios: Vec<f64> = compared.iter().map(|(_, ours, base)| ours / base).collect();
    ratios.sort_by(f64::total_cmp);
    let slower: Vec<&(String, f64, f64)> = compared
        .iter()
        .filter(|(_, ours, base)| *ours > base * 1.1)
        .collect();
    let noticeably: Vec<String> = slower
        .iter()
        .filter(|(_, ours, base)| ours - base > 0.5)
        .map(|(label, ours, base)| format!("{label} ({base:.2} -> {ours:.2} ms)"))
        .collect();
    println!(
        "against the baseline: median ratio {:.2} over {} routes; {} slower by more than 10%, \
         {} of them by more than 0.5 ms{}",
        percentile(&ratios, 50.0),
        compared.len(),
        slower.len(),
        noticeably.len(),
        if noticeably.is_empty() {
            String::new()
        } else {
            format!(": {}", noticeably.join(", "))
        }
    );
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What a GET answered.
#[derive(Default)]
struct Answer {
    status: u16,
    /// Rows of its list, or its count.
    rows: String,
    body: String,
}

/// One GET.
fn request(agent: &ureq::Agent, url: &str) -> Answer {
    let response = match agent.get(url).call() {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(err) => {
            return Answer {
                rows: format!("error: {err}"),
                ..Answer::default()
            }
        }
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
    Answer {
        status,
        rows: held,
        body,
    }
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
