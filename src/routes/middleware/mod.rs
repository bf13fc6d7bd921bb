//! What wraps every request before a handler sees it: the token check ([`auth`]), the guard
//! against bodies never finished ([`limits`]), the path normalisation ([`normalize`]) and the
//! counts and timings of `/metrics` ([`telemetry`]).

pub mod auth;
pub mod limits;
pub mod normalize;
pub mod telemetry;
