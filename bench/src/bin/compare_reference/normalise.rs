//! The deliberate differences and their normalisation, and the verdict on each pair of answers.

use std::collections::BTreeSet;

use monitor_server::routes::Answer as Shape;
use serde_json::{json, Map, Value};

use crate::dataset::ABSENT;
use crate::requests::{percent_decode, Reply};

/// The known, deliberate differences between our answers and the reference's: an id (printed
/// after `SAME*`) and why the difference is deliberate. The normalisations are applied in
/// [`normalise_ours`], [`normalise_reference`] and [`normalise_both`]; where one relies on a fact
/// of the data set, its reason says so.
pub(crate) const DELIBERATE: &[(&str, &str)] = &[
    ("description", "we list a session's `description` object beside its `tags` (docs/api.md); the reference lists only `tags`"),
    ("run_date", "the reference re-parses run_date and rewrites it (Z as +00:00, fraction padded to 6 digits); we return it exactly as sent (docs/api.md)"),
    ("numbers", "the reference marshals cpu_frequency as an integer (2400), we as the number sent (2400.0): numbers compare by value"),
    ("cpu_frequency", "the reference truncates cpu_frequency to an integer (2893.202 -> 2893); we keep the number as sent (docs/api.md: number, MHz)"),
    ("null_links", "we always write `prev_url`/`next_url`, null at either end (docs/api.md); the reference leaves them out where its handler is not marshalled through a model"),
    ("link_form", "page links: Flask's url_for writes the path as the route declares it (no trailing slash, its own parameter order and escaping); ours keep the request's query in its order; both resolve on our server"),
    ("empty_204", "an empty result answers 204 (docs/api.md); the reference answers 200 with an empty list where its handler sets no status (resources, /components/<c>/pipelines...)"),
    ("ranked_envelope", "resource rankings are not paged (docs/api.md); the reference marshals them through a pageable model, adding total_page: 1 and null links"),
    ("empty_component", "components never include the empty one (docs/api.md); the reference lists \"\" and counts it (its max(count, count - 1) is count) [the data set has metrics without component]"),
    ("null_pipeline", "a session without a pipeline_branch tag is not a pipeline; the reference's /components/<c>/pipelines lists it as null"),
    ("unordered", "lists of names (components, pipelines, builds, session hashes) compare as sets: the reference's SQL has no ORDER BY; ours sorts (builds numerically)"),
    ("unpaged_pipelines", "GET /pipelines/ is paged like every listing (docs/api.md); the reference answers the whole list without total_page, whatever the page"),
    ("error_bodies", "error bodies are worded differently (ours add `errors`, the reference's are Flask's): when both answer the same error status, bodies are not compared"),
    ("unknown_resource", "an unknown resource is a 400 listing the valid names (docs/api.md); the reference fails with 500 (KeyError)"),
    ("page_zero", "page=0 is a 400 (docs/api.md); the reference answers 404"),
    ("page_not_integer", "a non-integer page is a 400 (docs/api.md); the reference silently serves page 1"),
    ("scm_sessions_tags", "/filters/scm/<p>/sessions lists each session's tags as every session listing does (docs/api.md); the reference marshals bare rows there and writes `tags: null`"),
    ("exact_match", "`<c>` in /components/<c>/metrics is matched exactly (docs/api.md); the reference uses LIKE, so case and `_`/`%` are loose there"),
    ("literal_like", "`%`, `_` in a like/<p> pattern are plain characters (docs/api.md: a substring match); the reference passes them to LIKE as wildcards"),
    ("unknown_params", "a query parameter a listing does not know is a 400 naming the valid ones, so a misspelt filter is not silently ignored; the reference ignores it"),
    ("bad_method", "a `method` other than match_any/match_all is a 400; the reference treats anything but match_any as match_all"),
    ("empty_any_page", "an empty collection answers 204 whatever the page asked (docs/api.md, pytest-monitor's protocol); the reference's paginate 404s every page but the first"),
    ("idempotent_create", "re-creating an identical context or session answers 201 with the stored record (docs/api.md: xdist workers race to create it); the reference fails with 500 (IntegrityError)"),
    ("empty_flag", "an empty name in with_flags (`a,,b`) is skipped, the others keeping their restrict_flags by position; the reference fails with 500 (JSON path `$.`), so it is asked the same without the empty name"),
    ("bad_direction", "a direction other than head/tail is a 400 naming both; the reference has no such route (404)"),
    ("bad_rows", "an n that is not a positive integer is a 400; the reference has no route for a non-integer (404) and answers n=0 with an empty list"),
    ("documents", "the API documents differ by design: ours is an OpenAPI 3 document at /openapi.json and a self-contained /docs page, the reference's a Swagger 2 /swagger.json and Swagger UI; only status and media type are compared"),
];

/// What a probe asks, as far as normalisation cares.
pub(crate) struct Probe {
    /// The ENDPOINTS path pattern.
    pub(crate) route: &'static str,
    /// The concrete path and query, relative to the base URL.
    pub(crate) path: String,
    /// Where the reference answers the same question, when elsewhere, and why (a [`DELIBERATE`] id).
    pub(crate) reference_path: Option<(String, &'static str)>,
    pub(crate) shape: Shape,
    /// For a re-created record: the reference's answer to its first creation.
    pub(crate) first_creation: Option<Reply>,
}

impl Probe {
    /// The path's segments, decoded (without the query).
    pub(crate) fn segments(&self) -> Vec<String> {
        let path = self.path.split('?').next().unwrap_or("");
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect()
    }

    /// The value of path parameter `name` of the route pattern, decoded.
    pub(crate) fn param(&self, name: &str) -> Option<String> {
        let pattern = self.route.split('/').filter(|s| !s.is_empty());
        pattern
            .zip(self.segments())
            .find(|(p, _)| p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) == Some(name))
            .map(|(_, value)| value)
    }

    pub(crate) fn query_keys(&self) -> Vec<String> {
        let query = self.path.split_once('?').map(|(_, q)| q).unwrap_or("");
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| percent_decode(p.split('=').next().unwrap_or("")))
            .collect()
    }

    pub(crate) fn query_value(&self, key: &str) -> Option<String> {
        let (_, query) = self.path.split_once('?')?;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v))
    }
}

/// Which normalisations may apply, and which did.
pub(crate) struct Rules<'a> {
    pub(crate) disabled: &'a BTreeSet<&'static str>,
    pub(crate) fired: BTreeSet<&'static str>,
}

impl Rules<'_> {
    /// True when deliberate difference `id` may be normalised; records that it was.
    pub(crate) fn allow(&mut self, id: &'static str) -> bool {
        debug_assert!(DELIBERATE.iter().any(|(known, _)| *known == id), "{id}");
        if self.disabled.contains(id) {
            return false;
        }
        self.fired.insert(id);
        true
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff][±HH:MM]` as Python's isoformat() writes a parsed time: `T`,
/// the fraction to 6 digits and only when not zero, `Z` as `+00:00`. Unparsable text is kept.
pub(crate) fn canonical_time(text: &str) -> String {
    let b = text.as_bytes();
    if !text.is_ascii() || b.len() < 19 || !(b[10] == b'T' || b[10] == b' ') {
        return text.to_owned();
    }
    let (date, clock) = (&text[..10], &text[11..19]);
    let mut rest = &text[19..];
    let mut fraction = String::new();
    if let Some(after_dot) = rest.strip_prefix('.') {
        let digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        fraction = after_dot[..digits].to_owned();
        rest = &after_dot[digits..];
    }
    while fraction.len() < 6 {
        fraction.push('0');
    }
    let fraction = if fraction.bytes().all(|d| d == b'0') {
        String::new()
    } else {
        format!(".{fraction}")
    };
    let offset = if rest == "Z" { "+00:00" } else { rest };
    format!("{date}T{clock}{fraction}{offset}")
}

/// A page link reduced to what a client follows: path without trailing slash, query decoded
/// and sorted.
pub(crate) fn canonical_link(link: &str) -> String {
    let (path, query) = link.split_once('?').unwrap_or((link, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(percent_decode)
        .collect();
    pairs.sort();
    format!(
        "{}?{}",
        percent_decode(path.trim_end_matches('/')),
        pairs.join("&")
    )
}

/// Every number as an f64, so that `2400` and `2400.0` compare equal.
pub(crate) fn numbers_as_floats(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(float) = n.as_f64().and_then(serde_json::Number::from_f64) {
                *n = float;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(numbers_as_floats),
        Value::Object(map) => map.values_mut().for_each(numbers_as_floats),
        _ => {}
    }
}

/// Visits every object of a body (the body itself, and nested ones).
pub(crate) fn each_object(value: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    match value {
        Value::Object(map) => {
            f(map);
            map.values_mut().for_each(|v| each_object(v, f));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| each_object(v, f)),
        _ => {}
    }
}

pub(crate) const RESOURCES: [&str; 5] = ["memory", "cpu", "user_time", "kernel_time", "total_time"];

/// Rewrites the reference's reply where it departs from docs/api.md on purpose-known points.
pub(crate) fn normalise_reference(probe: &Probe, reply: &mut Reply, rules: &mut Rules) {
    if probe.route.starts_with("/resources/") {
        let resource = probe.param("resource").unwrap_or_default();
        if !RESOURCES.contains(&resource.as_str())
            && reply.status == 500
            && rules.allow("unknown_resource")
        {
            reply.status = 400;
        }
        let direction = probe.param("direction").unwrap_or_default();
        if !["head", "tail"].contains(&direction.as_str())
            && reply.status == 404
            && rules.allow("bad_direction")
        {
            reply.status = 400;
        }
        let rows = probe.param("n").map(|n| n.parse::<u64>().unwrap_or(0));
        if rows == Some(0) && reply.status != 400 && rules.allow("bad_rows") {
            reply.status = 400;
            reply.body = Value::Null;
        }
    }
    match probe.query_value("page").as_deref() {
        Some("0") if reply.status == 404 && rules.allow("page_zero") => reply.status = 400,
        Some(page)
            if page.parse::<i64>().is_err()
                && reply.status < 400
                && rules.allow("page_not_integer") =>
        {
            reply.status = 400;
            reply.body = Value::Null;
        }
        _ => {}
    }
    if let Some(first) = &probe.first_creation {
        if reply.status == 500 && rules.allow("idempotent_create") {
            *reply = first.clone();
        }
    }
    let empty_collection = probe
        .segments()
        .iter()
        .any(|s| ABSENT.contains(&s.as_str()));
    if empty_collection
        && reply.status == 404
        && probe.query_value("page").is_some()
        && rules.allow("empty_any_page")
    {
        reply.status = 204;
        reply.body = Value::Null;
    }
    if reply.status < 400 && probe.route.starts_with("/sessions") {
        let method = probe.query_value("method");
        let valid = ["match_any", "match_all"];
        if method.is_some_and(|m| !valid.contains(&m.as_str())) && rules.allow("bad_method") {
            reply.status = 400;
            reply.body = Value::Null;
        }
    }
    if reply.status < 400 && !matches!(probe.shape, Shape::Document(_)) {
        let known = ["page", "with_flags", "restrict_flags", "method"];
        if probe
            .query_keys()
            .iter()
            .any(|k| !known.contains(&k.as_str()))
            && rules.allow("unknown_params")
        {
            reply.status = 400;
            reply.body = Value::Null;
        }
    }
    if probe.route == "/pipelines" && reply.status == 200 {
        // the reference's unpaged list is our only page: its page=N (N > 1) is our 404
        let page = probe
            .query_value("page")
            .and_then(|p| p.parse::<i64>().ok());
        if page.is_some_and(|p| !(-1..=1).contains(&p)) && rules.allow("unpaged_pipelines") {
            reply.status = 404;
            reply.body = Value::Null;
        }
    }
    let Value::Object(map) = &mut reply.body else {
        return;
    };
    let ranked = matches!(probe.shape, Shape::Ranked);
    for key in ["prev_url", "next_url"] {
        if ranked {
            if map.get(key) == Some(&Value::Null) && rules.allow("ranked_envelope") {
                map.remove(key);
            }
        } else if map.contains_key("total_page")
            && !map.contains_key(key)
            && rules.allow("null_links")
        {
            map.insert(key.into(), Value::Null);
        }
    }
    if matches!(probe.shape, Shape::Ranked)
        && map.contains_key("total_page")
        && rules.allow("ranked_envelope")
    {
        map.remove("total_page");
    }
    // keep only what an exact (or literal) match keeps: (rule, field, text, exact)
    let narrowing = match probe.route {
        "/components/{component}/metrics" => probe
            .param("component")
            .map(|c| ("exact_match", "component", c, true)),
        "/items/like/{pattern}/metrics" => probe
            .param("pattern")
            .map(|p| ("literal_like", "item", p.to_ascii_lowercase(), false)),
        _ => None,
    };
    if let (Some((id, field, text, exact)), Some(Value::Array(metrics))) =
        (narrowing, map.get_mut("metrics"))
    {
        let kept = |m: &Value| {
            let value = m[field].as_str().unwrap_or("");
            if exact {
                value == text
            } else {
                value.to_ascii_lowercase().contains(&text)
            }
        };
        if !metrics.iter().all(kept) && rules.allow(id) {
            metrics.retain(kept);
        }
    }
    if probe.route.starts_with("/components") {
        if let Some(Value::Array(names)) = map.get_mut("components") {
            if names.contains(&json!("")) && rules.allow("empty_component") {
                names.retain(|n| n != "");
            }
        }
    }
    if probe.route == "/components/count" && rules.allow("empty_component") {
        // the data set has metrics without a component, which the reference counts
        if let Some(n) = map.get("count").and_then(Value::as_i64) {
            map.insert("count".into(), (n - 1).into());
        }
    }
    if let Some(Value::Array(names)) = map.get_mut("pipelines") {
        if names.contains(&Value::Null) && rules.allow("null_pipeline") {
            names.retain(|n| !n.is_null());
        }
    }
    // an empty list answered 200: what docs/api.md answers 204 for
    let empty = ["metrics", "components", "pipelines", "builds", "sessions"]
        .iter()
        .any(|key| {
            map.get(*key)
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
        });
    if empty && reply.status == 200 && rules.allow("empty_204") {
        reply.status = 204;
        reply.body = Value::Null;
    }
}

/// Rewrites our reply where we add to or keep more than the reference.
pub(crate) fn normalise_ours(probe: &Probe, reply: &mut Reply, rules: &mut Rules) {
    if probe.route == "/filters/scm/{scm_prefix}/sessions" {
        if let Some(Value::Array(sessions)) = reply.body.get_mut("sessions") {
            for session in sessions {
                if session.get("tags").is_some_and(|t| !t.is_null())
                    && rules.allow("scm_sessions_tags")
                {
                    session["tags"] = Value::Null;
                }
            }
        }
    }
    if probe.route == "/pipelines" {
        if let Value::Object(map) = &mut reply.body {
            if map.contains_key("total_page") && rules.allow("unpaged_pipelines") {
                map.remove("total_page");
            }
        }
    }
    each_object(&mut reply.body, &mut |map| {
        if map.contains_key("session_h")
            && map.contains_key("tags")
            && map.contains_key("description")
            && rules.allow("description")
        {
            map.remove("description");
        }
        if map.contains_key("cpu_count") {
            if let Some(f) = map.get("cpu_frequency").and_then(Value::as_f64) {
                if f.fract() != 0.0 && rules.allow("cpu_frequency") {
                    map.insert("cpu_frequency".into(), json!(f.trunc()));
                }
            }
        }
    });
}

/// Rewrites either side's reply into the forms compared.
pub(crate) fn normalise_both(probe: &Probe, reply: &mut Reply, rules: &mut Rules) {
    if matches!(probe.shape, Shape::Document(_)) && rules.allow("documents") {
        reply.body = Value::Null;
        let essence = reply.content_type.split(';').next().unwrap_or("").trim();
        reply.content_type = essence.to_owned();
        return;
    }
    each_object(&mut reply.body, &mut |map| {
        if let Some(Value::String(date)) = map.get_mut("run_date") {
            let canonical = canonical_time(date);
            if canonical != *date && rules.allow("run_date") {
                *date = canonical;
            }
        }
        for key in ["prev_url", "next_url"] {
            if let Some(Value::String(link)) = map.get_mut(key) {
                let canonical = canonical_link(link);
                if canonical != *link && rules.allow("link_form") {
                    *link = canonical;
                }
            }
        }
        for key in ["components", "pipelines", "builds", "sessions"] {
            if let Some(Value::Array(names)) = map.get_mut(key) {
                let mut sorted = names.clone();
                sorted.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                if names.iter().all(Value::is_string)
                    && sorted != *names
                    && rules.allow("unordered")
                {
                    *names = sorted;
                }
            }
        }
    });
    if rules.allow("numbers") {
        numbers_as_floats(&mut reply.body);
    }
}

/// Compares two replies with every normalisation but `disabled`: the first difference left,
/// if any, and the normalisations that applied.
pub(crate) fn compare(
    probe: &Probe,
    ours: &Reply,
    reference: &Reply,
    disabled: &BTreeSet<&'static str>,
) -> (Option<String>, BTreeSet<&'static str>) {
    let mut rules = Rules {
        disabled,
        fired: BTreeSet::new(),
    };
    let (mut ours, mut reference) = (ours.clone(), reference.clone());
    normalise_ours(probe, &mut ours, &mut rules);
    normalise_reference(probe, &mut reference, &mut rules);
    normalise_both(probe, &mut ours, &mut rules);
    normalise_both(probe, &mut reference, &mut rules);
    let diff = if ours.status != reference.status {
        Some(format!(
            "status ours {} {}, reference {} {}",
            ours.status,
            short(&ours.body),
            reference.status,
            short(&reference.body)
        ))
    } else if ours.status >= 400 {
        if ours.body != reference.body && !rules.allow("error_bodies") {
            first_difference("$", &ours.body, &reference.body)
        } else {
            None
        }
    } else if !ours.body.is_null()
        && ours.content_type.split(';').next() != reference.content_type.split(';').next()
    {
        Some(format!(
            "media type ours {}, reference {}",
            ours.content_type, reference.content_type
        ))
    } else {
        first_difference("$", &ours.body, &reference.body)
    };
    (diff, rules.fired)
}

/// How one request compared.
pub(crate) enum Verdict {
    /// The same status and body, byte for byte after parsing.
    Same,
    /// The same once these deliberate differences are normalised (each one needed).
    Explained(BTreeSet<&'static str>),
    /// Still different: where.
    Different(String),
}

pub(crate) fn judge(probe: &Probe, ours: &Reply, reference: &Reply) -> Verdict {
    let elsewhere = probe.reference_path.as_ref().map(|(_, id)| *id);
    if ours.status == reference.status && ours.body == reference.body {
        return match elsewhere {
            None => Verdict::Same,
            Some(id) => Verdict::Explained(BTreeSet::from([id])),
        };
    }
    let (diff, fired) = compare(probe, ours, reference, &BTreeSet::new());
    if let Some(diff) = diff {
        return Verdict::Different(diff);
    }
    // report only the normalisations without which the answers would differ
    let needed: BTreeSet<&'static str> = fired
        .iter()
        .copied()
        .filter(|id| {
            compare(probe, ours, reference, &BTreeSet::from([*id]))
                .0
                .is_some()
        })
        .collect();
    let mut explained = if needed.is_empty() { fired } else { needed };
    explained.extend(elsewhere);
    Verdict::Explained(explained)
}

pub(crate) fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 90 {
        format!("{}...", text.chars().take(90).collect::<String>())
    } else {
        text
    }
}

/// Where two JSON values first differ, as `path: ours X, reference Y`.
pub(crate) fn first_difference(path: &str, ours: &Value, reference: &Value) -> Option<String> {
    match (ours, reference) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys()) {
                let here = format!("{path}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => {
                        if let Some(diff) = first_difference(&here, x, y) {
                            return Some(diff);
                        }
                    }
                    (Some(x), None) => {
                        return Some(format!("{here}: only ours has it ({})", short(x)))
                    }
                    (None, Some(y)) => {
                        return Some(format!("{here}: only the reference has it ({})", short(y)))
                    }
                    (None, None) => {}
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if let Some(diff) = first_difference(&format!("{path}[{i}]"), x, y) {
                    return Some(diff);
                }
            }
            (a.len() != b.len()).then(|| {
                format!(
                    "{path}: ours has {} items, the reference {}",
                    a.len(),
                    b.len()
                )
            })
        }
        (x, y) if x == y => None,
        (x, y) => Some(format!("{path}: ours {}, reference {}", short(x), short(y))),
    }
}

// ------------------------------------------------------------------------------------------
