//! What the reliability tests (`reliability_auth`, `reliability_slow_clients`,
//! `reliability_shutdown`) share: an in-process server with chosen tokens on a free port, the real
//! binary with its stderr read line by line, a raw-socket HTTP exchange, and a metric body.
//!
//! Nothing here sleeps to synchronise: waits poll with a deadline.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use monitor_server::db::Db;
use monitor_server::routes::auth::Tokens;
use monitor_server::server::Options;
use monitor_server::state::AppState;
use serde_json::{json, Value};
use tempfile::TempDir;

/// How long anything that should be quick (start-up, an answer, an exit) may take before a test
/// gives up.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A server running in this process on `127.0.0.1:0`, with its own database. Dropping it stops it.
pub struct App {
    /// The bound address.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub address: String,
    /// The SQLite file the server writes.
    pub db_path: PathBuf,
    handle: ServerHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    // Declared last so the directory outlives the server that writes into it.
    _dir: TempDir,
}

/// Starts a server that requires `tokens`, through the library's `run_with`.
pub fn spawn_app(tokens: Tokens) -> App {
    spawn_app_with(Options {
        tokens,
        ..Options::default()
    })
}

/// Starts a server with these options, through the library's `run_with`.
pub fn spawn_app_with(options: Options) -> App {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let db_path = dir.path().join("monitor.db");
    let db = Db::open(&db_path, 8).expect("cannot open the test database");
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind a free port");
    let addr = listener.local_addr().expect("no local address");
    let (handle_tx, handle_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let state = AppState { db, page_size: 500 };
            let server = monitor_server::server::run_with(listener, state, options)?;
            handle_tx
                .send(server.handle())
                .expect("the test stopped waiting for the server");
            server.await
        })
    });
    let handle = match handle_rx.recv() {
        Ok(handle) => handle,
        Err(_) => panic!("the server failed to start: {:?}", thread.join()),
    };
    App {
        addr,
        address: format!("http://{addr}"),
        db_path,
        handle,
        thread: Some(thread),
        _dir: dir,
    }
}

impl App {
    /// `http://127.0.0.1:PORT/api/v1` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.address)
    }

    /// Rows of `metrics`, read straight from the SQLite file.
    pub fn stored_metrics(&self) -> i64 {
        count_metrics(&self.db_path)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Rows of the `metrics` table of the database at `path`.
pub fn count_metrics(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("cannot open the database");
    conn.query_row("SELECT count(*) FROM metrics", [], |row| row.get(0))
        .expect("cannot count metrics")
}

/// The `item` of every stored metric.
pub fn stored_items(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).expect("cannot open the database");
    let mut statement = conn.prepare("SELECT item FROM metrics").unwrap();
    let items = statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    items
}

/// A client that opens a connection per request (as pytest-monitor's `requests.post` does) and
/// gives up after [`DEADLINE`].
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .max_idle_connections(0)
        .timeout(DEADLINE)
        .build()
}

/// Sends `request`, turning every answer (2xx or not) into its status, its headers of interest
/// and its body text; panics when no answer comes.
pub fn exchange(request: ureq::Request, body: Option<&Value>) -> Reply {
    let outcome = match body {
        Some(body) => request
            .set("Content-Type", "application/json")
            .send_string(&body.to_string()),
        None => request.call(),
    };
    match outcome {
        Ok(response) | Err(ureq::Error::Status(_, response)) => Reply::read(response),
        Err(err) => panic!("no answer: {err}"),
    }
}

/// What [`exchange`] keeps of an answer.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// `WWW-Authenticate`, if sent.
    pub www_authenticate: Option<String>,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// The body as text.
    pub body: String,
}

impl Reply {
    fn read(response: ureq::Response) -> Reply {
        Reply {
            status: response.status(),
            www_authenticate: response.header("WWW-Authenticate").map(str::to_owned),
            content_type: response.header("Content-Type").map(str::to_owned),
            body: response.into_string().unwrap_or_default(),
        }
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.body))
    }
}

/// A metric as pytest-monitor sends it; `item` tells them apart.
pub fn metric(item: &str) -> Value {
    json!({
        "session_h": "5e55107b2a4d0c1e9f1a6f0e6d39b3f6f5c8a7b1",
        "context_h": "c7a1e0f2b3d4e5f60718293a4b5c6d7e8f901234",
        "item_start_time": "2021-03-04T10:11:12.131415",
        "item_path": "tests.test_api",
        "item": item,
        "item_variant": format!("{item}[1]"),
        "item_fs_loc": "tests/test_api.py",
        "kind": "function",
        "component": "api",
        "total_time": 1.25,
        "user_time": 0.75,
        "kernel_time": 0.25,
        "cpu_usage": 0.8,
        "mem_usage": 12.5
    })
}

/// Writes `request` on a fresh connection and reads the answer until the server closes it (or
/// [`DEADLINE`] passes); returns the status code and everything read.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("cannot connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(request).expect("cannot send the request");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    (status_of(&text), text)
}

/// [`status_of`] for raw bytes.
pub fn status_of_bytes(answer: &[u8]) -> u16 {
    status_of(&String::from_utf8_lossy(answer))
}

/// The status code of an HTTP/1.1 answer's status line; 0 when there is none.
pub fn status_of(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// The binary with a clean environment: no `MONITOR_SERVER_*` variable of the caller's leaks in,
/// and info logging is on.
pub fn monitor_server() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_monitor-server"));
    for var in [
        "MONITOR_SERVER_DB",
        "MONITOR_SERVER_BIND",
        "MONITOR_SERVER_PAGINATION_COUNT",
        "MONITOR_SERVER_TOKEN",
        "MONITOR_SERVER_READ_TOKEN",
        "MONITOR_SERVER_KEEP_ALIVE",
    ] {
        command.env_remove(var);
    }
    command.env("RUST_LOG", "info");
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
        let mut child = command
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start monitor-server");
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
        let line = self.wait_for_line("listening on http://");
        line.split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned()
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

/// Polls `done` every 10 ms until it holds, failing the test after `within`.
pub fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
