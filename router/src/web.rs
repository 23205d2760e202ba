//! What the web pages need from the router beyond the proxied API: the pages themselves
//! (embedded, from the `webpages` crate), the demo token endpoint (demo mode only; the
//! same request as a cell's `POST /api/v1/dev/token`, plus the home cell), and the map's
//! regions as GeoJSON for the operations console (admin).

use crate::error::RouterError;
use crate::server::{RouterApp, require_admin};
use auth::{Principal, Role};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cellmap::{CellMap, CellState};
use domain::{CellId, UnixMs};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

pub fn routes(demo: bool) -> Router<RouterApp> {
    let r = webpages::routes().route("/admin/v1/map/regions", get(regions));
    if demo {
        r.route("/api/v1/dev/token", post(dev_token))
    } else {
        r
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevToken {
    role: Role,
    sub: String,
    #[serde(default)]
    name: Option<String>,
    /// The home cell: where requests that name no place go (a customer's order list).
    #[serde(default)]
    home: Option<u32>,
}

/// Demo mode only: a token for any party, signed with the router's (shared) secret.
async fn dev_token(
    State(app): State<RouterApp>,
    body: axum::body::Bytes,
) -> Result<Response, RouterError> {
    let req: DevToken = serde_json::from_slice(&body)
        .map_err(|e| RouterError::BadRequest(format!("request body: {e}")))?;
    let id: u64 = req
        .sub
        .parse()
        .map_err(|_| RouterError::BadRequest("sub must be a decimal id".into()))?;
    let home = req
        .home
        .map(CellId::new)
        .transpose()
        .map_err(|e| RouterError::BadRequest(format!("home: {e}")))?;
    let ttl = auth::capped_ttl(req.role, Duration::from_secs(app.0.cfg.auth.token_ttl_s));
    let token = app.0.jwt.signer().issue_with_home(
        Principal::from_role(req.role, id),
        req.name,
        home,
        ttl,
        UnixMs::now(),
    );
    Ok(Json(json!({"token": token, "expires_in_s": ttl.as_secs()})).into_response())
}

/// The map's regions as a GeoJSON `FeatureCollection`: one hexagon per region, with its
/// owning cell, the cell's name and state, and the map version.
async fn regions(
    State(app): State<RouterApp>,
    headers: HeaderMap,
) -> Result<Response, RouterError> {
    require_admin(&app, &headers)?;
    let map = app.control().live.load_full().map.clone();
    Ok(Json(regions_geojson(&map)).into_response())
}

/// Pure: the GeoJSON of `map`'s regions (rings closed, `[lng, lat]` as GeoJSON orders them).
pub fn regions_geojson(map: &CellMap) -> Value {
    let features: Vec<Value> = map
        .regions
        .iter()
        .map(|(region, cell)| {
            let mut ring: Vec<[f64; 2]> = region
                .0
                .cell()
                .boundary()
                .iter()
                .map(|ll| [ll.lng(), ll.lat()])
                .collect();
            if let Some(first) = ring.first().copied() {
                ring.push(first);
            }
            let info = map.cells.get(cell);
            let state = info.map_or(CellState::Active, |i| i.state);
            json!({
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {
                    "region": region.to_string(),
                    "cell": cell,
                    "cell_name": info.map(|i| i.name.clone()),
                    "state": state,
                },
            })
        })
        .collect();
    json!({"type": "FeatureCollection", "version": map.version, "features": features})
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellmap::RegionKey;
    use domain::RegionId;

    #[test]
    fn a_region_is_a_closed_hexagon_around_its_centre_with_its_owner() {
        let region = RegionKey(RegionId::from_latlng(52.52, 13.405).unwrap());
        let mut map = CellMap {
            version: 3,
            ..CellMap::default()
        };
        map.regions.insert(region, CellId::new(2).unwrap());
        let g = regions_geojson(&map);
        assert_eq!(g["version"], 3);
        let f = &g["features"][0];
        assert_eq!(f["properties"]["region"], region.to_string());
        assert_eq!(f["properties"]["cell"], 2);
        let ring = f["geometry"]["coordinates"][0].as_array().unwrap();
        assert_eq!(ring.len(), 7, "six corners and the first again");
        assert_eq!(ring[0], ring[6]);
        let (lng, lat) = (ring[0][0].as_f64().unwrap(), ring[0][1].as_f64().unwrap());
        assert!(
            (lat - 52.52).abs() < 0.2 && (lng - 13.405).abs() < 0.3,
            "{lat},{lng}"
        );
    }
}
