//! What wraps every request before a handler sees it: the token check ([`auth`]), the guard
//! against bodies never finished ([`limits`]) and the path normalisation ([`normalize`]).

pub mod auth;
pub mod limits;
pub mod normalize;
