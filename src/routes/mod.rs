//! The HTTP surface: one [`configure`] registers every route, used by the binary and the tests
//! alike, plus the pieces every handler shares (body reading, listings, JSON 404/405).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use rusqlite::Connection;
use serde::Serialize;

use crate::error::ApiError;
use crate::models::JsonObject;
use crate::pagination::{envelope, query_pairs, PageRequest};
use crate::AppState;

pub mod contexts;
pub mod metrics;
pub mod sessions;

/// The largest request body accepted, in bytes (API.md: 1 MiB).
pub const BODY_LIMIT: usize = 1 << 20;

/// Registers every route under `/api/v1`, and JSON answers for unknown routes and methods.
///
/// Paths are registered without a trailing slash: the app's path normalisation trims it and folds
/// repeated slashes before routing, so `/metrics/`, `/metrics` and `//metrics/` all land here.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PathConfig::default().error_handler(|err, _| {
        ApiError::bad_request(format!("A path segment is not valid: {err}.")).into()
    }))
    .service(
        web::scope("/api/v1")
            .service(resource("/metrics").get(metrics::index).post(metrics::post))
            .service(resource("/metrics/count").get(metrics::count))
            .service(
                resource("/contexts")
                    .get(contexts::index)
                    .post(contexts::post),
            )
            .service(resource("/contexts/count").get(contexts::count))
            .service(resource("/contexts/{prefix}").get(contexts::by_prefix))
            .service(
                resource("/sessions")
                    .get(sessions::index)
                    .post(sessions::post),
            )
            .service(resource("/sessions/count").get(sessions::count))
            .service(resource("/sessions/{prefix}").get(sessions::by_prefix)),
    )
    .default_service(web::to(not_found));
}

/// A resource that answers a JSON 405 to the methods it has no route for.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "There is no route {} {}.",
        req.method(),
        req.path()
    )))
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// True for `application/json` and the `application/*+json` family, parameters ignored.
fn declares_json(req: &HttpRequest) -> bool {
    let Some(value) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads a JSON object body: 415 unless it is declared JSON, 413 past [`BODY_LIMIT`] (checked
/// before reading when the client declares its length, so an oversized upload is not buffered).
pub async fn read_json(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<JsonObject, ApiError> {
    if !declares_json(req) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > BODY_LIMIT as u64) {
        return Err(ApiError::PayloadTooLarge(BODY_LIMIT));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| {
            ApiError::bad_request(format!("The request body could not be read: {err}."))
        })?;
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(ApiError::PayloadTooLarge(BODY_LIMIT));
        }
        body.extend_from_slice(&chunk);
    }
    JsonObject::from_slice(&body)
}

/// Answers one page of a listing: `count` sizes the collection, `rows` fetches a window of it,
/// both inside one read transaction so the page and `total_page` agree. 204 when empty.
pub async fn listing<T, C, R>(
    req: HttpRequest,
    state: &AppState,
    key: &'static str,
    count: C,
    rows: R,
) -> Result<HttpResponse, ApiError>
where
    T: Serialize + Send + 'static,
    C: FnOnce(&Connection) -> rusqlite::Result<u64> + Send + 'static,
    R: FnOnce(&Connection, u64, u64) -> rusqlite::Result<Vec<T>> + Send + 'static,
{
    let page = PageRequest::from_query(&query_pairs(&req)?, state.page_size)?;
    let found = state
        .db
        .run(move |conn| {
            let tx = conn.transaction()?;
            let Some(window) = page.window(count(&tx)?)? else {
                return Ok(None);
            };
            let rows = rows(&tx, window.offset, window.limit)?;
            Ok(Some((rows, window)))
        })
        .await?;
    match found {
        None => Ok(HttpResponse::NoContent().finish()),
        Some((rows, window)) => envelope(&req, key, &rows, window),
    }
}

/// The `{"count": N}` answer of the count routes.
pub async fn count<C>(state: &AppState, count: C) -> Result<HttpResponse, ApiError>
where
    C: FnOnce(&Connection) -> rusqlite::Result<u64> + Send + 'static,
{
    let n = state.db.run(move |conn| Ok(count(conn)?)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "count": n })))
}
