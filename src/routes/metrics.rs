//! `/metrics`: store one test's measurements, list them page by page, count them.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::db::query::MetricQuery;
use crate::error::ApiError;
use crate::models::Metric;
use crate::routes::body::{media_type, read_body, read_json};
use crate::routes::listing::{metric_count, metric_listing};
use crate::routes::params::Query;
use crate::state::AppState;

/// `POST /metrics/`: stores a metric sent in the seed's or pytest-monitor's spelling; 201 with
/// the stored record once it is committed.
pub async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let metric = Metric::from_json(read_json(&req, payload).await?)?;
    let stored = state.db.store_metrics(vec![metric]).await?;
    // Written as a page's rows are: the same bytes as serde_json's, at a fraction of the cost.
    let mut body = Vec::with_capacity(512);
    for metric in &stored {
        metric.record().write_json(&mut body).map_err(|err| {
            log::error!("cannot write a stored metric as JSON: {err}");
            ApiError::Internal
        })?;
    }
    Ok(HttpResponse::Created()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body))
}

/// The default largest body of `POST /metrics/batch`: 64 MiB, some 130,000 metrics.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 64 << 20;

/// How large a batch of metrics may be, in bytes of its body ([`crate::server::Options::max_batch_bytes`]).
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
/// ([`crate::models::metrics_from_ndjson`]). The writer parses and stores the body a piece at a
/// time ([`crate::db::Db::store_batch`]), so a batch holds its body in memory and little more.
pub async fn post_batch(
    state: web::Data<AppState>,
    limit: web::Data<BatchLimit>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if media_type(&req) != NDJSON {
        return Err(ApiError::UnsupportedMediaType(NDJSON));
    }
    let body = read_body(&req, payload, limit.0, BATCH_BODY_TIMEOUT).await?;
    let count = state.db.store_batch(body.into()).await?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "count": count })))
}

/// `GET /metrics/`: metrics in the order stored (or sorted), filtered on request, page by page.
pub async fn index(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    metric_listing(&req, &state, &query, MetricQuery::all()).await
}

/// `GET /metrics/count`: how many metrics are stored (or match the filters).
pub async fn count(state: web::Data<AppState>, query: Query) -> Result<HttpResponse, ApiError> {
    metric_count(&state, &query, MetricQuery::all()).await
}
