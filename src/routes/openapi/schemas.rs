//! The schemas of the OpenAPI document: the stored records, the comparison and the dashboard's
//! aggregates.

use serde_json::{json, Value};

use crate::compare::Verdict;
use crate::routes::openapi::schema_ref;

/// The record schemas, with those of the comparison and the dashboard.
pub fn all() -> Value {
    let mut all = records();
    let status = json!({"Status": {"type": "object", "required": ["status"], "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "message": {"type": "string", "description": "Why the server is not ready (503 only)."}
    }}});
    for more in [comparison(), dashboard(), changes(), status] {
        if let (Value::Object(all), Value::Object(more)) = (&mut all, more) {
            all.extend(more);
        }
    }
    all
}

/// The stored records, as answered and as sent.
fn records() -> Value {
    let string = |description: &str| json!({"type": "string", "description": description});
    let number = |description: &str| json!({"type": "number", "description": description});
    let metric_properties = json!({
        "session_h": {"type": "string", "minLength": 1, "maxLength": 128, "description": "Session hash."},
        "context_h": {"type": "string", "minLength": 1, "maxLength": 128, "description": "Execution context hash (input alias ctx_h)."},
        "item_start_time": {"type": "string", "description": "ISO 8601 start time, returned exactly as sent."},
        "item_path": {"type": "string", "minLength": 1, "maxLength": 4096, "description": "Python import path of the module."},
        "item": {"type": "string", "minLength": 1, "maxLength": 2048, "description": "Test name."},
        "item_variant": {"type": "string", "maxLength": 2048, "description": "Test name with parametrization."},
        "item_fs_loc": {"type": "string", "maxLength": 2048, "description": "Module file relative to the pytest root."},
        "kind": {"type": "string", "minLength": 1, "maxLength": 64, "description": "function, class, module or package."},
        "component": {"type": "string", "maxLength": 512, "description": "Component; may be empty."},
        "total_time": {"type": "number", "minimum": 0, "description": "Wall time in seconds (input alias wall_time)."},
        "user_time": {"type": "number", "minimum": 0, "description": "User CPU time in seconds."},
        "kernel_time": {"type": "number", "minimum": 0, "description": "Kernel CPU time in seconds (input alias krnl_time)."},
        "cpu_usage": {"type": "number", "minimum": 0, "description": "(user + kernel) / wall; may exceed 1."},
        "mem_usage": {"type": "number", "description": "Memory in MB against the session's start; may be negative."}
    });
    let metric_fields: Vec<&str> = metric_properties
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut metric_input = metric_properties.clone();
    for (alias, of) in [
        ("ctx_h", "context_h"),
        ("wall_time", "total_time"),
        ("krnl_time", "kernel_time"),
    ] {
        metric_input[alias] =
            json!({"description": format!("Alias of {of}; give one spelling only.")});
    }
    let context_properties = json!({
        "h": {"type": "string", "minLength": 1, "maxLength": 128, "description": "Context hash."},
        "cpu_count": {"type": "integer", "minimum": 0},
        "cpu_frequency": number("MHz."),
        "cpu_type": string("CPU model."),
        "cpu_vendor": string("CPU vendor; optional on input, default empty."),
        "ram_total": {"type": "integer", "minimum": 0, "description": "MB."},
        "machine_node": string("Host name."),
        "machine_type": string("Machine type."),
        "machine_arch": string("Architecture."),
        "system_info": string("Operating system."),
        "python_info": string("Python version.")
    });
    let context_required = [
        "h",
        "cpu_count",
        "cpu_frequency",
        "cpu_type",
        "ram_total",
        "machine_node",
        "machine_type",
        "machine_arch",
        "system_info",
        "python_info",
    ];
    json!({
        "Metric": {"type": "object", "properties": metric_properties, "required": metric_fields},
        "MetricInput": {"type": "object", "properties": metric_input,
            "description": "A metric; both the seed's spelling (ctx_h, wall_time, krnl_time) and pytest-monitor's are accepted. Unknown fields are ignored."},
        "Context": {"type": "object", "properties": context_properties, "required": context_required},
        "ContextInput": {"type": "object", "properties": context_properties, "required": context_required},
        "Session": {"type": "object", "required": ["session_h", "run_date", "scm_ref", "description", "tags"],
            "properties": {
                "session_h": string("Session hash."),
                "run_date": string("ISO 8601, returned exactly as sent."),
                "scm_ref": string("SCM revision; may be empty."),
                "description": {"type": "object", "description": "Tags as sent."},
                "tags": {"type": "array", "items": schema_ref("Tag")}
            }},
        "Deleted": {"type": "object", "required": ["session_h", "deleted"],
            "properties": {
                "session_h": string("The hash deleted."),
                "deleted": {"type": "object", "required": ["sessions", "metrics"],
                    "properties": {
                        "sessions": {"type": "integer", "minimum": 0, "description": "Sessions removed (0 or 1), with their tags."},
                        "metrics": {"type": "integer", "minimum": 0, "description": "Metrics removed."}
                    }}
            }},
        "SessionInput": {"type": "object", "required": ["session_h", "run_date", "scm_ref"],
            "properties": {
                "session_h": {"type": "string", "minLength": 1, "maxLength": 128},
                "run_date": string("ISO 8601."),
                "scm_ref": string("SCM revision; may be empty."),
                "description": {"type": "object", "description": "Tags: description, --tag k=v, pipeline_branch, pipeline_build_no, __ci__."}
            }},
        "Tag": {"type": "object", "required": ["name", "value"],
            "properties": {"name": string("Tag name."), "value": string("Tag value (JSON text when not a string).")}},
        "Count": {"type": "object", "required": ["count"], "properties": {"count": {"type": "integer"}}},
        "Error": {"type": "object", "required": ["message"], "properties": {
            "message": string("One sentence."),
            "errors": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": "Field (or parameter) at fault: reason."}
        }}
    })
}

/// The answer of `/compare`.
fn comparison() -> Value {
    let number_or_null =
        |description: &str| json!({"type": "number", "nullable": true, "description": description});
    let verdicts: Vec<&str> = Verdict::ALL.iter().map(|v| v.name()).collect();
    json!({
        "Comparison": {"type": "object",
            "required": ["baseline", "candidate", "thresholds", "summary", "notes", "tests"],
            "properties": {
                "baseline": {"$ref": "#/components/schemas/ComparisonSide"},
                "candidate": {"$ref": "#/components/schemas/ComparisonSide"},
                "thresholds": {"type": "object", "description": "The thresholds applied (the query's, or the defaults).",
                    "properties": {
                        "max_slowdown": {"type": "number"}, "max_memory_growth": {"type": "number"},
                        "max_cpu_slowdown": {"type": "number", "nullable": true},
                        "min_time": {"type": "number"}, "min_memory": {"type": "number"},
                        "sigma": {"type": "number"}, "ignore_context": {"type": "boolean"}}},
                "summary": {"type": "object", "description": "How many tests got each verdict (whatever `only` lists).",
                    "properties": {
                        "regressed": {"type": "integer"}, "improved": {"type": "integer"},
                        "missing": {"type": "integer"}, "new": {"type": "integer"},
                        "unchanged": {"type": "integer"}, "total": {"type": "integer"}}},
                "notes": {"type": "array", "items": {"type": "string"},
                    "description": "Remarks on the comparison itself, such as sides that share no machine."},
                "tests": {"type": "array", "items": {"$ref": "#/components/schemas/ComparedTest"},
                    "description": "Regressed (largest relative change first), improved, missing, new, unchanged."}
            }},
        "ComparisonSide": {"type": "object", "required": ["spec", "runs", "run_names", "sessions"],
            "properties": {
                "spec": {"type": "string", "description": "The side as written."},
                "runs": {"type": "integer", "description": "Runs: pipeline builds, or SCM references of untagged sessions."},
                "run_names": {"type": "array", "items": {"type": "string"}},
                "sessions": {"type": "array", "items": {"type": "string"}, "description": "Session hashes."}
            }},
        "ComparedTest": {"type": "object",
            "required": ["context_h", "item_path", "item_variant", "item", "item_fs_loc", "component",
                         "verdict", "reasons", "baseline_runs", "candidate_runs", "total_time", "cpu_time", "mem_usage"],
            "properties": {
                "context_h": {"type": "string", "nullable": true, "description": "The machine; null with ignore_context=true."},
                "item_path": {"type": "string"}, "item_variant": {"type": "string"},
                "item": {"type": "string"}, "item_fs_loc": {"type": "string"}, "component": {"type": "string"},
                "verdict": {"type": "string", "enum": verdicts},
                "reasons": {"type": "array", "items": {"type": "string"}},
                "baseline_runs": {"type": "integer"}, "candidate_runs": {"type": "integer"},
                "total_time": {"$ref": "#/components/schemas/MetricChange"},
                "cpu_time": {"$ref": "#/components/schemas/MetricChange"},
                "mem_usage": {"$ref": "#/components/schemas/MetricChange"}
            }},
        "MetricChange": {"type": "object",
            "required": ["baseline", "candidate", "change", "change_percent"],
            "properties": {
                "baseline": number_or_null("Mean over the baseline's runs; null for a new test."),
                "candidate": number_or_null("Mean over the candidate's runs; null for a missing test."),
                "change": number_or_null("candidate - baseline."),
                "change_percent": number_or_null("The change in percent of the baseline; null when the baseline is 0."),
                "baseline_sd": {"type": "number", "description": "Standard deviation over the baseline's runs, with 2 or more."},
                "verdict": {"type": "string", "enum": ["regressed", "improved", "unchanged"],
                    "description": "This metric's verdict, when it is judged."}
            }}
    })
}

/// The answers of the dashboard's routes.
fn dashboard() -> Value {
    let string = |d: &str| json!({"type": "string", "description": d});
    let nullable = |d: &str| json!({"type": "string", "nullable": true, "description": d});
    let number = |d: &str| json!({"type": "number", "description": d});
    let integer = |d: &str| json!({"type": "integer", "description": d});
    json!({
        "Run": {"type": "object",
            "required": ["session_h", "run_date", "scm_ref", "tags", "pipeline", "build", "tests", "total_time", "contexts"],
            "properties": {
                "session_h": string("Session hash."),
                "run_date": string("ISO 8601, as sent."),
                "scm_ref": string("SCM reference, as sent."),
                "tags": {"type": "object", "description": "The session's tags (its description object), as sent."},
                "pipeline": nullable("The pipeline_branch tag; null when absent."),
                "build": nullable("The pipeline_build_no tag; null when absent."),
                "tests": integer("How many metrics the session holds."),
                "total_time": number("The sum of their total_time, seconds."),
                "contexts": {"type": "array", "items": {"type": "string"},
                    "description": "Execution contexts of its metrics, first stored first."}
            }},
        "TestSummary": {"type": "object",
            "description": "One test (context_h, item_path, item_variant) over the selection. item, component, kind and last_* are those of its latest metric (by item_start_time, then storage order).",
            "required": ["context_h", "item_path", "item_variant", "item", "component", "kind", "runs",
                         "max_total_time", "mean_total_time", "last_total_time", "max_mem_usage",
                         "mean_mem_usage", "last_mem_usage", "last_session_h", "last_run_date"],
            "properties": {
                "context_h": string("Execution context hash."),
                "item_path": string("Module."), "item_variant": string("Name with parameters."),
                "item": string("Name."), "component": string("Component; may be empty."),
                "kind": string("function, class, module or package."),
                "runs": integer("How many metrics of this test the selection holds."),
                "max_total_time": number("Largest total_time, seconds: what `slowest` ranks by."),
                "mean_total_time": number("Mean total_time, seconds."),
                "last_total_time": number("total_time of the latest metric, seconds."),
                "max_mem_usage": number("Largest mem_usage, MB: what `hungriest` ranks by."),
                "mean_mem_usage": number("Mean mem_usage, MB."),
                "last_mem_usage": number("mem_usage of the latest metric, MB."),
                "last_session_h": string("Session of the latest metric."),
                "last_run_date": nullable("run_date of that session; null when it was never stored.")
            }},
        "Trend": {"type": "object", "required": ["item_path", "item_variant", "series"],
            "properties": {
                "item_path": string("Module."), "item_variant": string("Name with parameters."),
                "series": {"type": "array", "description": "One per execution context, by context hash.",
                    "items": {"type": "object", "required": ["context_h", "points"], "properties": {
                        "context_h": string("Execution context hash."),
                        "points": {"type": "array", "description": "Oldest first (by item_start_time): the latest `limit`.",
                            "items": {"$ref": "#/components/schemas/TrendPoint"}}}}}
            }},
        "TrendPoint": {"type": "object",
            "required": ["session_h", "run_date", "item_start_time", "total_time", "user_time", "kernel_time", "cpu_time", "mem_usage"],
            "properties": {
                "session_h": string("Session (run) hash."),
                "run_date": nullable("The session's run_date; null when it was never stored."),
                "item_start_time": string("As sent."),
                "total_time": number("Wall time, seconds."), "user_time": number("Seconds."),
                "kernel_time": number("Seconds."), "cpu_time": number("user_time + kernel_time, seconds."),
                "mem_usage": number("MB.")
            }},
        "Tags": {"type": "object", "required": ["tags"], "properties": {
            "tags": {"type": "array", "description": "Every tag name, alphabetically.",
                "items": {"type": "object", "required": ["name", "values"], "properties": {
                    "name": string("Tag name."),
                    "values": {"type": "array", "description": "At most 100, most used first.",
                        "items": {"type": "object", "required": ["value", "sessions"], "properties": {
                            "value": string("Tag value."),
                            "sessions": integer("Sessions with this value.")}}}}}}}},
        "Summary": {"type": "object",
            "required": ["metrics", "sessions", "contexts", "components", "tests", "first_run_date", "last_run_date"],
            "properties": {
                "metrics": integer("Metrics stored."), "sessions": integer("Sessions stored."),
                "contexts": integer("Execution contexts stored."),
                "components": integer("Distinct non-empty components."),
                "tests": integer("Distinct item_variant values (the same name in two modules or on two machines counts once)."),
                "first_run_date": nullable("Earliest session run_date, as sent."),
                "last_run_date": nullable("Latest session run_date, as sent.")
            }}
    })
}

/// The answers of `/changes` and `/changes/tests`.
fn changes() -> Value {
    let string = |description: &str| json!({"type": "string", "description": description});
    let number = |description: &str| json!({"type": "number", "description": description});
    let nullable = |kind: &str, description: &str| json!({"type": kind, "nullable": true, "description": description});
    let metric = json!({"type": "string", "enum": ["wall", "cpu", "memory"],
        "description": "wall: total_time (s); cpu: user_time + kernel_time (s); memory: mem_usage (MB)."});
    let noise = json!({"type": "object", "nullable": true,
        "description": "The noise of the latest values (at most 50) around their level; null with fewer than 3 builds.",
        "required": ["cv_percent", "label", "points"], "properties": {
            "cv_percent": nullable("number", "Robust coefficient of variation (1.4826 MAD / median), percent; null when the level is 0."),
            "label": {"type": "string", "enum": ["stable", "noisy"], "description": "noisy above 10 %."},
            "points": {"type": "integer", "description": "Builds it was measured on."}}});
    let trend = json!({"type": "object", "nullable": true,
        "description": "The slope since the last change (at most 50 builds); null with fewer than 10.",
        "required": ["per_build", "percent_per_build", "points", "confidence", "drifting"], "properties": {
            "per_build": number("Theil–Sen slope, unit per build."),
            "percent_per_build": nullable("number", "The slope in percent of the median; null when it is 0."),
            "points": {"type": "integer", "description": "Builds it was measured on."},
            "confidence": number("1 − the Mann–Kendall p-value."),
            "drifting": {"type": "boolean", "description": "A drift: steep, significant, and adding up to a change worth telling."}}});
    json!({
        "Change": {"type": "object",
            "description": "A level shift in one test's series (its value per build, in build order) on one machine and measure.",
            "required": ["item_path", "item_variant", "kind", "component", "context_h", "machine_node", "metric",
                         "build", "sessions", "scm_ref", "run_date", "before", "after", "change_percent",
                         "confidence", "noise", "trend"],
            "properties": {
                "item_path": string("Module."), "item_variant": string("Name with parameters."),
                "kind": string("Of the test's latest metric."), "component": string("Of the test's latest metric; may be empty."),
                "context_h": string("Execution context (machine) hash."),
                "machine_node": nullable("string", "The context's machine name; null when the context was never stored."),
                "metric": metric,
                "build": nullable("string", "The first build at the new level; null for sessions without pipeline tags."),
                "sessions": {"type": "array", "items": {"type": "string"}, "description": "That build's sessions."},
                "scm_ref": string("That build's SCM reference (of its first session)."),
                "run_date": string("That build's run date (of its first session)."),
                "before": number("Median level before (seconds or MB)."),
                "after": number("Median level from this build on."),
                "change_percent": nullable("number", "after against before, percent; null when before is 0."),
                "confidence": number("1 − the p-value of the test that found it."),
                "noise": noise, "trend": trend
            }},
        "TestChanges": {"type": "object", "required": ["pipeline", "item_path", "item_variant", "tests"],
            "properties": {
                "pipeline": string("As asked."), "item_path": string("Module."), "item_variant": string("Name with parameters."),
                "tests": {"type": "array", "description": "One per context (by hash) and measure (wall, cpu, memory).",
                    "items": {"type": "object",
                        "required": ["item_path", "item_variant", "kind", "component", "context_h", "metric", "builds", "changes", "noise", "trend"],
                        "properties": {
                            "item_path": string("Module."), "item_variant": string("Name with parameters."),
                            "kind": string("Of the latest metric."), "component": string("Of the latest metric."),
                            "context_h": string("Execution context hash."), "metric": metric,
                            "builds": {"type": "integer", "description": "How many builds were analysed (the latest 500 at most)."},
                            "changes": {"type": "array", "description": "Oldest first.", "items": schema_ref("Change")},
                            "noise": noise, "trend": trend}}}
            }}
    })
}
