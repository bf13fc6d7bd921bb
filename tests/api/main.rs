//! The HTTP contract of `API.md`, checked against a real server on a free port with a fresh
//! database per test. One binary, one module per part of the contract.

mod batch;
mod compare;
mod contexts;
mod dashboard;
mod dataset;
mod deleting;
mod general;
mod helpers;
mod layers;
mod metric_filters;
mod metrics;
mod openapi;
mod pagination;
mod persistence;
mod queries_components;
mod queries_counts;
mod queries_filters;
mod queries_items;
mod queries_pipelines;
mod queries_resources;
mod queries_sessions;
mod sessions;
