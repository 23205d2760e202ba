//! Admin-only endpoints of the cell (JSON under `/api/v1/admin`), except region moves
//! (`regions.rs`): the cell's status and load and the cell-map push, both for the router, and
//! per-driver ping counts, for load generators.
//!
//! The status and map-push wire types and paths are the router's too: they live in `cellapi`.

use super::dto::ErrorBody;
use super::error::ApiError;
use super::extract::{AppJson, AppQuery, Auth};
use crate::app::App;
use crate::auth::Principal;
use axum::extract::State;
use cellapi::{CellStatus, MapAck};
use cellmap::CellMap;
use domain::DriverId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(put_cellmap))
        .routes(routes!(pings))
        // A whole cell map can outgrow the public API's request limit; inner to the
        // router-wide limit, so it wins for these routes.
        .layer(axum::extract::DefaultBodyLimit::max(
            cellapi::MAX_ADMIN_BODY_BYTES,
        ))
}

pub(super) fn require_admin(who: &Principal) -> Result<(), ApiError> {
    match who {
        Principal::Admin => Ok(()),
        _ => Err(ApiError::Forbidden("admin role required".into())),
    }
}

#[utoipa::path(get, path = cellapi::paths::STATUS, security(("bearer" = [])),
    responses((status = 200, body = CellStatus), (status = 403, body = ErrorBody)))]
async fn status(
    State(app): State<App>,
    Auth(who): Auth,
) -> Result<axum::Json<CellStatus>, ApiError> {
    require_admin(&who)?;
    let active = crate::orders::repo::count_active(&**app.kv())
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(CellStatus {
        cell_id: app.config().cell.id as u16,
        name: app.config().cell.name.clone(),
        map_version: app.cell_map().version,
        active_orders: active,
        drivers_online: app.dispatch().geo().len() as u64,
        restaurants: app.catalog().len() as u64,
        quic: app.quic_info().cloned(),
        drain: app.drain().progress(),
        drivers_sample: driver_sample(&app),
    }))
}

/// Up to [`cellapi::MAX_DRIVER_SAMPLE`] live drivers near the centres of the regions this
/// cell owns (a region is ~9 km across: 12 km from its centre covers it), shared out evenly
/// between the regions, for the operations console's map.
fn driver_sample(app: &App) -> Vec<cellapi::DriverDot> {
    let map = app.cell_map();
    let Ok(me) = domain::CellId::new(app.config().cell.id) else {
        return Vec::new();
    };
    let regions = map.regions_of(me);
    if regions.is_empty() {
        return Vec::new();
    }
    let per_region = (cellapi::MAX_DRIVER_SAMPLE / regions.len()).max(1);
    let filter = geostore::Filter::states(
        &[
            geostore::DriverState::Available,
            geostore::DriverState::Offered,
            geostore::DriverState::OnDelivery,
        ],
        app.now().0.max(0) as u64,
    );
    let mut out = Vec::new();
    for r in regions {
        let centre = h3o::LatLng::from(r.0.cell());
        let hits = app
            .dispatch()
            .geo()
            .nearest(centre.lat(), centre.lng(), 12_000.0, per_region, filter)
            .unwrap_or_default();
        out.extend(hits.into_iter().map(|h| {
            cellapi::DriverDot {
                lat: h.driver.lat,
                lng: h.driver.lng,
                state: match h.driver.state {
                    geostore::DriverState::Available => "available",
                    geostore::DriverState::Offered => "offered",
                    geostore::DriverState::OnDelivery => "on_delivery",
                    geostore::DriverState::Offline => "offline",
                }
                .into(),
            }
        }));
        if out.len() >= cellapi::MAX_DRIVER_SAMPLE {
            break;
        }
    }
    out.truncate(cellapi::MAX_DRIVER_SAMPLE);
    out
}

#[utoipa::path(put, path = cellapi::paths::CELL_MAP, request_body(content = Object), security(("bearer" = [])),
    responses((status = 200, body = MapAck), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn put_cellmap(
    State(app): State<App>,
    Auth(who): Auth,
    AppJson(map): AppJson<CellMap>,
) -> Result<axum::Json<MapAck>, ApiError> {
    require_admin(&who)?;
    let version = app.set_cell_map(map);
    Ok(axum::Json(MapAck { version }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PingsParams {
    /// Only this driver.
    #[param(pattern = "^[0-9]{1,19}$")]
    pub driver: Option<String>,
}

/// One driver's pings since the cell started (kept across reconnects).
#[derive(Serialize, ToSchema)]
pub struct DriverPings {
    pub driver_id: String,
    /// Pings that arrived and decoded.
    pub received: u64,
    /// Written to the geostore.
    pub accepted: u64,
    /// Failed a check (coordinates, clock, speed).
    pub rejected: u64,
    /// Dropped: sequence number not above one already seen in the session.
    pub stale: u64,
    /// Dropped: over the driver's ping rate limit (`dispatch.pings.max_pings_per_s`).
    pub rate_limited: u64,
    /// Highest `LocationPing.seq` seen (0: none).
    pub max_seq: u64,
}

#[derive(Serialize, ToSchema, Default)]
pub struct PingTotals {
    pub received: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub stale: u64,
    pub rate_limited: u64,
}

#[derive(Serialize, ToSchema)]
pub struct PingsResponse {
    pub drivers: Vec<DriverPings>,
    /// Sums over `drivers`.
    pub totals: PingTotals,
}

/// Per-driver ping accounting, so a load generator can measure loss per driver from
/// `max_seq` and `received`. Admins only.
#[utoipa::path(get, path = "/api/v1/admin/pings", params(PingsParams), security(("bearer" = [])),
    responses((status = 200, body = PingsResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn pings(
    State(app): State<App>,
    Auth(who): Auth,
    AppQuery(p): AppQuery<PingsParams>,
) -> Result<axum::Json<PingsResponse>, ApiError> {
    if !matches!(who, Principal::Admin) {
        return Err(ApiError::Forbidden("only admins may do this".into()));
    }
    let only = p
        .driver
        .map(|d| super::contract::parse_id("a driver id", &d).map(DriverId))
        .transpose()?;
    let mut totals = PingTotals::default();
    let drivers = app
        .dispatch()
        .ping_counts(only)
        .into_iter()
        .map(|(d, c)| {
            totals.received += c.received;
            totals.accepted += c.accepted;
            totals.rejected += c.rejected;
            totals.stale += c.stale;
            totals.rate_limited += c.rate_limited;
            DriverPings {
                driver_id: d.0.to_string(),
                received: c.received,
                accepted: c.accepted,
                rejected: c.rejected,
                stale: c.stale,
                rate_limited: c.rate_limited,
                max_seq: c.max_seq,
            }
        })
        .collect();
    Ok(axum::Json(PingsResponse { drivers, totals }))
}
