//! `/pipelines`: CI pipelines and builds, read from the session tags `pipeline_branch` and
//! `pipeline_build_no` that pytest-monitor sets on Jenkins, GitLab CI, CircleCI, Travis and Drone.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Map;

use crate::db::NameQuery;
use crate::error::ApiError;
use crate::routes::listing::{fields, listing};
use crate::routes::params::Query;
use crate::state::AppState;

/// `GET /pipelines/`.
pub async fn index(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    listing(
        &req,
        &state,
        &query,
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
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let extra = fields([("pipeline", &pipeline)]);
    let builds = NameQuery::builds(&pipeline);
    listing(&req, &state, &query, extra, "builds", builds).await
}

/// `GET /pipelines/<p>/builds/<b>/sessions`.
pub async fn build_sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let (pipeline, build) = path.into_inner();
    let extra = fields([("pipeline", &pipeline), ("build", &build)]);
    let sessions = NameQuery::build_sessions(&pipeline, &build);
    listing(&req, &state, &query, extra, "sessions", sessions).await
}
