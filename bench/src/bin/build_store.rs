//! Builds a large, realistic store in a new file, for a benchmark or a server to reuse.
//!
//! ```text
//! cargo run --release -p monitor-server-bench --bin build_store -- big.db
//! cargo run --release -p monitor-server-bench --bin build_store -- big.db --metrics 10M --sessions 10k
//! ```
//!
//! The store is what `query_bench` and `bench --curve` measure (see `monitor_server_bench::store`):
//! `--metrics` (default 1,000,000) spread evenly over `--sessions` (default 1,000). The file must
//! not exist yet; serve it with `monitor-server --db PATH`, or hand it to `query_bench --db PATH`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use monitor_server_bench::count::parse as number;
use monitor_server_bench::store::{load, size_of_store};

const USAGE: &str =
    "usage: build_store PATH [--metrics N] [--sessions N]   (N like 100000, 10k, 1M)";

struct Options {
    path: PathBuf,
    metrics: u64,
    sessions: u64,
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut path = None;
    let mut metrics = 1_000_000;
    let mut sessions = 1_000;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--metrics" => metrics = number(&value()?)?,
            "--sessions" => sessions = number(&value()?)?.max(1),
            "-h" | "--help" => return Err(USAGE.into()),
            other if other.starts_with('-') => {
                return Err(format!("unknown option {other}\n{USAGE}"))
            }
            _ if path.is_none() => path = Some(PathBuf::from(arg)),
            _ => return Err(USAGE.into()),
        }
    }
    let path = path.ok_or(USAGE)?;
    Ok(Options {
        path,
        metrics,
        sessions,
    })
}

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let path = &options.path;
    // The loader drops and rebuilds indexes: it is for a new file only, never a live store.
    if path.exists() {
        eprintln!(
            "build_store: {} already exists; give a new path",
            path.display()
        );
        return ExitCode::from(2);
    }
    let started = Instant::now();
    if let Err(err) = load(path, options.metrics, options.sessions) {
        eprintln!("build_store: loading {} failed: {err}", path.display());
        return ExitCode::FAILURE;
    }
    println!(
        "{}: {} metrics over {} sessions in {:.1} s, {}",
        path.display(),
        options.metrics,
        options.sessions,
        started.elapsed().as_secs_f64(),
        size_of_store(path)
    );
    ExitCode::SUCCESS
}
