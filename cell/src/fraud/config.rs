//! `[fraud]`: the scorer's switches and its rule table, one `[fraud.rules.<rule>]` per rule,
//! each with the same four keys (what `threshold` and `count` mean is the rule's, listed on
//! [`Rules`]). A rule table in the file replaces the rule's defaults whole: every key of it
//! must be given, so a half-written rule is an error rather than a silent mix.

use super::rules::RuleKind;
use serde::{Deserialize, Serialize};
use service::config::{Section, Validate};

/// The `[fraud]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FraudConfig {
    /// Off: no scorer and no dispatch signals (flags already stored stay listed).
    pub enabled: bool,
    /// ISO 3166-1 alpha-2 country the cell delivers in (a cell is one city), upper case:
    /// the billing-country rule compares the payment method's country with it.
    pub delivery_country: String,
    /// Dispatch signals (spoofed pings, `delivered` taps) waiting to be scored. They come from
    /// the ping path, which must never wait: when full, a signal is dropped and counted
    /// (`cell_fraud_signals_dropped_total`). 1,024 holds a burst of spoofing from hundreds of
    /// drivers while one store write per signal drains it.
    pub signal_queue: usize,
    pub rules: Rules,
}

impl Default for FraudConfig {
    fn default() -> Self {
        FraudConfig {
            enabled: true,
            delivery_country: "US".into(),
            signal_queue: 1_024,
            rules: Rules::default(),
        }
    }
}

/// One rule's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub enabled: bool,
    /// The rule's limit (see [`Rules`]); 0 where the rule has none.
    pub threshold: f64,
    /// How many occurrences within `window_ms` flag (see [`Rules`]); 0 where unused.
    pub count: u32,
    /// The window occurrences are counted in, or how long a computed value is reused;
    /// 0 where unused.
    pub window_ms: u64,
}

impl Rule {
    const fn new(threshold: f64, count: u32, window_ms: u64) -> Rule {
        Rule {
            enabled: true,
            threshold,
            count,
            window_ms,
        }
    }
}

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// The rule table. Per rule, what `threshold`, `count` and `window_ms` mean:
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    /// `threshold`: an order total in cents above which an order is flagged; `count`: orders
    /// seen before the cell's p99 of order totals also applies (0: never).
    pub high_order_value: Rule,
    /// `threshold`: km from the restaurant to the drop-off (straight line).
    pub delivery_distance: Rule,
    /// `count` cancellations by one customer within `window_ms`.
    pub customer_cancellations: Rule,
    /// No settings: the payment method's billing country differs from `delivery_country`.
    pub billing_country: Rule,
    /// `count` rejections or cancellations by one restaurant within `window_ms`.
    pub restaurant_rejections: Rule,
    /// `threshold`: ratio of an ordered item's price to the median price of its category in
    /// the restaurant's region; `count`: restaurants with that category needed for a median;
    /// `window_ms`: how long a computed median is reused (and one item is flagged at most once).
    pub menu_price: Rule,
    /// No settings: every ping refused as spoofed (implausible speed) is a flag.
    pub gps_spoof: Rule,
    /// `threshold`: metres between the driver's last position at the `delivered` tap and
    /// the drop-off.
    pub delivered_far: Rule,
    /// `count` cancellations at pickup (the driver had reached the restaurant; the order
    /// machine refuses a cancel once the food is picked up) of one driver's orders from one
    /// restaurant within `window_ms`.
    pub pair_cancellations: Rule,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            high_order_value: Rule::new(50_000.0, 1_000, 0),
            delivery_distance: Rule::new(15.0, 0, 0),
            customer_cancellations: Rule::new(0.0, 3, DAY_MS),
            billing_country: Rule::new(0.0, 0, 0),
            restaurant_rejections: Rule::new(0.0, 10, DAY_MS),
            menu_price: Rule::new(3.0, 5, HOUR_MS),
            gps_spoof: Rule::new(0.0, 0, 0),
            delivered_far: Rule::new(300.0, 0, 0),
            pair_cancellations: Rule::new(0.0, 2, 7 * DAY_MS),
        }
    }
}

impl Rules {
    pub fn get(&self, kind: RuleKind) -> &Rule {
        match kind {
            RuleKind::HighOrderValue => &self.high_order_value,
            RuleKind::DeliveryDistance => &self.delivery_distance,
            RuleKind::CustomerCancellations => &self.customer_cancellations,
            RuleKind::BillingCountry => &self.billing_country,
            RuleKind::RestaurantRejections => &self.restaurant_rejections,
            RuleKind::MenuPrice => &self.menu_price,
            RuleKind::GpsSpoof => &self.gps_spoof,
            RuleKind::DeliveredFar => &self.delivered_far,
            RuleKind::PairCancellations => &self.pair_cancellations,
        }
    }

    pub fn get_mut(&mut self, kind: RuleKind) -> &mut Rule {
        match kind {
            RuleKind::HighOrderValue => &mut self.high_order_value,
            RuleKind::DeliveryDistance => &mut self.delivery_distance,
            RuleKind::CustomerCancellations => &mut self.customer_cancellations,
            RuleKind::BillingCountry => &mut self.billing_country,
            RuleKind::RestaurantRejections => &mut self.restaurant_rejections,
            RuleKind::MenuPrice => &mut self.menu_price,
            RuleKind::GpsSpoof => &mut self.gps_spoof,
            RuleKind::DeliveredFar => &mut self.delivered_far,
            RuleKind::PairCancellations => &mut self.pair_cancellations,
        }
    }

    /// Whether `kind` is on.
    pub fn on(&self, kind: RuleKind) -> bool {
        self.get(kind).enabled
    }
}

/// Which settings a rule reads, for validation: (threshold, count, window).
fn needs(kind: RuleKind) -> (bool, bool, bool) {
    match kind {
        RuleKind::HighOrderValue => (true, false, false),
        RuleKind::DeliveryDistance | RuleKind::DeliveredFar => (true, false, false),
        RuleKind::CustomerCancellations
        | RuleKind::RestaurantRejections
        | RuleKind::PairCancellations => (false, true, true),
        RuleKind::MenuPrice => (true, true, true),
        RuleKind::BillingCountry | RuleKind::GpsSpoof => (false, false, false),
    }
}

impl Validate for FraudConfig {
    fn validate(&self, s: &mut Section<'_>) {
        let c = &self.delivery_country;
        s.ensure(
            c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()),
            "delivery_country",
            || format!("must be an upper-case ISO 3166-1 alpha-2 code such as \"US\" (got {c:?})"),
        );
        s.ensure(
            (1..=1_000_000).contains(&self.signal_queue),
            "signal_queue",
            || format!("must be 1..=1000000 (got {})", self.signal_queue),
        );
        let mut rules = s.section("rules");
        for kind in RuleKind::ALL {
            let r = self.rules.get(kind);
            if !r.enabled {
                continue;
            }
            let (threshold, count, window) = needs(kind);
            let mut rs = rules.section(kind.as_str());
            if threshold {
                rs.ensure(
                    r.threshold.is_finite() && r.threshold > 0.0,
                    "threshold",
                    || format!("must be a positive number (got {})", r.threshold),
                );
            }
            if count {
                rs.ensure(r.count > 0, "count", || "must be at least 1 (got 0)".into());
            }
            if window {
                rs.ensure(r.window_ms > 0, "window_ms", || {
                    "must be greater than 0 (got 0)".into()
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_a_rule_table_must_be_whole() {
        assert!(service::config::check("fraud", &FraudConfig::default()).is_ok());
        let c: FraudConfig = toml::from_str(
            "[rules.delivery_distance]\nenabled = true\nthreshold = 4.5\ncount = 0\nwindow_ms = 0",
        )
        .unwrap();
        assert_eq!(c.rules.delivery_distance.threshold, 4.5);
        assert_eq!(c.rules.menu_price, Rules::default().menu_price);
        assert!(
            toml::from_str::<FraudConfig>("[rules.delivery_distance]\nthreshold = 4.5").is_err()
        );
        assert!(toml::from_str::<FraudConfig>("[rules.no_such_rule]\nenabled = true").is_err());
    }

    #[test]
    fn every_problem_is_reported_under_its_key() {
        let mut c = FraudConfig {
            delivery_country: "usa".into(),
            signal_queue: 0,
            ..FraudConfig::default()
        };
        c.rules.menu_price = Rule::new(0.0, 0, 0);
        c.rules.gps_spoof = Rule::new(0.0, 0, 0);
        c.rules.pair_cancellations.enabled = false;
        c.rules.pair_cancellations.count = 0;
        let Err(service::config::ConfigError::Invalid(p)) = service::config::check("fraud", &c)
        else {
            panic!("expected problems");
        };
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "fraud.delivery_country",
                "fraud.signal_queue",
                "fraud.rules.menu_price.threshold",
                "fraud.rules.menu_price.count",
                "fraud.rules.menu_price.window_ms",
            ]
        );
    }
}
