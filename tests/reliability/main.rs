//! What must hold when things go wrong: hostile or slow clients, tokens, kill -9, SIGTERM under
//! load, a full disk, unusable or old database files, many writers at once, and the record parser
//! fed random input.

#[path = "../common/mod.rs"]
mod common;

mod record_rules;

mod auth;
mod crash;
mod disk;
mod files;
mod fuzz_parser;
mod input;
mod load;
mod readiness;
mod shutdown;
mod slow_clients;
