//! Property tests: the store against a naive model (a map scanned by brute force with the same
//! haversine), on random fleets and operations that include the edge cases: the antimeridian,
//! the poles, radius 0, radii below and far above a bucket's size, k = 0, stale drivers.

use geostore::{
    Config, DriverId, DriverState, Error, Filter, GeoStore, Ping, UpsertOutcome, haversine_m,
    quantize,
};
use proptest::prelude::*;
use std::collections::HashMap;
use std::time::Duration;

const STALE_MS: u64 = 30_000;
const NOW: u64 = 1_000_000;

#[derive(Clone, Debug)]
enum Op {
    Upsert {
        id: u64,
        lat: f64,
        lng: f64,
        ts: u64,
    },
    State {
        id: u64,
        state: DriverState,
    },
    Cas {
        id: u64,
        from: DriverState,
        to: DriverState,
    },
    Remove {
        id: u64,
    },
}

/// Places near one of the awkward spots (or anywhere).
fn point() -> impl Strategy<Value = (f64, f64)> {
    let near = |lat: f64, lng: f64, span: f64| {
        (-span..span, -span..span).prop_map(move |(a, b)| {
            let la = (lat + a).clamp(-90.0, 90.0);
            let mut lo = lng + b;
            if lo > 180.0 {
                lo -= 360.0;
            } else if lo < -180.0 {
                lo += 360.0;
            }
            (la, lo)
        })
    };
    prop_oneof![
        4 => near(52.37, 4.89, 0.02),   // a city centre, dense
        2 => near(0.0, 180.0, 0.05),    // across the antimeridian
        2 => near(89.99, 0.0, 0.02),    // at the north pole
        1 => near(-90.0, 45.0, 0.01),   // at the south pole
        1 => (-90.0..=90.0, -180.0..=180.0),
    ]
}

fn state() -> impl Strategy<Value = DriverState> {
    prop_oneof![
        3 => Just(DriverState::Available),
        1 => Just(DriverState::Offered),
        1 => Just(DriverState::OnDelivery),
        1 => Just(DriverState::Offline),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0u64..40;
    prop_oneof![
        8 => (id.clone(), point(), (NOW - 60_000)..NOW).prop_map(|(id, (lat, lng), ts)| Op::Upsert { id, lat, lng, ts }),
        2 => (id.clone(), state()).prop_map(|(id, state)| Op::State { id, state }),
        1 => (id.clone(), state(), state()).prop_map(|(id, from, to)| Op::Cas { id, from, to }),
        1 => id.prop_map(|id| Op::Remove { id }),
    ]
}

#[derive(Clone, Copy, Debug)]
struct M {
    lat: f64,
    lng: f64,
    ts: u64,
    state: DriverState,
}

fn apply(store: &GeoStore, model: &mut HashMap<u64, M>, op: &Op) {
    match *op {
        Op::Upsert { id, lat, lng, ts } => {
            let out = store.upsert(DriverId(id), lat, lng, 90.0, 5.0, ts).unwrap();
            check_upsert(model, id, lat, lng, ts, out);
        }
        _ => apply_other(store, model, op),
    }
}

/// Applies `ops`, sending each run of consecutive upserts as one `upsert_batch`.
fn apply_batched(store: &GeoStore, model: &mut HashMap<u64, M>, ops: &[Op]) {
    let mut i = 0;
    while i < ops.len() {
        let run: Vec<Ping> = ops[i..]
            .iter()
            .map_while(|op| match *op {
                Op::Upsert { id, lat, lng, ts } => Some(Ping {
                    driver: DriverId(id),
                    lat,
                    lng,
                    heading_deg: 90.0,
                    speed_mps: 5.0,
                    ts_ms: ts,
                }),
                _ => None,
            })
            .collect();
        if run.is_empty() {
            apply_other(store, model, &ops[i]);
            i += 1;
            continue;
        }
        let outs = store.upsert_batch(&run);
        assert_eq!(outs.len(), run.len());
        for (p, out) in run.iter().zip(outs) {
            check_upsert(model, p.driver.0, p.lat, p.lng, p.ts_ms, out.unwrap());
        }
        i += run.len();
    }
}

/// Checks an upsert's outcome against the model and applies it there.
fn check_upsert(
    model: &mut HashMap<u64, M>,
    id: u64,
    lat: f64,
    lng: f64,
    ts: u64,
    out: UpsertOutcome,
) {
    let (qlat, qlng) = quantize(lat, lng).unwrap();
    match model.get_mut(&id) {
        None => {
            assert_eq!(out, UpsertOutcome::Inserted);
            let state = DriverState::Available;
            model.insert(
                id,
                M {
                    lat: qlat,
                    lng: qlng,
                    ts,
                    state,
                },
            );
        }
        Some(m) if ts < m.ts => assert_eq!(out, UpsertOutcome::IgnoredOlder),
        Some(m) => {
            assert_eq!(out, UpsertOutcome::Updated);
            (m.lat, m.lng, m.ts) = (qlat, qlng, ts);
        }
    }
}

fn apply_other(store: &GeoStore, model: &mut HashMap<u64, M>, op: &Op) {
    match *op {
        Op::Upsert { .. } => unreachable!("upserts are applied by the callers"),
        Op::State { id, state } => match model.get_mut(&id) {
            None => assert_eq!(
                store.set_state(DriverId(id), state),
                Err(Error::UnknownDriver(DriverId(id)))
            ),
            Some(m) => {
                assert_eq!(store.set_state(DriverId(id), state), Ok(m.state));
                m.state = state;
            }
        },
        Op::Cas { id, from, to } => match model.get_mut(&id) {
            None => assert!(store.compare_and_set_state(DriverId(id), from, to).is_err()),
            Some(m) => {
                let done = store.compare_and_set_state(DriverId(id), from, to).unwrap();
                assert_eq!(done, m.state == from);
                if done {
                    m.state = to;
                }
            }
        },
        Op::Remove { id } => assert_eq!(store.remove(DriverId(id)), model.remove(&id).is_some()),
    }
}

fn brute(
    model: &HashMap<u64, M>,
    lat: f64,
    lng: f64,
    r: f64,
    k: usize,
    f: Filter,
) -> Vec<(u64, f64)> {
    let mut v: Vec<(u64, f64)> = model
        .iter()
        .filter(|(_, m)| f.allows(m.state) && f.now_ms.saturating_sub(m.ts) <= STALE_MS)
        .map(|(&id, m)| (id, haversine_m(lat, lng, m.lat, m.lng)))
        .filter(|&(_, d)| d <= r)
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    v.truncate(k);
    v
}

fn resolution() -> impl Strategy<Value = h3o::Resolution> {
    prop_oneof![
        Just(h3o::Resolution::Five),
        Just(h3o::Resolution::Nine),
        Just(h3o::Resolution::Eleven)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn queries_match_brute_force(
        res in resolution(),
        batched in any::<bool>(),
        ops in prop::collection::vec(op(), 1..120),
        queries in prop::collection::vec(
            (point(), prop_oneof![Just(0.0), Just(1.0), 0.0..300.0, 300.0..5_000.0, Just(50_000.0), Just(3_000_000.0)],
             prop_oneof![Just(0usize), Just(1), 1usize..30, Just(1000)], any::<bool>(), 0u64..40_000),
            1..12),
    ) {
        let store = GeoStore::new(Config { resolution: res, staleness: Duration::from_millis(STALE_MS), expected_drivers: 16 });
        let mut model = HashMap::new();
        if batched {
            apply_batched(&store, &mut model, &ops);
        } else {
            for op in &ops {
                apply(&store, &mut model, op);
            }
        }
        // Also query at each stored driver's exact position (radius 0 must find it).
        let mut qs = queries.clone();
        for m in model.values().take(3) {
            qs.push(((m.lat, m.lng), 0.0, 5, false, 0));
        }
        for ((lat, lng), r, k, avail, dt) in qs {
            let now = NOW + dt;
            let f = if avail { Filter::available(now) } else { Filter::any(now) };
            let got: Vec<(u64, f64)> = store.nearest(lat, lng, r, k, f).unwrap().iter().map(|h| (h.driver.id.0, h.distance_m)).collect();
            prop_assert_eq!(&got, &brute(&model, lat, lng, r, k, f), "nearest at ({}, {}) r={} k={}", lat, lng, r, k);
            let mut all: Vec<(u64, f64)> = store.within(lat, lng, r, f).unwrap().map(|h| (h.driver.id.0, h.distance_m)).collect();
            all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            prop_assert_eq!(&all, &brute(&model, lat, lng, r, usize::MAX, f));
        }
        for (&id, m) in &model {
            let d = store.get(DriverId(id)).unwrap();
            prop_assert_eq!((d.lat, d.lng, d.ts_ms, d.state), (m.lat, m.lng, m.ts, m.state));
        }
        prop_assert_eq!(store.len(), model.len());
        // Sweep at a late `now` reclaims exactly the stale ones.
        let late = NOW + 20_000;
        let stale = model.values().filter(|m| late - m.ts > STALE_MS).count() as u64;
        prop_assert_eq!(store.sweep(late).expired, stale);
        prop_assert_eq!(store.len() as u64, model.len() as u64 - stale);
    }
}

#[test]
fn rejects_invalid_input_and_stores_nothing() {
    let s = GeoStore::default();
    let id = DriverId(1);
    for (lat, lng) in [
        (f64::NAN, 0.0),
        (0.0, f64::NAN),
        (91.0, 0.0),
        (0.0, 180.01),
        (f64::INFINITY, 0.0),
    ] {
        assert!(matches!(
            s.upsert(id, lat, lng, 0.0, 0.0, 1),
            Err(Error::InvalidCoordinates { .. })
        ));
        assert!(matches!(
            s.nearest(lat, lng, 10.0, 1, Filter::any(1)),
            Err(Error::InvalidCoordinates { .. })
        ));
        assert!(s.within(lat, lng, 10.0, Filter::any(1)).is_err());
    }
    assert!(matches!(
        s.upsert(id, 1.0, 1.0, f32::NAN, 0.0, 1),
        Err(Error::InvalidHeading(_))
    ));
    assert!(matches!(
        s.upsert(id, 1.0, 1.0, 0.0, -1.0, 1),
        Err(Error::InvalidSpeed(_))
    ));
    assert!(matches!(
        s.upsert(id, 1.0, 1.0, 0.0, 1.0, u64::MAX),
        Err(Error::InvalidTimestamp(_))
    ));
    for r in [f64::NAN, -1.0, f64::INFINITY] {
        assert!(matches!(
            s.nearest(0.0, 0.0, r, 0, Filter::any(1)),
            Err(Error::InvalidRadius(_))
        ));
    }
    assert!(s.is_empty());
    assert_eq!(s.get(id), None);
}

#[test]
fn batch_rejects_bad_pings_and_applies_the_rest() {
    let s = GeoStore::default();
    let ping = |id: u64, lat: f64, ts: u64| Ping {
        driver: DriverId(id),
        lat,
        lng: 4.89,
        heading_deg: 0.0,
        speed_mps: 1.0,
        ts_ms: ts,
    };
    let outs = s.upsert_batch(&[
        ping(1, 52.37, 10),
        ping(2, f64::NAN, 10),
        ping(1, 52.38, 9),
        ping(1, 52.39, 11),
        ping(3, 95.0, 10),
    ]);
    assert_eq!(outs[0], Ok(UpsertOutcome::Inserted));
    assert!(matches!(outs[1], Err(Error::InvalidCoordinates { .. })));
    assert_eq!(outs[2], Ok(UpsertOutcome::IgnoredOlder));
    assert_eq!(outs[3], Ok(UpsertOutcome::Updated));
    assert!(matches!(outs[4], Err(Error::InvalidCoordinates { .. })));
    assert_eq!(s.len(), 1);
    assert_eq!(s.get(DriverId(1)).unwrap().lat, 52.39);
    let st = s.stats();
    assert_eq!(
        (st.upserts_total, st.inserts_total, st.ignored_older_total),
        (3, 1, 1)
    );
}

#[test]
fn radius_zero_k_zero_and_stats() {
    let s = GeoStore::default();
    s.upsert(DriverId(7), 52.3700001, 4.8900001, 10.0, 3.0, 1_000)
        .unwrap();
    s.upsert(DriverId(8), 52.3700001, 4.8900001, 10.0, 3.0, 1_000)
        .unwrap();
    let (la, lo) = quantize(52.3700001, 4.8900001).unwrap();
    let hits = s.nearest(la, lo, 0.0, 5, Filter::any(1_000)).unwrap();
    assert_eq!(
        hits.iter().map(|h| h.driver.id.0).collect::<Vec<_>>(),
        vec![7, 8]
    );
    assert!(
        s.nearest(la, lo, 100.0, 0, Filter::any(1_000))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.upsert(DriverId(7), 0.0, 0.0, 0.0, 0.0, 999).unwrap(),
        UpsertOutcome::IgnoredOlder
    );
    assert!(
        s.compare_and_set_state(DriverId(7), DriverState::Available, DriverState::Offered)
            .unwrap()
    );
    assert!(
        !s.compare_and_set_state(DriverId(7), DriverState::Available, DriverState::Offered)
            .unwrap()
    );
    assert_eq!(
        s.nearest(la, lo, 10.0, 5, Filter::available(1_000))
            .unwrap()
            .len(),
        1
    );
    // Stale at now = 1_000 + 30 s + 1 ms; sweep reclaims both.
    assert!(
        s.nearest(la, lo, 10.0, 5, Filter::any(31_001))
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.sweep(31_001).expired, 2);
    let st = s.stats();
    assert_eq!(
        (
            st.drivers,
            st.inserts_total,
            st.ignored_older_total,
            st.swept_expired_total
        ),
        (0, 2, 1, 2)
    );
}

/// Dense fleets: enough drivers per cell that ring search (not the all-buckets fallback) answers,
/// and its stopping rule and bucket/hint pruning are what is being tested.
fn dense_fleet() -> impl Strategy<Value = (f64, f64, Vec<(f64, f64, bool)>)> {
    let spot = prop_oneof![
        Just((52.37, 4.89)),
        Just((0.0, 179.995)),
        Just((89.9, 10.0)),
        Just((-33.9, 151.2))
    ];
    (spot, 50usize..600).prop_flat_map(|((lat, lng), n)| {
        let pts = prop::collection::vec(
            (-0.01f64..0.01, -0.01f64..0.01, prop::bool::weighted(0.6)),
            n,
        );
        (Just(lat), Just(lng), pts)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn dense_fleets_match_brute_force(
        res in prop_oneof![Just(h3o::Resolution::Nine), Just(h3o::Resolution::Ten), Just(h3o::Resolution::Eleven)],
        (lat0, lng0, pts) in dense_fleet(),
        queries in prop::collection::vec((-0.012f64..0.012, -0.012f64..0.012, 0.0f64..1_500.0, 1usize..40), 1..16),
    ) {
        let store = GeoStore::new(Config { resolution: res, staleness: Duration::from_millis(STALE_MS), expected_drivers: 64 });
        let mut model = HashMap::new();
        let wrap = |x: f64| if x > 180.0 { x - 360.0 } else if x < -180.0 { x + 360.0 } else { x };
        for (i, &(a, b, avail)) in pts.iter().enumerate() {
            let (la, lo) = ((lat0 + a).clamp(-90.0, 90.0), wrap(lng0 + b));
            apply(&store, &mut model, &Op::Upsert { id: i as u64, lat: la, lng: lo, ts: NOW });
            if !avail {
                apply(&store, &mut model, &Op::State { id: i as u64, state: DriverState::OnDelivery });
            }
        }
        for (a, b, r, k) in queries {
            let (la, lo) = ((lat0 + a).clamp(-90.0, 90.0), wrap(lng0 + b));
            for f in [Filter::available(NOW), Filter::any(NOW)] {
                let got: Vec<(u64, f64)> = store.nearest(la, lo, r, k, f).unwrap().iter().map(|h| (h.driver.id.0, h.distance_m)).collect();
                prop_assert_eq!(&got, &brute(&model, la, lo, r, k, f), "nearest at ({}, {}) r={} k={}", la, lo, r, k);
            }
        }
    }
}
