//! The command line: `monitor-server [serve] [--db PATH] [--bind ADDR:PORT] [--page-size N]
//! [--token T] [--read-token T] [--keep-alive SECONDS] [--synchronous full|normal]` and
//! `monitor-server backup [--db PATH] OUT`, each flag with a `MONITOR_SERVER_*` environment
//! variable behind it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::auth::{Secret, Tokens};
use crate::pagination::MAX_PER_PAGE;
use crate::writer::Synchronous;

/// Stores pytest-monitor's per-test metrics and serves them through a JSON REST API.
#[derive(Debug, Parser)]
#[command(
    name = "monitor-server",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; serving is the default.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options for serving when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (what a bare `monitor-server` does).
    Serve(ServeArgs),
    /// Copy the database consistently, even while a server is writing to it.
    Backup(BackupArgs),
}

/// What to back up, and where to.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// SQLite database file to copy.
    #[arg(
        long,
        env = "MONITOR_SERVER_DB",
        default_value = "./monitor.db",
        value_name = "PATH"
    )]
    pub db: PathBuf,
    /// File to write the copy to; it must not exist yet.
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
}

impl Cli {
    /// The command to carry out, with serving standing in for a missing subcommand.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

/// How to serve.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// SQLite database file; created with its schema if missing.
    #[arg(
        long,
        env = "MONITOR_SERVER_DB",
        default_value = "./monitor.db",
        value_name = "PATH"
    )]
    pub db: PathBuf,
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(
        long,
        env = "MONITOR_SERVER_BIND",
        default_value = "127.0.0.1:8050",
        value_name = "ADDR:PORT"
    )]
    pub bind: String,
    /// Rows per page of every listing when the client does not send `per_page`.
    #[arg(
        long,
        env = "MONITOR_SERVER_PAGINATION_COUNT",
        default_value_t = 500,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=MAX_PER_PAGE)
    )]
    pub page_size: u64,
    /// Token every write must present (Bearer, or as the HTTP Basic password); unset: writes are open.
    #[arg(
        long,
        env = "MONITOR_SERVER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<Secret>,
    /// Token every read must present (the write token is accepted too); unset: reads are open.
    #[arg(
        long,
        env = "MONITOR_SERVER_READ_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub read_token: Option<Secret>,
    /// Seconds an idle connection is kept open for another request; 0 closes each connection
    /// after its answer, which keeps clients that trickle a second request's headers from
    /// holding connections (the header timeout covers a connection's first request only).
    #[arg(
        long,
        env = "MONITOR_SERVER_KEEP_ALIVE",
        default_value_t = 0,
        value_name = "SECONDS"
    )]
    pub keep_alive: u64,
    /// When a write is answered: `full` once its commit is fsynced (it survives a power loss);
    /// `normal` once it is in the WAL, without waiting for the disk (it survives a crash of the
    /// server, not of the machine), for many more writes a second on a slow-flushing disk.
    #[arg(
        long,
        env = "MONITOR_SERVER_SYNCHRONOUS",
        value_enum,
        default_value_t = Synchronous::Full,
        value_name = "MODE"
    )]
    pub synchronous: Synchronous,
}

impl ServeArgs {
    /// How long idle connections are kept open; `None` when they are closed after one request.
    pub fn keep_alive(&self) -> Option<std::time::Duration> {
        (self.keep_alive > 0).then(|| std::time::Duration::from_secs(self.keep_alive))
    }

    /// The tokens the server will require.
    pub fn tokens(&self) -> Tokens {
        Tokens {
            write: self.token.clone(),
            read: self.read_token.clone(),
        }
    }
}
