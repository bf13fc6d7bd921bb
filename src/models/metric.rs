//! A metric: one measured test item, read from a request body, and written as the API lists it —
//! by serde, or by hand straight from SQLite's rows ([`MetricRecord::write_json`]).

use serde::Serialize;

use crate::error::ApiError;
use crate::models::json::{FieldReader, JsonObject};

/// One measured test item, as pytest-monitor reports it and as the API lists it.
///
/// It serialises as its [`MetricRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The session (pytest run) the test ran in.
    pub session_h: String,
    /// The execution context (machine) the test ran on; input alias `ctx_h`.
    pub context_h: String,
    /// When the test started, exactly as sent.
    pub item_start_time: String,
    /// `item_start_time` in microseconds since 1970 UTC, for ranges and sorting; not listed.
    pub start_us: i64,
    /// Python import path of the test's module.
    pub item_path: String,
    /// Test name.
    pub item: String,
    /// Test name with its parametrization.
    pub item_variant: String,
    /// File path of the module, relative to the pytest root.
    pub item_fs_loc: String,
    /// `function`, `module`, `class` or `package`.
    pub kind: String,
    /// Component the test belongs to; may be empty.
    pub component: String,
    /// Wall time in seconds; input alias `wall_time`.
    pub total_time: f64,
    /// CPU time in user space, in seconds.
    pub user_time: f64,
    /// CPU time in kernel mode, in seconds; input alias `krnl_time`.
    pub kernel_time: f64,
    /// (user + kernel) / wall; may exceed 1.
    pub cpu_usage: f64,
    /// Memory in MB against the session's start; may be negative.
    pub mem_usage: f64,
}

/// A metric as the API lists it, its text borrowed: the one place the listed fields and their
/// order are written down (each field means what [`Metric`]'s does). [`Metric`] serialises
/// through it, and a page of metrics is written through it ([`MetricRecord::write_json`])
/// straight from SQLite's rows, no string copied on the way.
#[derive(Debug, Serialize)]
pub struct MetricRecord<'a> {
    pub session_h: &'a str,
    pub context_h: &'a str,
    pub item_start_time: &'a str,
    pub item_path: &'a str,
    pub item: &'a str,
    pub item_variant: &'a str,
    pub item_fs_loc: &'a str,
    pub kind: &'a str,
    pub component: &'a str,
    pub total_time: f64,
    pub user_time: f64,
    pub kernel_time: f64,
    pub cpu_usage: f64,
    pub mem_usage: f64,
}

impl MetricRecord<'_> {
    /// Appends the record's JSON to `out`: exactly the bytes serde_json writes for it, written
    /// with a few large copies instead of serde's calls per key and value, since a page of
    /// metrics is hundreds of records. Numbers go through serde_json itself, so that they are
    /// spelt as it spells them (the shortest text that reads back as the same `f64`).
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        // Field by field rather than in a loop: every key is then a copy of known length.
        out.extend_from_slice(b"{\"session_h\":");
        write_json_string(out, self.session_h);
        out.extend_from_slice(b",\"context_h\":");
        write_json_string(out, self.context_h);
        out.extend_from_slice(b",\"item_start_time\":");
        write_json_string(out, self.item_start_time);
        out.extend_from_slice(b",\"item_path\":");
        write_json_string(out, self.item_path);
        out.extend_from_slice(b",\"item\":");
        write_json_string(out, self.item);
        out.extend_from_slice(b",\"item_variant\":");
        write_json_string(out, self.item_variant);
        out.extend_from_slice(b",\"item_fs_loc\":");
        write_json_string(out, self.item_fs_loc);
        out.extend_from_slice(b",\"kind\":");
        write_json_string(out, self.kind);
        out.extend_from_slice(b",\"component\":");
        write_json_string(out, self.component);
        out.extend_from_slice(b",\"total_time\":");
        serde_json::to_writer(&mut *out, &self.total_time)?;
        out.extend_from_slice(b",\"user_time\":");
        serde_json::to_writer(&mut *out, &self.user_time)?;
        out.extend_from_slice(b",\"kernel_time\":");
        serde_json::to_writer(&mut *out, &self.kernel_time)?;
        out.extend_from_slice(b",\"cpu_usage\":");
        serde_json::to_writer(&mut *out, &self.cpu_usage)?;
        out.extend_from_slice(b",\"mem_usage\":");
        serde_json::to_writer(&mut *out, &self.mem_usage)?;
        out.push(b'}');
        Ok(())
    }
}

/// Appends `text` as a JSON string, escaped as serde_json escapes: `"` and `\\` with a
/// backslash, the control characters that have one by their short escape, the others as
/// `\u00xx` (lower-case hex); everything else, non-ASCII included, as it is.
fn write_json_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut unicode = *b"\\u0000";
    // bytes[..plain] are written already.
    let mut plain = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => {
                unicode[4] = HEX[usize::from(byte >> 4)];
                unicode[5] = HEX[usize::from(byte & 0xf)];
                &unicode
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        out.extend_from_slice(escape);
        plain = i + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

impl Serialize for Metric {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.record().serialize(serializer)
    }
}

impl Metric {
    /// The metric as listed (`start_us` is internal and not listed).
    pub fn record(&self) -> MetricRecord<'_> {
        MetricRecord {
            session_h: &self.session_h,
            context_h: &self.context_h,
            item_start_time: &self.item_start_time,
            item_path: &self.item_path,
            item: &self.item,
            item_variant: &self.item_variant,
            item_fs_loc: &self.item_fs_loc,
            kind: &self.kind,
            component: &self.component,
            total_time: self.total_time,
            user_time: self.user_time,
            kernel_time: self.kernel_time,
            cpu_usage: self.cpu_usage,
            mem_usage: self.mem_usage,
        }
    }

    /// Builds a metric from a request body, accepting both the seed's and pytest-monitor's spellings.
    pub fn from_json(object: JsonObject) -> Result<Self, ApiError> {
        let mut r = FieldReader::new(object);
        let session_h = r.string(&["session_h"], true, 128);
        let context_h = r.string(&["context_h", "ctx_h"], true, 128);
        let (item_start_time, start_us) = r.time(&["item_start_time"]);
        let metric = Metric {
            session_h,
            context_h,
            item_start_time,
            start_us,
            // Empty for a module-scope metric of a test module outside any package: pytest-monitor
            // 1.6.6 strips the module's own name from its import path, leaving nothing.
            item_path: r.string(&["item_path"], false, 4096),
            item: r.string(&["item"], true, 2048),
            item_variant: r.string(&["item_variant"], false, 2048),
            item_fs_loc: r.string(&["item_fs_loc"], false, 2048),
            kind: r.string(&["kind"], true, 64),
            component: r.string(&["component"], false, 512),
            total_time: r.float(&["total_time", "wall_time"], Some(0.0)),
            user_time: r.float(&["user_time"], Some(0.0)),
            kernel_time: r.float(&["kernel_time", "krnl_time"], Some(0.0)),
            cpu_usage: r.float(&["cpu_usage"], Some(0.0)),
            mem_usage: r.float(&["mem_usage"], None),
        };
        r.finish("metric", metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(texts: &'a [String; 9], numbers: [f64; 5]) -> MetricRecord<'a> {
        MetricRecord {
            session_h: &texts[0],
            context_h: &texts[1],
            item_start_time: &texts[2],
            item_path: &texts[3],
            item: &texts[4],
            item_variant: &texts[5],
            item_fs_loc: &texts[6],
            kind: &texts[7],
            component: &texts[8],
            total_time: numbers[0],
            user_time: numbers[1],
            kernel_time: numbers[2],
            cpu_usage: numbers[3],
            mem_usage: numbers[4],
        }
    }

    /// What serde_json writes for a record, which `write_json` must write byte for byte.
    fn by_serde(record: &MetricRecord<'_>) -> String {
        serde_json::to_string(record).unwrap()
    }

    fn by_hand(record: &MetricRecord<'_>) -> String {
        let mut out = Vec::new();
        record.write_json(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_record_is_written_by_hand_exactly_as_serde_json_writes_it() {
        let every_control: String = (0u8..0x20).map(char::from).collect();
        let texts = [
            "plain".to_owned(),
            String::new(),
            "quote \" and backslash \\ and slash /".to_owned(),
            every_control,
            "\u{7f} del, é, 漢字, 🦀 and \u{2028}".to_owned(),
            "\"\"\\".to_owned(),
            "tests/a b.py".to_owned(),
            "function".to_owned(),
            "\n".to_owned(),
        ];
        for numbers in [
            [0.0, -0.0, 1.0, -1.5, 1e21],
            [0.1, 1e-7, 123456789.125, 5e-324, f64::MAX],
            [
                f64::MIN_POSITIVE,
                1e15,
                1e16,
                0.30000000000000004,
                -2.5e-308,
            ],
            [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 3.0, 1e300],
        ] {
            let record = record(&texts, numbers);
            assert_eq!(by_hand(&record), by_serde(&record));
        }
    }

    proptest::proptest! {
        #[test]
        fn any_record_is_written_by_hand_exactly_as_serde_json_writes_it(
            texts in proptest::array::uniform9(proptest::prelude::any::<String>()),
            bits in proptest::array::uniform5(proptest::prelude::any::<u64>()),
        ) {
            // Every f64 there is, NaN and infinities included, from its bits.
            let record = record(&texts, bits.map(f64::from_bits));
            proptest::prop_assert_eq!(by_hand(&record), by_serde(&record));
        }
    }

    #[test]
    fn a_metric_serialises_as_its_record() {
        let texts: [String; 9] = std::array::from_fn(|i| format!("t{i}"));
        let metric = Metric {
            session_h: texts[0].clone(),
            context_h: texts[1].clone(),
            item_start_time: texts[2].clone(),
            start_us: 7,
            item_path: texts[3].clone(),
            item: texts[4].clone(),
            item_variant: texts[5].clone(),
            item_fs_loc: texts[6].clone(),
            kind: texts[7].clone(),
            component: texts[8].clone(),
            total_time: 1.0,
            user_time: 0.5,
            kernel_time: 0.25,
            cpu_usage: 0.75,
            mem_usage: -2.0,
        };
        assert_eq!(
            serde_json::to_string(&metric).unwrap(),
            by_hand(&record(&texts, [1.0, 0.5, 0.25, 0.75, -2.0]))
        );
    }
}
