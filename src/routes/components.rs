//! `/components`: the components tests belong to, their metrics, and the pipelines, builds and
//! sessions that reported them.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Map;

use crate::db::query::{MetricQuery, TextColumn};
use crate::db::NameQuery;
use crate::error::ApiError;
use crate::routes::pagination::{no_params, only_params, query_pairs};
use crate::state::AppState;

use super::fields;

/// `GET /components/`: every non-empty component, alphabetically.
pub async fn index(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    names(
        &state,
        &req,
        Map::new(),
        "components",
        NameQuery::components(None),
    )
    .await
}

/// `GET /components/<prefix>`: the components starting with `prefix`.
pub async fn by_prefix(
    state: web::Data<AppState>,
    req: HttpRequest,
    prefix: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = NameQuery::components(Some(&prefix));
    names(&state, &req, Map::new(), "components", query).await
}

/// `GET /components/count`: how many non-empty components there are.
pub async fn count(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    no_params(&query_pairs(&req)?)?;
    super::count(&state, NameQuery::components(None)).await
}

async fn names(
    state: &AppState,
    req: &HttpRequest,
    extra: Map<String, serde_json::Value>,
    key: &'static str,
    query: NameQuery,
) -> Result<HttpResponse, ApiError> {
    only_params(&query_pairs(req)?, &[])?;
    super::listing(req, state, extra, key, query).await
}

/// `GET /components/<c>/metrics`: the metrics of one component.
pub async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    component: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::Component, &component);
    super::metric_listing(&req, &state, base).await
}

/// `GET /components/metrics`: the metrics that belong to no component.
pub async fn metrics_without(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::Component, "");
    super::metric_listing(&req, &state, base).await
}

/// `GET /components/<c>/pipelines`: pipelines whose sessions reported metrics of `c`.
pub async fn pipelines(
    state: web::Data<AppState>,
    req: HttpRequest,
    component: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let extra = fields([("component", &component)]);
    let query = NameQuery::component_pipelines(&component);
    names(&state, &req, extra, "pipelines", query).await
}

/// `GET /components/<c>/pipelines/<p>/builds`: builds of `p` that reported metrics of `c`.
pub async fn builds(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (component, pipeline) = path.into_inner();
    let extra = fields([("component", &component), ("pipeline", &pipeline)]);
    let query = NameQuery::component_builds(&component, &pipeline);
    names(&state, &req, extra, "builds", query).await
}

/// `GET /components/<c>/pipelines/<p>/builds/<b>/sessions`: sessions of that build that reported
/// metrics of `c`.
pub async fn build_sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (component, pipeline, build) = path.into_inner();
    let extra = fields([
        ("component", &component),
        ("pipeline", &pipeline),
        ("build", &build),
    ]);
    let query = NameQuery::component_build_sessions(&component, &pipeline, &build);
    names(&state, &req, extra, "sessions", query).await
}

/// `GET /components/<c>/items/<i>/metrics`: metrics of test item `i` in component `c`.
pub async fn item_metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (component, item) = path.into_inner();
    let base = MetricQuery::all()
        .eq(TextColumn::Component, &component)
        .eq(TextColumn::Item, &item);
    super::metric_listing(&req, &state, base).await
}

/// `GET /components/items/<i>/metrics`: metrics of test item `i` that belong to no component.
pub async fn item_metrics_without(
    state: web::Data<AppState>,
    req: HttpRequest,
    item: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all()
        .eq(TextColumn::Component, "")
        .eq(TextColumn::Item, &item);
    super::metric_listing(&req, &state, base).await
}

/// `GET /components/<c>/variants/<v>/metrics`: metrics of variant `v` in component `c`.
pub async fn variant_metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (component, variant) = path.into_inner();
    let base = MetricQuery::all()
        .eq(TextColumn::Component, &component)
        .eq(TextColumn::ItemVariant, &variant);
    super::metric_listing(&req, &state, base).await
}

/// `GET /components/variants/<v>/metrics`: metrics of variant `v` that belong to no component.
pub async fn variant_metrics_without(
    state: web::Data<AppState>,
    req: HttpRequest,
    variant: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all()
        .eq(TextColumn::Component, "")
        .eq(TextColumn::ItemVariant, &variant);
    super::metric_listing(&req, &state, base).await
}
