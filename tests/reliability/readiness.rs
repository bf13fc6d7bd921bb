//! `GET /readyz` answers 503 with the reason when the database cannot take writes — its disk is
//! full, its file read-only — and 200 again once it can, while `/healthz` stays 200.
//!
//! The full disk needs a tmpfs, so root: elsewhere it prints `SKIPPED:` and passes, but fails
//! under `CI=true`.

use std::fs::{OpenOptions, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{Home, Setup, TestApp};
use crate::disk::fill_leaving_a_little;
use crate::files::Mount;

/// A server whose database lives on a fresh 4 MiB tmpfs mounted on `dir/mnt`; `None` when this
/// machine cannot mount one (after saying so).
fn server_on_a_tmpfs(dir: &tempfile::TempDir, test: &str) -> Option<(TestApp, Mount)> {
    let mounted = dir.path().join("mnt");
    std::fs::create_dir(&mounted).expect("cannot create the mount point");
    let mount = Mount::tmpfs(&mounted, "rw", test)?;
    let server = TestApp::start(Setup {
        home: Some(Home::File(mounted.join("monitor.db"))),
        ..Setup::default()
    });
    Some((server, mount))
}

fn assert_not_ready(server: &TestApp, reason: &str) {
    let (status, body) = server.get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(reason), "{reason:?} not in {body}");
    assert_eq!(server.get("/healthz").0, 200, "the process still serves");
}

#[test]
fn readyz_answers_503_while_the_disk_is_full_and_200_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let Some((server, mount)) = server_on_a_tmpfs(&dir, "readyz on a full disk") else {
        return;
    };
    assert_eq!(server.get("/readyz").0, 200);

    let filler = fill_leaving_a_little(&dir.path().join("mnt"));

    assert_not_ready(&server, "is full");
    std::fs::remove_file(filler).expect("cannot remove the filler");
    assert_eq!(
        server.get("/readyz"),
        (200, serde_json::json!({"status": "ok"}))
    );
    drop(server);
    drop(mount);
}

#[test]
fn readyz_answers_503_when_the_database_file_turns_read_only() {
    let server = TestApp::start(Setup::default());
    assert_eq!(server.get("/readyz").0, 200);

    let Some(_guard) = ReadOnly::make(&server.db_path) else {
        return;
    };

    assert_not_ready(&server, "cannot be written");
    let (status, body): (u16, Value) = server.get("/api/v1/metrics/count");
    assert_eq!(status, 200, "reads go on: {body}");
}

/// A file made read-only — by its mode, or for root, whom modes do not stop, with the immutable
/// attribute — and made writable again on drop, so that its directory can be removed.
struct ReadOnly {
    path: PathBuf,
    immutable: bool,
}

impl ReadOnly {
    fn make(path: &Path) -> Option<ReadOnly> {
        let writable = || OpenOptions::new().write(true).open(path).is_ok();
        let mode = |mode| std::fs::set_permissions(path, Permissions::from_mode(mode));
        mode(0o444).expect("cannot change the database's mode");
        if !writable() {
            return Some(ReadOnly {
                path: path.to_owned(),
                immutable: false,
            });
        }
        let marked = Command::new("chattr").arg("+i").arg(path).status();
        if marked.is_ok_and(|status| status.success()) && !writable() {
            return Some(ReadOnly {
                path: path.to_owned(),
                immutable: true,
            });
        }
        assert!(
            !crate::common::on_ci(),
            "cannot make the database read-only: its mode does not stop this user and \
             chattr +i failed"
        );
        eprintln!("SKIPPED: readyz on a read-only file: cannot make the file read-only here");
        None
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.immutable {
            let _ = Command::new("chattr").arg("-i").arg(&self.path).status();
        }
        let _ = std::fs::set_permissions(&self.path, Permissions::from_mode(0o644));
    }
}
