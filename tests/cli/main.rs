//! The `monitor-server` executable's commands as an operator or a CI script meets them: serving
//! (help, version, usage errors, start-up and SIGTERM), `compare`, `import` and `prune`, and
//! HTTPS.

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod compare;
mod docs_commands;
mod import;
mod prune;
mod tls;
mod version;
