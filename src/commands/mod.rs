//! The command line (`cli`: every verb's flags and environment variables, `serve`'s included) and
//! the verbs other than `serve`: backup, prune, compare (the CI gate) and import, with the HTTP
//! client and the wording they share.

pub mod backup;
pub mod cli;
pub mod compare;
pub mod http;
pub mod import;
pub mod prune;
mod text;
