//! The real executable under test, started as a process: a clean command line, a running server
//! whose stderr is read line by line (readiness is its `listening on` line, never a sleep), the
//! server on a free port with a checked announcement, and commands run with a deadline.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::http::DEADLINE;

/// The executable under test: the one `MONITOR_SERVER_BIN` names (an installed build, say from
/// pip) or else the one cargo built for this test run.
pub fn server_bin() -> PathBuf {
    match std::env::var_os("MONITOR_SERVER_BIN") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_monitor-server")),
    }
}

/// The binary with a clean environment: none of the caller's `MONITOR_SERVER_*` variables leaks
/// in, stdin is empty, and info logging is on.
pub fn monitor_server() -> Command {
    let mut command = Command::new(server_bin());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MONITOR_SERVER_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", "info").stdin(Stdio::null());
    command
}

/// The binary serving, its stderr read on a thread (so it never blocks on a full pipe) and kept
/// whole for inspection; killed if a test fails before stopping it.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Running {
    /// Starts `command` (the binary with its arguments) in `dir`.
    pub fn start(mut command: Command, dir: &Path) -> Running {
        let program = command.get_program().to_owned();
        let mut child = command
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", program.to_string_lossy()));
        let pipe = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                kept.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Running {
            child,
            lines,
            stderr,
            reader: Some(reader),
        }
    }

    /// The first stderr line containing `needle`, waiting at most [`DEADLINE`].
    pub fn wait_for_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(err) => panic!(
                    "no line with {needle:?} ({err}); stderr so far: {:#?}",
                    self.stderr()
                ),
            }
        }
    }

    /// Waits for the start-up line and returns the base URL it announces,
    /// `http://ADDR:PORT/api/v1`.
    pub fn wait_until_listening(&self) -> String {
        let line = self.wait_for_line("listening on http");
        line.split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned()
    }

    /// The process id (with `process_group(0)` on its command, also its process group's).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Every stderr line read so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM through `kill`, as a service manager would.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill failed: {status}");
    }

    /// The exit status, polling at most `within`; afterwards the whole of stderr is in
    /// [`Running::stderr`].
    pub fn wait_for_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("cannot wait for the child") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "monitor-server did not exit within {within:?}; stderr: {:#?}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // The pipe is closed now, so the reader thread ends after the last line.
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the stderr reader panicked");
        }
        status
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The real `monitor-server` binary on a free port, its address and database checked in the line
/// it announces them with; killed on drop unless stopped first.
pub struct Server {
    running: Running,
    /// `http://127.0.0.1:PORT/api/v1` (https:// when serving TLS), as the server announced it.
    pub base: String,
    db: PathBuf,
    /// Holds the database when the server owns it; removed after the child is killed.
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Serves a fresh database in a new temporary directory.
    pub fn start() -> Server {
        Self::start_in(tempfile::tempdir().expect("temp dir for the database"))
    }

    /// Serves `dir/monitor.db`, which may exist already.
    pub fn start_in(dir: tempfile::TempDir) -> Server {
        let db = dir.path().join("monitor.db");
        let mut server = Server::serve(&db, &[]);
        server._dir = Some(dir);
        server
    }

    /// Serves `db`, a file the test keeps, with `args` added to the command line.
    pub fn serve(db: &Path, args: &[&str]) -> Server {
        let mut command = monitor_server();
        command
            .arg("--db")
            .arg(db)
            .args(["--bind", "127.0.0.1:0"])
            .args(args);
        let cwd = db.parent().unwrap_or(Path::new("."));
        let running = Running::start(command, cwd);
        let line = running.wait_for_line("listening on ");
        let announced = line
            .split_once("listening on ")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        // `http://127.0.0.1:PORT/api/v1 with database /abs/path/monitor.db`
        let (base, announced_db) = announced
            .split_once(" with database ")
            .unwrap_or_else(|| panic!("unexpected announcement: {announced:?}"));
        let port = base
            .strip_prefix("http://127.0.0.1:")
            .or_else(|| base.strip_prefix("https://127.0.0.1:"))
            .and_then(|rest| rest.strip_suffix("/api/v1"))
            .and_then(|port| port.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("unexpected address in the announcement: {announced:?}"));
        assert_ne!(port, 0, "the server must announce the port it got");
        assert_eq!(
            Path::new(announced_db.trim()),
            db.canonicalize()
                .expect("the database exists once listening"),
            "the announced database path"
        );
        Server {
            running,
            base: base.to_owned(),
            db: db.to_path_buf(),
            _dir: None,
        }
    }

    /// The database file the server writes.
    pub fn db_path(&self) -> PathBuf {
        self.db.clone()
    }

    /// `http://127.0.0.1:PORT`: the base without `/api/v1`.
    pub fn address(&self) -> &str {
        self.base.trim_end_matches("/api/v1")
    }

    /// Everything the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.running.stderr().join("\n")
    }

    /// SIGKILL: no handler runs, nothing is flushed or checkpointed.
    pub fn kill_9(&mut self) {
        let child = &mut self.running.child;
        child.kill().expect("cannot kill monitor-server");
        let status = child.wait().expect("cannot reap monitor-server");
        assert!(!status.success(), "killed, yet it exited with {status}");
    }

    /// SIGTERM, as a service manager stops it; the exit status, waiting at most [`DEADLINE`].
    pub fn terminate(mut self) -> ExitStatus {
        self.running.terminate();
        self.running.wait_for_exit(DEADLINE)
    }

    /// `POST path` (under `/api/v1`) with `body` as JSON: the status.
    pub fn post(&self, path: &str, body: &Value) -> u16 {
        let url = format!("{}{path}", self.base);
        match ureq::post(&url)
            .timeout(DEADLINE)
            .set("Content-Type", "application/json")
            .send_string(&body.to_string())
        {
            Ok(response) => response.status(),
            Err(ureq::Error::Status(status, _)) => status,
            Err(err) => panic!("POST {url}: {err}; server stderr:\n{}", self.stderr()),
        }
    }

    /// GET `path` (under `/api/v1`): the status and the body parsed as JSON (`Null` when empty).
    pub fn get(&self, path: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let response = match ureq::get(&url).timeout(DEADLINE).call() {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(err) => panic!("GET {url}: {err}; server stderr:\n{}", self.stderr()),
        };
        let status = response.status();
        let body = response.into_string().expect("a readable body");
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body)
                .unwrap_or_else(|err| panic!("GET {url}: not JSON ({err}): {body}"))
        };
        (status, value)
    }

    /// Every record of a listing, asserting that one page of 10000 holds them all.
    pub fn list(&self, collection: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/{collection}/?per_page=10000"));
        if status == 204 {
            return Vec::new();
        }
        assert_eq!(status, 200, "GET /{collection}/: {body}");
        assert_eq!(body["total_page"], json!(1), "GET /{collection}/: {body}");
        assert!(
            body["next_url"].is_null() && body["prev_url"].is_null(),
            "{body}"
        );
        let records = body[collection]
            .as_array()
            .unwrap_or_else(|| panic!("GET /{collection}/ lists no `{collection}`: {body}"))
            .clone();
        let (status, count) = self.get(&format!("/{collection}/count"));
        assert_eq!(status, 200);
        assert_eq!(
            count,
            json!({ "count": records.len() }),
            "/{collection}/count disagrees with the listing"
        );
        records
    }
}

// ------------------------------------------------------------------------- processes

/// Runs `cmd` with stdout and stderr interleaved into one log, killing it (and its process
/// group) past `limit`. Returns the exit status and the log.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Result<(ExitStatus, String), String> {
    let shown = format!("{cmd:?}");
    let log = tempfile::NamedTempFile::new().map_err(|err| format!("temp file: {err}"))?;
    let out = log
        .as_file()
        .try_clone()
        .map_err(|err| format!("temp file: {err}"))?;
    let err = out.try_clone().map_err(|err| format!("temp file: {err}"))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .spawn()
        .map_err(|err| format!("cannot start {shown}: {err}"))?;
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                kill_group(&mut child);
                let output = read_log(log.path());
                return Err(format!(
                    "{shown} did not finish within {limit:?} and was killed; its output:\n{output}"
                ));
            }
            Err(err) => return Err(format!("cannot wait for {shown}: {err}")),
        }
    };
    Ok((status, read_log(log.path())))
}

/// Kills a child started in its own process group, with whatever it started (xdist workers).
pub fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub fn read_log(path: &Path) -> String {
    String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned()
}
