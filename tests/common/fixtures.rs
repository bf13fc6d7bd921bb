//! The schemas of earlier releases, to build the old databases a new binary must migrate.

/// The first release's schema, which wrote `user_version` 1.
pub const SCHEMA_V1: &str = include_str!("fixtures/schema_v1.sql");

/// The second release's schema, which wrote `user_version` 2 and counted metrics with an insert
/// trigger.
pub const SCHEMA_V2: &str = include_str!("fixtures/schema_v2.sql");

/// The third release's schema, which wrote `user_version` 3: the last with a `metrics` table,
/// each row repeating its session, context and test strings.
pub const SCHEMA_V3: &str = include_str!("fixtures/schema_v3.sql");
