//! `/pipelines`: CI pipelines and builds, read from the session tags `pipeline_branch` and
//! `pipeline_build_no` that pytest-monitor sets on Jenkins, GitLab CI, CircleCI, Travis and Drone.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Map;

use crate::db::NameQuery;
use crate::error::ApiError;
use crate::routes::pagination::{only_params, query_pairs};
use crate::state::AppState;

use super::fields;

/// `GET /pipelines/`.
pub async fn index(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    only_params(&query_pairs(&req)?, &[])?;
    super::listing(
        &req,
        &state,
        Map::new(),
        "pipelines",
        NameQuery::pipelines(),
    )
    .await
}

/// `GET /pipelines/<p>/builds`.
pub async fn builds(
    state: web::Data<AppState>,
    req: HttpRequest,
    pipeline: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    only_params(&query_pairs(&req)?, &[])?;
    let extra = fields([("pipeline", &pipeline)]);
    super::listing(&req, &state, extra, "builds", NameQuery::builds(&pipeline)).await
}

/// `GET /pipelines/<p>/builds/<b>/sessions`.
pub async fn build_sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    only_params(&query_pairs(&req)?, &[])?;
    let (pipeline, build) = path.into_inner();
    let extra = fields([("pipeline", &pipeline), ("build", &build)]);
    let query = NameQuery::build_sessions(&pipeline, &build);
    super::listing(&req, &state, extra, "sessions", query).await
}
