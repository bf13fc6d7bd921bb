//! The dashboard's aggregate routes: `/runs`, `/runs/<h>`, `/tests`, `/tests/trend`, `/tags` and
//! `/summary` (see [`crate::dashboard`] for what they compute and how).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map};

use crate::dashboard::{
    self, Cache, Ranking, RunFilter, RunQuery, TestFilter, MAX_TAGS, MAX_TREND_LIMIT,
    RUNS_PER_PAGE, TESTS_PER_PAGE, TREND_LIMIT,
};
use crate::error::ApiError;
use crate::routes::listing::{listing_sized, rows_page};
use crate::routes::params::{invalid, Query};
use crate::state::AppState;

/// `GET /runs`: sessions newest first, with their metric count, total wall time and contexts.
pub async fn index(
    state: web::Data<AppState>,
    cache: web::Data<Cache>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let runs = RunQuery(run_filter(&query)?, cache.into_inner());
    let page = query.page(RUNS_PER_PAGE)?;
    listing_sized(&req, &state, page, Map::new(), "runs", runs).await
}

/// `GET /runs/<session_h>`: one run; 404 when no session has this hash.
pub async fn show(
    state: web::Data<AppState>,
    cache: web::Data<Cache>,
    session_h: web::Path<String>,
    _query: Query,
) -> Result<HttpResponse, ApiError> {
    let session_h = session_h.into_inner();
    let wanted = session_h.clone();
    let cache = cache.into_inner();
    let run = state
        .db
        .run(move |conn| {
            let tx = conn.transaction()?;
            Ok(dashboard::find_run(&tx, &cache, &wanted)?)
        })
        .await?;
    match run {
        Some(run) => Ok(HttpResponse::Ok().json(run)),
        None => Err(ApiError::NotFound(format!(
            "There is no run (session) `{session_h}`."
        ))),
    }
}

/// `GET /tests?sort=slowest|hungriest`: one row per test of the selection, ranked by its largest
/// wall time or memory.
pub async fn tests(
    state: web::Data<AppState>,
    cache: web::Data<Cache>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let filter = TestFilter {
        runs: run_filter(&query)?,
        context_h: query.get("context_h").map(str::to_owned),
    };
    let ranking = match query.get("sort") {
        None | Some("slowest") => Ranking::Slowest,
        Some("hungriest") => Ranking::Hungriest,
        Some(other) => return Err(invalid("sort", other, "must be slowest or hungriest")),
    };
    let page = query.page(TESTS_PER_PAGE)?;
    let cache = cache.into_inner();
    let found = state
        .db
        .run(move |conn| {
            let tx = conn.transaction()?;
            cache.page(&tx, &filter, ranking, |tests| {
                Ok(page.window(tests)?.map(|w| (w, w.offset, w.limit)))
            })
        })
        .await?;
    rows_page(&req, "tests", found)
}

/// `GET /tests/trend?item_path=..&item_variant=..`: one test's points per context, oldest first;
/// 404 when it has none.
pub async fn trend(state: web::Data<AppState>, query: Query) -> Result<HttpResponse, ApiError> {
    let item_path = query.required("item_path")?.to_owned();
    let item_variant = query.required("item_variant")?.to_owned();
    let context_h = query.get("context_h").map(str::to_owned);
    let limit = match query.integer("limit")? {
        None => TREND_LIMIT,
        Some(n) => u64::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_TREND_LIMIT).contains(n))
            .ok_or_else(|| {
                invalid(
                    "limit",
                    &n.to_string(),
                    format!("must be an integer from 1 to {MAX_TREND_LIMIT}"),
                )
            })?,
    };
    let (path, variant) = (item_path.clone(), item_variant.clone());
    let series = state
        .db
        .run(move |conn| {
            let tx = conn.transaction()?;
            Ok(dashboard::trend(
                &tx,
                &path,
                &variant,
                context_h.as_deref(),
                limit,
            )?)
        })
        .await?;
    if series.is_empty() {
        return Err(ApiError::NotFound(format!(
            "The test `{item_variant}` of `{item_path}` has no metric."
        )));
    }
    Ok(HttpResponse::Ok().json(json!({
        "item_path": item_path,
        "item_variant": item_variant,
        "series": series,
    })))
}

/// `GET /tags`: every tag name with its most used values, for filter menus.
pub async fn tags(state: web::Data<AppState>, _query: Query) -> Result<HttpResponse, ApiError> {
    let tags = state.db.run(|conn| Ok(dashboard::tags(conn)?)).await?;
    Ok(HttpResponse::Ok().json(json!({ "tags": tags })))
}

/// `GET /summary`: the store at a glance.
pub async fn summary(state: web::Data<AppState>, _query: Query) -> Result<HttpResponse, ApiError> {
    let summary = state
        .db
        .run(|conn| {
            let tx = conn.transaction()?;
            Ok(dashboard::summary_of_store(&tx)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(summary))
}

/// The session filters of `/runs` and `/tests`; a `tag` that is not `NAME:VALUE`, or more than
/// [`MAX_TAGS`] of them, is a 400.
fn run_filter(query: &Query) -> Result<RunFilter, ApiError> {
    let owned = |name: &str| query.get(name).map(str::to_owned);
    let mut tags = Vec::new();
    for tag in query.all("tag") {
        match tag.split_once(':') {
            Some((name, value)) if !name.is_empty() => {
                tags.push((name.to_owned(), value.to_owned()))
            }
            _ => {
                return Err(ApiError::bad_field(
                    format!("The tag filter `{tag}` is not valid."),
                    "tag",
                    "must be NAME:VALUE, such as pipeline_branch:main",
                ))
            }
        }
    }
    if tags.len() > MAX_TAGS {
        // Each is a condition of the query; thousands would exceed SQLite's expression depth.
        return Err(ApiError::bad_field(
            format!(
                "{} tag filters are given; at most {MAX_TAGS} are allowed.",
                tags.len()
            ),
            "tag",
            format!("may be given at most {MAX_TAGS} times"),
        ));
    }
    Ok(RunFilter {
        component: owned("component"),
        pipeline: owned("pipeline"),
        build: owned("build"),
        tags,
        scm_ref: owned("scm_ref"),
    })
}
