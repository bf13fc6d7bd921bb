//! `/metrics`: store one test's measurements, list them page by page, count them.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::models::{metrics_from_ndjson, Metric};
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

/// How large a batch of metrics may be, in bytes of its body ([`crate::Options::max_batch_bytes`]).
#[derive(Debug, Clone, Copy)]
pub struct BatchLimit(pub usize);

/// How long a client may take to send the body of a batch: a batch may be tens of megabytes, far
/// more than [`super::BODY_TIMEOUT`] allows for a single record, yet a client trickling one must
/// still not hold its connection forever.
pub const BATCH_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The media type of a batch: one JSON object per line.
pub const NDJSON: &str = "application/x-ndjson";

/// `POST /metrics/batch`: stores the metrics of an `application/x-ndjson` body, one per line, all
/// or none, as one write; 201 with `{"count": N}` once they are committed. A line is read as a
/// single POST's body; the first line at fault refuses the whole batch with a 400 naming it
/// ([`metrics_from_ndjson`]).
pub async fn post_batch(
    state: web::Data<AppState>,
    limit: web::Data<BatchLimit>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if super::media_type(&req) != NDJSON {
        return Err(ApiError::UnsupportedMediaType(NDJSON));
    }
    let body = super::read_body(&req, payload, limit.0, BATCH_BODY_TIMEOUT).await?;
    // Parsing a large batch takes tens of milliseconds: not on the async executor.
    let metrics = web::block(move || metrics_from_ndjson(&body))
        .await
        .map_err(|err| {
            log::error!("blocking task failed: {err}");
            ApiError::Internal
        })??;
    let stored = state.db.store_metrics(metrics).await?;
    let count = stored.len();
    // Freeing a hundred thousand records takes milliseconds too.
    web::block(move || drop(stored)).await.ok();
    Ok(HttpResponse::Created().json(serde_json::json!({ "count": count })))
}

/// `GET /metrics/`: metrics in the order stored (or sorted), filtered on request, page by page.
pub async fn index(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    super::metric_listing(&req, &state, MetricQuery::all()).await
}

/// `GET /metrics/count`: how many metrics are stored (or match the filters).
pub async fn count(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    super::metric_count(&req, &state, MetricQuery::all()).await
}
