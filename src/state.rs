//! What every request handler shares: the database and the default page size.

use crate::db::Db;

/// What every request handler shares.
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Rows per page when the client does not ask for `per_page`.
    pub page_size: u64,
}
