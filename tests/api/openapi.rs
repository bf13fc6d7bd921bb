//! The OpenAPI 3 document at `/api/v1/openapi.json` and the page at `/api/v1/docs`: every route
//! of the router is documented, every documented path and parameter is one the router takes,
//! and the page loads nothing from another host.

use actix_web::http::Method;
use monitor_server::routes::{Answer, API_PREFIX, ENDPOINTS, ROOT_ENDPOINTS};
use serde_json::{json, Value};

use crate::common::{assert_has_message, spawn_app, TestApp};

fn document(app: &TestApp) -> Value {
    let (status, doc) = app.get("/api/v1/openapi.json");
    assert_eq!(status, 200, "{doc}");
    doc
}

/// A value for a path parameter that the route accepts (a real resource, direction and n).
fn sample_path_value(name: &str) -> &'static str {
    match name {
        "resource" => "memory",
        "direction" => "head",
        "n" => "5",
        _ => "sample",
    }
}

/// A value for a query parameter that its route accepts.
fn sample_query_value(name: &str) -> &'static str {
    match name {
        "page" => "1",
        "per_page" => "10",
        "sort" => "total_time",
        "order" => "desc",
        "from" => "2021-03-01T00:00:00",
        "to" => "2021-03-02T00:00:00Z",
        "min_total_time" | "min_mem_usage" => "0.5",
        "baseline" | "candidate" => "session:sample",
        "max_slowdown" | "max_memory_growth" | "max_cpu_slowdown" | "min_time" | "min_memory"
        | "sigma" => "0.5",
        "ignore_context" => "true",
        "only" => "regressed",
        "method" => "match_all",
        "with_flags" | "with_tags" => "pipeline_branch",
        "restrict_flags" => "main",
        "tag" => "pipeline_branch:main",
        "limit" => "10",
        "metric" => "wall",
        _ => "sample",
    }
}

/// A server holding one session, `sample`, which the sample values of `/compare` and
/// `/runs/{session_h}` name, with one metric whose context, module and variant are `sample`,
/// which the sample values of `/tests/trend` name.
fn spawn_app_with_a_sample_session() -> TestApp {
    let app = spawn_app();
    store_the_sample_session(&app);
    app
}

/// The session `sample` and its one metric, which every sample route's parameters name.
fn store_the_sample_session(app: &TestApp) {
    app.create("/api/v1/sessions/", &crate::common::session("sample"));
    let mut metric = crate::common::metric("sample");
    for field in ["session_h", "context_h", "item_path", "item_variant"] {
        metric[field] = json!("sample");
    }
    app.create("/api/v1/metrics/", &metric);
}

/// `?name=value&...` for the query parameters an operation requires, empty when none.
fn required_query(operation: &Value) -> String {
    let required: Vec<String> = operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .map(|p| {
            let name = p["name"].as_str().unwrap();
            format!("{name}={}", sample_query_value(name))
        })
        .collect();
    if required.is_empty() {
        String::new()
    } else {
        format!("?{}", required.join("&"))
    }
}

/// `path` with each `{name}` replaced by its sample value.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => sample_path_value(name),
                None => segment,
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// Asserts the router answered `path` from one of its routes: not the "no route" 404, not 405.
fn assert_routed(method: &str, path: &str, reply: &(u16, Value)) {
    let (status, body) = reply;
    assert_ne!(
        *status, 405,
        "{method} {path}: the router refuses the method: {body}"
    );
    if *status == 404 {
        assert_has_message(body);
        let message = body["message"].as_str().unwrap();
        assert!(
            !message.starts_with("There is no route"),
            "{method} {path} is documented but not routed: {body}"
        );
    }
}

#[test]
fn the_document_is_openapi_3_json() {
    let app = spawn_app();

    let (status, content_type, text) = app.get_text("/api/v1/openapi.json");

    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json");
    let doc: Value = serde_json::from_str(&text).expect("openapi.json is not JSON");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string());
    assert!(doc["info"]["version"].is_string());
    assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));
    // The trailing slash is optional.
    assert_eq!(app.get("/api/v1/openapi.json/").0, 200);
}

#[test]
fn every_registered_route_is_in_the_document_with_its_method() {
    let app = spawn_app();
    let doc = document(&app);

    for endpoint in ENDPOINTS {
        let path = format!("{API_PREFIX}{}", endpoint.path);
        let method = endpoint.method.as_str().to_ascii_lowercase();
        let operation = &doc["paths"][&path][&method];
        assert!(
            operation.is_object(),
            "{} {path} is registered but not documented",
            endpoint.method
        );
        assert_eq!(operation["summary"], endpoint.summary, "{method} {path}");
    }
}

#[test]
fn the_document_describes_nothing_the_route_table_does_not_register() {
    let app = spawn_app();
    let doc = document(&app);

    for (path, methods) in doc["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            let registered = ENDPOINTS.iter().any(|e| {
                format!("{API_PREFIX}{}", e.path) == *path
                    && e.method.as_str().eq_ignore_ascii_case(method)
            }) || ROOT_ENDPOINTS
                .iter()
                .any(|e| e.path == *path && e.method.as_str().eq_ignore_ascii_case(method));
            assert!(
                registered,
                "{method} {path} is documented but not registered"
            );
        }
    }
}

#[test]
fn every_documented_path_is_answered_by_a_route_of_the_router() {
    let app = spawn_app_with_a_sample_session();
    let doc = document(&app);

    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            let url = format!("{}{}", concrete(path), required_query(operation));
            let reply = match method.as_str() {
                "get" if path.ends_with("/docs") || path == "/metrics" => {
                    (app.get_text(&url).0, Value::Null)
                }
                "get" => app.get(&url),
                // An empty object, in the media type the route reads: the route must exist and
                // refuse it as invalid.
                "post" => match operation["requestBody"]["content"].as_object() {
                    Some(content) if content.contains_key("application/x-ndjson") => {
                        app.post_raw(&url, Some("application/x-ndjson"), b"{}\n")
                    }
                    _ => app.post_json(&url, &json!({})),
                },
                "delete" => {
                    let reply = app.send("DELETE", &url, None, b"");
                    // Put the sample session back for the routes documented after this one.
                    store_the_sample_session(&app);
                    reply
                }
                other => panic!("{other} {path}: an unexpected method in the document"),
            };
            assert_routed(method, &url, &reply);
            let expected: &[u16] = match method.as_str() {
                "post" => &[400],
                // Deletes the sample session.
                "delete" => &[200],
                _ => &[200, 204],
            };
            assert!(expected.contains(&reply.0), "{method} {url}: {reply:?}");
        }
    }
}

#[test]
fn every_listing_answers_204_and_every_count_0_on_an_empty_database() {
    let app = spawn_app();

    for endpoint in ENDPOINTS.iter().filter(|e| e.method == Method::GET) {
        let url = concrete(&format!("{API_PREFIX}{}", endpoint.path));
        match endpoint.answer {
            Answer::Page { .. } | Answer::Ranked => {
                assert_eq!(app.get(&url), (204, Value::Null), "GET {url}");
            }
            Answer::Count => assert_eq!(app.get(&url), (200, json!({"count": 0})), "GET {url}"),
            Answer::Document(_)
            | Answer::Created(_)
            | Answer::Stored
            | Answer::Comparison
            | Answer::Deleted
            | Answer::Object { .. }
            | Answer::Probe { .. } => {}
        }
    }
}

#[test]
fn the_routes_of_the_router_refuse_other_methods_with_405() {
    let app = spawn_app();

    for endpoint in ENDPOINTS {
        let url = concrete(&format!("{API_PREFIX}{}", endpoint.path));
        let routed = |method: &str| {
            ENDPOINTS
                .iter()
                .any(|e| e.path == endpoint.path && e.method.as_str() == method)
        };
        for method in ["PUT", "PATCH", "DELETE"]
            .into_iter()
            .filter(|m| !routed(m))
        {
            let (status, body) = app.send(method, &url, None, b"");
            assert_eq!(status, 405, "{method} {url}: {body}");
        }
    }
}

#[test]
fn every_documented_path_parameter_is_in_its_path_and_every_path_segment_is_documented() {
    let app = spawn_app();
    let doc = document(&app);

    for (path, methods) in doc["paths"].as_object().unwrap() {
        let in_path: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, operation) in methods.as_object().unwrap() {
            let parameters = operation["parameters"].as_array().unwrap();
            let documented: Vec<&str> = parameters
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(documented, in_path, "{method} {path}");
            for parameter in parameters {
                assert!(
                    parameter["schema"].is_object(),
                    "{method} {path}: {parameter}"
                );
                assert!(["path", "query"].contains(&parameter["in"].as_str().unwrap()));
                if parameter["in"] == "path" {
                    assert_eq!(parameter["required"], true, "{method} {path}: {parameter}");
                }
            }
        }
    }
}

#[test]
fn every_documented_query_parameter_is_accepted_by_its_route() {
    let app = spawn_app_with_a_sample_session();
    let doc = document(&app);

    for (path, methods) in doc["paths"].as_object().unwrap() {
        let Some(operation) = methods.get("get") else {
            continue;
        };
        let query: Vec<String> = operation["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| {
                let name = p["name"].as_str().unwrap();
                // /tests ranks rather than sorts by a field.
                let value = match (name, path.ends_with("/tests")) {
                    ("sort", true) => "hungriest",
                    _ => sample_query_value(name),
                };
                format!("{name}={value}")
            })
            .collect();
        if query.is_empty() {
            continue;
        }
        // All of them at once: they must combine.
        let url = format!("{}?{}", concrete(path), query.join("&"));
        let (status, body) = app.get(&url);
        assert!([200, 204].contains(&status), "GET {url}: {status} {body}");
    }
}

#[test]
fn a_route_refuses_a_query_parameter_its_document_does_not_list() {
    let app = spawn_app();
    let doc = document(&app);

    for path in doc["paths"].as_object().unwrap().keys() {
        // The two documents and the Prometheus exposition ignore their query string.
        if path.ends_with("/openapi.json") || path.ends_with("/docs") || path == "/metrics" {
            continue;
        }
        let url = format!("{}?colour=red", concrete(path));
        let (status, body) = app.get(&url);
        if status == 405 {
            continue; // POST-only
        }
        assert_eq!(status, 400, "GET {url}: {body}");
        assert!(body["errors"]["colour"].is_string(), "GET {url}: {body}");
    }
}

#[test]
fn every_schema_reference_in_the_document_resolves() {
    let app = spawn_app();
    let doc = document(&app);
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);

    assert!(!refs.is_empty());
    for reference in refs {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("not a schema reference: {reference}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{reference} does not resolve"
        );
    }
}

fn collect_refs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref" {
                    found.push(child.as_str().unwrap().to_owned());
                } else {
                    collect_refs(child, found);
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|v| collect_refs(v, found)),
        _ => {}
    }
}

#[test]
fn every_operation_documents_its_responses_and_post_bodies() {
    let app = spawn_app();
    let doc = document(&app);

    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|code| code.starts_with('2')),
                "{method} {path} documents no success"
            );
            assert!(operation["operationId"].is_string(), "{method} {path}");
            if method == "post" {
                assert!(responses.contains_key("201"), "{method} {path}");
                assert!(responses.contains_key("400"), "{method} {path}");
                let content = operation["requestBody"]["content"].as_object();
                assert!(
                    content.is_some_and(
                        |c| c.len() == 1 && c.values().all(|m| m["schema"].is_object())
                    ),
                    "{method} {path} documents no body"
                );
            }
        }
    }
    let listing = &doc["paths"]["/api/v1/components/{component}/pipelines"]["get"]["responses"];
    let envelope = &listing["200"]["content"]["application/json"]["schema"];
    assert_eq!(
        envelope["required"],
        json!([
            "component",
            "pipelines",
            "prev_url",
            "next_url",
            "total_page"
        ])
    );
    assert!(listing["204"].is_object());
    let ranked = &doc["paths"]["/api/v1/resources/{resource}/{direction}/{n}/metrics"]["get"];
    let resource = ranked["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "resource")
        .unwrap();
    let description = resource["description"].as_str().unwrap();
    for name in ["memory", "cpu", "user_time", "kernel_time", "total_time"] {
        assert!(description.contains(name), "{description}");
    }
}

#[test]
fn the_metric_listings_document_every_filter() {
    let app = spawn_app();
    let doc = document(&app);
    let operation = &doc["paths"]["/api/v1/metrics"]["get"];

    let names: Vec<&str> = operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();

    for name in monitor_server::routes::params::METRIC_FILTERS
        .iter()
        .chain(&["page", "per_page"])
    {
        assert!(
            names.contains(name),
            "GET /metrics does not document {name}"
        );
    }
}

#[test]
fn the_docs_page_is_html_that_loads_the_document_and_nothing_from_another_host() {
    let app = spawn_app();

    let (status, content_type, page) = app.get_text("/api/v1/docs");

    assert_eq!(status, 200);
    assert_eq!(content_type, "text/html");
    assert!(page.to_ascii_lowercase().contains("<html"), "{page}");
    assert!(
        page.contains("/api/v1/openapi.json"),
        "the page does not fetch the document"
    );
    for scheme in ["http://", "https://"] {
        assert!(
            !page.contains(scheme),
            "the page references {scheme}…: no CDN allowed"
        );
    }
    assert!(!page.contains("src=\"//") && !page.contains("href=\"//"));
    assert_eq!(app.get_text("/api/v1/docs/").0, 200);
}
