//! The dashboard's aggregates: runs with their totals, tests ranked by their slowest or
//! hungriest run, one test's trend, the tag values for filter menus and the store's summary.
//!
//! Runs and the trend read a few rows through indexes. Ranking tests is the expensive one: it is
//! a `GROUP BY` over every metric of the selection (1,000,000 rows take about a second in
//! SQLite). So the per-test figures of a selection are kept in memory ([`Cache`]), computed
//! once by one pass over its metrics in Rust and then brought up to date, on each request, by
//! folding in only the metrics stored since: metrics ids only grow, so "new" is an id range. The
//! cached figures are checked against the store's counts at every request, in the request's own
//! read transaction; a deletion (or anything but additions) makes them be computed again.
//!
//! The queries here are plain `fn(&Connection, ...)`, like `db`'s; handlers run them through
//! [`crate::db::Db::run`], each in one read transaction. The parts: [`runs`] (`/runs`),
//! [`ranking`] and [`catalogue`] (`/tests` and the per-test figures), [`cache`] and [`warmup`]
//! (keeping those figures), [`trend`] and [`aggregates`] (tags and the summary). What a request
//! may ask is read by `routes`.

mod aggregates;
mod cache;
mod catalogue;
mod changes;
mod ranking;
mod runs;
mod sum;
mod trend;
mod warmup;

pub use aggregates::{summary_of_store, tags, Summary, TagValue, TagValues};
pub use cache::Cache;
pub use changes::{ChangeCache, ChangeFilter, ChangeRow, Measure, TestChanges, MAX_SERIES_POINTS};
pub use ranking::{Ranking, TestFilter, TestSummary};
pub use runs::{find_run, Run, RunFilter, RunQuery};
pub use trend::{trend, Series, TrendPoint};
pub use warmup::warm_up;

/// `/changes` rows per page when the client sends no `per_page`.
pub const CHANGES_PER_PAGE: u64 = 50;
/// `/runs` and `/tests` rows per page when the client sends no `per_page`.
pub const RUNS_PER_PAGE: u64 = 50;
/// See [`RUNS_PER_PAGE`].
pub const TESTS_PER_PAGE: u64 = 20;
/// The trend's points per context when the client sends no `limit`.
pub const TREND_LIMIT: u64 = 1000;
/// The most points per context a trend answers.
pub const MAX_TREND_LIMIT: u64 = 10_000;
/// The most values of one tag `/tags` lists.
pub const MAX_TAG_VALUES: u64 = 100;
/// The most `tag=` conditions one request may give (each is a condition of the query).
pub const MAX_TAGS: usize = 64;
