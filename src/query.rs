//! Metric selections: the rows a metric listing covers, built from the route's path segments and
//! the request's query-string filters, and the order they are listed in.
//!
//! Every value a client sends becomes a bound parameter; only column names from the fixed lists
//! below are ever written into SQL, so no path or query value can change a query's shape. Text
//! patterns escape `%`, `_` and `\` so that they match themselves.

use rusqlite::types::Value;

use crate::error::ApiError;
use crate::models::parse_iso8601;

/// The numeric columns a listing can be sorted by or a resource ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericColumn {
    /// Wall time.
    TotalTime,
    /// User CPU time.
    UserTime,
    /// Kernel CPU time.
    KernelTime,
    /// CPU usage ratio.
    CpuUsage,
    /// Memory.
    MemUsage,
    /// Start time, as microseconds since 1970 UTC.
    StartTime,
}

impl NumericColumn {
    fn sql(self) -> &'static str {
        match self {
            NumericColumn::TotalTime => "m.total_time",
            NumericColumn::UserTime => "m.user_time",
            NumericColumn::KernelTime => "m.kernel_time",
            NumericColumn::CpuUsage => "m.cpu_usage",
            NumericColumn::MemUsage => "m.mem_usage",
            NumericColumn::StartTime => "m.start_us",
        }
    }

    /// The names `sort=` accepts.
    pub const SORTABLE: [(&'static str, NumericColumn); 6] = [
        ("total_time", NumericColumn::TotalTime),
        ("user_time", NumericColumn::UserTime),
        ("kernel_time", NumericColumn::KernelTime),
        ("cpu_usage", NumericColumn::CpuUsage),
        ("mem_usage", NumericColumn::MemUsage),
        ("item_start_time", NumericColumn::StartTime),
    ];

    /// The resource names of `/resources/<r>/...`, as monitor-server-api spells them.
    pub const RESOURCES: [(&'static str, NumericColumn); 5] = [
        ("memory", NumericColumn::MemUsage),
        ("cpu", NumericColumn::CpuUsage),
        ("user_time", NumericColumn::UserTime),
        ("kernel_time", NumericColumn::KernelTime),
        ("total_time", NumericColumn::TotalTime),
    ];

    /// Looks a name up in one of the lists above; the error lists the valid names.
    pub fn named(
        list: &[(&'static str, NumericColumn)],
        field: &str,
        name: &str,
    ) -> Result<NumericColumn, ApiError> {
        list.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, column)| *column)
            .ok_or_else(|| {
                let valid: Vec<&str> = list.iter().map(|(n, _)| *n).collect();
                ApiError::bad_field(
                    format!("`{name}` is not a known {field}."),
                    field,
                    format!("must be one of: {}", valid.join(", ")),
                )
            })
    }
}

/// The text columns a route or a filter can match exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextColumn {
    /// The session hash.
    SessionH,
    /// The context hash.
    ContextH,
    /// The component.
    Component,
    /// The test name.
    Item,
    /// The test name with parametrization.
    ItemVariant,
    /// The item type.
    Kind,
}

impl TextColumn {
    fn sql(self) -> &'static str {
        match self {
            TextColumn::SessionH => "m.session_h",
            TextColumn::ContextH => "m.context_h",
            TextColumn::Component => "m.component",
            TextColumn::Item => "m.item",
            TextColumn::ItemVariant => "m.item_variant",
            TextColumn::Kind => "m.kind",
        }
    }

    /// The facet table's name for the columns it keeps distinct values of.
    fn facet(self) -> Option<&'static str> {
        match self {
            TextColumn::Component => Some("component"),
            TextColumn::Item => Some("item"),
            TextColumn::ItemVariant => Some("item_variant"),
            _ => None,
        }
    }
}

/// Escapes `\`, `%` and `_` so that a LIKE pattern (with `ESCAPE '\'`) matches them literally.
pub fn like_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Which way a listing runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// The query-string parameters every metric listing accepts, besides `page` and `per_page`.
pub const METRIC_FILTERS: [&str; 14] = [
    "session_h",
    "context_h",
    "component",
    "component_prefix",
    "item",
    "item_variant",
    "kind",
    "scm_ref",
    "from",
    "to",
    "min_total_time",
    "min_mem_usage",
    "sort",
    "order",
];

/// A selection of metrics and the order to list them in.
#[derive(Debug, Clone, Default)]
pub struct MetricQuery {
    clauses: Vec<String>,
    params: Vec<Value>,
    sort: Option<(NumericColumn, Direction)>,
}

const SESSIONS_WITH_TAG: &str = "SELECT s.session_h FROM sessions s \
     JOIN session_tags t ON t.session_id = s.id WHERE t.name = ? AND t.value = ?";

impl MetricQuery {
    /// Every metric, in the order stored.
    pub fn all() -> Self {
        Self::default()
    }

    fn clause(mut self, sql: &str, params: impl IntoIterator<Item = Value>) -> Self {
        self.clauses.push(sql.to_owned());
        self.params.extend(params);
        self
    }

    /// Metrics whose `column` equals `value`.
    pub fn eq(self, column: TextColumn, value: &str) -> Self {
        let sql = format!("{} = ?", column.sql());
        self.clause(&sql, [Value::Text(value.to_owned())])
    }

    /// Metrics whose `column` starts with `prefix` (ASCII letters case-insensitively, as
    /// monitor-server-api's LIKE matches).
    pub fn prefix(self, column: TextColumn, prefix: &str) -> Self {
        self.pattern(column, format!("{}%", like_escape(prefix)))
    }

    /// Metrics whose `column` contains `part` (ASCII letters case-insensitively).
    pub fn contains(self, column: TextColumn, part: &str) -> Self {
        self.pattern(column, format!("%{}%", like_escape(part)))
    }

    fn pattern(self, column: TextColumn, pattern: String) -> Self {
        // Matching the small table of distinct values first, then the metrics by index, keeps a
        // pattern search from scanning every metric.
        let sql = match column.facet() {
            Some(facet) => format!(
                "{} IN (SELECT value FROM metric_facets WHERE field = '{facet}' \
                 AND value LIKE ? ESCAPE '\\')",
                column.sql()
            ),
            None => format!("{} LIKE ? ESCAPE '\\'", column.sql()),
        };
        self.clause(&sql, [Value::Text(pattern)])
    }

    /// Metrics of sessions whose SCM reference is exactly `scm_ref`.
    pub fn scm_ref(self, scm_ref: &str) -> Self {
        self.clause(
            "m.session_h IN (SELECT session_h FROM sessions WHERE scm_ref = ?)",
            [Value::Text(scm_ref.to_owned())],
        )
    }

    /// Metrics of sessions whose SCM reference starts with `prefix`.
    pub fn scm_prefix(self, prefix: &str) -> Self {
        self.clause(
            "m.session_h IN (SELECT session_h FROM sessions WHERE scm_ref LIKE ? ESCAPE '\\')",
            [Value::Text(format!("{}%", like_escape(prefix)))],
        )
    }

    /// Metrics of sessions tagged `pipeline_branch = pipeline`.
    pub fn pipeline(self, pipeline: &str) -> Self {
        let sql = format!("m.session_h IN ({SESSIONS_WITH_TAG})");
        self.clause(
            &sql,
            [
                Value::Text("pipeline_branch".into()),
                Value::Text(pipeline.to_owned()),
            ],
        )
    }

    /// Metrics of sessions tagged `pipeline_build_no = build` (combine with [`Self::pipeline`]).
    pub fn build(self, build: &str) -> Self {
        let sql = format!("m.session_h IN ({SESSIONS_WITH_TAG})");
        self.clause(
            &sql,
            [
                Value::Text("pipeline_build_no".into()),
                Value::Text(build.to_owned()),
            ],
        )
    }

    fn at_least(self, column: NumericColumn, min: f64) -> Self {
        let sql = format!("{} >= ?", column.sql());
        self.clause(&sql, [Value::Real(min)])
    }

    fn started(self, op: &str, micros: i64) -> Self {
        let sql = format!("m.start_us {op} ?");
        self.clause(&sql, [Value::Integer(micros)])
    }

    /// Lists in `direction` of `column`, ties in the order stored.
    pub fn sorted(mut self, column: NumericColumn, direction: Direction) -> Self {
        self.sort = Some((column, direction));
        self
    }

    /// Adds the query-string filters and sort of a metric listing; any other parameter besides
    /// `page`, `per_page` and those in `also_allowed` is a 400 naming the valid ones.
    pub fn with_filters(
        mut self,
        query: &[(String, String)],
        also_allowed: &[&str],
    ) -> Result<Self, ApiError> {
        let mut seen: Vec<&str> = Vec::new();
        let mut sort = None;
        let mut direction = None;
        for (key, value) in query {
            let key = key.as_str();
            if matches!(key, "page" | "per_page") || also_allowed.contains(&key) {
                continue;
            }
            if !METRIC_FILTERS.contains(&key) {
                return Err(unknown_parameter(key, also_allowed));
            }
            if seen.contains(&key) {
                return Err(ApiError::bad_field(
                    "A query parameter is given twice.",
                    key,
                    "is given more than once",
                ));
            }
            seen.push(key);
            self = match key {
                "session_h" => self.eq(TextColumn::SessionH, value),
                "context_h" => self.eq(TextColumn::ContextH, value),
                "component" => self.eq(TextColumn::Component, value),
                "component_prefix" => self.prefix(TextColumn::Component, value),
                "item" => self.eq(TextColumn::Item, value),
                "item_variant" => self.eq(TextColumn::ItemVariant, value),
                "kind" => self.eq(TextColumn::Kind, value),
                "scm_ref" => self.scm_ref(value),
                "from" => self.started(">=", time_filter(key, value)?),
                "to" => self.started("<=", time_filter(key, value)?),
                "min_total_time" => self.at_least(NumericColumn::TotalTime, number(key, value)?),
                "min_mem_usage" => self.at_least(NumericColumn::MemUsage, number(key, value)?),
                "sort" => {
                    sort = Some(NumericColumn::named(
                        &NumericColumn::SORTABLE,
                        "sort",
                        value,
                    )?);
                    self
                }
                "order" => {
                    direction = Some(match value.as_str() {
                        "asc" => Direction::Asc,
                        "desc" => Direction::Desc,
                        _ => {
                            return Err(ApiError::bad_field(
                                "The sort order is not valid.",
                                "order",
                                "must be asc or desc",
                            ))
                        }
                    });
                    self
                }
                _ => self,
            };
        }
        match (sort, direction) {
            (Some(column), direction) => {
                Ok(self.sorted(column, direction.unwrap_or(Direction::Asc)))
            }
            (None, Some(_)) => Err(ApiError::bad_field(
                "`order` needs a `sort` field.",
                "order",
                "is only valid together with sort",
            )),
            (None, None) => Ok(self),
        }
    }

    /// True when nothing narrows the selection and it is listed in the order stored.
    pub fn is_everything_in_order(&self) -> bool {
        self.clauses.is_empty() && self.sort.is_none()
    }

    /// True when nothing narrows the selection.
    pub fn is_unfiltered(&self) -> bool {
        self.clauses.is_empty()
    }

    /// The `WHERE ...` part (empty when unfiltered).
    pub fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// The `ORDER BY ...` part.
    pub fn order_sql(&self) -> String {
        match self.sort {
            None => " ORDER BY m.id".into(),
            Some((column, Direction::Asc)) => format!(" ORDER BY {} ASC, m.id", column.sql()),
            Some((column, Direction::Desc)) => format!(" ORDER BY {} DESC, m.id", column.sql()),
        }
    }

    /// The bound values of the `WHERE` part, in order.
    pub fn params(&self) -> &[Value] {
        &self.params
    }
}

fn unknown_parameter(key: &str, also_allowed: &[&str]) -> ApiError {
    let mut valid: Vec<&str> = vec!["page", "per_page"];
    valid.extend_from_slice(also_allowed);
    valid.extend_from_slice(&METRIC_FILTERS);
    ApiError::bad_field(
        format!("`{key}` is not a known query parameter of this listing."),
        key,
        format!("is not one of: {}", valid.join(", ")),
    )
}

fn number(key: &str, value: &str) -> Result<f64, ApiError> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| ApiError::bad_field("A filter is not a number.", key, "must be a number"))
}

fn time_filter(key: &str, value: &str) -> Result<i64, ApiError> {
    parse_iso8601(value)
        .map_err(|reason| ApiError::bad_field("A time filter is not valid.", key, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn patterns_escape_like_wildcards() {
        assert_eq!(like_escape(r"a%b_c\d"), r"a\%b\_c\\d");
    }

    #[test]
    fn filters_become_bound_parameters_only() {
        let q = MetricQuery::all()
            .with_filters(
                &pairs(&[("component", "x' OR 1=1 --"), ("sort", "mem_usage")]),
                &[],
            )
            .unwrap();
        assert_eq!(q.where_sql(), " WHERE m.component = ?");
        assert_eq!(q.params(), &[Value::Text("x' OR 1=1 --".into())]);
        assert_eq!(q.order_sql(), " ORDER BY m.mem_usage ASC, m.id");
    }

    #[test]
    fn unknown_filters_and_sort_fields_are_refused() {
        let err = MetricQuery::all()
            .with_filters(&pairs(&[("colour", "red")]), &[])
            .unwrap_err();
        assert!(format!("{err:?}").contains("min_mem_usage"));
        assert!(MetricQuery::all()
            .with_filters(&pairs(&[("sort", "item")]), &[])
            .is_err());
    }
}
