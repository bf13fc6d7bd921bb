//! The records the API stores and lists — metrics, execution contexts and sessions — and the
//! parsing that turns a request body into one of them.
//!
//! Parsing happens once, at the edge: a body becomes a [`Metric`], [`Context`] or [`Session`] only
//! if every rule of API.md holds, so nothing invalid ever reaches SQL. All faults of a body are
//! reported together, each under the field name the client used.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{ApiError, FieldErrors};

/// A JSON object as the client sent it, with the keys that appeared more than once.
///
/// serde_json keeps the last of two equal keys without a word; API.md makes a key given twice a
/// 400, so the object is read with a visitor of our own that notices.
///
/// The fields are a plain list: a record has about fifteen, which a linear search finds faster
/// than a hash map hashes a key (serde_json's map hashes every key with SipHash, a tenth of what
/// a POST cost the server before).
#[derive(Debug, Default)]
pub struct JsonObject {
    fields: Vec<(String, Value)>,
    duplicates: Vec<String>,
}

/// Where `key` is among `fields`.
fn index_of(fields: &[(String, Value)], key: &str) -> Option<usize> {
    fields.iter().position(|(name, _)| name == key)
}

impl JsonObject {
    /// Parses a request body, which must be exactly one JSON object.
    pub fn from_slice(body: &[u8]) -> Result<Self, ApiError> {
        serde_json::from_slice(body).map_err(|err| {
            let message = if err.is_data() {
                format!("The request body must be a JSON object: {err}.")
            } else {
                format!("The request body is not valid JSON: {err}.")
            };
            ApiError::bad_request(message)
        })
    }
}

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = JsonObject;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonObject, A::Error> {
                let mut object = JsonObject::default();
                while let Some(key) = map.next_key::<String>()? {
                    let value: Value = map.next_value()?;
                    if index_of(&object.fields, &key).is_some() {
                        if !object.duplicates.contains(&key) {
                            object.duplicates.push(key);
                        }
                    } else {
                        object.fields.push((key, value));
                    }
                }
                Ok(object)
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Takes typed fields out of a [`JsonObject`], collecting every fault instead of stopping at the
/// first, so that one 400 tells the client all that is wrong with its body.
struct FieldReader {
    fields: Vec<(String, Value)>,
    errors: FieldErrors,
}

/// The largest length, in characters, of the free-text fields API.md gives no bound for.
const FREE_TEXT_MAX: usize = 4096;

impl FieldReader {
    fn new(object: JsonObject) -> Self {
        let mut errors = FieldErrors::new();
        for key in object.duplicates {
            errors.insert(key, "is given more than once".into());
        }
        FieldReader {
            fields: object.fields,
            errors,
        }
    }

    fn fail(&mut self, field: &str, reason: impl Into<String>) {
        self.errors
            .entry(field.to_owned())
            .or_insert_with(|| reason.into());
    }

    /// Removes the field known by any of `names` (the output name first, then its aliases) and
    /// returns the spelling found with the value. `None` when absent or given under two spellings.
    fn take(&mut self, names: &[&'static str], required: bool) -> Option<(&'static str, Value)> {
        let Some(first) = names
            .iter()
            .position(|name| index_of(&self.fields, name).is_some())
        else {
            if required {
                self.fail(names[0], "is required");
            }
            return None;
        };
        let name = names[first];
        // Empty, and so not allocated, unless the client used two spellings.
        let others: Vec<&str> = names[first + 1..]
            .iter()
            .copied()
            .filter(|other| index_of(&self.fields, other).is_some())
            .collect();
        if !others.is_empty() {
            let reason = format!(
                "is given under two spellings: {name} and {}",
                others.join(", ")
            );
            self.fail(name, reason);
            return None;
        }
        let index = index_of(&self.fields, name)?;
        Some((name, self.fields.swap_remove(index).1))
    }

    /// A string of at most `max` characters, non-empty when `non_empty`.
    fn string(&mut self, names: &[&'static str], non_empty: bool, max: usize) -> String {
        self.optional_string(names, non_empty, max, true)
            .unwrap_or_default()
    }

    fn optional_string(
        &mut self,
        names: &[&'static str],
        non_empty: bool,
        max: usize,
        required: bool,
    ) -> Option<String> {
        let (name, value) = self.take(names, required)?;
        match value {
            Value::String(text) if non_empty && text.is_empty() => {
                self.fail(name, "must not be empty");
                None
            }
            Value::String(text) if text.chars().count() > max => {
                self.fail(name, format!("must be at most {max} characters long"));
                None
            }
            Value::String(text) => Some(text),
            other => {
                self.fail(name, format!("must be a string, not {}", kind_of(&other)));
                None
            }
        }
    }

    /// Any JSON number; at least `min` when given.
    fn float(&mut self, names: &[&'static str], min: Option<f64>) -> f64 {
        let Some((name, value)) = self.take(names, true) else {
            return 0.0;
        };
        match value.as_f64() {
            Some(number) if min.is_some_and(|min| number < min) => {
                self.fail(
                    name,
                    format!("must be at least {}", min.unwrap_or_default()),
                );
                0.0
            }
            Some(number) => number,
            None => {
                self.fail(name, format!("must be a number, not {}", kind_of(&value)));
                0.0
            }
        }
    }

    /// A non-negative integer; an integral float such as `4.0` counts as one.
    fn count(&mut self, names: &[&'static str]) -> i64 {
        let Some((name, value)) = self.take(names, true) else {
            return 0;
        };
        let number = match &value {
            Value::Number(number) => number.as_i64().or_else(|| {
                number
                    .as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            }),
            _ => None,
        };
        match number {
            Some(n) if n >= 0 => n,
            Some(_) => {
                self.fail(name, "must be at least 0");
                0
            }
            None => {
                self.fail(name, format!("must be an integer, not {}", kind_of(&value)));
                0
            }
        }
    }

    /// An ISO 8601 time as Python's `isoformat()` writes it, kept exactly as sent, with the
    /// instant it names in microseconds since 1970 UTC.
    fn time(&mut self, names: &[&'static str]) -> (String, i64) {
        let Some((name, value)) = self.take(names, true) else {
            return (String::new(), 0);
        };
        let Value::String(text) = value else {
            let reason = format!("must be an ISO 8601 string, not {}", kind_of(&value));
            self.fail(name, reason);
            return (String::new(), 0);
        };
        match parse_iso8601(&text) {
            Ok(micros) => (text, micros),
            Err(reason) => {
                self.fail(name, reason);
                (String::new(), 0)
            }
        }
    }

    /// A JSON object; `{}` when absent.
    fn object(&mut self, names: &[&'static str]) -> Map<String, Value> {
        match self.take(names, false) {
            None => Map::new(),
            Some((_, Value::Object(map))) => map,
            Some((name, other)) => {
                self.fail(
                    name,
                    format!("must be a JSON object, not {}", kind_of(&other)),
                );
                Map::new()
            }
        }
    }

    /// Turns the collected faults into one 400, naming the record.
    fn finish<T>(self, record: &str, value: T) -> Result<T, ApiError> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ApiError::BadRequest {
                message: format!(
                    "The {record} is not valid; see `errors` for each field at fault."
                ),
                errors: self.errors,
            })
        }
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

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
            item_path: r.string(&["item_path"], true, 4096),
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

/// Parses a batch of metrics sent as newline-delimited JSON (`application/x-ndjson`): one
/// metric object per line, each read exactly as a single POST's body ([`Metric::from_json`]).
/// Lines that are empty or hold only whitespace are skipped (a trailing newline, a blank line
/// between groups); a `\r` before the newline is whitespace too.
///
/// All or nothing: the first line at fault makes the whole batch a 400 whose message starts with
/// `line N: ` (lines numbered from 1, blank ones included, as an editor shows them; `body`'s first
/// line is `first_line`, so that a batch may be parsed in pieces) and whose `errors` holds
/// `"line": "N"` beside that line's own field errors.
pub fn metrics_from_ndjson(body: &[u8], first_line: usize) -> Result<Vec<Metric>, ApiError> {
    let lines = line_ends(body) + 1;
    let mut metrics = Vec::with_capacity(lines);
    for (i, line) in body.split(|&byte| byte == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let metric = JsonObject::from_slice(line)
            .and_then(Metric::from_json)
            .map_err(|err| at_line(first_line + i, err))?;
        metrics.push(metric);
    }
    Ok(metrics)
}

/// How many lines of newline-delimited `text` end in it (its `\n` bytes).
pub fn line_ends(text: &[u8]) -> usize {
    text.iter().filter(|&&byte| byte == b'\n').count()
}

/// `err`, found on line `number` of a batch: its message prefixed with the line, and the line
/// among its `errors`.
fn at_line(number: usize, err: ApiError) -> ApiError {
    match err {
        ApiError::BadRequest {
            message,
            mut errors,
        } => {
            // A line is one metric, so the single POST's "request body" is the line here.
            let message = message.replacen("The request body", "The line", 1);
            errors.insert("line".into(), number.to_string());
            ApiError::BadRequest {
                message: format!("line {number}: {message}"),
                errors,
            }
        }
        other => other,
    }
}

/// The machine a session ran on, identified by pytest-monitor's hash `h`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Context {
    /// pytest-monitor's hash of the fields below.
    pub h: String,
    /// Number of CPUs.
    pub cpu_count: i64,
    /// CPU frequency in MHz.
    pub cpu_frequency: f64,
    /// CPU model.
    pub cpu_type: String,
    /// CPU vendor; empty when the plugin could not tell.
    pub cpu_vendor: String,
    /// Memory in MB.
    pub ram_total: i64,
    /// Host name.
    pub machine_node: String,
    /// Machine type, such as `x86_64`.
    pub machine_type: String,
    /// Architecture, such as `64bit`.
    pub machine_arch: String,
    /// Operating system and release.
    pub system_info: String,
    /// Python version string.
    pub python_info: String,
}

impl Context {
    /// Builds a context from a request body.
    pub fn from_json(object: JsonObject) -> Result<Self, ApiError> {
        let mut r = FieldReader::new(object);
        let context = Context {
            h: r.string(&["h"], true, 128),
            cpu_count: r.count(&["cpu_count"]),
            cpu_frequency: r.float(&["cpu_frequency"], Some(0.0)),
            cpu_type: r.string(&["cpu_type"], false, FREE_TEXT_MAX),
            cpu_vendor: r
                .optional_string(&["cpu_vendor"], false, FREE_TEXT_MAX, false)
                .unwrap_or_default(),
            ram_total: r.count(&["ram_total"]),
            machine_node: r.string(&["machine_node"], false, FREE_TEXT_MAX),
            machine_type: r.string(&["machine_type"], false, FREE_TEXT_MAX),
            machine_arch: r.string(&["machine_arch"], false, FREE_TEXT_MAX),
            system_info: r.string(&["system_info"], false, FREE_TEXT_MAX),
            python_info: r.string(&["python_info"], false, FREE_TEXT_MAX),
        };
        r.finish("execution context", context)
    }
}

/// One pytest run: when, at which SCM revision, and its tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// pytest-monitor's hash of the run.
    pub session_h: String,
    /// When the run started, exactly as sent.
    pub run_date: String,
    /// SCM revision the run tested; may be empty.
    pub scm_ref: String,
    /// Tags: `description`, each `--tag k=v`, and CI facts such as `pipeline_branch`.
    pub description: Map<String, Value>,
}

/// One tag of a session, as listed in its `tags` array.
#[derive(Debug, Serialize)]
pub struct Tag<'a> {
    /// The tag's key in `description`.
    pub name: &'a str,
    /// The tag's value; a value that is not a string is given as its JSON text.
    pub value: String,
}

impl Session {
    /// Builds a session from a request body; a missing `description` means no tags.
    pub fn from_json(object: JsonObject) -> Result<Self, ApiError> {
        let mut r = FieldReader::new(object);
        let session = Session {
            session_h: r.string(&["session_h"], true, 128),
            run_date: r.time(&["run_date"]).0,
            scm_ref: r.string(&["scm_ref"], false, FREE_TEXT_MAX),
            description: r.object(&["description"]),
        };
        r.finish("session", session)
    }

    /// The session's tags in the order they were sent.
    pub fn tags(&self) -> impl Iterator<Item = Tag<'_>> {
        self.description.iter().map(|(name, value)| Tag {
            name,
            value: tag_value(value),
        })
    }
}

/// The text a tag value is listed and searched by.
pub fn tag_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

impl Serialize for Session {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Session", 5)?;
        s.serialize_field("session_h", &self.session_h)?;
        s.serialize_field("run_date", &self.run_date)?;
        s.serialize_field("scm_ref", &self.scm_ref)?;
        s.serialize_field("description", &self.description)?;
        s.serialize_field("tags", &self.tags().collect::<Vec<_>>())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_key_given_twice_is_reported() {
        let object = JsonObject::from_slice(br#"{"h": "a", "h": "b"}"#).unwrap();
        assert_eq!(object.duplicates, vec!["h".to_owned()]);
    }
}
