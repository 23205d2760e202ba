//! Tests of the search that need the store's internals.

use super::*;
use crate::bucket::WILD;
use crate::{DriverId, DriverState};

/// A tentative limit is kept only if the k found are within it. Here the query cell is crowded
/// with busy drivers (so the guessed limit is ~70 m), one available driver is 90 m from the
/// query with a correct hint (pruned by the limit), and 20 are 120–130 m away in the same cell
/// with `WILD` hints (as while being written), which are read regardless and fill the k = 20
/// best. Accepting that pass would drop the driver at 90 m; the search must run again.
#[test]
fn a_tentative_limit_is_kept_only_when_the_k_found_are_within_it() {
    let st = GeoStore::new(crate::Config::default());
    let cell = h3o::LatLng::new(52.37, 4.89)
        .unwrap()
        .to_cell(crate::Config::default().resolution);
    let centre = h3o::LatLng::from(cell);
    let (lat, lng) = (centre.lat(), centre.lng());
    let m_lat = 1.0 / 111_195.0;
    let m_lng = m_lat / lat.to_radians().cos();
    let mut id = 0u64;
    let mut put = |dlat_m: f64, dlng_m: f64, state: DriverState| {
        id += 1;
        let d = DriverId(id);
        st.upsert(
            d,
            lat + dlat_m * m_lat,
            lng + dlng_m * m_lng,
            0.0,
            0.0,
            1_000,
        )
        .unwrap();
        st.set_state(d, state).unwrap();
        d
    };
    for i in 0..400 {
        let (a, b) = (f64::from(i % 20), f64::from(i / 20));
        put(a * 2.0 - 20.0, b * 2.0 - 20.0, DriverState::OnDelivery);
    }
    let near = put(0.0, 90.0, DriverState::Available);
    let far: Vec<DriverId> = (0..20)
        .map(|i| {
            let a = f64::from(i) * 0.3 + 1.0;
            put(
                125.0 * a.sin(),
                -125.0 * a.cos().abs(),
                DriverState::Available,
            )
        })
        .collect();
    let g = epoch::pin();
    let limit = st.first_limit(cell, 20, &g);
    assert!(limit < 85.0, "a crowded cell gives a short guess: {limit}");
    for d in &far {
        let s = st.drivers.get(d.0, &st.slots, &g).unwrap();
        let slot = st.slots.get(s);
        st.buckets
            .get(slot.read().bucket())
            .set_hint(slot.entry(), WILD, &g);
    }
    let hits = st
        .nearest(lat, lng, 5_000.0, 20, crate::Filter::available(1_000))
        .unwrap();
    assert_eq!(hits.len(), 20);
    assert_eq!(hits[0].driver.id, near, "{:?}", hits[0]);
    for h in &hits[1..] {
        assert!(far.contains(&h.driver.id));
        assert_eq!(st.get(h.driver.id).unwrap().lat, h.driver.lat);
    }
}

/// Equal distances are ordered by driver id, whatever order the drivers were written in and
/// whichever of them the k-limit cuts: the lowest ids win. Matching offers to the first hit,
/// so this decides who gets an offer when drivers wait at the same spot (a restaurant's door).
#[test]
fn equal_distances_are_ordered_by_driver_id() {
    let st = GeoStore::new(crate::Config::default());
    let (lat, lng) = (52.37, 4.89);
    for id in [9u64, 4, 7, 2, 5] {
        st.upsert(DriverId(id), lat + 0.001, lng, 0.0, 0.0, 1_000)
            .unwrap();
    }
    let ids = |k: usize| -> Vec<u64> {
        st.nearest(lat, lng, 5_000.0, k, crate::Filter::available(1_000))
            .unwrap()
            .iter()
            .map(|h| h.driver.id.0)
            .collect()
    };
    assert_eq!(ids(1), vec![2]);
    assert_eq!(ids(3), vec![2, 4, 5]);
    assert_eq!(ids(20), vec![2, 4, 5, 7, 9]);
}
