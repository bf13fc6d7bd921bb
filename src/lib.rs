//! monitor-server: stores the per-test resource metrics that pytest-monitor measures and serves
//! them back through a JSON REST API (see `API.md`'s contract and the README).
//!
//! The binary only parses its command line and calls [`serve`]; tests call [`run`] with a
//! listener bound to port 0 and a database in a temporary directory.
#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::net::TcpListener;
use std::pin::Pin;
use std::task::Poll;

use actix_web::dev::Server;
use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpServer};

pub mod config;
pub mod db;
pub mod error;
pub mod models;
pub mod openapi;
pub mod pagination;
pub mod query;
pub mod routes;

use config::ServeArgs;
use db::{Db, OpenError};

/// What every request handler shares.
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Rows per page when the client does not ask for `per_page`.
    pub page_size: u64,
}

/// Database connections per server: enough for every worker's readers plus a writer waiting on
/// the lock, few enough that SQLite's file locking is not thrashed.
const POOL_SIZE: u32 = 16;

/// Builds the HTTP server on an already bound listener. The returned [`Server`] runs once awaited
/// (or spawned) and stops cleanly on SIGINT/SIGTERM or through its handle.
pub fn run(listener: TcpListener, state: AppState) -> io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(NormalizePath::new(TrailingSlash::Trim))
            .configure(routes::configure)
    })
    .listen(listener)?
    .run();
    Ok(server)
}

/// Why `serve` could not start.
#[derive(Debug)]
pub enum ServeError {
    /// The database file cannot be used.
    Database(OpenError),
    /// The address cannot be bound, or the server failed while running.
    Io(String),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Database(err) => err.fmt(f),
            ServeError::Io(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ServeError {}

/// Opens the database, binds the address and serves until SIGINT or SIGTERM.
pub fn serve(args: &ServeArgs) -> Result<(), ServeError> {
    let db = Db::open(&args.db, POOL_SIZE).map_err(ServeError::Database)?;
    let listener = TcpListener::bind(&args.bind)
        .map_err(|err| ServeError::Io(format!("cannot listen on {}: {err}", args.bind)))?;
    let address = listener
        .local_addr()
        .map_err(|err| ServeError::Io(format!("cannot read the bound address: {err}")))?;
    let started = format!(
        "monitor-server {} listening on http://{address}/api/v1 with database {}",
        env!("CARGO_PKG_VERSION"),
        db.path().display()
    );
    let state = AppState {
        db,
        page_size: args.page_size,
    };
    actix_web::rt::System::new()
        .block_on(async move {
            let mut server = run(listener, state)?;
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
    log::info!("monitor-server stopped");
    Ok(())
}
