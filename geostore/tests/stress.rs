//! Concurrency stress test with invariant checks: writers move drivers across bucket borders as
//! fast as they can while readers query an area that always contains every driver, so each
//! answer must list every driver exactly once. Runs 2 s by default (debug builds included);
//! `GEOSTORE_STRESS_SECS=600 cargo test --release -p geostore --test stress` runs longer.

use geostore::{Config, DriverId, DriverState, Filter, GeoStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const N: u64 = 1_500;
const LAT: f64 = 52.37;
const LNG: f64 = 4.89;

fn secs() -> u64 {
    std::env::var("GEOSTORE_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2)
}

fn rng(s: &mut u64) -> f64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    (*s >> 11) as f64 / (1u64 << 53) as f64
}

#[test]
fn moving_drivers_are_never_missing_nor_doubled() {
    // Resolution 11 (≈ 25 m edges) in a 600 m square: almost every ping changes bucket.
    let store = Arc::new(GeoStore::new(Config {
        resolution: h3o::Resolution::Eleven,
        ..Config::default()
    }));
    for id in 0..N {
        let (a, b) = ((id % 40) as f64 * 0.000_15, (id / 40) as f64 * 0.000_2);
        store
            .upsert(DriverId(id), LAT + a, LNG + b, 0.0, 0.0, 1)
            .unwrap();
        // The upper half is never available (its state flips between two busy states); the
        // lower half always is: an `available` query must return exactly the lower half.
        if id >= N / 2 {
            store.set_state(DriverId(id), DriverState::Offered).unwrap();
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let moves = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for w in 0..2u64 {
        let (store, stop, moves) = (store.clone(), stop.clone(), moves.clone());
        handles.push(std::thread::spawn(move || {
            let mut s = 0x9E37_79B9_7F4A_7C15 ^ (w + 1);
            let mut ts = 2;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..256 {
                    // Both writers touch every driver: same-driver writers contend too.
                    let id = (rng(&mut s) * N as f64) as u64;
                    let (a, b) = (rng(&mut s) * 0.005, rng(&mut s) * 0.008);
                    store
                        .upsert(DriverId(id), LAT + a, LNG + b, 0.0, 0.0, ts)
                        .unwrap();
                    if id >= N / 2 && rng(&mut s) < 0.1 {
                        let st = if rng(&mut s) < 0.5 {
                            DriverState::Offered
                        } else {
                            DriverState::OnDelivery
                        };
                        store.set_state(DriverId(id), st).unwrap();
                    }
                    ts += 1;
                }
                moves.fetch_add(256, Ordering::Relaxed);
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(secs());
    let mut readers = Vec::new();
    for r in 0..2u64 {
        let (store, stop) = (store.clone(), stop.clone());
        readers.push(std::thread::spawn(move || {
            let mut queries = 0u64;
            let mut s = 77 + r;
            while !stop.load(Ordering::Relaxed) {
                let f = Filter::any(10);
                let mut ids: Vec<u64> = store
                    .within(LAT, LNG, 5_000.0, f)
                    .unwrap()
                    .map(|h| h.driver.id.0)
                    .collect();
                ids.sort_unstable();
                assert_eq!(ids.len() as u64, N, "within: missing or doubled drivers");
                assert!(
                    ids.windows(2).all(|w| w[0] < w[1]),
                    "within: doubled driver"
                );
                let mut avail: Vec<u64> = store
                    .within(LAT, LNG, 5_000.0, Filter::available(10))
                    .unwrap()
                    .map(|h| h.driver.id.0)
                    .collect();
                avail.sort_unstable();
                assert_eq!(
                    avail,
                    (0..N / 2).collect::<Vec<_>>(),
                    "available: missing or extra"
                );
                let hits = store
                    .nearest(
                        LAT + rng(&mut s) * 0.005,
                        LNG + rng(&mut s) * 0.008,
                        5_000.0,
                        50,
                        f,
                    )
                    .unwrap();
                assert_eq!(hits.len(), 50);
                assert!(
                    hits.windows(2)
                        .all(|w| (w[0].distance_m, w[0].driver.id)
                            < (w[1].distance_m, w[1].driver.id))
                );
                let mut ids: Vec<u64> = hits.iter().map(|h| h.driver.id.0).collect();
                ids.sort_unstable();
                ids.dedup();
                assert_eq!(ids.len(), 50, "nearest: doubled driver");
                queries += 1;
            }
            queries
        }));
    }
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let queries: u64 = readers.into_iter().map(|h| h.join().unwrap()).sum();
    let st = store.stats();
    eprintln!(
        "stress: {} upserts, {} bucket moves, {queries} query pairs, {} retries",
        moves.load(Ordering::Relaxed),
        st.bucket_moves_total,
        st.query_retries_total
    );
    assert!(queries > 0 && st.bucket_moves_total > 1_000);
    assert_eq!(store.len() as u64, N);
    assert_eq!(store.drivers().len() as u64, N);
}

#[test]
fn state_cas_has_one_winner() {
    let store = Arc::new(GeoStore::default());
    for id in 0..200 {
        store.upsert(DriverId(id), LAT, LNG, 0.0, 0.0, 1).unwrap();
    }
    let wins: Vec<u64> = (0..2)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..200)
                    .filter(|&id| {
                        store
                            .compare_and_set_state(
                                DriverId(id),
                                DriverState::Available,
                                DriverState::Offered,
                            )
                            .unwrap()
                    })
                    .count() as u64
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(wins.iter().sum::<u64>(), 200);
}

/// Member hints under growth: a flock of drivers drifts into fresh resolution-12 cells, so
/// their member arrays keep growing (copy-on-write, copying hints) while the drivers in them are
/// being written. Writer A alone moves its tracked drivers (in batches, into the same dense
/// cells) and after each batch asks for each at its exact stored position with a 1 cm radius:
/// an outdated or lost hint would make the query skip the driver.
#[test]
fn hints_stay_current_while_arrays_grow() {
    const CROWD: u64 = 2_000;
    const TRACKED: u64 = 64;
    let store = Arc::new(GeoStore::new(Config {
        resolution: h3o::Resolution::Twelve,
        ..Config::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let step = Arc::new(AtomicU64::new(0));
    // The flock's centre drifts east with the crowd writer's progress.
    let centre = |t: u64| (LAT, LNG + t as f64 * 2e-8);
    let crowd = {
        let (store, stop, step) = (store.clone(), stop.clone(), step.clone());
        std::thread::spawn(move || {
            let mut s = 0xDEAD_BEEF_u64;
            let mut ts = 1;
            while !stop.load(Ordering::Relaxed) {
                let t = step.fetch_add(1, Ordering::Relaxed);
                let (la, lo) = centre(t);
                let id = (rng(&mut s) * CROWD as f64) as u64;
                let (a, b) = (rng(&mut s) - 0.5, rng(&mut s) - 0.5);
                store
                    .upsert(DriverId(id), la + a * 3e-4, lo + b * 5e-4, 0.0, 0.0, ts)
                    .unwrap();
                ts += 1;
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(secs());
    let (mut s, mut ts, mut checks) = (5u64, 1u64, 0u64);
    while Instant::now() < deadline {
        let (la, lo) = centre(step.load(Ordering::Relaxed));
        let pings: Vec<geostore::Ping> = (0..TRACKED)
            .map(|i| {
                let (a, b) = (rng(&mut s) - 0.5, rng(&mut s) - 0.5);
                geostore::Ping {
                    driver: DriverId(1_000_000 + i),
                    lat: la + a * 3e-4,
                    lng: lo + b * 5e-4,
                    heading_deg: 0.0,
                    speed_mps: 0.0,
                    ts_ms: ts,
                }
            })
            .collect();
        ts += 1;
        for r in store.upsert_batch(&pings) {
            r.unwrap();
        }
        for p in &pings {
            // Only this thread writes these drivers: the stored position is still this one.
            let d = store.get(p.driver).unwrap();
            let hits = store
                .nearest(d.lat, d.lng, 0.01, 1_000, Filter::any(ts))
                .unwrap();
            assert!(
                hits.iter().any(|h| h.driver.id == p.driver),
                "{:?} at its own position not found",
                p.driver
            );
            checks += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    crowd.join().unwrap();
    let st = store.stats();
    eprintln!(
        "growth stress: {checks} position checks, {} crowd pings, {} buckets, {} moves",
        step.load(Ordering::Relaxed),
        st.buckets,
        st.bucket_moves_total
    );
    assert!(checks > 0 && st.buckets > 50);
}
