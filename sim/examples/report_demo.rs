//! A what-if report from two synthetic days (not simulator output): a seeded day of orders
//! with lunch and dinner peaks and drivers on shifts, and the same day with assignment a
//! little faster but deliveries longer, as "nearest only" might give. It shows what the
//! report looks like and feeds `sim/report-screenshot.sh`.
//!
//! `cargo run -p sim --example report_demo -- OUT.html` writes the page and prints the table.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::report::{DayRecord, DriverRecord, OrderRecord, html, markdown_table, table};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
/// 2026-07-15 00:00 UTC.
const DAY_START: i64 = 1_784_073_600_000;

/// Relative demand at hour `h`: a base, a lunch peak and a dinner peak five times the base.
fn demand(h: f64) -> f64 {
    let peak = |at: f64, width: f64, height: f64| height * (-((h - at) / width).powi(2)).exp();
    0.2 + peak(12.5, 1.3, 2.5) + peak(19.5, 1.6, 4.0) + if h < 7.0 { -0.15 } else { 0.0 }
}

/// One synthetic day. `wait` and `ride` scale the wait for a driver and the trip.
fn day(label: &str, seed: u64, wait: f64, ride: f64) -> DayRecord {
    // Demand and shifts from one stream, service from another: the two days get the same
    // orders and drivers whatever the service draws.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut svc = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut drivers: Vec<(DriverRecord, i64)> = (0..80)
        .map(|i| {
            let start = DAY_START + rng.random_range(5..18) * HOUR + rng.random_range(0..60) * MIN;
            let len = rng.random_range(6..10) * HOUR;
            let rec = DriverRecord {
                driver: 9_000 + i,
                shifts: vec![(start, start + len)],
                busy: Vec::new(),
            };
            (rec, start)
        })
        .collect();
    let mut orders = Vec::new();
    let mut id = 1u64;
    for minute in 0..24 * 60 {
        let rate = demand(f64::from(minute) / 60.0) * 0.5;
        let n = (rate + rng.random::<f64>()).floor() as usize;
        for _ in 0..n {
            let placed = DAY_START + i64::from(minute) * MIN + rng.random_range(0..MIN);
            let mut o = OrderRecord {
                order: id,
                placed_ms: placed,
                offers: 1
                    + u32::from(rng.random::<f64>() < 0.3)
                    + u32::from(rng.random::<f64>() < 0.1),
                promised_ms: Some(placed + 40 * MIN),
                ..OrderRecord::default()
            };
            id += 1;
            let assigned = placed + ((1.0 + svc.random::<f64>() * 5.0) * wait * MIN as f64) as i64;
            let free = drivers.iter_mut().find(|(d, free_at)| {
                d.shifts[0].0 <= assigned && assigned < d.shifts[0].1 && *free_at <= assigned
            });
            match free {
                Some((d, free_at)) if svc.random::<f64>() > 0.03 => {
                    let trip = ((14.0 + svc.random::<f64>() * 22.0) * ride * MIN as f64) as i64;
                    o.assigned_ms = Some(assigned);
                    o.picked_up_ms = Some(assigned + trip / 2);
                    o.delivered_ms = Some(assigned + trip);
                    d.busy.push((assigned, assigned + trip));
                    *free_at = assigned + trip;
                }
                _ => {
                    o.offers += 2;
                    o.cancelled_ms = Some(placed + 20 * MIN);
                }
            }
            orders.push(o);
        }
    }
    drivers.sort_by_key(|(d, _)| d.driver);
    DayRecord {
        label: label.into(),
        seed,
        start_ms: DAY_START,
        end_ms: DAY_START + 24 * HOUR,
        orders,
        drivers: drivers.into_iter().map(|(d, _)| d).collect(),
    }
}

fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "report.html".into());
    let a = day("current matcher (synthetic)", 17, 1.0, 1.0);
    let b = day("nearest only (synthetic)", 17, 0.8, 1.12);
    std::fs::write(&out, html(&a, &b))?;
    println!("{}", table(&a, &b));
    println!("{}", markdown_table(&a, &b));
    eprintln!("wrote {out}");
    Ok(())
}
