//! Every route's query parameters, the one place they are written: the route table names these
//! ([`crate::routes::QueryKind`]), [`super::Query`] checks requests against them and the
//! OpenAPI document lists them.

use crate::db::query::NumericColumn;
use crate::routes::params::{Kind, Need, Param};

const fn param(name: &'static str, kind: Kind, need: Need, doc: &'static str) -> Param {
    Param {
        name,
        kind,
        need,
        doc,
    }
}

/// `parts` one after the other; `N` must be their total length (checked at compile time).
const fn join<const N: usize>(parts: &[&[Param]]) -> [Param; N] {
    let mut out = [PAGE; N];
    let (mut i, mut at) = (0, 0);
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            out[at] = parts[i][j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    assert!(at == N, "the joined tables do not have N parameters");
    out
}

// ---------------------------------------------------------------- paging

const PAGE: Param = param(
    "page",
    Kind::Page,
    Need::Unsaid,
    "Page number from 1; negative counts from the end (-1 is the last).",
);

const fn per_page(doc: &'static str) -> Param {
    param("per_page", Kind::PageSize, Need::Unsaid, doc)
}

/// `page` and `per_page`, `per_page` defaulting to the server's `--page-size`.
pub const PAGING: [Param; 2] = [
    PAGE,
    per_page("Rows per page; the server's --page-size when absent."),
];

// ---------------------------------------------------------------- metric listings

const SORTABLE: [&str; 6] = {
    let mut names = [""; 6];
    let mut i = 0;
    while i < names.len() {
        names[i] = NumericColumn::SORTABLE[i].0;
        i += 1;
    }
    names
};

/// What narrows a metric listing or count.
const METRIC_SELECTION: [Param; 12] = [
    param(
        "session_h",
        Kind::Text,
        Need::Unsaid,
        "Only metrics of this session.",
    ),
    param(
        "context_h",
        Kind::Text,
        Need::Unsaid,
        "Only metrics measured on this context.",
    ),
    param(
        "component",
        Kind::Text,
        Need::Unsaid,
        "Only metrics of this component (exactly).",
    ),
    param(
        "component_prefix",
        Kind::Text,
        Need::Unsaid,
        "Only metrics whose component starts with this text.",
    ),
    param(
        "item",
        Kind::Text,
        Need::Unsaid,
        "Only metrics of this test item (exactly).",
    ),
    param(
        "item_variant",
        Kind::Text,
        Need::Unsaid,
        "Only metrics of this test variant (exactly).",
    ),
    param(
        "kind",
        Kind::Text,
        Need::Unsaid,
        "Only metrics of this item type.",
    ),
    param(
        "scm_ref",
        Kind::Text,
        Need::Unsaid,
        "Only metrics of sessions with this SCM reference (exactly).",
    ),
    param(
        "from",
        Kind::Timestamp,
        Need::Unsaid,
        "Only metrics whose item_start_time is at or after this ISO 8601 time (no offset: UTC).",
    ),
    param(
        "to",
        Kind::Timestamp,
        Need::Unsaid,
        "Only metrics whose item_start_time is at or before this ISO 8601 time (no offset: UTC).",
    ),
    param(
        "min_total_time",
        Kind::Number,
        Need::Unsaid,
        "Only metrics with total_time at least this (seconds).",
    ),
    param(
        "min_mem_usage",
        Kind::Number,
        Need::Unsaid,
        "Only metrics with mem_usage at least this (MB).",
    ),
];

const METRIC_SORT: [Param; 2] = [
    param(
        "sort",
        Kind::Enum(&SORTABLE),
        Need::Unsaid,
        "Sort by this field (ties in the order stored) instead of the order stored.",
    ),
    param(
        "order",
        Kind::Enum(&["asc", "desc"]),
        Need::Unsaid,
        "Direction of sort (default asc).",
    ),
];

/// The filters and sort of every metric listing, besides `page` and `per_page`.
pub const METRIC_FILTER_PARAMS: [Param; 14] = join(&[&METRIC_SELECTION, &METRIC_SORT]);

/// The names of [`METRIC_FILTER_PARAMS`].
pub const METRIC_FILTERS: [&str; 14] = {
    let mut names = [""; 14];
    let mut i = 0;
    while i < names.len() {
        names[i] = METRIC_FILTER_PARAMS[i].name;
        i += 1;
    }
    names
};

/// A metric listing's parameters.
pub const METRIC_LISTING: [Param; 16] = join(&[&PAGING, &METRIC_FILTER_PARAMS]);

/// A metric count's parameters: the listing's filters, without paging or sort.
pub const METRIC_COUNT: [Param; 12] = METRIC_SELECTION;

// ---------------------------------------------------------------- session listings

/// A session listing's parameters: paging and monitor-server-api's tag filter, whose tag names
/// its server reads from `with_flags` and its official client sends as `with_tags`.
pub const SESSION_LISTING: [Param; 6] = join(&[
    &PAGING,
    &[
        param("with_flags", Kind::Text, Need::Unsaid, "Comma-separated tag names the sessions must carry."),
        param("with_tags", Kind::Text, Need::Unsaid, "The same as with_flags, under the name monitor-server-api's client sends; give one or the other (or both the same)."),
        param("restrict_flags", Kind::Text, Need::Unsaid, "Comma-separated values, pairwise with with_flags; an empty one means any non-empty value."),
        param("method", Kind::Enum(&["match_any", "match_all"]), Need::Unsaid, "Whether any (default) or all of the tag conditions must hold."),
    ],
]);

// ---------------------------------------------------------------- /compare

/// The parameters of `/compare`: the two sides and the thresholds.
pub const COMPARISON: [Param; 10] = [
    param("baseline", Kind::Text, Need::Required, "The side compared against: session:<hash or unique prefix> (or the bare hash or prefix), scm:<ref prefix>, build:<pipeline>/<build>, builds:<pipeline>/<from>..<to> or last:<pipeline>/<n> (the n latest builds, not counting the candidate's), or auto: for a candidate build:<pipeline>/<build>, the builds since the last change /changes detects before it (the current stable segment; docs/ci-gate.md)."),
    param("candidate", Kind::Text, Need::Required, "The side judged, in the same forms as baseline."),
    param("max_slowdown", Kind::Threshold, Need::Optional, "Percent of wall-time growth beyond which a test regressed (default 20; a trailing % is accepted)."),
    param("max_memory_growth", Kind::Threshold, Need::Optional, "Percent of memory growth beyond which a test regressed (default 10)."),
    param("max_cpu_slowdown", Kind::Threshold, Need::Optional, "Percent of CPU-time growth beyond which a test regressed; when absent CPU time is reported but not judged."),
    param("min_time", Kind::Threshold, Need::Optional, "Seconds: wall- and CPU-time changes smaller than this are never a regression or an improvement (default 0.1)."),
    param("min_memory", Kind::Threshold, Need::Optional, "MB: memory changes smaller than this are never a regression or an improvement (default 1)."),
    param("sigma", Kind::Threshold, Need::Optional, "With 2 or more baseline runs, a change must also exceed this many standard deviations of the baseline (default 3)."),
    param("ignore_context", Kind::Boolean, Need::Optional, "true: compare each test across machines (execution contexts) instead of within each (default false)."),
    param("only", Kind::Text, Need::Optional, "Comma-separated verdicts to list (regressed, improved, missing, new, unchanged); the summary still counts every test."),
];

// ---------------------------------------------------------------- the dashboard

/// The filters `/runs` and `/tests` share.
const RUN_FILTERS: [Param; 5] = [
    param("component", Kind::Text, Need::Optional, "Only sessions that reported metrics of this component (for /tests: only the metrics of this component)."),
    param("pipeline", Kind::Text, Need::Optional, "Only sessions tagged pipeline_branch with this value."),
    param("build", Kind::Text, Need::Optional, "Only sessions tagged pipeline_build_no with this value."),
    param("tag", Kind::Repeated, Need::Optional, "NAME:VALUE, repeatable: only sessions whose tag NAME is VALUE, for every tag given (the first `:` separates name and value)."),
    param("scm_ref", Kind::Text, Need::Optional, "Only sessions with this SCM reference, exactly."),
];

/// `/runs`' parameters; `per_page` defaults to [`crate::dashboard::RUNS_PER_PAGE`].
pub const RUNS: [Param; 7] = join(&[
    &[PAGE, per_page("Rows per page (default 50).")],
    &RUN_FILTERS,
]);

/// `/tests`' parameters; `per_page` defaults to [`crate::dashboard::TESTS_PER_PAGE`].
pub const TESTS: [Param; 9] = join(&[
    &[PAGE, per_page("Rows per page (default 20).")],
    &RUN_FILTERS,
    &[
        param("context_h", Kind::Text, Need::Optional, "Only the metrics measured on this execution context."),
        param("sort", Kind::Text, Need::Optional, "slowest (the default): tests ranked by their largest total_time in the selection, largest first; hungriest: by their largest mem_usage."),
    ],
]);

const ITEM_PATH: Param = param(
    "item_path",
    Kind::Text,
    Need::Required,
    "The test's module, exactly.",
);
const ITEM_VARIANT: Param = param(
    "item_variant",
    Kind::Text,
    Need::Required,
    "The test's variant (name with parameters), exactly.",
);

/// `/tests/trend`'s parameters.
pub const TREND: [Param; 4] = [
    ITEM_PATH,
    ITEM_VARIANT,
    param(
        "context_h",
        Kind::Text,
        Need::Optional,
        "Only the points of this execution context.",
    ),
    param(
        "limit",
        Kind::Integer,
        Need::Optional,
        "The latest N points of each context (default 1000, at most 10000).",
    ),
];

// ---------------------------------------------------------------- /changes

const CHANGE_PIPELINE: Param = param("pipeline", Kind::Text, Need::Optional, "The pipeline (session tag pipeline_branch) whose builds make the series, in build order; absent or empty (`pipeline=`): the sessions without a pipeline_branch tag, each its own point, in run date order.");
const CHANGE_METRIC: Param = param(
    "metric",
    Kind::Enum(&["wall", "cpu", "memory"]),
    Need::Optional,
    "Only this measure: wall time, CPU time (user + kernel) or memory.",
);

/// `/changes`' parameters; `per_page` defaults to [`crate::dashboard::CHANGES_PER_PAGE`].
pub const CHANGES: [Param; 6] = [
    PAGE,
    per_page("Rows per page (default 50)."),
    CHANGE_PIPELINE,
    param("component", Kind::Text, Need::Optional, "Only tests of this component (that of their latest metric)."),
    CHANGE_METRIC,
    param("since", Kind::Text, Need::Optional, "Only changes starting at this build or a later one (for pipeline= empty: at this run date or later, compared as text)."),
];

/// `/changes/tests`' parameters.
pub const CHANGE_TESTS: [Param; 5] = [
    CHANGE_PIPELINE,
    param(
        "item_path",
        Kind::Text,
        Need::Required,
        "The test's module, exactly.",
    ),
    param(
        "item_variant",
        Kind::Text,
        Need::Required,
        "The test's variant (name with parameters), exactly.",
    ),
    param(
        "context_h",
        Kind::Text,
        Need::Optional,
        "Only on this execution context.",
    ),
    CHANGE_METRIC,
];
