//! What the router's operations need from a cell (admin role only): health and load, the
//! regions it holds, region export/import for moves, and the cell map it is pushed.
//!
//! Export pages by restaurant id (`after`), so a move that stops half-way resumes where it
//! stopped; import is an upsert, so replaying a page changes nothing.

use super::dto::ErrorBody;
use super::error::ApiError;
use super::extract::{AppJson, AppPath, AppQuery, Auth};
use crate::app::App;
use crate::auth::Principal;
use axum::extract::State;
use catalog::{Menu, Restaurant};
use cellmap::{CellMap, RegionKey};
use domain::RestaurantId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest export page.
const MAX_PAGE: usize = 1_000;

/// Import pages carry whole menus (a demo restaurant with its menu is ~17 KiB), far above the
/// public API's request limit; only admins reach these routes.
pub const MAX_ADMIN_BODY_BYTES: usize = 32 * 1024 * 1024;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(regions))
        .routes(routes!(export_region))
        .routes(routes!(import_region))
        .routes(routes!(put_cellmap))
        // Inner to the router-wide limit, so it wins for these routes.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_ADMIN_BODY_BYTES))
}

fn require_admin(who: &Principal) -> Result<(), ApiError> {
    match who {
        Principal::Admin => Ok(()),
        _ => Err(ApiError::Forbidden("admin role required".into())),
    }
}

fn parse_region(s: &str) -> Result<RegionKey, ApiError> {
    s.parse()
        .map_err(|e: String| ApiError::bad_request("request.invalid_region", e))
}

/// The cell's QUIC gateway, as drivers must reach it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuicInfo {
    pub addr: String,
    pub server_name: String,
    /// PEM of the dev CA, when the gateway runs with generated certificates.
    pub ca_pem: Option<String>,
    pub fingerprint: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    pub cell_id: u16,
    pub name: String,
    /// Version of the last cell map the router pushed (0: none yet).
    pub map_version: u64,
    /// Orders not yet delivered or cancelled: a drain ends when this is 0.
    pub active_orders: u64,
    pub drivers_online: u64,
    pub restaurants: u64,
    pub quic: Option<QuicInfo>,
}

#[utoipa::path(get, path = "/api/v1/admin/status", security(("bearer" = [])),
    responses((status = 200, body = StatusResponse), (status = 403, body = ErrorBody)))]
async fn status(
    State(app): State<App>,
    Auth(who): Auth,
) -> Result<axum::Json<StatusResponse>, ApiError> {
    require_admin(&who)?;
    let active = crate::orders::repo::count_active(&**app.kv())
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(StatusResponse {
        cell_id: app.config().cell.id as u16,
        name: app.config().cell.name.clone(),
        map_version: app.cell_map().version,
        active_orders: active,
        drivers_online: app.dispatch().geo().len() as u64,
        restaurants: app.catalog().len() as u64,
        quic: app.quic_info().cloned(),
    }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RegionsResponse {
    /// H3 region (resolution 5) → restaurants this cell holds in it.
    #[schema(value_type = BTreeMap<String, u64>)]
    pub regions: BTreeMap<RegionKey, u64>,
}

#[utoipa::path(get, path = "/api/v1/admin/regions", security(("bearer" = [])),
    responses((status = 200, body = RegionsResponse), (status = 403, body = ErrorBody)))]
async fn regions(
    State(app): State<App>,
    Auth(who): Auth,
) -> Result<axum::Json<RegionsResponse>, ApiError> {
    require_admin(&who)?;
    let mut regions = BTreeMap::new();
    for (region, n) in app.catalog().region_counts() {
        regions.insert(RegionKey(region), n as u64);
    }
    Ok(axum::Json(RegionsResponse { regions }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RegionEntry {
    #[schema(value_type = Object)]
    pub restaurant: Restaurant,
    #[schema(value_type = Object)]
    pub menu: Menu,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ExportPage {
    pub restaurants: Vec<RegionEntry>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next_after: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ExportQuery {
    /// Restaurant id to continue after (exclusive).
    after: Option<String>,
    /// Page size, 1..=1000 (default 200).
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/admin/regions/{region}/export", params(("region" = String, Path), ExportQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ExportPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn export_region(
    State(app): State<App>,
    Auth(who): Auth,
    AppPath(region): AppPath<String>,
    AppQuery(q): AppQuery<ExportQuery>,
) -> Result<axum::Json<ExportPage>, ApiError> {
    require_admin(&who)?;
    let region = parse_region(&region)?;
    let after = match q.after.as_deref() {
        None | Some("") => None,
        Some(s) => Some(super::restaurants::parse_restaurant(s)?),
    };
    let limit = q.limit.unwrap_or(200);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "request.invalid_limit",
            format!("limit must be 1..={MAX_PAGE}"),
        ));
    }
    let (page, more) = app.catalog().export_region_page(region.0, after, limit);
    let next_after = more
        .then(|| page.last().map(|(r, _)| r.id.to_string()))
        .flatten();
    let page: Vec<RegionEntry> = page
        .into_iter()
        .map(|(restaurant, menu)| RegionEntry { restaurant, menu })
        .collect();
    Ok(axum::Json(ExportPage {
        restaurants: page,
        next_after,
    }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ImportRequest {
    pub restaurants: Vec<RegionEntry>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ImportResponse {
    pub imported: u64,
    /// Restaurants of the region this cell holds after the import.
    pub total_in_region: u64,
}

#[utoipa::path(post, path = "/api/v1/admin/regions/{region}/import", params(("region" = String, Path)),
    request_body = ImportRequest, security(("bearer" = [])),
    responses((status = 200, body = ImportResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn import_region(
    State(app): State<App>,
    Auth(who): Auth,
    AppPath(region): AppPath<String>,
    AppJson(req): AppJson<ImportRequest>,
) -> Result<axum::Json<ImportResponse>, ApiError> {
    require_admin(&who)?;
    let region = parse_region(&region)?;
    let mut batch = Vec::with_capacity(req.restaurants.len());
    for e in req.restaurants {
        let in_region = RestaurantId::region(e.restaurant.id).is_ok_and(|r| r == region.0);
        if !in_region {
            return Err(ApiError::bad_request(
                "import.wrong_region",
                format!("restaurant {} is not in region {region}", e.restaurant.id),
            ));
        }
        batch.push((e.restaurant, e.menu));
    }
    let imported = app.catalog().import(batch).await.map_err(|e| match e {
        catalog::CatalogError::Invalid(v) => {
            ApiError::bad_request("catalog.invalid", v.to_string())
        }
        other => ApiError::internal(other),
    })?;
    metrics::counter!("cell_region_imports_total").increment(imported as u64);
    Ok(axum::Json(ImportResponse {
        imported: imported as u64,
        total_in_region: app.catalog().region_ids(region.0).len() as u64,
    }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MapAck {
    /// The version the cell now holds (an older push is ignored).
    pub version: u64,
}

#[utoipa::path(put, path = "/api/v1/admin/cellmap", request_body(content = Object), security(("bearer" = [])),
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
