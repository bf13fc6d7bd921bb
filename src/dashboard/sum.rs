//! Sums of floating-point figures that do not depend on the order the values arrive in.

/// A running sum with Neumaier's compensation: the rounding error of every addition is kept
/// and added back at the end, so the result is the correctly rounded sum of the values in all
/// but contrived cases, whatever their order. A test's mean must not change with the order the
/// store happens to read its metrics in (an index's, the order stored, the order they arrived).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Sum {
    sum: f64,
    compensation: f64,
}

impl Sum {
    pub(super) fn add(&mut self, value: f64) {
        let sum = self.sum + value;
        self.compensation += if self.sum.abs() >= value.abs() {
            (self.sum - sum) + value
        } else {
            (value - sum) + self.sum
        };
        self.sum = sum;
    }

    pub(super) fn value(&self) -> f64 {
        self.sum + self.compensation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_is_the_same_in_every_order() {
        let values = [0.62, 1.71, 2.52, 0.1, 0.2, 0.3, 1e-9, 3.3];
        let mut forward = Sum::default();
        values.iter().for_each(|&v| forward.add(v));
        let mut backward = Sum::default();
        values.iter().rev().for_each(|&v| backward.add(v));
        assert_eq!(forward.value(), backward.value());
        let naive: f64 = [0.1, 0.2, 0.3].iter().sum();
        let mut exact = Sum::default();
        [0.1, 0.2, 0.3].iter().for_each(|&v| exact.add(v));
        assert_ne!(naive, 0.6);
        assert_eq!(exact.value(), 0.6);
    }
}
