//! `/metrics`: store one test's measurements, list them page by page, count them.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::models::Metric;
use crate::query::MetricQuery;
use crate::AppState;

/// `POST /metrics/`: stores a metric sent in the seed's or pytest-monitor's spelling; 201 with
/// the stored record once it is committed.
pub async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let metric = Metric::from_json(super::read_json(&req, payload).await?)?;
    let stored = state.db.store_metrics(vec![metric]).await?;
    Ok(HttpResponse::Created().json(&stored[0]))
}

/// `GET /metrics/`: metrics in the order stored (or sorted), filtered on request, page by page.
pub async fn index(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    super::metric_listing(&req, &state, MetricQuery::all()).await
}

/// `GET /metrics/count`: how many metrics are stored (or match the filters).
pub async fn count(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    super::metric_count(&req, &state, MetricQuery::all()).await
}
