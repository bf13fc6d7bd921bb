//! Fuzzing the request-body parser with proptest: arbitrary bytes, valid bodies with bytes
//! mutated, and JSON objects built from the records' own field names with values of every kind
//! go through `JsonObject::from_slice` and `Metric`/`Context`/`Session::from_json`.
//!
//! The parser must never panic; whatever it refuses is a 400; whatever it accepts obeys every
//! rule of docs/api.md (`record_rules`). For the generated objects an independent oracle also decides
//! whether the body is valid — no key twice, no field under two spellings, every required field
//! present, every value obeying its rule — and the parser must agree, returning the values sent.
//! Times get a property of their own against a calendar computed here.
//!
//! Each property runs a bounded number of cases from a fixed seed, so a run is reproducible;
//! `PROPTEST_CASES` and `PROPTEST_RNG_SEED` do not apply, edit [`CASES`] and [`SEED`] instead.

use monitor_server::error::ApiError;
use monitor_server::models::{parse_iso8601, Context, JsonObject, Metric, Session};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde_json::{json, Map, Value};

use crate::record_rules::{obeys, Field, Rule, CONTEXT_FIELDS, METRIC_FIELDS, SESSION_FIELDS};

/// Cases per property.
const CASES: u32 = 2_000;

/// The seed every property starts from.
const SEED: u64 = 0x006d_6f6e_6974_6f72;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        rng_seed: RngSeed::Fixed(SEED),
        // Shrunk failures are reported in the test output, not written under tests/.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------- the three records

/// The kinds of record a body can be parsed as.
#[derive(Debug, Clone, Copy)]
enum Record {
    Metric,
    Context,
    Session,
}

const RECORDS: [Record; 3] = [Record::Metric, Record::Context, Record::Session];

impl Record {
    fn fields(self) -> &'static [Field] {
        match self {
            Record::Metric => METRIC_FIELDS,
            Record::Context => CONTEXT_FIELDS,
            Record::Session => SESSION_FIELDS,
        }
    }

    /// Parses `body` as this record: the record as it would be listed, or the refusal.
    fn parse(self, body: &[u8]) -> Result<Value, ApiError> {
        let object = JsonObject::from_slice(body)?;
        let listed = match self {
            Record::Metric => Metric::from_json(object).map(|metric| {
                let listed = serde_json::to_value(&metric).unwrap();
                // `start_us` is not listed; it must name the instant `item_start_time` names.
                let start = listed["item_start_time"].as_str().unwrap();
                assert_eq!(
                    parse_iso8601(start),
                    Ok(metric.start_us),
                    "start_us disagrees with {start:?}"
                );
                listed
            }),
            Record::Context => {
                Context::from_json(object).map(|c| serde_json::to_value(&c).unwrap())
            }
            Record::Session => {
                Session::from_json(object).map(|s| serde_json::to_value(&s).unwrap())
            }
        }?;
        Ok(listed)
    }

    /// A valid body of this record, as pytest-monitor sends it.
    fn valid(self) -> Value {
        match self {
            Record::Metric => json!({
                "session_h": "5e55107b2a4d0c1e9f1a6f0e6d39b3f6f5c8a7b1",
                "ctx_h": "c7a1e0f2b3d4e5f60718293a4b5c6d7e8f901234",
                "item_start_time": "2021-03-04T10:11:12.131415",
                "item_path": "tests.test_api",
                "item": "test_one",
                "item_variant": "test_one[1]",
                "item_fs_loc": "tests/test_api.py",
                "kind": "function",
                "component": "",
                "wall_time": 1.25,
                "user_time": 0,
                "krnl_time": 0.25,
                "cpu_usage": 0.8,
                "mem_usage": -12.5
            }),
            Record::Context => json!({
                "h": "c7a1e0f2b3d4e5f60718293a4b5c6d7e8f901234",
                "cpu_count": 8,
                "cpu_frequency": 2800.5,
                "cpu_type": "x86_64",
                "ram_total": 16384.0,
                "machine_node": "ci-runner-3",
                "machine_type": "x86_64",
                "machine_arch": "64bit",
                "system_info": "Linux - 5.15.0",
                "python_info": "3.11.4"
            }),
            Record::Session => json!({
                "session_h": "5e55107b2a4d0c1e9f1a6f0e6d39b3f6f5c8a7b1",
                "run_date": "2021-03-04 10:11:00+01:00",
                "scm_ref": "",
                "description": {"description": "nightly", "pipeline_build_no": 12}
            }),
        }
    }
}

/// Asserts that a refusal is a 400 and that an accepted record obeys every rule of its fields.
fn check_outcome(record: Record, outcome: &Result<Value, ApiError>) -> Result<(), TestCaseError> {
    match outcome {
        Err(ApiError::BadRequest { message, .. }) => {
            prop_assert!(!message.is_empty());
        }
        Err(other) => prop_assert!(false, "{record:?}: refused with {other:?}, not a 400"),
        Ok(listed) => {
            for field in record.fields() {
                let value = &listed[field.name];
                prop_assert!(
                    obeys(field.rule, value),
                    "{record:?} accepted with {} = {value}",
                    field.name
                );
            }
        }
    }
    Ok(())
}

/// Parses `body` as every record and checks each outcome.
fn check_every_record(body: &[u8]) -> Result<(), TestCaseError> {
    for record in RECORDS {
        check_outcome(record, &record.parse(body))?;
    }
    Ok(())
}

// ---------------------------------------------------------------- generated values

/// Every spelling of every field of every record.
fn all_spellings() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = RECORDS
        .iter()
        .flat_map(|r| r.fields().iter().flat_map(Field::spellings))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Times: valid ones in each spelling and near misses.
fn time_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "2020-12-04T23:18:15.661016",
            "2020-12-04 23:18:15",
            "2020-12-04T23:18:15Z",
            "2020-12-04T23:18:15.5+05:30",
            "2024-02-29T00:00:00-08:00",
            "0001-01-01T00:00:00",
            "9999-12-31T23:59:59.999999999",
            "2021-02-29T00:00:00",
            "2020-12-04T24:00:00",
            "2020-12-04T23:18:15.",
            "2020-12-04",
        ])
        .prop_map(str::to_owned),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,10})?(Z|[+-][0-9]{2}:[0-9]{2})?",
    ]
}

/// Strings: empty, short, unicode, times, and lengths around every bound of docs/api.md.
fn text_value() -> impl Strategy<Value = String> {
    let bounds = vec![
        63usize, 64, 65, 127, 128, 129, 511, 512, 513, 2047, 2048, 2049, 4095, 4096, 4097,
    ];
    prop_oneof![
        Just(String::new()),
        "[ -~]{0,12}",
        "\\PC{0,8}",
        time_text(),
        (
            prop::sample::select(bounds),
            prop::sample::select(vec!['a', 'é', '💩'])
        )
            .prop_map(|(n, c)| std::iter::repeat_n(c, n).collect()),
    ]
}

/// Numbers: any integer or finite float, and the edges of the rules.
fn number_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        prop::sample::select(vec![
            0.0, -0.0, 1.0, -1.0, 1.5, -1e-300, 5e-324, 1e300, 8.9e15, 9.5e15, -9.5e15,
        ])
        .prop_map(|f| json!(f)),
        (0i64..100).prop_map(|n| json!(n)),
    ]
}

/// A null, boolean, number or string.
fn leaf_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => number_value(),
        3 => text_value().prop_map(Value::String),
    ]
}

/// Any JSON value, nested a little.
fn any_value() -> impl Strategy<Value = Value> {
    leaf_value().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{0,6}", inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A value for a field: mostly a leaf, which is what the rules tell apart.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![4 => leaf_value(), 1 => any_value()]
}

/// A key: mostly a field name of some record, sometimes anything.
fn any_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(all_spellings()).prop_map(str::to_owned),
        1 => "\\PC{0,6}",
    ]
}

/// An object's text from its pairs, keeping keys given twice (which `Value` cannot hold).
fn object_text(pairs: &[(String, Value)]) -> String {
    let members: Vec<String> = pairs
        .iter()
        .map(|(key, value)| format!("{}:{value}", json!(key)))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// A record's valid body, changed: fields dropped, values replaced or added, keys repeated.
#[derive(Debug, Clone)]
struct Edit {
    record: Record,
    drop: Vec<prop::sample::Index>,
    set: Vec<(String, Value)>,
    repeat: Vec<prop::sample::Index>,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop::sample::select(RECORDS.to_vec()).prop_flat_map(|record| {
        let own: Vec<&'static str> = record.fields().iter().flat_map(Field::spellings).collect();
        let key = prop_oneof![
            4 => prop::sample::select(own).prop_map(str::to_owned),
            1 => any_key(),
        ];
        (
            prop::collection::vec(any::<prop::sample::Index>(), 0..2),
            prop::collection::vec((key, field_value()), 1..4),
            prop::collection::vec(any::<prop::sample::Index>(), 0..2),
        )
            .prop_map(move |(drop, set, repeat)| Edit {
                record,
                drop,
                set,
                repeat,
            })
    })
}

impl Edit {
    /// The pairs of the edited body, in order, keys possibly repeated.
    fn pairs(&self) -> Vec<(String, Value)> {
        let mut pairs: Vec<(String, Value)> = match self.record.valid() {
            Value::Object(map) => map.into_iter().collect(),
            _ => unreachable!(),
        };
        for index in &self.drop {
            if !pairs.is_empty() {
                pairs.remove(index.index(pairs.len()));
            }
        }
        for (key, value) in &self.set {
            match pairs.iter_mut().find(|(k, _)| k == key) {
                Some(pair) => pair.1 = value.clone(),
                None => pairs.push((key.clone(), value.clone())),
            }
        }
        for index in &self.repeat {
            if !pairs.is_empty() {
                let pair = pairs[index.index(pairs.len())].clone();
                pairs.push(pair);
            }
        }
        pairs
    }
}

/// The oracle: the record a body of these pairs must give, or `None` when it must be refused.
fn expected(record: Record, pairs: &[(String, Value)]) -> Option<Map<String, Value>> {
    let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return None; // a key given twice
    }
    let mut out = Map::new();
    for field in record.fields() {
        let given: Vec<&Value> = field
            .spellings()
            .filter_map(|name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v))
            .collect();
        let value = match given.as_slice() {
            [] if field.required => return None,
            [] => match field.rule {
                Rule::Object => json!({}),
                _ => json!(""),
            },
            [value] if obeys(field.rule, value) => (*value).clone(),
            _ => return None, // a wrong value, or two spellings at once
        };
        out.insert(field.name.to_owned(), value);
    }
    Some(out)
}

/// Whether two values are the same as the API sees them: numbers by value, the rest exactly.
fn same(rule: Rule, listed: &Value, sent: &Value) -> bool {
    match rule {
        Rule::Count => listed.as_f64() == sent.as_f64(),
        Rule::NonNegative | Rule::Number => listed.as_f64() == sent.as_f64(),
        _ => listed == sent,
    }
}

// ---------------------------------------------------------------- the properties

proptest! {
    #![proptest_config(config())]

    /// Any bytes at all: no panic, a 400 or a record that obeys the rules.
    #[test]
    fn arbitrary_bytes_never_panic_and_anything_accepted_obeys_the_rules(
        body in prop::collection::vec(any::<u8>(), 0..512)
    ) {
        check_every_record(&body)?;
    }

    /// Valid bodies with bytes overwritten, inserted or removed, which lands near every branch of
    /// the JSON grammar and of the field rules.
    #[test]
    fn mutated_valid_bodies_never_panic_and_anything_accepted_obeys_the_rules(
        record in prop::sample::select(RECORDS.to_vec()),
        mutations in prop::collection::vec(
            (any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut body = record.valid().to_string().into_bytes();
        for (at, byte, how) in mutations {
            let at = at.index(body.len() + 1);
            match how {
                0 if at < body.len() => body[at] = byte,
                1 => body.insert(at, byte),
                _ if at < body.len() => {
                    body.remove(at);
                }
                _ => {}
            }
        }
        check_every_record(&body)?;
    }

    /// Edited records against the oracle: accepted exactly when docs/api.md says so, with the values
    /// sent (under whichever spelling) and the documented defaults.
    #[test]
    fn edited_records_are_accepted_exactly_when_the_contract_allows_and_as_sent(edit in edit()) {
        let pairs = edit.pairs();
        let body = object_text(&pairs);
        let outcome = edit.record.parse(body.as_bytes());
        check_outcome(edit.record, &outcome)?;
        match (expected(edit.record, &pairs), outcome) {
            (None, Ok(listed)) => prop_assert!(false, "accepted {body}\nas {listed}"),
            (Some(_), Err(err)) => prop_assert!(false, "refused {body}: {err:?}"),
            (None, Err(_)) => {}
            (Some(want), Ok(listed)) => {
                for field in edit.record.fields() {
                    let (got, sent) = (&listed[field.name], &want[field.name]);
                    prop_assert!(
                        same(field.rule, got, sent),
                        "{}: sent {sent}, listed {got}", field.name
                    );
                }
            }
        }
    }

    /// Any other object over the records' field names: no panic, and the oracle's verdict.
    #[test]
    fn arbitrary_objects_over_the_field_names_get_the_oracles_verdict(
        pairs in prop::collection::vec((any_key(), any_value()), 0..16)
    ) {
        let body = object_text(&pairs);
        for record in RECORDS {
            let outcome = record.parse(body.as_bytes());
            check_outcome(record, &outcome)?;
            prop_assert_eq!(
                outcome.is_ok(),
                expected(record, &pairs).is_some(),
                "{:?} of {}", record, body
            );
        }
    }

    /// Times from their parts: accepted exactly when the date and clock are real, the fraction has
    /// 1 to 9 digits and the offset is within a day, naming the instant computed here.
    #[test]
    fn times_are_accepted_exactly_when_real_and_name_the_right_instant(
        (year, month, day) in (
            prop_oneof![
                0i64..10_000,
                // The edges of the calendar: year 0, and leap-year rules at the centuries.
                prop::sample::select(vec![0i64, 1, 1900, 2000, 2023, 2024, 2100, 9999]),
            ],
            0i64..14,
            0i64..33,
        ),
        (hour, minute, second) in (0i64..26, 0i64..62, 0i64..62),
        fraction in prop::option::of("[0-9]{0,11}"),
        offset in prop::option::of((any::<bool>(), 0i64..26, 0i64..62)),
        zulu in any::<bool>(),
        space in any::<bool>(),
    ) {
        let mut text = format!(
            "{year:04}-{month:02}-{day:02}{}{hour:02}:{minute:02}:{second:02}",
            if space { ' ' } else { 'T' }
        );
        if let Some(digits) = &fraction {
            text.push('.');
            text.push_str(digits);
        }
        let offset_seconds = match offset {
            Some((negative, h, m)) => {
                text.push_str(&format!("{}{h:02}:{m:02}", if negative { '-' } else { '+' }));
                let seconds = h * 3600 + m * 60;
                Some((if negative { -seconds } else { seconds }, h < 24 && m < 60))
            }
            None if zulu => {
                text.push('Z');
                Some((0, true))
            }
            None => Some((0, true)),
        };
        let (offset_seconds, offset_ok) = offset_seconds.unwrap();
        let real = year >= 1
            && (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && hour < 24 && minute < 60 && second < 60
            && fraction.as_ref().is_none_or(|d| (1..=9).contains(&d.len()))
            && offset_ok;
        let parsed = parse_iso8601(&text);
        prop_assert_eq!(parsed.is_ok(), real, "{} gave {:?}", text, parsed);
        if let Ok(micros) = parsed {
            let seconds = days_from_civil(year, month, day) * 86_400
                + hour * 3600 + minute * 60 + second - offset_seconds;
            let fraction_micros = fraction
                .map(|d| format!("{d:0<9}")[..6].parse::<i64>().unwrap())
                .unwrap_or(0);
            prop_assert_eq!(micros, seconds * 1_000_000 + fraction_micros, "{}", text);
        }
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
