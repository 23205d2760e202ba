//! Operational endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document,
//! and the demo-only token endpoint.

use super::dto::{DevTokenRequest, DevTokenResponse};
use super::error::ApiError;
use super::extract::AppJson;
use crate::app::App;
use crate::auth::Principal;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::time::Duration;

pub(super) fn routes(openapi_json: String) -> Router<App> {
    Router::new()
        .route("/live", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let body = openapi_json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], body) }
            }),
        )
}

pub(super) fn dev_routes() -> Router<App> {
    Router::new().route("/api/v1/dev/token", post(dev_token))
}

/// Ready once the store is open and the catalog loaded (both happen before we serve), and
/// while the store accepts writes: after a failed commit it is 503 with the reason until the
/// store recovered, so a load balancer sends new orders elsewhere.
async fn ready(State(app): State<App>) -> impl IntoResponse {
    let fault = app.kv().fault();
    let status = if fault.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut body = serde_json::json!({
        "ready": fault.is_none(),
        "cell": app.config().cell.id,
        "restaurants": app.catalog().len(),
        "store": app.kv().backend_name(),
        "state": if fault.is_none() { "serving" } else { "unavailable" },
        "lease_fence": app.lease().fence(),
    });
    if let Some(reason) = fault {
        body["reason"] = serde_json::Value::String(format!("store unavailable: {reason}"));
    }
    (status, axum::Json(body))
}

async fn render_metrics(State(app): State<App>) -> impl IntoResponse {
    // The embedded store's single writer: every write of the cell queues behind it, so its
    // busy time (closures run + fsyncs) per second is the first thing to look at when write
    // latency grows. Read at scrape time from the store's own running totals.
    if let Some(s) = app.kv().commit_stats() {
        metrics::counter!("cell_store_commits_total").absolute(s.batches);
        metrics::counter!("cell_store_transactions_total").absolute(s.transactions);
        metrics::counter!("cell_store_run_microseconds_total").absolute(s.run_micros);
        metrics::counter!("cell_store_commit_microseconds_total").absolute(s.commit_micros);
    }
    let body = app.metrics().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// Demo mode only: a token for any party, so a newcomer can drive the API with curl.
async fn dev_token(
    State(app): State<App>,
    AppJson(req): AppJson<DevTokenRequest>,
) -> Result<axum::Json<DevTokenResponse>, ApiError> {
    let id: u64 = req
        .sub
        .parse()
        .map_err(|_| ApiError::bad_request("request.invalid_sub", "sub must be a decimal id"))?;
    let who = Principal::from_role(req.role, id);
    let ttl = crate::auth::capped_ttl(req.role, Duration::from_secs(app.config().auth.token_ttl_s));
    let token = app.jwt().issue(who, req.name, ttl, app.now());
    Ok(axum::Json(DevTokenResponse {
        token,
        expires_in_s: ttl.as_secs(),
    }))
}
