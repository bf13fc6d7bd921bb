//! The query parameters of every route, and the one checker of them.
//!
//! Each route's parameters are a table of [`Param`]s (name, kind, whether required, what it
//! does), all written in [`tables`] and named in the route table by [`super::QueryKind`]. [`Query`] checks a request against
//! its route's table before the handler runs — an unknown parameter, one given twice, a missing
//! one or a value its kind refuses is a 400 naming it — and the OpenAPI document lists the same
//! tables ([`super::openapi`]), so what is documented is what is accepted.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest};

use crate::compare::parse_number;
use crate::error::ApiError;
use crate::models::parse_iso8601;
use crate::routes::pagination::{PageRequest, MAX_PER_PAGE};

/// What a parameter's value must be; it decides both the check and the document's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A page number: a non-zero integer, negative counting from the end.
    Page,
    /// A page size, from 1 to [`MAX_PER_PAGE`].
    PageSize,
    /// An integer.
    Integer,
    /// A finite number.
    Number,
    /// A threshold: a finite number of 0 or more, optionally followed by `%`.
    Threshold,
    /// Any text.
    Text,
    /// An ISO 8601 time (no offset: UTC).
    Timestamp,
    /// `true` or `false`.
    Boolean,
    /// One of these words.
    Enum(&'static [&'static str]),
    /// Any text, repeatable as `name=a&name=b`.
    Repeated,
}

/// Whether a parameter must be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// It must.
    Required,
    /// It may be left out.
    Optional,
    /// It may be left out, and the document says nothing (OpenAPI's default, optional): how the
    /// paging, metric-filter and tag parameters have always been documented.
    Unsaid,
}

/// One query parameter of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Its name in the query string.
    pub name: &'static str,
    /// What its value must be.
    pub kind: Kind,
    /// Whether it must be given.
    pub need: Need,
    /// What it does, for the document.
    pub doc: &'static str,
}

mod tables;

pub use tables::*;

/// The parameter tables of one path's routes, by method; [`super::configure`] hands each
/// resource its own, so that [`Query`] checks a request against the table of the route it
/// reached.
pub(crate) struct RouteParams(pub(crate) Vec<(Method, &'static [Param])>);

impl RouteParams {
    /// The table of the route of `method`; HEAD is answered by the GET route.
    fn of(&self, method: &Method) -> Option<&'static [Param]> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.0.iter().find(|(m, _)| m == method).map(|(_, p)| *p)
    }
}

/// The 400 for a parameter whose value is not valid, naming both; `reason` says what it must be.
pub fn invalid(name: &str, value: &str, reason: impl Into<String>) -> ApiError {
    ApiError::bad_field(format!("The {name} `{value}` is not valid."), name, reason)
}

/// A request's query string, checked against its route's parameters: every name is one of them,
/// given once unless repeatable, every required one is there, every value is of its kind.
/// Taken as a handler argument, it is checked before the handler runs; a handler of a route that
/// takes no parameter takes it too (as `_query`), so that any parameter sent is refused rather
/// than silently ignored.
#[derive(Debug)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Checks the request's query string against the table of the route it reached.
    pub fn of(req: &HttpRequest) -> Result<Query, ApiError> {
        let table = req
            .app_data::<RouteParams>()
            .and_then(|tables| tables.of(req.method()))
            .ok_or_else(|| {
                log::error!("no parameter table for {} {}", req.method(), req.path());
                ApiError::Internal
            })?;
        let pairs = serde_urlencoded::from_str(req.query_string())
            .map_err(|_| ApiError::bad_request("The query string is not valid URL encoding."))?;
        Query::check(pairs, table)
    }

    /// Checks `pairs` against `table`.
    pub fn check(pairs: Vec<(String, String)>, table: &[Param]) -> Result<Query, ApiError> {
        for (i, (key, value)) in pairs.iter().enumerate() {
            let Some(param) = table.iter().find(|p| p.name == key) else {
                let reason = if table.is_empty() {
                    "this route takes no query parameters".to_owned()
                } else {
                    let names: Vec<&str> = table.iter().map(|p| p.name).collect();
                    format!("is not one of: {}", names.join(", "))
                };
                return Err(ApiError::bad_field(
                    format!("`{key}` is not a known query parameter of this route."),
                    key,
                    reason,
                ));
            };
            if param.kind != Kind::Repeated && pairs[..i].iter().any(|(k, _)| k == key) {
                return Err(ApiError::bad_field(
                    "A query parameter is given twice.",
                    key,
                    "is given more than once",
                ));
            }
            valid(param.kind, value).map_err(|reason| invalid(key, value, reason))?;
        }
        if let Some(missing) = table
            .iter()
            .find(|p| p.need == Need::Required && !pairs.iter().any(|(k, _)| k == p.name))
        {
            return Err(ApiError::bad_field(
                format!("The query parameter `{}` is required.", missing.name),
                missing.name,
                "is required",
            ));
        }
        Ok(Query { pairs })
    }

    /// The value of a parameter, if given (the first, for a repeatable one).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a repeatable parameter, in the order given.
    pub fn all<'q>(&'q self, name: &'q str) -> impl Iterator<Item = &'q str> + 'q {
        self.pairs
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of a required parameter.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| {
            ApiError::bad_field(
                format!("The query parameter `{name}` is required."),
                name,
                "is required",
            )
        })
    }

    /// Every parameter given, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// `page` and `per_page`, `per_page` defaulting to `default_per_page`.
    pub fn page(&self, default_per_page: u64) -> Result<PageRequest, ApiError> {
        let page = self.parsed("page", page_number)?.unwrap_or(1);
        let per_page = self
            .parsed("per_page", page_size)?
            .unwrap_or(default_per_page);
        Ok(PageRequest::new(page, per_page))
    }

    /// An [`Kind::Integer`] parameter, if given.
    pub fn integer(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.parsed(name, integer)
    }

    /// A [`Kind::Number`] parameter, if given.
    pub fn number(&self, name: &str) -> Result<Option<f64>, ApiError> {
        self.parsed(name, number)
    }

    /// A [`Kind::Threshold`] parameter, if given.
    pub fn threshold(&self, name: &str) -> Result<Option<f64>, ApiError> {
        self.parsed(name, threshold)
    }

    /// A [`Kind::Timestamp`] parameter as microseconds since 1970 UTC, if given.
    pub fn timestamp(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.parsed(name, parse_iso8601)
    }

    /// A [`Kind::Boolean`] parameter, if given.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.parsed(name, boolean)
    }

    fn parsed<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|value| parse(value).map_err(|reason| invalid(name, value, reason)))
            .transpose()
    }
}

impl FromRequest for Query {
    type Error = ApiError;
    type Future = Ready<Result<Query, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Query::of(req))
    }
}

/// `Ok` when `value` is of `kind`, else what it must be.
fn valid(kind: Kind, value: &str) -> Result<(), String> {
    match kind {
        Kind::Page => page_number(value).map(drop),
        Kind::PageSize => page_size(value).map(drop),
        Kind::Integer => integer(value).map(drop),
        Kind::Number => number(value).map(drop),
        Kind::Threshold => threshold(value).map(drop),
        Kind::Timestamp => parse_iso8601(value).map(drop),
        Kind::Boolean => boolean(value).map(drop),
        Kind::Enum(words) if words.contains(&value) => Ok(()),
        Kind::Enum(words) => Err(format!("must be one of: {}", words.join(", "))),
        Kind::Text | Kind::Repeated => Ok(()),
    }
}

fn page_number(text: &str) -> Result<i64, String> {
    match text.trim().parse::<i64>() {
        Ok(0) | Err(_) => {
            Err("must be a non-zero integer: 1 is the first page, -1 the last".into())
        }
        Ok(n) => Ok(n),
    }
}

fn page_size(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n @ 1..=MAX_PER_PAGE) => Ok(n),
        _ => Err(format!("must be an integer from 1 to {MAX_PER_PAGE}")),
    }
}

fn integer(text: &str) -> Result<i64, String> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| "must be an integer".into())
}

fn number(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| "must be a number".into())
}

fn threshold(text: &str) -> Result<f64, String> {
    parse_number(text).ok_or_else(|| "must be a number, 0 or more".into())
}

fn boolean(text: &str) -> Result<bool, String> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn blamed(err: ApiError) -> String {
        format!("{err:?}")
    }

    #[test]
    fn an_unknown_parameter_is_refused_naming_every_valid_one() {
        let err = Query::check(pairs(&[("colour", "red")]), &METRIC_LISTING).unwrap_err();
        let text = blamed(err);
        for name in METRIC_FILTERS.iter().chain(&["page", "per_page"]) {
            assert!(text.contains(name), "{name}: {text}");
        }
        let err = Query::check(pairs(&[("x", "1")]), &[]).unwrap_err();
        assert!(blamed(err).contains("takes no query parameters"));
    }

    #[test]
    fn a_parameter_given_twice_is_refused_unless_it_is_repeatable() {
        let twice = pairs(&[("sort", "slowest"), ("sort", "hungriest")]);
        assert!(Query::check(twice, &TESTS).is_err());
        let tags = pairs(&[("tag", "a:1"), ("tag", "b:2")]);
        let query = Query::check(tags, &TESTS).unwrap();
        assert_eq!(query.all("tag").collect::<Vec<_>>(), ["a:1", "b:2"]);
    }

    #[test]
    fn a_missing_required_parameter_or_a_value_of_the_wrong_kind_is_refused() {
        assert!(Query::check(pairs(&[("item_path", "m")]), &TREND).is_err());
        for (name, value) in [
            ("page", "0"),
            ("per_page", "10001"),
            ("from", "yesterday"),
            ("min_total_time", "NaN"),
            ("sort", "item"),
            ("order", "up"),
        ] {
            let err = Query::check(pairs(&[(name, value)]), &METRIC_LISTING);
            assert!(err.is_err(), "{name}={value}");
        }
        let ok = pairs(&[
            ("page", "-1"),
            ("sort", "item_start_time"),
            ("order", "desc"),
        ]);
        assert!(Query::check(ok, &METRIC_LISTING).is_ok());
    }

    #[test]
    fn the_dashboard_page_sizes_documented_are_the_defaults() {
        let default = |table: &[Param]| table.iter().find(|p| p.name == "per_page").map(|p| p.doc);
        assert_eq!(
            default(&RUNS),
            Some(
                format!(
                    "Rows per page (default {}).",
                    crate::dashboard::RUNS_PER_PAGE
                )
                .as_str()
            )
        );
        assert_eq!(
            default(&TESTS),
            Some(
                format!(
                    "Rows per page (default {}).",
                    crate::dashboard::TESTS_PER_PAGE
                )
                .as_str()
            )
        );
    }
}
