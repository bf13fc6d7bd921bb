//! Candidate change points by binary segmentation on ranks: in each stretch, the split with the
//! largest standardized Wilcoxon rank-sum statistic, kept when a permutation test says that
//! few reorderings of the stretch do as well; failing that, the middle part with the largest
//! one, kept when its Bonferroni-corrected p-value is small enough.
//!
//! Ranks make the search blind to how far an outlier lies (it only ever holds the top rank), and
//! the permutation test makes its p-value exact for any distribution of the noise, with the
//! search over every position accounted for: each permutation is searched the same way.

use super::random::SplitMix64;
use super::robust::normal_two_sided_p;

/// A split that passed the permutation test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Split {
    /// Where the new level starts.
    pub index: usize,
    /// The permutation p-value of the stretch it was found in.
    pub p_value: f64,
}

/// How the search runs; see `Params` in the parent module.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Search {
    pub alpha: f64,
    pub permutations: usize,
    pub min_segment: usize,
    pub seed: u64,
}

/// Every split that binary segmentation keeps, in index order.
pub(crate) fn splits(values: &[f64], search: &Search) -> Vec<Split> {
    let min_segment = search.min_segment.max(1);
    // Each stretch gets two tests, a step and a bump, at half the level each.
    let alpha = search.alpha / 2.0;
    let mut found = Vec::new();
    let mut pending = vec![(0, values.len())];
    while let Some((start, end)) = pending.pop() {
        if end - start < 2 * min_segment {
            continue;
        }
        let stretch = Stretch::new(&values[start..end], min_segment);
        let mut rng = SplitMix64::new(search.seed ^ stretch_key(start, end));
        let step = stretch
            .best_step(&stretch.centred)
            .map(|(at, z)| (at, stretch.step_p_value(z, alpha, search, &mut rng)))
            .filter(|(_, p)| *p <= alpha);
        if let Some((at, p_value)) = step {
            found.push(Split {
                index: start + at,
                p_value,
            });
            pending.push((start, start + at));
            pending.push((start + at, end));
            continue;
        }
        let bump = stretch
            .best_bump(&stretch.centred)
            .map(|(at, z)| (at, stretch.bonferroni(Shape::Bump, z)))
            .filter(|(_, p)| *p <= alpha);
        if let Some(((from, to), p_value)) = bump {
            for at in [from, to] {
                found.push(Split {
                    index: start + at,
                    p_value,
                });
            }
            pending.push((start, start + from));
            pending.push((start + from, start + to));
            pending.push((start + to, end));
        }
    }
    found.sort_by_key(|split| split.index);
    found
}

/// What a stretch is searched for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// One split: the level before differs from the level after.
    Step,
    /// Two splits: the level between differs from the level around, as when a regression is
    /// fixed a few builds later. A single split scores such a stretch poorly, since each side
    /// of either split mixes both levels. Its search is quadratic in the stretch's length, too
    /// slow to repeat for hundreds of permutations: its p-value is the Bonferroni bound.
    Bump,
}

/// A stretch's ranks, centred on their mean, with what standardizes each rank sum.
struct Stretch {
    centred: Vec<f64>,
    min_segment: usize,
    /// `1 / sd` of the sum of `len` ranks drawn from the stretch, for each `len` (0 where
    /// not searched).
    inverse_sd: Vec<f64>,
}

impl Stretch {
    fn new(values: &[f64], min_segment: usize) -> Stretch {
        let n = values.len();
        let ranks = midranks(values);
        let mean = (n as f64 + 1.0) / 2.0;
        let centred: Vec<f64> = ranks.iter().map(|r| r - mean).collect();
        // Ties (equal values) shrink the ranks' spread; measuring it keeps the statistic
        // standardized for them too.
        let spread = centred.iter().map(|c| c * c).sum::<f64>() / n as f64;
        let inverse_sd = (0..=n)
            .map(|len| {
                let (len, n) = (len as f64, n as f64);
                let variance = len * (n - len) / (n - 1.0) * spread;
                if variance > 0.0 {
                    1.0 / variance.sqrt()
                } else {
                    0.0
                }
            })
            .collect();
        Stretch {
            centred,
            min_segment,
            inverse_sd,
        }
    }

    /// The split positions searched (lengths of the first part).
    fn steps(&self) -> std::ops::RangeInclusive<usize> {
        self.min_segment..=self.centred.len() - self.min_segment
    }

    /// The best split of `ranks` (a reordering of the stretch's) by |z| of the first part's
    /// rank sum, and that |z|; `None` when every value is equal.
    fn best_step(&self, ranks: &[f64]) -> Option<(usize, f64)> {
        let mut best: Option<(usize, f64)> = None;
        let mut sum: f64 = ranks[..self.min_segment - 1].iter().sum();
        for t in self.steps() {
            sum += ranks[t - 1];
            let z = (sum * self.inverse_sd[t]).abs();
            if z > 0.0 && best.is_none_or(|(_, b)| z > b) {
                best = Some((t, z));
            }
        }
        best
    }

    /// The best middle part `from..to` of `ranks` by |z| of its rank sum, each of the three
    /// parts at least `min_segment` long; `None` when the stretch is too short or all equal.
    fn best_bump(&self, ranks: &[f64]) -> Option<((usize, usize), f64)> {
        let prefix = prefix_sums(ranks);
        let mut best: Option<((usize, usize), f64)> = None;
        self.scan_bumps(&prefix, |from, to, z| {
            if z > 0.0 && best.is_none_or(|(_, b)| z > b) {
                best = Some(((from, to), z));
            }
        });
        best
    }

    /// Calls `visit(from, to, |z|)` for every middle part.
    fn scan_bumps(&self, prefix: &[f64], mut visit: impl FnMut(usize, usize, f64)) {
        let (n, m) = (self.centred.len(), self.min_segment);
        if n < 3 * m {
            return;
        }
        for from in m..=n - 2 * m {
            for to in from + m..=n - m {
                let z = ((prefix[to] - prefix[from]) * self.inverse_sd[to - from]).abs();
                visit(from, to, z);
            }
        }
    }

    /// How many places the search for `shape` looks at: the Bonferroni factor.
    fn places(&self, shape: Shape) -> f64 {
        let (n, m) = (self.centred.len() as f64, self.min_segment as f64);
        match shape {
            Shape::Step => n - 2.0 * m + 1.0,
            Shape::Bump => {
                let starts = n - 3.0 * m + 1.0;
                starts * (starts + 1.0) / 2.0
            }
        }
    }

    /// The normal approximation's p-value of a best `shape` scoring `observed`, times the
    /// number of places searched: an upper bound (the rank sums' tails are lighter than the
    /// normal's), and close to the permutation p-value when it is small.
    fn bonferroni(&self, shape: Shape, observed: f64) -> f64 {
        (self.places(shape) * normal_two_sided_p(observed)).min(1.0)
    }

    /// The p-value of the best step scoring `observed`. When the Bonferroni bound is already
    /// below `alpha`, it is the answer: a large change costs no permutation. Otherwise it is the
    /// share of random reorderings whose best step scores at least `observed`, counting the
    /// observed order itself, stopping as soon as the answer is known to be above `alpha`
    /// (after a handful of permutations on a stretch without a change).
    fn step_p_value(
        &self,
        observed: f64,
        alpha: f64,
        search: &Search,
        rng: &mut SplitMix64,
    ) -> f64 {
        let bound = self.bonferroni(Shape::Step, observed);
        if bound <= alpha {
            return bound;
        }
        let threshold = observed * (1.0 - 1e-12);
        // From this many orderings at least as extreme, the p-value can no longer reach alpha.
        let give_up = (alpha * (search.permutations + 1) as f64).floor() as usize;
        let mut shuffled = self.centred.clone();
        let mut at_least = 0usize;
        for done in 1..=search.permutations {
            at_least += usize::from(self.shuffled_step_reaches(&mut shuffled, threshold, rng));
            if at_least >= give_up {
                return (at_least + 1) as f64 / (done + 1) as f64;
            }
        }
        (at_least + 1) as f64 / (search.permutations + 1) as f64
    }

    /// Shuffles `ranks` (Fisher–Yates) while scanning the prefix sums as each position is
    /// settled, and tells whether a split reaches `threshold`; positions past the last split
    /// are never needed. Shuffling the previous permutation again is as uniform as shuffling
    /// the original.
    fn shuffled_step_reaches(
        &self,
        ranks: &mut [f64],
        threshold: f64,
        rng: &mut SplitMix64,
    ) -> bool {
        let n = ranks.len();
        let mut sum = 0.0;
        for i in 0..n - self.min_segment {
            let j = i + rng.below(n - i);
            ranks.swap(i, j);
            sum += ranks[i];
            let t = i + 1;
            if t >= self.min_segment && (sum * self.inverse_sd[t]).abs() >= threshold {
                return true;
            }
        }
        false
    }
}

/// Sums of the first 0, 1, …, n values.
fn prefix_sums(values: &[f64]) -> Vec<f64> {
    let mut sums = Vec::with_capacity(values.len() + 1);
    let mut sum = 0.0;
    sums.push(0.0);
    for v in values {
        sum += v;
        sums.push(sum);
    }
    sums
}

/// Ranks from 1, equal values sharing the mean of their ranks.
fn midranks(values: &[f64]) -> Vec<f64> {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; n];
    let mut first = 0;
    while first < n {
        let mut last = first;
        while last + 1 < n
            && values[order[last + 1]]
                .total_cmp(&values[order[first]])
                .is_eq()
        {
            last += 1;
        }
        let rank = (first + last) as f64 / 2.0 + 1.0;
        for &i in &order[first..=last] {
            ranks[i] = rank;
        }
        first = last + 1;
    }
    ranks
}

/// Mixes a stretch's bounds into the seed so that each stretch draws its own permutations and
/// the answer for a stretch does not depend on the order stretches are tested in.
fn stretch_key(start: usize, end: usize) -> u64 {
    (start as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (end as u64).rotate_left(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search() -> Search {
        Search {
            alpha: 0.001,
            permutations: 999,
            min_segment: 5,
            seed: 7,
        }
    }

    #[test]
    fn equal_values_share_their_mean_rank() {
        assert_eq!(midranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn a_clean_step_is_split_where_the_new_level_starts() {
        let values: Vec<f64> = (0..40)
            .map(|i| if i < 23 { 1.0 } else { 2.0 } + 0.01 * ((i * 7) % 5) as f64)
            .collect();
        let found = splits(&values, &search());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].index, 23);
        assert!(found[0].p_value <= 0.001);
    }

    #[test]
    fn a_short_bump_in_the_middle_is_split_at_both_ends() {
        // No single split separates the levels: either side of one mixes both.
        let values: Vec<f64> = (0..100)
            .map(|i| if (45..57).contains(&i) { 2.0 } else { 1.0 })
            .collect();
        let indexes: Vec<usize> = splits(&values, &search()).iter().map(|s| s.index).collect();
        assert_eq!(indexes, vec![45, 57]);
    }

    #[test]
    fn a_constant_series_has_no_split() {
        assert!(splits(&[4.0; 50], &search()).is_empty());
    }

    #[test]
    fn a_series_shorter_than_two_segments_is_not_searched() {
        assert!(splits(&[1.0, 1.0, 1.0, 9.0, 9.0, 9.0], &search()).is_empty());
    }

    #[test]
    fn the_same_series_always_gets_the_same_answer() {
        let values: Vec<f64> = (0..60).map(|i| ((i * 37) % 11) as f64).collect();
        let first = splits(&values, &search());
        assert_eq!(first, splits(&values, &search()));
    }
}
