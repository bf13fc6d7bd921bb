//! Lets a path carry a trailing slash and repeated slashes (`//api//v1//metrics//`, as
//! pytest-monitor sends with a base URL ending in `/`): they are trimmed and folded before routing.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::uri::{PathAndQuery, Uri};
use actix_web::middleware::Next;

/// The middleware that lets a path carry a trailing slash and repeated slashes
/// (`//api//v1//metrics//`, as pytest-monitor sends with a base URL ending in `/`): it trims the
/// trailing slashes and folds runs of slashes before routing, as actix-web's `NormalizePath`
/// with `TrailingSlash::Trim` does. Written here because that one runs a regular expression over
/// every path, a tenth of what a POST cost the server; most paths need nothing, which a scan of
/// their bytes tells.
pub async fn normalize_path(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(uri) = normalized_uri(req.uri()) {
        req.match_info_mut().get_mut().update(&uri);
        req.head_mut().uri = uri;
    }
    next.call(req).await
}

/// `uri` with its path's trailing slashes trimmed and runs of slashes folded into one (the root
/// stays `/`); `None` when that changes nothing, or cannot be written as a URI.
fn normalized_uri(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let trailing = path.len() > 1 && path.ends_with('/');
    if !trailing && !path.contains("//") {
        return None;
    }
    let mut folded = String::with_capacity(path.len());
    for part in path.split('/').filter(|part| !part.is_empty()) {
        folded.push('/');
        folded.push_str(part);
    }
    if folded.is_empty() {
        folded.push('/');
    }
    if let Some(query) = uri.query() {
        folded.push('?');
        folded.push_str(query);
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(folded).ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(text: &str) -> Option<String> {
        normalized_uri(&text.parse::<Uri>().unwrap()).map(|uri| uri.to_string())
    }

    #[test]
    fn trailing_and_repeated_slashes_are_folded_and_the_query_kept() {
        assert_eq!(normalized("/api/v1/metrics"), None);
        assert_eq!(normalized("/"), None);
        assert_eq!(
            normalized("/api/v1/metrics/").as_deref(),
            Some("/api/v1/metrics")
        );
        assert_eq!(
            normalized("//api//v1//metrics//?page=2&per_page=1").as_deref(),
            Some("/api/v1/metrics?page=2&per_page=1")
        );
        assert_eq!(normalized("///").as_deref(), Some("/"));
        assert_eq!(
            normalized("/api/v1/items/like/100%25/metrics/").as_deref(),
            Some("/api/v1/items/like/100%25/metrics")
        );
    }
}
