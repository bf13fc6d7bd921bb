//! Whether the database can take writes right now, for `GET /readyz`: the file system is
//! writable and not full, the file opens for writing, and the writer thread answers.

use std::fs::OpenOptions;
use std::path::Path;
use std::time::Duration;

use rustix::fs::StatVfsMountFlags;

use crate::db::Db;

/// Free space below which the disk counts as full: a group of writes appends its pages to the
/// WAL before it commits, and a batch of metrics takes a few hundred kilobytes there.
pub const MIN_FREE_BYTES: u64 = 1 << 20;

/// How long the writer may take to answer the probe; a writer stuck behind a slow disk for
/// longer is as good as not writing.
pub const WRITER_TIMEOUT: Duration = Duration::from_secs(5);

impl Db {
    /// `Ok` when a write would be stored now; else why not, in one sentence for the operator.
    pub async fn readiness(&self) -> Result<(), String> {
        let path = self.path.clone();
        actix_web::web::block(move || file_system(&path))
            .await
            .map_err(|err| format!("The readiness check could not run: {err}."))??;
        // A change that changes nothing still queues behind every write and waits for its group:
        // it shows that the writer thread is alive and keeping up.
        match actix_web::rt::time::timeout(WRITER_TIMEOUT, self.write(|_| Ok(()))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(format!("The writer refuses writes: {err}")),
            Err(_) => Err(format!(
                "The writer has not answered within {} s.",
                WRITER_TIMEOUT.as_secs()
            )),
        }
    }
}

/// Checks the file system holding `path`, then the file itself.
fn file_system(path: &Path) -> Result<(), String> {
    let directory = path.parent().unwrap_or(Path::new("."));
    let stats = rustix::fs::statvfs(directory).map_err(|err| {
        format!(
            "The file system of {} cannot be examined: {err}.",
            directory.display()
        )
    })?;
    if stats.f_flag.contains(StatVfsMountFlags::RDONLY) {
        return Err(format!(
            "The file system holding {} is mounted read-only.",
            path.display()
        ));
    }
    let free = stats.f_bavail.saturating_mul(stats.f_frsize);
    if free < MIN_FREE_BYTES {
        return Err(format!(
            "The disk holding {} is full: {free} bytes free, fewer than {MIN_FREE_BYTES}.",
            path.display()
        ));
    }
    OpenOptions::new().write(true).open(path).map_err(|err| {
        format!(
            "The database file {} cannot be written: {err}.",
            path.display()
        )
    })?;
    Ok(())
}
