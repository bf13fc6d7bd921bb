//! The names of a page's metrics — session and context hashes, kinds, components — each looked
//! up once per page rather than joined in for every row.

use std::collections::HashMap;

use rusqlite::{Connection, Row};

/// The tables of the names [`PageNames`] looks up, in the order of the ids at the start of
/// [`METRIC_COLUMNS`](crate::db::metrics::METRIC_COLUMNS).
const LOOKUPS: [&str; 4] = [
    "SELECT h FROM session_hashes WHERE id = ?1",
    "SELECT h FROM context_hashes WHERE id = ?1",
    "SELECT name FROM kinds WHERE id = ?1",
    "SELECT name FROM components WHERE id = ?1",
];

/// The names met so far on one page, read in its transaction. A page of 500 metrics names a
/// few sessions, machines, kinds and components: looking each up once costs a handful of
/// queries, where a join costs a lookup per row and name.
pub(super) struct PageNames<'c> {
    conn: &'c Connection,
    known: [HashMap<i64, String>; 4],
}

/// Which name of a row.
#[derive(Clone, Copy)]
pub(super) enum Name {
    Session = 0,
    Context = 1,
    Kind = 2,
    Component = 3,
}

impl<'c> PageNames<'c> {
    pub(super) fn new(conn: &'c Connection) -> Self {
        PageNames {
            conn,
            known: Default::default(),
        }
    }

    /// Looks up the names of `row`'s first four columns (the ids of [`Name`]'s order) not met
    /// yet.
    pub(super) fn learn(&mut self, row: &Row<'_>) -> rusqlite::Result<()> {
        for (column, (known, sql)) in self.known.iter_mut().zip(LOOKUPS).enumerate() {
            let id: i64 = row.get(column)?;
            if let std::collections::hash_map::Entry::Vacant(slot) = known.entry(id) {
                let name = self
                    .conn
                    .prepare_cached(sql)?
                    .query_row([id], |found| found.get(0))?;
                slot.insert(name);
            }
        }
        Ok(())
    }

    /// The name `which` of `row`, learnt before ([`PageNames::learn`]).
    pub(super) fn of(&self, row: &Row<'_>, which: Name) -> rusqlite::Result<&str> {
        let id: i64 = row.get(which as usize)?;
        self.known[which as usize]
            .get(&id)
            .map(String::as_str)
            .ok_or(rusqlite::Error::QueryReturnedNoRows)
    }
}
