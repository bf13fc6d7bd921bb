//! The Python reference started from its anchor script on a fresh database and a free port.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Names the anchor script when `--anchor` is not given.
const ANCHOR_ENV: &str = "MONITOR_SERVER_API_ANCHOR";
/// The page size the reference is started with: ours must be started with the same.
pub(crate) const PAGE_SIZE: u32 = 5;
/// The first start builds the reference's virtualenv, which downloads its packages.
const START_TIMEOUT: Duration = Duration::from_secs(600);

/// The anchor script: `--anchor PATH`, else the environment; neither is an error that says how.
pub(crate) fn anchor_script(flag: Option<PathBuf>) -> Result<PathBuf, String> {
    flag.or_else(|| std::env::var_os(ANCHOR_ENV).map(PathBuf::from))
        .ok_or_else(|| {
            format!(
                "no reference to compare with: give its URL as the second argument, or the \
                 script that starts it (monitor-server-api.sh PORT DB_FILE) with --anchor PATH \
                 or {ANCHOR_ENV}=PATH"
            )
        })
}

/// A running reference; dropping it stops it and deletes its database.
pub(crate) struct Reference {
    child: Child,
    /// `http://127.0.0.1:PORT/api/v1`.
    pub(crate) base: String,
    _dir: tempfile::TempDir,
}

impl Reference {
    /// Runs `bash script PORT DB_FILE` with the page size set, and waits until it listens.
    pub(crate) fn start(script: &Path) -> Result<Reference, String> {
        if !script.is_file() {
            return Err(format!("{}: no such anchor script", script.display()));
        }
        let dir = tempfile::tempdir().map_err(|err| format!("no temporary directory: {err}"))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|err| format!("no free port for the reference: {err}"))?
            .port();
        let child = Command::new("bash")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path().join("reference.db"))
            .env("MONITOR_SERVER_PAGINATION_COUNT", PAGE_SIZE.to_string())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|err| format!("cannot run bash {}: {err}", script.display()))?;
        let mut reference = Reference {
            child,
            base: format!("http://127.0.0.1:{port}/api/v1"),
            _dir: dir,
        };
        reference.wait_until_listening(port)?;
        Ok(reference)
    }

    fn wait_until_listening(&mut self, port: u16) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the anchor script stopped ({status}) before the reference listened"
                ));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "the reference did not listen on port {port} within {} s",
                    START_TIMEOUT.as_secs()
                ));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        // SIGTERM lets gunicorn (which the script execs) stop its workers; Child::kill sends
        // SIGKILL, which would leave them behind.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
