//! The endpoints of a standby instance (see `server::standby`): `/live`, a `/ready` that is
//! 503 with `"state": "standby"` and who holds the lease, and 503 `cell.standby` for
//! everything else.

use super::error::ApiError;
use crate::lease::Holder;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::sync::watch;

/// Set on every 503 a standby answers: nothing was done with the request.
pub const STANDBY_HEADER: &str = "x-cell-standby";

/// The standby's router; `holder` is the instance holding the lease, as last seen.
pub fn standby_router(cell: u32, holder: watch::Receiver<Option<Holder>>) -> Router {
    Router::new()
        .route("/live", get(|| async { "ok" }))
        .route(
            "/ready",
            get(move || {
                let h = holder.borrow().clone();
                async move {
                    let mut body = serde_json::json!({
                        "ready": false,
                        "state": "standby",
                        "cell": cell,
                        "reason": "another instance holds this cell's lease",
                    });
                    if let Some(h) = h {
                        body["holder"] = h.incarnation.into();
                        body["holder_until_ms"] = h.until_ms.into();
                    }
                    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body))
                }
            }),
        )
        .fallback(|| async {
            let err = ApiError::Unavailable {
                code: "cell.standby",
                message: "this instance is a standby; another instance of the cell serves".into(),
                retry_after_s: 1,
            };
            // Tells the router the request was not taken, so it may send it again whatever
            // its method (the router's `hold`).
            ([(STANDBY_HEADER, "1")], err)
        })
}
