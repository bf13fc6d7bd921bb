//! What must hold when things go wrong: hostile or slow clients, tokens, kill -9, SIGTERM under
//! load, a full disk, unusable or old database files, many writers at once, the record parser
//! fed random input, and a Litestream replica restored after both processes were killed.

#[path = "../common/mod.rs"]
mod common;

mod record_rules;

mod auth;
mod crash;
mod deployment;
mod disk;
mod files;
mod fuzz_parser;
mod input;
mod litestream;
mod load;
mod migration;
mod readiness;
mod shutdown;
mod slow_clients;
mod store_fixture;
