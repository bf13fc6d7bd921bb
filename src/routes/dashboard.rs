//! The dashboard's aggregate routes: `/runs`, `/runs/<h>`, `/tests`, `/tests/trend`, `/tags` and
//! `/summary` (see [`crate::dashboard`] for what they compute and how).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map};

use crate::dashboard::{
    self, Cache, Params, Ranking, RunFilter, RunQuery, TestFilter, MAX_TREND_LIMIT, RUNS_PARAMS,
    RUNS_PER_PAGE, TESTS_PARAMS, TESTS_PER_PAGE, TREND_LIMIT, TREND_PARAMS,
};
use crate::error::ApiError;
use crate::routes::pagination::{query_pairs, PageBody, PageRequest};
use crate::state::AppState;

/// `GET /runs`: sessions newest first, with their metric count, total wall time and contexts.
pub async fn index(
    state: web::Data<AppState>,
    cache: web::Data<Cache>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req)?;
    let params = Params::check(&pairs, &RUNS_PARAMS, true)?;
    let filter = RunFilter::from_params(&params)?;
    let runs = RunQuery(filter, cache.into_inner());
    super::listing_sized(&req, &state, RUNS_PER_PAGE, Map::new(), "runs", runs).await
}

/// `GET /runs/<session_h>`: one run; 404 when no session has this hash.
pub async fn show(
    state: web::Data<AppState>,
    cache: web::Data<Cache>,
    req: HttpRequest,
    session_h: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Params::check(&query_pairs(&req)?, &[], false)?;
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
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req)?;
    let params = Params::check(&pairs, &TESTS_PARAMS, true)?;
    let filter = TestFilter {
        runs: RunFilter::from_params(&params)?,
        context_h: params.get("context_h").map(str::to_owned),
    };
    let ranking = Ranking::parse(params.get("sort"))?;
    let page = PageRequest::from_query(&pairs, TESTS_PER_PAGE)?;
    let cache = cache.into_inner();
    let found = state
        .db
        .run(move |conn| {
            let tx = conn.transaction()?;
            cache.page(&tx, &filter, ranking, page)
        })
        .await?;
    let Some((window, rows)) = found else {
        return Ok(HttpResponse::NoContent().finish());
    };
    let mut body = PageBody::start(&Map::new(), "tests")?;
    serde_json::to_writer(body.rows(), &rows).map_err(|err| {
        log::error!("cannot serialise a page of tests: {err}");
        ApiError::Internal
    })?;
    body.finish(&req, window)
}

/// `GET /tests/trend?item_path=..&item_variant=..`: one test's points per context, oldest first;
/// 404 when it has none.
pub async fn trend(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req)?;
    let params = Params::check(&pairs, &TREND_PARAMS, false)?;
    let required = |name: &str| {
        params.get(name).map(str::to_owned).ok_or_else(|| {
            ApiError::bad_field(
                format!("`{name}` is required: it names the test."),
                name,
                "is required",
            )
        })
    };
    let item_path = required("item_path")?;
    let item_variant = required("item_variant")?;
    let context_h = params.get("context_h").map(str::to_owned);
    let limit = match params.get("limit") {
        None => TREND_LIMIT,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n @ 1..=MAX_TREND_LIMIT) => n,
            _ => {
                return Err(ApiError::bad_field(
                    "The limit is not valid.",
                    "limit",
                    format!("must be an integer from 1 to {MAX_TREND_LIMIT}"),
                ))
            }
        },
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
pub async fn tags(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Params::check(&query_pairs(&req)?, &[], false)?;
    let tags = state.db.run(|conn| Ok(dashboard::tags(conn)?)).await?;
    Ok(HttpResponse::Ok().json(json!({ "tags": tags })))
}

/// `GET /summary`: the store at a glance.
pub async fn summary(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    Params::check(&query_pairs(&req)?, &[], false)?;
    let summary = state
        .db
        .run(|conn| {
            let tx = conn.transaction()?;
            Ok(dashboard::summary_of_store(&tx)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(summary))
}
