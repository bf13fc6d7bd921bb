//! Where the rows of a page of metrics go as SQLite yields them: into [`Metric`]s, or straight
//! into the JSON array a listing answers with.

use rusqlite::Row;

use crate::db::metrics::{metric_from_row, metric_record};
use crate::db::page_names::PageNames;
use crate::models::Metric;

/// Takes the metrics of a page as SQLite yields them, one row of
/// [`METRIC_COLUMNS`](crate::db::metrics::METRIC_COLUMNS) at a time.
pub(super) trait MetricSink {
    /// Learns how many rows are coming, to make room for them at once.
    fn expect(&mut self, rows: u64);
    /// Takes the next row, its names looked up through `names`.
    fn push(&mut self, row: &Row<'_>, names: &mut PageNames<'_>) -> rusqlite::Result<()>;
    /// How many rows it took.
    fn len(&self) -> usize;
    /// Forgets every row taken (a walk that did not find its whole window).
    fn clear(&mut self);
    /// Turns the rows taken around (a window read from the other end).
    fn reverse(&mut self);
}

impl MetricSink for Vec<Metric> {
    fn expect(&mut self, rows: u64) {
        self.reserve(usize::try_from(rows).unwrap_or(0));
    }
    fn push(&mut self, row: &Row<'_>, names: &mut PageNames<'_>) -> rusqlite::Result<()> {
        Vec::push(self, metric_from_row(row, names)?);
        Ok(())
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn clear(&mut self) {
        Vec::clear(self);
    }
    fn reverse(&mut self) {
        self.as_mut_slice().reverse();
    }
}

/// A page of metrics written as a JSON array, each row serialised from SQLite's own buffers as
/// it is read: a page costs no `String` per field, no [`Metric`] and no `serde_json::Value`.
/// The output is what serialising the page's [`Metric`]s gives, byte for byte.
pub(super) struct JsonRows<'a> {
    out: &'a mut Vec<u8>,
    /// Where the array's `[` is in `out`.
    open: usize,
    /// Where each row's object starts in `out`.
    starts: Vec<usize>,
    /// How many rows are coming ([`MetricSink::expect`]).
    expected: usize,
}

impl<'a> JsonRows<'a> {
    /// Opens the array at the end of `out`.
    pub(super) fn new(out: &'a mut Vec<u8>) -> Self {
        let open = out.len();
        out.push(b'[');
        JsonRows {
            out,
            open,
            starts: Vec::new(),
            expected: 0,
        }
    }

    /// Closes the array.
    pub(super) fn finish(self) {
        self.out.push(b']');
    }
}

impl MetricSink for JsonRows<'_> {
    fn expect(&mut self, rows: u64) {
        self.expected = usize::try_from(rows).unwrap_or(0);
        self.starts.reserve(self.expected);
    }
    fn push(&mut self, row: &Row<'_>, names: &mut PageNames<'_>) -> rusqlite::Result<()> {
        names.learn(row)?;
        if !self.starts.is_empty() {
            self.out.push(b',');
        }
        let start = self.out.len();
        self.starts.push(start);
        let mut spelled = [0u8; 26];
        metric_record(row, names, &mut spelled)?
            .write_json(self.out)
            // Cannot happen: finite numbers (SQLite stores no NaN) written to memory.
            .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))?;
        if self.starts.len() == 1 {
            // Room for the rest of the page, guessed from its first row, so that the buffer
            // is not copied over and over as it grows.
            let guess = (self.out.len() - start + 1) * 9 / 8;
            self.out.reserve(guess * self.expected.saturating_sub(1));
        }
        Ok(())
    }
    fn len(&self) -> usize {
        self.starts.len()
    }
    fn clear(&mut self) {
        self.out.truncate(self.open + 1);
        self.starts.clear();
    }
    fn reverse(&mut self) {
        let Some(&first) = self.starts.first() else {
            return;
        };
        let mut reversed = Vec::with_capacity(self.out.len() - first);
        let mut starts = Vec::with_capacity(self.starts.len());
        let mut end = self.out.len();
        for &start in self.starts.iter().rev() {
            if !starts.is_empty() {
                reversed.push(b',');
            }
            starts.push(first + reversed.len());
            reversed.extend_from_slice(&self.out[start..end]);
            // The previous row's object ends before the comma that precedes this one's (every
            // object follows the `[` or a comma, so `start` is at least 1).
            end = start - 1;
        }
        self.out.truncate(first);
        self.out.extend_from_slice(&reversed);
        self.starts = starts;
    }
}
