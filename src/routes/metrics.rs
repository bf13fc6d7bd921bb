//! `/metrics`: store one test's measurements, list them page by page, count them.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::db;
use crate::error::ApiError;
use crate::models::Metric;
use crate::AppState;

/// `POST /metrics/`: stores a metric sent in the seed's or pytest-monitor's spelling; 201 with
/// the stored record once it is committed.
pub async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let metric = Metric::from_json(super::read_json(&req, payload).await?)?;
    let metric = state
        .db
        .run(move |conn| {
            db::insert_metric(conn, &metric)?;
            Ok(metric)
        })
        .await?;
    Ok(HttpResponse::Created().json(metric))
}

/// `GET /metrics/`: every metric in the order stored, one page at a time.
pub async fn index(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    super::listing(req, &state, "metrics", db::count_metrics, db::list_metrics).await
}

/// `GET /metrics/count`: how many metrics are stored.
pub async fn count(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    super::count(&state, db::count_metrics).await
}
