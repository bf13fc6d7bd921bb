//! Reads pytest-monitor's local database (the `.pymon` file): opens it read-only in one read
//! transaction, checks it is the plugin's and undamaged, and turns every row into the record the
//! API would build from the same values, or refuses the file naming the table, rowid and column.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};
use serde_json::{Map, Value};

use super::progress::Progress;
use super::Failure;
use crate::commands::text::{counted, plural};
use crate::error::ApiError;
use crate::models::{Context, JsonObject, Metric, Session};

/// One of the plugin's tables: its name, and each column read, with the API field it becomes.
pub(super) struct Table {
    pub(super) name: &'static str,
    columns: &'static [(&'static str, &'static str)],
}

pub(super) const SESSIONS: Table = Table {
    name: "TEST_SESSIONS",
    columns: &[
        ("SESSION_H", "session_h"),
        ("RUN_DATE", "run_date"),
        ("SCM_ID", "scm_ref"),
        ("RUN_DESCRIPTION", "description"),
    ],
};

pub(super) const CONTEXTS: Table = Table {
    name: "EXECUTION_CONTEXTS",
    columns: &[
        ("ENV_H", "h"),
        ("CPU_COUNT", "cpu_count"),
        ("CPU_FREQUENCY_MHZ", "cpu_frequency"),
        ("CPU_TYPE", "cpu_type"),
        ("CPU_VENDOR", "cpu_vendor"),
        ("RAM_TOTAL_MB", "ram_total"),
        ("MACHINE_NODE", "machine_node"),
        ("MACHINE_TYPE", "machine_type"),
        ("MACHINE_ARCH", "machine_arch"),
        ("SYSTEM_INFO", "system_info"),
        ("PYTHON_INFO", "python_info"),
    ],
};

pub(super) const METRICS: Table = Table {
    name: "TEST_METRICS",
    columns: &[
        ("SESSION_H", "session_h"),
        ("ENV_H", "context_h"),
        ("ITEM_START_TIME", "item_start_time"),
        ("ITEM_PATH", "item_path"),
        ("ITEM", "item"),
        ("ITEM_VARIANT", "item_variant"),
        ("ITEM_FS_LOC", "item_fs_loc"),
        ("KIND", "kind"),
        ("COMPONENT", "component"),
        ("TOTAL_TIME", "total_time"),
        ("USER_TIME", "user_time"),
        ("KERNEL_TIME", "kernel_time"),
        ("CPU_USAGE", "cpu_usage"),
        ("MEM_USAGE", "mem_usage"),
    ],
};

/// Columns where NULL stands for empty text: the plugin declares `COMPONENT` nullable, and the
/// API makes the other two optional or possibly empty.
const NULL_IS_EMPTY: [&str; 3] = ["COMPONENT", "CPU_VENDOR", "SCM_ID"];

/// The column holding a session's tags as JSON text (`json.dumps` of a dict); NULL means none.
const DESCRIPTION: &str = "RUN_DESCRIPTION";

impl Table {
    /// Every row, each with its rowid first, in the order the plugin wrote them.
    fn select(&self) -> String {
        let columns: Vec<&str> = self.columns.iter().map(|(column, _)| *column).collect();
        format!(
            "SELECT rowid, {} FROM {} ORDER BY rowid",
            columns.join(", "),
            self.name
        )
    }

    /// The position (after the rowid) and name of the column an API field comes from.
    fn column_of(&self, field: &str) -> Option<(usize, &'static str)> {
        self.columns
            .iter()
            .position(|(_, f)| *f == field)
            .map(|i| (i + 1, self.columns[i].0))
    }
}

/// A pytest-monitor database, opened read-only inside one read transaction, checked, with its
/// contexts and sessions read and every metric validated.
pub(super) struct Source {
    conn: Connection,
    pub(super) contexts: Vec<(i64, Context)>,
    pub(super) sessions: Vec<(i64, Session)>,
    /// How many metrics the file holds.
    pub(super) metrics: u64,
    /// The sessions its metrics name (whether or not the file holds those sessions).
    pub(super) metric_sessions: BTreeSet<String>,
}

/// One line for an SQLite failure while reading the file.
fn damaged(err: &rusqlite::Error) -> Failure {
    Failure::Refused(match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => "it is not an SQLite database".into(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            "it is damaged (SQLite: database disk image is malformed)".into()
        }
        Some(rusqlite::ErrorCode::CannotOpen) => "it cannot be opened".into(),
        Some(rusqlite::ErrorCode::PermissionDenied) => "permission denied".into(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            "it stayed locked by another program (is pytest still writing to it?)".into()
        }
        _ => format!("it cannot be read: {err}"),
    })
}

impl Source {
    pub(super) fn open(path: &Path, progress: &mut Progress) -> Result<Source, Failure> {
        if path.is_dir() {
            return Err(Failure::Refused("it is a directory".into()));
        }
        if !path.exists() {
            return Err(Failure::Refused("no such file".into()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|err| damaged(&err))?;
        conn.busy_timeout(crate::db::BUSY_TIMEOUT)
            .map_err(|err| damaged(&err))?;
        // One snapshot for the check and for storing, taken at the first read below.
        conn.execute_batch("BEGIN").map_err(|err| damaged(&err))?;
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
            .map_err(|err| damaged(&err))?;
        for table in [&SESSIONS, &CONTEXTS, &METRICS] {
            check_columns(&conn, table)?;
        }
        let problems: Vec<String> = conn
            .prepare("PRAGMA quick_check")
            .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
            .map_err(|err| damaged(&err))?;
        if problems.first().map(String::as_str) != Some("ok") {
            // The first report starts with a "*** in database main ***" line; one line is shown.
            let first: Vec<&str> = problems
                .iter()
                .flat_map(|problem| problem.lines())
                .filter(|line| !line.starts_with("***") && !line.trim().is_empty())
                .take(1)
                .collect();
            return Err(Failure::Refused(format!(
                "it is damaged: PRAGMA quick_check found {}, the first: {}",
                counted(problems.len() as u64, "problem"),
                first.first().copied().unwrap_or("?")
            )));
        }

        let mut source = Source {
            contexts: read_rows(&conn, &CONTEXTS, Context::from_json)?,
            sessions: read_rows(&conn, &SESSIONS, Session::from_json)?,
            metrics: conn
                .query_row(
                    &format!("SELECT count(*) FROM {}", METRICS.name),
                    [],
                    |row| row.get(0),
                )
                .map_err(|err| damaged(&err))?,
            metric_sessions: BTreeSet::new(),
            conn,
        };
        let mut sessions = BTreeSet::new();
        let mut done = 0;
        source.for_each_metric(|metric| {
            sessions.insert(metric.session_h);
            done += 1;
            progress.show("checking", done, source.metrics);
            Ok(())
        })?;
        source.metric_sessions = sessions;
        Ok(source)
    }

    /// Calls `each` with every metric of the file, in the order written, stopping at the first
    /// row that is not a valid metric or at the first error `each` returns.
    pub(super) fn for_each_metric(
        &self,
        mut each: impl FnMut(Metric) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let mut stmt = self
            .conn
            .prepare(&METRICS.select())
            .map_err(|err| damaged(&err))?;
        let mut rows = stmt.query([]).map_err(|err| damaged(&err))?;
        while let Some(row) = rows.next().map_err(|err| damaged(&err))? {
            each(parse_row(&METRICS, row, Metric::from_json)?)?;
        }
        Ok(())
    }
}

/// Checks that the file has `table` with every column the import reads (more columns are fine).
fn check_columns(conn: &Connection, table: &Table) -> Result<(), Failure> {
    let present: Vec<String> = conn
        .prepare(&format!("PRAGMA table_info({})", table.name))
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(1))?.collect())
        .map_err(|err| damaged(&err))?;
    if present.is_empty() {
        return Err(Failure::Refused(format!(
            "it has no table {}, so it is not a pytest-monitor database",
            table.name
        )));
    }
    let missing: Vec<&str> = table
        .columns
        .iter()
        .map(|(column, _)| *column)
        .filter(|column| !present.iter().any(|p| p.eq_ignore_ascii_case(column)))
        .collect();
    if !missing.is_empty() {
        return Err(Failure::Refused(format!(
            "its table {} lacks the {} {}, so it is not a pytest-monitor database",
            table.name,
            plural(missing.len() as u64, "column"),
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Every row of a small table (contexts, sessions), parsed, with its rowid.
fn read_rows<T>(
    conn: &Connection,
    table: &Table,
    parse: fn(JsonObject) -> Result<T, ApiError>,
) -> Result<Vec<(i64, T)>, Failure> {
    let mut stmt = conn.prepare(&table.select()).map_err(|err| damaged(&err))?;
    let mut rows = stmt.query([]).map_err(|err| damaged(&err))?;
    let mut records = Vec::new();
    while let Some(row) = rows.next().map_err(|err| damaged(&err))? {
        let rowid: i64 = row.get(0).map_err(|err| damaged(&err))?;
        records.push((rowid, parse_row(table, row, parse)?));
    }
    Ok(records)
}

/// Turns a row into the record the API would build from the same values, or refuses it naming
/// the table, the rowid and each column at fault.
fn parse_row<T>(
    table: &Table,
    row: &Row<'_>,
    parse: fn(JsonObject) -> Result<T, ApiError>,
) -> Result<T, Failure> {
    let rowid: i64 = row.get(0).map_err(|err| damaged(&err))?;
    let refuse =
        |reason: String| Failure::Refused(format!("{} rowid {rowid}: {reason}", table.name));
    let object = row_object(table, row).map_err(refuse)?;
    parse(object).map_err(|err| match err {
        ApiError::BadRequest { errors, .. } if !errors.is_empty() => {
            let reasons: Vec<String> = errors
                .iter()
                .map(|(field, reason)| match table.column_of(field) {
                    Some((i, column)) => format!("{column} {reason}, found {}", shown(row, i)),
                    None => format!("{field} {reason}"),
                })
                .collect();
            refuse(reasons.join("; "))
        }
        other => refuse(other.to_string()),
    })
}

/// The row's values as the JSON object a client would post, or why a value cannot be part of one.
fn row_object(table: &Table, row: &Row<'_>) -> Result<JsonObject, String> {
    let mut object = Map::new();
    for (i, (column, field)) in table.columns.iter().enumerate() {
        let value = match row.get_ref(i + 1).map_err(|err| err.to_string())? {
            ValueRef::Null if NULL_IS_EMPTY.contains(column) => Value::String(String::new()),
            ValueRef::Null if *column == DESCRIPTION => continue,
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) => Value::from(n),
            ValueRef::Real(x) if x.is_finite() => Value::from(x),
            ValueRef::Real(x) => return Err(format!("{column} is {x}, not a finite number")),
            ValueRef::Text(bytes) => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| format!("{column} is not valid UTF-8 text"))?;
                if *column == DESCRIPTION {
                    serde_json::from_str(text)
                        .map_err(|err| format!("{column} is not valid JSON ({err})"))?
                } else {
                    Value::String(text.to_owned())
                }
            }
            ValueRef::Blob(_) => {
                return Err(format!("{column} holds binary data, not text or a number"))
            }
        };
        object.insert((*field).to_owned(), value);
    }
    serde_json::from_value(Value::Object(object)).map_err(|err| err.to_string())
}

/// A column's value for a message: numbers as they are, text quoted and cut short.
fn shown(row: &Row<'_>, i: usize) -> String {
    match row.get_ref(i) {
        Ok(ValueRef::Null) => "NULL".into(),
        Ok(ValueRef::Integer(n)) => n.to_string(),
        Ok(ValueRef::Real(x)) => x.to_string(),
        Ok(ValueRef::Text(bytes)) => {
            let text = String::from_utf8_lossy(bytes);
            if text.chars().count() > 60 {
                format!("{:?}...", text.chars().take(60).collect::<String>())
            } else {
                format!("{text:?}")
            }
        }
        Ok(ValueRef::Blob(bytes)) => format!("{} bytes of binary data", bytes.len()),
        Err(_) => "an unreadable value".into(),
    }
}
