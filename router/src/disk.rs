//! Which map regions a search disk (centre and radius) touches. Pure geometry on the H3
//! grid at [`domain::REGION_RESOLUTION`]: the router fans a search out to the owners of
//! these regions.

use domain::RegionId;
use domain::ids::REGION_RESOLUTION;
use h3o::{CellIndex, LatLng};

/// The cells' largest search radius (`catalog::MAX_RADIUS_M`).
pub const MAX_RADIUS_M: u32 = 20_000;
/// The cells' radius when the request names none.
pub const DEFAULT_RADIUS_M: u32 = 5_000;

/// A radius as the cells take it ("5km", "2.5km", "800m", "800"), in metres; `None` when
/// the cell would refuse it (then the cell says why).
pub fn parse_radius(s: &str) -> Option<u32> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("km") {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 1.0)
    } else {
        (t, 1.0)
    };
    let m = (num.trim().parse::<f64>().ok()? * scale).round();
    (m.is_finite() && m >= 1.0 && m <= f64::from(MAX_RADIUS_M)).then_some(m as u32)
}

/// Every region with some point within `radius_m` of (`lat`, `lng`), the centre's first.
///
/// Candidates come from a grid disk wide enough for the radius (hexagon edges vary by less
/// than ±30% around the resolution's average, as in the catalog's index); each is kept when
/// the centre is within `radius_m` of the hexagon's circumscribed circle, a cheap
/// over-approximation: a region kept in error only costs an empty answer.
pub fn regions_in_disk(lat: f64, lng: f64, radius_m: u32) -> Option<Vec<RegionId>> {
    let centre = LatLng::new(lat, lng).ok()?;
    let origin = centre.to_cell(REGION_RESOLUTION);
    let e = REGION_RESOLUTION.edge_length_m();
    let k = ((f64::from(radius_m) + 2.6 * e) / (1.05 * e)).ceil() as u32;
    let mut out = vec![RegionId::from_cell(origin)];
    for cell in origin.grid_disk::<Vec<CellIndex>>(k) {
        if cell != origin && reaches(cell, centre, f64::from(radius_m)) {
            out.push(RegionId::from_cell(cell));
        }
    }
    Some(out)
}

fn reaches(cell: CellIndex, centre: LatLng, radius_m: f64) -> bool {
    let mid = LatLng::from(cell);
    let circumradius = cell
        .boundary()
        .iter()
        .map(|v| mid.distance_m(*v))
        .fold(0.0, f64::max);
    centre.distance_m(mid) - circumradius <= radius_m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radius_parses_like_the_cells() {
        assert_eq!(parse_radius("5km"), Some(5_000));
        assert_eq!(parse_radius("2.5km"), Some(2_500));
        assert_eq!(parse_radius("800m"), Some(800));
        assert_eq!(parse_radius("800"), Some(800));
        assert_eq!(parse_radius("21km"), None);
        assert_eq!(parse_radius("0"), None);
        assert_eq!(parse_radius("far"), None);
    }

    #[test]
    fn a_small_disk_in_the_middle_of_a_region_touches_only_it_and_a_border_disk_both() {
        let centre = RegionId::from_latlng(52.52, 13.405).unwrap().cell();
        let mid = LatLng::from(centre);
        assert_eq!(
            regions_in_disk(mid.lat(), mid.lng(), 100).unwrap(),
            vec![RegionId::from_cell(centre)]
        );
        // A point on the shared edge of two hexagons: both are within a few metres.
        let b = centre.boundary();
        let (v0, v1) = (b[0], b[1]);
        let on_edge =
            LatLng::new((v0.lat() + v1.lat()) / 2.0, (v0.lng() + v1.lng()) / 2.0).unwrap();
        let got = regions_in_disk(on_edge.lat(), on_edge.lng(), 200).unwrap();
        assert!(got.len() >= 2, "{got:?}");
        assert!(got.contains(&RegionId::from_cell(centre)));
        // Every region holding a point of the disk is found: sample the circle's rim.
        for i in 0..36 {
            let bearing = f64::from(i) * 10f64.to_radians();
            let (dlat, dlng) = (
                1_900.0 * bearing.cos() / 111_320.0,
                1_900.0 * bearing.sin() / (111_320.0 * on_edge.lat().to_radians().cos()),
            );
            let rim = RegionId::from_latlng(on_edge.lat() + dlat, on_edge.lng() + dlng).unwrap();
            let wide = regions_in_disk(on_edge.lat(), on_edge.lng(), 2_000).unwrap();
            assert!(wide.contains(&rim), "rim point {i} in {rim:?}");
        }
    }
}
