//! Full disk: with the database on a small tmpfs that fills up, writes answer 507 with a JSON
//! message and store nothing (no partial rows), reads keep working, the server stays up, and
//! writes succeed again once space is freed.
//!
//! Mounting a tmpfs needs root. Without it the test prints a `SKIPPED:` line and passes, except
//! under `CI=true`, where it fails with the reason.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::common::{Home, Setup, TestApp};

/// The size of the tmpfs the database lives on.
const TMPFS_SIZE: &str = "4m";

/// Room left beside the filler file: enough for a few writes, so some succeed before the 507.
const LEFT_FREE: u64 = 512 * 1024;

/// A generous cap on the writes posted while waiting for the disk to fill.
const MAX_POSTS: usize = 10_000;

/// Length of each metric's `item_path`, so that every row takes real room.
const ITEM_PATH_LEN: usize = 2048;

/// A tmpfs mounted on a fresh temporary directory, lazily unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|err| format!("no temporary directory: {err}"))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|err| format!("cannot run mount: {err}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy, so that a file still open (a failing test's server) does not keep it mounted.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A request under `/api/v1`, answered with its status and JSON body (`Null` when empty).
fn send(app: &TestApp, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let bytes = body.map(Value::to_string).unwrap_or_default();
    let content_type = body.map(|_| "application/json");
    app.send(
        method,
        &format!("/api/v1{path}"),
        content_type,
        bytes.as_bytes(),
    )
}

/// A metric named `item` whose `item_path` is [`ITEM_PATH_LEN`] bytes long.
fn big_metric(item: &str) -> Value {
    json!({
        "session_h": "d15cd15cd15cd15cd15cd15cd15cd15cd15cd15c",
        "context_h": "c7a1e0f2b3d4e5f60718293a4b5c6d7e8f901234",
        "item_start_time": "2024-02-03T04:05:06.070809",
        "item_path": big_path(item),
        "item": item,
        "item_variant": format!("{item}[]"),
        "item_fs_loc": "tests/test_disk.py",
        "kind": "function",
        "component": "disk",
        "total_time": 0.5,
        "user_time": 0.25,
        "kernel_time": 0.125,
        "cpu_usage": 0.5,
        "mem_usage": 8.0
    })
}

fn big_path(item: &str) -> String {
    let mut path = format!("tests.{item}.");
    while path.len() < ITEM_PATH_LEN {
        path.push_str("deeply.nested.module.");
    }
    path.truncate(ITEM_PATH_LEN);
    path
}

/// A session with four tags, so that a partial write would show as a session without its tags.
fn session(h: &str) -> Value {
    json!({
        "session_h": h,
        "run_date": "2024-02-03T04:05:00.000001",
        "scm_ref": "0123456789abcdef0123456789abcdef01234567",
        "description": {
            "description": big_path(h),
            "pipeline_branch": "main",
            "pipeline_build_no": "77",
            "__ci__": "gitlab"
        }
    })
}

/// Fills the file system holding `dir` with a file, then gives back [`LEFT_FREE`] bytes of it.
pub(super) fn fill_leaving_a_little(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = File::create(&path).expect("cannot create the filler file");
    let chunk = vec![0xA5u8; 64 * 1024];
    let mut written: u64 = 0;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(err) if err.kind() == ErrorKind::StorageFull => break,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => panic!("filling the disk failed: {err}"),
        }
    }
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("cannot reopen the filler file");
    file.set_len(written.saturating_sub(LEFT_FREE))
        .expect("cannot shrink the filler file");
    path
}

/// Posts to `path` the bodies `make(0)`, `make(1)`, ... until one is answered 507; returns how
/// many were answered 201 before it and the 507's body.
fn post_until_507(
    server: &TestApp,
    path: &str,
    make: impl Fn(usize) -> Value,
) -> (Vec<usize>, Value) {
    let mut created = Vec::new();
    for n in 0..MAX_POSTS {
        match send(server, "POST", path, Some(&make(n))) {
            (201, _) => created.push(n),
            (507, body) => return (created, body),
            (status, body) => panic!("POST {path} #{n} answered {status}, not 201 or 507: {body}"),
        }
    }
    panic!("{MAX_POSTS} POSTs to {path} and the disk never filled up");
}

#[test]
fn a_full_disk_answers_507_keeps_reads_working_stores_no_partial_rows_and_recovers_once_freed() {
    // Arrange: the database on a 4 MiB tmpfs, filled up but for a little room.
    let tmpfs = match Tmpfs::mount(TMPFS_SIZE) {
        Ok(tmpfs) => tmpfs,
        Err(reason) if crate::common::on_ci() => {
            panic!("the full-disk test needs a tmpfs and cannot mount one: {reason}")
        }
        Err(reason) => {
            let _ = writeln!(
                std::io::stderr(),
                "\nSKIPPED: full-disk test (tests/reliability/disk.rs): cannot mount a tmpfs \
                 [{reason}]; run as root to test it (under CI=true this is a failure)\n"
            );
            return;
        }
    };
    let db_path = tmpfs.path().join("monitor.db");
    let server = TestApp::start(Setup {
        home: Some(Home::File(db_path.clone())),
        ..Setup::default()
    });
    let filler = fill_leaving_a_little(tmpfs.path());

    // Act: post metrics, then sessions, until the disk is full.
    let (metrics_created, metric_refusal) =
        post_until_507(&server, "/metrics/", |n| big_metric(&format!("before_{n}")));
    let (sessions_created, session_refusal) =
        post_until_507(&server, "/sessions/", |n| session(&format!("full{n:036}")));
    eprintln!(
        "disk: {} metrics and {} sessions stored before 507",
        metrics_created.len(),
        sessions_created.len()
    );

    // Assert: the refusals are JSON with a message, ...
    for refusal in [&metric_refusal, &session_refusal] {
        let message = refusal["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "the 507 has no message: {refusal}");
    }
    // ... reads keep working and list exactly what was answered 201, whole.
    let (status, count) = send(&server, "GET", "/metrics/count", None);
    assert_eq!(
        (status, count),
        (200, json!({ "count": metrics_created.len() }))
    );
    let (status, listing) = send(&server, "GET", "/metrics/?per_page=10000", None);
    assert_eq!(status, 200, "{listing}");
    let listed: Vec<(String, String)> = listing["metrics"]
        .as_array()
        .expect("no metrics array")
        .iter()
        .map(|m| {
            (
                m["item"].as_str().unwrap().into(),
                m["item_path"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = metrics_created
        .iter()
        .map(|n| format!("before_{n}"))
        .map(|item| (item.clone(), big_path(&item)))
        .collect();
    assert_eq!(
        listed, expected,
        "the stored metrics are not those answered 201"
    );
    let (status, count) = send(&server, "GET", "/sessions/count", None);
    assert_eq!(
        (status, count),
        (200, json!({ "count": sessions_created.len() }))
    );

    // Act: free the space.
    std::fs::remove_file(&filler).expect("cannot remove the filler file");

    // Assert: the same server takes writes again.
    for n in 0..5 {
        let (status, body) = send(
            &server,
            "POST",
            "/metrics/",
            Some(&big_metric(&format!("after_{n}"))),
        );
        assert_eq!(status, 201, "metric {n} after freeing space: {body}");
    }
    let (status, body) = send(
        &server,
        "POST",
        "/sessions/",
        Some(&session("after-space-freed")),
    );
    assert_eq!(status, 201, "session after freeing space: {body}");
    let (_, count) = send(&server, "GET", "/metrics/count", None);
    assert_eq!(count, json!({ "count": metrics_created.len() + 5 }));
    server.stop();

    // The file holds whole records only: every session with its four tags, and it is sound.
    let conn = rusqlite::Connection::open(&db_path).expect("cannot open the database");
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |row| row.get(0)).expect(sql) };
    let sessions = sessions_created.len() as i64 + 1;
    assert_eq!(one("SELECT count(*) FROM sessions"), sessions);
    assert_eq!(one("SELECT count(*) FROM session_tags"), 4 * sessions);
    assert_eq!(
        one("SELECT count(*) FROM metrics"),
        metrics_created.len() as i64 + 5
    );
    let items: HashSet<String> = conn
        .prepare("SELECT item FROM metrics")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .expect("cannot read the items");
    assert_eq!(
        items.len(),
        metrics_created.len() + 5,
        "an item is stored twice"
    );
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("cannot run the integrity check");
    assert_eq!(check, "ok");
    drop(conn);
    drop(tmpfs);
}
