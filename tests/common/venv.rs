//! What a test with the real pytest-monitor needs: the plugin's venv (built once under the target
//! directory and shared by every test and binary that runs the plugin) and a pytest command line
//! that only the plugin under test can influence.
//!
//! Prerequisites (python3 with `venv`, and PyPI for the first run): when they are missing the
//! tests fail on CI (`CI=true`) and print a loud `SKIPPED:` line elsewhere; they never pass
//! silently without having run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::binary::run_bounded;

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

// ------------------------------------------------------------------------------------ venv

static VENV_PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The venv's python, creating the venv on first use; `None` after printing `SKIPPED:` when
/// the prerequisites are missing outside CI. On CI, missing prerequisites fail the test.
pub fn venv_python(test: &str) -> Option<PathBuf> {
    super::prerequisite(
        test,
        "the pytest-monitor venv",
        VENV_PYTHON.get_or_init(prepare_venv),
    )
}

/// What the official client of monitor-server-api adds to the plugin's venv: the package without
/// its dependencies (its server half pins Flask 1, SQLAlchemy and uwsgi, which the client never
/// imports; `requests` came with the plugin), then the two its client imports.
pub const CLIENT_PACKAGES: [&[&str]; 2] = [
    &["--no-deps", "monitor-server-api==1.1.0"],
    &["pandas", "pyyaml"],
];

const CLIENT_CHECK: &str = "import importlib.metadata as m, monitor_api.monitor; \
    assert m.version('monitor-server-api') == '1.1.0', m.version('monitor-server-api')";

static CLIENT_PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The plugin's venv with monitor-server-api's client (`monitor_api`) installed too; `None` after
/// printing `SKIPPED:` when the prerequisites are missing outside CI.
pub fn client_python(test: &str) -> Option<PathBuf> {
    let python = venv_python(test)?;
    super::prerequisite(
        test,
        "monitor-server-api's client in the venv",
        CLIENT_PYTHON.get_or_init(|| add_client(&python)),
    )
}

fn add_client(python: &Path) -> Result<PathBuf, String> {
    let imports = || -> Result<(), String> {
        let mut cmd = Command::new(python);
        cmd.args(["-c", CLIENT_CHECK]);
        let (status, output) = run_bounded(cmd, PYTHON_CHECK_DEADLINE)?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`{CLIENT_CHECK}` failed ({status}):\n{output}"))
        }
    };
    if imports().is_ok() {
        return Ok(python.to_path_buf());
    }
    for packages in CLIENT_PACKAGES {
        pip_install(python, packages)?;
    }
    imports()?;
    Ok(python.to_path_buf())
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
    install_venv(dir, &PYTHON_PACKAGES)?;
    check_venv(dir)
}

/// Creates a venv at `dir` and pip-installs `packages` into it.
pub fn install_venv(dir: &Path, packages: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "venv"]).arg(dir);
    let (status, output) = run_bounded(cmd, PYTHON_CHECK_DEADLINE)
        .map_err(|err| format!("cannot run python3 (is it installed?): {err}"))?;
    if !status.success() {
        return Err(format!("`python3 -m venv` failed ({status}):\n{output}"));
    }
    pip_install(&python_in(dir), packages)
}

fn pip_install(python: &Path, packages: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
    ])
    .args(packages);
    let (status, output) = run_bounded(cmd, PIP_DEADLINE)?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`pip install {}` failed ({status}):\n{output}",
            packages.join(" ")
        ))
    }
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
