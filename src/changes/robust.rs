//! Robust summaries of a series: median, median absolute deviation, the Theil–Sen line and the
//! Mann–Kendall trend test, none of which one outlier can move far.

/// Multiplying a MAD by this estimates the standard deviation of normally distributed data.
pub(crate) const MAD_TO_SD: f64 = 1.4826;

/// At most this many bends are tried by [`bent_line_deviations`].
const BENDS: usize = 100;

/// Above this many points a Theil–Sen line is fitted to this many evenly spaced ones: the
/// estimator costs the square of its input, and a few hundred points pin a slope down anyway.
const THEIL_SEN_POINTS: usize = 300;

/// The median of `values`; 0 when there are none. NaN sorts above every number.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut scratch = values.to_vec();
    median_in_place(&mut scratch)
}

/// The median of `values`, reordering them; 0 when there are none.
pub(crate) fn median_in_place(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    let (below, middle, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *middle;
    if n % 2 == 1 {
        return upper;
    }
    let lower = below
        .iter()
        .copied()
        .max_by(f64::total_cmp)
        .unwrap_or(upper);
    (lower + upper) / 2.0
}

/// The sum of absolute deviations of `values` from `center`: what a median minimises, and so the
/// cost of describing a stretch by one level.
pub(crate) fn absolute_deviations(values: &[f64], center: f64) -> f64 {
    values.iter().map(|v| (v - center).abs()).sum()
}

/// A straight line through a series indexed 0, 1, 2, …
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Line {
    /// The change per index.
    pub slope: f64,
    /// The value at index 0.
    pub intercept: f64,
}

impl Line {
    /// The line's value at `index`.
    pub(crate) fn at(&self, index: usize) -> f64 {
        self.intercept + self.slope * index as f64
    }

    /// The sum of absolute deviations of `values` (indexed from 0) from the line.
    pub(crate) fn absolute_deviations(&self, values: &[f64]) -> f64 {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (v - self.at(i)).abs())
            .sum()
    }
}

/// The Theil–Sen line: the median of the slopes between every pair of points, and the median
/// intercept under that slope. Up to 29 % of the points can be wild without moving it.
pub(crate) fn theil_sen(values: &[f64]) -> Line {
    let n = values.len();
    if n < 2 {
        return Line {
            slope: 0.0,
            intercept: median(values),
        };
    }
    let picked: Vec<usize> = if n > THEIL_SEN_POINTS {
        (0..THEIL_SEN_POINTS)
            .map(|k| k * (n - 1) / (THEIL_SEN_POINTS - 1))
            .collect()
    } else {
        (0..n).collect()
    };
    let mut slopes = Vec::with_capacity(picked.len() * (picked.len() - 1) / 2);
    for (a, &i) in picked.iter().enumerate() {
        for &j in &picked[a + 1..] {
            slopes.push((values[j] - values[i]) / (j - i) as f64);
        }
    }
    let slope = median_in_place(&mut slopes);
    let mut offsets: Vec<f64> = values
        .iter()
        .enumerate()
        .map(|(i, v)| v - slope * i as f64)
        .collect();
    Line {
        slope,
        intercept: median_in_place(&mut offsets),
    }
}

/// The sum of absolute deviations of `values` from the best-fitting line that is flat up to a
/// bend and slopes after it, or slopes up to a bend and is flat after it: how a drift that
/// starts (or stops) within a stretch looks. Every bend is tried (every few for long
/// stretches); for each, the level is the median of the flat side and the slope the median of
/// the slopes from the bend to each point of the other side.
pub(crate) fn bent_line_deviations(values: &[f64]) -> f64 {
    let n = values.len();
    let mut best = f64::INFINITY;
    if n < 4 {
        return best;
    }
    let stride = n.div_ceil(BENDS);
    let mut scratch = Vec::with_capacity(n);
    for bend in (2..n - 1).step_by(stride) {
        // Flat before `bend`, sloping from the last flat point on.
        let (flat, sloped) = values.split_at(bend);
        let level = median(flat);
        scratch.clear();
        scratch.extend(
            sloped
                .iter()
                .enumerate()
                .map(|(k, v)| (v - level) / (k + 1) as f64),
        );
        let slope = median_in_place(&mut scratch);
        let cost = absolute_deviations(flat, level)
            + sloped
                .iter()
                .enumerate()
                .map(|(k, v)| (v - level - slope * (k + 1) as f64).abs())
                .sum::<f64>();
        best = best.min(cost);
        // Sloping up to the first flat point at `n - bend`, flat from there.
        let (sloped, flat) = values.split_at(n - bend);
        let level = median(flat);
        scratch.clear();
        let last = sloped.len();
        scratch.extend(
            sloped
                .iter()
                .enumerate()
                .map(|(k, v)| (level - v) / (last - k) as f64),
        );
        let slope = median_in_place(&mut scratch);
        let cost = absolute_deviations(flat, level)
            + sloped
                .iter()
                .enumerate()
                .map(|(k, v)| (v - level + slope * (last - k) as f64).abs())
                .sum::<f64>();
        best = best.min(cost);
    }
    best
}

/// The two-sided p-value of the Mann–Kendall test that a series has no monotonic trend, from the
/// normal approximation with the correction for ties (equal values are common in memory figures).
/// 1 for fewer than 3 points.
pub(crate) fn mann_kendall_p(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 3 {
        return 1.0;
    }
    let mut s: i64 = 0;
    for (i, a) in values.iter().enumerate() {
        for b in &values[i + 1..] {
            s += match b.total_cmp(a) {
                std::cmp::Ordering::Greater => 1,
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
            };
        }
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut run = 1usize;
    for k in 1..=n {
        if k < n && sorted[k].total_cmp(&sorted[k - 1]).is_eq() {
            run += 1;
        } else {
            let t = run as f64;
            ties += t * (t - 1.0) * (2.0 * t + 5.0);
            run = 1;
        }
    }
    let nf = n as f64;
    let variance = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - ties) / 18.0;
    if s == 0 || variance <= 0.0 {
        return 1.0;
    }
    // The continuity correction: S moves in steps of 2.
    let z = (s.unsigned_abs() as f64 - 1.0) / variance.sqrt();
    normal_two_sided_p(z)
}

/// P(|Z| ≥ z) for a standard normal Z.
pub(crate) fn normal_two_sided_p(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0)
}

/// The complementary error function, to a relative error below 1.2e-7 (Numerical Recipes'
/// Chebyshev fit): plenty for a p-value compared with a threshold.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn theil_sen_follows_the_line_and_ignores_a_wild_point() {
        let mut values: Vec<f64> = (0..40).map(|i| 10.0 + 0.5 * i as f64).collect();
        values[17] = 1000.0;
        let line = theil_sen(&values);
        assert!((line.slope - 0.5).abs() < 1e-9, "{line:?}");
        assert!((line.intercept - 10.0).abs() < 1e-9, "{line:?}");
    }

    #[test]
    fn theil_sen_on_a_long_series_uses_a_subsample_and_still_finds_the_slope() {
        let values: Vec<f64> = (0..1000).map(|i| 3.0 - 0.01 * i as f64).collect();
        let line = theil_sen(&values);
        assert!((line.slope + 0.01).abs() < 1e-9, "{line:?}");
    }

    #[test]
    fn a_level_that_starts_sloping_fits_a_bent_line_exactly() {
        let starts: Vec<f64> = (0..40)
            .map(|i| 5.0 + 0.3 * (i.max(25) - 25) as f64)
            .collect();
        assert!(bent_line_deviations(&starts) < 1e-9);
        let stops: Vec<f64> = (0..40).map(|i| 5.0 + 0.3 * i.min(12) as f64).collect();
        assert!(bent_line_deviations(&stops) < 1e-9);
        let step: Vec<f64> = (0..40).map(|i| if i < 20 { 1.0 } else { 2.0 }).collect();
        assert!(bent_line_deviations(&step) > 5.0);
    }

    #[test]
    fn mann_kendall_tells_a_trend_from_a_flat_series() {
        let rising: Vec<f64> = (0..30)
            .map(|i| i as f64 + if i % 2 == 0 { 3.0 } else { 0.0 })
            .collect();
        assert!(mann_kendall_p(&rising) < 1e-6);
        let flat = [5.0; 30];
        assert_eq!(mann_kendall_p(&flat), 1.0);
        let alternating: Vec<f64> = (0..30).map(|i| (i % 2) as f64).collect();
        assert!(mann_kendall_p(&alternating) > 0.5);
    }

    #[test]
    fn the_normal_tail_matches_known_quantiles() {
        assert!((normal_two_sided_p(1.959_964) - 0.05).abs() < 1e-6);
        assert!((normal_two_sided_p(3.290_527) - 0.001).abs() < 1e-7);
        assert!((normal_two_sided_p(0.0) - 1.0).abs() < 1e-6);
    }
}
