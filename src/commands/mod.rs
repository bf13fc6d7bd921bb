//! The command-line verbs other than `serve`: backup, prune, compare (the CI gate) and import.

pub mod backup;
pub mod compare;
pub mod import;
pub mod prune;
