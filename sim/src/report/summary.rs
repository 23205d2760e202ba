//! The figures of one simulated day: percentiles of delivery time and of the wait for a
//! driver, offers per order, driver idle share, late deliveries, throughput per driver-hour,
//! and the same per hour of the day for the plots.
//!
//! Definitions (they decide what the numbers mean, so they are fixed here):
//! - percentiles are nearest-rank: the p-th of n sorted values is the one at rank
//!   ⌈p/100 · n⌉ (1-based), always a value that occurred; none of an empty set;
//! - delivery time is delivered − placed, over delivered orders; the wait for assignment is
//!   assigned − placed, over assigned orders (those never assigned are counted apart);
//! - offers per order are over every placed order (one cancelled before any offer counts 0);
//! - a driver's on-shift time is the union of their shifts, their busy time the union of
//!   their busy intervals clipped to it (batched orders overlap and count once); idle share is
//!   (on-shift − busy) / on-shift, summed over drivers;
//! - late means delivered after `promised_ms`; the share is over delivered orders that had a
//!   promise;
//! - orders per driver-hour are delivered orders over on-shift hours.

use super::{DayRecord, DriverRecord, OrderRecord};

const HOUR_MS: i64 = 3_600_000;

/// p50, p90 and p99 of a set of durations, in milliseconds (`None` for an empty set).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

/// One day's figures. Durations in milliseconds, shares in 0..=1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub placed: usize,
    pub delivered: usize,
    pub cancelled: usize,
    /// Orders no driver ever accepted (cancelled while waiting, or still waiting at the end).
    pub never_assigned: usize,
    pub delivery_time_ms: Percentiles,
    pub wait_for_assignment_ms: Percentiles,
    pub offers_mean: Option<f64>,
    pub offers_p90: Option<f64>,
    /// Total on-shift time of all drivers, and the part of it spent carrying orders.
    pub on_shift_ms: i64,
    pub busy_ms: i64,
    pub idle_share: Option<f64>,
    pub late: usize,
    pub late_share: Option<f64>,
    pub orders_per_driver_hour: Option<f64>,
}

/// The nearest-rank `p`-th percentile of `sorted` (ascending).
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn percentiles(mut v: Vec<f64>) -> Percentiles {
    v.sort_by(f64::total_cmp);
    Percentiles {
        p50: percentile(&v, 50.0),
        p90: percentile(&v, 90.0),
        p99: percentile(&v, 99.0),
    }
}

fn share(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole)
}

/// `intervals` as disjoint, sorted [start, end) intervals (empty and inverted ones dropped).
fn union(intervals: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut v: Vec<(i64, i64)> = intervals.iter().copied().filter(|(s, e)| e > s).collect();
    v.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Total length of the parts of disjoint sorted `a` and `b` that overlap.
fn overlap(a: &[(i64, i64)], b: &[(i64, i64)]) -> i64 {
    let (mut i, mut j, mut total) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        let (s, e) = (a[i].0.max(b[j].0), a[i].1.min(b[j].1));
        total += (e - s).max(0);
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    total
}

fn length(v: &[(i64, i64)]) -> i64 {
    v.iter().map(|(s, e)| e - s).sum()
}

/// On-shift and busy-while-on-shift time of one driver within `window`.
fn driver_time(d: &DriverRecord, window: (i64, i64)) -> (i64, i64) {
    let shifts = union(&d.shifts);
    let on: Vec<(i64, i64)> = shifts
        .iter()
        .map(|&(s, e)| (s.max(window.0), e.min(window.1)))
        .filter(|(s, e)| e > s)
        .collect();
    let busy = union(&d.busy);
    (length(&on), overlap(&on, &busy))
}

/// On-shift and busy time of every driver within `window`.
fn fleet_time(drivers: &[DriverRecord], window: (i64, i64)) -> (i64, i64) {
    drivers
        .iter()
        .map(|d| driver_time(d, window))
        .fold((0, 0), |(a, b), (on, busy)| (a + on, b + busy))
}

fn delivery_ms(o: &OrderRecord) -> Option<f64> {
    o.delivered_ms.map(|t| (t - o.placed_ms) as f64)
}

fn wait_ms(o: &OrderRecord) -> Option<f64> {
    o.assigned_ms.map(|t| (t - o.placed_ms) as f64)
}

/// Late and on-time delivered orders among `orders` (those without a promise in neither).
fn lateness<'a>(orders: impl Iterator<Item = &'a OrderRecord>) -> (usize, usize) {
    orders.fold((0, 0), |(late, judged), o| {
        match (o.delivered_ms, o.promised_ms) {
            (Some(d), Some(p)) => (late + usize::from(d > p), judged + 1),
            _ => (late, judged),
        }
    })
}

/// The day's figures.
pub fn summarize(d: &DayRecord) -> Summary {
    let orders = &d.orders;
    let mut offers: Vec<f64> = orders.iter().map(|o| f64::from(o.offers)).collect();
    offers.sort_by(f64::total_cmp);
    // Shifts are counted wherever they lie: the day's bounds are the record's to choose.
    let (on_shift_ms, busy_ms) = fleet_time(&d.drivers, (i64::MIN, i64::MAX));
    let delivered = orders.iter().filter(|o| o.delivered_ms.is_some()).count();
    let (late, judged) = lateness(orders.iter());
    Summary {
        placed: orders.len(),
        delivered,
        cancelled: orders.iter().filter(|o| o.cancelled_ms.is_some()).count(),
        never_assigned: orders.iter().filter(|o| o.assigned_ms.is_none()).count(),
        delivery_time_ms: percentiles(orders.iter().filter_map(delivery_ms).collect()),
        wait_for_assignment_ms: percentiles(orders.iter().filter_map(wait_ms).collect()),
        offers_mean: share(offers.iter().sum(), offers.len() as f64),
        offers_p90: percentile(&offers, 90.0),
        on_shift_ms,
        busy_ms,
        idle_share: share((on_shift_ms - busy_ms) as f64, on_shift_ms as f64),
        late,
        late_share: share(late as f64, judged as f64),
        orders_per_driver_hour: share(delivered as f64, on_shift_ms as f64 / HOUR_MS as f64),
    }
}

/// The day hour by hour, for the plots: element `h` covers [start + h h, start + (h+1) h).
/// Order figures go by the hour the order was placed in (what a customer ordering then got).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hourly {
    /// Unix ms of the first hour's start.
    pub start_ms: i64,
    pub placed: Vec<usize>,
    pub delivery_p50_ms: Vec<Option<f64>>,
    pub wait_p50_ms: Vec<Option<f64>>,
    pub idle_share: Vec<Option<f64>>,
    pub late_share: Vec<Option<f64>>,
}

/// Hours in the day (at least one; a partial last hour counts).
pub fn hours(d: &DayRecord) -> usize {
    let span = (d.end_ms - d.start_ms).max(1);
    usize::try_from((span + HOUR_MS - 1) / HOUR_MS).unwrap_or(1)
}

/// The day's figures per hour.
pub fn hourly(d: &DayRecord) -> Hourly {
    let n = hours(d);
    let mut by_hour: Vec<Vec<&OrderRecord>> = vec![Vec::new(); n];
    for o in &d.orders {
        let h = (o.placed_ms - d.start_ms).div_euclid(HOUR_MS);
        if let Ok(h) = usize::try_from(h)
            && h < n
        {
            by_hour[h].push(o);
        }
    }
    let p50 = |v: Vec<f64>| percentiles(v).p50;
    let mut out = Hourly {
        start_ms: d.start_ms,
        ..Hourly::default()
    };
    for (h, os) in by_hour.iter().enumerate() {
        out.placed.push(os.len());
        out.delivery_p50_ms
            .push(p50(os.iter().filter_map(|o| delivery_ms(o)).collect()));
        out.wait_p50_ms
            .push(p50(os.iter().filter_map(|o| wait_ms(o)).collect()));
        let (late, judged) = lateness(os.iter().copied());
        out.late_share.push(share(late as f64, judged as f64));
        let from = d.start_ms + h as i64 * HOUR_MS;
        let (on, busy) = fleet_time(&d.drivers, (from, from + HOUR_MS));
        out.idle_share.push(share((on - busy) as f64, on as f64));
    }
    out
}
