//! A sans-IO circuit breaker: no clock, no tasks, no locks. Every method takes `now`, so
//! tests step through cooldowns exactly and the async wrapper decides where time comes from.
//!
//! Closed → (N consecutive failures) → Open → (cooldown elapsed) → HalfOpen: one trial call
//! goes through; its success closes the circuit, its failure opens it for another cooldown.

use std::time::{Duration, Instant};

/// Breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive provider failures that open the circuit. At least 1.
    pub failure_threshold: u32,
    /// How long the circuit stays open before a trial call. Also bounds how long a trial
    /// may stay unanswered: a caller that was cancelled mid-trial never reports back, and
    /// the breaker must not wait for it forever.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// The state, with the data each state needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        consecutive_failures: u32,
    },
    Open {
        until: Instant,
    },
    /// `trial_since` is set while the one trial call is outstanding.
    HalfOpen {
        trial_since: Option<Instant>,
    },
}

/// The coarse state, for gauges, logs and readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

/// Whether a call may go to the provider now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Circuit closed: go ahead.
    Allowed,
    /// Circuit half-open and this caller is the one trial. Report its outcome.
    Trial,
    /// Fail fast; the next trial is possible after `retry_after`.
    Rejected { retry_after: Duration },
}

impl Admission {
    pub fn is_allowed(self) -> bool {
        !matches!(self, Admission::Rejected { .. })
    }
}

/// See the module doc.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: State,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> Self {
        assert!(
            config.failure_threshold >= 1,
            "failure_threshold must be >= 1"
        );
        CircuitBreaker {
            config,
            state: State::Closed {
                consecutive_failures: 0,
            },
        }
    }

    /// Asks to send one call at `now`. A `Trial` admission must be followed by
    /// [`handle_success`](Self::handle_success) or [`handle_failure`](Self::handle_failure).
    pub fn poll_admit(&mut self, now: Instant) -> Admission {
        match self.state {
            State::Closed { .. } => Admission::Allowed,
            State::Open { until } if now < until => Admission::Rejected {
                retry_after: until - now,
            },
            State::Open { .. } => {
                self.state = State::HalfOpen {
                    trial_since: Some(now),
                };
                Admission::Trial
            }
            State::HalfOpen {
                trial_since: Some(since),
            } => {
                let lease_end = since + self.config.cooldown;
                if now < lease_end {
                    Admission::Rejected {
                        retry_after: lease_end - now,
                    }
                } else {
                    // The trial never reported (its caller was cancelled): start another.
                    self.state = State::HalfOpen {
                        trial_since: Some(now),
                    };
                    Admission::Trial
                }
            }
            State::HalfOpen { trial_since: None } => {
                self.state = State::HalfOpen {
                    trial_since: Some(now),
                };
                Admission::Trial
            }
        }
    }

    /// The provider answered (a decline counts: the provider is healthy).
    pub fn handle_success(&mut self, _now: Instant) {
        self.state = State::Closed {
            consecutive_failures: 0,
        };
    }

    /// The provider failed (timeout, unavailable, garbage).
    pub fn handle_failure(&mut self, now: Instant) {
        self.state = match self.state {
            State::Closed {
                consecutive_failures,
            } => {
                let failures = consecutive_failures.saturating_add(1);
                if failures >= self.config.failure_threshold {
                    self.open(now)
                } else {
                    State::Closed {
                        consecutive_failures: failures,
                    }
                }
            }
            State::HalfOpen { .. } => self.open(now),
            // A call admitted before the circuit opened came back failing: already open,
            // and extending the cooldown for it would punish late answers twice.
            open @ State::Open { .. } => open,
        };
    }

    fn open(&self, now: Instant) -> State {
        State::Open {
            until: now + self.config.cooldown,
        }
    }

    /// The state at `now` (an expired open circuit reads as half-open).
    pub fn state(&self, now: Instant) -> CircuitState {
        match self.state {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { until } if now < until => CircuitState::Open,
            State::Open { .. } | State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// Consecutive failures counted while closed (0 otherwise).
    pub fn consecutive_failures(&self) -> u32 {
        match self.state {
            State::Closed {
                consecutive_failures,
            } => consecutive_failures,
            State::Open { .. } | State::HalfOpen { .. } => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(30);

    fn breaker() -> (CircuitBreaker, Instant) {
        let cfg = BreakerConfig {
            failure_threshold: 3,
            cooldown: COOLDOWN,
        };
        (CircuitBreaker::new(cfg), Instant::now())
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let (mut b, t0) = breaker();
        for i in 0..2 {
            assert_eq!(b.poll_admit(t0), Admission::Allowed);
            b.handle_failure(t0);
            assert_eq!(b.state(t0), CircuitState::Closed, "failure {i}");
        }
        b.handle_failure(t0 + secs(1));
        assert_eq!(b.state(t0 + secs(1)), CircuitState::Open);
        assert_eq!(
            b.poll_admit(t0 + secs(11)),
            Admission::Rejected {
                retry_after: secs(20)
            }
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let (mut b, t0) = breaker();
        b.handle_failure(t0);
        b.handle_failure(t0);
        b.handle_success(t0);
        assert_eq!(b.consecutive_failures(), 0);
        b.handle_failure(t0);
        b.handle_failure(t0);
        assert_eq!(b.state(t0), CircuitState::Closed);
    }

    #[test]
    fn half_open_lets_exactly_one_trial_through() {
        let (mut b, t0) = breaker();
        for _ in 0..3 {
            b.handle_failure(t0);
        }
        let later = t0 + COOLDOWN;
        assert_eq!(b.state(later), CircuitState::HalfOpen);
        assert_eq!(b.poll_admit(later), Admission::Trial);
        assert!(!b.poll_admit(later).is_allowed(), "second caller must wait");
        assert!(!b.poll_admit(later + secs(1)).is_allowed());
        b.handle_success(later + secs(2));
        assert_eq!(b.state(later + secs(2)), CircuitState::Closed);
        assert_eq!(b.poll_admit(later + secs(2)), Admission::Allowed);
    }

    #[test]
    fn a_failed_trial_reopens_for_a_full_cooldown() {
        let (mut b, t0) = breaker();
        for _ in 0..3 {
            b.handle_failure(t0);
        }
        let trial_at = t0 + COOLDOWN + secs(5);
        assert_eq!(b.poll_admit(trial_at), Admission::Trial);
        b.handle_failure(trial_at + secs(1));
        assert_eq!(b.state(trial_at + secs(1)), CircuitState::Open);
        assert_eq!(
            b.poll_admit(trial_at + secs(1)),
            Admission::Rejected {
                retry_after: COOLDOWN
            }
        );
        assert_eq!(
            b.poll_admit(trial_at + secs(1) + COOLDOWN),
            Admission::Trial
        );
    }

    #[test]
    fn an_abandoned_trial_does_not_wedge_the_breaker() {
        let (mut b, t0) = breaker();
        for _ in 0..3 {
            b.handle_failure(t0);
        }
        let trial_at = t0 + COOLDOWN;
        assert_eq!(b.poll_admit(trial_at), Admission::Trial);
        // The trial's caller is dropped and never reports.
        assert!(!b.poll_admit(trial_at + COOLDOWN - secs(1)).is_allowed());
        assert_eq!(b.poll_admit(trial_at + COOLDOWN), Admission::Trial);
    }

    #[test]
    fn late_failures_do_not_extend_an_open_circuit() {
        let (mut b, t0) = breaker();
        for _ in 0..3 {
            b.handle_failure(t0);
        }
        // Calls admitted before it opened come back failing later.
        b.handle_failure(t0 + secs(20));
        assert_eq!(b.poll_admit(t0 + COOLDOWN), Admission::Trial);
    }

    #[test]
    fn threshold_one_opens_on_the_first_failure() {
        let mut b = CircuitBreaker::new(BreakerConfig {
            failure_threshold: 1,
            cooldown: secs(1),
        });
        let t0 = Instant::now();
        b.handle_failure(t0);
        assert_eq!(b.state(t0), CircuitState::Open);
    }
}
