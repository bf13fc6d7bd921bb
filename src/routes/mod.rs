//! The HTTP surface. [`ENDPOINTS`] is the one table of every route: [`configure`] registers it
//! (for the binary and the tests alike) and the OpenAPI document is generated from it, so a route
//! cannot exist without being documented.
//!
//! Also here: the pieces every handler shares (body reading, listings, counts, JSON 404/405,
//! HEAD).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::uri::{PathAndQuery, Uri};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::{Map, Value};

use crate::db::query::MetricQuery;
use crate::db::Selection;
use crate::error::ApiError;
use crate::models::JsonObject;
use crate::routes::pagination::{query_pairs, PageBody, PageRequest};
use crate::state::AppState;

pub mod auth;
pub mod compare;
pub mod components;
pub mod contexts;
pub mod dashboard;
pub mod docs;
pub mod filters;
pub mod items;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod pipelines;
pub mod resources;
pub mod sessions;
pub mod ui;

/// The largest request body accepted, in bytes (docs/api.md: 1 MiB); a batch of metrics has its own
/// limit ([`crate::server::Options::max_batch_bytes`]).
pub const BODY_LIMIT: usize = 1 << 20;

/// How long a client may take to send a whole request body (the headers have their own limit).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Every route lives under this prefix.
pub const API_PREFIX: &str = "/api/v1";

/// What a route accepts in its query string, for the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// Nothing.
    None,
    /// `page` and `per_page`.
    Paging,
    /// Paging plus the metric filters and sort.
    MetricFilters,
    /// The metric filters without paging or sort (count routes).
    MetricCountFilters,
    /// Paging plus `with_flags`, `restrict_flags`, `method`.
    SessionFlags,
    /// The sides and thresholds of a comparison ([`crate::compare::PARAMETERS`]).
    Comparison,
    /// The route's own parameters (see [`crate::dashboard::ParamDoc`]), after `page` and
    /// `per_page` with `paging`; `per_page` then defaults to `per_page`, not `--page-size`.
    Own {
        /// Whether the route is paged.
        paging: bool,
        /// Its default page size, when paged.
        per_page: u64,
        /// Its other parameters.
        params: &'static [crate::dashboard::ParamDoc],
    },
}

/// What a route answers, for the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 201 with the stored record of this schema (the request body has the matching input schema).
    Created(&'static str),
    /// 200 `{"count": N}`.
    Count,
    /// 201 `{"count": N}`: a batch of metrics stored, sent as `application/x-ndjson`.
    Stored,
    /// 200 one page: `extra` string fields, then `key` holding `item`s ("string" or a schema);
    /// 204 when empty.
    Page {
        /// The array's key.
        key: &'static str,
        /// A schema name, or "string".
        item: &'static str,
        /// String fields echoing path segments.
        extra: &'static [&'static str],
    },
    /// 200 `{"metrics": [...]}`, at most n rows, not paged; 204 when empty.
    Ranked,
    /// 200 a document of this media type.
    Document(&'static str),
    /// 200 a comparison of two sets of runs; 404 when a side matches no session.
    Comparison,
    /// 200 what a DELETE removed (`{"session_h", "deleted": {"sessions", "metrics"}}`); 404 when
    /// there was nothing to remove.
    Deleted,
    /// 200 one JSON object of this schema; with `missing`, 404 for the reason it gives.
    Object {
        /// The schema's name.
        schema: &'static str,
        /// When the route answers 404, if it can.
        missing: Option<&'static str>,
    },
}

/// One route: method, path under [`API_PREFIX`], its handler and what the document says of it.
/// A GET route answers HEAD too, with the same status and headers and no body.
pub struct Endpoint {
    /// GET, POST or DELETE.
    pub method: Method,
    /// actix path pattern; `{name}` segments are path parameters.
    pub path: &'static str,
    /// One line for the document.
    pub summary: &'static str,
    /// The document's tag (group).
    pub tag: &'static str,
    /// Query parameters.
    pub query: QueryKind,
    /// Successful answer.
    pub answer: Answer,
    /// The route calling the handler for requests of the given method.
    route: fn(Method) -> actix_web::Route,
}

macro_rules! endpoint {
    ($method:ident $path:literal, $handler:path, $tag:literal, query = $query:expr, $answer:expr, $summary:literal) => {
        endpoint!(@ $method $path, $handler, $tag, $query, $answer, $summary)
    };
    ($method:ident $path:literal, $handler:path, $tag:literal, $query:ident, $answer:expr, $summary:literal) => {
        endpoint!(@ $method $path, $handler, $tag, QueryKind::$query, $answer, $summary)
    };
    (@ $method:ident $path:literal, $handler:path, $tag:literal, $query:expr, $answer:expr, $summary:literal) => {
        Endpoint {
            method: Method::$method,
            path: $path,
            summary: $summary,
            tag: $tag,
            query: $query,
            answer: $answer,
            route: |method| web::method(method).to($handler),
        }
    };
}

const RUNS_QUERY: QueryKind = QueryKind::Own {
    paging: true,
    per_page: crate::dashboard::RUNS_PER_PAGE,
    params: &crate::dashboard::RUNS_PARAMS,
};
const TESTS_QUERY: QueryKind = QueryKind::Own {
    paging: true,
    per_page: crate::dashboard::TESTS_PER_PAGE,
    params: &crate::dashboard::TESTS_PARAMS,
};
const TREND_QUERY: QueryKind = QueryKind::Own {
    paging: false,
    per_page: 0,
    params: &crate::dashboard::TREND_PARAMS,
};

const METRIC_PAGE: Answer = Answer::Page {
    key: "metrics",
    item: "Metric",
    extra: &[],
};
const SESSION_PAGE: Answer = Answer::Page {
    key: "sessions",
    item: "Session",
    extra: &[],
};
const CONTEXT_PAGE: Answer = Answer::Page {
    key: "contexts",
    item: "Context",
    extra: &[],
};

/// Every route, in registration order: a literal segment (`count`, `metrics`) is registered
/// before a parameter (`{prefix}`) that would also match it.
pub const ENDPOINTS: &[Endpoint] = &[
    // metrics
    endpoint!(POST "/metrics", metrics::post, "metrics", None, Answer::Created("Metric"),
        "Store one test's metric (seed or pytest-monitor field names)."),
    endpoint!(POST "/metrics/batch", metrics::post_batch, "metrics", None, Answer::Stored,
        "Store many metrics at once, one JSON object per line (application/x-ndjson); all or none."),
    endpoint!(GET "/metrics", metrics::index, "metrics", MetricFilters, METRIC_PAGE,
        "List metrics in the order stored, filtered and sorted on request."),
    endpoint!(GET "/metrics/count", metrics::count, "metrics", MetricCountFilters, Answer::Count,
        "Count metrics (the filters of the listing apply)."),
    // contexts
    endpoint!(POST "/contexts", contexts::post, "contexts", None, Answer::Created("Context"),
        "Store an execution context; 201 also when an identical one exists, 409 when different."),
    endpoint!(GET "/contexts", contexts::index, "contexts", Paging, CONTEXT_PAGE,
        "List execution contexts."),
    endpoint!(GET "/contexts/count", contexts::count, "contexts", None, Answer::Count,
        "Count execution contexts."),
    endpoint!(GET "/contexts/{context_h}/metrics", contexts::metrics, "contexts", MetricFilters,
        METRIC_PAGE, "List the metrics measured on a context."),
    endpoint!(GET "/contexts/{context_h}/metrics/count", contexts::metrics_count, "contexts",
        MetricCountFilters, Answer::Count, "Count the metrics measured on a context."),
    endpoint!(GET "/contexts/{prefix}", contexts::by_prefix, "contexts", Paging, CONTEXT_PAGE,
        "List the contexts whose hash starts with a prefix; 204 when none does."),
    // sessions
    endpoint!(POST "/sessions", sessions::post, "sessions", None, Answer::Created("Session"),
        "Store a session; 201 also when an identical one exists, 409 when different."),
    endpoint!(GET "/sessions", sessions::index, "sessions", SessionFlags, SESSION_PAGE,
        "List sessions, optionally those carrying some tags."),
    endpoint!(GET "/sessions/count", sessions::count, "sessions", None, Answer::Count,
        "Count sessions."),
    endpoint!(GET "/sessions/{session_h}/metrics", sessions::metrics, "sessions", MetricFilters,
        METRIC_PAGE, "List the metrics of a session."),
    endpoint!(GET "/sessions/{session_h}/metrics/count", sessions::metrics_count, "sessions",
        MetricCountFilters, Answer::Count, "Count the metrics of a session."),
    endpoint!(GET "/sessions/{prefix}", sessions::by_prefix, "sessions", SessionFlags,
        SESSION_PAGE, "List the sessions whose hash starts with a prefix; 204 when none does."),
    // The same pattern as the listing by prefix (one path, two methods), but the whole hash.
    endpoint!(DELETE "/sessions/{prefix}", sessions::delete, "sessions", None, Answer::Deleted,
        "Delete a session (its whole hash), its tags and its metrics; 404 when none is stored."),
    // components
    endpoint!(GET "/components", components::index, "components", Paging,
        Answer::Page { key: "components", item: "string", extra: &[] },
        "List components (not the empty one), alphabetically."),
    endpoint!(GET "/components/count", components::count, "components", None, Answer::Count,
        "Count components (not the empty one)."),
    endpoint!(GET "/components/metrics", components::metrics_without, "components",
        MetricFilters, METRIC_PAGE, "List the metrics that belong to no component."),
    endpoint!(GET "/components/items/{item}/metrics", components::item_metrics_without,
        "components", MetricFilters, METRIC_PAGE,
        "List the metrics of a test item that belong to no component."),
    endpoint!(GET "/components/variants/{variant}/metrics", components::variant_metrics_without,
        "components", MetricFilters, METRIC_PAGE,
        "List the metrics of a test variant that belong to no component."),
    endpoint!(GET "/components/{component}/metrics", components::metrics, "components",
        MetricFilters, METRIC_PAGE, "List the metrics of a component."),
    endpoint!(GET "/components/{component}/pipelines", components::pipelines, "components",
        Paging, Answer::Page { key: "pipelines", item: "string", extra: &["component"] },
        "List the pipelines whose sessions reported metrics of a component."),
    endpoint!(GET "/components/{component}/pipelines/{pipeline}/builds", components::builds,
        "components", Paging,
        Answer::Page { key: "builds", item: "string", extra: &["component", "pipeline"] },
        "List the builds of a pipeline that reported metrics of a component."),
    endpoint!(GET "/components/{component}/pipelines/{pipeline}/builds/{build}/sessions",
        components::build_sessions, "components", Paging,
        Answer::Page { key: "sessions", item: "string", extra: &["component", "pipeline", "build"] },
        "List the sessions of a build that reported metrics of a component."),
    endpoint!(GET "/components/{component}/items/{item}/metrics", components::item_metrics,
        "components", MetricFilters, METRIC_PAGE, "List the metrics of a test item of a component."),
    endpoint!(GET "/components/{component}/variants/{variant}/metrics",
        components::variant_metrics, "components", MetricFilters, METRIC_PAGE,
        "List the metrics of a test variant of a component."),
    endpoint!(GET "/components/{prefix}", components::by_prefix, "components", Paging,
        Answer::Page { key: "components", item: "string", extra: &[] },
        "List the components starting with a prefix."),
    // items and variants
    endpoint!(GET "/items/like/{pattern}/metrics", items::item_like, "items", MetricFilters,
        METRIC_PAGE, "List the metrics of test items whose name contains a text."),
    endpoint!(GET "/items/{item}/metrics", items::item_metrics, "items", MetricFilters,
        METRIC_PAGE, "List the metrics of a test item."),
    endpoint!(GET "/items/{item}/metrics/count", items::item_count, "items", MetricCountFilters,
        Answer::Count, "Count the metrics of a test item."),
    endpoint!(GET "/variants/like/{pattern}/metrics", items::variant_like, "variants",
        MetricFilters, METRIC_PAGE, "List the metrics of test variants whose name contains a text."),
    endpoint!(GET "/variants/{variant}/metrics", items::variant_metrics, "variants",
        MetricFilters, METRIC_PAGE, "List the metrics of a test variant."),
    endpoint!(GET "/variants/{variant}/metrics/count", items::variant_count, "variants",
        MetricCountFilters, Answer::Count, "Count the metrics of a test variant."),
    // filters
    endpoint!(GET "/filters/scope/{kind}/metrics", filters::scope_metrics, "filters",
        MetricFilters, METRIC_PAGE, "List the metrics of one kind of item (function, class...)."),
    endpoint!(GET "/filters/scope/{kind}/metrics/count", filters::scope_count, "filters",
        MetricCountFilters, Answer::Count, "Count the metrics of one kind of item."),
    endpoint!(GET "/filters/scm/{scm_prefix}/metrics", filters::scm_metrics, "filters",
        MetricFilters, METRIC_PAGE,
        "List the metrics of sessions whose SCM reference starts with a prefix."),
    endpoint!(GET "/filters/scm/{scm_prefix}/metrics/count", filters::scm_count, "filters",
        MetricCountFilters, Answer::Count,
        "Count the metrics of sessions whose SCM reference starts with a prefix."),
    endpoint!(GET "/filters/scm/{scm_prefix}/sessions", filters::scm_sessions, "filters",
        Paging, SESSION_PAGE, "List the sessions whose SCM reference starts with a prefix."),
    // pipelines
    endpoint!(GET "/pipelines", pipelines::index, "pipelines", Paging,
        Answer::Page { key: "pipelines", item: "string", extra: &[] },
        "List pipelines (session tag pipeline_branch)."),
    endpoint!(GET "/pipelines/{pipeline}/builds", pipelines::builds, "pipelines", Paging,
        Answer::Page { key: "builds", item: "string", extra: &["pipeline"] },
        "List the builds of a pipeline (session tag pipeline_build_no)."),
    endpoint!(GET "/pipelines/{pipeline}/builds/{build}/sessions", pipelines::build_sessions,
        "pipelines", Paging,
        Answer::Page { key: "sessions", item: "string", extra: &["pipeline", "build"] },
        "List the sessions of a build of a pipeline."),
    // resources
    endpoint!(GET "/resources/{resource}/{direction}/metrics", resources::all, "resources",
        None, Answer::Ranked, "The 10 metrics that used the most (head) or least (tail) of a resource."),
    endpoint!(GET "/resources/{resource}/{direction}/{n}/metrics", resources::all_n, "resources",
        None, Answer::Ranked, "The n (at most 500) metrics that used the most or least of a resource."),
    endpoint!(GET "/resources/{resource}/components/{component}/{direction}/metrics",
        resources::component, "resources", None, Answer::Ranked,
        "Head or tail of a resource among a component's metrics."),
    endpoint!(GET "/resources/{resource}/components/{component}/{direction}/{n}/metrics",
        resources::component_n, "resources", None, Answer::Ranked,
        "Head or tail (n rows) of a resource among a component's metrics."),
    endpoint!(GET "/resources/{resource}/pipelines/{pipeline}/{direction}/metrics",
        resources::pipeline, "resources", None, Answer::Ranked,
        "Head or tail of a resource among a pipeline's metrics."),
    endpoint!(GET "/resources/{resource}/pipelines/{pipeline}/{direction}/{n}/metrics",
        resources::pipeline_n, "resources", None, Answer::Ranked,
        "Head or tail (n rows) of a resource among a pipeline's metrics."),
    endpoint!(GET "/resources/{resource}/pipelines/{pipeline}/builds/{build}/{direction}/metrics",
        resources::build, "resources", None, Answer::Ranked,
        "Head or tail of a resource among the metrics of one build of a pipeline."),
    endpoint!(GET "/resources/{resource}/pipelines/{pipeline}/builds/{build}/{direction}/{n}/metrics",
        resources::build_n, "resources", None, Answer::Ranked,
        "Head or tail (n rows) of a resource among the metrics of one build of a pipeline."),
    // regressions
    endpoint!(GET "/compare", compare::get, "compare", Comparison, Answer::Comparison,
        "Compare a candidate set of runs with a baseline: per test, wall time, CPU time and memory, with a verdict."),
    // the dashboard's aggregates
    endpoint!(GET "/runs", dashboard::index, "dashboard", query = RUNS_QUERY,
        Answer::Page { key: "runs", item: "Run", extra: &[] },
        "List runs (sessions) newest first, with their number of metrics, total wall time and contexts."),
    endpoint!(GET "/runs/{session_h}", dashboard::show, "dashboard", None,
        Answer::Object { schema: "Run", missing: Some("No session has this hash.") },
        "One run (session), with its number of metrics, total wall time and contexts."),
    endpoint!(GET "/tests/trend", dashboard::trend, "dashboard", query = TREND_QUERY,
        Answer::Object { schema: "Trend", missing: Some("The test has no metric (on this context).") },
        "One test's wall time, CPU time and memory run after run, one series per execution context."),
    endpoint!(GET "/tests", dashboard::tests, "dashboard", query = TESTS_QUERY,
        Answer::Page { key: "tests", item: "TestSummary", extra: &[] },
        "List tests (context, module, variant) ranked by their largest wall time (slowest) or memory (hungriest)."),
    endpoint!(GET "/tags", dashboard::tags, "dashboard", None,
        Answer::Object { schema: "Tags", missing: None },
        "Every session tag name with its most used values (at most 100), for filter menus."),
    endpoint!(GET "/summary", dashboard::summary, "dashboard", None,
        Answer::Object { schema: "Summary", missing: None },
        "How many metrics, sessions, contexts, components and tests are stored, and the first and last run dates."),
    // the document
    endpoint!(GET "/openapi.json", docs::openapi, "documentation", None,
        Answer::Document("application/json"), "This API's OpenAPI 3 document."),
    endpoint!(GET "/docs", docs::page, "documentation", None, Answer::Document("text/html"),
        "A human-readable page rendering the OpenAPI document, with no external resources."),
];

/// Registers every route of [`ENDPOINTS`] under [`API_PREFIX`], with HEAD beside every GET, and
/// JSON answers for unknown routes (404) and methods (405, with `Allow` listing the path's
/// methods).
///
/// Paths are registered without a trailing slash: the app's path normalisation trims it and folds
/// repeated slashes before routing, so `/metrics/`, `/metrics` and `//metrics/` all land here.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut scope = web::scope(API_PREFIX);
    let mut done: Vec<&str> = Vec::new();
    for endpoint in ENDPOINTS {
        if done.contains(&endpoint.path) {
            continue;
        }
        done.push(endpoint.path);
        let same_path = || ENDPOINTS.iter().filter(|e| e.path == endpoint.path);
        let allowed = allowed_methods(same_path().map(|e| &e.method));
        let mut resource = web::resource(endpoint.path).default_service(web::to(move || {
            let allowed = allowed.clone();
            async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allowed)) }
        }));
        for same in same_path() {
            resource = resource.route((same.route)(same.method.clone()));
            if same.method == Method::GET {
                // actix-web leaves out the body of an answer to HEAD, keeping its headers.
                resource = resource.route((same.route)(Method::HEAD));
            }
        }
        scope = scope.service(resource);
    }
    cfg.app_data(web::PathConfig::default().error_handler(|err, _| {
        ApiError::bad_request(format!("A path segment is not valid: {err}.")).into()
    }))
    .service(scope)
    .default_service(web::to(not_found));
}

/// The `Allow` header's value for a path with routes of these methods: each once, HEAD after GET.
fn allowed_methods<'a>(methods: impl Iterator<Item = &'a Method>) -> String {
    let mut names: Vec<&str> = Vec::new();
    for method in methods {
        names.push(method.as_str());
        if *method == Method::GET {
            names.push(Method::HEAD.as_str());
        }
    }
    names.dedup();
    names.join(", ")
}

/// The middleware that lets a path carry a trailing slash and repeated slashes
/// (`//api//v1//metrics//`, as pytest-monitor sends with a base URL ending in `/`): it trims the
/// trailing slashes and folds runs of slashes before routing, as actix-web's `NormalizePath`
/// with `TrailingSlash::Trim` does. Written here because that one runs a regular expression over
/// every path, a tenth of what a POST cost the server; most paths need nothing, which a scan of
/// their bytes tells.
pub async fn normalize_path(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(uri) = normalized_uri(req.uri()) {
        req.match_info_mut().get_mut().update(&uri);
        req.head_mut().uri = uri;
    }
    next.call(req).await
}

/// `uri` with its path's trailing slashes trimmed and runs of slashes folded into one (the root
/// stays `/`); `None` when that changes nothing, or cannot be written as a URI.
fn normalized_uri(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let trailing = path.len() > 1 && path.ends_with('/');
    if !trailing && !path.contains("//") {
        return None;
    }
    let mut folded = String::with_capacity(path.len());
    for part in path.split('/').filter(|part| !part.is_empty()) {
        folded.push('/');
        folded.push_str(part);
    }
    if folded.is_empty() {
        folded.push('/');
    }
    if let Some(query) = uri.query() {
        folded.push('?');
        folded.push_str(query);
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(folded).ok()?);
    Uri::from_parts(parts).ok()
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "There is no route {} {}.",
        req.method(),
        req.path()
    )))
}

/// The request's media type (`Content-Type` without its parameters), lower-cased; empty when
/// there is none.
pub fn media_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|value| value.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// True for `application/json` and the `application/*+json` family, parameters ignored.
fn declares_json(req: &HttpRequest) -> bool {
    let essence = media_type(req);
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads a JSON object body: 415 unless it is declared JSON, 413 past [`BODY_LIMIT`], 408 past
/// [`BODY_TIMEOUT`].
pub async fn read_json(req: &HttpRequest, payload: web::Payload) -> Result<JsonObject, ApiError> {
    if !declares_json(req) {
        return Err(ApiError::UnsupportedMediaType("application/json"));
    }
    let body = read_body(req, payload, BODY_LIMIT, BODY_TIMEOUT).await?;
    JsonObject::from_slice(&body)
}

/// Reads a whole request body: 413 past `limit` bytes (checked before reading when the client
/// declares its length, so an oversized upload is not buffered), 408 when it takes longer than
/// `timeout` to arrive.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<web::BytesMut, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let read = async {
        // Sized from the declared length (within the limit), so a large body is not copied
        // again each time the buffer doubles.
        let expected = declared.map_or(0, |len| len as usize);
        let mut body = web::BytesMut::with_capacity(expected);
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|err| {
                ApiError::bad_request(format!("The request body could not be read: {err}."))
            })?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    // A client that trickles its body would otherwise hold a worker's connection indefinitely.
    actix_web::rt::time::timeout(timeout, read)
        .await
        .map_err(|_| ApiError::RequestTimeout)?
}

/// Answers one page of `selection` under `key`, after `extra` fields; count and rows are read in
/// one transaction so the page and `total_page` agree. 204 when the selection is empty.
pub async fn listing<S: Selection>(
    req: &HttpRequest,
    state: &AppState,
    extra: Map<String, Value>,
    key: &'static str,
    selection: S,
) -> Result<HttpResponse, ApiError> {
    listing_sized(req, state, state.page_size, extra, key, selection).await
}

/// [`listing`], with `page_size` rows per page when the client sends no `per_page`.
pub async fn listing_sized<S: Selection>(
    req: &HttpRequest,
    state: &AppState,
    page_size: u64,
    extra: Map<String, Value>,
    key: &'static str,
    selection: S,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::from_query(&query_pairs(req)?, page_size)?;
    let mut body = PageBody::start(&extra, key)?;
    let found = state
        .db
        .run(move |conn| {
            let tx = conn.transaction()?;
            let count = selection.count(&tx)?;
            let Some(window) = page.window(count)? else {
                return Ok(None);
            };
            selection.write_page(&tx, window.offset, window.limit, count, body.rows())?;
            Ok(Some((body, window)))
        })
        .await?;
    match found {
        None => Ok(HttpResponse::NoContent().finish()),
        Some((body, window)) => body.finish(req, window),
    }
}

/// Answers a page of the metrics `base` selects, narrowed by the request's filters and sorted on
/// request.
pub async fn metric_listing(
    req: &HttpRequest,
    state: &AppState,
    base: MetricQuery,
) -> Result<HttpResponse, ApiError> {
    let query = base.with_filters(&query_pairs(req)?, &[])?;
    listing(req, state, Map::new(), "metrics", query).await
}

/// The `{"count": N}` answer for any selection.
pub async fn count<S: Selection>(state: &AppState, selection: S) -> Result<HttpResponse, ApiError> {
    let n = state.db.run(move |conn| Ok(selection.count(conn)?)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "count": n })))
}

/// The `{"count": N}` answer for the metrics `base` selects, narrowed by the request's filters.
pub async fn metric_count(
    req: &HttpRequest,
    state: &AppState,
    base: MetricQuery,
) -> Result<HttpResponse, ApiError> {
    let query = base.with_filters(&query_pairs(req)?, &[])?;
    count(state, query).await
}

/// A JSON object of string fields, for the `extra` of a listing.
pub fn fields<const N: usize>(pairs: [(&str, &str); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(text: &str) -> Option<String> {
        normalized_uri(&text.parse::<Uri>().unwrap()).map(|uri| uri.to_string())
    }

    #[test]
    fn trailing_and_repeated_slashes_are_folded_and_the_query_kept() {
        assert_eq!(normalized("/api/v1/metrics"), None);
        assert_eq!(normalized("/"), None);
        assert_eq!(
            normalized("/api/v1/metrics/").as_deref(),
            Some("/api/v1/metrics")
        );
        assert_eq!(
            normalized("//api//v1//metrics//?page=2&per_page=1").as_deref(),
            Some("/api/v1/metrics?page=2&per_page=1")
        );
        assert_eq!(normalized("///").as_deref(), Some("/"));
        assert_eq!(
            normalized("/api/v1/items/like/100%25/metrics/").as_deref(),
            Some("/api/v1/items/like/100%25/metrics")
        );
    }
}
