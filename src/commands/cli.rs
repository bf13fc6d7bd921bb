//! The command line: `monitor-server [serve] [--db PATH] [--bind ADDR:PORT] [--page-size N]
//! [--token T] [--read-token T] [--metrics-token T] [--keep-alive SECONDS]
//! [--synchronous full|normal] [--wal-autocheckpoint PAGES] [--tls-cert PATH --tls-key PATH]`,
//! `monitor-server backup [--db PATH] OUT`,
//! `monitor-server import FILE... [--db PATH | --server URL [--token T] [--ca-cert PATH]]` and
//! `monitor-server compare --server URL --baseline SPEC --candidate SPEC [...]` and
//! `monitor-server prune [--db PATH] --older-than AGE [--dry-run]`, each flag with a
//! `MONITOR_SERVER_*` environment variable behind it.

use std::path::PathBuf;
use std::sync::LazyLock;

use clap::{Args, Parser, Subcommand};

use crate::commands::http::ServerUrl;
use crate::db::writer::{Durability, Synchronous, DEFAULT_WAL_AUTOCHECKPOINT};
use crate::routes::auth::{Secret, Tokens};
use crate::routes::pagination::MAX_PER_PAGE;
use crate::tls::CaCert;

/// What `--version` prints after the name: the package version and the database schema version
/// this binary writes, because the schema decides which files it can open and which older
/// binaries can still open its files.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} (database schema {})",
        env!("CARGO_PKG_VERSION"),
        crate::db::SCHEMA_VERSION
    )
});

/// Stores pytest-monitor's per-test metrics and serves them through a JSON REST API.
#[derive(Debug, Parser)]
#[command(
    name = "monitor-server",
    version = VERSION.as_str(),
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
    /// Store the sessions, contexts and metrics of pytest-monitor's local database files.
    Import(ImportArgs),
    /// Compare a candidate's test runs with a baseline's on a running server; exit 1 when a
    /// test regressed, 0 when none did, 2 when the comparison could not be made.
    Compare(CompareArgs),
    /// Delete the sessions older than an age, with their metrics, and older metrics of no
    /// stored session; safe while a server uses the same file.
    Prune(PruneArgs),
}

/// What to prune, and from where.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// SQLite database to prune; it must exist.
    #[arg(
        long,
        env = "MONITOR_SERVER_DB",
        default_value = "./monitor.db",
        value_name = "PATH"
    )]
    pub db: PathBuf,
    /// Delete the sessions whose run_date is older than this, with all their metrics, and the
    /// metrics whose item_start_time is older than this and whose session is not stored: a
    /// whole number followed by h (hours), d (days) or w (weeks), such as 90d.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub older_than: Age,
    /// Print what would be deleted, and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// An age as `prune --older-than` takes it: `90d`, `12h`, `2w`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Age {
    /// As the operator wrote it, for the summary line.
    text: String,
    /// The age in seconds.
    pub seconds: u64,
}

impl std::fmt::Display for Age {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses `<N>h`, `<N>d` or `<N>w`, N a whole number of 1 or more.
fn parse_age(text: &str) -> Result<Age, String> {
    let refuse = || {
        format!(
            "`{text}` is not an age: write a whole number of 1 or more followed by \
             h (hours), d (days) or w (weeks), such as 90d"
        )
    };
    let unit = text.chars().last().ok_or_else(refuse)?;
    let per_unit: u64 = match unit {
        'h' => 3_600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return Err(refuse()),
    };
    let count: u64 = text[..text.len() - 1].parse().map_err(|_| refuse())?;
    if count == 0 {
        return Err(refuse());
    }
    let seconds = count
        .checked_mul(per_unit)
        .filter(|s| *s <= i64::MAX as u64 / 1_000_000)
        .ok_or_else(|| format!("`{text}` is too long an age"))?;
    Ok(Age {
        text: text.to_owned(),
        seconds,
    })
}

/// What `monitor-server compare` compares, on which server, and how it reports it.
#[derive(Clone, Args)]
pub struct CompareArgs {
    /// The server, such as http://127.0.0.1:8050 (a trailing /api/v1 is accepted too).
    #[arg(long, env = "MONITOR_SERVER_URL", value_name = "URL", value_parser = ServerUrl::parse)]
    pub server: ServerUrl,
    /// The runs compared against: session:<hash or prefix> (or the bare hash), scm:<ref prefix>,
    /// build:<pipeline>/<build>, builds:<pipeline>/<from>..<to>, last:<pipeline>/<n>, or auto:
    /// the builds since the last change detected before a candidate build:<pipeline>/<build>.
    #[arg(long, value_name = "SPEC")]
    pub baseline: String,
    /// The runs judged, written the same way.
    #[arg(long, value_name = "SPEC")]
    pub candidate: String,
    /// Wall-time growth beyond which a test regressed, such as 20% (the server's default: 20%).
    #[arg(long, value_name = "PERCENT", value_parser = parse_amount)]
    pub max_slowdown: Option<f64>,
    /// Memory growth beyond which a test regressed, such as 10% (the server's default: 10%).
    #[arg(long, value_name = "PERCENT", value_parser = parse_amount)]
    pub max_memory_growth: Option<f64>,
    /// CPU-time growth beyond which a test regressed (by default CPU time is only reported).
    #[arg(long, value_name = "PERCENT", value_parser = parse_amount)]
    pub max_cpu_slowdown: Option<f64>,
    /// Time changes smaller than this many seconds are ignored (the server's default: 0.1).
    #[arg(long, value_name = "SECONDS", value_parser = parse_amount)]
    pub min_time: Option<f64>,
    /// Memory changes smaller than this many MB are ignored (the server's default: 1).
    #[arg(long, value_name = "MB", value_parser = parse_amount)]
    pub min_memory: Option<f64>,
    /// With 2 or more baseline runs, a change must also exceed K standard deviations of the
    /// baseline (the server's default: 3).
    #[arg(long, value_name = "K", value_parser = parse_amount)]
    pub sigma: Option<f64>,
    /// Compare each test across machines (execution contexts) instead of within each.
    #[arg(long)]
    pub ignore_context: bool,
    /// How to print the verdicts: an aligned table, Markdown for a pull-request comment, or the
    /// server's JSON.
    #[arg(long, value_enum, default_value_t = CompareFormat::Table)]
    pub format: CompareFormat,
    /// Token the server requires for reads, sent as `Authorization: Bearer`.
    #[arg(
        long,
        env = "MONITOR_SERVER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// PEM file of the certificate authorities an https:// server's certificate must be signed
    /// by, instead of the system's (SSL_CERT_FILE also replaces them).
    #[arg(
        long,
        env = "MONITOR_SERVER_CA_CERT",
        value_name = "PATH",
        value_parser = CaCert::parse
    )]
    pub ca_cert: Option<CaCert>,
}

impl std::fmt::Debug for CompareArgs {
    /// Written by hand so that the token never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompareArgs")
            .field("server", &self.server)
            .field("baseline", &self.baseline)
            .field("candidate", &self.candidate)
            .field("format", &self.format)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("ca_cert", &self.ca_cert)
            .finish_non_exhaustive()
    }
}

/// How `monitor-server compare` prints its verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    /// Aligned columns, every test.
    Table,
    /// A pull-request comment: the tests that changed, regressions first.
    Markdown,
    /// The server's answer as it is.
    Json,
}

/// A number of 0 or more, optionally followed by `%`: `20%`, `20`, `0.05`.
fn parse_amount(text: &str) -> Result<f64, String> {
    crate::compare::parse_number(text)
        .ok_or_else(|| format!("`{text}` is not a number of 0 or more (such as 20% or 0.5)"))
}

/// What to import, and where to.
#[derive(Clone, Args)]
pub struct ImportArgs {
    /// pytest-monitor's local databases (`.pymon`, written by the plugin unless run with `--no-db`).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// SQLite database to store into (the default); created with its schema if missing
    /// [env: MONITOR_SERVER_DB] [default: ./monitor.db]
    // The environment variable and the default are applied by `db_path`, not by clap, for which
    // a value from the environment would conflict with `--server` as much as the flag does.
    #[arg(long, value_name = "PATH", conflicts_with = "server")]
    pub db: Option<PathBuf>,
    /// Send to a running monitor-server instead, e.g. http://127.0.0.1:8050/api/v1.
    #[arg(long, value_name = "URL", value_parser = ServerUrl::parse)]
    pub server: Option<ServerUrl>,
    /// Token the server requires for writes (with `--server`), sent as `Authorization: Bearer`.
    #[arg(
        long,
        env = "MONITOR_SERVER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// PEM file of the certificate authorities an https:// server's certificate must be signed
    /// by, instead of the system's (SSL_CERT_FILE also replaces them).
    #[arg(
        long,
        env = "MONITOR_SERVER_CA_CERT",
        value_name = "PATH",
        value_parser = CaCert::parse
    )]
    pub ca_cert: Option<CaCert>,
}

impl ImportArgs {
    /// The database to store into: `--db`, else `MONITOR_SERVER_DB`, else `./monitor.db`.
    pub fn db_path(&self) -> PathBuf {
        self.db
            .clone()
            .or_else(|| std::env::var_os("MONITOR_SERVER_DB").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("./monitor.db"))
    }
}

impl std::fmt::Debug for ImportArgs {
    /// Written by hand so that the token never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportArgs")
            .field("files", &self.files)
            .field("db", &self.db)
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
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
    /// Fold the write-ahead log back into the database file once it holds this many pages
    /// (SQLite's default, 1000, about 4 MB); 0 never does, leaving checkpoints to Litestream, as
    /// its documentation asks when it replicates a busy database. The shutdown checkpoint is
    /// made either way.
    #[arg(
        long,
        env = "MONITOR_SERVER_WAL_AUTOCHECKPOINT",
        default_value_t = DEFAULT_WAL_AUTOCHECKPOINT,
        value_name = "PAGES"
    )]
    pub wal_autocheckpoint: u32,
    /// The largest body `POST /api/v1/metrics/batch` accepts, in bytes (413 beyond it); the
    /// default, 64 MiB, holds some 130,000 metrics. Every other route takes at most 1 MiB.
    #[arg(
        long,
        env = "MONITOR_SERVER_MAX_BATCH_BYTES",
        default_value_t = crate::routes::metrics::DEFAULT_MAX_BATCH_BYTES,
        value_name = "BYTES",
        value_parser = clap::value_parser!(usize)
    )]
    pub max_batch_bytes: usize,
    /// Token `GET /metrics` (Prometheus) must present instead of the read token, so that a
    /// scraper needs no access to the data; unset: /metrics takes the read token like the API.
    #[arg(
        long,
        env = "MONITOR_SERVER_METRICS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub metrics_token: Option<Secret>,
    /// PEM certificate chain to serve HTTPS with (with --tls-key); unset: plain HTTP.
    #[arg(long, env = "MONITOR_SERVER_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the --tls-cert certificate.
    #[arg(long, env = "MONITOR_SERVER_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
}

impl ServeArgs {
    /// How long idle connections are kept open; `None` when they are closed after one request.
    pub fn keep_alive(&self) -> Option<std::time::Duration> {
        (self.keep_alive > 0).then(|| std::time::Duration::from_secs(self.keep_alive))
    }

    /// When the writer's commits are answered and when it checkpoints the WAL.
    pub fn durability(&self) -> Durability {
        Durability {
            synchronous: self.synchronous,
            wal_autocheckpoint: self.wal_autocheckpoint,
        }
    }

    /// The tokens the server will require.
    pub fn tokens(&self) -> Tokens {
        Tokens {
            write: self.token.clone(),
            read: self.read_token.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_age_is_a_number_of_hours_days_or_weeks() {
        assert_eq!(parse_age("90d").map(|a| a.seconds), Ok(90 * 86_400));
        assert_eq!(parse_age("12h").map(|a| a.seconds), Ok(12 * 3_600));
        assert_eq!(parse_age("2w").map(|a| a.seconds), Ok(14 * 86_400));
        for bad in [
            "",
            "d",
            "90",
            "0d",
            "-1d",
            "1.5d",
            "90 d",
            "90D",
            "9m",
            "99999999999999w",
        ] {
            assert!(parse_age(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
