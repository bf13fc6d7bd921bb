//! What Litestream costs and how far behind it is: `POST /metrics/` per second on the release
//! binary alone and under `litestream replicate -exec` (a file replica, `sync-interval: 1s`,
//! `--wal-autocheckpoint 0`), side by side in one run, then the replication lag: the time from a
//! 201 to the metric being present in a `litestream restore`.
//!
//! ```text
//! cargo run --release -p monitor-server-bench --bin litestream_bench -- \
//!     --server target/release/monitor-server --litestream PATH/TO/litestream
//! ```
//!
//! Load: `--connections` (16) threads, each posting one metric after the other over a keep-alive
//! connection (`--keep-alive 5` on the server) for `--duration` (10) seconds; each mode gets a
//! fresh database. Lag: `--lag-samples` (10) metrics posted one at a time on the replicated
//! server; after each 201, `litestream restore` is run into a new file until the metric is in it.
//! The lag printed includes one restore's duration (printed too), which bounds its resolution.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SYNC_INTERVAL_SECS: u64 = 1;

/// The command line.
struct Options {
    server: PathBuf,
    litestream: PathBuf,
    connections: usize,
    duration: Duration,
    lag_samples: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        server: PathBuf::from("target/release/monitor-server"),
        litestream: PathBuf::from("litestream"),
        connections: 16,
        duration: Duration::from_secs(10),
        lag_samples: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--server" => options.server = PathBuf::from(&value),
            "--litestream" => options.litestream = PathBuf::from(&value),
            "--connections" => options.connections = number()? as usize,
            "--duration" => options.duration = Duration::from_secs(number()?),
            "--lag-samples" => options.lag_samples = number()? as usize,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(options)
}

/// A metric as pytest-monitor sends it.
fn metric(item: &str) -> String {
    serde_json::json!({
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
    .to_string()
}

/// A server (or Litestream and the server it started), stopped with SIGTERM on drop.
struct Served {
    child: Child,
    api: String,
}

impl Served {
    /// Starts `command` and waits for the server's `listening on` line on its stderr.
    fn start(mut command: Command) -> Result<Served, String> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "info")
            .spawn()
            .map_err(|err| format!("cannot start {command:?}: {err}"))?;
        let mut lines = BufReader::new(child.stderr.take().ok_or("no stderr")?).lines();
        let api = loop {
            let line = lines
                .next()
                .ok_or("the server exited before listening")?
                .map_err(|err| err.to_string())?;
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
        };
        // Keep draining stderr so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Served { child, api })
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// `POST /metrics/` from `connections` threads for `duration`: answers 201 per second.
fn throughput(api: &str, connections: usize, duration: Duration) -> f64 {
    let stored = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..connections)
        .map(|thread| {
            let (api, stored) = (api.to_owned(), Arc::clone(&stored));
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(30))
                    .build();
                let mut n = 0;
                while started.elapsed() < duration {
                    let answer = agent
                        .post(&format!("{api}/metrics/"))
                        .set("Content-Type", "application/json")
                        .send_string(&metric(&format!("load_{thread}_{n}")));
                    if matches!(answer, Ok(ref response) if response.status() == 201) {
                        stored.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    stored.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Whether the database at `path` holds a metric named `item`.
fn holds(path: &Path, item: &str) -> bool {
    rusqlite::Connection::open(path)
        .and_then(|conn| {
            conn.query_row(
                "SELECT count(*) FROM metrics WHERE item = ?1",
                [item],
                |row| row.get::<_, i64>(0),
            )
        })
        .is_ok_and(|n| n > 0)
}

/// One lag sample: post `item`, then restore until it is there. Returns the lag and the
/// duration of the last restore.
fn lag(
    options: &Options,
    api: &str,
    config: &Path,
    db: &Path,
    scratch: &Path,
    item: &str,
) -> Result<(Duration, Duration), String> {
    let answer = ureq::post(&format!("{api}/metrics/"))
        .set("Content-Type", "application/json")
        .send_string(&metric(item))
        .map_err(|err| format!("POST {item}: {err}"))?;
    let acknowledged = Instant::now();
    if answer.status() != 201 {
        return Err(format!("POST {item}: {}", answer.status()));
    }
    for attempt in 0.. {
        let out = scratch.join(format!("{item}_{attempt}.db"));
        let restore_started = Instant::now();
        let status = Command::new(&options.litestream)
            .args(["restore", "-config"])
            .arg(config)
            .arg("-o")
            .arg(&out)
            .arg(db)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|err| format!("cannot run litestream restore: {err}"))?;
        let restore = restore_started.elapsed();
        if status.success() && holds(&out, item) {
            return Ok((acknowledged.elapsed(), restore));
        }
        if acknowledged.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    Err(format!("{item} never reached the replica"))
}

fn main() -> Result<(), String> {
    let options = options()?;
    let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
    let serve = |db: &Path| {
        format!(
            "{} serve --db {} --bind 127.0.0.1:0 --keep-alive 5",
            options.server.display(),
            db.display()
        )
    };

    // Without Litestream.
    let mut alone = Command::new(&options.server);
    alone
        .args(["serve", "--db"])
        .arg(dir.path().join("alone.db"))
        .args(["--bind", "127.0.0.1:0", "--keep-alive", "5"]);
    let served = Served::start(alone)?;
    let without = throughput(&served.api, options.connections, options.duration);
    drop(served);

    // Under Litestream, replicating to a directory.
    let db = dir.path().join("replicated.db");
    let config = dir.path().join("litestream.yml");
    let replica = dir.path().join("replica");
    std::fs::write(
        &config,
        format!(
            "dbs:\n  - path: {}\n    replica:\n      type: file\n      path: {}\n      \
             sync-interval: {SYNC_INTERVAL_SECS}s\n",
            db.display(),
            replica.display()
        ),
    )
    .map_err(|err| err.to_string())?;
    let mut replicated = Command::new(&options.litestream);
    replicated
        .args(["replicate", "-config"])
        .arg(&config)
        .args(["-exec", &format!("{} --wal-autocheckpoint 0", serve(&db))]);
    let served = Served::start(replicated)?;
    let with = throughput(&served.api, options.connections, options.duration);
    let scratch = dir.path().join("restores");
    std::fs::create_dir_all(&scratch).map_err(|err| err.to_string())?;
    let mut lags = Vec::new();
    let mut restores = Vec::new();
    for sample in 0..options.lag_samples {
        let (lag, restore) = lag(
            &options,
            &served.api,
            &config,
            &db,
            &scratch,
            &format!("lag_{sample}"),
        )?;
        lags.push(lag);
        restores.push(restore);
    }
    drop(served);

    lags.sort();
    restores.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "POST /metrics/, {} connections, {} s each:",
        options.connections,
        options.duration.as_secs()
    );
    println!("  without Litestream: {without:>8.0} req/s");
    println!(
        "  with Litestream:    {with:>8.0} req/s ({:.1}% of without)",
        100.0 * with / without
    );
    if let (Some(first), Some(last)) = (lags.first(), lags.last()) {
        println!(
            "replication lag (201 to present in a restore; sync-interval {SYNC_INTERVAL_SECS}s), \
             {} samples: min {:.0} ms, median {:.0} ms, max {:.0} ms; one restore takes {:.0} ms",
            lags.len(),
            ms(*first),
            ms(lags[lags.len() / 2]),
            ms(*last),
            ms(restores[restores.len() / 2])
        );
    }
    Ok(())
}
