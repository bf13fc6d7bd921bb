//! `/metrics`: store one test's measurements, list them page by page, count them.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::db::query::MetricQuery;
use crate::error::ApiError;
use crate::models::{line_ends, metrics_from_ndjson, Metric};
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
/// ([`metrics_from_ndjson`]).
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
    let metrics = parse_batch(body.freeze()).await?;
    let stored = state.db.store_metrics(metrics).await?;
    let count = stored.len();
    // Freeing a hundred thousand records takes milliseconds too.
    web::block(move || drop(stored)).await.ok();
    Ok(HttpResponse::Created().json(serde_json::json!({ "count": count })))
}

/// Batches smaller than this are parsed in one piece.
const PARSE_PIECE_BYTES: usize = 1 << 20;

/// Parses a batch on the blocking pool ([`metrics_from_ndjson`]): a large one in pieces split at
/// line ends, one per core (at most [`crate::state::BLOCKING_THREADS_PER_WORKER`]), at once — a
/// 100,000-line body is a few hundred milliseconds of parsing on one core. The first line at
/// fault, in the order of the body, is the one reported.
async fn parse_batch(body: web::Bytes) -> Result<Vec<Metric>, ApiError> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let parts = (body.len() / PARSE_PIECE_BYTES)
        .clamp(1, cores.min(crate::state::BLOCKING_THREADS_PER_WORKER));
    let mut pieces = Vec::with_capacity(parts);
    let (mut start, mut first_line) = (0, 1);
    for k in 1..parts {
        let target = (body.len() * k / parts).max(start);
        let Some(end) = body[target..].iter().position(|&b| b == b'\n') else {
            break;
        };
        let end = target + end + 1;
        pieces.push((first_line, body.slice(start..end)));
        first_line += line_ends(&body[start..end]);
        start = end;
    }
    pieces.push((first_line, body.slice(start..)));
    // Each web::block starts at once; awaiting them in order keeps the order of the lines.
    let parsing: Vec<_> = pieces
        .into_iter()
        .map(|(line, piece)| web::block(move || metrics_from_ndjson(&piece, line)))
        .collect();
    let mut parsed = Vec::with_capacity(parsing.len());
    for piece in parsing {
        parsed.push(piece.await.map_err(|err| {
            log::error!("blocking task failed: {err}");
            ApiError::Internal
        })??);
    }
    if parsed.len() == 1 {
        return Ok(parsed.swap_remove(0));
    }
    // Sized once: growing it piece by piece would copy the records and hold both copies.
    let mut metrics = Vec::with_capacity(parsed.iter().map(Vec::len).sum());
    for piece in parsed {
        metrics.extend(piece);
    }
    Ok(metrics)
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
