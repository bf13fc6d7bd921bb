//! Access control. With `--token` set, every request that changes data must present it (without
//! a token: 401; with the read token: 403); with `--read-token` set, every read must present
//! that token or the write token.
//!
//! A token is accepted as `Authorization: Bearer TOKEN` or as the password of HTTP Basic, so
//! that the unmodified pytest-monitor works with `--remote-server http://ci:TOKEN@host/api/v1`
//! (requests turns the URL's user-info into a Basic header). Tokens are compared in constant
//! time and never logged.

use std::fmt;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::web;
use base64::Engine;

use crate::error::ApiError;
use crate::routes::operations;

/// A token as given on the command line; its `Debug` output hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Secret(token.into())
    }

    /// Whether `presented` is this token, in time that depends only on the lengths.
    fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        let mut difference = expected.len() ^ presented.len();
        for (i, byte) in expected.iter().enumerate() {
            difference |= usize::from(byte ^ presented.get(i).copied().unwrap_or(!byte));
        }
        difference == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        if token.is_empty() {
            Err("a token must not be empty".into())
        } else {
            Ok(Secret::new(token))
        }
    }
}

/// The tokens a server requires; `None` leaves that kind of request open.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// Required by writes (and accepted for reads).
    pub write: Option<Secret>,
    /// Required by reads.
    pub read: Option<Secret>,
}

impl Tokens {
    /// What needs a token, for the start-up log; never the tokens themselves.
    pub fn summary(&self) -> &'static str {
        match (self.write.is_some(), self.read.is_some()) {
            (false, false) => "no token is required: reads and writes are open",
            (true, false) => "writes require the token; reads are open",
            (true, true) => "writes require the token; reads require the read or the write token",
            (false, true) => "reads require the read token; writes are open",
        }
    }

    /// True when no token is set at all.
    pub fn is_open(&self) -> bool {
        self.write.is_none() && self.read.is_none()
    }

    /// Whether a request with this method, presenting this token, may go on; else the refusal.
    fn check(&self, method: &Method, presented: Option<&[u8]>) -> Result<(), ApiError> {
        let reading = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let accepted: &[&Option<Secret>] = if reading {
            if self.read.is_none() {
                return Ok(());
            }
            &[&self.read, &self.write]
        } else {
            if self.write.is_none() {
                return Ok(());
            }
            &[&self.write]
        };
        let Some(presented) = presented else {
            return Err(ApiError::Unauthorized);
        };
        // Every accepted token is compared, so timing does not tell which one nearly matched.
        let matches = |tokens: &[&Option<Secret>]| {
            tokens
                .iter()
                .filter_map(|token| token.as_ref())
                .fold(false, |ok, token| token.matches(presented) | ok)
        };
        if matches(accepted) {
            Ok(())
        } else if !reading && matches(&[&self.read]) {
            // A client that knows the read token is who it says; it only lacks the right.
            Err(ApiError::Forbidden)
        } else {
            Err(ApiError::Unauthorized)
        }
    }

    #[cfg(test)]
    fn allows(&self, method: &Method, presented: Option<&[u8]>) -> bool {
        self.check(method, presented).is_ok()
    }
}

/// The token `GET /metrics` requires instead of the read token (`--metrics-token`), so that a
/// Prometheus scraper can be given access to the server's figures without access to the data.
#[derive(Debug, Clone)]
pub struct MetricsToken(pub Secret);

impl MetricsToken {
    fn check(&self, presented: Option<&[u8]>) -> Result<(), ApiError> {
        match presented {
            Some(presented) if self.0.matches(presented) => Ok(()),
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// The token in an `Authorization` header: a Bearer token, or the password of Basic credentials.
fn presented_token(value: &str) -> Option<Vec<u8>> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(rest.as_bytes().to_vec())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let colon = decoded.iter().position(|b| *b == b':')?;
        Some(decoded[colon + 1..].to_vec())
    } else {
        None
    }
}

/// The middleware: answers 401 (with `WWW-Authenticate`) to a request lacking the token its
/// method needs, or 403 to a write presenting the read token, before any handler or body
/// parsing runs. The refusal is an answer, not an
/// error, so the outer middleware sees it like any handler's.
pub async fn require_tokens(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let checked = match req.app_data::<web::Data<Tokens>>() {
        None => Ok(()),
        // The dashboard's files hold no data; the page asks for the token the API needs.
        Some(_) if crate::routes::ui::is_public(req.method(), req.path()) => Ok(()),
        // Probes: whether the process serves or can write tells nothing of the data.
        Some(_) if operations::is_public(req.method(), req.path()) => Ok(()),
        Some(tokens) => {
            let presented = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(presented_token);
            match req.app_data::<web::Data<MetricsToken>>() {
                Some(metrics) if req.path() == operations::METRICS_PATH => {
                    metrics.check(presented.as_deref())
                }
                _ => tokens.check(req.method(), presented.as_deref()),
            }
        }
    };
    if let Err(refusal) = checked {
        return Ok(req.error_response(refusal).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(write: Option<&str>, read: Option<&str>) -> Tokens {
        Tokens {
            write: write.map(Secret::new),
            read: read.map(Secret::new),
        }
    }

    #[test]
    fn bearer_and_basic_password_both_carry_the_token() {
        assert_eq!(
            presented_token("Bearer s3cret").as_deref(),
            Some(&b"s3cret"[..])
        );
        // "ci:s3cret" in base64
        assert_eq!(
            presented_token("Basic Y2k6czNjcmV0").as_deref(),
            Some(&b"s3cret"[..])
        );
        assert_eq!(presented_token("Digest abc"), None);
        assert_eq!(presented_token("Basic !!!"), None);
    }

    #[test]
    fn a_write_token_guards_writes_and_leaves_reads_open() {
        let t = tokens(Some("w"), None);
        assert!(t.allows(&Method::GET, None));
        assert!(!t.allows(&Method::POST, None));
        assert!(!t.allows(&Method::POST, Some(b"x")));
        assert!(!t.allows(&Method::POST, Some(b"ww")));
        assert!(t.allows(&Method::POST, Some(b"w")));
    }

    #[test]
    fn a_read_token_guards_reads_and_the_write_token_also_reads() {
        let t = tokens(Some("w"), Some("r"));
        assert!(!t.allows(&Method::GET, None));
        assert!(t.allows(&Method::GET, Some(b"r")));
        assert!(t.allows(&Method::GET, Some(b"w")));
        assert!(!t.allows(&Method::POST, Some(b"r")));
        assert!(!t.allows(&Method::DELETE, Some(b"r")));
        assert!(t.allows(&Method::DELETE, Some(b"w")));
    }

    #[test]
    fn a_write_with_the_read_token_is_forbidden_and_one_without_a_token_unauthorized() {
        let t = tokens(Some("w"), Some("r"));
        let status = |presented: Option<&[u8]>| match t.check(&Method::DELETE, presented) {
            Ok(()) => 200,
            Err(ApiError::Forbidden) => 403,
            Err(ApiError::Unauthorized) => 401,
            Err(other) => panic!("{other:?}"),
        };
        assert_eq!(status(Some(b"r")), 403);
        assert_eq!(status(None), 401);
        assert_eq!(status(Some(b"x")), 401);
        assert_eq!(status(Some(b"w")), 200);
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
