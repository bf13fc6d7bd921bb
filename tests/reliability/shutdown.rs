//! Graceful shutdown and backup, with the real binary under write load: SIGTERM lets the requests
//! in flight finish, loses nothing acknowledged, checkpoints the WAL and exits 0; `monitor-server
//! backup` copies the live database consistently, and refuses what it must not do.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    metric, monitor_server, status_of, stored_items, wait_until, Running, DEADLINE,
};

/// How long the server may take to exit once SIGTERM arrives with nothing slow in flight.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// The binary serving a fresh database in its own temporary directory.
struct Served {
    server: Running,
    /// `http://127.0.0.1:PORT/api/v1`
    base: String,
    db: PathBuf,
    dir: tempfile::TempDir,
}

fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    let mut command = monitor_server();
    command.args(["--db", db.to_str().unwrap(), "--bind", "127.0.0.1:0"]);
    let server = Running::start(command, dir.path());
    let base = server.wait_until_listening();
    Served {
        server,
        base,
        db,
        dir,
    }
}

/// Threads that post metrics as fast as the server takes them, each remembering the items the
/// server acknowledged with 201, until told to stop or the server goes away.
struct Writers {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<String>>>,
    /// Answers other than 201, which must not happen.
    unexpected: Arc<Mutex<Vec<String>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Writers {
    /// `count` writers posting `body(name)` to `base`/metrics/.
    fn start(base: &str, count: usize, body: fn(&str) -> Value) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let unexpected = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..count)
            .map(|writer| {
                let url = format!("{base}/metrics/");
                let stop = Arc::clone(&stop);
                let acknowledged = Arc::clone(&acknowledged);
                let unexpected = Arc::clone(&unexpected);
                std::thread::spawn(move || {
                    let agent = crate::common::agent();
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let item = format!("writer{writer}_{n}");
                        let sent = agent
                            .post(&url)
                            .set("Content-Type", "application/json")
                            .send_string(&body(&item).to_string());
                        match sent {
                            Ok(response) if response.status() == 201 => {
                                acknowledged.lock().unwrap().push(item)
                            }
                            Ok(response) | Err(ureq::Error::Status(_, response)) => {
                                unexpected.lock().unwrap().push(format!(
                                    "{item}: {} {}",
                                    response.status(),
                                    response.into_string().unwrap_or_default()
                                ));
                            }
                            // The server is gone (or going): nothing more will be acknowledged.
                            Err(ureq::Error::Transport(_)) => break,
                        }
                    }
                })
            })
            .collect();
        Writers {
            stop,
            acknowledged,
            unexpected,
            threads,
        }
    }

    fn acknowledged(&self) -> Vec<String> {
        self.acknowledged.lock().unwrap().clone()
    }

    /// Waits until at least `n` metrics are acknowledged.
    fn wait_for(&self, n: usize) {
        wait_until(DEADLINE, &format!("{n} metrics acknowledged"), || {
            self.acknowledged.lock().unwrap().len() >= n
        });
    }

    /// Stops (or, once the server is gone, waits for) every writer and returns what was
    /// acknowledged, checking that every other answer was a 201.
    fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("a writer panicked");
        }
        let unexpected = self.unexpected.lock().unwrap();
        assert!(
            unexpected.is_empty(),
            "answers other than 201: {unexpected:#?}"
        );
        let acknowledged = self.acknowledged.lock().unwrap().clone();
        acknowledged
    }
}

/// Asserts that every item of `expected` is stored in the database at `path`.
fn assert_all_stored(path: &Path, expected: &[String]) {
    let stored: std::collections::HashSet<String> = stored_items(path).into_iter().collect();
    let missing: Vec<_> = expected.iter().filter(|i| !stored.contains(*i)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged metrics are missing, e.g. {:?}",
        missing.len(),
        expected.len(),
        &missing[..missing.len().min(5)]
    );
}

/// Asserts the write-ahead log was folded into the database: no `-wal` file, or an empty one.
fn assert_checkpointed(db: &Path) {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    match std::fs::metadata(&wal) {
        Err(_) => {}
        Ok(meta) => assert_eq!(
            meta.len(),
            0,
            "the WAL holds {} bytes after exit",
            meta.len()
        ),
    }
}

#[test]
fn sigterm_under_write_load_exits_0_promptly_with_every_acknowledged_metric_stored_and_the_wal_checkpointed(
) {
    // Arrange: four writers busy, and another program with the database open (as an analyst's
    // sqlite3 session would be), so that closing the server's connections does not checkpoint.
    let mut served = serve();
    let writers = Writers::start(&served.base, 4, metric);
    writers.wait_for(100);
    let reader = rusqlite::Connection::open(&served.db).unwrap();
    let seen: i64 = reader
        .query_row("SELECT count(*) FROM metrics", [], |row| row.get(0))
        .unwrap();
    assert!(seen > 0);

    // Act
    let signalled = Instant::now();
    served.server.terminate();
    let status = served.server.wait_for_exit(EXIT_WITHIN);
    let took = signalled.elapsed();
    let acknowledged = writers.finish();

    // Assert
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert_checkpointed(&served.db);
    drop(reader);
    assert_all_stored(&served.db, &acknowledged);
    eprintln!(
        "exited {took:?} after SIGTERM; {} metrics acknowledged, all stored",
        acknowledged.len()
    );
}

#[test]
fn a_request_in_flight_when_sigterm_arrives_is_finished_and_stored() {
    // Arrange: a POST whose headers and half its body are sent.
    let mut served = serve();
    let body = metric("in_flight").to_string();
    let (first, second) = body.as_bytes().split_at(body.len() / 2);
    let address = served
        .base
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix("/api/v1"))
        .unwrap()
        .to_owned();
    let mut stream = TcpStream::connect(&address).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let head = format!(
        "POST /api/v1/metrics/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(first).unwrap();
    // The request is in a handler once its worker counts it as an open connection. New
    // connections go to the workers in turn, and each worker takes its connections in the
    // order accepted: once a complete request on each of several later connections has been
    // answered, every worker has taken the connections accepted before them, this one too.
    // (One later request is not enough: it may land on the other worker.)
    for _ in 0..4 {
        let count = crate::common::agent()
            .get(&format!("{}/metrics/count", served.base))
            .call()
            .unwrap();
        assert_eq!(count.status(), 200);
    }

    // Act: SIGTERM; once the server is shutting down and waiting for this connection, the
    // client takes its time (longer than actix's 1 s between checks for finished connections),
    // then sends the rest of the body.
    served.server.terminate();
    served
        .server
        .wait_for_line("graceful worker shutdown; finishing 1 connections");
    std::thread::sleep(Duration::from_secs(2));
    stream.write_all(second).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = served.server.wait_for_exit(EXIT_WITHIN);

    // Assert
    assert_eq!(status_of(&answer), 201, "{answer}");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert_all_stored(&served.db, &["in_flight".to_owned()]);
    assert_checkpointed(&served.db);
}

/// A metric with long (but valid) text fields, about 10 KB, so a few hundred make a database of
/// several megabytes.
fn fat_metric(item: &str) -> Value {
    let mut body = metric(item);
    body["item_path"] = Value::String(format!("tests.{}", "p".repeat(4000)));
    body["item_variant"] = Value::String(format!("{item}[{}]", "v".repeat(2000)));
    body["item_fs_loc"] = Value::String(format!("tests/{}.py", "f".repeat(2000)));
    body
}

/// Runs `monitor-server backup` with these arguments, killing it after `within`.
fn backup(dir: &Path, args: &[&str], within: Duration) -> Output {
    let child = monitor_server()
        .arg("backup")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cannot run monitor-server backup");
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(within) {
        Ok(output) => output.expect("cannot wait for monitor-server backup"),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
            panic!("monitor-server backup did not finish within {within:?}");
        }
    }
}

#[test]
fn a_backup_taken_while_several_writers_are_busy_is_intact_and_holds_everything_acknowledged_before_it(
) {
    // Arrange: a database of several megabytes, and writers that keep adding to it.
    let mut served = serve();
    let writers = Writers::start(&served.base, 4, fat_metric);
    writers.wait_for(600);
    let before = writers.acknowledged();
    let out = served.dir.path().join("copy.db");

    // Act
    let started = Instant::now();
    let output = backup(
        served.dir.path(),
        &["--db", served.db.to_str().unwrap(), out.to_str().unwrap()],
        Duration::from_secs(20),
    );
    let took = started.elapsed();
    let during = writers.acknowledged().len() - before.len();
    writers.wait_for(before.len() + during + 10);
    let acknowledged = writers.finish();
    served.server.terminate();
    let status = served.server.wait_for_exit(EXIT_WITHIN);

    // Assert
    assert!(
        output.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let copy = rusqlite::Connection::open(&out).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(copy);
    assert_all_stored(&out, &before);
    let copied = stored_items(&out).len();
    assert!(copied <= acknowledged.len());
    assert_all_stored(&served.db, &acknowledged);
    let size = std::fs::metadata(&out).unwrap().len();
    eprintln!(
        "backup of {size} bytes took {took:?}; it holds {copied} metrics, {} acknowledged before \
         it started, {during} more during it",
        before.len()
    );
}

#[test]
fn a_backup_refuses_to_overwrite_an_existing_file_and_leaves_it_untouched() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    drop(monitor_server::db::Db::open(&db, 1).unwrap());
    let out = dir.path().join("precious.db");
    std::fs::write(&out, b"not to be overwritten").unwrap();

    // Act
    let output = backup(
        dir.path(),
        &["--db", db.to_str().unwrap(), out.to_str().unwrap()],
        DEADLINE,
    );

    // Assert
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), b"not to be overwritten");
}

#[test]
fn a_backup_of_a_file_that_is_not_sqlite_fails_with_one_line_and_writes_nothing() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "Meeting notes, not a database.\n".repeat(2000)).unwrap();
    let out = dir.path().join("copy.db");

    for source in [notes.clone(), dir.path().join("missing.db")] {
        // Act
        let output = backup(
            dir.path(),
            &["--db", source.to_str().unwrap(), out.to_str().unwrap()],
            DEADLINE,
        );

        // Assert
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            ["notes.txt"],
            "{source:?}: the backup left files behind"
        );
    }
}
