//! The SQL pieces listings share: the LIMIT and OFFSET of a window, and a "starts with" pattern.

use rusqlite::types::Value as SqlValue;

use crate::db::query::like_escape;

/// `values` followed by LIMIT and OFFSET, as SQLite's signed integers.
pub(super) fn with_window(mut values: Vec<SqlValue>, offset: u64, limit: u64) -> Vec<SqlValue> {
    values.push(SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    values.push(SqlValue::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
    values
}

/// The LIKE pattern for "starts with `prefix`", wildcards in `prefix` matching themselves.
pub(super) fn prefix_pattern(prefix: &str) -> String {
    format!("{}%", like_escape(prefix))
}
