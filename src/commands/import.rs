//! `monitor-server import FILE... [--db PATH | --server URL]`: stores the history pytest-monitor
//! kept in its local database — the `.pymon` file the plugin writes unless run with `--no-db`,
//! with its tables `TEST_SESSIONS`, `EXECUTION_CONTEXTS` and `TEST_METRICS` — into a
//! monitor-server database, or sends it to a running server's API.
//!
//! Each file is all or nothing. It is opened read-only and checked first (an SQLite file, the
//! plugin's three tables with their columns, `PRAGMA quick_check`), then every row is turned into
//! the record the API would build from the same values, by the API's own parsing
//! ([`Metric::from_json`] and its siblings), so a row the API would refuse refuses the file, named
//! by table and rowid. Only then is anything written: with `--db`, the whole file in one
//! transaction through the database's writer connection, so a failure at any point leaves the
//! database as it was. With `--server` there is no transaction to lean on; see [`send`].
//!
//! Importing is idempotent, also for history that already reached the server live, through
//! `pytest --remote-server`: the plugin sends exactly what it writes locally (the same hashes,
//! times and `item_variant`), so the same rule recognises both.
//! - A context or session already stored with the same content is skipped; under the same hash
//!   with other content it is a conflict, which refuses the file.
//! - A metric is already stored when the target holds one of the same session with the same
//!   context, `item_start_time` (the plugin writes microseconds), `item_path`, `item_variant`
//!   and `kind`: one test item started at one instant in one pytest process. The measurements
//!   are not compared. Metrics of the file are only compared with those stored before it, so a
//!   file that itself holds two identical rows stores both, once.
//!
//! The pass that checks a file and the pass that stores it read one snapshot of it (one read
//! transaction), so a plugin writing to it meanwhile cannot make the two disagree.

use std::collections::{BTreeSet, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};
use serde_json::{json, Map, Value};

use crate::config::ImportArgs;
use crate::db::query::{MetricQuery, TextColumn};
use crate::db::{self, Created, Db, MetricTallies};
use crate::error::ApiError;
use crate::models::{Context, JsonObject, Metric, Session};

/// How long reading a file waits for the plugin's write lock, and how long storing waits for
/// another process's (a running server's) before giving up.
const BUSY_TIMEOUT: Duration = crate::db::BUSY_TIMEOUT;

/// Metrics asked for per page when reading what a server already holds.
const REMOTE_PAGE: u64 = 10_000;

/// Metrics sent per `POST /metrics/batch` (about half a megabyte: well under the server's batch
/// limit, and a failed request loses little).
const REMOTE_BATCH: usize = 1_000;

/// How long one request to the server may take.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(60);

/// One of the plugin's tables: its name, and each column read, with the API field it becomes.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, &'static str)],
}

const SESSIONS: Table = Table {
    name: "TEST_SESSIONS",
    columns: &[
        ("SESSION_H", "session_h"),
        ("RUN_DATE", "run_date"),
        ("SCM_ID", "scm_ref"),
        ("RUN_DESCRIPTION", "description"),
    ],
};

const CONTEXTS: Table = Table {
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

const METRICS: Table = Table {
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

/// Why a file was not imported, or not completely.
#[derive(Debug)]
enum Failure {
    /// The file is at fault — not pytest-monitor's database, damaged, a row the API would refuse,
    /// content that conflicts with what is stored — and nothing of it was stored (exit code 2).
    Refused(String),
    /// The target is at fault: the database cannot be used or written, the server cannot be
    /// reached or answered an error (exit code 1, or 2 for a database `serve` would refuse too).
    Target(String, u8),
}

/// How many records of one kind were added, and how many were already stored.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    added: u64,
    skipped: u64,
}

impl Tally {
    fn count(&mut self, added: bool) {
        if added {
            self.added += 1;
        } else {
            self.skipped += 1;
        }
    }
}

/// The outcome of importing one file.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    sessions: Tally,
    contexts: Tally,
    metrics: Tally,
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Counts {
    fn summary(&self) -> String {
        format!(
            "{}, {}, {} added; {}, {}, {} were already stored",
            plural(self.sessions.added, "session", "sessions"),
            plural(self.contexts.added, "context", "contexts"),
            plural(self.metrics.added, "metric", "metrics"),
            plural(self.sessions.skipped, "session", "sessions"),
            plural(self.contexts.skipped, "context", "contexts"),
            plural(self.metrics.skipped, "metric", "metrics"),
        )
    }
}

/// Where the records go.
enum Target {
    /// A database file, opened on first use (so that a run refusing every file creates none).
    Database {
        path: std::path::PathBuf,
        db: Option<Db>,
        runtime: Option<actix_web::rt::SystemRunner>,
    },
    /// A running server's API.
    Server(Remote),
}

/// Imports every file of `args`, printing one line per file (its counts on stdout, or why it was
/// refused on stderr). Returns the exit code: 0 when every file was imported, 2 when a file was
/// refused (the others are still imported) or the database cannot be used, 1 when storing
/// failed (the remaining files are then not tried).
pub fn run(args: &ImportArgs) -> u8 {
    let mut target = match &args.server {
        Some(url) => Target::Server(Remote::new(url, args.token.clone())),
        None => Target::Database {
            path: args.db_path(),
            db: None,
            runtime: None,
        },
    };
    let mut code = 0;
    for file in &args.files {
        match import_file(file, &mut target) {
            Ok(counts) => println!("imported {}: {}", file.display(), counts.summary()),
            Err(Failure::Refused(reason)) => {
                eprintln!(
                    "monitor-server: cannot import {}: {reason}; nothing was imported from it",
                    file.display()
                );
                code = 2;
            }
            Err(Failure::Target(reason, exit)) => {
                eprintln!("monitor-server: cannot import {}: {reason}", file.display());
                return exit;
            }
        }
    }
    code
}

fn import_file(file: &Path, target: &mut Target) -> Result<Counts, Failure> {
    let mut progress = Progress::new(file);
    let source = Source::open(file, &mut progress)?;
    match target {
        Target::Database { path, db, runtime } => {
            let db = match db {
                Some(db) => db.clone(),
                None => {
                    let opened =
                        Db::open(path, 1).map_err(|err| Failure::Target(err.to_string(), 2))?;
                    db.insert(opened).clone()
                }
            };
            let runtime = runtime.get_or_insert_with(actix_web::rt::System::new);
            runtime
                .block_on(db.write(move |conn| Ok(store(conn, &source, &mut progress))))
                .map_err(|err| Failure::Target(write_failure(&err), 1))?
        }
        Target::Server(remote) => send(remote, &source, &mut progress),
    }
}

/// What to tell the operator when the database could not be written.
fn write_failure(err: &ApiError) -> String {
    let cause = match err {
        ApiError::InsufficientStorage => "the disk holding the database is full".to_owned(),
        ApiError::Unavailable(_) => {
            "the database stayed locked by another program or cannot be written".to_owned()
        }
        // The cause has been logged on the line above.
        ApiError::Internal => "writing to the database failed".to_owned(),
        other => other.to_string().trim_end_matches('.').to_owned(),
    };
    format!("{cause}; nothing was imported from it")
}

// ------------------------------------------------------------------------------ the file

/// A pytest-monitor database, opened read-only inside one read transaction, checked, with its
/// contexts and sessions read and every metric validated.
struct Source {
    conn: Connection,
    contexts: Vec<(i64, Context)>,
    sessions: Vec<(i64, Session)>,
    /// How many metrics the file holds.
    metrics: u64,
    /// The sessions its metrics name (whether or not the file holds those sessions).
    metric_sessions: BTreeSet<String>,
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
    fn open(path: &Path, progress: &mut Progress) -> Result<Source, Failure> {
        if path.is_dir() {
            return Err(Failure::Refused("it is a directory".into()));
        }
        if !path.exists() {
            return Err(Failure::Refused("no such file".into()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|err| damaged(&err))?;
        conn.busy_timeout(BUSY_TIMEOUT)
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
                plural(problems.len() as u64, "problem", "problems"),
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
    fn for_each_metric(
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
            "its table {} lacks the column{} {}, so it is not a pytest-monitor database",
            table.name,
            if missing.len() == 1 { "" } else { "s" },
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

// ------------------------------------------------------------------------------ identity

/// What identifies a metric across imports and live uploads: one test item (`item_path`,
/// `item_variant`, `kind`) started at one instant in one session on one context.
///
/// Kept as a 128-bit digest rather than the strings, so that recognising the metrics already
/// stored takes 16 bytes each however long the names are; two different metrics share a
/// digest with a probability of about 2^-128 per pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct MetricKey(u128);

impl MetricKey {
    fn new(parts: [&str; 6]) -> Self {
        // Two SipHash digests, the second salted: the standard library's fixed keys make them
        // the same in every process, which is all a set within one run needs.
        let (mut a, mut b) = (DefaultHasher::new(), DefaultHasher::new());
        0x5a17_u16.hash(&mut b);
        for part in parts {
            // `str`'s Hash ends each string with a marker, so ("ab", "c") and ("a", "bc") differ.
            part.hash(&mut a);
            part.hash(&mut b);
        }
        MetricKey((u128::from(a.finish()) << 64) | u128::from(b.finish()))
    }

    fn of(m: &Metric) -> Self {
        Self::new([
            &m.session_h,
            &m.context_h,
            &m.item_start_time,
            &m.item_path,
            &m.item_variant,
            &m.kind,
        ])
    }
}

// ------------------------------------------------------------------------------ --db

/// Stores a checked file on the writer connection, inside a savepoint of its own: its contexts
/// and sessions (skipping identical ones), then its metrics not already stored. At the first
/// problem the savepoint is rolled back, so nothing of the file is kept.
fn store(conn: &Connection, source: &Source, progress: &mut Progress) -> Result<Counts, Failure> {
    let failed = |err: rusqlite::Error| Failure::Target(write_failure(&ApiError::from(err)), 1);
    conn.execute_batch("SAVEPOINT import_file")
        .map_err(failed)?;
    let outcome = store_all(conn, source, progress);
    let end = match outcome {
        Ok(_) => "RELEASE import_file",
        Err(_) => "ROLLBACK TO import_file; RELEASE import_file",
    };
    conn.execute_batch(end).map_err(failed)?;
    outcome
}

fn store_all(tx: &Connection, source: &Source, progress: &mut Progress) -> Result<Counts, Failure> {
    let failed = |err: rusqlite::Error| Failure::Target(write_failure(&ApiError::from(err)), 1);
    let mut counts = Counts::default();
    for (rowid, context) in &source.contexts {
        let created = db::insert_context(tx, context).map_err(|err| {
            stored_failure(err, &CONTEXTS, *rowid, "a context", "ENV_H", &context.h)
        })?;
        counts.contexts.count(matches!(created, Created::New(_)));
    }
    for (rowid, session) in &source.sessions {
        let created = db::insert_session(tx, session).map_err(|err| {
            stored_failure(
                err,
                &SESSIONS,
                *rowid,
                "a session",
                "SESSION_H",
                &session.session_h,
            )
        })?;
        counts.sessions.count(matches!(created, Created::New(_)));
    }

    let mut stored = HashSet::new();
    for session_h in &source.metric_sessions {
        let of_session = MetricQuery::all().eq(TextColumn::SessionH, session_h);
        if db::count_metrics_by(tx, &of_session).map_err(failed)? > 0 {
            let metrics = db::list_metrics_by(tx, &of_session, 0, u64::MAX).map_err(failed)?;
            stored.extend(metrics.iter().map(MetricKey::of));
        }
    }
    let mut done = 0;
    let mut tallies = MetricTallies::default();
    source.for_each_metric(|metric| {
        let new = !stored.contains(&MetricKey::of(&metric));
        if new {
            db::insert_metrics(tx, &mut tallies, std::slice::from_ref(&metric)).map_err(failed)?;
        }
        counts.metrics.count(new);
        done += 1;
        progress.show("storing", done, source.metrics);
        Ok(())
    })?;
    // Inside the file's savepoint, so that a failure rolls the counts back with the rows.
    tallies.apply(tx).map_err(failed)?;
    Ok(counts)
}

/// A context or session the database refused: a conflict is the file's fault, anything else the
/// database's.
fn stored_failure(
    err: ApiError,
    table: &Table,
    rowid: i64,
    record: &str,
    column: &str,
    h: &str,
) -> Failure {
    match err {
        ApiError::Conflict(_) => Failure::Refused(format!(
            "{} rowid {rowid}: the database already holds {record} with {column} {h} and \
             different content",
            table.name
        )),
        other => Failure::Target(write_failure(&other), 1),
    }
}

// ------------------------------------------------------------------------------ --server

/// A running monitor-server, reached through its API.
struct Remote {
    agent: ureq::Agent,
    /// `http://HOST:PORT/api/v1`, without a trailing slash.
    base: String,
    token: Option<String>,
}

/// A path segment with everything but RFC 3986's unreserved characters percent-encoded.
fn segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

impl Remote {
    /// `url` may be the server's root or its API base (`.../api/v1`), as given to the plugin.
    fn new(url: &str, token: Option<String>) -> Self {
        let mut base = url.trim_end_matches('/').to_owned();
        if !base.ends_with("/api/v1") {
            base.push_str("/api/v1");
        }
        Remote {
            agent: ureq::AgentBuilder::new().timeout(REMOTE_TIMEOUT).build(),
            base,
            token,
        }
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let request = self.agent.request(method, &format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.set("Authorization", &format!("Bearer {token}")),
            None => request,
        }
    }

    /// One line for a failed request: the status and the server's `message`, or why it could
    /// not be reached.
    fn failure(&self, method: &str, path: &str, err: ureq::Error) -> (Option<u16>, String) {
        match err {
            ureq::Error::Status(status, response) => {
                let message = response
                    .into_string()
                    .ok()
                    .and_then(|body| serde_json::from_str::<Value>(&body).ok())
                    .and_then(|body| body["message"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let message = format!("{method} {}{path} answered {status} {message}", self.base);
                (Some(status), message.trim_end().to_owned())
            }
            ureq::Error::Transport(transport) => {
                (None, format!("cannot reach the server: {transport}"))
            }
        }
    }

    /// GETs `path`: its JSON body, or `None` for 204 (an empty listing).
    fn get(&self, path: &str) -> Result<Option<Value>, Failure> {
        let response = self
            .request("GET", path)
            .call()
            .map_err(|err| Failure::Target(self.failure("GET", path, err).1, 1))?;
        if response.status() == 204 {
            return Ok(None);
        }
        let body: Value = serde_json::from_reader(response.into_reader()).map_err(|err| {
            Failure::Target(
                format!("GET {}{path}: the answer is not JSON: {err}", self.base),
                1,
            )
        })?;
        Ok(Some(body))
    }

    /// POSTs `body` to `path`; anything but 201 is an error, with its status when there is one.
    fn post(&self, path: &str, body: &Value) -> Result<(), (Option<u16>, String)> {
        self.request("POST", path)
            .set("Content-Type", "application/json")
            .send_string(&body.to_string())
            .map_err(|err| self.failure("POST", path, err))
            .and_then(|response| match response.status() {
                201 => Ok(()),
                status => Err((
                    Some(status),
                    format!("POST {}{path} answered {status}, not 201", self.base),
                )),
            })
    }

    /// Stores `metrics`: in one `POST /metrics/batch`, all or none, or — when `batches` is false,
    /// or the server has no such route (an older server answers 404, which sets `batches` to
    /// false) — one `POST /metrics/` each. On error, how many of them were stored before it.
    fn post_metrics(
        &self,
        metrics: &[Value],
        batches: &mut bool,
    ) -> Result<(), (u64, (Option<u16>, String))> {
        const PATH: &str = "/metrics/batch";
        if *batches {
            let mut body = String::new();
            for metric in metrics {
                body.push_str(&metric.to_string());
                body.push('\n');
            }
            let sent = self
                .request("POST", PATH)
                .set("Content-Type", "application/x-ndjson")
                .send_string(&body);
            match sent {
                Ok(response) if response.status() == 201 => return Ok(()),
                Ok(response) => {
                    let status = response.status();
                    let message = format!("POST {}{PATH} answered {status}, not 201", self.base);
                    return Err((0, (Some(status), message)));
                }
                Err(ureq::Error::Status(404, _)) => *batches = false,
                Err(err) => return Err((0, self.failure("POST", PATH, err))),
            }
        }
        for (stored, metric) in metrics.iter().enumerate() {
            self.post("/metrics/", metric)
                .map_err(|err| (stored as u64, err))?;
        }
        Ok(())
    }

    /// Every record of a listing (all its pages), an empty one answering 204.
    fn list(&self, path: &str, key: &str) -> Result<Vec<Value>, Failure> {
        let mut records = Vec::new();
        for page in 1.. {
            let separator = if path.contains('?') { '&' } else { '?' };
            let Some(mut body) = self.get(&format!("{path}{separator}page={page}"))? else {
                break;
            };
            match body[key].take() {
                Value::Array(rows) => records.extend(rows),
                _ => {
                    return Err(Failure::Target(
                        format!("GET {}{path}: the answer lists no `{key}`", self.base),
                        1,
                    ))
                }
            }
            if body.get("next_url").is_none() {
                break;
            }
        }
        Ok(records)
    }

    /// The stored record with exactly this hash, among those a prefix listing returns.
    fn find(&self, collection: &str, key: &str, h: &str) -> Result<Option<Value>, Failure> {
        let path = format!("/{collection}/{}?per_page={REMOTE_PAGE}", segment(h));
        let records = self.list(&path, collection)?;
        Ok(records.into_iter().find(|record| record[key] == h))
    }
}

/// Sends a checked file to a server: the same records and the same rule as `--db`, through the
/// API, one request per context and session and one per [`REMOTE_BATCH`] metrics. There is no transaction across requests, so this is as close to
/// all or nothing as a client can get: the whole file is checked before the first request, and
/// so are the contexts and sessions the server already holds (a conflict refuses the file before
/// anything is sent). A failure after that — the server going away, a full disk — leaves part of
/// the file stored; running the same import again sends only the rest.
fn send(remote: &Remote, source: &Source, progress: &mut Progress) -> Result<Counts, Failure> {
    let mut counts = Counts::default();
    let conflict = |table: &Table, rowid: i64, record: &str, column: &str, h: &str| {
        Failure::Refused(format!(
            "{} rowid {rowid}: the server already holds {record} with {column} {h} and \
             different content",
            table.name
        ))
    };
    let unreadable = |what: &str, err: ApiError| {
        Failure::Target(
            format!("the server lists {what} this binary cannot read: {err}"),
            1,
        )
    };

    let mut new_contexts = Vec::new();
    for (rowid, context) in &source.contexts {
        match remote.find("contexts", "h", &context.h)? {
            None => new_contexts.push(context),
            Some(stored) => {
                let stored = serde_json::from_value(stored)
                    .map_err(|err| ApiError::bad_request(err.to_string()))
                    .and_then(Context::from_json)
                    .map_err(|err| unreadable("a context", err))?;
                if stored != *context {
                    return Err(conflict(
                        &CONTEXTS,
                        *rowid,
                        "a context",
                        "ENV_H",
                        &context.h,
                    ));
                }
                counts.contexts.skipped += 1;
            }
        }
    }
    let mut new_sessions = Vec::new();
    for (rowid, session) in &source.sessions {
        match remote.find("sessions", "session_h", &session.session_h)? {
            None => new_sessions.push((rowid, session)),
            Some(stored) => {
                let stored = serde_json::from_value(stored)
                    .map_err(|err| ApiError::bad_request(err.to_string()))
                    .and_then(Session::from_json)
                    .map_err(|err| unreadable("a session", err))?;
                if stored != *session {
                    let h = &session.session_h;
                    return Err(conflict(&SESSIONS, *rowid, "a session", "SESSION_H", h));
                }
                counts.sessions.skipped += 1;
            }
        }
    }
    let mut stored = HashSet::new();
    for session_h in &source.metric_sessions {
        let path = format!("/sessions/{}/metrics", segment(session_h));
        let count = remote.get(&format!("{path}/count"))?;
        if count
            .as_ref()
            .and_then(|c| c["count"].as_u64())
            .unwrap_or(0)
            == 0
        {
            continue;
        }
        for m in remote.list(&format!("{path}?per_page={REMOTE_PAGE}"), "metrics")? {
            let text = |field: &str| m[field].as_str().unwrap_or_default().to_owned();
            let parts = [
                "session_h",
                "context_h",
                "item_start_time",
                "item_path",
                "item_variant",
                "kind",
            ]
            .map(text);
            stored.insert(MetricKey::new(parts.each_ref().map(String::as_str)));
        }
    }

    // Sending starts here; from now on a failure may leave part of the file stored.
    let partial = |counts: &Counts, (status, message): (Option<u16>, String)| {
        let sent = counts.contexts.added + counts.sessions.added + counts.metrics.added;
        if status == Some(409) {
            return Failure::Refused(message);
        }
        let message = message.trim_end_matches('.');
        Failure::Target(
            if sent == 0 {
                format!("{message}; nothing of this file was stored")
            } else {
                format!(
                    "{message}; {} of this file had been stored before, and running the same \
                     import again sends only the rest",
                    plural(sent, "record", "records")
                )
            },
            1,
        )
    };
    for context in new_contexts {
        let body = serde_json::to_value(context).unwrap_or(Value::Null);
        remote
            .post("/contexts/", &body)
            .map_err(|err| partial(&counts, err))?;
        counts.contexts.added += 1;
    }
    for (_, session) in new_sessions {
        let body = json!({
            "session_h": session.session_h,
            "run_date": session.run_date,
            "scm_ref": session.scm_ref,
            "description": session.description,
        });
        remote
            .post("/sessions/", &body)
            .map_err(|err| partial(&counts, err))?;
        counts.sessions.added += 1;
    }
    let mut done = 0;
    let mut batch = Vec::with_capacity(REMOTE_BATCH);
    let mut batches = true;
    let mut flush = |batch: &mut Vec<Value>, counts: &mut Counts| {
        let sent = remote.post_metrics(batch, &mut batches);
        let stored = match &sent {
            Ok(()) => batch.len() as u64,
            Err((stored, _)) => *stored,
        };
        counts.metrics.added += stored;
        batch.clear();
        sent.map_err(|(_, err)| partial(counts, err))
    };
    source.for_each_metric(|metric| {
        if stored.contains(&MetricKey::of(&metric)) {
            counts.metrics.count(false);
        } else {
            batch.push(serde_json::to_value(&metric).unwrap_or(Value::Null));
            if batch.len() == REMOTE_BATCH {
                flush(&mut batch, &mut counts)?;
            }
        }
        done += 1;
        progress.show("sending", done, source.metrics);
        Ok(())
    })?;
    if !batch.is_empty() {
        flush(&mut batch, &mut counts)?;
    }
    Ok(counts)
}

// ------------------------------------------------------------------------------ progress

/// A progress line on stderr, redrawn in place (`\r`) at most ten times a second, when stderr is
/// a terminal; nothing otherwise. Cleared when dropped, so the summary line that follows stands
/// alone.
struct Progress {
    enabled: bool,
    label: String,
    last: Option<Instant>,
    width: usize,
}

impl Progress {
    fn new(file: &Path) -> Self {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            label: file.display().to_string(),
            last: None,
            width: 0,
        }
    }

    fn show(&mut self, phase: &str, done: u64, total: u64) {
        if !self.enabled
            || (done < total
                && self
                    .last
                    .is_some_and(|last| last.elapsed() < Duration::from_millis(100)))
        {
            return;
        }
        self.last = Some(Instant::now());
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        let line = format!(
            "{}: {phase} {done}/{total} metrics ({percent}%)",
            self.label
        );
        self.width = self.width.max(line.chars().count());
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r{line:<width$}", width = self.width);
        let _ = stderr.flush();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.enabled && self.width > 0 {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r{:width$}\r", "", width = self.width);
            let _ = stderr.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_key_depends_on_every_part_and_on_where_the_parts_split() {
        let base = [
            "s",
            "c",
            "2024-01-01T00:00:00.000001",
            "m",
            "t[1, a]",
            "function",
        ];
        let key = MetricKey::new(base);
        assert_eq!(key, MetricKey::new(base));
        for i in 0..base.len() {
            let mut other = base;
            other[i] = "x";
            assert_ne!(key, MetricKey::new(other), "part {i}");
        }
        let mut moved = base;
        moved[0] = "sc";
        moved[1] = "";
        assert_ne!(key, MetricKey::new(moved));
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(segment("abc-1.2_~"), "abc-1.2_~");
        assert_eq!(segment("a/b?c d%"), "a%2Fb%3Fc%20d%25");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn the_server_url_may_be_given_with_or_without_the_api_base() {
        for url in [
            "http://h:1",
            "http://h:1/",
            "http://h:1/api/v1",
            "http://h:1/api/v1/",
        ] {
            assert_eq!(Remote::new(url, None).base, "http://h:1/api/v1", "{url}");
        }
    }
}
