//! The answers every collection route shares: one page of a selection, a count, and a metric
//! selection narrowed by the request's filters ([`super::params::METRIC_FILTER_PARAMS`]).

use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value};

use crate::db::query::{Direction, MetricQuery, NumericColumn, TextColumn};
use crate::db::Selection;
use crate::error::ApiError;
use crate::routes::pagination::{PageBody, PageRequest, Window};
use crate::routes::params::Query;
use crate::state::AppState;

/// Answers `rows` as one page under `key` (204 for `None`: nothing to list), for selections
/// counted and cut in memory rather than by a [`Selection`].
pub fn rows_page<T: serde::Serialize>(
    req: &HttpRequest,
    key: &'static str,
    found: Option<(Window, Vec<T>)>,
) -> Result<HttpResponse, ApiError> {
    let Some((window, rows)) = found else {
        return Ok(HttpResponse::NoContent().finish());
    };
    let mut body = PageBody::start(&Map::new(), key)?;
    serde_json::to_writer(body.rows(), &rows).map_err(|err| {
        log::error!("cannot serialise a page of {key}: {err}");
        ApiError::Internal
    })?;
    body.finish(req, window)
}

/// Answers one page of `selection` under `key`, after `extra` fields, `per_page` defaulting to
/// the server's `--page-size`. 204 when the selection is empty.
pub async fn listing<S: Selection>(
    req: &HttpRequest,
    state: &AppState,
    query: &Query,
    extra: Map<String, Value>,
    key: &'static str,
    selection: S,
) -> Result<HttpResponse, ApiError> {
    let page = query.page(state.page_size)?;
    listing_sized(req, state, page, extra, key, selection).await
}

/// Answers `page` of `selection` under `key`, after `extra` fields; count and rows are read in
/// one transaction so the page and `total_page` agree. 204 when the selection is empty.
pub async fn listing_sized<S: Selection>(
    req: &HttpRequest,
    state: &AppState,
    page: PageRequest,
    extra: Map<String, Value>,
    key: &'static str,
    selection: S,
) -> Result<HttpResponse, ApiError> {
    let mut body = PageBody::start(&extra, key)?;
    let found = state
        .db
        .run(move |conn| {
            let tx = conn.transaction()?;
            let count = selection.count(&tx)?;
            let Some(window) = page.window(count)? else {
                return Ok(None);
            };
            selection.write_page(&tx, window.offset, window.limit, count, body.rows())?;
            Ok(Some((body, window)))
        })
        .await?;
    match found {
        None => Ok(HttpResponse::NoContent().finish()),
        Some((body, window)) => body.finish(req, window),
    }
}

/// Answers a page of the metrics `base` selects, narrowed by the request's filters and sorted on
/// request.
pub async fn metric_listing(
    req: &HttpRequest,
    state: &AppState,
    query: &Query,
    base: MetricQuery,
) -> Result<HttpResponse, ApiError> {
    let selection = narrowed(base, query)?;
    listing(req, state, query, Map::new(), "metrics", selection).await
}

/// The `{"count": N}` answer for any selection.
pub async fn count<S: Selection>(state: &AppState, selection: S) -> Result<HttpResponse, ApiError> {
    let n = state.db.run(move |conn| Ok(selection.count(conn)?)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "count": n })))
}

/// The `{"count": N}` answer for the metrics `base` selects, narrowed by the request's filters.
pub async fn metric_count(
    state: &AppState,
    query: &Query,
    base: MetricQuery,
) -> Result<HttpResponse, ApiError> {
    count(state, narrowed(base, query)?).await
}

/// A JSON object of string fields, for the `extra` of a listing.
pub fn fields<const N: usize>(pairs: [(&str, &str); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect()
}

/// `base` narrowed by the metric filters of a checked query, in the order given, and sorted by
/// `sort` and `order`; the query's other parameters (paging) are left to the listing.
pub fn narrowed(mut base: MetricQuery, query: &Query) -> Result<MetricQuery, ApiError> {
    for (key, value) in query.pairs() {
        base = match key.as_str() {
            "session_h" => base.eq(TextColumn::SessionH, value),
            "context_h" => base.eq(TextColumn::ContextH, value),
            "component" => base.eq(TextColumn::Component, value),
            "component_prefix" => base.prefix(TextColumn::Component, value),
            "item" => base.eq(TextColumn::Item, value),
            "item_variant" => base.eq(TextColumn::ItemVariant, value),
            "kind" => base.eq(TextColumn::Kind, value),
            "scm_ref" => base.scm_ref(value),
            "from" => match query.timestamp(key)? {
                Some(micros) => base.started_from(micros),
                None => base,
            },
            "to" => match query.timestamp(key)? {
                Some(micros) => base.started_until(micros),
                None => base,
            },
            "min_total_time" => match query.number(key)? {
                Some(min) => base.at_least(NumericColumn::TotalTime, min),
                None => base,
            },
            "min_mem_usage" => match query.number(key)? {
                Some(min) => base.at_least(NumericColumn::MemUsage, min),
                None => base,
            },
            _ => base,
        };
    }
    let direction = match query.get("order") {
        None | Some("asc") => Direction::Asc,
        Some(_) => Direction::Desc,
    };
    match query.get("sort") {
        Some(name) => {
            let column = NumericColumn::named(&NumericColumn::SORTABLE, "sort", name)?;
            Ok(base.sorted(column, direction))
        }
        None if query.get("order").is_some() => Err(ApiError::bad_field(
            "`order` needs a `sort` field.",
            "order",
            "is only valid together with sort",
        )),
        None => Ok(base),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::params::{METRIC_FILTERS, METRIC_LISTING};
    use rusqlite::types::Value as Sql;

    fn query(list: &[(&str, &str)]) -> Query {
        let pairs = list
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Query::check(pairs, &METRIC_LISTING).unwrap()
    }

    #[test]
    fn filters_become_bound_parameters_only() {
        let q = narrowed(
            MetricQuery::all(),
            &query(&[("component", "x' OR 1=1 --"), ("sort", "mem_usage")]),
        )
        .unwrap();
        assert_eq!(
            q.where_sql(),
            " WHERE m.component_id = (SELECT id FROM components WHERE name = ?)"
        );
        assert_eq!(q.params(), &[Sql::Text("x' OR 1=1 --".into())]);
        assert_eq!(q.order_sql(), " ORDER BY m.mem_usage ASC, m.id");
    }

    #[test]
    fn every_filter_but_the_sort_narrows_the_selection() {
        let sample = |name: &str| match name {
            "from" | "to" => "2024-01-01T00:00:00",
            "min_total_time" | "min_mem_usage" => "1",
            _ => "x",
        };
        for name in METRIC_FILTERS
            .iter()
            .filter(|n| !matches!(**n, "sort" | "order"))
        {
            let q = narrowed(MetricQuery::all(), &query(&[(name, sample(name))])).unwrap();
            assert!(!q.is_unfiltered(), "{name} is accepted but narrows nothing");
        }
    }

    #[test]
    fn ranges_alone_are_counted_by_counting() {
        let q = narrowed(
            MetricQuery::all(),
            &query(&[("min_total_time", "1"), ("to", "2024-01-01T00:00:00")]),
        )
        .unwrap();
        assert!(q.ranges_only());
        assert!(q.count_sql().starts_with("SELECT count(*)"));
    }

    #[test]
    fn an_order_without_a_sort_is_refused() {
        assert!(narrowed(MetricQuery::all(), &query(&[("order", "desc")])).is_err());
    }
}
