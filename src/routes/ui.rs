//! The dashboard at `GET /`: a page of plain HTML, CSS and JavaScript modules embedded in the
//! binary, which draws the runs, the slowest and hungriest tests, trend charts and comparisons
//! from the JSON API under `/api/v1`. Nothing is built with npm and nothing is fetched from
//! another origin: the Content-Security-Policy sent with every file forbids it.
//!
//! The files hold no data, so they are served without a token even when `--read-token` is set
//! ([`is_public`]); the page asks for the token when the API answers 401.

use actix_web::http::header;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;

/// Where the assets are served from; `index.html` refers to them under this path.
const ASSET_PREFIX: &str = "/dashboard/";

/// The page itself, served at `/` and `/index.html`.
const INDEX: &str = include_str!("../static/dashboard/index.html");

/// Every asset: its file name under [`ASSET_PREFIX`], its media type and its content.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        CSS,
        include_str!("../static/dashboard/style.css"),
    ),
    ("app.js", JS, include_str!("../static/dashboard/app.js")),
    ("api.js", JS, include_str!("../static/dashboard/api.js")),
    ("dom.js", JS, include_str!("../static/dashboard/dom.js")),
    ("chart.js", JS, include_str!("../static/dashboard/chart.js")),
    (
        "filters.js",
        JS,
        include_str!("../static/dashboard/filters.js"),
    ),
    ("runs.js", JS, include_str!("../static/dashboard/runs.js")),
    ("tests.js", JS, include_str!("../static/dashboard/tests.js")),
    (
        "changes.js",
        JS,
        include_str!("../static/dashboard/changes.js"),
    ),
    (
        "compare.js",
        JS,
        include_str!("../static/dashboard/compare.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../static/dashboard/favicon.svg"),
    ),
];

const CSS: &str = "text/css; charset=utf-8";

const JS: &str = "text/javascript; charset=utf-8";

/// Same origin only: scripts, styles, images and API calls come from this server, nothing runs
/// inline, and no other site may frame the page.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Whether a request is for one of the dashboard's files, which the token check lets through:
/// they are the same for everyone and hold no data.
pub fn is_public(method: &Method, path: &str) -> bool {
    let reading = matches!(*method, Method::GET | Method::HEAD);
    reading
        && (path == "/"
            || path == "/index.html"
            || path
                .strip_prefix(ASSET_PREFIX)
                .is_some_and(|name| ASSETS.iter().any(|(file, _, _)| *file == name)))
}

/// Registers `/`, `/index.html` and the assets. Called before [`crate::routes::configure`],
/// whose default service answers every other path.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for path in ["/", "/index.html"] {
        cfg.service(
            web::resource(path)
                .route(web::get().to(index))
                .route(web::head().to(index))
                .default_service(web::to(method_not_allowed)),
        );
    }
    cfg.service(
        web::resource("/dashboard/{file}")
            .route(web::get().to(asset))
            .route(web::head().to(asset))
            .default_service(web::to(method_not_allowed)),
    );
}

/// The files are read-only: any other method is the API's JSON 405.
async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed("GET, HEAD".to_owned()))
}

async fn index() -> HttpResponse {
    respond("text/html; charset=utf-8", INDEX)
}

async fn asset(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let name = req.match_info().query("file");
    ASSETS
        .iter()
        .find(|(file, _, _)| *file == name)
        .map(|(_, media_type, body)| respond(media_type, body))
        .ok_or_else(|| ApiError::NotFound(format!("There is no dashboard file {name:?}.")))
}

/// `no-cache`: the files change with the binary, and a page kept from before an upgrade would
/// talk to a newer API; asking again costs nothing on a server this close.
fn respond(media_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, media_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_dashboards_own_files_are_public() {
        assert!(is_public(&Method::GET, "/"));
        assert!(is_public(&Method::GET, "/index.html"));
        assert!(is_public(&Method::GET, "/dashboard/app.js"));
        assert!(!is_public(&Method::POST, "/"));
        assert!(!is_public(&Method::GET, "/dashboard/secret.db"));
        assert!(!is_public(&Method::GET, "/api/v1/metrics"));
        assert!(!is_public(&Method::GET, "/dashboard/../api/v1/metrics"));
    }
}
