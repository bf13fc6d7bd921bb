//! `/compare`: the regressions between a baseline and a candidate set of runs (see
//! [`crate::compare`] for the rules).

use actix_web::{web, HttpResponse};

use crate::compare::{compare, CompareRequest, SideSpec, Thresholds, Verdict};
use crate::dashboard::Cache;
use crate::error::ApiError;
use crate::routes::params::{invalid, Query};
use crate::state::AppState;

/// `GET /compare?baseline=SPEC&candidate=SPEC[&max_slowdown=P...]`.
pub async fn get(
    state: web::Data<AppState>,
    cache: web::Data<Cache>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let mut request = request(&query)?;
    let cache = cache.into_inner();
    let comparison = state
        .db
        .run(move |conn| {
            // One read transaction: both sides see the same store.
            let tx = conn.transaction()?;
            if request.baseline.1 == SideSpec::Auto {
                request.baseline.1 = stable_segment(&tx, &cache, &request.candidate)?;
            }
            compare(&tx, &request)
        })
        .await?;
    Ok(HttpResponse::Ok().json(comparison))
}

/// What `baseline=auto` stands for: the builds of the candidate's pipeline since the last change
/// detected before the candidate build ([`crate::dashboard::ChangeCache::stable_segment`]).
fn stable_segment(
    conn: &rusqlite::Connection,
    cache: &Cache,
    (written, candidate): &(String, SideSpec),
) -> Result<SideSpec, ApiError> {
    let SideSpec::Build { pipeline, build } = candidate else {
        return Err(invalid(
            "baseline",
            "auto",
            format!("auto needs a candidate written build:<pipeline>/<build>, not `{written}`"),
        ));
    };
    match cache.changes.stable_segment(conn, pipeline, build)? {
        Some(builds) => Ok(SideSpec::Segment {
            pipeline: pipeline.clone(),
            builds,
        }),
        None => Err(ApiError::NotFound(format!(
            "The baseline `auto` matches no session: `{pipeline}` has no build before `{build}`."
        ))),
    }
}

/// The comparison a checked query asks for ([`crate::routes::params::COMPARISON`]): a side that
/// is not a spec or an `only` that is not a list of verdicts is a 400 naming it.
fn request(query: &Query) -> Result<CompareRequest, ApiError> {
    let side = |name: &str| -> Result<(String, SideSpec), ApiError> {
        let text = query.required(name)?;
        let spec = SideSpec::parse(text).map_err(|reason| invalid(name, text, reason))?;
        Ok((text.to_owned(), spec))
    };
    let defaults = Thresholds::default();
    let thresholds = Thresholds {
        max_slowdown: query
            .threshold("max_slowdown")?
            .unwrap_or(defaults.max_slowdown),
        max_memory_growth: query
            .threshold("max_memory_growth")?
            .unwrap_or(defaults.max_memory_growth),
        max_cpu_slowdown: query.threshold("max_cpu_slowdown")?,
        min_time: query.threshold("min_time")?.unwrap_or(defaults.min_time),
        min_memory: query
            .threshold("min_memory")?
            .unwrap_or(defaults.min_memory),
        sigma: query.threshold("sigma")?.unwrap_or(defaults.sigma),
        ignore_context: query
            .boolean("ignore_context")?
            .unwrap_or(defaults.ignore_context),
    };
    let only = match query.get("only") {
        None => None,
        Some(text) => Some(
            text.split(',')
                .map(|word| {
                    Verdict::named(word.trim()).ok_or_else(|| {
                        invalid(
                            "only",
                            word,
                            "must list verdicts among: regressed, improved, missing, new, unchanged",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(CompareRequest {
        baseline: side("baseline")?,
        candidate: side("candidate")?,
        thresholds,
        only,
    })
}
