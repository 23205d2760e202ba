//! The matching queue (issue 19, "Queue"), release build: with 10,000 orders waiting, how
//! long a freed driver waits for `Matcher::next_for` to name the order to offer, against
//! its anchor, `Matcher::due` (every due order in queue order: what a round walks).
//!
//! Two shapes: every order's restaurant within the driver's radius (the first queue entry
//! fits), and one in ten (the walk skips about ten). Three runs each; min / median / max of
//! the p50 and p99 per call. `cargo bench -p cell --bench queue`.

use cell::dispatch::matching::machine::{JobSpec, MatchConfig, Matcher};
use domain::{Cents, DeliveryId, DriverId, OrderId, UnixMs};
use hdrhistogram::Histogram;
use std::time::Instant;

const QUEUED: u64 = 10_000;
const CALLS: u64 = 20_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `QUEUED` orders placed over the last 10 minutes; `near` of them (a share) have their
/// restaurant within 2 km of the city centre, the others 20–30 km away.
fn queue(seed: u64, near: f64, cfg: &MatchConfig, now: UnixMs) -> Matcher {
    let mut r = Rng(seed);
    let mut m = Matcher::new();
    for o in 1..=QUEUED {
        let (dlat, dlng) = if r.unit() < near {
            ((r.unit() - 0.5) * 0.03, (r.unit() - 0.5) * 0.03)
        } else {
            (0.2 + r.unit() * 0.1, 0.0)
        };
        let spec = JobSpec {
            order: OrderId(o),
            delivery: DeliveryId(1_000_000 + o),
            pickup: (52.52 + dlat, 13.40 + dlng),
            dropoff: (52.52, 13.41),
            arrived: UnixMs(now.0 - (r.next() % 600_000) as i64),
            value: Cents((r.next() % 10_000) as i64),
        };
        m.add(spec, now, cfg);
    }
    m
}

fn run(near: f64, seed: u64) -> (f64, f64, f64, f64) {
    let cfg = MatchConfig::default();
    let now = UnixMs(1_784_109_600_000);
    let m = queue(seed, near, &cfg, now);
    let mut r = Rng(seed ^ 0xABCD);
    let mut h = Histogram::<u64>::new(3).unwrap();
    let mut found = 0u64;
    for i in 0..CALLS {
        let pos = (
            52.52 + (r.unit() - 0.5) * 0.02,
            13.40 + (r.unit() - 0.5) * 0.02,
        );
        let t = Instant::now();
        let o = m.next_for(DriverId(5_000_000 + i), pos, now, &cfg);
        h.record(t.elapsed().as_nanos() as u64).unwrap();
        found += u64::from(o.is_some());
    }
    assert_eq!(
        found, CALLS,
        "every freed driver near the centre finds an order"
    );
    let mut a = Histogram::<u64>::new(3).unwrap();
    for _ in 0..50 {
        let t = Instant::now();
        let due = m.due(now, &cfg);
        a.record(t.elapsed().as_nanos() as u64).unwrap();
        assert_eq!(due.len() as u64, QUEUED);
    }
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
    (us(&h, 0.5), us(&h, 0.99), us(&a, 0.5), us(&a, 0.99))
}

fn mmm(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!("{:.2} / {:.2} / {:.2}", v[0], v[1], v[2])
}

fn main() {
    println!("matching queue, {QUEUED} orders waiting, {CALLS} freed drivers per run, 3 runs");
    println!("(µs per call; min / median / max over the runs)");
    for (label, near) in [("every order in range", 1.0), ("one in ten in range", 0.1)] {
        let runs: Vec<_> = (1..=3).map(|s| run(near, s * 7919)).collect();
        println!("{label}:");
        println!(
            "  next_for p50  {}",
            mmm(runs.iter().map(|r| r.0).collect())
        );
        println!(
            "  next_for p99  {}",
            mmm(runs.iter().map(|r| r.1).collect())
        );
        println!(
            "  anchor due() p50 {}",
            mmm(runs.iter().map(|r| r.2).collect())
        );
        println!(
            "  anchor due() p99 {}",
            mmm(runs.iter().map(|r| r.3).collect())
        );
        let ratio: Vec<f64> = runs.iter().map(|r| r.2 / r.0.max(1e-3)).collect();
        println!("  due() / next_for at p50: {}×", mmm(ratio));
    }
}
