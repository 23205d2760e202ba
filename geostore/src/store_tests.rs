//! Tests of the writer paths that need the store's internals.

use super::*;

/// Every path an update can take (same-cell test, a remembered neighbour's test, h3o)
/// leaves the driver in the bucket of the cell h3o assigns to its stored position.
#[test]
fn drivers_stay_in_their_h3o_cell() {
    for (res, step) in [(Resolution::Nine, 40.0), (Resolution::Eleven, 8.0)] {
        let st = GeoStore::new(Config {
            resolution: res,
            ..Config::default()
        });
        let mut rng = 99u64;
        let mut next = || {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut pos: Vec<(f64, f64)> = [(52.37, 4.89), (0.0, 179.999), (-33.9, 151.2)]
            .iter()
            .cycle()
            .take(60)
            .map(|&(a, b)| (a + next() * 0.01, b))
            .collect();
        let g = epoch::pin();
        for t in 0..20_000u64 {
            let i = (t % pos.len() as u64) as usize;
            let (la, lo) = &mut pos[i];
            *la += next() * step / 111_000.0;
            *lo += next() * step / 111_000.0;
            if *lo > 180.0 {
                *lo -= 360.0;
            } else if *lo < -180.0 {
                *lo += 360.0;
            }
            st.upsert(DriverId(i as u64), *la, *lo, 0.0, 0.0, t)
                .unwrap();
            let s = st.drivers.get(i as u64, &st.slots, &g).unwrap();
            let snap = st.slots.get(s).read();
            let cell = u64::from(snap.pos.cell(res));
            assert_eq!(
                st.cells.get(cell, &g),
                Some(snap.bucket()),
                "driver {i} at {t}"
            );
        }
        let s = st.stats();
        // All three paths were exercised.
        assert!(s.fast_path_total > 0 && s.bucket_moves_total > 100, "{s:?}");
    }
}
