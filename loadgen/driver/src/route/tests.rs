//! Tests of the simulated driver routes: roaming is plausible, `go_to` arrives and stops,
//! and a seed always gives the same route.

use super::*;

/// Bearing from one point to another, degrees in [0, 360), on the tangent plane.
fn bearing(a: &LocationPing, b: &LocationPing) -> f64 {
    let (e, n) = offset_m(a.lat, a.lng, b.lat, b.lng);
    e.atan2(n).to_degrees().rem_euclid(360.0)
}

fn angle_diff(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

#[test]
fn roaming_is_plausible() {
    let city = City::default();
    for seed in 0..20 {
        let mut route = Route::new(city, seed);
        let pings: Vec<_> = route
            .pings(7, 1_700_000_000_000, 1_000)
            .take(3_000)
            .collect();
        let mut straight = 0;
        for w in pings.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            b.validate().unwrap();
            assert_eq!(b.seq, a.seq + 1);
            assert_eq!(b.client_ts_ms - a.client_ts_ms, 1_000);
            assert!((5.0..15.0).contains(&b.speed_mps), "speed {}", b.speed_mps);
            let d = geostore::haversine_m(a.lat, a.lng, b.lat, b.lng);
            // Displacement never beats the top speed (1 s between pings); a little slack for
            // the tangent-plane approximation.
            assert!(d <= 15.0 * 1.001, "moved {d} m in 1 s");
            // Straight stretches: the reported heading is the direction actually moved.
            if angle_diff(bearing(a, b), f64::from(b.heading_deg)) < 0.5 && d > 1.0 {
                straight += 1;
            }
            assert!(city.contains(b.lat, b.lng));
        }
        // Turns happen every 200-1500 m (13-300 pings): most pings are on a straight segment.
        assert!(straight as f64 > 0.9 * pings.len() as f64, "{straight}");
        let total = route.travelled_m();
        assert!(total > 5.0 * 3_000.0 && total < 15.0 * 3_000.0, "{total}");
    }
}

#[test]
fn go_to_arrives_and_stops() {
    let city = City::default();
    let mut route = Route::new(city, 3);
    let (lat, lng) = (52.53, 13.41);
    route.go_to(lat, lng);
    let mut steps = 0;
    while !route.arrived() {
        route.advance(1.0);
        steps += 1;
        assert!(steps < 10_000, "never arrived");
    }
    assert_eq!(route.position(), (lat, lng));
    assert_eq!(route.speed_mps(), 0.0);
    route.advance(60.0);
    assert_eq!(route.position(), (lat, lng));
    route.roam();
    route.advance(10.0);
    assert_ne!(route.position(), (lat, lng));
}

#[test]
fn deterministic_per_seed() {
    let a: Vec<_> = Route::new(City::default(), 11)
        .pings(1, 0, 500)
        .take(50)
        .collect();
    let b: Vec<_> = Route::new(City::default(), 11)
        .pings(1, 0, 500)
        .take(50)
        .collect();
    assert_eq!(a, b);
}
