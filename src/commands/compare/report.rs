//! The gate's report: a comparison (the server's JSON) printed as an aligned table for a
//! terminal or as Markdown for a pull-request comment.

use std::fmt::Write as _;

use serde_json::Value;

use crate::commands::text::counted;

// ---------------------------------------------------------------- reading the answer

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

fn count(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or_default()
}

/// `pytest`-style name: `file.py::test_variant`.
fn test_name(test: &Value) -> String {
    let file = match text(test, "item_fs_loc") {
        "" => text(test, "item_path"),
        file => file,
    };
    format!("{file}::{}", text(test, "item_variant"))
}

/// `0.252 → 0.452 (+79.4%)`, with `—` for a side that has no value.
fn change(metric: &Value, decimals: usize, unit: &str) -> String {
    let value = |key: &str| {
        metric[key]
            .as_f64()
            .map_or("—".to_owned(), |v| format!("{v:.decimals$}{unit}"))
    };
    let mut shown = format!("{} → {}", value("baseline"), value("candidate"));
    if let Some(percent) = metric["change_percent"].as_f64() {
        let _ = write!(shown, " ({percent:+.1}%)");
    }
    shown
}

/// The 3 metrics of a test: name in the answer, column title, decimals, unit in Markdown.
const METRICS: [(&str, &str, usize, &str); 3] = [
    ("total_time", "WALL TIME (s)", 3, " s"),
    ("cpu_time", "CPU TIME (s)", 3, " s"),
    ("mem_usage", "MEMORY (MB)", 2, " MB"),
];

/// `SPEC (N runs, M sessions[: run, run...])`, the spec shown by `spec`.
fn side_line(side: &Value, spec: fn(&str) -> String) -> String {
    let runs = count(side, "runs");
    let sessions = side["sessions"].as_array().map_or(0, Vec::len);
    let names: Vec<&str> = side["run_names"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut line = format!(
        "{} ({}, {}",
        spec(text(side, "spec")),
        counted(runs, "run"),
        counted(sessions as u64, "session")
    );
    if runs > 1 && !names.is_empty() {
        let _ = write!(line, ": {}", names.join(", "));
    }
    line.push(')');
    line
}

fn thresholds_line(t: &Value) -> String {
    let number = |key: &str| t[key].as_f64().unwrap_or_default();
    let cpu = match t["max_cpu_slowdown"].as_f64() {
        Some(p) => format!("CPU time +{p}%"),
        None => "CPU time not judged".into(),
    };
    let contexts = if t["ignore_context"].as_bool() == Some(true) {
        "; tests compared across machines"
    } else {
        ""
    };
    format!(
        "wall time +{}%, memory +{}%, {cpu}; changes under {} s or {} MB ignored; \
         with 2+ baseline runs a change must also exceed {} sigma{contexts}",
        number("max_slowdown"),
        number("max_memory_growth"),
        number("min_time"),
        number("min_memory"),
        number("sigma"),
    )
}

fn summary_line(summary: &Value) -> String {
    let parts: Vec<String> = ["regressed", "improved", "missing", "new", "unchanged"]
        .iter()
        .map(|verdict| format!("{} {verdict}", count(summary, verdict)))
        .collect();
    format!(
        "{} ({})",
        parts.join(", "),
        counted(count(summary, "total"), "test")
    )
}

fn tests(comparison: &Value) -> &[Value] {
    comparison["tests"].as_array().map_or(&[], Vec::as_slice)
}

/// Whether the tests ran on more than one machine, so that the machine must be shown.
fn several_machines(comparison: &Value) -> bool {
    let mut machines = tests(comparison)
        .iter()
        .filter_map(|t| t["context_h"].as_str());
    machines
        .next()
        .is_some_and(|first| machines.any(|other| other != first))
}

fn machine(test: &Value) -> String {
    text(test, "context_h").chars().take(8).collect()
}

// ---------------------------------------------------------------- formats

/// Every test, one aligned row each, regressions first; then the summary.
pub fn table(comparison: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "baseline   {}",
        side_line(&comparison["baseline"], str::to_owned)
    );
    let _ = writeln!(
        out,
        "candidate  {}",
        side_line(&comparison["candidate"], str::to_owned)
    );
    let _ = writeln!(
        out,
        "thresholds {}",
        thresholds_line(&comparison["thresholds"])
    );
    for note in comparison["notes"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "note       {}", note.as_str().unwrap_or_default());
    }
    let machines = several_machines(comparison);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["VERDICT".to_owned()];
    if machines {
        header.push("MACHINE".into());
    }
    header.push("TEST".into());
    header.extend(METRICS.iter().map(|(_, title, ..)| title.to_string()));
    rows.push(header);
    for test in tests(comparison) {
        let mut row = vec![text(test, "verdict").to_owned()];
        if machines {
            row.push(machine(test));
        }
        row.push(test_name(test));
        row.extend(
            METRICS
                .iter()
                .map(|(key, _, decimals, _)| change(&test[*key], *decimals, "")),
        );
        rows.push(row);
    }
    out.push('\n');
    if rows.len() > 1 {
        let columns = rows[0].len();
        let widths: Vec<usize> = (0..columns)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for row in &rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == columns {
                    line.push_str(cell);
                } else {
                    let pad = widths[c] - cell.chars().count();
                    let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", summary_line(&comparison["summary"]));
    out
}

/// Markdown for a pull-request comment: a headline, the tests that did not stay unchanged
/// (regressions first) in a table, and the thresholds.
pub fn markdown(comparison: &Value) -> String {
    let summary = &comparison["summary"];
    let regressed = count(summary, "regressed");
    let mut out = String::new();
    let headline = if regressed > 0 {
        format!("❌ {} regressed", counted(regressed, "test"))
    } else {
        "✅ No test regressed".to_owned()
    };
    let _ = writeln!(out, "### {headline}\n");
    let _ = writeln!(
        out,
        "{}.  \nBaseline {}; candidate {}.\n",
        summary_line(summary),
        side_line(&comparison["baseline"], code),
        side_line(&comparison["candidate"], code),
    );
    for note in comparison["notes"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "> **Note:** {}\n", note.as_str().unwrap_or_default());
    }
    let listed: Vec<&Value> = tests(comparison)
        .iter()
        .filter(|t| text(t, "verdict") != "unchanged")
        .collect();
    if !listed.is_empty() {
        let machines = several_machines(comparison);
        let _ = writeln!(
            out,
            "| | {}Test | Wall time | CPU time | Memory |",
            if machines { "Machine | " } else { "" }
        );
        let _ = writeln!(
            out,
            "|---|{}---|---:|---:|---:|",
            if machines { "---|" } else { "" }
        );
        for test in listed {
            let verdict = text(test, "verdict");
            let marker = match verdict {
                "regressed" => "❌",
                "improved" => "✅",
                "missing" => "➖",
                "new" => "🆕",
                _ => "",
            };
            let mut line = format!("| {marker} {verdict} | ");
            if machines {
                let _ = write!(line, "`{}` | ", machine(test));
            }
            let _ = write!(line, "{} |", code(&test_name(test)));
            for (key, _, decimals, unit) in METRICS {
                let metric = &test[key];
                let cell = change(metric, decimals, unit);
                // The metrics that decided the verdict stand out.
                if metric["verdict"].as_str() == Some(verdict) {
                    let _ = write!(line, " **{cell}** |");
                } else {
                    let _ = write!(line, " {cell} |");
                }
            }
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
    }
    let unchanged = count(summary, "unchanged");
    if unchanged > 0 {
        let _ = writeln!(out, "{} unchanged.\n", counted(unchanged, "test"));
    }
    let _ = writeln!(
        out,
        "<sub>Thresholds: {}.</sub>",
        thresholds_line(&comparison["thresholds"])
    );
    out
}

/// `text` as inline code in a table cell: backticks cannot be escaped inside a code span, and a
/// `|` would end the cell.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'").replace('|', "\\|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_names_cannot_break_the_table() {
        assert_eq!(code("t[a|b]`x`"), "`t[a\\|b]'x'`");
    }
}
