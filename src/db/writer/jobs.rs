//! The jobs the writer runs: a change made by a closure, in a savepoint of its own, a store of
//! metrics, which needs none, and a batch, in a transaction of its own; each answers its client
//! once its group is over.

use rusqlite::Connection;
use tokio::sync::oneshot;

use std::sync::mpsc;

use crate::db::insert::{insert_metrics, MetricTallies};
use crate::error::ApiError;
use crate::models::{Metric, NdjsonPieces};

/// A change waiting for the writer, with the client waiting for its outcome.
pub(super) trait Job: Send {
    /// Whether the job runs inside a savepoint of its own, which its failure rolls back. A job
    /// without one must either make its whole change or fail in a way that fails the group.
    fn guarded(&self) -> bool;
    /// Whether the job is a group of its own, in a transaction that it alone can fail: one that
    /// fails without a savepoint, yet must not fail the writes of others with it.
    fn alone(&self) -> bool {
        false
    }
    /// Makes the change inside the group's transaction and keeps its outcome for the client; an
    /// error comes back (a copy) so that the writer rolls the change back. Metrics stored are
    /// counted in `tallies`, which the writer applies before committing.
    fn run(&mut self, conn: &Connection, tallies: &mut MetricTallies) -> Result<(), ApiError>;
    /// Answers the client once the group is over: the change's own outcome if the group was
    /// committed, else the error that stopped the group.
    fn answer(self: Box<Self>, group: Result<(), &ApiError>);
    /// How many metrics the job stored once it ran, for `/metrics`.
    fn metrics_stored(&self) -> usize {
        0
    }
}

/// A [`Job`] made of a closure returning `T`.
pub(super) struct Pending<T, F> {
    /// The change; taken when it runs.
    pub(super) change: Option<F>,
    /// What it returned; `None` until it ran, and still `None` if it panicked.
    pub(super) outcome: Option<Result<T, ApiError>>,
    pub(super) reply: oneshot::Sender<Result<T, ApiError>>,
}

impl<T, F> Job for Pending<T, F>
where
    F: FnOnce(&Connection) -> Result<T, ApiError> + Send,
    T: Send,
{
    fn guarded(&self) -> bool {
        true
    }

    fn run(&mut self, conn: &Connection, _: &mut MetricTallies) -> Result<(), ApiError> {
        let outcome = match self.change.take() {
            Some(change) => change(conn),
            None => Err(ApiError::Internal),
        };
        let status = match &outcome {
            Ok(_) => Ok(()),
            Err(err) => Err(err.clone()),
        };
        self.outcome = Some(outcome);
        status
    }

    fn answer(self: Box<Self>, group: Result<(), &ApiError>) {
        let answer = match (group, self.outcome) {
            (Err(err), _) => Err(err.clone()),
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(ApiError::Internal),
        };
        // The client may have gone away; what it sent is stored all the same.
        let _ = self.reply.send(answer);
    }
}

/// A [`Job`] storing metrics: [`Writer::store_metrics`].
pub(super) struct StoreMetrics {
    pub(super) metrics: Vec<Metric>,
    /// Whether they were all inserted.
    pub(super) stored: bool,
    pub(super) reply: oneshot::Sender<Result<Vec<Metric>, ApiError>>,
}

impl Job for StoreMetrics {
    fn guarded(&self) -> bool {
        // insert_metrics stores every metric or fails the transaction.
        false
    }

    fn run(&mut self, conn: &Connection, tallies: &mut MetricTallies) -> Result<(), ApiError> {
        insert_metrics(conn, tallies, &self.metrics)?;
        self.stored = true;
        Ok(())
    }

    fn metrics_stored(&self) -> usize {
        if self.stored {
            self.metrics.len()
        } else {
            0
        }
    }

    fn answer(self: Box<Self>, group: Result<(), &ApiError>) {
        let answer = match group {
            Err(err) => Err(err.clone()),
            Ok(()) if self.stored => Ok(self.metrics),
            Ok(()) => Err(ApiError::Internal),
        };
        let _ = self.reply.send(answer);
    }
}

/// How many lines of a batch are parsed and inserted at a time: the records of a few such pieces
/// are all a batch holds in memory beside its body, whatever its size.
pub(super) const BATCH_PIECE_LINES: usize = 2048;

/// A [`Job`] storing a batch of metrics sent as newline-delimited JSON: [`Writer::store_batch`].
///
/// [`Writer::store_batch`]: super::Writer::store_batch
pub(super) struct StoreBatch {
    /// The body, one metric per line ([`crate::models::metrics_from_ndjson`]).
    pub(super) body: Vec<u8>,
    /// How many metrics were inserted, once they all were.
    pub(super) stored: Option<usize>,
    pub(super) reply: oneshot::Sender<Result<usize, ApiError>>,
}

impl Job for StoreBatch {
    fn guarded(&self) -> bool {
        // A savepoint would keep a copy of every page the batch touches: the batch's own
        // transaction is what undoes it.
        false
    }

    fn alone(&self) -> bool {
        // A line at fault fails the batch after some of it is inserted.
        true
    }

    fn metrics_stored(&self) -> usize {
        self.stored.unwrap_or(0)
    }

    /// Parses the body a piece at a time on a thread of its own, one piece ahead of the inserts,
    /// so that parsing overlaps storing and at most three pieces are in memory at once.
    fn run(&mut self, conn: &Connection, tallies: &mut MetricTallies) -> Result<(), ApiError> {
        let (pieces, parsed) = mpsc::sync_channel(1);
        let body = &self.body;
        let stored = std::thread::scope(|scope| {
            scope.spawn(move || {
                for piece in NdjsonPieces::new(body, BATCH_PIECE_LINES) {
                    // The writer stopped taking pieces: it failed, and needs no more.
                    if pieces.send(piece).is_err() {
                        break;
                    }
                }
            });
            let mut stored = 0;
            for piece in parsed {
                let metrics = piece?;
                insert_metrics(conn, tallies, &metrics)?;
                stored += metrics.len();
            }
            Ok::<_, ApiError>(stored)
        })?;
        self.stored = Some(stored);
        Ok(())
    }

    fn answer(self: Box<Self>, group: Result<(), &ApiError>) {
        let answer = match (group, self.stored) {
            (Err(err), _) => Err(err.clone()),
            (Ok(()), Some(stored)) => Ok(stored),
            (Ok(()), None) => Err(ApiError::Internal),
        };
        let _ = self.reply.send(answer);
    }
}
