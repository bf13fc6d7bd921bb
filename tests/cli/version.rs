//! `monitor-server --version` as an operator reads it: the package version and the database
//! schema version, and that schema version is the one the binary really writes into a new file.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use monitor_server::db::SCHEMA_VERSION;
use rusqlite::{Connection, OpenFlags};

#[test]
fn version_prints_the_package_version_and_the_database_schema_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_monitor-server"))
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run monitor-server");

    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!(
            "monitor-server {} (database schema {SCHEMA_VERSION})\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn the_schema_version_printed_is_the_one_a_new_database_file_gets() {
    // Arrange: the number as --version prints it.
    let output = Command::new(env!("CARGO_BIN_EXE_monitor-server"))
        .arg("--version")
        .output()
        .expect("cannot run monitor-server");
    let printed: i64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .strip_prefix(&format!(
            "monitor-server {} (database schema ",
            env!("CARGO_PKG_VERSION")
        ))
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no schema version in {output:?}"));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("metrics.db");

    // Act: serve on a new file, and read its schema version once the server has written one.
    let mut server = Command::new(env!("CARGO_BIN_EXE_monitor-server"))
        .args(["--bind", "127.0.0.1:0", "--db"])
        .arg(&db)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start monitor-server");
    let deadline = Instant::now() + Duration::from_secs(30);
    let written = loop {
        // Read-only, so the test never creates the file itself; until the server has committed
        // its schema the file is missing, locked or still at version 0.
        let version = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|conn| conn.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0)))
            .unwrap_or(0);
        if version != 0 || Instant::now() > deadline {
            break version;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    server.kill().unwrap();
    server.wait().unwrap();

    // Assert
    assert_eq!(written, printed);
}
