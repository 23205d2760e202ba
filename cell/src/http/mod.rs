//! The REST API (seed section 5, under `/api/v1`) and the operational endpoints.
//!
//! Only this module knows HTTP status codes: handlers return [`ApiError`], mapped once in
//! `error.rs`. Routes are registered through `utoipa-axum`, so the OpenAPI document served
//! at `/api/v1/openapi.json` is generated from the same handlers that serve the requests.
//!
//! # Layout
//! - `restaurants.rs`, `orders.rs`, `drivers.rs`: the public API, by party.
//! - `admin.rs`: admin-only endpoints: the cell's status and the cell-map push (the router
//!   calls both) and per-driver ping counts (load generators read them).
//! - `drift.rs`: payment drift found by reconciliation, admin-only.
//! - `flags.rs`: fraud flags for admins and support staff: the listing and the review.
//! - `history.rs`: location history for staff: the audited dispute view of a delivery's
//!   path, dispute holds, the audit chain's check.
//! - `privacy.rs`: which address fields each party sees of an order, the customer's export
//!   and erasure.
//! - `regions.rs`: region moves, admin-only: the regions held, export and import pages.
//! - `ops.rs`: `/live`, `/ready`, `/metrics`, the OpenAPI document, the demo token endpoint.
//! - `standby.rs`: what a standby instance serves while another holds the cell's lease.
//! - `contract.rs`: what the OpenAPI document says of every operation alike (shared error
//!   answers, id formats) and the id parser that matches it.
//! - `ws_doc.rs`: the WebSocket endpoints (served by `crate::tracking`) in the document.
//! - `dto.rs`: request and response bodies of the public API; `error.rs`: [`ApiError`] and
//!   its status mapping; `extract.rs`: extractors that answer rejections as [`ApiError`].
//!
//! The admin contract with the router (status, regions, export/import, map push: wire types,
//! paths, limits) lives in the `cellapi` crate, which the router's client uses too.

mod admin;
pub mod contract;
mod drift;
mod drivers;
pub mod dto;
mod earnings;
pub mod error;
pub mod extract;
mod flags;
mod history;
mod ops;
mod orders;
pub(crate) mod people;
pub(crate) mod privacy;
mod regions;
mod restaurants;
mod sandbox;
pub(crate) mod standby;
mod ws_doc;

use crate::app::App;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::time::{Duration, Instant};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;
pub use standby::standby_router;

/// Largest accepted request body. An order with 100 lines of customizations is ~20 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "Delivery city cell API", description = "Customer, restaurant and driver API of one city cell. Every amount is in integer cents; every id is a decimal string."),
    components(schemas(dto::ErrorBody)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document and the API routes, from one registration.
fn api() -> (Router<App>, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(restaurants::routes())
        .merge(orders::routes())
        .merge(drivers::routes())
        .merge(admin::routes())
        .merge(people::routes())
        .merge(privacy::routes())
        .merge(earnings::routes())
        .merge(flags::routes())
        .merge(history::routes())
        .merge(drift::routes())
        .merge(sandbox::routes())
        .merge(regions::routes());
    let (router, mut doc) = api.split_for_parts();
    ws_doc::add(&mut doc);
    // After the merge: a modifier on `ApiDoc` runs before any route is registered.
    utoipa::Modify::modify(&contract::SharedAnswers, &mut doc);
    (router, doc)
}

/// The OpenAPI document (also written by `cell openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// The whole HTTP service of a cell.
pub fn router(app: App) -> Router {
    let (api, doc) = api();
    let doc_json = doc
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    let timeout = Duration::from_millis(app.config().http.request_timeout_ms);
    let dev = if app.config().demo.enabled {
        ops::dev_routes()
    } else {
        Router::new()
    };
    api.merge(dev)
        .merge(crate::tracking::ws::routes())
        .merge(ops::routes(doc_json))
        // The web pages, for single-cell setups (the router serves the same files).
        .merge(webpages::routes())
        .fallback(|| async { ApiError::not_found("route", "for this path") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(track_metrics))
        .layer(middleware::from_fn_with_state(app.clone(), refuse_while_stopping))
        // Enforced by the body extractors (`AppJson`), so an oversized body gets our JSON
        // 413; tower-http's `RequestBodyLimitLayer` answered a too-large Content-Length
        // with a plain-text 413 before any handler ran.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::GATEWAY_TIMEOUT, timeout))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // Path and request id only: query strings can carry tokens and addresses.
            let path = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            tracing::info_span!("http", method = %req.method(), route = path.as_deref().unwrap_or("-"), request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(app)
}

/// While the cell stops (`App::stopping`), every request but `/live` is answered 503
/// `cell.stopping` without being taken, marked so the router sends it again whatever its
/// method (`x-cell-standby`, as a standby's), and with `Connection: close` so the router's
/// pooled connection goes before the listener does: a request written on a connection the
/// stopping cell closes could not be told apart from one it took.
async fn refuse_while_stopping(State(app): State<App>, req: Request, next: Next) -> Response {
    if !app.stopping() || req.uri().path() == "/live" {
        return next.run(req).await;
    }
    let mut resp = ApiError::Unavailable {
        code: "cell.stopping",
        message: "this cell is restarting; the request was not taken".into(),
        retry_after_s: 1,
    }
    .into_response();
    let h = resp.headers_mut();
    h.insert(
        standby::STANDBY_HEADER,
        axum::http::HeaderValue::from_static("1"),
    );
    h.insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    resp
}

/// Request count and latency per route and status, for `/metrics`.
async fn track_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("cell_http_requests_total", &labels).increment(1);
    metrics::histogram!("cell_http_request_duration_seconds", &labels[..2])
        .record(start.elapsed().as_secs_f64());
    resp
}
