//! Distances and the H3 discovery index.
//!
//! Restaurants are bucketed by their H3 cell at [`INDEX_RESOLUTION`]. A search visits the grid
//! disk around the customer's cell that is guaranteed to contain every point within the search
//! radius ([`disk_k`]), skips whole buckets by the triangle inequality (each bucket knows its
//! centre and how far its farthest member is from it), and filters the rest exactly by
//! haversine distance.

use crate::chunk::Chunk;
use crate::hours::CompactWeek;
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

/// Great-circle distance in metres (haversine).
pub fn haversine_m(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    a_to_m(Point::new(lat1, lng1).a_to(&Point::new(lat2, lng2)))
}

/// A point with the trigonometry of the haversine formula precomputed, so the search loop
/// computes the haversine term `a` with a few multiplications per candidate (no `sin`), using
/// `sin((x₂−x₁)/2) = sin(x₂/2)·cos(x₁/2) − cos(x₂/2)·sin(x₁/2)`. [`haversine_m`] uses the very
/// same arithmetic, so pricing, search and tests agree to the bit; it is symmetric, and
/// exactly 0 for equal points.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Point {
    sin_hlat: f64,
    cos_hlat: f64,
    sin_hlng: f64,
    cos_hlng: f64,
    cos_lat: f64,
}

impl Point {
    pub fn new(lat: f64, lng: f64) -> Point {
        let (hlat, hlng) = (lat.to_radians() / 2.0, lng.to_radians() / 2.0);
        Point {
            sin_hlat: hlat.sin(),
            cos_hlat: hlat.cos(),
            sin_hlng: hlng.sin(),
            cos_hlng: hlng.cos(),
            cos_lat: lat.to_radians().cos(),
        }
    }

    /// The haversine term `a = sin²(Δφ/2) + cos φ₁ · cos φ₂ · sin²(Δλ/2)`.
    #[inline]
    pub fn a_to(&self, o: &Point) -> f64 {
        let s_lat = o.sin_hlat * self.cos_hlat - o.cos_hlat * self.sin_hlat;
        let s_lng = o.sin_hlng * self.cos_hlng - o.cos_hlng * self.sin_hlng;
        s_lat * s_lat + self.cos_lat * o.cos_lat * (s_lng * s_lng)
    }
}

/// Distance in metres for a haversine term `a` (monotonic in `a`).
#[inline]
pub(crate) fn a_to_m(a: f64) -> f64 {
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// Bounds on `a` for a distance of `m` metres: below `inside` a point is surely within `m`,
/// above `outside` surely beyond it; only in between (a relative band of 1e-9, far wider than
/// rounding error) must the distance itself be computed and compared.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ABounds {
    pub inside: f64,
    pub outside: f64,
}

impl ABounds {
    pub fn new(m: f64) -> ABounds {
        let half = (m / (2.0 * EARTH_RADIUS_M)).min(std::f64::consts::FRAC_PI_2);
        let a = half.sin().powi(2);
        ABounds {
            inside: a * (1.0 - 1e-9),
            outside: a * (1.0 + 1e-9) + 1e-18,
        }
    }

    /// Is a point with term `a` within `m` metres? Exact: same answer as `a_to_m(a) <= m`.
    #[inline]
    pub fn contains(&self, a: f64, m: f64) -> bool {
        a <= self.inside || (a <= self.outside && a_to_m(a) <= m)
    }
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
    pub point: Point,
    pub delivery_radius_m: u32,
    pub delivery: ABounds,
    /// Copies of what the filter reads, so a non-match never touches the listing.
    pub manually_closed: bool,
    pub cuisine: CuisineId,
    pub tz: chrono_tz::Tz,
    /// `None` for the rare restaurant with more than two intervals on some day.
    pub hours: Option<CompactWeek>,
    pub listing: Arc<Listing>,
}

/// An interned, lowercased cuisine tag.
pub(crate) type CuisineId = u32;

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
    /// `rows` in runs of up to 32 neighbours, with their own bounds (see [`crate::chunk`]).
    pub chunks: Vec<Chunk>,
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
            chunks: Vec::new(),
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
        self.chunks = crate::chunk::compact(&mut self.rows);
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
    /// Lowercased cuisine tag → id. Never shrinks: there are a few dozen tags at most.
    pub cuisines: HashMap<String, CuisineId>,
}

impl Index {
    fn intern_cuisine(&mut self, cuisine: &str) -> CuisineId {
        let key = cuisine.trim().to_ascii_lowercase();
        let next = self.cuisines.len() as CuisineId;
        *self.cuisines.entry(key).or_insert(next)
    }

    /// The id of a cuisine filter; `None` if no restaurant ever had it.
    pub fn cuisine_id(&self, cuisine: &str) -> Option<CuisineId> {
        self.cuisines
            .get(&cuisine.trim().to_ascii_lowercase())
            .copied()
    }

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
            point: Point::new(r.lat, r.lng),
            delivery_radius_m: r.delivery_radius_m,
            delivery: ABounds::new(f64::from(r.delivery_radius_m)),
            manually_closed: r.manually_closed,
            cuisine: self.intern_cuisine(&r.cuisine),
            tz: listing.tz,
            hours: CompactWeek::new(&r.hours),
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
        crate::chunk::append(&mut bucket.chunks, &bucket.rows);
        self.listings.insert(r.id, (cell, listing));
    }

    /// Orders every bucket's rows so that neighbours share chunks. A bulk load puts rows in
    /// store order, which makes loose chunks (correct, but fewer decided without reading
    /// rows); called once after it.
    pub fn compact(&mut self) {
        for b in self.buckets.values_mut() {
            b.chunks = crate::chunk::compact(&mut b.rows);
        }
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
        // Symmetric to the bit; across the antimeridian.
        let (a, b) = (
            haversine_m(1.5, 2.5, -3.25, 7.0),
            haversine_m(-3.25, 7.0, 1.5, 2.5),
        );
        assert_eq!(a.to_bits(), b.to_bits());
        let d = haversine_m(0.0, 179.9, 0.0, -179.9);
        assert!((d - 22_239.0).abs() < 5.0, "{d}");
        // Short distances stay precise despite the difference formula.
        let d = haversine_m(
            52.52,
            13.405,
            52.52 + (1.0 / EARTH_RADIUS_M).to_degrees(),
            13.405,
        );
        assert!((d - 1.0).abs() < 1e-6, "{d}");
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
