//! The change detection's evaluation: synthetic test histories with known shifts, scored for
//! `monitor_server::changes` and for the anchor, MongoDB's E-Divisive with means, side by side.
//!
//! ```text
//! bash bench/tools/changes_anchor_setup.sh          # once: the anchor's venv under target/
//! cargo run --release -p monitor-server-bench --bin changes_eval
//! cargo run --release -p monitor-server-bench --bin changes_eval -- --no-anchor --seed 7
//! ```
//!
//! The histories (seeded, so every run scores the same data): 500 tests × 100 builds of a wall
//! time, each with relative normal noise of 2–25 % (coefficient of variation). 200 tests carry
//! one or two level shifts of 10–200 % (log-uniform; the first one up, the second up or back
//! down; positions 10–90, the two at least 15 builds apart; a third of them also have single-run
//! outliers), 100 are pure noise, 75 have single-run outliers (1–3 runs 1.5–5× the level, or
//! a third of it), 75 drift slowly (0.3–1 % of the level per build from a build in 0–50 on),
//! and 50 are tiny (2–30 ms) with a shift as in the first group that the absolute floor must
//! silence. Levels are log-uniform in 2–60 s.
//!
//! A detection counts if it lies within ±1 build of a true shift, each shift matched once;
//! every other detection is false. The "≥ 3 sd" columns keep the shifts at least 3 noise standard
//! deviations (of the level before) tall: their recall counts those, their precision counts the
//! detections matched to those against every false one. The table also counts the changes raised
//! on tests that have none (pure noise, outliers, drift, tiny) and the time the algorithm alone
//! took for all 500 series.
//!
//! The anchor runs in Python (`bench/tools/e_divisive_anchor.py`) on the same series, written to
//! `target/changes-eval/series.json`, with the venv that `bench/tools/changes_anchor_setup.sh`
//! makes; `--python PATH` names another interpreter, `--no-anchor` skips it.
//! `CHANGES_EVAL_LIST=1` lists every missed strong shift and every change raised on a test
//! without any on stderr.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use monitor_server::changes::{analyze, Analysis, Params, SplitMix64, Stability};
use serde_json::{json, Value};

const TESTS: usize = 500;
const BUILDS: usize = 100;

fn main() {
    if let Err(error) = run() {
        eprintln!("changes_eval: {error}");
        std::process::exit(1);
    }
}

struct Options {
    seed: u64,
    anchor: bool,
    python: Option<PathBuf>,
}

fn options() -> Result<Options, Box<dyn Error>> {
    let mut options = Options {
        seed: 15,
        anchor: true,
        python: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seed" => options.seed = args.next().ok_or("--seed needs a number")?.parse()?,
            "--no-anchor" => options.anchor = false,
            "--python" => options.python = Some(args.next().ok_or("--python needs a path")?.into()),
            "-h" | "--help" => {
                println!("changes_eval [--seed N] [--no-anchor] [--python PATH]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(options)
}

fn run() -> Result<(), Box<dyn Error>> {
    let options = options()?;
    let tests = generate(options.seed);
    let params = Params::time();
    println!(
        "{TESTS} tests × {BUILDS} builds, seed {}; {} true shifts, {} of them ≥ 3 noise sd; \
         params: min {}% and {} s and {} sd, alpha {}, {} permutations, min segment {}",
        options.seed,
        tests.iter().map(|t| t.shifts.len()).sum::<usize>(),
        tests
            .iter()
            .flat_map(|t| &t.shifts)
            .filter(|s| s.strong)
            .count(),
        params.min_percent,
        params.min_absolute,
        params.min_sigma,
        params.alpha,
        params.permutations,
        params.min_segment
    );

    let (analyses, ours_time) = time_ours(&tests, &params);
    let mut rows = vec![score(
        "monitor-server changes (ranks + permutations, min magnitude, step vs bent line)",
        &tests,
        &analyses
            .iter()
            .map(|a| a.changes.iter().map(|c| c.index).collect())
            .collect::<Vec<_>>(),
        ours_time,
    )];
    if options.anchor {
        for (method, seconds, found) in anchor(&tests, &params, options.python.as_deref())? {
            rows.push(score(
                &method,
                &tests,
                &found,
                Duration::from_secs_f64(seconds),
            ));
        }
    }
    print_table(&rows);
    print_drift_and_noise(&tests, &analyses);
    Ok(())
}

// ---------------------------------------------------------------- the histories

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Shifts,
    Noise,
    Outliers,
    Drift,
    Tiny,
}

struct Shift {
    index: usize,
    /// At least 3 noise standard deviations of the level before.
    strong: bool,
}

struct Test {
    kind: Kind,
    values: Vec<f64>,
    /// The shifts a detector should find (none for tiny tests: the floor silences them).
    shifts: Vec<Shift>,
    cv: f64,
}

fn generate(seed: u64) -> Vec<Test> {
    let mut rng = Rng(SplitMix64::new(seed));
    let plan = [
        (Kind::Shifts, 200),
        (Kind::Noise, 100),
        (Kind::Outliers, 75),
        (Kind::Drift, 75),
        (Kind::Tiny, 50),
    ];
    let mut tests = Vec::with_capacity(TESTS);
    for (kind, count) in plan {
        for _ in 0..count {
            tests.push(history(kind, &mut rng));
        }
    }
    tests
}

fn history(kind: Kind, rng: &mut Rng) -> Test {
    let cv = rng.between(0.02, 0.25);
    let base = if kind == Kind::Tiny {
        rng.log_between(0.002, 0.03)
    } else {
        rng.log_between(2.0, 60.0)
    };
    let mut levels = vec![base; BUILDS];
    let mut shifts = Vec::new();
    if matches!(kind, Kind::Shifts | Kind::Tiny) {
        let positions = if rng.uniform() < 0.6 {
            vec![rng.index(10, 90)]
        } else {
            let first = rng.index(10, 75);
            vec![first, rng.index(first + 15, 90)]
        };
        for (k, &at) in positions.iter().enumerate() {
            let size = rng.log_between(0.10, 2.0);
            let up = k == 0 || rng.uniform() < 0.5;
            let before = levels[at];
            let after = if up {
                before * (1.0 + size)
            } else {
                before / (1.0 + size)
            };
            for level in &mut levels[at..] {
                *level = after;
            }
            if kind == Kind::Shifts {
                shifts.push(Shift {
                    index: at,
                    strong: (after - before).abs() >= 3.0 * cv * before,
                });
            }
        }
    }
    if kind == Kind::Drift {
        let start = rng.index(0, 50);
        let rate = rng.between(0.003, 0.01);
        for (i, level) in levels.iter_mut().enumerate().skip(start) {
            *level = base * (1.0 + rate * (i - start) as f64);
        }
    }
    let mut values: Vec<f64> = levels
        .iter()
        .map(|l| l * (1.0 + cv * rng.normal()).max(0.05))
        .collect();
    if kind == Kind::Outliers || (kind == Kind::Shifts && rng.uniform() < 1.0 / 3.0) {
        let count = rng.index(1, 3);
        let mut placed: Vec<usize> = Vec::new();
        while placed.len() < count {
            let at = rng.index(0, BUILDS - 1);
            if placed.iter().all(|p| p.abs_diff(at) > 1) {
                placed.push(at);
                let factor = if rng.uniform() < 0.8 {
                    rng.log_between(1.5, 5.0)
                } else {
                    1.0 / 3.0
                };
                values[at] = levels[at] * factor;
            }
        }
    }
    Test {
        kind,
        values,
        shifts,
        cv,
    }
}

/// The draws the histories need, from the generator the detector permutes with.
struct Rng(SplitMix64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0.uniform()
    }

    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    fn log_between(&mut self, low: f64, high: f64) -> f64 {
        self.between(low.ln(), high.ln()).exp()
    }

    /// Uniform in `low..=high`.
    fn index(&mut self, low: usize, high: usize) -> usize {
        low + self.0.below(high - low + 1)
    }

    fn normal(&mut self) -> f64 {
        self.0.normal()
    }
}

// ---------------------------------------------------------------- the methods

/// Our analyses, and the best of five timings of all of them.
fn time_ours(tests: &[Test], params: &Params) -> (Vec<Analysis>, Duration) {
    let mut best = Duration::MAX;
    let mut analyses = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        analyses = tests.iter().map(|t| analyze(&t.values, params)).collect();
        best = best.min(started.elapsed());
    }
    (analyses, best)
}

type Found = Vec<Vec<usize>>;

/// One anchor variant: its name, the seconds it took and the changes it found in each test.
type Variant = (String, f64, Found);

/// The anchor's variants.
fn anchor(
    tests: &[Test],
    params: &Params,
    python: Option<&Path>,
) -> Result<Vec<Variant>, Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the bench crate has no parent folder")?;
    let python = python.map_or_else(
        || root.join("target/changes-anchor-venv/bin/python"),
        Path::to_path_buf,
    );
    if !python.exists() {
        return Err(format!(
            "no Python for the anchor at {}: run `bash bench/tools/changes_anchor_setup.sh`, \
             pass --python PATH, or --no-anchor",
            python.display()
        )
        .into());
    }
    let dir = root.join("target/changes-eval");
    std::fs::create_dir_all(&dir)?;
    let series = dir.join("series.json");
    let out = dir.join("e_divisive.json");
    let values: Vec<&Vec<f64>> = tests.iter().map(|t| &t.values).collect();
    std::fs::write(&series, serde_json::to_vec(&json!({ "series": values }))?)?;
    let status = Command::new(&python)
        .arg(root.join("bench/tools/e_divisive_anchor.py"))
        .arg(&series)
        .arg(&out)
        .args(["--min-percent", &params.min_percent.to_string()])
        .args(["--min-absolute", &params.min_absolute.to_string()])
        .args(["--min-sigma", &params.min_sigma.to_string()])
        .status()?;
    if !status.success() {
        return Err(format!("the anchor script failed: {status}").into());
    }
    let answer: Value = serde_json::from_slice(&std::fs::read(&out)?)?;
    let variants = answer["variants"]
        .as_array()
        .ok_or("the anchor's answer has no variants")?;
    variants
        .iter()
        .map(|variant| {
            let method = variant["method"]
                .as_str()
                .ok_or("a variant without a method")?;
            let seconds = variant["seconds"]
                .as_f64()
                .ok_or("a variant without seconds")?;
            let found: Option<Found> = variant["changes"].as_array().and_then(|per_test| {
                per_test
                    .iter()
                    .map(|changes| {
                        changes.as_array().and_then(|c| {
                            c.iter().map(|i| i.as_u64().map(|i| i as usize)).collect()
                        })
                    })
                    .collect()
            });
            let found = found.ok_or("a variant's changes are not lists of indexes")?;
            if found.len() != tests.len() {
                return Err("the anchor answered for another number of tests".into());
            }
            Ok((method.to_string(), seconds, found))
        })
        .collect()
}

// ---------------------------------------------------------------- scoring

struct Row {
    method: String,
    precision: f64,
    recall: f64,
    strong_precision: f64,
    strong_recall: f64,
    location_error: f64,
    /// Changes raised on tests of each kind without a shift to find.
    false_on: [(Kind, usize); 5],
    time: Duration,
}

fn score(method: &str, tests: &[Test], found: &[Vec<usize>], time: Duration) -> Row {
    let (mut matched, mut strong_matched, mut detections, mut errors) = (0, 0, 0, 0);
    let mut false_on = [
        (Kind::Shifts, 0),
        (Kind::Noise, 0),
        (Kind::Outliers, 0),
        (Kind::Drift, 0),
        (Kind::Tiny, 0),
    ];
    for (test, found) in tests.iter().zip(found) {
        detections += found.len();
        let mut used = vec![false; found.len()];
        for shift in &test.shifts {
            let closest = found
                .iter()
                .enumerate()
                .filter(|(k, d)| !used[*k] && d.abs_diff(shift.index) <= 1)
                .min_by_key(|(_, d)| d.abs_diff(shift.index));
            if let Some((k, d)) = closest {
                used[k] = true;
                matched += 1;
                strong_matched += usize::from(shift.strong);
                errors += d.abs_diff(shift.index);
            } else if list_errors() && shift.strong {
                eprintln!(
                    "{method}: missed the shift at {} (cv {:.3}), found {found:?} in {:?}",
                    shift.index, test.cv, test.values
                );
            }
        }
        if list_errors() && test.kind != Kind::Shifts && !found.is_empty() {
            eprintln!(
                "{method}: found {found:?} in a {:?} test (cv {:.3}): {:?}",
                test.kind, test.cv, test.values
            );
        }
        if let Some(slot) = false_on.iter_mut().find(|(kind, _)| *kind == test.kind) {
            slot.1 += found.len() - used.iter().filter(|u| **u).count();
        }
    }
    let shifts = tests.iter().map(|t| t.shifts.len()).sum::<usize>();
    let strong = tests
        .iter()
        .flat_map(|t| &t.shifts)
        .filter(|s| s.strong)
        .count();
    let false_detections = detections - matched;
    Row {
        method: method.to_string(),
        precision: ratio(matched, detections),
        recall: ratio(matched, shifts),
        strong_precision: ratio(strong_matched, strong_matched + false_detections),
        strong_recall: ratio(strong_matched, strong),
        location_error: errors as f64 / matched.max(1) as f64,
        false_on,
        time,
    }
}

/// `CHANGES_EVAL_LIST=1` lists the missed strong shifts and the changes raised on tests without
/// any, with their series, on stderr.
fn list_errors() -> bool {
    std::env::var_os("CHANGES_EVAL_LIST").is_some()
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| method | precision | recall | F1 | precision ≥3sd | recall ≥3sd | F1 ≥3sd | mean location error (builds) | false changes on pure noise | on outlier / drift / tiny / shift tests | time for 500 series |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let [(_, shifts), (_, noise), (_, outliers), (_, drift), (_, tiny)] = row.false_on;
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} | {} | {} / {} / {} / {} | {} |",
            row.method,
            row.precision,
            row.recall,
            f1(row.precision, row.recall),
            row.strong_precision,
            row.strong_recall,
            f1(row.strong_precision, row.strong_recall),
            row.location_error,
            noise,
            outliers,
            drift,
            tiny,
            shifts,
            human(row.time)
        );
    }
}

fn human(time: Duration) -> String {
    let seconds = time.as_secs_f64();
    if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else {
        format!("{:.1} ms", seconds * 1000.0)
    }
}

fn print_drift_and_noise(tests: &[Test], analyses: &[Analysis]) {
    let drifting = |kind: Kind| {
        let of_kind: Vec<&Analysis> = tests
            .iter()
            .zip(analyses)
            .filter(|(t, _)| t.kind == kind)
            .map(|(_, a)| a)
            .collect();
        let flagged = of_kind
            .iter()
            .filter(|a| a.trend.as_ref().is_some_and(|t| t.drifting))
            .count();
        format!("{flagged} of {}", of_kind.len())
    };
    println!();
    println!(
        "ours, drift flagged: {} drifting tests, {} pure-noise tests, {} tests with shifts",
        drifting(Kind::Drift),
        drifting(Kind::Noise),
        drifting(Kind::Shifts)
    );
    let mut errors: Vec<f64> = tests
        .iter()
        .zip(analyses)
        .filter(|(t, _)| t.kind == Kind::Noise)
        .filter_map(|(t, a)| {
            let measured = a.noise.as_ref()?.cv_percent?;
            Some((measured - t.cv * 100.0).abs())
        })
        .collect();
    errors.sort_by(f64::total_cmp);
    let median = errors.get(errors.len() / 2).copied().unwrap_or(f64::NAN);
    let labelled_right = tests
        .iter()
        .zip(analyses)
        .filter(|(t, _)| t.kind == Kind::Noise)
        .filter(|(t, a)| {
            let noisy = t.cv * 100.0 > Params::time().noisy_percent;
            a.noise
                .as_ref()
                .is_some_and(|n| (n.label == Stability::Noisy) == noisy)
        })
        .count();
    println!(
        "ours, noise score on pure-noise tests: median |measured − true CV| {median:.2} points; \
         label right for {labelled_right} of {}",
        errors.len()
    );
    let mut times: Vec<(Duration, Kind)> = tests
        .iter()
        .map(|t| {
            let started = Instant::now();
            let _ = analyze(&t.values, &Params::time());
            (started.elapsed(), t.kind)
        })
        .collect();
    times.sort_by_key(|(time, _)| *time);
    let ms = |time: Duration| time.as_secs_f64() * 1000.0;
    if let Some((slowest, kind)) = times.last() {
        println!(
            "ours, one series: median {:.3} ms, slowest {:.3} ms (a {kind:?} test)",
            ms(times[times.len() / 2].0),
            ms(*slowest)
        );
    }
}
