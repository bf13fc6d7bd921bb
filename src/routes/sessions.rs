//! `/sessions`: one record per pytest run, with its tags.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map};

use crate::db::query::{MetricQuery, TextColumn};
use crate::db::{self, Removed, SessionQuery, TagCondition};
use crate::error::ApiError;
use crate::models::Session;
use crate::routes::pagination::{no_params, only_params, query_pairs};
use crate::state::AppState;

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
        .write(move |conn| db::insert_session(conn, &session))
        .await?;
    Ok(HttpResponse::Created().json(stored.into_inner()))
}

/// `GET /sessions/`: every session (or those with the requested tags), one page at a time.
pub async fn index(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    list(&state, &req, SessionQuery::all()).await
}

/// `GET /sessions/<prefix>`: the sessions whose hash starts with `prefix`; 204 when none does.
pub async fn by_prefix(
    state: web::Data<AppState>,
    req: HttpRequest,
    prefix: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    list(&state, &req, SessionQuery::all().hash_prefix(&prefix)).await
}

/// The most tags one `with_flags` may name.
const MAX_FLAGS: usize = 64;

/// The tag filter of monitor-server-api: `with_flags=a,b` names tags, `restrict_flags=v1,v2`
/// gives their values pairwise (a missing or empty value means "set to anything non-empty"),
/// and `method=match_any` (the default) or `match_all` combines them.
fn tag_filter(query: &[(String, String)]) -> Result<(Vec<TagCondition>, bool), ApiError> {
    only_params(query, &["with_flags", "restrict_flags", "method"])?;
    let value = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let match_all = match value("method").unwrap_or("match_any") {
        "match_any" => false,
        "match_all" => true,
        _ => {
            return Err(ApiError::bad_field(
                "The tag matching method is not valid.",
                "method",
                "must be match_any or match_all",
            ))
        }
    };
    // Values pair with flags by position, so an empty flag (`a,,b`) is skipped only after
    // pairing: `b` keeps its own value rather than taking the empty flag's.
    let mut values = value("restrict_flags").unwrap_or("").split(',');
    let conditions: Vec<TagCondition> = value("with_flags")
        .unwrap_or("")
        .split(',')
        .map(|name| (name, values.next()))
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| TagCondition {
            name: name.to_owned(),
            value: value.filter(|v| !v.is_empty()).map(str::to_owned),
        })
        .collect();
    if conditions.len() > MAX_FLAGS {
        // Each flag is a condition of the query; thousands would exceed SQLite's expression
        // depth and fail as a 500 instead of telling the client.
        return Err(ApiError::bad_field(
            format!(
                "`with_flags` names {} tags; at most {MAX_FLAGS} are allowed.",
                conditions.len()
            ),
            "with_flags",
            format!("must name at most {MAX_FLAGS} tags"),
        ));
    }
    Ok((conditions, match_all))
}

async fn list(
    state: &AppState,
    req: &HttpRequest,
    base: SessionQuery,
) -> Result<HttpResponse, ApiError> {
    let (conditions, match_all) = tag_filter(&query_pairs(req)?)?;
    let query = base.tags(&conditions, match_all);
    super::listing(req, state, Map::new(), "sessions", query).await
}

/// `GET /sessions/count`: how many sessions are stored.
pub async fn count(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    no_params(&query_pairs(&req)?)?;
    super::count(&state, SessionQuery::all()).await
}

/// `GET /sessions/<h>/metrics`: the metrics of one session.
pub async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    h: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::SessionH, &h);
    super::metric_listing(&req, &state, base).await
}

/// `GET /sessions/<h>/metrics/count`: how many metrics one session has.
pub async fn metrics_count(
    state: web::Data<AppState>,
    req: HttpRequest,
    h: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::SessionH, &h);
    super::metric_count(&req, &state, base).await
}

/// `DELETE /sessions/<h>`: deletes the session stored under exactly `h`, its tags and every
/// metric of that session (also metrics naming a session that was never stored), in one
/// transaction through the writer; 200 with what was removed, 404 when nothing was stored
/// under that hash. Needs the write token when the server has one (the middleware sees to it).
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    h: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    no_params(&query_pairs(&req)?)?;
    let session_h = h.into_inner();
    let target = session_h.clone();
    let removed = state
        .db
        .write(move |conn| Ok(db::delete_session(conn, &target)?))
        .await?;
    if removed == Removed::default() {
        return Err(ApiError::NotFound(format!(
            "No session and no metric is stored under the hash {session_h}."
        )));
    }
    Ok(HttpResponse::Ok().json(json!({ "session_h": session_h, "deleted": removed })))
}
