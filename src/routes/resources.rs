//! `/resources/<r>/{head|tail}[/<n>]/metrics`: the metrics that used the most (head) or the least
//! (tail) of a resource, overall or within a component, a pipeline, or a build.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};

use crate::db::query::{Direction, MetricQuery, NumericColumn, TextColumn};
use crate::db::Selection;
use crate::error::ApiError;
use crate::routes::params::Query;
use crate::state::AppState;

/// Rows when the path gives no `n`.
const DEFAULT_ROWS: u64 = 10;
/// The most rows a ranking returns; a larger `n` is capped, as monitor-server-api does.
const MAX_ROWS: u64 = 500;

/// Answers the ranking of `resource` in `direction` among the metrics `base` selects (the
/// route takes no query parameter: its handler's [`Query`] refuses any).
async fn ranked(
    state: &AppState,
    base: MetricQuery,
    resource: &str,
    direction: &str,
    n: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let column = NumericColumn::named(&NumericColumn::RESOURCES, "resource", resource)?;
    let direction = match direction {
        "head" => Direction::Desc,
        "tail" => Direction::Asc,
        _ => {
            return Err(ApiError::bad_field(
                format!("`{direction}` is neither head nor tail."),
                "direction",
                "must be head (most used first) or tail (least used first)",
            ))
        }
    };
    let rows = match n {
        None => DEFAULT_ROWS,
        Some(text) => match text.parse::<u64>() {
            Ok(n) if n >= 1 => n.min(MAX_ROWS),
            _ => {
                return Err(ApiError::bad_field(
                    "The number of rows is not valid.",
                    "n",
                    format!("must be a positive integer (at most {MAX_ROWS} rows are returned)"),
                ))
            }
        },
    };
    let query = base.sorted(column, direction);
    let body = state
        .db
        .run(move |conn| {
            let tx = conn.transaction()?;
            let count = query.count(&tx)?;
            if count == 0 {
                return Ok(None);
            }
            let mut body = br#"{"metrics":"#.to_vec();
            query.write_page(&tx, 0, rows, count, &mut body)?;
            body.push(b'}');
            Ok(Some(body))
        })
        .await?;
    match body {
        None => Ok(HttpResponse::NoContent().finish()),
        Some(body) => Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(body)),
    }
}

/// `GET /resources/<r>/<head|tail>/metrics`.
pub async fn all(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    _query: Query,
) -> Result<HttpResponse, ApiError> {
    let (resource, direction) = path.into_inner();
    ranked(&state, MetricQuery::all(), &resource, &direction, None).await
}

/// `GET /resources/<r>/<head|tail>/<n>/metrics`.
pub async fn all_n(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    _query: Query,
) -> Result<HttpResponse, ApiError> {
    let (resource, direction, n) = path.into_inner();
    ranked(&state, MetricQuery::all(), &resource, &direction, Some(&n)).await
}

/// `GET /resources/<r>/components/<c>/<head|tail>/metrics`.
pub async fn component(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    _query: Query,
) -> Result<HttpResponse, ApiError> {
    let (resource, component, direction) = path.into_inner();
    let base = MetricQuery::all().eq(TextColumn::Component, &component);
    ranked(&state, base, &resource, &direction, None).await
}

/// `GET /resources/<r>/components/<c>/<head|tail>/<n>/metrics`.
pub async fn component_n(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String, String)>,
    _query: Query,
) -> Result<HttpResponse, ApiError> {
    let (resource, component, direction, n) = path.into_inner();
    let base = MetricQuery::all().eq(TextColumn::Component, &component);
    ranked(&state, base, &resource, &direction, Some(&n)).await
}

/// `GET /resources/<r>/pipelines/<p>/<head|tail>/metrics`.
pub async fn pipeline(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    _query: Query,
) -> Result<HttpResponse, ApiError> {
    let (resource, pipeline, direction) = path.into_inner();
    let base = MetricQuery::all().pipeline(&pipeline);
    ranked(&state, base, &resource, &direction, None).await
}

/// `GET /resources/<r>/pipelines/<p>/<head|tail>/<n>/metrics`.
pub async fn pipeline_n(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String, String)>,
    _query: Query,
) -> Result<HttpResponse, ApiError> {
    let (resource, pipeline, direction, n) = path.into_inner();
    let base = MetricQuery::all().pipeline(&pipeline);
    ranked(&state, base, &resource, &direction, Some(&n)).await
}

/// `GET /resources/<r>/pipelines/<p>/builds/<b>/<head|tail>/metrics`.
pub async fn build(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String, String)>,
    _query: Query,
) -> Result<HttpResponse, ApiError> {
    let (resource, pipeline, build, direction) = path.into_inner();
    let base = MetricQuery::all().pipeline_build(&pipeline, &build);
    ranked(&state, base, &resource, &direction, None).await
}

/// `GET /resources/<r>/pipelines/<p>/builds/<b>/<head|tail>/<n>/metrics`.
pub async fn build_n(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String, String, String)>,
    _query: Query,
) -> Result<HttpResponse, ApiError> {
    let (resource, pipeline, build, direction, n) = path.into_inner();
    let base = MetricQuery::all().pipeline_build(&pipeline, &build);
    ranked(&state, base, &resource, &direction, Some(&n)).await
}
