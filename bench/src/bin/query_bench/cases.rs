//! What is measured: every GET route of `ENDPOINTS` with real values of the store, plus variants.

use std::collections::HashMap;
use std::path::Path;

use actix_web::http::Method;
use monitor_server::routes::{QueryKind, ENDPOINTS};
use rusqlite::{Connection, OptionalExtension};

pub(crate) struct Case {
    /// The route's pattern with the extra query string, as printed.
    pub(crate) label: String,
    /// The path and query under the API prefix, values substituted and encoded.
    pub(crate) url: String,
}

/// Real values of the loaded store for the routes' path segments.
pub(crate) struct Values {
    pub(crate) by_name: HashMap<&'static str, String>,
    /// An item and a variant of the empty component, for `/components/items|variants/...`.
    pub(crate) item_without: String,
    pub(crate) variant_without: String,
    pub(crate) context_prefix: String,
    pub(crate) session_prefix: String,
    pub(crate) component_prefix: String,
    pub(crate) broad_scm_prefix: String,
    pub(crate) scm_ref: String,
    pub(crate) from: String,
    pub(crate) to: String,
    /// The run date of the session in the middle of the store.
    pub(crate) middle: String,
    /// The middle page (of 500 rows) of all metrics, and of the metrics of kind `function`.
    pub(crate) middle_page: u64,
    pub(crate) middle_function_page: u64,
}

impl Values {
    pub(crate) fn discover(path: &Path) -> rusqlite::Result<Values> {
        let conn = Connection::open(path)?;
        let text = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<String> {
            Ok(conn
                .query_row(sql, params, |row| row.get::<_, String>(0))
                .optional()?
                .unwrap_or_default())
        };
        // The pipeline with the most sessions, and one of its sessions from the middle.
        let pipeline = text(
            "SELECT value FROM session_tags WHERE name = 'pipeline_branch' \
             GROUP BY value ORDER BY count(*) DESC LIMIT 1",
            &[],
        )?;
        let session_id: i64 = conn.query_row(
            "SELECT s.id FROM sessions s JOIN session_tags p ON p.session_id = s.id \
             AND p.name = 'pipeline_branch' WHERE p.value = ?1 ORDER BY s.id \
             LIMIT 1 OFFSET (SELECT count(*) / 2 FROM session_tags \
                             WHERE name = 'pipeline_branch' AND value = ?1)",
            [&pipeline],
            |row| row.get(0),
        )?;
        let session_h = text(
            "SELECT session_h FROM sessions WHERE id = ?1",
            &[&session_id],
        )?;
        let scm_ref = text("SELECT scm_ref FROM sessions WHERE id = ?1", &[&session_id])?;
        let build = text(
            "SELECT value FROM session_tags WHERE session_id = ?1 AND name = 'pipeline_build_no'",
            &[&session_id],
        )?;
        let context_h = text(
            "SELECT context_h FROM metrics WHERE session_h = ?1 LIMIT 1",
            &[&session_h],
        )?;
        let component = text(
            "SELECT component FROM metrics WHERE session_h = ?1 AND component != '' \
             GROUP BY component ORDER BY count(*) DESC LIMIT 1",
            &[&session_h],
        )?;
        let (item, variant, item_path) = conn
            .query_row(
                "SELECT item, item_variant, item_path FROM metrics \
                 WHERE session_h = ?1 AND component = ?2 \
                 ORDER BY item_variant = item, id LIMIT 1",
                [&session_h, &component],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get(2)?,
                    ))
                },
            )
            .optional()?
            .unwrap_or_default();
        let (item_without, variant_without) = conn
            .query_row(
                "SELECT item, item_variant FROM metrics WHERE component = '' \
                 ORDER BY item_variant = item, id LIMIT 1",
                [],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()?
            .unwrap_or_default();
        // A word of the item's name (test_<word>_<n>), shared by many items.
        let pattern = item.split('_').nth(1).unwrap_or("a").to_owned();
        // Two run dates apart by 2% of the sessions: a window of about 2% of the metrics.
        let sessions: i64 = conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?;
        let run_date = |nth: i64| {
            text(
                "SELECT run_date FROM sessions ORDER BY id LIMIT 1 OFFSET ?1",
                &[&nth],
            )
        };
        let from = run_date(sessions * 40 / 100)?;
        let to = run_date(sessions * 42 / 100)?;
        let middle = run_date(sessions / 2)?;
        let count = |sql: &str| -> rusqlite::Result<u64> { conn.query_row(sql, [], |r| r.get(0)) };
        let stored = count("SELECT count(*) FROM metrics")?;
        let functions = count("SELECT count(*) FROM metrics WHERE kind = 'function'")?;

        let mut by_name = HashMap::new();
        by_name.insert("session_h", session_h.clone());
        by_name.insert("context_h", context_h.clone());
        by_name.insert("component", component.clone());
        by_name.insert("pipeline", pipeline);
        by_name.insert("build", build);
        by_name.insert("item", item);
        by_name.insert("variant", variant);
        by_name.insert("item_path", item_path);
        by_name.insert("pattern", pattern);
        by_name.insert("kind", "function".into());
        by_name.insert("scm_prefix", scm_ref.chars().take(7).collect());
        by_name.insert("resource", "memory".into());
        by_name.insert("direction", "head".into());
        by_name.insert("n", "50".into());
        Ok(Values {
            by_name,
            item_without,
            variant_without,
            context_prefix: context_h.chars().take(4).collect(),
            session_prefix: session_h.chars().take(4).collect(),
            component_prefix: component.chars().take(2).collect(),
            broad_scm_prefix: scm_ref.chars().take(1).collect(),
            scm_ref,
            from,
            to,
            middle,
            middle_page: stored.div_ceil(500).div_ceil(2).max(1),
            middle_function_page: functions.div_ceil(500).div_ceil(2).max(1),
        })
    }

    pub(crate) fn get(&self, name: &str) -> &str {
        self.by_name.get(name).map_or("", String::as_str)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A route pattern with its `{segments}` replaced by `values` (chosen by the route for the
/// segments whose meaning depends on it).
pub(crate) fn fill(pattern: &str, values: &Values) -> String {
    let mut url = String::new();
    for segment in pattern.split('/').filter(|s| !s.is_empty()) {
        url.push('/');
        let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            url.push_str(segment);
            continue;
        };
        let value = match name {
            "prefix" if pattern.starts_with("/contexts") => &values.context_prefix,
            "prefix" if pattern.starts_with("/sessions") => &values.session_prefix,
            "prefix" => &values.component_prefix,
            "item" if pattern.starts_with("/components/items") => &values.item_without,
            "variant" if pattern.starts_with("/components/variants") => &values.variant_without,
            other => values.get(other),
        };
        url.push_str(&encode(value));
    }
    url.push('/');
    url
}

pub(crate) fn cases(values: &Values) -> Vec<Case> {
    let mut cases: Vec<Case> = ENDPOINTS
        .iter()
        // `/compare`, `/tests/trend` and `/changes/tests` need their parameters: they are
        // measured below, with them.
        .filter(|e| {
            e.method == Method::GET
                && e.query != QueryKind::Comparison
                && !["/tests/trend", "/changes/tests"].contains(&e.path)
        })
        .map(|e| Case {
            label: e.path.to_owned(),
            url: fill(e.path, values),
        })
        .collect();
    // Encoded for the URL; the label shows the values as they are.
    let query = |pairs: &[(&str, &str)]| {
        let join = |encoded: bool| {
            pairs
                .iter()
                .map(|(k, v)| match encoded {
                    true => format!("{k}={}", encode(v)),
                    false => format!("{k}={v}"),
                })
                .collect::<Vec<_>>()
                .join("&")
        };
        (join(false), join(true))
    };
    let component = values.get("component");
    let pipeline = values.get("pipeline");
    let build = values.get("build");
    let one_build = format!("build:{pipeline}/{build}");
    let last_builds = format!("last:{pipeline}/10");
    let extra: Vec<(&str, (String, String))> = vec![
        (
            "/compare",
            query(&[("baseline", &one_build), ("candidate", &one_build)]),
        ),
        (
            "/compare",
            query(&[("baseline", &last_builds), ("candidate", &one_build)]),
        ),
        ("/metrics", query(&[("page", "-1")])),
        ("/metrics", query(&[("page", "1000")])),
        (
            "/metrics",
            query(&[
                ("component", component),
                ("sort", "mem_usage"),
                ("order", "desc"),
            ]),
        ),
        (
            "/metrics",
            query(&[("from", &values.from), ("to", &values.to)]),
        ),
        (
            "/metrics",
            query(&[("from", &values.from), ("to", &values.to), ("page", "-1")]),
        ),
        (
            "/metrics",
            query(&[("sort", "total_time"), ("order", "desc")]),
        ),
        (
            "/metrics",
            query(&[("sort", "item_start_time"), ("page", "-1")]),
        ),
        ("/metrics", query(&[("min_total_time", "5")])),
        ("/metrics", query(&[("scm_ref", &values.scm_ref)])),
        (
            "/metrics",
            query(&[("component_prefix", &values.component_prefix)]),
        ),
        (
            "/metrics",
            query(&[("kind", "function"), ("sort", "cpu_usage"), ("page", "2")]),
        ),
        (
            "/metrics/count",
            query(&[("from", &values.from), ("to", &values.to)]),
        ),
        ("/metrics/count", query(&[("kind", "function")])),
        (
            "/sessions/{session_h}/metrics",
            query(&[("sort", "total_time"), ("order", "desc")]),
        ),
        ("/contexts/{context_h}/metrics", query(&[("page", "-1")])),
        ("/components/{component}/metrics", query(&[("page", "-1")])),
        ("/components/metrics", query(&[("page", "-1")])),
        ("/items/like/{pattern}/metrics", query(&[("page", "-1")])),
        ("/variants/like/{pattern}/metrics", query(&[("page", "-1")])),
        ("/filters/scope/{kind}/metrics", query(&[("page", "-1")])),
        (
            "/filters/scm/{scm_prefix}/metrics",
            query(&[("page", "-1")]),
        ),
        (
            "/sessions",
            query(&[
                ("with_flags", "pipeline_branch,pipeline_build_no"),
                ("restrict_flags", pipeline),
                ("method", "match_all"),
            ]),
        ),
        ("/sessions", query(&[("page", "-1"), ("per_page", "10")])),
        // The dashboard's first view, and its filters.
        ("/runs", query(&[("page", "1")])),
        ("/runs", query(&[("component", component)])),
        ("/runs", query(&[("pipeline", pipeline)])),
        ("/runs", query(&[("page", "-1")])),
        ("/tests", query(&[("sort", "slowest")])),
        ("/tests", query(&[("sort", "hungriest")])),
        ("/tests", query(&[("sort", "slowest"), ("page", "-1")])),
        (
            "/tests",
            query(&[("sort", "slowest"), ("component", component)]),
        ),
        (
            "/tests",
            query(&[("sort", "hungriest"), ("component", component)]),
        ),
        (
            "/tests",
            query(&[("sort", "slowest"), ("pipeline", pipeline)]),
        ),
        (
            "/tests",
            query(&[("sort", "hungriest"), ("pipeline", pipeline)]),
        ),
        (
            "/tests",
            query(&[
                ("sort", "slowest"),
                ("pipeline", pipeline),
                ("build", build),
            ]),
        ),
        (
            "/tests",
            query(&[("tag", &format!("pipeline_branch:{pipeline}"))]),
        ),
        (
            "/tests/trend",
            query(&[
                ("item_path", values.get("item_path")),
                ("item_variant", values.get("variant")),
            ]),
        ),
        (
            "/tests/trend",
            query(&[
                ("item_path", values.get("item_path")),
                ("item_variant", values.get("variant")),
                ("context_h", values.get("context_h")),
                ("limit", "10000"),
            ]),
        ),
        // Every test of the pipeline analysed once (in the warm-up), then kept.
        ("/changes", query(&[("pipeline", pipeline)])),
        (
            "/changes",
            query(&[("pipeline", pipeline), ("metric", "memory"), ("page", "-1")]),
        ),
        (
            "/changes/tests",
            query(&[
                ("pipeline", pipeline),
                ("item_path", values.get("item_path")),
                ("item_variant", values.get("variant")),
            ]),
        ),
        (
            "/compare",
            query(&[("baseline", "auto"), ("candidate", &one_build)]),
        ),
    ];
    for (pattern, (shown, query)) in extra {
        cases.push(Case {
            label: format!("{pattern}?{shown}"),
            url: format!("{}?{query}", fill(pattern, values)),
        });
    }
    // Pages in the middle of large selections, and selections holding most of the store.
    let middle = values.middle_page.to_string();
    let middle_function = values.middle_function_page.to_string();
    let no_query = (String::new(), String::new());
    let deep: Vec<(&str, (String, String), &str)> = vec![
        // The order stored: page 1, the middle and the last (`page=-1` above) cost the same,
        // also after deletes (`monitor-server prune`) have left gaps in the ids.
        ("/metrics", query(&[("page", "1")]), ""),
        ("/metrics", query(&[("page", &middle)]), " (middle page)"),
        (
            "/metrics",
            query(&[("sort", "mem_usage"), ("page", &middle)]),
            " (middle page)",
        ),
        (
            "/filters/scope/function/metrics",
            query(&[("page", &middle_function)]),
            " (middle page)",
        ),
        (
            "/metrics",
            query(&[("kind", "function"), ("sort", "cpu_usage"), ("page", "-1")]),
            "",
        ),
        (
            "/metrics",
            query(&[
                ("kind", "function"),
                ("sort", "cpu_usage"),
                ("page", &middle_function),
            ]),
            " (middle page)",
        ),
        ("/items/like/test/metrics", no_query, " (every item)"),
        (
            "/items/like/test/metrics",
            query(&[("page", &middle)]),
            " (every item, middle page)",
        ),
        ("/metrics", query(&[("from", &values.middle)]), ""),
        (
            "/metrics",
            query(&[("to", &values.middle), ("page", "-1")]),
            "",
        ),
    ];
    for (pattern, (shown, query), note) in deep {
        let (label, url) = if query.is_empty() {
            (pattern.to_owned(), fill(pattern, values))
        } else {
            let url = format!("{}?{query}", fill(pattern, values));
            (format!("{pattern}?{shown}"), url)
        };
        cases.push(Case {
            label: format!("{label}{note}"),
            url,
        });
    }
    // Broad SCM prefix: a sixteenth of the sessions.
    let broad = encode(&values.broad_scm_prefix);
    for suffix in ["metrics", "metrics/count"] {
        cases.push(Case {
            label: format!("/filters/scm/{{scm_prefix}}/{suffix} (1-char prefix)"),
            url: format!("/filters/scm/{broad}/{suffix}/"),
        });
    }
    // Every resource both ways, over everything, a component, a pipeline and a build.
    for resource in ["memory", "cpu", "user_time", "kernel_time", "total_time"] {
        for direction in ["head", "tail"] {
            for (scope, path) in [
                ("", String::new()),
                (
                    "/components/{component}",
                    format!("/components/{}", encode(component)),
                ),
                (
                    "/pipelines/{pipeline}",
                    format!("/pipelines/{}", encode(pipeline)),
                ),
                (
                    "/pipelines/{pipeline}/builds/{build}",
                    format!("/pipelines/{}/builds/{}", encode(pipeline), encode(build)),
                ),
            ] {
                if resource == "memory" && direction == "head" {
                    continue; // measured above, from ENDPOINTS
                }
                cases.push(Case {
                    label: format!("/resources/{resource}{scope}/{direction}/500/metrics"),
                    url: format!("/resources/{resource}{path}/{direction}/500/metrics/"),
                });
            }
        }
    }
    cases
}
