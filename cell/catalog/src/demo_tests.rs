//! The demo generator at metro scale: slices agree with the whole city, density falls off from
//! the centre, menus span 20 to 120 items.

use crate::demo::{self, DemoSpec};
use crate::geo::haversine_m;
use std::collections::HashSet;

fn metro(restaurants: usize) -> DemoSpec {
    DemoSpec {
        restaurants,
        radius_km: 25.0,
        ..DemoSpec::berlin(5)
    }
}

#[test]
fn a_slice_is_the_same_restaurants_as_in_the_whole_city() {
    let spec = metro(300);
    let all = demo::generate(&spec).unwrap();
    let mut joined = Vec::new();
    for start in (0..300).step_by(70) {
        joined.extend(demo::generate_range(&spec, start..start + 70).unwrap());
    }
    assert_eq!(joined, all);
    // Clipped to the city's size.
    assert_eq!(demo::generate_range(&spec, 290..400).unwrap().len(), 10);
}

#[test]
fn a_metro_is_dense_downtown_with_menus_of_20_to_120_items() {
    let spec = metro(20_000);
    let city = demo::generate(&spec).unwrap();
    // Restaurants per km² in rings around the centre.
    let density = |from_km: f64, to_km: f64| {
        let n = city
            .iter()
            .filter(|(r, _)| {
                let d = haversine_m(spec.center_lat, spec.center_lng, r.lat, r.lng) / 1000.0;
                (from_km..to_km).contains(&d)
            })
            .count();
        n as f64 / (std::f64::consts::PI * (to_km * to_km - from_km * from_km))
    };
    let (core, mid, edge) = (density(0.0, 3.0), density(8.0, 12.0), density(20.0, 25.0));
    assert!(core > 3.0 * mid && mid > 2.0 * edge, "{core} {mid} {edge}");
    assert!(
        city.iter()
            .all(|(r, _)| haversine_m(spec.center_lat, spec.center_lng, r.lat, r.lng) <= 25_050.0)
    );
    let sizes: Vec<usize> = city.iter().map(|(_, m)| m.items().count()).collect();
    assert!(sizes.iter().all(|n| (20..=120).contains(n)));
    assert!(sizes.iter().any(|n| *n <= 22) && sizes.iter().any(|n| *n >= 115));
    let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
    assert!((40.0..65.0).contains(&mean), "{mean}");
    let cuisines: HashSet<_> = city.iter().map(|(r, _)| r.cuisine.as_str()).collect();
    assert!(cuisines.len() >= 12, "{cuisines:?}");
    // Ids stay unique at this size, items of the longest menus included.
    let mut items = HashSet::new();
    assert!(
        city.iter()
            .flat_map(|(_, m)| m.items())
            .all(|i| items.insert(i.id))
    );
}
