//! CORS for the tracking endpoints, so analytics.js on a web page of another origin can
//! post events: it sends `Authorization: Basic`, which makes the browser ask first
//! (a preflight), and `X-Retry-Count` when it sends an event again. Health, metrics and
//! every other path get no CORS headers.

use std::time::Duration;

use axum::http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use inmoment_config::AllowedOrigins;

/// analytics.js numbers its retries with it: a preflight that did not allow it would fail
/// every retry.
const X_RETRY_COUNT: HeaderName = HeaderName::from_static("x-retry-count");

/// How long a browser may reuse a preflight answer (Chromium caps it at 2 hours).
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(7200);

/// The CORS layer: preflights answered, and `Access-Control-Allow-Origin` on every answer
/// of a tracking path (errors included) for an allowed origin.
pub fn layer(origins: &AllowedOrigins) -> CorsLayer {
    let origins = origins.clone();
    let allow = AllowOrigin::predicate(move |origin: &HeaderValue, request: &Parts| {
        is_tracking_path(request.uri.path()) && allowed(&origins, origin)
    });
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([AUTHORIZATION, CONTENT_TYPE, CONTENT_ENCODING, X_RETRY_COUNT])
        .max_age(PREFLIGHT_MAX_AGE)
}

/// The Segment API paths (`/v1/…`, also with the doubled slash some clients send).
fn is_tracking_path(path: &str) -> bool {
    path.starts_with("/v1/") || path.starts_with("//v1/")
}

fn allowed(origins: &AllowedOrigins, origin: &HeaderValue) -> bool {
    match origins {
        AllowedOrigins::Any => true,
        AllowedOrigins::List(list) => origin
            .to_str()
            .is_ok_and(|origin| list.iter().any(|a| a.eq_ignore_ascii_case(origin))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tracking_paths_and_listed_origins() {
        assert!(is_tracking_path("/v1/track") && is_tracking_path("//v1/b"));
        assert!(!is_tracking_path("/metrics") && !is_tracking_path("/v1"));
        let list = AllowedOrigins::List(vec!["https://shop.example".into()]);
        assert!(allowed(
            &list,
            &HeaderValue::from_static("https://SHOP.example")
        ));
        assert!(!allowed(
            &list,
            &HeaderValue::from_static("https://evil.example")
        ));
        assert!(allowed(
            &AllowedOrigins::Any,
            &HeaderValue::from_static("null")
        ));
    }
}
