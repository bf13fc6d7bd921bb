//! `/openapi.json` and `/docs`: the API described for machines and for people. The page is
//! embedded in the binary and loads nothing from the network.

use std::sync::OnceLock;

use actix_web::http::header::ContentType;
use actix_web::HttpResponse;

use crate::error::ApiError;
use crate::routes::openapi;

/// The human page; a small script renders `openapi.json` into it.
const DOCS_PAGE: &str = include_str!("../static/docs.html");

/// `GET /openapi.json`: the OpenAPI 3 document, built once from the route table.
pub async fn openapi() -> Result<HttpResponse, ApiError> {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let body = DOCUMENT.get_or_init(|| openapi::document().to_string());
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body.as_str()))
}

/// `GET /docs`: the page that renders the document.
pub async fn page() -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(DOCS_PAGE))
}
