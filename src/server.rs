//! Builds the actix-web application on a listener and runs it: `serve` for the binary, `run` for
//! tests that bind port 0 themselves.

use std::future::Future;
use std::io;
use std::net::TcpListener;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::KeepAlive;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::commands::cli::ServeArgs;
use crate::dashboard;
use crate::db::{self, Db, OpenError};
use crate::routes::docs::ApiDocument;
use crate::routes::middleware::auth::{self, MetricsToken, Secret, Tokens};
use crate::routes::middleware::{limits, normalize, telemetry as record};
use crate::routes::{self, ui};
use crate::state::AppState;
use crate::telemetry::Telemetry;

/// Read connections per server. A read holds one only while its query runs (a millisecond for a
/// page of metrics), so 8 keep a few cores busy with room left for slower queries; each costs its
/// page cache and the memory of the thread running it, so more would only add memory (measured:
/// 16 connections took 10 MB more under load than 8). Writes have a connection of their own
/// ([`db::Db::write`]).
const POOL_SIZE: u32 = 8;

/// How long a client may take to send its request line and headers; a slow (slowloris) client
/// is disconnected after this instead of holding a connection forever.
///
/// actix-http applies this to the first request of a connection only, so by default connections
/// are not kept alive ([`Options::keep_alive`]): every connection carries one request and is
/// closed after its answer, and no client can hold one by trickling a second request.
/// pytest-monitor opens a connection per request anyway, and closing also lets a graceful
/// shutdown finish as soon as the requests in flight are answered.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Open connections per worker thread; beyond it, new connections wait in the listen backlog
/// rather than exhausting file descriptors.
pub const MAX_CONNECTIONS_PER_WORKER: usize = 512;

/// Seconds SIGTERM waits for requests in flight before workers are stopped.
const SHUTDOWN_GRACE_SECONDS: u64 = 30;

/// Settings of the HTTP layer that tests and the binary may choose.
#[derive(Debug, Clone)]
pub struct Options {
    /// The tokens writes and reads must present.
    pub tokens: Tokens,
    /// Connections each worker thread holds at most ([`MAX_CONNECTIONS_PER_WORKER`] by default).
    pub max_connections_per_worker: usize,
    /// How long an idle connection is kept open for another request; `None` (the default): each
    /// connection carries one request and is closed after its answer.
    ///
    /// Keeping connections alive saves a client that sends many requests a TCP handshake each,
    /// but actix-http times only the headers of a connection's first request
    /// ([`HEADER_TIMEOUT`]): a client that trickles the headers of a later one can hold the
    /// connection as long as it likes, and enough such clients take every connection slot.
    pub keep_alive: Option<Duration>,
    /// The largest body of `POST /metrics/batch`, in bytes ([`DEFAULT_MAX_BATCH_BYTES`] by
    /// default); every other route takes at most [`routes::BODY_LIMIT`].
    pub max_batch_bytes: usize,
    /// The token `GET /metrics` requires instead of the read token; `None`: it takes the read
    /// token like every other read.
    pub metrics_token: Option<Secret>,
    /// Serve HTTPS with this certificate and key; `None` (the default): plain HTTP.
    pub tls: Option<rustls::ServerConfig>,
}

pub use crate::routes::metrics::DEFAULT_MAX_BATCH_BYTES;

pub use crate::state::BLOCKING_THREADS_PER_WORKER;

impl Default for Options {
    fn default() -> Self {
        Options {
            tokens: Tokens::default(),
            max_connections_per_worker: MAX_CONNECTIONS_PER_WORKER,
            keep_alive: None,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            metrics_token: None,
            tls: None,
        }
    }
}

/// Builds the HTTP server on an already bound listener, with no token required. The returned
/// [`Server`] runs once awaited (or spawned) and stops cleanly on SIGINT/SIGTERM or through its
/// handle.
pub fn run(listener: TcpListener, state: AppState) -> io::Result<Server> {
    run_with(listener, state, Options::default())
}

/// [`run`], with the given options.
pub fn run_with(listener: TcpListener, state: AppState, options: Options) -> io::Result<Server> {
    let state = web::Data::new(state);
    let tokens = web::Data::new(options.tokens);
    // One per server, shared by its workers: what the dashboard's routes keep up to date.
    let dashboard = web::Data::new(dashboard::Cache::default());
    // Not waited for: a request that needs the figures first waits for them.
    let _ = dashboard::warm_up(&state.db, dashboard.clone().into_inner());
    let batch_limit = web::Data::new(routes::metrics::BatchLimit(options.max_batch_bytes));
    // Built once, from the route table, rather than by the route it describes.
    let document = web::Data::new(ApiDocument::build());
    let telemetry = web::Data::new(Telemetry::new(state.db.writer_stats(), state.db.path()));
    let metrics_token = options
        .metrics_token
        .map(|t| web::Data::new(MetricsToken(t)));
    let server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(state.clone())
            .app_data(tokens.clone())
            .app_data(dashboard.clone())
            .app_data(batch_limit.clone())
            .app_data(document.clone())
            .app_data(telemetry.clone());
        if let Some(token) = &metrics_token {
            app = app.app_data(token.clone());
        }
        app.wrap(from_fn(auth::require_tokens))
            .wrap(from_fn(normalize::normalize_path))
            .wrap(from_fn(limits::close_on_unread_body))
            // Outermost, so that refusals and 404s are counted and timed too.
            .wrap(from_fn(record::record))
            .configure(ui::configure)
            .configure(routes::configure)
    })
    .client_request_timeout(HEADER_TIMEOUT)
    .keep_alive(
        options
            .keep_alive
            .map_or(KeepAlive::Disabled, KeepAlive::Timeout),
    )
    .max_connections(options.max_connections_per_worker)
    .worker_max_blocking_threads(BLOCKING_THREADS_PER_WORKER)
    .shutdown_timeout(SHUTDOWN_GRACE_SECONDS);
    let server = match options.tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}

/// Why `serve` could not start.
#[derive(Debug)]
pub enum ServeError {
    /// The database file cannot be used.
    Database(OpenError),
    /// The address cannot be bound, or the server failed while running.
    Io(String),
    /// The TLS certificate or key cannot be used, or only one of them is given.
    Tls(String),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Database(err) => err.fmt(f),
            ServeError::Io(message) | ServeError::Tls(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ServeError {}

/// The TLS settings of `--tls-cert` and `--tls-key`: both or neither.
fn tls_config(args: &ServeArgs) -> Result<Option<rustls::ServerConfig>, ServeError> {
    match (&args.tls_cert, &args.tls_key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => crate::tls::server_config(cert, key)
            .map(Some)
            .map_err(ServeError::Tls),
        (Some(_), None) => Err(ServeError::Tls(
            "--tls-cert needs --tls-key (MONITOR_SERVER_TLS_KEY): the certificate's private key"
                .into(),
        )),
        (None, Some(_)) => Err(ServeError::Tls(
            "--tls-key needs --tls-cert (MONITOR_SERVER_TLS_CERT): the certificate it belongs to"
                .into(),
        )),
    }
}

/// Opens the database, binds the address and serves until SIGINT or SIGTERM.
pub fn serve(args: &ServeArgs) -> Result<(), ServeError> {
    // Before the database: a bad certificate must not leave a new empty database behind.
    let tls = tls_config(args)?;
    let db = Db::open_with(&args.db, POOL_SIZE, args.durability()).map_err(ServeError::Database)?;
    let listener = TcpListener::bind(&args.bind)
        .map_err(|err| ServeError::Io(format!("cannot listen on {}: {err}", args.bind)))?;
    let address = listener
        .local_addr()
        .map_err(|err| ServeError::Io(format!("cannot read the bound address: {err}")))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let started = format!(
        "monitor-server {} listening on {scheme}://{address}/api/v1 with database {}",
        env!("CARGO_PKG_VERSION"),
        db.path().display()
    );
    let tokens = args.tokens();
    log::info!("access: {}", tokens.summary());
    if args.synchronous == db::Synchronous::Normal {
        log::info!(
            "--synchronous normal: writes are answered once in the WAL, before they reach the \
             disk; a power loss or OS crash may lose the last ones"
        );
    }
    if tokens.write.is_none() && !address.ip().is_loopback() {
        log::warn!(
            "listening on {address}, reachable from other machines, with no --token: \
             anyone who can reach it can write metrics"
        );
    }
    let options = Options {
        tokens,
        keep_alive: args.keep_alive(),
        max_batch_bytes: args.max_batch_bytes,
        metrics_token: args.metrics_token.clone(),
        tls,
        ..Options::default()
    };
    let state = AppState {
        db: db.clone(),
        page_size: args.page_size,
    };
    actix_web::rt::System::new()
        .block_on(async move {
            let mut server = run_with(listener, state, options)?;
            // The server installs its SIGINT/SIGTERM handlers when first polled. Announce it only
            // after that, so a supervisor that signals as soon as it reads the line gets a clean
            // shutdown rather than the default action of the signal.
            let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut server).poll(cx)));
            if let Poll::Ready(outcome) = first.await {
                return outcome;
            }
            log::info!("{started}");
            server.await
        })
        .map_err(|err| ServeError::Io(format!("the server stopped with an error: {err}")))?;
    // Every acknowledged write is already committed; folding the WAL back into the database
    // leaves a single self-contained file behind.
    if let Err(err) = db.checkpoint() {
        log::warn!("could not checkpoint the WAL at shutdown: {err}");
    }
    log::info!("monitor-server stopped");
    Ok(())
}
