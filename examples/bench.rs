//! The performance benchmark anyone can rerun: the release binary under load, beside a parse-only
//! ceiling and, optionally, the Python reference (monitor-server-api 1.1.0).
//!
//! ```text
//! cargo run --release --example bench                                    # ours and the ceiling
//! cargo run --release --example bench -- --reference http://127.0.0.1:18600/api/v1
//! cargo run --release --example bench -- --curve --with-10m              # plus the cost curve
//! ```
//!
//! It builds (`cargo build --release --bin monitor-server`, a no-op when up to date) and starts the
//! real `monitor-server` binary as a child process on a database in a temporary directory and
//! `--bind 127.0.0.1:0`, reading its address from the "listening on" line of its log, so that its
//! memory can be read from `/proc/PID/status` (VmRSS idle and sampled during the load, VmHWM at
//! the end). If the binary's `--help` lists `--keep-alive`, the server (and the ceiling) keep
//! connections alive for 5 s; otherwise every connection carries one request. The output says
//! which.
//!
//! The ceiling is a minimal actix-web server started inside this process, with the same worker
//! count and keep-alive mode: its handler parses the same JSON body into a `serde_json::Value`
//! and answers 201 with it re-serialized. It is what the HTTP layer and JSON parsing alone cost.
//!
//! Load comes from `wrk` when it is on the PATH (a Lua script in a temporary file sets the POST
//! body and its Content-Type; `--latency` gives p50 and p99), else from a built-in generator: one
//! thread per connection, each writing raw HTTP/1.1 requests over a `TcpStream`, reconnecting
//! when the server closes, timing every request from its first byte written to its answer's last
//! byte read (as wrk does). Each run uses `--connections` (16) connections for `--duration` (10 s):
//! `POST /metrics/` on ours, on the ceiling and on the reference, and `GET /metrics/?page=1` (a
//! full page of 500 metrics: at least 500 are stored first) on ours and on the reference. Then it
//! prints requests/s, p50 and p99, and the ratios ours/reference and ours/ceiling.
//!
//! Then, still on ours, `--batches` (5) bodies of `--batch-size` (50,000) metrics each are sent
//! one after the other to `POST /metrics/batch` (`application/x-ndjson`, one metric per line,
//! over 500 test items), each timed from its first byte sent to its answer; it prints metrics
//! stored per second (all metrics over the summed times), the p50 time of a batch, the memory
//! after them, and with `--reference` the ratio to the reference's single-POST rate (it has no
//! batch route). `--batches 0` skips it.
//!
//! `--curve` adds the cost curve: for each size (10k, 100k, 1M; 10M too with `--with-10m`; or
//! `--sizes 10k,2M`) it loads a store straight into SQLite through the real tables (the loader of
//! `query_bench`, `common/store.rs`), starts the binary on it and measures start-up (spawn to the
//! "listening on" line, and to a first answer), then `--samples` (200) sequential requests each of
//! page 1, the middle page, page -1 and `/metrics/count`, and POST throughput for `--curve-post`
//! (5 s). Stores are deleted after each size unless `--keep DIR`, where they are kept and reused
//! by the next run. `--curve-only` skips the headline runs.
//!
//! The last table lists every target of the performance issue with the measured value and PASS
//! or MISS. Numbers are only as quiet as the machine: the first line shows its load average.
//!
//! Other options: `--generator wrk|builtin`, `--binary PATH` (use this server binary as is),
//! `--no-build`, `--server-args "ARGS"` (more arguments for the server, split at spaces, e.g.
//! `--server-args "--synchronous normal"`).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::http::KeepAlive;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};

#[path = "common/store.rs"]
mod store;

/// Rows per page, on our server and the reference alike.
const PAGE_SIZE: u64 = 500;
/// Seconds an idle connection is kept open when the binary supports `--keep-alive`.
const KEEP_ALIVE_SECONDS: u64 = 5;
/// Requests sent before timing a sequential series.
const WARM_UPS: usize = 3;
/// How long a server may take to print its address (a large store on a cold cache is slow).
const START_TIMEOUT: Duration = Duration::from_secs(300);
/// How long any single request may take before the bench gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------------------
// Options
// ------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum GeneratorChoice {
    Auto,
    Wrk,
    Builtin,
}

struct Options {
    duration: Duration,
    connections: usize,
    reference: Option<String>,
    headline: bool,
    curve: bool,
    sizes: Vec<u64>,
    with_10m: bool,
    keep: Option<PathBuf>,
    curve_post: Duration,
    samples: usize,
    generator: GeneratorChoice,
    binary: Option<PathBuf>,
    build: bool,
    server_args: Vec<String>,
    batches: usize,
    batch_size: usize,
}

const USAGE: &str = "usage: bench [--duration SECS] [--connections N] [--reference URL] \
[--curve | --curve-only] [--sizes 10k,100k,1M] [--with-10m] [--keep DIR] [--curve-post SECS] \
[--samples N] [--batches N] [--batch-size N] [--generator wrk|builtin] [--binary PATH] [--no-build] [--server-args \"ARGS\"]";

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        duration: Duration::from_secs(10),
        connections: 16,
        reference: None,
        headline: true,
        curve: false,
        sizes: vec![10_000, 100_000, 1_000_000],
        with_10m: false,
        keep: None,
        curve_post: Duration::from_secs(5),
        samples: 200,
        generator: GeneratorChoice::Auto,
        binary: None,
        build: true,
        server_args: Vec::new(),
        batches: 5,
        batch_size: 50_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--duration" => options.duration = Duration::from_secs(number(&value()?)?.max(1)),
            "--connections" => options.connections = number(&value()?)?.max(1) as usize,
            "--reference" => options.reference = Some(value()?),
            "--curve" => options.curve = true,
            "--curve-only" => {
                options.curve = true;
                options.headline = false;
            }
            "--sizes" => {
                options.sizes = value()?.split(',').map(number).collect::<Result<_, _>>()?;
            }
            "--with-10m" => options.with_10m = true,
            "--keep" => options.keep = Some(PathBuf::from(value()?)),
            "--curve-post" => {
                options.curve_post = Duration::from_secs(number(&value()?)?.max(1));
            }
            "--samples" => options.samples = number(&value()?)?.max(1) as usize,
            "--batches" => options.batches = number(&value()?)? as usize,
            "--batch-size" => options.batch_size = number(&value()?)?.max(1) as usize,
            "--generator" => {
                options.generator = match value()?.as_str() {
                    "wrk" => GeneratorChoice::Wrk,
                    "builtin" => GeneratorChoice::Builtin,
                    other => return Err(format!("unknown generator {other}: wrk or builtin")),
                }
            }
            "--binary" => {
                options.binary = Some(PathBuf::from(value()?));
                options.build = false;
            }
            "--no-build" => options.build = false,
            "--server-args" => {
                options.server_args = value()?.split_whitespace().map(String::from).collect();
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}; try --help")),
        }
    }
    if options.with_10m && !options.sizes.contains(&10_000_000) {
        options.sizes.push(10_000_000);
    }
    options.sizes.sort_unstable();
    options.sizes.dedup();
    Ok(options)
}

/// `10000`, `10_000`, `10k`, `1M`.
fn number(text: &str) -> Result<u64, String> {
    let clean = text.trim().replace(['_', ','], "");
    let (digits, factor) = match clean.chars().last() {
        Some('k' | 'K') => (&clean[..clean.len() - 1], 1_000),
        Some('m' | 'M') => (&clean[..clean.len() - 1], 1_000_000),
        _ => (clean.as_str(), 1),
    };
    digits
        .parse::<u64>()
        .map(|n| n * factor)
        .map_err(|_| format!("`{text}` is not a number"))
}

fn size_label(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

// ------------------------------------------------------------------------------------------
// main
// ------------------------------------------------------------------------------------------

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let binary = match locate_binary(&options) {
        Ok(binary) => binary,
        Err(message) => {
            eprintln!("bench: {message}");
            return ExitCode::from(2);
        }
    };
    let flags = ServerFlags::detect(&binary, &options.server_args);
    let generator = Generator::choose(options.generator, options.connections);
    let binary_size = std::fs::metadata(&binary).map_or(0, |m| m.len());

    println!("machine: {} CPUs, {}", flags.workers, load_average());
    println!(
        "server: {} ({:.1} MB){}, {} workers{}, keep-alive {}",
        binary.display(),
        binary_size as f64 / 1e6,
        if flags.extra.is_empty() {
            String::new()
        } else {
            format!(" with {}", flags.extra.join(" "))
        },
        flags.workers,
        if flags.workers_flag {
            " (--workers)"
        } else {
            " (actix's default: one per CPU)"
        },
        flags.keep_alive_text()
    );
    println!(
        "ceiling: in-process actix-web, parse-only handler (serde_json::Value), {} workers, \
         keep-alive {}",
        flags.workers,
        flags.keep_alive_text()
    );
    println!(
        "load: {}, {} connections, {} s per run",
        generator.describe(),
        options.connections,
        options.duration.as_secs()
    );
    println!();

    let mut summary = Summary {
        binary_size: Some(binary_size),
        ..Summary::default()
    };
    if options.headline {
        if let Err(message) = headline(&options, &binary, &flags, &generator, &mut summary) {
            eprintln!("bench: {message}");
            return ExitCode::FAILURE;
        }
    }
    if options.curve {
        match curve(&options, &binary, &flags, &generator) {
            Ok(rows) => summary.curve = rows,
            Err(message) => {
                eprintln!("bench: {message}");
                return ExitCode::FAILURE;
            }
        }
    }
    summary.print(options.reference.is_some());
    println!();
    println!("machine at the end: {}", load_average());
    ExitCode::SUCCESS
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            let parts: Vec<&str> = text.split_whitespace().take(3).collect();
            format!("load average {}", parts.join(" "))
        })
        .unwrap_or_else(|_| "load average unknown".into())
}

// ------------------------------------------------------------------------------------------
// The headline: POST and GET under load, against the ceiling and the reference
// ------------------------------------------------------------------------------------------

/// One load run's outcome.
#[derive(Clone, Debug)]
struct Load {
    requests: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Answers outside 2xx/3xx.
    bad: u64,
    /// Connections refused or broken, requests timed out.
    errors: u64,
}

fn headline(
    options: &Options,
    binary: &Path,
    flags: &ServerFlags,
    generator: &Generator,
    summary: &mut Summary,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|err| format!("no temporary directory: {err}"))?;
    let db = dir.path().join("monitor.db");
    let metric = Bodies::new();
    let conns = options.connections;
    let duration = options.duration;

    // Ours.
    let ours = Ours::start(binary, &db, flags)?;
    println!(
        "ours started on {} in {:.0} ms (listening), {:.0} ms (first answer)",
        ours.base.host,
        ms(ours.listening),
        ms(ours.first_answer)
    );
    thread::sleep(Duration::from_secs(1));
    let idle_before = ours.rss_kb();
    metric.prepare(&ours.base);
    let watch = RssWatch::start(ours.pid());
    print_progress("POST /metrics/ ours");
    let post_ours = generator.run(&ours.base, &metric.post(&ours.base), conns, duration);
    println!("{}", post_ours.short());
    let stored = ensure_metrics(&ours.base, &metric, PAGE_SIZE)?;
    let get = Request::get(&ours.base, "/metrics/?page=1");
    let rows = page_rows(&ours.base, &get);
    print_progress(&format!(
        "GET /metrics/?page=1 ours ({stored} stored, {rows})"
    ));
    let get_ours = generator.run(&ours.base, &get, conns, duration);
    println!("{}", get_ours.short());
    let sampled_peak = watch.stop();
    let hwm = ours.hwm_kb();
    thread::sleep(Duration::from_secs(2));
    let idle_after = ours.rss_kb();
    let batch = if options.batches > 0 {
        print_progress(&format!(
            "POST /metrics/batch ours ({} batches of {} metrics)",
            options.batches, options.batch_size
        ));
        let batch = post_batches(&ours.base, &metric, options.batches, options.batch_size)?;
        thread::sleep(Duration::from_secs(2));
        let rss = ours.rss_kb();
        println!(
            "{:.0} metrics/s, p50 {:.0} ms per batch; RSS {} after them",
            batch.metrics_per_s,
            batch.p50_ms,
            mb(rss)
        );
        Some(batch)
    } else {
        None
    };
    ours.stop();

    // The ceiling.
    let ceiling = Ceiling::start(flags)?;
    print_progress("POST /metrics/ ceiling (parse-only)");
    let post_ceiling = generator.run(&ceiling.base, &metric.post(&ceiling.base), conns, duration);
    println!("{}", post_ceiling.short());
    ceiling.stop();

    // The reference.
    let mut reference = None;
    if let Some(url) = &options.reference {
        let base = Base::parse(url)?;
        metric.prepare(&base);
        print_progress("POST /metrics/ reference");
        let post_ref = generator.run(&base, &metric.post(&base), conns, duration);
        println!("{}", post_ref.short());
        let stored = ensure_metrics(&base, &metric, PAGE_SIZE)?;
        let get = Request::get(&base, "/metrics/?page=1");
        let rows = page_rows(&base, &get);
        print_progress(&format!(
            "GET /metrics/?page=1 reference ({stored} stored, {rows})"
        ));
        let get_ref = generator.run(&base, &get, conns, duration);
        println!("{}", get_ref.short());
        reference = Some((post_ref, get_ref));
    }

    println!();
    println!(
        "{:<40} {:>10} {:>9} {:>9} {:>9} {:>8} {:>7}",
        "run", "req/s", "p50 ms", "p99 ms", "requests", "non-2xx", "errors"
    );
    let line = |name: &str, load: &Load| {
        println!(
            "{name:<40} {:>10.0} {:>9.2} {:>9.2} {:>9} {:>8} {:>7}",
            load.rps, load.p50_ms, load.p99_ms, load.requests, load.bad, load.errors
        );
    };
    line("POST /api/v1/metrics/  ours", &post_ours);
    line("POST /api/v1/metrics/  ceiling", &post_ceiling);
    if let Some((post_ref, _)) = &reference {
        line("POST /api/v1/metrics/  reference", post_ref);
    }
    line("GET  /api/v1/metrics/?page=1  ours", &get_ours);
    if let Some((_, get_ref)) = &reference {
        line("GET  /api/v1/metrics/?page=1  reference", get_ref);
    }
    println!();
    println!(
        "ours/ceiling, POST: {:.1}% of the parse-only rate",
        100.0 * post_ours.rps / post_ceiling.rps
    );
    if let Some((post_ref, get_ref)) = &reference {
        println!(
            "ours/reference, POST: {:.1}x   GET page 1: {:.1}x",
            post_ours.rps / post_ref.rps,
            get_ours.rps / get_ref.rps
        );
    }
    if let Some(batch) = &batch {
        print!(
            "POST /metrics/batch (ours): {} batches of {} metrics, {:.0} metrics/s, p50 {:.0} ms \
             per batch",
            batch.batches, batch.size, batch.metrics_per_s, batch.p50_ms
        );
        match &reference {
            Some((post_ref, _)) => println!(
                "; {:.0}x the reference's single-POST rate",
                batch.metrics_per_s / post_ref.rps
            ),
            None => println!(),
        }
    }
    println!(
        "memory (ours): idle {} after start-up, {} after the load; during the load: \
         sampled VmRSS peak {}, VmHWM {}",
        mb(idle_before),
        mb(idle_after),
        mb(Some(sampled_peak)),
        mb(hwm)
    );
    println!();

    summary.post_ours = Some(post_ours);
    summary.get_ours = Some(get_ours);
    summary.post_ceiling = Some(post_ceiling);
    summary.reference = reference;
    summary.idle_kb = idle_before;
    summary.idle_after_kb = idle_after;
    summary.batch = batch;
    summary.load_kb = hwm.into_iter().chain([sampled_peak]).max();
    Ok(())
}

/// What `--batches` measured.
struct Batches {
    batches: usize,
    size: usize,
    metrics_per_s: f64,
    p50_ms: f64,
}

/// Sends `batches` bodies of `size` metrics to `POST /metrics/batch`, one after the other, each
/// timed from its first byte written to its answer's last byte read.
fn post_batches(
    base: &Base,
    bodies: &Bodies,
    batches: usize,
    size: usize,
) -> Result<Batches, String> {
    let template: Value = serde_json::from_slice(&bodies.metric()).map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(batches);
    let mut client = Client::new(base.addr);
    for b in 0..batches {
        let mut body = Vec::with_capacity(size * 400);
        for i in 0..size {
            let mut metric = template.clone();
            let test = (b * size + i) % 500;
            metric["item"] = json!(format!("test_{test}"));
            metric["item_variant"] = json!(format!("test_{test}[param]"));
            metric["total_time"] = json!(0.001 * (i % 997) as f64);
            serde_json::to_writer(&mut body, &metric).map_err(|e| e.to_string())?;
            body.push(b'\n');
        }
        let request = Request::post_as(base, "/metrics/batch", "application/x-ndjson", body);
        let started = Instant::now();
        let response = client
            .call(&request.raw)
            .map_err(|err| format!("POST /metrics/batch failed: {err}"))?;
        times.push(started.elapsed());
        if response.status != 201 {
            return Err(format!(
                "POST /metrics/batch answered {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ));
        }
    }
    let total: Duration = times.iter().sum();
    times.sort();
    Ok(Batches {
        batches,
        size,
        metrics_per_s: (batches * size) as f64 / total.as_secs_f64(),
        p50_ms: ms(times[times.len() / 2]),
    })
}

fn print_progress(what: &str) {
    print!("  {what} ... ");
    let _ = io::stdout().flush();
}

impl Load {
    fn short(&self) -> String {
        let mut text = format!(
            "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            self.rps, self.p50_ms, self.p99_ms
        );
        if self.bad > 0 || self.errors > 0 {
            let _ = write!(text, " ({} non-2xx, {} errors)", self.bad, self.errors);
        }
        text
    }
}

/// Stores metrics one by one until at least `want` are stored; returns how many are.
fn ensure_metrics(base: &Base, bodies: &Bodies, want: u64) -> Result<u64, String> {
    let mut client = Client::new(base.addr);
    let count = Request::get(base, "/metrics/count");
    let read_count = |client: &mut Client| -> Option<u64> {
        let response = client.call(&count.raw).ok()?;
        let value: Value = serde_json::from_slice(&response.body).ok()?;
        value.get("count")?.as_u64()
    };
    let stored = read_count(&mut client).unwrap_or(0);
    if stored >= want {
        return Ok(stored);
    }
    let post = bodies.post(base);
    for _ in stored..want {
        let response = client
            .call(&post.raw)
            .map_err(|err| format!("cannot store a metric on {}: {err}", base.host))?;
        if response.status != 201 {
            return Err(format!(
                "{} answered {} to a metric: {}",
                base.host,
                response.status,
                String::from_utf8_lossy(&response.body)
            ));
        }
    }
    Ok(read_count(&mut client).unwrap_or(want))
}

/// What one page holds, for the progress line: "500 rows, 212 KB".
fn page_rows(base: &Base, request: &Request) -> String {
    let mut client = Client::new(base.addr);
    match client.call(&request.raw) {
        Ok(response) => {
            let rows = serde_json::from_slice::<Value>(&response.body)
                .ok()
                .and_then(|v| v.get("metrics").and_then(Value::as_array).map(Vec::len));
            match rows {
                Some(rows) => format!(
                    "page of {rows} rows, {:.0} KB",
                    response.body.len() as f64 / 1e3
                ),
                None => format!("status {}", response.status),
            }
        }
        Err(err) => format!("error: {err}"),
    }
}

/// The records posted: one context, one session, and the metric every POST sends.
struct Bodies {
    session_h: String,
    context_h: String,
}

impl Bodies {
    /// Hashes of this run, so that a reference database that already holds a run's session
    /// does not refuse it.
    fn new() -> Bodies {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Bodies {
            session_h: format!("{nanos:040x}"),
            context_h: format!("{:040x}", nanos ^ 0x5eed_c0ff_ee00_b0a7),
        }
    }

    fn metric(&self) -> Vec<u8> {
        json!({
            "session_h": self.session_h,
            "context_h": self.context_h,
            "item_start_time": "2020-12-04T23:18:15.661016",
            "item_path": "tests.test_file",
            "item": "test_that",
            "item_variant": "test_that[param]",
            "item_fs_loc": "tests/test_file.py",
            "kind": "function",
            "component": "test_component",
            "total_time": 0.25,
            "user_time": 0.2,
            "kernel_time": 0.01,
            "cpu_usage": 0.84,
            "mem_usage": 12.5
        })
        .to_string()
        .into_bytes()
    }

    fn post(&self, base: &Base) -> Request {
        Request::post(base, "/metrics/", self.metric())
    }

    /// Creates the run's context and session (the reference's tables expect them); a failure is
    /// reported and otherwise ignored: the metrics are what is measured.
    fn prepare(&self, base: &Base) {
        let context = json!({
            "h": self.context_h, "cpu_count": 8, "cpu_frequency": 2900.0,
            "cpu_type": "x86_64", "cpu_vendor": "GenuineIntel", "ram_total": 16384,
            "machine_node": "bench", "machine_type": "x86_64", "machine_arch": "64bit",
            "system_info": "Linux - 6.1.0-13-amd64", "python_info": "3.11.7"
        });
        let session = json!({
            "session_h": self.session_h, "run_date": "2020-12-04T23:18:14.512317",
            "scm_ref": "3a32301", "description": {"description": "bench"}
        });
        let mut client = Client::new(base.addr);
        for (path, body) in [("/contexts/", context), ("/sessions/", session)] {
            let request = Request::post(base, path, body.to_string().into_bytes());
            match client.call(&request.raw) {
                Ok(response) if response.status == 201 => {}
                Ok(response) => eprintln!(
                    "note: POST {path} on {} answered {}",
                    base.host, response.status
                ),
                Err(err) => eprintln!("note: POST {path} on {} failed: {err}", base.host),
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// The cost curve
// ------------------------------------------------------------------------------------------

struct CurveRow {
    size: u64,
    stored: u64,
    load_s: Option<f64>,
    listening_ms: f64,
    first_answer_ms: f64,
    page1: (f64, f64),
    middle: (f64, f64),
    last: (f64, f64),
    count: (f64, f64),
    post: Load,
    idle_kb: Option<u64>,
    peak_kb: Option<u64>,
}

fn curve(
    options: &Options,
    binary: &Path,
    flags: &ServerFlags,
    generator: &Generator,
) -> Result<Vec<CurveRow>, String> {
    let temp = tempfile::tempdir().map_err(|err| format!("no temporary directory: {err}"))?;
    let dir = match &options.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
            dir.clone()
        }
        None => temp.path().to_owned(),
    };
    println!(
        "cost curve: sizes {}, {} sequential requests per page, POST for {} s; stores in {}{}",
        options
            .sizes
            .iter()
            .map(|&s| size_label(s))
            .collect::<Vec<_>>()
            .join(", "),
        options.samples,
        options.curve_post.as_secs(),
        dir.display(),
        if options.keep.is_some() {
            " (kept)"
        } else {
            " (deleted after each size)"
        }
    );
    let bodies = Bodies::new();
    let mut rows = Vec::new();
    for &size in &options.sizes {
        let path = dir.join(format!("bench-store-{}.db", size_label(size)));
        let already = store::stored_metrics(&path).max(0) as u64;
        let load_s = if already >= size {
            println!(
                "  {}: reusing {} ({already} metrics)",
                size_label(size),
                path.display()
            );
            None
        } else {
            remove_store(&path);
            print_progress(&format!("{}: loading", size_label(size)));
            let started = Instant::now();
            store::load(&path, size, (size / 1_000).max(1))
                .map_err(|err| format!("loading {} metrics failed: {err}", size))?;
            let seconds = started.elapsed().as_secs_f64();
            println!("{seconds:.1} s, {}", store::size_of_store(&path));
            Some(seconds)
        };
        let row = measure_store(
            options, binary, flags, generator, &bodies, &path, size, load_s,
        );
        if options.keep.is_none() {
            remove_store(&path);
        }
        let row = row?;
        println!(
            "  {}: start-up {:.0} ms, page 1 {:.2} ms, middle {:.2} ms, last {:.2} ms, \
             count {:.2} ms (p50), POST {:.0}/s",
            size_label(size),
            row.first_answer_ms,
            row.page1.0,
            row.middle.0,
            row.last.0,
            row.count.0,
            row.post.rps
        );
        rows.push(row);
    }
    println!();
    print_curve(&rows);
    println!();
    Ok(rows)
}

#[allow(clippy::too_many_arguments)]
fn measure_store(
    options: &Options,
    binary: &Path,
    flags: &ServerFlags,
    generator: &Generator,
    bodies: &Bodies,
    path: &Path,
    size: u64,
    load_s: Option<f64>,
) -> Result<CurveRow, String> {
    let ours = Ours::start(binary, path, flags)?;
    let listening_ms = ms(ours.listening);
    let first_answer_ms = ms(ours.first_answer);
    thread::sleep(Duration::from_millis(500));
    let idle_kb = ours.rss_kb();
    let base = ours.base.clone();

    let mut client = Client::new(base.addr);
    let count_request = Request::get(&base, "/metrics/count");
    let stored = client
        .call(&count_request.raw)
        .ok()
        .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .and_then(|v| v.get("count").and_then(Value::as_u64))
        .ok_or("cannot read /metrics/count")?;
    let pages = stored.div_ceil(PAGE_SIZE).max(1);
    let series = |client: &mut Client, path: &str| -> Result<(f64, f64), String> {
        let request = Request::get(&base, path);
        let mut times = Vec::with_capacity(options.samples);
        for n in 0..WARM_UPS + options.samples {
            let started = Instant::now();
            let response = client
                .call(&request.raw)
                .map_err(|err| format!("GET {path} failed: {err}"))?;
            let took = started.elapsed();
            if response.status != 200 {
                return Err(format!("GET {path} answered {}", response.status));
            }
            if n == 0 && path.contains("page=") && path != "/metrics/?page=-1" {
                // A full page, or the measure means little.
                let rows = serde_json::from_slice::<Value>(&response.body)
                    .ok()
                    .and_then(|v| v.get("metrics").and_then(Value::as_array).map(Vec::len));
                if rows != Some(PAGE_SIZE as usize) {
                    eprintln!("warning: GET {path} held {rows:?} rows, not {PAGE_SIZE}");
                }
            }
            if n >= WARM_UPS {
                times.push(took.as_micros().min(u32::MAX as u128) as u32);
            }
        }
        times.sort_unstable();
        Ok((percentile_ms(&times, 50.0), percentile_ms(&times, 99.0)))
    };
    let page1 = series(&mut client, "/metrics/?page=1")?;
    let middle = series(
        &mut client,
        &format!("/metrics/?page={}", pages.div_ceil(2)),
    )?;
    let last = series(&mut client, "/metrics/?page=-1")?;
    let count = series(&mut client, "/metrics/count")?;
    drop(client);

    let post = generator.run(
        &base,
        &bodies.post(&base),
        options.connections,
        options.curve_post,
    );
    let peak_kb = ours.hwm_kb();
    ours.stop();
    Ok(CurveRow {
        size,
        stored,
        load_s,
        listening_ms,
        first_answer_ms,
        page1,
        middle,
        last,
        count,
        post,
        idle_kb,
        peak_kb,
    })
}

fn remove_store(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn print_curve(rows: &[CurveRow]) {
    println!("cost curve (latencies in ms, p50/p99 of sequential requests; POST/s under load)");
    println!(
        "{:>6} {:>9} {:>7} {:>8} {:>8} {:>13} {:>13} {:>13} {:>11} {:>8} {:>8} {:>8}",
        "size",
        "stored",
        "load s",
        "listen",
        "1st ans",
        "page 1",
        "middle page",
        "page -1",
        "count",
        "POST/s",
        "idle MB",
        "peak MB"
    );
    let pair = |(p50, p99): (f64, f64)| format!("{p50:.2}/{p99:.2}");
    for row in rows {
        println!(
            "{:>6} {:>9} {:>7} {:>8.0} {:>8.0} {:>13} {:>13} {:>13} {:>11} {:>8.0} {:>8} {:>8}",
            size_label(row.size),
            row.stored,
            row.load_s
                .map_or_else(|| "reused".into(), |s| format!("{s:.0}")),
            row.listening_ms,
            row.first_answer_ms,
            pair(row.page1),
            pair(row.middle),
            pair(row.last),
            pair(row.count),
            row.post.rps,
            row.idle_kb
                .map_or_else(|| "-".into(), |kb| format!("{:.1}", kb as f64 / 1024.0)),
            row.peak_kb
                .map_or_else(|| "-".into(), |kb| format!("{:.1}", kb as f64 / 1024.0)),
        );
    }
}

// ------------------------------------------------------------------------------------------
// The summary against the issue's targets
// ------------------------------------------------------------------------------------------

#[derive(Default)]
struct Summary {
    post_ours: Option<Load>,
    get_ours: Option<Load>,
    post_ceiling: Option<Load>,
    reference: Option<(Load, Load)>,
    /// Idle after start-up, and idle again after the load.
    idle_kb: Option<u64>,
    idle_after_kb: Option<u64>,
    load_kb: Option<u64>,
    batch: Option<Batches>,
    binary_size: Option<u64>,
    curve: Vec<CurveRow>,
}

impl Summary {
    fn print(&self, reference_asked: bool) {
        let mut rows: Vec<(String, String, String)> = Vec::new();
        let mut add = |target: &str, measured: String, verdict: String| {
            rows.push((target.to_owned(), measured, verdict));
        };
        let pass = |ok: bool| if ok { "PASS" } else { "MISS" }.to_owned();
        let not_run = || ("not measured".to_owned(), "-".to_owned());

        // Throughput against the reference and the ceiling.
        match (&self.post_ours, &self.reference) {
            (Some(ours), Some((post_ref, _))) => {
                let ratio = ours.rps / post_ref.rps;
                add(
                    "POST /metrics/ >= 50x the reference (16 conns)",
                    format!("{ratio:.1}x ({:.0} vs {:.0} req/s)", ours.rps, post_ref.rps),
                    pass(ratio >= 50.0),
                );
            }
            _ => {
                let (m, v) = not_run();
                let m = if reference_asked {
                    m
                } else {
                    "no --reference".into()
                };
                add("POST /metrics/ >= 50x the reference (16 conns)", m, v);
            }
        }
        match (&self.post_ours, &self.post_ceiling) {
            (Some(ours), Some(ceiling)) => {
                let share = 100.0 * ours.rps / ceiling.rps;
                add(
                    "POST /metrics/ >= 50% of the parse-only ceiling",
                    format!("{share:.1}% ({:.0} vs {:.0} req/s)", ours.rps, ceiling.rps),
                    pass(share >= 50.0),
                );
            }
            _ => {
                let (m, v) = not_run();
                add("POST /metrics/ >= 50% of the parse-only ceiling", m, v);
            }
        }
        match &self.batch {
            Some(batch) => add(
                "POST /metrics/batch >= 200,000 metrics/s",
                format!(
                    "{:.0} metrics/s ({} x {})",
                    batch.metrics_per_s, batch.batches, batch.size
                ),
                pass(batch.metrics_per_s >= 200_000.0),
            ),
            None => {
                let (m, v) = not_run();
                add("POST /metrics/batch >= 200,000 metrics/s", m, v);
            }
        }
        match (&self.get_ours, &self.reference) {
            (Some(ours), Some((_, get_ref))) => {
                let ratio = ours.rps / get_ref.rps;
                add(
                    "GET /metrics/?page=1 (500 rows) >= 20x the reference",
                    format!("{ratio:.1}x ({:.0} vs {:.0} req/s)", ours.rps, get_ref.rps),
                    pass(ratio >= 20.0),
                );
            }
            _ => {
                let (m, v) = not_run();
                let m = if reference_asked {
                    m
                } else {
                    "no --reference".into()
                };
                add("GET /metrics/?page=1 (500 rows) >= 20x the reference", m, v);
            }
        }

        // The curve: latency at the largest size, flatness from the smallest to the largest.
        let largest = self.curve.last();
        let smallest = self.curve.first();
        let at_10m = largest.is_some_and(|row| row.size >= 10_000_000);
        // Verdicts measured below 10M are marked, and say at which size.
        let mark = |ok: bool| {
            if at_10m {
                pass(ok)
            } else {
                format!("{}*", pass(ok))
            }
        };
        match largest {
            Some(row) => {
                let worst = row.page1.0.max(row.middle.0).max(row.last.0);
                add(
                    "any page of a 10M store < 5 ms p50",
                    format!(
                        "{}: page 1 {:.2}, middle {:.2}, -1 {:.2} ms",
                        size_label(row.size),
                        row.page1.0,
                        row.middle.0,
                        row.last.0
                    ),
                    mark(worst < 5.0),
                );
            }
            None => {
                let (m, v) = not_run();
                add("any page of a 10M store < 5 ms p50", m, v);
            }
        }
        match (smallest, largest) {
            (Some(small), Some(large)) if self.curve.len() > 1 => {
                // Flat: the largest store within twice the smallest's time, plus 0.5 ms of noise.
                let flat = |a: f64, b: f64| b <= 2.0 * a + 0.5;
                add(
                    "count O(1) (/metrics/count p50)",
                    format!(
                        "{} {:.2} ms -> {} {:.2} ms",
                        size_label(small.size),
                        small.count.0,
                        size_label(large.size),
                        large.count.0
                    ),
                    mark(flat(small.count.0, large.count.0)),
                );
                add(
                    "total_page O(1) (page 1 p50, which carries it)",
                    format!(
                        "{} {:.2} ms -> {} {:.2} ms",
                        size_label(small.size),
                        small.page1.0,
                        size_label(large.size),
                        large.page1.0
                    ),
                    mark(flat(small.page1.0, large.page1.0)),
                );
            }
            _ => {
                let (m, v) = not_run();
                add("count and total_page O(1)", m, v);
            }
        }

        // Memory: the headline's, and every store's of the curve.
        let at_start = self
            .idle_kb
            .into_iter()
            .chain(self.curve.iter().filter_map(|r| r.idle_kb))
            .max();
        let idle = at_start.into_iter().chain(self.idle_after_kb).max();
        let peak = self
            .load_kb
            .into_iter()
            .chain(self.curve.iter().filter_map(|r| r.peak_kb))
            .max();
        match idle {
            Some(kb) => add(
                "RSS idle < 20 MB",
                format!(
                    "{} at start (worst store), {} idle after the load",
                    mb(at_start),
                    mb(self.idle_after_kb)
                ),
                pass(kb < 20 * 1024),
            ),
            None => {
                let (m, v) = not_run();
                add("RSS idle < 20 MB", m, v);
            }
        }
        match peak {
            Some(kb) => add(
                "RSS during the load < 100 MB",
                format!("{:.1} MB (peak, VmHWM)", kb as f64 / 1024.0),
                pass(kb < 100 * 1024),
            ),
            None => {
                let (m, v) = not_run();
                add("RSS during the load < 100 MB", m, v);
            }
        }
        match largest {
            Some(row) => add(
                "start-up on a 10M store < 200 ms",
                format!(
                    "{}: {:.0} ms to the first answer ({:.0} ms to listening)",
                    size_label(row.size),
                    row.first_answer_ms,
                    row.listening_ms
                ),
                mark(row.first_answer_ms < 200.0),
            ),
            None => {
                let (m, v) = not_run();
                add("start-up on a 10M store < 200 ms", m, v);
            }
        }
        if let Some(size) = self.binary_size {
            add(
                "release binary < 15 MB",
                format!("{:.1} MB", size as f64 / 1e6),
                pass(size < 15_000_000),
            );
        }

        println!("targets");
        println!("{:<54} {:<58} verdict", "target", "measured");
        for (target, measured, verdict) in &rows {
            println!("{target:<54} {measured:<58} {verdict}");
        }
        if !at_10m && largest.is_some() {
            println!("* measured on the largest store of this run, not on 10M (--with-10m)");
        }
    }
}

// ------------------------------------------------------------------------------------------
// Our server: the release binary as a child process
// ------------------------------------------------------------------------------------------

/// How the binary is started, from what its `--help` lists.
struct ServerFlags {
    keep_alive: bool,
    /// `--server-args`, passed as they are.
    extra: Vec<String>,
    workers_flag: bool,
    workers: usize,
}

impl ServerFlags {
    fn detect(binary: &Path, extra: &[String]) -> ServerFlags {
        let help = Command::new(binary)
            .arg("--help")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default();
        ServerFlags {
            keep_alive: help.contains("--keep-alive"),
            extra: extra.to_vec(),
            workers_flag: help.contains("--workers"),
            workers: thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }

    fn keep_alive_text(&self) -> String {
        if self.keep_alive {
            format!("{KEEP_ALIVE_SECONDS} s (--keep-alive {KEEP_ALIVE_SECONDS})")
        } else {
            "off: one request per connection (the binary has no --keep-alive)".into()
        }
    }
}

/// The server binary: `--binary`, else the one next to this example (built first when asked).
fn locate_binary(options: &Options) -> Result<PathBuf, String> {
    if let Some(binary) = &options.binary {
        return Ok(binary.clone());
    }
    // target/release/examples/bench -> target/release/monitor-server
    let exe = std::env::current_exe().map_err(|err| format!("cannot find myself: {err}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot find the target directory")?;
    let binary = profile_dir.join("monitor-server");
    if options.build || !binary.exists() {
        eprintln!("building the release binary (cargo build --release --bin monitor-server)");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--bin", "monitor-server"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status();
        match status {
            Ok(status) if status.success() => {}
            _ if binary.exists() => {
                eprintln!("warning: the build failed; measuring the binary already there")
            }
            _ => return Err("cannot build the release binary".into()),
        }
    }
    if !profile_dir.ends_with("release") {
        eprintln!(
            "warning: {} is not a release build; run with --release",
            binary.display()
        );
    }
    Ok(binary)
}

struct Ours {
    child: Child,
    base: Base,
    /// From spawning to the "listening on" line.
    listening: Duration,
    /// From spawning to the first answered request.
    first_answer: Duration,
}

impl Ours {
    fn start(binary: &Path, db: &Path, flags: &ServerFlags) -> Result<Ours, String> {
        let mut command = Command::new(binary);
        command
            .arg("--db")
            .arg(db)
            .args(["--bind", "127.0.0.1:0", "--page-size"])
            .arg(PAGE_SIZE.to_string())
            .env("RUST_LOG", "info")
            .env_remove("MONITOR_SERVER_TOKEN")
            .env_remove("MONITOR_SERVER_READ_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if flags.keep_alive {
            command.args(["--keep-alive", &KEEP_ALIVE_SECONDS.to_string()]);
        }
        if flags.workers_flag {
            command.args(["--workers", &flags.workers.to_string()]);
        }
        command.args(&flags.extra);
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let kept = Arc::clone(&tail);
        // Reads the log to the end, so the child never blocks on a full pipe.
        thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    if let Some(tx) = tx.take() {
                        let address = rest.split('/').next().unwrap_or("").to_owned();
                        let _ = tx.send((address, Instant::now()));
                    }
                }
                let mut tail = kept.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == 20 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        let (address, at) = match rx.recv_timeout(START_TIMEOUT) {
            Ok(found) => found,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                return Err(format!(
                    "the server did not say where it listens; its log ends with:\n{}",
                    Vec::from(tail.clone()).join("\n")
                ));
            }
        };
        let listening = at - spawned;
        let mut ours = Ours {
            child,
            base: Base::parse(&format!("http://{address}/api/v1"))?,
            listening,
            first_answer: Duration::ZERO,
        };
        let count = Request::get(&ours.base, "/metrics/count");
        let mut client = Client::new(ours.base.addr);
        loop {
            match client.call(&count.raw) {
                Ok(response) if response.status == 200 => break,
                _ if spawned.elapsed() > START_TIMEOUT => {
                    return Err("the server does not answer /metrics/count".into())
                }
                _ => thread::sleep(Duration::from_millis(1)),
            }
        }
        ours.first_answer = spawned.elapsed();
        Ok(ours)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn rss_kb(&self) -> Option<u64> {
        proc_status_kb(self.pid(), "VmRSS")
    }

    fn hwm_kb(&self) -> Option<u64> {
        proc_status_kb(self.pid(), "VmHWM")
    }

    /// SIGTERM (the server's graceful shutdown), then SIGKILL if it is not gone in 30 s.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!("warning: the server ignored SIGTERM for 30 s; killing it");
    }
}

impl Drop for Ours {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `kB` field of `/proc/PID/status`.
fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Samples a process's VmRSS every 20 ms until stopped; the highest sample.
struct RssWatch {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<u64>,
}

impl RssWatch {
    fn start(pid: u32) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut peak = 0;
            while !stopped.load(Ordering::Relaxed) {
                peak = peak.max(proc_status_kb(pid, "VmRSS").unwrap_or(0));
                thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        RssWatch { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

fn mb(kb: Option<u64>) -> String {
    kb.map_or_else(|| "?".into(), |kb| format!("{:.1} MB", kb as f64 / 1024.0))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

// ------------------------------------------------------------------------------------------
// The ceiling: parse-only, in-process
// ------------------------------------------------------------------------------------------

struct Ceiling {
    base: Base,
    handle: actix_web::dev::ServerHandle,
    thread: thread::JoinHandle<io::Result<()>>,
}

/// Parses the body as our `POST /metrics/` does (JSON into a value), and answers 201 with it.
async fn parse_only(body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<Value>(&body) {
        Ok(value) => HttpResponse::Created()
            .content_type("application/json")
            .body(value.to_string()),
        Err(_) => HttpResponse::BadRequest().finish(),
    }
}

impl Ceiling {
    fn start(flags: &ServerFlags) -> Result<Ceiling, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|err| err.to_string())?;
        let address = listener.local_addr().map_err(|err| err.to_string())?;
        let keep_alive = if flags.keep_alive {
            KeepAlive::Timeout(Duration::from_secs(KEEP_ALIVE_SECONDS))
        } else {
            KeepAlive::Disabled
        };
        let workers = flags.workers;
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(|| {
                    App::new().route("/api/v1/metrics/", web::post().to(parse_only))
                })
                .workers(workers)
                .keep_alive(keep_alive)
                .listen(listener)?
                .run();
                let _ = tx.send(server.handle());
                server.await
            })
        });
        let handle = rx
            .recv()
            .map_err(|_| "the ceiling server failed to start".to_owned())?;
        Ok(Ceiling {
            base: Base::parse(&format!("http://{address}/api/v1"))?,
            handle,
            thread,
        })
    }

    fn stop(self) {
        // The stop command is sent at once; the returned future only waits for it.
        drop(self.handle.stop(false));
        let _ = self.thread.join();
    }
}

// ------------------------------------------------------------------------------------------
// HTTP: base URLs, raw requests, a minimal keep-alive client
// ------------------------------------------------------------------------------------------

/// `http://host:port/prefix`.
#[derive(Clone)]
struct Base {
    /// `host:port`, for the Host header and the messages.
    host: String,
    addr: SocketAddr,
    /// `/api/v1`, no trailing slash.
    prefix: String,
}

impl Base {
    fn parse(url: &str) -> Result<Base, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
        let (host, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let host = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        let addr = host
            .to_socket_addrs()
            .map_err(|err| format!("{url}: {err}"))?
            .next()
            .ok_or_else(|| format!("{url}: no address"))?;
        Ok(Base {
            host,
            addr,
            prefix: prefix.to_owned(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}{path}", self.host, self.prefix)
    }
}

/// A request, kept both ways: as bytes for the built-in generator and as parts for wrk.
struct Request {
    method: &'static str,
    url: String,
    body: Option<Vec<u8>>,
    raw: Vec<u8>,
}

impl Request {
    fn get(base: &Base, path: &str) -> Request {
        let raw = format!(
            "GET {}{path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\r\n",
            base.prefix, base.host
        );
        Request {
            method: "GET",
            url: base.url(path),
            body: None,
            raw: raw.into_bytes(),
        }
    }

    fn post(base: &Base, path: &str, body: Vec<u8>) -> Request {
        Request::post_as(base, path, "application/json", body)
    }

    fn post_as(base: &Base, path: &str, content_type: &str, body: Vec<u8>) -> Request {
        let mut raw = format!(
            "POST {}{path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n",
            base.prefix,
            base.host,
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(&body);
        Request {
            method: "POST",
            url: base.url(path),
            body: Some(body),
            raw,
        }
    }
}

struct Response {
    status: u16,
    body: Vec<u8>,
    /// The server closes the connection after this answer.
    close: bool,
}

/// One connection at a time to one address, re-opened whenever the server closes it.
struct Client {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            stream: None,
            buf: Vec::with_capacity(1 << 16),
        }
    }

    fn connect(&mut self) -> io::Result<()> {
        if self.stream.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, REQUEST_TIMEOUT)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
            stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
            self.stream = Some(stream);
            self.buf.clear();
        }
        Ok(())
    }

    /// Sends `raw` on the open connection and reads the answer.
    fn exchange(&mut self, raw: &[u8]) -> io::Result<Response> {
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        let outcome = stream
            .write_all(raw)
            .and_then(|()| read_response(stream, &mut self.buf));
        if !matches!(&outcome, Ok(response) if !response.close) {
            self.stream = None;
        }
        outcome
    }

    /// Connects if needed and exchanges; a kept connection the server closed meanwhile is
    /// replaced once.
    fn call(&mut self, raw: &[u8]) -> io::Result<Response> {
        let reused = self.stream.is_some();
        self.connect()?;
        match self.exchange(raw) {
            Err(_) if reused => {
                self.connect()?;
                self.exchange(raw)
            }
            outcome => outcome,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads more bytes into `buf`; the end of the stream is an error.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 1 << 16];
    let n = stream.read(&mut chunk)?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Reads one HTTP/1.1 answer (Content-Length, chunked, or up to the end of the stream).
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Response> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(stream, buf)?;
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| invalid("a binary header"))?;
    let mut lines = head.split("\r\n");
    let mut status_line = lines.next().unwrap_or("").split(' ');
    let version = status_line.next().unwrap_or("");
    let status: u16 = status_line
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("no status"))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = version == "HTTP/1.0";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.contains("chunked"),
            "connection" if value.contains("close") => close = true,
            "connection" if value.contains("keep-alive") => close = false,
            _ => {}
        }
    }
    buf.drain(..head_end);
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if chunked {
        read_chunked(stream, buf)?
    } else if let Some(length) = length {
        while buf.len() < length {
            fill(stream, buf)?;
        }
        buf.drain(..length).collect()
    } else {
        close = true;
        loop {
            match fill(stream, buf) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(err) => return Err(err),
            }
        }
        std::mem::take(buf)
    };
    Ok(Response {
        status,
        body,
        close,
    })
}

fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let line = |stream: &mut TcpStream, buf: &mut Vec<u8>| -> io::Result<String> {
        let end = loop {
            if let Some(i) = find(buf, b"\r\n") {
                break i;
            }
            fill(stream, buf)?;
        };
        let text = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 2);
        Ok(text)
    };
    loop {
        let size_line = line(stream, buf)?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| invalid("a bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !line(stream, buf)?.is_empty() {}
            return Ok(body);
        }
        while buf.len() < size + 2 {
            fill(stream, buf)?;
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

// ------------------------------------------------------------------------------------------
// Load generators
// ------------------------------------------------------------------------------------------

enum Generator {
    Wrk { threads: usize, version: String },
    Builtin,
}

impl Generator {
    fn choose(choice: GeneratorChoice, connections: usize) -> Generator {
        let version = Command::new("wrk")
            .arg("--version")
            .output()
            .ok()
            .map(|out| {
                let text = String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr);
                text.split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            });
        let cpus = thread::available_parallelism().map_or(2, |n| n.get());
        match (choice, version) {
            (GeneratorChoice::Builtin, _) => Generator::Builtin,
            (_, Some(version)) => Generator::Wrk {
                threads: cpus.min(connections),
                version,
            },
            (GeneratorChoice::Wrk, None) => {
                eprintln!("warning: wrk is not on the PATH; using the built-in generator");
                Generator::Builtin
            }
            (GeneratorChoice::Auto, None) => Generator::Builtin,
        }
    }

    fn describe(&self) -> String {
        match self {
            Generator::Wrk { threads, version } => {
                format!("{version} ({threads} threads, --latency)")
            }
            Generator::Builtin => {
                "the built-in generator (one thread and connection per client)".into()
            }
        }
    }

    fn run(&self, base: &Base, request: &Request, connections: usize, duration: Duration) -> Load {
        match self {
            Generator::Wrk { threads, .. } => match wrk(request, *threads, connections, duration) {
                Ok(load) => load,
                Err(message) => {
                    eprintln!("warning: {message}; this run uses the built-in generator");
                    builtin(base, request, connections, duration)
                }
            },
            Generator::Builtin => builtin(base, request, connections, duration),
        }
    }
}

/// One thread per connection, each sending `request` over and over until `duration` is over.
fn builtin(base: &Base, request: &Request, connections: usize, duration: Duration) -> Load {
    let raw = Arc::new(request.raw.clone());
    let started = Instant::now();
    let deadline = started + duration;
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let raw = Arc::clone(&raw);
            let addr = base.addr;
            thread::spawn(move || {
                let mut client = Client::new(addr);
                let mut times: Vec<u32> = Vec::with_capacity(1 << 16);
                let (mut bad, mut errors) = (0u64, 0u64);
                while Instant::now() < deadline {
                    if client.connect().is_err() {
                        errors += 1;
                        thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    let sent = Instant::now();
                    match client.exchange(&raw) {
                        Ok(response) => {
                            times.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                            if !(200..400).contains(&response.status) {
                                bad += 1;
                            }
                        }
                        Err(_) => errors += 1,
                    }
                }
                (times, bad, errors)
            })
        })
        .collect();
    let mut times = Vec::new();
    let (mut bad, mut errors) = (0, 0);
    for thread in threads {
        if let Ok((t, b, e)) = thread.join() {
            times.extend(t);
            bad += b;
            errors += e;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    times.sort_unstable();
    Load {
        requests: times.len() as u64,
        rps: times.len() as f64 / elapsed,
        p50_ms: percentile_ms(&times, 50.0),
        p99_ms: percentile_ms(&times, 99.0),
        bad,
        errors,
    }
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    f64::from(sorted_us[rank.clamp(1, sorted_us.len()) - 1]) / 1e3
}

/// A Lua string literal.
fn lua_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn wrk(
    request: &Request,
    threads: usize,
    connections: usize,
    duration: Duration,
) -> Result<Load, String> {
    let script = tempfile::Builder::new()
        .prefix("bench-")
        .suffix(".lua")
        .tempfile()
        .map_err(|err| format!("cannot write wrk's script: {err}"))?;
    let mut lua = format!("wrk.method = {}\n", lua_string(request.method));
    if let Some(body) = &request.body {
        let _ = writeln!(
            lua,
            "wrk.body = {}\nwrk.headers[\"Content-Type\"] = \"application/json\"",
            lua_string(&String::from_utf8_lossy(body))
        );
    }
    std::fs::write(script.path(), lua)
        .map_err(|err| format!("cannot write wrk's script: {err}"))?;
    let output = Command::new("wrk")
        .args(["-t", &threads.to_string(), "-c", &connections.to_string()])
        .args(["-d", &format!("{}s", duration.as_secs().max(1))])
        .args(["--latency", "--timeout", "10s", "-s"])
        .arg(script.path())
        .arg(&request.url)
        .output()
        .map_err(|err| format!("cannot run wrk: {err}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_wrk(&text).ok_or_else(|| {
        format!(
            "cannot read wrk's output:\n{text}{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Reads requests/s, the p50 and p99 of `--latency`, the request count and the errors.
fn parse_wrk(text: &str) -> Option<Load> {
    let duration_ms = |value: &str| -> Option<f64> {
        let split = value.find(|c: char| c.is_ascii_alphabetic())?;
        let (number, unit) = value.split_at(split);
        let number: f64 = number.parse().ok()?;
        Some(match unit {
            "us" => number / 1e3,
            "ms" => number,
            "s" => number * 1e3,
            "m" => number * 60e3,
            _ => return None,
        })
    };
    let mut load = Load {
        requests: 0,
        rps: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        bad: 0,
        errors: 0,
    };
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", value] => load.p50_ms = duration_ms(value)?,
            ["99%", value] => load.p99_ms = duration_ms(value)?,
            ["Requests/sec:", value] => load.rps = value.parse().ok()?,
            [count, "requests", "in", ..] => load.requests = count.parse().ok()?,
            ["Non-2xx", "or", "3xx", "responses:", count] => load.bad = count.parse().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                load.errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    (!load.rps.is_nan()).then_some(load)
}
