//! Statistics and verdicts: a metric's change judged against the thresholds, the absolute floor
//! and the baseline's noise.

use super::{Change, ComparedTest, Verdict};

/// How one metric is judged.
pub(super) struct Rule {
    /// The metric's name in reasons.
    pub(super) label: &'static str,
    /// Its unit in reasons.
    pub(super) unit: &'static str,
    /// The growth allowed, in percent of the baseline; `None`: only reported, never judged.
    pub(super) threshold: Option<f64>,
    /// The smallest change that can be a verdict, in the metric's unit.
    pub(super) floor: f64,
}

/// Compares one metric; with a rule, decides its verdict and explains it.
pub(super) fn judge(
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
pub(super) fn severity(test: &ComparedTest) -> f64 {
    [&test.total_time, &test.cpu_time, &test.mem_usage]
        .into_iter()
        .filter(|c| c.verdict == Some(test.verdict))
        .map(|c| c.change_percent.map_or(f64::INFINITY, f64::abs))
        .fold(0.0, f64::max)
}

pub(super) fn mean(values: &[f64]) -> Option<f64> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
