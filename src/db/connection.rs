//! Opening the database file and setting up its connections: the pragmas every connection gets,
//! the pool of readers, and the one busy timeout every connection of the crate waits with.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};

/// How long a statement waits for another connection's lock before giving up with BUSY: every
/// connection of the crate (the server's, a backup's, an import's) waits this long. The server's
/// own writes never wait on each other (they share one connection); this covers another process,
/// such as `sqlite3`, a backup or pytest-monitor, holding the lock for a moment.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the database could not be opened at start-up; shown to the operator as one line.
#[derive(Debug)]
pub struct OpenError {
    path: PathBuf,
    reason: String,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot use database {}: {}",
            self.path.display(),
            self.reason
        )
    }
}

impl std::error::Error for OpenError {}

impl OpenError {
    /// The database at `path` cannot be used, for `reason`.
    pub(super) fn new(path: &Path, reason: String) -> Self {
        OpenError {
            path: path.to_owned(),
            reason,
        }
    }
}

/// How the server opens the file: read-write, created when missing, each connection used by one
/// thread at a time.
const OPEN_FLAGS: OpenFlags = OpenFlags::SQLITE_OPEN_READ_WRITE
    .union(OpenFlags::SQLITE_OPEN_CREATE)
    .union(OpenFlags::SQLITE_OPEN_NO_MUTEX);

/// Opens (creating if needed) the file at `path`, after checking that its directory exists and
/// that it is not a directory itself. The error is one line for the operator.
pub(super) fn open_file(path: &Path) -> Result<Connection, String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(format!("directory {} does not exist", parent.display()));
        }
    }
    if path.is_dir() {
        return Err("it is a directory, not a file".into());
    }
    let existed = path.exists();
    Connection::open_with_flags(path, OPEN_FLAGS).map_err(|err| {
        if !existed && err.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen) {
            "the file cannot be created: its directory is read-only or not writable".into()
        } else {
            describe(&err)
        }
    })
}

/// A pool of `size` readers of the file at `path`, each set up by [`configure_reader`].
pub(super) fn reader_pool(
    path: &Path,
    size: u32,
) -> Result<r2d2::Pool<SqliteConnectionManager>, String> {
    let manager = SqliteConnectionManager::file(path)
        .with_flags(OPEN_FLAGS)
        .with_init(configure_reader);
    r2d2::Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(10))
        .build(manager)
        .map_err(|err| err.to_string())
}

/// Sets up a connection the way every connection of the server must be: WAL (so readers never
/// wait for the writer), a busy timeout instead of instant BUSY errors, fsync at every commit so
/// a 201 survives power loss, and foreign keys enforced.
pub(crate) fn configure_connection(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )
}

/// How much of the database each pooled reader keeps in memory, in KiB. A page of 500 metrics
/// spans about 60 pages of 4 KiB, which this holds with the top of every b-tree. SQLite's default,
/// 2 MiB per connection, would make the pool's caches most of the server's memory for little
/// gain: the rest of the file is read from the OS's file cache, and a listing seldom reads the
/// same pages twice.
///
/// The file is not memory-mapped (`mmap_size` stays 0): mapped pages count in the server's
/// resident memory, and serving pages all over a large store maps hundreds of megabytes of it.
const READER_CACHE_KIB: i64 = 512;

/// Sets up a pooled reader: [`configure_connection`], with a small page cache.
fn configure_reader(conn: &mut Connection) -> rusqlite::Result<()> {
    configure_connection(conn)?;
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
}

/// A short, operator-facing reason for an SQLite failure at start-up.
pub(super) fn describe(err: &rusqlite::Error) -> String {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => "the file is not an SQLite database".into(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => "the database file is corrupt".into(),
        Some(rusqlite::ErrorCode::CannotOpen) => "the file cannot be opened or created".into(),
        Some(rusqlite::ErrorCode::ReadOnly) => "the file or its directory is read-only".into(),
        Some(rusqlite::ErrorCode::PermissionDenied) => "permission denied".into(),
        _ => err.to_string(),
    }
}
