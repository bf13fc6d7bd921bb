//! The HTTP surface: [`ENDPOINTS`] is the one table of every route — method, path, handler,
//! query parameters ([`params`]) and answer — and [`configure`] registers it, for the binary and
//! the tests alike. The OpenAPI document ([`openapi`]) is generated from the same table, so a
//! route cannot exist without being documented, nor take a parameter the document does not list.
//!
//! The handlers are a file per resource; what they share is in [`body`] (reading bodies),
//! [`listing`] and [`pagination`] (pages and counts) and [`middleware`].

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::routes::params::{Param, RouteParams};

pub mod body;
pub mod changes;
pub mod compare;
pub mod components;
pub mod contexts;
pub mod dashboard;
pub mod docs;
pub mod filters;
pub mod items;
pub mod listing;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod operations;
pub mod pagination;
pub mod params;
pub mod pipelines;
pub mod resources;
pub mod sessions;
pub mod ui;

pub use middleware::{auth, limits};

/// The largest request body accepted, in bytes (docs/api.md: 1 MiB); a batch of metrics has its own
/// limit ([`crate::server::Options::max_batch_bytes`]).
pub const BODY_LIMIT: usize = 1 << 20;

/// How long a client may take to send a whole request body (the headers have their own limit).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Every route lives under this prefix.
pub const API_PREFIX: &str = "/api/v1";

/// What a route accepts in its query string: a name for each table of [`params`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// Nothing.
    None,
    /// `page` and `per_page` ([`params::PAGING`]).
    Paging,
    /// Paging plus the metric filters and sort ([`params::METRIC_LISTING`]).
    MetricFilters,
    /// The metric filters without paging or sort, for count routes ([`params::METRIC_COUNT`]).
    MetricCountFilters,
    /// Paging plus `with_flags`, `restrict_flags`, `method` ([`params::SESSION_LISTING`]).
    SessionFlags,
    /// The sides and thresholds of a comparison ([`params::COMPARISON`]).
    Comparison,
    /// The route's own table.
    Own(&'static [Param]),
}

impl QueryKind {
    /// The parameters, in the order the document lists them.
    pub fn params(self) -> &'static [Param] {
        match self {
            QueryKind::None => &[],
            QueryKind::Paging => &params::PAGING,
            QueryKind::MetricFilters => &params::METRIC_LISTING,
            QueryKind::MetricCountFilters => &params::METRIC_COUNT,
            QueryKind::SessionFlags => &params::SESSION_LISTING,
            QueryKind::Comparison => &params::COMPARISON,
            QueryKind::Own(table) => table,
        }
    }
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
    /// 200 `{"status": "ok"}`; with `unavailable`, 503 and a reason when that is so.
    Probe {
        /// When the route answers 503.
        unavailable: Option<&'static str>,
    },
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

const RUNS_QUERY: QueryKind = QueryKind::Own(&params::RUNS);
const TESTS_QUERY: QueryKind = QueryKind::Own(&params::TESTS);
const TREND_QUERY: QueryKind = QueryKind::Own(&params::TREND);
const CHANGES_QUERY: QueryKind = QueryKind::Own(&params::CHANGES);
const CHANGE_TESTS_QUERY: QueryKind = QueryKind::Own(&params::CHANGE_TESTS);

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
    // change detection
    endpoint!(GET "/changes/tests", changes::tests, "changes", query = CHANGE_TESTS_QUERY,
        Answer::Object { schema: "TestChanges", missing: None },
        "One test's detected changes, noise and drift in a pipeline, per execution context and measure."),
    endpoint!(GET "/changes", changes::index, "changes", query = CHANGES_QUERY,
        Answer::Page { key: "changes", item: "Change", extra: &[] },
        "The detected changes (level shifts) of a pipeline's tests, newest build first."),
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

/// The routes at the root rather than under [`API_PREFIX`], for orchestrators and monitoring:
/// their paths are the ones those tools expect.
pub const ROOT_ENDPOINTS: &[Endpoint] = &[
    endpoint!(GET "/healthz", operations::healthz, "operations", None,
        Answer::Probe { unavailable: None },
        "Liveness: 200 while the process serves. No token needed."),
    endpoint!(GET "/readyz", operations::readyz, "operations", None,
        Answer::Probe { unavailable: Some("The database cannot take writes now (full disk, read-only file or file system, writer stopped); the message says which.") },
        "Readiness: 200 when the database takes writes, 503 with the reason when not. No token needed."),
    endpoint!(GET "/metrics", operations::metrics, "operations", None,
        Answer::Document(crate::telemetry::PROMETHEUS_TEXT),
        "Prometheus metrics: OpenMetrics when accepted, else Prometheus text. Needs the read token, or --metrics-token when set."),
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
        let tables = same_path().map(|e| (e.method.clone(), e.query.params()));
        let mut resource = web::resource(endpoint.path)
            .app_data(RouteParams(tables.collect()))
            .default_service(web::to(move || {
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
    for endpoint in ROOT_ENDPOINTS {
        let table = vec![(endpoint.method.clone(), endpoint.query.params())];
        cfg.service(
            web::resource(endpoint.path)
                .app_data(RouteParams(table))
                .route((endpoint.route)(endpoint.method.clone()))
                .route((endpoint.route)(Method::HEAD)),
        );
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

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "There is no route {} {}.",
        req.method(),
        req.path()
    )))
}
