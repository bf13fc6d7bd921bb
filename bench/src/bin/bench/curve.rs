//! The cost curve: start-up, page latencies and POST throughput on stores of growing size.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use monitor_server_bench::store;
use serde_json::Value;

use crate::generator::{percentile_ms, Generator};
use crate::headline::{print_progress, Bodies, Load};
use crate::http::{Client, Request};
use crate::ours::{ms, Ours, ServerFlags};
use crate::{size_label, Options, PAGE_SIZE, WARM_UPS};

pub(crate) struct CurveRow {
    pub(crate) size: u64,
    pub(crate) stored: u64,
    pub(crate) load_s: Option<f64>,
    pub(crate) listening_ms: f64,
    pub(crate) first_answer_ms: f64,
    pub(crate) page1: (f64, f64),
    pub(crate) middle: (f64, f64),
    pub(crate) last: (f64, f64),
    pub(crate) count: (f64, f64),
    pub(crate) post: Load,
    pub(crate) idle_kb: Option<u64>,
    pub(crate) peak_kb: Option<u64>,
}

pub(crate) fn curve(
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
pub(crate) fn measure_store(
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

pub(crate) fn remove_store(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

pub(crate) fn print_curve(rows: &[CurveRow]) {
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
