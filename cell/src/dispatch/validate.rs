//! What `[dispatch]` (with `[dispatch.matching]` and `[dispatch.pings]`) may not hold: the
//! values under which matching never offers anything or every ping is refused. Checked in
//! the cell's one validation pass at startup.

use super::DispatchConfig;
use super::matching::machine::MatchConfig;
use super::pings::PingLimits;
use service::config::{Section, Validate};

impl Validate for DispatchConfig {
    fn validate(&self, s: &mut Section<'_>) {
        s.validate("matching", &self.matching);
        s.validate("pings", &self.pings);
        for (key, cents) in [
            ("payout_base_cents", self.payout_base_cents),
            ("payout_per_km_cents", self.payout_per_km_cents),
        ] {
            s.ensure(cents >= 0, key, || {
                format!("must not be negative (got {cents})")
            });
        }
    }
}

impl Validate for MatchConfig {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(
            self.radius_m.is_finite() && self.radius_m > 0.0,
            "radius_m",
            || format!("must be greater than 0 (got {})", self.radius_m),
        );
        // The second phase widens the search; a narrower one would never find more drivers.
        s.ensure(
            self.wide_radius_m.is_finite() && self.wide_radius_m >= self.radius_m,
            "wide_radius_m",
            || {
                format!(
                    "must be at least radius_m = {} (got {})",
                    self.radius_m, self.wide_radius_m
                )
            },
        );
        s.ensure(self.candidates > 0, "candidates", || {
            "must be greater than 0 (got 0)".to_owned()
        });
        s.ensure(self.offer_ttl_ms > 0, "offer_ttl_ms", || {
            "must be greater than 0 (got 0)".to_owned()
        });
        // A margin as long as the lease would show a deadline already passed.
        s.ensure(
            self.offer_display_margin_ms < self.offer_ttl_ms,
            "offer_display_margin_ms",
            || {
                format!(
                    "must be less than offer_ttl_ms = {} (got {})",
                    self.offer_ttl_ms, self.offer_display_margin_ms
                )
            },
        );
        for (key, w) in [
            ("weight_distance", self.weight_distance),
            ("weight_heading", self.weight_heading),
            ("weight_acceptance", self.weight_acceptance),
        ] {
            s.ensure(w.is_finite() && w >= 0.0, key, || {
                format!("must be a number >= 0 (got {w})")
            });
        }
    }
}

impl Validate for PingLimits {
    fn validate(&self, s: &mut Section<'_>) {
        // A negative window refuses every ping.
        for (key, ms) in [
            ("max_future_skew_ms", self.max_future_skew_ms),
            ("max_age_ms", self.max_age_ms),
        ] {
            s.ensure(ms >= 0, key, || format!("must not be negative (got {ms})"));
        }
        s.ensure(
            self.max_speed_mps.is_finite() && self.max_speed_mps > 0.0,
            "max_speed_mps",
            || format!("must be greater than 0 (got {})", self.max_speed_mps),
        );
        s.ensure(
            self.min_jump_m.is_finite() && self.min_jump_m >= 0.0,
            "min_jump_m",
            || format!("must be a number >= 0 (got {})", self.min_jump_m),
        );
        s.ensure(
            self.max_pings_per_s.is_finite() && self.max_pings_per_s >= 0.0,
            "max_pings_per_s",
            || {
                format!(
                    "must be a number >= 0, 0 = no limit (got {})",
                    self.max_pings_per_s
                )
            },
        );
    }
}
