//! Counts as typed on a command line (`10000`, `10_000`, `10k`, `1M`) and as printed back.

/// `10000`, `10_000`, `10,000`, `10k`, `1M`.
pub fn parse(text: &str) -> Result<u64, String> {
    let clean = text.trim().replace(['_', ','], "");
    let (digits, factor) = match clean.chars().last() {
        Some('k' | 'K') => (&clean[..clean.len() - 1], 1_000),
        Some('m' | 'M') => (&clean[..clean.len() - 1], 1_000_000),
        _ => (clean.as_str(), 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("`{text}` is not a number"))
}

/// The short form of a round count (`10k`, `2M`), else its digits.
pub fn label(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_with_separators_and_suffixes_and_print_back_short() {
        assert_eq!(parse("10_000"), Ok(10_000));
        assert_eq!(parse("10,000"), Ok(10_000));
        assert_eq!(parse("10k"), Ok(10_000));
        assert_eq!(parse("2M"), Ok(2_000_000));
        assert!(parse("ten").is_err());
        assert_eq!(label(10_000), "10k");
        assert_eq!(label(2_000_000), "2M");
        assert_eq!(label(1_500), "1500");
    }
}
