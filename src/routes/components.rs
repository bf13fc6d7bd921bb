//! `/components`: the components tests belong to, their metrics, and the pipelines, builds and
//! sessions that reported them.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Map;

use crate::db::query::{MetricQuery, TextColumn};
use crate::db::NameQuery;
use crate::error::ApiError;
use crate::routes::listing::{count as count_of, fields, listing, metric_listing};
use crate::routes::params::Query;
use crate::state::AppState;

/// `GET /components/`: every non-empty component, alphabetically.
pub async fn index(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let names = NameQuery::components(None);
    listing(&req, &state, &query, Map::new(), "components", names).await
}

/// `GET /components/<prefix>`: the components starting with `prefix`.
pub async fn by_prefix(
    state: web::Data<AppState>,
    req: HttpRequest,
    prefix: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let names = NameQuery::components(Some(&prefix));
    listing(&req, &state, &query, Map::new(), "components", names).await
}

/// `GET /components/count`: how many non-empty components there are.
pub async fn count(state: web::Data<AppState>, _query: Query) -> Result<HttpResponse, ApiError> {
    count_of(&state, NameQuery::components(None)).await
}

/// `GET /components/<c>/metrics`: the metrics of one component.
pub async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    component: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::Component, &component);
    metric_listing(&req, &state, &query, base).await
}

/// `GET /components/metrics`: the metrics that belong to no component.
pub async fn metrics_without(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::Component, "");
    metric_listing(&req, &state, &query, base).await
}

/// `GET /components/<c>/pipelines`: pipelines whose sessions reported metrics of `c`.
pub async fn pipelines(
    state: web::Data<AppState>,
    req: HttpRequest,
    component: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let extra = fields([("component", &component)]);
    let names = NameQuery::component_pipelines(&component);
    listing(&req, &state, &query, extra, "pipelines", names).await
}

/// `GET /components/<c>/pipelines/<p>/builds`: builds of `p` that reported metrics of `c`.
pub async fn builds(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let (component, pipeline) = path.into_inner();
    let extra = fields([("component", &component), ("pipeline", &pipeline)]);
    let names = NameQuery::component_builds(&component, &pipeline);
    listing(&req, &state, &query, extra, "builds", names).await
}

/// `GET /components/<c>/pipelines/<p>/builds/<b>/sessions`: sessions of that build that reported
/// metrics of `c`.
pub async fn build_sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let (component, pipeline, build) = path.into_inner();
    let extra = fields([
        ("component", &component),
        ("pipeline", &pipeline),
        ("build", &build),
    ]);
    let names = NameQuery::component_build_sessions(&component, &pipeline, &build);
    listing(&req, &state, &query, extra, "sessions", names).await
}

/// `GET /components/<c>/items/<i>/metrics`: metrics of test item `i` in component `c`.
pub async fn item_metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let (component, item) = path.into_inner();
    let base = MetricQuery::all()
        .eq(TextColumn::Component, &component)
        .eq(TextColumn::Item, &item);
    metric_listing(&req, &state, &query, base).await
}

/// `GET /components/items/<i>/metrics`: metrics of test item `i` that belong to no component.
pub async fn item_metrics_without(
    state: web::Data<AppState>,
    req: HttpRequest,
    item: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all()
        .eq(TextColumn::Component, "")
        .eq(TextColumn::Item, &item);
    metric_listing(&req, &state, &query, base).await
}

/// `GET /components/<c>/variants/<v>/metrics`: metrics of variant `v` in component `c`.
pub async fn variant_metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let (component, variant) = path.into_inner();
    let base = MetricQuery::all()
        .eq(TextColumn::Component, &component)
        .eq(TextColumn::ItemVariant, &variant);
    metric_listing(&req, &state, &query, base).await
}

/// `GET /components/variants/<v>/metrics`: metrics of variant `v` that belong to no component.
pub async fn variant_metrics_without(
    state: web::Data<AppState>,
    req: HttpRequest,
    variant: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all()
        .eq(TextColumn::Component, "")
        .eq(TextColumn::ItemVariant, &variant);
    metric_listing(&req, &state, &query, base).await
}
