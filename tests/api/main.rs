//! The HTTP contract of `API.md`, checked against a real server on a free port with a fresh
//! database per test. One binary, one module per part of the contract.

mod contexts;
mod general;
mod helpers;
mod metrics;
mod pagination;
mod persistence;
mod sessions;
