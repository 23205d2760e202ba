//! ETA recompute cost (issue 19: "a recompute ≤ 20 µs p99"), release build: one
//! `EtaModel::estimate` (256 Monte Carlo samples, p10 / p50 / p90) for a delivery whose
//! restaurant and area have learned distributions. Three runs, min / median / max.
//! `cargo bench -p cell --bench eta`.

use cell::dispatch::eta::{EtaConfig, EtaModel, Remaining};
use hdrhistogram::Histogram;
use std::time::Instant;

fn run(seed: u64) -> (f64, f64) {
    let mut m = EtaModel::new(EtaConfig::default());
    let mut x = seed;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    for r in 0..1_000u64 {
        for _ in 0..50 {
            m.learn_prep(r, 300.0 + 900.0 * next());
        }
    }
    for a in 0..100u64 {
        for _ in 0..200 {
            m.learn_speed(a, (a % 168) as u8, 3.0 + 8.0 * next());
        }
    }
    let mut h = Histogram::<u64>::new(3).unwrap();
    let mut scratch = Vec::with_capacity(256);
    let mut sink = 0.0;
    for i in 0..200_000u64 {
        let r = Remaining {
            restaurant: i % 1_000,
            prep_elapsed_s: Some(60.0),
            to_restaurant_m: 1_500.0,
            to_customer_m: 3_000.0,
            area: i % 100,
            hour_of_week: (i % 100 % 168) as u8,
        };
        let t = Instant::now();
        let e = m.estimate(&r, i, &mut scratch);
        h.record(t.elapsed().as_nanos() as u64).unwrap();
        sink += e.p50_s;
    }
    assert!(sink > 0.0);
    (
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
    )
}

fn main() {
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for s in 1..=3 {
        let (a, b) = run(s * 104_729);
        p50.push(a);
        p99.push(b);
    }
    p50.sort_by(f64::total_cmp);
    p99.sort_by(f64::total_cmp);
    println!("ETA recompute (256 samples), 200,000 estimates per run, 3 runs, µs:");
    println!("  p50 {:.2} / {:.2} / {:.2}", p50[0], p50[1], p50[2]);
    println!(
        "  p99 {:.2} / {:.2} / {:.2}   (target ≤ 20)",
        p99[0], p99[1], p99[2]
    );
}
