//! `/openapi.json` and `/docs`: the API described for machines and for people. The page is
//! embedded in the binary and loads nothing from the network.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};

use crate::error::ApiError;

/// The human page; a small script renders `openapi.json` into it.
const DOCS_PAGE: &str = include_str!("../static/docs.html");

/// The OpenAPI document as served, built once at start-up by the server and handed to the app;
/// cloning it shares the bytes.
pub struct ApiDocument(pub web::Bytes);

impl ApiDocument {
    /// The document of [`crate::routes::ENDPOINTS`].
    pub fn build() -> Self {
        ApiDocument(web::Bytes::from(super::openapi::document().to_string()))
    }
}

/// `GET /openapi.json`: the OpenAPI 3 document.
pub async fn openapi(document: web::Data<ApiDocument>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(document.0.clone()))
}

/// `GET /docs`: the page that renders the document.
pub async fn page() -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(DOCS_PAGE))
}
