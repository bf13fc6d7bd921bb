//! The records the API stores and lists — metrics, execution contexts and sessions — and the
//! parsing that turns a request body into one of them.
//!
//! Parsing happens once, at the edge: a body becomes a [`Metric`], [`Context`] or [`Session`] only
//! if every rule of docs/api.md holds, so nothing invalid ever reaches SQL. All faults of a body
//! are reported together, each under the field name the client used.
//!
//! | file | its job |
//! |---|---|
//! | `json.rs` | a request body as one strict JSON object; its fields read, every fault kept |
//! | `iso8601.rs` | the times pytest-monitor sends |
//! | `metric.rs`, `context.rs`, `session.rs` | the three records |
//! | `ndjson.rs` | a batch of metrics, one per line |

mod context;
mod iso8601;
mod json;
mod metric;
mod ndjson;
mod session;

pub use context::Context;
pub use iso8601::{canonical_iso8601, is_canonical_iso8601, parse_iso8601};
pub use json::JsonObject;
pub use metric::{Metric, MetricRecord};
pub use ndjson::{line_ends, metrics_from_ndjson, NdjsonPieces};
pub use session::{tag_value, Session, Tag};
