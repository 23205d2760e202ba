//! Location history for staff (`crate::history`): the dispute view of one delivery's path
//! (`GET /api/v1/admin/deliveries/{id}/path?reason=…`), dispute holds
//! (`POST /api/v1/admin/deliveries/{id}/hold`) and the audit chain's check
//! (`GET /api/v1/admin/audit/verify`, admins only).
//!
//! Every call is audited, and the audit record is committed before anything is read: if it
//! cannot be written the answer is 503 and carries no data.

use super::contract::parse_id;
use super::dto::ErrorBody;
use super::error::ApiError;
use super::extract::{AppJson, AppPath, AppQuery};
use crate::app::App;
use crate::history::audit::{self, Entry, Verdict};
use crate::history::view::{self, DisputeView};
use crate::history::{History, HistoryError, Hold};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use domain::{DeliveryId, OrderId};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest `reason`, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Longest hold, from now.
pub const MAX_HOLD_MS: i64 = 366 * crate::history::DAY_MS;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(path))
        .routes(routes!(hold))
        .routes(routes!(verify))
}

/// A staff caller (admin or support), the name their token carries, and where they called
/// from.
struct Staff {
    role: &'static str,
    actor: String,
    client: String,
}

impl FromRequestParts<App> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let super::extract::Staff { role, name } =
            super::extract::Staff::from_request_parts(parts, app).await?;
        Ok(Staff {
            role,
            actor: name.unwrap_or_else(|| role.to_owned()),
            client: client_of(parts),
        })
    }
}

/// Where a request came from, as the audit log records it.
pub(super) fn client_of(parts: &Parts) -> String {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
    // The forwarded address is recorded beside the peer, not instead of it: a client can
    // send the header itself.
    match parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(f) => format!(
            "{peer} (x-forwarded-for: {})",
            f.chars().take(200).collect::<String>()
        ),
        None => peer,
    }
}

fn history(app: &App) -> Result<&Arc<History>, ApiError> {
    app.history().ok_or_else(|| ApiError::Absent {
        code: "history.disabled",
        message: "location history is not enabled in this cell ([history] enabled = false)".into(),
    })
}

fn reason_of(r: Option<String>) -> Result<String, ApiError> {
    let r = r.unwrap_or_default();
    let r = r.trim();
    if r.is_empty() {
        return Err(ApiError::bad_request(
            "history.reason_required",
            "a reason (a ticket id) is required to read location history",
        ));
    }
    if r.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::bad_request(
            "history.reason_too_long",
            format!("reason is longer than {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(r.to_owned())
}

/// Commits the audit record; a failure is a 503 before anything is read.
async fn audited(
    app: &App,
    staff: &Staff,
    action: &str,
    delivery: Option<DeliveryId>,
    reason: &str,
) -> Result<(), ApiError> {
    let entry = Entry {
        at: app.now().0,
        actor: staff.actor.clone(),
        role: staff.role.to_owned(),
        action: action.to_owned(),
        delivery_id: delivery.map(|d| d.0.to_string()),
        reason: reason.to_owned(),
        client: staff.client.clone(),
    };
    match audit::append(&**app.kv(), entry).await {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, action, "could not write the audit record: refusing the access");
            Err(ApiError::Unavailable {
                code: "audit.unavailable",
                message: "the access could not be audited, so nothing is returned; retry later"
                    .into(),
                retry_after_s: 2,
            })
        }
    }
}

fn history_error(e: HistoryError) -> ApiError {
    match e {
        HistoryError::NotFound(d) => ApiError::not_found("path of delivery", d),
        HistoryError::Purged(d) => ApiError::Absent {
            code: "history.purged",
            message: format!("the path of delivery {d} is past its retention and was destroyed"),
        },
        HistoryError::Store(s) => super::error::store_error(s),
        e => ApiError::internal(e),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PathParams {
    /// Why the path is read (a ticket id); stored in the audit log. Required: without it
    /// (or with only white space) the answer is 400 `history.reason_required`.
    #[param(required = true, value_type = String, min_length = 1, max_length = 500, pattern = r".*\S.*")]
    pub reason: Option<String>,
}

/// The dispute view of a delivery: its path (GeoJSON and encoded polyline), the order's
/// status timeline and the distance to the dropoff at `delivered`. Admins and support staff
/// only, with a reason; every read is audited before any data is returned.
#[utoipa::path(get, path = "/api/v1/admin/deliveries/{id}/path", params(("id" = String, Path), PathParams),
    security(("bearer" = [])),
    responses((status = 200, body = DisputeView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn path(
    State(app): State<App>,
    staff: Staff,
    AppPath(id): AppPath<String>,
    AppQuery(p): AppQuery<PathParams>,
) -> Result<axum::Json<DisputeView>, ApiError> {
    let delivery = DeliveryId(parse_id("a delivery id", &id)?);
    let reason = reason_of(p.reason)?;
    let h = history(&app)?;
    audited(&app, &staff, "path.read", Some(delivery), &reason).await?;
    metrics::counter!("cell_history_path_reads_total", "account" => staff.actor.clone(), "role" => staff.role)
        .increment(1);
    let (idx, fixes) = h.read_path(delivery).await.map_err(history_error)?;
    let hold = h.hold_of(delivery).await.map_err(history_error)?;
    let (order, timeline) = crate::orders::repo::get_with_history(&**app.kv(), OrderId(idx.order))
        .await?
        .ok_or_else(|| ApiError::not_found("order", idx.order))?;
    Ok(axum::Json(view::build(
        delivery, &order, &timeline, &fixes, hold,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// Why (a dispute or ticket id); stored with the hold and in the audit log.
    #[schema(min_length = 1, max_length = 500, pattern = r".*\S.*")]
    pub reason: String,
    /// When the hold ends, ms since the Unix epoch: in the future, at most 366 days ahead
    /// (else 422 `history.invalid_expiry`).
    pub expires_at: i64,
}

/// Keeps a delivery's path past the retention purge until `expires_at` (a dispute hold).
/// Admins and support staff; audited.
#[utoipa::path(post, path = "/api/v1/admin/deliveries/{id}/hold", params(("id" = String, Path)),
    request_body = HoldRequest, security(("bearer" = [])),
    responses((status = 200, body = Hold), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn hold(
    State(app): State<App>,
    staff: Staff,
    AppPath(id): AppPath<String>,
    AppJson(req): AppJson<HoldRequest>,
) -> Result<axum::Json<Hold>, ApiError> {
    let delivery = DeliveryId(parse_id("a delivery id", &id)?);
    let reason = reason_of(Some(req.reason))?;
    let now = app.now();
    if req.expires_at <= now.0 || req.expires_at > now.0.saturating_add(MAX_HOLD_MS) {
        return Err(ApiError::Unprocessable {
            code: "history.invalid_expiry",
            message: "expires_at must be in the future and at most 366 days ahead".into(),
        });
    }
    let h = history(&app)?;
    audited(&app, &staff, "hold.place", Some(delivery), &reason).await?;
    let hold = Hold {
        delivery_id: delivery.0.to_string(),
        reason,
        expires_at: req.expires_at,
        placed_at: now.0,
        placed_by: staff.actor.clone(),
        role: staff.role.to_owned(),
    };
    let hold = h.place_hold(delivery, hold).await.map_err(history_error)?;
    tracing::info!(delivery = %delivery, role = staff.role, expires_at = hold.expires_at, "location history hold placed");
    Ok(axum::Json(hold))
}

/// Checks the audit log's hash chain from its first record: a record edited, removed or
/// reordered is reported with its sequence number. Admins only; audited itself.
#[utoipa::path(get, path = "/api/v1/admin/audit/verify", security(("bearer" = [])),
    responses((status = 200, body = Verdict), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn verify(State(app): State<App>, staff: Staff) -> Result<axum::Json<Verdict>, ApiError> {
    if staff.role != "admin" {
        return Err(ApiError::Forbidden("admin role required".into()));
    }
    audited(&app, &staff, "audit.verify", None, "chain check").await?;
    let v = audit::verify(&**app.kv()).await.map_err(history_error)?;
    if !v.intact {
        tracing::error!(broken_at = ?v.broken_at, problem = ?v.problem, "the audit log's hash chain is broken");
    }
    Ok(axum::Json(v))
}
