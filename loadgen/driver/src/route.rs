//! A simulated driver's movement: straight segments between random waypoints inside a city,
//! at 5–15 m/s, with heading along the segment and increasing ping sequence numbers.
//!
//! Distances use a local tangent plane (east/north metres around the current position), which
//! over segments of at most a couple of kilometres differs from the great circle by far less
//! than GPS accuracy. No clock is read: callers say how much time passes.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemas::LocationPing;

/// Mean Earth radius, metres (the geostore's haversine uses the same).
const EARTH_RADIUS_M: f64 = 6_371_008.8;
const M_PER_DEG_LAT: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
/// Speed range on a segment, m/s (18–54 km/h: city traffic on a scooter or in a car).
const SPEED_MPS: std::ops::Range<f32> = 5.0..15.0;
/// Length range of a roaming segment, metres: a turn every few blocks.
const SEGMENT_M: std::ops::Range<f64> = 200.0..1500.0;

/// The disc drivers roam in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct City {
    /// Centre latitude, degrees.
    pub center_lat: f64,
    /// Centre longitude, degrees.
    pub center_lng: f64,
    /// Radius, metres.
    pub radius_m: f64,
}

impl Default for City {
    /// Berlin's centre, 12 km: the catalog's demo city.
    fn default() -> Self {
        Self {
            center_lat: 52.5200,
            center_lng: 13.4050,
            radius_m: 12_000.0,
        }
    }
}

impl City {
    /// Metres (east, north) from the centre to `(lat, lng)`.
    fn offset_m(&self, lat: f64, lng: f64) -> (f64, f64) {
        offset_m(self.center_lat, self.center_lng, lat, lng)
    }

    /// Whether `(lat, lng)` lies inside the disc.
    pub fn contains(&self, lat: f64, lng: f64) -> bool {
        let (e, n) = self.offset_m(lat, lng);
        e.hypot(n) <= self.radius_m
    }
}

/// East and north metres from `(lat0, lng0)` to `(lat, lng)` on the local tangent plane.
fn offset_m(lat0: f64, lng0: f64, lat: f64, lng: f64) -> (f64, f64) {
    let north = (lat - lat0) * M_PER_DEG_LAT;
    let east = (lng - lng0) * M_PER_DEG_LAT * lat0.to_radians().cos();
    (east, north)
}

/// `(lat0, lng0)` moved by `east`/`north` metres.
fn displace(lat0: f64, lng0: f64, east: f64, north: f64) -> (f64, f64) {
    let lat = lat0 + north / M_PER_DEG_LAT;
    let lng = lng0 + east / (M_PER_DEG_LAT * lat0.to_radians().cos());
    (lat, lng)
}

/// Where the driver is heading.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Goal {
    /// Random waypoints, forever.
    Roam,
    /// A destination given by [`Route::go_to`]; the driver stops there.
    Destination { arrived: bool },
}

/// One simulated driver's path. Deterministic for a given city and seed.
#[derive(Debug, Clone)]
pub struct Route {
    city: City,
    rng: ChaCha8Rng,
    lat: f64,
    lng: f64,
    target: (f64, f64),
    goal: Goal,
    speed_mps: f32,
    heading_deg: f32,
    seq: u64,
    travelled_m: f64,
}

impl Route {
    /// Starts at a random point of `city`, roaming.
    pub fn new(city: City, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (lat, lng) = random_point(&city, &mut rng);
        let mut route = Self {
            city,
            rng,
            lat,
            lng,
            target: (lat, lng),
            goal: Goal::Roam,
            speed_mps: SPEED_MPS.start,
            heading_deg: 0.0,
            seq: 0,
            travelled_m: 0.0,
        };
        route.next_waypoint();
        route
    }

    /// Current position `(lat, lng)`, degrees.
    pub fn position(&self) -> (f64, f64) {
        (self.lat, self.lng)
    }

    /// Direction of travel, degrees clockwise from north, in `[0, 360)`.
    pub fn heading_deg(&self) -> f32 {
        self.heading_deg
    }

    /// Current speed, m/s (0 once arrived at a [`Route::go_to`] destination).
    pub fn speed_mps(&self) -> f32 {
        self.speed_mps
    }

    /// Path length covered so far, metres.
    pub fn travelled_m(&self) -> f64 {
        self.travelled_m
    }

    /// Heads straight for `(lat, lng)` (a restaurant, a customer) and stops there.
    pub fn go_to(&mut self, lat: f64, lng: f64) {
        self.target = (lat, lng);
        self.goal = Goal::Destination { arrived: false };
        self.speed_mps = self.rng.random_range(SPEED_MPS);
        self.aim();
    }

    /// Resumes roaming between random waypoints.
    pub fn roam(&mut self) {
        self.goal = Goal::Roam;
        self.next_waypoint();
    }

    /// True once a [`Route::go_to`] destination is reached.
    pub fn arrived(&self) -> bool {
        self.goal == Goal::Destination { arrived: true }
    }

    /// Moves along the path for `dt_s` seconds, turning at waypoints.
    pub fn advance(&mut self, dt_s: f64) {
        let mut left_s = dt_s.max(0.0);
        // Bounded: each turn consumes a segment of at least SEGMENT_M.start metres.
        while left_s > 0.0 && !self.arrived() {
            let (east, north) = offset_m(self.lat, self.lng, self.target.0, self.target.1);
            let dist = east.hypot(north);
            let step = f64::from(self.speed_mps) * left_s;
            if step < dist {
                (self.lat, self.lng) =
                    displace(self.lat, self.lng, east / dist * step, north / dist * step);
                self.travelled_m += step;
                return;
            }
            (self.lat, self.lng) = self.target;
            self.travelled_m += dist;
            left_s -= dist / f64::from(self.speed_mps);
            match self.goal {
                Goal::Roam => self.next_waypoint(),
                Goal::Destination { .. } => {
                    self.goal = Goal::Destination { arrived: true };
                    self.speed_mps = 0.0;
                }
            }
        }
    }

    /// A ping for the current position, with the next sequence number.
    pub fn ping(&mut self, driver_id: u64, ts_ms: u64) -> LocationPing {
        self.seq += 1;
        LocationPing {
            driver_id,
            lat: self.lat,
            lng: self.lng,
            heading_deg: self.heading_deg,
            speed_mps: self.speed_mps,
            accuracy_m: self.rng.random_range(3.0..15.0),
            client_ts_ms: ts_ms,
            seq: self.seq,
        }
    }

    /// Endless pings every `interval_ms`, starting at `start_ms`: advance, then ping.
    pub fn pings(
        &mut self,
        driver_id: u64,
        start_ms: u64,
        interval_ms: u64,
    ) -> impl Iterator<Item = LocationPing> + '_ {
        let mut ts = start_ms;
        std::iter::from_fn(move || {
            ts += interval_ms;
            self.advance(interval_ms as f64 / 1000.0);
            Some(self.ping(driver_id, ts))
        })
    }

    /// A new roaming waypoint a few blocks away, inside the city, and a new speed.
    fn next_waypoint(&mut self) {
        let mut target = None;
        for _ in 0..8 {
            let bearing = self.rng.random_range(0.0..std::f64::consts::TAU);
            let len = self.rng.random_range(SEGMENT_M);
            let p = displace(self.lat, self.lng, len * bearing.sin(), len * bearing.cos());
            if self.city.contains(p.0, p.1) {
                target = Some(p);
                break;
            }
        }
        // Near the edge every direction may leave the city: go somewhere inside instead.
        self.target = target.unwrap_or_else(|| random_point(&self.city, &mut self.rng));
        self.speed_mps = self.rng.random_range(SPEED_MPS);
        self.aim();
    }

    /// Points the heading at the target (kept when already there).
    fn aim(&mut self) {
        let (east, north) = offset_m(self.lat, self.lng, self.target.0, self.target.1);
        if east.hypot(north) > 1e-6 {
            self.heading_deg = (east.atan2(north).to_degrees().rem_euclid(360.0) as f32) % 360.0;
        }
    }
}

/// Uniform over the disc's area.
fn random_point(city: &City, rng: &mut ChaCha8Rng) -> (f64, f64) {
    let r = city.radius_m * rng.random_range(0.0f64..1.0).sqrt();
    let theta = rng.random_range(0.0..std::f64::consts::TAU);
    displace(
        city.center_lat,
        city.center_lng,
        r * theta.sin(),
        r * theta.cos(),
    )
}

#[cfg(test)]
mod tests;
