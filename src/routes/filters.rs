//! `/filters`: metrics by item kind (scope) and by SCM reference prefix.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Map;

use crate::db::query::{MetricQuery, TextColumn};
use crate::db::SessionQuery;
use crate::error::ApiError;
use crate::routes::pagination::{only_params, query_pairs};
use crate::state::AppState;

/// `GET /filters/scope/<kind>/metrics`.
pub async fn scope_metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    kind: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::Kind, &kind);
    super::metric_listing(&req, &state, base).await
}

/// `GET /filters/scope/<kind>/metrics/count`.
pub async fn scope_count(
    state: web::Data<AppState>,
    req: HttpRequest,
    kind: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::Kind, &kind);
    super::metric_count(&req, &state, base).await
}

/// `GET /filters/scm/<prefix>/metrics`: metrics of sessions whose SCM reference starts with it.
pub async fn scm_metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    prefix: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().scm_prefix(&prefix);
    super::metric_listing(&req, &state, base).await
}

/// `GET /filters/scm/<prefix>/metrics/count`.
pub async fn scm_count(
    state: web::Data<AppState>,
    req: HttpRequest,
    prefix: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().scm_prefix(&prefix);
    super::metric_count(&req, &state, base).await
}

/// `GET /filters/scm/<prefix>/sessions`: sessions whose SCM reference starts with `prefix`.
pub async fn scm_sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
    prefix: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    only_params(&query_pairs(&req)?, &[])?;
    let query = SessionQuery::all().scm_prefix(&prefix);
    super::listing(&req, &state, Map::new(), "sessions", query).await
}
