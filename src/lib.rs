//! monitor-server: stores the per-test resource metrics that pytest-monitor measures and serves
//! them back through a JSON REST API (`docs/api.md`), a dashboard and a CI gate.
//!
//! The layers, each a folder (`docs/architecture.md`): `models` (records and their parsing),
//! `db` (everything that speaks SQLite), `compare` and `dashboard` (what the API computes),
//! `routes` (HTTP only), `commands` (the CLI's other verbs), and `server` which ties them up.
#![forbid(unsafe_code)]

pub mod changes;
pub mod commands;
pub mod compare;
pub mod dashboard;
pub mod db;
pub mod error;
pub mod models;
pub mod routes;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod tls;
