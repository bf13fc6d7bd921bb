//! The wording the commands share: how a count of things reads in their messages.

/// `noun` as it reads after the number `n`: with an `s` unless `n` is 1 (every noun the commands
/// count takes one).
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        noun.to_owned()
    } else {
        format!("{noun}s")
    }
}

/// `1 session`, `2 sessions`.
pub fn counted(n: u64, noun: &str) -> String {
    format!("{n} {}", plural(n, noun))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thing_is_singular_and_any_other_count_plural() {
        assert_eq!(counted(0, "metric"), "0 metrics");
        assert_eq!(counted(1, "metric"), "1 metric");
        assert_eq!(counted(2, "metric"), "2 metrics");
        assert_eq!(plural(3, "column"), "columns");
    }
}
