//! Regressions between two sets of test runs: what `GET /api/v1/compare` answers and
//! `monitor-server compare` gates CI on.
//!
//! Each side of a comparison is named by a spec ([`SideSpec`]): one session, the sessions of an
//! SCM reference, one CI build, a range of builds or the latest builds of a pipeline. A side is
//! made of runs: the sessions of one pipeline build are one run (pytest-xdist's controller and
//! workers, and every job of the build), and so are the sessions of one SCM reference that carry
//! no pipeline tags. A test is identified by its execution context (machine), module and
//! variant; for each side its wall time, CPU time (user + kernel) and memory are averaged over
//! the metrics of each run, then over the runs, and with two or more baseline runs their
//! standard deviation tells how noisy the test is.
//!
//! A test's verdict follows from [`Thresholds`]: a metric regressed when it grew by more than the
//! relative threshold *and* by at least the absolute floor (the floor is what keeps the
//! measuring noise of tiny tests — pytest-monitor's own overhead of tens of milliseconds per
//! test — from failing a build), and, with several baseline runs, by more than `sigma` standard
//! deviations. Improvements are judged the same way in the other direction.
//!
//! The queries here are plain `fn(&Connection, ...)`, read in one transaction by the handler.
//!
//! The parts: [`sides`] (what a side is and which sessions it covers), [`sql`] (reading a
//! side's metrics) and [`judge`] (statistics and verdicts); here, the request, the answer and
//! [`compare`] which ties them up.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Connection;
use serde::Serialize;

use crate::error::ApiError;

mod judge;
mod sides;
mod sql;

use judge::{judge, severity, Rule};
use sides::{resolve, SessionRow};
use sql::{gather, SideValues, TestKey};

pub use sides::{SideSpec, MAX_LAST_BUILDS, SPEC_FORMS};

/// What decides a verdict; every field is a query parameter of `/compare`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// Wall time may grow by this many percent before a test regressed.
    pub max_slowdown: f64,
    /// Memory may grow by this many percent before a test regressed.
    pub max_memory_growth: f64,
    /// CPU time may grow by this many percent before a test regressed; `None`: CPU time is
    /// reported but not judged.
    pub max_cpu_slowdown: Option<f64>,
    /// Time changes (wall and CPU) smaller than this many seconds are never a verdict.
    pub min_time: f64,
    /// Memory changes smaller than this many MB are never a verdict.
    pub min_memory: f64,
    /// With two or more baseline runs, a change must also exceed this many standard deviations
    /// of the baseline.
    pub sigma: f64,
    /// Compare tests across execution contexts (machines) instead of within each.
    pub ignore_context: bool,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_slowdown: 20.0,
            max_memory_growth: 10.0,
            max_cpu_slowdown: None,
            min_time: 0.1,
            min_memory: 1.0,
            sigma: 3.0,
            ignore_context: false,
        }
    }
}

/// A parsed `/compare` request.
#[derive(Debug, Clone)]
pub struct CompareRequest {
    /// The baseline as written, and parsed.
    pub baseline: (String, SideSpec),
    /// The candidate as written, and parsed.
    pub candidate: (String, SideSpec),
    /// What decides the verdicts.
    pub thresholds: Thresholds,
    /// The verdicts to list; `None` for all.
    pub only: Option<Vec<Verdict>>,
}

/// A finite number of 0 or more, optionally followed by `%` (thresholds are written `20%` or `20`).
pub fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    let text = text.strip_suffix('%').unwrap_or(text).trim_end();
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
}

/// What happened to one test between the baseline and the candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Slower or bigger beyond the thresholds.
    Regressed,
    /// Faster or smaller beyond the thresholds (and nothing regressed).
    Improved,
    /// Only in the baseline.
    Missing,
    /// Only in the candidate.
    New,
    /// Within the thresholds.
    Unchanged,
}

impl Verdict {
    /// Every verdict, in the order tests are listed.
    pub const ALL: [Verdict; 5] = [
        Verdict::Regressed,
        Verdict::Improved,
        Verdict::Missing,
        Verdict::New,
        Verdict::Unchanged,
    ];

    /// The verdict's name in the answer.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::Missing => "missing",
            Verdict::New => "new",
            Verdict::Unchanged => "unchanged",
        }
    }

    /// The verdict of this name.
    pub fn named(name: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// One side of a comparison, as resolved.
#[derive(Debug, Clone, Serialize)]
pub struct SideSummary {
    /// The spec as the client wrote it.
    pub spec: String,
    /// How many runs it holds.
    pub runs: usize,
    /// Each run's name: `<pipeline>/<build>`, or the SCM reference of untagged sessions.
    pub run_names: Vec<String>,
    /// The hashes of its sessions, in the order stored.
    pub sessions: Vec<String>,
}

/// One metric of one test on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The baseline's value (mean over its runs); `null` for a new test.
    pub baseline: Option<f64>,
    /// The candidate's value (mean over its runs); `null` for a missing test.
    pub candidate: Option<f64>,
    /// candidate − baseline.
    pub change: Option<f64>,
    /// The change in percent of the baseline; `null` when the baseline is 0 or absent.
    pub change_percent: Option<f64>,
    /// The standard deviation of the baseline's runs, when it has two or more for this test.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_sd: Option<f64>,
    /// This metric's own verdict (regressed, improved or unchanged), when it is judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
}

/// One test's comparison.
#[derive(Debug, Clone, Serialize)]
pub struct ComparedTest {
    /// The execution context (machine); `null` with `ignore_context=true`.
    pub context_h: Option<String>,
    /// The module's import path.
    pub item_path: String,
    /// The test with its parametrization.
    pub item_variant: String,
    /// The test function.
    pub item: String,
    /// The module's file, relative to the pytest root.
    pub item_fs_loc: String,
    /// The component.
    pub component: String,
    /// regressed, improved, missing, new or unchanged.
    pub verdict: Verdict,
    /// Why, one line per metric that decided it.
    pub reasons: Vec<String>,
    /// In how many baseline runs the test ran.
    pub baseline_runs: usize,
    /// In how many candidate runs the test ran.
    pub candidate_runs: usize,
    /// Wall time, seconds.
    pub total_time: Change,
    /// user_time + kernel_time, seconds.
    pub cpu_time: Change,
    /// Memory, MB.
    pub mem_usage: Change,
}

/// How many tests got each verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Tests that regressed.
    pub regressed: usize,
    /// Tests that improved.
    pub improved: usize,
    /// Tests only in the baseline.
    pub missing: usize,
    /// Tests only in the candidate.
    pub new: usize,
    /// Tests within the thresholds.
    pub unchanged: usize,
    /// Every test compared.
    pub total: usize,
}

/// The answer of `/compare`.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The side compared against.
    pub baseline: SideSummary,
    /// The side judged.
    pub candidate: SideSummary,
    /// What decided the verdicts.
    pub thresholds: Thresholds,
    /// How many tests got each verdict.
    pub summary: Summary,
    /// Things worth knowing about the comparison itself (no common machine, a side with no
    /// metric...).
    pub notes: Vec<String>,
    /// The tests: regressed (largest relative change first), improved (largest first),
    /// missing, new, unchanged.
    pub tests: Vec<ComparedTest>,
}

/// Compares the two sides of `request`; a side that names no session is a 404 naming it.
pub fn compare(conn: &Connection, request: &CompareRequest) -> Result<Comparison, ApiError> {
    let t = request.thresholds;
    let (candidate_text, candidate_spec) = &request.candidate;
    let (baseline_text, baseline_spec) = &request.baseline;
    // The candidate first: `last:` in the baseline skips the candidate's builds.
    let candidate_sessions = resolve(conn, "candidate", candidate_text, candidate_spec, &[])?;
    let baseline_sessions = resolve(
        conn,
        "baseline",
        baseline_text,
        baseline_spec,
        &candidate_sessions,
    )?;
    let (base, base_runs) = gather(conn, &baseline_sessions, t.ignore_context)?;
    let (cand, cand_runs) = gather(conn, &candidate_sessions, t.ignore_context)?;

    let rules = [
        Rule {
            label: "wall time",
            unit: "s",
            threshold: Some(t.max_slowdown),
            floor: t.min_time,
        },
        Rule {
            label: "CPU time",
            unit: "s",
            threshold: t.max_cpu_slowdown,
            floor: t.min_time,
        },
        Rule {
            label: "memory",
            unit: "MB",
            threshold: Some(t.max_memory_growth),
            floor: t.min_memory,
        },
    ];
    let empty = SideValues::default();
    let keys: BTreeSet<&TestKey> = base.keys().chain(cand.keys()).collect();
    let mut tests = Vec::with_capacity(keys.len());
    for key in keys {
        let b = base.get(key).unwrap_or(&empty);
        let c = cand.get(key).unwrap_or(&empty);
        let named = if c.per_run.is_empty() { b } else { c };
        let mut reasons: Vec<(Verdict, String)> = Vec::new();
        let [total_time, cpu_time, mem_usage]: [Change; 3] = std::array::from_fn(|metric| {
            let (change, reason) = judge(
                &b.run_means(metric),
                &c.run_means(metric),
                &rules[metric],
                t.sigma,
            );
            if let (Some(verdict), Some(reason)) = (change.verdict, reason) {
                reasons.push((verdict, reason));
            }
            change
        });
        let judged = |wanted: Verdict| reasons.iter().any(|(v, _)| *v == wanted);
        let verdict = if b.per_run.is_empty() {
            Verdict::New
        } else if c.per_run.is_empty() {
            Verdict::Missing
        } else if judged(Verdict::Regressed) {
            Verdict::Regressed
        } else if judged(Verdict::Improved) {
            Verdict::Improved
        } else {
            Verdict::Unchanged
        };
        // A regressed test is explained by what regressed, not also by what improved.
        let reasons = match verdict {
            Verdict::Regressed | Verdict::Improved => reasons
                .into_iter()
                .filter(|(v, _)| *v == verdict)
                .map(|(_, reason)| reason)
                .collect(),
            Verdict::New => vec!["only in the candidate".into()],
            Verdict::Missing => vec!["only in the baseline".into()],
            Verdict::Unchanged => vec![],
        };
        tests.push(ComparedTest {
            context_h: (!t.ignore_context).then(|| key.0.clone()),
            item_path: key.1.clone(),
            item_variant: key.2.clone(),
            item: named.item.clone(),
            item_fs_loc: named.item_fs_loc.clone(),
            component: named.component.clone(),
            verdict,
            reasons,
            baseline_runs: b.per_run.len(),
            candidate_runs: c.per_run.len(),
            total_time,
            cpu_time,
            mem_usage,
        });
    }
    tests.sort_by(|x, y| {
        x.verdict
            .cmp(&y.verdict)
            .then_with(|| severity(y).total_cmp(&severity(x)))
            .then_with(|| {
                (&x.component, &x.item_path, &x.item_variant, &x.context_h).cmp(&(
                    &y.component,
                    &y.item_path,
                    &y.item_variant,
                    &y.context_h,
                ))
            })
    });

    let mut summary = Summary {
        total: tests.len(),
        ..Summary::default()
    };
    for test in &tests {
        *match test.verdict {
            Verdict::Regressed => &mut summary.regressed,
            Verdict::Improved => &mut summary.improved,
            Verdict::Missing => &mut summary.missing,
            Verdict::New => &mut summary.new,
            Verdict::Unchanged => &mut summary.unchanged,
        } += 1;
    }
    let notes = notes(&base, &cand, &baseline_sessions, &candidate_sessions, &t);
    if let Some(only) = &request.only {
        tests.retain(|test| only.contains(&test.verdict));
    }
    Ok(Comparison {
        baseline: side_summary(baseline_text, &baseline_sessions, base_runs),
        candidate: side_summary(candidate_text, &candidate_sessions, cand_runs),
        thresholds: t,
        summary,
        notes,
        tests,
    })
}

fn side_summary(spec: &str, sessions: &[SessionRow], runs: Vec<String>) -> SideSummary {
    // Runs without metrics are runs all the same: name every run its sessions form.
    let mut run_names = runs;
    for session in sessions {
        let name = session.run_name();
        if !run_names.contains(&name) {
            run_names.push(name);
        }
    }
    SideSummary {
        spec: spec.to_owned(),
        runs: run_names.len(),
        run_names,
        sessions: sessions.iter().map(|s| s.session_h.clone()).collect(),
    }
}

fn notes(
    base: &BTreeMap<TestKey, SideValues>,
    cand: &BTreeMap<TestKey, SideValues>,
    baseline_sessions: &[SessionRow],
    candidate_sessions: &[SessionRow],
    t: &Thresholds,
) -> Vec<String> {
    let mut notes = Vec::new();
    for (side, values, sessions) in [
        ("baseline", base, baseline_sessions),
        ("candidate", cand, candidate_sessions),
    ] {
        if values.is_empty() {
            notes.push(format!(
                "The {side}'s {} session(s) hold no metric.",
                sessions.len()
            ));
        }
    }
    let contexts = |values: &BTreeMap<TestKey, SideValues>| -> BTreeSet<String> {
        values.keys().map(|k| k.0.clone()).collect()
    };
    if !t.ignore_context
        && !base.is_empty()
        && !cand.is_empty()
        && contexts(base).is_disjoint(&contexts(cand))
    {
        notes.push(
            "The baseline and the candidate ran on different execution contexts (machines), \
             so every test is new or missing; ignore_context=true (`monitor-server compare \
             --ignore-context`) compares them across machines."
                .into(),
        );
    }
    let shared: BTreeSet<&str> = baseline_sessions
        .iter()
        .map(|s| s.session_h.as_str())
        .filter(|h| candidate_sessions.iter().any(|c| c.session_h == *h))
        .collect();
    if !shared.is_empty() {
        notes.push(format!(
            "{} session(s) belong to both the baseline and the candidate.",
            shared.len()
        ));
    }
    notes
}
