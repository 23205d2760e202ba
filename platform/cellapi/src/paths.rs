//! Where the admin endpoints live. The cell registers its handlers at these paths (templates,
//! `{region}` as the OpenAPI document writes it); the router builds its URLs with the functions
//! below, which fill the same templates.

use crate::ExportQuery;
use cellmap::RegionKey;

/// `GET`: [`crate::CellStatus`].
pub const STATUS: &str = "/api/v1/admin/status";
/// `GET`: [`crate::RegionsResponse`].
pub const REGIONS: &str = "/api/v1/admin/regions";
/// `GET` with [`ExportQuery`]: [`crate::ExportPage`].
pub const REGION_EXPORT: &str = "/api/v1/admin/regions/{region}/export";
/// `POST` [`crate::ImportRequest`]: [`crate::ImportResponse`].
pub const REGION_IMPORT: &str = "/api/v1/admin/regions/{region}/import";
/// `PUT` [`cellmap::CellMap`]: [`crate::MapAck`].
pub const CELL_MAP: &str = "/api/v1/admin/cellmap";

/// The placeholder the region templates hold.
const REGION_PARAM: &str = "{region}";

/// Path and query of one export page of `region`.
pub fn region_export(region: RegionKey, query: &ExportQuery) -> String {
    let path = REGION_EXPORT.replace(REGION_PARAM, &region.to_string());
    match query.to_query_string() {
        q if q.is_empty() => path,
        q => format!("{path}?{q}"),
    }
}

/// Path of an import into `region`.
pub fn region_import(region: RegionKey) -> String {
    REGION_IMPORT.replace(REGION_PARAM, &region.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::RegionId;

    fn region() -> RegionKey {
        RegionKey(RegionId::from_latlng(52.52, 13.405).unwrap())
    }

    #[test]
    fn region_paths_fill_the_templates() {
        for t in [REGION_EXPORT, REGION_IMPORT] {
            assert_eq!(t.matches(REGION_PARAM).count(), 1, "{t}");
        }
        let r = region();
        assert_eq!(
            region_import(r),
            format!("/api/v1/admin/regions/{r}/import")
        );
        let q = ExportQuery {
            after: Some("17".into()),
            limit: Some(50),
        };
        assert_eq!(
            region_export(r, &q),
            format!("/api/v1/admin/regions/{r}/export?after=17&limit=50")
        );
        assert_eq!(
            region_export(r, &ExportQuery::default()),
            format!("/api/v1/admin/regions/{r}/export")
        );
    }

    /// The router's public side proxies nothing under `/api/v1/admin/` (`route.rs`), which keeps
    /// these endpoints off the internet.
    #[test]
    fn every_endpoint_is_an_admin_path() {
        for p in [STATUS, REGIONS, REGION_EXPORT, REGION_IMPORT, CELL_MAP] {
            assert!(p.starts_with("/api/v1/admin/"), "{p}");
        }
    }
}
