//! Reading request bodies: JSON objects and raw bodies, within a size and a time limit.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use crate::error::ApiError;
use crate::models::JsonObject;
use crate::routes::{BODY_LIMIT, BODY_TIMEOUT};

/// The request's media type (`Content-Type` without its parameters), lower-cased; empty when
/// there is none.
pub fn media_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|value| value.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// True for `application/json` and the `application/*+json` family, parameters ignored.
fn declares_json(req: &HttpRequest) -> bool {
    let essence = media_type(req);
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads a JSON object body: 415 unless it is declared JSON, 413 past [`BODY_LIMIT`], 408 past
/// [`BODY_TIMEOUT`].
pub async fn read_json(req: &HttpRequest, payload: web::Payload) -> Result<JsonObject, ApiError> {
    if !declares_json(req) {
        return Err(ApiError::UnsupportedMediaType("application/json"));
    }
    let body = read_body(req, payload, BODY_LIMIT, BODY_TIMEOUT).await?;
    JsonObject::from_slice(&body)
}

/// Reads a whole request body: 413 past `limit` bytes (checked before reading when the client
/// declares its length, so an oversized upload is not buffered), 408 when it takes longer than
/// `timeout` to arrive.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<web::BytesMut, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let read = async {
        // Sized from the declared length (within the limit), so a large body is not copied
        // again each time the buffer doubles.
        let expected = declared.map_or(0, |len| len as usize);
        let mut body = web::BytesMut::with_capacity(expected);
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|err| {
                ApiError::bad_request(format!("The request body could not be read: {err}."))
            })?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    // A client that trickles its body would otherwise hold a worker's connection indefinitely.
    actix_web::rt::time::timeout(timeout, read)
        .await
        .map_err(|_| ApiError::RequestTimeout)?
}
