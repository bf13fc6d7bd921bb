//! What the benchmark binaries share: the builder of large, realistic stores, and counts.

#![forbid(unsafe_code)]

pub mod count;
pub mod store;
