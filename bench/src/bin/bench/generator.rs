//! Load generators: wrk when it is on the PATH, else one thread per connection over raw HTTP/1.1.

use std::fmt::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::headline::Load;
use crate::http::{Base, Client, Request};
use crate::GeneratorChoice;

pub(crate) enum Generator {
    Wrk { threads: usize, version: String },
    Builtin,
}

impl Generator {
    pub(crate) fn choose(choice: GeneratorChoice, connections: usize) -> Generator {
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

    pub(crate) fn describe(&self) -> String {
        match self {
            Generator::Wrk { threads, version } => {
                format!("{version} ({threads} threads, --latency)")
            }
            Generator::Builtin => {
                "the built-in generator (one thread and connection per client)".into()
            }
        }
    }

    pub(crate) fn run(
        &self,
        base: &Base,
        request: &Request,
        connections: usize,
        duration: Duration,
    ) -> Load {
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
pub(crate) fn builtin(
    base: &Base,
    request: &Request,
    connections: usize,
    duration: Duration,
) -> Load {
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
pub(crate) fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    f64::from(sorted_us[rank.clamp(1, sorted_us.len()) - 1]) / 1e3
}

/// A Lua string literal.
pub(crate) fn lua_string(text: &str) -> String {
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

pub(crate) fn wrk(
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
pub(crate) fn parse_wrk(text: &str) -> Option<Load> {
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
