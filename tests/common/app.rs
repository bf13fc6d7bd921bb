//! The server in this process, as the API tests and the reliability tests drive it: the library's
//! `run_with` on `127.0.0.1:0` with its own SQLite file in a temporary directory, a small HTTP
//! client that turns every answer (2xx or not) into a status and a JSON body, a direct look into
//! the SQLite file, and the assertions every error answer must pass.
//!
//! Readiness needs no wait: the listener is bound before the server starts, so the first request
//! queues on it until the server accepts.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use monitor_server::db::Db;
use monitor_server::routes::auth::Tokens;
use monitor_server::server::Options;
use monitor_server::state::AppState;
use serde_json::Value;
use tempfile::TempDir;

/// The page size `monitor-server` uses unless told otherwise.
pub const DEFAULT_PAGE_SIZE: u64 = 500;

/// How a [`TestApp`] is started; `Setup::default()` is what most tests want.
pub struct Setup {
    /// Rows per page of a listing unless the client asks `per_page`.
    pub page_size: u64,
    /// Tokens, limits and timeouts of the HTTP layer.
    pub options: Options,
    /// Connections in the database pool.
    pub pool_size: u32,
    /// Where the database lives: `None` for `monitor.db` in a new temporary directory.
    pub home: Option<Home>,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            page_size: DEFAULT_PAGE_SIZE,
            options: Options::default(),
            pool_size: 4,
            home: None,
        }
    }
}

/// A database other than a fresh temporary one.
pub enum Home {
    /// `monitor.db` in this directory, which may already hold a store; the app keeps it.
    Dir(TempDir),
    /// This file, owned by the test (say, on a small tmpfs).
    File(PathBuf),
}

/// A running server, its database file and a client for it. Dropping it stops the server.
pub struct TestApp {
    /// The bound address.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub address: String,
    /// The SQLite file the server writes.
    pub db_path: PathBuf,
    page_size: u64,
    options: Options,
    pool_size: u32,
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
    TestApp::start(Setup::default())
}

/// A server whose listings hold `page_size` rows per page unless the client asks `per_page`.
pub fn spawn_app_with_page_size(page_size: u64) -> TestApp {
    TestApp::start(Setup {
        page_size,
        ..Setup::default()
    })
}

/// A server with the given HTTP options (tokens, limits, keep-alive).
pub fn spawn_app_with_options(options: Options) -> TestApp {
    TestApp::start(Setup {
        options,
        ..Setup::default()
    })
}

/// A server that requires `tokens`.
pub fn spawn_app_with_tokens(tokens: Tokens) -> TestApp {
    spawn_app_with_options(Options {
        tokens,
        ..Options::default()
    })
}

impl TestApp {
    /// Starts a server as `setup` says.
    pub fn start(setup: Setup) -> TestApp {
        let (dir, db_path) = match setup.home {
            None => {
                let dir = tempfile::tempdir().expect("cannot create a temporary directory");
                let db_path = dir.path().join("monitor.db");
                (Some(dir), db_path)
            }
            Some(Home::Dir(dir)) => {
                let db_path = dir.path().join("monitor.db");
                (Some(dir), db_path)
            }
            Some(Home::File(path)) => (None, path),
        };
        let db = Db::open(&db_path, setup.pool_size).expect("cannot open the test database");
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind a free port");
        let addr = listener.local_addr().expect("no local address");

        let (handle_tx, handle_rx) = mpsc::channel();
        let server_options = setup.options.clone();
        let page_size = setup.page_size;
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
            addr,
            address: format!("http://{addr}"),
            db_path,
            page_size,
            options: setup.options,
            pool_size: setup.pool_size,
            agent,
            server: Some(RunningServer { handle, thread }),
            dir,
        }
    }

    /// Stops this server gracefully and starts a new one on the same database file.
    pub fn restart(mut self) -> TestApp {
        if let Some(server) = self.server.take() {
            server.stop(true);
        }
        let home = match self.dir.take() {
            Some(dir) => Home::Dir(dir),
            None => Home::File(self.db_path.clone()),
        };
        TestApp::start(Setup {
            page_size: self.page_size,
            options: self.options.clone(),
            pool_size: self.pool_size,
            home: Some(home),
        })
    }

    /// Stops the server at once and waits until its database is closed.
    pub fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop(false);
        }
    }

    /// `http://127.0.0.1:PORT/api/v1` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.address)
    }

    /// Rows of `metrics`, read straight from the SQLite file.
    pub fn stored_metrics(&self) -> i64 {
        self.rows_in("metrics")
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

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // Every 201 was committed before it was sent; nothing is lost by not waiting.
            server.stop(false);
        }
    }
}
