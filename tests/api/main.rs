//! The HTTP contract of `docs/api.md`, checked against a real server on a free port with a fresh
//! database per test. One binary, one module per resource or part of the contract.

#[path = "../common/mod.rs"]
mod common;

mod batch;
mod changes;
mod compare;
mod components;
mod contexts;
mod counts;
mod dashboard;
mod deleting;
mod filters;
mod general;
mod items;
mod layers;
mod metric_filters;
mod metrics;
mod openapi;
mod operations;
mod pagination;
mod persistence;
mod pipelines;
mod resources;
mod sessions;
mod sql_rules;
