//! What every API test shares: a real server on port 0 with its own temporary database, a small
//! HTTP client that turns every answer (2xx or not) into a status and a JSON body, a direct look
//! into the SQLite file, and the records pytest-monitor sends.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use monitor_server::db::Db;
use monitor_server::server::Options;
use monitor_server::state::AppState;
use serde_json::{json, Value};
use tempfile::TempDir;

/// The page size `monitor-server` uses unless told otherwise.
const DEFAULT_PAGE_SIZE: u64 = 500;

/// A running server, its database file and a client for it. Dropping it stops the server.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub address: String,
    /// The SQLite file the server writes.
    pub db_path: PathBuf,
    page_size: u64,
    options: Options,
    agent: ureq::Agent,
    server: Option<RunningServer>,
    // Declared last so the directory outlives the server that writes into it.
    dir: Option<TempDir>,
}

/// The thread an actix `System` runs the server on, and the handle that stops it.
struct RunningServer {
    handle: ServerHandle,
    thread: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops the server and waits for its thread, so the database is closed when this returns.
    fn stop(self, graceful: bool) {
        // `stop` sends its command at once; the returned future only waits for the outcome,
        // which joining the thread does too (the thread ends when the server future resolves).
        drop(self.handle.stop(graceful));
        let outcome = self.thread.join().expect("the server thread panicked");
        outcome.expect("the server stopped with an error");
    }
}

/// A server with the default page size (500).
pub fn spawn_app() -> TestApp {
    spawn_app_with_page_size(DEFAULT_PAGE_SIZE)
}

/// A server whose listings hold `page_size` rows per page unless the client asks `per_page`.
pub fn spawn_app_with_page_size(page_size: u64) -> TestApp {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    start(dir, page_size, Options::default())
}

/// A server with the given HTTP options (tokens, batch limit) and the default page size.
pub fn spawn_app_with_options(options: Options) -> TestApp {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    start(dir, DEFAULT_PAGE_SIZE, options)
}

fn start(dir: TempDir, page_size: u64, options: Options) -> TestApp {
    let db_path = dir.path().join("monitor.db");
    let db = Db::open(&db_path, 4).expect("cannot open the test database");
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind a free port");
    let port = listener.local_addr().expect("no local address").port();

    let (handle_tx, handle_rx) = mpsc::channel();
    let server_options = options.clone();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let state = AppState { db, page_size };
            let server = monitor_server::server::run_with(listener, state, server_options)?;
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

    // No idle connections are kept, so a graceful stop never waits for a keep-alive to expire.
    let agent = ureq::AgentBuilder::new()
        .max_idle_connections(0)
        .timeout(Duration::from_secs(30))
        .build();
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        db_path,
        page_size,
        options,
        agent,
        server: Some(RunningServer { handle, thread }),
        dir: Some(dir),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // Every 201 was committed before it was sent; nothing is lost by not waiting.
            server.stop(false);
        }
    }
}

impl TestApp {
    /// Stops this server gracefully and starts a new one on the same database file.
    pub fn restart(mut self) -> TestApp {
        if let Some(server) = self.server.take() {
            server.stop(true);
        }
        let dir = self.dir.take().expect("the temporary directory is gone");
        start(dir, self.page_size, self.options.clone())
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None, b"")
    }

    /// `GET path` for a body that need not be JSON: status, Content-Type and the body as text.
    pub fn get_text(&self, path: &str) -> (u16, String, String) {
        let url = format!("{}{path}", self.address);
        match self.agent.get(&url).call() {
            Ok(response) | Err(ureq::Error::Status(_, response)) => {
                let status = response.status();
                let declared = response.content_type().to_owned();
                let text = response
                    .into_string()
                    .unwrap_or_else(|err| panic!("GET {path}: unreadable body: {err}"));
                (status, declared, text)
            }
            Err(err) => panic!("GET {path} failed without an answer: {err}"),
        }
    }

    /// `POST path` with `body` as `application/json`.
    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, Some("application/json"), body.to_string().as_bytes())
    }

    /// `POST path` with these exact bytes and Content-Type (none at all for `None`).
    pub fn post_raw(&self, path: &str, content_type: Option<&str>, body: &[u8]) -> (u16, Value) {
        self.send("POST", path, content_type, body)
    }

    /// `POST path` as `application/json` with chunked transfer encoding: no Content-Length, so
    /// the server learns the size only by reading.
    pub fn post_chunked(&self, path: &str, body: &[u8]) -> (u16, Value) {
        self.send_chunked(path, "application/json", body)
    }

    /// [`TestApp::post_chunked`] with another Content-Type.
    pub fn send_chunked(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        let request = self
            .agent
            .post(&format!("{}{path}", self.address))
            .set("Content-Type", content_type);
        match request.send(body) {
            Ok(response) | Err(ureq::Error::Status(_, response)) => {
                read_reply("POST", path, response)
            }
            Err(err) => panic!("POST {path} failed without an answer: {err}"),
        }
    }

    /// Any request, answered as [`read_reply`] reads it.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u16, Value) {
        let mut request = self
            .agent
            .request(method, &format!("{}{path}", self.address));
        if let Some(content_type) = content_type {
            request = request.set("Content-Type", content_type);
        }
        match request.send_bytes(body) {
            Ok(response) | Err(ureq::Error::Status(_, response)) => {
                read_reply(method, path, response)
            }
            Err(err) => panic!("{method} {path} failed without an answer: {err}"),
        }
    }

    /// Rows in `table`, read straight from the SQLite file rather than through the API.
    pub fn rows_in(&self, table: &str) -> i64 {
        let conn = rusqlite::Connection::open(&self.db_path).expect("cannot open the database");
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .expect("cannot count rows")
    }

    /// Asserts that no table holds a row: a rejected request must leave the file as it was.
    pub fn assert_nothing_stored(&self) {
        for table in ["metrics", "contexts", "sessions", "session_tags"] {
            assert_eq!(self.rows_in(table), 0, "table {table} is not empty");
        }
    }

    /// Posts a record that must be accepted, returning the stored record.
    pub fn create(&self, path: &str, body: &Value) -> Value {
        let (status, stored) = self.post_json(path, body);
        assert_eq!(status, 201, "POST {path} was refused: {stored}");
        stored
    }
}

/// The status of an answer and its body as JSON (`Value::Null` when empty); panics on a body that
/// is not declared and written as JSON, so every test checks that.
fn read_reply(method: &str, path: &str, response: ureq::Response) -> (u16, Value) {
    let status = response.status();
    let declared = response.content_type().to_owned();
    let text = response
        .into_string()
        .unwrap_or_else(|err| panic!("{method} {path}: unreadable body: {err}"));
    if text.is_empty() {
        return (status, Value::Null);
    }
    assert_eq!(
        declared, "application/json",
        "{method} {path} answered {status} with a body that is not declared JSON: {text}"
    );
    let body = serde_json::from_str(&text).unwrap_or_else(|err| {
        panic!("{method} {path} answered {status} with invalid JSON ({err}): {text}")
    });
    (status, body)
}

/// Asserts a 400 whose JSON body has a message and blames `field`; returns the reason given.
pub fn assert_bad_field(reply: &(u16, Value), field: &str) -> String {
    let (status, body) = reply;
    assert_eq!(*status, 400, "expected a 400, got {status}: {body}");
    assert_has_message(body);
    body["errors"][field]
        .as_str()
        .unwrap_or_else(|| panic!("errors.{field} is missing: {body}"))
        .to_owned()
}

/// Asserts an error body carries a non-empty one-sentence `message`.
pub fn assert_has_message(body: &Value) {
    let message = body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {body}"));
    assert!(!message.is_empty(), "empty message in {body}");
}

/// The seed documentation's example metric, in the seed's spelling (`ctx_h`, `wall_time`,
/// `krnl_time`).
pub fn seed_metric() -> Value {
    json!({
        "session_h": "0041724ff4e0adac62b70b4f810c79fc5ad8ba5b",
        "ctx_h": "e9188c68dd9ddeccd0a2f59422d16a2bf7337683",
        "item_start_time": "2020-12-04T23:18:15.661016",
        "item_path": "tests.test_file",
        "item": "test_that",
        "item_variant": "test_that[]",
        "item_fs_loc": "tests/test_file.py",
        "kind": "function",
        "component": "test_component",
        "wall_time": 0,
        "user_time": 0,
        "krnl_time": 0,
        "cpu_usage": 0,
        "mem_usage": 0
    })
}

/// A metric as pytest-monitor sends it (`context_h`, `total_time`, `kernel_time`); `item` names it.
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

/// `metric("test_one")` with `field` replaced by `value`.
pub fn metric_with(field: &str, value: Value) -> Value {
    let mut body = metric("test_one");
    body[field] = value;
    body
}

/// An execution context as pytest-monitor sends it.
pub fn context(h: &str) -> Value {
    json!({
        "h": h,
        "cpu_count": 8,
        "cpu_frequency": 2800.5,
        "cpu_type": "x86_64",
        "cpu_vendor": "GenuineIntel",
        "ram_total": 16384,
        "machine_node": "ci-runner-3",
        "machine_type": "x86_64",
        "machine_arch": "64bit",
        "system_info": "Linux - 5.15.0",
        "python_info": "3.11.4 (main, Jun  7 2023, 00:00:00) [GCC 12.2.0]"
    })
}

/// A session as pytest-monitor sends it, with a description, a tag and CI facts.
pub fn session(session_h: &str) -> Value {
    json!({
        "session_h": session_h,
        "run_date": "2021-03-04T10:11:00.000001",
        "scm_ref": "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
        "description": {
            "description": "nightly run",
            "pipeline_branch": "main",
            "pipeline_build_no": "1234",
            "__ci__": "gitlab"
        }
    })
}
