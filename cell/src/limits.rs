//! Per-user limits at the cell (seed §13), `[limits]` in the config:
//!
//! - the order placement limit ([`crate::orders::OrderLimit`], default 5 an hour per
//!   customer), derived from the stored orders, so it survives restarts and takeovers;
//! - a per-user API request rate ([`ApiLimiter`]): a token bucket per authenticated principal,
//!   checked by the bearer-token extractor on every REST call, so a user who reaches the cell
//!   directly (or through several routers) is held to the same rate as through one router.
//!   In memory: a restart refills the buckets, which costs at most one burst per user.
//!
//! Admins are exempt from both (an operator fixing an incident must not be throttled;
//! admin tokens live 15 minutes). A refusal is 429 with `Retry-After` and the limit in the
//! error body (`error.limit`).

use crate::auth::Principal;
use crate::orders::OrderLimit;
use domain::UnixMs;
use serde::{Deserialize, Serialize};
use service::config::{Section, Validate};
use service::limit::Limiter;
use std::time::Duration;

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Orders one customer may place per `order_window_ms`; 0 = no limit.
    pub orders_per_window: u32,
    /// The order limit's sliding window (the seed's "per hour").
    pub order_window_ms: u64,
    /// REST requests per second per user (customer, restaurant, driver); 0 = no limit.
    /// Half the router's per-token 200/s and equal to the per-driver ping rate: a phone or a
    /// tablet sends a few requests a second, a driver's REST pings stay within it.
    pub per_user_rps: u32,
    /// Requests a user may send at once above the rate.
    pub per_user_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            orders_per_window: 5,
            order_window_ms: 3_600_000,
            per_user_rps: 100,
            per_user_burst: 200,
        }
    }
}

impl LimitsConfig {
    pub fn order_limit(&self) -> OrderLimit {
        OrderLimit {
            max: self.orders_per_window,
            window: Duration::from_millis(self.order_window_ms),
        }
    }
}

impl Validate for LimitsConfig {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(
            (60_000..=7 * 86_400_000).contains(&self.order_window_ms),
            "order_window_ms",
            || {
                format!(
                    "must be 60000..=604800000 (1 minute to 7 days; got {})",
                    self.order_window_ms
                )
            },
        );
        // The order limit reads this many index keys per placement.
        s.ensure(
            self.orders_per_window <= 10_000,
            "orders_per_window",
            || format!("must be at most 10000 (got {})", self.orders_per_window),
        );
        s.ensure(
            self.per_user_rps == 0 || self.per_user_burst >= 1,
            "per_user_burst",
            || "must be at least 1 while per_user_rps is set (got 0)".to_owned(),
        );
    }
}

/// The per-user request rate: one token bucket per principal.
pub struct ApiLimiter {
    limiter: Limiter<Principal>,
    rps: u32,
    burst: u32,
}

impl ApiLimiter {
    pub fn new(cfg: &LimitsConfig) -> Self {
        ApiLimiter {
            limiter: Limiter::new(cfg.per_user_rps, cfg.per_user_burst),
            rps: cfg.per_user_rps,
            burst: cfg.per_user_burst,
        }
    }

    /// Takes one request from `who`'s allowance; on refusal, the seconds until the next one.
    /// Admins are never limited.
    pub fn check(&self, who: &Principal, now: UnixMs) -> Result<(), u64> {
        if matches!(who, Principal::Admin) {
            return Ok(());
        }
        self.limiter
            .check(who, u64::try_from(now.0).unwrap_or(0))
            .inspect_err(|_| {
                metrics::counter!("cell_rate_limited_total", "scope" => "user").increment(1);
            })
    }

    /// (rate per second, burst), for the error body.
    pub fn limit(&self) -> (u32, u32) {
        (self.rps, self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::CustomerId;

    fn limiter(rps: u32, burst: u32) -> ApiLimiter {
        ApiLimiter::new(&LimitsConfig {
            per_user_rps: rps,
            per_user_burst: burst,
            ..LimitsConfig::default()
        })
    }

    #[test]
    fn a_user_past_the_burst_waits_and_others_do_not() {
        let l = limiter(2, 3);
        let a = Principal::Customer(CustomerId(1));
        let now = UnixMs(1_000_000);
        for _ in 0..3 {
            assert_eq!(l.check(&a, now), Ok(()));
        }
        assert_eq!(l.check(&a, now), Err(1));
        assert_eq!(l.check(&Principal::Customer(CustomerId(2)), now), Ok(()));
        // 2/s: one more after half a second.
        assert_eq!(l.check(&a, UnixMs(now.0 + 500)), Ok(()));
    }

    #[test]
    fn admins_are_exempt() {
        let l = limiter(1, 1);
        let now = UnixMs(5_000);
        for _ in 0..100 {
            assert_eq!(l.check(&Principal::Admin, now), Ok(()));
        }
        let c = Principal::Customer(CustomerId(3));
        assert_eq!(l.check(&c, now), Ok(()));
        assert!(l.check(&c, now).is_err());
    }

    #[test]
    fn the_order_limit_comes_from_the_config() {
        let cfg = LimitsConfig::default();
        assert_eq!(
            cfg.order_limit(),
            OrderLimit {
                max: 5,
                window: Duration::from_secs(3600)
            }
        );
    }
}
