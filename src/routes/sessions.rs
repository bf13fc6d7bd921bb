//! `/sessions`: one record per pytest run, with its tags.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map};

use crate::db::query::{MetricQuery, TextColumn};
use crate::db::{self, Removed, SessionQuery, TagCondition};
use crate::error::ApiError;
use crate::models::Session;
use crate::routes::body::read_json;
use crate::routes::listing::{count as count_of, listing, metric_count, metric_listing};
use crate::routes::params::Query;
use crate::state::AppState;

/// `POST /sessions/`: 201 with the stored session, also when an identical one already exists;
/// 409 when the hash is taken by different content.
pub async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let session = Session::from_json(read_json(&req, payload).await?)?;
    let stored = state
        .db
        .write(move |conn| db::insert_session(conn, &session))
        .await?;
    Ok(HttpResponse::Created().json(stored.into_inner()))
}

/// `GET /sessions/`: every session (or those with the requested tags), one page at a time.
pub async fn index(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    list(&state, &req, &query, SessionQuery::all()).await
}

/// `GET /sessions/<prefix>`: the sessions whose hash starts with `prefix`; 204 when none does.
pub async fn by_prefix(
    state: web::Data<AppState>,
    req: HttpRequest,
    prefix: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    list(
        &state,
        &req,
        &query,
        SessionQuery::all().hash_prefix(&prefix),
    )
    .await
}

/// The most tags one `with_flags` may name.
const MAX_FLAGS: usize = 64;

/// The tag filter of monitor-server-api: `with_flags=a,b` names tags, `restrict_flags=v1,v2`
/// gives their values pairwise (a missing or empty value means "set to anything non-empty"),
/// and `method=match_any` (the default) or `match_all` combines them. `with_tags` is the same
/// as `with_flags`: monitor-server-api's server reads `with_flags` but its own client
/// (`Monitor.list_sessions(with_tags=...)`) sends `with_tags`, which that server ignores.
fn tag_filter(query: &Query) -> Result<(Vec<TagCondition>, bool), ApiError> {
    let value = |key: &str| query.get(key);
    let (param, names) = match (value("with_flags"), value("with_tags")) {
        (Some(flags), Some(tags)) if flags != tags => {
            return Err(ApiError::bad_field(
                "`with_flags` and `with_tags` are two names of one filter; give one of them.",
                "with_tags",
                "must be left out or equal to with_flags",
            ))
        }
        (Some(names), _) => ("with_flags", names),
        (None, Some(names)) => ("with_tags", names),
        (None, None) => ("with_flags", ""),
    };
    // The only other value `method` may have ([`crate::routes::params::SESSION_LISTING`]).
    let match_all = value("method") == Some("match_all");
    // Values pair with flags by position, so an empty flag (`a,,b`) is skipped only after
    // pairing: `b` keeps its own value rather than taking the empty flag's.
    let mut values = value("restrict_flags").unwrap_or("").split(',');
    let conditions: Vec<TagCondition> = names
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
                "`{}` names {} tags; at most {MAX_FLAGS} are allowed.",
                param,
                conditions.len()
            ),
            param,
            format!("must name at most {MAX_FLAGS} tags"),
        ));
    }
    Ok((conditions, match_all))
}

async fn list(
    state: &AppState,
    req: &HttpRequest,
    query: &Query,
    base: SessionQuery,
) -> Result<HttpResponse, ApiError> {
    let (conditions, match_all) = tag_filter(query)?;
    let sessions = base.tags(&conditions, match_all);
    listing(req, state, query, Map::new(), "sessions", sessions).await
}

/// `GET /sessions/count`: how many sessions are stored.
pub async fn count(state: web::Data<AppState>, _query: Query) -> Result<HttpResponse, ApiError> {
    count_of(&state, SessionQuery::all()).await
}

/// `GET /sessions/<h>/metrics`: the metrics of one session.
pub async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
    h: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::SessionH, &h);
    metric_listing(&req, &state, &query, base).await
}

/// `GET /sessions/<h>/metrics/count`: how many metrics one session has.
pub async fn metrics_count(
    state: web::Data<AppState>,
    h: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let base = MetricQuery::all().eq(TextColumn::SessionH, &h);
    metric_count(&state, &query, base).await
}

/// `DELETE /sessions/<h>`: deletes the session stored under exactly `h`, its tags and every
/// metric of that session (also metrics naming a session that was never stored), in one
/// transaction through the writer; 200 with what was removed, 404 when nothing was stored
/// under that hash. Needs the write token when the server has one (the middleware sees to it).
pub async fn delete(
    state: web::Data<AppState>,
    h: web::Path<String>,
    _query: Query,
) -> Result<HttpResponse, ApiError> {
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
