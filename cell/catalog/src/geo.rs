//! Distances and the H3 discovery index.
//!
//! Restaurants are bucketed by their H3 cell at [`INDEX_RESOLUTION`]. A search visits the grid
//! disk around the customer's cell that is guaranteed to contain every point within the search
//! radius ([`disk_k`]), skips whole buckets by the triangle inequality (each bucket knows its
//! centre and how far its farthest member is from it), and filters the rest exactly by
//! haversine distance.

use crate::listing::Listing;
use domain::RestaurantId;
use h3o::{CellIndex, LatLng, Resolution};
use std::collections::HashMap;
use std::sync::Arc;

/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Resolution 7: average edge ≈ 1.41 km, area ≈ 5.2 km². A 5 km search visits ~127 cells,
/// a 20 km one ~900; a dense city holds tens of restaurants per cell, so the buckets the
/// triangle-inequality test cannot skip stay short. Resolution 8 (≈ 0.53 km edges) would
/// visit ~7× more cells for the same radius, most of them empty.
pub const INDEX_RESOLUTION: Resolution = Resolution::Seven;

/// Finite, latitude within ±90°, longitude within ±180°. (`h3o::LatLng::new` only rejects
/// non-finite values and would wrap 200° silently.)
pub fn valid_coordinates(lat: f64, lng: f64) -> bool {
    lat.is_finite() && lng.is_finite() && lat.abs() <= 90.0 && lng.abs() <= 180.0
}

/// Great-circle distance in metres.
pub fn haversine_m(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lng2 - lng1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// Grid distance `k` whose disk around the query's cell covers a circle of `radius_m`.
///
/// A point within `radius_m` of the query lies in a cell whose centre is within
/// `radius_m + 2·e_max` of the query cell's centre (each point is within a circumradius `e` of
/// its cell's centre). A k-disk contains every cell whose centre is within `1.5·k·e_min` of
/// the origin's centre (the inscribed radius of a hexagonal ring of hexagons). H3 hexagon
/// edges vary by less than ±30% around the average within a resolution away from the
/// icosahedron's pentagons, so e_min = 0.7·avg and e_max = 1.3·avg is conservative; the
/// property test against a brute-force scan checks it.
pub fn disk_k(radius_m: f64) -> u32 {
    let e = INDEX_RESOLUTION.edge_length_m();
    ((radius_m + 2.6 * e) / (1.05 * e)).ceil() as u32
}

/// One restaurant as the search loop sees it: the fields it filters on inline (no pointer
/// chase until a restaurant matches).
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub id: RestaurantId,
    pub lat: f64,
    pub lng: f64,
    pub delivery_radius_m: u32,
    pub listing: Arc<Listing>,
}

/// Restaurants of one H3 cell.
#[derive(Debug)]
pub(crate) struct Bucket {
    pub center_lat: f64,
    pub center_lng: f64,
    /// Distance from the centre to the farthest member: with it, one haversine decides that
    /// no member can be within reach.
    pub reach_m: f64,
    /// Largest delivery radius of any member.
    pub max_delivery_m: u32,
    pub rows: Vec<Row>,
}

impl Bucket {
    fn new(cell: CellIndex) -> Bucket {
        let c = LatLng::from(cell);
        Bucket {
            center_lat: c.lat(),
            center_lng: c.lng(),
            reach_m: 0.0,
            max_delivery_m: 0,
            rows: Vec::new(),
        }
    }

    fn recompute(&mut self) {
        self.reach_m = self
            .rows
            .iter()
            .map(|r| haversine_m(self.center_lat, self.center_lng, r.lat, r.lng))
            .fold(0.0, f64::max);
        self.max_delivery_m = self
            .rows
            .iter()
            .map(|r| r.delivery_radius_m)
            .max()
            .unwrap_or(0);
    }
}

/// The in-memory catalog: every listing by id, and the H3 buckets.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub listings: HashMap<RestaurantId, (CellIndex, Arc<Listing>)>,
    pub buckets: HashMap<CellIndex, Bucket>,
    /// Largest delivery radius in the catalog: no search needs to look farther. Only grows
    /// (until a rebuild), which is conservative.
    pub max_delivery_m: u32,
}

impl Index {
    /// Inserts or replaces a listing. Coordinates were validated on write.
    pub fn put(&mut self, listing: Arc<Listing>) {
        let r = &listing.restaurant;
        let cell = LatLng::new(r.lat, r.lng)
            .expect("validated coordinates")
            .to_cell(INDEX_RESOLUTION);
        self.remove(r.id);
        let row = Row {
            id: r.id,
            lat: r.lat,
            lng: r.lng,
            delivery_radius_m: r.delivery_radius_m,
            listing: listing.clone(),
        };
        self.max_delivery_m = self.max_delivery_m.max(r.delivery_radius_m);
        let bucket = self
            .buckets
            .entry(cell)
            .or_insert_with(|| Bucket::new(cell));
        bucket.reach_m = bucket.reach_m.max(haversine_m(
            bucket.center_lat,
            bucket.center_lng,
            row.lat,
            row.lng,
        ));
        bucket.max_delivery_m = bucket.max_delivery_m.max(row.delivery_radius_m);
        bucket.rows.push(row);
        self.listings.insert(r.id, (cell, listing));
    }

    pub fn remove(&mut self, id: RestaurantId) -> Option<Arc<Listing>> {
        let (cell, old) = self.listings.remove(&id)?;
        if let Some(b) = self.buckets.get_mut(&cell) {
            b.rows.retain(|row| row.id != id);
            if b.rows.is_empty() {
                self.buckets.remove(&cell);
            } else {
                b.recompute();
            }
        }
        Some(old)
    }

    pub fn get(&self, id: RestaurantId) -> Option<&Arc<Listing>> {
        self.listings.get(&id).map(|(_, l)| l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_known_distances() {
        // One degree of latitude ≈ 111.2 km.
        let d = haversine_m(0.0, 0.0, 1.0, 0.0);
        assert!((d - 111_195.0).abs() < 10.0, "{d}");
        // Berlin → Paris ≈ 878 km.
        let d = haversine_m(52.5200, 13.4050, 48.8566, 2.3522);
        assert!((d - 878_000.0).abs() < 2_000.0, "{d}");
        assert_eq!(haversine_m(10.0, 20.0, 10.0, 20.0), 0.0);
        // Antipodes do not produce NaN.
        assert!(haversine_m(0.0, 0.0, 0.0, 180.0).is_finite());
    }

    #[test]
    fn disk_covers_the_radius_around_arbitrary_points() {
        // Every point on a ring at the radius lies in a cell of the disk.
        for (lat, lng) in [
            (52.52, 13.405),
            (40.71, -74.0),
            (-33.87, 151.2),
            (64.1, -21.9),
        ] {
            for radius in [500.0, 5_000.0, 20_000.0] {
                let origin = LatLng::new(lat, lng).unwrap().to_cell(INDEX_RESOLUTION);
                let disk: std::collections::HashSet<CellIndex> = origin.grid_disk(disk_k(radius));
                for step in 0..72 {
                    let bearing = f64::from(step) * 5.0f64.to_radians();
                    let dlat = radius * bearing.cos() / EARTH_RADIUS_M;
                    let dlng = radius * bearing.sin() / (EARTH_RADIUS_M * lat.to_radians().cos());
                    let p = LatLng::new(lat + dlat.to_degrees(), lng + dlng.to_degrees()).unwrap();
                    assert!(disk.contains(&p.to_cell(INDEX_RESOLUTION)));
                }
            }
        }
    }
}
