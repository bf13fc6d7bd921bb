//! ISO 8601 times as Python's `datetime.isoformat()` writes them, read into microseconds since
//! 1970 UTC.

/// Parses `YYYY-MM-DDTHH:MM:SS[.f{1,9}][Z|±HH:MM]` (a space may stand for `T`), with a real
/// calendar date and clock time, as Python's `datetime.isoformat()` writes them. Returns the
/// instant in microseconds since 1970 UTC; a time without offset is taken as UTC.
pub fn parse_iso8601(text: &str) -> Result<i64, String> {
    use time::macros::format_description;

    const EXPECTED: &str = "must be an ISO 8601 time such as 2020-12-04T23:18:15.661016";
    let fail = |detail: &str| format!("{EXPECTED} ({detail})");
    if !text.is_ascii() || text.len() < 19 {
        return Err(fail("too short or not ASCII"));
    }
    let (date_time, rest) = text.split_at(19);
    let separator = date_time.as_bytes()[10];
    if separator != b'T' && separator != b' ' {
        return Err(fail("the date and time must be separated by T or a space"));
    }
    let canonical = format!("{}T{}", &date_time[..10], &date_time[11..]);
    let parsed = time::PrimitiveDateTime::parse(
        &canonical,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    )
    .map_err(|err| fail(&err.to_string()))?;
    if parsed.year() < 1 {
        return Err(fail("the year must be 0001 or later"));
    }
    let (micros, rest) = match rest.strip_prefix('.') {
        Some(fraction) => {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if !(1..=9).contains(&digits) {
                return Err(fail("a fraction of a second needs 1 to 9 digits"));
            }
            // Right-pad to nine digits (nanoseconds), then keep microseconds.
            let nanos: i64 = format!("{:0<9}", &fraction[..digits])
                .parse()
                .map_err(|_| fail("bad fraction"))?;
            (nanos / 1000, &fraction[digits..])
        }
        None => (0, rest),
    };
    let offset_seconds = match rest.as_bytes() {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]
            if [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()) =>
        {
            let hours = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minutes = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if hours >= 24 || minutes >= 60 {
                return Err(fail("the UTC offset is out of range"));
            }
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => {
            return Err(fail(
                "unexpected text after the time; an offset is Z or ±HH:MM",
            ))
        }
    };
    let utc_seconds = parsed.assume_utc().unix_timestamp() - offset_seconds;
    Ok(utc_seconds * 1_000_000 + micros)
}

/// Writes the instant `micros` into `spelled` as the store spells a time it keeps no text of
/// (`YYYY-MM-DDTHH:MM:SS.ffffff`, UTC: Python's isoformat of a time with microseconds, which is
/// what pytest-monitor sends) and returns it; `None` outside 1970 to 9999, which the store does
/// not spell so.
pub fn canonical_iso8601(micros: i64, spelled: &mut [u8; 26]) -> Option<&str> {
    const LATEST: i64 = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999
    if !(0..=LATEST).contains(&micros) {
        return None;
    }
    // Days to a civil date (Howard Hinnant's `civil_from_days`), by hand rather than through
    // `time`: a page of 500 metrics spells 500 times.
    let seconds = micros / 1_000_000;
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let z = days + 719_468;
    let (era, of_era) = (z / 146_097, z % 146_097);
    let year_of_era = (of_era - of_era / 1_460 + of_era / 36_524 - of_era / 146_096) / 365;
    let day_of_year = of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    let mut put = |from: usize, width: usize, mut value: i64| {
        for i in (from..from + width).rev() {
            spelled[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, of_day / 3_600);
    put(14, 2, of_day % 3_600 / 60);
    put(17, 2, of_day % 60);
    put(20, 6, micros % 1_000_000);
    for (at, separator) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ] {
        spelled[at] = separator;
    }
    std::str::from_utf8(spelled).ok()
}

/// True when `text` is exactly [`canonical_iso8601`]'s spelling of `micros`: such a text need
/// not be stored.
pub fn is_canonical_iso8601(text: &str, micros: i64) -> bool {
    let mut spelled = [0u8; 26];
    text.len() == 26 && canonical_iso8601(micros, &mut spelled) == Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_canonical_spelling_reads_back_as_its_instant() {
        let mut micros: i64 = 0;
        let mut spelled = [0u8; 26];
        // Steps of about 3 days and odd microseconds, from 1970 to 9999, leap days included.
        while micros < 253_402_300_799_999_999 {
            let text = canonical_iso8601(micros, &mut spelled).unwrap().to_owned();
            assert_eq!(parse_iso8601(&text), Ok(micros), "{text}");
            micros += 262_800_000_001 + micros % 7_919;
        }
        assert_eq!(
            canonical_iso8601(253_402_300_799_999_999, &mut spelled),
            Some("9999-12-31T23:59:59.999999")
        );
        assert_eq!(canonical_iso8601(-1, &mut spelled), None);
    }

    #[test]
    fn only_the_stores_own_spelling_is_canonical() {
        let micros = parse_iso8601("2020-12-04T23:18:15.061016").unwrap();
        assert!(is_canonical_iso8601("2020-12-04T23:18:15.061016", micros));
        for other in [
            "2020-12-04 23:18:15.061016",
            "2020-12-04T23:18:15.061016Z",
            "2020-12-04T23:18:15.061016+00:00",
            "2020-12-04T23:18:15.0610160",
        ] {
            assert!(!is_canonical_iso8601(other, micros), "{other}");
        }
        let whole = parse_iso8601("2020-12-04T23:18:15").unwrap();
        assert!(!is_canonical_iso8601("2020-12-04T23:18:15", whole));
        assert!(is_canonical_iso8601("2020-12-04T23:18:15.000000", whole));
        let early = parse_iso8601("1969-12-31T23:59:59.500000").unwrap();
        assert!(!is_canonical_iso8601("1969-12-31T23:59:59.500000", early));
    }

    #[test]
    fn python_isoformat_outputs_are_accepted() {
        for text in [
            "2020-12-04T23:18:15.661016",
            "2020-12-04T23:18:15",
            "2020-12-04 23:18:15.5",
            "2020-12-04T23:18:15Z",
            "2020-12-04T23:18:15.661016+05:30",
            "2020-12-04T23:18:15-08:00",
        ] {
            assert!(parse_iso8601(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn impossible_or_malformed_times_are_refused() {
        for text in [
            "2020-02-30T10:00:00",
            "2020-12-04T24:00:00",
            "2020-12-04T23:60:00",
            "2020-12-04",
            "2020-12-04X23:18:15",
            "2020-12-04T23:18:15.",
            "2020-12-04T23:18:15+25:00",
            "2020-12-04T23:18:15 junk",
            "0000-01-01T00:00:00",
            "not a date at all!!",
        ] {
            assert!(parse_iso8601(text).is_err(), "{text}");
        }
    }

    #[test]
    fn offsets_and_fractions_name_the_same_instant() {
        let utc = parse_iso8601("2020-12-04T23:18:15.5Z").unwrap();
        assert_eq!(parse_iso8601("2020-12-05T00:48:15.500000+01:30"), Ok(utc));
        assert_eq!(parse_iso8601("2020-12-04 23:18:15.5"), Ok(utc));
        assert_eq!(utc % 1_000_000, 500_000);
        assert_eq!(parse_iso8601("1970-01-01T00:00:01"), Ok(1_000_000));
    }
}
