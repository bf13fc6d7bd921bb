//! Computing the figures the dashboard's first view needs before it is asked for.

use std::sync::Arc;

use crate::db::Db;

use super::cache::Cache;

/// Computes the figures of every test now, on a thread of its own, so that the dashboard's first
/// view (`/tests` unfiltered, slowest and hungriest, and `/runs`' first page) finds them ready
/// instead of waiting for a pass over every metric (about half a second for 1,000,000). A request that comes first
/// waits for this computation rather than doing it again. The changes of the busiest pipelines
/// (`/changes`) come last, being the least urgent. Returns the thread, if it started.
pub fn warm_up(db: &Db, cache: Arc<Cache>) -> Option<std::thread::JoinHandle<()>> {
    let db = db.clone();
    let spawned = std::thread::Builder::new()
        .name("tests-warm-up".into())
        .spawn(move || {
            let warmed = db.run_here(|conn| {
                let tx = conn.transaction()?;
                cache.warm(&tx)
            });
            if let Err(err) = warmed {
                log::warn!("could not compute the tests' figures ahead of time: {err}");
            }
        });
    match spawned {
        Ok(thread) => Some(thread),
        Err(err) => {
            log::warn!("could not start computing the tests' figures ahead of time: {err}");
            None
        }
    }
}
