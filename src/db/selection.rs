//! [`Selection`]: what a listing pages through — a selection of metrics, sessions, names or
//! contexts that knows its size and reads a window of itself.

use rusqlite::Connection;

use crate::db::contexts::{count_contexts_by_prefix, list_contexts_by_prefix};
use crate::db::metrics::count_metrics_by;
use crate::db::names::{count_names, list_names, NameQuery};
use crate::db::planner::{list_metrics_by, list_metrics_page, read_metrics_page};
use crate::db::query::MetricQuery;
use crate::db::sessions::{count_sessions_by, list_sessions_by, SessionQuery};
use crate::db::sink::JsonRows;
use crate::error::ApiError;
use crate::models::{Context, Metric, Session};

/// Something a listing can page through: it knows its size and can fetch a window of itself.
pub trait Selection: Send + 'static {
    /// One listed record.
    type Row: serde::Serialize + Send + 'static;
    /// How many records the selection covers.
    fn count(&self, conn: &Connection) -> rusqlite::Result<u64>;
    /// `limit` records after skipping `offset`, in the selection's order.
    fn rows(&self, conn: &Connection, offset: u64, limit: u64) -> rusqlite::Result<Vec<Self::Row>>;
    /// The same window of a selection that [`Selection::count`] found to hold `count` records in
    /// the same transaction, which may let it be read faster.
    fn page(
        &self,
        conn: &Connection,
        offset: u64,
        limit: u64,
        count: u64,
    ) -> rusqlite::Result<Vec<Self::Row>> {
        let _ = count;
        self.rows(conn, offset, limit)
    }
    /// The window [`Selection::page`] reads, written to `out` as a JSON array.
    fn write_page(
        &self,
        conn: &Connection,
        offset: u64,
        limit: u64,
        count: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), ApiError> {
        let rows = self.page(conn, offset, limit, count)?;
        serde_json::to_writer(out, &rows).map_err(|err| {
            log::error!("cannot serialise a page: {err}");
            ApiError::Internal
        })
    }
}

impl Selection for MetricQuery {
    type Row = Metric;
    fn count(&self, conn: &Connection) -> rusqlite::Result<u64> {
        count_metrics_by(conn, self)
    }
    fn rows(&self, conn: &Connection, offset: u64, limit: u64) -> rusqlite::Result<Vec<Metric>> {
        list_metrics_by(conn, self, offset, limit)
    }
    fn page(
        &self,
        conn: &Connection,
        offset: u64,
        limit: u64,
        count: u64,
    ) -> rusqlite::Result<Vec<Metric>> {
        list_metrics_page(conn, self, offset, limit, count)
    }
    fn write_page(
        &self,
        conn: &Connection,
        offset: u64,
        limit: u64,
        count: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), ApiError> {
        let mut rows = JsonRows::new(out);
        read_metrics_page(conn, self, offset, limit, count, &mut rows)?;
        rows.finish();
        Ok(())
    }
}

impl Selection for SessionQuery {
    type Row = Session;
    fn count(&self, conn: &Connection) -> rusqlite::Result<u64> {
        count_sessions_by(conn, self)
    }
    fn rows(&self, conn: &Connection, offset: u64, limit: u64) -> rusqlite::Result<Vec<Session>> {
        list_sessions_by(conn, self, offset, limit)
    }
}

impl Selection for NameQuery {
    type Row = String;
    fn count(&self, conn: &Connection) -> rusqlite::Result<u64> {
        count_names(conn, self)
    }
    fn rows(&self, conn: &Connection, offset: u64, limit: u64) -> rusqlite::Result<Vec<String>> {
        list_names(conn, self, offset, limit)
    }
}

/// The contexts whose hash starts with a prefix (every context for an empty one).
#[derive(Debug, Clone)]
pub struct ContextPrefix(pub String);

impl Selection for ContextPrefix {
    type Row = Context;
    fn count(&self, conn: &Connection) -> rusqlite::Result<u64> {
        count_contexts_by_prefix(conn, &self.0)
    }
    fn rows(&self, conn: &Connection, offset: u64, limit: u64) -> rusqlite::Result<Vec<Context>> {
        list_contexts_by_prefix(conn, &self.0, offset, limit)
    }
}
