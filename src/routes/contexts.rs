//! `/contexts`: the machines sessions ran on. pytest-monitor looks its context up by hash at
//! session start and creates it when the lookup answers 204.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Map;

use crate::db::query::{MetricQuery, TextColumn};
use crate::db::{self, ContextPrefix};
use crate::error::ApiError;
use crate::models::Context;
use crate::routes::body::read_json;
use crate::routes::listing::{count as count_of, listing, metric_count, metric_listing};
use crate::routes::params::Query;
use crate::state::AppState;

/// `POST /contexts/`: 201 with the stored context, also when an identical one already exists
/// (xdist workers race to create it); 409 when the hash is taken by different content.
pub async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let context = Context::from_json(read_json(&req, payload).await?)?;
    let stored = state
        .db
        .write(move |conn| db::insert_context(conn, &context))
        .await?;
    Ok(HttpResponse::Created().json(stored.into_inner()))
}

/// `GET /contexts/`: every context, one page at a time.
pub async fn index(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let contexts = ContextPrefix(String::new());
    listing(&req, &state, &query, Map::new(), "contexts", contexts).await
}

/// `GET /contexts/<prefix>`: the contexts whose hash starts with `prefix`; 204 when none does,
/// which is how pytest-monitor learns it must create its context.
pub async fn by_prefix(
    state: web::Data<AppState>,
    req: HttpRequest,
    prefix: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let contexts = ContextPrefix(prefix.into_inner());
    listing(&req, &state, &query, Map::new(), "contexts", contexts).await
}

/// `GET /contexts/count`: how many contexts are stored.
pub async fn count(state: web::Data<AppState>, _query: Query) -> Result<HttpResponse, ApiError> {
    count_of(&state, ContextPrefix(String::new())).await
}

/// `GET /contexts/<h>/metrics`: the metrics measured on one context.
pub async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    h: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::ContextH, &h);
    metric_listing(&req, &state, &query, base).await
}

/// `GET /contexts/<h>/metrics/count`: how many metrics were measured on one context.
pub async fn metrics_count(
    state: web::Data<AppState>,
    h: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::ContextH, &h);
    metric_count(&state, &query, base).await
}
