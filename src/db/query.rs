//! Metric selections: the SQL of the rows a metric listing covers, built from the route's path
//! segments and the request's filters (read by `routes`), and the order they are listed in.
//!
//! Every value a client sends becomes a bound parameter; only column names from the fixed lists
//! below are ever written into SQL, so no path or query value can change a query's shape. Text
//! patterns escape `%`, `_` and `\` so that they match themselves.

use rusqlite::types::Value;

use crate::error::ApiError;

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

    /// The index that lists the metrics in this column's order (see `schema.sql`).
    pub fn index(self) -> &'static str {
        match self {
            NumericColumn::TotalTime => "metric_rows_by_total_time",
            NumericColumn::UserTime => "metric_rows_by_user_time",
            NumericColumn::KernelTime => "metric_rows_by_kernel_time",
            NumericColumn::CpuUsage => "metric_rows_by_cpu_usage",
            NumericColumn::MemUsage => "metric_rows_by_mem_usage",
            NumericColumn::StartTime => "metric_rows_by_start",
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
    /// The condition that the metric's value of this column is one of those `values` (a query
    /// of names) yields, written over the id the metric row holds, so that SQLite can look the
    /// few ids up and follow the row's index.
    fn in_sql(self, values: &str) -> String {
        match self {
            TextColumn::SessionH => {
                format!("m.session_id IN (SELECT id FROM session_hashes WHERE h IN ({values}))")
            }
            TextColumn::ContextH => {
                format!("m.context_id IN (SELECT id FROM context_hashes WHERE h IN ({values}))")
            }
            TextColumn::Component => {
                format!("m.component_id IN (SELECT id FROM components WHERE name IN ({values}))")
            }
            TextColumn::Kind => {
                format!("m.kind_id IN (SELECT id FROM kinds WHERE name IN ({values}))")
            }
            TextColumn::Item => {
                format!("m.test_id IN (SELECT id FROM tests WHERE item IN ({values}))")
            }
            TextColumn::ItemVariant => {
                format!("m.test_id IN (SELECT id FROM tests WHERE item_variant IN ({values}))")
            }
        }
    }

    /// The condition that the metric's value of this column is the bound `?`: one id looked up,
    /// or for a test name the ids of the few tests carrying it.
    fn eq_sql(self) -> &'static str {
        match self {
            TextColumn::SessionH => "m.session_id = (SELECT id FROM session_hashes WHERE h = ?)",
            TextColumn::ContextH => "m.context_id = (SELECT id FROM context_hashes WHERE h = ?)",
            TextColumn::Component => "m.component_id = (SELECT id FROM components WHERE name = ?)",
            TextColumn::Kind => "m.kind_id = (SELECT id FROM kinds WHERE name = ?)",
            TextColumn::Item => "m.test_id IN (SELECT id FROM tests WHERE item = ?)",
            TextColumn::ItemVariant => "m.test_id IN (SELECT id FROM tests WHERE item_variant = ?)",
        }
    }

    /// The same condition as [`Self::eq_sql`] read from the metric's test, for a component or a
    /// kind: a test names both, so when a test name leads through `metric_rows_by_test`, this
    /// follower is decided from that index alone, where `m.component_id` would read every row.
    fn eq_by_test_sql(self) -> Option<&'static str> {
        match self {
            TextColumn::Component => Some(
                "m.test_id IN (SELECT id FROM tests \
                 WHERE component_id = (SELECT id FROM components WHERE name = ?))",
            ),
            TextColumn::Kind => Some(
                "m.test_id IN (SELECT id FROM tests \
                 WHERE kind_id = (SELECT id FROM kinds WHERE name = ?))",
            ),
            _ => None,
        }
    }

    /// How few metrics one value of this column usually holds, higher for fewer: a test item or
    /// a session holds hundreds, a component thousands, a machine or a kind of item a large
    /// share of the store.
    fn rank(self) -> u8 {
        match self {
            TextColumn::Kind => 1,
            TextColumn::ContextH => 2,
            TextColumn::Component => 3,
            TextColumn::SessionH | TextColumn::Item | TextColumn::ItemVariant => 4,
        }
    }

    /// The `field` under which `metric_facets` counts the metrics of each value of this column.
    fn facet(self) -> &'static str {
        match self {
            TextColumn::SessionH => "session_h",
            TextColumn::ContextH => "context_h",
            TextColumn::Component => "component",
            TextColumn::Item => "item",
            TextColumn::ItemVariant => "item_variant",
            TextColumn::Kind => "kind",
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

/// A selection of metrics and the order to list them in.
#[derive(Debug, Clone, Default)]
pub struct MetricQuery {
    clauses: Vec<Clause>,
    params: Vec<Value>,
    sort: Option<(NumericColumn, Direction)>,
}

/// How a condition finds its metrics through an index, which decides how a listing is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// One value of an indexed column: the index lists them in the order stored. Of several
    /// equalities only the one of the highest ranked column ([`TextColumn::rank`]) leads
    /// through its index; the others follow ([`TextColumn::eq_by_test_sql`]).
    Equal(TextColumn),
    /// Several values of an indexed column (a set of sessions, of components...).
    Set,
    /// A set of tests (a pattern of test names), found through their index in no useful order,
    /// whose metrics are spread evenly over the order stored: every run measures the same tests.
    Tests,
    /// A range of an indexed numeric column.
    Range,
}

/// One condition of a [`MetricQuery`].
#[derive(Debug, Clone)]
struct Clause {
    sql: String,
    access: Access,
    /// A query that counts the metrics meeting this condition alone, with the same parameters,
    /// without reading them (from the kept `metric_facets`).
    count_sql: Option<String>,
}

/// The id a session's metrics hold, of the session `s` (a row of `sessions`): the one stored
/// with it, or, in a row written without it, its hash's looked up.
pub const SESSION_HASH_ID: &str =
    "coalesce(s.hash_id, (SELECT id FROM session_hashes WHERE h = s.session_h))";

const SESSIONS_WITH_TAG: &str = "FROM sessions s \
     JOIN session_tags t ON t.session_id = s.id WHERE t.name = ? AND t.value = ?";

const SESSIONS_OF_BUILD: &str = "FROM sessions s \
     JOIN session_tags p ON p.session_id = s.id AND p.name = 'pipeline_branch' \
     JOIN session_tags b ON b.session_id = s.id AND b.name = 'pipeline_build_no' \
     WHERE p.value = ? AND b.value = ?";

impl MetricQuery {
    /// Every metric, in the order stored.
    pub fn all() -> Self {
        Self::default()
    }

    fn clause(
        mut self,
        sql: &str,
        access: Access,
        count_sql: Option<String>,
        params: impl IntoIterator<Item = Value>,
    ) -> Self {
        self.clauses.push(Clause {
            sql: sql.to_owned(),
            access,
            count_sql,
        });
        self.params.extend(params);
        self
    }

    /// Metrics of the sessions `s` that `sessions` (the FROM and WHERE of a query over
    /// `sessions s`) selects: by the ids their rows hold, counted by their hashes' facets.
    fn of_sessions(self, sessions: &str, params: impl IntoIterator<Item = Value>) -> Self {
        let sql = format!("m.session_id IN (SELECT {SESSION_HASH_ID} {sessions})");
        let count = format!(
            "SELECT coalesce(sum(n), 0) FROM metric_facets \
             WHERE field = 'session_h' AND value IN (SELECT s.session_h {sessions})"
        );
        self.clause(&sql, Access::Set, Some(count), params)
    }

    /// Metrics whose `column` equals `value`.
    pub fn eq(self, column: TextColumn, value: &str) -> Self {
        let sql = column.eq_sql();
        let count = format!(
            "SELECT coalesce((SELECT n FROM metric_facets WHERE field = '{}' AND value = ?), 0)",
            column.facet()
        );
        self.clause(
            sql,
            Access::Equal(column),
            Some(count),
            [Value::Text(value.to_owned())],
        )
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
        // pattern search from scanning every metric. A test name is matched on the tests
        // themselves, which hold each once: through the values' table it would cost a lookup
        // of the tests per value matched.
        let facet = column.facet();
        let (sql, access) = match column {
            TextColumn::Item | TextColumn::ItemVariant => (
                format!("m.test_id IN (SELECT id FROM tests WHERE {facet} LIKE ? ESCAPE '\\')"),
                Access::Tests,
            ),
            _ => (
                column.in_sql(&format!(
                    "SELECT value FROM metric_facets WHERE field = '{facet}' \
                     AND value LIKE ? ESCAPE '\\'"
                )),
                Access::Set,
            ),
        };
        let count = format!(
            "SELECT coalesce(sum(n), 0) FROM metric_facets \
             WHERE field = '{facet}' AND value LIKE ? ESCAPE '\\'"
        );
        self.clause(&sql, access, Some(count), [Value::Text(pattern)])
    }

    /// Metrics of sessions whose SCM reference is exactly `scm_ref`.
    pub fn scm_ref(self, scm_ref: &str) -> Self {
        self.of_sessions(
            "FROM sessions s WHERE s.scm_ref = ?",
            [Value::Text(scm_ref.to_owned())],
        )
    }

    /// Metrics of sessions whose SCM reference starts with `prefix`.
    pub fn scm_prefix(self, prefix: &str) -> Self {
        self.of_sessions(
            "FROM sessions s WHERE s.scm_ref LIKE ? ESCAPE '\\'",
            [Value::Text(format!("{}%", like_escape(prefix)))],
        )
    }

    /// Metrics of sessions tagged `pipeline_branch = pipeline`.
    pub fn pipeline(self, pipeline: &str) -> Self {
        self.of_sessions(
            SESSIONS_WITH_TAG,
            [
                Value::Text("pipeline_branch".into()),
                Value::Text(pipeline.to_owned()),
            ],
        )
    }

    /// Metrics of sessions tagged both `pipeline_branch = pipeline` and
    /// `pipeline_build_no = build`: one build of a pipeline.
    pub fn pipeline_build(self, pipeline: &str, build: &str) -> Self {
        self.of_sessions(
            SESSIONS_OF_BUILD,
            [
                Value::Text(pipeline.to_owned()),
                Value::Text(build.to_owned()),
            ],
        )
    }

    /// Metrics whose `column` is at least `min`.
    pub fn at_least(self, column: NumericColumn, min: f64) -> Self {
        let sql = format!("{} >= ?", column.sql());
        self.clause(&sql, Access::Range, None, [Value::Real(min)])
    }

    /// Metrics that started at or after `micros` (since 1970 UTC).
    pub fn started_from(self, micros: i64) -> Self {
        self.started(">=", micros)
    }

    /// Metrics that started at or before `micros` (since 1970 UTC).
    pub fn started_until(self, micros: i64) -> Self {
        self.started("<=", micros)
    }

    fn started(self, op: &str, micros: i64) -> Self {
        let sql = format!("m.start_us {op} ?");
        self.clause(&sql, Access::Range, None, [Value::Integer(micros)])
    }

    /// Lists in `direction` of `column`, ties in the order stored.
    pub fn sorted(mut self, column: NumericColumn, direction: Direction) -> Self {
        self.sort = Some((column, direction));
        self
    }

    /// True when nothing narrows the selection and it is listed in the order stored.
    pub fn is_everything_in_order(&self) -> bool {
        self.clauses.is_empty() && self.sort.is_none()
    }

    /// True when nothing narrows the selection.
    pub fn is_unfiltered(&self) -> bool {
        self.clauses.is_empty()
    }

    /// True when every condition is a set of tests found through their index in no useful
    /// order, whose metrics are spread evenly over the order stored (each run measures the
    /// same tests): walking the table in that order then meets them at the rate of their
    /// share. A session's metrics, by contrast, are stored together, and one value's index
    /// already lists its metrics in the order stored.
    pub fn is_spread_over_the_order_stored(&self) -> bool {
        !self.clauses.is_empty() && self.clauses.iter().all(|c| c.access == Access::Tests)
    }

    /// The column and direction the listing is sorted by; `None` for the order stored.
    pub fn sort(&self) -> Option<(NumericColumn, Direction)> {
        self.sort
    }

    /// True when every condition is a range of a numeric column (`from`, `to`, `min_...`), for
    /// which SQLite, knowing nothing of how many metrics a range holds, may prefer reading every
    /// metric in the order stored over the range's index.
    pub fn ranges_only(&self) -> bool {
        !self.clauses.is_empty() && self.clauses.iter().all(|c| c.access == Access::Range)
    }

    /// The `WHERE ...` part (empty when unfiltered). Its conditions read only the columns of
    /// `metric_rows` (ids, `start_us`, the figures), so that finding and counting a selection
    /// reads no name table: only the rows of a page are read whole, through the `metrics` view.
    ///
    /// Of several equalities, only the one whose column holds the fewest metrics per value may
    /// use its index (the others are written `+m.column = ?`, which SQLite cannot look up by
    /// index): SQLite has no statistics to tell a test item's few hundred metrics from a
    /// component's many thousands, and would otherwise pick either.
    pub fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            return String::new();
        }
        // The first of the highest ranked equalities leads.
        let lead = self
            .clauses
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c.access {
                Access::Equal(column) => Some((column.rank(), std::cmp::Reverse(i))),
                _ => None,
            })
            .max()
            .map(|(_, std::cmp::Reverse(i))| i);
        let parts: Vec<String> = self
            .clauses
            .iter()
            .enumerate()
            .map(|(i, c)| match c.access {
                Access::Equal(column) if Some(i) != lead => {
                    format!("+{}", column.eq_by_test_sql().unwrap_or(&c.sql))
                }
                _ => c.sql.clone(),
            })
            .collect();
        format!(" WHERE {}", parts.join(" AND "))
    }

    /// The query counting the selected metrics, with [`Self::params`]: the kept counts
    /// when the selection is everything or one condition they answer, else `count(*)`.
    pub fn count_sql(&self) -> String {
        match self.clauses.as_slice() {
            [] => "SELECT coalesce((SELECT n FROM counters WHERE name = 'metrics'), 0)".into(),
            [Clause {
                count_sql: Some(sql),
                ..
            }] => sql.clone(),
            _ => format!("SELECT count(*) FROM metric_rows m{}", self.where_sql()),
        }
    }

    /// The `ORDER BY ...` part.
    pub fn order_sql(&self) -> String {
        self.order_by(false, true)
    }

    /// The `ORDER BY ...` part; with `reversed` its exact reverse (every key flipped), which
    /// reads the same rows from the other end; without `by_index` written so that SQLite cannot
    /// follow an index (or the table) in that order, and must find the rows first, then sort them.
    pub fn order_by(&self, reversed: bool, by_index: bool) -> String {
        let plus = if by_index { "" } else { "+" };
        let id = if reversed { "m.id DESC" } else { "m.id" };
        let Some((column, direction)) = self.sort else {
            return format!(" ORDER BY {plus}{id}");
        };
        let ascending = (direction == Direction::Asc) != reversed;
        let word = if ascending { "ASC" } else { "DESC" };
        format!(" ORDER BY {plus}{} {word}, {id}", column.sql())
    }

    /// The bound values of the `WHERE` part, in order.
    pub fn params(&self) -> &[Value] {
        &self.params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_like_wildcards() {
        assert_eq!(like_escape(r"a%b_c\d"), r"a\%b\_c\\d");
    }

    #[test]
    fn of_several_equalities_only_the_narrowest_column_leads_through_its_index() {
        let q = MetricQuery::all()
            .eq(TextColumn::Component, "c")
            .eq(TextColumn::Item, "i")
            .eq(TextColumn::Kind, "function");
        assert_eq!(
            q.where_sql(),
            " WHERE +m.test_id IN (SELECT id FROM tests \
             WHERE component_id = (SELECT id FROM components WHERE name = ?)) \
             AND m.test_id IN (SELECT id FROM tests WHERE item = ?) \
             AND +m.test_id IN (SELECT id FROM tests \
             WHERE kind_id = (SELECT id FROM kinds WHERE name = ?))"
        );
        let q = MetricQuery::all()
            .eq(TextColumn::SessionH, "s")
            .eq(TextColumn::Item, "i");
        assert_eq!(
            q.where_sql(),
            " WHERE m.session_id = (SELECT id FROM session_hashes WHERE h = ?) \
             AND +m.test_id IN (SELECT id FROM tests WHERE item = ?)"
        );
    }

    #[test]
    fn the_reversed_order_flips_every_key() {
        let q = MetricQuery::all();
        assert_eq!(q.order_by(true, true), " ORDER BY m.id DESC");
        assert_eq!(q.order_by(false, false), " ORDER BY +m.id");
        let q = q.sorted(NumericColumn::CpuUsage, Direction::Desc);
        assert_eq!(q.order_sql(), " ORDER BY m.cpu_usage DESC, m.id");
        assert_eq!(
            q.order_by(true, true),
            " ORDER BY m.cpu_usage ASC, m.id DESC"
        );
        assert_eq!(
            q.order_by(true, false),
            " ORDER BY +m.cpu_usage ASC, m.id DESC"
        );
    }

    #[test]
    fn one_condition_is_counted_from_the_facets_and_several_by_counting() {
        let q = MetricQuery::all();
        assert!(q.count_sql().contains("counters"));
        let q = q.eq(TextColumn::Kind, "function");
        assert!(
            q.count_sql().contains("field = 'kind'"),
            "{}",
            q.count_sql()
        );
        assert!(MetricQuery::all()
            .pipeline("main")
            .count_sql()
            .contains("field = 'session_h'"));
        let q = q.pipeline("main");
        assert!(q
            .count_sql()
            .starts_with("SELECT count(*) FROM metric_rows m WHERE"));
        assert!(!MetricQuery::all().eq(TextColumn::Item, "i").ranges_only());
        let q = MetricQuery::all()
            .at_least(NumericColumn::TotalTime, 1.0)
            .started_until(0);
        assert!(q.ranges_only());
        assert!(q.count_sql().starts_with("SELECT count(*)"));
    }

    #[test]
    fn a_pipelines_metrics_are_found_however_and_whenever_its_sessions_were_stored() {
        use crate::db::metrics::count_metrics_by;
        use crate::db::test_support::{metric, open_temp};
        use crate::db::{insert_session, list_metrics_page, store_metrics};
        use crate::models::Session;

        // Arrange: a session posted before its metrics, one after them, one written without its
        // hash's id (by other means than insert_session), and one of another pipeline.
        let (_dir, db) = open_temp();
        let conn = db.pool.get().unwrap();
        let session = |h: &str, pipeline: &str| Session {
            session_h: h.into(),
            run_date: "2024-01-01T00:00:00".into(),
            scm_ref: String::new(),
            description: serde_json::json!({ "pipeline_branch": pipeline })
                .as_object()
                .unwrap()
                .clone(),
        };
        insert_session(&conn, &session("before", "main")).unwrap();
        for h in ["before", "after", "bare", "other"] {
            store_metrics(&conn, &[metric(h, "function", "c")]).unwrap();
        }
        insert_session(&conn, &session("after", "main")).unwrap();
        insert_session(&conn, &session("other", "dev")).unwrap();
        conn.execute_batch(
            "INSERT INTO sessions (session_h, run_date, scm_ref, description) \
             VALUES ('bare', '2024-01-01T00:00:00', '', '{\"pipeline_branch\":\"main\"}');
             INSERT INTO session_tags (session_id, name, value) \
             VALUES (last_insert_rowid(), 'pipeline_branch', 'main');",
        )
        .unwrap();
        let q = MetricQuery::all().pipeline("main");

        // Act
        let count = count_metrics_by(&conn, &q).unwrap();
        let found: Vec<String> = list_metrics_page(&conn, &q, 0, 10, count)
            .unwrap()
            .into_iter()
            .map(|m| m.session_h)
            .collect();
        let stored_ids: i64 = conn
            .query_row(
                "SELECT count(*) FROM sessions s \
                 JOIN session_hashes k ON k.id = s.hash_id AND k.h = s.session_h",
                [],
                |row| row.get(0),
            )
            .unwrap();

        // Assert
        assert_eq!(count, 3);
        assert_eq!(found, ["before", "after", "bare"]);
        assert_eq!(
            stored_ids, 3,
            "insert_session stores each session's hash id"
        );
    }

    #[test]
    fn a_component_or_kind_beside_a_test_name_is_counted_from_the_test_index_alone() {
        use crate::db::metrics::count_metrics_by;
        use crate::db::store_metrics;
        use crate::db::test_support::{metric, open_temp};

        // Arrange: one item in two components and two kinds.
        let (_dir, db) = open_temp();
        let conn = db.pool.get().unwrap();
        for (n, (kind, component)) in [("function", "a"), ("function", "b"), ("class", "a")]
            .iter()
            .cycle()
            .take(30)
            .enumerate()
        {
            let mut m = metric(&format!("s{n}"), kind, component);
            m.item = if n < 24 { "i".into() } else { "other".into() };
            store_metrics(&conn, &[m]).unwrap();
        }
        let q = MetricQuery::all()
            .eq(TextColumn::Component, "a")
            .eq(TextColumn::Item, "i")
            .eq(TextColumn::Kind, "function");

        // Act
        let count = count_metrics_by(&conn, &q).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", q.count_sql()))
            .unwrap()
            .query_map(rusqlite::params_from_iter(q.params()), |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();

        // Assert: 8 of the first 24 metrics are function tests of `a`; no row is read.
        assert_eq!(count, 8);
        assert!(
            plan.iter()
                .any(|step| step.contains("COVERING INDEX metric_rows_by_test")),
            "{plan:?}"
        );
    }

    #[test]
    fn unknown_sort_fields_are_refused_naming_the_sortable_ones() {
        let err = NumericColumn::named(&NumericColumn::SORTABLE, "sort", "item").unwrap_err();
        assert!(format!("{err:?}").contains("item_start_time"));
    }
}
