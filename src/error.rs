//! The one error type every handler returns, rendered as the JSON body docs/api.md promises:
//! `{"message": "...", "errors": {"field": "reason"}}`.
//!
//! The real cause of a server-side failure is logged once, here; the body a client sees never
//! carries SQL, file paths or library messages.

use std::collections::BTreeMap;
use std::fmt;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use rusqlite::ErrorCode;
use serde::Serialize;

/// Per-field reasons, keyed by the field's name as the client spelled it (or its output name).
pub type FieldErrors = BTreeMap<String, String>;

/// Every way a request can fail, each mapped to one HTTP status. `Clone`, because the error of a
/// group commit that failed is the answer to every write of the group (the database's writer).
#[derive(Debug, Clone)]
pub enum ApiError {
    /// 400: the client sent something the contract rejects.
    BadRequest {
        /// One sentence a person can read.
        message: String,
        /// The fields at fault and why; empty when no single field is to blame.
        errors: FieldErrors,
    },
    /// 401: the route needs a token the request did not present.
    Unauthorized,
    /// 403: the request presented the read token to a route that changes data.
    Forbidden,
    /// 408: the client took too long to send its request body.
    RequestTimeout,
    /// 404: unknown route, record or page.
    NotFound(String),
    /// 405: the route exists but not with this method; the methods it accepts, as the `Allow`
    /// header lists them (`GET, HEAD`).
    MethodNotAllowed(String),
    /// 409: a record already exists under this id with other content.
    Conflict(String),
    /// 413: the body is larger than the limit.
    PayloadTooLarge(usize),
    /// 415: the body is not declared as the media type the route reads (this one).
    UnsupportedMediaType(&'static str),
    /// 503: the database is busy or cannot be reached; the client may retry.
    Unavailable(String),
    /// 507: the disk holding the database is full.
    InsufficientStorage,
    /// 500: a fault of the server's own; details go to the log only.
    Internal,
}

impl ApiError {
    /// A 400 with a message and no field to blame.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            errors: FieldErrors::new(),
        }
    }

    /// A 400 blaming one field.
    pub fn bad_field(message: impl Into<String>, field: &str, reason: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(field.to_owned(), reason.into());
        ApiError::BadRequest {
            message: message.into(),
            errors,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::BadRequest { message, .. }
            | ApiError::NotFound(message)
            | ApiError::Conflict(message)
            | ApiError::Unavailable(message) => f.write_str(message),
            ApiError::MethodNotAllowed(allowed) => write!(
                f,
                "This route does not accept that method; it accepts {allowed}."
            ),
            ApiError::Unauthorized => f.write_str(
                "This request needs the server's token, as `Authorization: Bearer TOKEN` or as the password of HTTP Basic.",
            ),
            ApiError::Forbidden => f.write_str(
                "This request changes data and needs the write token; the token presented only allows reads.",
            ),
            ApiError::RequestTimeout => {
                f.write_str("The request body did not arrive in time; nothing was stored.")
            }
            ApiError::PayloadTooLarge(limit) => {
                write!(
                    f,
                    "The request body is larger than the limit of {limit} bytes."
                )
            }
            ApiError::UnsupportedMediaType("application/json") => f.write_str(
                "The request body must be JSON, sent with Content-Type: application/json.",
            ),
            ApiError::UnsupportedMediaType(expected) => {
                write!(
                    f,
                    "The request body must be sent with Content-Type: {expected}."
                )
            }
            ApiError::InsufficientStorage => {
                f.write_str("The disk holding the database is full; nothing was stored.")
            }
            ApiError::Internal => f.write_str("The server failed to handle this request."),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a FieldErrors>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let errors = match self {
            ApiError::BadRequest { errors, .. } if !errors.is_empty() => Some(errors),
            _ => None,
        };
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::Unauthorized => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    r#"Basic realm="monitor-server", Bearer realm="monitor-server""#,
                ));
            }
            ApiError::RequestTimeout => {
                response.insert_header((header::CONNECTION, "close"));
            }
            ApiError::MethodNotAllowed(allowed) => {
                response.insert_header((header::ALLOW, allowed.as_str()));
            }
            _ => {}
        }
        response.json(ErrorBody {
            message: self.to_string(),
            errors,
        })
    }
}

/// Whether an SQLite failure means the disk (or the user's quota) has no room left. SQLite reports
/// a write cut short by ENOSPC as `SQLITE_FULL`, but other reasons a file cannot grow come back as
/// I/O errors: a write refused with EDQUOT (`SQLITE_IOERR_WRITE`), a file that cannot be extended
/// (`SQLITE_IOERR_TRUNCATE`), a WAL index that cannot grow (`SQLITE_IOERR_SHMSIZE`). In every case
/// the write did not commit, so the client may be told "nothing was stored".
fn is_disk_full(err: &rusqlite::Error) -> bool {
    err.sqlite_error().is_some_and(|sqlite| {
        sqlite.code == ErrorCode::DiskFull
            || matches!(
                sqlite.extended_code,
                rusqlite::ffi::SQLITE_IOERR_WRITE
                    | rusqlite::ffi::SQLITE_IOERR_TRUNCATE
                    | rusqlite::ffi::SQLITE_IOERR_SHMSIZE
            )
    })
}

impl From<rusqlite::Error> for ApiError {
    fn from(err: rusqlite::Error) -> Self {
        if is_disk_full(&err) {
            log::error!("disk full: {err}");
            return ApiError::InsufficientStorage;
        }
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                log::warn!("database busy: {err}");
                ApiError::Unavailable("The database is busy; retry shortly.".into())
            }
            Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::SystemIoFailure) => {
                log::error!("database unavailable: {err}");
                ApiError::Unavailable("The database cannot be written right now.".into())
            }
            _ => {
                log::error!("database error: {err}");
                ApiError::Internal
            }
        }
    }
}

impl From<r2d2::Error> for ApiError {
    fn from(err: r2d2::Error) -> Self {
        log::warn!("no database connection available: {err}");
        ApiError::Unavailable("No database connection is available; retry shortly.".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn answer_to(extended_code: i32) -> HttpResponse {
        let err = rusqlite::Error::SqliteFailure(ffi::Error::new(extended_code), None);
        ApiError::from(err).error_response()
    }

    #[test]
    fn every_way_sqlite_reports_a_full_disk_is_a_507() {
        for code in [
            ffi::SQLITE_FULL,
            ffi::SQLITE_IOERR_WRITE,
            ffi::SQLITE_IOERR_TRUNCATE,
            ffi::SQLITE_IOERR_SHMSIZE,
        ] {
            assert_eq!(answer_to(code).status(), 507, "extended code {code}");
        }
    }

    #[test]
    fn a_busy_database_or_another_io_error_is_a_503_with_retry_after() {
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_IOERR_READ,
            ffi::SQLITE_IOERR_FSYNC,
        ] {
            let response = answer_to(code);
            assert_eq!(response.status(), 503, "extended code {code}");
            assert!(response.headers().contains_key(header::RETRY_AFTER));
        }
    }
}
