//! What an orchestrator and a monitoring system ask of the server, at the root rather than under
//! `/api/v1`: `GET /healthz` (the process serves), `GET /readyz` (the database takes writes) and
//! `GET /metrics` (Prometheus). Health and readiness need no token; `/metrics` takes the read
//! token, or `--metrics-token` when one is set ([`crate::routes::middleware::auth`]).

use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::routes::params::Query;
use crate::state::AppState;
use crate::telemetry::{Telemetry, OPENMETRICS, PROMETHEUS_TEXT};

/// The Prometheus exposition's path.
pub const METRICS_PATH: &str = "/metrics";

/// Whether a request is a probe the token check lets through: whether the process serves and
/// whether it can write tell nothing of the data.
pub fn is_public(method: &Method, path: &str) -> bool {
    matches!(*method, Method::GET | Method::HEAD) && matches!(path, "/healthz" | "/readyz")
}

/// `GET /healthz`: 200 whenever the process answers at all.
pub async fn healthz(_query: Query) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(json!({"status": "ok"})))
}

/// `GET /readyz`: 200 when a write would be stored now; 503 with the reason when the disk is
/// full, the file or its file system is read-only, or the writer does not answer.
pub async fn readyz(state: web::Data<AppState>, _query: Query) -> Result<HttpResponse, ApiError> {
    Ok(match state.db.readiness().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok"})),
        Err(reason) => {
            log::warn!("not ready: {reason}");
            HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
                .json(json!({"status": "unavailable", "message": reason}))
        }
    })
}

/// `GET /metrics`: the Prometheus exposition, in OpenMetrics when the client accepts it (as
/// Prometheus does), else in Prometheus' text format. Like the documents, it ignores its query
/// string: a scraper may be set up to send parameters.
pub async fn metrics(
    req: HttpRequest,
    telemetry: web::Data<Telemetry>,
) -> Result<HttpResponse, ApiError> {
    let openmetrics = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    let text = telemetry.render(openmetrics).map_err(|err| {
        log::error!("cannot write the metrics out: {err}");
        ApiError::Internal
    })?;
    let media = if openmetrics {
        OPENMETRICS
    } else {
        PROMETHEUS_TEXT
    };
    Ok(HttpResponse::Ok().content_type(media).body(text))
}
