//! The one harness every test binary shares: the server in process (`app`) and as the real
//! executable (`binary`, which `MONITOR_SERVER_BIN` may point at an installed build), a client's
//! view of HTTP (`http`), the records pytest-monitor sends (`records`), the pytest-monitor venv
//! (`venv`), Litestream and an S3 emulator (`replication`), the query data set (`dataset`), the
//! old schemas (`fixtures`) and certificates made for HTTPS (`tls`).
//!
//! A missing prerequisite (python3, chromium, a mount) fails the test under `CI=true` and prints a
//! loud `SKIPPED:` line elsewhere; nothing passes without having run.
// Each of the four binaries includes this module with `#[path]` and uses only its own part of it
// (the API tests never start the executable, the CLI tests never need the venv), so what one
// binary leaves unused, an item or a re-export below, is neither dead code nor a stray import.
#![allow(dead_code, unused_imports)]

pub mod app;
pub mod binary;
pub mod dataset;
pub mod fixtures;
pub mod http;
pub mod records;
pub mod replication;
pub mod tls;
pub mod venv;

pub use app::*;
pub use binary::*;
pub use http::*;
pub use records::*;
pub use replication::*;
pub use tls::*;
pub use venv::*;

/// Whether this run is on CI (`CI=true` or `CI=1`), where a missing prerequisite is a failure.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// `Some` of what a prerequisite gave, or, when it could not be had: a failure of `test` under
/// CI, else `None` after a loud `SKIPPED:` line naming `what` was missing and why.
pub fn prerequisite<T: Clone>(test: &str, what: &str, outcome: &Result<T, String>) -> Option<T> {
    match outcome {
        Ok(value) => Some(value.clone()),
        Err(reason) if on_ci() => {
            panic!("{test}: {what} is a prerequisite on CI and failed: {reason}")
        }
        Err(reason) => {
            // Written to the process's stderr, not through `eprintln!`, which the test harness
            // captures and hides for a test that returns normally: a skip must always show.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!(
                    "\n=======================================================================\n\
                     SKIPPED: {test}: cannot prepare {what}: {reason}\n\
                     (with CI=true this is a failure)\n\
                     =======================================================================\n"
                )
                .as_bytes(),
            );
            None
        }
    }
}
