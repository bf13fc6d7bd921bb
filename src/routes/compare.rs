//! `/compare`: the regressions between a baseline and a candidate set of runs (see
//! [`crate::compare`] for the rules).

use actix_web::{web, HttpRequest, HttpResponse};

use crate::compare::{compare, CompareRequest};
use crate::error::ApiError;
use crate::routes::pagination::query_pairs;
use crate::state::AppState;

/// `GET /compare?baseline=SPEC&candidate=SPEC[&max_slowdown=P...]`.
pub async fn get(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let request = CompareRequest::from_query(&query_pairs(&req)?)?;
    let comparison = state
        .db
        .run(move |conn| {
            // One read transaction: both sides see the same store.
            let tx = conn.transaction()?;
            compare(&tx, &request)
        })
        .await?;
    Ok(HttpResponse::Ok().json(comparison))
}
