//! The OpenAPI 3 document, generated from the route table ([`crate::routes::ENDPOINTS`]) and its
//! parameter tables ([`crate::routes::params`]) so that every registered route is described
//! with what it accepts; the schemas of the answers are in [`schemas`]. Built once, at start-up
//! ([`crate::server`]).

use serde_json::{json, Map, Value};

use crate::db::query::NumericColumn;
use crate::routes::pagination::MAX_PER_PAGE;
use crate::routes::params::{Kind, Need, Param};
use crate::routes::{Answer, Endpoint, API_PREFIX, ENDPOINTS, ROOT_ENDPOINTS};

mod schemas;

/// The whole document, as served at `/api/v1/openapi.json`.
pub fn document() -> Value {
    let mut paths = Map::new();
    let prefixed = ENDPOINTS.iter().map(|endpoint| (API_PREFIX, endpoint));
    for (prefix, endpoint) in prefixed.chain(ROOT_ENDPOINTS.iter().map(|e| ("", e))) {
        let path = format!("{prefix}{}", endpoint.path);
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
        "components": {"schemas": schemas::all()}
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
    parameters.extend(endpoint.query.params().iter().map(query_parameter));
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

/// A query parameter as the document lists it, from its entry in the route's table.
fn query_parameter(param: &Param) -> Value {
    let mut parameter = json!({"name": param.name, "in": "query"});
    match param.need {
        Need::Required => parameter["required"] = json!(true),
        Need::Optional => parameter["required"] = json!(false),
        Need::Unsaid => {}
    }
    parameter["schema"] = match param.kind {
        Kind::Page | Kind::Integer => json!({"type": "integer"}),
        Kind::PageSize => json!({"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}),
        Kind::Number | Kind::Threshold => json!({"type": "number"}),
        Kind::Text => json!({"type": "string"}),
        Kind::Timestamp => json!({"type": "string", "format": "date-time"}),
        Kind::Boolean => json!({"type": "boolean"}),
        Kind::Enum(words) => json!({"type": "string", "enum": words}),
        Kind::Repeated => json!({"type": "array", "items": {"type": "string"}}),
    };
    parameter["description"] = json!(param.doc);
    if param.kind == Kind::Repeated {
        // Repeated as name=a&name=b.
        parameter["style"] = json!("form");
        parameter["explode"] = json!(true);
    }
    parameter
}

pub(crate) fn schema_ref(name: &str) -> Value {
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
            properties.insert("prev_url".into(), json!({"type": "string", "nullable": true,
                "description": "Relative link to the previous page, with the same query; null on the first."}));
            properties.insert("next_url".into(), json!({"type": "string", "nullable": true,
                "description": "Relative link to the next page, with the same query; null on the last."}));
            properties.insert("total_page".into(), json!({"type": "integer"}));
            let mut required: Vec<&str> = extra.to_vec();
            required.extend([key, "prev_url", "next_url", "total_page"]);
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
        // Answered below, without the API's 400 and 503.
        Answer::Probe { .. } => {}
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
    if let Answer::Probe { unavailable } = answer {
        responses.insert(
            "200".into(),
            json!({"description": "Yes.",
                   "content": {"application/json": {"schema": schema_ref("Status")}}}),
        );
        if let Some(reason) = unavailable {
            responses.insert(
                "503".into(),
                json!({"description": reason,
                       "content": {"application/json": {"schema": schema_ref("Status")}}}),
            );
        }
        return Value::Object(responses);
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
