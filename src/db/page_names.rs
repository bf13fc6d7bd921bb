//! The names of a page's metrics that repeat from row to row — context hashes, kinds,
//! components — each looked up once per page rather than joined in for every row.

use std::collections::HashMap;

use rusqlite::{Connection, Row};

/// The tables of the names [`PageNames`] looks up, in the order of the ids at the start of
/// [`METRIC_COLUMNS`](crate::db::metrics::METRIC_COLUMNS).
const LOOKUPS: [&str; 3] = [
    "SELECT h FROM context_hashes WHERE id = ?1",
    "SELECT name FROM kinds WHERE id = ?1",
    "SELECT name FROM components WHERE id = ?1",
];

/// The names met so far on one page, read in its transaction. Whatever a page lists, it names
/// a few machines, kinds and components, most rows the same ones as the row before: looking
/// each up once costs a handful of queries, where a join costs a lookup per row and name.
/// Session hashes and tests, which differ from row to row in a sorted listing, are joined.
pub(super) struct PageNames<'c> {
    conn: &'c Connection,
    known: [HashMap<i64, String>; 3],
    /// The id each name had on the last row: consecutive rows mostly share theirs.
    last: [i64; 3],
}

/// Which name of a row.
#[derive(Clone, Copy)]
pub(super) enum Name {
    Context = 0,
    Kind = 1,
    Component = 2,
}

impl<'c> PageNames<'c> {
    pub(super) fn new(conn: &'c Connection) -> Self {
        PageNames {
            conn,
            known: Default::default(),
            last: [i64::MIN; 3],
        }
    }

    /// Looks up the names of `row`'s first three columns (the ids of [`Name`]'s order) not
    /// met yet.
    pub(super) fn learn(&mut self, row: &Row<'_>) -> rusqlite::Result<()> {
        for (column, sql) in LOOKUPS.iter().enumerate() {
            let id: i64 = row.get(column)?;
            if id == self.last[column] {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = self.known[column].entry(id) {
                let name = self
                    .conn
                    .prepare_cached(sql)?
                    .query_row([id], |found| found.get(0))?;
                slot.insert(name);
            }
            self.last[column] = id;
        }
        Ok(())
    }

    /// The name `which` of the row [`PageNames::learn`] saw last.
    pub(super) fn of(&self, which: Name) -> &str {
        let column = which as usize;
        self.known[column]
            .get(&self.last[column])
            .map_or("", String::as_str)
    }
}
