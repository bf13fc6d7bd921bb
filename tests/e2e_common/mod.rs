//! What an end-to-end test with the real pytest-monitor needs: the plugin's venv (built once
//! under the target directory and shared with `tests/e2e_pytest_monitor.rs`, which checks it the
//! same way), processes run with a deadline, and the real `monitor-server` binary on a free port.
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

/// What the venv gets: pytest-monitor 1.6.6 predates pytest 8, so it runs under pytest 7, with a
/// pytest-xdist release line that supports pytest 7. The same as `e2e_pytest_monitor.rs`, so
/// that the two share one venv.
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

static VENV_PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn on_ci() -> bool {
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
            // Straight to the process's stderr: the harness hides `eprintln!` of a passing test,
            // and a skip must always show.
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
            "`{} -c ...` failed ({status}):\n{output}",
            python.display()
        ))
    }
}

/// Re-uses `<CARGO_TARGET_TMPDIR>/pymonitor-venv` when it works; otherwise builds a new venv in a
/// private `.partial-*` directory and renames it into place, so that concurrent test binaries
/// never see a half-installed venv (the one that loses the rename uses the winner's).
fn prepare_venv() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = root.join(VENV_DIR);
    if check_venv(&venv).is_ok() {
        return Ok(python_in(&venv));
    }
    fs::create_dir_all(root).map_err(|err| format!("cannot create {}: {err}", root.display()))?;
    let partial = root.join(format!("{VENV_DIR}.partial-{}", unique_suffix()));
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
            // Another test binary published a working venv first.
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

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}

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
                return Err(format!(
                    "{shown} did not finish within {limit:?} and was killed; its output:\n{}",
                    read_log(log.path())
                ));
            }
            Err(err) => return Err(format!("cannot wait for {shown}: {err}")),
        }
    };
    Ok((status, read_log(log.path())))
}

/// Kills a child started in its own process group, with whatever it started.
fn kill_group(child: &mut Child) {
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

fn read_log(path: &Path) -> String {
    String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned()
}

/// The real `monitor-server` binary on an ephemeral port with a fresh database; killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, as the server announced it (without `/api/v1`).
    pub address: String,
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
    /// Starts the binary and waits for its "listening on" line.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir for the database");
        let mut child = Command::new(env!("CARGO_BIN_EXE_monitor-server"))
            .arg("--db")
            .arg(dir.path().join("monitor.db"))
            .args(["--bind", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env_remove("MONITOR_SERVER_TOKEN")
            .env_remove("MONITOR_SERVER_READ_TOKEN")
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
            address: String::new(),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + SERVER_START_DEADLINE;
        server.address = loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    // `... listening on http://127.0.0.1:PORT/api/v1 with database ...`
                    if let Some((_, rest)) = line.split_once("listening on ") {
                        let url = rest.split_whitespace().next().unwrap_or_default();
                        break url.trim_end_matches("/api/v1").to_owned();
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "monitor-server did not announce its address within \
                     {SERVER_START_DEADLINE:?}; its stderr:\n{}",
                    server.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "monitor-server exited ({:?}) before listening; its stderr:\n{}",
                    server.child.wait(),
                    server.stderr()
                ),
            }
        };
        server
    }

    /// Everything the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}
