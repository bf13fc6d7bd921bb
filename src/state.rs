//! What every request handler shares: the database, the default page size, and how many
//! blocking threads the server gives each worker.

use crate::db::Db;

/// What every request handler shares.
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Rows per page when the client does not ask for `per_page`.
    pub page_size: u64,
}

/// Threads each worker may run blocking work on (reads, parsing a batch). A read holds one of
/// the `server::POOL_SIZE` connections, so with one worker per core a few threads each cover the pool;
/// more would only wait for a connection, and each keeps a stack and a malloc arena of its own
/// (actix's default allows 512 in all).
pub const BLOCKING_THREADS_PER_WORKER: usize = 4;
