//! Sessions: storing one with its tags (or finding the identical one stored), finding one, and
//! selecting them by hash, SCM reference and tags.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

use crate::db::created::{conflict, Created};
use crate::db::sql::{prefix_pattern, with_window};
use crate::error::ApiError;
use crate::models::{tag_value, Session};

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    let description: String = row.get(3)?;
    let description: Map<String, Value> = serde_json::from_str(&description).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(err))
    })?;
    Ok(Session {
        session_h: row.get(0)?,
        run_date: row.get(1)?,
        scm_ref: row.get(2)?,
        description,
    })
}

/// Stores a session with its tags, or finds the identical one already stored; a different one
/// under the same hash is a conflict.
///
/// Meant to run through [`Db::write`], whose savepoint keeps the session and its tags together:
/// an error after the session row (a full disk) rolls both back.
///
/// [`Db::write`]: crate::db::Db::write
pub fn insert_session(conn: &Connection, s: &Session) -> Result<Created<Session>, ApiError> {
    let description = Value::Object(s.description.clone()).to_string();
    // The hash may be known already (metrics may name a session before it is posted); the id
    // stays valid, since `session_hashes` rows are never deleted.
    conn.prepare_cached("INSERT OR IGNORE INTO session_hashes (h) VALUES (?1)")?
        .execute([&s.session_h])?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO sessions (session_h, run_date, scm_ref, description, hash_id) \
             VALUES (?1, ?2, ?3, ?4, (SELECT id FROM session_hashes WHERE h = ?1)) \
             ON CONFLICT (session_h) DO NOTHING",
        )?
        .execute(params![s.session_h, s.run_date, s.scm_ref, description])?;
    let outcome = if inserted == 1 {
        let id = conn.last_insert_rowid();
        let mut tag = conn.prepare_cached(
            "INSERT INTO session_tags (session_id, name, value) VALUES (?1, ?2, ?3)",
        )?;
        for (name, value) in &s.description {
            tag.execute(params![id, name, tag_value(value)])?;
        }
        Created::New(s.clone())
    } else {
        let stored = find_session(conn, &s.session_h)?
            .ok_or_else(|| rusqlite::Error::QueryReturnedNoRows)?;
        if stored != *s {
            return Err(conflict("session", &s.session_h));
        }
        Created::Existing(stored)
    };
    Ok(outcome)
}

/// The session stored under exactly `session_h`.
pub fn find_session(conn: &Connection, session_h: &str) -> rusqlite::Result<Option<Session>> {
    conn.prepare_cached(
        "SELECT session_h, run_date, scm_ref, description FROM sessions WHERE session_h = ?1",
    )?
    .query_row([session_h], session_from_row)
    .optional()
}

/// How many sessions are stored.
pub fn count_sessions(conn: &Connection) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT count(*) FROM sessions")?
        .query_row([], |row| row.get(0))
}

/// A selection of sessions: by hash prefix, SCM reference prefix and tags.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    clauses: Vec<String>,
    params: Vec<SqlValue>,
}

/// One tag condition of a session query: the tag is set to `value`, or to anything non-empty.
#[derive(Debug, Clone, PartialEq)]
pub struct TagCondition {
    /// The tag's name.
    pub name: String,
    /// The value it must have; `None` for any non-empty value.
    pub value: Option<String>,
}

impl SessionQuery {
    /// Every session, in the order stored.
    pub fn all() -> Self {
        Self::default()
    }

    /// Sessions whose hash starts with `prefix`.
    pub fn hash_prefix(mut self, prefix: &str) -> Self {
        self.clauses.push("s.session_h LIKE ? ESCAPE '\\'".into());
        self.params.push(SqlValue::Text(prefix_pattern(prefix)));
        self
    }

    /// Sessions whose SCM reference starts with `prefix`.
    pub fn scm_prefix(mut self, prefix: &str) -> Self {
        self.clauses.push("s.scm_ref LIKE ? ESCAPE '\\'".into());
        self.params.push(SqlValue::Text(prefix_pattern(prefix)));
        self
    }

    /// Sessions meeting any (or, with `all`, every) one of `conditions`.
    pub fn tags(mut self, conditions: &[TagCondition], all: bool) -> Self {
        if conditions.is_empty() {
            return self;
        }
        let mut parts = Vec::new();
        for condition in conditions {
            self.params.push(SqlValue::Text(condition.name.clone()));
            match &condition.value {
                Some(value) => {
                    parts.push(
                        "EXISTS (SELECT 1 FROM session_tags t WHERE t.session_id = s.id \
                         AND t.name = ? AND t.value = ?)",
                    );
                    self.params.push(SqlValue::Text(value.clone()));
                }
                None => parts.push(
                    "EXISTS (SELECT 1 FROM session_tags t WHERE t.session_id = s.id \
                     AND t.name = ? AND t.value != '')",
                ),
            }
        }
        let joiner = if all { " AND " } else { " OR " };
        self.clauses.push(format!("({})", parts.join(joiner)));
        self
    }

    fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// How many sessions a selection covers.
pub fn count_sessions_by(conn: &Connection, query: &SessionQuery) -> rusqlite::Result<u64> {
    let sql = format!("SELECT count(*) FROM sessions s{}", query.where_sql());
    conn.prepare_cached(&sql)?
        .query_row(params_from_iter(&query.params), |row| row.get(0))
}

/// A window of a session selection, in the order stored.
pub fn list_sessions_by(
    conn: &Connection,
    query: &SessionQuery,
    offset: u64,
    limit: u64,
) -> rusqlite::Result<Vec<Session>> {
    let sql = format!(
        "SELECT s.session_h, s.run_date, s.scm_ref, s.description FROM sessions s{} \
         ORDER BY s.id LIMIT ? OFFSET ?",
        query.where_sql()
    );
    let values = with_window(query.params.clone(), offset, limit);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(values), session_from_row)?;
    rows.collect()
}
