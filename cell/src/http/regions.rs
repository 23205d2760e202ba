//! Region moves, cell side (admin role only): the regions this cell holds restaurants in, and
//! a region's catalog exported and imported page by page while the router moves it.
//!
//! Export pages by restaurant id (`after`), so a move that stops half-way resumes where it
//! stopped; import is an upsert, so replaying a page changes nothing. The wire types and
//! paths are the router's too: they live in `cellapi`.

use super::admin::require_admin;
use super::dto::ErrorBody;
use super::error::ApiError;
use super::extract::{AppJson, AppPath, AppQuery, Auth};
use crate::app::App;
use axum::extract::State;
use catalog::{Menu, Restaurant};
use cellapi::{
    DEFAULT_EXPORT_PAGE, ExportPage, ExportQuery, ImportRequest, ImportResponse, MAX_EXPORT_PAGE,
    RegionEntry, RegionsResponse,
};
use cellmap::RegionKey;
use domain::RestaurantId;
use std::collections::BTreeMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// A restaurant with its menu as this cell reads and writes it; the router keeps it opaque.
type CatalogEntry = RegionEntry<Restaurant, Menu>;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(regions))
        .routes(routes!(export_region))
        .routes(routes!(import_region))
        // Inner to the router-wide limit, so it wins for these routes.
        .layer(axum::extract::DefaultBodyLimit::max(
            cellapi::MAX_ADMIN_BODY_BYTES,
        ))
}

/// A path segment that is not a resolution-5 H3 cell names no region: 404, like an unknown
/// id. (Which strings are H3 cells is more than a pattern can say.)
fn parse_region(s: &str) -> Result<RegionKey, ApiError> {
    s.parse()
        .map_err(|_: String| ApiError::not_found("region", format!("{s:?}")))
}

#[utoipa::path(get, path = cellapi::paths::REGIONS, security(("bearer" = [])),
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

#[utoipa::path(get, path = cellapi::paths::REGION_EXPORT, params(("region" = String, Path), ExportQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ExportPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn export_region(
    State(app): State<App>,
    Auth(who): Auth,
    AppPath(region): AppPath<String>,
    AppQuery(q): AppQuery<ExportQuery>,
) -> Result<axum::Json<ExportPage<CatalogEntry>>, ApiError> {
    require_admin(&who)?;
    let region = parse_region(&region)?;
    let after = match q.after.as_deref() {
        None | Some("") => None,
        Some(s) => Some(super::restaurants::parse_restaurant(s)?),
    };
    let limit = q.limit.unwrap_or(DEFAULT_EXPORT_PAGE);
    if !(1..=MAX_EXPORT_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "request.invalid_limit",
            format!("limit must be 1..={MAX_EXPORT_PAGE}"),
        ));
    }
    let (page, more) = app
        .catalog()
        .export_region_page(region.0, after, limit)
        .await
        .map_err(super::restaurants::catalog_error)?;
    let next_after = more
        .then(|| page.last().map(|(r, _)| r.id.to_string()))
        .flatten();
    let page: Vec<CatalogEntry> = page
        .into_iter()
        .map(|(restaurant, menu)| RegionEntry { restaurant, menu })
        .collect();
    Ok(axum::Json(ExportPage {
        restaurants: page,
        next_after,
    }))
}

#[utoipa::path(post, path = cellapi::paths::REGION_IMPORT, params(("region" = String, Path)),
    request_body = ImportRequest, security(("bearer" = [])),
    responses((status = 200, body = ImportResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn import_region(
    State(app): State<App>,
    Auth(who): Auth,
    AppPath(region): AppPath<String>,
    AppJson(req): AppJson<ImportRequest<CatalogEntry>>,
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
