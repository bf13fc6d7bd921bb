//! Page numbers and the listing envelope shared by every collection route.
//!
//! Pages count from 1 and a negative page counts from the end, as monitor-server-api does; the
//! envelope always carries `prev_url`/`next_url` (`null` at either end) that keep every other
//! query parameter of the request, so a client can walk a filtered listing by following links.

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::routes::API_PREFIX;

/// The largest page a client may ask for with `per_page`.
pub const MAX_PER_PAGE: u64 = 10_000;

/// The paging part of a listing's query string, checked but not yet laid over a collection.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    page: i64,
    per_page: u64,
}

/// The rows a page covers, known once the collection's size is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The page number, counted from 1.
    pub page: u64,
    /// How many pages the collection fills.
    pub total_pages: u64,
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return at most.
    pub limit: u64,
}

impl PageRequest {
    /// A request for page `page` (from 1; negative counts from the end, never 0) of `per_page`
    /// rows, both checked by the route's parameters ([`crate::routes::params`]).
    pub fn new(page: i64, per_page: u64) -> Self {
        PageRequest { page, per_page }
    }

    /// Lays the request over a collection of `total` rows. `None` for an empty collection (the
    /// route answers 204); a 404 for a page past either end.
    pub fn window(&self, total: u64) -> Result<Option<Window>, ApiError> {
        if total == 0 {
            return Ok(None);
        }
        let total_pages = total.div_ceil(self.per_page);
        let page = if self.page > 0 {
            self.page.unsigned_abs()
        } else {
            // -1 is the last page: total_pages + 1 - |page|, when that is still a page.
            (total_pages + 1).saturating_sub(self.page.unsigned_abs())
        };
        if page == 0 || page > total_pages {
            return Err(ApiError::NotFound(format!(
                "Page {} does not exist: there are {total_pages} pages.",
                self.page
            )));
        }
        Ok(Some(Window {
            page,
            total_pages,
            offset: (page - 1) * self.per_page,
            limit: self.per_page,
        }))
    }
}

/// The link to another page of the same listing, shaped as monitor-server-api's `url_for` shapes
/// it: a collection's root keeps its trailing slash (`/api/v1/sessions/?page=2`), any deeper
/// route has none (`/api/v1/sessions/<h>/metrics?page=2`); the query string is the request's,
/// `page` replaced where it was or appended, every other parameter kept as sent.
fn page_url(req: &HttpRequest, page: u64) -> String {
    let path = req.path().trim_end_matches('/');
    let below_prefix = path.strip_prefix(API_PREFIX).unwrap_or(path);
    let slash = if below_prefix.matches('/').count() == 1 {
        "/"
    } else {
        ""
    };
    let page = format!("page={page}");
    let mut replaced = false;
    let mut query: Vec<&str> = Vec::new();
    for part in req.query_string().split('&') {
        if part == "page" || part.starts_with("page=") {
            if !replaced {
                query.push(&page);
                replaced = true;
            }
        } else if !part.is_empty() {
            query.push(part);
        }
    }
    if !replaced {
        query.push(&page);
    }
    format!("{path}{slash}?{}", query.join("&"))
}

/// The 200 answer for one page of a listing, written into one buffer as the page is read:
/// `extra` fields (such as the component a list belongs to), the rows under `key` (`metrics`,
/// `sessions`, ...), then the paging links and the number of pages, in this order.
///
/// The rows are written by the selection itself ([`crate::db::Selection::write_page`]), so a
/// page goes from SQLite's rows to the response body without a `serde_json::Value` in between.
pub struct PageBody {
    json: Vec<u8>,
}

impl PageBody {
    /// Opens the body: `{`, the `extra` fields, and `key`, ready for the rows' array.
    pub fn start(extra: &Map<String, Value>, key: &str) -> Result<Self, ApiError> {
        let mut body = PageBody { json: Vec::new() };
        body.json.push(b'{');
        for (name, value) in extra {
            body.field(name, value)?;
            body.json.push(b',');
        }
        body.name(key)?;
        Ok(body)
    }

    /// Where the rows' JSON array goes, once, right after [`PageBody::start`].
    pub fn rows(&mut self) -> &mut Vec<u8> {
        &mut self.json
    }

    /// Closes the body with `prev_url` and `next_url` (`null` where there is no such page, so a
    /// client may always read both; a link keeps every other query parameter of `req`) and
    /// `total_page`, and answers it.
    pub fn finish(mut self, req: &HttpRequest, window: Window) -> Result<HttpResponse, ApiError> {
        let prev = (window.page > 1).then(|| page_url(req, window.page - 1));
        let next = (window.page < window.total_pages).then(|| page_url(req, window.page + 1));
        self.json.push(b',');
        self.field("prev_url", &prev)?;
        self.json.push(b',');
        self.field("next_url", &next)?;
        self.json.push(b',');
        self.field("total_page", &window.total_pages)?;
        self.json.push(b'}');
        Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(self.json))
    }

    /// `"name":value`.
    fn field(&mut self, name: &str, value: &impl Serialize) -> Result<(), ApiError> {
        self.name(name)?;
        self.write(value)
    }

    /// `"name":`.
    fn name(&mut self, name: &str) -> Result<(), ApiError> {
        self.write(name)?;
        self.json.push(b':');
        Ok(())
    }

    fn write(&mut self, value: &(impl Serialize + ?Sized)) -> Result<(), ApiError> {
        serde_json::to_writer(&mut self.json, value).map_err(|err| {
            log::error!("cannot serialise a listing's envelope: {err}");
            ApiError::Internal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(page: i64, per_page: u64) -> PageRequest {
        PageRequest { page, per_page }
    }

    #[test]
    fn negative_pages_count_from_the_end() {
        let last = request(-1, 10).window(25).unwrap().unwrap();
        assert_eq!((last.page, last.offset, last.total_pages), (3, 20, 3));
        let first = request(-3, 10).window(25).unwrap().unwrap();
        assert_eq!(first.page, 1);
        assert!(request(-4, 10).window(25).is_err());
    }

    #[test]
    fn a_page_past_the_end_is_not_found_and_an_empty_collection_has_no_page() {
        assert!(request(4, 10).window(25).is_err());
        assert_eq!(request(1, 10).window(0).unwrap(), None);
    }
}
