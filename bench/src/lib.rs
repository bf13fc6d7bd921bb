//! What the benchmark binaries share: the builder of large, realistic stores.

#![forbid(unsafe_code)]

pub mod store;
