//! `monitor-server backup`: a consistent copy of a live database through SQLite's online backup
//! API, which copies page by page and restarts when a writer changes a page already copied, so a
//! server may keep writing to the source meanwhile.

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};

/// Pages copied per step; between steps the source is unlocked so writers are not held up.
const PAGES_PER_STEP: i32 = 1024;

/// Copies the database at `source` to `out`, which must not exist yet. The copy is written to a
/// temporary file beside `out` and renamed into place once complete, so `out` is never partial.
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
    let partial = out.with_extension("partial");
    let result = copy(source, &partial).and_then(|pages| {
        std::fs::rename(&partial, out)
            .map_err(|err| format!("cannot move the copy to {}: {err}", out.display()))?;
        Ok(pages)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn copy(source: &Path, partial: &Path) -> Result<u64, String> {
    let describe = |err: rusqlite::Error| format!("backup failed: {err}");
    let src =
        Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(describe)?;
    src.busy_timeout(Duration::from_secs(5)).map_err(describe)?;
    // A file that is not SQLite fails here, before anything is written.
    src.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(describe)?;
    let mut dst = Connection::open(partial).map_err(describe)?;
    {
        let backup = Backup::new(&src, &mut dst).map_err(describe)?;
        backup
            .run_to_completion(PAGES_PER_STEP, Duration::from_millis(5), None)
            .map_err(describe)?;
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
