//! `/changes` and `/changes/tests`: which build changed which test (see
//! [`crate::dashboard::ChangeCache`] for how they are kept and [`crate::changes`] for the method).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::dashboard::{Cache, ChangeFilter, Measure, CHANGES_PER_PAGE};
use crate::error::ApiError;
use crate::routes::listing::rows_page;
use crate::routes::params::{invalid, Query};
use crate::state::AppState;

fn measure(query: &Query) -> Result<Option<Measure>, ApiError> {
    query
        .get("metric")
        .map(|name| {
            Measure::named(name)
                .ok_or_else(|| invalid("metric", name, "must be wall, cpu or memory"))
        })
        .transpose()
}

/// `GET /changes?pipeline=P[&component=][&metric=][&since=]`: the detected changes, newest first.
pub async fn index(
    state: web::Data<AppState>,
    cache: web::Data<Cache>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let filter = ChangeFilter {
        pipeline: query.get("pipeline").unwrap_or_default().to_owned(),
        component: query.get("component").map(str::to_owned),
        metric: measure(&query)?,
        since: query.get("since").map(str::to_owned),
    };
    let page = query.page(CHANGES_PER_PAGE)?;
    let cache = cache.into_inner();
    let found = state
        .db
        .run(move |conn| {
            let tx = conn.transaction()?;
            cache.changes.page(&tx, &filter, |n| {
                Ok(page.window(n)?.map(|w| (w, w.offset, w.limit)))
            })
        })
        .await?;
    rows_page(&req, "changes", found)
}

/// `GET /changes/tests?pipeline=P&item_path=..&item_variant=..`: one test's changes, noise and
/// drift per context and measure; none when the pipeline never ran it.
pub async fn tests(
    state: web::Data<AppState>,
    cache: web::Data<Cache>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let pipeline = query.get("pipeline").unwrap_or_default().to_owned();
    let item_path = query.required("item_path")?.to_owned();
    let item_variant = query.required("item_variant")?.to_owned();
    let context_h = query.get("context_h").map(str::to_owned);
    let metric = measure(&query)?;
    let cache = cache.into_inner();
    let (p, path, variant) = (pipeline.clone(), item_path.clone(), item_variant.clone());
    let found = state
        .db
        .run(move |conn| {
            let tx = conn.transaction()?;
            cache
                .changes
                .test(&tx, &p, &path, &variant, context_h.as_deref(), metric)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "pipeline": pipeline,
        "item_path": item_path,
        "item_variant": item_variant,
        "tests": found,
    })))
}
