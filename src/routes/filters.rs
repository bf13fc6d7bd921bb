//! `/filters`: metrics by item kind (scope) and by SCM reference prefix.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Map;

use crate::db::query::{MetricQuery, TextColumn};
use crate::db::SessionQuery;
use crate::error::ApiError;
use crate::routes::listing::{listing, metric_count, metric_listing};
use crate::routes::params::Query;
use crate::state::AppState;

/// `GET /filters/scope/<kind>/metrics`.
pub async fn scope_metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    kind: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::Kind, &kind);
    metric_listing(&req, &state, &query, base).await
}

/// `GET /filters/scope/<kind>/metrics/count`.
pub async fn scope_count(
    state: web::Data<AppState>,
    kind: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::Kind, &kind);
    metric_count(&state, &query, base).await
}

/// `GET /filters/scm/<prefix>/metrics`: metrics of sessions whose SCM reference starts with it.
pub async fn scm_metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    prefix: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().scm_prefix(&prefix);
    metric_listing(&req, &state, &query, base).await
}

/// `GET /filters/scm/<prefix>/metrics/count`.
pub async fn scm_count(
    state: web::Data<AppState>,
    prefix: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().scm_prefix(&prefix);
    metric_count(&state, &query, base).await
}

/// `GET /filters/scm/<prefix>/sessions`: sessions whose SCM reference starts with `prefix`.
pub async fn scm_sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
    prefix: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let sessions = SessionQuery::all().scm_prefix(&prefix);
    listing(&req, &state, &query, Map::new(), "sessions", sessions).await
}
