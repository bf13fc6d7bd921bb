//! The outcome of storing a record that may already be stored, and the conflict when the stored
//! one differs.

use crate::error::ApiError;

/// The outcome of creating a record that may already exist.
#[derive(Debug, PartialEq)]
pub enum Created<T> {
    /// The record is new.
    New(T),
    /// An identical record was already stored; it is returned as stored.
    Existing(T),
}

impl<T> Created<T> {
    /// The stored record, whichever way it came to be.
    pub fn into_inner(self) -> T {
        match self {
            Created::New(record) | Created::Existing(record) => record,
        }
    }
}

/// Re-creating a record under a taken id with other content.
pub(super) fn conflict(record: &str, id: &str) -> ApiError {
    ApiError::Conflict(format!(
        "A {record} with id {id} is already stored with different content."
    ))
}
