//! End to end, with the real things around the server: the pytest-monitor plugin in a venv
//! uploading to the real binary (over HTTP and HTTPS), monitor-server-api's official client
//! reading it back, the CI gate on a regression it measured, and the dashboard in a headless
//! Chromium driven through WebDriver.
//!
//! `MONITOR_SERVER_BIN` may name an installed `monitor-server` to test instead of the one cargo
//! built (see `tests/common/binary.rs`).

#[path = "../common/mod.rs"]
mod common;

mod browser;
mod changes_history;
#[allow(dead_code)] // the loader of the benchmarks; only `load` is needed here
#[path = "../../bench/src/store.rs"]
mod store;

mod dashboard_browser;
mod official_client;
mod pytest_monitor;
mod regression;
mod tls;
