//! `[dispatch.matching]`: the matching settings, with the offer leases' (TTL, display
//! margin, lockout switch, auto-offline after missed offers).

use domain::Cents;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Matching settings (`[dispatch.matching]` in the cell config).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchConfig {
    pub radius_m: f64,
    pub wide_radius_m: f64,
    /// Candidates fetched per attempt (geostore `nearest` k).
    pub candidates: usize,
    pub offer_ttl_ms: u64,
    /// Offers per radius before widening.
    pub offers_per_phase: u32,
    /// Once delayed, how often to look again.
    pub retry_delayed_ms: u64,
    /// After a search found nobody, wait this long before the next round.
    pub empty_retry_ms: u64,
    pub weight_distance: f64,
    pub weight_heading: f64,
    pub weight_acceptance: f64,
    /// More orders waiting than this: skip scoring, offer to the nearest (seed §12 degrade).
    pub degrade_above_waiting: usize,
    /// Queue priority: an order's value buys it this much waiting time per dollar...
    pub value_bonus_ms_per_dollar: u64,
    /// ... up to this much (V): no order is overtaken by one that arrived more than V later.
    pub value_bonus_cap_ms: u64,
    /// The deadline an offer shows is this much before its lease ends, so a tap at the
    /// shown deadline still lands in time. Less than `offer_ttl_ms`.
    pub offer_display_margin_ms: u64,
    /// A driver who declined or timed out on an order is never offered it again, unless
    /// this is on and nobody else is available.
    pub reoffer_when_exhausted: bool,
    /// This many timed-out offers in a row take a driver offline (`missed_offers`); 0 =
    /// never. Declines and offers the driver could not receive do not count.
    pub offline_after_timeouts: u32,
}

impl Default for MatchConfig {
    fn default() -> Self {
        Self {
            radius_m: 5_000.0,
            wide_radius_m: 10_000.0,
            candidates: 20,
            offer_ttl_ms: 30_000,
            offers_per_phase: 3,
            retry_delayed_ms: 30_000,
            empty_retry_ms: 10_000,
            weight_distance: 0.6,
            weight_heading: 0.2,
            weight_acceptance: 0.2,
            degrade_above_waiting: 500,
            value_bonus_ms_per_dollar: 2_000,
            value_bonus_cap_ms: 120_000,
            offer_display_margin_ms: 2_000,
            reoffer_when_exhausted: false,
            offline_after_timeouts: 3,
        }
    }
}

impl MatchConfig {
    pub fn offer_ttl(&self) -> Duration {
        Duration::from_millis(self.offer_ttl_ms)
    }

    /// What the offer leases need of this config.
    pub fn lease(&self) -> crate::dispatch::offers::LeaseConfig {
        crate::dispatch::offers::LeaseConfig {
            ttl: self.offer_ttl(),
            display_margin: Duration::from_millis(self.offer_display_margin_ms),
            offline_after_timeouts: self.offline_after_timeouts,
        }
    }

    /// The waiting time an order's value is worth, capped at `value_bonus_cap_ms`.
    pub fn value_bonus_ms(&self, value: Cents) -> i64 {
        let cents = u64::try_from(value.0).unwrap_or(0);
        let ms = cents.saturating_mul(self.value_bonus_ms_per_dollar) / 100;
        i64::try_from(ms.min(self.value_bonus_cap_ms)).unwrap_or(i64::MAX)
    }
}
