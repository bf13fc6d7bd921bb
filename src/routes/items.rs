//! `/items` and `/variants`: the metrics of one test (exact name) or of the tests whose name
//! contains a text (`like/`).

use actix_web::{web, HttpRequest, HttpResponse};

use crate::db::query::{MetricQuery, TextColumn};
use crate::error::ApiError;
use crate::routes::listing::{metric_count, metric_listing};
use crate::routes::params::Query;
use crate::state::AppState;

/// `GET /items/<i>/metrics`.
pub async fn item_metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    item: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::Item, &item);
    metric_listing(&req, &state, &query, base).await
}

/// `GET /items/<i>/metrics/count`.
pub async fn item_count(
    state: web::Data<AppState>,
    item: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::Item, &item);
    metric_count(&state, &query, base).await
}

/// `GET /items/like/<p>/metrics`: `p` matches anywhere in the name; `%`, `_` and `\` in it are
/// plain characters.
pub async fn item_like(
    state: web::Data<AppState>,
    req: HttpRequest,
    pattern: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().contains(TextColumn::Item, &pattern);
    metric_listing(&req, &state, &query, base).await
}

/// `GET /variants/<v>/metrics`.
pub async fn variant_metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    variant: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::ItemVariant, &variant);
    metric_listing(&req, &state, &query, base).await
}

/// `GET /variants/<v>/metrics/count`.
pub async fn variant_count(
    state: web::Data<AppState>,
    variant: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::ItemVariant, &variant);
    metric_count(&state, &query, base).await
}

/// `GET /variants/like/<p>/metrics`.
pub async fn variant_like(
    state: web::Data<AppState>,
    req: HttpRequest,
    pattern: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().contains(TextColumn::ItemVariant, &pattern);
    metric_listing(&req, &state, &query, base).await
}
