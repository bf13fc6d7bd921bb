//! `monitor-server backup`: a consistent copy of a live database through SQLite's online backup
//! API, while a server may keep writing to the source.
//!
//! The copy is made in a single backup step, that is inside one read transaction: in WAL mode a
//! reader does not block writers, and it sees one snapshot, so the copy holds exactly the
//! transactions committed when it started. (Copying in several steps would release the snapshot
//! in between, and SQLite restarts a backup whenever another process writes to the source between
//! two steps — under steady writes it would never finish.)

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// Copies the database at `source` to `out`, which must not exist yet. The copy is written to
/// `OUT.partial` and linked into place once complete and checked, so `out` is never partial and a
/// file created at `out` meanwhile is not overwritten either. Returns the pages copied.
pub fn backup(source: &Path, out: &Path) -> Result<u64, String> {
    if !source.is_file() {
        return Err(format!("{} is not a database file", source.display()));
    }
    if out.exists() {
        return Err(format!(
            "{} already exists; refusing to overwrite it",
            out.display()
        ));
    }
    let partial = partial_path(out);
    if partial.exists() {
        return Err(format!(
            "{} already exists (left by an interrupted backup?); remove it first",
            partial.display()
        ));
    }
    let result = copy(source, &partial).and_then(|pages| {
        // A hard link, unlike a rename, fails rather than replace a file that appeared meanwhile;
        // on a file system without hard links, a rename after checking again will do.
        let placed = match std::fs::hard_link(&partial, out) {
            Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists && !out.exists() => {
                std::fs::rename(&partial, out)
            }
            placed => placed,
        };
        placed.map_err(|err| format!("cannot move the copy to {}: {err}", out.display()))?;
        Ok(pages)
    });
    let _ = std::fs::remove_file(&partial);
    result
}

/// `OUT.partial`, beside `OUT`.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = OsString::from(out.as_os_str());
    name.push(".partial");
    PathBuf::from(name)
}

fn copy(source: &Path, partial: &Path) -> Result<u64, String> {
    let describe = |err: rusqlite::Error| format!("backup failed: {err}");
    let src =
        Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(describe)?;
    src.busy_timeout(crate::db::BUSY_TIMEOUT)
        .map_err(describe)?;
    // A file that is not SQLite fails here, before anything is written.
    src.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(describe)?;
    let mut dst = Connection::open(partial).map_err(describe)?;
    {
        let backup = Backup::new(&src, &mut dst).map_err(describe)?;
        // -1: every page in one step, from one snapshot. Busy or Locked means a lock could not be
        // had even after the busy timeout (a long checkpoint, a crashed writer's recovery).
        match backup.step(-1).map_err(describe)? {
            StepResult::Done => {}
            StepResult::More | StepResult::Busy | StepResult::Locked => {
                return Err("backup failed: the database stayed locked; try again".into())
            }
            _ => return Err("backup failed: SQLite did not finish the copy".into()),
        }
    }
    let check: String = dst
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(describe)?;
    if check != "ok" {
        return Err(format!("the copy failed its integrity check: {check}"));
    }
    let pages: u64 = dst
        .query_row("PRAGMA page_count", [], |row| row.get(0))
        .map_err(describe)?;
    Ok(pages)
}
