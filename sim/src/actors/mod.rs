//! The people in the city: customers who order (and sometimes cancel) and track their
//! orders, restaurants that accept or reject and cook, drivers on shifts who move, ping,
//! take offers and deliver. Each reacts only to what its app would see: answers to its
//! requests, pushes, tracking messages and driver-session messages.

pub mod customers;
pub mod drivers;
pub mod restaurants;

pub use customers::Customers;
pub use drivers::Drivers;
pub use restaurants::Restaurants;

/// A point `d_m` metres from `from` at `bearing` radians (flat-earth, fine at city scale).
pub fn offset(from: (f64, f64), d_m: f64, bearing: f64) -> (f64, f64) {
    let dlat = d_m * bearing.cos() / 111_320.0;
    let dlng = d_m * bearing.sin() / (111_320.0 * from.0.to_radians().cos());
    (from.0 + dlat, from.1 + dlng)
}

/// Metres between two points.
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    geostore::haversine_m(a.0, a.1, b.0, b.1)
}
