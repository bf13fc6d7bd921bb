//! Crash safety: what a 201 promises survives `kill -9`. The real binary is started, sixteen
//! clients post metrics as fast as they are answered, the process is killed with SIGKILL in the
//! middle of that, and a new process on the same file must list every metric that was answered
//! 201, from a database that passes SQLite's integrity check. Both with the default
//! `--synchronous full` and with `--synchronous normal`, which answers once a commit is in the WAL
//! without waiting for the disk: the process's death alone must not lose it either.

use std::collections::HashSet;
use std::sync::mpsc;

use serde_json::Value;

use crate::common::{metric, Server, DEADLINE};

/// Concurrent clients posting while the server is killed.
const WRITERS: usize = 16;

/// Acknowledged writes to wait for before the kill, so that it lands in the middle of the load.
const ACKNOWLEDGED_BEFORE_KILL: usize = 1000;

/// The largest page the API serves.
const PER_PAGE: u64 = 10_000;

/// Posts metrics named `w{writer}_n{n}` until the server stops answering, sending the name of
/// each one answered 201 on `acknowledged`. Returns the answers that were neither 201 nor a
/// dropped connection.
fn post_until_gone(api: &str, writer: usize, acknowledged: mpsc::Sender<String>) -> Vec<String> {
    let agent = ureq::AgentBuilder::new().timeout(DEADLINE).build();
    let mut unexpected = Vec::new();
    for n in 0.. {
        let item = format!("w{writer}_n{n}");
        let answer = agent
            .post(&format!("{api}/metrics/"))
            .set("Content-Type", "application/json")
            .send_string(&metric(&item).to_string());
        match answer {
            Ok(response) if response.status() == 201 => {
                if acknowledged.send(item).is_err() {
                    break;
                }
            }
            Ok(response) => unexpected.push(format!("{item}: {}", response.status())),
            Err(ureq::Error::Status(status, response)) => {
                let body = response.into_string().unwrap_or_default();
                unexpected.push(format!("{item}: {status} {body}"));
            }
            // The server is gone: the kill happened.
            Err(ureq::Error::Transport(_)) => break,
        }
    }
    unexpected
}

/// `GET url`, which must answer 200 with JSON.
fn get_json(url: &str) -> Value {
    let text = ureq::get(url)
        .call()
        .unwrap_or_else(|err| panic!("GET {url} failed: {err}"))
        .into_string()
        .unwrap_or_else(|err| panic!("GET {url}: unreadable body: {err}"));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("GET {url}: not JSON ({err}): {text}"))
}

/// Every metric's `item` listed by the API, page by page.
fn listed_items(api: &str) -> Vec<String> {
    let total = get_json(&format!("{api}/metrics/count"))["count"]
        .as_u64()
        .expect("no count");
    let mut items = Vec::new();
    for page in 1..=total.div_ceil(PER_PAGE) {
        let listing = get_json(&format!("{api}/metrics/?per_page={PER_PAGE}&page={page}"));
        let metrics = listing["metrics"].as_array().expect("no metrics array");
        items.extend(
            metrics
                .iter()
                .map(|m| m["item"].as_str().expect("no item").to_owned()),
        );
    }
    assert_eq!(
        items.len() as u64,
        total,
        "the listing and the count disagree"
    );
    items
}

#[test]
fn every_metric_answered_201_survives_a_kill_9_under_load_and_the_file_passes_integrity_check() {
    kill_9_under_load_loses_nothing_acknowledged(&[]);
}

#[test]
fn with_synchronous_normal_every_metric_answered_201_survives_a_kill_9_under_load_too() {
    kill_9_under_load_loses_nothing_acknowledged(&["--synchronous", "normal"]);
}

/// The crash test, with the server started with `extra` arguments.
fn kill_9_under_load_loses_nothing_acknowledged(extra: &[&str]) {
    // Arrange: the real binary, and sixteen clients posting as fast as they are answered.
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let db = dir.path().join("crash.db");
    let mut server = Server::serve(&db, extra);
    let (ack_tx, acks) = mpsc::channel();
    let clients: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (api, ack_tx) = (server.base.clone(), ack_tx.clone());
            std::thread::spawn(move || post_until_gone(&api, writer, ack_tx))
        })
        .collect();
    drop(ack_tx);

    // Act: SIGKILL once enough writes were acknowledged, while every client is still posting.
    let mut acknowledged = Vec::new();
    while acknowledged.len() < ACKNOWLEDGED_BEFORE_KILL {
        match acks.recv_timeout(DEADLINE) {
            Ok(item) => acknowledged.push(item),
            Err(err) => panic!(
                "only {} writes were acknowledged ({err})",
                acknowledged.len()
            ),
        }
    }
    server.kill_9();
    let unexpected: Vec<String> = clients
        .into_iter()
        .flat_map(|client| client.join().expect("a client thread panicked"))
        .collect();
    // A 201 that was on its way when the kill landed is still a promise.
    acknowledged.extend(acks.iter());

    // Restart on the same file.
    let server = Server::serve(&db, &[]);
    let stored: HashSet<String> = listed_items(&server.base).into_iter().collect();

    // Assert: every acknowledged metric is there.
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|item| !stored.contains(*item))
        .collect();
    eprintln!(
        "crash {extra:?}: {} writes acknowledged before and during the kill -9, {} stored after the \
         restart ({} committed but unanswered), {} lost",
        acknowledged.len(),
        stored.len(),
        stored.len().saturating_sub(acknowledged.len()),
        lost.len()
    );
    assert!(
        unexpected.is_empty(),
        "answers other than 201: {unexpected:#?}"
    );
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged metrics are missing after the restart: {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(20)]
    );

    // ... and the file is sound.
    let conn = rusqlite::Connection::open(&db).expect("cannot open the database");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("cannot run the integrity check");
    assert_eq!(check, "ok");
    drop(conn);
    let status = server.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
