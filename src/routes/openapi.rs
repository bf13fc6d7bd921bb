//! The OpenAPI 3 document, generated from the route table ([`crate::routes::ENDPOINTS`]) so that
//! every registered route is described, with the record schemas written out once here.

use serde_json::{json, Map, Value};

use crate::db::query::{NumericColumn, METRIC_FILTERS};
use crate::routes::pagination::MAX_PER_PAGE;
use crate::routes::{Answer, Endpoint, QueryKind, API_PREFIX, ENDPOINTS};

/// The whole document, as served at `/api/v1/openapi.json`.
pub fn document() -> Value {
    let mut paths = Map::new();
    for endpoint in ENDPOINTS {
        let path = format!("{API_PREFIX}{}", endpoint.path);
        let entry = paths
            .entry(path)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(
                endpoint.method.as_str().to_ascii_lowercase(),
                operation(endpoint),
            );
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "monitor-server",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Stores the per-test resource metrics pytest-monitor measures and serves \
                them back. Paths accept an optional trailing slash; repeated slashes are folded. \
                Listings answer 204 when empty and 404 for a page past either end.",
            "license": {"name": "MIT"}
        },
        "paths": paths,
        "components": {"schemas": all_schemas()}
    })
}

fn operation(endpoint: &Endpoint) -> Value {
    let mut parameters: Vec<Value> = path_parameters(endpoint.path)
        .into_iter()
        .map(|name| {
            let description = match endpoint.answer {
                // The segment the listing by prefix reads; a delete takes no prefix.
                Answer::Deleted => "The session's whole hash, exactly.".to_owned(),
                _ => path_parameter_description(name),
            };
            json!({
                "name": name, "in": "path", "required": true,
                "schema": {"type": "string"},
                "description": description,
            })
        })
        .collect();
    parameters.extend(query_parameters(endpoint.query));
    let mut op = json!({
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "operationId": operation_id(endpoint),
        "parameters": parameters,
        "responses": responses(endpoint.answer),
    });
    if let Answer::Created(schema) = endpoint.answer {
        op["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {
                "schema": {"$ref": format!("#/components/schemas/{schema}Input")}
            }}
        });
    }
    if let Answer::Stored = endpoint.answer {
        op["requestBody"] = json!({
            "required": true,
            "description": "One metric per line, each as the body of `POST /metrics/` takes it; \
                blank lines are skipped. Stored all or none.",
            "content": {crate::routes::metrics::NDJSON: {
                "schema": {"type": "string"},
                "example": "{\"session_h\": \"...\", \"context_h\": \"...\", ...}\n{...}\n"
            }}
        });
    }
    op
}

fn operation_id(endpoint: &Endpoint) -> String {
    let words: Vec<String> = endpoint
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_matches(|c| c == '{' || c == '}')
                .replace(['.', '-'], "_")
        })
        .collect();
    format!(
        "{}_{}",
        endpoint.method.as_str().to_ascii_lowercase(),
        words.join("_")
    )
}

/// The `{name}` segments of an actix path pattern, in order.
pub fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn path_parameter_description(name: &str) -> String {
    match name {
        "prefix" => "The start of the hash or name; `%`, `_` and `\\` match themselves.".into(),
        "pattern" => "Text the name must contain; `%`, `_` and `\\` match themselves.".into(),
        "scm_prefix" => "The start of the SCM reference.".into(),
        "resource" => {
            let names: Vec<&str> = NumericColumn::RESOURCES.iter().map(|(n, _)| *n).collect();
            format!("One of: {}.", names.join(", "))
        }
        "direction" => "`head` (most used first) or `tail` (least used first).".into(),
        "n" => "How many metrics, 1 or more; at most 500 are returned (default 10).".into(),
        "kind" => "The item type: function, class, module or package.".into(),
        "session_h" => "A session hash, exactly.".into(),
        "context_h" => "An execution context hash, exactly.".into(),
        "pipeline" => "A pipeline (session tag pipeline_branch).".into(),
        "build" => "A build number (session tag pipeline_build_no).".into(),
        other => format!("The {other}, exactly."),
    }
}

/// `page` and `per_page`, in this order.
fn paging_parameters() -> Vec<Value> {
    vec![
        json!({"name": "page", "in": "query", "schema": {"type": "integer"},
               "description": "Page number from 1; negative counts from the end (-1 is the last)."}),
        json!({"name": "per_page", "in": "query",
               "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
               "description": "Rows per page; the server's --page-size when absent."}),
    ]
}

fn query_parameters(kind: QueryKind) -> Vec<Value> {
    let filters = |with_sort: bool| {
        METRIC_FILTERS
            .iter()
            .filter(|name| with_sort || !matches!(**name, "sort" | "order"))
            .map(|name| {
                let (schema, description) = filter_doc(name);
                json!({"name": name, "in": "query", "schema": schema, "description": description})
            })
            .collect::<Vec<_>>()
    };
    match kind {
        QueryKind::None => vec![],
        QueryKind::Paging => paging_parameters(),
        QueryKind::MetricFilters => {
            let mut all = paging_parameters();
            all.extend(filters(true));
            all
        }
        QueryKind::MetricCountFilters => filters(false),
        QueryKind::SessionFlags => {
            let mut all = paging_parameters();
            all.extend([
                json!({"name": "with_flags", "in": "query", "schema": {"type": "string"},
                       "description": "Comma-separated tag names the sessions must carry."}),
                json!({"name": "restrict_flags", "in": "query", "schema": {"type": "string"},
                       "description": "Comma-separated values, pairwise with with_flags; an empty one means any non-empty value."}),
                json!({"name": "method", "in": "query",
                       "schema": {"type": "string", "enum": ["match_any", "match_all"]},
                       "description": "Whether any (default) or all of the tag conditions must hold."}),
            ]);
            all
        }
        QueryKind::Comparison => crate::compare::PARAMETERS
            .iter()
            .map(|(name, kind, required, description)| {
                json!({"name": name, "in": "query", "required": required,
                       "schema": {"type": kind}, "description": description})
            })
            .collect(),
        QueryKind::Own {
            paging,
            per_page,
            params,
        } => {
            let mut all = Vec::new();
            if paging {
                all = paging_parameters();
                all[1]["description"] = json!(format!("Rows per page (default {per_page})."));
            }
            all.extend(params.iter().map(|(name, kind, required, description)| {
                let mut parameter = json!({"name": name, "in": "query", "required": required,
                    "schema": {"type": kind}, "description": description});
                if *kind == "array" {
                    // Repeated as name=a&name=b.
                    parameter["schema"] = json!({"type": "array", "items": {"type": "string"}});
                    parameter["style"] = json!("form");
                    parameter["explode"] = json!(true);
                }
                parameter
            }));
            all
        }
    }
}

fn filter_doc(name: &str) -> (Value, &'static str) {
    let text = json!({"type": "string"});
    let number = json!({"type": "number"});
    match name {
        "session_h" => (text, "Only metrics of this session."),
        "context_h" => (text, "Only metrics measured on this context."),
        "component" => (text, "Only metrics of this component (exactly)."),
        "component_prefix" => (text, "Only metrics whose component starts with this text."),
        "item" => (text, "Only metrics of this test item (exactly)."),
        "item_variant" => (text, "Only metrics of this test variant (exactly)."),
        "kind" => (text, "Only metrics of this item type."),
        "scm_ref" => (text, "Only metrics of sessions with this SCM reference (exactly)."),
        "from" => (
            json!({"type": "string", "format": "date-time"}),
            "Only metrics whose item_start_time is at or after this ISO 8601 time (no offset: UTC).",
        ),
        "to" => (
            json!({"type": "string", "format": "date-time"}),
            "Only metrics whose item_start_time is at or before this ISO 8601 time (no offset: UTC).",
        ),
        "min_total_time" => (number, "Only metrics with total_time at least this (seconds)."),
        "min_mem_usage" => (number, "Only metrics with mem_usage at least this (MB)."),
        "sort" => {
            let names: Vec<&str> = NumericColumn::SORTABLE.iter().map(|(n, _)| *n).collect();
            (
                json!({"type": "string", "enum": names}),
                "Sort by this field (ties in the order stored) instead of the order stored.",
            )
        }
        "order" => (
            json!({"type": "string", "enum": ["asc", "desc"]}),
            "Direction of sort (default asc).",
        ),
        _ => (text, ""),
    }
}

fn schema_ref(name: &str) -> Value {
    if name == "string" {
        json!({"type": "string"})
    } else {
        json!({"$ref": format!("#/components/schemas/{name}")})
    }
}

fn error_response(description: &str) -> Value {
    json!({"description": description,
           "content": {"application/json": {"schema": schema_ref("Error")}}})
}

fn responses(answer: Answer) -> Value {
    let mut responses = Map::new();
    match answer {
        Answer::Created(schema) => {
            responses.insert(
                "201".into(),
                json!({"description": "Stored (or already stored with the same content).",
                       "content": {"application/json": {"schema": schema_ref(schema)}}}),
            );
            responses.insert(
                "409".into(),
                error_response("Stored with other content under this id."),
            );
            responses.insert(
                "413".into(),
                error_response("The body is larger than 1 MiB."),
            );
            responses.insert(
                "415".into(),
                error_response("The body is not declared as JSON."),
            );
            responses.insert("507".into(), error_response("The disk is full."));
        }
        Answer::Stored => {
            responses.insert(
                "201".into(),
                json!({"description": "Every metric of the batch is stored; how many.",
                       "content": {"application/json": {"schema": schema_ref("Count")}}}),
            );
            responses.insert(
                "413".into(),
                error_response(
                    "The body is larger than the server's --max-batch-bytes (64 MiB by default).",
                ),
            );
            responses.insert(
                "415".into(),
                error_response("The body is not declared as application/x-ndjson."),
            );
            responses.insert("507".into(), error_response("The disk is full."));
        }
        Answer::Count => {
            responses.insert(
                "200".into(),
                json!({"description": "The count.",
                       "content": {"application/json": {"schema": schema_ref("Count")}}}),
            );
        }
        Answer::Page { key, item, extra } => {
            let mut properties = Map::new();
            for field in extra {
                properties.insert((*field).into(), json!({"type": "string"}));
            }
            properties.insert(
                key.into(),
                json!({"type": "array", "items": schema_ref(item)}),
            );
            properties.insert("prev_url".into(), json!({"type": "string",
                "description": "Relative link to the previous page, with the same query; absent on the first."}));
            properties.insert("next_url".into(), json!({"type": "string",
                "description": "Relative link to the next page, with the same query; absent on the last."}));
            properties.insert("total_page".into(), json!({"type": "integer"}));
            let mut required: Vec<&str> = extra.to_vec();
            required.extend([key, "total_page"]);
            responses.insert(
                "200".into(),
                json!({"description": "One page.",
                       "content": {"application/json": {"schema": {
                           "type": "object", "properties": properties, "required": required}}}}),
            );
            responses.insert("204".into(), json!({"description": "Nothing to list."}));
            responses.insert("404".into(), error_response("The page is past either end."));
        }
        Answer::Ranked => {
            responses.insert(
                "200".into(),
                json!({"description": "The ranked metrics.",
                       "content": {"application/json": {"schema": {
                           "type": "object", "required": ["metrics"],
                           "properties": {"metrics": {"type": "array", "items": schema_ref("Metric")}}}}}}),
            );
            responses.insert("204".into(), json!({"description": "No metric matches."}));
        }
        Answer::Document(media) => {
            responses.insert(
                "200".into(),
                json!({"description": "The document.", "content": {media: {}}}),
            );
        }
        Answer::Object { schema, missing } => {
            responses.insert(
                "200".into(),
                json!({"description": "The answer.",
                       "content": {"application/json": {"schema": schema_ref(schema)}}}),
            );
            if let Some(reason) = missing {
                responses.insert("404".into(), error_response(reason));
            }
        }
        Answer::Comparison => {
            responses.insert(
                "200".into(),
                json!({"description": "The comparison.",
                       "content": {"application/json": {"schema": schema_ref("Comparison")}}}),
            );
            responses.insert(
                "404".into(),
                error_response("The baseline or the candidate matches no session."),
            );
        }
        Answer::Deleted => {
            responses.insert(
                "200".into(),
                json!({"description": "Deleted; what was removed.",
                       "content": {"application/json": {"schema": schema_ref("Deleted")}}}),
            );
            responses.insert(
                "401".into(),
                error_response("The server has a write token and the request presented none."),
            );
            responses.insert(
                "403".into(),
                error_response(
                    "The request presented the read token, which does not allow deletes.",
                ),
            );
            responses.insert(
                "404".into(),
                error_response("No session and no metric is stored under this hash."),
            );
        }
    }
    if !matches!(answer, Answer::Document(_)) {
        responses.insert(
            "400".into(),
            error_response("A field, path segment or query parameter is not valid."),
        );
        responses.insert(
            "503".into(),
            error_response(
                "The database is busy or too many writes are queued; retry (see Retry-After).",
            ),
        );
    }
    Value::Object(responses)
}

/// The record schemas, with those of the comparison and the dashboard.
fn all_schemas() -> Value {
    let mut all = schemas();
    for more in [
        crate::compare::openapi_schemas(),
        crate::dashboard::openapi_schemas(),
    ] {
        if let (Value::Object(all), Value::Object(more)) = (&mut all, more) {
            all.extend(more);
        }
    }
    all
}

fn schemas() -> Value {
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
