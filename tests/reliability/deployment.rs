//! The deployment guide's systemd unit, `deploy/monitor-server.service`: `systemd-analyze verify`
//! accepts it without a word (an unknown key or a misspelt value is only a warning there, so its
//! output must be empty), it keeps the hardening the guide promises, and its `ExecStart` command
//! line, pointed at a temporary state directory and a free port, starts the real binary.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::{monitor_server, prerequisite, run_bounded, server_bin, Running, DEADLINE};

/// Where the unit expects the binary and keeps its state, as docs/deployment.md says.
const INSTALLED_BIN: &str = "/usr/local/bin/monitor-server";
const STATE_DIR: &str = "/var/lib/monitor-server";

fn unit() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/monitor-server.service");
    fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The unit's `ExecStart` command line, split on spaces (it quotes nothing).
fn exec_start(unit: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .expect("the unit has an ExecStart");
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify_without_a_warning() {
    let test = "the_systemd_unit_passes_systemd_analyze_verify_without_a_warning";
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .map_err(|err| format!("systemd-analyze (Debian package systemd): {err}"));
    if prerequisite(test, "systemd-analyze", &found.map(|_| ())).is_none() {
        return;
    }
    // Arrange: the unit with the binary under test where it expects the installed one (verify
    // checks that ExecStart's program exists and is executable).
    let dir = tempfile::tempdir().expect("temp dir");
    let unit_path = dir.path().join("monitor-server.service");
    let installed = server_bin().display().to_string();
    fs::write(&unit_path, unit().replace(INSTALLED_BIN, &installed)).expect("write the unit");

    // Act
    let mut cmd = Command::new("systemd-analyze");
    cmd.arg("verify").arg(&unit_path);
    let (status, output) = run_bounded(cmd, DEADLINE).unwrap_or_else(|err| panic!("{err}"));

    // Assert
    assert!(
        status.success(),
        "systemd-analyze verify: {status}\n{output}"
    );
    assert_eq!(
        output.trim(),
        "",
        "systemd-analyze verify had something to say"
    );
}

#[test]
fn the_systemd_unit_runs_unprivileged_in_its_state_directory_on_a_read_only_system() {
    let unit = unit();
    for setting in [
        "DynamicUser=yes",
        "StateDirectory=monitor-server",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
    ] {
        assert!(
            unit.lines().any(|line| line == setting),
            "the unit lacks `{setting}`"
        );
    }
    let exec = exec_start(&unit);
    assert_eq!(exec[0], INSTALLED_BIN);
    assert!(
        exec.iter().any(|arg| arg.starts_with(STATE_DIR)),
        "the database must be in the state directory, the one writable place: {exec:?}"
    );
}

#[test]
fn the_systemd_units_command_line_starts_the_server() {
    // Arrange: ExecStart's arguments, with a temporary state directory and a free port.
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().display().to_string();
    let args: Vec<String> = exec_start(&unit())[1..]
        .iter()
        .map(|arg| arg.replace(STATE_DIR, &state).replace(":8050", ":0"))
        .collect();
    let mut cmd = monitor_server();
    cmd.args(&args);

    // Act
    let mut running = Running::start(cmd, dir.path());
    let api = running.wait_until_listening();
    running.terminate();
    let status = running.wait_for_exit(DEADLINE);

    // Assert
    assert!(api.starts_with("http://127.0.0.1:"), "{api}");
    assert!(status.success(), "{status}: {:#?}", running.stderr());
    assert!(dir.path().join("monitor.db").is_file());
}
