//! Counts every request by method, route pattern and status, and times it, for `/metrics`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::telemetry::{RequestLabels, RouteLabels, Telemetry};

/// The middleware: records the request once its answer's head is ready. The route is the
/// pattern the router matched, so `/api/v1/sessions/{session_h}/metrics` is one series however
/// many sessions there are; a path no route matches counts as `unmatched`.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let telemetry = req.app_data::<web::Data<Telemetry>>().cloned();
    let response = next.call(req).await?;
    if let Some(telemetry) = telemetry {
        let request = response.request();
        let method = request.method().as_str().to_owned();
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        telemetry
            .latency
            .get_or_create(&RouteLabels {
                method: method.clone(),
                route: route.clone(),
            })
            .observe_duration(started.elapsed());
        telemetry
            .requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status: response.status().as_u16(),
            })
            .inc();
    }
    Ok(response)
}
