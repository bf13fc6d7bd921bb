//! Which build changed which test: the level shifts, noise and drift in one series (one metric
//! of one test on one machine, values in build order).
//!
//! [`analyze`] is a pure function of the values and [`Params`]; `docs/change-detection.md`
//! explains the method and its evaluation. In short:
//! - **changes**: binary segmentation on ranks finds candidate splits, each kept only if a
//!   seeded permutation test finds it significant (`segment`). Then every candidate must move
//!   the median level by more than the minimum magnitude (percent *and* absolute floor, as
//!   `/compare` judges, and a number of noise standard deviations), and must be a step: between its neighbouring changes, two levels must
//!   describe the values better than a continuous line (straight, or a level that starts or
//!   stops sloping), or it is part of a drift. Candidates
//!   failing either are dropped one at a time, the weakest first, since dropping one merges two
//!   stretches and changes its neighbours' levels.
//! - **noise**: the robust coefficient of variation, 1.4826 · MAD / median, of the recent values
//!   around the level of the stretch each belongs to, labelled stable or noisy.
//! - **trend**: the Theil–Sen slope of the recent values since the last change, a drift when it
//!   is steep, significant (Mann–Kendall) and adds up to the minimum magnitude over the window.

mod random;
mod robust;
mod segment;

pub use random::SplitMix64;

use std::collections::HashMap;

use serde::Serialize;

use crate::compare::Thresholds;
use robust::{
    absolute_deviations, bent_line_deviations, mann_kendall_p, median, theil_sen, MAD_TO_SD,
};
use segment::{Search, Split};

/// How far (in builds) [`refine`] may move a change found on ranks.
const REFINE_BY: usize = 5;

/// A trend is measured on at least this many values since the last change.
const MIN_TREND_POINTS: usize = 10;

/// What decides what is reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Params {
    /// A change must move the level by more than this many percent of the level before it.
    pub min_percent: f64,
    /// …and by at least this much, in the metric's unit: what keeps tiny tests quiet.
    pub min_absolute: f64,
    /// …and by more than this many standard deviations of the noise around its two levels (as
    /// `/compare`'s `sigma`), estimated robustly: a shift the noise hides is no news.
    pub min_sigma: f64,
    /// The significance level of the permutation test for a change and of the trend test for
    /// a drift.
    pub alpha: f64,
    /// How many random reorderings the permutation test draws (at least `1 / alpha - 1`).
    pub permutations: usize,
    /// The fewest values on each side of a change: a new level is reported once it has held
    /// for this many builds (ranks need about 6 at `alpha` 0.001).
    pub min_segment: usize,
    /// Seeds the permutations, so that the same series always gets the same answer.
    pub seed: u64,
    /// How many recent values the noise and the trend are measured on.
    pub window: usize,
    /// Above this robust coefficient of variation, in percent, a series is noisy.
    pub noisy_percent: f64,
    /// A trend steeper than this many percent of the level per build can be a drift.
    pub drift_percent: f64,
}

impl Params {
    /// The defaults, with `min_absolute` as the floor in the metric's unit.
    pub fn with_floor(min_absolute: f64) -> Params {
        Params {
            min_percent: 5.0,
            min_absolute,
            min_sigma: 2.0,
            alpha: 0.001,
            permutations: 999,
            min_segment: 5,
            seed: 0x5EED,
            window: 50,
            noisy_percent: 10.0,
            drift_percent: 0.2,
        }
    }

    /// For times in seconds: the floor is `/compare`'s `min_time`.
    pub fn time() -> Params {
        Params::with_floor(Thresholds::default().min_time)
    }

    /// For memory in MB: the floor is `/compare`'s `min_memory`.
    pub fn memory() -> Params {
        Params::with_floor(Thresholds::default().min_memory)
    }

    fn search(&self) -> Search {
        Search {
            alpha: self.alpha,
            permutations: self.permutations,
            min_segment: self.min_segment,
            seed: self.seed,
        }
    }

    /// Whether a move from `before` to `after` passes the minimum magnitude, as `/compare`
    /// judges a change: beyond the percentage of the level and at least the floor.
    fn big_enough(&self, before: f64, after: f64) -> bool {
        let size = (after - before).abs();
        size > self.min_percent / 100.0 * before.abs() && size >= self.min_absolute
    }
}

/// What one series shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// The level shifts, in build order.
    pub changes: Vec<Change>,
    /// How noisy the recent values are; `None` for fewer than 3 values.
    pub noise: Option<Noise>,
    /// The recent slope; `None` with fewer than 10 values since the last change.
    pub trend: Option<Trend>,
}

/// A level shift.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The position in the series of the first value at the new level.
    pub index: usize,
    /// The median from the previous change (or the start) up to this one.
    pub before: f64,
    /// The median from this change up to the next one (or the end).
    pub after: f64,
    /// `after` against `before`, in percent; `None` when `before` is 0.
    pub change_percent: Option<f64>,
    /// 1 − the permutation p-value of the test that found it.
    pub confidence: f64,
}

/// How much a series scatters around its level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Noise {
    /// 1.4826 · MAD / median in percent: the standard deviation relative to the level, were the
    /// noise normal, but unmoved by outliers; `None` when the current level is 0.
    pub cv_percent: Option<f64>,
    /// `noisy` above [`Params::noisy_percent`].
    pub label: Stability,
    /// How many values it was measured on.
    pub points: usize,
}

/// The noise label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stability {
    Stable,
    Noisy,
}

/// The slope of the values since the last change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// The Theil–Sen slope, in the metric's unit per build.
    pub per_build: f64,
    /// The slope in percent of the median per build; `None` when the median is 0.
    pub percent_per_build: Option<f64>,
    /// How many values it was measured on.
    pub points: usize,
    /// 1 − the Mann–Kendall p-value: how sure the values move one way.
    pub confidence: f64,
    /// A drift: steeper than [`Params::drift_percent`], significant at [`Params::alpha`], and
    /// over its values beyond the minimum magnitude. No step explains it, since it is measured
    /// after the last change.
    pub drifting: bool,
}

/// The changes, noise and trend of one series, values in build order.
pub fn analyze(values: &[f64], params: &Params) -> Analysis {
    let candidates = segment::splits(values, &params.search());
    let changes = settle(values, candidates, params);
    let starts: Vec<usize> = changes.iter().map(|c| c.index).collect();
    Analysis {
        noise: noise(values, &starts, params),
        trend: trend(values, starts.last().copied().unwrap_or(0), params),
        changes,
    }
}

/// How one candidate looks between its neighbours.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    before: f64,
    after: f64,
    big_enough: bool,
    /// The absolute deviations from two levels over those from the best continuous line with
    /// at most one bend (a Theil–Sen line, a level then a slope, a slope then a level): below
    /// 1, a step describes the stretch better than any drift.
    step_over_line: f64,
}

/// Drops, one at a time, the candidates that are too small or no step, and describes the rest.
fn settle(values: &[f64], mut splits: Vec<Split>, params: &Params) -> Vec<Change> {
    // Dropping a candidate only changes its neighbours' stretches: the others are looked up.
    let mut described: HashMap<(usize, usize, usize), Candidate> = HashMap::new();
    loop {
        let candidates: Vec<Candidate> = (0..splits.len())
            .map(|i| {
                let key = stretch_of(values, &splits, i);
                *described
                    .entry(key)
                    .or_insert_with(|| describe(values, key, params))
            })
            .collect();
        let too_small = candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.big_enough)
            .min_by(|(_, a), (_, b)| {
                (a.after - a.before)
                    .abs()
                    .total_cmp(&(b.after - b.before).abs())
            });
        let no_step = candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.step_over_line >= 1.0)
            .max_by(|(_, a), (_, b)| a.step_over_line.total_cmp(&b.step_over_line));
        match too_small.or(no_step) {
            Some((i, _)) => {
                splits.remove(i);
            }
            None => {
                refine(values, &mut splits, params.min_segment);
                return (0..splits.len())
                    .map(|i| {
                        (
                            splits[i],
                            describe(values, stretch_of(values, &splits, i), params),
                        )
                    })
                    .map(|(split, c)| Change {
                        index: split.index,
                        before: c.before,
                        after: c.after,
                        change_percent: (c.before != 0.0)
                            .then(|| (c.after - c.before) / c.before.abs() * 100.0),
                        confidence: 1.0 - split.p_value,
                    })
                    .collect();
            }
        }
    }
}

/// Moves each split by up to [`REFINE_BY`] builds to where two levels fit its stretch best.
/// Ranks only order the values, so an outlier next to the change, or a value of the old level
/// that happens to be the highest of its kind, can pull the split a few builds off; the values
/// themselves tell.
fn refine(values: &[f64], splits: &mut [Split], min_segment: usize) {
    for i in 0..splits.len() {
        let (from, at, to) = stretch_of(values, splits, i);
        let cost = |c: usize| {
            let (left, right) = (&values[from..c], &values[c..to]);
            absolute_deviations(left, median(left)) + absolute_deviations(right, median(right))
        };
        let lowest = (at.saturating_sub(REFINE_BY).max(from + min_segment)
            ..=(at + REFINE_BY).min(to.saturating_sub(min_segment)))
            .map(|c| (c, cost(c)))
            .fold(
                (at, cost(at)),
                |best, c| if c.1 < best.1 { c } else { best },
            );
        splits[i].index = lowest.0;
    }
}

/// Where candidate `i` starts its stretch (at the previous candidate or the start), splits it,
/// and ends it (at the next candidate or the end).
fn stretch_of(values: &[f64], splits: &[Split], i: usize) -> (usize, usize, usize) {
    let from = if i == 0 { 0 } else { splits[i - 1].index };
    let to = splits.get(i + 1).map_or(values.len(), |s| s.index);
    (from, splits[i].index, to)
}

/// A candidate splitting `from..to` at `at`.
fn describe(values: &[f64], (from, at, to): (usize, usize, usize), params: &Params) -> Candidate {
    let (left, right) = (&values[from..at], &values[at..to]);
    let (before, after) = (median(left), median(right));
    let step = absolute_deviations(left, before) + absolute_deviations(right, after);
    let mut deviations: Vec<f64> = left.iter().map(|v| (v - before).abs()).collect();
    deviations.extend(right.iter().map(|v| (v - after).abs()));
    let noise_sd = MAD_TO_SD * median(&deviations);
    let stretch = &values[from..to];
    let line = theil_sen(stretch)
        .absolute_deviations(stretch)
        .min(bent_line_deviations(stretch));
    let step_over_line = if line > 0.0 {
        step / line
    } else if step > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    Candidate {
        before,
        after,
        big_enough: params.big_enough(before, after)
            && (after - before).abs() > params.min_sigma * noise_sd,
        step_over_line,
    }
}

/// The noise of the last `window` values, each measured from the median of its stretch between
/// changes, relative to the current level.
fn noise(values: &[f64], starts: &[usize], params: &Params) -> Option<Noise> {
    let n = values.len();
    if n < 3 {
        return None;
    }
    let from = n - n.min(params.window.max(3));
    let mut bounds = Vec::with_capacity(starts.len() + 2);
    bounds.push(0);
    bounds.extend_from_slice(starts);
    bounds.push(n);
    let mut deviations = Vec::with_capacity(n - from);
    let mut level = 0.0;
    for stretch in bounds.windows(2) {
        let (start, end) = (stretch[0], stretch[1]);
        if end <= from {
            continue;
        }
        level = median(&values[start..end]);
        deviations.extend(
            values[start.max(from)..end]
                .iter()
                .map(|v| (v - level).abs()),
        );
    }
    let spread = MAD_TO_SD * median(&deviations);
    let cv_percent = (level != 0.0).then(|| spread / level.abs() * 100.0);
    let noisy = match cv_percent {
        Some(cv) => cv > params.noisy_percent,
        None => spread > 0.0,
    };
    Some(Noise {
        cv_percent,
        label: if noisy {
            Stability::Noisy
        } else {
            Stability::Stable
        },
        points: deviations.len(),
    })
}

/// The slope of the last `window` values from `since` on.
fn trend(values: &[f64], since: usize, params: &Params) -> Option<Trend> {
    let from = since.max(values.len().saturating_sub(params.window));
    let recent = &values[from..];
    if recent.len() < MIN_TREND_POINTS {
        return None;
    }
    let line = theil_sen(recent);
    let level = median(recent);
    let percent_per_build = (level != 0.0).then(|| line.slope / level.abs() * 100.0);
    let p_value = mann_kendall_p(recent);
    let span = (recent.len() - 1) as f64;
    let drifting = percent_per_build.is_some_and(|p| p.abs() >= params.drift_percent)
        && p_value <= params.alpha
        && params.big_enough(level, level + line.slope * span);
    Some(Trend {
        per_build: line.slope,
        percent_per_build,
        points: recent.len(),
        confidence: 1.0 - p_value,
        drifting,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Levels with relative normal noise from a fixed seed.
    struct Noisy(u64);

    impl Noisy {
        /// `levels[i]` with relative noise `cv` (0.05 for 5 %).
        fn around(&mut self, levels: &[f64], cv: f64) -> Vec<f64> {
            let mut rng = SplitMix64::new(self.0);
            levels
                .iter()
                .map(|l| l * (1.0 + cv * rng.normal()))
                .collect()
        }
    }

    fn steps(n: usize, base: f64, shifts: &[(usize, f64)]) -> Vec<f64> {
        (0..n)
            .map(|i| {
                shifts
                    .iter()
                    .filter(|(at, _)| i >= *at)
                    .fold(base, |level, (_, factor)| level * factor)
            })
            .collect()
    }

    #[test]
    fn a_thirty_percent_slowdown_is_found_where_it_starts() {
        let values = Noisy(1).around(&steps(100, 2.0, &[(60, 1.3)]), 0.05);
        let analysis = analyze(&values, &Params::time());
        assert_eq!(analysis.changes.len(), 1, "{analysis:?}");
        let change = &analysis.changes[0];
        assert!(change.index.abs_diff(60) <= 1, "{change:?}");
        assert!((change.before - 2.0).abs() < 0.1, "{change:?}");
        assert!((change.after - 2.6).abs() < 0.1, "{change:?}");
        let percent = change.change_percent.unwrap_or_default();
        assert!((25.0..35.0).contains(&percent), "{change:?}");
        assert!(change.confidence >= 0.999, "{change:?}");
    }

    #[test]
    fn clean_steps_are_located_exactly() {
        let values = Noisy(2).around(&steps(100, 10.0, &[(20, 1.5), (70, 0.8)]), 0.01);
        let indexes: Vec<usize> = analyze(&values, &Params::time())
            .changes
            .iter()
            .map(|c| c.index)
            .collect();
        assert_eq!(indexes, vec![20, 70]);
    }

    #[test]
    fn a_regression_and_its_fix_are_two_changes() {
        let values = Noisy(3).around(&steps(100, 5.0, &[(40, 2.0), (55, 0.5)]), 0.1);
        let changes = analyze(&values, &Params::time()).changes;
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(changes[0].index.abs_diff(40) <= 1, "{changes:?}");
        assert!(changes[1].index.abs_diff(55) <= 1, "{changes:?}");
        assert!(changes[0].after > changes[0].before && changes[1].after < changes[1].before);
    }

    #[test]
    fn pure_noise_raises_nothing_at_any_noise_level() {
        for seed in 0..40 {
            let cv = 0.02 + 0.23 * (seed as f64 / 39.0);
            let values = Noisy(100 + seed).around(&[3.0; 100], cv);
            let analysis = analyze(&values, &Params::time());
            assert!(analysis.changes.is_empty(), "seed {seed}: {analysis:?}");
            assert!(!analysis.trend.is_some_and(|t| t.drifting), "seed {seed}");
        }
    }

    #[test]
    fn single_outliers_raise_nothing() {
        let mut values = Noisy(4).around(&[1.0; 100], 0.05);
        values[30] = 6.0;
        values[97] = 9.0;
        values[99] = 0.01;
        let analysis = analyze(&values, &Params::time());
        assert!(analysis.changes.is_empty(), "{analysis:?}");
    }

    #[test]
    fn a_slow_drift_is_a_drift_and_no_change() {
        let levels: Vec<f64> = (0..100).map(|i| 4.0 * (1.0 + 0.005 * i as f64)).collect();
        let values = Noisy(5).around(&levels, 0.03);
        let analysis = analyze(&values, &Params::time());
        assert!(analysis.changes.is_empty(), "{analysis:?}");
        let trend = analysis.trend.expect("100 values have a trend");
        assert!(trend.drifting, "{trend:?}");
        let percent = trend.percent_per_build.unwrap_or_default();
        // 0.5 % of the first level per build is about 0.4 % of the recent median.
        assert!((0.3..0.5).contains(&percent), "{trend:?}");
    }

    #[test]
    fn a_flat_series_has_a_trend_that_is_no_drift() {
        let values = Noisy(6).around(&[2.0; 100], 0.05);
        let trend = analyze(&values, &Params::time()).trend.expect("a trend");
        assert!(!trend.drifting, "{trend:?}");
        assert_eq!(trend.points, 50);
    }

    #[test]
    fn tiny_tests_raise_nothing_below_the_absolute_floor() {
        // A doubling of 20 ms is 20 ms, below /compare's 0.1 s floor: nothing to tell.
        let tiny = Noisy(7).around(&steps(100, 0.02, &[(50, 2.0)]), 0.05);
        assert!(analyze(&tiny, &Params::time()).changes.is_empty());
        // The same shape at 2 s is a change.
        let scaled: Vec<f64> = tiny.iter().map(|v| v * 100.0).collect();
        assert_eq!(analyze(&scaled, &Params::time()).changes.len(), 1);
    }

    #[test]
    fn a_significant_shift_below_the_percentage_raises_nothing() {
        // 3 % of 100 s is 3 s, well above the floor and the noise, but below 5 %.
        let values = Noisy(8).around(&steps(100, 100.0, &[(50, 1.03)]), 0.002);
        assert!(analyze(&values, &Params::time()).changes.is_empty());
    }

    #[test]
    fn a_shift_the_noise_hides_raises_nothing() {
        // 15 % in 20 % noise: significant over 50 builds, but under 2 noise sd.
        let values = Noisy(14).around(&steps(100, 10.0, &[(50, 1.15)]), 0.2);
        assert!(analyze(&values, &Params::time()).changes.is_empty());
    }

    #[test]
    fn a_new_level_is_reported_once_it_has_held_for_a_few_builds() {
        let values = Noisy(9).around(&steps(60, 2.0, &[(52, 1.5)]), 0.03);
        let changes = analyze(&values, &Params::time()).changes;
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].index, 52);
        let too_soon = &values[..55];
        assert!(analyze(too_soon, &Params::time()).changes.is_empty());
    }

    #[test]
    fn the_noise_score_labels_stable_and_noisy_series() {
        let stable = analyze(&Noisy(10).around(&[5.0; 100], 0.02), &Params::time());
        let noise = stable.noise.expect("a noise score");
        assert_eq!(noise.label, Stability::Stable);
        let cv = noise.cv_percent.unwrap_or_default();
        assert!((1.0..3.5).contains(&cv), "{noise:?}");
        assert_eq!(noise.points, 50);
        let noisy = analyze(&Noisy(11).around(&[5.0; 100], 0.2), &Params::time());
        assert_eq!(noisy.noise.map(|n| n.label), Some(Stability::Noisy));
    }

    #[test]
    fn the_noise_score_is_not_inflated_by_a_change_inside_its_window() {
        let values = Noisy(12).around(&steps(100, 5.0, &[(80, 2.0)]), 0.02);
        let analysis = analyze(&values, &Params::time());
        assert_eq!(analysis.changes.len(), 1);
        let cv = analysis
            .noise
            .as_ref()
            .and_then(|n| n.cv_percent)
            .unwrap_or_default();
        assert!(cv < 3.5, "{analysis:?}");
    }

    #[test]
    fn a_constant_series_is_stable_and_unchanged() {
        let analysis = analyze(&[0.25; 40], &Params::time());
        assert!(analysis.changes.is_empty());
        let noise = analysis.noise.expect("a noise score");
        assert_eq!(
            (noise.cv_percent, noise.label),
            (Some(0.0), Stability::Stable)
        );
        assert!(!analysis.trend.is_some_and(|t| t.drifting));
    }

    #[test]
    fn short_and_empty_series_are_answered() {
        assert_eq!(
            analyze(&[], &Params::memory()),
            Analysis {
                changes: vec![],
                noise: None,
                trend: None
            }
        );
        let short = analyze(&[1.0, 2.0, 30.0, 31.0], &Params::memory());
        assert!(short.changes.is_empty() && short.trend.is_none() && short.noise.is_some());
    }

    #[test]
    fn the_same_series_always_gets_the_same_answer() {
        let values = Noisy(13).around(&steps(100, 3.0, &[(33, 1.2), (66, 1.2)]), 0.04);
        assert_eq!(
            analyze(&values, &Params::time()),
            analyze(&values, &Params::time())
        );
    }
}
