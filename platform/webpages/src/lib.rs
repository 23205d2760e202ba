//! The web pages people use: the customer page (`/`), the restaurant tablet (`/restaurant`)
//! and the operations console (`/ops`), with their scripts, styles and the vendored map
//! library under `/static/`. The files live in `web/` at the repository root and are compiled
//! into the binary (`build.rs` writes the table), so nothing is built or read from disk at
//! run time. The router serves them, and a cell does too for single-cell setups.
//!
//! The pages talk only to the public REST API, the WebSockets and the router's admin API.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The URL path it is served at.
    pub path: &'static str,
    pub content_type: &'static str,
    /// A strong ETag from the content's hash.
    pub etag: &'static str,
    pub body: &'static [u8],
}

/// Every embedded file, pages first.
pub static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The embedded file served at `path`, if any.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Whether `path` is one of the pages (HTML) rather than a static file.
pub fn is_page(path: &str) -> bool {
    matches!(path, "/" | "/restaurant" | "/ops")
}

/// The routes serving the pages and `/static/*`, for merging into a service's router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let get = axum::routing::get(serve);
    Router::new()
        .route("/", get.clone())
        .route("/restaurant", get.clone())
        .route("/ops", get.clone())
        .route("/static/{*file}", get)
}

async fn serve(req: Request) -> Response {
    let path = req.uri().path();
    let Some(a) = asset(path) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    // Pages are revalidated on every load (they name the scripts); static files may be
    // reused for a few minutes, then revalidated by ETag.
    let cache = if is_page(path) {
        "no-cache"
    } else {
        "public, max-age=300"
    };
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == a.etag));
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(a.content_type),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (header::ETAG, HeaderValue::from_static(a.etag)),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        // Scripts and styles only from here, connections only back here (REST + WebSocket):
        // the pages reach nothing beyond the platform.
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; media-src 'self' data:",
            ),
        ),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, a.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_and_its_scripts_are_embedded() {
        for p in ["/", "/restaurant", "/ops"] {
            let a = asset(p).expect("page embedded");
            assert!(a.content_type.starts_with("text/html"));
            let html = std::str::from_utf8(a.body).expect("utf-8");
            // Every script and stylesheet a page names is in the table.
            for part in html.split("/static/").skip(1) {
                let file = part.split('"').next().expect("a quoted path");
                assert!(
                    asset(&format!("/static/{file}")).is_some(),
                    "{p} names /static/{file}, which is not embedded"
                );
            }
        }
        assert!(asset("/static/vendor/leaflet/leaflet.js").is_some());
    }

    #[test]
    fn each_page_stays_under_300_kb_before_the_map_library() {
        for p in ["/", "/restaurant", "/ops"] {
            let html = std::str::from_utf8(asset(p).expect("page").body).expect("utf-8");
            let own: usize = html.len()
                + html
                    .split("/static/")
                    .skip(1)
                    .filter_map(|s| s.split('"').next())
                    .filter(|f| !f.starts_with("vendor/"))
                    .map(|f| asset(&format!("/static/{f}")).expect("embedded").body.len())
                    .sum::<usize>();
            assert!(
                own < 300 * 1024,
                "{p} is {own} bytes before the map library"
            );
        }
    }
}
