//! The rules, as pure functions of what the scorer gathered and the rule's settings: no store,
//! no clock (times come in as arguments). Each returns the evidence of a flag, or `None`.
//!
//! Counting rules (cancellations, rejections) keep the times of recent occurrences per
//! subject; [`Window::push`] drops those older than the window and says whether this one
//! reached the count. A subject is flagged once when it reaches the count, not again for every
//! further occurrence inside the same window.

use super::config::Rule;
use domain::{Cents, OrderId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

/// Which rule raised a flag. Names are stable: metrics labels, the API and the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    HighOrderValue,
    DeliveryDistance,
    CustomerCancellations,
    BillingCountry,
    RestaurantRejections,
    MenuPrice,
    GpsSpoof,
    DeliveredFar,
    PairCancellations,
}

impl RuleKind {
    pub const ALL: [RuleKind; 9] = [
        RuleKind::HighOrderValue,
        RuleKind::DeliveryDistance,
        RuleKind::CustomerCancellations,
        RuleKind::BillingCountry,
        RuleKind::RestaurantRejections,
        RuleKind::MenuPrice,
        RuleKind::GpsSpoof,
        RuleKind::DeliveredFar,
        RuleKind::PairCancellations,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::HighOrderValue => "high_order_value",
            RuleKind::DeliveryDistance => "delivery_distance",
            RuleKind::CustomerCancellations => "customer_cancellations",
            RuleKind::BillingCountry => "billing_country",
            RuleKind::RestaurantRejections => "restaurant_rejections",
            RuleKind::MenuPrice => "menu_price",
            RuleKind::GpsSpoof => "gps_spoof",
            RuleKind::DeliveredFar => "delivered_far",
            RuleKind::PairCancellations => "pair_cancellations",
        }
    }

    pub fn parse(s: &str) -> Option<RuleKind> {
        RuleKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Recent occurrence times (ms) of one subject for one counting rule, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window(pub Vec<i64>);

impl Window {
    /// Records an occurrence at `at`, forgetting those at or before `at - window_ms`, and
    /// keeping at most `count` times (older ones cannot matter once `count` are newer).
    /// `Some(times)` when this occurrence brings the subject to `count` within the window.
    pub fn push(&mut self, at: i64, rule: &Rule) -> Option<Vec<i64>> {
        let from = at.saturating_sub(i64::try_from(rule.window_ms).unwrap_or(i64::MAX));
        self.0.retain(|&t| t > from);
        let had = self.0.len();
        self.0.push(at);
        self.0.sort_unstable();
        let count = rule.count.max(1) as usize;
        if self.0.len() > count {
            self.0.drain(..self.0.len() - count);
        }
        (had + 1 == count).then(|| self.0.clone())
    }
}

/// Order totals seen, bucketed (each bucket ~19 % wide, 2^(1/4)), for the cell's p99 without
/// keeping every total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub counts: Vec<u64>,
}

const BUCKETS: usize = 160;

fn bucket_of(cents: i64) -> usize {
    let c = cents.max(1) as f64;
    ((c.log2() * 4.0).floor() as usize).min(BUCKETS - 1)
}

fn bucket_top(b: usize) -> i64 {
    2f64.powf((b as f64 + 1.0) / 4.0).ceil() as i64
}

impl Totals {
    pub fn add(&mut self, total: Cents) {
        if self.counts.len() < BUCKETS {
            self.counts.resize(BUCKETS, 0);
        }
        self.counts[bucket_of(total.0)] += 1;
    }

    pub fn len(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The upper edge of the bucket holding the 99th percentile (an over-estimate by at most
    /// one bucket's width, so the rule errs towards not flagging).
    pub fn p99(&self) -> Option<Cents> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let rank = n - n / 100;
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Cents(bucket_top(b)));
            }
        }
        None
    }
}

/// Very high order value: above the configured amount, or above the cell's p99 once enough
/// orders were seen (`totals` is before this order).
pub fn high_order_value(total: Cents, totals: &Totals, rule: &Rule) -> Option<Value> {
    let limit = Cents(rule.threshold as i64);
    let p99 = (rule.count > 0 && totals.len() >= u64::from(rule.count))
        .then(|| totals.p99())
        .flatten();
    let over_limit = total > limit;
    let over_p99 = p99.is_some_and(|p| total > p);
    (over_limit || over_p99).then(|| {
        json!({
            "total_cents": total.0, "limit_cents": limit.0,
            "p99_cents": p99.map(|p| p.0), "orders_seen": totals.len(),
            "over": if over_limit { "limit" } else { "p99" },
        })
    })
}

/// Unusual delivery distance: restaurant to drop-off, straight line.
pub fn delivery_distance(
    restaurant: (f64, f64),
    dropoff: (f64, f64),
    rule: &Rule,
) -> Option<Value> {
    let km = catalog::geo::haversine_m(restaurant.0, restaurant.1, dropoff.0, dropoff.1) / 1000.0;
    (km > rule.threshold).then(|| {
        json!({"distance_km": (km * 100.0).round() / 100.0, "limit_km": rule.threshold,
            "restaurant": [restaurant.0, restaurant.1], "dropoff": [dropoff.0, dropoff.1]})
    })
}

/// Billing country differs from the country the cell delivers in.
pub fn billing_country(billing: Option<&str>, delivery: &str) -> Option<Value> {
    let billing = billing?;
    (!billing.eq_ignore_ascii_case(delivery))
        .then(|| json!({"billing_country": billing, "delivery_country": delivery}))
}

/// An item priced far above the median of its category in the region.
pub fn menu_price(
    item: &str,
    category: &str,
    price: Cents,
    median: Option<(Cents, usize)>,
    rule: &Rule,
) -> Option<Value> {
    let (median, restaurants) = median?;
    if restaurants < rule.count as usize || median <= Cents::ZERO {
        return None;
    }
    let ratio = price.0 as f64 / median.0 as f64;
    (ratio > rule.threshold).then(|| {
        json!({"item": item, "category": category, "price_cents": price.0,
            "median_cents": median.0, "ratio": (ratio * 100.0).round() / 100.0,
            "limit_ratio": rule.threshold, "restaurants_in_category": restaurants})
    })
}

/// The median of `prices` (the lower middle for an even count), `None` when empty.
pub fn median(mut prices: Vec<Cents>) -> Option<Cents> {
    if prices.is_empty() {
        return None;
    }
    prices.sort_unstable();
    Some(prices[(prices.len() - 1) / 2])
}

/// A `delivered` tap far from the drop-off.
pub fn delivered_far(
    order: OrderId,
    tap: (f64, f64),
    dropoff: (f64, f64),
    rule: &Rule,
) -> Option<Value> {
    let m = catalog::geo::haversine_m(tap.0, tap.1, dropoff.0, dropoff.1);
    (m > rule.threshold).then(|| {
        json!({"order_id": order.to_string(), "distance_m": m.round(), "limit_m": rule.threshold,
            "tap": [tap.0, tap.1], "dropoff": [dropoff.0, dropoff.1]})
    })
}

/// The evidence of a counting rule that reached its count.
pub fn counted(times: &[i64], rule: &Rule, extra: Value) -> Value {
    let mut v = json!({"count": times.len(), "window_ms": rule.window_ms, "at_ms": times});
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(threshold: f64, count: u32, window_ms: u64) -> Rule {
        Rule {
            enabled: true,
            threshold,
            count,
            window_ms,
        }
    }

    #[test]
    fn a_window_flags_once_when_the_count_is_reached_inside_it() {
        let r = rule(0.0, 3, 1_000);
        let mut w = Window::default();
        assert_eq!(w.push(0, &r), None);
        assert_eq!(w.push(500, &r), None);
        // The first occurrence left the window: still two.
        assert_eq!(w.push(1_200, &r), None);
        assert_eq!(w.push(1_300, &r), Some(vec![500, 1_200, 1_300]));
        let mut w = Window::default();
        w.push(0, &r);
        w.push(10, &r);
        assert_eq!(w.push(20, &r), Some(vec![0, 10, 20]));
        // Already flagged for this window: the fourth does not flag again.
        assert_eq!(w.push(30, &r), None);
        assert_eq!(w.0.len(), 3, "bounded by the count");
    }

    #[test]
    fn p99_comes_from_the_buckets_and_needs_enough_orders() {
        let mut t = Totals::default();
        for _ in 0..99 {
            t.add(Cents(2_000));
        }
        t.add(Cents(90_000));
        let p99 = t.p99().unwrap();
        assert!(p99 >= Cents(2_000) && p99 < Cents(2_500), "{p99:?}");
        let r = rule(1_000_000.0, 100, 0);
        assert!(high_order_value(Cents(9_000), &t, &r).is_some());
        assert!(high_order_value(Cents(2_040), &t, &r).is_none());
        let too_few = rule(1_000_000.0, 101, 0);
        assert!(high_order_value(Cents(9_000), &t, &too_few).is_none());
    }

    #[test]
    fn the_median_is_the_lower_middle() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![Cents(5), Cents(1), Cents(3)]), Some(Cents(3)));
        assert_eq!(
            median(vec![Cents(4), Cents(1), Cents(3), Cents(2)]),
            Some(Cents(2))
        );
    }
}
