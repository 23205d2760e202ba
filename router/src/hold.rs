//! Holding a request while its cell restarts: instead of answering 503 the moment a cell
//! stops answering, the router retries the request for up to `[http] hold_ms`, so a rolling
//! restart (about a second) is a short delay for customers and tablets, not an error.
//!
//! What may be retried depends on how far the request got ([`Reach`]): one the cell never
//! received (connect refused, the cell marked down, a standby that answered "not me") is
//! always safe to send again; one that may have reached the cell only when repeating it
//! cannot change the outcome ([`retry_safe`]: a GET or HEAD, or a request carrying an
//! `Idempotency-Key`, which the cell dedupes).
//!
//! Sans-IO: [`Hold`] takes `now` and says how long to wait; the caller sleeps.

use axum::http::{HeaderMap, Method};
use std::time::{Duration, Instant};

/// First pause between attempts; doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(20);
/// A restarted cell is found within this long of listening again.
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// How far a failed attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The cell did not take the request: connecting failed, or it answered that it is not
    /// serving. Sending it again cannot do anything twice.
    NotSent,
    /// The request may have reached the cell (the connection broke or timed out after it
    /// was written).
    MaybeSent,
    /// Retrying cannot help (a bad endpoint in the map, a body too large).
    Final,
}

/// Whether a request that may have reached the cell can be sent again without effect: GET
/// and HEAD read, and the cell answers a repeated `Idempotency-Key` with its first answer.
pub fn retry_safe(method: &Method, headers: &HeaderMap) -> bool {
    *method == Method::GET
        || *method == Method::HEAD
        || headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !v.trim().is_empty())
}

/// The retry budget of one request.
#[derive(Debug)]
pub struct Hold {
    until: Instant,
    pause: Duration,
    /// Spreads the retries of requests held together, so a cell that comes back is not met
    /// by all of them in the same millisecond.
    jitter: u64,
}

impl Hold {
    /// A budget of `budget` from `now`; `jitter` is any per-request number.
    pub fn new(now: Instant, budget: Duration, jitter: u64) -> Self {
        Hold {
            until: now + budget,
            pause: FIRST_PAUSE,
            jitter,
        }
    }

    /// The pause before attempting again after a failure that reached `reach`, or `None`
    /// when the request must be answered with its error now (not retryable, or the budget
    /// is spent: a pause is never longer than what is left).
    pub fn next(&mut self, now: Instant, reach: Reach, safe: bool) -> Option<Duration> {
        let retryable = match reach {
            Reach::NotSent => true,
            Reach::MaybeSent => safe,
            Reach::Final => false,
        };
        let left = self.until.checked_duration_since(now)?;
        if !retryable || left.is_zero() {
            return None;
        }
        // 50–100 % of the nominal pause.
        self.jitter = self
            .jitter
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let nominal = self.pause.as_micros() as u64;
        let pause = Duration::from_micros(nominal / 2 + (self.jitter >> 33) % (nominal / 2 + 1));
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        Some(pause.min(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_and_keyed_writes_are_retry_safe_and_other_writes_are_not() {
        let mut h = HeaderMap::new();
        assert!(retry_safe(&Method::GET, &h));
        assert!(retry_safe(&Method::HEAD, &h));
        assert!(!retry_safe(&Method::POST, &h));
        assert!(!retry_safe(&Method::DELETE, &h));
        h.insert("idempotency-key", HeaderValue::from_static("  "));
        assert!(
            !retry_safe(&Method::POST, &h),
            "a blank key dedupes nothing"
        );
        h.insert("idempotency-key", HeaderValue::from_static("k-1"));
        assert!(retry_safe(&Method::POST, &h));
    }

    #[test]
    fn what_may_be_retried_depends_on_how_far_the_request_got() {
        let t0 = Instant::now();
        let mut hold = Hold::new(t0, Duration::from_secs(5), 7);
        assert!(hold.next(t0, Reach::NotSent, false).is_some());
        assert!(hold.next(t0, Reach::MaybeSent, true).is_some());
        assert_eq!(hold.next(t0, Reach::MaybeSent, false), None);
        assert_eq!(hold.next(t0, Reach::Final, true), None);
    }

    #[test]
    fn pauses_grow_to_a_cap_and_never_pass_the_deadline() {
        let t0 = Instant::now();
        let budget = Duration::from_secs(2);
        let mut hold = Hold::new(t0, budget, 42);
        let mut now = t0;
        let mut pauses = Vec::new();
        while let Some(p) = hold.next(now, Reach::NotSent, false) {
            assert!(p <= MAX_PAUSE);
            now += p;
            pauses.push(p);
            assert!(pauses.len() < 1000, "the budget must run out");
        }
        assert!(now <= t0 + budget, "held past the deadline: {:?}", now - t0);
        assert!(
            now >= t0 + budget - MAX_PAUSE,
            "gave up early: {:?}",
            now - t0
        );
        assert!(pauses[0] <= FIRST_PAUSE);
        assert!(
            pauses.iter().any(|p| *p >= MAX_PAUSE / 2),
            "never backed off"
        );
        assert_eq!(hold.next(t0 + budget, Reach::NotSent, true), None);
    }

    #[test]
    fn a_zero_budget_retries_nothing() {
        let t0 = Instant::now();
        let mut hold = Hold::new(t0, Duration::ZERO, 1);
        assert_eq!(hold.next(t0, Reach::NotSent, true), None);
    }
}
