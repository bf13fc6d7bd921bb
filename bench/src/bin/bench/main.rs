//! The performance benchmark anyone can rerun: the release binary under load, beside a parse-only
//! ceiling and, optionally, the Python reference (monitor-server-api 1.1.0).
//!
//! ```text
//! cargo run --release -p monitor-server-bench --bin bench                       # ours, ceiling
//! cargo run --release -p monitor-server-bench --bin bench -- --reference URL    # + reference
//! cargo run --release -p monitor-server-bench --bin bench -- --curve --with-10m # + the curve
//! ```
//!
//! It builds (`cargo build --release -p monitor-server`, a no-op when up to date) and starts the
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
//! `query_bench`, `monitor_server_bench::store`), starts the binary on it and measures start-up
//! (spawn to the "listening on" line, and to a first answer), then `--samples` (200) sequential
//! requests each of page 1, the middle page, page -1 and `/metrics/count`, and POST throughput
//! for `--curve-post` (5 s). Stores are deleted after each size unless `--keep DIR`, where they
//! are kept and reused by the next run. `--curve-only` skips the headline runs.
//!
//! The last table lists every target of the performance issue with the measured value and PASS
//! or MISS. Numbers are only as quiet as the machine: the first line shows its load average.
//!
//! Other options: `--generator wrk|builtin`, `--binary PATH` (use this server binary as is),
//! `--no-build`, `--server-args "ARGS"` (more arguments for the server, split at spaces, e.g.
//! `--server-args "--synchronous normal"`), `--no-keep-alive` (a connection for each request, on
//! ours and the ceiling: how clients that do not keep connections, such as the plugin, post).
//!
//! After the runs on ours it prints the bytes per stored metric of its file (every page in use,
//! over the metrics stored): the POSTs and batches of one session, 40-hex hashes, 500 tests.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use monitor_server_bench::count::{label as size_label, parse as number};

mod ceiling;
mod curve;
mod generator;
mod headline;
mod http;
mod ours;
mod summary;

use crate::curve::curve;
use crate::generator::Generator;
use crate::headline::headline;
use crate::ours::{locate_binary, ServerFlags};
use crate::summary::Summary;

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
    /// Every connection carries one request, on ours and the ceiling alike.
    no_keep_alive: bool,
    batches: usize,
    batch_size: usize,
}

const USAGE: &str = "usage: bench [--duration SECS] [--connections N] [--reference URL] \
[--curve | --curve-only] [--sizes 10k,100k,1M] [--with-10m] [--keep DIR] [--curve-post SECS] \
[--samples N] [--batches N] [--batch-size N] [--generator wrk|builtin] [--binary PATH] [--no-build] [--server-args \"ARGS\"] \
[--no-keep-alive]";

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
        no_keep_alive: false,
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
            "--no-keep-alive" => options.no_keep_alive = true,
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
    let mut flags = ServerFlags::detect(&binary, &options.server_args);
    if options.no_keep_alive {
        flags.keep_alive = false;
    }
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
