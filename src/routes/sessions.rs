//! `/sessions`: one record per pytest run, with its tags.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::db;
use crate::error::ApiError;
use crate::models::Session;
use crate::AppState;

/// `POST /sessions/`: 201 with the stored session, also when an identical one already exists;
/// 409 when the hash is taken by different content.
pub async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let session = Session::from_json(super::read_json(&req, payload).await?)?;
    let stored = state
        .db
        .run(move |conn| db::insert_session(conn, &session))
        .await?;
    Ok(HttpResponse::Created().json(stored.into_inner()))
}

/// `GET /sessions/`: every session, one page at a time.
pub async fn index(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    list(state, req, String::new()).await
}

/// `GET /sessions/<prefix>`: the sessions whose hash starts with `prefix`; 204 when none does.
pub async fn by_prefix(
    state: web::Data<AppState>,
    req: HttpRequest,
    prefix: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    list(state, req, prefix.into_inner()).await
}

async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    prefix: String,
) -> Result<HttpResponse, ApiError> {
    let for_count = prefix.clone();
    super::listing(
        req,
        &state,
        "sessions",
        move |conn| db::count_sessions_by_prefix(conn, &for_count),
        move |conn, offset, limit| db::list_sessions_by_prefix(conn, &prefix, offset, limit),
    )
    .await
}

/// `GET /sessions/count`: how many sessions are stored.
pub async fn count(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    super::count(&state, db::count_sessions).await
}
