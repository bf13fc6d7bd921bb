//! docs/api.md's record rules as data, for the tests that check them from outside: each field of a
//! metric, an execution context and a session with its input spellings, what it must be, and
//! whether it may be left out. `input` derives its bad bodies from these tables and
//! `fuzz_parser` its oracle.

use monitor_server::models::parse_iso8601;
use serde_json::Value;

/// What a field must be.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// A string, non-empty when `non_empty`, of at most `max` characters.
    Text { non_empty: bool, max: usize },
    /// An ISO 8601 time as `datetime.isoformat()` writes it, naming a real instant.
    Time,
    /// A number ≥ 0.
    NonNegative,
    /// Any number.
    Number,
    /// An integer ≥ 0; an integral float counts as one.
    Count,
    /// A JSON object.
    Object,
}

/// One field: its output name, its other input spellings, its rule, and whether it is required.
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub rule: Rule,
    pub required: bool,
}

impl Field {
    /// Every spelling a client may use, the output name first.
    pub fn spellings(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }
}

const fn field(name: &'static str, rule: Rule) -> Field {
    Field {
        name,
        aliases: &[],
        rule,
        required: true,
    }
}

const fn text(non_empty: bool, max: usize) -> Rule {
    Rule::Text { non_empty, max }
}

/// A metric (docs/api.md "Metric").
pub const METRIC_FIELDS: &[Field] = &[
    field("session_h", text(true, 128)),
    Field {
        aliases: &["ctx_h"],
        ..field("context_h", text(true, 128))
    },
    field("item_start_time", Rule::Time),
    // Empty for a module-scope metric of a test module in no package, as pytest-monitor sends it.
    field("item_path", text(false, 4096)),
    field("item", text(true, 2048)),
    field("item_variant", text(false, 2048)),
    field("item_fs_loc", text(false, 2048)),
    field("kind", text(true, 64)),
    field("component", text(false, 512)),
    Field {
        aliases: &["wall_time"],
        ..field("total_time", Rule::NonNegative)
    },
    field("user_time", Rule::NonNegative),
    Field {
        aliases: &["krnl_time"],
        ..field("kernel_time", Rule::NonNegative)
    },
    field("cpu_usage", Rule::NonNegative),
    field("mem_usage", Rule::Number),
];

/// An execution context (docs/api.md "Execution context"); free text is bounded at 4096 characters.
pub const CONTEXT_FIELDS: &[Field] = &[
    field("h", text(true, 128)),
    field("cpu_count", Rule::Count),
    field("cpu_frequency", Rule::NonNegative),
    field("cpu_type", text(false, 4096)),
    Field {
        required: false,
        ..field("cpu_vendor", text(false, 4096))
    },
    field("ram_total", Rule::Count),
    field("machine_node", text(false, 4096)),
    field("machine_type", text(false, 4096)),
    field("machine_arch", text(false, 4096)),
    field("system_info", text(false, 4096)),
    field("python_info", text(false, 4096)),
];

/// A session (docs/api.md "Session").
pub const SESSION_FIELDS: &[Field] = &[
    field("session_h", text(true, 128)),
    field("run_date", Rule::Time),
    field("scm_ref", text(false, 4096)),
    Field {
        required: false,
        ..field("description", Rule::Object)
    },
];

/// Whether `value` obeys `rule`.
pub fn obeys(rule: Rule, value: &Value) -> bool {
    match (rule, value) {
        (Rule::Text { non_empty, max }, Value::String(text)) => {
            !(non_empty && text.is_empty()) && text.chars().count() <= max
        }
        (Rule::Time, Value::String(text)) => parse_iso8601(text).is_ok(),
        (Rule::NonNegative, Value::Number(n)) => n.as_f64().is_some_and(|f| f >= 0.0),
        (Rule::Number, Value::Number(_)) => true,
        (Rule::Count, Value::Number(n)) => match n.as_i64() {
            Some(i) => i >= 0,
            // Integral floats count, within the range where a float still holds every integer.
            None => n
                .as_f64()
                .is_some_and(|f| f.fract() == 0.0 && (0.0..9.0e15).contains(&f)),
        },
        (Rule::Object, Value::Object(_)) => true,
        _ => false,
    }
}
