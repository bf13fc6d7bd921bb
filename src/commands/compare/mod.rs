//! `monitor-server compare`: the CI gate. It asks a running server's `GET /api/v1/compare`
//! for the verdicts between a baseline and a candidate, prints them as an aligned table, a
//! Markdown comment for a pull request, or the server's JSON, and exits 1 when a test regressed,
//! 0 when none did, and 2 (with one line on stderr) when it could not tell: a usage error, a
//! server it cannot reach, an answer that is not a comparison (a side that matches no session,
//! a bad threshold, a missing token), or a comparison in which no test was measured on both
//! sides (the report is printed all the same).
//!
//! Thresholds left out on the command line are left out of the request too, so the server's
//! defaults apply; the thresholds printed are those the server echoed back.

mod report;

use std::time::Duration;

use serde_json::Value;

use crate::commands::cli::{CompareArgs, CompareFormat};
use crate::commands::http::Client;

pub use report::{markdown, table};

/// How long the whole request may take: comparing many runs is the slowest answer the server
/// gives.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Exit code: no test regressed.
pub const PASSED: u8 = 0;
/// Exit code: at least one test regressed.
pub const REGRESSED: u8 = 1;
/// Exit code: the comparison could not be made.
pub const FAILED: u8 = 2;

/// Runs the gate: prints the comparison on stdout and returns the exit code.
pub fn run(args: &CompareArgs) -> u8 {
    let comparison = match fetch(args) {
        Ok(comparison) => comparison,
        Err(message) => {
            eprintln!("monitor-server compare: {message}");
            return FAILED;
        }
    };
    let Some(regressed) = comparison["summary"]["regressed"].as_u64() else {
        eprintln!("monitor-server compare: the server's answer is not a comparison");
        return FAILED;
    };
    let text = match args.format {
        CompareFormat::Table => table(&comparison),
        CompareFormat::Markdown => markdown(&comparison),
        CompareFormat::Json => {
            let mut json = serde_json::to_string_pretty(&comparison).unwrap_or_default();
            json.push('\n');
            json
        }
    };
    print!("{text}");
    let summary = &comparison["summary"];
    let judged: u64 = ["regressed", "improved", "unchanged"]
        .iter()
        .map(|verdict| summary[verdict].as_u64().unwrap_or_default())
        .sum();
    if judged == 0 {
        // Every test new or missing: a gate that passed here would pass whatever happened
        // (the candidate's upload failed, the sides ran on different machines...).
        let why = comparison["notes"][0]
            .as_str()
            .unwrap_or("the two sides have no test in common");
        eprintln!("monitor-server compare: no test was measured on both sides, so none could be judged: {why}");
        return FAILED;
    }
    if regressed > 0 {
        REGRESSED
    } else {
        PASSED
    }
}

/// Asks the server; any failure becomes one line for stderr. An empty answer (204) is not a
/// comparison, which [`run`] reports.
fn fetch(args: &CompareArgs) -> Result<Value, String> {
    let client = Client::new(
        &args.server,
        args.token.as_deref(),
        args.ca_cert.as_ref(),
        TIMEOUT,
    )
    .map_err(|err| err.to_string())?;
    let numbers = [
        ("max_slowdown", args.max_slowdown),
        ("max_memory_growth", args.max_memory_growth),
        ("max_cpu_slowdown", args.max_cpu_slowdown),
        ("min_time", args.min_time),
        ("min_memory", args.min_memory),
        ("sigma", args.sigma),
    ];
    let numbers: Vec<(&str, String)> = numbers
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| (name, value.to_string())))
        .collect();
    let mut query = vec![
        ("baseline", args.baseline.as_str()),
        ("candidate", args.candidate.as_str()),
    ];
    query.extend(numbers.iter().map(|(name, value)| (*name, value.as_str())));
    if args.ignore_context {
        query.push(("ignore_context", "true"));
    }
    client
        .get("/compare", &query)
        .map(|answer| answer.unwrap_or(Value::Null))
        .map_err(|err| err.to_string())
}
