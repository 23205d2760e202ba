//! The durable retry schedule of a payment effect, as a pure function of the previous
//! attempt and `now`: exponential backoff with equal jitter (the same shape as the in-call
//! retries of `payments::RetryPolicy`), given up once the retry period has passed since the
//! first failure.

use domain::{OrderId, UnixMs};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Backoff and the retry period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub base: Duration,
    pub max: Duration,
    pub period: Duration,
}

/// Where an effect's retries stand (the retry record's value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempts {
    /// Failed attempts so far.
    pub failures: u32,
    /// When the first one failed: the retry period counts from here.
    pub first_failed_at: UnixMs,
    /// Not before this.
    pub next_at: UnixMs,
}

/// What to do after a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    RetryAt(Attempts),
    /// The retry period is over: the effect failed for good.
    GiveUp,
}

impl Schedule {
    /// The plan after an attempt for `order` failed retryably at `now`, given the earlier
    /// failures (`None` for the first). The jitter is seeded by the order, so orders that
    /// failed together spread apart while one order's schedule is reproducible.
    pub fn after_failure(&self, order: OrderId, prev: Option<Attempts>, now: UnixMs) -> Next {
        let first = prev.map_or(now, |p| p.first_failed_at);
        let failures = prev.map_or(0, |p| p.failures) + 1;
        let elapsed = u64::try_from(now.0.saturating_sub(first.0)).unwrap_or(0);
        if Duration::from_millis(elapsed) >= self.period {
            return Next::GiveUp;
        }
        let policy = payments::RetryPolicy {
            max_retries: u32::MAX,
            base: self.base,
            max: self.max,
        };
        let wait = policy.backoff(failures, order.0);
        let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        Next::RetryAt(Attempts {
            failures,
            first_failed_at: first,
            next_at: UnixMs(now.0.saturating_add(wait_ms)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            period: Duration::from_secs(24 * 3600),
        }
    }

    #[test]
    fn waits_double_with_jitter_up_to_the_cap() {
        let s = schedule();
        let order = OrderId(77);
        let mut prev = None;
        let mut now = UnixMs(1_000_000);
        for failures in 1..=12u32 {
            let Next::RetryAt(a) = s.after_failure(order, prev, now) else {
                panic!("gave up after {failures}")
            };
            assert_eq!(a.failures, failures);
            assert_eq!(a.first_failed_at, UnixMs(1_000_000));
            let wait = a.next_at.0 - now.0;
            // Equal jitter: between half and all of min(cap, base × 2^(n-1)).
            let exp = (1_000i64 << (failures - 1)).min(300_000);
            assert!(
                (exp / 2..=exp).contains(&wait),
                "failure {failures}: waited {wait} of {exp}"
            );
            prev = Some(a);
            now = a.next_at;
        }
        // Reproducible for one order, spread across orders.
        assert_eq!(
            s.after_failure(order, None, now),
            s.after_failure(order, None, now)
        );
        let others: std::collections::HashSet<_> = (0..20)
            .map(|o| match s.after_failure(OrderId(o), None, now) {
                Next::RetryAt(a) => a.next_at,
                Next::GiveUp => unreachable!(),
            })
            .collect();
        assert!(others.len() > 10, "jitter spreads orders: {}", others.len());
    }

    #[test]
    fn gives_up_once_the_period_has_passed_since_the_first_failure() {
        let s = schedule();
        let first = Attempts {
            failures: 30,
            first_failed_at: UnixMs(0),
            next_at: UnixMs(0),
        };
        let day = 24 * 3600 * 1000;
        assert!(matches!(
            s.after_failure(OrderId(1), Some(first), UnixMs(day - 1)),
            Next::RetryAt(_)
        ));
        assert_eq!(
            s.after_failure(OrderId(1), Some(first), UnixMs(day)),
            Next::GiveUp
        );
    }
}
