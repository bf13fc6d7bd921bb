//! `monitor-server import FILE... [--db PATH | --server URL]`: stores the history pytest-monitor
//! kept in its local database — the `.pymon` file the plugin writes unless run with `--no-db`,
//! with its tables `TEST_SESSIONS`, `EXECUTION_CONTEXTS` and `TEST_METRICS` — into a
//! monitor-server database, or sends it to a running server's API.
//!
//! Each file is all or nothing. It is opened read-only and checked first (an SQLite file, the
//! plugin's three tables with their columns, `PRAGMA quick_check`), then every row is turned into
//! the record the API would build from the same values, by the API's own parsing
//! ([`Metric::from_json`] and its siblings), so a row the API would refuse refuses the file, named
//! by table and rowid. Only then is anything written: with `--db`, the whole file in one
//! transaction through the database's writer connection, so a failure at any point leaves the
//! database as it was. With `--server` there is no transaction to lean on; see
//! [`remote::send`].
//!
//! Importing is idempotent, also for history that already reached the server live, through
//! `pytest --remote-server`: the plugin sends exactly what it writes locally (the same hashes,
//! times and `item_variant`), so the same rule recognises both.
//! - A context or session already stored with the same content is skipped; under the same hash
//!   with other content it is a conflict, which refuses the file.
//! - A metric is already stored when the target holds one of the same session with the same
//!   context, `item_start_time` (the plugin writes microseconds), `item_path`, `item_variant`
//!   and `kind`: one test item started at one instant in one pytest process. The measurements
//!   are not compared. Metrics of the file are only compared with those stored before it, so a
//!   file that itself holds two identical rows stores both, once.
//!
//! The pass that checks a file and the pass that stores it read one snapshot of it (one read
//! transaction), so a plugin writing to it meanwhile cannot make the two disagree.
//!
//! [`reader`] reads and checks the file, [`local`] stores it (`--db`), [`remote`] sends it
//! (`--server`); this module runs the flow and holds the rule that recognises a stored metric.

mod local;
mod progress;
mod reader;
mod remote;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use crate::commands::cli::ImportArgs;
use crate::commands::text::counted;
use crate::models::Metric;
use local::Local;
use progress::Progress;
use reader::Source;
use remote::Remote;

/// Why a file was not imported, or not completely.
#[derive(Debug)]
enum Failure {
    /// The file is at fault — not pytest-monitor's database, damaged, a row the API would refuse,
    /// content that conflicts with what is stored — and nothing of it was stored (exit code 2).
    Refused(String),
    /// The target is at fault: the database cannot be used or written, the server cannot be
    /// reached or answered an error (exit code 1, or 2 for a database `serve` would refuse too).
    Target(String, u8),
}

/// How many records of one kind were added, and how many were already stored.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    added: u64,
    skipped: u64,
}

impl Tally {
    fn count(&mut self, added: bool) {
        if added {
            self.added += 1;
        } else {
            self.skipped += 1;
        }
    }
}

/// The outcome of importing one file.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    sessions: Tally,
    contexts: Tally,
    metrics: Tally,
}

impl Counts {
    fn summary(&self) -> String {
        format!(
            "{}, {}, {} added; {}, {}, {} were already stored",
            counted(self.sessions.added, "session"),
            counted(self.contexts.added, "context"),
            counted(self.metrics.added, "metric"),
            counted(self.sessions.skipped, "session"),
            counted(self.contexts.skipped, "context"),
            counted(self.metrics.skipped, "metric"),
        )
    }
}

/// Where the records go.
enum Target {
    /// A database file (`--db`).
    Database(Local),
    /// A running server's API (`--server`).
    Server(Remote),
}

/// Imports every file of `args`, printing one line per file (its counts on stdout, or why it was
/// refused on stderr). Returns the exit code: 0 when every file was imported, 2 when a file was
/// refused (the others are still imported) or the database cannot be used, 1 when storing
/// failed (the remaining files are then not tried).
pub fn run(args: &ImportArgs) -> u8 {
    let mut target = match &args.server {
        Some(server) => match Remote::new(server, args.token.as_deref(), args.ca_cert.as_ref()) {
            Ok(remote) => Target::Server(remote),
            Err(err) => {
                eprintln!("monitor-server: cannot import: {err}");
                return 2;
            }
        },
        None => Target::Database(Local::new(args.db_path())),
    };
    let mut code = 0;
    for file in &args.files {
        match import_file(file, &mut target) {
            Ok(counts) => println!("imported {}: {}", file.display(), counts.summary()),
            Err(Failure::Refused(reason)) => {
                eprintln!(
                    "monitor-server: cannot import {}: {reason}; nothing was imported from it",
                    file.display()
                );
                code = 2;
            }
            Err(Failure::Target(reason, exit)) => {
                eprintln!("monitor-server: cannot import {}: {reason}", file.display());
                return exit;
            }
        }
    }
    code
}

fn import_file(file: &Path, target: &mut Target) -> Result<Counts, Failure> {
    let mut progress = Progress::new(file);
    let source = Source::open(file, &mut progress)?;
    match target {
        Target::Database(local) => local.import(source, progress),
        Target::Server(remote) => remote::send(remote, &source, &mut progress),
    }
}

// ------------------------------------------------------------------------------ identity

/// What identifies a metric across imports and live uploads: one test item (`item_path`,
/// `item_variant`, `kind`) started at one instant in one session on one context.
///
/// Kept as a 128-bit digest rather than the strings, so that recognising the metrics already
/// stored takes 16 bytes each however long the names are; two different metrics share a
/// digest with a probability of about 2^-128 per pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct MetricKey(u128);

impl MetricKey {
    fn new(parts: [&str; 6]) -> Self {
        // Two SipHash digests, the second salted: the standard library's fixed keys make them
        // the same in every process, which is all a set within one run needs.
        let (mut a, mut b) = (DefaultHasher::new(), DefaultHasher::new());
        0x5a17_u16.hash(&mut b);
        for part in parts {
            // `str`'s Hash ends each string with a marker, so ("ab", "c") and ("a", "bc") differ.
            part.hash(&mut a);
            part.hash(&mut b);
        }
        MetricKey((u128::from(a.finish()) << 64) | u128::from(b.finish()))
    }

    fn of(m: &Metric) -> Self {
        Self::new([
            &m.session_h,
            &m.context_h,
            &m.item_start_time,
            &m.item_path,
            &m.item_variant,
            &m.kind,
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_key_depends_on_every_part_and_on_where_the_parts_split() {
        let base = [
            "s",
            "c",
            "2024-01-01T00:00:00.000001",
            "m",
            "t[1, a]",
            "function",
        ];
        let key = MetricKey::new(base);
        assert_eq!(key, MetricKey::new(base));
        for i in 0..base.len() {
            let mut other = base;
            other[i] = "x";
            assert_ne!(key, MetricKey::new(other), "part {i}");
        }
        let mut moved = base;
        moved[0] = "sc";
        moved[1] = "";
        assert_ne!(key, MetricKey::new(moved));
    }
}
