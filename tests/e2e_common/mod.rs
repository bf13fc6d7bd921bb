//! What an end-to-end test with the real pytest-monitor needs: the plugin's venv (built once
//! under the target directory and shared by every e2e test binary), processes run with a
//! deadline, and the real `monitor-server` binary on a free port.
//!
//! Prerequisites (python3 with `venv`, and PyPI for the first run): when they are missing the
//! tests fail on CI (`CI=true`) and print a loud `SKIPPED:` line elsewhere; they never pass
//! silently without having run.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// What the venv gets: pytest-monitor 1.6.6 predates pytest 8, so it runs under pytest 7, with a
/// pytest-xdist release line that supports pytest 7.
pub const PYTHON_PACKAGES: [&str; 3] =
    ["pytest<8", "pytest-monitor==1.6.6", "pytest-xdist>=3.5,<4"];

/// Run in the venv to decide whether it can be re-used as it is.
const VENV_CHECK: &str = "import importlib.metadata as m, pytest, pytest_monitor, xdist; \
    assert m.version('pytest-monitor') == '1.6.6', m.version('pytest-monitor'); \
    assert int(pytest.__version__.split('.')[0]) < 8, pytest.__version__";

const VENV_DIR: &str = "pymonitor-venv";
const PIP_DEADLINE: Duration = Duration::from_secs(600);
const PYTHON_CHECK_DEADLINE: Duration = Duration::from_secs(60);
const SERVER_START_DEADLINE: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------------ venv

static VENV_PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();

pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The venv's python, creating the venv on first use; `None` after printing `SKIPPED:` when
/// the prerequisites are missing outside CI. On CI, missing prerequisites fail the test.
pub fn venv_python(test: &str) -> Option<PathBuf> {
    match VENV_PYTHON.get_or_init(prepare_venv) {
        Ok(python) => Some(python.clone()),
        Err(reason) if on_ci() => {
            panic!("{test}: the pytest-monitor venv is a prerequisite on CI and failed: {reason}")
        }
        Err(reason) => {
            // Written to the process's stderr, not through `eprintln!`, which the test harness
            // captures and hides for a test that returns normally: a skip must always show.
            let _ = writeln!(
                std::io::stderr(),
                "\n=======================================================================\n\
                 SKIPPED: {test}: cannot prepare the pytest-monitor venv: {reason}\n\
                 (with CI=true this is a failure)\n\
                 ======================================================================="
            );
            None
        }
    }
}

fn python_in(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// `Ok` when the venv imports the plugin and xdist at the pinned versions.
fn check_venv(venv: &Path) -> Result<(), String> {
    let python = python_in(venv);
    if !python.exists() {
        return Err(format!("{} does not exist", python.display()));
    }
    let mut cmd = Command::new(&python);
    cmd.args(["-c", VENV_CHECK]);
    let (status, output) = run_bounded(cmd, PYTHON_CHECK_DEADLINE)?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{} -c {VENV_CHECK:?}` failed ({status}):\n{output}",
            python.display()
        ))
    }
}

/// Re-uses `<CARGO_TARGET_TMPDIR>/pymonitor-venv` when it works; otherwise builds a new venv in a
/// private `.partial-*` directory and renames it into place, so that concurrent `cargo test`
/// invocations never see a half-installed venv (the one that loses the rename uses the winner's).
/// Inside this test binary, the `OnceLock` makes the two tests share one attempt.
fn prepare_venv() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = root.join(VENV_DIR);
    if check_venv(&venv).is_ok() {
        return Ok(python_in(&venv));
    }
    fs::create_dir_all(root).map_err(|err| format!("cannot create {}: {err}", root.display()))?;
    remove_abandoned(root);
    let partial = root.join(format!("{VENV_DIR}.partial-{}", unique_suffix()));
    let started = Instant::now();
    eprintln!(
        "e2e: creating the pytest-monitor venv at {} ({})",
        venv.display(),
        PYTHON_PACKAGES.join(" ")
    );
    if let Err(err) = build_venv(&partial) {
        let _ = fs::remove_dir_all(&partial);
        return Err(err);
    }
    if fs::rename(&partial, &venv).is_err() {
        if check_venv(&venv).is_ok() {
            // Another `cargo test` published a working venv first.
            let _ = fs::remove_dir_all(&partial);
        } else {
            // A broken venv is in the way (say, its base python was removed): set it aside.
            let stale = root.join(format!("{VENV_DIR}.stale-{}", unique_suffix()));
            let _ = fs::rename(&venv, &stale);
            if let Err(err) = fs::rename(&partial, &venv) {
                let _ = fs::remove_dir_all(&partial);
                if check_venv(&venv).is_err() {
                    return Err(format!(
                        "cannot move the new venv to {}: {err}",
                        venv.display()
                    ));
                }
            }
            let _ = fs::remove_dir_all(&stale);
        }
    }
    check_venv(&venv)
        .map_err(|err| format!("the venv at {} does not work: {err}", venv.display()))?;
    eprintln!(
        "e2e: venv ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(python_in(&venv))
}

fn build_venv(dir: &Path) -> Result<(), String> {
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "venv"]).arg(dir);
    let (status, output) = run_bounded(cmd, PYTHON_CHECK_DEADLINE)
        .map_err(|err| format!("cannot run python3 (is it installed?): {err}"))?;
    if !status.success() {
        return Err(format!("`python3 -m venv` failed ({status}):\n{output}"));
    }
    let mut cmd = Command::new(python_in(dir));
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
    ])
    .args(PYTHON_PACKAGES);
    let (status, output) = run_bounded(cmd, PIP_DEADLINE)?;
    if !status.success() {
        return Err(format!(
            "`pip install {}` failed ({status}):\n{output}",
            PYTHON_PACKAGES.join(" ")
        ));
    }
    check_venv(dir)
}

/// Removes `.partial-*` / `.stale-*` venvs left over by interrupted runs, once they are older
/// than any install can take.
fn remove_abandoned(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let leftover = name.starts_with(&format!("{VENV_DIR}.partial-"))
            || name.starts_with(&format!("{VENV_DIR}.stale-"));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > 2 * PIP_DEADLINE);
        if leftover && old {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

pub fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
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

/// The real `monitor-server` binary on an ephemeral port with a fresh database; killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT/api/v1`, as the server announced it.
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
    /// Holds the database; removed after the child is killed (fields drop after `drop`).
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn start() -> Server {
        Self::start_in(tempfile::tempdir().expect("temp dir for the database"))
    }

    /// Serves `dir/monitor.db`, which may exist already.
    pub fn start_in(dir: tempfile::TempDir) -> Server {
        let db = dir.path().join("monitor.db");
        let mut child = Command::new(env!("CARGO_BIN_EXE_monitor-server"))
            .arg("--db")
            .arg(&db)
            .args(["--bind", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env_remove("MONITOR_SERVER_PAGINATION_COUNT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start monitor-server");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = Arc::clone(&log);
            // Drains stderr for the server's whole life so that its pipe never fills up.
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let mut server = Server {
            child,
            base: String::new(),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + SERVER_START_DEADLINE;
        let announced = loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some((_, rest)) = line.split_once("listening on ") {
                        break rest.to_owned();
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "monitor-server did not announce its address within {SERVER_START_DEADLINE:?}; \
                     its stderr:\n{}",
                    server.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "monitor-server exited ({:?}) before listening; its stderr:\n{}",
                    server.child.wait(),
                    server.stderr()
                ),
            }
        };
        // `http://127.0.0.1:PORT/api/v1 with database /abs/path/monitor.db`
        let (base, announced_db) = announced
            .split_once(" with database ")
            .unwrap_or_else(|| panic!("unexpected announcement: {announced:?}"));
        let port = base
            .strip_prefix("http://127.0.0.1:")
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
        server.base = base.to_owned();
        server
    }

    /// The database file the server writes.
    pub fn db_path(&self) -> PathBuf {
        self._dir.path().join("monitor.db")
    }

    /// `http://127.0.0.1:PORT`: the base without `/api/v1`.
    pub fn address(&self) -> &str {
        self.base.trim_end_matches("/api/v1")
    }

    /// Everything the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// GET `path` (under `/api/v1`): the status and the body parsed as JSON (`Null` when empty).
    pub fn get(&self, path: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let response = match ureq::get(&url).timeout(Duration::from_secs(30)).call() {
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
        assert!(body.get("next_url").is_none() && body.get("prev_url").is_none());
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

// ------------------------------------------------------------------------------- pytest

/// Variables that would change what the plugin sends or how pytest runs: the ones that load
/// other plugins or route `requests` through a proxy, and those by which the plugin recognises a
/// CI system and tags the session with its pipeline and build.
const FOREIGN_ENV: [&str; 15] = [
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTHONPATH",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "CI_JOB_NAME",
    "CI_PIPELINE_ID",
    "BUILD_NUMBER",
    "BRANCH_NAME",
    "JOB_NAME",
    "CIRCLE_JOB",
    "TRAVIS_BUILD_NUMBER",
    "DRONE_BUILD_NUMBER",
];

/// `python -m pytest --no-db --remote-server <remote>` in `suite`, with an environment that
/// neither loads other plugins nor reaches loopback through a proxy nor tags the run as a CI
/// build; callers add their own arguments and variables.
pub fn pytest_command(python: &Path, suite: &Path, remote: &str) -> Command {
    let mut cmd = Command::new(python);
    cmd.current_dir(suite)
        .args([
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--color=no",
            "--no-db",
        ])
        .args(["--remote-server", remote])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // `requests` honours proxy variables: loopback must be reached directly.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    for var in FOREIGN_ENV {
        cmd.env_remove(var);
    }
    cmd
}
