//! Talking to a server from outside, as clients do: a ureq agent that never reuses connections, an
//! exchange that keeps every answer (2xx or not), raw bytes on a socket for what ureq will not
//! send, a look straight into the SQLite file, and polling with a deadline instead of sleeping.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long anything that should be quick (start-up, an answer, an exit) may take before a test
/// gives up.
pub const DEADLINE: Duration = Duration::from_secs(30);

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

/// Polls `done` every 10 ms until it holds, failing the test after `within`.
pub fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
