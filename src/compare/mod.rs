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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};
use serde::Serialize;

use crate::db::query::like_escape;
use crate::error::ApiError;

// ---------------------------------------------------------------- the request

/// The forms a side can take, for messages and the document.
pub const SPEC_FORMS: &str = "session:<hash or unique prefix>, scm:<ref prefix>, \
     build:<pipeline>/<build>, builds:<pipeline>/<from>..<to> or last:<pipeline>/<n>";

/// The largest `n` of `last:<pipeline>/<n>`.
pub const MAX_LAST_BUILDS: u64 = 1000;

/// Which sessions one side of a comparison covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SideSpec {
    /// `session:<prefix>`: the one session whose hash is, or starts with, this.
    Session(String),
    /// `scm:<prefix>`: every session whose SCM reference starts with this.
    Scm(String),
    /// `build:<pipeline>/<build>`: every session of one build of a pipeline.
    Build {
        /// `pipeline_branch`.
        pipeline: String,
        /// `pipeline_build_no`.
        build: String,
    },
    /// `builds:<pipeline>/<from>..<to>`: every build numbered from `from` to `to`.
    Builds {
        /// `pipeline_branch`.
        pipeline: String,
        /// First build number.
        from: u64,
        /// Last build number (included).
        to: u64,
    },
    /// `last:<pipeline>/<n>`: the `n` latest builds, not counting those of the other side.
    Last {
        /// `pipeline_branch`.
        pipeline: String,
        /// How many builds.
        n: u64,
    },
}

impl SideSpec {
    /// Parses a spec; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<SideSpec, String> {
        let Some((kind, rest)) = text.split_once(':') else {
            return Err(format!("must be one of {SPEC_FORMS}"));
        };
        if rest.is_empty() {
            return Err(format!("`{kind}:` needs a value after the colon"));
        }
        // A pipeline name may itself contain `/` (release/2.0): the build part is after the last.
        let pipeline_and = |what: &str| -> Result<(String, String), String> {
            match rest.rsplit_once('/') {
                Some((pipeline, tail)) if !pipeline.is_empty() && !tail.is_empty() => {
                    Ok((pipeline.to_owned(), tail.to_owned()))
                }
                _ => Err(format!(
                    "`{kind}:` must be written {kind}:<pipeline>/<{what}>"
                )),
            }
        };
        match kind {
            "session" => Ok(SideSpec::Session(rest.to_owned())),
            "scm" => Ok(SideSpec::Scm(rest.to_owned())),
            "build" => {
                let (pipeline, build) = pipeline_and("build")?;
                Ok(SideSpec::Build { pipeline, build })
            }
            "builds" => {
                let (pipeline, range) = pipeline_and("from>..<to")?;
                let parsed = range
                    .split_once("..")
                    .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
                match parsed {
                    Some((from, to)) if from <= to => Ok(SideSpec::Builds { pipeline, from, to }),
                    Some(_) => Err("the first build of a range must not be after the last".into()),
                    None => Err(
                        "`builds:` takes a range of build numbers, such as builds:main/30..41"
                            .into(),
                    ),
                }
            }
            "last" => {
                let (pipeline, n) = pipeline_and("n")?;
                match n.parse::<u64>() {
                    Ok(n @ 1..=MAX_LAST_BUILDS) => Ok(SideSpec::Last { pipeline, n }),
                    _ => Err(format!(
                        "`last:` takes a number of builds from 1 to {MAX_LAST_BUILDS}, such as last:main/5"
                    )),
                }
            }
            other => Err(format!(
                "`{other}:` is not a kind of side; use one of {SPEC_FORMS}"
            )),
        }
    }
}

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

// ---------------------------------------------------------------- the answer

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

// ---------------------------------------------------------------- resolving sides

/// One session of a side, with what decides its run.
#[derive(Debug, Clone)]
struct SessionRow {
    session_h: String,
    scm_ref: String,
    pipeline: String,
    build: String,
}

impl SessionRow {
    /// The run the session belongs to: its pipeline build when it carries one, else its SCM
    /// reference. (pytest-xdist's controller and workers share both.)
    fn run_name(&self) -> String {
        if self.build.is_empty() {
            self.scm_ref.clone()
        } else {
            format!("{}/{}", self.pipeline, self.build)
        }
    }
}

const SESSION_ROWS: &str = "SELECT s.session_h, s.scm_ref, coalesce(p.value, ''), \
     coalesce(b.value, '') FROM sessions s \
     LEFT JOIN session_tags p ON p.session_id = s.id AND p.name = 'pipeline_branch' \
     LEFT JOIN session_tags b ON b.session_id = s.id AND b.name = 'pipeline_build_no'";

fn session_rows(
    conn: &Connection,
    condition: &str,
    params: Vec<SqlValue>,
) -> rusqlite::Result<Vec<SessionRow>> {
    let sql = format!("{SESSION_ROWS} WHERE {condition} ORDER BY s.id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params), |row| {
        Ok(SessionRow {
            session_h: row.get(0)?,
            scm_ref: row.get(1)?,
            pipeline: row.get(2)?,
            build: row.get(3)?,
        })
    })?;
    rows.collect()
}

fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.to_owned())
}

/// The sessions `spec` names. `others` are the other side's sessions, which `last:` skips the
/// builds of. A `session:` prefix matching several sessions is a 400 (`side` names the
/// parameter), unless one of them is the exact hash.
fn resolve(
    conn: &Connection,
    side: &str,
    written: &str,
    spec: &SideSpec,
    others: &[SessionRow],
) -> Result<Vec<SessionRow>, ApiError> {
    let rows = match spec {
        SideSpec::Session(prefix) => {
            let found = session_rows(
                conn,
                "s.session_h LIKE ? ESCAPE '\\'",
                vec![text(&format!("{}%", like_escape(prefix)))],
            )?;
            match found.iter().find(|s| s.session_h == *prefix) {
                Some(exact) => vec![exact.clone()],
                None if found.len() > 1 => {
                    return Err(ApiError::bad_field(
                        format!(
                        "The {side} `{written}` is ambiguous: {} sessions start with `{prefix}`.",
                        found.len()
                    ),
                        side,
                        "give more of the session hash",
                    ))
                }
                None => found,
            }
        }
        SideSpec::Scm(prefix) => session_rows(
            conn,
            "s.scm_ref LIKE ? ESCAPE '\\'",
            vec![text(&format!("{}%", like_escape(prefix)))],
        )?,
        SideSpec::Build { pipeline, build } => session_rows(
            conn,
            "p.value = ? AND b.value = ?",
            vec![text(pipeline), text(build)],
        )?,
        SideSpec::Builds { pipeline, from, to } => {
            session_rows(conn, "p.value = ? AND b.value != ''", vec![text(pipeline)])?
                .into_iter()
                .filter(|s| {
                    s.build
                        .parse::<u64>()
                        .is_ok_and(|n| (*from..=*to).contains(&n))
                })
                .collect()
        }
        SideSpec::Last { pipeline, n } => {
            let sessions =
                session_rows(conn, "p.value = ? AND b.value != ''", vec![text(pipeline)])?;
            let taken: BTreeSet<&str> = others
                .iter()
                .filter(|s| s.pipeline == *pipeline)
                .map(|s| s.build.as_str())
                .collect();
            // Build numbers in numeric order (as /pipelines/<p>/builds lists them): by length,
            // then by text.
            let mut builds: Vec<&str> = sessions
                .iter()
                .map(|s| s.build.as_str())
                .filter(|b| !taken.contains(b))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            builds.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
            let keep: BTreeSet<String> = builds
                .iter()
                .rev()
                .take(usize::try_from(*n).unwrap_or(usize::MAX))
                .map(|b| b.to_string())
                .collect();
            sessions
                .into_iter()
                .filter(|s| keep.contains(&s.build))
                .collect()
        }
    };
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "The {side} `{written}` matches no session."
        )));
    }
    Ok(rows)
}

// ---------------------------------------------------------------- gathering values

/// A test, as compared: machine (empty when contexts are ignored), module, variant.
type TestKey = (String, String, String);

/// What is known of a test on one side.
#[derive(Debug, Default)]
struct SideValues {
    /// Per run (by index): the sums of wall time, CPU time and memory, and how many metrics.
    per_run: BTreeMap<usize, ([f64; 3], usize)>,
    item: String,
    item_fs_loc: String,
    component: String,
}

impl SideValues {
    /// Each run's mean (a test run several times in one run, by a rerun or in several sessions
    /// of one SCM reference, counts once, as its mean).
    fn run_means(&self, metric: usize) -> Vec<f64> {
        self.per_run
            .values()
            .map(|(sums, n)| sums[metric] / *n as f64)
            .collect()
    }
}

/// Reads the metrics of `sessions`, grouped by test, each run's values apart.
///
/// A side may hold tens of thousands of metrics over a few thousand tests: a row's text is
/// read in place and looked up through one reused buffer, so that only a test seen for the first
/// time allocates.
fn gather(
    conn: &Connection,
    sessions: &[SessionRow],
    ignore_context: bool,
) -> rusqlite::Result<(BTreeMap<TestKey, SideValues>, Vec<String>)> {
    let mut runs: Vec<String> = Vec::new();
    let mut tests: Vec<(TestKey, SideValues)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut lookup = String::new();
    let mut stmt = conn.prepare_cached(
        "SELECT context_h, item_path, item_variant, item, item_fs_loc, component, total_time, \
         user_time + kernel_time, mem_usage FROM metrics WHERE session_h = ? ORDER BY id",
    )?;
    for session in sessions {
        let name = session.run_name();
        let run = match runs.iter().position(|r| *r == name) {
            Some(run) => run,
            None => {
                runs.push(name);
                runs.len() - 1
            }
        };
        let mut rows = stmt.query([&session.session_h])?;
        while let Some(row) = rows.next()? {
            let text = |i: usize| -> rusqlite::Result<&str> {
                row.get_ref(i)?.as_str().map_err(|err| {
                    rusqlite::Error::FromSqlConversionFailure(
                        i,
                        rusqlite::types::Type::Text,
                        Box::new(err),
                    )
                })
            };
            let context_h = if ignore_context { "" } else { text(0)? };
            lookup.clear();
            for part in [context_h, text(1)?, text(2)?] {
                lookup.push_str(part);
                lookup.push('\0');
            }
            let at = match index.get(lookup.as_str()) {
                Some(at) => *at,
                None => {
                    let key = (
                        context_h.to_owned(),
                        text(1)?.to_owned(),
                        text(2)?.to_owned(),
                    );
                    let values = SideValues {
                        item: text(3)?.to_owned(),
                        item_fs_loc: text(4)?.to_owned(),
                        component: text(5)?.to_owned(),
                        ..SideValues::default()
                    };
                    tests.push((key, values));
                    index.insert(lookup.clone(), tests.len() - 1);
                    tests.len() - 1
                }
            };
            let (sums, n) = tests[at].1.per_run.entry(run).or_insert(([0.0; 3], 0));
            for (i, sum) in sums.iter_mut().enumerate() {
                *sum += row.get::<_, f64>(6 + i)?;
            }
            *n += 1;
        }
    }
    Ok((tests.into_iter().collect(), runs))
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The sample standard deviation, for two or more values.
fn sample_sd(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let m = mean(values)?;
    let squares: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    Some((squares / (values.len() - 1) as f64).sqrt())
}

// ---------------------------------------------------------------- judging

/// How one metric is judged.
struct Rule {
    /// The metric's name in reasons.
    label: &'static str,
    /// Its unit in reasons.
    unit: &'static str,
    /// The growth allowed, in percent of the baseline; `None`: only reported, never judged.
    threshold: Option<f64>,
    /// The smallest change that can be a verdict, in the metric's unit.
    floor: f64,
}

/// Compares one metric; with a rule, decides its verdict and explains it.
fn judge(
    baseline_runs: &[f64],
    candidate_runs: &[f64],
    rule: &Rule,
    sigma: f64,
) -> (Change, Option<String>) {
    let baseline = mean(baseline_runs);
    let candidate = mean(candidate_runs);
    let baseline_sd = sample_sd(baseline_runs);
    let change = baseline.zip(candidate).map(|(b, c)| c - b);
    let change_percent = baseline
        .zip(change)
        .filter(|(b, _)| *b != 0.0)
        .map(|(b, d)| d / b.abs() * 100.0);
    let mut verdict = None;
    let mut reason = None;
    if let (Some(threshold), Some(b), Some(c), Some(d)) =
        (rule.threshold, baseline, candidate, change)
    {
        let beyond = |size: f64| {
            size > threshold / 100.0 * b.abs()
                && size >= rule.floor
                && baseline_sd.is_none_or(|sd| size > sigma * sd)
        };
        let judged = if d > 0.0 && beyond(d) {
            Verdict::Regressed
        } else if d < 0.0 && beyond(-d) {
            Verdict::Improved
        } else {
            Verdict::Unchanged
        };
        if judged != Verdict::Unchanged {
            let percent = change_percent
                .map(|p| format!("{p:+.1}%, "))
                .unwrap_or_default();
            let noise = baseline_sd
                .map(|sd| format!(", baseline sd {sd:.3} {}", rule.unit))
                .unwrap_or_default();
            reason = Some(format!(
                "{} {percent}{d:+.3} {unit} ({b:.3} → {c:.3} {unit}{noise})",
                rule.label,
                unit = rule.unit
            ));
        }
        verdict = Some(judged);
    }
    (
        Change {
            baseline,
            candidate,
            change,
            change_percent,
            baseline_sd,
            verdict,
        },
        reason,
    )
}

/// How far a test moved, for ordering: its largest relative change among the metrics that
/// decided its verdict (an unbounded one, from a zero baseline, first).
fn severity(test: &ComparedTest) -> f64 {
    [&test.total_time, &test.cpu_time, &test.mem_usage]
        .into_iter()
        .filter(|c| c.verdict == Some(test.verdict))
        .map(|c| c.change_percent.map_or(f64::INFINITY, f64::abs))
        .fold(0.0, f64::max)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_pipelines_that_contain_slashes() {
        assert_eq!(
            SideSpec::parse("build:release/2.0/7"),
            Ok(SideSpec::Build {
                pipeline: "release/2.0".into(),
                build: "7".into()
            })
        );
        assert_eq!(
            SideSpec::parse("builds:main/3..12"),
            Ok(SideSpec::Builds {
                pipeline: "main".into(),
                from: 3,
                to: 12
            })
        );
        assert_eq!(
            SideSpec::parse("last:main/5"),
            Ok(SideSpec::Last {
                pipeline: "main".into(),
                n: 5
            })
        );
        assert_eq!(
            SideSpec::parse("session:ab12"),
            Ok(SideSpec::Session("ab12".into()))
        );
        for bad in [
            "main/41",
            "build:41",
            "build:main/",
            "builds:main/5..3",
            "builds:main/a..b",
            "last:main/0",
            "tag:x",
            "scm:",
        ] {
            assert!(SideSpec::parse(bad).is_err(), "{bad}");
        }
    }

    fn rule(threshold: f64, floor: f64) -> Rule {
        Rule {
            label: "wall time",
            unit: "s",
            threshold: Some(threshold),
            floor,
        }
    }

    #[test]
    fn a_change_must_pass_the_threshold_the_floor_and_the_noise() {
        let r = rule(20.0, 0.1);
        assert_eq!(
            judge(&[1.0], &[2.0], &r, 3.0).0.verdict,
            Some(Verdict::Regressed)
        );
        assert_eq!(
            judge(&[1.0], &[1.15], &r, 3.0).0.verdict,
            Some(Verdict::Unchanged)
        );
        // Tripled, but by less than the floor.
        assert_eq!(
            judge(&[0.03], &[0.09], &r, 3.0).0.verdict,
            Some(Verdict::Unchanged)
        );
        assert_eq!(
            judge(&[1.0], &[0.5], &r, 3.0).0.verdict,
            Some(Verdict::Improved)
        );
        // Noisy baseline: mean 1.0, sd 0.3; +50% is within 3 sd, +150% is not.
        let noisy = [0.7, 1.0, 1.3];
        let (change, _) = judge(&noisy, &[1.5], &r, 3.0);
        assert_eq!(change.verdict, Some(Verdict::Unchanged));
        assert!((change.baseline_sd.unwrap() - 0.3).abs() < 1e-9);
        assert_eq!(
            judge(&noisy, &[2.5], &r, 3.0).0.verdict,
            Some(Verdict::Regressed)
        );
        // A zero baseline has no percentage, and any change past the floor counts.
        let (change, reason) = judge(&[0.0], &[2.0], &rule(10.0, 1.0), 3.0);
        assert_eq!(change.change_percent, None);
        assert_eq!(change.verdict, Some(Verdict::Regressed));
        assert!(reason.unwrap().contains("+2.000"));
    }
}
