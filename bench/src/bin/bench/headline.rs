//! The headline runs: POST and GET under load on ours, the ceiling and the reference; the batches.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::ceiling::Ceiling;
use crate::generator::Generator;
use crate::http::{Base, Client, Request};
use crate::ours::{mb, ms, Ours, RssWatch, ServerFlags};
use crate::summary::Summary;
use crate::{Options, PAGE_SIZE};

/// One load run's outcome.
#[derive(Clone, Debug)]
pub(crate) struct Load {
    pub(crate) requests: u64,
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// Answers outside 2xx/3xx.
    pub(crate) bad: u64,
    /// Connections refused or broken, requests timed out.
    pub(crate) errors: u64,
}

pub(crate) fn headline(
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
    match bytes_per_metric(&db) {
        Ok((bytes, metrics)) => {
            println!("  store: {bytes:.0} bytes per metric ({metrics} metrics, pages in use)");
            summary.bytes_per_metric = Some(bytes);
        }
        Err(err) => println!("  store: cannot measure ({err})"),
    }

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
pub(crate) struct Batches {
    pub(crate) batches: usize,
    pub(crate) size: usize,
    pub(crate) metrics_per_s: f64,
    pub(crate) p50_ms: f64,
}

/// Sends `batches` bodies of `size` metrics to `POST /metrics/batch`, one after the other, each
/// timed from its first byte written to its answer's last byte read.
pub(crate) fn post_batches(
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

pub(crate) fn print_progress(what: &str) {
    print!("  {what} ... ");
    let _ = io::stdout().flush();
}

impl Load {
    pub(crate) fn short(&self) -> String {
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
pub(crate) fn ensure_metrics(base: &Base, bodies: &Bodies, want: u64) -> Result<u64, String> {
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
pub(crate) fn page_rows(base: &Base, request: &Request) -> String {
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
pub(crate) struct Bodies {
    pub(crate) session_h: String,
    pub(crate) context_h: String,
}

impl Bodies {
    /// Hashes of this run, so that a reference database that already holds a run's session
    /// does not refuse it.
    pub(crate) fn new() -> Bodies {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Bodies {
            session_h: format!("{nanos:040x}"),
            context_h: format!("{:040x}", nanos ^ 0x5eed_c0ff_ee00_b0a7),
        }
    }

    pub(crate) fn metric(&self) -> Vec<u8> {
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

    pub(crate) fn post(&self, base: &Base) -> Request {
        Request::post(base, "/metrics/", self.metric())
    }

    /// Creates the run's context and session (the reference's tables expect them); a failure is
    /// reported and otherwise ignored: the metrics are what is measured.
    pub(crate) fn prepare(&self, base: &Base) {
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

/// The bytes of the file's pages in use (all but the free ones) per stored metric, and how many
/// metrics there are.
fn bytes_per_metric(db: &std::path::Path) -> Result<(f64, u64), String> {
    let conn = rusqlite::Connection::open(db).map_err(|err| err.to_string())?;
    let pragma = |name: &str| -> Result<i64, String> {
        conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
            .map_err(|err| err.to_string())
    };
    let used = (pragma("page_count")? - pragma("freelist_count")?) * pragma("page_size")?;
    let metrics: i64 = conn
        .query_row(
            "SELECT coalesce((SELECT n FROM counters WHERE name = 'metrics'), 0)",
            [],
            |row| row.get(0),
        )
        .map_err(|err| err.to_string())?;
    if metrics == 0 {
        return Err("no metrics stored".into());
    }
    Ok((used as f64 / metrics as f64, metrics as u64))
}
