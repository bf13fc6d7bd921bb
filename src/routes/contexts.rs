//! `/contexts`: the machines sessions ran on. pytest-monitor looks its context up by hash at
//! session start and creates it when the lookup answers 204.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Map;

use crate::db::query::{MetricQuery, TextColumn};
use crate::db::{self, ContextPrefix};
use crate::error::ApiError;
use crate::models::Context;
use crate::routes::pagination::{no_params, only_params, query_pairs};
use crate::state::AppState;

/// `POST /contexts/`: 201 with the stored context, also when an identical one already exists
/// (xdist workers race to create it); 409 when the hash is taken by different content.
pub async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let context = Context::from_json(super::read_json(&req, payload).await?)?;
    let stored = state
        .db
        .write(move |conn| db::insert_context(conn, &context))
        .await?;
    Ok(HttpResponse::Created().json(stored.into_inner()))
}

/// `GET /contexts/`: every context, one page at a time.
pub async fn index(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    list(&state, &req, String::new()).await
}

/// `GET /contexts/<prefix>`: the contexts whose hash starts with `prefix`; 204 when none does,
/// which is how pytest-monitor learns it must create its context.
pub async fn by_prefix(
    state: web::Data<AppState>,
    req: HttpRequest,
    prefix: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    list(&state, &req, prefix.into_inner()).await
}

async fn list(
    state: &AppState,
    req: &HttpRequest,
    prefix: String,
) -> Result<HttpResponse, ApiError> {
    only_params(&query_pairs(req)?, &[])?;
    super::listing(req, state, Map::new(), "contexts", ContextPrefix(prefix)).await
}

/// `GET /contexts/count`: how many contexts are stored.
pub async fn count(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    no_params(&query_pairs(&req)?)?;
    super::count(&state, ContextPrefix(String::new())).await
}

/// `GET /contexts/<h>/metrics`: the metrics measured on one context.
pub async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    h: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::ContextH, &h);
    super::metric_listing(&req, &state, base).await
}

/// `GET /contexts/<h>/metrics/count`: how many metrics were measured on one context.
pub async fn metrics_count(
    state: web::Data<AppState>,
    req: HttpRequest,
    h: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::ContextH, &h);
    super::metric_count(&req, &state, base).await
}
